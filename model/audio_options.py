"""The options of enhancing a file, and their checks: torch-free, so a bad value is refused in milliseconds.

This module is the single home of the sampling options' ranges and of their
validators (`whole_number_in`, `finite_number_in`, `check_steps`, `check_guidance`,
`check_seed`, `check_batch_chunks`): the CLI's argparse types
(``audiosr_verify.cli.common``) wrap these same functions, so a value is
judged, and worded, the same whether it comes from a command line, the corpus
evaluation or a library call. `check_run_options` is called by
`long_audio.enhance_file` and, before any model is loaded, by the CLI; every
message names the option and the value.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from audiosr_model.errors import AudioSRError

MIX_MODES = ("keep", "mean", "first")
LEVEL_MODES = ("preserve", "faithful")  # level.LEVEL_MODES (tests/test_cli_enhance.py checks they agree)
# The one definition of each sampling option's range: `check_run_options`, the CLI's argparse types
# (audiosr_verify.cli.common) and the corpus evaluation all take them from here.
SEED_RANGE = (0, 2**32 - 1)  # numpy's RandomState takes no more; chunk i uses (seed + i) mod 2**32
STEPS_RANGE = (1, 1000)  # DDIM steps over the 1000 training timesteps
GUIDANCE_RANGE = (0.0, 100.0)
BATCH_CHUNKS_RANGE = (1, 64)  # chunks per batched network call (enhance --batch-chunks)
MAX_STEPS = STEPS_RANGE[1]
MAX_GUIDANCE = GUIDANCE_RANGE[1]
# name -> (libsndfile container, sample format, file extension)
OUTPUT_FORMATS = {
    "wav": ("WAV", "FLOAT", ".wav"),
    "wav-pcm16": ("WAV", "PCM_16", ".wav"),
    "wav-pcm24": ("WAV", "PCM_24", ".wav"),
    "flac": ("FLAC", "PCM_24", ".flac"),
    "flac-pcm16": ("FLAC", "PCM_16", ".flac"),
}
EXTENSION_FORMATS = {".wav": "wav", ".flac": "flac"}


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The `OUTPUT_FORMATS` name for ``path``: ``fmt`` if given (it must fit the extension), else by extension."""
    suffix = Path(path).suffix.lower()
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise AudioSRError(f"unknown output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
        if suffix and suffix != OUTPUT_FORMATS[fmt][2]:
            raise AudioSRError(f"the extension {suffix} does not fit the format {fmt} "
                               f"(which writes {OUTPUT_FORMATS[fmt][2]} files)", path)
        return fmt
    if suffix not in EXTENSION_FORMATS:
        raise AudioSRError(f"cannot tell the output format from the extension {suffix or '(none)'!r}; "
                           f"use {' or '.join(EXTENSION_FORMATS)}, or give a format", path)
    return EXTENSION_FORMATS[suffix]


def _span(low: float, high: float | None) -> str:
    show = lambda v: str(v) if isinstance(v, int) else f"{v:g}"  # 4294967295, not 4.29497e+09
    return f"from {show(low)} to {show(high)}" if high is not None else f"of at least {show(low)}"


def whole_number_in(value: object, low: int, high: int | None, what: str) -> int:
    """``value`` if it is an int (not a bool) in [low, high] (no upper bound when None); else a one-line refusal."""
    if type(value) is not int or value < low or (high is not None and value > high):
        raise AudioSRError(f"{what} must be a whole number {_span(low, high)}, got {value!r}")
    return value


def finite_number_in(value: object, low: float, high: float | None, what: str) -> float:
    """``value`` as a float if it is a finite number in [low, high]; NaN, infinities and bools refused."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or value < low or (high is not None and value > high)):
        raise AudioSRError(f"{what} must be a finite number {_span(low, high)}, got {value!r}")
    return float(value)


def check_steps(value: object, what: str = "steps") -> int:
    return whole_number_in(value, *STEPS_RANGE, what)


def check_guidance(value: object, what: str = "guidance scale") -> float:
    return finite_number_in(value, *GUIDANCE_RANGE, what)


def check_seed(value: object, what: str = "seed") -> int:
    return whole_number_in(value, *SEED_RANGE, what)


def check_batch_chunks(value: object, what: str = "batch chunks") -> int:
    return whole_number_in(value, *BATCH_CHUNKS_RANGE, what)


def check_run_options(steps: object, guidance_scale: object, seed: object, level_mode: object,
                      mix: object) -> None:
    """Refuse sampling options the model cannot run with, naming the option, before any work."""
    check_steps(steps)
    check_guidance(guidance_scale)
    check_seed(seed)
    if level_mode not in LEVEL_MODES:
        raise AudioSRError(f"unknown level mode {level_mode!r}; use {' or '.join(LEVEL_MODES)}")
    if mix not in MIX_MODES:
        raise AudioSRError(f"unknown channel mix {mix!r}; use {', '.join(MIX_MODES)}")


__all__ = ["BATCH_CHUNKS_RANGE", "EXTENSION_FORMATS", "GUIDANCE_RANGE", "LEVEL_MODES", "MAX_GUIDANCE", "MAX_STEPS",
           "MIX_MODES", "OUTPUT_FORMATS", "SEED_RANGE", "STEPS_RANGE", "check_batch_chunks", "check_guidance",
           "check_run_options", "check_seed", "check_steps", "finite_number_in", "output_format", "whole_number_in"]
