"""What the service serves, loaded together, swapped together on reload and closed together once the
requests that were using it have finished."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from service.classifier import Classifier
from service.loading import load_classifier
from service.lookup.lookup import Lookup, make_lookup
from service.store import read_manifest


class Retired(RuntimeError):
    """The runtime was replaced: the request takes the one serving now."""


class Runtime:
    def __init__(self, classifier: Classifier, lookup: Lookup):
        self.classifier = classifier
        self.lookup = lookup
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False
        self.closed = False
        self.llm_taken_over = False  # the next runtime serves with this one's LLM gate: closing leaves it open

    @contextmanager
    def in_use(self) -> Iterator[Runtime]:
        """Held by each request for as long as it uses this runtime. Raises Retired once it was replaced, so a
        request that read it just before a reload never runs on a runtime being closed."""
        with self._lock:
            if self._retired:
                raise Retired
            self._users += 1
        try:
            yield self
        finally:
            with self._lock:
                self._users -= 1
                last = self._retired and self._users == 0
            if last:
                # the last request may end on the event loop (an async dependency), and closing waits on the LLM
                # client's loop and the corrections store: never on the loop that serves every request
                threading.Thread(target=self.close, name="close-retired-runtime").start()

    def retire(self) -> None:
        """No new request will get this runtime: close it now, or when the last one in flight finishes."""
        with self._lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.classifier.close(llm=not self.llm_taken_over)
        self.lookup.close()


@contextmanager
def serving_runtime(state) -> Iterator[Runtime | None]:
    """The runtime serving now (None when there is none), held until the block ends. A reload points the state
    at the new runtime before it retires the old one, so a second look finds the new one."""
    for _ in range(100):
        runtime = state.runtime
        if runtime is None:
            yield None
            return
        try:
            with runtime.in_use():
                yield runtime
                return
        except Retired:
            continue
    raise RuntimeError("the runtime kept being replaced")


def runtime_for(classifier: Classifier) -> Runtime:
    return Runtime(classifier, make_lookup(classifier.settings, classifier.index, classifier.corrections))


_reload_lock = threading.Lock()


def reload_runtime(state) -> Runtime:
    """Load the index `make build-index` last wrote into a new runtime and serve it (`state` is the app's
    state). Requests in flight finish on the old runtime, which is closed after them. Raises
    IndexLoadError when the new index cannot be used; the old runtime then keeps serving."""
    with _reload_lock:
        old = state.runtime
        reuse = old.classifier if old else None
        classifier = load_classifier(state.settings, reuse.embedders() if reuse else None,
                                     reuse.detector if reuse else None, reuse.llm if reuse else None)
        classifier.warm_up()
        state.runtime, state.unavailable = runtime_for(classifier), None
        state.loaded = state.runtime
    if old is not None:
        old.llm_taken_over = classifier.llm is not None and classifier.llm is old.classifier.llm
        old.retire()
    return state.runtime


PICKUP_POLL_S = 5.0  # how often a service without its multilingual part looks for it
log = logging.getLogger("moviegenre")


async def pick_up_multilingual(app) -> None:
    """While the multilingual part is still being built, watch for the build that adds it and serve it
    as soon as it is current: a fresh machine answers English first, then every language, no restart.
    A failed attempt (a damaged model file, a half-copied build) is logged, shown in /health, and tried
    again at the next poll: the watcher only ends when the part is served or the service stops."""
    settings = app.state.settings
    while app.state.runtime is None or app.state.runtime.classifier.multilingual_status == "building":
        await asyncio.sleep(PICKUP_POLL_S)
        try:
            manifest = await asyncio.to_thread(read_manifest, settings.index.dir)
            if manifest and "multilingual" in manifest.get("parts", {}):
                await asyncio.to_thread(reload_runtime, app.state)
                app.state.multilingual_error = None
                log.info("multilingual retrieval is ready: now serving every language")
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the next poll tries again
            app.state.multilingual_error = f"{type(exc).__name__}: {exc}"
            log.warning("the multilingual part was not taken (trying again in %g s): %s", PICKUP_POLL_S, exc)
