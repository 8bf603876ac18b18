"""Keeping the C heap's freed memory from staying in the process: handed back once the models are loaded, and
large blocks always given back when freed."""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


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
