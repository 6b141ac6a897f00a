"""The one renderer of `audiosr-verify check`: text (rich), JSON, Markdown and HTML from the same result.

Two results come here: a `CheckResult` (checks/subject_check.py: the stage-by-stage verdict) and a
`PrecisionResult` (checks/metric_verdict.py: the verdict in metric terms, ``--bounds bf16|fp32``). Each is
printed by `print_result` and written by `documents` (check.json, check.md, check.html); what differs
between the two is the tables, picked by `is_metric`.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

STATUS_STYLE = {"pass": "green", "fail": "bold red", "not_provided": "dim", "not_checked": "yellow", "-": "dim"}


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf"
    return "0" if x == 0 else f"{x:.2e}"


def _bound(r: dict[str, Any]) -> str:
    """The bound that applied to the stage's closest row, its source and margin (bound / error)."""
    if r.get("bound") is None:
        return "-"
    margin = r.get("margin")
    m = "inf" if margin == "inf" or (isinstance(margin, float) and math.isinf(margin)) else f"{float(margin):.3g}x"
    src = " cal" if r.get("bound_source") == "calibrated" else ""
    return f"{_fmt(r['bound'])}{src} ({m})"


def rows(result) -> list[list[str]]:
    """stage | teacher status | max |diff| | min passing atol | bound (margin) | chained status | chained max |diff|."""
    chained = {r["name"]: r for r in result.stage_statuses("chained")}
    out = []
    for r in result.stage_statuses("teacher"):
        c = chained.get(r["name"])
        out.append([r["name"], r["status"], _fmt(r["max_abs"]), _fmt(r["min_passing_atol"]), _bound(r),
                    c["status"] if c else "-", _fmt(c["max_abs"]) if c else "-"])
    return out


HEADER = ["stage", "teacher-forced", "max |diff|", "min passing atol", "bound (margin)", "chained",
          "chained max |diff|"]
# A stage owns several tensors with bounds of their own: max |diff| is the largest error of any of them, the
# bound is that of the tensor closest to failing (largest error / bound), which may be another tensor.
BOUND_CAPTION = ("bound (margin): the bound of the stage's tensor closest to its bound, and bound / error; "
                 "max |diff| may come from another tensor with a wider bound (JSON: bound_tensor)")


def check_table(result):
    from rich.table import Table

    t = Table(title=f"check {result.subject} (schema {result.to_dict()['schema_version']}, {result.preset})",
              title_justify="left", caption=BOUND_CAPTION, caption_justify="left")
    for col in HEADER:
        t.add_column(col, justify="left" if col in ("stage", "teacher-forced", "chained") else "right")
    for r in rows(result):
        t.add_row(r[0], f"[{STATUS_STYLE[r[1]]}]{r[1]}[/]", r[2], r[3], r[4],
                  f"[{STATUS_STYLE.get(r[5], 'dim')}]{r[5]}[/]", r[6])
    return t


