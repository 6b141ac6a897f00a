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

This module is the entry point; the pieces live beside it: the result types in
`checks.stage_results`, the run harness (a stage call bounded, timed and compared)
in `checks.stage_run`, the two views as tables of steps in `checks.stage_teacher`
and `checks.stage_chained`, our own network in `checks.stage_networks`. Every name
callers import from here stays importable from here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from audiosr_verify import schema
from audiosr_verify.checks.deadline import default_seconds
from audiosr_verify.checks.stage_chained import chained_view
from audiosr_verify.checks.stage_networks import shared_network, tiny_network
from audiosr_verify.checks.stage_results import (
    STATUSES, VIEWS, FunctionalResult, StageCheckResult, StageStatus, stage_rank,
)
from audiosr_verify.checks.stage_run import (
    FILTER_TYPES, Settings, StageRun, StopSuite, SubjectStopped, as_tensor, read_audio, tolerance_for,
)
from audiosr_verify.checks.stage_teacher import teacher_view
from audiosr_verify.oracle.fixtures import Draws, FixtureInput, find_draws, load_fixture_set

DEFAULT_FIXTURES = "oracle/tiny"  # relative paths are taken inside the harness data (util.paths.data_dir)
DEFAULT_INPUTS = "inputs"

# The names of the first version, kept for callers (precision.py, benchmarks).
_t = as_tensor
_read_audio = read_audio


def _resolve(path: str | Path) -> Path:
    """An absolute path, one that exists from here, or a path inside the harness data."""
    from audiosr_verify.util.paths import data_dir

    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return data_dir() / p


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
        run = StageRun(subject, inp, result, view, stop_at_first_failure, bounds or _bounds(None, None, None))
        if view == "teacher":
            result.calls[inp.name] = run.calls  # filled as the stages run (also when stopped early)
        try:
            (teacher_view if view == "teacher" else chained_view)(run, settings, shared)
        except (StopSuite, SubjectStopped):
            raise
        except Exception as exc:  # the harness could not use what a stage returned: that stage fails
            stage = run.last_stage or "resample"
            run.fail(stage, "unusable output", f"the harness could not use its output "
                     f"({type(exc).__name__}: {exc}); the rest of {inp.name} ({view}) was not checked")


def last_call(result: StageCheckResult, stage: str, input: str) -> tuple | None:
    """The arguments the teacher view gave ``stage`` on ``input`` (to rerun it under hooks)."""
    return result.calls.get(input, {}).get(stage)


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
    "DEFAULT_FIXTURES", "DEFAULT_INPUTS", "FILTER_TYPES", "FunctionalResult", "STATUSES", "Settings",
    "StageCheckResult", "StageStatus", "StopSuite", "SubjectStopped", "VIEWS", "check_input", "check_stages",
    "last_call", "load_fixture_set", "run_fixture_suite", "shared_network", "stage_rank", "tiny_network",
    "tolerance_for",
]
