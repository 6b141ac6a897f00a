"""Tolerances calibrated for a fixture set's checkpoint and size, from the original's own float noise.

The schema's bounds (`audiosr_verify.schema`) were measured on the tiny
network with seeded weights; a full-size network with real weights
accumulates more float noise (deeper, wider, other activation ranges). So a
fixture set exported from a checkpoint gets bounds of its own, the way
`torch._dynamo.utils.same` judges a compiled model: run the computation in
float64 on the same inputs and measure how far the float32 original itself is
from it.

For every network stage's fixture tensor (condition encoder, UNet, each kept
DDIM step, VAE decoder, vocoder) the reference implementation runs
teacher-forced in float64 (weights and inputs cast up; the DDIM coefficients
stay the float32 values the original uses, so only accumulation is measured),
and the original's stored float32 output is compared with it::

    noise   = max |original_fp32 - reference_fp64|
    bound   = MULTIPLE * noise + FLOOR_ULPS * ulp(max |original|)

A subject that is within ``MULTIPLE - 1`` times the original's own error of
the float64 result is then within the bound of the original's output (the
triangle inequality); the floor keeps a stage the original computes almost
exactly (noise near 0) from a bound no other summation order can meet. A
calibrated bound never goes below the schema's bound for the tensor: the
schema's measurements (1 and 2 threads, Intel against AMD) hold for any size.

`calibrate(fix)` returns `Calibration` (noise, bound and margin per tensor);
`fault_table` runs the fault catalogue (``fault:*``) on the stages each fault
owns, teacher-forced on the set's first input, and reports each fault's error
against its calibrated bound: a fault the bounds no longer catch is listed as
such, never hidden.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify import schema
from audiosr_verify.oracle.fixture_validation import CALIBRATION_FILE, CALIBRATION_VERSION

Progress = Callable[[str], None] | None
MULTIPLE = 4.0
FLOOR_ULPS = 8.0
NETWORK_STAGES = ("condition_encode", "unet", "ddim_step", "vae_decode", "vocoder")


def ulp(x: float) -> float:
    """The float32 spacing at ``x``."""
    return float(np.spacing(np.float32(abs(x)))) if x else float(np.finfo(np.float32).tiny)


@dataclass
class TensorBound:
    name: str
    stage: str
    input: str
    noise: float  # max |original fp32 - reference fp64|
    peak: float  # max |original|
    schema_atol: float
    bound: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Calibration:
    preset: str
    rows: list[TensorBound] = field(default_factory=list)
    seconds: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)

    def bounds(self) -> dict[str, float]:
        """Fixture tensor name -> atol: the largest bound over the inputs that store it."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.name] = max(out.get(r.name, 0.0), r.bound)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"version": CALIBRATION_VERSION, "preset": self.preset, "multiple": MULTIPLE,
                "floor_ulps": FLOOR_ULPS, "seconds": round(self.seconds, 1),
                "rule": f"bound = max(schema atol, {MULTIPLE:g} * max|original fp32 - reference fp64| + "
                        f"{FLOOR_ULPS:g} ulp(max|original|)), per fixture tensor, teacher-forced",
                "bounds": self.bounds(), "rows": [r.to_dict() for r in self.rows], "faults": self.faults}


@contextlib.contextmanager
def float64_math():
    """Our network's float32 islands, adapted while the float64 reference runs.

    The original computes its UNet's GroupNorm in float32 whatever the input dtype (lifted here: its
    reductions are float noise a port may order differently) and its timestep embedding from float32
    arguments (kept, then widened: that rounding defines the function, every float32 port shares it).
    """
    from torch import nn

    from audiosr_model.nets import unet as unet_mod

    embed, norm = unet_mod.timestep_embedding, unet_mod.GroupNorm32.forward

    def embedding64(timesteps, dim, max_period=10000):
        # The embedding's float32 arguments are part of the function the original defines (t * freq rounded
        # to float32: any float32 port gets the same values), not noise: kept, then widened.
        return embed(timesteps, dim, max_period).double()

    unet_mod.timestep_embedding = embedding64
    unet_mod.GroupNorm32.forward = nn.GroupNorm.forward
    try:
        yield
    finally:
        unet_mod.timestep_embedding, unet_mod.GroupNorm32.forward = embed, norm


