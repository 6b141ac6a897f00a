"""Golden-output regression: a store of reference outputs, compared with tolerances.

Layout (one directory per checkpoint, so goldens of several live side by side)::

    golden/regression/<checkpoint-key>/
        tolerances.json              optional: {"default": {...}, "cases": {"<case>": {...}}}
        <case>/output.safetensors    the reference waveform, float32 [N] at 48 kHz ("waveform")
        <case>/meta.json             how it was made: input + sha256, model, run, versions, metrics
        <case>/output.flac           16-bit copy to listen to, its first LISTEN_SECONDS (never compared)
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

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from audiosr_model.errors import AudioSRError
from audiosr_verify.golden.cases import (
    CASE_OPTIONS, CASES_FILE, GoldenCase, default_inputs_dir, load_cases, options_text, select_cases,
)
from audiosr_verify.golden.frames import _frames, waveform_sha256
from audiosr_verify.golden.policy import (
    TOLERANCES_FILE,
    case_tolerances,
    DEFAULT_TOLERANCES,
    SAMPLE_RATE,
    MetricCheck,
    compare_outputs,
    compare_waveforms,
    merge_tolerances,
)
from audiosr_verify.util.atomic import atomic_write, publish_dir, published_dir, write_error
from audiosr_verify.util.hashing import sha256_file
from audiosr_verify.util.paths import data_dir
from audiosr_verify.util.safe_open import (
    GOLDEN_META_SHAPE,
    MAX_GOLDEN_WAVEFORM_BYTES,
    TOLERANCES_SHAPE,
    read_bytes,
    read_json_as,
)

SCHEMA_VERSION = 1
WAVEFORM_KEY = "waveform"
GOLDEN_FILES = ("output.safetensors", "meta.json", "output.flac")
OBTAINED_FILES = ("obtained.safetensors", "obtained.flac", "comparison.json")
UPDATE_HINT = "pytest tests/test_golden_regression.py --golden-update  (or: audiosr-verify golden update)"

STATUSES = ("identical", "within_tolerance", "updated", "failed", "stale", "missing", "error", "not_applicable")
# not_applicable: the source cannot run the case here (`not_applicable`: a subject's schema enhance and a product
# option, or bf16 without native bfloat16); it passes nothing on its own: a run is OK only when it compared
# something (GoldenRun.passed)
PASSING = ("identical", "within_tolerance", "updated", "not_applicable")
RUN_OPTION_DEFAULTS = {"out_format": "wav", "precision": "fp32", "attention": "math", "batch_chunks": 1,
                       "compile": False}


def default_root() -> Path:
    """``regression/`` of the harness's data (the repository's ``golden/regression``)."""
    return data_dir() / "regression"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


sha256_path = sha256_file  # the name this module has always exported





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
        from audiosr_model.weights.checkpoint_reader import sha256_file

        return cls(preset=preset, weights_seed=None, checkpoint=str(path),
                   checkpoint_sha256=sha256_file(path), **run)

    subject: str | None = None  # a subject's enhance (faithful level, channel 0) instead of ours
    # enhance's other options; a case sets them (`GoldenCase.options`), the store's run leaves them off
    out_format: str = "wav"
    precision: str = "fp32"
    attention: str = "math"
    batch_chunks: int = 1
    compile: bool = False

    @property
    def key(self) -> str:
        """Directory name of these goldens: the weights, then what differs from the default run."""
        base = (self.checkpoint_sha256[:16] if self.checkpoint_sha256
                else f"random-{self.preset}-seed{self.weights_seed}")
        if (self.level_mode, self.mix) != ("preserve", "mean"):
            base += f"-{self.level_mode}-{self.mix}"
        return base

    @classmethod
    def for_subjects(cls, subject: str, **kw: Any) -> "RunSettings":
        """Settings of a subject's golden run: the bundled weights, the schema's faithful ``enhance``."""
        return cls(level_mode="faithful", mix="first", subject=subject, **kw)

    def model_dict(self) -> dict[str, Any]:
        if self.checkpoint_sha256:
            return {"preset": self.preset, "weights": "checkpoint", "checkpoint_sha256": self.checkpoint_sha256,
                    "checkpoint_file": Path(self.checkpoint).name if self.checkpoint else None}
        return {"preset": self.preset, "weights": "random", "weights_seed": self.weights_seed}

    def run_dict(self) -> dict[str, Any]:
        """What a golden records of its run: the sampling settings, then any other option not at its default
        (so the goldens made before those options existed still match)."""
        run = {"seed": self.seed, "steps": self.steps, "guidance_scale": self.guidance_scale,
               "level_mode": self.level_mode, "mix": self.mix}
        return run | {k: getattr(self, k) for k, off in RUN_OPTION_DEFAULTS.items() if getattr(self, k) != off}

    def for_case(self, case: "GoldenCase") -> "RunSettings":
        """These settings with the case's own ``enhance`` options: what runs it. The golden's directory is
        still this store's (``self.key``), never the result's."""
        if not case.options:
            return self
        return replace(self, **{CASE_OPTIONS[k]: v for k, v in case.options.items()})

    def describe(self) -> str:
        r = self.run_dict()
        model = (f"checkpoint {self.key}" if self.checkpoint_sha256
                 else f"random weights ({self.preset}, seed {self.weights_seed})")
        return (f"{model}; seed {r['seed']}, {r['steps']} DDIM steps, guidance {r['guidance_scale']}, "
                f"level {r['level_mode']}")


# --------------------------------------------------------------------------- results


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
    update_hint: str = ""  # the command that (re)writes this golden; empty: the store's generic one
    # metric -> {"source": default | measured | store | case override, "bound", "default", "measured_noise"}
    bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    noise: dict[str, Any] | None = None  # the float noise measured as this golden was written (golden/noise.py)
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
            "bounds": self.bounds, "noise_measurement": self.noise,
        }


@dataclass
class GoldenRun:
    """All cases of one run against one checkpoint key."""

    checkpoint_key: str
    settings: dict[str, Any]
    root: str
    results: list[CaseResult] = field(default_factory=list)
    updated: bool = False
    notices: list[str] = field(default_factory=list)  # about the bounds (golden/noise.py `unmeasured_notice`)

    @property
    def passed(self) -> bool:
        """Every case passed, and at least one was compared (or written): never OK on nothing."""
        return any(r.status != "not_applicable" for r in self.results) and all(r.passed for r in self.results)

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
                "counts": self.counts, "notices": list(self.notices),
                "cases": [r.to_dict() for r in self.results]}


# --------------------------------------------------------------------------- store


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


PCM16_SCALE = 32768.0  # libsndfile reads 16-bit sample k as k / 32768


def stored_dtype(x: np.ndarray) -> str:
    """``int16`` when every sample of ``x`` is a 16-bit sample as read from a 16-bit file (``k / 32768``), else
    ``float32``: a 16-bit output (``--format wav-pcm16``, ``flac-pcm16``) is kept as what the user's file holds,
    exactly, in half the bytes."""
    x = np.asarray(x, dtype=np.float32)
    k = x.astype(np.float64) * PCM16_SCALE
    exact = x.size and np.all(k == np.round(k)) and np.all((k >= -32768) & (k <= 32767))
    return "int16" if exact else "float32"


def _write_waveform(path: Path, x: np.ndarray, metadata: Mapping[str, str] | None = None) -> None:
    """``x`` as one tensor: ``[N]``, or ``[N, C]`` frame-interleaved into ``[N * C]`` (as in a WAV file); float32,
    or int16 where that is exact (`stored_dtype`; `read_waveform` gives the same float32 samples back)."""
    from safetensors.numpy import save_file

    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    if stored_dtype(x) == "int16":
        x = np.round(x.astype(np.float64) * PCM16_SCALE).astype(np.int16)
    save_file({WAVEFORM_KEY: x}, str(path), metadata=dict(metadata or {}))


def read_waveform(path: str | os.PathLike) -> np.ndarray:
    from safetensors.numpy import load

    raw = read_bytes(path, "golden waveform", max_bytes=MAX_GOLDEN_WAVEFORM_BYTES)  # regular file, bounded
    try:
        data = load(raw)
    except Exception as exc:  # safetensors raises its own error types
        raise AudioSRError(f"unreadable golden waveform: {exc}", path) from None
    if WAVEFORM_KEY not in data:
        raise AudioSRError(f"no {WAVEFORM_KEY!r} tensor in golden file", path)
    x = data[WAVEFORM_KEY]
    if x.dtype == np.int16:  # a 16-bit output, kept as its samples (`stored_dtype`)
        return (x.astype(np.float32) / np.float32(PCM16_SCALE)).astype(np.float32)
    return np.asarray(x, dtype=np.float32)


def _golden_frames(waveform: np.ndarray, meta: Mapping[str, Any], obtained: np.ndarray | None = None) -> np.ndarray:
    """The stored golden (frame-interleaved, as a WAV file holds it) as ``[N]`` or ``[N, C]``.

    The channel count is the meta's; a golden written before it was recorded is read with the obtained
    output's, when the sizes agree (its bytes are the same frame-interleaved samples).
    """
    channels = int((meta.get("output") or {}).get("channels") or 0)
    if not channels and obtained is not None:
        channels = obtained.shape[1] if obtained.ndim == 2 and waveform.size == obtained.size else 1
    if channels > 1 and waveform.ndim == 1 and waveform.size % channels == 0:
        return waveform.reshape(-1, channels)
    return waveform


def _raised_notes(bounds: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A bound looser than its default is never silent: one note each, with the measured noise that set it."""
    from audiosr_verify.golden.noise import SOURCE_LABELS, _bound_text
    from audiosr_verify.golden.policy import _fmt

    notes = []
    for name, b in bounds.items():
        if b["source"] == "default" or b["bound"] == b["default"]:
            continue
        noise = b.get("measured_noise")
        notes.append(f"bound of {name} {_bound_text(b['bound'])} ({SOURCE_LABELS[b['source']]}; default "
                     f"{_bound_text(b['default']) if b['default'] else 'none'}"
                     + (f"; measured noise {_fmt(noise)}" if noise is not None else "") + ")")
    return notes


