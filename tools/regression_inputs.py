"""Reproducible inputs of the golden regression cases (``golden/regression_inputs/``).

The generated files are committed; this script is only needed to regenerate
them (for example to add a case). It writes 16-bit PCM WAV (and FLAC) files and
``cases.json``, the index `audiosr_verify.golden.load_cases` reads. Each case
names its input file (several cases may share one), the ``enhance`` options
it runs with, the pipeline paths it covers (`audiosr_verify.golden.coverage`)
and, for a fast path, the case whose golden it must reproduce: all of it is
`CASES` below.

Cases:

* synthetic (numpy only, bit-reproducible): tone mixes at 8, 16, 22.05 and
  44.1 kHz, and a white-noise burst between silences at 16 kHz;
* what users run (issue 23): a 16 kHz input filling exactly one 5.12 s window
  (and the bf16 and SDPA fast paths on it), a 24 kHz stereo file with different
  content and level per channel (kept, averaged, first channel at the faithful
  level), a 32 kHz file of three channels (loud, digital silence, -66 dBFS),
  and an 8 kHz file of 28.1 s: three chunks, two cross-fades (also with
  ``--batch-chunks 3``); their output formats are float, 16- and 24-bit WAV,
  24- and 16-bit FLAC (a quiet channel is kept in float: one 16-bit rounding
  step would be 6 % of its peak, one 24-bit step 0.02 %, a fifth of the
  tolerance; channels 20 dB down are written in 24 bits at most);
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

and then regenerate the goldens (``audiosr-verify golden update``). To add
cases without espeak-ng and sox, regenerate only those (``--cases NAME ...``):
every other input file is kept as committed, the index rewritten.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
WINDOW_SECONDS = 5.12  # the model's window (config.AudioConfig.segment_seconds, both presets)
LONG_SECONDS = 28.1  # > 28 s: three 15 s chunks overlapping by 2 s (long_audio.plan_chunks)
QUIET_DBFS = -66.0  # a quiet channel: above the -100 dBFS silence threshold, below a -60 dBFS gate


# --------------------------------------------------------------------------- helpers


def lowpass(x: np.ndarray, rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase elliptic low-pass (order 8, 0.1 dB ripple, 80 dB stop band per pass)."""
    sos = scipy.signal.ellip(8, 0.1, 80, cutoff_hz, btype="low", fs=rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, x)


def finish(x: np.ndarray, rate: int, fade_s: float = 0.01, peak: float = PEAK) -> np.ndarray:
    """Fade the ends (no clicks), remove DC, scale to ``peak``, quantise to 16-bit values (zeros stay zeros)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = max(1, int(fade_s * rate))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    x[:n] *= ramp
    x[-n:] *= ramp[::-1]
    x *= peak / max(np.max(np.abs(x)), 1e-12)
    return np.round(x * 32767) / 32767


def channels(*columns: np.ndarray) -> np.ndarray:
    """Finished channels as one ``[N, C]`` file."""
    return np.stack(columns, axis=1)


def tone_mix(rate: int, freqs: list[float], seconds: float = SECONDS) -> np.ndarray:
    """Tones with fixed phases and slow, different amplitude envelopes (a chord that breathes)."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.zeros_like(t)
    for i, f in enumerate(freqs):
        env = 0.6 + 0.4 * np.sin(2 * np.pi * (0.7 + 0.3 * i) * t + i)
        x += env * np.sin(2 * np.pi * f * t + 0.5 * i) / (1 + 0.3 * i)
    return x


