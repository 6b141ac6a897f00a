"""`check SUBJECT`: every check of the harness on one implementation, as one result.

1. state-dict parity of the subject's layout against the original's manifest
   (when the subject exposes one), reported as the stage ``state_dict``;
2. stage parity against the oracle fixtures, teacher-forced and chained
   (checks/stages.py);
3. first divergence: the earliest failing stage (pipeline order) and, when the
   subject exposes its modules under the original's names, the first module
   inside that stage whose output departs from the reference implementation's
   on the same (the original's) input. The reference is itself checked against
   the original's fixtures on every stage, bit for bit where the original is
   deterministic, so its module outputs stand in for the original's here;
   `audiosr-verify compare` runs the original's modules live instead.

The subject gets the weights the fixtures were made with: the shared seeded
tiny weights written as a safetensors checkpoint in the original's key layout
(``SubjectContext.checkpoint``), after their digest is checked against the
fixtures' metadata.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from audiosr_model.errors import AudioSRError
from audiosr_verify import schema
from audiosr_verify.checks import stages as S
from audiosr_verify.checks.state_dict import LayoutResult, compare_layout
from audiosr_verify.subject import Subject, SubjectContext
from audiosr_verify.util.paths import data_path

Progress = Callable[[str], None] | None


@dataclass
class ModuleDivergence:
    stage: str
    module: str  # full name in the original's naming
    key: str  # recording key (name, name@n, name#j)
    type: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "key": self.key, "type": self.type, "detail": self.detail}


@dataclass
class CheckResult:
    subject: str
    description: str = ""
    preset: str = "tiny"
    state_dict: LayoutResult | None = None
    stages: S.StageCheckResult = field(default_factory=S.StageCheckResult)
    module_divergence: ModuleDivergence | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Something was compared, and every provided stage passes (the layout, when given, included).

        A verdict over nothing is never OK: a subject that provides no stage the fixtures cover fails, even
        when its state-dict layout matches (that says nothing about what it computes)."""
        if self.state_dict is not None and not self.state_dict.ok:
            return False
        return self.stages.ok is True

    def compared(self) -> dict[str, int]:
        """What the verdict rests on: stage comparisons, inputs and stages they cover, and the layout check."""
        out = self.stages.compared()
        out["state_dict"] = 0 if self.state_dict is None else 1
        return out

    def stage_statuses(self, view: str = "teacher") -> list[dict[str, Any]]:
        rows = [s.to_dict() for s in self.stages.stages(view)] if self.stages.available else []
        if view == "teacher":
            sd = {"name": schema.STATE_DICT, "max_abs": None, "min_passing_atol": None, "comparisons": 0,
                  "failed": 0, "first_failure": None}
            if self.state_dict is None:
                sd["status"] = "not_provided"
            else:
                sd.update(status="pass" if self.state_dict.ok else "fail", comparisons=1,
                          failed=0 if self.state_dict.ok else 1,
                          first_failure=None if self.state_dict.ok else self.state_dict.summary_line())
            rows.insert(0, sd)
        return rows

    def first_divergence(self) -> dict[str, Any] | None:
        if self.state_dict is not None and not self.state_dict.ok:
            return {"stage": schema.STATE_DICT, "detail": self.state_dict.summary_line()}
        first = self.stages.first_failure() if self.stages.available else None
        if first is None:
            return None
        out = {"stage": first.stage, "fixture": first.name, "input": first.input, "view": first.view,
               "max_abs": _j(first.max_abs), "detail": first.note or f"max |diff| {first.max_abs:.3g}"}
        if self.module_divergence is not None:
            out["module"] = self.module_divergence.module
            out["module_detail"] = self.module_divergence.detail
        return out

    def summary_line(self) -> str:
        teacher = self.stage_statuses("teacher")
        counts = {k: sum(r["status"] == k for r in teacher) for k in S.STATUSES}
        parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in S.STATUSES if counts[k]]
        c = self.compared()
        if not c["comparisons"]:
            head = f"{self.subject}: FAILED, NOTHING COMPARED ({self.stages.summary_line().split(': ', 2)[-1]})"
            return head
        head = (f"{self.subject}: {'OK' if self.ok else 'FAILED'} ({', '.join(parts)}; {c['comparisons']} "
                f"comparisons of {c['stages']} stages on {c['inputs']} inputs)")
        if self.stages.stopped:
            head += f"; {self.stages.stopped}"
        if self.stages.calibrated is not None:
            head += f"; bounds calibrated for the fixture set ({len(self.stages.calibrated)} tensors)"
        first = self.first_divergence()
        if first:
            where = first["stage"] + (f" / {first['module']}" if first.get("module") else "")
            head += f"; first divergence: {where}"
        return head

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "subject": self.subject,
            "description": self.description,
            "schema_version": schema.SCHEMA_VERSION,
            "preset": self.preset,
            "summary": self.summary_line(),
            "stages": self.stage_statuses("teacher"),
            "chained": self.stage_statuses("chained"),
            "compared": self.compared(),
            "first_divergence": self.first_divergence(),
            "state_dict": None if self.state_dict is None else self.state_dict.to_dict(),
            "stage_parity": self.stages.to_dict(),
            "seconds": round(self.seconds, 2),
        }


