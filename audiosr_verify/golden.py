"""Golden-output regression: a store of reference outputs, compared with tolerances.

Layout (one directory per checkpoint, so goldens of several live side by side)::

    golden/regression/<checkpoint-key>/
        tolerances.json              optional: {"default": {...}, "cases": {"<case>": {...}}}
        <case>/output.safetensors    the reference waveform, float32 [N] at 48 kHz ("waveform")
        <case>/meta.json             how it was made: input + sha256, model, run, versions, metrics
        <case>/output.flac           16-bit copy to listen to (never compared)
        <case>/obtained.*            written beside the reference when a comparison FAILS
        <case>/comparison.json       (ignored by git; removed again when the case passes)

``<checkpoint-key>`` is ``random-<preset>-seed<N>`` for seeded random weights
(``random-tiny-seed0`` is the bundled default) or the first 16 hex digits of a
real checkpoint's sha256.

A comparison first tries the exact path (bitwise equal -> pass); otherwise
every metric with a tolerance must hold (defaults in `DEFAULT_TOLERANCES`,
overridden per store and per case by ``tolerances.json`` and by a case's
``meta.json`` ``"tolerance_overrides"``). A golden that is missing fails - it
is never created by a check; `GoldenStore.update` (reached only through
``pytest --golden-update`` or ``audiosr-verify golden update``) writes a case
atomically: a temporary directory renamed into place.

Nothing here prints; checks return `CaseResult` / `GoldenRun` dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from model.errors import AudioSRError

SCHEMA_VERSION = 1
SAMPLE_RATE = 48000
PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAVEFORM_KEY = "waveform"
GOLDEN_FILES = ("output.safetensors", "meta.json", "output.flac")
OBTAINED_FILES = ("obtained.safetensors", "obtained.flac", "comparison.json")
TOLERANCES_FILE = "tolerances.json"
CASES_FILE = "cases.json"
UPDATE_HINT = "pytest tests/test_golden_regression.py --golden-update  (or: audiosr-verify golden update)"

# Tolerance of each checked metric: {"max": x} -> value <= x, {"min": x} -> value >= x.
# These metrics decide a golden verdict (README, "Golden verdicts"). Each bound sits
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
}
STATUSES = ("identical", "within_tolerance", "updated", "failed", "stale", "missing", "error")
PASSING = ("identical", "within_tolerance", "updated")


def default_root() -> Path:
    """``golden/regression`` of the source tree (or of the working directory when installed)."""
    for base in (PROJECT_ROOT, Path.cwd()):
        if (base / "golden").is_dir():
            return base / "golden" / "regression"
    return PROJECT_ROOT / "golden" / "regression"


def default_inputs_dir() -> Path:
    return default_root().parent / "regression_inputs"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def waveform_sha256(x: np.ndarray) -> str:
    return sha256_bytes(np.ascontiguousarray(x, dtype="<f4").tobytes())


def library_versions() -> dict[str, str]:
    import scipy
    import soundfile
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "platform": f"{platform.system()}-{platform.machine()}",
    }


# --------------------------------------------------------------------------- settings and cases


@dataclass(frozen=True)
class RunSettings:
    """Which model and which sampling settings produce (and must reproduce) a golden."""

    preset: str = "tiny"
    weights_seed: int | None = 0  # seeded random weights; None with a checkpoint
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    seed: int = 42
    steps: int = 2
    guidance_scale: float = 3.5
    level_mode: str = "preserve"
    mix: str = "mean"

    @classmethod
    def for_checkpoint(cls, path: str | os.PathLike, preset: str = "basic", **run: Any) -> "RunSettings":
        from model.checkpoint_reader import sha256_file

        return cls(preset=preset, weights_seed=None, checkpoint=str(path),
                   checkpoint_sha256=sha256_file(path), **run)

    @property
    def key(self) -> str:
        """Directory name of this model's goldens."""
        if self.checkpoint_sha256:
            return self.checkpoint_sha256[:16]
        return f"random-{self.preset}-seed{self.weights_seed}"

    def model_dict(self) -> dict[str, Any]:
        if self.checkpoint_sha256:
            return {"preset": self.preset, "weights": "checkpoint", "checkpoint_sha256": self.checkpoint_sha256,
                    "checkpoint_file": Path(self.checkpoint).name if self.checkpoint else None}
        return {"preset": self.preset, "weights": "random", "weights_seed": self.weights_seed}

    def run_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "steps": self.steps, "guidance_scale": self.guidance_scale,
                "level_mode": self.level_mode, "mix": self.mix}

    def describe(self) -> str:
        r = self.run_dict()
        model = (f"checkpoint {self.key}" if self.checkpoint_sha256
                 else f"random weights ({self.preset}, seed {self.weights_seed})")
        return (f"{model}; seed {r['seed']}, {r['steps']} DDIM steps, guidance {r['guidance_scale']}, "
                f"level {r['level_mode']}")


