"""What the golden cases exercise: stages, ``enhance`` options and pipeline paths, declared and checked.

Each case declares the paths it covers (``covers`` in cases.json, `PATHS`);
`claim_problems` checks each claim against the case's input with the model's
own functions where that is cheap (a "chunking" case really is cut into
chunks by `long_audio.plan_chunks`). The options a case exercises are its
effective ``enhance`` options (the store's run settings, then the case's own).

`gaps` lists what no case exercises: an option of ``enhance`` (its argparse
parser, introspected), one of its choices, a pipeline path, a rate family, a
preset's window. An option that does not change the samples written is in
`NOT_OUTPUT`, one the goldens do not cover in `NOT_COVERED`, each with why;
tests/test_golden_coverage.py fails on anything else left uncovered.
`coverage_rows` is the table ``audiosr-verify golden check`` prints and the
docs/golden-verdicts.md shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from audiosr_verify.golden.cases import CASE_OPTIONS, GoldenCase, options_text
from audiosr_verify.golden.paths import PATHS, PRODUCT_PATHS, PathInfo



# Resampling to 48 kHz: each family is one kind of ratio (none; integer up; 3:2; the 147-denominator of the
# 44.1 kHz family).
RATE_FAMILIES: dict[str, tuple[int, ...]] = {
    "8 kHz": (8000,), "11.025 kHz (x1, x2, x4)": (11025, 22050, 44100), "16 kHz": (16000,), "24 kHz": (24000,),
    "32 kHz": (32000,), "48 kHz": (48000,),
}

# enhance options that decide where or how a run happens, not the samples it writes
NOT_OUTPUT: dict[str, str] = {
    "inputs": "every case is one input file",
    "output_dir": "where the file is written; the golden compares what it holds",
    "output": "where the file is written; the golden compares what it holds",
    "overwrite": "whether an existing file may be replaced",
    "timings": "a report about the run, on stderr",
    "timings_json": "a report about the run, in a file of its own",
    "checkpoint": "the weights: each has a golden store of its own (<checkpoint-key>); the bundled one is tiny, "
                  "random weights seed 0",
    "preset": "the weights' layout (see checkpoint); both presets' windows are covered (window_gaps)",
    "config": "the weights' layout (see checkpoint)",
    "random_weights": "the weights (see checkpoint)",
    "weights_seed": "the weights (see checkpoint)",
    "device": "where the networks run; the bundled goldens are made on CPU, and their verdict is meant to hold "
              "on any device (docs/golden-verdicts.md)",
}
# options (or choices) that change the samples but that no golden case runs, and why
NOT_COVERED: dict[str, str] = {
    "compile": "torch.compile generates and builds C++ for the host (about a minute on this CPU) at every new "
               "shape: its verdict is check precision:fp32+compile under the float32 bounds (docs/performance.md, Harness "
               "verdict of the fast paths)",
    "precision=fp16": "no measured bounds (checks/metric_verdict.BOUNDS): float16 has a fast path on CUDA only",
}


def enhance_parser():
    """The ``audiosr-verify enhance`` argparse parser, as the CLI builds it."""
    import argparse

    # Only the enhance verb's own module: cli.main assembles every verb, cli.report among them, which
    # imports this module.
    from audiosr_verify.cli.enhance import add_verbs

    sub = argparse.ArgumentParser(prog="audiosr-verify").add_subparsers(dest="command")
    add_verbs(sub)
    return sub.choices["enhance"]


def output_options(parser=None) -> dict[str, Any]:
    """``dest -> argparse action`` of every option of ``enhance`` (help excepted)."""
    parser = parser or enhance_parser()
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def effective_options(case: GoldenCase, settings) -> dict[str, Any]:
    """The ``enhance`` options (by argparse dest) the case runs with: the store's run settings, then its own."""
    run = settings.for_case(case)
    return {dest: getattr(run, field) for dest, field in CASE_OPTIONS.items()}


