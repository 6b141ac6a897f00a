"""Loudness by pyloudnorm (compare.metrics.loudness_lufs) against the hand-written BS.1770 meter it replaced.

The hand-written meter is kept below, verbatim, as the reference. Signals: the
loudness tests' signals (full-scale and -20 dB 997 Hz sines, speech-like,
tone padded with silence, noise, a signal shorter than one block, silence,
a tone under the -70 LUFS gate), every regression input at its own rate, every
golden of the bundled default, and random lengths (envelope rising steeply, so
that a block placed differently shows) at 8, 11.025, 16, 22.05, 44.1 and 48 kHz.

    python benchmarks/bench_loudness_parity.py [--all]

Prints the worst |difference| in LU per group of signals (--all: every signal).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiosr_verify.compare import metrics as M
from audiosr_verify.util.paths import data_dir
from tests.test_metrics import SR, _noise, _speech_like, _tones


def _k_weighting(sample_rate: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The replaced meter's K-weighting: BS.1770 prototypes (Mansbridge/De Man), bilinear per rate."""
    k = np.tan(np.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([a0, 2 * (k * k - 1), 1 - k / q + k * k]) / a0
    k = np.tan(np.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([a0, 2 * (k * k - 1), 1 - k / q + k * k]) / a0
    return [(shelf_b, shelf_a), (hp_b, hp_a)]


def handwritten_lufs(sig: np.ndarray, sample_rate: float) -> float:
    """The replaced meter (metric definition v1), verbatim."""
    sig = np.asarray(sig, dtype=np.float64)
    for b, a in _k_weighting(sample_rate):
        sig = scipy.signal.lfilter(b, a, sig)
    block, step = int(round(0.4 * sample_rate)), int(round(0.1 * sample_rate))
    if sig.size < block:
        z = np.array([np.mean(sig**2)])
    else:
        csum = np.concatenate([[0.0], np.cumsum(sig**2)])
        starts = np.arange(0, sig.size - block + 1, step)
        z = (csum[starts + block] - csum[starts]) / block
    z = np.maximum(z, 0.0)
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(z)
    gated = levels >= -70.0
    if not gated.any():
        return -math.inf
    relative = -0.691 + 10 * np.log10(np.mean(z[gated])) - 10.0
    gated &= levels > relative
    return float(-0.691 + 10 * np.log10(np.mean(z[gated])))


def signals() -> dict[str, tuple[np.ndarray, int]]:
    from safetensors.numpy import load_file

    out: dict[str, tuple[np.ndarray, int]] = {}
    t = np.arange(3 * SR) / SR
    out["tests:sine997_full_scale"] = (np.sin(2 * np.pi * 997 * t), SR)
    out["tests:sine997_-20dB"] = (0.1 * np.sin(2 * np.pi * 997 * t), SR)
    out["tests:speech_like_2s"] = (_speech_like(2.0), SR)
    tone = 0.1 * np.sin(2 * np.pi * 997 * np.arange(2 * SR) / SR)
    out["tests:tone_then_silence"] = (np.concatenate([tone, np.zeros(2 * SR)]), SR)
    out["tests:noise_1s"] = (_noise(1.0), SR)
    out["tests:noise_0.1s"] = (_noise(0.1), SR)
    out["tests:tones_1.03s"] = (_tones([440, 3000, 9000], 1.03), SR)
    out["tests:silence"] = (np.zeros(SR), SR)
    out["tests:below_the_gate"] = (1e-4 * np.sin(2 * np.pi * 997 * t), SR)
    data = data_dir()
    for p in sorted((data / "regression_inputs").glob("*.wav")):
        x, rate = sf.read(p, dtype="float64", always_2d=True)
        out[f"input:{p.stem}"] = (x.mean(axis=1), rate)
    for p in sorted((data / "regression" / "random-tiny-seed0").glob("*/output.safetensors")):
        x = next(iter(load_file(str(p)).values())).astype(np.float64).reshape(-1)
        out[f"golden:{p.parent.name}"] = (x, 48000)
    rng = np.random.default_rng(0)
    for rate in (8000, 11025, 16000, 22050, 44100, 48000):
        for _ in range(5):
            n = int(rng.integers(int(0.2 * rate), int(4 * rate)))
            out[f"random_{rate}:{n}"] = (0.1 * rng.standard_normal(n) * np.linspace(0.01, 1, n) ** 3, rate)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="print every signal")
    args = ap.parse_args()
    worst: dict[str, float] = {}
    for name, (x, rate) in signals().items():
        ref, new = handwritten_lufs(x, rate), M.loudness_lufs(x, rate)
        diff = 0.0 if (math.isinf(ref) and ref == new) else abs(ref - new)
        group = name.split(":")[0]
        worst[group] = max(worst.get(group, 0.0), diff)
        if args.all:
            print(f"{name:34s} {len(x):8d} samples  hand-written {ref:12.6f}  pyloudnorm {new:12.6f}  |diff| {diff:.1e}")
    print("worst |hand-written - pyloudnorm| (LU):")
    for group, d in worst.items():
        print(f"  {group:14s} {d:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
