"""Renderers of the compatibility report: rich (terminal), JSON, Markdown, self-contained HTML.

All take a `audiosr_verify.report.sections.Report` and return text (or print to a
given rich console); `write_all` writes ``report.json``, ``report.md`` and
``report.html`` atomically into a directory. `case_table_text` renders one
golden `CaseResult` as the plain table a failing test shows.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from audiosr_verify import golden as G
from audiosr_verify.report.document import Item, Report, Section, Table
from audiosr_verify.util.atomic import atomic_write

STATUS_STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "not_available": "yellow",
                "info": "dim", None: ""}
STATUS_TEXT = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "not_available": "N/A", "info": "info"}


def _status_text(status: str | None) -> str:
    return STATUS_TEXT.get(status or "", status or "")


# --------------------------------------------------------------------------- JSON


def to_json(report: Report, indent: int | None = 2) -> str:
    return json.dumps(_finite(report.to_dict()), indent=indent, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    """inf / nan floats become strings so the JSON stays strict."""
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --------------------------------------------------------------------------- rich


def _rich_table(t: Table, title: str | None = None):
    from rich.table import Table as RichTable

    rt = RichTable(title=title if title is not None else (t.title or None), title_justify="left")
    for c in t.columns:
        rt.add_column(c, overflow="fold")
    for i, row in enumerate(t.rows):
        status = t.row_status[i] if t.row_status else None
        rt.add_row(*[str(v) for v in row], style="red" if status == "fail" else None)
    return rt


def print_rich(report: Report, console=None, details: bool = True) -> None:
    """Summary table of the sections; with ``details``, the tables of failing items."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = console or Console()
    overall = "[green]PASS[/green]" if report.passed else "[bold red]FAIL[/bold red]"
    console.print(f"[bold]{report.title}[/bold]: {overall}   model: {report.model}", highlight=False)
    t = RichTable(show_lines=False)
    for col in ("section", "status", "summary", "time s"):
        t.add_column(col, overflow="fold")
    for s in report.sections:
        style = STATUS_STYLE.get(s.status, "")
        t.add_row(s.title, f"[{style}]{_status_text(s.status)}[/{style}]" if style else _status_text(s.status),
                  s.summary, "-" if s.seconds is None else f"{s.seconds:.1f}")
    console.print(t)
    if not details:
        return
    for s in report.sections:
        if s.key == "golden_regression" and s.tables:
            console.print(_rich_table(s.tables[0], title="golden cases"))
        for item in s.items:
            if item.status not in ("fail", "error"):
                continue
            console.print(f"[bold red]{s.title}: {item.name}[/bold red] - {item.summary}", highlight=False)
            for table in item.tables:
                console.print(_rich_table(table))
            for note in item.notes:
                console.print(f"  note: {note}", highlight=False)


