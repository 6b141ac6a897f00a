"""Rich tables for functional-parity results (`FunctionalResult`, `StageComparison` lists).

Renderers only: they take result objects and return rich renderables; the
caller decides where to print them.
"""

from __future__ import annotations

import math
from typing import Iterable

from audiosr_verify.compare.tensors import StageComparison


def fmt(x: float) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.2e}"


def comparison_table(comparisons: Iterable[StageComparison], title: str = "Functional parity"):
    """stage | input | max/mean |diff| | max rel | cosine | min passing tol | tolerance | pass."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col, justify in (("stage", "left"), ("input", "left"), ("max |diff|", "right"), ("mean |diff|", "right"),
                         ("max rel", "right"), ("cosine", "right"), ("min passing tol", "right"),
                         ("tolerance", "right"), ("pass", "center")):
        t.add_column(col, justify=justify, no_wrap=col in ("stage", "input"))
    for c in comparisons:
        cos = "-" if math.isnan(c.cosine) else f"{c.cosine:.8f}"
        verdict = "[green]pass[/green]" if c.passed else "[bold red]FAIL[/bold red]"
        if c.passed and c.identical and c.size:
            verdict = "[green]exact[/green]"
        t.add_row(c.name, c.input, fmt(c.max_abs), fmt(c.mean_abs), fmt(c.max_rel), cos, fmt(c.min_passing_atol),
                  c.tolerance_text(), verdict)
    return t


def stage_summary_table(result, title: str = "Worst case per stage"):
    from rich.table import Table

    t = Table(title=title)
    for col in ("stage", "inputs", "max |diff|", "max rel", "tolerance", "pass"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for r in result.max_by_stage():
        t.add_row(r["stage"], str(r["inputs"]), fmt(r["max_abs"]), fmt(r["max_rel"]), r["tolerance"],
                  "[green]pass[/green]" if r["passed"] else "[bold red]FAIL[/bold red]")
    return t


def notes_table(comparisons: Iterable[StageComparison], title: str = "Notes"):
    from rich.table import Table

    t = Table(title=title)
    t.add_column("stage")
    t.add_column("input")
    t.add_column("note")
    for c in comparisons:
        if c.note:
            t.add_row(c.name, c.input, c.note)
    return t


def print_result(result, console=None, detail: bool = True) -> None:
    """The full rendering of a `FunctionalResult` (comparison table, behaviour notes, summary)."""
    from rich.console import Console

    console = console or Console()
    if not result.available:
        console.print(f"[yellow]functional parity not available:[/yellow] {result.reason}")
        return
    ordered = result.ordered()
    if detail:
        console.print(comparison_table(ordered))
        console.print(notes_table(ordered))
    else:
        console.print(stage_summary_table(result))
    for e in result.errors:
        console.print(f"[red]raised[/red] {e['stage']} on {e['input']}: {e['error']}", highlight=False)
    style = "green" if result.ok else "bold red"
    console.print(f"[{style}]{result.summary_line()}[/{style}]", highlight=False)
