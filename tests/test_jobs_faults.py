"""Jobs under faults from outside the job: the service at capacity, the corrections store not answering, a full
disk, a runner's own error, another index served. A transient fault makes a job wait (its status says why), never
fail it for good, and never ends a runner."""
from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.errors import Overloaded
from service.batch.run import stored_version
from service.corrections import StoreUnavailable
from service.jobs.records import JobRecord
from service.jobs.runner import AT_CAPACITY, AtCapacity, IndexChanged, JobRunner
from service.jobs.store import JobStore
from service.store import index_identity

from . import test_jobs
from .test_jobs import Watched, catalogue, classify_file_output, upload

shared_classifier, classifier, app = test_jobs.shared_classifier, test_jobs.classifier, test_jobs.app  # its fixtures

HEIST = ["A crew of thieves plans a heist on a casino in Lyon."]


class Drafting:
    """The service as a runner sees it, serving the test's classifier."""

    def __init__(self, classifier):
        self.classifier = classifier

    def manifest(self):
        return self.classifier.index.manifest

    def draft(self, texts, index):
        return self.classifier.draft(texts)


def queued(store: JobStore, source: Path) -> JobRecord:
    record = JobRecord(store.new_id(), source.name, "anonymous", "csv", "csv", None, "here", created_at=0.0)
    store.create(record).release()
    store.input_path(record).write_bytes(source.read_bytes())
    record.state = "queued"
    store.save(record)
    return record


def test_the_index_served_is_told_by_what_it_holds_not_by_where_its_manifest_sits_in_memory(app, classifier):
    service = app()
    manifest = classifier.index.manifest
    kept = dict(manifest)
    with TestClient(service):
        drafting = service.state.jobs.runner.drafting
        index = index_identity(manifest)
        assert len(drafting.draft(HEIST, index)) == 1
        try:  # another build reloaded into the very object (a freed manifest's id is reused by the next)
            manifest.update(build="builds/20990101T000000000000Z", corpus_fingerprint="another corpus")
            with pytest.raises(IndexChanged):
                drafting.draft(HEIST, index)
        finally:
            manifest.clear()
            manifest.update(kept)


def test_a_text_turned_away_at_capacity_is_handed_back_to_the_runner_after_one_try_never_retried_behind_it(
        app, classifier):
    service = app()
    tries, changed, outcome = [0], threading.Condition(), []

    async def refused(work, *args):
        with changed:
            tries[0] += 1
            changed.notify_all()
        raise Overloaded

    def ask(drafting):
        try:
            drafting.draft(HEIST, index_identity(classifier.index.manifest))
        except Exception as exc:  # noqa: BLE001 - what it raised is what the test looks at
            outcome.append(exc)
        with changed:
            changed.notify_all()

    with TestClient(service):
        service.state.admission.run = refused
        threading.Thread(target=ask, args=(service.state.jobs.runner.drafting,), daemon=True).start()
        with changed:
            assert changed.wait_for(lambda: outcome or tries[0] >= 2, 30)
    assert tries[0] == 1 and isinstance(outcome[0], AtCapacity)  # its coroutine ended: nothing asks again unseen


def test_a_job_waits_out_a_flood_saying_so_in_its_status_and_completes_once_slots_come_back(
        app, classifier, tmp_path, monkeypatch):
    monkeypatch.setattr("service.api.jobs.RETRY_AFTER_S", 0.01)
    service = app()
    flood, refusals, refused, run = threading.Event(), [0], threading.Condition(), service.state.admission.run

    async def admission(work, *args):  # the flood: every text turned away while it lasts
        if flood.is_set():
            with refused:
                refusals[0] += 1
                refused.notify_all()
            raise Overloaded
        return await run(work, *args)

    service.state.admission.run = admission
    flood.set()
    source = catalogue(tmp_path, 10)
    with TestClient(service) as client:
        watch = Watched(service)
        job = upload(client, source).json()
        watch.until(job["id"], lambda record: record.waiting == AT_CAPACITY, "waiting at capacity")
        with refused:
            assert refused.wait_for(lambda: refusals[0] >= 20, 60)  # turned away again and again: it still waits
        seen = client.get(f"/jobs/{job['id']}").json()
        flood.clear()
        done = watch.wait(job["id"], "done", "failed")
        output = client.get(f"/jobs/{job['id']}/output").content
    assert (seen["state"], seen["error"], seen["waiting"]) == ("running", None, AT_CAPACITY)
    assert (done.state, done.classified, done.waiting) == ("done", 9, None)
    assert output == classify_file_output(classifier, source, tmp_path / "expected.csv").read_bytes()


