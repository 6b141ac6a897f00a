"""The one way the harness hashes: sha256 of bytes, files (streamed) and arrays (their raw bytes)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from audiosr_model.errors import AudioSRError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (bounded memory whatever its size)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise AudioSRError(f"cannot read: {exc.strerror or exc}", path) from None
    return digest.hexdigest()


def sha256_array(a: Any, dtype: Any = None) -> str:
    """Hex sha256 of an array's C-contiguous bytes (numpy array or torch tensor; optional cast)."""
    import numpy as np

    if hasattr(a, "detach"):  # torch, without importing it for numpy callers
        a = a.detach().cpu().contiguous().numpy()
    arr = np.ascontiguousarray(a, dtype=dtype)
    return hashlib.sha256(arr.tobytes()).hexdigest()


__all__ = ["sha256_array", "sha256_bytes", "sha256_file"]
