"""One renderer for `check` (report/check.py): the metric verdict (--bounds bf16|fp32) prints what it printed
when the CLI built its own tables, and gets the same JSON, Markdown and HTML documents as the stage check."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from audiosr_verify.checks.metric_verdict import BOUNDS, OutputMetrics, PrecisionResult, StageError
from audiosr_verify.report.check import documents, is_metric, print_result, to_html, to_markdown


def _result(fail: bool = False) -> PrecisionResult:
    b = BOUNDS["bf16"]
    return PrecisionResult(
        subject="precision:bf16", precision="bf16", bounds=b,
        stages=[StageError("condition_encode", 0.0225, 1e-3, 3, b.stage_peak_rel),
                StageError("vocoder", 0.31 if fail else 0.031, 2e-3, 1, b.stage_peak_rel)],
        outputs=[OutputMetrics("tone_mix_16k", 8000.0, 0.0777, 0.129, 38.4, 0.0034, b),
                 OutputMetrics("noise_burst_48k", 24000.0, 0.00789, 0.0694, 40.6, -0.0227, b)])


def _old_print(console: Console, result: PrecisionResult, precision: str) -> None:
    """What cli/check.py's _cmd_check_metrics printed before it rendered through report/check.py."""
    table = Table(title=f"{result.subject}: network stages against the original ({precision} bounds)")
    for col in ("stage", "peak-relative error", "bound", "verdict"):
        table.add_column(col)
    for st in result.stages:
        table.add_row(st.stage, f"{st.peak_rel:.3g}", f"{st.bound:g}", "pass" if st.passed else "FAIL")
    console.print(table)
    b = result.bounds
    out = Table(title=f"end to end against the original (LSD ≤ {b.lsd_low:g} / {b.lsd_high:g}, "
                      f"SI-SDR ≥ {b.si_sdr_db:g} dB, level ± {b.level_db:g} dB)")
    for col in ("input", "LSD below", "LSD above", "SI-SDR dB", "level dB", "verdict"):
        out.add_column(col)
    for o in result.outputs:
        out.add_row(o.input, f"{o.lsd_low:.3g}", f"{o.lsd_high:.3g}", f"{o.si_sdr_db:.3g}", f"{o.level_db:+.3g}",
                    "pass" if o.passed else "FAIL")
    console.print(out)
    console.print(result.summary_line(), highlight=False, markup=False)


def _printed(fn) -> str:
    console = Console(width=160, record=True, force_terminal=False, color_system=None)
    fn(console)
    return console.export_text()


def test_metric_verdict_prints_as_before():
    for fail in (False, True):
        result = _result(fail)
        assert is_metric(result)
        assert _printed(lambda c: print_result(c, result)) == _printed(lambda c: _old_print(c, result, "bf16"))


def test_metric_documents_come_from_the_same_result():
    result = _result(fail=True)
    docs = documents(result)
    assert set(docs) == {"check.json", "check.md", "check.html"}
    assert json.loads(docs["check.json"]) == json.loads(json.dumps(result.to_dict()))
    md, page = to_markdown(result), to_html(result)
    assert docs["check.md"] == md and docs["check.html"] == page
    for text in (md, page):
        assert result.summary_line().split(";")[0] in text
        assert "vocoder" in text and "noise_burst_48k" in text and "FAIL" in text
    assert md.count("| stage | peak-relative error | bound | verdict |") == 1
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 2