def glide_mix(rate: int, freqs: list[float], seconds: float) -> np.ndarray:
    """Tones whose pitch glides slowly (+-12 %, different rates) under breathing envelopes: a texture
    that changes all through a long file, so every chunk has its own content."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.zeros_like(t)
    for i, f in enumerate(freqs):
        inst = f * (1 + 0.12 * np.sin(2 * np.pi * (0.03 + 0.017 * i) * t + i))
        phase = 2 * np.pi * np.cumsum(inst) / rate
        x += (0.6 + 0.4 * np.sin(2 * np.pi * (0.11 + 0.05 * i) * t)) * np.sin(phase) / (1 + 0.3 * i)
    return x


def tremolo_noise(rate: int, seconds: float, cutoff_hz: float, seed: int = 5) -> np.ndarray:
    """Seeded white noise low-passed at ``cutoff_hz`` with a 3 Hz tremolo."""
    t = np.arange(int(round(seconds * rate))) / rate
    noise = lowpass(np.random.default_rng(seed).standard_normal(t.size), rate, cutoff_hz)
    return noise * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t))


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


# --------------------------------------------------------------------------- inputs and cases


@dataclass(frozen=True)
class Input:
    """One input file: its rate, what makes its samples (finished, ``[N]`` or ``[N, C]``), the tools it needs."""

    file: str
    rate: int
    make: Callable[[Path], np.ndarray]
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One case of cases.json (`audiosr_verify.golden.cases.GoldenCase`): an input and how it is run."""

    name: str
    input: str
    cutoff_hz: float
    kind: str
    description: str
    tier: str = "full"
    options: dict[str, Any] = field(default_factory=dict)
    covers: tuple[str, ...] = ()
    golden: str | None = None


def _recordings() -> tuple[list[Input], list[Case]]:
    """The espeak-ng / sox "recordings", each band-limited to several cutoffs."""
    inputs, cases = [], []
    sources = [
        ("speech", speech_source, 22050, (4000.0, 6000.0, 8000.0), ("espeak-ng",),
         f"espeak-ng speech ({SPEECH_TEXT!r})"),
        ("chord", chord_source, 44100, (4000.0, 8000.0, 12000.0), ("sox",), "sox plucked chords C, Am, F (0.5 s each)"),
        ("rain", rain_source, 48000, (4000.0, 8000.0, 12000.0), ("sox",),
         "rain texture: sox pink noise + seeded droplets"),
    ]
    for stem, source, rate, cutoffs, tools, what in sources:
        for cutoff in cutoffs:
            name = f"{stem}_lp{int(cutoff / 1000)}k"

            def make(work: Path, source=source, cutoff=cutoff) -> np.ndarray:
                x, r = source(work)
                return finish(lowpass(x, r, cutoff), r)

            inputs.append(Input(f"{name}.wav", rate, make, tools))
            cases.append(Case(name, f"{name}.wav", cutoff, "recording",
                              f"{what}, {rate / 1000:g} kHz, low-passed at {cutoff / 1000:g} kHz",
                              tier="fast" if name in ("speech_lp4k", "chord_lp8k") else "full"))
    return inputs, cases


def _synthetic(name: str, rate: int, x: Callable[[], np.ndarray], ext: str = ".wav") -> Input:
    return Input(f"{name}{ext}", rate, lambda work: x())


def declared() -> tuple[list[Input], list[Case]]:
    """Every input file and every case, in index order."""
    inputs = [
        _synthetic("tones_8k", 8000, lambda: finish(tone_mix(8000, [220.0, 523.25, 1046.5, 2093.0, 3520.0]), 8000)),
        _synthetic("tones_16k", 16000, lambda: finish(
            tone_mix(16000, [150.0, 440.0, 1250.0, 3300.0, 6100.0, 7400.0]), 16000)),
        _synthetic("tones_22k", 22050, lambda: finish(tone_mix(22050, [330.0, 990.0, 2970.0, 5500.0, 9100.0], 1.2),
                                                      22050)),
        _synthetic("tones_44k", 44100, lambda: finish(
            tone_mix(44100, [100.0, 1000.0, 5000.0, 11000.0, 15500.0], 1.0), 44100)),
        _synthetic("noise_burst_16k", 16000, lambda: finish(noise_burst(16000), 16000)),
    ]
    cases = [
        Case("tones_8k", "tones_8k.wav", 4000.0, "synthetic",
             "five tones (220 Hz - 3.5 kHz) with slow envelopes at 8 kHz"),
        Case("tones_16k", "tones_16k.wav", 8000.0, "synthetic", "six tones (150 Hz - 7.4 kHz) at 16 kHz"),
        Case("tones_22k", "tones_22k.wav", 11025.0, "synthetic", "five tones (330 Hz - 9.1 kHz) at 22.05 kHz, 1.2 s"),
        Case("tones_44k", "tones_44k.wav", 22050.0, "synthetic",
             "five tones (100 Hz - 15.5 kHz) at 44.1 kHz, full band, 1.0 s"),
        Case("noise_burst_16k", "noise_burst_16k.wav", 8000.0, "synthetic",
             "0.5 s white-noise burst between silences at 16 kHz", tier="fast"),
    ]
    rec_inputs, rec_cases = _recordings()
    inputs += rec_inputs
    cases += rec_cases
    inputs += _what_users_run()
    cases += _what_users_run_cases()
    return inputs, cases


