"""Numerical comparison of two tensors as data (in the manner of Polygraphy's comparator).

`compare_tensors(name, ours, ref, atol, rtol)` returns a `StageComparison`:
error statistics, the cosine similarity and the smallest tolerance that
would have passed, next to the tolerance asked for and the verdict. Nothing
here prints; renderers format the dataclass.

Pass rule (numpy ``allclose`` style, elementwise): ``|ours - ref| <= atol +
rtol * |ref|``. With ``atol == rtol == 0`` the stage is *bit-exact*: the
values must be equal (``-0.0 == 0.0``; NaN only where the reference has NaN).
A shape mismatch fails with infinite errors and a note.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class StageComparison:
    """How far ``ours`` is from the reference ``ref`` for one stage (or module)."""

    name: str
    shape: tuple[int, ...]  # the reference's shape
    max_abs: float
    mean_abs: float
    max_rel: float  # over elements with ref != 0 (inf if ours differs where ref == 0)
    mean_rel: float
    cosine: float
    min_passing_atol: float  # smallest atol that passes with this rtol (= max_abs when rtol == 0)
    tolerance: float  # the atol asked for; 0 with rtol 0 means bit-exact
    rtol: float = 0.0
    passed: bool = False
    input: str = ""  # the fixture input (or case) this comparison belongs to
    ours_shape: tuple[int, ...] | None = None
    mismatched: int = 0  # elements outside the tolerance
    size: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    stage: str = ""  # the schema stage this row belongs to (audiosr_verify.schema)
    view: str = ""  # "teacher" (fed the original's inputs) or "chained" (fed the subject's own outputs)

    @property
    def exact(self) -> bool:
        """Bit-exact required (tolerance and rtol both 0)."""
        return self.tolerance == 0 and self.rtol == 0

    @property
    def identical(self) -> bool:
        return self.max_abs == 0 and self.ours_shape in (None, self.shape)

    def tolerance_text(self) -> str:
        if self.exact:
            return "exact"
        if self.rtol:
            return f"{self.tolerance:.2g} + {self.rtol:.2g}·|ref|" if self.tolerance else f"{self.rtol:.2g}·|ref|"
        return f"{self.tolerance:.2g}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["ours_shape"] = None if self.ours_shape is None else list(self.ours_shape)
        d["exact"] = self.exact
        for k in ("max_abs", "mean_abs", "max_rel", "mean_rel", "cosine", "min_passing_atol"):
            d[k] = _json_float(d[k])
        if not d["extra"]:
            d.pop("extra")
        else:
            d["extra"] = {k: _json_float(v) if isinstance(v, float) else v for k, v in d["extra"].items()}
        return d


def _json_float(x: float) -> float | str:
    """JSON has no inf/nan: write them as strings."""
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def as_array(x: Any) -> np.ndarray:
    """A numpy array from a tensor (any device/dtype), an array or a scalar."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_complex:
            return x.numpy()
        return x.double().numpy() if x.is_floating_point() else x.numpy()
    return np.asarray(x)


def compare_tensors(
    name: str,
    ours: Any,
    ref: Any,
    atol: float,
    rtol: float = 0.0,
    input: str = "",
    note: str = "",
) -> StageComparison:
    """Compare ``ours`` with ``ref`` elementwise; see the module docstring for the rule."""
    a, b = as_array(ours), as_array(ref)
    if a.shape != b.shape:
        inf = float("inf")
        why = f"shape {list(a.shape)} vs the reference's {list(b.shape)}"
        extra = {}
        if a.ndim == b.ndim and a.size and b.size:  # how far apart the overlapping part is
            common = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))
            d = np.abs(a[common].astype(np.float64) - b[common].astype(np.float64))
            extra["overlap_max_abs"] = float(d.max()) if d.size else 0.0
            why += f" (overlap max |diff| {extra['overlap_max_abs']:.3g})"
        return StageComparison(name, tuple(b.shape), inf, inf, inf, inf, float("nan"), inf, float(atol), float(rtol),
                               False, input, tuple(a.shape), int(b.size), int(b.size),
                               (note + "; " if note else "") + why, extra)
    a64 = a.astype(np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64).reshape(-1)
    b64 = b.astype(a64.dtype).reshape(-1)
    both_nan = np.isnan(a64) & np.isnan(b64)
    diff = np.abs(a64 - b64)
    diff[both_nan] = 0.0
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only: infinitely wrong
    mag = np.abs(b64)
    if b64.size == 0:
        return StageComparison(name, tuple(b.shape), 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, float(atol), float(rtol),
                               True, input, None, 0, 0, note)
    nz = mag > 0
    rel = np.zeros_like(diff)
    rel[nz] = diff[nz] / mag[nz]
    rel[~nz & (diff > 0)] = np.inf
    bound = atol + rtol * np.where(np.isnan(mag), 0.0, mag)
    if atol == 0 and rtol == 0:
        bad = diff != 0
    else:
        bad = diff > bound
    excess = diff - rtol * np.where(np.isnan(mag), 0.0, mag)
    return StageComparison(
        name=name,
        shape=tuple(b.shape),
        max_abs=float(diff.max()),
        mean_abs=float(diff.mean()),
        max_rel=float(rel.max()),
        mean_rel=float(rel.mean()),
        cosine=_cosine(a64, b64),
        min_passing_atol=float(max(excess.max(), 0.0)),
        tolerance=float(atol),
        rtol=float(rtol),
        passed=not bool(bad.any()),
        input=input,
        ours_shape=None,
        mismatched=int(bad.sum()),
        size=int(b.size),
        note=note,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.all():
        return float("nan")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.real(np.vdot(a, b)) / (na * nb))


def compare_values(name: str, ours: Any, ref: Any, input: str = "", note: str = "") -> StageComparison:
    """Exact comparison of non-numeric facts (a filter type, a behaviour): equal or not."""
    same = ours == ref
    text = note or (f"ours {ours!r}, original {ref!r}" if not same else f"{ref!r}")
    err = 0.0 if same else float("inf")
    return StageComparison(name, (), err, err, err, err, 1.0 if same else 0.0, err, 0.0, 0.0, bool(same),
                           input, None, 0 if same else 1, 1, text)


def first_failure(comparisons: Sequence[StageComparison]) -> StageComparison | None:
    """The first comparison (in the given order) that did not pass."""
    return next((c for c in comparisons if not c.passed), None)
