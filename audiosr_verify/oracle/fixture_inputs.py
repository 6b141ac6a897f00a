"""Deterministic fixture inputs for the oracle and regression goldens.

Every fixture is synthesised with numpy from a fixed seed (``numpy.random.
default_rng``, PCG64) and quantised by this module to integer PCM before it
is written, so the file bytes do not depend on soundfile's float conversion:
the oracle (inside its venv) and the project read the very same float32.

All are 16-bit PCM WAV except ``quiet_16k`` (24-bit: at -80 dBFS a 16-bit
file would hold only about 3 quantisation steps, which would make the
"quiet clip" a quantisation-noise clip). 24-bit samples are exact in float32
too.

    python -m audiosr_verify.oracle.fixture_inputs OUT_DIR
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Fixture:
    name: str
    rate: int
    seconds: float
    channels: int
    subtype: str  # soundfile subtype: PCM_16 or PCM_24
    description: str
    make: Callable[[int, int], np.ndarray]  # (frames, rate) -> float64 [frames, channels] in [-1, 1)

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.rate))

    @property
    def filename(self) -> str:
        return f"{self.name}.wav"


# ------------------------------------------------------------------ building blocks


def _fade(n: int, rate: int, ms: float = 20.0) -> np.ndarray:
    """Raised-cosine fade in and out, so onsets do not splash energy over all bands."""
    k = min(int(rate * ms / 1000), n // 2)
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    env[:k] = ramp
    env[n - k :] = ramp[::-1]
    return env


def _tone_mix(frames: int, rate: int, freqs, amps, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    phases = rng.uniform(0, 2 * np.pi, len(freqs))
    x = sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in zip(freqs, amps, phases))
    # slow amplitude movement so frames differ
    x = x * (1.0 + 0.3 * np.sin(2 * np.pi * 1.7 * t + rng.uniform(0, 2 * np.pi)))
    x = x * _fade(frames, rate)
    return 0.6 * x / np.max(np.abs(x))


def _band_limit(x: np.ndarray, rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero every FFT bin above ``cutoff_hz`` (a brick wall, exact and numpy-only)."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    spec[freqs > cutoff_hz] = 0.0
    return np.fft.irfft(spec, n=len(x))


def _speech_like(frames: int, rate: int, band_hz: float, seed: int) -> np.ndarray:
    """Harmonic 'voice' with a gliding pitch, moving formants and syllable gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    duration = frames / rate
    # pitch contour: slow random walk between 95 and 210 Hz
    knots = np.linspace(0, duration, max(4, int(duration * 3)) + 1)
    f0 = np.interp(t, knots, rng.uniform(95, 210, len(knots)))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    # formants: three resonances whose centres move from syllable to syllable
    n_syl = max(2, int(duration * 4))
    syl_knots = np.linspace(0, duration, n_syl + 1)
    f1 = np.interp(t, syl_knots, rng.uniform(300, 850, n_syl + 1))
    f2 = np.interp(t, syl_knots, rng.uniform(900, 2400, n_syl + 1))
    f3 = np.interp(t, syl_knots, rng.uniform(2400, 3400, n_syl + 1))
    # The pitch and formants move slowly: evaluate the harmonic weights on a
    # coarse grid (every 32 samples) and hold them; sin(k * phase) by the
    # Chebyshev recurrence sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p).
    hop = 32
    coarse = np.arange(0, frames, hop)
    f0c, f1c, f2c, f3c = f0[coarse], f1[coarse], f2[coarse], f3[coarse]
    two_cos = 2.0 * np.cos(phase)
    s_prev, s_cur = np.zeros(frames), np.sin(phase)
    x = np.zeros(frames)
    for k in range(1, int(band_hz / 95) + 1):
        fk = k * f0c
        env = (
            np.exp(-0.5 * ((fk - f1c) / 120) ** 2)
            + 0.7 * np.exp(-0.5 * ((fk - f2c) / 180) ** 2)
            + 0.4 * np.exp(-0.5 * ((fk - f3c) / 250) ** 2)
            + 0.02
        ) / (1.0 + fk / 800.0)
        env = np.where(fk < band_hz * 0.98, env, 0.0)
        x += np.repeat(env, hop)[:frames] * s_cur
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
    # breath noise, band-limited with the rest
    x += 0.01 * rng.standard_normal(frames)
    # syllables: 4 Hz-ish envelope with short pauses
    syl = np.clip(np.sin(np.pi * t * n_syl / duration) ** 2 * 1.4 - 0.2, 0.0, 1.0)
    x = x * syl * _fade(frames, rate)
    x = _band_limit(x, rate, band_hz)
    return 0.7 * x / np.max(np.abs(x))


