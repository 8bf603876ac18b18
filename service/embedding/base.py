"""The one interface every embedder implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

Role = Literal["query", "passage"]  # e5-style models embed a search text and a stored text differently


class Embedder(ABC):
    model_name: str
    dim: int

    @property
    def cache_name(self) -> str:
        """What its vectors are cached under (cache.py): changes when the same text would embed differently."""
        return self.model_name

    @abstractmethod
    def embed(self, texts: Sequence[str], role: Role = "passage", progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