def _what_users_run() -> list[Input]:
    """Issue 23's inputs: one full window, stereo, three channels, three chunks (16-bit FLAC: a third the size)."""
    quiet = 10.0 ** (QUIET_DBFS / 20.0)
    short = 1.0  # the multi-channel files: their goldens grow with every channel
    return [
        _synthetic("window_16k", 16000, lambda: finish(
            tone_mix(16000, [180.0, 520.0, 1400.0, 3100.0, 5200.0, 7600.0], WINDOW_SECONDS), 16000), ".flac"),
        _synthetic("stereo_24k", 24000, lambda: channels(
            finish(tone_mix(24000, [260.0, 780.0, 2300.0, 6400.0, 10500.0], short), 24000),
            finish(tremolo_noise(24000, short, 9000.0), 24000, peak=0.05)), ".flac"),  # -6 and -26 dBFS
        _synthetic("three_channels_32k", 32000, lambda: channels(
            finish(tone_mix(32000, [200.0, 900.0, 3500.0, 8800.0, 14000.0], short), 32000),
            np.zeros(int(short * 32000)),
            finish(tone_mix(32000, [330.0, 2500.0], short), 32000, peak=quiet)), ".flac"),
        _synthetic("long_8k", 8000, lambda: finish(
            glide_mix(8000, [196.0, 587.0, 1318.0, 2637.0], LONG_SECONDS), 8000), ".flac"),
    ]


def _what_users_run_cases() -> list[Case]:
    one_step = {"steps": 1}  # every case of issue 23: one DDIM step keeps them in the fast tier's budget
    # chunk seeds wrap (2**32-1, 0, 1); 16-bit, stored as such: the float32 golden of 28 s would be twice the size
    long_run = {"steps": 1, "seed": 4294967295, "format": "flac-pcm16"}
    return [
        Case("full_window_16k", "window_16k.flac", 8000.0, "synthetic",
             "six tones at 16 kHz filling exactly one 5.12 s window: the end of the vocoder's window is output",
             tier="fast", options=one_step, covers=("full_window",)),
        Case("full_window_16k_bf16", "window_16k.flac", 8000.0, "synthetic",
             "full_window_16k with the networks in bfloat16, against its float32 golden under the bf16 bounds",
             tier="fast", options=one_step | {"precision": "bf16"}, covers=("full_window",), golden="full_window_16k"),
        Case("full_window_16k_sdpa", "window_16k.flac", 8000.0, "synthetic",
             "full_window_16k with fused SDPA attention, against its golden under the float32 bounds",
             tier="fast", options=one_step | {"attention": "sdpa"}, covers=("full_window",), golden="full_window_16k"),
        Case("stereo_24k", "stereo_24k.flac", 12000.0, "synthetic",
             "24 kHz stereo, 1 s: five tones at -6 dBFS left, tremolo noise at -26 dBFS right; both kept, "
             "24-bit WAV", tier="fast", options=one_step | {"mix": "keep", "format": "wav-pcm24"},
             covers=("stereo", "channel_batching")),
        Case("three_channels_32k", "three_channels_32k.flac", 16000.0, "synthetic",
             "32 kHz, 3 channels, 1 s: tones at -6 dBFS, digital silence, two tones at -66 dBFS; kept (float WAV)",
             tier="fast", options=one_step | {"mix": "keep"},
             covers=("multichannel", "channel_batching", "silence", "near_silence")),
        Case("stereo_24k_mean", "stereo_24k.flac", 12000.0, "synthetic",
             "stereo_24k averaged to mono, 24-bit FLAC", options=one_step | {"mix": "mean", "format": "flac"}),
        Case("stereo_24k_first", "stereo_24k.flac", 12000.0, "synthetic",
             "stereo_24k as the original runs it (first channel, faithful level), no guidance, 16-bit WAV",
             options=one_step | {"mix": "first", "level": "faithful", "guidance": 1.0, "format": "wav-pcm16"}),
        Case("long_8k", "long_8k.flac", 4000.0, "synthetic",
             "28.1 s of gliding tones at 8 kHz: three 15 s chunks, two cross-fades; seed 2**32-1, 16-bit FLAC",
             options=long_run, covers=("chunking", "cross_fade")),
        Case("long_8k_batch3", "long_8k.flac", 4000.0, "synthetic",
             "long_8k with its three chunks in one batched pass (--batch-chunks 3), against its golden",
             options=long_run | {"batch_chunks": 3}, covers=("chunking", "cross_fade"), golden="long_8k"),
    ]


