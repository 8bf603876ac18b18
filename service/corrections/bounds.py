"""The bounds a write keeps, checked inside its own transaction, so replicas writing at once cannot pass one
together: the films served beside the index, the review queue, and each client's share of the queue."""
from __future__ import annotations

from dataclasses import dataclass

from service.corrections.database import Transaction
from service.corrections.served import SERVED_SINCE


@dataclass(frozen=True)
class Limits:
    through: int = 0                 # the index's watermark: what became served after that change is beside it
    max_films: int | None = None     # films served beside the index at most (MOVIEGENRE_MAX_CORRECTIONS)
    max_pending: int | None = None   # corrections waiting for an editor at most (MOVIEGENRE_MAX_PENDING_FEEDBACK)
    client_share: int | None = None  # of those, one client's at most (MOVIEGENRE_PENDING_SHARE of the queue)


class OverBound(Exception):
    """Serving this correction would make one film more than the side index may hold."""

    def __init__(self, films: int, bound: int):
        super().__init__(f"{films} films are served corrected beside the index, its bound")
        self.films, self.bound = films, bound


class QueueFull(Exception):
    def __init__(self, waiting: int):
        super().__init__(f"{waiting} corrections are waiting for an editor's review, the most kept")
        self.waiting = waiting


class ShareFull(Exception):
    def __init__(self, waiting: int):
        super().__init__(f"{waiting} corrections from this client are waiting for an editor's review, its share "
                         "of the queue")
        self.waiting = waiting


def check_served_room(db: Transaction, limits: Limits, film: str) -> None:
    """Room to serve a correction of `film` beside the index: a film already served corrected there is no new
    one (its newer correction supersedes the other)."""
    if limits.max_films is None:
        return
    films, has_it = db.execute("SELECT COUNT(DISTINCT t.film), COALESCE(MAX(CASE WHEN t.film = ? THEN 1 ELSE 0 END), "
                               f"0) FROM ({SERVED_SINCE}) t", (film, limits.through, limits.through)).fetchone()
    if not has_it and films >= limits.max_films:
        raise OverBound(films, limits.max_films)


def check_queue_room(db: Transaction, limits: Limits, client: str | None) -> None:
    """Room in the review queue for one more correction from `client`."""
    if limits.client_share is not None and client is not None:
        mine = db.execute("SELECT COUNT(*) FROM pending WHERE client = ?", (client,)).fetchone()[0]
        if mine >= limits.client_share:
            raise ShareFull(mine)
    if limits.max_pending is not None:
        waiting = db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        if waiting >= limits.max_pending:
            raise QueueFull(waiting)
