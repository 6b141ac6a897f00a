"""The HTML summary of a corpus evaluation: counts, metric histograms, stage failures, the worst files.

One self-contained file (pictures embedded as PNG). Pictures are drawn with
matplotlib (object API, Agg: no display, no global pyplot state). The worst
files' spectrograms come from the data the run kept for them
(`audiosr_verify.corpus.worst`) and are drawn like the report's golden cases
(`report.pictures.spectrogram_panels`: all at 48 kHz, one dB scale per file,
the cutoff marked).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from audiosr_verify.checks.corpus import SUMMARY_METRICS
from audiosr_verify.corpus.summary import metric_values
from audiosr_verify.corpus.worst import load_spectra
from audiosr_verify.util.atomic import atomic_write

MODE_TEXT = {"against": "parity: {subject} against {against} (same input, same seed)",
             "golden": "quality: {subject} on each file band-limited to {input_rate} Hz, against the file itself",
             "input": "{subject} against its own input at 48 kHz"}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.bad{color:#b00020}.ok{color:#146c2e}.note{color:#666}.grid{display:flex;flex-wrap:wrap;gap:8px}
img{max-width:100%}figure{margin:8px 0}figcaption{color:#555}
"""


def _h(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def histogram(values: list[float], label: str) -> str | None:
    """A histogram of the finite values (a data URI), or None when there are none."""
    from matplotlib.figure import Figure

    finite = np.array([v for v in values if math.isfinite(v)])
    if finite.size == 0:
        return None
    fig = Figure(figsize=(3.8, 2.4))
    ax = fig.subplots()
    ax.hist(finite, bins=min(30, max(5, int(np.sqrt(finite.size)) * 2)), color="#3b6ea8")
    ax.set_xlabel(label)
    ax.set_ylabel("files")
    extra = len(values) - finite.size
    ax.set_title(f"{finite.size} files, median {np.median(finite):.4g}" + (f" (+{extra} infinite)" if extra else ""),
                 fontsize=9)
    return _png(fig)


def spectrograms(spectra: dict[str, np.ndarray], duration_s: float, cutoff_hz: float | None,
                 reference_label: str) -> str:
    """Input, output and reference of one file side by side on one dB scale (a data URI), drawn by the
    report's own spectrogram panels (`report.pictures`)."""
    from audiosr_verify.report.pictures import spectrogram_panels
    from audiosr_verify.compare.spectrogram import Spectrogram, colour_range

    panels = {}
    for name in ("input", "output", "reference"):
        db = spectra[name].astype(np.float32)
        rows, cols = db.shape
        freqs = np.arange(1, rows + 1) * 24000.0 / rows  # the top row ends at 24 kHz
        times = (np.arange(cols) + 0.5) * max(duration_s, 1e-3) / cols  # the columns span the file
        panels[name] = Spectrogram(db, freqs, times)
    vmin, vmax = colour_range(panels)
    picture = spectrogram_panels(panels, {"input": "input", "output": "output", "reference": reference_label},
                                 vmin, vmax, cutoff_hz)
    return f"data:{picture.mime};base64," + base64.b64encode(picture.image).decode("ascii")


def _table(columns: list[str] | None, rows: list[list[Any]]) -> str:
    head = "<tr>" + "".join(f"<th>{_h(c)}</th>" for c in columns) + "</tr>" if columns else ""
    body = []
    for r in rows:
        cells = []
        for v in r:
            text = _fmt(v)
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_h(text)}</td>' if numeric else f"<td>{_h(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render_html(summary: dict[str, Any], rows: list[dict[str, Any]], out_dir: str | Path) -> str:
    s = summary["settings"]
    c = summary["counts"]
    reference = {"against": f"reference: {s.get('against')}", "golden": "reference: the file (ground truth)",
                 "input": "reference: the input at 48 kHz"}[s["mode"]]
    title = "AudioSR corpus evaluation"
    parts = [f"<h1>{_h(title)}</h1>",
             f"<p>{_h(MODE_TEXT[s['mode']].format(**s))}</p>",
             _table(None, [["corpus", summary["corpus"]], ["files", summary["files"]],
                               ["evaluated", c["ok"]], ["unreadable", c["unreadable"]], ["errors", c["error"]],
                               ["audio", f"{summary['audio_seconds']:.1f} s"],
                               ["model", f"{s['preset']}, " + (s["checkpoint"] or f"random weights seed {s['weights_seed']}")],
                               ["sampling", f"{s['steps']} DDIM steps, guidance {s['guidance']}, seed {s['seed']}"],
                               ["this run", f"{summary['run']['evaluated']} files on {summary['run']['engine']} "
                                            f"x{summary['run']['workers']} in {summary['run']['wall_seconds']:.1f} s "
                                            f"({summary['run']['files_per_minute']:.2f} files/min); "
                                            f"{summary['run']['skipped']} already done"]])]
    # metrics
    parts.append("<h2>Metrics</h2>")
    mrows = []
    for name, label, _ in SUMMARY_METRICS:
        d = summary["metrics"].get(name, {})
        if d.get("count"):
            mrows.append([label, d["count"], d.get("median"), d.get("mean"), d.get("p05"), d.get("p95"), d.get("min"),
                          d.get("max")])
    parts.append(_table(["metric", "files", "median", "mean", "p5", "p95", "min", "max"], mrows))
    figs = [(label, histogram(metric_values(rows, name), label)) for name, label, _ in SUMMARY_METRICS]
    parts.append('<div class="grid">' + "".join(f'<img alt="{_h(label)} histogram" src="{uri}">'
                                                for label, uri in figs if uri) + "</div>")
    # stages
    if summary.get("stages"):
        parts.append("<h2>Stage errors (teacher-forced from the reference subject)</h2>")
        srows = [[name, v["compared"], v["failed"], v["max_abs"], ", ".join(v["failed_files"][:5])]
                 for name, v in summary["stages"].items()]
        parts.append(_table(["tensor", "files", "failed", "largest max |diff|", "first failing files"], srows))
    # worst files
    metric = summary["rank_by"]
    parts.append(f"<h2>Worst files by {_h(metric)}</h2>")
    by_file = {r["file"]: r for r in rows}
    if not summary["worst"]:
        parts.append('<p class="note">no evaluated file</p>')
    for w in summary["worst"]:
        r = by_file[w["file"]]
        m = r["metrics"]
        caption = (f"{r['file']}: {metric} {_fmt(m.get(metric))}; LSD {_fmt(m.get('lsd'))}, SI-SDR "
                   f"{_fmt(m.get('si_sdr'))} dB, {r['rate']} Hz, {r['duration_s']:.2f} s, cutoff "
                   f"{_fmt(r.get('cutoff_hz'))} Hz")
        spectra = load_spectra(out_dir, r["file"])
        img = "" if spectra is None else f'<img alt="spectrograms of {_h(r["file"])}" ' \
            f'src="{spectrograms(spectra, r["duration_s"], r.get("cutoff_hz"), reference)}">'
        parts.append(f"<figure>{img}<figcaption>{_h(caption)}</figcaption></figure>")
    # problems
    for key, heading in (("unreadable", "Unreadable files"), ("errors", "Files that failed")):
        if summary[key]:
            parts.append(f"<h2>{heading}</h2>")
            parts.append(_table(["file", "problem"], [[e["file"], e["error"]] for e in summary[key]]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>" + "".join(parts) + "</body></html>\n")


def write_html(path: str | Path, summary: dict[str, Any], rows: list[dict[str, Any]], out_dir: str | Path) -> Path:
    atomic_write(path, render_html(summary, rows, out_dir))
    return Path(path)


__all__ = ["histogram", "render_html", "spectrograms", "write_html"]
