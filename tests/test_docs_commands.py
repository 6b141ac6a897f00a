"""Every command the documentation tells a user to type still exists, and a few run as written.

The commands are taken from the fenced code blocks (bash, sh, shell, console; every block must name its
language) of README.md and docs/**/*.md:

- every ``audiosr-verify ...`` (or ``python -m audiosr_verify ...``) is parsed by the real argparse parser
  of the CLI (`audiosr_verify.cli.main.build_parser`): a verb, an option or a choice that no longer
  exists fails here, naming the page and line; `test_a_removed_option_is_caught` shows that it does;
- every ``pytest ...`` option is one the pytest parser of this session knows (the harness's plugin
  included), every ``tox -e ENV`` an env of tox.ini, every ``python SCRIPT.py`` a file of the repository,
  every ``pip install ".[EXTRA]"`` an extra of pyproject.toml;
- a block whose commands need what the repository does not ship says so in an HTML comment on the
  line before it (a blank line between is allowed): ``<!-- needs: checkpoint -->`` (a checkpoint file
  that is not bundled and not written by an earlier command of the block), ``<!-- needs: oracle -->``
  (the original's venv: ``oracle``, ``compare``, ``check original``, ``tox -e oracle``) and
  ``<!-- needs: gpu -->`` (``--device cuda``, ``--precision fp16``); several as ``needs: checkpoint, oracle``;
- Python blocks compile, and the complete subject shown on the check page is examples/subjects/minimal_port.py;
- `RUN` names documented commands that run for real on the bundled tiny default, in a temporary folder,
  with the exit status the page states (``# exit N``, else 0).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console", "shell-session"}
NEEDS = {"checkpoint", "oracle", "gpu"}
CHECKPOINT_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".safetensors")
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# --------------------------------------------------------------------------- extraction


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    needs: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass
class Command:
    block: Block
    line: int  # 1-based line in the file
    source: str  # the logical line as written (continuations joined)
    tokens: list[str]  # one command of it (split at ; && || |), as the shell would pass them
    comment: str = ""

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(ROOT)}:{self.line}"


NEEDS_RE = re.compile(r"^\s*<!--\s*needs:\s*([^>]*?)\s*-->\s*$")


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = "\n".join(ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[start + 1:j])
        k = start - 1  # the marker: the nearest non-blank line above (README's ci: markers may sit between)
        needs: set[str] = set()
        while k >= 0 and (not lines[k].strip() or lines[k].strip().startswith("<!-- ci:")):
            k -= 1
        if k >= 0 and (mm := NEEDS_RE.match(lines[k])):
            needs = {n.strip() for n in mm.group(1).split(",") if n.strip()}
        out.append(Block(path, start + 1, lang, body, frozenset(needs)))
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in blocks_of(p)]


def _split_segments(tokens: list[str]) -> list[list[str]]:
    segments, current = [], []
    for t in tokens:
        if t in SEPARATORS:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(t)
    if current:
        segments.append(current)
    return segments


def commands_of(block: Block) -> list[Command]:
    out = []
    if block.lang not in SHELL_LANGS:
        return out
    raw = block.text.split("\n")
    i = 0
    while i < len(raw):
        first = i
        logical = raw[i]
        while logical.rstrip().endswith("\\") and i + 1 < len(raw):
            i += 1
            logical = logical.rstrip()[:-1] + " " + raw[i].strip()
        i += 1
        text = logical.strip()
        if text.startswith("$ "):
            text = text[2:]
        if not text or text.startswith("#"):
            continue
        comment = text.split(" #", 1)[1].strip() if " #" in text else ""
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError as exc:
            raise AssertionError(f"{block.where}: cannot split {text!r}: {exc}") from exc
        for segment in _split_segments(tokens):
            out.append(Command(block, block.line + 1 + first, text, segment, comment))
    return out


def all_commands() -> list[Command]:
    return [c for b in all_blocks() for c in commands_of(b)]


def _program(tokens: list[str], name: str, module: str) -> list[str] | None:
    """The arguments after ``name`` (any path to it) or ``python -m module``; None when neither is here."""
    for i, t in enumerate(tokens):
        if Path(t).name == name:
            return tokens[i + 1:]
        if re.fullmatch(r"python[\d.]*", Path(t).name) and tokens[i + 1:i + 3] == ["-m", module]:
            return tokens[i + 3:]
    return None


def cli_argv(cmd: Command) -> list[str] | None:
    argv = _program(cmd.tokens, "audiosr-verify", "audiosr_verify")
    return None if argv is None else unplaceholder(argv)


def pytest_argv(cmd: Command) -> list[str] | None:
    argv = _program(cmd.tokens, "pytest", "pytest")
    return None if argv is None else unplaceholder(argv)


def unplaceholder(argv: list[str]) -> list[str]:
    """Usage notation in the docs (``[--preset basic]``, ``NAME ...``) as the arguments it stands for."""
    out = []
    for t in argv:
        if t.startswith("[") and not t.startswith("[["):
            t = t[1:]
        if t.endswith("]") and t.count("[") < t.count("]"):
            t = t[:-1]
        if t and t not in ("...", "…"):
            out.append(t)
    return out


# --------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    from audiosr_verify.cli.main import build_parser as real

    return real()


def parse_problem(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None when ``argv`` parses; else argparse's one-line complaint."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):  # --help
            return None
        return err.getvalue().strip() or f"exit {exc.code}"
    return None


def subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def remove_option(parser: argparse.ArgumentParser, option: str) -> None:
    """Take ``option`` out of ``parser`` as if its add_argument line had been deleted."""
    action = parser._option_string_actions[option]
    parser._remove_action(action)
    for name in action.option_strings:
        parser._option_string_actions.pop(name, None)
    for group in [*parser._action_groups, *parser._mutually_exclusive_groups]:
        if action in group._group_actions:
            group._group_actions.remove(action)


# --------------------------------------------------------------------------- the tests: parsing


def test_the_documentation_has_commands():
    """The extraction sees what is there (so that a change of notation cannot silently empty the checks)."""
    cmds = all_commands()
    ours = [c for c in cmds if cli_argv(c) is not None]
    verbs = {cli_argv(c)[0] for c in ours if cli_argv(c)}
    assert len(ours) >= 30, [c.source for c in ours]
    assert {"enhance", "check", "parity", "golden", "evaluate", "oracle", "report", "make-checkpoint"} <= verbs
    assert any(pytest_argv(c) is not None for c in cmds)
    readme = [c for c in ours if c.block.path.name == "README.md"]
    assert readme, "README.md shows no audiosr-verify command"


def test_every_block_says_its_language():
    """A fence without a language would hide its commands from these checks (and from highlighting)."""
    bare = [b.where for b in all_blocks() if not b.lang]
    assert not bare, f"fenced blocks without a language (bash, python, text, ...): {bare}"


def test_every_documented_command_parses():
    parser = build_parser()
    problems = []
    for cmd in all_commands():
        argv = cli_argv(cmd)
        if argv is None:
            continue
        problem = parse_problem(parser, argv)
        if problem:
            problems.append(f"{cmd.where}: {cmd.source}\n    {problem}")
    assert not problems, "documented commands the CLI rejects:\n" + "\n".join(problems)


DOCUMENTED_ENHANCE = "audiosr-verify enhance in.wav -o out/ --random-weights --steps 2"


def test_a_removed_option_is_caught():
    """The check fails when a documented option goes: shown by removing one from a fresh parser."""
    documented = [c for c in all_commands() if c.source.split("#")[0].strip() == DOCUMENTED_ENHANCE]
    assert documented, f"the docs no longer show {DOCUMENTED_ENHANCE!r}; pick another documented command here"
    argv = cli_argv(documented[0])
    parser = build_parser()
    assert parse_problem(parser, argv) is None
    remove_option(subparser(parser, "enhance"), "--random-weights")
    problem = parse_problem(parser, argv)
    assert problem and "--random-weights" in problem, problem
    # and a command with an option, a verb or a choice that never existed
    fresh = build_parser()
    assert "unrecognized arguments: --no-such-option" in parse_problem(
        fresh, ["enhance", "in.wav", "-o", "out/", "--random-weights", "--no-such-option"])
    assert "invalid choice" in parse_problem(fresh, ["no-such-verb", "x"])
    assert "invalid choice" in parse_problem(fresh, ["enhance", "in.wav", "-o", "o/", "--mix", "loudest"])


def _pytest_option_names(config: pytest.Config) -> set[str]:
    parser = config._parser  # the session's option parser: pytest's own options and every plugin's
    names = set()
    for group in [parser._anonymous, *parser._groups]:
        for opt in group.options:
            names.update(opt.names())
    return names


def test_documented_pytest_options_exist(pytestconfig):
    known = _pytest_option_names(pytestconfig)
    assert {"--golden-update", "--audiosr-subject", "--audiosr-checkpoint"} <= known
    problems = []
    for cmd in all_commands():
        argv = pytest_argv(cmd)
        for token in argv or []:
            if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", token):
                name = token.split("=", 1)[0]
                if name not in known and not re.fullmatch(r"-[a-z]+", name):  # -rA, -vv: short flags
                    problems.append(f"{cmd.where}: {cmd.source}: pytest has no option {name}")
                elif re.fullmatch(r"-[a-z]+", name) and name[:2] not in known:
                    problems.append(f"{cmd.where}: {cmd.source}: pytest has no option {name[:2]}")
    assert not problems, "\n".join(problems)


def test_documented_tox_envs_and_scripts_exist():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = {"py311"} | {s.split(":", 1)[1] for s in tox.sections() if s.startswith("testenv:")}
    problems = []
    for cmd in all_commands():
        t = cmd.tokens
        for i, tok in enumerate(t):
            if Path(tok).name == "tox" and "-e" in t[i + 1:-1]:
                env = t[t.index("-e", i + 1) + 1]
                for e in env.split(","):
                    if e not in envs:
                        problems.append(f"{cmd.where}: {cmd.source}: tox.ini has no env {e}")
            if re.fullmatch(r"python[\d.]*", Path(tok).name) and i + 1 < len(t) and t[i + 1].endswith(".py"):
                script = t[i + 1]
                if not script.startswith(("/", "~", ".")) and not (ROOT / script).is_file():
                    problems.append(f"{cmd.where}: {cmd.source}: no script {script} in the repository")
    assert not problems, "\n".join(problems)


def test_documented_extras_exist():
    """``pip install -e ".[docs]"``, ``pip install 'audiosr-verify[ray]'``: extras of pyproject.toml."""
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
                 .get("optional-dependencies", {}))
    assert "docs" in extras
    problems = []
    for cmd in all_commands():
        if any(Path(t).name in ("pip", "pip3") for t in cmd.tokens):
            for tok in cmd.tokens:
                m = re.fullmatch(r"(?:\.|audiosr-verify)\[([\w,-]+)\]", tok)
                for extra in (m.group(1).split(",") if m else []):
                    if extra not in extras:
                        problems.append(f"{cmd.where}: {cmd.source}: pyproject.toml has no extra [{extra}]")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the tests: what a block needs


def _bundled(path: str) -> bool:
    return not path.startswith(("/", "~")) and (ROOT / path).is_file()


def needs_of(block: Block) -> dict[str, str]:
    """What the commands of ``block`` need beyond the repository, each with the reason."""
    found: dict[str, str] = {}
    written: set[str] = set()
    for cmd in commands_of(block):
        argv = cli_argv(cmd)
        pargv = pytest_argv(cmd)
        tokens = cmd.tokens
        if argv:
            verb = argv[0]
            if verb in ("oracle", "compare"):
                found.setdefault("oracle", f"`{cmd.source}` runs the original")
            if (verb == "check" and "original" in argv[1:2]) or any(
                    a == "original" and b in ("--subject", "--against") for b, a in zip(argv, argv[1:])):
                found.setdefault("oracle", f"`{cmd.source}` runs the original")
            for b, a in zip(argv, argv[1:]):
                if b in ("--output", "-o") and a.endswith(CHECKPOINT_SUFFIXES):
                    written.add(a)
        if any(b == "-e" and "oracle" in a.split(",") for b, a in zip(tokens, tokens[1:])) or (
                pargv and any(b == "-m" and "oracle" in a for b, a in zip(pargv, pargv[1:]))):
            found.setdefault("oracle", f"`{cmd.source}` runs the oracle tier")
        if any(b == "--device" and a == "cuda" for b, a in zip(tokens, tokens[1:])) or any(
                b == "--precision" and a == "fp16" for b, a in zip(tokens, tokens[1:])):
            found.setdefault("gpu", f"`{cmd.source}` needs CUDA")
        for b, a in zip(tokens, tokens[1:]):
            if b in ("--checkpoint", "--audiosr-checkpoint") and a not in written and not _bundled(a):
                found.setdefault("checkpoint", f"`{cmd.source}` reads checkpoint {a}")
        for tok in tokens:
            if tok.endswith(CHECKPOINT_SUFFIXES) and tok not in written and not _bundled(tok) \
                    and not (argv and argv[0] == "make-checkpoint"):
                found.setdefault("checkpoint", f"`{cmd.source}` reads checkpoint {tok}")
    return found


def test_blocks_that_need_more_say_so():
    problems = []
    for block in all_blocks():
        unknown = block.needs - NEEDS
        if unknown:
            problems.append(f"{block.where}: unknown needs {sorted(unknown)} (known: {sorted(NEEDS)})")
        for need, why in needs_of(block).items():
            if need not in block.needs:
                problems.append(f"{block.where}: {why}: mark the block <!-- needs: {need} -->")
    assert not problems, "\n".join(problems)


def test_the_needs_rule_sees_an_unmarked_checkpoint(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\naudiosr-verify enhance a.wav -o o/ --checkpoint mine.bin\n```\n\n"
                    "<!-- needs: checkpoint -->\n\n```bash\naudiosr-verify parity mine.ckpt\n```\n\n"
                    "```bash\naudiosr-verify make-checkpoint --preset tiny --output t.bin\n"
                    "audiosr-verify parity t.bin --preset tiny\naudiosr-verify oracle setup\n```\n", encoding="utf-8")
    blocks = blocks_of(page)
    assert [b.needs for b in blocks] == [frozenset(), frozenset({"checkpoint"}), frozenset()]
    assert set(needs_of(blocks[0])) == {"checkpoint"}
    assert set(needs_of(blocks[1])) == {"checkpoint"}
    assert set(needs_of(blocks[2])) == {"oracle"}  # t.bin is written by the block itself


# --------------------------------------------------------------------------- the tests: Python blocks


def test_python_blocks_compile():
    problems = []
    for block in all_blocks():
        if block.lang in ("python", "py"):
            try:
                compile(block.text, block.where, "exec")
            except SyntaxError as exc:
                problems.append(f"{block.where}: {exc}")
    assert not problems, "\n".join(problems)


def test_the_complete_subject_shown_is_the_example():
    shown = [b for b in blocks_of(ROOT / "docs" / "check.md") if b.lang == "python" and "class MinimalPort" in b.text]
    assert shown, "docs/check.md no longer shows examples/subjects/minimal_port.py"
    example = (ROOT / "examples" / "subjects" / "minimal_port.py").read_text(encoding="utf-8")
    assert shown[0].text.strip() == example.strip(), "docs/check.md's copy of minimal_port.py differs from the file"


# --------------------------------------------------------------------------- the tests: commands that run


# Documented commands run as written, in order, in one temporary folder holding in.wav (1 s at 16 kHz)
# and examples/subjects/minimal_port.py: the tiny default, about 20 s on 2 shared cores in all.
RUN = (
    "audiosr-verify make-checkpoint --preset tiny --seed 0 --output tiny.bin",
    DOCUMENTED_ENHANCE,
    "audiosr-verify check examples/subjects/minimal_port.py:make_subject --json out.json",
)


def test_documented_commands_run(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from audiosr_verify.cli.main import main

    documented = {c.source.split(" #")[0].strip(): c for c in all_commands() if cli_argv(c)}
    for line in RUN:
        assert line in documented, f"{line!r} is no longer documented; update RUN in {Path(__file__).name}"
        assert not documented[line].block.needs, f"{documented[line].where} is marked needs: it cannot run here"

    rate = 16000
    t = np.arange(rate) / rate
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    (tmp_path / "examples" / "subjects").mkdir(parents=True)
    (tmp_path / "examples" / "subjects" / "minimal_port.py").write_text(
        (ROOT / "examples" / "subjects" / "minimal_port.py").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    for line in RUN:
        cmd = documented[line]
        expected = int(m.group(1)) if (m := re.search(r"\bexit (\d+)", cmd.comment)) else 0
        code = main(cli_argv(cmd))
        assert code == expected, f"{cmd.where}: `{line}` exited {code}, the page says {expected}"

    assert (tmp_path / "tiny.bin").stat().st_size > 1_000_000
    info = sf.info(tmp_path / "out" / "in.wav")
    assert info.samplerate == 48000 and info.frames == 48000
    import json

    report = json.loads((tmp_path / "out.json").read_text())
    assert report["ok"] is True and report["subject"] == "minimal-port"
