"""classify-file on Ray: the chunks are read here (run.py, the same reader as this machine's engine) and
classified by a pool of Ray actors, each of which loads the index and the models once.

Reading stays on the driver because it is never the bottleneck (the reader streams ~100k rows/s on one core,
an actor classifies ~270/s) and because one reader is what makes rows, rejections and row numbers the same
whatever the engine, and a killed run resumable after its last finished chunk.

RAY_ADDRESS names a cluster; unset, a Ray is started here with a capped object store. The pool is at most
the CPUs but one (the driver reads and writes), at most what the cluster's memory holds (ACTOR_MEMORY_MB an
actor, reserved with Ray), and with the LLM on, at most --llm-concurrency actors sharing that many requests
in flight in all. A dead actor is restarted by Ray and its chunk retried. Every node must see the index folder
at the same path: the actors memory-map its vectors, and each checks that it serves the index the job was
started on, so a build made current mid-run can never mix two indexes in one output.
"""
from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Iterable, Iterator

import pyarrow as pa

from service.batch.chunks import Summary
from service.batch.records import Item
from service.batch.run import Job, Progress, run_job
from service.store import index_identity, read_manifest

ACTOR_MEMORY_MB = 1536  # an actor's classifier with both index parts, its chunk and its answers (measured ~1 GB)
RESTARTS = 3


class IndexChanged(RuntimeError):
    """An actor loaded another index than the job was started on (a build made current mid-run)."""


class ClassifyActor:
    """One classifier, loaded once, for every chunk this actor is given (made a Ray actor by ray.remote)."""

    def __init__(self, job: Job):
        from service.loading import load_classifier

        self.job = job
        self.classifier = load_classifier(job.settings)
        self.index = index_identity(self.classifier.index.manifest)

    def classify(self, items: list[Item]) -> tuple[str, pa.Table]:
        return self.index, self.job.label(self.classifier, items)


def pool_size(cpus: int, memory_bytes: float, requested: int | None,
              llm_concurrency: int | None) -> tuple[int, list[str]]:
    """Actors for a cluster of `cpus` and `memory_bytes`, and why fewer than requested, if so."""
    limits = {"the CPUs but one": max(1, cpus - 1),
              f"the memory ({ACTOR_MEMORY_MB} MB an actor)": max(1, int(memory_bytes // (ACTOR_MEMORY_MB << 20)))}
    if llm_concurrency:
        limits["--llm-concurrency (requests in flight on each LLM server, in all)"] = llm_concurrency
    size = min([requested or limits["the CPUs but one"], *limits.values()])
    capped = [f"{requested} actors requested, {size} started: capped by {why}"
              for why, limit in limits.items() if requested and limit == size < requested]
    return size, capped


def classify_file_on_ray(job: Job, actors: int | None = None, object_store_mb: int = 512,
                         progress: Progress | None = None) -> Summary:
    import ray

    started_here = _connect(object_store_mb)
    try:
        manifest = read_manifest(job.settings.index.dir) or {}
        resources = ray.cluster_resources()
        llm_total = job.settings.llm.concurrency if job.uses_llm else None
        size, notes = pool_size(int(resources.get("CPU", 1)), resources.get("memory", 0), actors, llm_total)
        per_actor = max(1, (llm_total or size) // size)
        share = dataclasses.replace(job, settings=job.settings.replace(llm_concurrency=per_actor))
        remote = ray.remote(ClassifyActor).options(num_cpus=1, memory=ACTOR_MEMORY_MB << 20, max_restarts=RESTARTS,
                                                   max_task_retries=RESTARTS)
        pool = [remote.remote(share) for _ in range(size)]
        summary = run_job(job, manifest, lambda chunks: _on_actors(pool, chunks, index_identity(manifest)), progress)
        summary.actors, summary.notes = size, notes + summary.notes
        return summary
    finally:
        if started_here:
            ray.shutdown()


def _on_actors(actors: list, chunks: Iterable[tuple[int, list[Item]]], index: str) -> Iterator[tuple[int, pa.Table]]:
    """The chunks classified by the actors, in order; at most one chunk in flight per actor, so memory stays
    bounded whatever the file's size."""
    from ray.util import ActorPool

    pool, numbers = ActorPool(actors), deque()

    def answered() -> tuple[int, pa.Table]:
        served, table = pool.get_next()  # results come back in the order the chunks were submitted
        if served != index:
            raise IndexChanged("the index changed while the file was being classified (an actor loaded another "
                               "build than the job started on): run the command again to start on the new index")
        return numbers.popleft(), table

    for number, chunk in chunks:
        while not pool.has_free():
            yield answered()
        numbers.append(number)
        pool.submit(lambda actor, items: actor.classify.remote(items), chunk)
    while pool.has_next():
        yield answered()


def _connect(object_store_mb: int) -> bool:
    """Join $RAY_ADDRESS, or start a Ray here. True when started here."""
    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=None if address else object_store_mb << 20)
    return address is None
