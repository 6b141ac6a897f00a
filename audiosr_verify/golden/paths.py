"""The pipeline paths a golden case can exercise, as data (`PATHS`).

Kept apart from `golden.coverage` (which checks the claims and finds the gaps)
so that `golden.cases` can say which paths only the product runs without
importing the checker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PathInfo:
    stage: str  # where in the pipeline
    code: str  # "module:function" that implements it (tests/test_golden_coverage.py checks it exists)
    description: str
    product_only: bool = False  # run by `enhance_file` only, never by a subject's schema `enhance`


PATHS: dict[str, PathInfo] = {
    "full_window": PathInfo(
        "vocoder", "audiosr_model.pipeline:prepare",
        "the input fills its 5.12 s window to the last sample: the end of the window the vocoder makes is "
        "output, not padding that is cut off"),
    "chunking": PathInfo(
        "chunks", "audiosr_model.long_audio:plan_chunks",
        "longer than one chunk (15 s): cut into chunks, each read, resampled and enhanced on its own",
        product_only=True),
    "cross_fade": PathInfo(
        "chunks", "audiosr_model.long_audio:fade_in", "two or more chunk overlaps joined by Hann cross-fades",
        product_only=True),
    "channel_batching": PathInfo(
        "channels", "audiosr_model.audio_channels:enhance_channels",
        "two or more non-silent channels kept (--mix keep), through the networks in one batch", product_only=True),
    "stereo": PathInfo(
        "channels", "audiosr_model.long_audio:mix_channels",
        "two channels of different content and level (6 dB or more apart)"),
    "multichannel": PathInfo(
        "channels", "audiosr_model.long_audio:mix_channels", "three or more channels kept"),
    "silence": PathInfo(
        "level", "audiosr_model.dsp.level:is_silent",
        "a silent channel (or mix) written as digital silence without running the model"),
    "near_silence": PathInfo(
        "level", "audiosr_model.dsp.level:is_silent",
        "a channel 60 dB or more below full scale yet above the -100 dBFS silence threshold: enhanced, at its "
        "own level"),
}
PRODUCT_PATHS = frozenset(name for name, p in PATHS.items() if p.product_only)

__all__ = ["PATHS", "PRODUCT_PATHS", "PathInfo"]
