"""What a fault does to a job the runner runs (runner.py): one that passes (the corrections store down, a full disk)
puts it back in the queue with why it waits, any other fails it; either way its status is saved, or, when it cannot
be, left as it last was for a later scan to take the job again."""
from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from service.corrections import StoreUnavailable
from service.jobs.records import JobRecord
from service.jobs.store import JobStore

log = logging.getLogger("moviegenre")


def after_fault(store: JobStore, record: JobRecord, exc: Exception, clock: Callable[[], float]) -> bool:
    """The job waiting again (False: it cannot go on now) or failed (whether its status was saved)."""
    reason = _transient(exc)
    if reason is not None:
        log.warning("jobs: %s waits: %s", record.id, reason)
        record.state, record.waiting = "queued", reason
        save(store, record)
        return False
    log.exception("jobs: %s failed", record.id)
    record.state, record.error, record.finished_at = "failed", f"{type(exc).__name__}: {exc}", clock()
    record.waiting = None
    return save(store, record)


def save(store: JobStore, record: JobRecord) -> bool:
    """The job's status saved; False when it cannot be (a full disk): the job is left as its status last said,
    its lock let go, and a runner takes it again at a later scan, after its last kept chunk."""
    try:
        store.save(record)
    except OSError as exc:
        log.error("jobs: the status of %s cannot be saved (%s): it stays as it was, and is taken again at the next "
                  "scan", record.id, exc)
        return False
    return True


def _transient(exc: Exception) -> str | None:
    """Why the job waits, for a fault that passes (the job goes back to the queue); None for any other."""
    if isinstance(exc, StoreUnavailable):
        return (f"the corrections store does not answer ({exc}): the job waits, and goes on after its last kept chunk "
                "once it answers")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the jobs folder's disk is full ({exc.strerror}): the job waits, and goes on after its last kept "
                "chunk once it can be written")
    return None
