"""MkDocs hook: the reference pages generated from the code when the site is built.

Declared under ``hooks:`` in mkdocs.yml. A page holds a marker comment, replaced here by Markdown made
from the code itself, so the pages cannot drift from it:

- ``<!-- generated: cli-reference -->`` (docs/reference/cli.md): every verb of ``audiosr-verify``, walked
  recursively from the argparse parser that ``audiosr_verify.cli.main.build_parser`` assembles: its
  usage, description and every option with its help text.
- ``<!-- generated: stage-schema -->`` (docs/reference/stages.md): every stage of
  ``audiosr_verify.schema.STAGES``: the signature of the `Subject` method, its inputs and outputs, the
  original's fixture tensors it is compared with and each tolerance with its reason.

On GitHub the markers stay comments and the pages say how to see the same with ``--help``.
Every page also gets the bare pipe where GitHub needs ``\\|`` inside a code span of a table row
(`_table_code_pipes`).
Importing the CLI and the schema loads neither torch nor numpy (the verbs import them when they run).
"""

from __future__ import annotations

import argparse
import html
import re

CLI_MARK = "<!-- generated: cli-reference -->"
STAGES_MARK = "<!-- generated: stage-schema -->"
WIDTH = 80  # usage lines are wrapped here, whatever the terminal that builds the site


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = _table_code_pipes(markdown)
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if STAGES_MARK in markdown:
        markdown = markdown.replace(STAGES_MARK, stage_schema())
    return markdown


