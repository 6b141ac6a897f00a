"""The result types of stage parity (`checks.stages`): one verdict per stage and view, every comparison row.

Data only, as Polygraphy's ``comparator/struct.py`` holds the comparator's results apart from the
comparator: a `StageCheckResult` is what `check_stages` fills, what `report.stages` and
`report.check` render and what ``check --json`` writes (`StageCheckResult.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiosr_verify import schema
from audiosr_verify.compare.tensors import StageComparison

VIEWS = ("teacher", "chained")
STATUSES = ("pass", "fail", "not_provided", "not_checked")


def stage_rank(name: str) -> tuple[int, int, int]:
    return schema.rank(name)


@dataclass
class StageStatus:
    """One schema stage in one view: its verdict over every comparison row it owns."""

    name: str
    status: str  # pass | fail | not_provided | not_checked
    max_abs: float | None = None
    min_passing_atol: float | None = None
    comparisons: int = 0
    failed: int = 0
    first_failure: str | None = None  # "fixture on input"
    bound: float | None = None  # the absolute bound of the row closest to it (None: exact or relative bounds)
    margin: float | None = None  # that bound over that row's error (inf when the error is 0; < 1 fails)
    bound_source: str | None = None  # "schema" or "calibrated" (the fixture set's own, oracle export)
    bound_tensor: str | None = None  # the row that bound belongs to ("tensor on input"), not max_abs's row

    def to_dict(self) -> dict[str, Any]:
        def j(x):
            return None if x is None else (float(x) if np.isfinite(x) else str(x))

        return {"name": self.name, "status": self.status, "max_abs": j(self.max_abs),
                "min_passing_atol": j(self.min_passing_atol), "comparisons": self.comparisons,
                "failed": self.failed, "first_failure": self.first_failure, "bound": j(self.bound),
                "margin": j(self.margin), "bound_source": self.bound_source, "bound_tensor": self.bound_tensor}


@dataclass
class StageCheckResult:
    """Every comparison of one subject against the fixtures, and the verdict per stage."""

    subject: str = "reference"
    provided: list[str] = field(default_factory=list)
    comparisons: list[StageComparison] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    fixture_dir: str = ""
    preset: str = "tiny"
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)  # the subject raised on a stage
    notes: list[str] = field(default_factory=list)
    available: bool = True
    reason: str = ""
    # stage -> {"calls", "slowest_s", "bound_s"}: what each stage call took and the time bound it ran under
    call_times: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped: str = ""  # why the run stopped before every input was checked (a stage ran past its bound)
    # fixture tensor -> atol calibrated for the set's checkpoint and size (oracle/calibrate.py); None: schema's
    calibrated: dict[str, float] | None = None
    # input -> stage -> the arguments of the teacher view's last call (to rerun a stage under hooks)
    calls: dict[str, dict[str, tuple]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool | None:
        """True when at least one comparison was made and every row of every provided stage passes in
        both views (a verdict over nothing is never OK); None without fixtures."""
        if not self.available:
            return None
        return bool(self.comparisons) and not self.errors and not self.stopped and \
            all(c.passed for c in self.comparisons)

    def compared(self) -> dict[str, int]:
        """What the verdict rests on: comparisons made, inputs and stages they cover."""
        return {"comparisons": len(self.comparisons), "inputs": len({c.input for c in self.comparisons}),
                "stages": len({c.stage for c in self.comparisons})}

    passed = ok

    def view(self, view: str) -> list[StageComparison]:
        return [c for c in self.ordered() if c.view == view]

    def ordered(self) -> list[StageComparison]:
        order = {n: i for i, n in enumerate(self.inputs)}
        views = {v: i for i, v in enumerate(VIEWS)}
        return sorted(self.comparisons, key=lambda c: (views.get(c.view, 9), stage_rank(c.name),
                                                       order.get(c.input, len(order))))

    def failures(self, view: str | None = None) -> list[StageComparison]:
        return [c for c in self.ordered() if not c.passed and (view is None or c.view == view)]

    def first_failure(self, view: str = "teacher") -> StageComparison | None:
        """The failing row earliest in pipeline order (then input order) of ``view`` (else any view)."""
        bad = self.failures(view) or self.failures()
        return bad[0] if bad else None

    def get(self, name: str, input: str, view: str = "teacher") -> StageComparison | None:
        return next((c for c in self.comparisons if c.name == name and c.input == input and c.view == view), None)

    def stages(self, view: str = "teacher") -> list[StageStatus]:
        """Every schema stage, in pipeline order, with its status in ``view``."""
        out = []
        for st in schema.STAGES:
            if view == "chained" and st.name not in schema.CHAIN_STAGES:
                continue
            if st.name not in self.provided:
                out.append(StageStatus(st.name, "not_provided"))
                continue
            rows = [c for c in self.view(view) if c.stage == st.name]
            if not rows:
                out.append(StageStatus(st.name, "not_checked"))
                continue
            bad = [c for c in rows if not c.passed]
            status = StageStatus(
                st.name, "fail" if bad else "pass", max(c.max_abs for c in rows),
                max(c.min_passing_atol for c in rows), len(rows), len(bad),
                f"{bad[0].name} on {bad[0].input}" if bad else None)
            bounded = [c for c in rows if c.tolerance > 0 and c.rtol == 0]
            if bounded:
                closest = max(bounded, key=lambda c: c.max_abs / c.tolerance)
                status.bound = closest.tolerance
                status.margin = closest.tolerance / closest.max_abs if closest.max_abs > 0 else float("inf")
                status.bound_source = "calibrated" if "calibrated bound" in closest.note else "schema"
                status.bound_tensor = f"{closest.name} on {closest.input}"
            out.append(status)
        return out

    def summary_line(self) -> str:
        if not self.available:
            return self.reason
        if not self.comparisons:
            why = "the subject provides none of the schema's stages" if not self.provided else \
                f"no fixture of the chosen inputs covers its stages ({', '.join(self.provided)})"
            return f"{self.subject}: NOTHING COMPARED: {why}" + (f"; {self.stopped}" if self.stopped else "")
        n = len(self.comparisons)
        bad = self.failures()
        exact = sum(1 for c in self.comparisons if c.identical)
        teacher = self.stages("teacher")
        passed = sum(s.status == "pass" for s in teacher)
        checked = sum(s.status in ("pass", "fail") for s in teacher)
        head = (f"{self.subject}: {passed}/{checked} stages pass; {n - len(bad)}/{n} comparisons on "
                f"{len(self.inputs)} inputs ({exact} bit-identical) in {self.seconds:.0f} s")
        if self.calibrated is not None:
            head += f"; bounds calibrated for the set ({len(self.calibrated)} tensors)"
        if self.errors:
            head += f"; {len(self.errors)} stage call(s) raised, returned bad output or timed out"
        if self.stopped:
            head += f"; {self.stopped}"
        if bad:
            first = self.first_failure()
            head += f"; first failure: {first.name} on {first.input} ({first.view}, max |diff| {first.max_abs:.3g})"
        return head

    def stage_rows(self) -> list[dict[str, Any]]:
        """One flat dict per comparison, in pipeline order (the report's table)."""
        rows = []
        for c in self.ordered():
            rows.append({
                "stage": c.name, "schema_stage": c.stage, "view": c.view, "input": c.input,
                "shape": "x".join(map(str, c.shape)) if c.ours_shape is None else
                f"{'x'.join(map(str, c.ours_shape))} vs {'x'.join(map(str, c.shape))}",
                "max_abs": c.max_abs, "mean_abs": c.mean_abs, "max_rel": c.max_rel, "cosine": c.cosine,
                "min_passing_atol": c.min_passing_atol, "tolerance": c.tolerance_text(),
                "passed": c.passed, "note": c.note,
            })
        for r in rows:
            for k in ("max_abs", "mean_abs", "max_rel", "cosine", "min_passing_atol"):
                if not np.isfinite(r[k]):
                    r[k] = str(r[k])
        return rows

    def max_by_stage(self, view: str = "teacher") -> list[dict[str, Any]]:
        """Worst case per fixture tensor over all inputs."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.view(view):
            row = out.setdefault(c.name, {"stage": c.name, "inputs": 0, "max_abs": 0.0, "max_rel": 0.0,
                                          "tolerance": c.tolerance_text(), "passed": True})
            row["inputs"] += 1
            row["max_abs"] = max(row["max_abs"], c.max_abs)
            row["max_rel"] = max(row["max_rel"], c.max_rel)
            row["passed"] = row["passed"] and c.passed
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        first = self.first_failure()
        return {
            "available": self.available,
            "ok": self.ok,
            "subject": self.subject,
            "schema_version": schema.SCHEMA_VERSION,
            "summary": self.summary_line(),
            "preset": self.preset,
            "fixture_dir": self.fixture_dir,
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
            "inputs_checked": list(self.inputs),
            "compared": self.compared(),
            "call_times": {k: dict(v) for k, v in self.call_times.items()},
            "stopped": self.stopped or None,
            "calibrated_bounds": None if self.calibrated is None else len(self.calibrated),
            "provided": sorted(self.provided, key=schema.STAGE_NAMES.index),
            "stages": [s.to_dict() for s in self.stages("teacher")],
            "chained": [s.to_dict() for s in self.stages("chained")],
            "first_failure": None if first is None else {"stage": first.stage, "fixture": first.name,
                                                         "input": first.input, "view": first.view},
            "comparisons": self.stage_rows(),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "tolerances": [{"stage": s.name, "tensor": k, "atol": t.atol, "rtol": t.rtol, "why": t.why}
                           for s in schema.STAGES for k, t in s.fixtures.items()],
        }


# Kept for callers of the first version (report sections, tests).
FunctionalResult = StageCheckResult

__all__ = ["FunctionalResult", "STATUSES", "StageCheckResult", "StageStatus", "VIEWS", "stage_rank"]