# ------------------------------------------------------------------ the fixtures


def _mono(fn):
    return lambda frames, rate: fn(frames, rate)[:, None]


def _noise_burst(frames: int, rate: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    x = _band_limit(rng.standard_normal(frames), rate, 6000.0)
    t = np.arange(frames) / rate
    burst = np.clip((t - 0.15) / 0.02, 0, 1) * np.clip((0.85 - t) / 0.05, 0, 1)  # 0.15-0.85 s
    x = x * (0.05 + burst) * _fade(frames, rate)
    return 0.6 * x / np.max(np.abs(x))


def _stereo(frames: int, rate: int) -> np.ndarray:
    left = _tone_mix(frames, rate, [330, 990, 2970, 6100, 11800], [1.0, 0.5, 0.3, 0.2, 0.1], seed=8)
    right = _tone_mix(frames, rate, [196, 784, 3136, 9400], [1.0, 0.6, 0.25, 0.15], seed=9)
    return np.stack([left, 0.8 * right], axis=1)


def _quiet(frames: int, rate: int) -> np.ndarray:
    x = _speech_like(frames, rate, 7000.0, seed=10)
    return x / np.max(np.abs(x)) * 10 ** (-80 / 20)  # peak at -80 dBFS


def _pure_523(frames: int, rate: int) -> np.ndarray:
    t = np.arange(frames) / rate
    return 0.5 * np.sin(2 * np.pi * 523.0 * t) * _fade(frames, rate)


FIXTURES: tuple[Fixture, ...] = (
    Fixture("tone_mix_8k", 8000, 1.0, 1, "PCM_16", "tone mix 220-3.3 kHz at 8 kHz",
            _mono(lambda n, r: _tone_mix(n, r, [220, 660, 1250, 2100, 3300], [1.0, 0.6, 0.4, 0.25, 0.15], seed=1))),
    Fixture("tone_mix_16k", 16000, 1.0, 1, "PCM_16", "tone mix 261-7 kHz at 16 kHz",
            _mono(lambda n, r: _tone_mix(n, r, [261.6, 523.3, 1400, 2900, 4700, 7000], [1.0, 0.7, 0.4, 0.3, 0.2, 0.1], seed=2))),
    Fixture("tone_mix_22k", 22050, 1.0, 1, "PCM_16", "tone mix 300-10 kHz at 22.05 kHz",
            _mono(lambda n, r: _tone_mix(n, r, [300, 1100, 2500, 5200, 8100, 10000], [1.0, 0.6, 0.4, 0.3, 0.2, 0.1], seed=3))),
    Fixture("tone_mix_44k", 44100, 1.0, 1, "PCM_16", "tone mix 440-15 kHz at 44.1 kHz (nothing above 16 kHz)",
            _mono(lambda n, r: _tone_mix(n, r, [440, 1320, 3000, 6200, 9800, 12500, 15000], [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1], seed=4))),
    Fixture("noise_burst_48k", 48000, 1.0, 1, "PCM_16", "white noise band-limited at 6 kHz, burst 0.15-0.85 s, at 48 kHz",
            _mono(_noise_burst)),
    Fixture("clip_1p3s_16k", 16000, 1.3, 1, "PCM_16", "1.3 s speech-like clip at 16 kHz (band 7.5 kHz)",
            _mono(lambda n, r: _speech_like(n, r, 7500.0, seed=6))),
    Fixture("clip_11s_44k", 44100, 11.0, 1, "PCM_16", "11 s speech-like clip at 44.1 kHz, band-limited at 8 kHz",
            _mono(lambda n, r: _speech_like(n, r, 8000.0, seed=7))),
    Fixture("stereo_44k", 44100, 1.0, 2, "PCM_16", "stereo tone mixes at 44.1 kHz, different content per channel",
            _stereo),
    Fixture("silence_48k", 48000, 1.0, 1, "PCM_16", "digital silence at 48 kHz",
            lambda n, r: np.zeros((n, 1))),
    Fixture("quiet_16k", 16000, 1.0, 1, "PCM_24", "speech-like clip peaking at -80 dBFS, 16 kHz, 24-bit",
            _mono(_quiet)),
    Fixture("tone_523_22k", 22050, 1.0, 1, "PCM_16", "pure 523 Hz sine (all energy below 1 kHz) at 22.05 kHz",
            _mono(_pure_523)),
)

BY_NAME = {f.name: f for f in FIXTURES}


def quantize(x: np.ndarray, subtype: str) -> np.ndarray:
    """Integer PCM samples (int16 for PCM_16; int32 with 24 significant bits for PCM_24)."""
    if subtype == "PCM_16":
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    if subtype == "PCM_24":
        q = np.clip(np.round(x * 8388608.0), -8388608, 8388607).astype(np.int32)
        return q << 8  # libsndfile keeps the top 24 bits of int32 input
    raise ValueError(f"unsupported subtype {subtype!r}")


@functools.lru_cache(maxsize=None)
def _generate_cached(name: str) -> tuple[np.ndarray, int]:
    q, rate = synthesise(name)
    q.setflags(write=False)
    return q, rate


def generate(name: str) -> tuple[np.ndarray, int]:
    """Integer PCM samples ``[frames, channels]`` and the rate of one fixture (cached)."""
    q, rate = _generate_cached(name)
    return q.copy(), rate


def synthesise(name: str) -> tuple[np.ndarray, int]:
    """Like ``generate`` but always computed afresh (for determinism checks)."""
    fx = BY_NAME[name]
    x = np.asarray(fx.make(fx.frames, fx.rate), dtype=np.float64)
    assert x.shape == (fx.frames, fx.channels), (name, x.shape)
    return quantize(x, fx.subtype), fx.rate


def as_float32(name: str) -> tuple[np.ndarray, int]:
    """float32 ``[frames, channels]`` exactly as soundfile reads the written file."""
    q, rate = generate(name)
    scale = 32768.0 if q.dtype == np.int16 else 2147483648.0
    return (q.astype(np.float64) / scale).astype(np.float32), rate


def write_fixture_inputs(out_dir: str | Path) -> dict:
    """Write every fixture and an ``inputs.json`` index; return the index."""
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = {"schema_version": SCHEMA_VERSION, "generator": "audiosr_verify.oracle.fixture_inputs", "inputs": {}}
    for fx in FIXTURES:
        q, rate = generate(fx.name)
        path = out / fx.filename
        sf.write(str(path), q, rate, subtype=fx.subtype, format="WAV")
        index["inputs"][fx.name] = {
            "file": fx.filename,
            "sample_rate": rate,
            "channels": fx.channels,
            "frames": fx.frames,
            "seconds": fx.frames / rate,
            "subtype": fx.subtype,
            "description": fx.description,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size,
        }
    (out / "inputs.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


if __name__ == "__main__":
    import sys

    idx = write_fixture_inputs(sys.argv[1] if len(sys.argv) > 1 else "golden/inputs")
    total = sum(v["bytes"] for v in idx["inputs"].values())
    for name, v in idx["inputs"].items():
        print(f"{name:18s} {v['sample_rate']:6d} Hz {v['channels']} ch {v['seconds']:5.2f} s {v['bytes']:8d} B")
    print(f"total {total} B")
