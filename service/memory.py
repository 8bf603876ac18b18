"""Keeping the C heap's freed memory from staying in the process: handed back once the models are loaded, and
large blocks always given back when freed."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from pathlib import Path


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_heap() -> None:
    """Loading leaves freed memory in glibc's heap (ONNX Runtime parses a whole model file before it keeps
    the tensors), still counted in the process's RSS: malloc_trim returns it (measured: 34 MB after loading
    multilingual-e5). A no-op where the C library has no malloc_trim."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def resident_mb(pid: int | str = "self") -> float:
    """A process's resident memory (VmRSS, MB): this one's unless `pid` is given; NaN for a process without one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_blocks() -> None:
    """Blocks of 1 MB and more are mapped on their own and unmapped when freed. glibc's default moves that threshold
    up to 32 MB as such blocks are freed, and from then on keeps them in the heaps of the threads that freed them:
    four threads embedding 10,000-character texts left a process 100 MB larger for good (5 MB with the threshold
    fixed; setting it turns the moving off). The models' own memory is allocated once and kept either way. A no-op
    where the C library has no mallopt."""
    set_option = getattr(_libc(), "mallopt", None)
    if set_option is not None:
        set_option(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


MADV_RANDOM = 1  # madvise's advice (sys/mman.h): pages are read one by one, with no readahead around them


def read_as_used(path: Path) -> int:
    """The mappings of the file at `path` in this process read page by page, as they are used, not with the pages
    around them: a model's token table memory-mapped by ONNX Runtime (embedding/onnx.py) then holds in memory the rows
    of the tokens texts use, not most of the table — a few hundred German and French texts made 85 of
    multilingual-e5's 96 MB resident. On each fault the kernel reads ahead (off with MADV_RANDOM) and maps the pages
    around it that the page cache holds (so the file's pages no process maps are dropped from the cache first: a
    freshly written model file is all there). Returns the bytes advised; 0 where /proc or madvise are not there."""
    _uncache(path)
    madvise = getattr(_libc(), "madvise", None)
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return 0
    advised, target = 0, str(Path(path).resolve())
    for line in maps:
        fields = line.split(maxsplit=5)
        if madvise is None or len(fields) < 6 or fields[5] != target:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_RANDOM) == 0:
            advised += end - start
    return advised


def _uncache(path: Path) -> None:
    """The file's cached pages that no process maps, dropped (they are read again as they are used)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (OSError, AttributeError):
        pass
    finally:
        os.close(fd)