class Float64Reference:
    """The reference's network stages in float64 (weights and activations); DDIM coefficients as the original's."""

    name = "reference-fp64"

    def __init__(self, net):
        self.net = net.double()
        for stage in NETWORK_STAGES:  # every stage call runs with the float32 islands lifted
            setattr(self, stage, self._lifted(getattr(self, stage)))

    @staticmethod
    def _lifted(fn):
        def call(*args):
            with float64_math():
                return fn(*args)

        return call

    def provided(self):
        return NETWORK_STAGES

    @staticmethod
    def _d(x) -> torch.Tensor:
        return (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))).double()

    @torch.no_grad()
    def condition_encode(self, log_mel):
        post = self.net.condition_posterior(self._d(log_mel)[None, None])
        return post.mean, post.std

    @torch.no_grad()
    def unet(self, x, t, cond):
        return self.net.unet_forward(self._d(x), torch.as_tensor(t).long(), self._d(cond))

    @torch.no_grad()
    def ddim_step(self, x, cond, index, steps, guidance, noise):
        from audiosr_verify.subjects.reference import guided_ddim_step

        # the schedule's coefficients as the original's (float32): they define the step, they are not noise
        return guided_ddim_step(self.net, x, cond, index, steps, guidance, noise, self._d,
                                alphas_cumprod=self.net.alphas_cumprod.float())

    @torch.no_grad()
    def vae_decode(self, z):
        return self.net.decode(self._d(z))

    @torch.no_grad()
    def vocoder(self, mel):
        return self.net.vocode(self._d(mel))[0, 0]


def calibrate(fixture_dir: str | Path, weights: str | Path, progress: Progress = None) -> Calibration:
    """Noise and bounds of every network-stage tensor of the set, measured against float64."""
    from audiosr_model.weights.load import load_model
    from audiosr_verify.checks import stages as S
    from audiosr_verify.oracle.fixture_validation import fixture_preset, open_metadata

    say = progress or (lambda m: None)
    start = time.monotonic()
    fdir = Path(fixture_dir)
    meta = open_metadata(fdir)
    preset = fixture_preset(fdir, meta)
    say(f"loading the {preset} reference in float64")
    net, _ = load_model(str(weights), preset, "cpu")
    subject = Float64Reference(net)
    say("every network stage of every input in float64, teacher-forced")
    result = S.check_stages(subject, fdir, views=("teacher",), stage_timeout=0, progress=say)
    cal = Calibration(preset)
    by_input = {}
    for c in result.comparisons:
        if c.stage not in NETWORK_STAGES or c.name.endswith(".call") or not math.isfinite(c.max_abs):
            continue
        if c.input not in by_input:
            by_input[c.input] = _stored(fdir, c.input)
        ref = by_input[c.input].get(c.name)
        peak = float(ref.abs().max()) if ref is not None and ref.numel() else 0.0
        atol = schema.tolerance(c.name, "teacher").atol
        bound = max(atol, MULTIPLE * c.max_abs + FLOOR_ULPS * ulp(peak))
        cal.rows.append(TensorBound(c.name, c.stage, c.input, float(c.max_abs), peak, atol, float(bound)))
    if result.errors:
        e = result.errors[0]  # a bug of ours, not of the user's input: said in one line, nothing published
        raise AudioSRError(f"calibration: the float64 reference failed on stage {e.get('stage')} of input "
                           f"{e.get('input')}: {e.get('error')} (export again with --no-calibrate to keep the "
                           "schema's bounds, and report this)", fdir)
    cal.seconds = time.monotonic() - start
    return cal


def _stored(fdir: Path, name: str) -> dict[str, torch.Tensor]:
    from audiosr_verify.oracle.fixture_validation import read_fixture_tensors

    return read_fixture_tensors(fdir / f"{name}.safetensors")


@dataclass
class FaultRow:
    name: str
    stage: str
    worst: str  # the fixture tensor with the largest error relative to its bound
    error: float
    bound: float
    caught: bool
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.error / self.bound if self.bound > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ratio"] = self.ratio if math.isfinite(self.ratio) else str(self.ratio)
        d["error"] = self.error if math.isfinite(self.error) else str(self.error)
        return d


