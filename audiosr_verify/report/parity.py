"""Renderers of a `ParityResult`: rich table, JSON, Markdown (pull requests), HTML.

Rendering only: the check lives in `audiosr_verify.checks.state_dict`. Every renderer
shows the same facts: the verdict and counts, one row per module group, the
recognised variants, then each offending key with its expected and actual shape.
"""

from __future__ import annotations

import html
import json
from typing import Any

from audiosr_verify.checks.state_dict import ACCOUNTED, STATUSES, KeyEntry, ParityResult

__all__ = ["human_bytes", "print_rich", "rich_renderables", "to_html", "to_json", "to_markdown"]

PROBLEM_STATUSES = tuple(s for s in STATUSES if s not in ACCOUNTED)
_STYLE = {"matched": "green", "ignored": "cyan", "missing": "red", "unexpected": "magenta",
          "shape_mismatch": "yellow", "dtype_mismatch": "yellow"}
_SHORT = {"matched": "matched", "ignored": "ignored", "missing": "missing", "unexpected": "unexpected",
          "shape_mismatch": "shape", "dtype_mismatch": "dtype"}


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable


def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "[" + ", ".join(str(n) for n in shape) + "]"


def _problem_detail(k: KeyEntry) -> str:
    if k.status == "missing":
        return f"model expects {_shape(k.expected_shape)} {k.expected_dtype}; not in the file"
    if k.status == "unexpected":
        return f"file has {_shape(k.actual_shape)} {k.dtype}; no such parameter and no ignore group"
    if k.status == "shape_mismatch":
        return f"expected {_shape(k.expected_shape)}, file has {_shape(k.actual_shape)}"
    if k.status == "dtype_mismatch":
        return f"expected {k.expected_dtype}, file has {k.dtype} {_shape(k.actual_shape)}"
    return k.reason or ""


def _source_line(r: ParityResult) -> str:
    s = r.source
    parts = [f"{s.path}", s.format, human_bytes(s.size_bytes), f"{s.tensors:,} keys",
             f"{s.parameters:,} elements"]
    if s.sha256:
        parts.append(f"sha256 {s.sha256}")
    return " · ".join(parts)


# --------------------------------------------------------------------------
# JSON


def to_json(result: ParityResult, indent: int | None = 2) -> str:
    return json.dumps(result.to_dict(), indent=indent) + "\n"


# --------------------------------------------------------------------------
# rich


