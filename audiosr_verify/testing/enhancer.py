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
    from audiosr_model.audio_stream import read_audio_info

    info = read_audio_info(path)
    return Source(recorded_name(path, rootdir), path, sha256_file(path), int(info.samplerate), int(info.channels),
                  int(info.frames), settings)


def waveform_source(waveform: Any, rate: int, settings: RunSettings | None = None) -> tuple[np.ndarray, Source]:
    """A user's array ([N], or [N, C] as soundfile reads it) as float32 [N, C], and its `Source`."""
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().cpu().numpy()
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise AudioSRError(f"enhance: a waveform is [samples] or [samples, channels], got shape {x.shape}")
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioSRError(f"enhance: a waveform needs its sample rate (rate=...), got {rate!r}")
    x = np.ascontiguousarray(x)
    digest = sha256_bytes(f"float32 {x.shape[0]}x{x.shape[1]} @{int(rate)}:".encode() + x.tobytes())
    return x, Source(None, None, digest, int(rate), int(x.shape[1]), int(x.shape[0]), settings)


class Enhancer:
    """The session's subject as a function: audio in, its 48 kHz output out (an `Enhanced`)."""

    def __init__(self, settings: RunSettings, net=None, subject=None):
        if (net is None) == (subject is None):
            raise ValueError("Enhancer: give either our network or an activated subject")
        self.settings = settings
        self.net = net
        self.subject = subject

    def run_case(self, case: GoldenCase, inputs_dir: Path, workdir: Path, settings: RunSettings | None = None):
        """The output for ``case`` (its input file under ``inputs_dir``) as float32 [N] at 48 kHz."""
        settings = settings or self.settings
        if self.net is not None:
            out = enhance_case(self.net, case, settings, inputs_dir, workdir)
        else:
            out = subject_producer(self.subject, settings, inputs_dir)(case)
        out = np.asarray(out, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(out)):
            raise AudioSRError(f"the output of {settings.subject or 'reference'} for {case.name} is not finite")
        return out

    def run_file(self, path: Path, rootdir: Path, workdir: Path, **overrides: Any) -> Enhanced:
        settings = replace(self.settings, **overrides) if overrides else self.settings
        source = file_source(path, rootdir, settings)
        case = GoldenCase(_work_name(path.stem), path.name, source.sample_rate, None, source.sha256)
        return Enhanced(self.run_case(case, path.parent, workdir, settings), source)

    def run_waveform(self, waveform: Any, rate: int, workdir: Path, **overrides: Any) -> Enhanced:
        import soundfile as sf

        settings = replace(self.settings, **overrides) if overrides else self.settings
        x, source = waveform_source(waveform, rate, settings)
        name = f"waveform-{source.sha256[:12]}"
        inputs = workdir / "inputs"  # apart from the outputs: enhance_file writes <name>.wav into workdir
        inputs.mkdir(exist_ok=True)
        sf.write(str(inputs / f"{name}.wav"), x, source.sample_rate, subtype="FLOAT")  # exact float32 samples
        case = GoldenCase(name, f"{name}.wav", source.sample_rate, None, source.sha256)
        return Enhanced(self.run_case(case, inputs, workdir, settings), source)


def _work_name(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem) or "audio"


__all__ = ["Enhanced", "Enhancer", "Source", "file_source", "find_input", "recorded_name", "waveform_source"]
