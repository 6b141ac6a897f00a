"""Spectrograms for the report, as numbers (`report.pictures` draws them with matplotlib).

Every signal is shown at 48 kHz (an input at another rate is resampled for
display only), so the pictures of one golden case share the frequency axis
(0 to 24 kHz) and the time axis. Power is in dB relative to a full-scale sine
(a sine of amplitude 1 reads 0 dB), computed by ``scipy.signal.spectrogram``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
import scipy.signal

DISPLAY_RATE = 48000
N_FFT = 1024
HOP = 256
DYNAMIC_RANGE_DB = 100.0  # the colour scale spans this much below the loudest bin of a case
FLOOR_DB = -300.0  # what a bin of exact silence (a zero difference) reads


@dataclass
class Spectrogram:
    db: np.ndarray  # [bins, frames], row 0 = 0 Hz
    freqs_hz: np.ndarray  # [bins]
    times_s: np.ndarray  # [frames], frame centres

    def cut(self, frames: int) -> Spectrogram:
        return Spectrogram(self.db[:, :frames], self.freqs_hz, self.times_s[:frames])


def to_display_rate(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` resampled to 48 kHz (display and listening only: polyphase, Kaiser beta 10, images ~100 dB down)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if rate == DISPLAY_RATE:
        return x
    g = gcd(int(rate), DISPLAY_RATE)
    return scipy.signal.resample_poly(x, DISPLAY_RATE // g, int(rate) // g, window=("kaiser", 10.0))


def spectrogram(x: np.ndarray, rate: int = DISPLAY_RATE) -> Spectrogram:
    """Hann-windowed power spectrogram of ``x`` shown at 48 kHz, in dB re a full-scale sine."""
    x = to_display_rate(x, rate)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    freqs, times, power = scipy.signal.spectrogram(x, DISPLAY_RATE, window="hann", nperseg=N_FFT,
                                                   noverlap=N_FFT - HOP, detrend=False, scaling="spectrum",
                                                   mode="psd")
    # "spectrum" scaling gives A^2/2 for a sine of amplitude A: x2 puts a full-scale sine at 0 dB.
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(2 * power)
    return Spectrogram(np.maximum(db, FLOOR_DB), freqs, times)


def case_spectrograms(signals: dict[str, tuple[np.ndarray, int] | None]) -> dict[str, Spectrogram]:
    """One spectrogram per named signal ``(samples, rate)``, cut to the shortest so the pictures line up.

    A ``None`` signal is skipped.
    """
    out = {name: spectrogram(*sig) for name, sig in signals.items() if sig is not None}
    if not out:
        return {}
    frames = min(s.db.shape[1] for s in out.values())
    return {name: s.cut(frames) for name, s in out.items()}


def colour_range(spectrograms: dict[str, Spectrogram],
                 dynamic_range: float = DYNAMIC_RANGE_DB) -> tuple[float, float]:
    """(vmin, vmax) in dB shared by every picture of a case: the loudest bin, rounded up to 10 dB."""
    top = max(float(s.db.max()) for s in spectrograms.values())
    vmax = 10 * np.ceil(top / 10) if top > FLOOR_DB else 0.0
    return vmax - dynamic_range, vmax


__all__ = ["Spectrogram", "case_spectrograms", "colour_range", "spectrogram", "to_display_rate"]
