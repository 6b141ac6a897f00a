"""What the report shows and plays for one golden case: input, obtained output, golden, difference.

`case_figure` draws the four spectrograms side by side on one dB scale with
the case's cutoff marked; `case_clips` encodes the same four signals for
`<audio>` players. The input is read from the case's file (channels averaged,
as the report has always shown it) and shown and played at 48 kHz; so are the
output and the golden of several channels, and their difference is that of the
channel that changed most.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiosr_verify import golden as G
from audiosr_verify.report.document import Clip, Figure

PANELS = ("input", "output", "golden", "difference")


def case_signals(r: G.CaseResult) -> dict[str, tuple[np.ndarray, int] | None]:
    """``name -> (samples, rate)`` for the panels this result can show (None where it cannot)."""
    if r.obtained is None:
        return {}
    signals: dict[str, tuple[np.ndarray, int] | None] = {}
    if r.input_path and Path(r.input_path).is_file():
        import soundfile as sf

        x, rate = sf.read(r.input_path, dtype="float32", always_2d=True)
        signals["input"] = (x.mean(axis=1), rate)
    signals["output"] = (_mono(r.obtained), G.SAMPLE_RATE)
    g = r.golden
    signals["golden"] = (_mono(g), G.SAMPLE_RATE) if g is not None else None
    if g is not None and g.shape == r.obtained.shape:
        diff = r.obtained.astype(np.float64) - g.astype(np.float64)
        if diff.ndim == 2:  # the channel that changed most: a swap or a changed quiet channel must show
            diff = diff[:, int(np.argmax(np.max(np.abs(diff), axis=0)))]
        signals["difference"] = (diff, G.SAMPLE_RATE)
    return signals


def _mono(x: np.ndarray) -> np.ndarray:
    """An output of several channels ([N, C]) shown as their average, as the input is."""
    return x.mean(axis=1) if x.ndim == 2 else x


def _titles(r: G.CaseResult) -> dict[str, str]:
    rate = f"{r.input_sample_rate / 1000:g} kHz, " if r.input_sample_rate else ""
    return {
        "input": f"input ({rate}shown at 48 kHz)",
        "output": "output of this run",
        "golden": "golden",
        "difference": "output − golden: identical" if r.status == "identical" else "output − golden",
    }


def case_figure(r: G.CaseResult, signals: dict | None = None) -> Figure | None:
    """The four spectrograms of ``r`` as one picture (None when nothing was obtained)."""
    from audiosr_verify.report import pictures as P
    from audiosr_verify.compare import spectrogram as S

    signals = case_signals(r) if signals is None else signals
    specs = S.case_spectrograms(signals)
    if not specs:
        return None
    vmin, vmax = S.colour_range(specs)
    titles = _titles(r)
    pic = P.spectrogram_panels(specs, titles, vmin, vmax, cutoff_hz=r.cutoff_hz, suptitle=r.case)
    shown = ", ".join(n for n in PANELS if n in specs)
    caption = (f"{shown}; one dB scale ({vmin:.0f} to {vmax:.0f} dB re a full-scale sine)"
               + (f"; dashed: the input's cutoff, {r.cutoff_hz / 1000:g} kHz" if r.cutoff_hz else ""))
    return Figure("spectrograms", pic.image, caption, pic.mime, alt=f"spectrograms of {r.case}: {shown}",
                  panels=pic.panels, arrays={"spectrograms": specs, "vmin": vmin, "vmax": vmax})


def case_clips(r: G.CaseResult, signals: dict | None = None) -> list[Clip]:
    """Players for input, golden, obtained output and difference (in that order)."""
    from audiosr_verify.report import audio

    signals = case_signals(r) if signals is None else signals
    titles = {"input": "input", "golden": "golden", "output": "obtained output", "difference": "output − golden"}
    clips = []
    for name in ("input", "golden", "output", "difference"):
        sig = signals.get(name)
        if sig is None:
            continue
        enc = audio.encode(*sig)
        peak = float(np.max(np.abs(sig[0]))) if np.size(sig[0]) else 0.0
        level = "silent" if peak == 0 else f"peak {20 * np.log10(peak):.1f} dBFS"
        caption = level + (f", first {enc.seconds:g} s" if enc.cut else "")
        clips.append(Clip(titles[name], enc.data, enc.mime, caption, enc.seconds))
    return clips


__all__ = ["PANELS", "case_clips", "case_figure", "case_signals"]
