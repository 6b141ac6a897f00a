"""Reproducible inputs of the golden regression cases (``golden/regression_inputs/``).

The generated files are committed; this script is only needed to regenerate
them (for example to add a case). It writes 16-bit PCM WAV files of at most
1.5 s and ``cases.json``, the index `audiosr_verify.golden.load_cases` reads.

Cases:

* synthetic (numpy only, bit-reproducible): tone mixes at 8, 16, 22.05 and
  44.1 kHz, and a white-noise burst between silences at 16 kHz;
* "recordings" made with external tools, each band-limited with scipy to
  several cutoffs (zero-phase elliptic low-pass, order 8):
  speech synthesised by espeak-ng (22.05 kHz; 4, 6 and 8 kHz: espeak's
  formant synthesis has almost nothing above 8 kHz), a plucked chord
  sequence synthesised by sox (44.1 kHz; 4, 8, 12 kHz) and a rain texture
  (sox pink noise with tremolo, plus seeded droplets; 48 kHz; 4, 8, 12 kHz).

The tools (Debian 12: espeak-ng 1.51, SoX 14.4.2)::

    apt-get update && apt-get install -y espeak-ng sox

Their exact command lines are `SPEECH_CMD`, `CHORD_CMD`, `CONCAT_CMD` and
`RAIN_CMD` below (also recorded in ``cases.json``); sox runs with ``-R``
(repeatable: fixed seeds for its noise and dither). Other tool versions may produce
slightly different audio; that is why the files, not the script, are the
reference. Regenerate with::

    python tools/regression_inputs.py --output-dir golden/regression_inputs

and then regenerate the goldens (``audiosr-verify golden update``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

SPEECH_TEXT = "Keep every model honest."
SPEECH_CMD = ["espeak-ng", "-v", "en-us", "-s", "175", "-p", "45", "-a", "110", "-w", "{out}", SPEECH_TEXT]
# One plucked chord per file (six strings, strummed with 30 ms delays), then concatenated.
CHORDS = {"C": ["C3", "E3", "G3", "C4", "E4", "G4"], "Am": ["A2", "E3", "A3", "C4", "E4", "A4"],
          "F": ["F2", "C3", "F3", "A3", "C4", "F4"]}
CHORD_CMD = ["sox", "-R", "-n", "-r", "44100", "-b", "16", "{out}", "synth", "0.5",
             "pluck", "{n0}", "pluck", "{n1}", "pluck", "{n2}", "pluck", "{n3}", "pluck", "{n4}", "pluck", "{n5}",
             "delay", "0", "0.03", "0.06", "0.09", "0.12", "0.15", "remix", "-", "fade", "0", "0.5", "0.08",
             "norm", "-1"]
CONCAT_CMD = ["sox", "-R", "{c0}", "{c1}", "{c2}", "{out}"]
RAIN_CMD = ["sox", "-R", "-n", "-r", "48000", "-b", "16", "-c", "1", "{out}", "synth", "1.5", "pinknoise",
            "highpass", "250", "tremolo", "3.7", "35", "norm", "-6"]

SECONDS = 1.5
PEAK = 0.5  # every input is scaled to this sample peak (16-bit, no clipping)
FAST = ("speech_lp4k", "chord_lp8k", "noise_burst_16k")  # cases in the default (fast) test tier


# --------------------------------------------------------------------------- helpers


def lowpass(x: np.ndarray, rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase elliptic low-pass (order 8, 0.1 dB ripple, 80 dB stop band per pass)."""
    sos = scipy.signal.ellip(8, 0.1, 80, cutoff_hz, btype="low", fs=rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, x)


