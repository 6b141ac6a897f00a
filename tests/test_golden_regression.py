"""Golden-output regression: every case of golden/regression_inputs against its stored output.

Each case is enhanced with the session's model (tiny preset, random weights
seed 0; or --audiosr-checkpoint) with seed 42, 2 DDIM steps, guidance 3.5 and
the preserve level, and compared with golden/regression/<checkpoint-key>/<case>.
The "fast" cases run in the default tier; the rest are marked slow (each case
costs a full 5.12 s segment of the model, whatever its length).

Goldens are made ONLY by:

    pytest tests/test_golden_regression.py --golden-update      (all cases; -m "not slow": fast ones)
    audiosr-verify golden update
"""

from __future__ import annotations

import pytest

from audiosr_verify.golden import load_cases

CASES = load_cases()


def _param(case):
    marks = [] if case.tier == "fast" else [pytest.mark.slow]
    return pytest.param(case, id=case.name, marks=marks)


def test_case_index_is_present():
    assert CASES, "golden/regression_inputs/cases.json is missing: python tools/regression_inputs.py"
    assert any(c.tier == "fast" for c in CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_golden_case(case, enhance, golden_check):
    golden_check(case, enhance(case))
