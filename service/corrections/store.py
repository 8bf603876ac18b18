"""Editors' corrections, kept durably and append-only in one SQLite file beside the built index.

A correction says: this film (a reference film, named by title and year, or the film a description tells of)
has these genres. Its `film` is decided once, when it is sent (films.film_key, or the description's plot_key),
so the service that serves it and the build that folds it in change the same film. The newest served
correction of a film is the one that counts (`Newest`): a later one supersedes it, and revoking the later one
brings the earlier one back.

A correction is never changed: revoking it, or an editor approving one sent anonymously (which waits for that
before it is served), appends a row of its own. Every write is committed in WAL mode with `synchronous=FULL`, so
a correction is on disk before it is acknowledged, and a crash mid-write loses at most the unacknowledged one.
Several processes (replicas on one index folder) write and read the same file; `changes_since` tells each what
the others added, approved or revoked.
"""
from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from service.corpus import plot_key
from service.films import film_key

FILE_NAME = "corrections.sqlite"
BUSY_TIMEOUT_S = 5.0  # another process writing holds the lock for milliseconds; a stuck one is an error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,            -- what was sent
    plot TEXT NOT NULL,            -- what is embedded: the text, or the plot of the reference film it names
    genres TEXT NOT NULL,          -- JSON list, the index's labels
    title TEXT,
    year INTEGER,
    author TEXT NOT NULL,          -- the name of the token that sent it, never the token; 'page' when anonymous
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    correction_id INTEGER NOT NULL UNIQUE REFERENCES corrections(id),
    author TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    correction_id INTEGER NOT NULL UNIQUE REFERENCES corrections(id),
    author TEXT NOT NULL,
    approved_at TEXT NOT NULL
);
"""
# added by this version: the film a correction changes, and whether it waits for an editor
_COLUMNS = {"film": "TEXT", "review": "INTEGER NOT NULL DEFAULT 0"}

Status = Literal["pending", "served", "revoked"]


class StoreUnavailable(RuntimeError):
    """The store could not be read or written (a disk error, a lock held past the busy timeout, a damaged file).
    Serving goes on with the corrections already read; a correction that could not be stored says so."""


@dataclass(frozen=True)
class Correction:
    id: int
    text: str
    plot: str
    genres: tuple[str, ...]
    title: str | None
    year: int | None
    author: str
    created_at: str
    film: str = ""                 # the film it corrects (see the module's docstring)
    review: bool = False           # sent anonymously: served only once an editor approves it
    approved_at: str | None = None
    approved_by: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def status(self) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.review and self.approved_at is None else "served"


class Newest:
    """Of served corrections, the newest of each film: the one that counts. A later correction of the film
    supersedes it, and revoking the later one brings it back. Kept up to date change by change; the side index
    serves it and a build folds it in (fold.py), so both change the same films the same way."""

    def __init__(self, corrections: Iterable[Correction] = ()):
        self._of_film: dict[str, list[Correction]] = {}  # film → its served corrections, oldest first
        self._film_of: dict[int, str] = {}
        self.update(corrections, set())

    def update(self, served: Iterable[Correction], revoked: set[int]) -> set[str]:
        """The films whose newest correction may have changed."""
        touched = set()
        for correction in sorted(served, key=lambda c: c.id):
            if correction.id not in self._film_of:
                bisect.insort(self._of_film.setdefault(correction.film, []), correction, key=lambda c: c.id)
                self._film_of[correction.id] = correction.film
                touched.add(correction.film)
        for correction_id in revoked:
            film = self._film_of.pop(correction_id, None)
            if film is not None:
                self._of_film[film] = [c for c in self._of_film[film] if c.id != correction_id]
                if not self._of_film[film]:
                    del self._of_film[film]
                touched.add(film)
        return touched

    def of(self, film: str) -> Correction | None:
        corrections = self._of_film.get(film)
        return corrections[-1] if corrections else None

    def all(self) -> list[Correction]:
        """The newest correction of every film, oldest first."""
        return sorted((corrections[-1] for corrections in self._of_film.values()), key=lambda c: c.id)


@dataclass(frozen=True)
class Version:
    """How far a reader has read: the last correction, revocation and approval it saw."""
    corrections: int = 0
    revocations: int = 0
    approvals: int = 0


@dataclass(frozen=True)
class Changes:
    served: list[Correction]  # served since: sent by an editor, or approved
    revoked: set[int]
    version: Version


_SELECT = ("SELECT c.id, c.text, c.plot, c.genres, c.title, c.year, c.author, c.created_at, c.film, c.review, "
           "a.approved_at, a.author, r.revoked_at, r.author FROM corrections c "
           "LEFT JOIN approvals a ON a.correction_id = c.id LEFT JOIN revocations r ON r.correction_id = c.id")
_WHERE_STATUS = {"revoked": "r.id IS NOT NULL", "pending": "r.id IS NULL AND c.review = 1 AND a.id IS NULL",
                 "served": "r.id IS NULL AND (c.review = 0 OR a.id IS NOT NULL)"}


class CorrectionStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by the request threads
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
            db.executescript(_SCHEMA)
            _upgrade(db)

    def add(self, text: str, plot: str, genres: list[str], title: str | None, year: int | None, author: str,
            film: str | None = None, review: bool = False) -> Correction:
        """Stored and on disk when this returns. `film` defaults to the title's film, else the plot's."""
        film = film or _film_of(title, year, plot)
        created = _now()
        with self._connection() as db:
            cursor = db.execute(
                "INSERT INTO corrections (text, plot, genres, title, year, author, created_at, film, review) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (text, plot, json.dumps(list(genres), ensure_ascii=False), title, year, author, created, film,
                 int(review)))
        return Correction(cursor.lastrowid, text, plot, tuple(genres), title, year, author, created, film, review)

    def approve(self, correction_id: int, author: str) -> Correction | None:
        """A pending correction, approved and so served (by this call or an earlier one); None for no such one.
        A revoked correction stays revoked."""
        with self._connection() as db:
            db.execute("INSERT OR IGNORE INTO approvals (correction_id, author, approved_at) "
                       "SELECT id, ?, ? FROM corrections WHERE id = ? AND review = 1", (author, _now(), correction_id))
        return self.get(correction_id)

    def revoke(self, correction_id: int, author: str) -> Correction | None:
        """The correction, revoked (by this call or an earlier one); None when there is no such correction."""
        with self._connection() as db:
            db.execute("INSERT OR IGNORE INTO revocations (correction_id, author, revoked_at) "
                       "SELECT id, ?, ? FROM corrections WHERE id = ?", (author, _now(), correction_id))
        return self.get(correction_id)

    def get(self, correction_id: int) -> Correction | None:
        rows = self._query(f"{_SELECT} WHERE c.id = ?", (correction_id,))
        return rows[0] if rows else None

    def page(self, offset: int, limit: int, status: Status | None = None) -> tuple[list[Correction], int]:
        """The newest first (of one status, or all), and how many there are in all."""
        return self._query(f"{_SELECT} {_where(status)} ORDER BY c.id DESC LIMIT ? OFFSET ?", (limit, offset)), \
            self.count(status)

    def newest_served(self, film: str) -> int | None:
        """The id of the newest served correction of `film`, if any: the one that counts."""
        with self._connection() as db:
            row = db.execute(f"SELECT MAX(c.id) FROM ({_SELECT} WHERE {_WHERE_STATUS['served']} AND c.film = ?) c",
                             (film,)).fetchone()
        return row[0]

    def served(self, after: int = 0) -> list[Correction]:
        """The served corrections of id above `after`, oldest first (superseded ones too: see `Newest`)."""
        return self._query(f"{_SELECT} WHERE c.id > ? AND {_WHERE_STATUS['served']} ORDER BY c.id", (after,))

    def count(self, status: Status | None = None) -> int:
        """How many corrections there are (of one status, or all)."""
        with self._connection() as db:
            return db.execute(f"SELECT COUNT(*) FROM ({_SELECT} {_where(status)})").fetchone()[0]

    def version(self) -> Version:
        with self._connection() as db:
            row = db.execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM corrections), "
                             "(SELECT COALESCE(MAX(id), 0) FROM revocations), "
                             "(SELECT COALESCE(MAX(id), 0) FROM approvals)").fetchone()
        return Version(*row)

    def changes_since(self, seen: Version) -> Changes:
        """What became served and what was revoked (by any process) since `seen`: cheap when nothing was."""
        now = self.version()
        if now == seen:
            return Changes([], set(), now)
        served = self._query(
            f"{_SELECT} WHERE {_WHERE_STATUS['served']} AND ((c.id > ? AND c.id <= ? AND c.review = 0) OR "
            f"(a.id > ? AND a.id <= ?)) ORDER BY c.id",
            (seen.corrections, now.corrections, seen.approvals, now.approvals))
        with self._connection() as db:
            revoked = {row[0] for row in db.execute(
                "SELECT correction_id FROM revocations WHERE id > ? AND id <= ?", (seen.revocations, now.revocations))}
        return Changes(served, revoked, now)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the corrections store failed ({type(exc).__name__}: {exc})") from exc

    def _query(self, sql: str, params: tuple) -> list[Correction]:
        with self._connection() as db:
            rows = db.execute(sql, params).fetchall()
        return [Correction(id_, text, plot, tuple(json.loads(genres)), title, year, author, created, film,
                           bool(review), approved, approver, revoked, revoker)
                for id_, text, plot, genres, title, year, author, created, film, review, approved, approver,
                revoked, revoker in rows]


def _where(status: Status | None) -> str:
    return f"WHERE {_WHERE_STATUS[status]}" if status else ""


def _film_of(title: str | None, year: int | None, plot: str) -> str:
    return film_key(title, year) if title else plot_key(plot)


def _upgrade(db: sqlite3.Connection) -> None:
    """A store written by the version before: the columns it lacks, and each correction's film as that version
    matched it (by title and year where it had a title, else by its plot)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(corrections)")}
    for column, kind in _COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE corrections ADD COLUMN {column} {kind}")
    for id_, title, year, plot in db.execute("SELECT id, title, year, plot FROM corrections WHERE film IS NULL")\
            .fetchall():
        db.execute("UPDATE corrections SET film = ? WHERE id = ?", (_film_of(title, year, plot), id_))
    db.execute("CREATE INDEX IF NOT EXISTS corrections_film ON corrections(film)")


def store_path(index_dir: Path) -> Path:
    return Path(index_dir) / FILE_NAME


def stored_version(index_dir: Path) -> Version:
    """How far the corrections beside this index go (none: no file yet, which this does not create)."""
    path = store_path(index_dir)
    if not path.is_file():
        return Version()
    store = CorrectionStore(path)
    try:
        return store.version()
    finally:
        store.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
