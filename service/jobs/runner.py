"""Jobs classified beside the service: classify-file's engine (batch/: the same reader, chunks, resumption and
output), driven by a few runner threads of the service's process, with the service's classifier.

A chunk's CPU work is never done in one go: each of its texts is classified alone, under one of the CPU slots
/classify takes (the `Drafting` the API hands in), exactly as a /classify request is: a job holds at most one slot
at a time per runner, for as long as a request holds one, waits its turn in the same queue, and works on one core,
leaving the other to the requests. (Pieces of 32 texts classified together, as /classify/batch does, went ~1.5×
faster but doubled the p99 of /classify beside them: a batch embeds on every core at once. Measured in
docs/benchmarks.md.) Reading the file, keeping chunks and writing the output hold no slot. A runner stopped with the
service leaves its job where it was (its finished chunks kept); the next start, of this process or of another
sharing the folder, resumes it."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from service.atomic import write_json
from service.jobs.faults import after_fault, save
from service.jobs.records import JobRecord
from service.file_lock import Lock
from service.jobs.store import GLANCE, JobStore
from service.settings import Settings
from service.store import index_identity

if TYPE_CHECKING:  # a serving process imports pyarrow (~25 MB) only once it runs a job
    import pyarrow as pa

    from service.batch.chunks import Summary
    from service.batch.records import Item

log = logging.getLogger("moviegenre")
SCAN_S = 5.0  # how often an idle runner looks for jobs (left by another process) and removes expired ones


class Stopped(Exception):
    """The service is stopping: the job stays as it is and resumes at the next start."""


class Cancelled(Exception):
    """The job was removed while it ran (DELETE /jobs/{id})."""


class IndexChanged(Exception):
    """The service serves another index than the one the job started on: it starts again on the new one."""


class NotReady(Exception):
    """No index is served yet: the job waits."""


class AtCapacity(Exception):
    """The service turned the text away (it is at capacity): the job asks again after `retry_after` seconds, as long
    as that lasts (requests go first, and never fail a job)."""

    def __init__(self, retry_after: float):
        super().__init__("the service is at capacity")
        self.retry_after = retry_after


AT_CAPACITY = "the service is at capacity: the job waits for the CPU slots /classify leaves free, and goes on then"


class Drafting(Protocol):
    """How a job classifies in the service (api/jobs.py)."""

    def manifest(self) -> dict | None:
        """The manifest of the index served now; None while there is none."""

    def draft(self, texts: list[str], index: str) -> list:
        """The vote's answers (Classification), under a CPU slot of the service; blocking, one try. Raises
        IndexChanged when the index served is not `index` (index_identity), NotReady when there is none, AtCapacity
        when the admission turned the texts away, Stopped when the service is stopping."""


class InSlots:
    """The service's classifier as a job's chunk sees it (batch.labelling.classify_items calls classify_many): each
    text classified alone, under a CPU slot, by the runner's `draft_one`."""

    def __init__(self, draft_one: Callable[[str], list]):
        self.draft_one = draft_one

    def classify_many(self, texts: list[str]) -> list:
        return [answer for text in texts for answer in self.draft_one(text)]