def _stage_markdown(result) -> str:
    lines = [f"# check: {result.subject}", "", result.summary_line(), ""]
    first = result.first_divergence()
    if first:
        where = first["stage"] + (f", module `{first['module']}`" if first.get("module") else "")
        lines += [f"**First divergence:** {where}: {first.get('module_detail') or first.get('detail', '')}", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    lines += ["| " + " | ".join(r) + " |" for r in rows(result)]
    lines += ["", BOUND_CAPTION[0].upper() + BOUND_CAPTION[1:] + "."]
    return "\n".join(lines) + "\n"


def _stage_html(result) -> list[str]:
    colour = {"pass": "#1a7f37", "fail": "#cf222e", "not_provided": "#6e7781", "not_checked": "#9a6700"}
    body = [f"<h1>check: {html.escape(result.subject)}</h1>", f"<p>{html.escape(result.summary_line())}</p>"]
    first = result.first_divergence()
    if first:
        where = first["stage"] + (f", module <code>{html.escape(first['module'])}</code>" if first.get("module") else "")
        body.append(f"<p><b>First divergence:</b> {where}: "
                    f"{html.escape(str(first.get('module_detail') or first.get('detail', '')))}</p>")
    body.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>")
    for r in rows(result):
        cells = []
        for i, v in enumerate(r):
            style = f" style=\"color:{colour[v]}\"" if i in (1, 5) and v in colour else ""
            cells.append(f"<td{style}>{html.escape(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    body.append("</table>")
    return body


# --------------------------------------------------------------------------- the verdict in metric terms


def is_metric(result) -> bool:
    """A `PrecisionResult` (network stage errors and end-to-end metrics under a precision's bounds)."""
    return hasattr(result, "bounds") and hasattr(result, "outputs")


METRIC_STAGE_HEADER = ["stage", "peak-relative error", "bound", "verdict"]
METRIC_OUTPUT_HEADER = ["input", "LSD below", "LSD above", "SI-SDR dB", "level dB", "verdict"]


def metric_titles(result) -> tuple[str, str]:
    b = result.bounds
    return (f"{result.subject}: network stages against the original ({result.precision} bounds)",
            f"end to end against the original (LSD ≤ {b.lsd_low:g} / {b.lsd_high:g}, "
            f"SI-SDR ≥ {b.si_sdr_db:g} dB, level ± {b.level_db:g} dB)")


def metric_rows(result) -> tuple[list[list[str]], list[list[str]]]:
    """(network stage rows, end-to-end output rows), as the tables show them."""
    stages = [[st.stage, f"{st.peak_rel:.3g}", f"{st.bound:g}", "pass" if st.passed else "FAIL"]
              for st in result.stages]
    outputs = [[o.input, f"{o.lsd_low:.3g}", f"{o.lsd_high:.3g}", f"{o.si_sdr_db:.3g}", f"{o.level_db:+.3g}",
                "pass" if o.passed else "FAIL"] for o in result.outputs]
    return stages, outputs


def metric_tables(result) -> list:
    from rich.table import Table

    tables = []
    for title, header, rows_ in zip(metric_titles(result), (METRIC_STAGE_HEADER, METRIC_OUTPUT_HEADER),
                                    metric_rows(result)):
        t = Table(title=title)
        for col in header:
            t.add_column(col)
        for r in rows_:
            t.add_row(*r)
        tables.append(t)
    return tables


def _metric_markdown(result) -> str:
    lines = [f"# check: {result.subject} ({result.precision} bounds)", "", result.summary_line(), ""]
    for title, header, rows_ in zip(metric_titles(result), (METRIC_STAGE_HEADER, METRIC_OUTPUT_HEADER),
                                    metric_rows(result)):
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows_] + [""]
    return "\n".join(lines)


def _metric_html(result) -> list[str]:
    colour = {"pass": "#1a7f37", "FAIL": "#cf222e"}
    body = [f"<h1>check: {html.escape(result.subject)} ({html.escape(result.precision)} bounds)</h1>",
            f"<p>{html.escape(result.summary_line())}</p>"]
    for title, header, rows_ in zip(metric_titles(result), (METRIC_STAGE_HEADER, METRIC_OUTPUT_HEADER),
                                    metric_rows(result)):
        body.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                    + "</tr>")
        for r in rows_:
            cells = [f"<td style=\"color:{colour[v]}\">{html.escape(v)}</td>" if i == len(r) - 1 and v in colour
                     else f"<td>{html.escape(v)}</td>" for i, v in enumerate(r)]
            body.append("<tr>" + "".join(cells) + "</tr>")
        body.append("</table>")
    return body


# --------------------------------------------------------------------------- either result


def print_result(console, result) -> None:
    """What ``check`` prints: the table(s), the first divergence (stage-by-stage) and the summary line."""
    if is_metric(result):
        for table in metric_tables(result):
            console.print(table)
    else:
        console.print(check_table(result))
        first = result.first_divergence()
        if first:
            where = first["stage"] + (f", module {first['module']}" if first.get("module") else "")
            detail = first.get("module_detail") or first.get("detail") or ""
            console.print(f"first divergence: {where} ({first.get('fixture', '')} on "
                          f"{first.get('input', '-')}): {detail}", highlight=False, markup=False)
    console.print(result.summary_line(), highlight=False, markup=False)


def to_json(result) -> str:
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


def to_markdown(result) -> str:
    return _metric_markdown(result) if is_metric(result) else _stage_markdown(result)


def to_html(result) -> str:
    body = _metric_html(result) if is_metric(result) else _stage_html(result)
    css = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:right}td:first-child{text-align:left}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>check {html.escape(result.subject)}"
            f"</title><style>{css}</style></head><body>" + "".join(body) + "</body></html>\n")


def documents(result) -> dict[str, str]:
    """The files ``check --output-dir`` writes, by name (``--json`` writes check.json's text)."""
    return {"check.json": to_json(result), "check.md": to_markdown(result), "check.html": to_html(result)}
