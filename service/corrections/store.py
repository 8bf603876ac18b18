"""Editors' corrections, kept durably and append-only in one SQLite file beside the built index.

A correction says: this text (a description, or a title the reference knows) has these genres. It is never
changed: revoking it appends a revocation. Every write is committed in WAL mode with `synchronous=FULL`, so a
correction is on disk before it is acknowledged, and a crash mid-write loses at most the unacknowledged one.
Several processes (replicas on one index folder) write and read the same file; `changes_since` tells each
what the others added or revoked.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FILE_NAME = "corrections.sqlite"
BUSY_TIMEOUT_S = 5.0  # another process writing holds the lock for milliseconds; a stuck one is an error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,            -- what the editor sent
    plot TEXT NOT NULL,            -- what is embedded: the text, or the plot of the reference film it names
    genres TEXT NOT NULL,          -- JSON list, the index's labels
    title TEXT,
    year INTEGER,
    author TEXT NOT NULL,          -- the name of the token that sent it, never the token
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    correction_id INTEGER NOT NULL UNIQUE REFERENCES corrections(id),
    author TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);
"""


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
    revoked_at: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class Version:
    """How far a reader has read: the last correction and the last revocation it saw."""
    corrections: int = 0
    revocations: int = 0


@dataclass(frozen=True)
class Changes:
    added: list[Correction]
    revoked: set[int]
    version: Version


_SELECT = ("SELECT c.id, c.text, c.plot, c.genres, c.title, c.year, c.author, c.created_at, r.revoked_at, r.author "
           "FROM corrections c LEFT JOIN revocations r ON r.correction_id = c.id")


class CorrectionStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by the request threads
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
        with self._lock:
            self._db.executescript(_SCHEMA)

    def add(self, text: str, plot: str, genres: list[str], title: str | None, year: int | None,
            author: str) -> Correction:
        """Stored and on disk when this returns."""
        created = _now()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO corrections (text, plot, genres, title, year, author, created_at) VALUES (?,?,?,?,?,?,?)",
                (text, plot, json.dumps(list(genres), ensure_ascii=False), title, year, author, created))
        return Correction(cursor.lastrowid, text, plot, tuple(genres), title, year, author, created)

    def revoke(self, correction_id: int, author: str) -> Correction | None:
        """The correction, revoked (by this call or an earlier one); None when there is no such correction."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO revocations (correction_id, author, revoked_at) "
                             "SELECT id, ?, ? FROM corrections WHERE id = ?", (author, _now(), correction_id))
        return self.get(correction_id)

    def get(self, correction_id: int) -> Correction | None:
        rows = self._query(f"{_SELECT} WHERE c.id = ?", (correction_id,))
        return rows[0] if rows else None

    def page(self, offset: int, limit: int) -> tuple[list[Correction], int]:
        """The newest first, and how many there are in all."""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM corrections").fetchone()[0]
        return self._query(f"{_SELECT} ORDER BY c.id DESC LIMIT ? OFFSET ?", (limit, offset)), total

    def active(self, after: int = 0) -> list[Correction]:
        """The corrections not revoked, of id above `after`, oldest first."""
        return self._query(f"{_SELECT} WHERE c.id > ? AND r.id IS NULL ORDER BY c.id", (after,))

    def version(self) -> Version:
        with self._lock:
            row = self._db.execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM corrections), "
                                   "(SELECT COALESCE(MAX(id), 0) FROM revocations)").fetchone()
        return Version(*row)

    def changes_since(self, seen: Version) -> Changes:
        """What was added and revoked (by any process) since `seen`: cheap when nothing was."""
        now = self.version()
        if now == seen:
            return Changes([], set(), now)
        added = self._query(f"{_SELECT} WHERE c.id > ? AND c.id <= ? ORDER BY c.id", (seen.corrections,
                                                                                      now.corrections))
        with self._lock:
            revoked = {row[0] for row in self._db.execute(
                "SELECT correction_id FROM revocations WHERE id > ? AND id <= ?", (seen.revocations, now.revocations))}
        return Changes(added, revoked, now)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, params: tuple) -> list[Correction]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [Correction(id_, text, plot, tuple(json.loads(genres)), title, year, author, created, revoked, by)
                for id_, text, plot, genres, title, year, author, created, revoked, by in rows]


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
