"""Hand back the resident pages of weights a finished network stage no longer needs.

The weights are memory-mapped from the checkpoint (``torch.load(mmap=True)``
or safetensors): a page is read from the file on first use and then counts
in the process's resident set until the process ends, although nothing
writes it. After the DDIM loop the UNet's 1 GB is not needed until the next
chunk, and after the VAE decoder its weights are not either; the vocoder
then runs with all of them resident. `drop(module)` asks the kernel to unmap
such pages (``madvise(MADV_DONTNEED)``): the next use reads them again from
the page cache (or the file), unchanged.

That is only safe for pages that still hold the file's content. A page of a
private file mapping that somebody wrote (copy-on-write) holds data the
file does not; ``MADV_DONTNEED`` would throw it away, and on anonymous
memory (weights built in memory) it would zero it. So every page is looked
up in ``/proc/self/pagemap`` first and dropped only if it is present and
file-backed (bit 61); anything else is left alone, as is everything where
pagemap or ``madvise`` is unavailable (non-Linux). Only pages wholly inside
a tensor's bytes are touched.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os

import numpy as np

__all__ = ["available", "drop", "file_backed_pages"]

PAGE = mmap.PAGESIZE
MADV_DONTNEED = 4
_PRESENT = np.uint64(1) << np.uint64(63)
_FILE_OR_SHARED = np.uint64(1) << np.uint64(61)


@functools.lru_cache(maxsize=1)
def _madvise():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    fn = getattr(libc, "madvise", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def available() -> bool:
    """True where pages can be looked up (/proc/self/pagemap) and dropped (madvise)."""
    return _madvise() is not None and os.access("/proc/self/pagemap", os.R_OK)


def _ranges(module) -> list[tuple[int, int]]:
    """Page-aligned [start, end) address ranges wholly inside the CPU storages of ``module``'s tensors."""
    seen, out = set(), []
    for t in list(module.parameters()) + list(module.buffers()):
        if t.device.type != "cpu":
            continue
        storage = t.untyped_storage()
        ptr, n = storage.data_ptr(), storage.nbytes()
        if not n or ptr in seen:
            continue
        seen.add(ptr)
        start, end = -(-ptr // PAGE) * PAGE, (ptr + n) // PAGE * PAGE
        if end > start:
            out.append((start, end))
    out.sort()
    merged: list[tuple[int, int]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def file_backed_pages(start: int, end: int, pagemap) -> np.ndarray:
    """For each page in [start, end): True when it is present and holds a file's (or shared) content."""
    n = (end - start) // PAGE
    pagemap.seek(start // PAGE * 8)
    entries = np.frombuffer(pagemap.read(n * 8), dtype=np.uint64)
    if entries.size != n:
        return np.zeros(n, dtype=bool)
    return ((entries & _PRESENT) != 0) & ((entries & _FILE_OR_SHARED) != 0)


def drop(module) -> int:
    """Unmap the resident, file-backed pages of ``module``'s weights; the bytes dropped (0 where unsupported)."""
    madvise = _madvise()
    if madvise is None:
        return 0
    dropped = 0
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            for start, end in _ranges(module):
                ok = file_backed_pages(start, end, pagemap)
                if not ok.any():
                    continue
                # runs of droppable pages: edges where ok changes
                edges = np.flatnonzero(np.diff(np.concatenate(([False], ok, [False])).astype(np.int8)))
                for a, b in zip(edges[::2], edges[1::2]):
                    addr, length = start + int(a) * PAGE, int(b - a) * PAGE
                    if madvise(ctypes.c_void_p(addr), length, MADV_DONTNEED) == 0:
                        dropped += length
    except OSError:
        return dropped
    return dropped
