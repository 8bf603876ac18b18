"""The retrieve stage: the descriptions embedded by their route's model, and the nearest reference plots of each
found in its index part (FAISS), with the editors' corrections since the build searched beside them."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from service.corrections import Corrections
from service.pipeline.routes import Route
from service.store import Neighbour, ReferenceIndex

SEARCH_SPLIT_MIN = 8  # queries per thread below which splitting a search costs more than it saves
# threads for the parts of split searches, shared by every classifier of the process (a retired one may still
# finish requests in flight)
_SEARCHERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="search")


@dataclass
class Retrieved:
    vectors: np.ndarray
    neighbours: list[list[Neighbour]]  # each description's, the closest first


def retrieve(route: Route, texts: list[str], top_k: int, workers: int,
             corrections: Corrections | None) -> Retrieved:
    # a description is compared with plots, text of its own kind: e5 wants the same prefix on both sides of such a
    # symmetric comparison (measured on the dev sets: German 0.617 → 0.643, French 0.392 → 0.401 micro-F1 with
    # "passage: " rather than "query: ")
    vectors = route.embedder.embed(texts, role="passage")
    neighbours = search(route.index, vectors, top_k, workers)
    if corrections is not None:
        neighbours = corrections.beside(route.name, vectors, neighbours, top_k)
    return Retrieved(vectors, neighbours)


def search(index: ReferenceIndex, vectors: np.ndarray, top_k: int, workers: int) -> list[list[Neighbour]]:
    """A batch's queries split across the cores (FAISS releases the GIL while it searches): 32 queries take 6 ms
    instead of 12 on 2 cores. One query runs alone."""
    parts = min(workers, len(vectors) // SEARCH_SPLIT_MIN)
    if parts < 2:
        return index.search(vectors, top_k)
    chunks = np.array_split(vectors, parts)
    return [row for found in _SEARCHERS.map(lambda chunk: index.search(chunk, top_k), chunks) for row in found]
