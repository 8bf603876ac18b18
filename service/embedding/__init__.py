"""Sentence embeddings: models exported once to int8 ONNX (export.py) and served torch-free (onnx.py),
an fp32 reference in torch (reference.py), and an on-disk cache (cache.py)."""
from __future__ import annotations

from pathlib import Path

from service.embedding.base import Embedder, Role
from service.embedding.cache import EmbeddingCache
from service.embedding.models import MODELS, spec_for
from service.embedding.onnx import ModelMissing, OnnxEmbedder


def load_embedder(models_dir: Path, name: str, workers: int = 2) -> OnnxEmbedder:
    """The exported model; raises ModelMissing (run `make build-index`) when it was never exported."""
    spec_for(name)
    return OnnxEmbedder(Path(models_dir) / name, workers)


__all__ = ["MODELS", "Embedder", "EmbeddingCache", "ModelMissing", "OnnxEmbedder", "Role", "load_embedder",
           "spec_for"]
