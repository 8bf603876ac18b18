"""The review queue: the page's corrections waiting for an editor, as the editors see it (who sent how many, since
when) and empty it (rejecting by client or by age, in one transaction)."""
from __future__ import annotations

from service.corrections.database import Database, now


class ReviewQueue:
    def __init__(self, db: Database):
        self._db = db

    def waiting(self) -> int:
        """How many corrections wait for an editor (what the queue's bound counts)."""
        with self._db.connected() as db:
            return db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def clients(self, limit: int) -> list[tuple[str | None, int, str]]:
        """The clients with corrections waiting, the most first: (client, how many, the oldest sent)."""
        with self._db.connected() as db:
            return db.execute("SELECT client, COUNT(*), MIN(created_at) FROM pending GROUP BY client "
                              "ORDER BY COUNT(*) DESC, client LIMIT ?", (limit,)).fetchall()

    def reject(self, author: str, client: str | None = None, sent_before: str | None = None) -> list[int]:
        """Revoke every pending correction of `client` and/or sent by `sent_before` (ISO), in one transaction:
        the ids rejected."""
        where = " AND ".join(c for c, v in (("client = :client", client), ("created_at <= :before", sent_before))
                             if v is not None)
        with self._db.writing() as db:
            ids = [row[0] for row in db.execute(f"SELECT correction_id FROM pending WHERE {where or '1'} "
                                                "ORDER BY correction_id", {"client": client, "before": sent_before})]
            at = now()
            db.executemany("INSERT INTO changes (correction_id, kind, author, at) VALUES (?, 'revoked', ?, ?)",
                           [(id_, author, at) for id_ in ids])
            db.executemany("DELETE FROM pending WHERE correction_id = ?", [(id_,) for id_ in ids])
        return ids
