"""SQLite stores written before the schema version (versions 0 and 1), upgraded to this one's tables.

Version 1 (and the one before it, which had no `film` and `review` columns) kept corrections, approvals and
revocations with ids of their own: each correction's `sent` change takes its id, so a build of that version that
recorded "through correction T" maps to "through change T"; approvals and revocations follow, in the order they were
made. A build of that version is then taken to have folded in no approval: an approval it did fold is served again
beside the index until the next build (the same labels twice; never a correction missed).

Those versions did not check a schema version, so SQLite stores also leave `corrections`, `approvals` and
`revocations` (the tables they read) as views that fail with a message naming the reason: such a reader's first query
errors, and it turns corrections off and logs why, instead of serving what it would misread (an earlier reader knew
no `review` column, and served and folded page corrections no editor had approved). PostgreSQL stores have no such
history."""
from __future__ import annotations

from service.corpus import plot_key
from service.corrections.database import Database, Transaction
from service.films import film_key

OLD_TABLES = {"corrections", "approvals", "revocations"}
NEWER = "corrections_store_of_schema_2_or_later_needs_a_newer_moviegenre"  # what an older reader's error names
_SENTINELS = [f"CREATE VIEW {name} AS SELECT {NEWER}() AS id" for name in sorted(OLD_TABLES)]


def tables_before_version_2(database: Database, tx: Transaction) -> set[str]:
    """The tables of an earlier version this store holds (none in a new store)."""
    if database.kind != "sqlite":
        return set()
    return {row[0] for row in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} & OLD_TABLES


def copy_before_version_2(database: Database, tx: Transaction, old: set[str]) -> None:
    """The earlier version's rows into the new tables, its tables dropped, and the sentinels in their place."""
    if database.kind != "sqlite":
        return
    if "corrections" in old:
        _copy_version_1(tx, old)
        for table in sorted(old):
            tx.execute(f"DROP TABLE {table}")
    for statement in _SENTINELS:
        tx.execute(statement)


def _copy_version_1(tx: Transaction, old: set[str]) -> None:
    columns = {row[1] for row in tx.execute("PRAGMA table_info(corrections)")}
    film = "film" if "film" in columns else "NULL"
    review = "review" if "review" in columns else "0"
    rows = tx.execute(f"SELECT id, text, plot, genres, title, year, author, created_at, {film}, {review} "
                      "FROM corrections ORDER BY id").fetchall()
    for id_, text, plot, genres, title, year, author, created, key, waits in rows:
        key = key or (film_key(title, year) if title else plot_key(plot))
        tx.execute("INSERT INTO sent_corrections (id, text, plot, genres, title, year, author, created_at, film, "
                   "review) VALUES (?,?,?,?,?,?,?,?,?,?)", (id_, text, plot, genres, title, year, author, created,
                                                            key, waits))
        tx.execute("INSERT INTO changes (seq, correction_id, kind, author, at) VALUES (?, ?, 'sent', ?, ?)",
                   (id_, id_, author, created))
    later = []
    for table, kind, at in (("approvals", "approved", "approved_at"), ("revocations", "revoked", "revoked_at")):
        if table in old:
            later += [(when, kind, id_, correction, author) for id_, correction, author, when in tx.execute(
                f"SELECT id, correction_id, author, {at} FROM {table}")]
    for when, kind, _, correction, author in sorted(later):
        tx.execute("INSERT INTO changes (correction_id, kind, author, at) VALUES (?, ?, ?, ?)",
                   (correction, kind, author, when))
    tx.execute("INSERT INTO pending (correction_id, client, created_at) SELECT s.id, NULL, s.created_at "
               "FROM sent_corrections s WHERE s.review = 1 AND NOT EXISTS (SELECT 1 FROM changes c "
               "WHERE c.correction_id = s.id AND c.kind IN ('approved', 'revoked'))")
