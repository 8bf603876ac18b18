"""The corrections store in a SQLite file (the embedded default, beside the index): one connection shared by the
request threads (under a lock), WAL mode, every commit on disk before it returns (`synchronous=FULL`). SQLite has
one writer at a time: `BEGIN IMMEDIATE` takes the write lock at a transaction's start, so changes are numbered in
the order they are committed. The schema version is SQLite's `user_version`."""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.corrections.database import BUSY_TIMEOUT_S, Database, StoreUnavailable


class SQLiteDatabase(Database):
    kind = "sqlite"
    SERIAL = "INTEGER PRIMARY KEY AUTOINCREMENT"
    KEYED = " WITHOUT ROWID"

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None  # opened on first use

    @contextmanager
    def connected(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._opened()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the corrections store failed ({type(exc).__name__}: {exc})") from exc

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._transaction("BEGIN") as db:
            yield db

    def schema_version(self, tx: sqlite3.Connection) -> int:
        return tx.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, tx: sqlite3.Connection, version: int) -> None:
        tx.execute(f"PRAGMA user_version = {int(version)}")

    def holds_any_case(self, column: str) -> str:
        return f"casefold({column}) LIKE ? ESCAPE '\\'"  # SQLite's own LIKE folds ASCII letters alone

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _opened(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise sqlite3.OperationalError(f"cannot make {self.path.parent}: {exc}") from exc
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                         isolation_level=None)
            try:
                _wal(connection)
                connection.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
                connection.create_function("casefold", 1, _casefold, deterministic=True)
            except sqlite3.Error:
                connection.close()
                raise
            self._connection = connection
        return self._connection

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


def _casefold(text: str | None) -> str | None:
    return text.casefold() if text is not None else None


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
