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

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from audiosr_model.errors import AudioSRError
from audiosr_verify.golden.policy import (
    DEFAULT_TOLERANCES,
    SAMPLE_RATE,
    MetricCheck,
    compare_waveforms,
    merge_tolerances,
)
from audiosr_verify.util.atomic import atomic_write, publish_dir, published_dir, write_error
from audiosr_verify.util.hashing import sha256_array, sha256_file
from audiosr_verify.util.paths import data_dir
from audiosr_verify.util.safe_open import (
    GOLDEN_META_SHAPE,
    MAX_GOLDEN_WAVEFORM_BYTES,
    TOLERANCES_SHAPE,
    read_bytes,
    read_json,
    read_json_as,
)

SCHEMA_VERSION = 1
WAVEFORM_KEY = "waveform"
GOLDEN_FILES = ("output.safetensors", "meta.json", "output.flac")
OBTAINED_FILES = ("obtained.safetensors", "obtained.flac", "comparison.json")
TOLERANCES_FILE = "tolerances.json"
CASES_FILE = "cases.json"
UPDATE_HINT = "pytest tests/test_golden_regression.py --golden-update  (or: audiosr-verify golden update)"

STATUSES = ("identical", "within_tolerance", "updated", "failed", "stale", "missing", "error")
PASSING = ("identical", "within_tolerance", "updated")


def default_root() -> Path:
    """``regression/`` of the harness's data (the repository's ``golden/regression``)."""
    return data_dir() / "regression"


def default_inputs_dir() -> Path:
    return data_dir() / "regression_inputs"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


sha256_path = sha256_file  # the name this module has always exported


def waveform_sha256(x: np.ndarray) -> str:
    return sha256_array(x, dtype="<f4")


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
        from audiosr_model.checkpoint_reader import sha256_file

        return cls(preset=preset, weights_seed=None, checkpoint=str(path),
                   checkpoint_sha256=sha256_file(path), **run)

    subject: str | None = None  # a subject's enhance (faithful level, channel 0) instead of ours

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
    input: str | None  # file inside the inputs directory; None: a waveform handed over directly, no file
    sample_rate: int | None
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
    """The cases listed in ``<inputs_dir>/cases.json`` (written by tools/regression_inputs.py)."""
    inputs_dir = Path(inputs_dir) if inputs_dir is not None else default_inputs_dir()
    index = inputs_dir / CASES_FILE
    if not os.path.lexists(index):  # present but not a regular file: refused by read_json, not "no cases"
        return []
    try:
        data = read_json(index, "case index", max_bytes=16 << 20)  # bounded, regular file
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


# --------------------------------------------------------------------------- store


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def _write_waveform(path: Path, x: np.ndarray, metadata: Mapping[str, str] | None = None) -> None:
    from safetensors.numpy import save_file

    save_file({WAVEFORM_KEY: np.ascontiguousarray(x, dtype=np.float32)}, str(path), metadata=dict(metadata or {}))


def read_waveform(path: str | os.PathLike) -> np.ndarray:
    from safetensors.numpy import load

    raw = read_bytes(path, "golden waveform", max_bytes=MAX_GOLDEN_WAVEFORM_BYTES)  # regular file, bounded
    try:
        data = load(raw)
    except Exception as exc:  # safetensors raises its own error types
        raise AudioSRError(f"unreadable golden waveform: {exc}", path) from None
    if WAVEFORM_KEY not in data:
        raise AudioSRError(f"no {WAVEFORM_KEY!r} tensor in golden file", path)
    return np.asarray(data[WAVEFORM_KEY], dtype=np.float32)


def _write_flac(path: Path, x: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0), SAMPLE_RATE,
             subtype="PCM_16", format="FLAC")


