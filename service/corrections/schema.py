"""The corrections store's tables, its schema version, and the upgrade of a store an earlier version wrote — the same
in both rooms (database.py), which keep the version where each can (SQLite's `user_version`, PostgreSQL's `meta`).

A store of a version newer than this code knows is refused (StoreUnavailable, saying which version it found and which
this code reads): the service then serves without corrections and says so, rather than misread it. The upgrade runs
in one transaction under the store's write lock and checks the version again once it holds it: replicas started
together take turns, the first upgrades and the others find it done.

Version 3 records the title normalisation its film keys were made with (`film_keys`, films.KEYS_VERSION): a store
keyed by an earlier one is re-keyed in the same transaction, every correction's `film` made again from its title and
year (films.film_key) or its plot (corpus.plot_key), as it was made when it was sent — so a correction keeps
superseding, shadowing and folding into its film exactly as before. A store keyed by a later normalisation is
refused like a newer schema. SQLite stores of versions 0-2 are upgraded too (legacy.py).

Nothing is connected until the store is first used (`Prepared`): the schema is made or upgraded by the first use that
reaches the database."""
from __future__ import annotations

import secrets
import threading
import uuid
from contextlib import AbstractContextManager

from service.corpus import plot_key
from service.corrections import legacy
from service.corrections.database import Database, StoreUnavailable, Transaction
from service.films import KEYS_VERSION, film_key

SCHEMA_VERSION = 3

_TABLES = [
    # what was sent, never changed (but for `film`, re-keyed when the title normalisation changes)
    """CREATE TABLE sent_corrections (
        id {serial},
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
    # every change of what may be served, numbered in the order it was committed (under the write lock)
    """CREATE TABLE changes (
        seq {serial},
        correction_id BIGINT NOT NULL REFERENCES sent_corrections(id),
        kind TEXT NOT NULL CHECK (kind IN ('sent', 'approved', 'revoked')),
        author TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (correction_id, kind)
    )""",
    # the corrections waiting for an editor (the queue's own index: a row leaves it when approved or revoked)
    """CREATE TABLE pending (
        correction_id BIGINT PRIMARY KEY REFERENCES sent_corrections(id),
        client TEXT,
        created_at TEXT NOT NULL
    ){keyed}""",
    "CREATE INDEX pending_client ON pending(client)",
    "CREATE INDEX pending_created ON pending(created_at)",
    # POST /feedback's Idempotency-Key: the correction a key stored, kept KEEP_HOURS (idempotency.py)
    """CREATE TABLE idempotency_keys (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        correction_id BIGINT NOT NULL REFERENCES sent_corrections(id),
        created_at TEXT NOT NULL,
        PRIMARY KEY (principal, key)
    ){keyed}""",
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at)",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL){keyed}",
]


class NewerStore(Exception):
    def __init__(self, found: str):
        super().__init__(f"this corrections store was written by a newer version of the service ({found}); this "
                         f"version reads schema {SCHEMA_VERSION} and earlier, titles keyed by normalisation "
                         f"{KEYS_VERSION} and earlier: serve it with that version, or move it aside to start an empty "
                         "one")


class Prepared:
    """A database whose schema is made or upgraded by the first use that reaches it: a store of a newer version is
    a store unavailable (StoreUnavailable at each use)."""

    def __init__(self, database: Database):
        self.database = database
        self._meta: dict[str, str] | None = None
        self._preparing = threading.Lock()

    def meta(self) -> dict[str, str]:
        """The store's meta, the schema made or upgraded by the first use that reaches the database."""
        if self._meta is None:
            with self._preparing:
                if self._meta is None:
                    try:
                        self._meta = prepare(self.database)
                    except NewerStore as exc:
                        raise StoreUnavailable(str(exc)) from exc
        return self._meta

    def writing(self) -> AbstractContextManager[Transaction]:
        self.meta()
        return self.database.writing()

    def reading(self) -> AbstractContextManager[Transaction]:
        self.meta()
        return self.database.reading()

    def connected(self) -> AbstractContextManager[Transaction]:
        self.meta()
        return self.database.connected()


def prepare(database: Database) -> dict[str, str]:
    """The store at this code's schema and film keys (created, or upgraded in one transaction); its `meta`.
    NewerStore for a store of a newer version."""
    with database.connected() as tx:
        if database.schema_version(tx) == SCHEMA_VERSION and _keys_version(tx) == KEYS_VERSION:
            return meta(tx)
    with database.writing() as tx:
        database.before_schema(tx)
        version = database.schema_version(tx)
        _refuse_newer(version, tx)
        if version < 2:
            _create(database, tx)
        if _keys_version(tx) < KEYS_VERSION:
            _rekey(tx)
        database.set_schema_version(tx, SCHEMA_VERSION)
        return meta(tx)


def meta(tx: Transaction) -> dict[str, str]:
    return dict(tx.execute("SELECT name, value FROM meta").fetchall())


def _create(database: Database, tx: Transaction) -> None:
    """The tables, with what an earlier SQLite store held copied in (legacy.py)."""
    old = legacy.tables_before_version_2(database, tx)
    for statement in _TABLES:
        tx.execute(statement.format(serial=database.SERIAL, keyed=database.KEYED))
    legacy.copy_before_version_2(database, tx, old)
    tx.executemany("INSERT INTO meta (name, value) VALUES (?, ?)",
                   [("store_id", uuid.uuid4().hex), ("client_secret", secrets.token_hex(32)), ("film_keys", "1")])


def _keys_version(tx: Transaction) -> int:
    """The title normalisation the store's film keys were made with (1: every store before version 3). Read only
    where the meta table is known to exist (a failed statement would end a PostgreSQL transaction)."""
    row = tx.execute("SELECT value FROM meta WHERE name = 'film_keys'").fetchone()
    return int(row[0]) if row else 1


def _rekey(tx: Transaction) -> None:
    """Every correction's film made again as it was made when it was sent, with today's normalisation."""
    rows = tx.execute("SELECT id, title, year, plot, film FROM sent_corrections").fetchall()
    changed = [(key, id_) for id_, title, year, plot, film in rows
               if (key := film_key(title, year) if title else plot_key(plot)) != film]
    tx.executemany("UPDATE sent_corrections SET film = ? WHERE id = ?", changed)
    tx.execute("DELETE FROM meta WHERE name = 'film_keys'")
    tx.execute("INSERT INTO meta (name, value) VALUES ('film_keys', ?)", (str(KEYS_VERSION),))


def _refuse_newer(version: int, tx: Transaction) -> None:
    if version > SCHEMA_VERSION:
        raise NewerStore(f"schema {version}")
    if version >= 2 and _keys_version(tx) > KEYS_VERSION:
        raise NewerStore(f"titles keyed by normalisation {_keys_version(tx)}")
