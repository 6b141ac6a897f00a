"""Spectrogram data of the worst-ranked files only: ``OUT/worst/<hash>.safetensors``.

Storing every file's spectrograms would grow with the corpus; the report
shows only the ``k`` worst. A file's data is written (atomically) before its
row is appended, and the file that drops out of the worst ``k`` is deleted
after: at any moment the kept set is the worst ``k`` of the rows written, and
since the ranking is a total order (score, then file name) it is the same
whatever order the files finished in. Opening again removes anything else
(left by a killed run, or a different ``k``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

WORST_DIR = "worst"


def spectra_name(file: str) -> str:
    return hashlib.sha256(file.encode("utf-8")).hexdigest()[:20] + ".safetensors"


def badness(row: dict[str, Any], metric: str, lower_is_better: bool) -> float | None:
    """The row's rank score, larger = worse; None when it has no value for ``metric``."""
    if row.get("status") != "ok":
        return None
    value = (row.get("metrics") or {}).get(metric)
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return math.inf
    return v if lower_is_better else -v


def _key(score: float, file: str) -> tuple[float, str]:
    return (-score, file)  # sorted ascending: the worst first, ties by name


class WorstFiles:
    def __init__(self, out_dir: str | Path, k: int, metric: str, lower_is_better: bool,
                 rows: Iterable[dict[str, Any]] = ()):
        self.dir = Path(out_dir) / WORST_DIR
        self.k, self.metric, self.lower_is_better = k, metric, lower_is_better
        scored = [(b, r["file"]) for r in rows if (b := badness(r, metric, lower_is_better)) is not None]
        self.kept = {f: b for b, f in sorted(scored, key=lambda t: _key(*t))[:k]}  # file -> score, rows so far
        self._evicted: list[str] = []
        self.dir.mkdir(parents=True, exist_ok=True)
        wanted = {spectra_name(f) for f in self.kept}
        for p in self.dir.iterdir():
            if p.name not in wanted:
                p.unlink(missing_ok=True)

    def offer(self, row: dict[str, Any], spectra: dict[str, np.ndarray] | None) -> None:
        """Write the row's spectrogram data when the row ranks among the worst ``k`` (before the row is saved)."""
        b = badness(row, self.metric, self.lower_is_better)
        if b is None or spectra is None or self.k <= 0:
            return
        ranked = sorted([*((s, f) for f, s in self.kept.items()), (b, row["file"])], key=lambda t: _key(*t))
        if (b, row["file"]) not in ranked[: self.k]:
            return
        _save(self.dir / spectra_name(row["file"]), spectra)
        self.kept[row["file"]] = b
        self._evicted = [f for _, f in ranked[self.k:]]

    def settle(self) -> None:
        """Delete what fell out of the worst ``k`` (after the row that pushed it out is saved)."""
        for f in self._evicted:
            self.kept.pop(f, None)
            (self.dir / spectra_name(f)).unlink(missing_ok=True)
        self._evicted = []

    def ranked(self) -> list[str]:
        return [f for f, _ in sorted(self.kept.items(), key=lambda t: _key(t[1], t[0]))]


def _save(path: Path, spectra: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    from audiosr_verify.util.atomic import atomic_write

    arrays = {k: np.ascontiguousarray(np.atleast_1d(v)) for k, v in spectra.items()}
    atomic_write(path, lambda tmp: save_file(arrays, str(tmp)))


def load_spectra(out_dir: str | Path, file: str) -> dict[str, np.ndarray] | None:
    from safetensors.numpy import load_file

    path = Path(out_dir) / WORST_DIR / spectra_name(file)
    return load_file(str(path)) if path.exists() else None


__all__ = ["WORST_DIR", "WorstFiles", "badness", "load_spectra", "spectra_name"]