# Stages whose teacher-forced check runs on the subject's own upstream output (the original's is stored
# only as a prefix): the fault's stage needs them provided to be checked at all.
UPSTREAM = {"postprocess": ("vocoder", "lowpass"), "output_level": ("vocoder", "lowpass", "postprocess")}


def _one_stage(subject, stage: str):
    """The subject seen through the fault's own stage (and the upstream stages its check feeds on)."""
    import types

    stages = (stage, *UPSTREAM.get(stage, ()))
    view = types.SimpleNamespace(name=subject.name)
    for s in stages:
        setattr(view, s, getattr(subject, s))
    view.provided = lambda: list(stages)
    return view


def fault_table(fixture_dir: str | Path, weights: str | Path, names: list[str] | None = None,
                progress: Progress = None) -> list[FaultRow]:
    """Every fault of the catalogue on the stage that owns it, teacher-forced on the set's first input,
    under the set's bounds (calibrated where it has them): its largest error against its bound. Faults no
    stage owns (in the pipeline around the stages: level, channels) are the golden cases' to catch."""
    from audiosr_verify.checks import stages as S
    from audiosr_verify.oracle.fixture_validation import fixture_preset, open_metadata
    from audiosr_verify.subject import SubjectContext
    from audiosr_verify.subjects.faults import FAULTS, FaultSubject

    say = progress or (lambda m: None)
    fdir = Path(fixture_dir)
    meta = open_metadata(fdir)
    first = next(iter(meta["inputs"]))
    context = SubjectContext(str(weights), fixture_preset(fdir, meta), "cpu")
    rows = []
    for name in names or sorted(FAULTS):
        fault = FAULTS[name]
        if not fault.stage:  # a fault of the pipeline around the stages (level, channels): the goldens' to see
            continue
        say(f"fault {name} on {fault.stage}")
        subject = FaultSubject(fault, context, preset=context.preset)
        subject.activate()
        try:
            result = S.check_stages(_one_stage(subject, fault.stage), fdir, inputs=[first], views=("teacher",),
                                    stage_timeout=0)
        finally:
            subject.deactivate()
        rows_of_stage = [c for c in result.comparisons if c.stage == fault.stage]
        worst, ratio, error, bound = "-", -1.0, 0.0, 0.0
        for c in rows_of_stage:
            if c.tolerance > 0:
                e, b = c.max_abs, c.tolerance
            else:  # a relative (rtol) or exact bound: the relative error against rtol
                e, b = (c.max_rel, c.rtol) if c.rtol > 0 else (c.max_abs, 0.0)
            r = e / b if b > 0 else (0.0 if e == 0 else math.inf)
            if r > ratio:
                worst, ratio, error, bound = c.name, r, e, b
        caught = any(not c.passed for c in rows_of_stage)
        detail = "" if rows_of_stage else f"no comparison of {fault.stage} on {first}"
        rows.append(FaultRow(name, fault.stage, worst, float(error), float(bound), caught, detail))
    return rows


def stored(fixture_dir: str | Path, meta: dict[str, Any]) -> Calibration | None:
    """The calibration a set was exported with (its sha256 and version checked), or None when it has none:
    what ``oracle calibrate --stored`` shows instead of measuring again (minutes at full size)."""
    from audiosr_verify.oracle.fixture_validation import read_calibration_file

    fdir = Path(fixture_dir)
    data = read_calibration_file(fdir, meta)  # read once: the bytes whose sha256 was checked are these
    if data is None:
        return None
    try:
        rows = [TensorBound(**{k: r[k] for k in TensorBound.__dataclass_fields__}) for r in data.get("rows", [])]
    except (KeyError, TypeError) as exc:
        raise AudioSRError(f"calibration rows are not what `oracle export` writes ({exc})",
                           fdir / CALIBRATION_FILE) from None
    return Calibration(str(data.get("preset")), rows, float(data.get("seconds") or 0.0), list(data.get("faults") or []))


def write(cal: Calibration, directory: Path) -> Path:
    path = Path(directory) / CALIBRATION_FILE
    path.write_text(json.dumps(cal.to_dict(), indent=1) + "\n")
    return path


__all__ = ["Calibration", "FaultRow", "Float64Reference", "TensorBound", "calibrate", "fault_table", "stored", "write"]
