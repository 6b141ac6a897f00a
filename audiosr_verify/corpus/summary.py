"""``OUT/summary.json``: counts, metric distributions, stage failures and the worst files of a run's rows."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

import numpy as np

from audiosr_verify.checks.corpus import SUMMARY_METRICS, num

SUMMARY_VERSION = 1


def metric_values(rows: Iterable[dict[str, Any]], name: str) -> list[float]:
    """The metric's values over the rows that have one (``inf`` kept: SI-SDR of identical outputs)."""
    out = []
    for r in rows:
        v = (r.get("metrics") or {}).get(name) if r.get("status") == "ok" else None
        if v is not None:
            out.append(float(v))
    return out


def distribution(values: list[float]) -> dict[str, Any]:
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    d: dict[str, Any] = {"count": len(values), "infinite": len(values) - int(finite.size)}
    if finite.size:
        d.update(mean=float(finite.mean()), median=float(np.median(finite)),
                 p05=float(np.percentile(finite, 5)), p95=float(np.percentile(finite, 95)),
                 min=float(finite.min()), max=float(finite.max()))
    return d


def stage_summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        for name, c in ((r.get("stages") or {}).get("compared") or {}).items():
            s = out.setdefault(name, {"compared": 0, "failed": 0, "max_abs": 0.0, "failed_files": []})
            s["compared"] += 1
            if not c.get("passed"):
                s["failed"] += 1
                if len(s["failed_files"]) < 20:
                    s["failed_files"].append(r["file"])
            if "max_abs" in c:
                s["max_abs"] = max(s["max_abs"], float(c["max_abs"]))
    return {k: {**v, "max_abs": num(v["max_abs"])} for k, v in out.items()}


def summarize(rows: list[dict[str, Any]], settings, corpus: str, worst: list[str], rank_by: str,
              run: dict[str, Any]) -> dict[str, Any]:
    counts = Counter(r.get("status") for r in rows)
    by_file = {r["file"]: r for r in rows}
    return {
        "summary_version": SUMMARY_VERSION,
        "corpus": corpus,
        "settings": settings.to_dict(),
        "run": run,
        "files": len(rows),
        "counts": {k: counts.get(k, 0) for k in ("ok", "unreadable", "error")},
        "audio_seconds": sum(r.get("duration_s", 0.0) for r in rows if r.get("status") == "ok"),
        "compute_seconds": sum((r.get("timing") or {}).get("total_s", 0.0) for r in rows),
        "metrics": {name: distribution(metric_values(rows, name)) for name, _, _ in SUMMARY_METRICS},
        "stages": stage_summary(rows),
        "rank_by": rank_by,
        "worst": [{"file": f, rank_by: by_file[f]["metrics"].get(rank_by)} for f in worst if f in by_file],
        "unreadable": [{"file": r["file"], "error": r.get("error")} for r in rows if r.get("status") == "unreadable"],
        "errors": [{"file": r["file"], "error": r.get("error")} for r in rows if r.get("status") == "error"],
    }


__all__ = ["SUMMARY_VERSION", "distribution", "metric_values", "stage_summary", "summarize"]
