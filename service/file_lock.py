"""An exclusive lock on a file (flock), for work two processes must not do at once on one folder: a job (jobs/),
the export of a model (embedding/export.py)."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Lock:
    """An exclusive flock on a lock file, held until released (or until the process ends)."""

    def __init__(self, fd: int):
        self._fd = fd

    @classmethod
    def take(cls, path: Path) -> Lock | None:
        """The lock, or None when another holder has it (or the file's folder is gone); held() waits for it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor lets the flock go
            self._fd = None


@contextmanager
def held(path: Path) -> Iterator[None]:
    """The lock on `path`, waited for, held for the block (its folder must be there: OSError otherwise)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    lock = Lock(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        lock.release()
