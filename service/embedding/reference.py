"""The fp32 reference: the same model and pooling as the exported ONNX one, before quantisation, in torch.
For evaluation (int8 against fp32) and tests; the service never imports it."""
from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from service.embedding.base import Embedder, Role
from service.embedding.export import EXPORT_VERSION
from service.embedding.models import ModelSpec
from service.embedding.tokenizing import tokenizer_from

class TorchEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, batch_size: int = 32):
        import torch

        from service.embedding.export import _pooled, load_source

        model, tokenizer_files = load_source(spec)
        self.spec, self.model_name, self.dim = spec, spec.name, int(model.config.hidden_size)
        self.tokenizer = tokenizer_from(tokenizer_files, spec.max_length)
        self.model, self.batch_size = _pooled(model), batch_size
        self._torch = torch

    def embed(self, texts: Sequence[str], role: Role = "passage", progress: bool = False) -> np.ndarray:
        prefix = getattr(self.spec, f"{role}_prefix")
        rows = []
        with self._torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                encodings = self.tokenizer.encode([prefix + t for t in texts[start:start + self.batch_size]])
                longest = max(map(len, encodings))
                ids = self._torch.tensor([e + [self.tokenizer.pad_id] * (longest - len(e)) for e in encodings])
                mask = self._torch.tensor([[1] * len(e) + [0] * (longest - len(e)) for e in encodings])
                rows.append(self.model(ids, mask).numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)

    @property
    def cache_name(self) -> str:
        return f"{self.model_name}-fp32-export{EXPORT_VERSION}"
