"""Where jobs are kept: one folder per job under the jobs folder (MOVIEGENRE_JOBS_DIR), holding its upload, its
status (status.json, written atomically), classify-file's chunks while it runs, its output and rejected rows, and
its glance. Nothing is kept elsewhere, so every process that shares the folder (replicas on one machine) reports
every job, and a job outlives the process that ran it.

Who works on a job is told by a lock (flock on the job's `lock` file) held by the upload that writes it and by the
runner that classifies it: the operating system lets it go when that process dies, so a job found queued or running
with its lock free is taken by the next runner that looks, and resumes after its last finished chunk; an upload
found with its lock free was cut off, and is removed. A finished job is removed MOVIEGENRE_JOBS_KEEP_HOURS after it
finished; at most MOVIEGENRE_MAX_JOBS are kept at once."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from service.atomic import write_json
from service.file_lock import Lock, held
from service.jobs.records import FINISHED, RUNNABLE, JobRecord

STATUS, LOCK, GLANCE, CANCEL = "status.json", "lock", "glance.json", "cancel"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class TooManyJobs(Exception):
    """As many jobs as may be kept are kept. `retry_after`: seconds until the first finished one is removed."""

    def __init__(self, message: str, retry_after: int | None):
        super().__init__(message)
        self.retry_after = retry_after


class JobStore:
    def __init__(self, folder: Path, max_jobs: int, keep_s: float, clock=time.time):
        self.folder = Path(folder)
        self.max_jobs, self.keep_s, self.clock = max_jobs, keep_s, clock

    def create(self, record: JobRecord) -> Lock:
        """A folder for a new job, its status saved and its lock held by the caller (who writes its upload).
        Raises TooManyJobs when MAX_JOBS are kept, and OSError when the folder cannot be written."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._counting():
            self.expire()
            kept = self.records()
            if len(kept) >= self.max_jobs:
                raise TooManyJobs(f"{len(kept)} jobs are kept, at most {self.max_jobs} (MOVIEGENRE_MAX_JOBS): remove "
                                  "one (DELETE /jobs/{id}) or wait until a finished one expires",
                                  self._first_expiry(kept))
            self.path(record.id).mkdir()
            lock = Lock.take(self.path(record.id) / LOCK)
            self.save(record)
        return lock

    def writable(self) -> bool:
        """Whether jobs can be kept: the folder, or the nearest folder above it that exists, can be written."""
        folder = self.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.folder / job_id

    def input_path(self, record: JobRecord) -> Path:
        return self.path(record.id) / f"input.{record.input_format}"

    def output_path(self, record: JobRecord) -> Path:
        return self.path(record.id) / f"output.{record.output_format}"

    def rejected_path(self, record: JobRecord) -> Path:
        from service.batch.chunks import sidecar_path  # (chunks.py imports pyarrow: only where a job is looked at)

        return sidecar_path(self.output_path(record))

    def save(self, record: JobRecord) -> None:
        write_json(self.path(record.id) / STATUS, record.as_dict())

    def get(self, job_id: str) -> JobRecord | None:
        if not JOB_ID.match(job_id):
            return None
        try:
            return JobRecord.of(json.loads((self.folder / job_id / STATUS).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def records(self) -> list[JobRecord]:
        """Every job kept, the oldest first."""
        if not self.folder.is_dir():
            return []
        found = (self.get(entry.name) for entry in self.folder.iterdir() if JOB_ID.match(entry.name))
        return sorted((r for r in found if r is not None), key=lambda r: r.created_at)

    def claim(self) -> tuple[JobRecord, Lock] | None:
        """The oldest job waiting to be classified (queued, or running with nobody holding it: interrupted), with its
        lock taken; None when there is none."""
        for record in self.records():
            if record.state not in RUNNABLE:
                continue
            lock = Lock.take(self.path(record.id) / LOCK)
            if lock is None:
                continue
            current = self.get(record.id)  # as it is now that it is ours
            if current is not None and current.state in RUNNABLE:
                return current, lock
            lock.release()
        return None

    def cancel(self, job_id: str) -> bool:
        """Removes the job at once when nobody works on it (True); else asks its runner to stop and remove it at its
        next text (False)."""
        lock = Lock.take(self.path(job_id) / LOCK)
        if lock is None:
            (self.path(job_id) / CANCEL).touch()
            return False
        try:
            self.remove(job_id)
        finally:
            lock.release()
        return True

    def cancelled(self, job_id: str) -> bool:
        return (self.path(job_id) / CANCEL).exists()

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.path(job_id), ignore_errors=True)

    def expire(self) -> list[str]:
        """Removes the finished jobs kept longer than KEEP_HOURS and the uploads that were cut off (their uploader
        died): the ids removed."""
        now, removed = self.clock(), []
        for record in self.records():
            expired = record.state in FINISHED and now - (record.finished_at or record.created_at) >= self.keep_s
            if expired or record.state == "uploading":
                lock = Lock.take(self.path(record.id) / LOCK)
                if lock is not None:
                    self.remove(record.id)
                    lock.release()
                    removed.append(record.id)
        return removed

    def expires_at(self, record: JobRecord) -> float | None:
        return record.finished_at + self.keep_s if record.finished_at is not None else None

    def _first_expiry(self, records: list[JobRecord]) -> int | None:
        times = [self.expires_at(r) for r in records if r.state in FINISHED]
        return max(1, int(min(times) - self.clock()) + 1) if times else None

    def _counting(self):
        """One creator at a time counts and adds (threads and processes sharing the folder alike)."""
        return held(self.folder / ".create.lock")
