"""The one way a file is written: to a temporary name beside it, flushed to disk, renamed over the target,
and the directory flushed, so after a kill or a power loss the target is the old file or the whole new one,
never a part. Every writer of the project (index builds, chunks, outputs, calibrations, heads, caches,
exported models) goes through here."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file under a folder and the folder itself (a build written file by file)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(Path(root))


def temporary_name(path: Path, folder: Path | None = None) -> Path:
    """A fresh temporary name for `path`, in `folder` (default: beside it; it must be on the same file system)."""
    fd, tmp = tempfile.mkstemp(dir=folder or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: Path, folder: Path | None = None) -> Iterator[Path]:
    """A temporary path to write `path` through, for writers that want a file name (Parquet, FAISS, numpy).
    When the block ends without an error the file is flushed and renamed into place; otherwise removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, folder)
    try:
        yield tmp
        fsync_path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path, mode: str = "w", folder: Path | None = None) -> Iterator[IO]:
    """An open file that becomes `path` when the block ends without an error (text mode is UTF-8)."""
    with atomic_path(path, folder) as tmp:
        text = "b" not in mode
        with open(tmp, mode, encoding="utf-8" if text else None, newline="" if text else None) as f:
            yield f


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


def write_json(path: Path, data) -> None:
    with atomic_file(path) as f:
        json.dump(data, f, indent=1, ensure_ascii=False)


def rename_into_place(source: Path, target: Path) -> None:
    """A folder written in full (flushed with fsync_tree) takes its final name; the parent is flushed."""
    os.rename(source, target)
    fsync_path(Path(target).parent)
