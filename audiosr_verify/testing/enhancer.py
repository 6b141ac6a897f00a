"""What the ``enhance`` and ``golden_check`` fixtures run: the session's subject on what a user has.

`Enhancer` turns an audio file, an array or a bundled `GoldenCase` into the
48 kHz float32 output of the session's subject: ``reference`` runs this
package's ``enhance_file`` (the product: preserve level, long audio in
chunks); any other subject runs its schema ``enhance`` (faithful level,
channel 0), as ``audiosr-verify golden --subject`` does. The output is an
`Enhanced` array that remembers its `Source` (the input file's sha256, rate
and channels, the run settings and the subject), so ``golden_check`` records
that provenance in the golden's ``meta.json`` and can tell a changed input
from a changed model.

Everything a test hands over is checked before any model runs (`case_job`,
`file_job`, `waveform_job` make a checked `Job`; `Enhancer.run` runs it). A
waveform has one layout, `WAVEFORM_LAYOUT`: ``[samples]`` or ``[samples,
channels]`` (frames first, as soundfile reads a file) with at most
`MAX_CHANNELS` channels. An array that is empty, not numeric, 0-d, 3-D or
more, non-finite anywhere, or 2-D the other way round (``(2, 48000)``) is
refused with one line saying so: a verification tool must not guess which
axis is time. The settings a test overrides (`RUN_OVERRIDES`) are checked by
the ``enhance`` CLI's own rules (`audiosr_model.audio_options`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from audiosr_model.errors import AudioSRError

from audiosr_verify.golden.store import SAMPLE_RATE, GoldenCase, RunSettings, enhance_case, subject_producer
from audiosr_verify.util.hashing import sha256_bytes, sha256_file


@dataclass(frozen=True)
class Source:
    """What an output was made from: the input (a file, or an in-memory waveform) and how."""

    file: str | None  # the input file as recorded in the golden (relative to the rootdir when inside it)
    path: Path | None  # where it is on this machine
    sha256: str  # the file's bytes, or the waveform's float32 samples with its rate and shape
    sample_rate: int
    channels: int
    frames: int
    settings: RunSettings | None = None

    def case(self, name: str) -> GoldenCase:
        """The golden case ``name`` of this input (its nominal band limit: half its rate, below 48 kHz)."""
        cutoff = self.sample_rate / 2 if self.sample_rate < SAMPLE_RATE else None
        kind = "file" if self.file else "waveform"
        return GoldenCase(name, self.file, self.sample_rate, cutoff, self.sha256, kind=kind, tier="",
                          description=f"{self.channels} channel(s), {self.frames} frames at {self.sample_rate} Hz")


class Enhanced(np.ndarray):
    """A 48 kHz float32 output that carries its `Source` (``.source``) through slicing and arithmetic."""

    source: Source | None = None

    def __new__(cls, data: Any, source: Source | None):
        obj = np.asarray(data, dtype=np.float32).view(cls)
        obj.source = source
        return obj

    def __array_finalize__(self, obj) -> None:
        self.source = getattr(obj, "source", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        if arr.ndim == 0:  # x.max(), x.mean(): a plain number, as with any array
            return arr.view(np.ndarray)[()]
        return super().__array_wrap__(arr, context, return_scalar)


def find_input(path: str | os.PathLike, search: list[Path]) -> Path:
    """``path`` as given (absolute, or from the current directory, like open()), else in ``search`` folders."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        if not p.is_file():
            raise AudioSRError("not an audio file (no such file)" if not p.exists() else "not a regular file", p)
        return p.resolve()
    for folder in search:
        if (folder / p).is_file():
            return (folder / p).resolve()
    looked = ", ".join(dict.fromkeys([str(Path.cwd())] + [str(f) for f in search]))
    raise AudioSRError(f"no such audio file (looked in {looked})", p)


def recorded_name(path: Path, rootdir: Path) -> str:
    """How a golden records its input file: relative to the rootdir (portable), else absolute."""
    try:
        return Path(os.path.relpath(path, rootdir)).as_posix()
    except ValueError:  # another drive
        return str(path)


