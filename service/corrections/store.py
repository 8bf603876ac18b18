"""Editors' corrections, kept durably and append-only: in a SQLite file beside the built index (the embedded
default), or in a PostgreSQL database every replica shares (MOVIEGENRE_CORRECTIONS_URL) — one store, the same
meaning in both rooms (database.py).

A correction says: this film (a reference film, named by title and year, or the film a description tells of)
has these genres. Its `film` is decided once, when it is sent (films.film_key, or the description's plot_key),
so the service that serves it and the build that folds it in change the same film. What is served, and which
correction of a film counts, is one rule (served.py), read by every path.

A correction is never changed: sending it, an editor approving it (one sent anonymously waits for that) and
revoking it are each a numbered change (schema.py). Every write is one transaction holding the store's write lock
from its start, so changes are numbered in commit order: its bounds are checked inside it (bounds.py), it is on disk
before it is acknowledged, and its answer is built from what it wrote. Several processes (replicas) write and read
the same store; `changes_since` tells each what the others changed.

Nothing is connected until the store is first used: a database down at start is a store unavailable
(StoreUnavailable at each use) until it is back, and the schema is made or upgraded by the first use that reaches it
(schema.Prepared).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from service.corpus import plot_key
from service.films import film_key
from service.corrections import idempotency, schema
from service.corrections.bounds import Limits, check_queue_room, check_served_room
from service.corrections.database import Database, Transaction, stamp
from service.corrections.review import ReviewQueue, decide
from service.corrections.idempotency import IdempotencyKey
from service.corrections.records import Changes, Correction, Draft, Status, Version, Written
from service.corrections.served import SERVED_SINCE, STATE, STATUS
from service.settings import Settings

FILE_NAME = "corrections.sqlite"
CLIENT_PATTERN = "^c[0-9a-f]{16}$"  # a client as stored and shown (CorrectionStore.pseudonym)


class CorrectionStore:
    def __init__(self, location: Path | str):
        """`location`: a postgresql:// URL, or the path of the SQLite file."""
        self._db = connect(location)
        self._prepared = schema.Prepared(self._db)
        self.kind = self._db.kind
        self.where = self._db.describe()
        self.queue = ReviewQueue(self._prepared)

    @property
    def store_id(self) -> str:
        """Which store this is (a store replaced or started afresh is another): its corrections' numbers are its own."""
        return self._prepared.meta()["store_id"]

    def write(self, draft: Draft, limits: Limits = Limits(), key: IdempotencyKey | None = None) -> Written:
        """Stored and on disk when this returns, within `limits` (bounds.py raises); with a key already used for
        the same request, the correction that request stored (idempotency.py)."""
        film = draft.film or _film_of(draft.title, draft.year, draft.plot)
        moment = datetime.now(UTC)
        with self._prepared.writing() as db:
            first = idempotency.stored(db, key, moment) if key else None
            if first is not None:
                return Written(_as_sent(_one(db, first)), replayed=True)
            if draft.review:
                check_queue_room(db, limits, draft.client)
            else:
                check_served_room(db, limits, film)
            correction = _insert(db, replace(draft, film=film), stamp(moment))
            if key:
                idempotency.record(db, key, correction.id, moment)
        return Written(correction)

    def add(self, text: str, plot: str, genres: list[str], title: str | None, year: int | None, author: str,
            film: str | None = None, review: bool = False) -> Correction:
        """`write` without bounds or key."""
        return self.write(Draft(text, plot, tuple(genres), title, year, author, film, review)).correction

    def replayed(self, key: IdempotencyKey) -> Correction | None:
        """The correction this key already stored, as it was written (KeyReused for another body)."""
        with self._prepared.connected() as db:
            first = idempotency.stored(db, key, datetime.now(UTC))
            return _as_sent(_one(db, first)) if first is not None else None

    def approve(self, correction_id: int, author: str, limits: Limits = Limits()) -> Written | None:
        """A pending correction, approved and so served from now on (OverBound beyond `limits`); one approved
        before, or revoked, as it is (`replayed`: nothing written); None for no such correction."""
        with self._prepared.writing() as db:
            found = _one(db, correction_id)
            if found is None or found.status != "pending":
                return Written(found, replayed=True) if found else None
            check_served_room(db, limits, found.film)
            [seq], at = decide(db, [correction_id], "approved", author)
        return Written(replace(found, approved_at=at, approved_by=author, served_change=seq))

    def revoke(self, correction_id: int, author: str) -> Correction | None:
        """The correction, revoked (by this call or an earlier one); None when there is no such correction."""
        with self._prepared.writing() as db:
            found = _one(db, correction_id)
            if found is None or found.status == "revoked":
                return found
            _, at = decide(db, [correction_id], "revoked", author)
        return replace(found, revoked_at=at, revoked_by=author, served_change=None)

    def get(self, correction_id: int) -> Correction | None:
        with self._prepared.connected() as db:
            return _one(db, correction_id)

    def page(self, offset: int, limit: int, status: Status | None = None, client: str | None = None,
             query: str | None = None) -> tuple[list[Correction], int]:
        """The newest first (of one status and/or one client, or all; with `query`, those whose title or text holds
        it, letters in any case), and how many there are in all."""
        where, params = _where(status, client, query, self._db.holds_any_case)
        with self._prepared.reading() as db:
            rows = _rows(db, f"{STATE} {where} ORDER BY s.id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
            total = db.execute(f"SELECT COUNT(*) FROM ({STATE} {where}) t", params).fetchone()[0]
        return rows, total

    def superseded(self, corrections: list[Correction]) -> set[int]:
        """Of these served corrections, those a correction of the same film served after them supersedes."""
        served = {c.id: c for c in corrections if c.served_change is not None}
        if not served:
            return set()
        films = sorted({c.film for c in served.values()})
        with self._prepared.connected() as db:
            latest = dict(db.execute(f"SELECT t.film, MAX(t.served_change) FROM ({STATE} WHERE s.film IN "
                                     f"({','.join('?' * len(films))})) t GROUP BY t.film", films).fetchall())
        return {id_ for id_, c in served.items() if (latest.get(c.film) or 0) > c.served_change}

    def served(self, after: int = 0) -> list[Correction]:
        """The corrections served by a change after `after`, in the order they were served (superseded ones
        too: see served.Newest)."""
        return self.snapshot(after)[0]

    def snapshot(self, after: int = 0) -> tuple[list[Correction], int]:
        """`served(after)` and the last change it reflects, read together."""
        with self._prepared.reading() as db:
            return _served(db, after), _last_change(db)

    def count(self, status: Status | None = None) -> int:
        """How many corrections there are (of one status, or all)."""
        where, params = _where(status, None)
        with self._prepared.connected() as db:
            return db.execute(f"SELECT COUNT(*) FROM ({STATE} {where}) t", params).fetchone()[0]

    def version(self) -> int:
        """The last change: what a reader that read through it has seen."""
        with self._prepared.connected() as db:
            return _last_change(db)

    def changes_since(self, seen: int) -> Changes:
        """What became served and what was revoked (by any process) after change `seen`: cheap when nothing was."""
        with self._prepared.reading() as db:
            now = _last_change(db)
            if now == seen:
                return Changes([], set(), now)
            revoked = {row[0] for row in db.execute(
                "SELECT correction_id FROM changes WHERE seq > ? AND kind = 'revoked'", (seen,))}
            return Changes(_served(db, seen), revoked, now)

    def pseudonym(self, client: str) -> str:
        """A client (an address, ratelimit.client_of) as stored and shown: keyed by this store's secret, so it
        names the same client in every replica, and the address cannot be read back from it."""
        secret = bytes.fromhex(self._prepared.meta()["client_secret"])
        return "c" + hmac.new(secret, client.encode(), hashlib.sha256).hexdigest()[:16]

    def close(self) -> None:
        self._db.close()


def connect(location: Path | str) -> Database:
    """The database at `location`: a postgresql:// URL, else the path of a SQLite file. Nothing is connected yet:
    the first use connects (a server down at start is a store unavailable, until it is back)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from service.corrections.postgres import PostgresDatabase
        return PostgresDatabase(location)
    from service.corrections.sqlite import SQLiteDatabase
    return SQLiteDatabase(Path(location))


def _rows(db: Transaction, sql: str, params: tuple) -> list[Correction]:
    return [Correction(id_, text, plot, tuple(json.loads(genres)), title, year, author, created, film, bool(review),
                       client, approved, approver, revoked, revoker, served_change)
            for id_, text, plot, genres, title, year, author, created, film, review, client, approved, approver,
            revoked, revoker, served_change in db.execute(sql, params).fetchall()]


def _one(db: Transaction, correction_id: int) -> Correction | None:
    found = _rows(db, f"{STATE} WHERE s.id = ?", (correction_id,))
    return found[0] if found else None


def _served(db: Transaction, after: int) -> list[Correction]:
    return sorted(_rows(db, SERVED_SINCE, (after, after)), key=lambda c: c.served_change)


def _insert(db: Transaction, draft: Draft, created: str) -> Correction:
    """The correction, its `sent` change and (when it waits for an editor) its place in the queue."""
    id_ = db.execute(
        "INSERT INTO sent_corrections (text, plot, genres, title, year, author, created_at, film, review, client) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
        (draft.text, draft.plot, json.dumps(list(draft.genres), ensure_ascii=False), draft.title, draft.year,
         draft.author, created, draft.film, int(draft.review), draft.client)).fetchone()[0]
    seq = db.execute("INSERT INTO changes (correction_id, kind, author, at) VALUES (?, 'sent', ?, ?) RETURNING seq",
                     (id_, draft.author, created)).fetchone()[0]
    if draft.review:
        db.execute("INSERT INTO pending (correction_id, client, created_at) VALUES (?, ?, ?)",
                   (id_, draft.client, created))
    return Correction(id_, draft.text, draft.plot, tuple(draft.genres), draft.title, draft.year, draft.author,
                      created, draft.film, draft.review, draft.client, served_change=None if draft.review else seq)


def _as_sent(correction: Correction) -> Correction:
    """A correction as the request that sent it wrote it (what a retry with its Idempotency-Key is answered)."""
    return replace(correction, approved_at=None, approved_by=None, revoked_at=None, revoked_by=None)


def _last_change(db: Transaction) -> int:
    return db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]


def _where(status: Status | None, client: str | None, query: str | None = None,
           holds: Callable[[str], str] | None = None) -> tuple[str, tuple]:
    """The WHERE clause and its parameters; `query` is matched by the room's `holds_any_case` (% and _ in it are
    matched as themselves)."""
    conditions = ([STATUS[status]] if status else []) + (["s.client = ?"] if client is not None else [])
    params: tuple = (client,) if client is not None else ()
    if query and holds is not None:
        pattern = "%" + query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(f"({holds('s.title')} OR {holds('s.text')})")
        params += (pattern, pattern)
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


def _film_of(title: str | None, year: int | None, plot: str) -> str:
    return film_key(title, year) if title else plot_key(plot)


def store_path(index_dir: Path) -> Path:
    return Path(index_dir) / FILE_NAME


def store_location(settings: Settings, index_dir: Path | None = None) -> Path | str:
    """Where the corrections are kept: MOVIEGENRE_CORRECTIONS_URL, else the SQLite file in the index folder (the
    settings', or `index_dir`)."""
    url = settings.corrections.url
    return url.get_secret_value() if url is not None else store_path(index_dir or settings.index.dir)


def stored_version(location: Path | str) -> Version:
    """How far the corrections at `location` go (none: no SQLite file yet, which this does not create)."""
    if isinstance(location, Path) and not location.is_file():
        return Version()
    store = CorrectionStore(location)
    try:
        return Version(store.store_id, store.version())
    finally:
        store.close()


