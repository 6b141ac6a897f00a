"""Golden policy: which metrics decide a verdict, with which tolerances, and the comparison itself.

The bounds are measured, not guessed: docs/golden-verdicts.md and
benchmarks/bench_golden_noise.py. `compare_waveforms` returns table rows
(`MetricCheck`); the store (store.py) decides the case's status from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from audiosr_model.errors import AudioSRError

SAMPLE_RATE = 48000

# Tolerance of each checked metric: {"max": x} -> value <= x, {"min": x} -> value >= x.
# These metrics decide a golden verdict (docs/golden-verdicts.md). Each bound sits
# 20-40x above the largest float-rounding noise measured on the bundled cases (1 vs
# 2 threads, another CPU vendor, 1e-6 relative noise, +-1 ulp) and well below the
# smallest real change (0.5 dB gain, 1 ms shift, band above the cutoff removed, a
# -40 dBFS click, a changed vocoder): `python benchmarks/bench_golden_noise.py`
# measures both sides. The published LSD is NOT among them: on log spectra of
# near-silent bins it turns 1e-6 of rounding noise into 0.14.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "peak_relative_diff": {"max": 1e-3},  # noise <= 3.0e-5; -40 dBFS click >= 1.5e-2, 0.5 dB gain 5.9e-2
    "spectral_distance": {"max": 0.02},  # dB; noise <= 6.6e-4; 0.5 dB gain >= 0.24
    "spectral_distance_worst_frame": {"max": 0.03},  # dB; noise <= 1.3e-3; -40 dBFS click >= 0.10
    "spectral_distance_hf": {"max": 0.02},  # dB above the cutoff; noise <= 7.7e-4; band removed >= 40
    "si_sdr": {"min": 60.0},  # dB; noise >= 97; 1 ms shift <= 1.3
    "new_line_artifact": {"max": 0},  # 1 when the obtained output is flagged and the golden is not
}
# Metrics that need the case's cutoff; without one they are reported as not applicable.
CUTOFF_METRICS = ("spectral_distance_hf", "lsd_hf", "lsd_lf", "high_band_energy_ratio")
# Reported beside the checks to help reading a failure; they decide nothing.
INFORMATIONAL = ("max_abs_diff", "lsd", "lsd_hf", "log_mel_l1", "snr", "mr_stft", "loudness_difference",
                 "high_band_energy_ratio")
METRIC_LABELS = {
    "length": "length (samples)",
    "peak_relative_diff": "max |obtained - golden| / peak",
    "spectral_distance": "spectral distance (dB)",
    "spectral_distance_worst_frame": "spectral distance, worst frame (dB)",
    "spectral_distance_hf": "spectral distance above cutoff (dB)",
    "max_abs_diff": "max |obtained - golden|",
    "lsd": "LSD (published; informational)",
    "si_sdr": "SI-SDR (dB)",
    "log_mel_l1": "log-mel L1",
    "new_line_artifact": "new line artifact",
    "snr": "SNR (dB)",
    "lsd_hf": "LSD above cutoff",
    "mr_stft": "MR-STFT distance",
    "loudness_difference": "loudness diff (LU)",
    "high_band_energy_ratio": "high-band energy ratio",
    "lsd_lf": "LSD below cutoff",
    "level_difference_db": "|level difference| (dB, RMS)",
}
# The float-rounding bounds above that reduced precision cannot meet: its error is measured in other terms
# (`checks.metric_verdict.BOUNDS`: LSD below/above the cutoff, SI-SDR, level), which `fast_path_tolerances` uses.
ROUNDING_METRICS = ("peak_relative_diff", "spectral_distance", "spectral_distance_worst_frame",
                    "spectral_distance_hf")


@dataclass
class MetricCheck:
    """One row of a comparison table. ``passed`` is None for informational rows."""

    name: str
    value: float | None
    bound: str | None = None  # "max" | "min"
    limit: float | None = None
    passed: bool | None = None

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.name, self.name)

    def value_text(self) -> str:
        if self.value is None:
            return "-"
        if self.name == "new_line_artifact":
            return "yes" if self.value else "no"
        if self.name == "length":
            return f"{int(self.value)}"
        return _fmt(self.value)

    def tolerance_text(self) -> str:
        if self.bound is None:
            return "-"
        if self.name == "new_line_artifact":
            return "must not appear"
        if self.name == "length":
            return f"= {int(self.limit)}"
        return f"{'<=' if self.bound == 'max' else '>='} {_fmt(self.limit)}"

    def verdict_text(self) -> str:
        return {None: "info", True: "pass", False: "FAIL"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "value": _json_float(self.value),
                "bound": self.bound, "limit": _json_float(self.limit), "passed": self.passed}


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.4g}"


def _json_float(v: float | None) -> float | str | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v > 0 else ("-inf" if v < 0 else "nan"))


# --------------------------------------------------------------------------- comparison


def merge_tolerances(*layers: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    """Later layers override earlier ones per metric; ``{"metric": null}`` drops a check."""
    out: dict[str, dict[str, float]] = {}
    for layer in layers:
        for name, bound in (layer or {}).items():
            if bound is None:
                out.pop(name, None)
                continue
            if not isinstance(bound, Mapping) or not set(bound) <= {"max", "min"} or not bound:
                raise AudioSRError(f"tolerance of {name!r} must be {{\"max\": x}} or {{\"min\": x}}, got {bound!r}")
            out[name] = {k: float(v) for k, v in bound.items()}
    return out


def _check(name: str, value: float, tol: Mapping[str, float] | None) -> MetricCheck:
    if not tol:
        return MetricCheck(name, value)
    bound = "max" if "max" in tol else "min"
    limit = tol[bound]
    ok = (value <= limit) if bound == "max" else (value >= limit)
    if "max" in tol and "min" in tol:  # both bounds: report the upper one, test both
        ok = tol["min"] <= value <= tol["max"]
    return MetricCheck(name, value, bound, limit, bool(ok) and not math.isnan(value))


def _metric_functions(cutoff_hz: float | None) -> dict[str, Callable[[np.ndarray, np.ndarray], float | None]]:
    """name -> f(golden, obtained) for every metric a comparison can check or report."""
    from audiosr_verify.compare import metrics as M

    sr = SAMPLE_RATE
    band = cutoff_hz is not None and 0 < cutoff_hz < sr / 2
    last: dict[str, Any] = {}

    def spectral(g: np.ndarray, o: np.ndarray) -> "M.SpectralDistance":
        # the three spectral_distance rows share one pair of STFTs
        if last.get("g") is not g or last.get("o") is not o:
            last.update(g=g, o=o, value=M.spectral_distance(g, o, sr, cutoff_hz if band else None))
        return last["value"]

    fns: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
        "peak_relative_diff": M.peak_relative_diff,
        "spectral_distance": lambda g, o: spectral(g, o).mean_db,
        "spectral_distance_worst_frame": lambda g, o: spectral(g, o).worst_frame_db,
        "max_abs_diff": lambda g, o: float(np.max(np.abs(o - g))) if g.size else 0.0,
        "lsd": lambda g, o: M.lsd(g, o, sr),
        "lsd_aligned": lambda g, o: M.lsd(g, o, sr, align_low_band=0.1),
        "si_sdr": M.si_sdr,
        "snr": M.snr,
        "log_mel_l1": lambda g, o: M.log_mel_l1(g, o, sr),
        "mr_stft": M.multi_resolution_stft_distance,
        "spectral_convergence": M.spectral_convergence,
        "loudness_difference": lambda g, o: M.loudness_difference(g, o, sr),
        "level_difference_db": M.level_difference_db,
    }
    if band:
        fns["spectral_distance_hf"] = lambda g, o: spectral(g, o).hf_db
        fns["lsd_hf"] = lambda g, o: M.lsd_hf(g, o, sr, cutoff_hz)
        fns["lsd_lf"] = lambda g, o: M.lsd_lf(g, o, sr, cutoff_hz)
        fns["high_band_energy_ratio"] = lambda g, o: M.high_band_energy_ratio(g, o, sr, cutoff_hz)
    return fns


def compare_waveforms(
    golden: np.ndarray,
    obtained: np.ndarray,
    tolerances: Mapping[str, Mapping[str, float]],
    cutoff_hz: float | None = None,
    reference_input: tuple[np.ndarray, int] | None = None,
) -> list[MetricCheck]:
    """Checks (then informational rows) of ``obtained`` against ``golden`` (48 kHz, same length).

    ``new_line_artifact`` is 1 when `detect_line_artifacts` flags the obtained
    output but not the golden (tones present in ``reference_input``, the
    case's input at its own rate, are not artifacts).
    """
    from audiosr_verify.compare import metrics as M

    g = np.asarray(golden, dtype=np.float64)
    o = np.asarray(obtained, dtype=np.float64)
    fns = _metric_functions(cutoff_hz)
    ref, ref_rate = reference_input if reference_input is not None else (None, None)

    def value(name: str) -> float | None:
        if name == "new_line_artifact":
            flagged = [M.detect_line_artifacts(x, SAMPLE_RATE, reference=ref, reference_sample_rate=ref_rate).flagged
                       for x in (g, o)]
            return float(flagged[1] and not flagged[0])
        return fns[name](g, o) if name in fns else None

    checks = []
    for name, tol in tolerances.items():
        v = value(name)
        if v is None and name in CUTOFF_METRICS and name not in fns:
            checks.append(MetricCheck(name, None))  # no cutoff known: the band metric does not apply
            continue
        checks.append(MetricCheck(name, None, "max", None, False) if v is None else _check(name, v, tol))
    checks += [MetricCheck(name, fns[name](g, o)) for name in INFORMATIONAL if name in fns and name not in tolerances]
    return checks


# A 16-bit output (enhance --format wav-pcm16 / flac-pcm16) rounds every sample to a step of 3.1e-5: where float
# noise straddles a step, two runs differ by a whole step. Measured on the 16-bit cases (bench_golden_noise.py, and
# 3e-6 of relative noise re-rounded): the worst frame's spectral distance reaches 0.012 (recomputed) and 0.027
# (simulated) against 0.0014 for float outputs, too near the 0.03 that float rounding allows; every other bound
# keeps its margin (peak 6.1e-5: two steps; mean spectral distance 0.0014). A real change still moves the worst
# frame by 0.3 dB and more (0.5 dB gain: 0.5; a -40 dBFS click: 0.10, and 1.5e-2 of the peak).
PCM16_TOLERANCES: dict[str, dict[str, float]] = {"spectral_distance_worst_frame": {"max": 0.1}}


def output_tolerances(subtype: str) -> dict[str, dict[str, float]] | None:
    """The tolerance layer of an output written as ``subtype`` (libsndfile's: FLOAT, PCM_24, PCM_16)."""
    return dict(PCM16_TOLERANCES) if subtype == "PCM_16" else None


def fast_path_tolerances(precision: str) -> dict[str, dict[str, float] | None]:
    """The tolerance layer of a fast path (``enhance --precision/--attention/--batch-chunks/--compile``)
    judged against the float32 golden of the same input: the measured bounds of ``precision``
    (`checks.metric_verdict.BOUNDS`, docs/runtimes.md, "Reduced precision") as golden metrics.

    Every fast path gets the bounds' SI-SDR and level. A reduced precision (bf16) drops the float-rounding
    bounds it cannot meet (``ROUNDING_METRICS``) and is held to the bounds' LSD below and above the cutoff
    instead. A float32 fast path (SDPA, batched chunks) keeps the rounding bounds, which hold it tighter than
    the bounds' LSD of 0.01 could: LSD counts rounding noise in near-empty bins (docs/golden-verdicts.md, "Why not LSD"), and
    one 16-bit rounding step there already gives 0.02.
    """
    from audiosr_verify.checks.metric_verdict import BOUNDS

    if precision not in BOUNDS:
        raise AudioSRError(f"no measured bounds for --precision {precision} (known: {', '.join(BOUNDS)}); "
                           "measure them with python benchmarks/bench_precision.py")
    b = BOUNDS[precision]
    layer: dict[str, dict[str, float] | None] = {"si_sdr": {"min": b.si_sdr_db},
                                                 "level_difference_db": {"max": b.level_db}}
    if precision != "fp32":
        layer.update(dict.fromkeys(ROUNDING_METRICS))  # None: the check is dropped (merge_tolerances)
        layer.update({"lsd_lf": {"max": b.lsd_low}, "lsd_hf": {"max": b.lsd_high}})
    return layer


def _worst(rows: list[MetricCheck]) -> MetricCheck:
    """Of one metric's rows over the channels: a failing one if any, else the one nearest its bound."""
    def badness(c: MetricCheck) -> float:
        if c.value is None or math.isnan(c.value):
            return math.inf
        return -c.value if c.bound == "min" else c.value

    failing = [c for c in rows if c.passed is False]
    return max(failing or rows, key=badness)


def compare_outputs(
    golden: np.ndarray,
    obtained: np.ndarray,
    tolerances: Mapping[str, Mapping[str, float]],
    cutoff_hz: float | None = None,
    reference_inputs: list[tuple[np.ndarray, int] | None] | None = None,
) -> list[MetricCheck]:
    """`compare_waveforms` of a mono ``[N]`` or a multi-channel ``[N, C]`` output (both of one shape).

    Channels are compared one by one, each against its own peak and level (a quiet channel is not judged
    by a loud one's scale), and each row is the worst channel's. A channel that is digital silence in the
    golden has no scale of its own: its error is judged on the loudest channel's, as if added to it (a
    denormal is nothing; noise written where the contract says silence is a change). ``reference_inputs``:
    the input of each channel (one entry for mono), for the line detector.
    """
    g, o = np.asarray(golden), np.asarray(obtained)
    refs = list(reference_inputs or [])
    if o.ndim == 1:
        return compare_waveforms(g, o, tolerances, cutoff_hz, refs[0] if refs else None)
    loudest = int(np.argmax(np.max(np.abs(g), axis=0)))
    per_channel = []
    for c in range(o.shape[1]):
        ref = refs[c] if c < len(refs) else None
        if np.any(g[:, c]) or not np.any(g[:, loudest]):
            per_channel.append(compare_waveforms(g[:, c], o[:, c], tolerances, cutoff_hz, ref))
        else:
            base = g[:, loudest].astype(np.float64)
            per_channel.append(compare_waveforms(base, base + o[:, c], tolerances, cutoff_hz,
                                                 refs[loudest] if loudest < len(refs) else None))
    return [_worst(list(rows)) for rows in zip(*per_channel)]


TOLERANCES_FILE = "tolerances.json"  # a store's own bounds (and the measured ones: golden/noise.py)


def case_tolerances(case) -> dict[str, Any] | None:
    """The case's own tolerance layer: a 16-bit output's (`policy.output_tolerances`), then a fast path's measured
    bounds (`policy.fast_path_tolerances`); None when it has neither."""
    from audiosr_model.audio_options import OUTPUT_FORMATS

    fast = case.fast_paths()
    fmt = case.options.get("format")
    layers = [output_tolerances(OUTPUT_FORMATS[fmt][1]) if fmt in OUTPUT_FORMATS else None,
              fast_path_tolerances(fast.get("precision", "fp32")) if fast else None]
    layers = [layer for layer in layers if layer]
    return {k: v for layer in layers for k, v in layer.items()} if layers else None