def file_source(path: Path, rootdir: Path, settings: RunSettings | None = None) -> Source:
    from audiosr_model.io.audio_stream import read_audio_info

    info = read_audio_info(path)
    return Source(recorded_name(path, rootdir), path, sha256_file(path), int(info.samplerate), int(info.channels),
                  int(info.frames), settings)


# The one waveform layout of the plugin, as soundfile reads a file: frames first. A second axis longer than
# this is not taken for channels: an array of 17+ "channels" is a [channels, samples] array the other way round.
MAX_CHANNELS = 16
WAVEFORM_LAYOUT = f"[samples] or [samples, channels] with at most {MAX_CHANNELS} channels (as soundfile reads a file)"
# What a test may override per call (``enhance(x, rate=16000, steps=4)``): the sampling settings of the run,
# never the weights or the subject, which are the session's.
RUN_OVERRIDES = ("seed", "steps", "guidance_scale", "level_mode", "mix")


def check_waveform(waveform: Any) -> np.ndarray:
    """``waveform`` as C-contiguous float32 in `WAVEFORM_LAYOUT`, else an `AudioSRError` saying what is wrong.

    Refused: no numbers (None, strings, objects, bools, complex), a single number, no samples, more than two
    axes, a 2-D array whose orientation is not frames-first (``(2, 48000)`` is channels-first: the message
    says to transpose it; the plugin never guesses), and NaN or Inf anywhere (also values that overflow
    float32). A torch tensor is taken as its numpy array.
    """
    x = _numeric_array(waveform)
    problem = layout_problem(x.shape)
    if problem:
        raise AudioSRError(f"waveform of shape {x.shape}: {problem}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():  # checked after the conversion: a float64 1e39 is Inf in float32
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AudioSRError(f"waveform of shape {x.shape}: {int(bad.sum())} of {x.size} samples are NaN or Inf "
                           f"(as float32), the first at index {first[0] if len(first) == 1 else first}")
    return x


def _numeric_array(waveform: Any) -> np.ndarray:
    if hasattr(waveform, "detach"):  # a torch tensor (bfloat16 has no numpy counterpart: refused below)
        try:
            waveform = waveform.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:
            raise AudioSRError(f"a waveform is an array of numbers; cannot read this tensor as one ({exc})") from None
    try:
        x = np.asarray(waveform)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise AudioSRError(f"a waveform is an array of numbers, got {type(waveform).__name__} ({exc})") from None
    if x.dtype.kind not in "iuf":
        got = type(waveform).__name__ + (f" of dtype {x.dtype}" if isinstance(waveform, np.ndarray) else "")
        raise AudioSRError(f"a waveform is an array of numbers (integer or float), got {got}")
    return x


def layout_problem(shape: tuple[int, ...]) -> str | None:
    """Why an array of ``shape`` is not in `WAVEFORM_LAYOUT` (None when it is)."""
    if len(shape) == 0:
        return f"a single number, not a waveform; a waveform is {WAVEFORM_LAYOUT}"
    if 0 in shape:
        return "no samples (empty)"
    if len(shape) > 2:
        return f"{len(shape)} axes; a waveform is {WAVEFORM_LAYOUT}"
    if len(shape) == 1:
        return None
    samples, channels = shape
    if channels <= MAX_CHANNELS and samples > channels:
        return None
    if samples <= MAX_CHANNELS and channels > samples:
        return (f"channels-first ([channels, samples]); a waveform is {WAVEFORM_LAYOUT}: transpose it "
                "(waveform.T)")
    return f"cannot tell channels from samples; a waveform is {WAVEFORM_LAYOUT}"


def check_rate(rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioSRError(f"a waveform needs its sample rate in Hz, a positive whole number (rate=...), "
                           f"got {rate!r}")
    return int(rate)


def waveform_source(waveform: Any, rate: Any, settings: RunSettings | None = None) -> tuple[np.ndarray, Source]:
    """A user's array (see `check_waveform`) as float32 [N, C], and its `Source`."""
    x = check_waveform(waveform)
    rate = check_rate(rate)
    if x.ndim == 1:
        x = x[:, None]
    digest = sha256_bytes(f"float32 {x.shape[0]}x{x.shape[1]} @{rate}:".encode() + x.tobytes())
    return x, Source(None, None, digest, rate, int(x.shape[1]), int(x.shape[0]), settings)


def run_settings(base: RunSettings, overrides: dict[str, Any]) -> RunSettings:
    """``base`` with a test's overrides, checked by the rules of the ``enhance`` CLI (`check_run_options`)."""
    from audiosr_model.audio_options import check_run_options

    unknown = sorted(set(overrides) - set(RUN_OVERRIDES))
    if unknown:
        raise AudioSRError(f"unknown setting {', '.join(map(repr, unknown))}; a run takes "
                           f"{', '.join(RUN_OVERRIDES)}")
    settings = replace(base, **overrides) if overrides else base
    check_run_options(settings.steps, settings.guidance_scale, settings.seed, settings.level_mode, settings.mix)
    return settings


@dataclass(frozen=True)
class Job:
    """One checked run, ready for the model: the case (its input file in ``inputs_dir``), settings, provenance."""

    case: GoldenCase
    inputs_dir: Path
    settings: RunSettings
    source: Source | None = None


def case_job(case: GoldenCase, inputs_dir: Path, settings: RunSettings) -> Job:
    return Job(case, Path(inputs_dir), settings)


def file_job(path: Path, rootdir: Path, settings: RunSettings) -> Job:
    source = file_source(path, rootdir, settings)
    return Job(GoldenCase(_work_name(path.stem), path.name, source.sample_rate, None, source.sha256), path.parent,
               settings, source)


def waveform_job(waveform: Any, rate: Any, workdir: Path, settings: RunSettings) -> Job:
    """Checks the array, then writes it as the run's input file (exact float32 samples) under ``workdir``."""
    import soundfile as sf

    x, source = waveform_source(waveform, rate, settings)
    name = f"waveform-{source.sha256[:12]}"
    inputs = workdir / "inputs"  # apart from the outputs: enhance_file writes <name>.wav into workdir
    inputs.mkdir(exist_ok=True)
    sf.write(str(inputs / f"{name}.wav"), x, source.sample_rate, subtype="FLOAT")
    return Job(GoldenCase(name, f"{name}.wav", source.sample_rate, None, source.sha256), inputs, settings, source)


class Enhancer:
    """The session's subject as a function: a checked `Job` in, its 48 kHz output out (an `Enhanced`)."""

    def __init__(self, settings: RunSettings, net=None, subject=None):
        if (net is None) == (subject is None):
            raise ValueError("Enhancer: give either our network or an activated subject")
        self.settings = settings
        self.net = net
        self.subject = subject

    def run(self, job: Job, workdir: Path) -> Enhanced:
        """The output of ``job``: float32 [N] at 48 kHz ([N, C] when ``mix="keep"`` kept several channels)."""
        if self.net is not None:
            out = enhance_case(self.net, job.case, job.settings, job.inputs_dir, workdir)
        else:
            out = subject_producer(self.subject, job.settings, job.inputs_dir)(job.case)
        return Enhanced(_checked_output(out, job), job.source)


def _checked_output(out: Any, job: Job) -> np.ndarray:
    """The subject's output in the plugin's layout; an empty, misshapen or non-finite one is an error."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    who = f"the output of {job.settings.subject or 'reference'} for {job.case.name}"
    problem = layout_problem(out.shape)
    if problem:
        raise AudioSRError(f"{who} has shape {out.shape}: {problem}")
    if not np.all(np.isfinite(out)):
        raise AudioSRError(f"{who} is not finite")
    return out


def _work_name(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem) or "audio"


__all__ = ["MAX_CHANNELS", "RUN_OVERRIDES", "WAVEFORM_LAYOUT", "Enhanced", "Enhancer", "Job", "Source", "case_job",
           "check_rate", "check_waveform", "file_job", "file_source", "find_input", "layout_problem", "recorded_name",
           "run_settings", "waveform_job", "waveform_source"]
