"""The corrections made since the index was built, embedded by every index part and searched beside it.

A correction is one more labelled film: searched with the reference, it is a neighbour like any other, and a
description close enough to it is recognised as the corrected film (recognition.py). A correction of a
reference film (its `film` is that film's key) also shadows the film: the film's own neighbour carries the
corrected labels. Only the current correction of each film counts (served.Newest): one served later supersedes it.

The store is the truth, memory a copy: every `poll_s` seconds a thread of its own reads what other processes added,
approved or revoked (one short query when nothing changed), so replicas agree within seconds; requests never wait
on the store. A store that does not answer (a database down, even since the start) leaves the copy as it was, says
why in every answer (`problem`), and is read again at each poll until it answers.
What is served is one rule (served.py): a build folds in what was served through its last change and records that
change; this side index serves what became served after it, in every process and after a restart.

Requests read a snapshot that no change alters for them. A change costs what it changes, not what is stored: new
rows are appended past the rows any snapshot reads, and a superseded or revoked row is zeroed and left out; once
more than half the rows are such, the rows that count are copied into new buffers.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import faiss
import numpy as np

from service.corpus import Film
from service.films import film_key
from service.corrections.fold import folded_through
from service.corrections.served import Newest
from service.corrections.records import Correction
from service.corrections.database import StoreUnavailable
from service.corrections.store import CorrectionStore
from service.embedding import Embedder
from service.store import Neighbour

log = logging.getLogger("moviegenre")
MIN_POLL_S = 0.01  # the poll never spins
CLOSE_WAIT_S = 1.0  # how long closing waits for a poll in progress


@dataclass(frozen=True)
class CorrectedFilm(Film):
    """A film as an editor corrected it: a correction's own text, or a reference film with corrected labels."""
    correction_id: int = 0


@dataclass(frozen=True)
class _Snapshot:
    """What requests read: rows [0, rows) of buffers that only ever grow past it, and which film each row serves.
    A row that no longer counts (superseded, revoked) is left out of `by_film` and its vectors are zeroed, so it is
    nobody's neighbour."""
    rows: int
    films: list[CorrectedFilm]                  # one per row (appended to, never changed)
    corrections: list[Correction]               # one per row
    vectors: dict[str, np.ndarray]              # route → a buffer of at least `rows` rows
    by_film: dict[str, int]                     # film → the row of its current correction
    served_ids: frozenset[int]                  # the corrections of those rows

    @classmethod
    def empty(cls, embedders: dict[str, Embedder]) -> _Snapshot:
        return cls(0, [], [], {route: np.zeros((0, e.dim), np.float32) for route, e in embedders.items()}, {},
                   frozenset())


