"""Hostile options of `evaluate`, `enhance` and `golden`: refused before any model is built, outputs checked first.

Issue 21. Each case runs ``audiosr-verify`` in a child process under the
limits of `test_hostile_support.run_cli` and asserts the refusal contract
(`assert_refused`): non-zero exit, exactly one line on stderr starting with
``audiosr-verify`` and naming the option or file and the problem, no
traceback, bounded time and memory, every file in the folder as before, and
``$TMPDIR`` empty. The cases are grouped by the failure each one used to show:

  wrong verdict   success (or a verdict) without anything compared: an empty
                  corpus, a ``--case``/``--fast`` filter keeping nothing, a
                  store without goldens, a ``--timings-json`` that failed
                  reported with exit 0;
  traceback       a value only the worker or the sampler refused (NaN
                  guidance, seed -1);
  hang            a value that would block or ask for unbounded work (a pipe
                  as checkpoint, 2**40 workers);
  partial output  folders made (``-o a/b/out``, a golden store) and left
                  behind by a run that failed before its first result;
  unclear message many lines (a table, a progress bar) or one error row per
                  file instead of one line up front;
  lost result     an output written over an input, a result or a golden.

Then both directions: a small valid `enhance` and `evaluate` (tiny preset,
random weights, one DDIM step, 0.3 s of audio) still succeed with the early
checks in place. Fast tier: every refusal is one child process of a few
seconds; the valid runs cost a few seconds each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_hostile_inputs import fifo, golden_store, text, wav
from tests.test_hostile_support import assert_refused, hostile_env, partial_leftovers, run_cli, snapshot

# ---------------------------------------------------------------- makers

TINY = ["--random-weights", "--steps", "1"]


def corpus(t: Path, *names: str) -> Path:
    """A corpus folder holding a short tone under each name (none: an empty folder)."""
    root = t / "corpus"
    root.mkdir()
    for name in names:
        wav(root / name)
    return root


def _evaluate(t: Path, *extra, out: str = "out") -> list[str]:
    return ["evaluate", str(corpus(t, "a.wav")), "-o", out, *TINY, *extra]


def _enhance(t: Path, *extra, out: str | None = "out") -> list[str]:
    where = ["-o", out] if out is not None else []
    return ["enhance", str(wav(t / "in.wav")), *where, *TINY, *extra]


def _golden(*extra) -> list[str]:
    return ["golden", "check", "--case", "noise_burst_16k", *extra]


def dying_subject(t: Path) -> Path:
    """A subject whose factory kills the worker process that builds it: the run fails before any result."""
    return text(t / "dying.py", "import os\n\n\ndef make_subject(context):\n    os._exit(3)\n")


def inputs_copy(t: Path) -> Path:
    """A copy of the bundled regression inputs (cases.json and the one fast case's file)."""
    from audiosr_verify.util.paths import data_dir

    src = data_dir() / "regression_inputs"
    dst = t / "inputs"
    dst.mkdir()
    index = json.loads((src / "cases.json").read_text())
    index["cases"] = [c for c in index["cases"] if c["name"] == "noise_burst_16k"]
    (dst / "cases.json").write_text(json.dumps(index))
    for case in index["cases"]:
        (dst / case["input"]).write_bytes((src / case["input"]).read_bytes())
    return dst


def empty_cases(t: Path) -> Path:
    (t / "inputs").mkdir()
    text(t / "inputs" / "cases.json", json.dumps({"schema_version": 1, "cases": []}))
    return t / "inputs"


# ---------------------------------------------------------------- cases
# name -> make(tmp) -> (argv, the option or path the line must name, words it must contain[, extra env])

EVALUATE = {
    # ---- wrong verdict: nothing evaluated is never "0 files, OK"
    "evaluate/wrong verdict/empty corpus": lambda t: (
        ["evaluate", str(corpus(t)), "-o", "out", *TINY], t / "corpus", ("no readable audio",)),
    "evaluate/wrong verdict/every file filtered out": lambda t: (
        (wav(corpus(t) / ".hidden.wav"), text(t / "corpus" / "notes.txt", "x"),
         ["evaluate", str(t / "corpus"), "-o", "out", *TINY])[-1], t / "corpus",
        ("no files with an audio extension",)),
    # ---- traceback: values only a worker or the sampler used to refuse
    "evaluate/traceback/guidance nan": lambda t: (_evaluate(t, "--guidance", "nan"), "--guidance", ("finite",)),
    "evaluate/traceback/guidance inf": lambda t: (_evaluate(t, "--guidance", "inf"), "--guidance", ("finite",)),
    "evaluate/traceback/seed -1": lambda t: (_evaluate(t, "--seed", "-1"), "--seed", ("from 0 to 4294967295",)),
    "evaluate/traceback/seed 2**32": lambda t: (_evaluate(t, "--seed", str(2**32)), "--seed", ("from 0 to",)),
    # ---- unclear message: one error row per file instead of one line up front
    "evaluate/unclear message/steps 100000": lambda t: (_evaluate(t, "--steps", "100000"), "--steps",
                                                        ("from 1 to 1000",)),
    "evaluate/unclear message/missing checkpoint": lambda t: (
        ["evaluate", str(corpus(t, "a.wav")), "-o", "out", "--checkpoint", "nope.bin"], "nope.bin",
        ("not found",)),
    "evaluate/unclear message/--address without --engine ray": lambda t: (
        _evaluate(t, "--address", "auto"), "--address", ("--engine ray",)),
    # ---- hang
    "evaluate/hang/checkpoint is a named pipe": lambda t: (
        ["evaluate", str(corpus(t, "a.wav")), "-o", "out", "--checkpoint", str(fifo(t / "c.bin"))], t / "c.bin",
        ("named pipe",)),
    "evaluate/hang/--workers 2**40": lambda t: (_evaluate(t, "--workers", str(2**40)), "--workers",
                                                ("from 1 to",)),
    "evaluate/hang/the only audio file is a named pipe": lambda t: (
        (corpus(t), fifo(t / "corpus" / "a.wav"), ["evaluate", str(t / "corpus"), "-o", "out", *TINY])[-1],
        t / "corpus", ("named pipe",)),
    "evaluate/hang/run.json in -o is a named pipe": lambda t: (
        ((t / "out").mkdir(), fifo(t / "out" / "run.json"), _evaluate(t))[-1], "out/run.json", ("named pipe",)),
    "evaluate/hang/results.jsonl in -o is a named pipe": lambda t: (
        ((t / "out").mkdir(), fifo(t / "out" / "results.jsonl"), _evaluate(t))[-1], "out/results.jsonl",
        ("not a regular file",)),
    # ---- partial output: nothing made by a run that fails before its first result
    "evaluate/partial output/worker dies before the first result": lambda t: (
        _evaluate(t, "--subject", f"{dying_subject(t)}:make_subject", out="new/deep/out"), "a.wav",
        ("worker process died",)),
    "evaluate/partial output/-o under a file": lambda t: (
        _evaluate(t, out=str(text(t / "blocker", "x")) + "/out"), t / "blocker", ("not a directory",)),
    # ---- lost result: an earlier run's results are never mixed or replaced
    "evaluate/lost result/-o holds another tool's run.json": lambda t: (
        ((t / "out").mkdir(), text(t / "out" / "run.json", '{"something": "else"}'), _evaluate(t))[-1],
        "out/run.json", ("not a run description",)),
}

ENHANCE = {
    # ---- wrong verdict: an output that cannot be written is never exit 0
    "enhance/wrong verdict/--timings-json is a directory": lambda t: (
        _enhance(t, "--timings-json", str((t / "tj").mkdir() or "tj")), "tj", ("existing directory",)),
    # ---- lost result
    "enhance/lost result/--timings-json onto the input": lambda t: (
        _enhance(t, "--timings-json", "in.wav"), "in.wav", ("overwrite the input",)),
    "enhance/lost result/--timings-json onto the --output": lambda t: (
        _enhance(t, "--output", "o.wav", "--timings-json", "o.wav", out=None), "o.wav", ("same file",)),
    "enhance/lost result/--timings-json onto a result in -o": lambda t: (
        _enhance(t, "--timings-json", "out/in.wav"), "out/in.wav", ("same file",)),
    # ---- partial output
    "enhance/partial output/--timings-json refused after -o a/b/out was made": lambda t: (
        _enhance(t, "--timings-json", str((t / "tj").mkdir() or "tj"), out="a/b/out"), "tj",
        ("existing directory",)),
    "enhance/partial output/--timings-json into a missing directory": lambda t: (
        _enhance(t, "--timings-json", "nope/t.json"), "nope", ("does not exist",)),
    "enhance/partial output/--timings-json under a file": lambda t: (
        _enhance(t, "--timings-json", str(text(t / "f", "x")) + "/t.json"), t / "f", ("not a directory",)),
    "enhance/partial output/--output into a missing directory": lambda t: (
        _enhance(t, "--output", "nope/o.wav", out=None), "nope", ("does not exist",)),
    # ---- unclear message: a model built, a table and an error per file, instead of one line up front
    "enhance/unclear message/--compile without a C++ compiler": lambda t: (
        _enhance(t, "--compile", "--device", "cpu"), "--compile", ("C++ compiler",),
        {"CXX": str(t / "no-such-compiler")}),
    "enhance/unclear message/--precision fp16 on a CPU without float16": lambda t: (
        _enhance(t, "--precision", "fp16", "--device", "cpu"), "--precision fp16", ("float16",)),
    "enhance/unclear message/--attention flash": lambda t: (_enhance(t, "--attention", "flash"), "--attention",
                                                            ("invalid choice",)),
    "enhance/unclear message/--level loud": lambda t: (_enhance(t, "--level", "loud"), "--level",
                                                       ("invalid choice",)),
    "enhance/unclear message/--mix average": lambda t: (_enhance(t, "--mix", "average"), "--mix",
                                                        ("invalid choice",)),
    "enhance/unclear message/--format mp3": lambda t: (_enhance(t, "--format", "mp3"), "--format",
                                                       ("invalid choice",)),
    # ---- traceback / hang: the shared validators (model/audio_options.py) through argparse
    "enhance/traceback/--batch-chunks 0": lambda t: (_enhance(t, "--batch-chunks", "0"), "--batch-chunks",
                                                     ("from 1 to 64",)),
    "enhance/hang/--batch-chunks 2**31": lambda t: (_enhance(t, "--batch-chunks", str(2**31)), "--batch-chunks",
                                                    ("from 1 to 64",)),
    "enhance/traceback/--guidance 1e309": lambda t: (_enhance(t, "--guidance", "1e309"), "--guidance",
                                                     ("finite",)),
    "enhance/traceback/--seed 1e3": lambda t: (_enhance(t, "--seed", "1e3"), "--seed", ("whole number",)),
}

GOLDEN = {
    # ---- wrong verdict: a check that compares nothing never says OK (nor runs a model to say FAILED)
    "golden/wrong verdict/--case filtered out by --fast": lambda t: (
        ["golden", "check", "--case", "tones_8k", "--fast"], "--fast", ("nothing to compare",)),
    "golden/wrong verdict/store without any golden": lambda t: (
        _golden("--golden-dir", str((t / "store").mkdir() or t / "store")), t / "store" / "random-tiny-seed0",
        ("no golden", "nothing to compare")),
    "golden/wrong verdict/cases.json with no case": lambda t: (
        ["golden", "check", "--inputs-dir", str(empty_cases(t))], t / "inputs" / "cases.json",
        ("no regression cases",)),
    # ---- lost result: --json never replaces what the run reads
    "golden/lost result/--json onto cases.json": lambda t: (
        _golden("--inputs-dir", str(inputs_copy(t)), "--json", str(t / "inputs" / "cases.json")),
        t / "inputs" / "cases.json", ("overwrite the input",)),
    "golden/lost result/--json onto a golden's meta.json": lambda t: (
        _golden("--golden-dir", str(golden_store(t).parent.parent), "--json", str(t / "store" / "random-tiny-seed0"
                                                                                / "noise_burst_16k" / "meta.json")),
        t / "store" / "random-tiny-seed0" / "noise_burst_16k" / "meta.json", ("overwrite the input",)),
    # ---- unclear message: "loading subject ..." and then the error
    "golden/unclear message/--subject file missing": lambda t: (_golden("--subject", "nope.py:make"), "nope.py",
                                                                ("not found",)),
    # ---- partial output
    "golden update/partial output/new --golden-dir, then the subject is missing": lambda t: (
        ["golden", "update", "--golden-dir", "new/deep/store", "--case", "noise_burst_16k", "--subject",
         "nope.py:make"], "nope.py", ("not found",)),
    "golden update/partial output/--golden-dir under a file": lambda t: (
        ["golden", "update", "--golden-dir", str(text(t / "f", "x")) + "/store", "--case", "noise_burst_16k"],
        t / "f", ("not a directory",)),
    "golden/partial output/--json into a missing directory": lambda t: (_golden("--json", "nope/g.json"), "nope",
                                                                       ("does not exist",)),
    # ---- traceback
    "golden/traceback/--weights-seed -1": lambda t: (_golden("--weights-seed", "-1"), "--weights-seed",
                                                     ("from 0 to",)),
}

CASES = {**EVALUATE, **ENHANCE, **GOLDEN}
CLASSES = ("wrong verdict", "traceback", "hang", "partial output", "unclear message", "lost result")


def _cpu_has_native_fp16() -> bool:
    from audiosr_model.runtime.precision import native_support

    return native_support("fp16", "cpu") is None


# Cases whose refusal depends on the machine: skipped where the premise does not hold.
PREMISES = {"enhance/unclear message/--precision fp16 on a CPU without float16":
            (lambda: not _cpu_has_native_fp16(), "this CPU runs float16 natively")}


@pytest.fixture(scope="session")
def layout_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verbs-layout-cache")


def test_the_cases_cover_every_verb_and_failure_class():
    assert len(CASES) >= 25
    verbs = {name.split("/")[0].split()[0] for name in CASES}
    classes = {name.split("/")[1] for name in CASES}
    assert verbs == {"evaluate", "enhance", "golden"} and classes == set(CLASSES), (verbs, classes)
    for verb in ("evaluate", "golden"):  # each verb proves it never succeeds without a comparison
        assert any(n.startswith(verb) and "/wrong verdict/" in n for n in CASES), verb


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_option_is_refused_before_any_work(tmp_path, layout_cache, name):
    premise, why = PREMISES.get(name, (lambda: True, ""))
    if not premise():
        pytest.skip(why)
    made = CASES[name](tmp_path)
    argv, named, words = made[:3]
    env = hostile_env(tmp_path, AUDIOSR_VERIFY_CACHE=str(layout_cache), **(made[3] if len(made) > 3 else {}))
    before = snapshot(tmp_path)
    result = run_cli(argv, tmp_path, env)
    assert_refused(result, named, *words, before=before, root=tmp_path)


# ---------------------------------------------------------------- the other direction: valid runs still work


def test_a_small_enhance_with_timings_json_inside_a_new_output_dir_succeeds(tmp_path, layout_cache):
    """--timings-json is checked before the work, after -o is made: a file inside the new -o is fine."""
    env = hostile_env(tmp_path, AUDIOSR_VERIFY_CACHE=str(layout_cache))
    result = run_cli(_enhance(tmp_path, "--timings-json", "a/out/t.json", out="a/out"), tmp_path, env,
                     timeout=120)
    assert result.rc == 0, result.stderr[-3000:]
    data, rate = sf.read(tmp_path / "a" / "out" / "in.wav")
    assert rate == 48000 and np.isfinite(data).all() and len(data) > 0
    timings = json.loads((tmp_path / "a" / "out" / "t.json").read_text())
    assert timings["steps"] == 1 and timings["inputs"] == 1 and "load" in timings["stages"]
    assert partial_leftovers(tmp_path / "a") == [] and os.listdir(tmp_path / "TMPDIR") == []


def test_a_small_evaluate_succeeds_and_says_how_many_files_it_evaluated(tmp_path, layout_cache):
    env = hostile_env(tmp_path, AUDIOSR_VERIFY_CACHE=str(layout_cache))
    result = run_cli(["evaluate", str(corpus(tmp_path, "a.wav")), "-o", "new/out", *TINY], tmp_path, env,
                     timeout=120)
    assert result.rc == 0, result.stderr[-3000:]
    assert "1 files: 1 evaluated now, 0 already done" in " ".join(result.stdout.split())
    summary = json.loads((tmp_path / "new" / "out" / "summary.json").read_text())
    assert summary["counts"]["ok"] == 1
    assert partial_leftovers(tmp_path / "new") == [] and os.listdir(tmp_path / "TMPDIR") == []


# ---------------------------------------------------------------- one definition of each range


def test_every_verb_takes_its_sampling_ranges_from_audio_options():
    """enhance, evaluate and golden refuse the same values with the same words: one set of validators."""
    from audiosr_model import audio_options as ao
    from audiosr_verify.cli.main import build_parser

    parser = build_parser()
    verbs = {"enhance": ["enhance", "x.wav", "-o", "o"], "evaluate": ["evaluate", "c", "-o", "o"]}
    for option, bad, good, check in (("--steps", "0", "1000", ao.check_steps),
                                     ("--guidance", "nan", "100", ao.check_guidance),
                                     ("--seed", str(2**32), "0", ao.check_seed)):
        for verb, argv in verbs.items():
            action = next(a for a in _subparser(parser, verb)._actions if option in a.option_strings)
            assert action.type(good) == check(action.type(good)), (verb, option)
            with pytest.raises(Exception, match="must be a (whole|finite) number"):
                action.type(bad)
    for verb in ("enhance", "evaluate", ("golden", "check"), ("golden", "update")):
        action = next(a for a in _subparser(parser, verb)._actions if "--weights-seed" in a.option_strings)
        with pytest.raises(Exception, match=f"from 0 to {ao.SEED_RANGE[1]}"):
            action.type("-1")


def _subparser(parser, verb):
    path = (verb,) if isinstance(verb, str) else verb
    for name in path:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[name]
    return parser
