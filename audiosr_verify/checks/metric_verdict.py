"""The verdict on a reduced-precision subject, in metric terms against the original.

``check`` holds every stage to float32 rounding, which bfloat16 or float16
can never meet. `check_precision` asks instead whether the reduced-precision
model still computes the same thing, within what the precision costs:

* **stage errors**: each network stage (condition encoder, UNet, DDIM step,
  VAE decoder, vocoder) fed the original's inputs from the oracle fixtures
  (teacher-forced, as in ``check``); its error is the peak-relative
  difference max |ours - original| / max |original| over the stage's tensors;
* **end to end**, on every fixture input with the original's output stored
  (seed 42, 2 DDIM steps, faithful level): LSD below and above the input's
  cutoff (`compare.metrics.lsd_lf` / `lsd_hf`), SI-SDR, and the level
  difference (RMS, dB).

`BOUNDS` holds the tolerance of each metric per precision and the
measurement behind it (``python benchmarks/bench_precision.py`` prints the
noise of each precision and what real porting faults do to the same metrics).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks import stages as S

NETWORK_STAGES = ("condition_encode", "unet", "ddim_step", "vae_decode", "vocoder")
STAGE_INPUT = "tone_mix_16k"  # the `full` fixture input: every network stage's input is stored


@dataclass(frozen=True)
class PrecisionBounds:
    stage_peak_rel: float  # per network stage, max |ours - original| / max |original|, at most
    lsd_low: float  # LSD below the cutoff, at most
    lsd_high: float  # LSD above the cutoff, at most
    si_sdr_db: float  # SI-SDR of the output, at least
    level_db: float  # |RMS(ours) / RMS(original)| in dB, at most
    why: str


# Measured by benchmarks/bench_precision.py (tiny preset, the fixtures' weights, 2 threads, AMD EPYC).
# bf16 (autocast): worst stage error 0.031 (vocoder), LSD 0.078 below / 0.129 above the cutoff, SI-SDR
# 38.4 dB, level 0.023 dB. Each bound sits about 3x beyond that (SI-SDR 13 dB below). Porting faults in
# float32 land outside: guidance formula (stage 0.315), leaky ReLU slope (stage 0.749, SI-SDR 8.6 dB),
# unclamped energy ratio (SI-SDR -0.1 dB, LSD 2.55). Faults smaller than bf16's own error (GroupNorm eps:
# 2e-5; the unconditional constant -11.0: 0.051) cannot be told from it and pass, as they must.
BOUNDS: dict[str, PrecisionBounds] = {
    "fp32": PrecisionBounds(1e-4, 0.01, 0.01, 80.0, 0.001,
                            "float32 rounding only (the reference: stage 4.2e-6, LSD 8.3e-4, SI-SDR 118 dB)"),
    "bf16": PrecisionBounds(0.1, 0.25, 0.4, 25.0, 0.1,
                            "about 3x the measured bf16 error (stage 0.031, LSD 0.078 / 0.129, level 0.023 dB; "
                            "SI-SDR 38.4 dB)"),
}


@dataclass
class StageError:
    stage: str
    peak_rel: float
    max_abs: float
    tensors: int
    bound: float

    @property
    def passed(self) -> bool:
        return self.peak_rel <= self.bound

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "peak_rel": _j(self.peak_rel), "max_abs": _j(self.max_abs),
                "tensors": self.tensors, "bound": self.bound, "passed": self.passed}


@dataclass
class OutputMetrics:
    input: str
    cutoff_hz: float
    lsd_low: float
    lsd_high: float
    si_sdr_db: float
    level_db: float
    bounds: PrecisionBounds

    def failures(self) -> list[str]:
        b, bad = self.bounds, []
        if not self.lsd_low <= b.lsd_low:
            bad.append(f"LSD below the cutoff {self.lsd_low:.3g} > {b.lsd_low:g}")
        if not self.lsd_high <= b.lsd_high:
            bad.append(f"LSD above the cutoff {self.lsd_high:.3g} > {b.lsd_high:g}")
        if not self.si_sdr_db >= b.si_sdr_db:
            bad.append(f"SI-SDR {self.si_sdr_db:.3g} dB < {b.si_sdr_db:g} dB")
        if not abs(self.level_db) <= b.level_db:
            bad.append(f"level {self.level_db:+.3g} dB beyond ±{b.level_db:g} dB")
        return bad

    @property
    def passed(self) -> bool:
        return not self.failures()

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "cutoff_hz": self.cutoff_hz, "lsd_low": _j(self.lsd_low),
                "lsd_high": _j(self.lsd_high), "si_sdr_db": _j(self.si_sdr_db), "level_db": _j(self.level_db),
                "passed": self.passed, "failures": self.failures()}


@dataclass
class PrecisionResult:
    subject: str
    precision: str
    bounds: PrecisionBounds
    stages: list[StageError] = field(default_factory=list)
    outputs: list[OutputMetrics] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Something was measured and every measurement is within its bound (never OK on nothing)."""
        return bool(self.stages or self.outputs) and not self.errors and all(s.passed for s in self.stages) \
            and all(o.passed for o in self.outputs)

    def compared(self) -> dict[str, int]:
        return {"stages": len(self.stages), "stage_tensors": sum(s.tensors for s in self.stages),
                "outputs": len(self.outputs)}

    def summary_line(self) -> str:
        c = self.compared()
        if not (self.stages or self.outputs):
            return (f"{self.subject} ({self.precision} bounds): FAILED, NOTHING COMPARED (the subject provides no "
                    f"network stage and no enhance the fixtures cover)" + (f"; {'; '.join(self.errors[:2])}"
                                                                          if self.errors else ""))
        bad = [f"{s.stage} {s.peak_rel:.3g} > {s.bound:g}" for s in self.stages if not s.passed]
        bad += [f"{o.input}: {f}" for o in self.outputs for f in o.failures()] + self.errors
        head = (f"{self.subject} ({self.precision} bounds): {'OK' if self.ok else 'FAILED'} ({c['stages']} network "
                f"stages over {c['stage_tensors']} tensors, {c['outputs']} end-to-end outputs)")
        return head + ("" if self.ok else "; " + "; ".join(bad[:4]))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "subject": self.subject, "precision": self.precision,
                "bounds": dict(self.bounds.__dict__), "summary": self.summary_line(),
                "stages": [s.to_dict() for s in self.stages], "outputs": [o.to_dict() for o in self.outputs],
                "errors": list(self.errors), "compared": self.compared(), "seconds": round(self.seconds, 2)}


