"""Golden regression of the session's subject: its ``enhance`` on the regression inputs, against goldens.

The subject runs on the bundled weights (the tiny preset's seeded random
weights, seed 0) with the schema's ``enhance`` settings (faithful level,
channel 0, seed 42, 2 DDIM steps, guidance 3.5); its outputs are compared with
the goldens under ``random-tiny-seed0-faithful-first`` (made by ``reference``:
``audiosr-verify golden update --subject reference``) with the verdict of
*Golden verdicts*. Any subject at parity with the original must pass them.
The fast cases run by default; the others carry the ``slow`` marker.
"""

from __future__ import annotations

import pytest

from audiosr_verify import golden as G

CASES = G.load_cases()


@pytest.fixture(scope="module")
def golden_subject(audiosr_subject_spec):
    from audiosr_model.errors import AudioSRError
    from audiosr_verify.checks.subject_check import opened_subject

    try:
        with opened_subject(audiosr_subject_spec) as subject:
            if "enhance" not in subject.provided():
                pytest.skip(f"{subject.name} does not provide enhance")
            yield subject
    except AudioSRError as exc:
        pytest.fail(f"--audiosr-subject {audiosr_subject_spec}: {exc}", pytrace=False)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[] if c.tier == "fast" else [pytest.mark.slow])
                                  for c in CASES])
def test_enhance_matches_the_golden(golden_subject, audiosr_subject_spec, case):
    from audiosr_verify.report.render import case_table_text

    store = G.GoldenStore()
    settings = G.RunSettings.for_subjects(audiosr_subject_spec)
    run = G.run_golden(G.subject_producer(golden_subject, settings, store.inputs_dir), settings, store, [case],
                       write_obtained=False)
    result = run.results[0]
    if result.status == "not_applicable":  # compared nothing: a skip with the reason, never a pass
        pytest.skip(f"{case.name}: {result.message}")
    assert result.passed, case_table_text(result)