def _j(x: float) -> float | str:
    import math

    return float(x) if math.isfinite(x) else str(x)


# --------------------------------------------------------------------------- the weights the fixtures were made with


def write_shared_checkpoint(directory: str | Path, preset: str = "tiny", fixture_dir=S.DEFAULT_FIXTURES) -> Path:
    """The shared seeded weights (+ the schedule buffers) as a safetensors checkpoint, digest checked
    against the fixture set's metadata (validated on opening: a missing or damaged set is refused)."""
    from safetensors.torch import save_file

    from audiosr_model import config as cfg
    from audiosr_model.sampling.schedule import schedule_buffers
    from audiosr_verify.oracle import export
    from audiosr_verify.oracle.fixture_validation import open_metadata

    meta_path = S._resolve(fixture_dir) / "metadata.json"
    meta = open_metadata(S._resolve(fixture_dir))
    weights = export.shared_tiny_weights() if preset == "tiny" else export.shared_weights(
        export.read_manifest(data_path("manifests", f"audiosr_{preset}.json")))
    expected = (meta.get("weights") or {}).get("digest") if isinstance(meta.get("weights"), dict) else None
    if not isinstance(expected, str):
        raise AudioSRError("fixture metadata records no weights digest: the weights they were made with are "
                           "unknown", meta_path)
    if export.weights_digest(weights) != expected:
        raise AudioSRError("the regenerated shared weights differ from the ones the fixtures were made with "
                           "(generator changed?)", meta_path)
    state = {k: v.contiguous() for k, v in weights.items()}
    state.update(schedule_buffers(cfg.preset(preset).diffusion))
    path = Path(directory) / f"shared_{preset}.safetensors"
    save_file(state, str(path))
    return path


# --------------------------------------------------------------------------- modules


def locate_module(subject: Subject, reference: Subject, stage: str, args: tuple,
                  atol: float = schema.MODULE_ATOL) -> ModuleDivergence | None:
    """Rerun ``stage`` with ``args`` in both, with hooks on every module of the stage; the first that departs."""
    from audiosr_verify.checks.first_divergence import compare_modules
    from audiosr_verify.oracle.module_hooks import record_module_outputs

    prefix = schema.stage(stage).module_prefix
    root, ref_root = subject.module_root(), reference.module_root()
    if prefix is None or root is None or ref_root is None:
        return None
    ours, ours_order, _ = record_module_outputs(root, prefix, lambda: getattr(subject, stage)(*args))
    ref, ref_order, _ = record_module_outputs(ref_root, prefix, lambda: getattr(reference, stage)(*args))
    rows = compare_modules(ref, ref_order, ours, ours_order, atol)
    first = next((r for r in rows if r.status in ("diverges", "only_ours")), None)
    if first is None:
        return None
    c = first.comparison
    if c is None:
        detail = "a module the original does not have ran"
    elif c.ours_shape is not None:
        detail = c.note
    else:
        detail = f"max |diff| {c.max_abs:.3g} (cosine {c.cosine:.6f})"
    return ModuleDivergence(stage, first.module, first.key, first.type, detail)


# --------------------------------------------------------------------------- the check


def activate(subject: Subject) -> None:
    """``subject.activate()``; anything it raises but our own one-line errors becomes one."""
    try:
        subject.activate()
    except AudioSRError:
        raise
    except Exception as exc:
        raise AudioSRError(f"subject {subject.name}: activate() raised {type(exc).__name__}: {exc}") from None