def _j(x: float) -> float | str:
    return float(x) if math.isfinite(x) else str(x)


def _network_stages_only(subject) -> Any:
    """The subject seen through its network stages only (the DSP stages are float32 in every precision)."""
    view = types.SimpleNamespace(name=subject.name, description=subject.description)
    for stage in NETWORK_STAGES:
        if stage in subject.provided():
            setattr(view, stage, getattr(subject, stage))
    return view


def stage_errors(subject, bounds: PrecisionBounds, fixture_dir=S.DEFAULT_FIXTURES,
                 stage_timeout: float | None = None) -> tuple[list[StageError], list]:
    """Peak-relative error of every network stage, teacher-forced on the `full` fixture input."""
    from audiosr_verify.oracle.fixtures import load_fixture_set

    result = S.check_stages(_network_stages_only(subject), fixture_dir, inputs=[STAGE_INPUT], views=("teacher",),
                            stage_timeout=stage_timeout)
    _, items = load_fixture_set(S._resolve(fixture_dir), S._resolve(S.DEFAULT_INPUTS), [STAGE_INPUT])
    inp = items[0]
    rows: dict[str, StageError] = {}
    for c in result.comparisons:
        if c.stage not in NETWORK_STAGES:
            continue
        ref = inp.ref(c.name) if inp.has(c.name) else None
        if ref is None:  # a rebuilt reference (cond.latent): its peak is the posterior mean's
            ref = inp.ref("cond.posterior_mean")
        peak = float(ref.abs().max())
        rel = c.max_abs / peak if peak > 0 else (0.0 if c.max_abs == 0 else math.inf)
        row = rows.setdefault(c.stage, StageError(c.stage, 0.0, 0.0, 0, bounds.stage_peak_rel))
        row.peak_rel, row.max_abs, row.tensors = max(row.peak_rel, rel), max(row.max_abs, c.max_abs), row.tensors + 1
    errors = [f"{e['stage']} on {e['input']}: {e.get('kind', 'raised')}: {e['error']}" for e in result.errors]
    return [rows[s] for s in NETWORK_STAGES if s in rows], errors + ([result.stopped] if result.stopped else [])


