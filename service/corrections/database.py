"""The corrections store's SQLite file: one connection shared by the request threads (under a lock), WAL mode,
every commit on disk before it returns, and every SQLite error as StoreUnavailable (the store failed, the
service goes on without it)."""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

BUSY_TIMEOUT_S = 5.0  # another process writing holds the lock for milliseconds; a stuck one is an error


class StoreUnavailable(RuntimeError):
    """The store could not be read or written (a disk error, a lock held past the busy timeout, a damaged file).
    Serving goes on with the corrections already read; a correction that could not be stored says so."""


class Database:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                          isolation_level=None)
        try:
            with self.connected() as db:
                _wal(db)
                db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
        except StoreUnavailable:
            self.connection.close()
            raise

    @contextmanager
    def connected(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self.connection
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the corrections store failed ({type(exc).__name__}: {exc})") from exc

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the store's write lock from its start: all of it, or none of it."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Reads that see one state of the store, whatever other processes commit meanwhile."""
        with self._transaction("BEGIN") as db:
            yield db

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self.connected() as db:
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


def _wal(db: sqlite3.Connection) -> None:
    """WAL mode (kept in the file). Two processes creating the store at once may find the switch locked for a
    moment, which the busy timeout does not cover."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stamp(moment: datetime) -> str:
    """A moment as the store keeps it (ISO 8601, to the second, UTC)."""
    return moment.isoformat(timespec="seconds")


def now() -> str:
    return stamp(datetime.now(UTC))
