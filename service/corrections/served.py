"""What is served: one rule, read by every path (the side index of every process, at start and at every poll; the
bound on what it holds; the build that folds corrections in).

A correction is served from the change that served it until a change revokes it. An editor's correction is
served by its own `sent` change; a page's waits (pending) until an editor's `approved` change serves it. Changes
are numbered in the order they were committed (schema.py), so "served through change N" means the same in every
process: a build records the last change it read (`through_change`), and the side index serves what became
served after it. Of the served corrections of one film, the one served last counts (`Newest`): a later one
supersedes it, and revoking the later one brings it back.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable

from service.corrections.records import Correction

# One correction with its changes: `s` what was sent, `sc` its sending, `a` its approval, `r` its revocation.
STATE = ("SELECT s.id, s.text, s.plot, s.genres, s.title, s.year, s.author, s.created_at, s.film, s.review, "
         "s.client, a.at, a.author, r.at, r.author, {served_change} AS served_change FROM sent_corrections s "
         "JOIN changes sc ON sc.correction_id = s.id AND sc.kind = 'sent' "
         "LEFT JOIN changes a ON a.correction_id = s.id AND a.kind = 'approved' "
         "LEFT JOIN changes r ON r.correction_id = s.id AND r.kind = 'revoked'")
# The rule: the change that serves the correction now, NULL when none does (pending or revoked).
SERVED_CHANGE = "(CASE WHEN r.seq IS NULL THEN (CASE WHEN s.review = 0 THEN sc.seq ELSE a.seq END) END)"
STATE = STATE.format(served_change=SERVED_CHANGE)
STATUS = {"served": f"{SERVED_CHANGE} IS NOT NULL", "revoked": "r.seq IS NOT NULL",
          "pending": "r.seq IS NULL AND s.review = 1 AND a.seq IS NULL"}
# Served corrections whose serving change is after N, given twice: (N, N) (the first condition only finds them
# fast: a correction served by a change after N has some change after N).
SERVED_SINCE = (f"{STATE} WHERE s.id IN (SELECT correction_id FROM changes WHERE seq > ?) "
                f"AND {SERVED_CHANGE} > ?")


class Newest:
    """Of served corrections, the one served last of each film: the one that counts. Kept up to date change by
    change; the side index serves it and a build folds it in (fold.py), so both change the same films alike."""

    def __init__(self, corrections: Iterable[Correction] = ()):
        self._of_film: dict[str, list[Correction]] = {}  # film → its served corrections, by serving change
        self._film_of: dict[int, str] = {}
        self.update(corrections, set())

    def update(self, served: Iterable[Correction], revoked: set[int]) -> set[str]:
        """The films whose newest correction may have changed."""
        touched = set()
        for correction in sorted(served, key=_order):
            if correction.id not in self._film_of:
                bisect.insort(self._of_film.setdefault(correction.film, []), correction, key=_order)
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

    def copy(self) -> Newest:
        """A copy that the changes of this one do not touch (a change that failed is undone by going back to it)."""
        copied = Newest()
        copied._of_film = {film: list(corrections) for film, corrections in self._of_film.items()}
        copied._film_of = dict(self._film_of)
        return copied

    def of(self, film: str) -> Correction | None:
        corrections = self._of_film.get(film)
        return corrections[-1] if corrections else None

    def all(self) -> list[Correction]:
        """The newest correction of every film, in the order they were served."""
        return sorted((corrections[-1] for corrections in self._of_film.values()), key=_order)


def _order(correction: Correction) -> tuple[int, int]:
    return correction.served_change or 0, correction.id