def output_metrics(subject, bounds: PrecisionBounds, fixture_dir=S.DEFAULT_FIXTURES,
                   inputs: Iterable[str] | None = None, errors: list[str] | None = None,
                   stage_timeout: float | None = None) -> list[OutputMetrics]:
    """The subject's `enhance` on every fixture input with the original's output stored, against it.

    Its return value is checked at the boundary and each call is time-bounded, as in the stage check: a
    call that raises, returns garbage or runs past its bound is an error (appended to ``errors``)."""
    from audiosr_verify.checks.boundary import BadOutput, check_outputs
    from audiosr_verify.checks.deadline import StageTimeout, bounded, default_seconds
    from audiosr_verify.compare import metrics
    from audiosr_verify.oracle.fixtures import load_fixture_set

    meta, items = load_fixture_set(S._resolve(fixture_dir), S._resolve(S.DEFAULT_INPUTS), inputs)
    seed, steps = int(meta.get("seed", 42)), int(meta.get("ddim_steps", 2))
    guidance = float(meta.get("guidance_scale", 3.5))
    errors = errors if errors is not None else []
    out = []
    for inp in items:
        if not inp.has("final.waveform") or "error" in (inp.meta.get("end2end") or {}):
            continue
        wave, rate = S._read_audio(inp)
        bound = stage_timeout if stage_timeout is not None else default_seconds(
            "enhance", (meta.get("weights") or {}).get("n_elements"), inp.meta.get("target_frame"))
        try:
            with bounded(bound, "enhance"):
                value = subject.enhance(wave, rate, seed, steps, guidance)
            ours = check_outputs("enhance", value)["waveform"]
        except StageTimeout as exc:
            errors.append(f"enhance on {inp.name}: timed out: {exc}")
            break  # the subject was interrupted mid-call: no further call
        except BadOutput as exc:
            errors.append(f"enhance on {inp.name}: bad output: {exc}")
            continue
        except Exception as exc:
            errors.append(f"enhance on {inp.name}: raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            continue
        ours = np.asarray(S._t(ours).float().numpy()).reshape(-1)
        ref = inp.ref("final.waveform").float().numpy().reshape(-1)
        n = min(ours.size, ref.size)
        ours, ref = ours[:n].astype(np.float64), ref[:n].astype(np.float64)
        cutoff = float(inp.meta["cutoff_hz"])
        rms = [float(np.sqrt(np.mean((x - x.mean()) ** 2))) for x in (ours, ref)]
        out.append(OutputMetrics(
            inp.name, cutoff, metrics.lsd_lf(ref, ours, 48000, cutoff), metrics.lsd_hf(ref, ours, 48000, cutoff),
            metrics.si_sdr(ref, ours), 20 * math.log10(rms[0] / rms[1]) if rms[0] > 0 and rms[1] > 0 else math.inf,
            bounds))
    return out


def check_precision(spec, precision: str | None = None, *, fixture_dir=S.DEFAULT_FIXTURES,
                    inputs: Iterable[str] | None = None, device: str = "cpu",
                    stage_timeout: float | None = None) -> PrecisionResult:
    """The metric verdict on ``spec`` (a subject name or object) under the bounds of ``precision``.

    ``precision`` defaults to the subject's own (``precision:bf16`` -> ``bf16``; anything else ``fp32``).
    """
    import tempfile
    import time

    from audiosr_verify.checks.subject_check import write_shared_checkpoint
    from audiosr_verify.subject import SubjectContext
    from audiosr_verify.subjects.loader import load_subject

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="audiosr-precision-") as tmp, torch.no_grad():
        context = SubjectContext(str(write_shared_checkpoint(tmp, "tiny", fixture_dir)), "tiny", device)
        subject = load_subject(spec, context)
        precision = precision or getattr(subject, "precision", "fp32")
        if precision not in BOUNDS:
            raise AudioSRError(f"no measured bounds for {precision} (known: {', '.join(BOUNDS)}); measure them "
                               "with python benchmarks/bench_precision.py")
        bounds = BOUNDS[precision]
        result = PrecisionResult(subject.name, precision, bounds)
        subject.activate()
        try:
            result.stages, result.errors = stage_errors(subject, bounds, fixture_dir, stage_timeout)
            if "enhance" in subject.provided():
                result.outputs = output_metrics(subject, bounds, fixture_dir, inputs, result.errors, stage_timeout)
        finally:
            subject.deactivate()
    result.seconds = time.monotonic() - start
    return result


__all__ = ["BOUNDS", "NETWORK_STAGES", "OutputMetrics", "PrecisionBounds", "PrecisionResult", "StageError",
           "check_precision", "output_metrics", "stage_errors"]
