"""Injected faults, as subjects: each is caught FIRST by the stage that owns it, through the protocol.

Every fault of `audiosr_verify.subjects.faults` is the reference with one typical
porting bug. `run_check` sees it exactly as a port's CI would: through the
subject protocol. The check stops at the first failing comparison on the
`full` fixture input (it stores every stage); the test asserts that this
first failure, in pipeline order, is in the stage where the fault lives, and,
for stages with modules, that the first diverging module is the one changed (and that
none is blamed where the fault lies outside the network, e.g. the guidance formula).
(That the clean reference passes every stage is the packaged suite's job:
audiosr_verify/testing/suite/test_subject.py.)
`python benchmarks/bench_stage_margins.py` prints the error each fault makes there.
Faults of the product around the model (stage None: channels, silence, the
preserve level) are no stage's: tests/test_golden_faults.py shows the goldens
catch them.
"""

from __future__ import annotations

import pytest

from audiosr_verify.checks import stages as S
from audiosr_verify.checks.subject_check import run_check
from audiosr_verify.subjects.faults import FAULTS
from audiosr_verify.util.paths import data_path

pytestmark = pytest.mark.skipif(
    not data_path(S.DEFAULT_FIXTURES, "metadata.json").exists(),
    reason="golden/oracle/tiny not exported (audiosr-verify oracle export)",
)

INPUT = "tone_mix_16k"  # level "full": every stage stored


STAGED = sorted(n for n, f in FAULTS.items() if f.stage is not None)  # the others: only the goldens see them


@pytest.mark.parametrize("name", STAGED)
def test_fault_is_caught_first_by_its_stage(name):
    fault = FAULTS[name]
    result = run_check(f"fault:{name}", inputs=[INPUT], views=("teacher",), stop_at_first_failure=True)
    assert not result.ok, f"fault {name} went unnoticed: {result.summary_line()}"
    first = result.first_divergence()
    assert first["stage"] == fault.stage, f"{name}: {first}"
    assert first["input"] == INPUT
    assert first.get("module") == fault.module, f"{name}: {first}"
    # the JSON a port's CI reads says the same
    data = result.to_dict()
    assert data["ok"] is False and data["first_divergence"]["stage"] == fault.stage
    failed = [s["name"] for s in data["stages"] if s["status"] == "fail"]
    assert failed == [fault.stage], failed


def test_the_catalogue_covers_the_porting_faults_of_the_issue():
    """At least 20 faults, spread over the DSP front end, the networks, the sampler and the tail."""
    from audiosr_verify.schema import STAGE_NAMES

    assert len(STAGED) >= 20
    stages = {FAULTS[n].stage for n in STAGED}
    for stage in ("resample", "normalize", "features", "cutoff", "lowpass", "randomness", "condition_encode", "unet",
                  "ddim_schedule", "ddim_step", "vae_decode", "mel_replace", "vocoder", "postprocess"):
        assert stage in stages, stage
    assert stages <= set(STAGE_NAMES)
