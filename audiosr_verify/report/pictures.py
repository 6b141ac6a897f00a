"""The report's pictures, drawn with matplotlib (Agg, no pyplot, no global state) as small images.

* `spectrogram_panels`: input, output, golden and difference of one golden
  case side by side on one dB scale, time in s, frequency in kHz, a colour
  bar, the case's cutoff marked;
* `stage_heatmap`: stage parity as a stage x input grid, coloured by the error
  in units of the stage's tolerance (log decades; the tolerance is the boundary
  between the green and the red colours, and failing cells are boxed), each cell
  showing the max |diff|;
* `divergence_curves`: the chained view's max |diff| along the pipeline, one
  line per input, with the tolerance drawn.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas, so
importing this module never changes the caller's matplotlib backend. Charts
(flat colours and text) become 256-colour palette PNGs; spectrograms, which are
noise-like, lossy WebP (quality 80), a quarter of a palette PNG's size and an
eighth of an RGBA PNG's (39, 167 and 301 kB for one case), with no visible
change. Pillow, which matplotlib depends on, encodes both; without WebP
support, the palette PNG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audiosr_verify.compare.tensors import StageComparison
from audiosr_verify.compare.spectrogram import Spectrogram

DPI = 100
WEBP_QUALITY = 80
SPECTROGRAM_CMAP = "magma"
# Decades of "error / tolerance": four below the tolerance (greens), three above (reds).
RATIO_BOUNDS = 10.0 ** np.arange(-4, 4)
RATIO_COLOURS = ["#c7e9c0", "#a1d99b", "#41ab5d", "#006d2c", "#fc9272", "#ef3b2c", "#a50f15"]
RATIO_UNDER = "#eef6ec"  # under 1e-4 of the tolerance, or identical
RATIO_OVER = "#67000d"  # 1000 x the tolerance or more (a shape mismatch: infinite)
ZERO_COLOUR = "#f2f2f2"


@dataclass
class Picture:
    """An encoded image and, for tests and captions, where each named panel lies in it (pixels)."""

    image: bytes = field(repr=False)
    mime: str
    width: int
    height: int
    # name -> (left, top, right, bottom) in image pixels (rows counted from the top)
    panels: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


def _figure(width_in: float, height_in: float, layout: str | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _webp_available() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def _encode(fig, axes: dict[str, object] | None = None, photo: bool = False) -> Picture:
    """Render ``fig`` to a 256-colour PNG (``photo``: lossy WebP); the pixel box of each named axes."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    height = round(fig.get_figheight() * DPI)
    panels = {}
    for name, ax in (axes or {}).items():
        b = ax.get_window_extent()
        panels[name] = (math.ceil(b.x0), math.ceil(height - b.y1), int(b.x1), int(height - b.y0))
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    if photo and _webp_available():
        image.save(out, format="WEBP", quality=WEBP_QUALITY, method=6)
        mime = "image/webp"
    else:
        image.quantize(256, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
        mime = "image/png"
    return Picture(out.getvalue(), mime, image.width, image.height, panels)


# --------------------------------------------------------------------------- spectrograms


def spectrogram_panels(spectrograms: dict[str, Spectrogram], titles: dict[str, str], vmin: float, vmax: float,
                       cutoff_hz: float | None = None, suptitle: str = "") -> Picture:
    """Panels side by side (shared axes and dB scale), one colour bar, the cutoff as a dashed line."""
    n = len(spectrograms)
    # A fixed layout (inches): constrained layout would double the drawing time of the 14+ case pictures.
    width, height = 3.0 * n + 1.0, 2.9
    left, right, bar_w, gap = 0.55, 0.75, 0.12, 0.12
    panel_w = (width - left - right - gap * (n - 1)) / n
    bottom, top = 0.45, 0.45 if suptitle else 0.3
    fig = _figure(width, height, layout=None)
    axes: list = []
    for i in range(n):
        rect = ((left + i * (panel_w + gap)) / width, bottom / height, panel_w / width, (height - bottom - top) / height)
        ax = fig.add_axes(rect, sharex=axes[0] if axes else None, sharey=axes[0] if axes else None)
        if i:
            ax.tick_params(labelleft=False)
        axes.append(ax)
    bar_ax = fig.add_axes(((width - right + 0.1) / width, bottom / height, bar_w / width,
                           (height - bottom - top) / height))
    image = None
    for i, (ax, (name, s)) in enumerate(zip(axes, spectrograms.items())):
        t_end = float(s.times_s[-1] + (s.times_s[1] - s.times_s[0]) / 2) if s.times_s.size > 1 else 0.02
        image = ax.imshow(s.db, origin="lower", aspect="auto", cmap=SPECTROGRAM_CMAP, vmin=vmin, vmax=vmax,
                          extent=(0.0, t_end, 0.0, float(s.freqs_hz[-1]) / 1000), interpolation="antialiased")
        ax.set_title(titles.get(name, name), fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_ylabel("frequency (kHz)", fontsize=8)
        if cutoff_hz:
            ax.axhline(cutoff_hz / 1000, color="#40e0ff", lw=0.9, ls="--")
            if i == 0:
                ax.text(0.02 * t_end, cutoff_hz / 1000, f"cutoff {cutoff_hz / 1000:g} kHz", color="#40e0ff",
                        fontsize=7, va="bottom")
    bar = fig.colorbar(image, cax=bar_ax, extend="min")
    bar.set_label("dB re full-scale sine", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _encode(fig, dict(zip(spectrograms, axes)), photo=True)


# --------------------------------------------------------------------------- stage parity


def tolerance_ratio(c: StageComparison) -> float:
    """The error in units of the tolerance: <= 1 exactly when the row passes.

    ``min_passing_atol / atol`` when the tolerance has an absolute part (the relative part
    already subtracted), ``max_rel / rtol`` when it is relative only, and 0 or inf for a
    bit-exact row.
    """
    if not c.passed and not math.isfinite(c.max_abs):
        return math.inf
    if c.exact:
        return 0.0 if c.passed else math.inf
    if c.tolerance > 0:
        ratio = c.min_passing_atol / c.tolerance
    else:
        ratio = c.max_rel / c.rtol
    if not c.passed:
        ratio = max(ratio, 1.0 + 1e-9)  # the verdict rules; rounding never paints a failing cell green
    return ratio if math.isfinite(ratio) else math.inf


def _value_text(x: float) -> str:
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return "inf"
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    seen = []
    for v in [*order, *values]:
        if v in values and v not in seen:
            seen.append(v)
    return seen


def stage_heatmap(comparisons: Sequence[StageComparison], inputs: Sequence[str] = (), title: str = "") -> Picture:
    """Rows: fixture tensors in pipeline order (as given); columns: inputs; colour: error / tolerance."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Rectangle

    rows: list[str] = []
    tol_text: dict[str, str] = {}
    for c in comparisons:
        if c.name not in rows:
            rows.append(c.name)
            tol_text[c.name] = c.tolerance_text()
    cols = _ordered([c.input for c in comparisons], inputs)
    ratio = np.full((len(rows), len(cols)), np.nan)
    cells: dict[tuple[int, int], StageComparison] = {}
    for c in comparisons:
        i, j = rows.index(c.name), cols.index(c.input)
        cells[i, j] = c
        ratio[i, j] = tolerance_ratio(c)
    shown = np.where(ratio == 0, 1e-12, np.where(np.isinf(ratio), 1e12, ratio))  # under / over colours

    cmap = ListedColormap(RATIO_COLOURS).with_extremes(under=RATIO_UNDER, over=RATIO_OVER, bad="white")
    norm = BoundaryNorm(RATIO_BOUNDS, cmap.N)
    fig = _figure(2.6 + 0.78 * max(len(cols), 3), 1.6 + 0.2 * len(rows))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    for (i, j), c in cells.items():
        failed = not c.passed
        ax.text(j, i, _value_text(c.max_abs) if c.max_abs != 0 or c.passed else "≠", ha="center", va="center",
                fontsize=6.5, color="white" if (ratio[i, j] >= 1e-1 and ratio[i, j] != 0) else "#222",
                fontweight="bold" if failed else "normal")
        if ratio[i, j] == 0:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=ZERO_COLOUR, zorder=0.5))
        if failed:
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, ec="black", lw=1.4))
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r}  [{tol_text[r]}]" for r in rows], fontsize=7)
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", lw=0.8)
    ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=10)
    bar = fig.colorbar(image, ax=ax, extend="both", pad=0.01, fraction=0.04, aspect=30)
    bar.ax.axhline(1.0, color="black", lw=2.0)
    bar.set_ticks(RATIO_BOUNDS, labels=[f"{b:g}" for b in RATIO_BOUNDS])
    bar.ax.tick_params(labelsize=7)
    bar.set_label("max |diff| / tolerance  (black line: the tolerance)", fontsize=8)
    return _encode(fig, {"grid": ax})


def divergence_curves(comparisons: Sequence[StageComparison], inputs: Sequence[str] = (),
                      title: str = "") -> Picture:
    """Chained view: max |diff| per fixture tensor along the pipeline, one line per input, the tolerance dashed.

    Zeros (bit-identical) sit on the bottom line, labelled 0; infinite errors on the top one.
    """
    stages: list[str] = []
    atol: dict[str, float] = {}
    for c in comparisons:
        if c.name not in stages:
            stages.append(c.name)
            atol[c.name] = c.tolerance if c.tolerance > 0 else math.nan
    names = _ordered([c.input for c in comparisons], inputs)
    finite = [c.max_abs for c in comparisons if c.max_abs > 0 and math.isfinite(c.max_abs)]
    finite += [t for t in atol.values() if math.isfinite(t)]
    lo = 10.0 ** (math.floor(math.log10(min(finite))) - 1) if finite else 1e-9
    hi = 10.0 ** (math.ceil(math.log10(max(finite))) + 1) if finite else 1.0
    infinite = any(not math.isfinite(c.max_abs) for c in comparisons)
    top = hi * 10 if infinite else hi  # an infinite error (a shape mismatch) gets its own line, labelled inf
    fig = _figure(11.0, 4.2)
    ax = fig.subplots()
    x = np.arange(len(stages))
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]  # the ten dark colours first, then their light partners
    for k, name in enumerate(names):
        rows = {c.name: c for c in comparisons if c.input == name}
        xs = [i for i, s in enumerate(stages) if s in rows]
        ys = [top if not math.isfinite(rows[stages[i]].max_abs) else min(max(rows[stages[i]].max_abs, lo), hi)
              for i in xs]
        ax.plot(xs, ys, marker="osD^v<>"[k // 10 % 7], ms=3.5, lw=1.2, color=tab20((2 * k) % 20 + k // 10 % 2),
                label=name)
        bad = [(i, y) for i, y in zip(xs, ys) if not rows[stages[i]].passed]
        if bad:
            ax.scatter(*zip(*bad), marker="x", s=60, color="#cf222e", zorder=5, lw=2)
    tol = np.array([atol[s] for s in stages])
    ax.step(x, tol, where="mid", color="black", ls="--", lw=1.2, label="tolerance (absolute part)")
    ax.set_yscale("log")
    ax.set_ylim(lo / 2, top * 2)
    ticks = [10.0 ** e for e in range(round(math.log10(lo)) + 1, round(math.log10(hi)) + 1)]
    labels = ["0", *[f"1e{round(math.log10(t))}" for t in ticks]]
    if infinite:
        ticks.append(top)
        labels.append("inf")
        ax.axhline(top, color="#999", lw=0.6)
    ax.set_yticks([lo, *ticks], labels)
    ax.minorticks_off()
    ax.axhline(lo, color="#999", lw=0.6)
    ax.set_xticks(x, stages, rotation=40, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("max |ours − original|", fontsize=8)
    ax.grid(axis="y", color="#ddd", lw=0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return _encode(fig, {"plot": ax})


__all__ = ["Picture", "divergence_curves", "spectrogram_panels", "stage_heatmap", "tolerance_ratio"]
