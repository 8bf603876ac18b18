"""What requests read of the side index (side_index.py): a snapshot of the current corrections, which no change
alters for them, and the neighbours a query finds among them.

A change costs what it changes, not what is stored: new rows are appended past the rows any snapshot reads, and a
superseded or revoked row is zeroed and left out; once more than half the rows are such, the rows that count are
copied into new buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

import faiss
import numpy as np

from service.corpus import Film
from service.corrections.records import Correction
from service.corrections.served import Newest
from service.embedding import Embedder
from service.films import film_key
from service.store import Neighbour


@dataclass(frozen=True)
class CorrectedFilm(Film):
    """A film as an editor corrected it: a correction's own text, or a reference film with corrected labels."""
    correction_id: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Rows [0, rows) of buffers that only ever grow past it, and which film each row serves. A row that no longer
    counts (superseded, revoked) is left out of `by_film` and its vectors are zeroed, so it is nobody's neighbour."""
    rows: int
    films: list[CorrectedFilm]                  # one per row (appended to, never changed)
    corrections: list[Correction]               # one per row
    vectors: dict[str, np.ndarray]              # route → a buffer of at least `rows` rows
    by_film: dict[str, int]                     # film → the row of its current correction
    served_ids: frozenset[int]                  # the corrections of those rows

    @classmethod
    def empty(cls, embedders: dict[str, Embedder]) -> Snapshot:
        return cls(0, [], [], {route: np.zeros((0, e.dim), np.float32) for route, e in embedders.items()}, {},
                   frozenset())

    def beside(self, route: str, vectors: np.ndarray, found: list[list[Neighbour]], k: int) -> list[list[Neighbour]]:
        """Corrections.beside, on this snapshot."""
        if not self.by_film:
            return found
        similarities, positions = faiss.knn(np.ascontiguousarray(vectors, np.float32),
                                            self.vectors[route][:self.rows], min(k, self.rows),
                                            metric=faiss.METRIC_INNER_PRODUCT)
        return [_merged(self, neighbours, row_s, row_i, k)
                for neighbours, row_s, row_i in zip(found, similarities, positions)]

    def corrected(self, film: Film) -> Correction | None:
        """The current correction of this film, if any."""
        row = self.by_film.get(_key(film.title, film.year))
        return self.corrections[row] if row is not None else None

    def changed(self, films: set[str], newest: Newest, embedders: dict[str, Embedder]) -> Snapshot:
        """The snapshot where each of `films` is served by its newest correction (or no more): the work is that of
        those films; this one when nothing changes for them. An embedding that fails raises: the caller keeps this
        snapshot."""
        by_film, new, dropped = dict(self.by_film), [], []
        for film in films:
            wanted, row = newest.of(film), by_film.get(film)
            if row is not None and (wanted is None or self.corrections[row].id != wanted.id):
                dropped.append(by_film.pop(film))
            if wanted is not None and film not in by_film:
                new.append(wanted)
        if not new and not dropped:
            return self
        # first: an embedding that fails changes nothing (the zeroing below writes the buffers this snapshot reads)
        embedded = {route: embedders[route].embed([c.plot for c in new], role="passage")
                    for route in self.vectors} if new else {}
        base = Snapshot(self.rows, self.films, self.corrections, self.vectors, by_film,
                        self.served_ids - {self.corrections[row].id for row in dropped})
        if self.rows - len(by_film) > max(len(by_film), 64):
            base = base._compacted()
        else:
            for route, buffer in base.vectors.items():
                buffer[dropped] = 0.0  # nobody's neighbour from now on
        return base._appended(new, embedded)

    def _appended(self, new: list[Correction], embedded: dict[str, np.ndarray]) -> Snapshot:
        """This with `new` appended (`embedded`: their vectors by route): rows past every earlier snapshot's own, so
        their readers never see them."""
        if not new:
            return self
        rows = self.rows + len(new)
        self.films[self.rows:] = [_film(c) for c in new]  # past `rows`: what a failed change left, replaced
        self.corrections[self.rows:] = new
        vectors = {}
        for route, buffer in self.vectors.items():
            if len(buffer) < rows:
                grown = np.zeros((max(64, 2 * rows), buffer.shape[1]), np.float32)
                grown[:self.rows] = buffer[:self.rows]
                buffer = grown
            buffer[self.rows:rows] = embedded[route]
            vectors[route] = buffer
        by_film = self.by_film | {c.film: self.rows + i for i, c in enumerate(new)}
        return Snapshot(rows, self.films, self.corrections, vectors, by_film, self.served_ids | {c.id for c in new})

    def _compacted(self) -> Snapshot:
        """The rows that still count alone, in new buffers (earlier snapshots' readers keep theirs)."""
        rows = sorted(self.by_film.values())
        moved = {row: i for i, row in enumerate(rows)}
        vectors = {route: np.ascontiguousarray(buffer[rows], np.float32) for route, buffer in self.vectors.items()}
        return Snapshot(len(rows), [self.films[r] for r in rows], [self.corrections[r] for r in rows], vectors,
                        {film: moved[row] for film, row in self.by_film.items()}, self.served_ids)


@lru_cache(maxsize=65536)
def _key(title: str, year: int | None) -> str:
    return film_key(title, year)


def _film(correction: Correction) -> CorrectedFilm:
    return CorrectedFilm(correction.title or f"Correction {correction.id}", correction.year, correction.plot,
                         correction.genres, "correction", correction_id=correction.id)


def _merged(snapshot: Snapshot, neighbours: list[Neighbour], similarities: np.ndarray, positions: np.ndarray,
            k: int) -> list[Neighbour]:
    """The index's neighbours (a film with a current correction carrying its labels) and the current corrections
    closer than the last of them, the closest `k`. Most queries find no correction that close: their neighbours
    stay as found."""
    neighbours = [_shadowed(n, snapshot) for n in neighbours]
    taken = {n.film.correction_id for n in neighbours if isinstance(n.film, CorrectedFilm)}
    floor = neighbours[-1].similarity if len(neighbours) >= k else -np.inf
    side = [Neighbour(snapshot.films[i], s) for s, i in zip(similarities.tolist(), positions.tolist())
            if i >= 0 and s > floor and (film := snapshot.films[i]).correction_id in snapshot.served_ids
            and film.correction_id not in taken]
    return sorted(neighbours + side, key=lambda n: -n.similarity)[:k] if side else neighbours


def _shadowed(neighbour: Neighbour, snapshot: Snapshot) -> Neighbour:
    row = snapshot.by_film.get(_key(neighbour.film.title, neighbour.film.year))
    if row is None:
        return neighbour
    correction = snapshot.corrections[row]
    own = {f.name: getattr(neighbour.film, f.name) for f in fields(Film)}
    corrected = CorrectedFilm(**own | {"genres": correction.genres, "source": "correction"},
                              correction_id=correction.id)
    return replace(neighbour, film=corrected)
