"""Hypothesis strategies for audio: the inputs that break audio pipelines.

Every strategy draws *parameters* (kind, level, frequencies, seed, rate,
channels, length) and renders the waveform with numpy, so examples are cheap
to generate and shrink towards short, simple, mono signals. Each returns
``(audio, sample_rate)`` with ``audio`` a float32 array ``[channels, samples]``.

Kinds:

=============  ===============================================================
``tone``       1-3 sinusoids (20 Hz .. 0.45 x rate), RMS -40..-3 dBFS
``noise``      white or band-limited noise, RMS -40..-10 dBFS
``mix``        tones plus noise
``quiet``      tone/noise/mix at RMS -100..-40 dBFS (never silent: peak >= RMS)
``silent``     digital zero
``dc``         a constant (DC offset only; silent by the level contract)
``dc_offset``  content plus a DC offset (peak within +-1)
``clipped``    content driven 2-20x into a hard clip at +-(0.1..1.0)
``denormal``   float32 subnormal values (|x| < 1.2e-38; silent)
``impulsive``  silence with 1-5 clicks, optionally decaying
=============  ===============================================================

Use ``max_seconds`` to keep fast tests short; ``rates`` / ``min_rate`` /
``max_rate`` / ``odd_rates`` and ``max_channels`` bound the shape (odd rates
are off by default: see :func:`sample_rates`). :func:`write_audio` saves
an example with a chosen soundfile subtype (integer subtypes are clipped to
[-1, 1] first, as a converter would).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from hypothesis import strategies as st

KINDS = ("tone", "noise", "mix", "quiet", "silent", "dc", "dc_offset", "clipped", "denormal", "impulsive")
NON_SILENT_KINDS = ("tone", "noise", "mix", "quiet", "dc_offset", "clipped", "impulsive")
SILENT_KINDS = ("silent", "dc", "denormal")
COMMON_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
WAV_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
INTEGER_SUBTYPES = ("PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32")


def db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


# ---------------------------------------------------------------- rendering


def _rms(x: np.ndarray) -> float:
    c = x - x.mean()
    return float(np.sqrt(np.mean(c * c))) if x.size else 0.0


def _scale_to_rms(x: np.ndarray, rms_db: float) -> np.ndarray:
    r = _rms(x)
    return x * (db_to_amp(rms_db) / r) if r > 0 else x


def _tones(rng: np.random.Generator, n: int, rate: int, count: int) -> np.ndarray:
    t = np.arange(n) / rate
    top = max(25.0, 0.45 * rate)
    out = np.zeros(n)
    for _ in range(count):
        f = float(np.exp(rng.uniform(np.log(20.0), np.log(top))))
        out += rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return out


def _noise(rng: np.random.Generator, n: int, rate: int, band_limited: bool) -> np.ndarray:
    x = rng.standard_normal(n)
    if band_limited and n > 8:
        spec = np.fft.rfft(x)
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        spec[freqs > rng.uniform(0.05, 0.45) * rate] = 0
        x = np.fft.irfft(spec, n)
    return x


def _content(rng: np.random.Generator, n: int, rate: int, kind: str) -> np.ndarray:
    if kind == "tone":
        return _tones(rng, n, rate, int(rng.integers(1, 4)))
    if kind == "noise":
        return _noise(rng, n, rate, bool(rng.integers(0, 2)))
    # mix
    return _tones(rng, n, rate, int(rng.integers(1, 3))) + rng.uniform(0.05, 1.0) * _noise(rng, n, rate, True)


def _ensure_audible(x: np.ndarray, rms_db: float) -> np.ndarray:
    """Content that renders as (almost) nothing (e.g. one sample): fall back to an impulse at that RMS."""
    if _rms(x) > 0:
        return _scale_to_rms(x, rms_db)
    y = np.zeros_like(x)
    y[len(y) // 2] = 1.0
    return _scale_to_rms(y, rms_db) if len(y) > 1 else y + db_to_amp(rms_db)


def render(kind: str, n: int, rate: int, channels: int, seed: int, level_db: float, extra: float) -> np.ndarray:
    """The waveform of one example: float32 ``[channels, n]``.

    ``level_db`` is the RMS per channel in dBFS where the kind has a level;
    ``extra`` in [0, 1] is a kind-specific knob (DC value, clip drive, ...).
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((channels, n), dtype=np.float64)
    for ch in range(channels):
        if kind == "silent":
            continue
        if kind == "dc":
            out[ch] = (2 * extra - 1) or 0.5
        elif kind == "denormal":
            out[ch] = rng.uniform(-1, 1, n) * 1e-39  # float32 subnormal range
        elif kind == "impulsive":
            x = np.zeros(n)
            for _ in range(int(rng.integers(1, 6))):
                at = int(rng.integers(0, n))
                amp = rng.uniform(0.1, 1.0) * rng.choice([-1.0, 1.0])
                if extra > 0.5:  # a decaying click rather than a single sample
                    tail = np.exp(-np.arange(min(n - at, 2000)) / (rate * 0.002))
                    x[at : at + len(tail)] += amp * tail
                else:
                    x[at] += amp
            out[ch] = np.clip(x, -1, 1)
        elif kind == "clipped":
            limit = 0.1 + 0.9 * extra
            x = _ensure_audible(_content(rng, n, rate, "mix"), -10.0)
            out[ch] = np.clip(x * rng.uniform(2, 20), -limit, limit)
        elif kind == "dc_offset":
            x = _ensure_audible(_content(rng, n, rate, "mix"), level_db)
            x = x / max(1.0, float(np.max(np.abs(x))) / 0.5)  # content peak <= 0.5
            out[ch] = x + (extra - 0.5)  # offset in [-0.5, 0.5]
        else:  # tone, noise, mix, quiet
            base = kind if kind != "quiet" else ("tone", "noise", "mix")[int(rng.integers(0, 3))]
            x = _ensure_audible(_content(rng, n, rate, base), level_db)
            top = float(np.max(np.abs(x)))
            out[ch] = x / top if top > 1 else x  # stay within full scale
    return out.astype(np.float32)