@dataclass
class Golden:
    waveform: np.ndarray
    meta: dict[str, Any]
    directory: Path


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
        import soundfile as sf

        if self.input_path(case) is None:
            return None
        data, rate = sf.read(str(self.input_path(case)), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)

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

    def tolerances(self, key: str, case: str, meta: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """Defaults, then ``<key>/tolerances.json`` default and per-case entries, then the meta's overrides."""
        store: dict[str, Any] = {}
        path = self.key_dir(key) / TOLERANCES_FILE
        if os.path.lexists(path):  # present but not a regular file, or not JSON of the right shape: one line
            store = read_json_as(path, "tolerances", TOLERANCES_SHAPE)
        return merge_tolerances(DEFAULT_TOLERANCES, store.get("default"), (store.get("cases") or {}).get(case),
                                (meta or {}).get("tolerance_overrides"))

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
            "run": settings.run_dict(),
            "made_by": settings.subject or "audiosr_model (enhance_file)",
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
        current = self.input_sha256(case)
        if (meta.get("input") or {}).get("sha256") != current:  # always the first reason (see compare)
            reasons.append(f"input {case.input or '(waveform)'} changed (sha256 {str(current)[:12]} vs golden's "
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
        """Compare ``obtained`` (float32 [N] at 48 kHz) with the case's golden.

        ``update_hint``: the exact command that writes this case's golden (default: the store's).
        """
        key = settings.key
        hint = update_hint or self.update_hint
        obtained = np.ascontiguousarray(np.asarray(obtained, dtype=np.float32).reshape(-1))
        d = self.case_dir(key, case.name)
        input_path = self.input_path(case)
        result = CaseResult(case.name, key, "error", golden_dir=str(d),
                            input_path=None if input_path is None else str(input_path),
                            input_sample_rate=case.sample_rate, cutoff_hz=case.cutoff_hz, obtained=obtained,
                            update_hint=hint)
        golden = self.load(key, case.name)
        if golden is None:
            ci = in_ci() if ci is None else ci
            result.status = "missing"
            result.message = (f"no golden for case {case.name!r} under {d}"
                              + (" (CI is set: goldens are never created in CI; generate them locally and commit)"
                                 if ci else "") + f"; create it with: {hint}")
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
            # a changed input is not a regression of the model: say so first, apart from the settings
            result.status = "stale"
            what = ("stale golden: the input changed" if stale[0].startswith("input ")
                    else "stale golden: made with other settings")
            result.message = f"{what}: {'; '.join(stale)}. Not a verdict on the model: review, then run {hint}"
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
    """Enhance the case's input with ``settings`` into ``workdir``; the 48 kHz float32 waveform."""
    import soundfile as sf

    from audiosr_model.long_audio import enhance_file

    out = Path(workdir) / f"{case.name}.wav"
    enhance_file(net, Path(inputs_dir) / case.input, out, steps=settings.steps,
                 guidance_scale=settings.guidance_scale, seed=settings.seed,
                 level_mode=settings.level_mode, mix=settings.mix)
    data, rate = sf.read(str(out), dtype="float32")
    if rate != SAMPLE_RATE:
        raise AudioSRError(f"enhanced output at {rate} Hz, expected {SAMPLE_RATE}", out)
    return data


ProgressFn = Callable[[str, int, int], None]  # (case name, done, total)


Producer = Callable[[GoldenCase], np.ndarray]  # a case -> its 48 kHz float32 output


def subject_producer(subject, settings: RunSettings, inputs_dir: str | os.PathLike) -> Producer:
    """Outputs of an activated subject's ``enhance`` (the schema's: faithful level, channel 0)."""
    import soundfile as sf

    def produce(case: GoldenCase) -> np.ndarray:
        data, rate = sf.read(str(Path(inputs_dir) / case.input), dtype="float32", always_2d=True)
        out = subject.enhance(np.ascontiguousarray(data.T), int(rate), settings.seed, settings.steps,
                              settings.guidance_scale)
        if isinstance(out, dict):
            out = out["waveform"]
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    return produce


def run_golden(source, settings: RunSettings, store: GoldenStore | None = None,
               cases: Iterable[GoldenCase] | None = None, update: bool = False,
               progress: ProgressFn | None = None, write_obtained: bool = True) -> GoldenRun:
    """Produce every case's output and compare it with (or, with ``update``, write) its golden.

    ``source``: our network (``enhance_file`` with ``settings``) or a `Producer` (a subject's outputs).
    """
    import time

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
            t0 = time.perf_counter()
            try:
                obtained = produce(case)
            except Exception as exc:  # our AudioSRError, or whatever a subject raises: the case errs, the run goes on
                if not isinstance(exc, AudioSRError) and hasattr(source, "unet"):
                    raise  # a bug of ours: let it show
                message = str(exc) if isinstance(exc, AudioSRError) else f"{type(exc).__name__}: {exc}"
                run.results.append(CaseResult(case.name, settings.key, "error", message=message,
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
