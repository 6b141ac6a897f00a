"""Golden-output regression: every case of golden/regression_inputs against its stored output.

Each case is enhanced with the session's model (tiny preset, random weights
seed 0; or --audiosr-checkpoint) with seed 42, 2 DDIM steps, guidance 3.5 and
the preserve level, then the case's own enhance options (cases.json), and
compared with golden/regression/<checkpoint-key>/<case> (a fast path: with the
golden of the case it names, under its measured bounds).
The "fast" cases run in the default tier; the rest are marked slow (each case
costs a full 5.12 s segment of the model, whatever its length).

Goldens are made ONLY by:

    pytest tests/test_golden_regression.py --golden-update      (all cases; -m "not slow": fast ones)
    audiosr-verify golden update
"""

from __future__ import annotations

import pytest

from audiosr_verify import golden as G

CASES = G.load_cases()


def _param(case):
    marks = [] if case.tier == "fast" else [pytest.mark.slow]
    return pytest.param(case, id=case.name, marks=marks)


def test_case_index_is_present():
    assert CASES, "golden/regression_inputs/cases.json is missing: python tools/regression_inputs.py"
    assert any(c.tier == "fast" for c in CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_golden_case(case, enhance, golden_check, audiosr_settings, request, golden_outputs):
    if audiosr_settings.subject:  # a subject's schema enhance (faithful level, channel 0): no product option
        why = case.schema_problem() and f"--audiosr-subject {audiosr_settings.subject}: {case.schema_problem()}"
    else:  # a fast path the host has none of (bf16 without native bfloat16)
        why = G.not_applicable(case, request.getfixturevalue("audiosr_net"))
    if why:
        pytest.skip(why)
    golden_check(case, golden_outputs(case, enhance))
