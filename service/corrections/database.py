"""The database a corrections store lives in: one interface, two rooms behind it. The SQLite file in the index
folder is the embedded default (sqlite.py); MOVIEGENRE_CORRECTIONS_URL=postgresql://… puts the store in a PostgreSQL
server that replicas on many machines share (postgres.py).

The store writes its SQL once, portable, with `?` placeholders. The rooms differ only where the databases do: how a
transaction takes the store's one write lock (every change is numbered inside it, so the numbers are commit order in
both), where the schema version is kept, and a few words of DDL. Every database error is StoreUnavailable: the store
failed, and the service goes on without it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

BUSY_TIMEOUT_S = 5.0  # another process writing holds the lock for milliseconds; a stuck one is an error


class StoreUnavailable(RuntimeError):
    """The store could not be read or written (a disk error, a lock held past the busy timeout, a damaged file, a
    database server down). Serving goes on with the corrections already read; a correction that could not be
    stored says so."""


class CommitUnknown(StoreUnavailable):
    """The connection was lost while the database committed: the change may be stored. A retry with the same
    Idempotency-Key is answered with it, if it was."""


class Cursor(Protocol):
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...
    def __iter__(self) -> Iterator[tuple]: ...


class Transaction(Protocol):
    """What the store's SQL runs on: a connection inside one transaction (or in autocommit, for `connected`)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(ABC):
    kind: str
    SERIAL: str  # DDL: an id numbered by the database, in the order rows are inserted
    KEYED: str   # DDL after a table keyed by its primary key alone

    @abstractmethod
    def writing(self) -> AbstractContextManager[Transaction]:
        """One write transaction holding the store's write lock from its start, across every process: all of it, or
        none of it, and on disk when it returns."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Transaction]:
        """Reads that see one state of the store, whatever other processes commit meanwhile."""

    @abstractmethod
    def connected(self) -> AbstractContextManager[Transaction]:
        """Single statements, each its own transaction."""

    @abstractmethod
    def schema_version(self, tx: Transaction) -> int:
        """The schema version the store was written with (0: none yet)."""

    @abstractmethod
    def set_schema_version(self, tx: Transaction, version: int) -> None: ...

    @abstractmethod
    def holds_any_case(self, column: str) -> str:
        """SQL that is true where `column` matches the `?` LIKE pattern (`\\` its escape), letters in any case: the
        pattern comes casefolded."""

    def before_schema(self, tx: Transaction) -> None:
        """What the room needs before the tables are made (inside the upgrade's transaction)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for a person (no password)."""

    @abstractmethod
    def close(self) -> None: ...


def stamp(moment: datetime) -> str:
    """A moment as the store keeps it (ISO 8601, to the second, UTC)."""
    return moment.isoformat(timespec="seconds")


def now() -> str:
    return stamp(datetime.now(UTC))
