"""Golden verdicts do not depend on the machine, and still catch every real change.

Both directions, without a second machine:

* float-rounding noise never fails a golden: the outputs recomputed with 1 and
  with 2 torch threads (another reduction order, as another CPU vendor or BLAS
  kernel gives; the fast paths against the golden they name, under their
  bounds), and the committed goldens perturbed by relative noise of 1e-6 and by
  +-1 ulp, all pass; several channels are compared one by one;
* every real change fails: 0.5 dB of gain, a 1 ms shift, the band above the
  cutoff removed, one click at -40 dBFS (and, in test_golden_detects_change.py,
  a changed vocoder).

The perturbations are `audiosr_verify.golden.perturbations`; the benchmark
benchmarks/bench_golden_noise.py measures the same margins for docs/golden-verdicts.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosr_verify import golden as G
from audiosr_verify.golden.perturbations import CHANGES, NOISE


def _committed(golden_store, audiosr_settings):
    cases = [c for c in golden_store.cases() if golden_store.exists(audiosr_settings.key, c.name)]
    if not cases:
        pytest.skip(f"no committed goldens for {audiosr_settings.key}")
    return cases


# every case with a golden of its own, in the fast tier: no model runs here, only comparisons (about 1 s a case;
# the 28 s one takes ten times that and runs with the slow tier)
CASES = G.load_cases()
OWN = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if "chunking" in c.covers else [])
       for c in CASES if not c.golden]


@pytest.mark.parametrize("case", OWN)
def test_rounding_noise_passes_and_real_changes_fail(case, golden_store, audiosr_settings):
    if not golden_store.exists(audiosr_settings.key, case.name):
        pytest.skip(f"no committed golden {audiosr_settings.key}/{case.name}")
    golden = golden_store.load(audiosr_settings.key, case.name).frames
    for name, perturb in NOISE.items():
        res = golden_store.compare(case, perturb(golden, case.cutoff_hz), audiosr_settings, write_obtained=False)
        assert res.status == "within_tolerance", f"{name}: {res.rows()}"
    for name, perturb in CHANGES.items():
        res = golden_store.compare(case, perturb(golden, case.cutoff_hz), audiosr_settings, write_obtained=False)
        assert res.status == "failed", f"{name} was not caught: {res.rows()}"


def _tier(tier: str) -> list:
    return [pytest.param(t, tier, id=f"{tier}-{t}", marks=[pytest.mark.slow] if tier == "full" else [])
            for t in (1, 2)]


@pytest.mark.parametrize("threads,tier", _tier("fast") + _tier("full"))
def test_outputs_recomputed_with_other_thread_counts_pass(threads, tier, golden_store, audiosr_settings, audiosr_net,
                                                          enhance, golden_outputs):
    """Every case of the tier, fast paths included (each against the golden it names, under its bounds)."""
    committed = {c.name for c in _committed(golden_store, audiosr_settings)}
    cases = [c for c in golden_store.cases() if c.tier == tier and c.golden_name in committed
             and G.not_applicable(c, audiosr_net) is None]  # bf16 needs native bfloat16
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        obtained = {c.name: golden_outputs(c, enhance) for c in cases}
    finally:
        torch.set_num_threads(before)
    for case in cases:
        res = golden_store.compare(case, obtained[case.name], audiosr_settings, write_obtained=False)
        assert res.passed, f"{case.name} with {threads} thread(s): {res.rows()}"


def test_published_lsd_alone_would_fail_on_rounding_noise(golden_store, audiosr_settings):
    """Why the verdict does not use the published LSD: 1e-6 of noise gives LSD 0.1+ on a noise burst."""
    from audiosr_verify.compare import metrics as M

    case = next((c for c in _committed(golden_store, audiosr_settings) if c.name == "noise_burst_16k"), None)
    if case is None:
        pytest.skip("noise_burst_16k has no committed golden")
    golden = golden_store.load(audiosr_settings.key, case.name).waveform
    noisy = NOISE["relative noise 1e-6"](golden, case.cutoff_hz)
    assert M.lsd(golden, noisy, G.SAMPLE_RATE) > 0.05
    distance = M.spectral_distance(golden, noisy, G.SAMPLE_RATE, case.cutoff_hz)
    assert distance.mean_db < G.DEFAULT_TOLERANCES["spectral_distance"]["max"] / 10
    assert np.isfinite(distance.worst_frame_db)
