"""Renderers of a `CheckResult` (`audiosr-verify check`): a rich table, Markdown and HTML."""

from __future__ import annotations

import html
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


def check_table(result):
    from rich.table import Table

    t = Table(title=f"check {result.subject} (schema {result.to_dict()['schema_version']}, {result.preset})",
              title_justify="left")
    for col in HEADER:
        t.add_column(col, justify="left" if col in ("stage", "teacher-forced", "chained") else "right")
    for r in rows(result):
        t.add_row(r[0], f"[{STATUS_STYLE[r[1]]}]{r[1]}[/]", r[2], r[3], r[4],
                  f"[{STATUS_STYLE.get(r[5], 'dim')}]{r[5]}[/]", r[6])
    return t


def to_markdown(result) -> str:
    lines = [f"# check: {result.subject}", "", result.summary_line(), ""]
    first = result.first_divergence()
    if first:
        where = first["stage"] + (f", module `{first['module']}`" if first.get("module") else "")
        lines += [f"**First divergence:** {where}: {first.get('module_detail') or first.get('detail', '')}", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    lines += ["| " + " | ".join(r) + " |" for r in rows(result)]
    return "\n".join(lines) + "\n"


def to_html(result) -> str:
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
    css = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:right}td:first-child{text-align:left}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>check {html.escape(result.subject)}"
            f"</title><style>{css}</style></head><body>" + "".join(body) + "</body></html>\n")