# --------------------------------------------------------------------------- the input, as the model sees it


@dataclass(frozen=True)
class InputFacts:
    rate: int
    channels: int
    frames: int
    samples48: int  # output length at 48 kHz (long_audio.output_length)
    chunks: int  # long_audio.plan_chunks
    window_filled: bool  # no padding: the output ends exactly at the end of its last 5.12 s window
    peaks_dbfs: tuple[float, ...]  # per channel, mean removed (level.peak)
    silent: tuple[bool, ...]  # per channel (level.is_silent, at the input's rate, as read_resampled judges)
    mix_silent: bool  # the mono mix (--mix mean)
    correlation: float  # between the first two channels (nan for mono)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def input_facts(path: str | Path) -> InputFacts:
    import soundfile as sf

    from audiosr_model.dsp import level
    from audiosr_model.dsp.waveform import padded_duration
    from audiosr_model.long_audio import CHUNK_SECONDS, OVERLAP_SECONDS, output_length, plan_chunks
    from audiosr_model.pipeline import SAMPLE_RATE

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    total = output_length(x.shape[0], rate)
    plan = plan_chunks(total, int(round(CHUNK_SECONDS * SAMPLE_RATE)), int(round(OVERLAP_SECONDS * SAMPLE_RATE)))
    duration = x.shape[0] / rate
    corr = float("nan")
    if x.shape[1] >= 2 and np.std(x[:, 0]) > 0 and np.std(x[:, 1]) > 0:
        corr = float(np.corrcoef(x[:, 0], x[:, 1])[0, 1])
    return InputFacts(
        int(rate), int(x.shape[1]), int(x.shape[0]), total, len(plan),
        len(plan) == 1 and padded_duration(duration) == duration,
        tuple(level.dbfs(level.peak(c)) for c in x.T), tuple(bool(level.is_silent(c)) for c in x.T),
        bool(level.is_silent(x.mean(axis=1))), corr)


def claim_problems(case: GoldenCase, facts: InputFacts, settings) -> list[str]:
    """Each path ``case`` claims to cover that its input and options do not in fact exercise."""
    mix = effective_options(case, settings)["mix"]
    kept = mix == "keep"
    silent = facts.silent if kept else (facts.mix_silent,)
    active = [p for p, s in zip(facts.peaks_dbfs, facts.silent) if not s]
    holds = {
        "full_window": facts.window_filled,
        "chunking": facts.chunks >= 2,
        "cross_fade": facts.chunks >= 3,
        "channel_batching": kept and len(active) >= 2,
        "stereo": kept and facts.channels == 2 and not any(facts.silent) and abs(
            facts.peaks_dbfs[0] - facts.peaks_dbfs[1]) >= 6 and abs(facts.correlation) < 0.5,
        "multichannel": kept and facts.channels >= 3,
        "silence": any(silent),
        "near_silence": kept and any(p <= -60 for p in active),
    }
    problems = [f"{case.name}: claims {p!r}, which no code path of that name has" for p in case.covers
                if p not in PATHS]
    problems += [f"{case.name}: claims {p!r}, but its input and options do not exercise it "
                 f"({PATHS[p].description})" for p in case.covers if p in holds and not holds[p]]
    return problems


def rate_family(rate: int) -> str | None:
    return next((name for name, rates in RATE_FAMILIES.items() if rate in rates), None)


# --------------------------------------------------------------------------- gaps