def rich_renderables(result: ParityResult, max_problems: int | None = 100) -> list[Any]:
    """Renderables for a rich Console: header, group table, variants, problems, extras."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    verdict = Text("OK", style="bold green") if result.ok else Text("FAILED", style="bold red")
    out.append(Text.assemble("parity ", verdict, f"  {_source_line(result)}  (preset {result.preset})"))

    table = Table(title="state-dict parity by module", show_footer=True)
    c = result.counts
    table.add_column("module", footer="total", no_wrap=True)
    table.add_column("keys", justify="right", footer=f"{len(result.keys):,}")
    table.add_column("parameters", justify="right", footer=f"{result.source.parameters:,}")
    table.add_column("bytes", justify="right", footer=human_bytes(result.source.tensor_bytes))
    for status in STATUSES:
        table.add_column(_SHORT[status], justify="right", style=_STYLE[status], footer=f"{c[status]:,}")
    for g in result.groups:
        cells = [f"{g.counts[s]:,}" if g.counts[s] else "·" for s in STATUSES]
        table.add_row(g.name, f"{g.keys:,}", f"{g.parameters:,}", human_bytes(g.bytes), *cells,
                      style=None if g.ok else "bold")
    out.append(table)

    variants = Table(title="variants", show_header=True)
    variants.add_column("variant")
    variants.add_column("value")
    variants.add_column("detail")
    for v in result.variants:
        variants.add_row(v.name, v.value, v.detail)
    out.append(variants)

    problems = result.problems()
    if problems:
        shown = problems if max_problems is None else problems[:max_problems]
        pt = Table(title=f"{len(problems):,} unaccounted keys")
        pt.add_column("key", overflow="fold", ratio=3)
        pt.add_column("status")
        pt.add_column("expected", justify="right")
        pt.add_column("actual", justify="right")
        pt.add_column("dtype")
        for k in shown:
            dtype = k.dtype or k.expected_dtype or "-"
            if k.status == "dtype_mismatch":
                dtype = f"{k.expected_dtype} -> {k.dtype}"
            pt.add_row(k.key, Text(k.status, style=_STYLE[k.status]), _shape(k.expected_shape),
                       _shape(k.actual_shape), dtype)
        out.append(pt)
        if len(shown) < len(problems):
            out.append(Text(f"... {len(problems) - len(shown):,} more (see --json)", style="dim"))

    if result.reference is not None:
        ref = result.reference
        out.append(Text(f"reference {ref.path}: {ref.reference_keys:,} keys; file {ref.file_keys:,}; "
                        f"{len(ref.only_in_reference):,} only in reference, {len(ref.only_in_file):,} only in "
                        f"file, {len(ref.shape_differs):,} shapes and {len(ref.dtype_differs):,} dtypes differ "
                        "(informational)", style="bold"))
        for note in ref.notes:
            out.append(Text(f"  · {note}"))
        only_ref, only_file = ref.unexplained()
        for key in only_ref[:20]:
            out.append(Text(f"  - {key}  (reference only)", style="dim"))
        for key in only_file[:20]:
            out.append(Text(f"  + {key}  (file only)", style="dim"))
        if len(only_ref) > 20 or len(only_file) > 20:
            out.append(Text("  ... more in --json", style="dim"))

    if result.hashed and result.duplicates is not None:
        dups = result.duplicates
        redundant = sum(d.nbytes * (len(d.keys) - 1) for d in dups)
        out.append(Text(f"duplicates: {len(dups):,} sets of identical tensors, "
                        f"{human_bytes(redundant)} redundant", style="bold"))
        for m in result.duplicate_modules()[:10]:
            out.append(Text(f"  · {' = '.join(m['modules'])}: {m['tensors']:,} tensors, "
                            f"{human_bytes(m['redundant_bytes'])}"))
    elif result.hashed:
        out.append(Text("duplicates: not available (a manifest has no tensor data)", style="dim"))
    if result.source.extras:
        names = ", ".join(f"{k} ({v})" for k, v in list(result.source.extras.items())[:10])
        out.append(Text(f"non-tensor entries (not loaded): {names}", style="dim"))
    out.append(Text(result.summary_line(), style="green" if result.ok else "red"))
    return out


def print_rich(result: ParityResult, console=None, max_problems: int | None = 100) -> None:
    from rich.console import Console

    console = console or Console()
    for item in rich_renderables(result, max_problems):
        console.print(item)


# --------------------------------------------------------------------------
# Markdown


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(result: ParityResult, max_problems: int | None = 200) -> str:
    c = result.counts
    icon = "✅" if result.ok else "❌"
    lines = [
        f"### {icon} State-dict parity: {'OK' if result.ok else 'FAILED'}",
        "",
        f"**{result.summary_line()}**",
        "",
        f"Source: `{result.source.path}` ({result.source.format}, {human_bytes(result.source.size_bytes)}"
        + (f", sha256 `{result.source.sha256}`" if result.source.sha256 else "") + ")",
        "",
        "| module | keys | parameters | bytes | " + " | ".join(STATUSES) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(STATUSES),
    ]
    for g in result.groups:
        lines.append(f"| `{_md(g.name)}` | {g.keys:,} | {g.parameters:,} | {human_bytes(g.bytes)} | "
                     + " | ".join(str(g.counts[s]) for s in STATUSES) + " |")
    lines.append(f"| **total** | {len(result.keys):,} | {result.source.parameters:,} | "
                 f"{human_bytes(result.source.tensor_bytes)} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    lines += ["", "**Variants:** " + "; ".join(f"{v.name}: {v.value}" for v in result.variants), ""]
    problems = result.problems()
    if problems:
        shown = problems if max_problems is None else problems[:max_problems]
        lines += [f"#### Problems ({len(problems):,})", ""]
        for k in shown:
            lines.append(f"- `{k.key}` — **{k.status}**: {_md(_problem_detail(k))}")
        if len(shown) < len(problems):
            lines.append(f"- … {len(problems) - len(shown):,} more (see the JSON report)")
        lines.append("")
    else:
        lines += ["No problems: every key is matched or ignored for a declared reason.", ""]
    if result.reference is not None:
        ref = result.reference
        lines += [f"#### Reference `{ref.path}` (informational)", "",
                  f"{ref.reference_keys:,} reference keys, {ref.file_keys:,} file keys; "
                  f"{len(ref.only_in_reference):,} only in reference, {len(ref.only_in_file):,} only in file.", ""]
        only_ref, only_file = ref.unexplained()
        lines += [f"- {_md(n)}" for n in ref.notes]
        lines += [f"- reference only: `{k}`" for k in only_ref[:50]]
        lines += [f"- file only: `{k}`" for k in only_file[:50]]
        lines.append("")
    if result.duplicates:
        lines += ["#### Duplicate tensors", ""]
        for m in result.duplicate_modules()[:20]:
            lines.append(f"- {' = '.join(f'`{x}`' for x in m['modules'])}: {m['tensors']:,} tensors, "
                         f"{human_bytes(m['redundant_bytes'])} redundant")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# HTML

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} .ok{color:#1a7f37} .fail{color:#cf222e}
table{border-collapse:collapse;margin:1em 0} th,td{border:1px solid #d0d7de;padding:3px 8px}
th{background:#f6f8fa} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fff5f5} code{font:12px ui-monospace,monospace}
.missing{color:#cf222e}.unexpected{color:#8250df}.shape_mismatch,.dtype_mismatch{color:#9a6700}
.dim{color:#666}
"""


