"""What the service serves, loaded together, swapped together on reload and closed together once the
requests that were using it have finished."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from service.classifier import Classifier
from service.embedder import Embedder
from service.lookup.lookup import Lookup, make_lookup
from service.settings import Settings


class Runtime:
    def __init__(self, classifier: Classifier, lookup: Lookup):
        self.classifier = classifier
        self.lookup = lookup
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False
        self.closed = False

    @contextmanager
    def in_use(self) -> Iterator[Runtime]:
        """Held by each request for as long as it uses this runtime."""
        with self._lock:
            self._users += 1
        try:
            yield self
        finally:
            with self._lock:
                self._users -= 1
                last = self._retired and self._users == 0
            if last:
                self.close()

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
        self.classifier.close()
        self.lookup.close()


def load_classifier(settings: Settings, embedder: Embedder | None = None) -> Classifier:
    """The index, its trained scorer and the LLM backend; the embedding model is reused when given."""
    from service.heads import load_scorer
    from service.llm import make_backend
    from service.store import load_index

    embedder = embedder or Embedder(settings.embedding_model, settings.embed_batch_size)
    index = load_index(settings.index_dir, embedder.model_name, embedder.dim)
    return Classifier(index, embedder, make_backend(settings), settings, load_scorer(index))


def runtime_for(classifier: Classifier) -> Runtime:
    return Runtime(classifier, make_lookup(classifier.settings, classifier.index))
