"""The review queue: the page's corrections waiting for an editor, as the editors see it (who sent how many, since
when) and empty it (rejecting by client or by age, in one transaction); and an editor's decision on corrections
(approved, revoked), which every such path records the same way (`decide`)."""
from __future__ import annotations

from typing import Literal

from service.corrections.database import Transaction, now
from service.corrections.schema import Prepared


class ReviewQueue:
    def __init__(self, db: Prepared):
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
        conditions = [(c, v) for c, v in (("client = ?", client), ("created_at <= ?", sent_before)) if v is not None]
        where = " AND ".join(c for c, _ in conditions) or "1 = 1"
        with self._db.writing() as db:
            ids = [row[0] for row in db.execute(f"SELECT correction_id FROM pending WHERE {where} "
                                                "ORDER BY correction_id", [v for _, v in conditions])]
            decide(db, ids, "revoked", author)
        return ids


def decide(db: Transaction, ids: list[int], kind: Literal["approved", "revoked"],
           author: str) -> tuple[list[int], str]:
    """An editor's decision on these corrections, in the caller's transaction: a change each (its seq, in order),
    and none of them waits for review any more. Returns the changes' seqs and when they were made."""
    at = now()
    seqs = [db.execute("INSERT INTO changes (correction_id, kind, author, at) VALUES (?, ?, ?, ?) RETURNING seq",
                       (id_, kind, author, at)).fetchone()[0] for id_ in ids]
    db.executemany("DELETE FROM pending WHERE correction_id = ?", [(id_,) for id_ in ids])
    return seqs, at