def run_check(
    spec: str | Subject,
    *,
    preset: str | None = None,
    fixture_dir: str | Path = S.DEFAULT_FIXTURES,
    inputs: Iterable[str] | None = None,
    views: Iterable[str] = S.VIEWS,
    modules: bool = True,
    stop_at_first_failure: bool = False,
    device: str = "cpu",
    options: dict[str, str] | None = None,
    progress: Progress = None,
    stage_timeout: float | None = None,
    checkpoint: str | Path | None = None,
) -> CheckResult:
    """Load the subject ``spec`` names (or take the object) and run every check on it.

    The fixture set decides the size: its ``preset`` (``preset`` must agree when given) and its
    weights. The bundled sets were made with the shared seeded weights, which are regenerated here;
    a set exported from a checkpoint (``oracle export --checkpoint``) needs that checkpoint
    (``checkpoint``), recognised by its sha256, and the subject gets its cached safetensors copy.
    """
    from audiosr_verify.oracle.fixture_validation import fixture_preset, open_metadata, resolve_names
    from audiosr_verify.oracle.manifests import manifest_path
    from audiosr_verify.subjects.loader import load_subject
    from audiosr_verify.subjects.reference import ReferenceSubject

    say = progress or (lambda m: None)
    start = time.monotonic()
    # The fixture set, the inputs asked for and the checkpoint are checked before any subject is built.
    fdir = S._resolve(fixture_dir)
    meta = open_metadata(fdir)
    resolve_names(meta, fdir, inputs)
    made_with = fixture_preset(fdir, meta)  # a name, or the set's own config.yaml
    if preset is not None and preset != made_with:
        raise AudioSRError(f"the fixture set was made with the {made_with} preset, not {preset}", fdir)
    preset = made_with
    user_weights = fixture_checkpoint(meta, fdir, checkpoint, say)
    with tempfile.TemporaryDirectory(prefix="audiosr-check-") as tmp:
        if user_weights is None:
            say("writing the shared weights")
            user_weights = write_shared_checkpoint(tmp, preset, fixture_dir)
        context = SubjectContext(str(user_weights), preset, device, dict(options or {}))
        subject = load_subject(spec, context)
        result = CheckResult(subject.name, subject.description, preset)
        layout = subject.state_dict_layout()
        if layout is not None:
            say("state-dict layout")
            result.state_dict = compare_layout(layout, manifest_path(preset))
        say(f"activating {subject.name}")
        activate(subject)
        try:
            result.stages = S.check_stages(subject, fixture_dir, inputs=inputs, views=views, progress=say,
                                           stop_at_first_failure=stop_at_first_failure, stage_timeout=stage_timeout)
            first = result.stages.first_failure("teacher") if result.stages.available else None
            if modules and first is not None and first.view == "teacher":
                args = S.last_call(result.stages, first.stage, first.input)
                if args is not None and schema.stage(first.stage).module_prefix and subject.module_root() is not None:
                    say(f"locating the first diverging module of {first.stage}")
                    reference = ReferenceSubject(context)
                    reference.activate()
                    result.module_divergence = locate_module(subject, reference, first.stage, args)
        finally:
            subject.deactivate()
    result.seconds = time.monotonic() - start
    return result


def fixture_checkpoint(meta: dict[str, Any], fixture_dir: Path, checkpoint: str | Path | None,
                       progress: Progress = None) -> Path | None:
    """The weights a subject gets for a set exported from a checkpoint (its cached safetensors copy), after
    the given checkpoint is recognised by its sha256; None for the bundled sets (shared seeded weights)."""
    from audiosr_verify.oracle.fixture_validation import fixture_preset
    from audiosr_verify.oracle.inference_weights import check_layout, inference_copy

    recorded = meta.get("checkpoint")
    if recorded is None:
        if checkpoint is not None:
            raise AudioSRError("this fixture set was made with the shared seeded weights, not a checkpoint: "
                               "--checkpoint applies to sets made by `oracle export --checkpoint`", fixture_dir)
        return None
    if checkpoint is None:
        raise AudioSRError(f"this fixture set was made from the checkpoint {recorded.get('file', '?')} (sha256 "
                           f"{recorded['sha256'][:16]}...): give it with --checkpoint", fixture_dir)
    if progress:
        progress(f"hashing {Path(checkpoint).name}")
    facts = check_layout(Path(checkpoint), fixture_preset(fixture_dir, meta))
    if facts.sha256 != recorded["sha256"]:
        raise AudioSRError(f"not the checkpoint the fixture set was made with: sha256 {facts.sha256[:16]}... "
                           f"against the set's {recorded['sha256'][:16]}... ({recorded.get('file', '?')}, "
                           f"{fixture_dir})", checkpoint)
    return inference_copy(facts, progress)


__all__ = ["CheckResult", "ModuleDivergence", "fixture_checkpoint", "locate_module", "run_check",
           "write_shared_checkpoint"]


# --------------------------------------------------------------------------- a subject on the bundled weights


def write_random_checkpoint(directory: str | Path, preset: str = "tiny", seed: int = 0) -> Path:
    """The bundled default's weights (seeded random, `random_state`) as a safetensors checkpoint."""
    from safetensors.torch import save_file

    from audiosr_model import config as cfg
    from audiosr_model.weights.load import random_state

    path = Path(directory) / f"random_{preset}_seed{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in random_state(cfg.preset(preset), seed).items()}, str(path))
    return path


@contextlib.contextmanager
def opened_subject(spec: str | Subject, checkpoint: str | None = None, preset: str = "tiny", weights_seed: int = 0,
                   device: str = "cpu", options: dict[str, str] | None = None):
    """An activated subject on ``checkpoint`` (default: the bundled seeded random weights); deactivated after."""
    from audiosr_verify.subjects.loader import load_subject

    with tempfile.TemporaryDirectory(prefix="audiosr-subject-") as tmp:
        path = checkpoint or str(write_random_checkpoint(tmp, preset, weights_seed))
        subject = load_subject(spec, SubjectContext(str(path), preset, device, dict(options or {})))
        activate(subject)
        try:
            yield subject
        finally:
            subject.deactivate()
