"""Stage parity: a subject against what the ORIGINAL computed, stage by stage, in two views.

`check_stages(subject)` runs every stage the subject provides on every input
of the oracle fixtures (``golden/oracle/tiny``: the original's outputs of every
stage, schema in ``golden/oracle/README.md``) and compares each stored tensor
with the tolerance the stage schema (`audiosr_verify.schema`) gives it.

* **teacher** view: each stage is fed the ORIGINAL's inputs for it (the UNet
  gets the stored x_T and condition latent, the decoder the stored DDIM
  sample, the vocoder the stored replaced mel...), so a failing stage points at
  that stage, not at its inputs. Where the original's input is not stored
  whole (a waveform kept only as a prefix), the stage gets the subject's own
  upstream output and the row says so.
* **chained** view: the subject's stages run one after the other from the
  audio file, each fed the previous one's output, so errors accumulate: how
  much does a difference matter further down? A stage the subject does not
  provide is bridged with the original's stored tensor when that is whole,
  otherwise the chain stops there (noted).

Randomness is injected in both views: the original's stored draws (filter
type, condition noise, x_T, per-step noise) are what the subject's stages get;
the ``randomness`` stage checks separately whether the subject reproduces them.

Inputs on which the original raises (digital silence, energy only below
1 kHz: the low-pass design gets ``Wn = 1``) are behaviour rows: the subject
must return finite audio of the right length where the original crashed.

Nothing prints; `report.stages` renders the result. `run_fixture_suite(net=...)`
is the same check on our own network (the reference subject).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from audiosr_verify import schema
from audiosr_verify.checks.boundary import BadOutput, check_outputs
from audiosr_verify.checks.deadline import StageTimeout, bounded, default_seconds
from audiosr_verify.compare.tensors import StageComparison, compare_tensors, compare_values
from audiosr_verify.oracle import fixtures
from audiosr_verify.oracle.fixtures import Draws, FixtureInput, find_draws, load_fixture_set
from audiosr_verify.util.hashing import sha256_array

DEFAULT_FIXTURES = "oracle/tiny"  # relative paths are taken inside the harness data (util.paths.data_dir)
DEFAULT_INPUTS = "inputs"
VIEWS = ("teacher", "chained")
STATUSES = ("pass", "fail", "not_provided", "not_checked")
FILTER_TYPES = schema.FILTER_TYPES


def tolerance_for(name: str, view: str = "teacher") -> tuple[float, float, str]:
    t = schema.tolerance(name, view)
    return t.atol, t.rtol, t.why


def stage_rank(name: str) -> tuple[int, int, int]:
    return schema.rank(name)


def _resolve(path: str | Path) -> Path:
    """An absolute path, one that exists from here, or a path inside the harness data."""
    from audiosr_verify.util.paths import data_dir

    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return data_dir() / p


# --------------------------------------------------------------------------- result


@dataclass
class StageStatus:
    """One schema stage in one view: its verdict over every comparison row it owns."""

    name: str
    status: str  # pass | fail | not_provided | not_checked
    max_abs: float | None = None
    min_passing_atol: float | None = None
    comparisons: int = 0
    failed: int = 0
    first_failure: str | None = None  # "fixture on input"
    bound: float | None = None  # the absolute bound of the row closest to it (None: exact or relative bounds)
    margin: float | None = None  # that bound over that row's error (inf when the error is 0; < 1 fails)
    bound_source: str | None = None  # "schema" or "calibrated" (the fixture set's own, oracle export)

    def to_dict(self) -> dict[str, Any]:
        def j(x):
            return None if x is None else (float(x) if np.isfinite(x) else str(x))

        return {"name": self.name, "status": self.status, "max_abs": j(self.max_abs),
                "min_passing_atol": j(self.min_passing_atol), "comparisons": self.comparisons,
                "failed": self.failed, "first_failure": self.first_failure, "bound": j(self.bound),
                "margin": j(self.margin), "bound_source": self.bound_source}


@dataclass
class StageCheckResult:
    """Every comparison of one subject against the fixtures, and the verdict per stage."""

    subject: str = "reference"
    provided: list[str] = field(default_factory=list)
    comparisons: list[StageComparison] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    fixture_dir: str = ""
    preset: str = "tiny"
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)  # the subject raised on a stage
    notes: list[str] = field(default_factory=list)
    available: bool = True
    reason: str = ""
    # stage -> {"calls", "slowest_s", "bound_s"}: what each stage call took and the time bound it ran under
    call_times: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped: str = ""  # why the run stopped before every input was checked (a stage ran past its bound)
    # fixture tensor -> atol calibrated for the set's checkpoint and size (oracle/calibrate.py); None: schema's
    calibrated: dict[str, float] | None = None
    # input -> stage -> the arguments of the teacher view's last call (to rerun a stage under hooks)
    calls: dict[str, dict[str, tuple]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool | None:
        """True when at least one comparison was made and every row of every provided stage passes in
        both views (a verdict over nothing is never OK); None without fixtures."""
        if not self.available:
            return None
        return bool(self.comparisons) and not self.errors and not self.stopped and \
            all(c.passed for c in self.comparisons)

    def compared(self) -> dict[str, int]:
        """What the verdict rests on: comparisons made, inputs and stages they cover."""
        return {"comparisons": len(self.comparisons), "inputs": len({c.input for c in self.comparisons}),
                "stages": len({c.stage for c in self.comparisons})}

    passed = ok

    def view(self, view: str) -> list[StageComparison]:
        return [c for c in self.ordered() if c.view == view]

    def ordered(self) -> list[StageComparison]:
        order = {n: i for i, n in enumerate(self.inputs)}
        views = {v: i for i, v in enumerate(VIEWS)}
        return sorted(self.comparisons, key=lambda c: (views.get(c.view, 9), stage_rank(c.name),
                                                       order.get(c.input, len(order))))

    def failures(self, view: str | None = None) -> list[StageComparison]:
        return [c for c in self.ordered() if not c.passed and (view is None or c.view == view)]

    def first_failure(self, view: str = "teacher") -> StageComparison | None:
        """The failing row earliest in pipeline order (then input order) of ``view`` (else any view)."""
        bad = self.failures(view) or self.failures()
        return bad[0] if bad else None

    def get(self, name: str, input: str, view: str = "teacher") -> StageComparison | None:
        return next((c for c in self.comparisons if c.name == name and c.input == input and c.view == view), None)

    def stages(self, view: str = "teacher") -> list[StageStatus]:
        """Every schema stage, in pipeline order, with its status in ``view``."""
        out = []
        for st in schema.STAGES:
            if view == "chained" and st.name not in schema.CHAIN_STAGES:
                continue
            if st.name not in self.provided:
                out.append(StageStatus(st.name, "not_provided"))
                continue
            rows = [c for c in self.view(view) if c.stage == st.name]
            if not rows:
                out.append(StageStatus(st.name, "not_checked"))
                continue
            bad = [c for c in rows if not c.passed]
            status = StageStatus(
                st.name, "fail" if bad else "pass", max(c.max_abs for c in rows),
                max(c.min_passing_atol for c in rows), len(rows), len(bad),
                f"{bad[0].name} on {bad[0].input}" if bad else None)
            bounded = [c for c in rows if c.tolerance > 0 and c.rtol == 0]
            if bounded:
                closest = max(bounded, key=lambda c: c.max_abs / c.tolerance)
                status.bound = closest.tolerance
                status.margin = closest.tolerance / closest.max_abs if closest.max_abs > 0 else float("inf")
                status.bound_source = "calibrated" if "calibrated bound" in closest.note else "schema"
            out.append(status)
        return out

    def summary_line(self) -> str:
        if not self.available:
            return self.reason
        if not self.comparisons:
            why = "the subject provides none of the schema's stages" if not self.provided else \
                f"no fixture of the chosen inputs covers its stages ({', '.join(self.provided)})"
            return f"{self.subject}: NOTHING COMPARED: {why}" + (f"; {self.stopped}" if self.stopped else "")
        n = len(self.comparisons)
        bad = self.failures()
        exact = sum(1 for c in self.comparisons if c.identical)
        teacher = self.stages("teacher")
        passed = sum(s.status == "pass" for s in teacher)
        checked = sum(s.status in ("pass", "fail") for s in teacher)
        head = (f"{self.subject}: {passed}/{checked} stages pass; {n - len(bad)}/{n} comparisons on "
                f"{len(self.inputs)} inputs ({exact} bit-identical) in {self.seconds:.0f} s")
        if self.calibrated is not None:
            head += f"; bounds calibrated for the set ({len(self.calibrated)} tensors)"
        if self.errors:
            head += f"; {len(self.errors)} stage call(s) raised, returned bad output or timed out"
        if self.stopped:
            head += f"; {self.stopped}"
        if bad:
            first = self.first_failure()
            head += f"; first failure: {first.name} on {first.input} ({first.view}, max |diff| {first.max_abs:.3g})"
        return head

    def stage_rows(self) -> list[dict[str, Any]]:
        """One flat dict per comparison, in pipeline order (the report's table)."""
        rows = []
        for c in self.ordered():
            rows.append({
                "stage": c.name, "schema_stage": c.stage, "view": c.view, "input": c.input,
                "shape": "x".join(map(str, c.shape)) if c.ours_shape is None else
                f"{'x'.join(map(str, c.ours_shape))} vs {'x'.join(map(str, c.shape))}",
                "max_abs": c.max_abs, "mean_abs": c.mean_abs, "max_rel": c.max_rel, "cosine": c.cosine,
                "min_passing_atol": c.min_passing_atol, "tolerance": c.tolerance_text(),
                "passed": c.passed, "note": c.note,
            })
        for r in rows:
            for k in ("max_abs", "mean_abs", "max_rel", "cosine", "min_passing_atol"):
                if not np.isfinite(r[k]):
                    r[k] = str(r[k])
        return rows

    def max_by_stage(self, view: str = "teacher") -> list[dict[str, Any]]:
        """Worst case per fixture tensor over all inputs."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.view(view):
            row = out.setdefault(c.name, {"stage": c.name, "inputs": 0, "max_abs": 0.0, "max_rel": 0.0,
                                          "tolerance": c.tolerance_text(), "passed": True})
            row["inputs"] += 1
            row["max_abs"] = max(row["max_abs"], c.max_abs)
            row["max_rel"] = max(row["max_rel"], c.max_rel)
            row["passed"] = row["passed"] and c.passed
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        first = self.first_failure()
        return {
            "available": self.available,
            "ok": self.ok,
            "subject": self.subject,
            "schema_version": schema.SCHEMA_VERSION,
            "summary": self.summary_line(),
            "preset": self.preset,
            "fixture_dir": self.fixture_dir,
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
            "inputs_checked": list(self.inputs),
            "compared": self.compared(),
            "call_times": {k: dict(v) for k, v in self.call_times.items()},
            "stopped": self.stopped or None,
            "calibrated_bounds": None if self.calibrated is None else len(self.calibrated),
            "provided": sorted(self.provided, key=schema.STAGE_NAMES.index),
            "stages": [s.to_dict() for s in self.stages("teacher")],
            "chained": [s.to_dict() for s in self.stages("chained")],
            "first_failure": None if first is None else {"stage": first.stage, "fixture": first.name,
                                                         "input": first.input, "view": first.view},
            "comparisons": self.stage_rows(),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "tolerances": [{"stage": s.name, "tensor": k, "atol": t.atol, "rtol": t.rtol, "why": t.why}
                           for s in schema.STAGES for k, t in s.fixtures.items()],
        }


# Kept for callers of the first version (report sections, tests).
FunctionalResult = StageCheckResult


class StopSuite(Exception):
    """Raised internally to stop at the first failure (``stop_at_first_failure``)."""


class SubjectStopped(Exception):
    """Raised internally when a stage ran past its time bound: the subject is in an unknown state (a call
    was interrupted), so no further call is made; the results so far stand."""


# --------------------------------------------------------------------------- running one input


@dataclass
class Settings:
    seed: int = 42
    steps: int = 2
    guidance: float = 3.5

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _t(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def _as_numpy(args: tuple) -> tuple:
    """Subjects get numpy arrays (float32 stays float32, int64 stays int64) and Python scalars."""
    return tuple(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a for a in args)




class _Run:
    """Comparisons of one input in one view, collected in pipeline order."""

    def __init__(self, subject, inp: FixtureInput, result: StageCheckResult, view: str, stop: bool,
                 bounds: Callable[[str], float | None] = lambda stage: None):
        self.subject, self.inp, self.result, self.view, self.stop = subject, inp, result, view, stop
        self.provided = set(result.provided)
        self.calls: dict[str, tuple] = {}  # stage -> the arguments of its last call (for first divergence)
        self.bounds = bounds
        self.last_stage: str | None = None  # whose output the harness is working with now

    def can(self, stage: str) -> bool:
        return stage in self.provided

    def _invoke(self, stage: str, args: tuple) -> Any:
        """The subject's stage on ``args`` under its time bound, timed; a time-out stops the subject's run."""
        bound = self.bounds(stage)
        self.last_stage = stage
        start = time.monotonic()
        try:
            with bounded(bound, stage):
                return getattr(self.subject, stage)(*args)
        except StageTimeout as exc:
            self.fail(stage, "timed out", str(exc))
            raise SubjectStopped(f"stopped after {stage} on {self.inp.name} ({self.view}) ran past its "
                                 f"{exc.seconds:g} s bound") from None
        finally:
            took = time.monotonic() - start
            t = self.result.call_times.setdefault(stage, {"calls": 0, "slowest_s": 0.0, "bound_s": bound or 0.0})
            t["calls"] += 1
            t["slowest_s"] = round(max(t["slowest_s"], took), 4)

    def fail(self, stage: str, kind: str, detail: str) -> None:
        """A failing row of ``stage`` for a call that raised, returned garbage or timed out."""
        msg = " ".join(str(detail).split())[:500]
        self.result.errors.append({"stage": stage, "input": self.inp.name, "view": self.view, "kind": kind,
                                   "error": msg})
        self.add(compare_values(f"{stage}.call", kind, "ran", self.inp.name, f"{kind}: {msg}"), stage)

    def call(self, stage: str, *args) -> dict[str, Any] | None:
        """Call the subject's stage; an exception or a bad return value becomes a failed row and an error
        (None returned)."""
        args = _as_numpy(args)
        self.calls[stage] = args
        try:
            value = self._invoke(stage, args)
        except (StopSuite, SubjectStopped):
            raise
        except Exception as exc:  # a subject must not raise where the original did not
            self.fail(stage, "raised", f"{type(exc).__name__}: {exc}")
            return None
        try:
            return check_outputs(stage, value)
        except BadOutput as exc:
            self.fail(stage, "bad output", str(exc))
            return None

    def add(self, c: StageComparison, stage: str | None = None) -> StageComparison:
        c.view = self.view
        c.stage = stage or schema.stage_of(c.name).name
        self.result.comparisons.append(c)
        if self.stop and not c.passed:
            raise StopSuite
        return c

    def tensor(self, name: str, ours, note: str = "", ref: torch.Tensor | None = None) -> StageComparison:
        """Compare ours with the stored reference of ``name`` (the stored prefix when trimmed)."""
        atol, rtol, _ = tolerance_for(name, self.view)
        calibrated = (self.result.calibrated or {}).get(name)
        if calibrated is not None:  # the set's own bound, measured against float64 (never below the schema's)
            atol = max(atol, calibrated)
            note = "; ".join(filter(None, [note, f"calibrated bound {calibrated:.3g}"]))
        ours = _t(ours)
        if ref is None:
            ref = self.inp.ref(name)
            try:
                ours = fixtures.comparable(ours, self.inp.info(name))
            except ValueError as exc:  # the subject's full length differs from the original's: a failure
                kept = ref.numel()
                prefix = compare_tensors(name, ours.reshape(-1)[:kept], ref.reshape(-1), atol, rtol)
                c = compare_tensors(name, ours, ref, atol, rtol, self.inp.name)
                c.note = "; ".join(filter(None, [note, f"{exc}; over the stored first {kept} samples max |diff| "
                                                       f"{prefix.max_abs:.3g}"]))
                return self.add(c)
        return self.add(compare_tensors(name, ours, ref, atol, rtol, self.inp.name, note))

    def value(self, name: str, ours, ref, note: str = "") -> StageComparison:
        return self.add(compare_values(name, ours, ref, self.inp.name, note))

    def behaviour(self, stage: str, name: str, args: tuple, error: dict[str, str], length: int) -> dict | None:
        """Where the original raised: raising the same exception type is parity, returning finite
        output of the right length is what this project promises instead; anything else fails."""
        args = _as_numpy(args)
        self.calls[stage] = args
        try:
            value = self._invoke(stage, args)
        except (StopSuite, SubjectStopped):
            raise
        except Exception as exc:
            kind = getattr(exc, "type_name", type(exc).__name__)
            same = kind == error["type"]
            outcome = f"raises {error['type']} as the original" if same else f"raises {kind}"
            self.value(name, outcome, outcome if same else f"raises {error['type']} or returns finite audio",
                       f"the original raises {error['type']}: {error['message']}")
            return None
        try:
            out = check_outputs(stage, value)
        except BadOutput as exc:
            out, w, good = None, None, False
            outcome = f"bad output ({exc})"
        else:
            w = _t(out[schema.stage(stage).outputs[0].name])
            good = w.numel() == length
            outcome = "finite output of the right length" if good else \
                f"bad output ({w.numel()} samples, want {length})"
        self.value(name, outcome, "finite output of the right length",
                   f"the original raises {error['type']}: {error['message']}; the subject returns audio instead")
        return out if good else None


def _read_audio(inp: FixtureInput) -> tuple[np.ndarray, int]:
    """The input as the original reads it: float32 [channels, samples] and its rate."""
    from audiosr_model.io import audio_file as audio

    wave, rate = audio.read_audio(inp.audio_path)
    return np.ascontiguousarray(wave, dtype=np.float32), int(rate)


def _channel0(x: Any) -> torch.Tensor:
    t = _t(x)
    return t[0] if t.dim() == 2 else t


def _pad(wave: Any, inp: FixtureInput) -> np.ndarray:
    """``wave`` followed by zeros up to the original's padded length (pad_wav)."""
    w = np.asarray(_t(wave).float().numpy(), dtype=np.float32).reshape(-1)
    n = int(inp.meta["padded_length"])
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, w.size)] = w[:n]
    return out


