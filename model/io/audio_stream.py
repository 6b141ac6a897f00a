"""Validated, block-wise reading of audio files (for inputs of any length).

`read_audio_info` checks what can be checked without decoding samples: the
file exists, is a regular readable non-empty file (``safe_open.open_input``:
a named pipe or a device is refused before it is read, and libsndfile decodes
the very descriptor that was checked), has a format libsndfile reads, is not truncated (WAV/RF64/W64/AIFF/CAF: the data chunk holds as many
bytes as its header declares), has channels, samples and a supported rate.
`read_audio_block` reads a range of frames and rejects NaN/Inf and short
reads. `check_audio_file` does both over the whole file, block by block, so
a caller can refuse a bad file before loading a model or writing anything.
Every problem is an `AudioSRError` naming the file.

Accepted: whatever libsndfile decodes (WAV/RF64/W64 with 8/16/24/32-bit
integer or 32/64-bit float samples, AIFF, FLAC, OGG/Vorbis/Opus, MP3, CAF,
...), any number of channels >= 1 (the caller mixes to mono), sample rates
from `MIN_RATE` to `MAX_RATE`.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from audiosr_model.dsp.waveform import MIN_SAMPLES, samples_at_48k
from audiosr_model.errors import AudioSRError
from audiosr_model.io.safe_open import open_input

MIN_RATE, MAX_RATE = 1000, 384000
SCAN_BLOCK_FRAMES = 1 << 18
# soundfile raises LibsndfileError (a RuntimeError) for bad files, TypeError/ValueError for odd headers
_DECODE_ERRORS = (RuntimeError, TypeError, ValueError, OSError)


@dataclass(frozen=True)
class AudioInfo:
    """What the header says (soundfile's names), read from the checked file."""

    path: str
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


@contextlib.contextmanager
def open_audio(path: str | Path, check_truncation: bool = False) -> Iterator[sf.SoundFile]:
    """libsndfile on the descriptor `safe_open.open_input` checked (a regular file, never a pipe).

    With ``check_truncation`` the container's data chunk is first compared
    with the file's size (see `_data_shortfall`), after the header decodes.
    """
    with open_input(path, "audio file") as f:
        shortfall = _data_shortfall(f, os.fstat(f.fileno()).st_size) if check_truncation else None
        os.lseek(f.fileno(), 0, os.SEEK_SET)  # libsndfile reads the descriptor from where it stands
        try:
            snd = sf.SoundFile(f.fileno(), closefd=False)
        except _DECODE_ERRORS as exc:  # libsndfile reports every malformed file its own way
            raise AudioSRError(f"not a readable audio file ({_reason(exc)})", path) from None
        with snd:
            if shortfall is not None:
                declared, present = shortfall
                raise AudioSRError(f"file is truncated: its header declares {declared} bytes of audio data, "
                                   f"only {present} are present", path)
            yield snd


def read_audio_info(path: str | Path) -> AudioInfo:
    """The header of ``path``, or an AudioSRError saying what is wrong."""
    p = Path(path)
    with open_audio(p, check_truncation=True) as snd:
        info = AudioInfo(str(p), int(snd.samplerate), int(snd.channels), int(snd.frames), snd.format, snd.subtype)
    if info.channels < 1:
        raise AudioSRError("audio has no channels", p)
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioSRError(
            f"unsupported sample rate {info.samplerate} Hz (supported: {MIN_RATE}-{MAX_RATE} Hz)", p
        )
    if info.frames <= 0:
        raise AudioSRError("audio has no samples", p)
    return info


def read_audio_block(path: str | Path, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as float32 [channels, samples]; rejects NaN/Inf and short reads."""
    try:
        with open_audio(path) as f:
            f.seek(start)
            data = f.read(stop - start, dtype="float32", always_2d=True)
    except AudioSRError:
        raise
    except _DECODE_ERRORS as exc:
        raise AudioSRError(f"cannot read audio data ({_reason(exc)})", path) from None
    if data.shape[0] < stop - start:
        raise AudioSRError(
            f"file is truncated: expected {stop - start} frames from {start}, read {data.shape[0]}", path
        )
    if not np.isfinite(data).all():
        raise AudioSRError("audio contains NaN or Inf samples", path)
    return np.ascontiguousarray(data.T)


def check_audio_file(path: str | Path, min_samples_48k: int = MIN_SAMPLES, scan: bool = True):
    """Everything that can be wrong with an input file, checked before any work is done.

    Header checks as :func:`read_audio_info`, the length check (at least
    ``min_samples_48k`` samples once at 48 kHz), then -- with ``scan`` -- a
    pass over all samples in blocks (constant memory) for NaN/Inf and for
    fewer frames than the header promised. Returns soundfile's info.
    """
    info = read_audio_info(path)
    total = samples_at_48k(info.frames, info.samplerate)
    if total < min_samples_48k:
        raise AudioSRError(
            f"audio too short: {info.frames} samples at {info.samplerate} Hz "
            f"({total} at 48 kHz; need at least {min_samples_48k})",
            path,
        )
    if not scan:
        return info
    seen = 0
    try:
        with open_audio(path) as f:
            while True:
                block = f.read(SCAN_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not np.isfinite(block).all():
                    bad = seen + int(np.argwhere(~np.isfinite(block))[0][0])
                    raise AudioSRError(
                        f"audio contains NaN or Inf samples (first at frame {bad}, {bad / info.samplerate:.3f} s)",
                        path,
                    )
                seen += block.shape[0]
                if block.shape[0] < SCAN_BLOCK_FRAMES:
                    break
    except AudioSRError:
        raise
    except _DECODE_ERRORS as exc:
        raise AudioSRError(f"cannot read audio data ({_reason(exc)})", path) from None
    if seen < info.frames:
        raise AudioSRError(f"file is truncated: the header declares {info.frames} frames, only {seen} are readable", path)
    return info


# ---------------------------------------------------------------- truncation


def _data_shortfall(f, size: int) -> tuple[int, int] | None:
    """``(declared, present)`` data bytes when the data chunk is cut short, else None.

    libsndfile opens a WAV/AIFF whose data chunk is shorter than its header
    says without complaint (it only logs "should be ..." and shortens the
    frame count), so a file cut off in transfer would be enhanced as if it
    were complete. We read the chunk headers ourselves for the RIFF family
    (WAV, RIFX, RF64/BW64), Sony Wave64, AIFF/AIFC and CAF. Other containers are
    left to their decoders, which fail on a short read (see read_audio_block).
    Streaming writers that leave the size unset (0 or 0xFFFFFFFF) are accepted.
    """
    try:
        f.seek(0)
        head = f.read(40)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            return _riff_shortfall(f, size, ">" if head[:4] == b"RIFX" else "<")
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _chunks_shortfall(f, size, ">", b"SSND", 12)
        if head[:4] == b"riff" and len(head) >= 40 and head[24:28] == b"wave":
            return _w64_shortfall(f, size)
        if head[:4] == b"caff":
            return _caf_shortfall(f, size)
    except (OSError, struct.error):
        return None
    return None


def _riff_shortfall(f, size: int, endian: str) -> tuple[int, int] | None:
    pos, ds64_data = 12, None
    for _ in range(10000):
        if pos + 8 > size:
            return None
        f.seek(pos)
        cid, csize = struct.unpack(endian + "4sI", f.read(8))
        if cid == b"ds64":
            body = f.read(16)
            if len(body) == 16:
                ds64_data = struct.unpack("<Q", body[8:16])[0]
        if cid == b"data":
            declared = ds64_data if csize == 0xFFFFFFFF and ds64_data is not None else csize
            return _compare(declared, size - pos - 8)
        pos += 8 + csize + (csize & 1)
    return None


def _chunks_shortfall(f, size: int, endian: str, data_id: bytes, pos: int) -> tuple[int, int] | None:
    for _ in range(10000):
        if pos + 8 > size:
            return None
        f.seek(pos)
        cid, csize = struct.unpack(endian + "4sI", f.read(8))
        if cid == data_id:
            return _compare(csize, size - pos - 8)
        pos += 8 + csize + (csize & 1)
    return None


def _w64_shortfall(f, size: int) -> tuple[int, int] | None:
    pos = 40  # riff GUID (16) + size (8) + wave GUID (16)
    for _ in range(10000):
        if pos + 24 > size:
            return None
        f.seek(pos)
        guid, csize = struct.unpack("<16sQ", f.read(24))
        if guid[:4] == b"data":
            return _compare(csize - 24, size - pos - 24)
        if csize < 24:
            return None
        pos += (csize + 7) & ~7
    return None


def _caf_shortfall(f, size: int) -> tuple[int, int] | None:
    pos = 8  # 'caff', version, flags
    for _ in range(10000):
        if pos + 12 > size:
            return None
        f.seek(pos)
        cid, csize = struct.unpack(">4sq", f.read(12))
        if cid == b"data":
            return None if csize < 0 else _compare(csize, size - pos - 12)  # -1: "until the end"
        if csize < 0:
            return None
        pos += 12 + csize
    return None


def _compare(declared: int, present: int) -> tuple[int, int] | None:
    if declared in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF) or declared <= present:
        return None
    return declared, max(present, 0)


def _reason(exc: BaseException) -> str:
    """libsndfile's own explanation, without the path it repeats."""
    text = getattr(exc, "error_string", None) or str(exc)  # LibsndfileError has no path in error_string
    return " ".join(str(text).split()) or type(exc).__name__


__all__ = [
    "MAX_RATE",
    "MIN_RATE",
    "AudioInfo",
    "open_audio",
    "check_audio_file",
    "read_audio_block",
    "read_audio_info",
]
