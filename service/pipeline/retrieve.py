"""The retrieve stage: the descriptions embedded by their route's model, and the nearest reference plots of each
found in its index part (FAISS), with the editors' corrections since the build searched beside them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.corrections import Corrections
from service.pipeline.routes import Route
from service.store import Neighbour


@dataclass
class Retrieved:
    vectors: np.ndarray
    neighbours: list[list[Neighbour]]  # each description's, the closest first


def retrieve(route: Route, texts: list[str], top_k: int, corrections: Corrections | None) -> Retrieved:
    # a description is compared with plots, text of its own kind: e5 wants the same prefix on both sides of such a
    # symmetric comparison (measured on the dev sets: German 0.617 → 0.643, French 0.392 → 0.401 micro-F1 with
    # "passage: " rather than "query: ")
    vectors = route.embedder.embed(texts, role="passage")
    neighbours = route.index.search(vectors, top_k)
    if corrections is not None:
        neighbours = corrections.beside(route.name, vectors, neighbours, top_k)
    return Retrieved(vectors, neighbours)
