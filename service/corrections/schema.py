"""The corrections store's tables, its schema version, and the upgrade of a store an earlier version wrote.

The schema version is SQLite's `user_version`. A store of a version newer than this code knows is refused
(StoreUnavailable, saying which version it found and which this code reads): the service then serves without
corrections and says so, rather than misread it. Versions before 2 did not check it, so version 2 also leaves
`corrections`, `approvals` and `revocations` (the tables those versions read) as views that fail with a message
naming the reason: such a reader's first query errors, and it turns corrections off and logs why, instead of
serving what it would misread (an earlier reader knew no `review` column, and served and folded page corrections
no editor had approved).

The upgrade runs in one `BEGIN IMMEDIATE` transaction that checks the version again once it holds the write lock:
replicas started together take turns, the first upgrades and the others find it done. Version 1 (and the one
before it, which had no `film` and `review` columns) kept corrections, approvals and revocations with ids of their
own: each correction's `sent` change takes its id, so a build of that version that recorded "through correction
T" maps to "through change T"; approvals and revocations follow, in the order they were made. A build of that
version is then taken to have folded in no approval: an approval it did fold is served again beside the index
until the next build (the same labels twice; never a correction missed).
"""
from __future__ import annotations

import secrets
import sqlite3
import uuid

from service.corpus import plot_key
from service.films import film_key

SCHEMA_VERSION = 2
NEWER = "corrections_store_of_schema_2_or_later_needs_a_newer_moviegenre"  # what an older reader's error names

_TABLES = [
    # what was sent, never changed
    """CREATE TABLE sent_corrections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        text TEXT NOT NULL,            -- what was sent
        plot TEXT NOT NULL,            -- what is embedded: the text, or the plot of the reference film it names
        genres TEXT NOT NULL,          -- JSON list, the index's labels
        title TEXT,
        year INTEGER,
        author TEXT NOT NULL,          -- the name of the token that sent it, never the token; 'page' when anonymous
        created_at TEXT NOT NULL,
        film TEXT NOT NULL,            -- the film it corrects (films.film_key, or the description's plot_key)
        review INTEGER NOT NULL,       -- 1: sent anonymously, served only once an editor approves it
        client TEXT                    -- a page correction's client, as a pseudonym (store.pseudonym)
    )""",
    "CREATE INDEX sent_corrections_film ON sent_corrections(film)",
    # every change of what may be served, numbered in the order it was committed
    """CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        correction_id INTEGER NOT NULL REFERENCES sent_corrections(id),
        kind TEXT NOT NULL CHECK (kind IN ('sent', 'approved', 'revoked')),
        author TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (correction_id, kind)
    )""",
    # the corrections waiting for an editor (the queue's own index: a row leaves it when approved or revoked)
    """CREATE TABLE pending (
        correction_id INTEGER PRIMARY KEY REFERENCES sent_corrections(id),
        client TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX pending_client ON pending(client)",
    "CREATE INDEX pending_created ON pending(created_at)",
    # POST /feedback's Idempotency-Key: the correction a key stored, kept KEEP_HOURS (idempotency.py)
    """CREATE TABLE idempotency_keys (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        correction_id INTEGER NOT NULL REFERENCES sent_corrections(id),
        created_at TEXT NOT NULL,
        PRIMARY KEY (principal, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at)",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
]
_SENTINELS = [f"CREATE VIEW {name} AS SELECT {NEWER}() AS id" for name in ("corrections", "approvals", "revocations")]


class NewerStore(Exception):
    def __init__(self, found: int):
        super().__init__(f"this corrections store was written by a newer version of the service (schema {found}); "
                         f"this version reads schema {SCHEMA_VERSION} and earlier: serve it with that version, or "
                         "move the file aside to start an empty one")


def prepare(db: sqlite3.Connection) -> None:
    """The store at this code's schema: created, or upgraded in one transaction; NewerStore for a newer one.
    `db` is in autocommit mode (isolation_level None)."""
    if _version(db) == SCHEMA_VERSION:
        return
    _refuse_newer(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        _refuse_newer(db)
        if _version(db) < SCHEMA_VERSION:
            _create_or_upgrade(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT name, value FROM meta").fetchall())


def _version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _refuse_newer(db: sqlite3.Connection) -> None:
    if _version(db) > SCHEMA_VERSION:
        raise NewerStore(_version(db))


def _create_or_upgrade(db: sqlite3.Connection) -> None:
    old = _tables(db) & {"corrections", "approvals", "revocations"}
    for statement in _TABLES:
        db.execute(statement)
    if "corrections" in old:
        _copy_version_1(db, old)
        for table in sorted(old):
            db.execute(f"DROP TABLE {table}")
    for statement in _SENTINELS:
        db.execute(statement)
    db.executemany("INSERT INTO meta (name, value) VALUES (?, ?)",
                   [("store_id", uuid.uuid4().hex), ("client_secret", secrets.token_hex(32))])
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _copy_version_1(db: sqlite3.Connection, old: set[str]) -> None:
    """Version 1's rows (and those of the version before, without `film` and `review`), as the module says."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(corrections)")}
    film = "film" if "film" in columns else "NULL"
    review = "review" if "review" in columns else "0"
    rows = db.execute(f"SELECT id, text, plot, genres, title, year, author, created_at, {film}, {review} "
                      "FROM corrections ORDER BY id").fetchall()
    for id_, text, plot, genres, title, year, author, created, key, waits in rows:
        key = key or (film_key(title, year) if title else plot_key(plot))
        db.execute("INSERT INTO sent_corrections (id, text, plot, genres, title, year, author, created_at, film, "
                   "review) VALUES (?,?,?,?,?,?,?,?,?,?)", (id_, text, plot, genres, title, year, author, created,
                                                            key, waits))
        db.execute("INSERT INTO changes (seq, correction_id, kind, author, at) VALUES (?, ?, 'sent', ?, ?)",
                   (id_, id_, author, created))
    later = []
    for table, kind, at in (("approvals", "approved", "approved_at"), ("revocations", "revoked", "revoked_at")):
        if table in old:
            later += [(when, kind, id_, correction, author) for id_, correction, author, when in db.execute(
                f"SELECT id, correction_id, author, {at} FROM {table}")]
    for when, kind, _, correction, author in sorted(later):
        db.execute("INSERT INTO changes (correction_id, kind, author, at) VALUES (?, ?, ?, ?)",
                   (correction, kind, author, when))
    db.execute("INSERT INTO pending (correction_id, client, created_at) SELECT s.id, NULL, s.created_at "
               "FROM sent_corrections s WHERE s.review = 1 AND NOT EXISTS (SELECT 1 FROM changes c "
               "WHERE c.correction_id = s.id AND c.kind IN ('approved', 'revoked'))")
