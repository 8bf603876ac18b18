"""Embeddings cached on disk by model, role and text, so a rebuild embeds only what is new."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from service.atomic import atomic_file
from service.embedding.base import Embedder, Role

# texts embedded between two saves of a long embedding (a build's part: minutes): one stopped resumes from the last
# save, and gives the same vectors, which depend on nothing but the text and the model
CHECKPOINT_EVERY = 1000


def text_key(text: str, role: Role = "passage") -> str:
    return hashlib.sha1(f"{role}\0{text}".encode("utf-8")).hexdigest()


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

    def embed(self, embedder: Embedder, texts: Sequence[str], role: Role = "passage",
              progress: bool = False) -> tuple[np.ndarray, int]:
        """Vectors for all texts, computing only the missing ones. Returns (vectors, how many were computed)."""
        keys = [text_key(t, role) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self._vectors}.items())
        chunks = [missing[start:start + CHECKPOINT_EVERY] for start in range(0, len(missing), CHECKPOINT_EVERY)]
        for n, chunk in enumerate(_tracked(chunks, embedder, len(missing)) if progress else chunks):
            fresh = embedder.embed([t for _, t in chunk], role, progress=progress and len(chunks) == 1)
            self._vectors.update(zip((k for k, _ in chunk), fresh))
            if n < len(chunks) - 1:
                self.save()
        vectors = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, embedder.dim), np.float32)
        return vectors.astype(np.float32, copy=False), len(missing)

    def save(self, keep: Iterable[tuple[str, Role]] | None = None) -> None:
        """Write the cache, limited to the (text, role) pairs in `keep` when given so it does not grow forever."""
        keys = None if keep is None else [text_key(text, role) for text, role in keep]
        entries = self._vectors if keys is None else {k: self._vectors[k] for k in keys if k in self._vectors}
        with atomic_file(self.path, "wb") as f:
            np.savez(f, keys=np.array(list(entries), dtype="U40"),
                     vectors=np.stack(list(entries.values())) if entries else np.zeros((0, 0), np.float32))


def _tracked(chunks: list, embedder: Embedder, texts: int) -> Iterable:
    """The chunks of a long embedding under one progress bar (the embedder shows its own for a single chunk)."""
    if len(chunks) < 2:
        return chunks
    from rich.progress import track

    return track(chunks, description=f"embedding {texts} texts with {embedder.cache_name}, {CHECKPOINT_EVERY} a step")
