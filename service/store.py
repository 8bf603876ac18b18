"""The reference index on disk: FAISS inner-product vectors plus the films' metadata.

Layout of the index folder:
  manifest.json        the current build: counts, model, dim, fingerprint, and the folder holding it
  builds/<id>/         vectors.faiss and films.jsonl of one complete build
  cache/               embedding cache (kept across builds)
A build is written to builds/.tmp-<id>, renamed to builds/<id> when complete, and becomes current when
manifest.json is replaced by rename: a build killed at any point leaves the previous index loadable.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from service.corpus import Film
from service.genres import VOCABULARY

faiss.omp_set_num_threads(1)  # measured: a flat search of one query is slower with 2 threads

FORMAT_VERSION = 1


class IndexLoadError(RuntimeError):
    """The index cannot be used; the message says what to run."""


@dataclass(frozen=True)
class Neighbour:
    film: Film
    similarity: float


class ReferenceIndex:
    def __init__(self, films: Sequence[Film], vectors: np.ndarray | None = None, manifest: dict | None = None,
                 faiss_index: faiss.Index | None = None, build_dir: Path | None = None):
        if faiss_index is None:
            faiss_index = faiss.IndexFlatIP(vectors.shape[1])
            faiss_index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        if faiss_index.ntotal != len(films):
            raise ValueError(f"{faiss_index.ntotal} vectors for {len(films)} films")
        self.films = list(films)
        self.faiss = faiss_index
        self.manifest = manifest or {}
        self.build_dir = build_dir  # the build folder it was loaded from, with its other artifacts; None in memory

    @property
    def dim(self) -> int:
        return self.faiss.d

    def __len__(self) -> int:
        return len(self.films)

    def search(self, queries: np.ndarray, k: int) -> list[list[Neighbour]]:
        k = min(k, len(self.films))
        scores, ids = self.faiss.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return [[Neighbour(self.films[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(scores, ids)]

    def vectors(self) -> np.ndarray:
        return self.faiss.reconstruct_n(0, self.faiss.ntotal)

    def without(self, drop: set[int]) -> ReferenceIndex:
        """An in-memory copy without the films at the given positions (evaluation excludes its own titles)."""
        keep = [i for i in range(len(self.films)) if i not in drop]
        return ReferenceIndex([self.films[i] for i in keep], self.vectors()[keep], self.manifest)


# --- writing -----------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_index(index_dir: Path, films: Sequence[Film], vectors: np.ndarray, model: str,
                fingerprint: str, summary: dict, artifacts: dict[str, Callable[[Path], None]] | None = None,
                extra: dict | None = None) -> dict:
    """Write a complete build beside the current one, then make it current with one rename.
    `artifacts` maps further file names of the build to functions that write them."""
    index_dir = Path(index_dir)
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{build_id}-", dir=builds))
    tmp.chmod(0o755)
    manifest = {
        "format_version": FORMAT_VERSION,
        "films": len(films),
        "model": model,
        "dim": int(vectors.shape[1]),
        "corpus_fingerprint": fingerprint,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vocabulary": list(VOCABULARY),
        "build": f"builds/{build_id}",
        "summary": summary,
        **(extra or {}),
    }
    faiss.write_index(ReferenceIndex(films, vectors).faiss, str(tmp / "vectors.faiss"))
    with (tmp / "films.jsonl").open("w", encoding="utf-8") as f:
        for film in films:
            f.write(json.dumps(film.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    for name, write in (artifacts or {}).items():
        write(tmp / name)
    _write_json(tmp / "manifest.json", manifest)
    os.rename(tmp, builds / build_id)
    _write_json(index_dir / "manifest.json", manifest)
    _remove_stale_builds(builds, keep=build_id)
    return manifest


def _remove_stale_builds(builds: Path, keep: str) -> None:
    for path in builds.iterdir():
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


# --- reading -----------------------------------------------------------------------------------

def read_manifest(index_dir: Path) -> dict | None:
    path = Path(index_dir) / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexLoadError(f"{path} is unreadable ({exc}): run `make build-index`") from exc


def load_index(index_dir: Path, model: str, dim: int | None = None) -> ReferenceIndex:
    """The current index, checked against the embedding model the service uses."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexLoadError(f"no index in {index_dir}: run `make build-index`")
    if manifest.get("model") != model or (dim is not None and manifest.get("dim") != dim):
        raise IndexLoadError(
            f"the index in {index_dir} was built with {manifest.get('model')} (dim {manifest.get('dim')}) "
            f"but the service embeds with {model}{f' (dim {dim})' if dim else ''}: run `make build-index`")
    build = index_dir / str(manifest.get("build", ""))
    try:
        faiss_index = faiss.read_index(str(build / "vectors.faiss"))
        with (build / "films.jsonl").open(encoding="utf-8") as f:
            films = [Film.from_dict(json.loads(line)) for line in f]
        index = ReferenceIndex(films, manifest=manifest, faiss_index=faiss_index, build_dir=build)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise IndexLoadError(f"the index in {index_dir} is damaged ({exc}): run `make build-index`") from exc
    if len(index) != manifest.get("films") or index.dim != manifest.get("dim"):
        raise IndexLoadError(f"the index in {index_dir} does not match its manifest: run `make build-index`")
    return index
