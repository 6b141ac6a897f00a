"""Facts about the host CPU, from /proc/cpuinfo: what precision paths exist, what benchmarks report."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


def _cpuinfo_field(*names: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(names):
            return line.split(":", 1)[1].strip()
    return None


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    return frozenset((_cpuinfo_field("flags", "Features") or "").split())


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()