def test_a_job_whose_corrections_store_does_not_answer_goes_back_to_the_queue_saying_why_and_resumes(
        classifier, tmp_path, monkeypatch):
    down = [True]
    def version(location):
        if down[0]:
            raise StoreUnavailable("the corrections database at db:5432 does not answer")
        return stored_version(location)

    monkeypatch.setattr("service.batch.run.stored_version", version)
    store = JobStore(tmp_path / "jobs", 20, 3600)
    record = queued(store, catalogue(tmp_path, 10))
    runner = JobRunner(store, classifier.settings.replace(jobs_dir=store.folder), Drafting(classifier), lambda: 5.0)
    assert runner._run(*store.claim()) is False  # not now: a later scan takes it again
    waiting = store.get(record.id)
    assert (waiting.state, waiting.error) == ("queued", None)
    assert "corrections store does not answer" in waiting.waiting and "db:5432" in waiting.waiting
    down[0] = False
    assert runner._run(*store.claim()) is True
    done = store.get(record.id)
    assert (done.state, done.classified, done.waiting) == ("done", 9, None)


def test_a_full_disk_under_a_chunk_sends_the_job_back_to_the_queue_saying_so(classifier, tmp_path, monkeypatch):
    from service.batch.chunks import ChunkStore

    put, full = ChunkStore.put, [True]

    def kept(self, *args, **kwargs):
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return put(self, *args, **kwargs)

    monkeypatch.setattr(ChunkStore, "put", kept)
    store = JobStore(tmp_path / "jobs", 20, 3600)
    record = queued(store, catalogue(tmp_path, 10))
    runner = JobRunner(store, classifier.settings.replace(jobs_dir=store.folder), Drafting(classifier), lambda: 5.0)
    assert runner._run(*store.claim()) is False
    waiting = store.get(record.id)
    assert (waiting.state, waiting.error) == ("queued", None) and "disk is full" in waiting.waiting
    full[0] = False
    assert runner._run(*store.claim()) is True and store.get(record.id).state == "done"


class FaultyStore(JobStore):
    """A jobs folder whose status writes fail once `full` is set (a full disk), and whose scans can fail once."""

    def __init__(self, folder: Path):
        super().__init__(folder, 20, 3600, clock=lambda: 5.0)  # the runner's clock: a finished job is kept
        self.full, self.scan_fault = threading.Event(), None
        self.changed, self.failed_saves = threading.Condition(), 0

    def save(self, record: JobRecord) -> None:
        with self.changed:
            if self.full.is_set():
                self.failed_saves += 1
                self.changed.notify_all()
                raise OSError(errno.ENOSPC, "No space left on device")
        super().save(record)
        with self.changed:
            self.changed.notify_all()

    def expire(self) -> list[str]:
        fault, self.scan_fault = self.scan_fault, None
        if fault is not None:
            with self.changed:
                self.changed.notify_all()
            raise fault
        return super().expire()

    def until(self, reached) -> None:
        with self.changed:
            assert self.changed.wait_for(reached, 60)


def started(store: FaultyStore, classifier) -> JobRunner:
    settings = classifier.settings.replace(jobs_dir=store.folder, jobs_chunk_rows=4, jobs_running=1)
    runner = JobRunner(store, settings, Drafting(classifier), lambda: 5.0, scan_s=3600)  # it looks when woken
    runner.start()
    return runner


def test_a_status_that_cannot_be_saved_on_a_full_disk_never_ends_the_runner_and_the_job_resumes_later(
        classifier, tmp_path):
    store = FaultyStore(tmp_path / "jobs")
    source = catalogue(tmp_path, 10)
    record = queued(store, source)
    save = store.save

    def first_then_full(record):  # the run's first status is written, then the disk fills up
        save(record)
        store.save = save
        store.full.set()

    store.save = first_then_full
    runner = started(store, classifier)
    try:
        store.until(lambda: store.failed_saves >= 2)  # the first chunk's status, then the failed job's
        store.full.clear()
        runner.wake()
        store.until(lambda: store.get(record.id).state in ("done", "failed"))
        assert all(thread.is_alive() for thread in runner._threads)
    finally:
        runner.stop()
    done = store.get(record.id)
    assert (done.state, done.classified) == ("done", 9)
    assert store.output_path(done).read_bytes() == classify_file_output(
        classifier, source, tmp_path / "expected.csv", chunk_rows=4).read_bytes()


def test_a_runner_outlives_an_unexpected_error_of_its_scan_and_runs_the_next_job(classifier, tmp_path):
    store = FaultyStore(tmp_path / "jobs")
    store.scan_fault = ValueError("a status file no one expected")
    runner = started(store, classifier)
    try:
        store.until(lambda: store.scan_fault is None)
        record = queued(store, catalogue(tmp_path, 10))
        runner.wake()
        store.until(lambda: store.get(record.id).state in ("done", "failed"))
        assert store.get(record.id).state == "done"
    finally:
        runner.stop()
