"""Keep the resident set flat over long runs without slowing the networks down.

glibc's malloc raises its mmap threshold (up to 32 MiB) as large blocks are
freed, so after the first chunk most activations come from the heap; freed
heap pages stay resident for reuse, and as the chunks go by fragmentation
lets the peak creep up (benchmarks/bench_long_audio.py measured +25 % from 2
to 46 chunks). The earlier cure, pinning ``M_MMAP_THRESHOLD`` at 1 MiB,
mmaps every activation afresh, and the page faults of those fresh mappings
cost the full UNet 66 % more time per step (issue 16).

What ``enhance`` does instead: it keeps glibc's own (fast) thresholds and
calls `release()` between chunks (and once after loading):
``malloc_trim(0)`` hands every free heap page back to the operating system
(``MADV_DONTNEED`` on whole free pages of every arena), so what one chunk
left free does not stay resident while the next one runs, and the
high-water mark stays that of one chunk. Measured on the tiny preset
(README, "Speed at verified parity"): a 300 s file peaks at 988 MB against 1019 MB for 20 s,
at the same time per chunk as glibc's defaults.

`configure()` is kept for measurement: ``AUDIOSR_MALLOC=fixed`` fixes the
mmap threshold at 64 MiB and the trim threshold at 128 MiB (more heap reuse,
but a higher peak: 1125 / 1235 MB for 20 / 300 s), ``AUDIOSR_MALLOC=off``
turns trimming off too (glibc's plain defaults). It never overrides a user's
own tuning (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, or
``glibc.malloc`` in ``GLIBC_TUNABLES``). Everything is a no-op where glibc's
functions are absent (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 128 << 20


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def available() -> bool:
    """True where glibc's mallopt and malloc_trim can be called."""
    return _libc() is not None


def mode() -> str:
    """``trim`` (the default), ``fixed`` or ``off``, from ``AUDIOSR_MALLOC``."""
    value = os.environ.get("AUDIOSR_MALLOC", "trim").strip().lower() or "trim"
    return value if value in ("trim", "fixed", "off") else "trim"


def user_tuned() -> bool:
    """True when the environment already sets glibc's malloc thresholds."""
    env = os.environ
    return ("MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env
            or "glibc.malloc" in env.get("GLIBC_TUNABLES", ""))


def configure(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Under ``AUDIOSR_MALLOC=fixed`` only: fix glibc's mmap and trim thresholds; True if applied."""
    libc = _libc()
    if libc is None or mode() != "fixed" or user_tuned():
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    return bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))) and ok


def release() -> bool:
    """Return free heap memory to the OS (``malloc_trim(0)``); True if some was released."""
    libc = _libc()
    if libc is None or mode() == "off":
        return False
    return bool(libc.malloc_trim(0))


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "available", "configure", "mode", "release", "user_tuned"]