class Corrections:
    def __init__(self, store: CorrectionStore, embedders: dict[str, Embedder], through: int = 0,
                 poll_s: float = 1.0, manifest: dict | None = None):
        """`through`: the last change the built index holds; with `manifest` (the index's), what its build recorded
        of this store (fold.folded_through), read once the store first answers."""
        self.store = store
        self.embedders = embedders
        self.poll_s = poll_s    # 0: a fixed snapshot (a file run must not change its answers midway)
        self._lock = threading.Lock()     # the snapshot and the last change read, changed together
        self._reading = threading.Lock()  # one read of the store at a time
        self.generation = 0  # moves with every change served, this process's own or another's (lookup caches)
        self.problem: str | None = None  # why the last read of the store failed, until one succeeds
        self._newest = Newest()
        self._snapshot = _Snapshot.empty(embedders)
        self._manifest = manifest
        self.through = through  # the last change the built index holds (served.py)
        self._seen: int | None = None  # the last change read; None until the store was first read
        self._stop = threading.Event()
        self.refresh()
        self._poller = threading.Thread(target=self._poll, name="corrections-poll", daemon=True) if poll_s else None
        if self._poller is not None:
            self._poller.start()

    def __len__(self) -> int:
        """The films served corrected beside the index."""
        return len(self._snapshot.by_film)

    @property
    def loaded(self) -> bool:
        """Whether the store was read at least once (a store down since the start serves nothing beside the index)."""
        return self._seen is not None

    def add(self, text: str, plot: str, genres: list[str], title: str | None, year: int | None, author: str,
            film: str | None = None, review: bool = False) -> Correction:
        """Stored on disk, then served at once by this process (unless it waits for an editor's review)."""
        correction = self.store.add(text, plot, genres, title, year, author, film, review)
        self.serve(correction)
        return correction

    def approve(self, correction_id: int, author: str) -> Correction | None:
        written = self.store.approve(correction_id, author)
        if written is not None:
            self.serve(written.correction)
        return written.correction if written else None

    def revoke(self, correction_id: int, author: str) -> Correction | None:
        correction = self.store.revoke(correction_id, author)
        if correction is not None:
            self.withdraw({correction_id})
        return correction

    def serve(self, correction: Correction) -> None:
        """A correction just written, served at once by this process (the others read it at their next poll):
        its text is embedded here, the CPU work of a change. A change this process has already read (served, or
        revoked since by another process) is left to what it read: a late serve never undoes a revocation."""
        with self._lock:
            change = correction.served_change
            if change is not None and self._seen is not None and change > max(self._seen, self.through):
                self._change([correction], set())

    def withdraw(self, revoked: set[int]) -> None:
        """Corrections just revoked, no longer served by this process."""
        if revoked:
            with self._lock:
                self._change([], revoked)

    def refresh(self) -> str | None:
        """Read what other processes changed since the last read (the first read: every correction served after the
        index was built); the poll calls it every `poll_s` seconds. A store that fails to answer leaves the snapshot
        as it was (read again at the next poll): returns why, until a read succeeds."""
        with self._reading:
            try:
                if self._seen is None:
                    self._first_read()
                else:
                    changes = self.store.changes_since(self._seen)
                    with self._lock:
                        if changes.served or changes.revoked:
                            self._change([c for c in changes.served if c.served_change > self.through],
                                         changes.revoked)
                        self._seen = changes.version
                if self.problem is not None:
                    log.info("the corrections store at %s answers again", self.store.where)
                self.problem = None
            except StoreUnavailable as exc:
                if self.problem is None:
                    log.warning("%s: %s", "answering with the corrections read before" if self.loaded else
                                "answering without corrections until the store answers", exc)
                self.problem = f"{exc}: " + ("answered with the corrections read before" if self.loaded
                                             else "answered without corrections")
        return self.problem

    def _first_read(self) -> None:
        through = self.through if self._manifest is None else folded_through(self._manifest, self.store.store_id)
        served, seen = self.store.snapshot(through)
        if seen < through:  # a store that lost changes the build read (restored from a backup, say)
            log.warning("the corrections store ends at change %d, before the %d the index was built through: "
                        "serving every correction it holds beside the index", seen, through)
            through, served = 0, self.store.served()
        with self._lock:
            self.through = through
            self._change(served, set())
            self._seen = seen

    def _poll(self) -> None:
        while not self._stop.wait(max(self.poll_s, MIN_POLL_S)):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the poll outlives any one failure (an embedding error, say)
                log.exception("reading the corrections store failed")

    def beside(self, route: str, vectors: np.ndarray, found: list[list[Neighbour]], k: int) -> list[list[Neighbour]]:
        """Each query's neighbours with the current corrections among them (the closest `k` of both), the films a
        correction names carrying its labels."""
        snapshot = self._snapshot
        if not snapshot.by_film:
            return found
        similarities, positions = faiss.knn(np.ascontiguousarray(vectors, np.float32),
                                            snapshot.vectors[route][:snapshot.rows], min(k, snapshot.rows),
                                            metric=faiss.METRIC_INNER_PRODUCT)
        return [_merged(snapshot, neighbours, row_s, row_i, k)
                for neighbours, row_s, row_i in zip(found, similarities, positions)]

    def close(self) -> None:
        """Stop the poll (a read it is waiting on, a database down say, ends on its own within its timeout) and close
        the store."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=CLOSE_WAIT_S)
        self.store.close()

    def corrected(self, film: Film) -> Correction | None:
        """The current correction of this film, if any (a lookup's answer for a title)."""
        snapshot = self._snapshot
        row = snapshot.by_film.get(_key(film.title, film.year))
        return snapshot.corrections[row] if row is not None else None

    def _change(self, served: list[Correction], revoked: set[int]) -> None:
        """A new snapshot where `served` count (unless superseded) and `revoked` no longer do: the work is that
        of the films they touch. All of it or none of it: a change whose embedding fails leaves the snapshot and the
        newest of each film as they were, for the next poll to make again."""
        before = self._newest.copy()
        try:
            self._changed(served, revoked)
        except BaseException:
            self._newest = before
            raise

    def _changed(self, served: list[Correction], revoked: set[int]) -> None:
        old = self._snapshot
        by_film, new, dropped = dict(old.by_film), [], []
        for film in self._newest.update(served, revoked):
            wanted, row = self._newest.of(film), by_film.get(film)
            if row is not None and (wanted is None or old.corrections[row].id != wanted.id):
                dropped.append(by_film.pop(film))
            if wanted is not None and film not in by_film:
                new.append(wanted)
        if not new and not dropped:
            return
        base = _Snapshot(old.rows, old.films, old.corrections, old.vectors, by_film,
                         old.served_ids - {old.corrections[row].id for row in dropped})
        if old.rows - len(by_film) > max(len(by_film), 64):
            base = _compacted(base)
        else:
            for route, buffer in base.vectors.items():
                buffer[dropped] = 0.0  # nobody's neighbour from now on
        self._snapshot = self._appended(base, new)
        self.generation += 1

    def _appended(self, base: _Snapshot, new: list[Correction]) -> _Snapshot:
        """`base` with `new` appended: rows past every earlier snapshot's own, so their readers never see them."""
        if not new:
            return base
        rows = base.rows + len(new)
        embedded = {route: self.embedders[route].embed([c.plot for c in new], role="passage")
                    for route in base.vectors}  # first: an embedding that fails changes nothing
        base.films[base.rows:] = [_film(c) for c in new]  # past `rows`: what a failed change left, replaced
        base.corrections[base.rows:] = new
        vectors = {}
        for route, buffer in base.vectors.items():
            if len(buffer) < rows:
                grown = np.zeros((max(64, 2 * rows), buffer.shape[1]), np.float32)
                grown[:base.rows] = buffer[:base.rows]
                buffer = grown
            buffer[base.rows:rows] = embedded[route]
            vectors[route] = buffer
        by_film = base.by_film | {c.film: base.rows + i for i, c in enumerate(new)}
        return _Snapshot(rows, base.films, base.corrections, vectors, by_film,
                         base.served_ids | {c.id for c in new})


def _compacted(snapshot: _Snapshot) -> _Snapshot:
    """The rows that still count alone, in new buffers (earlier snapshots' readers keep theirs)."""
    rows = sorted(snapshot.by_film.values())
    moved = {row: i for i, row in enumerate(rows)}
    vectors = {route: np.ascontiguousarray(buffer[rows], np.float32) for route, buffer in snapshot.vectors.items()}
    return _Snapshot(len(rows), [snapshot.films[r] for r in rows], [snapshot.corrections[r] for r in rows], vectors,
                     {film: moved[row] for film, row in snapshot.by_film.items()}, snapshot.served_ids)


@lru_cache(maxsize=65536)
def _key(title: str, year: int | None) -> str:
    return film_key(title, year)


def _film(correction: Correction) -> CorrectedFilm:
    return CorrectedFilm(correction.title or f"Correction {correction.id}", correction.year, correction.plot,
                         correction.genres, "correction", correction_id=correction.id)


def _merged(snapshot: _Snapshot, neighbours: list[Neighbour], similarities: np.ndarray, positions: np.ndarray,
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


def _shadowed(neighbour: Neighbour, snapshot: _Snapshot) -> Neighbour:
    row = snapshot.by_film.get(_key(neighbour.film.title, neighbour.film.year))
    if row is None:
        return neighbour
    correction = snapshot.corrections[row]
    own = {f.name: getattr(neighbour.film, f.name) for f in fields(Film)}
    corrected = CorrectedFilm(**own | {"genres": correction.genres, "source": "correction"},
                              correction_id=correction.id)
    return replace(neighbour, film=corrected)
