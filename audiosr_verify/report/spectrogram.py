"""Spectrogram pictures for the reports: log-magnitude STFT -> colour-mapped PNG bytes.

Pure numpy + zlib (no plotting library): PNGs are 8-bit palette images, so
a 256 x 280 spectrogram costs a few tens of kB, small enough to embed many of
them in one self-contained HTML file. Every picture of one case shares the
frequency axis (0-24 kHz, low frequencies at the bottom) and the dB scale.
"""

from __future__ import annotations

import struct
import zlib
from math import gcd

import numpy as np
import scipy.signal

DISPLAY_RATE = 48000
N_FFT = 1024
HOP = 256
ROWS = 256  # frequency rows of a picture (bins are averaged in pairs)
DYNAMIC_RANGE_DB = 90.0
GRID_HZ = 4000  # tick marks every 4 kHz on both edges
TICK_INDEX = 255  # palette entry reserved for tick marks

# matplotlib's "magma" sampled at nine points (perceptually uniform, dark = quiet).
_MAGMA = [(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
          (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191)]


def colormap(stops: list[tuple[int, int, int]] = _MAGMA, n: int = 255) -> np.ndarray:
    """``n`` RGB colours (uint8 ``[n, 3]``) interpolated linearly between ``stops``."""
    s = np.asarray(stops, dtype=np.float64)
    pos = np.linspace(0, 1, len(s))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, pos, s[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def css_gradient(stops: list[tuple[int, int, int]] = _MAGMA) -> str:
    """The colour map as a CSS ``linear-gradient`` (for a colour bar)."""
    parts = [f"rgb({r},{g},{b}) {100 * i / (len(stops) - 1):.1f}%" for i, (r, g, b) in enumerate(stops)]
    return "linear-gradient(to right, " + ", ".join(parts) + ")"


def to_display_rate(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` resampled to 48 kHz (display only: polyphase, Kaiser beta 10, images ~100 dB down)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if rate == DISPLAY_RATE:
        return x
    g = gcd(int(rate), DISPLAY_RATE)
    return scipy.signal.resample_poly(x, DISPLAY_RATE // g, int(rate) // g, window=("kaiser", 10.0))


def log_power_db(x: np.ndarray, rate: int = DISPLAY_RATE) -> np.ndarray:
    """Power spectrogram in dB, ``[ROWS, frames]``, row 0 = 0 Hz, top row = 24 kHz."""
    x = to_display_rate(x, rate)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, N_FFT // 2), N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * window, axis=1)).T ** 2  # [513, T]
    bins = power.shape[0] - 1  # drop Nyquist: 512 bins -> ROWS rows
    power = power[:bins].reshape(ROWS, bins // ROWS, -1).mean(axis=1)
    return 10 * np.log10(power + 1e-20)


def to_indices(db: np.ndarray, vmax: float, dynamic_range: float = DYNAMIC_RANGE_DB) -> np.ndarray:
    """dB values -> palette indices 0..254 (``vmax - dynamic_range`` .. ``vmax``), image rows top-down."""
    scaled = (db - (vmax - dynamic_range)) / dynamic_range
    idx = np.clip(np.round(scaled * 254), 0, 254).astype(np.uint8)
    img = idx[::-1].copy()  # high frequencies at the top
    rows_per_hz = ROWS / (DISPLAY_RATE / 2)
    for f in range(GRID_HZ, DISPLAY_RATE // 2, GRID_HZ):
        r = ROWS - 1 - int(round(f * rows_per_hz))
        img[r, :4] = TICK_INDEX
        img[r, -4:] = TICK_INDEX
    return img


def png_bytes(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """An 8-bit palette PNG of ``indices`` (uint8 ``[H, W]``) with ``palette`` (``[<=256, 3]``)."""
    h, w = indices.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + indices[r].tobytes() for r in range(h))  # filter type 0 per row
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", np.ascontiguousarray(palette, dtype=np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def palette() -> np.ndarray:
    return np.concatenate([colormap(), np.array([[200, 200, 200]], dtype=np.uint8)])


def spectrogram_pngs(signals: dict[str, tuple[np.ndarray, int] | None],
                     dynamic_range: float = DYNAMIC_RANGE_DB) -> dict[str, bytes]:
    """One PNG per named signal ``(samples, rate)``, all on one dB scale (the loudest signal's peak).

    A ``None`` signal is skipped. Frames are cut to the shortest signal so the pictures line up.
    """
    dbs = {name: log_power_db(*sig) for name, sig in signals.items() if sig is not None}
    if not dbs:
        return {}
    frames = min(d.shape[1] for d in dbs.values())
    vmax = max(float(d.max()) for d in dbs.values())
    pal = palette()
    return {name: png_bytes(to_indices(d[:, :frames], vmax, dynamic_range), pal) for name, d in dbs.items()}


__all__ = ["colormap", "css_gradient", "log_power_db", "png_bytes", "spectrogram_pngs", "to_display_rate"]
