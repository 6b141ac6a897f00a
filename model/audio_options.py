"""The options of enhancing a file, and their checks: torch-free, so a bad value is refused in milliseconds.

`check_run_options` is called by `long_audio.enhance_file` and, before any
model is loaded, by the CLI; every message names the option and the value.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from audiosr_model.errors import AudioSRError

MIX_MODES = ("keep", "mean", "first")
LEVEL_MODES = ("preserve", "faithful")  # level.LEVEL_MODES (tests/test_cli_enhance.py checks they agree)
SEED_RANGE = (0, 2**32 - 1)  # numpy's RandomState takes no more; chunk i uses (seed + i) mod 2**32
MAX_STEPS = 1000  # DDIM steps over the 1000 training timesteps
MAX_GUIDANCE = 100.0
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


def check_run_options(steps: object, guidance_scale: object, seed: object, level_mode: object,
                      mix: object) -> None:
    """Refuse sampling options the model cannot run with, naming the option, before any work."""
    if type(steps) is not int or not 1 <= steps <= MAX_STEPS:
        raise AudioSRError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps!r}")
    if (not isinstance(guidance_scale, (int, float)) or isinstance(guidance_scale, bool)
            or not math.isfinite(guidance_scale) or not 0.0 <= guidance_scale <= MAX_GUIDANCE):
        raise AudioSRError(f"guidance scale must be a finite number from 0 to {MAX_GUIDANCE:g}, "
                           f"got {guidance_scale!r}")
    if type(seed) is not int or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise AudioSRError(f"seed must be a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]}, got {seed!r}")
    if level_mode not in LEVEL_MODES:
        raise AudioSRError(f"unknown level mode {level_mode!r}; use {' or '.join(LEVEL_MODES)}")
    if mix not in MIX_MODES:
        raise AudioSRError(f"unknown channel mix {mix!r}; use {', '.join(MIX_MODES)}")


__all__ = ["EXTENSION_FORMATS", "LEVEL_MODES", "MAX_GUIDANCE", "MAX_STEPS", "MIX_MODES", "OUTPUT_FORMATS",
           "SEED_RANGE", "check_run_options", "output_format"]
