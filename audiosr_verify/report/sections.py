"""The compatibility report: one result model, filled by the checks, rendered elsewhere.

    Report -> Section (state-dict parity, functional parity, golden regression,
              property tests, ... anything with a key) -> Item (one checkpoint,
              one case, one test file) -> Table / Figure / Clip

(the classes live in `audiosr_verify.report.document`; pictures are drawn by
`report.pictures`, sounds encoded by `report.audio`)

Builders here run a check and turn its result object into a `Section`
(keeping the check's own ``to_dict()`` in ``Section.data`` for CI);
`audiosr_verify.report.render` turns a `Report` into a rich summary,
``report.json``, ``report.md`` and a self-contained ``report.html``.
Nothing here prints.

A section's status is one of ``pass``, ``fail``, ``error`` (the check could
not run), ``not_available`` (the check does not exist yet / was not asked
for). `Report.passed` needs every section to pass; sections that are not
available count as passing unless the report is ``strict``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

from audiosr_verify import golden as G
from audiosr_verify.report.document import (  # noqa: F401  (the result model, re-exported)
    REPORT_SCHEMA_VERSION,
    SECTION_STATUSES,
    Clip,
    Figure,
    Item,
    Report,
    Section,
    Table,
)
from audiosr_verify.util.paths import data_dir

BASIC_MANIFEST = "manifests/audiosr_basic.json"  # inside the harness data

Progress = Callable[[str], None]


def _timed(key: str, title: str, build: Callable[[], Section]) -> Section:
    t0 = time.perf_counter()
    try:
        s = build()
    except Exception as exc:  # a check that crashes is reported, not fatal to the report
        s = Section(key, title, "error", f"check crashed: {type(exc).__name__}: {exc}")
    s.seconds = time.perf_counter() - t0
    return s


# --------------------------------------------------------------------------- state-dict parity


def _parity_item(name: str, result) -> Item:
    c = result.counts
    rows = [[s.replace("_", " "), f"{c[s]:,}"] for s in c]
    groups = Table(["module group", "keys", "matched", "ignored", "problems"],
                   [[g.name, f"{g.keys:,}", f"{g.counts['matched']:,}", f"{g.counts['ignored']:,}",
                     f"{sum(v for k, v in g.counts.items() if k not in ('matched', 'ignored')):,}"]
                    for g in result.groups],
                   title="module groups", row_status=["pass" if g.ok else "fail" for g in result.groups])
    problems = result.problems()
    tables = [Table(["status", "keys"], rows, title="key statuses"), groups]
    if problems:
        tables.append(Table(["key", "status", "expected", "file"],
                            [[k.key, k.status, str(k.expected_shape), str(k.actual_shape)] for k in problems[:50]],
                            title=f"problems (first {min(50, len(problems))} of {len(problems)})",
                            row_status=["fail"] * min(50, len(problems))))
    notes = [f"{v.name}: {v.value} - {v.detail}" for v in result.variants]
    return Item(name, "pass" if result.ok else "fail", result.summary_line(), tables, notes=notes)


def parity_section(checkpoint: str | None, preset: str, random_seed: int | None = 0,
                   manifest: str | os.PathLike | None = None, layout=None, subject: str = "") -> Section:
    """State-dict parity of the model in use, of the committed basic manifest if present, and of a
    subject's layout (``layout``: a `LayoutResult`) against the original's."""
    if importlib.util.find_spec("audiosr_verify.checks.state_dict") is None:
        return Section("state_dict_parity", "State-dict parity", "not_available",
                       "audiosr_verify.checks.state_dict is not available")
    from audiosr_verify.checks import state_dict as parity

    items: list[Item] = []
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="audiosr-parity-") as tmp:
        if checkpoint:
            source, label = checkpoint, f"checkpoint {Path(checkpoint).name} vs {preset}"
        else:
            from audiosr_model import config as cfg
            from audiosr_model.weights.checkpoint import save_checkpoint
            from audiosr_model.weights.load import random_state

            source = str(Path(tmp) / f"random-{preset}-seed{random_seed}.bin")
            save_checkpoint(random_state(cfg.preset(preset), random_seed or 0), source)
            label = f"random weights ({preset}, seed {random_seed}) saved as a checkpoint vs {preset}"
        result = parity.run_parity(source, preset=preset)
        items.append(_parity_item(label, result))
        data["model"] = result.to_dict()
    manifest = Path(manifest) if manifest is not None else data_dir() / BASIC_MANIFEST
    if manifest.is_file():
        result = parity.run_parity(str(manifest), preset="basic")
        items.append(_parity_item(f"manifest {manifest.name} vs basic", result))
        data["basic_manifest"] = result.to_dict()
    else:
        items.append(Item(f"manifest {manifest.name}", "not_available",
                          f"{manifest} not present (write it with `audiosr-verify manifest`)"))
    if layout is not None:
        items.append(Item(f"layout of subject {subject} vs the original's", "pass" if layout.ok else "fail",
                          layout.summary_line()))
    failed = [i for i in items if i.status == "fail"]
    status = "fail" if failed else "pass"
    summary = "; ".join(i.summary for i in items if i.status != "not_available")
    data = _keys_trimmed(data)
    if layout is not None:
        data["subject_layout"] = layout.to_dict()
    return Section("state_dict_parity", "State-dict parity", status, summary, items, data=data)


def _keys_trimmed(data: dict[str, Any]) -> dict[str, Any]:
    """Parity results without the full per-key list of accounted keys (thousands of entries)."""
    out = {}
    for name, d in data.items():
        d = dict(d)
        d["keys"] = [k for k in d.get("keys", []) if k.get("status") not in ("matched", "ignored")]
        out[name] = d
    return out


# --------------------------------------------------------------------------- functional parity


def functional_section(subject: str = "reference", check=None, figures: bool = True) -> Section:
    """Stage parity of ``subject`` from a `check` result (`checks.subject_check.CheckResult`).

    Pictures first: the teacher-forced and the chained view as stage x input heatmaps of the
    error in units of the tolerance, and the chained view's divergence curve per input; then
    the per-stage table and, folded, every comparison.
    """
    from audiosr_verify.checks.subject_check import run_check

    title = "Functional parity"
    result = check if check is not None else run_check(subject)
    if not result.stages.available:
        return Section("functional_parity", title, "not_available", result.stages.reason)
    data = result.to_dict()
    first = result.first_divergence()
    items = []
    if first:
        where = first["stage"] + (f", module {first['module']}" if first.get("module") else "")
        items.append(Item(f"first divergence: {where}", "fail",
                          str(first.get("module_detail") or first.get("detail") or "")))
    teacher = result.stage_statuses("teacher")
    chained = {r["name"]: r for r in result.stage_statuses("chained")}
    fmt = lambda x: "-" if x is None else (G._fmt(x) if isinstance(x, float) else str(x))  # noqa: E731
    stages = Table(["stage", "teacher-forced", "max |diff|", "min passing atol", "chained", "chained max |diff|"],
                   [[r["name"], r["status"], fmt(r["max_abs"]), fmt(r["min_passing_atol"]),
                     chained.get(r["name"], {}).get("status", "-"), fmt(chained.get(r["name"], {}).get("max_abs"))]
                    for r in teacher], title="stages",
                   row_status=[{"pass": "pass", "fail": "fail"}.get(r["status"]) for r in teacher])
    rows = data["stage_parity"]["comparisons"]
    comparisons = _generic_table(f"every comparison ({len(rows)})", rows, limit=None)
    if comparisons is not None:
        comparisons.folded = True
    status = "pass" if result.ok else "fail"
    section = Section("functional_parity", title, status, result.summary_line(), items,
                      [t for t in (stages, comparisons) if t is not None], data=data)
    if figures:
        section.figures = functional_figures(result.stages)
    return section


def functional_figures(stages) -> list[Figure]:
    """Heatmaps (teacher-forced, chained) and the chained divergence curves of a `StageCheckResult`."""
    from audiosr_verify.report import pictures as P

    out = []
    inputs = list(stages.inputs)
    explain = ("colour: max |ours - original| in units of the row's tolerance (given in brackets), by decade; "
               "green passes, red fails (boxed); grey 0: bit-identical; the number is the max |diff|")
    for view, label in (("teacher", "teacher-forced (each stage fed the original's inputs)"),
                        ("chained", "chained (each stage fed the previous one's output)")):
        rows = stages.view(view)
        if not rows:
            continue
        pic = P.stage_heatmap(rows, inputs, title=f"Stage parity, {label}")
        out.append(Figure(f"stage parity heatmap, {view}", pic.image, explain, pic.mime,
                          alt=f"heatmap of the error per stage and input, {view} view", panels=pic.panels))
    rows = stages.view("chained")
    if rows:
        pic = P.divergence_curves(rows, inputs, title="Divergence along the pipeline (chained view), per input")
        out.append(Figure("divergence along the pipeline", pic.image,
                          "max |diff| of each fixture tensor in pipeline order, one line per input; 0 at the "
                          "bottom means bit-identical; the dashed line is the tolerance's absolute part; "
                          "a red x marks a failing comparison", pic.mime,
                          alt="divergence curves per input along the pipeline", panels=pic.panels))
    return out


def _generic_table(name: str, value: Any, limit: int | None = 200) -> Table | None:
    """A list of flat dicts as a table (the first ``limit`` rows; all with None)."""
    if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        return None
    cols = [k for k, v in value[0].items() if not isinstance(v, (dict, list))]
    if not cols:
        return None
    status_of = lambda r: None if "ok" not in r and "passed" not in r else (
        "pass" if r.get("ok", r.get("passed")) else "fail")
    rows = value if limit is None else value[:limit]
    return Table(cols, [[G._fmt(r.get(c)) if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
                        for r in rows], title=name, row_status=[status_of(r) for r in rows])


# --------------------------------------------------------------------------- golden regression


GOLDEN_COLUMNS = ["case", "status", "max |diff| / peak", "spectral dist dB", "worst frame dB", "SI-SDR dB",
                  "seconds"]


def _check_value(r: G.CaseResult, name: str) -> str:
    c = next((c for c in r.checks if c.name == name), None)
    return c.value_text() if c is not None else "-"


def golden_case_figures(r: G.CaseResult, store: G.GoldenStore | None = None) -> list[Figure]:
    """Input, obtained output, golden and obtained - golden as spectrograms side by side, on one scale."""
    from audiosr_verify.report import golden_media

    fig = golden_media.case_figure(r)
    return [] if fig is None else [fig]


def golden_section(run: G.GoldenRun | None, store: G.GoldenStore | None = None, figures: bool = True,
                   message: str = "") -> Section:
    title = "Golden regression"
    if run is None or not run.results:
        return Section("golden_regression", title, "not_available" if run is None else "fail",
                       message or "no golden cases (generate golden/regression_inputs first)",
                       data=None if run is None else run.to_dict())
    items = []
    for r in run.results:
        status = "pass" if r.passed else ("error" if r.status == "error" else "fail")
        item = Item(r.case, status, r.summary_line(with_case=False) if r.status != "missing" else r.message,
                    notes=list(r.notes))
        if r.checks:
            item.tables.append(Table(["metric", "value", "tolerance", "result"], [list(row) for row in r.rows()],
                                     row_status=[{True: "pass", False: "fail", None: "info"}[c.passed]
                                                 for c in r.checks]))
        if r.written and not r.passed:
            item.notes.append("obtained files written: " + ", ".join(Path(p).name for p in r.written)
                              + f" in {r.golden_dir}")
        if figures:
            from audiosr_verify.report import golden_media

            signals = golden_media.case_signals(r)
            fig = golden_media.case_figure(r, signals) if signals else None
            item.figures = [] if fig is None else [fig]
            item.clips = golden_media.case_clips(r, signals) if signals else []
        items.append(item)
    overview = Table(GOLDEN_COLUMNS,
                     [[r.case, r.status.replace("_", " "), _check_value(r, "peak_relative_diff"),
                       _check_value(r, "spectral_distance"), _check_value(r, "spectral_distance_worst_frame"),
                       _check_value(r, "si_sdr"),
                       "-" if r.seconds is None else f"{r.seconds:.1f}"] for r in run.results],
                     row_status=["pass" if r.passed else "fail" for r in run.results])
    notes = sorted({n for r in run.results for n in r.notes})
    return Section("golden_regression", title, "pass" if run.passed else "fail", run.summary_line(), items,
                   [overview], notes=notes, data=run.to_dict())


# --------------------------------------------------------------------------- property tests


def property_section(run) -> Section:
    """The property tests' section from their run (`testing.property_run.PropertyRun`: pytest's JUnit XML,
    its exit status and command, or why there are no results). The report runs nothing itself."""
    if run.junit_xml is None:
        return Section("property_tests", "Property tests", "error", run.error or "no results")
    return _junit_section(run.junit_xml, run.returncode, run.command)


def _junit_section(xml: str, returncode: int, command: str) -> Section:
    tree = ET.fromstring(xml)
    suites = [tree] if tree.tag == "testsuite" else list(tree.iter("testsuite"))
    per_file: dict[str, dict[str, int]] = {}
    failures: list[list[str]] = []
    for case in (c for s in suites for c in s.iter("testcase")):
        module = case.get("classname", "").split(".")
        fname = next((p for p in module if p.startswith("test_")), module[-1] if module else "?")
        counts = per_file.setdefault(fname, {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if child.tag != "skipped":
                    msg = (child.get("message") or child.text or "").strip().splitlines()
                    failures.append([f"{fname}::{case.get('name')}", outcome, (msg[0] if msg else "")[:160]])
                break
        counts[outcome] += 1
    total = {k: sum(c[k] for c in per_file.values()) for k in ("passed", "failed", "error", "skipped")}
    ok = returncode == 0 and total["failed"] == 0 and total["error"] == 0
    items = [Item(name, "pass" if c["failed"] == c["error"] == 0 else "fail",
                  ", ".join(f"{v} {k}" for k, v in c.items() if v)) for name, c in per_file.items()]
    tables = [Table(["test file", "passed", "failed", "error", "skipped"],
                    [[n, *(str(c[k]) for k in ("passed", "failed", "error", "skipped"))] for n, c in per_file.items()],
                    row_status=[i.status for i in items])]
    if failures:
        tables.append(Table(["test", "outcome", "message"], failures[:100], title="failures",
                            row_status=["fail"] * len(failures[:100])))
    summary = ", ".join(f"{v} {k}" for k, v in total.items() if v) or "no tests collected"
    if returncode not in (0, 1) and not failures:
        ok = False
        summary += f" (pytest exit code {returncode})"
    return Section("property_tests", "Property tests", "pass" if ok else "fail", summary, items, tables,
                   data={"command": command, "returncode": returncode, "totals": total, "files": per_file,
                         "failures": failures})


# --------------------------------------------------------------------------- whole report


def environment() -> dict[str, str]:
    env = G.library_versions()
    env["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return env


def build_report(net, settings: G.RunSettings, *, store: G.GoldenStore | None = None,
                 cases: list[G.GoldenCase] | None = None, properties: Callable[[], Any] | None = None,
                 strict: bool = False, model_description: str = "",
                 progress: Progress | None = None,
                 case_progress: G.ProgressFn | None = None, subject: str = "reference") -> Report:
    """Run every section and collect them in one `Report`.

    ``net`` (made from ``settings``) produces the golden outputs: our network, or a subject's outputs
    (`golden.subject_producer`); ``subject`` is checked stage by stage. ``properties``, when given, runs the
    property tests and returns their run (`testing.property_run.run_property_tests`); None leaves them out.
    """
    say = progress or (lambda what: None)
    store = store or G.GoldenStore()
    report = Report(model=model_description or settings.describe(), environment=environment(), strict=strict)

    say(f"functional parity ({subject})")
    from audiosr_verify.checks.subject_check import run_check

    check = run_check(subject)
    say("state-dict parity")
    report.sections.append(_timed("state_dict_parity", "State-dict parity", lambda: parity_section(
        settings.checkpoint, settings.preset, settings.weights_seed, layout=check.state_dict,
        subject=check.subject)))
    report.sections.append(_timed("functional_parity", "Functional parity",
                                  lambda: functional_section(subject, check)))
    say("golden regression")

    def golden() -> Section:
        selected = store.cases() if cases is None else cases
        if not selected:
            return golden_section(None, store, message=f"no cases in {store.inputs_dir / G.CASES_FILE}")
        run = G.run_golden(net, settings, store, selected, progress=case_progress)
        return golden_section(run, store)

    report.sections.append(_timed("golden_regression", "Golden regression", golden))
    if properties:
        say("property tests")
        report.sections.append(_timed("property_tests", "Property tests", lambda: property_section(properties())))
    else:
        report.sections.append(Section("property_tests", "Property tests", "not_available", "skipped (--no-properties)"))
    return report


__all__ = [
    "Clip",
    "Figure",
    "Item",
    "Report",
    "Section",
    "Table",
    "build_report",
    "functional_figures",
    "functional_section",
    "golden_case_figures",
    "golden_section",
    "parity_section",
    "property_section",
]
