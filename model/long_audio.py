"""Files of any length: streamed reading, chunking with cross-fades, atomic output.

An input up to ``CHUNK_SECONDS`` long is read whole and enhanced as one
segment, exactly as the original does. A longer input is cut (in the 48 kHz
domain) into chunks of ``CHUNK_SECONDS`` that overlap by at least
``OVERLAP_SECONDS``; each chunk is read from disk on its own, resampled,
enhanced, and cross-faded into the output with a raised-cosine (Hann) fade
over the overlap, then written. Memory therefore depends on the chunk
length, not on the file's duration.

Resampling a chunk alone gives the same samples as resampling the whole file
(away from the file's ends) because each read starts on a sample where the
input and output grids coincide and carries a margin wider than the
resampling kernel.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from audiosr_model import level
from audiosr_model.audio_stream import read_audio_block, read_audio_info
from audiosr_model.errors import AudioSRError
from audiosr_model.latent_diffusion import LatentDiffusion
from audiosr_model.pipeline import MIN_SAMPLES, SAMPLE_RATE, Randomness, enhance_segment
from audiosr_model.resample import resample

CHUNK_SECONDS = 15.0
OVERLAP_SECONDS = 2.0
MIX_MODES = ("mean", "first")


def output_length(num_frames: int, sample_rate: int) -> int:
    """Samples at 48 kHz for an input of ``num_frames`` at ``sample_rate``: round(duration x 48000)."""
    return int(round(num_frames * SAMPLE_RATE / sample_rate))


def plan_chunks(total: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Chunk boundaries [start, end) over ``total`` samples, evenly spread.

    Every chunk is ``chunk`` long (the last ends at ``total``) and neighbours
    overlap by at least ``overlap``.
    """
    if total <= chunk:
        return [(0, total)]
    count = math.ceil((total - overlap) / (chunk - overlap))
    step = (total - chunk) / (count - 1)
    starts = [round(i * step) for i in range(count)]
    return [(s, s + chunk) for s in starts]


def fade_in(length: int) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1; ``fade_in + fade_in[::-1] == 1``."""
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def read_resampled(path: str, info, start48: int, end48: int, mix: str) -> np.ndarray:
    """Samples [start48, end48) of the file's mono mix resampled to 48 kHz."""
    sr = info.samplerate
    g = math.gcd(sr, SAMPLE_RATE)
    in_step, out_step = sr // g, SAMPLE_RATE // g  # grids coincide every in_step input samples
    margin = in_step * math.ceil(0.05 * sr / in_step) if sr != SAMPLE_RATE else 0
    a = (start48 // out_step) * in_step - margin
    a = max(a, 0)
    b = min(info.frames, math.ceil(end48 * sr / SAMPLE_RATE) + margin + in_step)
    block = read_audio_block(path, a, b)  # [channels, samples], validated
    mono = block[0] if mix == "first" else block.mean(axis=0)
    if level.is_silent(mono):
        # Silence is judged at the input's own rate: resampling a DC offset (zero-padded
        # at the file's ends) rings, and would turn a silent file into a non-silent one.
        return np.zeros(end48 - start48, dtype=np.float32)
    if sr != SAMPLE_RATE:
        mono = resample(torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)), sr, SAMPLE_RATE).numpy()
    offset = a // in_step * out_step
    out = mono[start48 - offset : end48 - offset]
    if out.shape[-1] < end48 - start48:  # ceil rounding at the very end of the file
        out = np.pad(out, (0, end48 - start48 - out.shape[-1]))
    return out.astype(np.float32)


@dataclass
class FileResult:
    input_path: str
    output_path: str
    input_rate: int
    channels: int
    duration: float
    output_samples: int
    chunks: int
    silent_chunks: int
    cutoff_hz: list[float] = field(default_factory=list)
    filter_types: list[str] = field(default_factory=list)
    level: list[dict] = field(default_factory=list)


ProgressFn = Callable[[str, int, int], None]  # (what, done, total)


def enhance_file(
    net: LatentDiffusion,
    input_path: str | Path,
    output_path: str | Path,
    *,
    steps: int = 50,
    guidance_scale: float = 3.5,
    seed: int = 42,
    level_mode: str = "preserve",
    mix: str = "mean",
    filter_type: str | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
    progress: ProgressFn | None = None,
) -> FileResult:
    """Enhance one file to a 48 kHz mono float WAV, written atomically."""
    if mix not in MIX_MODES:
        raise AudioSRError(f"unknown channel mix {mix!r}; use {' or '.join(MIX_MODES)}")
    input_path, output_path = str(input_path), Path(output_path)
    info = read_audio_info(input_path)
    total = output_length(info.frames, info.samplerate)
    if total < MIN_SAMPLES:
        raise AudioSRError(
            f"audio too short: {info.frames} samples at {info.samplerate} Hz "
            f"({total} at 48 kHz; need at least {MIN_SAMPLES})",
            input_path,
        )
    chunk = int(round(chunk_seconds * SAMPLE_RATE))
    overlap = int(round(overlap_seconds * SAMPLE_RATE))
    plan = plan_chunks(total, chunk, overlap)
    result = FileResult(input_path, str(output_path), info.samplerate, info.channels, info.frames / info.samplerate, total, len(plan), 0)
    writer, tmp = _open_output(output_path)
    try:
        tail: np.ndarray | None = None  # overlap region of the previous chunk, not yet written
        prev_end = 0
        for i, (start, end) in enumerate(plan):
            mono = read_resampled(input_path, info, start, end, mix)
            # one segment: the original's duration (input rate); chunks: their own length
            duration = info.frames / info.samplerate if len(plan) == 1 else (end - start) / SAMPLE_RATE
            step_cb = None
            if progress is not None:
                step_cb = lambda step, n, i=i: progress("step", (i * n) + (n - step.index), n * len(plan))
            seg = enhance_segment(
                net, mono, duration, Randomness(seed + i), steps, guidance_scale,
                level_mode, filter_type, step_cb,
            )
            _record(result, seg)
            out = seg.waveform
            if tail is not None:
                n_ov = prev_end - start
                ramp = fade_in(n_ov)
                out = out.copy()
                out[:n_ov] = tail * (1.0 - ramp) + out[:n_ov] * ramp
            if i + 1 < len(plan):
                keep = end - plan[i + 1][0]
                writer.write(out[: len(out) - keep])
                tail = out[len(out) - keep :]
            else:
                writer.write(out)
            prev_end = end
            if progress is not None:
                progress("chunk", i + 1, len(plan))
        writer.close()
        os.replace(tmp, output_path)
    except BaseException:
        writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return result


def _record(result: FileResult, seg) -> None:
    result.silent_chunks += int(seg.silent)
    if seg.cutoff_hz is not None:
        result.cutoff_hz.append(seg.cutoff_hz)
    if seg.filter_type is not None:
        result.filter_types.append(seg.filter_type)
    result.level.append(seg.level_info)


def _open_output(path: Path):
    """A float WAV writer on a temporary file beside ``path`` (renamed on success)."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise AudioSRError("output directory does not exist", directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial.wav", dir=directory)
        os.close(fd)
        writer = sf.SoundFile(tmp, mode="w", samplerate=SAMPLE_RATE, channels=1, subtype="FLOAT", format="WAV")
    except OSError as exc:
        raise AudioSRError(f"cannot write output: {exc.strerror or exc}", path) from None
    except sf.LibsndfileError as exc:
        raise AudioSRError(f"cannot write output: {exc}", path) from None
    return writer, tmp