def _table_code_pipes(markdown: str) -> str:
    """GitHub needs ``\\|`` for a pipe inside a code span of a table row; Python-Markdown keeps a code span
    whole and would show the backslash. The pages are written for GitHub; the site gets the bare pipe."""
    def unescape(m: re.Match) -> str:
        return m.group(0).replace("\\|", "|")

    lines = markdown.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|") and "\\|" in line:
            lines[i] = re.sub(r"`[^`]*`", unescape, line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI reference


def _inline(text: str | None) -> str:
    """Help text for a table cell or a paragraph: one line, Markdown-safe outside `code` spans."""
    text = " ".join((text or "").split())
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a code span stays as it is
            out.append(part)
        else:
            part = html.escape(part, quote=False)
            out.append(re.sub(r"([*_\[\]|\\])", r"\\\1", part))
    return "".join(out)


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(parser.prog, width=WIDTH)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if action.help is None:
        return ""
    return _formatter(parser)._expand_help(action)


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return _formatter(parser)._format_action_invocation(action)


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each verb under ``parser``, in the order they were added."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name) or "", sub))
    return out


def _verb(parser: argparse.ArgumentParser, path: list[str], summary: str, level: int) -> list[str]:
    name = " ".join(path)
    lines = [f"{'#' * level} {name}", ""]
    if summary:
        lines += [_inline(summary[0].upper() + summary[1:]) + ".", ""]
    lines += ["```text", _usage_of(parser), "```", ""]
    if parser.description:
        lines += [_inline(parser.description), ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS
                   and not isinstance(a, argparse._SubParsersAction)]
        if not actions:
            continue
        title = group.title or "options"
        lines += [f"**{_inline(title)}**", "", "| option | meaning |", "|---|---|"]
        for a in actions:
            lines.append(f"| `{_invocation(parser, a)}` | {_inline(_help(parser, a))} |")
        lines.append("")
    children = _subparsers(parser)
    if children:
        lines += ["| command | what it does |", "|---|---|"]
        for child, child_help, _ in children:
            anchor = "-".join([*path, child][1:])
            lines.append(f"| [`{' '.join([*path, child])}`](#{anchor}) | {_inline(child_help)} |")
        lines.append("")
    for child, child_help, sub in children:
        lines += _verb(sub, [*path, child], child_help, min(level + 1, 4))
    return lines


def cli_reference() -> str:
    from audiosr_verify.cli.main import build_parser

    parser = build_parser()
    lines = [
        "Generated from `audiosr_verify.cli.main.build_parser()` when this site was built.",
        "",
        "```text",
        _usage_of(parser),
        "```",
        "",
        _inline(parser.description),
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for name, summary, _ in _subparsers(parser):
        lines.append(f"| [`audiosr-verify {name}`](#{name}) | {_inline(summary)} |")
    lines.append("")
    for name, summary, sub in _subparsers(parser):
        lines += _verb(sub, ["audiosr-verify", name], summary, 2)
    # headings name the verb alone (anchors #enhance, #golden-check), the usage the whole command
    return "\n".join(_short_headings(lines))


def _usage_of(parser: argparse.ArgumentParser) -> str:
    f = _formatter(parser)
    f.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return f.format_help().strip()


def _short_headings(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        m = re.match(r"^(#+) audiosr-verify (.*)$", line)
        out.append(f"{m.group(1)} {m.group(2)}" if m else line)
    return out


# --------------------------------------------------------------------------- stage schema


def _cell(text: str) -> str:
    return _inline(text) if text else ""


def _tol(atol: float, rtol: float) -> str:
    if atol == 0 and rtol == 0:
        return "exact"
    parts = []
    if atol:
        parts.append(f"atol {atol:g}")
    if rtol:
        parts.append(f"rtol {rtol:g}")
    return ", ".join(parts)


def stage_schema() -> str:
    from audiosr_verify import schema
    from audiosr_verify.subject import OPTIONAL_METHODS, Subject

    lines = [
        f"Generated from `audiosr_verify.schema.STAGES` (schema version {schema.SCHEMA_VERSION}) when this site "
        "was built. Each stage is a method of `Subject` of the same name; the harness calls the ones your "
        "subject provides with the original's inputs and compares what they return with the original's "
        "fixture tensors listed under it, each within its tolerance.",
        "",
        "| stage | signature |",
        "|---|---|",
    ]
    for s in schema.STAGES:
        lines.append(f"| [`{s.name}`](#{s.name}) | `{s.signature()}` |")
    lines.append("")
    for s in schema.STAGES:
        lines += [f"## {s.name}", "", f"`{s.signature()}`", "", _inline(s.doc) + ".", ""]
        lines += ["| | name | shape | dtype | note |", "|---|---|---|---|---|"]
        for kind, specs in (("input", s.inputs), ("output", s.outputs)):
            for t in specs:
                note = t.doc
                if kind == "output" and t.name in s.optional_outputs:
                    note = (note + "; " if note else "") + "optional"
                lines.append(f"| {kind} | `{t.name}` | `{t.shape}` | `{t.dtype}` | {_cell(note)} |")
        lines.append("")
        if s.fixtures:
            lines += ["| fixture tensor | tolerance | why |", "|---|---|---|"]
            for name, tol in s.fixtures.items():
                lines.append(f"| `{name}` | {_tol(tol.atol, tol.rtol)} | {_cell(tol.why)} |")
            lines.append("")
        if s.module_prefix:
            lines += [f"Modules (for the first divergence inside the stage): `{s.module_prefix}`.", ""]
        method = getattr(Subject, s.name, None)
        if method is None or not getattr(method, "__not_provided__", False):
            raise RuntimeError(f"Subject has no not-provided stub for stage {s.name}")
    lines += [
        "## Chained view",
        "",
        f"In the chained view a tensor is held to at least the end-to-end bound (atol {schema.CHAINED_ATOL:g}); "
        "these tensors have bounds of their own there (`schema.CHAINED_OVERRIDES`):",
        "",
        "| fixture tensor | tolerance | why |",
        "|---|---|---|",
    ]
    for name, tol in schema.CHAINED_OVERRIDES.items():
        lines.append(f"| `{name}` | {_tol(tol.atol, tol.rtol)} | {_cell(tol.why)} |")
    lines += [
        "",
        "## Optional methods",
        "",
        "Besides the stages, a subject may provide "
        + ", ".join(f"`{m}()`" for m in OPTIONAL_METHODS)
        + " (see [`Subject`](api.md#audiosr_verify.subject.Subject)).",
        "",
    ]
    return "\n".join(lines)