def _cutoff_hz(bin_: int) -> float:
    """The original's lowpass_filtering_prepare_inference: bin / 1024 * 24000; below 1 kHz, 24 kHz."""
    hz = int(bin_) / 1024 * 24000
    return 24000.0 if hz < 1000 else hz


def _draws_for(inp: FixtureInput, shared: Draws | None) -> list[torch.Tensor] | None:
    """The original's draws #1..#5 for this input, verified against its recorded sha256."""
    recorded = inp.chain.get("random_draws") or []
    if shared is None or not recorded or len(shared.tensors) != len(recorded):
        return None
    if all(s is None or sha256_array(s) == d["sha256"] for s, d in zip(shared.tensors, recorded)):
        return list(shared.tensors)
    return None


# --------------------------------------------------------------------------- teacher view


def _teacher(run: _Run, settings: Settings, shared: Draws | None) -> None:
    inp, meta = run.inp, run.inp.meta
    wave, rate = _read_audio(inp)
    ch0 = wave[0]
    # resample
    if run.can("resample") and inp.has("resample.waveform"):
        out = run.call("resample", wave, rate)
        if out is not None:
            run.tensor("resample.waveform", _channel0(out["waveform"]), "channel 0 of the resampled channels")
    # normalize: its input is the whole resampled channel 0
    if run.can("normalize"):
        if rate == 48000:
            src, note = ch0, ""
        elif inp.complete("resample.waveform"):
            src, note = inp.ref("resample.waveform").numpy(), ""
        else:
            src = None
        if src is not None:
            out = run.call("normalize", src)
            if out is not None:
                run.tensor("normalize.waveform", out["waveform"], note)
    padded = _pad(inp.ref("normalize.waveform"), inp) if inp.complete("normalize.waveform") else None
    # features of the original's padded waveform
    if run.can("features") and padded is not None:
        out = run.call("features", padded)
        if out is not None:
            run.tensor("features.log_mel", out["log_mel"])
            stft = _t(out["stft"]).float()
            run.tensor("features.stft_bin_sum", stft.abs().sum(dim=0))
            frames = inp.info("features.stft_frames").get("frame_index")
            run.tensor("features.stft_frames", stft[frames])
    # cutoff of the original's STFT: its per-bin sums are what the finder accumulates (one frame)
    if run.can("cutoff"):
        out = run.call("cutoff", inp.ref("features.stft_bin_sum")[None])
        if out is not None:
            run.value("features.cutoff_bin", int(out["bin"]), meta["cutoff_bin"],
                      f"input: the original's per-bin STFT sums as one frame; cutoff {meta['cutoff_hz']:.0f} Hz")
    # the four low-pass types on the original's padded waveform
    if run.can("lowpass") and padded is not None:
        errors = meta.get("errors", {})
        for ftype in FILTER_TYPES:
            name = f"lowpass.{ftype}"
            if name in errors:
                run.behaviour("lowpass", name, (padded, meta["cutoff_hz_used"], ftype), errors[name], padded.size)
            elif inp.has(name):
                out = run.call("lowpass", padded, meta["cutoff_hz_used"], ftype)
                if out is not None:
                    run.tensor(name, out["waveform"])
    # randomness: does the subject reproduce the original's draws from the seed?
    if run.can("randomness") and meta.get("filter_type_for_seed") is not None:
        recorded = inp.chain.get("random_draws") or []
        shape = recorded[0]["shape"] if recorded else [1, 16, int(meta["target_frame"]) // 8, 32]
        out = run.call("randomness", settings.seed, tuple(shape), len(recorded))
        if out is not None:
            run.value("random.filter_type", str(out["filter_type"]), meta["filter_type_for_seed"])
            if recorded:
                ours = [sha256_array(_t(d).float()) for d in out["draws"]]
                run.value("random.draws", ours, [d["sha256"] for d in recorded],
                          f"{len(recorded)} torch.randn draws of {list(shape)}: sha256 of the subject's vs the original's")
    if inp.level in ("chain", "full") and inp.has("cond.posterior_mean"):
        _teacher_chain(run, settings, shared)
    if run.can("enhance"):
        _end_to_end(run, settings, wave, rate)


def _cond_reference(inp: FixtureInput, draws: list | None) -> tuple[torch.Tensor | None, str]:
    if inp.has("cond.latent"):
        return inp.ref("cond.latent"), "stored"
    if draws is None:
        return None, ""
    ref = inp.ref("cond.posterior_mean") + inp.ref("cond.posterior_std") * draws[1]
    same = sha256_array(ref) == inp.chain.get("cond_latent", {}).get("sha256")
    return ref, "rebuilt as mean + std * draw #2 (" + ("sha256 equals the original's)" if same else "sha256 DIFFERS)")


def _teacher_chain(run: _Run, settings: Settings, shared: Draws | None) -> None:
    inp, chain = run.inp, run.inp.chain
    draws = _draws_for(inp, shared)
    low_mel = inp.ref("lowpass.log_mel")
    cond_ref, how = _cond_reference(inp, draws)
    if run.can("condition_encode"):
        out = run.call("condition_encode", low_mel)
        if out is not None:
            run.tensor("cond.posterior_mean", out["mean"])
            run.tensor("cond.posterior_std", out["std"])
            if draws is not None and cond_ref is not None:
                latent = _t(out["mean"]).float() + _t(out["std"]).float() * draws[1]
                run.tensor("cond.latent", latent, ref=cond_ref, note=f"reference {how}")
    if draws is None or cond_ref is None:
        run.result.notes.append(f"{inp.name}: the original's random draws are not available; DDIM stages skipped")
        return
    x_T = inp.ref("ddim.x_T") if inp.has("ddim.x_T") else draws[2]
    # the UNet alone at fixed timesteps (the `full` input)
    if run.can("unet"):
        for name in sorted(k for k in inp.tensors if k.startswith(("unet.out.t", "unet.out_uncond.t"))):
            t = int(name.rsplit(".t", 1)[1])
            cond = cond_ref if name.startswith("unet.out.t") else torch.full_like(cond_ref, schema.UNCONDITIONAL_CONSTANT)
            out = run.call("unet", x_T, torch.full((x_T.shape[0],), t, dtype=torch.long), cond)
            if out is not None:
                run.tensor(name, out["v"])
    steps = settings.steps
    if run.can("ddim_schedule"):
        out = run.call("ddim_schedule", steps)
        if out is not None:
            _compare_schedule(run, out, chain)
    if run.can("ddim_step"):
        for i in range(steps):
            # A step is checked where its outputs are stored and so is its input (the previous step's x_prev):
            # a fixture set may keep a subset of a long trajectory (oracle/user_fixtures.py).
            if not inp.has(f"ddim.step{i}.pred_x0") or (i > 0 and not inp.has(f"ddim.step{i - 1}.x_prev")):
                continue
            x = x_T if i == 0 else inp.ref(f"ddim.step{i - 1}.x_prev")
            out = run.call("ddim_step", x, cond_ref, steps - 1 - i, steps, settings.guidance, draws[3 + i])
            if out is None:
                continue
            for key in ("model_cond", "model_uncond"):
                if inp.has(f"ddim.step{i}.{key}") and out.get(key) is not None:
                    run.tensor(f"ddim.step{i}.{key}", out[key])
            run.tensor(f"ddim.step{i}.pred_x0", out["pred_x0"])
            run.tensor(f"ddim.step{i}.x_prev", out["x_prev"])
    last = steps - 1
    if run.can("vae_decode") and inp.has(f"ddim.step{last}.x_prev"):
        out = run.call("vae_decode", inp.ref(f"ddim.step{last}.x_prev"))
        if out is not None:
            run.tensor("mel.decoded", out["mel"])
    decoded_ref = inp.ref("mel.decoded")
    if inp.has("mel.replaced"):
        replaced_ref, rnote = inp.ref("mel.replaced"), ""
    else:
        replaced_ref = decoded_ref.clone()
        k = chain["mel_replace_cutoff_bin"]
        replaced_ref[..., :k] = low_mel[None, None][..., :k]
        rnote = "reference rebuilt by the README's rule"
    if run.can("mel_replace"):
        out = run.call("mel_replace", decoded_ref, low_mel[None, None])
        if out is not None:
            run.tensor("mel.replaced", out["mel"], rnote, ref=replaced_ref)
    voc = None
    if run.can("vocoder"):
        out = run.call("vocoder", replaced_ref)
        if out is not None:
            voc = _t(out["waveform"]).float().reshape(-1)
            run.tensor("vocoder.waveform", voc)
    # post-processing needs the whole vocoder output and low-passed input, which are stored only as
    # prefixes: it gets the subject's own vocoder output (of the original's mel) and low-pass (of the
    # original's padded waveform, cutoff and filter type)
    if run.can("postprocess") and voc is not None and run.can("lowpass") and inp.complete("normalize.waveform"):
        if voc.shape[-1] != chain.get("vocoder_length", voc.shape[-1]):
            return  # the vocoder's length check failed already; nothing downstream lines up
        low = run.call("lowpass", _pad(inp.ref("normalize.waveform"), inp), inp.meta["cutoff_hz_used"],
                       inp.meta["filter_type_for_seed"])
        if low is None:
            return
        out = run.call("postprocess", voc, low["waveform"])
        if out is None:
            return
        note = "input: the subject's vocoder output (of the original's mel) and its own low-pass"
        if out.get("cutoff_index") is not None:
            run.value("post.cutoff_index", int(out["cutoff_index"]), chain.get("post_cutoff_index"))
        if out.get("energy_ratio") is not None:
            atol, rtol, _ = tolerance_for("post.energy_ratio", run.view)
            run.add(compare_tensors("post.energy_ratio", torch.tensor(float(out["energy_ratio"]), dtype=torch.float64),
                                    torch.tensor(chain.get("post_energy_ratio_raw", float("nan")), dtype=torch.float64),
                                    atol, rtol, inp.name, f"unclamped; clamped to {chain.get('post_energy_ratio')}"))
        post = _t(out["waveform"]).float().reshape(-1)
        same = sha256_array(post) == chain.get("post_full", {}).get("sha256")
        run.tensor("post.waveform", post, "full length bit-identical" if same else note)
        if run.can("output_level"):
            final = run.call("output_level", post)
            if final is not None:
                f = _t(final["waveform"]).float().reshape(-1)
                same = sha256_array(f) == chain.get("final", {}).get("sha256")
                run.tensor("final.waveform", f, "full length bit-identical" if same else
                           "input: the subject's post-processed waveform")


def _compare_schedule(run: _Run, out: dict[str, Any], chain: dict[str, Any]) -> None:
    timesteps = [int(t) for t in np.asarray(_t(out["timesteps"]).numpy()).reshape(-1)]
    run.value("ddim.timesteps", timesteps, chain.get("ddim_timesteps"))
    detail = chain.get("ddim_steps_detail") or []
    keys = ("a_t", "a_prev", "sigma_t")
    cols = [np.asarray(_t(out[k]).double().numpy()).reshape(-1) for k in ("alphas", "alphas_prev", "sigmas")]
    ours = np.stack(cols, axis=1)[::-1] if cols[0].size else np.zeros((0, 3))  # sampling order, as recorded
    ref = np.asarray([[float(d[k]) for k in keys] for d in detail], dtype=np.float64)
    if ours.shape != ref.shape:
        run.value("ddim.schedule", len(ours), len(ref), "number of DDIM steps")
        return
    rel = float(np.max(np.abs(ours - ref) / np.abs(ref))) if ref.size else 0.0
    run.tensor("ddim.schedule", torch.tensor(ours.copy(), dtype=torch.float32),
               ref=torch.tensor(ref, dtype=torch.float32),
               note=f"a_t, a_prev, sigma_t per step as the step uses them (float32); float64 max rel diff {rel:.2g}")


def _end_to_end(run: _Run, settings: Settings, wave: np.ndarray, rate: int) -> None:
    inp = run.inp
    e2e = inp.meta.get("end2end") or {}
    if "error" not in e2e and not inp.has("final.waveform"):
        return
    args = (wave, rate, settings.seed, settings.steps, settings.guidance)
    if "error" in e2e:
        run.behaviour("enhance", "end2end.behaviour", args, e2e["error"], int(inp.meta["length_48k"]))
        return
    out = run.call("enhance", *args)
    if out is None:
        return
    w = _t(out["waveform"]).float().reshape(-1)
    run.tensor("end2end.waveform", w, ref=inp.ref("final.waveform"),
               note=f"{settings.steps} DDIM steps, guidance {settings.guidance}, faithful level, channel 0")


# --------------------------------------------------------------------------- chained view


def _chained(run: _Run, settings: Settings, shared: Draws | None) -> None:
    """The subject's own stages one after the other from the audio file; bridges use whole stored tensors."""
    inp, meta = run.inp, run.inp.meta
    wave, rate = _read_audio(inp)

    def stop(why: str) -> None:
        run.result.notes.append(f"{inp.name} (chained): stops at {why}")

    # resample -> normalize
    if rate != 48000:
        if run.can("resample"):
            out = run.call("resample", wave, rate)
            if out is None:
                return
            res = _channel0(out["waveform"])
            if inp.has("resample.waveform"):
                run.tensor("resample.waveform", res)
        elif inp.complete("resample.waveform"):
            res = inp.ref("resample.waveform")
        else:
            return stop("resample (not provided; the original's output is stored only as a prefix)")
    else:
        res = wave[0]
    if run.can("normalize"):
        out = run.call("normalize", _t(res).float().numpy())
        if out is None:
            return
        norm = out["waveform"]
        run.tensor("normalize.waveform", norm)
    elif inp.complete("normalize.waveform"):
        norm = inp.ref("normalize.waveform")
    else:
        return stop("normalize (not provided; stored only as a prefix)")
    padded = _pad(norm, inp)
    # features -> cutoff -> low-pass -> features of the low-passed copy
    stft = None
    if run.can("features"):
        out = run.call("features", padded)
        if out is None:
            return
        stft = _t(out["stft"]).float()
        run.tensor("features.log_mel", out["log_mel"])
        run.tensor("features.stft_bin_sum", stft.abs().sum(dim=0))
        run.tensor("features.stft_frames", stft[inp.info("features.stft_frames").get("frame_index")])
    if run.can("cutoff"):
        out = run.call("cutoff", stft if stft is not None else inp.ref("features.stft_bin_sum")[None])
        if out is None:
            return
        bin_ = int(out["bin"])
        run.value("features.cutoff_bin", bin_, meta["cutoff_bin"])
    else:
        bin_ = int(meta["cutoff_bin"])
    seed_type = meta["filter_type_for_seed"]
    if not run.can("lowpass"):
        return stop("lowpass (not provided; stored only as a prefix)")
    low = None
    # the seed's filter type feeds the chain; the other stored types are checked on the same input
    for ftype in [seed_type] + [f for f in FILTER_TYPES if f != seed_type]:
        name = f"lowpass.{ftype}"
        if ftype != seed_type and not inp.has(name) and name not in meta.get("errors", {}):
            continue
        args = (padded, _cutoff_hz(bin_), ftype)
        if name in meta.get("errors", {}):
            out = run.behaviour("lowpass", name, args, meta["errors"][name], padded.size)
        else:
            out = run.call("lowpass", *args)
            if out is not None and inp.has(name):
                run.tensor(name, out["waveform"])
        if out is None:
            if ftype == seed_type:
                return stop(f"{name} (no output to go on with)")
            continue
        if ftype == seed_type:
            low = out["waveform"]
    if run.can("features") and inp.has("lowpass.log_mel"):
        out = run.call("features", _t(low).float().numpy())
        if out is None:
            return
        low_mel = _t(out["log_mel"]).float()
        run.tensor("lowpass.log_mel", low_mel)
    elif inp.has("lowpass.log_mel"):
        low_mel = inp.ref("lowpass.log_mel")
    if inp.level not in ("chain", "full") or not inp.has("cond.posterior_mean"):
        return
    draws = _draws_for(inp, shared)
    if draws is None:
        return stop("the condition (the original's random draws are not available)")
    # condition -> DDIM -> decoder -> mel replacement -> vocoder -> post-processing -> level
    if run.can("condition_encode"):
        out = run.call("condition_encode", low_mel)
        if out is None:
            return
        run.tensor("cond.posterior_mean", out["mean"])
        run.tensor("cond.posterior_std", out["std"])
        cond = _t(out["mean"]).float() + _t(out["std"]).float() * draws[1]
        ref, how = _cond_reference(inp, draws)
        run.tensor("cond.latent", cond, note=f"reference {how}", ref=ref)
    else:
        cond, _ = _cond_reference(inp, draws)
    steps = settings.steps
    x = draws[2]
    if run.can("ddim_step"):
        for i in range(steps):
            out = run.call("ddim_step", x, cond, steps - 1 - i, steps, settings.guidance, draws[3 + i])
            if out is None:
                return
            x = _t(out["x_prev"]).float()
            if inp.has(f"ddim.step{i}.pred_x0"):
                run.tensor(f"ddim.step{i}.pred_x0", out["pred_x0"])
            if inp.has(f"ddim.step{i}.x_prev"):
                run.tensor(f"ddim.step{i}.x_prev", x)
    elif inp.has(f"ddim.step{steps - 1}.x_prev"):
        x = inp.ref(f"ddim.step{steps - 1}.x_prev")
    else:
        return stop("ddim_step (not provided)")
    if run.can("vae_decode"):
        out = run.call("vae_decode", x)
        if out is None:
            return
        decoded = _t(out["mel"]).float()
        run.tensor("mel.decoded", decoded)
    else:
        decoded = inp.ref("mel.decoded")
    if run.can("mel_replace"):
        out = run.call("mel_replace", decoded, low_mel[None, None])
        if out is None:
            return
        replaced = _t(out["mel"]).float()
        if inp.has("mel.replaced"):
            run.tensor("mel.replaced", replaced)
    elif inp.has("mel.replaced"):
        replaced = inp.ref("mel.replaced")
    else:
        return stop("mel_replace (not provided)")
    if run.can("vocoder"):
        out = run.call("vocoder", replaced)
        if out is None:
            return
        voc = _t(out["waveform"]).float().reshape(-1)
        run.tensor("vocoder.waveform", voc)
    else:
        return stop("vocoder (not provided; stored only as a prefix)")
    if voc.shape[-1] != inp.chain.get("vocoder_length", voc.shape[-1]):
        return stop("post-processing (the vocoder's output length differs from the original's)")
    if not run.can("postprocess"):
        return stop("postprocess (not provided)")
    out = run.call("postprocess", voc, low)
    if out is None:
        return
    post = _t(out["waveform"]).float().reshape(-1)
    run.tensor("post.waveform", post)
    if run.can("output_level"):
        out = run.call("output_level", post)
        if out is not None:
            run.tensor("final.waveform", out["waveform"])


# --------------------------------------------------------------------------- the suite


def check_stages(
    subject,
    fixture_dir: str | Path = DEFAULT_FIXTURES,
    inputs_dir: str | Path = DEFAULT_INPUTS,
    *,
    inputs: Iterable[str] | None = None,
    views: Iterable[str] = VIEWS,
    stop_at_first_failure: bool = False,
    progress: Callable[[str], None] | None = None,
    stage_timeout: float | None = None,
) -> StageCheckResult:
    """Every stage ``subject`` provides against the original's stored stages (an activated subject).

    ``views``: "teacher" and/or "chained". ``stop_at_first_failure``: stop at the
    first failing row (in each input's pipeline order); the fault tests use it.
    ``stage_timeout``: seconds one stage call may take (None: `deadline.default_seconds`
    for the stage and the fixtures' configuration; 0: no bound). The fixture set is
    validated when opened (`oracle.fixture_validation`): a missing, empty, incomplete,
    damaged or future-schema set raises `AudioSRError` naming the file.
    """
    from audiosr_verify.subject import as_subject

    subject = as_subject(subject)
    start = time.monotonic()
    fdir = _resolve(fixture_dir)
    result = StageCheckResult(subject=subject.name, provided=sorted(subject.provided(), key=schema.STAGE_NAMES.index),
                              fixture_dir=str(fixture_dir))
    meta, items = load_fixture_set(fdir, _resolve(inputs_dir), inputs)
    from audiosr_verify.oracle.fixture_validation import read_calibration

    result.calibrated = read_calibration(fdir, meta)
    settings = Settings(seed=int(meta.get("seed", 42)), steps=int(meta.get("ddim_steps", 2)),
                        guidance=float(meta.get("guidance_scale", 3.5)))
    result.preset = meta.get("preset", "tiny")  # as recorded (config.yaml: the set's own configuration)
    result.settings = settings.to_dict()
    shared = find_draws(items, settings.seed)
    if shared is None:  # a subset without the input that stores the draws
        full = [n for n, level in meta.get("levels", {}).items() if level == "full"]
        shared = find_draws(load_fixture_set(fdir, _resolve(inputs_dir), full[:1])[1], settings.seed) if full else None
    weights = (meta.get("weights") or {}).get("n_elements")
    try:
        for inp in items:
            frames = inp.meta.get("target_frame")
            bounds = _bounds(stage_timeout, weights if isinstance(weights, int) else None,
                             frames if isinstance(frames, int) else None)
            check_input(subject, inp, result, settings, shared, views, stop_at_first_failure, progress, bounds)
    except StopSuite:
        pass
    except SubjectStopped as exc:
        left = [i.name for i in items if i.name not in result.inputs]
        result.stopped = str(exc) + (f"; not checked: {', '.join(left)}" if left else "")
        result.notes.append(result.stopped)
    result.seconds = time.monotonic() - start
    return result


def _bounds(stage_timeout: float | None, weights: int | None, frames: int | None) -> Callable[[str], float | None]:
    """stage -> its time bound: the one given for every stage, or the default scaled to the work."""
    if stage_timeout is not None:
        return lambda stage: float(stage_timeout) or None
    return lambda stage: default_seconds(stage, weights, frames)


def check_input(subject, inp: FixtureInput, result: StageCheckResult, settings: Settings | None = None,
                shared: Draws | None = None, views: Iterable[str] = VIEWS, stop_at_first_failure: bool = False,
                progress: Callable[[str], None] | None = None,
                bounds: Callable[[str], float | None] | None = None) -> None:
    """Every view of one input (the original's tensors in ``inp``) into ``result``; raises StopSuite when asked,
    SubjectStopped when a stage call ran past its time bound."""
    settings = settings or Settings()
    result.inputs.append(inp.name)
    if not result.provided:
        result.provided = sorted(subject.provided(), key=schema.STAGE_NAMES.index)
    for view in [v for v in VIEWS if v in set(views)]:
        if progress:
            progress(f"{inp.name} ({inp.level}, {view})")
        run = _Run(subject, inp, result, view, stop_at_first_failure, bounds or _bounds(None, None, None))
        if view == "teacher":
            result.calls[inp.name] = run.calls  # filled as the stages run (also when stopped early)
        try:
            (_teacher if view == "teacher" else _chained)(run, settings, shared)
        except (StopSuite, SubjectStopped):
            raise
        except Exception as exc:  # the harness could not use what a stage returned: that stage fails
            stage = run.last_stage or "resample"
            run.fail(stage, "unusable output", f"the harness could not use its output "
                     f"({type(exc).__name__}: {exc}); the rest of {inp.name} ({view}) was not checked")


def last_call(result: StageCheckResult, stage: str, input: str) -> tuple | None:
    """The arguments the teacher view gave ``stage`` on ``input`` (to rerun it under hooks)."""
    return result.calls.get(input, {}).get(stage)


# --------------------------------------------------------------------------- our own network


def shared_network(preset: str = "tiny", weights: dict[str, torch.Tensor] | None = None):
    """A fresh network of ``preset`` loaded with the oracle's shared random weights.

    The weights are `export.shared_tiny_weights()` (or the given dict) plus
    our schedule buffers (the original computes its own; the fixtures compare
    them implicitly through the DDIM stages).
    """
    from audiosr_model import config as cfg
    from audiosr_model.weights.checkpoint import load_into
    from audiosr_model.sampling.schedule import schedule_buffers
    from audiosr_model.weights.load import skeleton
    from audiosr_verify.oracle import export

    config = cfg.preset(preset)
    state = dict(weights if weights is not None else export.shared_tiny_weights())
    state.update(schedule_buffers(config.diffusion))
    net = skeleton(config)
    load_into(net, state, source=f"shared {preset} weights")
    return net.eval().requires_grad_(False)


_TINY: list = []


def tiny_network():
    """Our tiny network with the oracle's shared weights (built once; never mutated by the suite)."""
    if not _TINY:
        _TINY.append(shared_network("tiny"))
    return _TINY[0]


def run_fixture_suite(
    fixture_dir: str | Path = DEFAULT_FIXTURES,
    inputs_dir: str | Path = DEFAULT_INPUTS,
    *,
    inputs: Iterable[str] | None = None,
    net=None,
    views: Iterable[str] = VIEWS,
    stop_at_first_failure: bool = False,
    progress: Callable[[str], None] | None = None,
) -> StageCheckResult:
    """`check_stages` of our own network (``net``, default: the shared tiny weights) as the reference subject."""
    from audiosr_verify.subjects.reference import ReferenceSubject

    subject = ReferenceSubject(net=net if net is not None else tiny_network())
    return check_stages(subject, fixture_dir, inputs_dir, inputs=inputs, views=views,
                        stop_at_first_failure=stop_at_first_failure, progress=progress)


__all__ = [
    "DEFAULT_FIXTURES", "DEFAULT_INPUTS", "FunctionalResult", "STATUSES", "StageCheckResult", "StageStatus",
    "VIEWS", "check_input", "check_stages", "last_call", "run_fixture_suite", "shared_network", "stage_rank", "tiny_network",
    "tolerance_for",
]
