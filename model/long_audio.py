"""Files of any length: streamed reading, chunking with cross-fades, channels, atomic output.

An input up to ``CHUNK_SECONDS`` long is read whole and enhanced as one
segment, exactly as the original does. A longer input is cut (in the 48 kHz
domain) into chunks of ``CHUNK_SECONDS`` that overlap by at least
``OVERLAP_SECONDS``; each chunk is read from disk on its own, resampled,
enhanced, and cross-faded into the output with a raised-cosine (Hann) fade
over the overlap, then written. Memory therefore depends on the chunk
length, not on the file's duration.

Channels: ``mix="keep"`` (the default) enhances every channel as its own mono
signal (`audio_channels.enhance_channels`, several per network pass) and
writes as many channels as came in; ``"mean"`` averages them (in float64, so
finite samples near the float32 limit cannot overflow the sum) and ``"first"``
keeps channel 0, as the original does; both write mono.

Resampling a chunk alone gives the same samples as resampling the whole file
(away from the file's ends) because each read starts on a sample where the
input and output grids coincide and carries a margin wider than the
resampling kernel.

The output is published by ``audiosr_model.io.publish``: a temporary file beside
the target, renamed when complete (never a partial file, the umask's mode),
exclusive unless ``overwrite``. Its format comes from ``out_format`` or the
target's extension (`OUTPUT_FORMATS`).

This is the product layer: it gives the pipeline its stage hook
(`audiosr_model.runtime.stages.stage`: per-stage wall times for ``enhance
--timings`` and the stage-scoped memory policy), so mono segments, batched
chunks and batched channels are measured and trimmed alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from audiosr_model.audio_channels import DEFAULT_CHANNEL_BATCH, enhance_channels
from audiosr_model.audio_options import (  # noqa: F401  (MIX_MODES, OUTPUT_FORMATS: this module's names too)
    MIX_MODES,
    OUTPUT_FORMATS,
    SEED_RANGE,
    check_run_options,
    output_format,
)
from audiosr_model.dsp import level
from audiosr_model.dsp.resample import resample
from audiosr_model.dsp.waveform import MIN_SAMPLES, SAMPLE_RATE, samples_at_48k
from audiosr_model.dsp.waveform import samples_at_48k as output_length  # noqa: F401  (old name; one release)
from audiosr_model.errors import AudioSRError
from audiosr_model.io.audio_stream import check_audio_file, read_audio_block
from audiosr_model.io.publish import publish_file, write_error
from audiosr_model.nets.latent_diffusion import LatentDiffusion
from audiosr_model.pipeline import (
    Randomness,
    SegmentResult,
    check_segment,
    enhance_segment,
    finish_segment,
    generate_many,
    prepare_segment,
)
from audiosr_model.runtime import memory, timings
from audiosr_model.runtime.stages import stage

CHUNK_SECONDS = 15.0
OVERLAP_SECONDS = 2.0


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


def mix_channels(block: np.ndarray, mix: str) -> np.ndarray:
    """``[C, N]`` -> ``[C_out, N]`` float32: all channels (keep), their mean or channel 0 (mono)."""
    if mix == "keep":
        return np.asarray(block, dtype=np.float32)
    if mix == "first":
        return np.asarray(block[:1], dtype=np.float32)
    # float64 sum: channels of finite float32 samples near +-3.4e38 would overflow a float32 sum
    return block.mean(axis=0, dtype=np.float64, keepdims=True).astype(np.float32)


def read_resampled(path: str, info, start48: int, end48: int, mix: str) -> np.ndarray:
    """Samples [start48, end48) of the file's channels (or mono mix) at 48 kHz: ``[C_out, n]`` float32."""
    sr = info.samplerate
    g = math.gcd(sr, SAMPLE_RATE)
    in_step, out_step = sr // g, SAMPLE_RATE // g  # grids coincide every in_step input samples
    margin = in_step * math.ceil(0.05 * sr / in_step) if sr != SAMPLE_RATE else 0
    a = (start48 // out_step) * in_step - margin
    a = max(a, 0)
    b = min(info.frames, math.ceil(end48 * sr / SAMPLE_RATE) + margin + in_step)
    block = mix_channels(read_audio_block(path, a, b), mix)  # [C_out, samples], validated
    out = np.zeros((block.shape[0], end48 - start48), dtype=np.float32)
    offset = a // in_step * out_step
    for c, x in enumerate(block):
        if level.is_silent(x):
            # Silence is judged at the input's own rate: resampling a DC offset (zero-padded
            # at the file's ends) rings, and would turn a silent file into a non-silent one.
            continue
        if sr != SAMPLE_RATE:
            x = resample(torch.from_numpy(np.ascontiguousarray(x)), sr, SAMPLE_RATE).numpy()
        x = x[start48 - offset : end48 - offset]
        out[c, : x.shape[-1]] = x  # shorter only by ceil rounding at the very end of the file
    if not np.isfinite(out).all():
        top = float(np.max(np.abs(block.astype(np.float64))))
        raise AudioSRError(f"samples too large to process: peak {top:.3g} overflows float32 when resampled "
                           f"from {sr} Hz to {SAMPLE_RATE} Hz; scale the file down", path)
    return out


@dataclass
class FileResult:
    input_path: str
    output_path: str
    input_rate: int
    channels: int
    duration: float
    output_channels: int
    output_samples: int
    chunks: int
    silent_chunks: int  # silent segments: one per chunk and output channel
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
    mix: str = "keep",
    filter_type: str | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
    progress: ProgressFn | None = None,
    out_format: str | None = None,
    overwrite: bool = True,
    channel_batch: int = DEFAULT_CHANNEL_BATCH,
    publish: Callable[[Path, Callable[[Path], None]], object] | None = None,
    batch_chunks: int = 1,
) -> FileResult:
    """Enhance one file to 48 kHz (its channels, or mono with ``mix`` mean/first), published atomically.

    ``publish(path, writer)`` replaces the default publisher (a caller that
    holds a `publish.Reservation` passes its ``publish``); ``overwrite``
    applies to the default one. ``batch_chunks`` > 1 runs that many chunks
    of a long mono output through the networks in one batched pass
    (`pipeline.generate_many`: each chunk keeps its own seed and draws, so
    the result equals the chunk-by-chunk one up to float reassociation);
    several output channels are batched by ``channel_batch`` instead.
    """
    check_run_options(steps, guidance_scale, seed, level_mode, mix)
    input_path, output_path = str(input_path), Path(output_path)
    fmt = output_format(output_path, out_format)
    info = check_audio_file(input_path, MIN_SAMPLES, scan=False)  # header and length: the one check of both
    total = samples_at_48k(info.frames, info.samplerate)
    chunk = int(round(chunk_seconds * SAMPLE_RATE))
    overlap = int(round(overlap_seconds * SAMPLE_RATE))
    plan = plan_chunks(total, chunk, overlap)
    out_channels = info.channels if mix == "keep" else 1
    result = FileResult(input_path, str(output_path), info.samplerate, info.channels,
                        info.frames / info.samplerate, out_channels, total, len(plan), 0)
    groups = math.ceil(out_channels / max(1, channel_batch)) if out_channels > 1 else 1

    def chunk_duration(start: int, end: int) -> float:
        # one segment: the original's duration (input rate); chunks: their own length
        return info.frames / info.samplerate if len(plan) == 1 else (end - start) / SAMPLE_RATE

    def chunk_seed_of(i: int) -> int:
        return (seed + i) % (SEED_RANGE[1] + 1)

    def chunk_error(exc: AudioSRError, where: str, block: np.ndarray) -> AudioSRError:
        return AudioSRError(f"{exc} in {where}, with seed {seed}, {steps} steps, guidance {guidance_scale:g} "
                            f"(input peak {float(np.max(np.abs(block))):.3g})", input_path)

    def enhance_chunk(i: int, start: int, end: int) -> np.ndarray:
        with timings.stage("read_resample"):
            block = read_resampled(input_path, info, start, end, mix)
        duration = chunk_duration(start, end)
        chunk_seed = chunk_seed_of(i)
        calls = [0]

        def report_step(step, n):
            calls[0] += 1
            unit = i * groups + min((calls[0] - 1) // n, groups - 1)
            progress("step", unit * n + (n - step.index), n * len(plan) * groups)

        step_cb = report_step if progress is not None else None

        try:
            if out_channels == 1:
                segs = [enhance_segment(net, block[0], duration, Randomness(chunk_seed), steps, guidance_scale,
                                        level_mode, filter_type, step_cb, stages=stage)]
            else:
                segs = enhance_channels(net, block, duration, chunk_seed, steps, guidance_scale, level_mode,
                                        filter_type, step_cb, batch=channel_batch, stages=stage)
        except AudioSRError as exc:
            if exc.path is not None:
                raise
            where = f"chunk {i + 1} of {len(plan)}" if len(plan) > 1 else "the segment"
            raise chunk_error(exc, where, block) from None
        for seg in segs:
            _record(result, seg)
        return np.stack([seg.waveform for seg in segs])

    def enhance_group(first: int, bounds: list[tuple[int, int]]) -> list[np.ndarray]:
        """Chunks ``first ..`` of a mono output in one batched pass; ``[1, n]`` each, in order."""
        blocks, segs, live = [], [], []
        for k, (start, end) in enumerate(bounds):
            with timings.stage("read_resample"):
                blocks.append(read_resampled(input_path, info, start, end, mix)[0])
            segs.append(None)
        preps, rngs = [], []
        try:
            for k, ((start, end), x) in enumerate(zip(bounds, blocks)):
                if check_segment(x, level_mode):
                    segs[k] = SegmentResult(np.zeros(x.shape[-1], dtype=np.float32), silent=True)
                    continue
                rng = Randomness(chunk_seed_of(first + k))
                preps.append(prepare_segment(x, chunk_duration(start, end), rng, filter_type, stages=stage))
                rngs.append(rng)
                live.append(k)
            if live:
                calls = [0]

                def report_step(step, n):
                    calls[0] += 1
                    done = (first + len(bounds)) * n if calls[0] >= n else first * n + calls[0] * len(bounds)
                    progress("step", min(done, n * len(plan)), n * len(plan))

                outs = generate_many(net, preps, rngs, steps, guidance_scale,
                                     report_step if progress is not None else None, stages=stage)
                for k, prep, out in zip(live, preps, outs):
                    segs[k] = finish_segment(out.postprocessed, blocks[k], prep, level_mode, stages=stage)
        except AudioSRError as exc:
            if exc.path is not None:
                raise
            where = f"chunks {first + 1} to {first + len(bounds)} of {len(plan)}"
            raise chunk_error(exc, where, np.concatenate(blocks)) from None
        for seg in segs:
            _record(result, seg)
        return [seg.waveform[None] for seg in segs]

    def chunk_outputs():
        """``(i, start, end, out [C_out, n])`` for every chunk, in order."""
        group = max(1, batch_chunks) if (out_channels == 1 and len(plan) > 1) else 1
        for first in range(0, len(plan), group):
            bounds = plan[first : first + group]
            if len(bounds) == 1:
                outs = [enhance_chunk(first, *bounds[0])]
            else:
                outs = enhance_group(first, bounds)
            if len(plan) > 1:
                memory.release()  # what these chunks freed goes back to the OS: the peak stays one pass's
            for k, out in enumerate(outs):
                yield first + k, bounds[k][0], bounds[k][1], out

    def write(tmp: Path) -> None:
        container, subtype, _ = OUTPUT_FORMATS[fmt]
        try:
            writer = sf.SoundFile(str(tmp), mode="w", samplerate=SAMPLE_RATE, channels=out_channels,
                                  subtype=subtype, format=container)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioSRError(f"cannot write output: {write_error(exc, output_path)}", output_path) from None
        try:
            _write_chunks(writer)
        except BaseException:
            try:
                writer.close()
            except (sf.LibsndfileError, RuntimeError, OSError):
                pass  # the error already on its way says more; the temporary file goes anyway
            raise
        try:
            writer.close()
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioSRError(f"cannot write output: {write_error(exc, output_path)}", output_path) from None

    def _write_chunks(writer) -> None:
        """Enhance chunk by chunk, cross-fading each overlap, and append the frames as they are final."""
        tail: np.ndarray | None = None  # overlap region of the previous chunk, not yet written
        prev_end = 0
        for i, start, end, out in chunk_outputs():  # out: [C_out, n]
            if tail is not None:
                n_ov = prev_end - start
                ramp = fade_in(n_ov)
                out = out.copy()
                out[:, :n_ov] = tail * (1.0 - ramp) + out[:, :n_ov] * ramp
            if i + 1 < len(plan):
                keep = end - plan[i + 1][0]
                _write_frames(writer, out[:, : out.shape[1] - keep], output_path)
                tail = out[:, out.shape[1] - keep :]
            else:
                _write_frames(writer, out, output_path)
            prev_end = end
            if progress is not None:
                progress("chunk", i + 1, len(plan))

    if publish is not None:
        publish(output_path, write)
    else:
        publish_file(output_path, write, overwrite=overwrite, what="output")
    return result


def _write_frames(writer, frames: np.ndarray, path: Path) -> None:
    """Append ``[C, n]`` frames; a full disk or a vanished directory becomes one line naming the output."""
    if writer.subtype != "FLOAT":  # integer PCM: full scale is the limit (the level contract keeps |y| <= 1)
        frames = np.clip(frames, -1.0, 1.0)
    data = np.ascontiguousarray(frames.T)
    try:
        with timings.stage("write"):
            writer.write(data)
            writer.flush()
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioSRError(f"cannot write output: {write_error(exc, path)}", path) from None


def _record(result: FileResult, seg) -> None:
    result.silent_chunks += int(seg.silent)
    if seg.cutoff_hz is not None:
        result.cutoff_hz.append(seg.cutoff_hz)
    if seg.filter_type is not None:
        result.filter_types.append(seg.filter_type)
    result.level.append(seg.level_info)
