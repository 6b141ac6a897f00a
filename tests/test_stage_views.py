"""The two views of stage parity are tables driven from the schema: one step per schema stage (teacher-forced),
the schema's chain in order (chained), and `checks.stages` still exports what its callers import."""

from __future__ import annotations

from audiosr_verify import schema
from audiosr_verify.checks import stages as S
from audiosr_verify.checks.stage_chained import CHAINED_STEPS
from audiosr_verify.checks.stage_teacher import TEACHER_STEPS


def test_the_teacher_view_has_one_step_per_schema_stage_in_pipeline_order():
    assert list(TEACHER_STEPS) == list(schema.STAGE_NAMES)
    assert all(step.stage == name for name, step in TEACHER_STEPS.items())
    assert {s.needs for s in TEACHER_STEPS.values()} <= {"", "chain", "draws"}
    # what needs the condition chain is the chain's part from the condition on, plus the DDIM helpers
    chain = [n for n, s in TEACHER_STEPS.items() if s.needs]
    assert chain[0] == "condition_encode" and chain[-1] == "output_level"


def test_the_chained_view_walks_the_schemas_chain():
    stages = [s.stage for s in CHAINED_STEPS]
    assert list(dict.fromkeys(stages)) == list(schema.CHAIN_STAGES)
    assert stages.count("features") == 2  # the padded waveform, then its low-passed copy
    assert {s.needs for s in CHAINED_STEPS} == {"", "draws"}
    assert [s.stage for s in CHAINED_STEPS if s.needs][0] == "condition_encode"


def test_stages_keeps_the_names_its_callers_import():
    for name in ("DEFAULT_FIXTURES", "DEFAULT_INPUTS", "FILTER_TYPES", "FunctionalResult", "STATUSES", "Settings",
                 "StageCheckResult", "StageStatus", "VIEWS", "check_input", "check_stages", "last_call",
                 "load_fixture_set", "run_fixture_suite", "shared_network", "stage_rank", "tiny_network",
                 "tolerance_for", "_resolve", "_read_audio", "_t"):
        assert hasattr(S, name), name
    assert S.FunctionalResult is S.StageCheckResult