class JobRunner:
    def __init__(self, store: JobStore, settings: Settings, drafting: Drafting, clock, scan_s: float = SCAN_S):
        self.store, self.settings, self.drafting, self.clock, self.scan_s = store, settings, drafting, clock, scan_s
        self._wake, self.stopping = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._live: dict[str, int] = {}  # job → rows done, text by text, for the jobs this process runs

    def start(self) -> None:
        self.stopping.clear()
        self._threads = [threading.Thread(target=self._work, name=f"job-runner-{i}", daemon=True)
                         for i in range(self.settings.jobs.running)]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """A job was queued: a runner takes it now rather than at its next scan."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Each runner stops before its next text; its job resumes at the next start."""
        self.stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def rows_done(self, job_id: str) -> int | None:
        """The live count of a job this process runs, text by text (None for others: their status says)."""
        return self._live.get(job_id)

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self._turn()
            except Exception:  # noqa: BLE001 - a runner never dies of one job's fault: it looks again at its next scan
                log.exception("jobs: a runner's turn failed")
                busy = False
            if not busy:
                self._wake.wait(self.scan_s)
                self._wake.clear()

    def _turn(self) -> bool:
        """Expired jobs removed, then the oldest job waiting run: False when there was none, or it could not go on
        now (the runner waits a scan before it looks again)."""
        try:
            self.store.expire()
            claimed = self.store.claim()
        except OSError as exc:  # the folder went away or cannot be read: tried again at the next scan
            log.warning("jobs: the jobs folder cannot be read: %s", exc)
            return False
        return claimed is not None and self._run(*claimed)

    def _run(self, record: JobRecord, lock: Lock) -> bool:
        """Runs the job to its end (or until the service stops); False when it could not go on now (no index yet,
        a transient fault, a status that could not be saved): it is taken again at a later scan."""
        try:
            self._finish(record, self._classified(record))
        except NotReady:
            return False
        except Stopped:
            self.stopping.set()  # the service is stopping: so does this runner
            log.info("jobs: %s stopped with the service after %d rows; it resumes at the next start", record.id,
                     self._live.get(record.id, 0))
        except Cancelled:
            self.store.remove(record.id)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the job says so and the runner goes on
            return after_fault(self.store, record, exc, self.clock)
        finally:
            self._live.pop(record.id, None)
            lock.release()
        return True

    def _classified(self, record: JobRecord) -> tuple[Summary, dict]:
        """The job's run, started again on the new index whenever the index served changes under it."""
        while True:
            manifest = self.drafting.manifest()
            if manifest is None:
                raise NotReady
            try:
                return self._run_on(record, manifest)
            except IndexChanged:
                record.notes.append("the service's index changed while the job ran: it started again on the new one")

    def _run_on(self, record: JobRecord, manifest: dict) -> tuple[Summary, dict]:
        from service.batch.chunks import output_name
        from service.batch.run import Job, run_job
        from service.jobs.glance import Glance

        store = self.store
        job = Job.of(store.input_path(record), store.output_path(record), self.settings, record.text_column,
                     self.settings.jobs.chunk_rows)
        glance = Glance(output_name(job.text_column))
        finished = 0

        def progress(rows: int) -> None:  # run_job: the rows done before this run, then each chunk's
            nonlocal finished
            if record.run_started_at is None:
                record.state, record.run_started_at, record.rows_before_run = "running", self.clock(), rows
                record.waiting = None
            finished += rows
            record.rows_done = self._live[record.id] = finished
            store.save(record)

        record.run_started_at = None
        index = index_identity(manifest)
        classifier = InSlots(lambda text: self._draft_one(record, index, text))

        def labeller(chunks: Iterable[tuple[int, list[Item]]]) -> Iterator[tuple[int, pa.Table]]:
            for number, items in chunks:
                yield number, job.label(classifier, items)

        return run_job(job, manifest, labeller, progress, glance.add), glance.result()

    def _draft_one(self, record: JobRecord, index: str, text: str) -> list:
        """One text's answer, under a CPU slot; while the service is at capacity the job waits and asks again (its
        status says so), until it stops or is removed."""
        while True:
            self._between(record)
            try:
                answer = self.drafting.draft([text], index)
            except AtCapacity as busy:
                if record.waiting != AT_CAPACITY:
                    record.waiting = AT_CAPACITY
                    save(self.store, record)
                self.stopping.wait(busy.retry_after)
                continue
            if record.waiting is not None:
                record.waiting = None
                save(self.store, record)
            self._live[record.id] = self._live.get(record.id, 0) + 1
            return answer

    def _between(self, record: JobRecord) -> None:
        if self.stopping.is_set():
            raise Stopped
        if self.store.cancelled(record.id):
            raise Cancelled

    def _finish(self, record: JobRecord, classified: tuple[Summary, dict]) -> None:
        summary, glance = classified
        write_json(self.store.path(record.id) / GLANCE, glance)
        record.state, record.finished_at = "done", self.clock()
        record.classified, record.rejected = summary.classified, summary.rejected
        record.rows_done = summary.classified + summary.rejected
        record.notes += summary.notes
        self.store.save(record)

