"""Serving embeddings without torch: an exported int8 ONNX model (export.py) run by ONNX Runtime, its
input made by the model's own tokenizer (tokenizing.py). Pooling and normalisation are inside the graph.

Every text runs on its own: dynamic quantisation scales the activations of a whole input tensor, so in a
padded batch a text's vector would depend on its batch-mates (cosine 0.988 to itself alone, measured).
One text per run gives the same vector for the same text, in /classify, /classify/batch and the build,
and is no slower here: no padding, and `workers` runs in parallel, one core each (measured on 2 cores:
MiniLM 119 plots/s against 70 for padded batches on 2 threads, e5 51 against 25).

One thread per run also for a text alone: a two-thread session ran MiniLM alone in 2.6 ms against 3.9,
yet made the service slower (`/classify` p50 12.0-13.6 against 9.2-10.2 ms, one A/B run of 2 × 2
alternations): its spinning threads take the core the event loop and the language detection need."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from service.embedding.base import Embedder, Role
from service.embedding.export import META_FILE, MODEL_FILE
from service.embedding.tokenizing import load_tokenizer
from service.memory import read_as_used

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A run grows ONNX Runtime's memory arena to what its input needed, and the arena keeps it: attention grows with the
# square of the length, and four 10,000-character texts (cut to 256 / 512 tokens) left a served process 90 MB larger
# for good. Ordinary descriptions are shorter (99% of the reference's plots: under 190 MiniLM / 215 e5 tokens) and
# reuse the arena as it is; a longer input's run gives back what it added (to the C heap, which the service hands
# back to the system when idle: api/admission.py). Shrinking after every run instead cost more: the freed memory
# scattered over the threads' heaps (a served process 100 MB larger after the same load).
LONG_INPUT_TOKENS = 192


class ModelMissing(FileNotFoundError):
    pass


class OnnxEmbedder(Embedder):
    def __init__(self, folder: Path, workers: int = 2):
        import onnxruntime

        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise ModelMissing(f"no exported embedding model in {folder}: run `make build-index`")
        self.meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.model_name, self.dim = self.meta["name"], int(self.meta["dim"])
        self.tokenizer = load_tokenizer(folder, int(self.meta["max_length"]))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options,
                                                    providers=["CPUExecutionProvider"])
        if self.meta.get("weights"):  # mapped by ONNX Runtime: only the rows texts use become resident
            read_as_used(folder / self.meta["weights"])
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"embed-{self.model_name}") if workers > 1 else None

    def embed(self, texts: Sequence[str], role: Role = "passage", progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.meta[f"{role}_prefix"]
        encodings = self.tokenizer.encode([prefix + text for text in texts])
        rows = map(self._run, encodings) if self._pool is None or len(texts) == 1 else \
            self._pool.map(self._run, encodings)
        if progress and len(texts) > 100:
            from rich.progress import track

            rows = track(rows, total=len(texts), description=f"embedding with {self.model_name}")
        return np.stack(list(rows))

    @property
    def cache_name(self) -> str:
        return f"{self.model_name}-export{self.meta.get('export_version', 1)}"

    def _run(self, ids: list[int]) -> np.ndarray:
        feed = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        return self.session.run(None, feed, self._shrink if len(ids) > LONG_INPUT_TOKENS else None)[0][0]
