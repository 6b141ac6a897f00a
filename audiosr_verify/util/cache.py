"""Where the harness caches what it derives (layouts, manifests, inference copies of checkpoints)."""

from __future__ import annotations

import os
from pathlib import Path


def layout_cache_dir() -> Path | None:
    """$AUDIOSR_VERIFY_CACHE, else $XDG_CACHE_HOME/audiosr-verify (~/.cache); None if disabled."""
    if os.environ.get("AUDIOSR_VERIFY_NO_CACHE"):
        return None
    base = os.environ.get("AUDIOSR_VERIFY_CACHE")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "audiosr-verify")
    return Path(base)


__all__ = ["layout_cache_dir"]