# ---------------------------------------------------------------- strategies


def _level_range(kind: str) -> tuple[float, float]:
    return {
        "tone": (-40.0, -3.0),
        "noise": (-40.0, -10.0),
        "mix": (-40.0, -6.0),
        "quiet": (-100.0, -40.0),
        "dc_offset": (-40.0, -10.0),
    }.get(kind, (-20.0, -20.0))


def sample_rates(min_rate: int = 8000, max_rate: int = 96000, odd_rates: bool = False) -> st.SearchStrategy[int]:
    """Common rates in range, plus other rates in range.

    By default the others are multiples of 1 kHz: random, but cheap to
    resample (the reduced ratio to 48 kHz has at most 48 phases). With
    ``odd_rates`` any integer is drawn; beware that a rate co-prime with 48 kHz
    (e.g. 22051) makes torchaudio's algorithm (model/dsp/resample.py) build 48000
    kernel phases of ~rate taps each: minutes for a fraction of a second.
    """
    common = [r for r in COMMON_RATES if min_rate <= r <= max_rate]
    if odd_rates:
        others = st.integers(min_rate, max_rate)
    else:
        lo, hi = -(-min_rate // 1000), max_rate // 1000
        others = st.integers(lo, hi).map(lambda k: 1000 * k) if lo <= hi else st.nothing()
    return st.one_of(st.sampled_from(common), others) if common else others


@st.composite
def audio(
    draw,
    kinds: Sequence[str] = KINDS,
    *,
    rates: Sequence[int] | None = None,
    min_rate: int = 8000,
    max_rate: int = 96000,
    odd_rates: bool = False,
    min_channels: int = 1,
    max_channels: int = 6,
    min_seconds: float = 0.01,
    max_seconds: float = 30.0,
    min_samples: int = 1,
    level_db: tuple[float, float] | None = None,
) -> tuple[np.ndarray, int]:
    """``(float32 [channels, samples], rate)`` of one of ``kinds``.

    ``rates`` fixes the choice of rates; otherwise see :func:`sample_rates`.
    ``level_db`` overrides the RMS range (dBFS per channel) of kinds that have a level.
    ``min_samples`` is a floor on the length in samples (e.g. 101 at 48 kHz).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown audio kinds {sorted(unknown)}; choose from {KINDS}")
    kind = draw(st.sampled_from(list(kinds)))
    rate = draw(st.sampled_from(list(rates)) if rates else sample_rates(min_rate, max_rate, odd_rates))
    channels = draw(st.integers(min_channels, max_channels))
    seconds = draw(st.floats(min_seconds, max_seconds, allow_nan=False, allow_infinity=False))
    n = max(min_samples, 1, int(round(seconds * rate)))
    lo, hi = level_db or _level_range(kind)
    level = draw(st.floats(lo, hi)) if hi > lo else lo
    extra = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    return render(kind, n, rate, channels, seed, level, extra), rate


def quiet_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """Tone/noise/mix at RMS -100..-40 dBFS (per channel)."""
    return audio(("quiet",), **kw)


def silent_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """Digital zero."""
    return audio(("silent",), **kw)


def dc_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """A constant per channel (DC only)."""
    return audio(("dc",), **kw)


def dc_offset_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    return audio(("dc_offset",), **kw)


def clipped_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    return audio(("clipped",), **kw)


def denormal_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    return audio(("denormal",), **kw)


def impulsive_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    return audio(("impulsive",), **kw)


def tone_noise_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    return audio(("tone", "noise", "mix"), **kw)


def non_silent_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """Any kind whose mono mix is above the silence threshold (quiet included)."""
    return audio(NON_SILENT_KINDS, **kw)


def silent_kinds_audio(**kw) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """Digital zero, DC only, or denormals: all silent under the level contract."""
    return audio(SILENT_KINDS, **kw)


def mono48(strategy: st.SearchStrategy[tuple[np.ndarray, int]]) -> st.SearchStrategy[np.ndarray]:
    """The first channel of examples drawn at 48 kHz (pass ``rates=[48000]`` to the strategy)."""
    return strategy.map(lambda ar: ar[0][0])


def subtypes(format: str = "WAV") -> st.SearchStrategy[str]:
    return st.sampled_from([s for s in WAV_SUBTYPES if sf.check_format(format, s)])


# ---------------------------------------------------------------- files


def write_audio(
    path: str | Path, audio: np.ndarray, rate: int, subtype: str = "FLOAT", format: str | None = None
) -> Path:
    """Write ``audio`` (``[channels, samples]`` or ``[samples]``) with a soundfile subtype.

    ``format`` defaults to the extension of ``path`` (``.wav`` -> WAV). Integer
    subtypes clip to [-1, 1] first (libsndfile would wrap around otherwise).
    Returns the path.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "WAV").upper()
    if not sf.check_format(fmt, subtype):
        raise ValueError(f"soundfile cannot write subtype {subtype} in format {fmt}")
    data = np.asarray(audio)
    data = data.T if data.ndim == 2 else data  # soundfile wants [samples, channels]
    if subtype in INTEGER_SUBTYPES:
        data = np.clip(data, -1.0, 1.0)
    sf.write(str(path), data, int(rate), subtype=subtype, format=fmt)
    return path
