"""The corrections made since the index was built, embedded by every index part and searched beside it.

A correction is one more labelled film: searched with the reference, it is a neighbour like any other, and a
description close enough to it is recognised as the corrected film (recognition.py). A correction that names a
reference film (by title and year) also shadows that film: the film's own neighbour carries the corrected labels.

The store is the truth, memory a copy: every `poll_s` seconds a request first reads what other processes added
or revoked (a few microseconds when nothing changed), so replicas on one index folder agree within seconds.
A build folds the corrections into the reference (fold.py) and records the last one it took: those are then
the index's own films, and this side index starts with the ones after it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import faiss
import numpy as np

from service.corpus import Film, normalise_title, years_agree
from service.corrections.store import Correction, CorrectionStore
from service.embedding import Embedder
from service.store import Neighbour


@dataclass(frozen=True)
class CorrectedFilm(Film):
    """A film as an editor corrected it: a correction's own text, or a reference film with corrected labels."""
    correction_id: int = 0


@dataclass(frozen=True)
class _Snapshot:
    """What requests read, replaced whole on every change (never mutated)."""
    corrections: tuple[Correction, ...] = ()
    films: tuple[CorrectedFilm, ...] = ()
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # route → one row per correction
    indexes: dict[str, faiss.Index] = field(default_factory=dict)  # route → those rows, searchable
    shadows: dict[str, tuple[Correction, ...]] = field(default_factory=dict)  # title key → its corrections


class Corrections:
    def __init__(self, store: CorrectionStore, embedders: dict[str, Embedder], through: int = 0,
                 poll_s: float = 1.0):
        self.store = store
        self.embedders = embedders
        self.through = through  # the last correction the built index already holds
        self.poll_s = poll_s    # 0: a fixed snapshot (a file run must not change its answers midway)
        self._lock = threading.Lock()
        self._seen = store.version()
        self._snapshot = self._made(store.active(after=through))
        self._polled = time.monotonic()
        self.generation = 0  # moves with every change served, this process's own or another's (lookup caches)

    def __len__(self) -> int:
        return len(self._snapshot.corrections)

    def add(self, text: str, plot: str, genres: list[str], title: str | None, year: int | None,
            author: str) -> Correction:
        """Stored on disk, then served at once by this process."""
        correction = self.store.add(text, plot, genres, title, year, author)
        self._apply([correction], set())
        return correction

    def revoke(self, correction_id: int, author: str) -> Correction | None:
        correction = self.store.revoke(correction_id, author)
        if correction is not None:
            self._apply([], {correction_id})
        return correction

    def refresh(self) -> None:
        """Take what other processes changed, at most every `poll_s` seconds; a request that finds another
        thread refreshing goes on with the current snapshot."""
        if not self.poll_s or time.monotonic() - self._polled < self.poll_s or not self._lock.acquire(blocking=False):
            return
        try:
            self._polled = time.monotonic()
            changes = self.store.changes_since(self._seen)
            if changes.added or changes.revoked:
                self._replace([c for c in changes.added if c.id > self.through], changes.revoked)
            self._seen = changes.version
        finally:
            self._lock.release()

    def beside(self, route: str, vectors: np.ndarray, found: list[list[Neighbour]], k: int) -> list[list[Neighbour]]:
        """Each query's neighbours with the corrections among them (the closest `k` of both), the films a
        correction names carrying its labels."""
        snapshot = self._snapshot
        if not snapshot.corrections:
            return found
        similarities, positions = snapshot.indexes[route].search(np.ascontiguousarray(vectors, np.float32),
                                                                 min(k, len(snapshot.films)))
        return [_merged(snapshot, neighbours, row_s, row_i, k)
                for neighbours, row_s, row_i in zip(found, similarities, positions)]

    def close(self) -> None:
        self.store.close()

    def corrected(self, film: Film) -> Correction | None:
        """The latest correction naming this film, if any (a lookup's answer for a title)."""
        return _naming(film, self._snapshot.shadows)

    def _apply(self, added: list[Correction], revoked: set[int]) -> None:
        with self._lock:
            self._replace(added, revoked)

    def _replace(self, added: list[Correction], revoked: set[int]) -> None:
        current = {c.id: c for c in self._snapshot.corrections}
        for correction in added:
            current.setdefault(correction.id, correction)
        for correction_id in revoked:
            current.pop(correction_id, None)
        self._snapshot = self._made(list(current.values()), reuse=self._snapshot)
        self.generation += 1

    def _made(self, corrections: Sequence[Correction], reuse: _Snapshot | None = None) -> _Snapshot:
        """The snapshot of these corrections: the vectors of those already embedded are reused."""
        corrections = tuple(sorted(corrections, key=lambda c: c.id))
        known = {c.id: i for i, c in enumerate(reuse.corrections)} if reuse else {}
        vectors = {}
        for route, embedder in self.embedders.items():
            new = [c.plot for c in corrections if c.id not in known]
            embedded = iter(embedder.embed(new, role="passage")) if new else iter(())
            rows = [reuse.vectors[route][known[c.id]] if c.id in known else next(embedded) for c in corrections]
            vectors[route] = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dim), np.float32)
        shadows: dict[str, tuple[Correction, ...]] = {}
        for correction in corrections:
            if correction.title:
                key = _title_key(correction.title)
                shadows[key] = (correction,) + shadows.get(key, ())  # the latest first
        films = tuple(CorrectedFilm(c.title or f"Correction {c.id}", c.year, c.plot, c.genres, "correction",
                                    correction_id=c.id) for c in corrections)
        indexes = {}
        for route, rows in vectors.items():
            indexes[route] = faiss.IndexFlatIP(rows.shape[1])
            indexes[route].add(rows)
        return _Snapshot(corrections, films, vectors, indexes, shadows)


@lru_cache(maxsize=65536)
def _title_key(title: str) -> str:
    return normalise_title(title)


def _naming(film: Film, shadows: dict[str, tuple[Correction, ...]]) -> Correction | None:
    if not shadows:
        return None
    for correction in shadows.get(_title_key(film.title), ()):
        if years_agree(correction.year, film.year):
            return correction
    return None


def _merged(snapshot: _Snapshot, neighbours: list[Neighbour], similarities: np.ndarray, positions: np.ndarray,
            k: int) -> list[Neighbour]:
    """The index's neighbours (those a correction names carrying its labels) and the corrections closer than the
    last of them, the closest `k`. Most queries find no correction that close: their neighbours stay as found."""
    taken = set()
    if snapshot.shadows:
        neighbours = [_shadowed(n, snapshot.shadows) if _title_key(n.film.title) in snapshot.shadows else n
                      for n in neighbours]
        taken = {n.film.correction_id for n in neighbours if isinstance(n.film, CorrectedFilm)}
    floor = neighbours[-1].similarity if len(neighbours) >= k else -np.inf
    side = [Neighbour(snapshot.films[i], float(s)) for s, i in zip(similarities, positions)
            if i >= 0 and s > floor and snapshot.films[i].correction_id not in taken]
    return sorted(neighbours + side, key=lambda n: -n.similarity)[:k] if side else neighbours


def _shadowed(neighbour: Neighbour, shadows: dict[str, tuple[Correction, ...]]) -> Neighbour:
    correction = _naming(neighbour.film, shadows)
    if correction is None:
        return neighbour
    film = neighbour.film
    own = {f.name: getattr(film, f.name) for f in fields(Film)}
    corrected = CorrectedFilm(**own | {"genres": correction.genres, "source": "correction"},
                              correction_id=correction.id)
    return replace(neighbour, film=corrected)