def option_gaps(cases: Iterable[GoldenCase], settings, parser=None) -> list[str]:
    """Options of ``enhance`` (and choices of a choice option) that no case runs and no table excuses."""
    cases = list(cases)
    gaps = []
    for dest, action in output_options(parser).items():
        if dest in NOT_OUTPUT or dest in NOT_COVERED:
            continue
        if dest not in CASE_OPTIONS:
            gaps.append(f"--{dest.replace('_', '-')}: no golden case can run it (add it to golden.cases.CASE_OPTIONS "
                        "and to a case, or to golden.coverage.NOT_OUTPUT / NOT_COVERED with why)")
            continue
        values = [effective_options(c, settings)[dest] for c in cases]
        if action.choices:
            gaps += [f"--{dest.replace('_', '-')} {choice}: run by no golden case" for choice in action.choices
                     if choice not in values and f"{dest}={choice}" not in NOT_COVERED]
        elif all(v == action.default for v in values):
            gaps.append(f"--{dest.replace('_', '-')}: every golden case runs its default ({action.default!r})")
    return gaps


def path_gaps(cases: Iterable[GoldenCase]) -> list[str]:
    covered = {p for c in cases for p in c.covers}
    return [f"{name} ({p.stage}: {p.description}): exercised by no golden case"
            for name, p in PATHS.items() if name not in covered]


def rate_gaps(facts: Iterable[InputFacts]) -> list[str]:
    seen = {rate_family(f.rate) for f in facts}
    return [f"inputs at {name}: no golden case" for name in RATE_FAMILIES if name not in seen]


def window_gaps(cases_facts: Iterable[tuple[GoldenCase, InputFacts]]) -> list[str]:
    """Presets whose window no case fills exactly (a ``full_window`` case of that length)."""
    from audiosr_model import config

    filled = {f.samples48 for c, f in cases_facts if "full_window" in c.covers and f.window_filled}
    gaps = []
    for name in sorted(config.PRESETS):
        window = int(round(config.preset(name).audio.segment_seconds * 48000))
        if window not in filled:
            gaps.append(f"preset {name}: no case fills exactly one window of {window / 48000:g} s")
    return gaps


# --------------------------------------------------------------------------- the table


def _input_text(f: InputFacts) -> str:
    return f"{f.rate / 1000:g} kHz, {f.channels} ch, {f.seconds:.2f} s"


def command_options(case: GoldenCase, settings, parser=None) -> str:
    """The options the case runs that differ from ``enhance``'s defaults, as its command line writes them."""
    defaults = {dest: a.default for dest, a in output_options(parser).items()}
    defaults["format"] = defaults.get("format") or "wav"  # with --output-dir: the float WAV
    changed = {dest: v for dest, v in effective_options(case, settings).items() if v != defaults.get(dest)}
    return options_text(changed)


def coverage_rows(cases: Iterable[GoldenCase], settings, inputs_dir: str | Path) -> list[dict[str, str]]:
    """One row per case: its input, the ``enhance`` options it runs, and the stage: path it exercises."""
    parser = enhance_parser()
    rows = []
    for case in cases:
        f = input_facts(Path(inputs_dir) / case.input)
        stages: dict[str, list[str]] = {}
        if f.rate != 48000:
            stages["resample"] = [rate_family(f.rate) or f"{f.rate} Hz"]
        for p in case.covers:
            stages.setdefault(PATHS[p].stage, []).append(p)
        if f.chunks > 1:
            stages["chunks"].append(f"{f.chunks} chunks")
        rows.append({"case": case.name, "tier": case.tier, "input": _input_text(f),
                     "enhance options": command_options(case, settings, parser) or "-",
                     "golden": f"of {case.golden}" if case.golden else "own",
                     "exercises": "; ".join(f"{stage}: {', '.join(v)}" for stage, v in stages.items()) or "-"})
    return rows


def coverage_markdown(rows: list[dict[str, str]]) -> str:
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


__all__ = ["NOT_COVERED", "NOT_OUTPUT", "PATHS", "PRODUCT_PATHS", "RATE_FAMILIES", "InputFacts", "PathInfo",
           "claim_problems", "command_options", "coverage_markdown", "coverage_rows", "effective_options",
           "enhance_parser", "input_facts", "option_gaps", "output_options", "path_gaps", "rate_family", "rate_gaps",
           "window_gaps"]