def _tools(names: set[str]) -> dict[str, str]:
    commands = {"espeak-ng": ["espeak-ng", "--version"], "sox": ["sox", "--version"]}
    return {n: _tool_version(commands[n]) for n in sorted(names)}


def generate(output_dir: Path, only: list[str] | None = None) -> dict:
    """Write the inputs of the cases ``only`` names (default: all) and ``cases.json`` of every case.

    Input files of the other cases are kept as they are (they must exist): the files, not this script,
    are the reference, and a recording needs its tools.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    inputs, cases = declared()
    unknown = sorted(set(only or []) - {c.name for c in cases})
    if unknown:
        raise SystemExit(f"unknown case {', '.join(unknown)}")
    wanted = {c.input for c in cases if only is None or c.name in only}
    made = [i for i in inputs if i.file in wanted]
    missing = [i.file for i in inputs if i.file not in wanted and not (output_dir / i.file).is_file()]
    if missing:
        raise SystemExit(f"not in {output_dir}: {', '.join(missing)}; generate them too (--cases)")
    index_path = output_dir / "cases.json"
    previous = json.loads(index_path.read_text()) if index_path.is_file() else {}
    used_tools = {t for i in made for t in i.tools}
    tools = dict(previous.get("tools") or {}) | _tools(used_tools)  # versions of what made the committed files
    with tempfile.TemporaryDirectory(prefix="audiosr-inputs-") as tmp:
        for item in made:
            x = item.make(Path(tmp))
            sf.write(str(output_dir / item.file), x.astype(np.float32), item.rate, subtype="PCM_16")
    index = {
        "schema_version": 1,
        "generated_by": "python tools/regression_inputs.py --output-dir golden/regression_inputs",
        "tools": tools,
        "commands": {"speech": SPEECH_CMD, "chord": CHORD_CMD, "concat": CONCAT_CMD, "rain": RAIN_CMD},
        "cases": [],
    }
    rates = {i.file: i.rate for i in inputs}
    for case in cases:
        path = output_dir / case.input
        info = sf.info(str(path))
        entry = {"name": case.name, "input": case.input, "sample_rate": rates[case.input], "cutoff_hz": case.cutoff_hz,
                 "kind": case.kind, "tier": case.tier, "description": case.description,
                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                 "seconds": round(info.frames / info.samplerate, 4)}
        if info.channels > 1:
            entry["channels"] = info.channels
        entry.update({k: v for k, v in (("options", case.options), ("covers", list(case.covers)),
                                        ("golden", case.golden)) if v})
        index["cases"].append(entry)
    index_path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate the golden regression inputs.")
    p.add_argument("--output-dir", default="golden/regression_inputs", help="where to write (default %(default)s)")
    p.add_argument("--cases", nargs="+", metavar="NAME",
                   help="regenerate only the inputs of these cases (the other files are kept as committed)")
    args = p.parse_args(argv)
    index = generate(Path(args.output_dir), args.cases)
    files = {c["input"] for c in index["cases"]}
    total = sum((Path(args.output_dir) / f).stat().st_size for f in files)
    for c in index["cases"]:
        print(f"{c['name']:<22} {c['sample_rate']:>6} Hz {c['seconds']:>6.2f} s  cutoff {c['cutoff_hz']:>7.0f} Hz  "
              f"{c['tier']:<4}  {c['sha256'][:12]}")
    print(f"{len(index['cases'])} cases, {total / 1e6:.2f} MB in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
