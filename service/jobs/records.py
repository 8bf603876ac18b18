"""What a job is (its status, as kept in its folder's status.json) and how far along it is."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

# uploading: its file is arriving; queued: waiting for a runner; running: being classified (a runner holds its lock;
# one found running with its lock free was interrupted, and resumes); done, failed: finished, kept until it expires
State = Literal["uploading", "queued", "running", "done", "failed"]
RUNNABLE: tuple[State, ...] = ("queued", "running")
FINISHED: tuple[State, ...] = ("done", "failed")


@dataclass
class JobRecord:
    id: str
    name: str  # the uploaded file's name, as sent
    owner: str  # who sent it: "api:<consumer>", "editor:<name>", or "anonymous" when the service has no keys
    input_format: str
    output_format: str
    text_column: str | None  # as asked for; None: detected (plot, else description)
    replica: str  # the process that received it
    created_at: float  # seconds since the epoch, as every time here
    state: State = "uploading"
    upload_bytes: int = 0
    rows_total: int | None = None  # counted when the upload is whole (an estimate for CSV: lines)
    rows_done: int = 0
    run_started_at: float | None = None  # when the current run started, and the rows done before it
    rows_before_run: int = 0
    finished_at: float | None = None
    classified: int | None = None
    rejected: int | None = None
    error: str | None = None
    waiting: str | None = None  # why a queued or running job does not go on now (a fault it waits out), else None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, data: dict) -> JobRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Progress:
    rows_done: int
    rows_total: int | None
    fraction: float | None  # 0..1
    rows_per_s: float | None  # since the current run started
    eta_s: float | None


def progress_of(record: JobRecord, now: float, rows_done: int | None = None) -> Progress:
    """How far the job is at `now`: `rows_done` is the runner's live count, when this process runs it."""
    done = record.rows_done if rows_done is None else rows_done
    total = record.rows_total
    if record.state == "done":
        total = done = record.classified + record.rejected  # exact, where the count before was an estimate
    elif total is not None:
        total = max(total, done)
    fraction = None if not total else min(1.0, done / total)
    rate = eta = None
    if record.state == "running" and record.run_started_at is not None and now > record.run_started_at:
        rate = (done - record.rows_before_run) / (now - record.run_started_at)
        if rate > 0 and total is not None:
            eta = (total - done) / rate
    return Progress(done, total, fraction, rate, eta)