def case_table_text(result: G.CaseResult, width: int = 110) -> str:
    """A failing golden case as plain text: title, metric table, message, notes, files, next step."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    verdict = "passed" if result.passed else result.status.upper()
    console.print(f"golden case {result.case!r} ({result.checkpoint_key}): {verdict}", highlight=False)
    if result.checks:
        t = RichTable(box=box.ASCII2)
        for col in ("case", "metric", "value", "tolerance", "result"):
            t.add_column(col)
        for label, value, tol, verdict_text in result.rows():
            t.add_row(result.case, label, value, tol, verdict_text)
        console.print(t)
    if result.message:
        console.print(result.message, highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if result.written and not result.passed:
        console.print("obtained files written beside the golden: "
                      + ", ".join(Path(p).name for p in result.written) + f" in {result.golden_dir}",
                      highlight=False, soft_wrap=True)
    if result.status in ("failed", "stale"):
        console.print(f"if the change is intended, regenerate with: {result.update_hint or G.UPDATE_HINT}",
                      highlight=False, soft_wrap=True)
    return buf.getvalue().rstrip() + "\n"


# --------------------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> list[str]:
    lines = []
    if t.title:
        lines += [f"*{_md(t.title)}*", ""]
    lines.append("| " + " | ".join(_md(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    for i, row in enumerate(t.rows):
        status = t.row_status[i] if t.row_status else None
        cells = [_md(v) for v in row]
        if status == "fail":
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def to_markdown(report: Report) -> str:
    icon = {"pass": "✅", "fail": "❌", "error": "❌", "not_available": "➖", "info": "ℹ️"}
    out = [f"# {report.title}", "",
           f"**Result: {'PASS' if report.passed else 'FAIL'}** - model: {_md(report.model)} - {report.created}", ""]
    out += _md_table(Table(["section", "status", "summary"],
                           [[s.title, f"{icon.get(s.status, '')} {_status_text(s.status)}", s.summary]
                            for s in report.sections]))
    for s in report.sections:
        out += [f"## {icon.get(s.status, '')} {s.title}", "", _md(s.summary), ""]
        out += [f"- {_md(n)}" for n in s.notes] + ([""] if s.notes else [])
        if s.figures:
            out += ["Pictures: " + ", ".join(f.title for f in s.figures) + " (see report.html)", ""]
        for t in s.tables:
            out += _md_table(t)
        for item in s.items:
            show_tables = item.status in ("fail", "error") or s.key != "golden_regression"
            out += [f"### {icon.get(item.status, '')} {_md(item.name)}", "", _md(item.summary), ""]
            out += [f"- {_md(n)}" for n in item.notes] + ([""] if item.notes else [])
            if show_tables:
                for t in item.tables:
                    out += _md_table(t)
            if item.figures or item.clips:
                media = [f.title for f in item.figures] + [f"{c.title} (audio)" for c in item.clips]
                out += ["In report.html: " + ", ".join(media), ""]
    env = report.environment
    if env:
        out += ["## Environment", ""] + _md_table(Table(["", ""], [[k, v] for k, v in env.items()]))
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1360px;
 padding:0 16px;color:#1d1d1f;background:#fafafa}
h1{font-size:24px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:0;display:inline}
.meta{color:#555;margin-bottom:14px}
.badge{display:inline-block;min-width:38px;text-align:center;padding:1px 8px;border-radius:10px;font-weight:600;
 font-size:12px;margin-right:6px;color:#fff;vertical-align:1px}
.b-pass{background:#1a7f37}.b-fail,.b-error{background:#cf222e}.b-not_available{background:#9a6700}
.b-info{background:#6e7781}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f0f2f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#ffebe9} td.ok{color:#1a7f37;font-weight:600} td.bad{color:#cf222e;font-weight:700}
caption{caption-side:top;text-align:left;font-weight:600;padding:2px 0}
details{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:6px 10px}
details.fail,details.error{border-color:#cf222e}
summary{cursor:pointer} .summary{color:#444;margin-left:6px}
.figs{display:flex;flex-direction:column;gap:10px;margin:8px 0}
figure{margin:0} figure img{max-width:100%;height:auto;display:block;border:1px solid #d0d7de;background:#fff}
figcaption{font-size:12px;color:#444;margin-top:2px}
.clips{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:8px;margin:8px 0}
.clips figure{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:4px 8px}
.clips audio{width:100%;height:32px;display:block}
.note{color:#57606a;font-size:13px;margin:2px 0}
details.table{padding:4px 10px} details.table>summary{font-weight:600}
code{background:#eef;padding:0 3px;border-radius:3px}
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _badge(status: str | None) -> str:
    return f'<span class="badge b-{_h(status)}">{_h(_status_text(status))}</span>'


def _html_table(t: Table) -> str:
    if t.folded:
        return (f'<details class="table"><summary>{_h(t.title or "table")} ({len(t.rows)} rows)</summary>'
                + _html_table(Table(t.columns, t.rows, "", t.row_status)) + "</details>")
    parts = ["<table>"]
    if t.title:
        parts.append(f"<caption>{_h(t.title)}</caption>")
    parts.append("<tr>" + "".join(f"<th>{_h(c)}</th>" for c in t.columns) + "</tr>")
    for i, row in enumerate(t.rows):
        status = t.row_status[i] if t.row_status else None
        cls = f' class="{_h(status)}"' if status else ""
        cells = []
        for v in row:
            v = str(v)
            num = v.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).replace(",", "").isdigit()
            verdict = {"pass": "ok", "PASS": "ok", "FAIL": "bad", "fail": "bad"}.get(v)
            cls_td = "num" if num else (verdict or "")
            cells.append(f'<td class="{cls_td}">{_h(v)}</td>' if cls_td else f"<td>{_h(v)}</td>")
        parts.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _html_figures(figures) -> str:
    parts = ['<div class="figs">']
    for f in figures:
        data = base64.b64encode(f.image).decode("ascii")
        parts.append(f'<figure><img alt="{_h(f.alt or f.title)}" src="data:{_h(f.mime)};base64,{data}">'
                     f"<figcaption><b>{_h(f.title)}</b> - {_h(f.caption)}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _html_clips(clips) -> str:
    parts = ['<div class="clips">']
    for c in clips:
        data = base64.b64encode(c.data).decode("ascii")
        parts.append(f'<figure><figcaption><b>{_h(c.title)}</b> - {_h(c.caption)}</figcaption>'
                     f'<audio controls preload="metadata" title="{_h(c.title)}" src="data:{_h(c.mime)};base64,{data}">'
                     f"</audio></figure>")
    parts.append("</div>")
    return "".join(parts)


def _html_item(item: Item, open_: bool) -> str:
    parts = [f'<details class="{_h(item.status)}"{" open" if open_ else ""}><summary>{_badge(item.status)}'
             f'<h3>{_h(item.name)}</h3><span class="summary">{_h(item.summary)}</span></summary>']
    for n in item.notes:
        parts.append(f'<p class="note">{_h(n)}</p>')
    if item.figures:
        parts.append(_html_figures(item.figures))
    if item.clips:
        parts.append(_html_clips(item.clips))
    for t in item.tables:
        parts.append(_html_table(t))
    parts.append("</details>")
    return "".join(parts)


def _html_section(s: Section) -> str:
    parts = [f'<h2 id="{_h(s.key)}">{_badge(s.status)}{_h(s.title)}</h2>', f"<p>{_h(s.summary)}"]
    if s.seconds is not None:
        parts.append(f' <span class="note">({s.seconds:.1f} s)</span>')
    parts.append("</p>")
    for n in s.notes:
        parts.append(f'<p class="note">{_h(n)}</p>')
    if s.figures:
        parts.append(_html_figures(s.figures))
    for t in s.tables:
        parts.append(_html_table(t))
    for item in s.items:
        open_ = item.status in ("fail", "error") or bool(item.figures)
        parts.append(_html_item(item, open_))
    return "".join(parts)


def to_html(report: Report) -> str:
    overall = "pass" if report.passed else "fail"
    env_rows = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in report.environment.items())
    overview = Table(["section", "status", "summary", "time s"],
                     [[s.title, _status_text(s.status), s.summary, "-" if s.seconds is None else f"{s.seconds:.1f}"]
                      for s in report.sections],
                     row_status=["pass" if report.section_ok(s) else "fail" for s in report.sections])
    body = [f"<h1>{_badge(overall)}{_h(report.title)}</h1>",
            f'<div class="meta">model: <b>{_h(report.model)}</b> &middot; {_h(report.created)}'
            f"{' &middot; strict' if report.strict else ''}</div>",
            _html_table(overview)]
    body += [_html_section(s) for s in report.sections]
    body.append(f"<h2>Environment</h2><table>{env_rows}</table>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_h(report.title)}</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")


# --------------------------------------------------------------------------- files


def write_all(report: Report, output_dir: str | os.PathLike) -> list[Path]:
    """``report.json``, ``report.md`` and ``report.html`` in ``output_dir`` (created if needed)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in (("report.json", to_json), ("report.md", to_markdown), ("report.html", to_html)):
        # no lock of its own: `audiosr-verify report` holds a Reservation on these files for the whole run
        atomic_write(out / name, render(report), what="report", lock=False)
        written.append(out / name)
    return written


__all__ = ["case_table_text", "print_rich", "to_html", "to_json", "to_markdown", "write_all"]