def finish(x: np.ndarray, rate: int, fade_s: float = 0.01) -> np.ndarray:
    """Fade the ends (no clicks), remove DC, scale to PEAK, quantise to 16-bit values."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = max(1, int(fade_s * rate))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    x[:n] *= ramp
    x[-n:] *= ramp[::-1]
    x *= PEAK / max(np.max(np.abs(x)), 1e-12)
    return np.round(x * 32767) / 32767


def tone_mix(rate: int, freqs: list[float], seconds: float = SECONDS) -> np.ndarray:
    """Tones with fixed phases and slow, different amplitude envelopes (a chord that breathes)."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.zeros_like(t)
    for i, f in enumerate(freqs):
        env = 0.6 + 0.4 * np.sin(2 * np.pi * (0.7 + 0.3 * i) * t + i)
        x += env * np.sin(2 * np.pi * f * t + 0.5 * i) / (1 + 0.3 * i)
    return x


def noise_burst(rate: int, seconds: float = SECONDS, seed: int = 7) -> np.ndarray:
    """Silence, a 0.5 s white-noise burst with 20 ms raised-cosine edges, silence."""
    n = int(round(seconds * rate))
    x = np.zeros(n)
    start, length = int(0.45 * rate), int(0.5 * rate)
    burst = np.random.default_rng(seed).standard_normal(length)
    e = int(0.02 * rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(e) + 0.5) / e)
    burst[:e] *= ramp
    burst[-e:] *= ramp[::-1]
    x[start : start + length] = burst
    return x


