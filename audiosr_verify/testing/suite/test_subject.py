"""Parity of the session's subject (--audiosr-subject, default ``reference``) with the original.

One `run_check` per session: state-dict layout, every stage of the schema
teacher-forced and chained against the original's stored outputs, and first
divergence. A stage the subject does not provide is skipped with that reason,
never passed.
"""

from __future__ import annotations

import pytest

from audiosr_verify import schema


def _explain(result, stage: str, view: str) -> str:
    rows = [c for c in result.stages.view(view) if c.stage == stage and not c.passed]
    lines = [f"{c.name} on {c.input}: max |diff| {c.max_abs:.3g} > {c.tolerance_text()} "
             f"(smallest passing atol {c.min_passing_atol:.3g}) {c.note}" for c in rows[:10]]
    first = result.first_divergence()
    if first and first.get("stage") == stage and first.get("module"):
        lines.append(f"first diverging module: {first['module']} ({first.get('module_detail', '')})")
    return f"stage {stage} ({view}) of {result.subject}:\n" + "\n".join(lines)


def test_state_dict_layout(audiosr_subject_check):
    sd = audiosr_subject_check.state_dict
    if sd is None:
        pytest.skip("the subject exposes no state-dict layout (not_provided)")
    assert sd.ok, sd.summary_line() + f": missing {sd.missing[:5]}, unexpected {sd.unexpected[:5]}, " \
                                      f"shape {sd.shape_mismatch[:5]}"


@pytest.mark.parametrize("stage", schema.STAGE_NAMES)
def test_stage_teacher_forced(audiosr_subject_check, stage):
    status = {s.name: s for s in audiosr_subject_check.stages.stages("teacher")}[stage]
    if status.status == "not_provided":
        pytest.skip(f"{audiosr_subject_check.subject} does not provide {stage} (not_provided)")
    assert status.status == "pass", _explain(audiosr_subject_check, stage, "teacher")


@pytest.mark.parametrize("stage", schema.CHAIN_STAGES)
def test_stage_chained(audiosr_subject_check, stage):
    status = {s.name: s for s in audiosr_subject_check.stages.stages("chained")}[stage]
    if status.status in ("not_provided", "not_checked"):
        pytest.skip(f"{stage}: {status.status}")
    assert status.status == "pass", _explain(audiosr_subject_check, stage, "chained")


def test_no_stage_call_raised_or_returned_garbage(audiosr_subject_check):
    assert not audiosr_subject_check.stages.errors, audiosr_subject_check.stages.errors[:5]


def test_something_was_compared(audiosr_subject_check):
    """A subject whose every stage is skipped (it provides none the fixtures cover) must not pass in silence."""
    compared = audiosr_subject_check.compared()
    assert compared["comparisons"] > 0, audiosr_subject_check.summary_line()


def test_no_stage_ran_past_its_time_bound(audiosr_subject_check):
    assert not audiosr_subject_check.stages.stopped, audiosr_subject_check.stages.stopped
