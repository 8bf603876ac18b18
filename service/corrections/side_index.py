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

Requests read a snapshot that no change alters for them, and a change costs what it changes (snapshot.py).
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from service.corpus import Film
from service.corrections.fold import folded_through
from service.corrections.served import Newest
from service.corrections.records import Correction
from service.corrections.snapshot import Snapshot
from service.corrections.database import StoreUnavailable
from service.corrections.store import CorrectionStore
from service.embedding import Embedder
from service.store import Neighbour

log = logging.getLogger("moviegenre")
MIN_POLL_S = 0.01  # the poll never spins
CLOSE_WAIT_S = 1.0  # how long closing waits for a poll in progress


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
        self._snapshot = Snapshot.empty(embedders)
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
        return self._snapshot.beside(route, vectors, found, k)

    def close(self) -> None:
        """Stop the poll (a read it is waiting on, a database down say, ends on its own within its timeout) and close
        the store."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=CLOSE_WAIT_S)
        self.store.close()

    def corrected(self, film: Film) -> Correction | None:
        """The current correction of this film, if any (a lookup's answer for a title)."""
        return self._snapshot.corrected(film)

    def _change(self, served: list[Correction], revoked: set[int]) -> None:
        """A new snapshot where `served` count (unless superseded) and `revoked` no longer do: the work is that
        of the films they touch. All of it or none of it: a change whose embedding fails leaves the snapshot and the
        newest of each film as they were, for the next poll to make again."""
        before = self._newest.copy()
        try:
            snapshot = self._snapshot.changed(self._newest.update(served, revoked), self._newest, self.embedders)
        except BaseException:
            self._newest = before
            raise
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self.generation += 1