def droplets(rate: int, seconds: float, seed: int = 11, per_second: float = 45.0) -> np.ndarray:
    """Seeded rain drops: short decaying sinusoids at random times, pitches and levels."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    x = np.zeros(n)
    for _ in range(int(per_second * seconds)):
        at = int(rng.integers(0, n))
        f = float(rng.uniform(1500, 16000))
        tau = float(rng.uniform(0.002, 0.01))
        m = min(n - at, int(6 * tau * rate))
        t = np.arange(m) / rate
        x[at : at + m] += rng.uniform(0.2, 1.0) * np.exp(-t / tau) * np.sin(2 * np.pi * f * t)
    return x


def _run(cmd: list[str], **fmt: str) -> None:
    argv = [c.format(**fmt) for c in cmd]
    if shutil.which(argv[0]) is None:
        raise SystemExit(f"{argv[0]} not found; install it with: apt-get update && apt-get install -y espeak-ng sox")
    subprocess.run(argv, check=True, capture_output=True)


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return data.mean(axis=1), rate


def _active_window(x: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """``seconds`` of ``x`` starting 30 ms before the first sample above -40 dB of the peak."""
    above = np.flatnonzero(np.abs(x) > 0.01 * np.max(np.abs(x)))
    start = max(0, int(above[0]) - int(0.03 * rate)) if above.size else 0
    out = x[start : start + int(round(seconds * rate))]
    return np.pad(out, (0, max(0, int(round(seconds * rate)) - out.size)))


# --------------------------------------------------------------------------- sources


def speech_source(work: Path) -> tuple[np.ndarray, int]:
    _run(SPEECH_CMD, out=str(work / "speech.wav"))
    x, rate = _read_mono(work / "speech.wav")
    return _active_window(x, rate, SECONDS), rate


def chord_source(work: Path) -> tuple[np.ndarray, int]:
    parts = {}
    for i, notes in enumerate(CHORDS.values()):
        path = work / f"chord{i}.wav"
        _run(CHORD_CMD, out=str(path), **{f"n{j}": note for j, note in enumerate(notes)})
        parts[f"c{i}"] = str(path)
    _run(CONCAT_CMD, out=str(work / "chords.wav"), **parts)
    return _read_mono(work / "chords.wav")


def rain_source(work: Path) -> tuple[np.ndarray, int]:
    _run(RAIN_CMD, out=str(work / "rain.wav"))
    x, rate = _read_mono(work / "rain.wav")
    drops = droplets(rate, x.size / rate)
    return 0.5 * x / np.max(np.abs(x)) + 0.6 * drops / np.max(np.abs(drops)), rate


# --------------------------------------------------------------------------- cases


def build(work: Path) -> list[tuple[dict, np.ndarray]]:
    """(case description, samples) of every case, in index order."""
    cases: list[tuple[dict, np.ndarray]] = []

    def add(name, rate, x, cutoff, kind, description):
        meta = {"name": name, "input": f"{name}.wav", "sample_rate": rate, "cutoff_hz": cutoff,
                "kind": kind, "tier": "fast" if name in FAST else "full", "description": description}
        cases.append((meta, finish(x, rate)))

    add("tones_8k", 8000, tone_mix(8000, [220.0, 523.25, 1046.5, 2093.0, 3520.0]), 4000.0, "synthetic",
        "five tones (220 Hz - 3.5 kHz) with slow envelopes at 8 kHz")
    add("tones_16k", 16000, tone_mix(16000, [150.0, 440.0, 1250.0, 3300.0, 6100.0, 7400.0]), 8000.0, "synthetic",
        "six tones (150 Hz - 7.4 kHz) at 16 kHz")
    add("tones_22k", 22050, tone_mix(22050, [330.0, 990.0, 2970.0, 5500.0, 9100.0], 1.2), 11025.0, "synthetic",
        "five tones (330 Hz - 9.1 kHz) at 22.05 kHz, 1.2 s")
    add("tones_44k", 44100, tone_mix(44100, [100.0, 1000.0, 5000.0, 11000.0, 15500.0], 1.0), 22050.0,
        "synthetic", "five tones (100 Hz - 15.5 kHz) at 44.1 kHz, full band, 1.0 s")
    add("noise_burst_16k", 16000, noise_burst(16000), 8000.0, "synthetic",
        "0.5 s white-noise burst between silences at 16 kHz")
    sources = [
        ("speech", speech_source, (4000.0, 6000.0, 8000.0), f"espeak-ng speech ({SPEECH_TEXT!r})"),
        ("chord", chord_source, (4000.0, 8000.0, 12000.0), "sox plucked chords C, Am, F (0.5 s each)"),
        ("rain", rain_source, (4000.0, 8000.0, 12000.0), "rain texture: sox pink noise + seeded droplets"),
    ]
    for stem, source, cutoffs, what in sources:
        x, rate = source(work)
        for cutoff in cutoffs:
            name = f"{stem}_lp{int(cutoff / 1000)}k"
            add(name, rate, lowpass(x, rate, cutoff), cutoff, "recording",
                f"{what}, {rate / 1000:g} kHz, low-passed at {cutoff / 1000:g} kHz")
    return cases


def generate(output_dir: Path) -> dict:
    """Write every case and ``cases.json`` to ``output_dir`` (replacing the files it owns)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audiosr-inputs-") as tmp:
        cases = build(Path(tmp))
    index = {
        "schema_version": 1,
        "generated_by": "python tools/regression_inputs.py --output-dir golden/regression_inputs",
        "tools": {"espeak-ng": _tool_version(["espeak-ng", "--version"]), "sox": _tool_version(["sox", "--version"])},
        "commands": {"speech": SPEECH_CMD, "chord": CHORD_CMD, "concat": CONCAT_CMD, "rain": RAIN_CMD},
        "cases": [],
    }
    for meta, x in cases:
        path = output_dir / meta["input"]
        sf.write(str(path), x.astype(np.float32), meta["sample_rate"], subtype="PCM_16", format="WAV")
        meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        meta["seconds"] = round(x.size / meta["sample_rate"], 4)
        index["cases"].append(meta)
    (output_dir / "cases.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate the golden regression inputs.")
    p.add_argument("--output-dir", default="golden/regression_inputs", help="where to write (default %(default)s)")
    args = p.parse_args(argv)
    index = generate(Path(args.output_dir))
    total = sum((Path(args.output_dir) / c["input"]).stat().st_size for c in index["cases"])
    for c in index["cases"]:
        print(f"{c['name']:<18} {c['sample_rate']:>6} Hz {c['seconds']:.2f} s  cutoff {c['cutoff_hz']:>7.0f} Hz  "
              f"{c['tier']:<4}  {c['sha256'][:12]}")
    print(f"{len(index['cases'])} cases, {total / 1e6:.2f} MB in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