def to_html(result: ParityResult, max_problems: int | None = 1000) -> str:
    e = html.escape
    c = result.counts
    cls = "ok" if result.ok else "fail"
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
        f"<title>AudioSR state-dict parity: {e(result.source.path)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1 class=\"{cls}\">State-dict parity: {'OK' if result.ok else 'FAILED'}</h1>",
        f"<p>{e(result.summary_line())}</p>",
        f"<p class=\"dim\">{e(_source_line(result))} · preset {e(result.preset)}</p>",
        "<table><tr><th>module</th><th>keys</th><th>parameters</th><th>bytes</th>"
        + "".join(f"<th>{e(s)}</th>" for s in STATUSES) + "</tr>",
    ]
    for g in result.groups:
        row = "<tr>" if g.ok else '<tr class="bad">'
        parts.append(f"{row}<td><code>{e(g.name)}</code></td>"
                     f"<td class=\"n\">{g.keys:,}</td><td class=\"n\">{g.parameters:,}</td>"
                     f"<td class=\"n\">{e(human_bytes(g.bytes))}</td>"
                     + "".join(f"<td class=\"n\">{g.counts[s]:,}</td>" for s in STATUSES) + "</tr>")
    parts.append(f"<tr><th>total</th><th class=\"n\">{len(result.keys):,}</th>"
                 f"<th class=\"n\">{result.source.parameters:,}</th>"
                 f"<th class=\"n\">{e(human_bytes(result.source.tensor_bytes))}</th>"
                 + "".join(f"<th class=\"n\">{c[s]:,}</th>" for s in STATUSES) + "</tr></table>")
    parts.append("<h2>Variants</h2><table><tr><th>variant</th><th>value</th><th>detail</th></tr>")
    parts += [f"<tr><td>{e(v.name)}</td><td>{e(v.value)}</td><td>{e(v.detail)}</td></tr>" for v in result.variants]
    parts.append("</table>")
    problems = result.problems()
    if problems:
        shown = problems if max_problems is None else problems[:max_problems]
        parts.append(f"<h2 class=\"fail\">Unaccounted keys ({len(problems):,})</h2>"
                     "<table><tr><th>key</th><th>status</th><th>expected</th><th>actual</th><th>detail</th></tr>")
        for k in shown:
            parts.append(f"<tr><td><code>{e(k.key)}</code></td><td class=\"{e(k.status)}\">{e(k.status)}</td>"
                         f"<td>{e(_shape(k.expected_shape))}</td><td>{e(_shape(k.actual_shape))}</td>"
                         f"<td>{e(_problem_detail(k))}</td></tr>")
        parts.append("</table>")
        if len(shown) < len(problems):
            parts.append(f"<p class=\"dim\">… {len(problems) - len(shown):,} more (see the JSON report)</p>")
    if result.reference is not None:
        ref = result.reference
        parts.append(f"<h2>Reference <code>{e(ref.path)}</code> (informational)</h2><ul>")
        only_ref, only_file = ref.unexplained()
        parts += [f"<li>{e(n)}</li>" for n in ref.notes]
        parts += [f"<li>reference only: <code>{e(k)}</code></li>" for k in only_ref[:100]]
        parts += [f"<li>file only: <code>{e(k)}</code></li>" for k in only_file[:100]]
        parts.append("</ul>")
    if result.duplicates:
        parts.append("<h2>Duplicate tensors</h2><ul>")
        for m in result.duplicate_modules()[:50]:
            parts.append(f"<li>{e(' = '.join(m['modules']))}: {m['tensors']:,} tensors, "
                         f"{e(human_bytes(m['redundant_bytes']))} redundant</li>")
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