def _shape_text(x: np.ndarray) -> str:
    return f"{x.shape[0]} samples" + (f" x {x.shape[1]} channels" if x.ndim == 2 else "")


LISTEN_SECONDS = 12.0  # a listening copy's length at most: what the report's players play (report.audio)


def _write_flac(path: Path, x: np.ndarray) -> None:
    """The 16-bit copy to listen to: its first `LISTEN_SECONDS` (a long golden is compared whole, never heard
    whole; a 28 s copy would cost more than the golden itself)."""
    import soundfile as sf

    x = np.asarray(x, dtype=np.float64)[: int(LISTEN_SECONDS * SAMPLE_RATE)]
    sf.write(str(path), np.clip(x, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="FLAC")


@dataclass
class Golden:
    waveform: np.ndarray  # as stored: [N], or [N * C] frame-interleaved
    meta: dict[str, Any]
    directory: Path

    @property
    def frames(self) -> np.ndarray:
        """The waveform as ``[N]`` or ``[N, C]``, as an output is compared."""
        return _golden_frames(self.waveform, self.meta)


class GoldenStore:
    """Goldens under ``root`` (default ``golden/regression``), inputs under ``inputs_dir``."""

    def __init__(self, root: str | os.PathLike | None = None, inputs_dir: str | os.PathLike | None = None,
                 update_hint: str | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.inputs_dir = Path(inputs_dir) if inputs_dir is not None else default_inputs_dir()
        self.update_hint = update_hint or UPDATE_HINT  # how a user of this store writes goldens

    # ---- paths and reading

    def cases(self) -> list[GoldenCase]:
        return load_cases(self.inputs_dir)

    def key_dir(self, key: str) -> Path:
        return self.root / key

    def case_dir(self, key: str, case: str) -> Path:
        return self.root / key / case

    def input_path(self, case: GoldenCase) -> Path | None:
        return self.inputs_dir / case.input if case.input else None

    def input_sha256(self, case: GoldenCase) -> str | None:
        """The input file's sha256 as it is now; without a file, the case's own (an in-memory waveform's)."""
        path = self.input_path(case)
        return sha256_path(path) if path is not None else (case.sha256 or None)

    def read_input(self, case: GoldenCase) -> tuple[np.ndarray, int] | None:
        """The case's input as a mono float32 array and its rate (None when the case has no input file)."""
        channels = self.read_input_channels(case)
        return None if channels is None else (channels[0].mean(axis=1), channels[1])

    def read_input_channels(self, case: GoldenCase) -> tuple[np.ndarray, int] | None:
        """The case's input as float32 ``[N, C]`` and its rate (None when the case has no input file)."""
        import soundfile as sf

        if self.input_path(case) is None:
            return None
        data, rate = sf.read(str(self.input_path(case)), dtype="float32", always_2d=True)
        return data, int(rate)

    def _references(self, case: GoldenCase, obtained: np.ndarray) -> list[tuple[np.ndarray, int]] | None:
        """Each output channel's input (the line detector's reference): one per channel kept, else the mix."""
        data = self.read_input_channels(case)
        if data is None:
            return None
        x, rate = data
        if obtained.ndim == 2 and x.shape[1] == obtained.shape[1]:
            return [(x[:, c], rate) for c in range(x.shape[1])]
        return [(x.mean(axis=1), rate)]

    def owner(self, case: GoldenCase) -> GoldenCase:
        """The case whose golden ``case`` is compared with: itself, or for a fast path the case it names."""
        if not case.golden:
            return case
        owners = [c for c in self.cases() if c.name == case.golden]
        if not owners:
            raise AudioSRError(f"case {case.name!r} is judged against the golden of {case.golden!r}, which is "
                               "not in the case index", self.inputs_dir / CASES_FILE)
        return owners[0]

    def exists(self, key: str, case: str) -> bool:
        d = published_dir(self.case_dir(key, case))  # the old case while an interrupted swap awaits recovery
        # present in any form: a pipe or a directory in their place is then refused by load(), not "missing"
        return os.path.lexists(d / "output.safetensors") and os.path.lexists(d / "meta.json")

    def load(self, key: str, case: str) -> Golden | None:
        d = published_dir(self.case_dir(key, case))
        if not self.exists(key, case):
            return None
        meta = read_json_as(d / "meta.json", "golden meta", GOLDEN_META_SHAPE)  # bounded, shape checked
        return Golden(read_waveform(d / "output.safetensors"), meta, d)

    def tolerances(self, key: str, case: str, meta: Mapping[str, Any] | None = None,
                   case_layer: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """Defaults, the case's own layer (a fast path's measured bounds: `case_tolerances`), the bounds
        measured for this checkpoint on this golden (``<key>/tolerances.json`` "measured", golden/noise.py),
        then ``<key>/tolerances.json`` default and per-case entries, then the meta's overrides."""
        return merge_tolerances(*(layer for _, layer in self.tolerance_layers(key, case, meta, case_layer)[0]))

    def tolerance_layers(self, key: str, case: str, meta: Mapping[str, Any] | None = None,
                         case_layer: Mapping[str, Any] | None = None
                         ) -> tuple[list[tuple[str, Mapping[str, Any] | None]], dict[str, Any] | None]:
        """([(source, layer)] in the order they apply, the case's measured entry or None). The measured
        layer applies to the golden it measured: ``meta["output"]["sha256_float32"]``."""
        from audiosr_verify.golden.noise import applicable_entry, measured_entries

        store: dict[str, Any] = {}
        path = self.key_dir(key) / TOLERANCES_FILE
        if os.path.lexists(path):  # present but not a regular file, or not JSON of the right shape: one line
            store = read_json_as(path, "tolerances", TOLERANCES_SHAPE)
        sha = ((meta or {}).get("output") or {}).get("sha256_float32")
        measured = applicable_entry(measured_entries(self, key, store), case, sha)
        layers = [("default", DEFAULT_TOLERANCES), ("default", case_layer),
                  ("measured", (measured or {}).get("bounds")), ("store", store.get("default")),
                  ("case override", (store.get("cases") or {}).get(case)),
                  ("case override", (meta or {}).get("tolerance_overrides"))]
        return layers, measured

    def bounds(self, key: str, case: str, meta: Mapping[str, Any] | None = None,
               case_layer: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """metric -> which bound applies and why: {"source", "bound", "default", "measured_noise"}."""
        from audiosr_verify.golden.noise import bounds_report

        return bounds_report(*self.tolerance_layers(key, case, meta, case_layer))

    # ---- meta

    def make_meta(self, case: GoldenCase, settings: RunSettings, waveform: np.ndarray,
                  tolerances: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from audiosr_verify.compare import metrics

        meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "case": case.name,
            "checkpoint_key": settings.key,
            "generated_by": self.update_hint,
            "input": {"file": case.input, "sha256": self.input_sha256(case), "sample_rate": case.sample_rate,
                      "cutoff_hz": case.cutoff_hz, "kind": case.kind, "description": case.description},
            "model": settings.model_dict(),
            "run": settings.for_case(case).run_dict(),
            "made_by": settings.subject or "audiosr_model (enhance_file)",
            "output": {"file": "output.safetensors", "listen": "output.flac", "sample_rate": SAMPLE_RATE,
                       "listen_seconds": min(LISTEN_SECONDS, waveform.shape[0] / SAMPLE_RATE),
                       "samples": int(waveform.shape[0]), "channels": int(waveform.shape[1]) if waveform.ndim == 2
                       else 1, "dtype": stored_dtype(waveform), "layout": "frame-interleaved",
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
        current = self.input_sha256(case)
        if (meta.get("input") or {}).get("sha256") != current:  # always the first reason (see compare)
            reasons.append(f"input {case.input or '(waveform)'} changed (sha256 {str(current)[:12]} vs golden's "
                           f"{str((meta.get('input') or {}).get('sha256'))[:12]})")
        for part, now in (("model", settings.model_dict()), ("run", settings.for_case(case).run_dict())):
            then = meta.get(part) or {}
            off = RUN_OPTION_DEFAULTS if part == "run" else {}  # options recorded only when not at their default
            for k in list(now) + [k for k in then if k in off and k not in now]:
                if k == "checkpoint_file":
                    continue
                v, was = now.get(k, off.get(k)), then.get(k, off.get(k))
                if was != v:
                    reasons.append(f"{part}.{k} is {v!r}, golden made with {was!r}")
        return reasons

    def _notes(self, meta: Mapping[str, Any]) -> list[str]:
        from audiosr_verify.compare import metrics

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
                write_obtained: bool = True, ci: bool | None = None, update_hint: str | None = None) -> CaseResult:
        """Compare ``obtained`` (float32 ``[N]``, or ``[N, C]`` for several channels, at 48 kHz) with the
        case's golden: its own, or for a fast path the golden of the case it names (`GoldenCase.golden`),
        judged under the fast path's measured bounds.

        ``update_hint``: the exact command that writes this case's golden (default: the store's).
        """
        key = settings.key
        hint = update_hint or self.update_hint
        obtained = _frames(obtained)
        owner = self.owner(case)
        borrowed = owner is not case
        d = self.case_dir(key, owner.name)
        input_path = self.input_path(case)
        result = CaseResult(case.name, key, "error", golden_dir=str(d),
                            input_path=None if input_path is None else str(input_path),
                            input_sample_rate=case.sample_rate, cutoff_hz=case.cutoff_hz, obtained=obtained,
                            update_hint=hint)
        layer = case_tolerances(case)
        golden = self.load(key, owner.name)
        if golden is None:
            ci = in_ci() if ci is None else ci
            result.status = "missing"
            result.message = (f"no golden for case {owner.name!r} under {d}"
                              + (" (CI is set: goldens are never created in CI; generate them locally and commit)"
                                 if ci else "") + f"; create it with: {hint}")
            result.tolerances = self.tolerances(key, case.name, case_layer=layer)
            result.bounds = self.bounds(key, case.name, case_layer=layer)
            return result
        g = _golden_frames(golden.waveform, golden.meta, obtained)
        result.golden = g
        # a fast path is judged by its own bounds: the owner's per-case overrides are about the owner's noise
        result.tolerances = tol = self.tolerances(key, case.name, None if borrowed else golden.meta, layer)
        result.bounds = self.bounds(key, case.name, None if borrowed else golden.meta, layer)
        result.notes = self._notes(golden.meta) + _raised_notes(result.bounds)
        if borrowed:
            result.notes.insert(0, f"a fast path ({options_text(case.fast_paths())}) judged against the golden of "
                                f"{owner.name} under its measured bounds; its obtained files are not written")
        stale = self._stale_reasons(golden.meta, owner, settings)
        if g.shape == obtained.shape and g.tobytes() == obtained.tobytes():
            result.checks = [MetricCheck("peak_relative_diff", 0.0, "max",
                                         tol.get("peak_relative_diff", {}).get("max"), True)]
            result.status = "identical"
        elif g.shape != obtained.shape:
            result.checks = [MetricCheck("length", float(obtained.shape[0]), "max", float(g.shape[0]), False)]
            result.status = "failed"
            result.message = f"obtained {_shape_text(obtained)}, golden has {_shape_text(g)}"
        else:
            result.checks = compare_outputs(g, obtained, tol, case.cutoff_hz, self._references(case, obtained))
            if obtained.ndim == 2:
                result.notes.append(f"{obtained.shape[1]} channels compared one by one (each against its own "
                                    "peak and level); each row is the worst channel's")
            ok = all(c.passed is not False for c in result.checks)
            result.status = "within_tolerance" if ok else "failed"
            if not ok:
                result.message = "exceeds tolerance: " + ", ".join(c.label for c in result.failed_checks())
        if stale:
            # a changed input is not a regression of the model: say so first, apart from the settings
            result.status = "stale"
            what = ("stale golden: the input changed" if stale[0].startswith("input ")
                    else "stale golden: made with other settings")
            result.message = f"{what}: {'; '.join(stale)}. Not a verdict on the model: review, then run {hint}"
        if borrowed:
            if result.passed:
                result.message = f"against the golden of {owner.name} ({options_text(case.fast_paths())})"
            return result  # the owner's directory holds the owner's obtained files only
        if result.passed:
            self._remove_obtained(d)
        elif write_obtained:
            result.written = self._write_obtained(d, obtained, result)
        return result

    def update(self, case: GoldenCase, obtained: np.ndarray, settings: RunSettings) -> CaseResult:
        """Write (or replace) the case's golden atomically: temp directory, then rename.

        A fast path has no golden of its own (`GoldenCase.golden`): it is compared instead, and writes nothing.
        """
        if case.golden:
            return self.compare(case, obtained, settings, write_obtained=False)
        key = settings.key
        obtained = _frames(obtained)
        final = self.case_dir(key, case.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        previous = None
        try:
            previous = self.load(key, case.name)
        except AudioSRError:
            pass  # a broken golden is simply replaced
        overrides = (previous.meta.get("tolerance_overrides") if previous else None) or None
        # the new golden's: its overrides, and the bounds measured on it (golden/noise.py) when there are
        new = {"tolerance_overrides": overrides, "output": {"sha256_float32": waveform_sha256(obtained)}}
        tol = self.tolerances(key, case.name, new, case_tolerances(case))
        meta = self.make_meta(case, settings, obtained, tol, overrides)

        from safetensors import SafetensorError

        def build(tmp: Path) -> None:
            try:
                _write_waveform(tmp / "output.safetensors", obtained,
                                {"case": case.name, "checkpoint_key": key, "sample_rate": str(SAMPLE_RATE)})
                _write_json(tmp / "meta.json", meta)
                _write_flac(tmp / "output.flac", obtained)
            except (OSError, RuntimeError, ValueError, SafetensorError) as exc:  # libsndfile, safetensors: own errors
                raise AudioSRError(f"cannot write golden case: {write_error(exc, tmp)}", final) from None

        # One step from the old case to the new one, under the case's lock: a kill at any
        # point leaves the old or the new golden, never none (util.atomic.publish_dir).
        publish_dir(final, build, what="golden case")
        status_note = "replaced" if previous is not None else "created"
        if previous is not None and previous.waveform.tobytes() == obtained.tobytes():
            status_note = "rewritten (output unchanged)"
        return CaseResult(case.name, key, "updated", message=f"golden {status_note}", golden_dir=str(final),
                          written=[str(final / n) for n in GOLDEN_FILES], tolerances=tol,
                          bounds=self.bounds(key, case.name, new, case_tolerances(case)),
                          input_path=str(self.input_path(case)), input_sample_rate=case.sample_rate,
                          cutoff_hz=case.cutoff_hz, obtained=obtained, golden=obtained)

    def _write_obtained(self, d: Path, obtained: np.ndarray, result: CaseResult) -> list[str]:
        if not d.is_dir():
            return []
        atomic_write(d / "obtained.safetensors", lambda p: _write_waveform(p, obtained))
        atomic_write(d / "obtained.flac", lambda p: _write_flac(p, obtained))
        atomic_write(d / "comparison.json", lambda p: _write_json(p, result.to_dict()))
        return [str(d / n) for n in OBTAINED_FILES]

    def _remove_obtained(self, d: Path) -> None:
        for name in OBTAINED_FILES:
            (d / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- running


def enhance_case(net, case: GoldenCase, settings: RunSettings, inputs_dir: str | os.PathLike,
                 workdir: str | os.PathLike) -> np.ndarray:
    """Enhance the case's input as ``enhance`` does, with ``settings`` and the case's own options, into
    ``workdir``; what the user gets on disk (in the case's ``--format``), read back as 48 kHz float32
    ``[N]`` (``[N, C]`` when several channels are kept)."""
    import soundfile as sf

    from audiosr_model.audio_options import OUTPUT_FORMATS
    from audiosr_model.long_audio import enhance_file
    from audiosr_model.runtime.speed import fast_network

    run = settings.for_case(case)
    out = Path(workdir) / f"{case.name}{OUTPUT_FORMATS[run.out_format][2]}"
    enhance_file(fast_network(net, run.precision, run.attention, run.compile), Path(inputs_dir) / case.input, out,
                 steps=run.steps, guidance_scale=run.guidance_scale, seed=run.seed, level_mode=run.level_mode,
                 mix=run.mix, out_format=run.out_format, batch_chunks=run.batch_chunks)
    data, rate = sf.read(str(out), dtype="float32")
    if rate != SAMPLE_RATE:
        raise AudioSRError(f"enhanced output at {rate} Hz, expected {SAMPLE_RATE}", out)
    return data


ProgressFn = Callable[[str, int, int], None]  # (case name, done, total)


Producer = Callable[[GoldenCase], np.ndarray]  # a case -> its 48 kHz float32 output


def _producer(produce: Producer, *, schema: bool = False, net=None) -> Producer:
    """Mark what ``produce`` runs: a subject's schema ``enhance`` (``schema``), or our product on ``net``."""
    produce.schema, produce.net = schema, net  # type: ignore[attr-defined]
    return produce


def subject_producer(subject, settings: RunSettings, inputs_dir: str | os.PathLike) -> Producer:
    """Outputs of an activated subject's ``enhance`` (the schema's: faithful level, channel 0).

    A case needing more than that (`GoldenCase.schema_problem`) is not run: `run_golden` reports it
    as not applicable.
    """
    import soundfile as sf

    def produce(case: GoldenCase) -> np.ndarray:
        run = settings.for_case(case)
        data, rate = sf.read(str(Path(inputs_dir) / case.input), dtype="float32", always_2d=True)
        out = subject.enhance(np.ascontiguousarray(data.T), int(rate), run.seed, run.steps, run.guidance_scale)
        if isinstance(out, dict):
            out = out["waveform"]
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    return _producer(produce, schema=True)


def product_producer(subject, settings: RunSettings, inputs_dir: str | os.PathLike) -> Producer:
    """Outputs of our product (``enhance_file`` with every case's options) as changed by an activated subject
    that is our product with one change (``subject.product()``: a ``fault:NAME``), to be compared with our
    own goldens."""

    def produce(case: GoldenCase) -> np.ndarray:
        with subject.product() as net, tempfile.TemporaryDirectory(prefix="audiosr-golden-") as work:
            return enhance_case(net, case, settings, inputs_dir, work)

    return _producer(produce, net=subject.net)


def not_applicable(case: GoldenCase, source) -> str | None:
    """Why ``source`` (our network or a `Producer`) cannot run ``case`` here; None when it can.

    A subject's schema ``enhance`` runs no product option; a fast path needs the host's fast path
    (``--precision bf16`` native bfloat16: `audiosr_model.runtime.precision.native_support`).
    """
    from audiosr_model.runtime.precision import native_support

    if getattr(source, "schema", False):
        why = case.schema_problem()
        return None if why is None else f"a subject's schema enhance (faithful level, channel 0) cannot run it: {why}"
    net = source if hasattr(source, "unet") else getattr(source, "net", None)
    precision = case.options.get("precision", "fp32")
    why = native_support(precision, net.scale_factor.device) if net is not None else None
    return None if why is None else f"--precision {precision} skipped: {why}"


def run_golden(source, settings: RunSettings, store: GoldenStore | None = None,
               cases: Iterable[GoldenCase] | None = None, update: bool = False,
               progress: ProgressFn | None = None, write_obtained: bool = True,
               measure_noise: bool | None = None) -> GoldenRun:
    """Produce every case's output and compare it with (or, with ``update``, write) its golden.

    ``source``: our network (``enhance_file`` with ``settings``) or a `Producer` (a subject's outputs).
    A case the source cannot run here (`not_applicable`) is reported as such, with the reason.
    ``measure_noise`` (update only): measure each written golden's float noise and store the bounds derived
    from it (golden/noise.py); None: where the default bounds were not measured for these weights.
    """
    import time

    import audiosr_verify.golden.noise as noise  # the module; "from the package" would import the package first

    store = store or GoldenStore()
    cases = list(store.cases() if cases is None else cases)
    run = GoldenRun(settings.key, {"model": settings.model_dict(), "run": settings.run_dict()},
                    str(store.root), updated=update)
    with tempfile.TemporaryDirectory(prefix="audiosr-golden-") as work:
        produce = (source if not hasattr(source, "unet")
                   else (lambda case: enhance_case(source, case, settings, store.inputs_dir, work)))
        for i, case in enumerate(cases):
            if progress is not None:
                progress(case.name, i, len(cases))
            skip = not_applicable(case, source)
            if skip is not None:
                run.results.append(CaseResult(case.name, settings.key, "not_applicable", message=skip,
                                              golden_dir=str(store.case_dir(settings.key, case.golden_name))))
                continue
            t0 = time.perf_counter()
            try:
                obtained = produce(case)
            except Exception as exc:  # our AudioSRError, or whatever a subject raises: the case errs, the run goes on
                if not isinstance(exc, AudioSRError) and hasattr(source, "unet"):
                    raise  # a bug of ours: let it show
                message = str(exc) if isinstance(exc, AudioSRError) else f"{type(exc).__name__}: {exc}"
                run.results.append(CaseResult(case.name, settings.key, "error", message=message,
                                              golden_dir=str(store.case_dir(settings.key, case.golden_name))))
                continue
            seconds = time.perf_counter() - t0
            if not update:
                res = store.compare(case, obtained, settings, write_obtained=write_obtained)
            else:
                if progress is not None and measure_noise is not False and not case.golden:
                    progress(f"{case.name} (measuring float noise)", i, len(cases))
                try:
                    res = noise.update_case(store, case, obtained, settings, lambda threads, c=case: produce(c),
                                            measure_noise)
                except noise.MeasurementError as exc:  # a subject's recomputation erred: no golden without it
                    if hasattr(source, "unet"):
                        raise exc.__cause__ from None  # a bug of ours: let it show
                    run.results.append(CaseResult(
                        case.name, settings.key, "error", message=f"measuring the float noise: {exc} "
                        "(golden not written; --no-measure-noise writes it without)",
                        golden_dir=str(store.case_dir(settings.key, case.golden_name))))
                    continue
            res.seconds = seconds
            run.results.append(res)
        if progress is not None:
            progress("", len(cases), len(cases))
    run.notices += noise.run_notices(settings, run.results, update)
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
    "case_tolerances",
    "enhance_case",
    "in_ci",
    "not_applicable",
    "product_producer",
    "load_cases",
    "merge_tolerances",
    "read_waveform",
    "run_golden",
    "select_cases",
]
