"""Whole audio files in and out: `read_audio` (checked, one-line errors) and `write_audio_atomic`.

`read_audio` is the reading half of the original ``read_wav_file`` (its
preparation half is `audiosr_model.dsp.waveform`); block-wise reading of
inputs of any length is `audiosr_model.io.audio_stream`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosr_model.dsp.resample import resampled_length
from audiosr_model.dsp.waveform import MIN_SAMPLES, SAMPLE_RATE
from audiosr_model.errors import AudioSRError
from audiosr_model.io.publish import publish_file
from audiosr_model.io.safe_open import open_input


def read_audio(path: str | os.PathLike, min_samples_48k: int = MIN_SAMPLES) -> tuple[np.ndarray, int]:
    """Read any file soundfile (libsndfile) can decode: ``(float32 [channels, samples], rate)``.

    Integer PCM is scaled to [-1, 1) the way soundfile does (int16 / 32768 ...),
    which is also what ``torchaudio.load`` returns for WAV.

    Raises :class:`AudioSRError` (message starts with the path) when the file is
    missing, a directory, empty, not decodable (corrupt or truncated header,
    unsupported format, text named ``.wav``), has no samples or channels,
    contains NaN/Inf, or is shorter than ``min_samples_48k`` samples once
    resampled to 48 kHz. That last check replaces the original's
    ``assert waveform_length > 100`` in ``pad_wav`` with a clear message, before
    any work is done.
    """
    with open_input(path, "audio file") as f:  # a regular, non-empty file; never a pipe or device
        try:
            data, rate = sf.read(f, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            # libsndfile's own text says what is wrong (format not recognised, truncated, ...)
            raise AudioSRError(f"cannot decode audio: {exc.error_string}", path) from None
        except (RuntimeError, TypeError, ValueError, OSError) as exc:
            raise AudioSRError(f"cannot decode audio: {exc}", path) from None
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioSRError("audio has no channels", path)
    if data.shape[0] == 0:
        raise AudioSRError("audio contains no samples", path)
    if rate <= 0:
        raise AudioSRError(f"invalid sample rate {rate}", path)
    if not np.all(np.isfinite(data)):
        raise AudioSRError("audio contains NaN or Inf samples", path)
    n = data.shape[0]
    n48 = resampled_length(n, rate, SAMPLE_RATE)
    if n48 < min_samples_48k:
        raise AudioSRError(
            f"audio is too short: {n} samples at {rate} Hz are {n48} samples at 48 kHz; "
            f"at least {min_samples_48k} are needed",
            path,
        )
    # soundfile gives [samples, channels]; the model side works on [channels, samples]
    return np.ascontiguousarray(data.T), int(rate)


def write_audio_atomic(
    path: str | os.PathLike, waveform: np.ndarray, sample_rate: int, subtype: str = "FLOAT"
) -> None:
    """Write ``waveform`` (``[samples]`` or ``[channels, samples]``) atomically.

    The file is written to a temporary name in the destination directory and
    moved over ``path`` with ``os.replace``, so readers never see a half-written
    file and an existing file is only replaced by a complete one. On any
    failure the temporary file is removed and :class:`AudioSRError` is raised
    (also when the directory is missing or not writable). The container format
    comes from the extension of ``path`` (soundfile rules); the file gets the
    usual umask-based permissions, not the 0600 of a temp file.
    """
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise AudioSRError("output directory does not exist", directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise AudioSRError("output directory is not writable", directory)
    data = np.asarray(waveform)
    if data.ndim == 2:
        data = data.T  # soundfile wants [samples, channels]
    elif data.ndim != 1:
        raise AudioSRError(f"cannot write a waveform of shape {np.shape(waveform)}", path)
    container = p.suffix.lstrip(".").upper()
    if container not in sf.available_formats():
        raise AudioSRError(f"unknown audio file extension {p.suffix!r}", path)

    def write(tmp: Path) -> None:
        # format given explicitly: the temp name's suffix would not tell soundfile
        try:
            sf.write(str(tmp), data, int(sample_rate), subtype=subtype, format=container)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioSRError(f"cannot write audio: {exc}", path) from None

    publish_file(p, write, what="audio file")


__all__ = ["read_audio", "write_audio_atomic"]
