"""The run harness of stage parity: one input in one view, each stage call bounded, timed and compared.

`StageRun` calls a subject's stage under its time bound (`checks.deadline`), turns an exception, bad
output (`checks.boundary`) or time-out into a failing row, and compares what came back with the
original's stored tensor under the schema's tolerance (or the fixture set's calibrated bound). The
views (`checks.stage_teacher`, `checks.stage_chained`) say what each stage is fed; the helpers below
are what both views feed it with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from audiosr_verify import schema
from audiosr_verify.checks.boundary import BadOutput, check_outputs
from audiosr_verify.checks.deadline import StageTimeout, bounded
from audiosr_verify.checks.stage_results import StageCheckResult
from audiosr_verify.compare.tensors import StageComparison, compare_tensors, compare_values
from audiosr_verify.oracle import fixtures
from audiosr_verify.oracle.fixtures import Draws, FixtureInput
from audiosr_verify.util.hashing import sha256_array

FILTER_TYPES = schema.FILTER_TYPES


def tolerance_for(name: str, view: str = "teacher") -> tuple[float, float, str]:
    t = schema.tolerance(name, view)
    return t.atol, t.rtol, t.why


class StopSuite(Exception):
    """Raised internally to stop at the first failure (``stop_at_first_failure``)."""


class SubjectStopped(Exception):
    """Raised internally when a stage ran past its time bound: the subject is in an unknown state (a call
    was interrupted), so no further call is made; the results so far stand."""


@dataclass
class Settings:
    seed: int = 42
    steps: int = 2
    guidance: float = 3.5

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def as_numpy_args(args: tuple) -> tuple:
    """Subjects get numpy arrays (float32 stays float32, int64 stays int64) and Python scalars."""
    return tuple(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a for a in args)


class StageRun:
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
        args = as_numpy_args(args)
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
        ours = as_tensor(ours)
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
        args = as_numpy_args(args)
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
            w = as_tensor(out[schema.stage(stage).outputs[0].name])
            good = w.numel() == length
            outcome = "finite output of the right length" if good else \
                f"bad output ({w.numel()} samples, want {length})"
        self.value(name, outcome, "finite output of the right length",
                   f"the original raises {error['type']}: {error['message']}; the subject returns audio instead")
        return out if good else None


def read_audio(inp: FixtureInput) -> tuple[np.ndarray, int]:
    """The input as the original reads it: float32 [channels, samples] and its rate."""
    from audiosr_model.io import audio_file as audio

    wave, rate = audio.read_audio(inp.audio_path)
    return np.ascontiguousarray(wave, dtype=np.float32), int(rate)


def channel0(x: Any) -> torch.Tensor:
    t = as_tensor(x)
    return t[0] if t.dim() == 2 else t


def pad_to_original(wave: Any, inp: FixtureInput) -> np.ndarray:
    """``wave`` followed by zeros up to the original's padded length (pad_wav)."""
    w = np.asarray(as_tensor(wave).float().numpy(), dtype=np.float32).reshape(-1)
    n = int(inp.meta["padded_length"])
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, w.size)] = w[:n]
    return out


def cutoff_hz(bin_: int) -> float:
    """The original's lowpass_filtering_prepare_inference: bin / 1024 * 24000; below 1 kHz, 24 kHz."""
    hz = int(bin_) / 1024 * 24000
    return 24000.0 if hz < 1000 else hz


def draws_for(inp: FixtureInput, shared: Draws | None) -> list[torch.Tensor] | None:
    """The original's draws #1..#5 for this input, verified against its recorded sha256."""
    recorded = inp.chain.get("random_draws") or []
    if shared is None or not recorded or len(shared.tensors) != len(recorded):
        return None
    if all(s is None or sha256_array(s) == d["sha256"] for s, d in zip(shared.tensors, recorded)):
        return list(shared.tensors)
    return None


def cond_reference(inp: FixtureInput, draws: list | None) -> tuple[torch.Tensor | None, str]:
    if inp.has("cond.latent"):
        return inp.ref("cond.latent"), "stored"
    if draws is None:
        return None, ""
    ref = inp.ref("cond.posterior_mean") + inp.ref("cond.posterior_std") * draws[1]
    same = sha256_array(ref) == inp.chain.get("cond_latent", {}).get("sha256")
    return ref, "rebuilt as mean + std * draw #2 (" + ("sha256 equals the original's)" if same else "sha256 DIFFERS)")


__all__ = ["FILTER_TYPES", "Settings", "StageRun", "StopSuite", "SubjectStopped", "as_numpy_args", "as_tensor",
           "channel0", "cond_reference", "cutoff_hz", "draws_for", "pad_to_original", "read_audio", "tolerance_for"]