@dataclass(frozen=True)
class GoldenCase:
    """One regression input (a file under ``golden/regression_inputs``) and what it exercises."""

    name: str
    input: str  # file name inside the inputs directory
    sample_rate: int
    cutoff_hz: float | None  # nominal band limit of the input (for the above-cutoff metrics)
    sha256: str
    kind: str = "synthetic"  # synthetic | recording
    tier: str = "full"  # fast: in the default test tier; full: with -m slow and in the report
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input": self.input, "sample_rate": self.sample_rate,
                "cutoff_hz": self.cutoff_hz, "sha256": self.sha256, "kind": self.kind,
                "tier": self.tier, "description": self.description}


def load_cases(inputs_dir: str | os.PathLike | None = None) -> list[GoldenCase]:
    """The cases listed in ``<inputs_dir>/cases.json`` (written by `audiosr_verify.regression_inputs`)."""
    inputs_dir = Path(inputs_dir) if inputs_dir is not None else default_inputs_dir()
    index = inputs_dir / CASES_FILE
    if not index.is_file():
        return []
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        return [GoldenCase(**{k: c[k] for k in GoldenCase.__dataclass_fields__ if k in c})
                for c in data["cases"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise AudioSRError(f"malformed case index: {exc}", index) from None


def select_cases(cases: list[GoldenCase], names: Iterable[str] | None) -> list[GoldenCase]:
    """``cases`` restricted to ``names`` (all when empty); unknown names are an error."""
    names = list(names or [])
    if not names:
        return list(cases)
    by_name = {c.name: c for c in cases}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise AudioSRError(f"unknown golden case {', '.join(unknown)}; known: {', '.join(by_name) or 'none'}")
    return [by_name[n] for n in names]


# --------------------------------------------------------------------------- results


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


@dataclass
class CaseResult:
    """Outcome of one golden case: status, checks (table rows), notes and files written."""

    case: str
    checkpoint_key: str
    status: str  # one of STATUSES
    message: str = ""
    checks: list[MetricCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    golden_dir: str = ""
    written: list[str] = field(default_factory=list)  # obtained files or updated golden files
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)
    input_path: str | None = None
    input_sample_rate: int | None = None
    cutoff_hz: float | None = None
    seconds: float | None = None  # time spent enhancing, when known
    # Arrays for renderers (spectrograms); never serialised.
    obtained: np.ndarray | None = field(default=None, repr=False, compare=False)
    golden: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.status in PASSING

    def failed_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if c.passed is False]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(metric, value, tolerance, verdict) for a table."""
        return [(c.label, c.value_text(), c.tolerance_text(), c.verdict_text()) for c in self.checks]

    def summary_line(self, with_case: bool = True) -> str:
        prefix = f"{self.case}: " if with_case else ""
        if self.status == "identical":
            return prefix + "bitwise identical to the golden"
        if self.status == "within_tolerance":
            return prefix + "within tolerance (not bitwise identical)"
        if self.status == "failed":
            names = ", ".join(c.label for c in self.failed_checks()) or "comparison"
            return prefix + f"FAILED ({names})"
        return prefix + f"{self.status.upper() if not self.passed else self.status} - {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case, "checkpoint_key": self.checkpoint_key, "status": self.status,
            "passed": self.passed, "message": self.message,
            "checks": [c.to_dict() for c in self.checks], "notes": list(self.notes),
            "golden_dir": self.golden_dir, "written": list(self.written),
            "tolerances": self.tolerances, "input": self.input_path,
            "input_sample_rate": self.input_sample_rate, "cutoff_hz": self.cutoff_hz,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
        }


@dataclass
class GoldenRun:
    """All cases of one run against one checkpoint key."""

    checkpoint_key: str
    settings: dict[str, Any]
    root: str
    results: list[CaseResult] = field(default_factory=list)
    updated: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def summary_line(self) -> str:
        c = {k: v for k, v in self.counts.items() if v}
        parts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in c.items()) or "no cases"
        return f"golden regression {'OK' if self.passed else 'FAILED'} ({self.checkpoint_key}): {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "ok": self.passed, "checkpoint_key": self.checkpoint_key,
                "settings": self.settings, "root": self.root, "updated": self.updated,
                "counts": self.counts, "cases": [r.to_dict() for r in self.results]}


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
    from audiosr_verify import metrics as M

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
    from audiosr_verify import metrics as M

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


# --------------------------------------------------------------------------- store


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def _write_waveform(path: Path, x: np.ndarray, metadata: Mapping[str, str] | None = None) -> None:
    from safetensors.numpy import save_file

    save_file({WAVEFORM_KEY: np.ascontiguousarray(x, dtype=np.float32)}, str(path), metadata=dict(metadata or {}))


def read_waveform(path: str | os.PathLike) -> np.ndarray:
    from safetensors.numpy import load_file

    try:
        data = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise AudioSRError(f"unreadable golden waveform: {exc}", path) from None
    if WAVEFORM_KEY not in data:
        raise AudioSRError(f"no {WAVEFORM_KEY!r} tensor in golden file", path)
    return np.asarray(data[WAVEFORM_KEY], dtype=np.float32)


def _write_flac(path: Path, x: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0), SAMPLE_RATE,
             subtype="PCM_16", format="FLAC")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual umask mode."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _atomic_file(path: Path, writer: Callable[[Path], None]) -> None:
    """Run ``writer(tmp)`` then rename the temporary file onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        _publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Golden:
    waveform: np.ndarray
    meta: dict[str, Any]
    directory: Path


class GoldenStore:
    """Goldens under ``root`` (default ``golden/regression``), inputs under ``inputs_dir``."""

    def __init__(self, root: str | os.PathLike | None = None, inputs_dir: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.inputs_dir = Path(inputs_dir) if inputs_dir is not None else default_inputs_dir()

    # ---- paths and reading

    def cases(self) -> list[GoldenCase]:
        return load_cases(self.inputs_dir)

    def key_dir(self, key: str) -> Path:
        return self.root / key

    def case_dir(self, key: str, case: str) -> Path:
        return self.root / key / case

    def input_path(self, case: GoldenCase) -> Path:
        return self.inputs_dir / case.input

    def read_input(self, case: GoldenCase) -> tuple[np.ndarray, int]:
        """The case's input as a mono float32 array and its rate."""
        import soundfile as sf

        data, rate = sf.read(str(self.input_path(case)), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)

    def exists(self, key: str, case: str) -> bool:
        d = self.case_dir(key, case)
        return (d / "output.safetensors").is_file() and (d / "meta.json").is_file()

    def load(self, key: str, case: str) -> Golden | None:
        d = self.case_dir(key, case)
        if not self.exists(key, case):
            return None
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        except ValueError as exc:
            raise AudioSRError(f"malformed golden meta: {exc}", d / "meta.json") from None
        return Golden(read_waveform(d / "output.safetensors"), meta, d)

    def tolerances(self, key: str, case: str, meta: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """Defaults, then ``<key>/tolerances.json`` default and per-case entries, then the meta's overrides."""
        store: dict[str, Any] = {}
        path = self.key_dir(key) / TOLERANCES_FILE
        if path.is_file():
            try:
                store = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise AudioSRError(f"malformed tolerances: {exc}", path) from None
        return merge_tolerances(DEFAULT_TOLERANCES, store.get("default"), (store.get("cases") or {}).get(case),
                                (meta or {}).get("tolerance_overrides"))

    # ---- meta

    def make_meta(self, case: GoldenCase, settings: RunSettings, waveform: np.ndarray,
                  tolerances: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from audiosr_verify import metrics

        input_path = self.input_path(case)
        meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "case": case.name,
            "checkpoint_key": settings.key,
            "generated_by": UPDATE_HINT,
            "input": {"file": case.input, "sha256": sha256_path(input_path), "sample_rate": case.sample_rate,
                      "cutoff_hz": case.cutoff_hz, "kind": case.kind, "description": case.description},
            "model": settings.model_dict(),
            "run": settings.run_dict(),
            "output": {"file": "output.safetensors", "listen": "output.flac", "sample_rate": SAMPLE_RATE,
                       "samples": int(waveform.shape[-1]), "dtype": "float32",
                       "sha256_float32": waveform_sha256(waveform),
                       "peak": float(np.max(np.abs(waveform))) if waveform.size else 0.0},
            "versions": library_versions(),
            "metrics": {"version": metrics.METRICS_VERSION, "definitions": dict(metrics.METRIC_DEFINITIONS)},
            "tolerances": tolerances,
        }
        if overrides:
            meta["tolerance_overrides"] = dict(overrides)
        return meta

    def _stale_reasons(self, meta: Mapping[str, Any], case: GoldenCase, settings: RunSettings) -> list[str]:
        reasons = []
        current = sha256_path(self.input_path(case))
        if (meta.get("input") or {}).get("sha256") != current:
            reasons.append(f"input {case.input} changed (sha256 {current[:12]} vs golden's "
                           f"{str((meta.get('input') or {}).get('sha256'))[:12]})")
        for part, now in (("model", settings.model_dict()), ("run", settings.run_dict())):
            then = meta.get(part) or {}
            for k, v in now.items():
                if k == "checkpoint_file":
                    continue
                if then.get(k) != v:
                    reasons.append(f"{part}.{k} is {v!r}, golden made with {then.get(k)!r}")
        return reasons

    def _notes(self, meta: Mapping[str, Any]) -> list[str]:
        from audiosr_verify import metrics

        notes = []
        then = meta.get("versions") or {}
        now = library_versions()
        changed = [f"{k} {then.get(k)} -> {now[k]}" for k in ("torch", "numpy", "scipy", "soundfile", "platform")
                   if then.get(k) != now[k]]
        if changed:
            notes.append("environment differs from the golden's: " + ", ".join(changed))
        mv = (meta.get("metrics") or {}).get("version")
        if mv != metrics.METRICS_VERSION:
            notes.append(f"metric definitions changed (golden made with version {mv}, "
                         f"now {metrics.METRICS_VERSION}): tolerances may need review")
        return notes

    # ---- compare / update

    def compare(self, case: GoldenCase, obtained: np.ndarray, settings: RunSettings,
                write_obtained: bool = True, ci: bool | None = None) -> CaseResult:
        """Compare ``obtained`` (float32 [N] at 48 kHz) with the case's golden."""
        key = settings.key
        obtained = np.ascontiguousarray(np.asarray(obtained, dtype=np.float32).reshape(-1))
        d = self.case_dir(key, case.name)
        result = CaseResult(case.name, key, "error", golden_dir=str(d), input_path=str(self.input_path(case)),
                            input_sample_rate=case.sample_rate, cutoff_hz=case.cutoff_hz, obtained=obtained)
        golden = self.load(key, case.name)
        if golden is None:
            ci = in_ci() if ci is None else ci
            result.status = "missing"
            result.message = (f"no golden for case {case.name!r} under {d}"
                              + (" (CI is set: goldens are never created in CI; generate them locally and commit)"
                                 if ci else "") + f"; create it with: {UPDATE_HINT}")
            result.tolerances = self.tolerances(key, case.name)
            return result
        result.golden = golden.waveform
        result.tolerances = tol = self.tolerances(key, case.name, golden.meta)
        result.notes = self._notes(golden.meta)
        stale = self._stale_reasons(golden.meta, case, settings)
        g = golden.waveform
        if g.shape == obtained.shape and g.tobytes() == obtained.tobytes():
            result.checks = [MetricCheck("peak_relative_diff", 0.0, "max",
                                         tol.get("peak_relative_diff", {}).get("max"), True)]
            result.status = "identical"
        elif g.shape != obtained.shape:
            result.checks = [MetricCheck("length", float(obtained.size), "max", float(g.size), False)]
            result.status = "failed"
            result.message = f"obtained {obtained.size} samples, golden has {g.size}"
        else:
            ref = self.read_input(case)
            result.checks = compare_waveforms(g, obtained, tol, case.cutoff_hz, ref)
            ok = all(c.passed is not False for c in result.checks)
            result.status = "within_tolerance" if ok else "failed"
            if not ok:
                result.message = "exceeds tolerance: " + ", ".join(c.label for c in result.failed_checks())
        if stale:
            result.status = "stale"
            result.message = "golden was made differently: " + "; ".join(stale) + f"; review, then run {UPDATE_HINT}"
        if result.passed:
            self._remove_obtained(d)
        elif write_obtained:
            result.written = self._write_obtained(d, obtained, result)
        return result

    def update(self, case: GoldenCase, obtained: np.ndarray, settings: RunSettings) -> CaseResult:
        """Write (or replace) the case's golden atomically: temp directory, then rename."""
        key = settings.key
        obtained = np.ascontiguousarray(np.asarray(obtained, dtype=np.float32).reshape(-1))
        final = self.case_dir(key, case.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        previous = None
        try:
            previous = self.load(key, case.name)
        except AudioSRError:
            pass  # a broken golden is simply replaced
        overrides = (previous.meta.get("tolerance_overrides") if previous else None) or None
        tol = self.tolerances(key, case.name, {"tolerance_overrides": overrides} if overrides else None)
        meta = self.make_meta(case, settings, obtained, tol, overrides)
        tmp = Path(tempfile.mkdtemp(prefix=f".{case.name}.", suffix=".partial", dir=final.parent))
        try:
            _write_waveform(tmp / "output.safetensors", obtained,
                            {"case": case.name, "checkpoint_key": key, "sample_rate": str(SAMPLE_RATE)})
            _write_json(tmp / "meta.json", meta)
            _write_flac(tmp / "output.flac", obtained)
            for name in GOLDEN_FILES:
                _publish_mode(tmp / name)
            _publish_mode(tmp, directory=True)
            old = None
            if final.exists():
                old = final.parent / f".{case.name}.old-{os.getpid()}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        status_note = "replaced" if previous is not None else "created"
        if previous is not None and previous.waveform.tobytes() == obtained.tobytes():
            status_note = "rewritten (output unchanged)"
        return CaseResult(case.name, key, "updated", message=f"golden {status_note}", golden_dir=str(final),
                          written=[str(final / n) for n in GOLDEN_FILES], tolerances=tol,
                          input_path=str(self.input_path(case)), input_sample_rate=case.sample_rate,
                          cutoff_hz=case.cutoff_hz, obtained=obtained, golden=obtained)

    def _write_obtained(self, d: Path, obtained: np.ndarray, result: CaseResult) -> list[str]:
        if not d.is_dir():
            return []
        _atomic_file(d / "obtained.safetensors", lambda p: _write_waveform(p, obtained))
        _atomic_file(d / "obtained.flac", lambda p: _write_flac(p, obtained))
        _atomic_file(d / "comparison.json", lambda p: _write_json(p, result.to_dict()))
        return [str(d / n) for n in OBTAINED_FILES]

    def _remove_obtained(self, d: Path) -> None:
        for name in OBTAINED_FILES:
            (d / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- running


def enhance_case(net, case: GoldenCase, settings: RunSettings, inputs_dir: str | os.PathLike,
                 workdir: str | os.PathLike) -> np.ndarray:
    """Enhance the case's input with ``settings`` into ``workdir``; the 48 kHz float32 waveform."""
    import soundfile as sf

    from model.long_audio import enhance_file

    out = Path(workdir) / f"{case.name}.wav"
    enhance_file(net, Path(inputs_dir) / case.input, out, steps=settings.steps,
                 guidance_scale=settings.guidance_scale, seed=settings.seed,
                 level_mode=settings.level_mode, mix=settings.mix)
    data, rate = sf.read(str(out), dtype="float32")
    if rate != SAMPLE_RATE:
        raise AudioSRError(f"enhanced output at {rate} Hz, expected {SAMPLE_RATE}", out)
    return data


ProgressFn = Callable[[str, int, int], None]  # (case name, done, total)


def run_golden(net, settings: RunSettings, store: GoldenStore | None = None,
               cases: Iterable[GoldenCase] | None = None, update: bool = False,
               progress: ProgressFn | None = None, write_obtained: bool = True) -> GoldenRun:
    """Enhance every case and compare it with (or, with ``update``, write) its golden."""
    import time

    store = store or GoldenStore()
    cases = list(store.cases() if cases is None else cases)
    run = GoldenRun(settings.key, {"model": settings.model_dict(), "run": settings.run_dict()},
                    str(store.root), updated=update)
    with tempfile.TemporaryDirectory(prefix="audiosr-golden-") as work:
        for i, case in enumerate(cases):
            if progress is not None:
                progress(case.name, i, len(cases))
            t0 = time.perf_counter()
            try:
                obtained = enhance_case(net, case, settings, store.inputs_dir, work)
            except AudioSRError as exc:
                run.results.append(CaseResult(case.name, settings.key, "error", message=str(exc),
                                              golden_dir=str(store.case_dir(settings.key, case.name))))
                continue
            seconds = time.perf_counter() - t0
            res = (store.update(case, obtained, settings) if update
                   else store.compare(case, obtained, settings, write_obtained=write_obtained))
            res.seconds = seconds
            run.results.append(res)
        if progress is not None:
            progress("", len(cases), len(cases))
    return run


__all__ = [
    "DEFAULT_TOLERANCES",
    "CaseResult",
    "Golden",
    "GoldenCase",
    "GoldenRun",
    "GoldenStore",
    "MetricCheck",
    "RunSettings",
    "UPDATE_HINT",
    "compare_waveforms",
    "default_inputs_dir",
    "default_root",
    "enhance_case",
    "in_ci",
    "load_cases",
    "merge_tolerances",
    "read_waveform",
    "run_golden",
    "select_cases",
]
