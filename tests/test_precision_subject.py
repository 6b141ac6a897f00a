"""Reduced precision as a subject: `precision:bf16` computes in bfloat16, and its verdict is in metric terms.

Fast tier: the subject is a built-in name, its networks really run in
bfloat16 (the condition encoder departs from float32 by far more than float
noise, yet stays inside the bf16 bound), and the caller's network is left
alone. Slow tier: the whole metric verdict in both directions (bf16 passes
its bounds; a porting fault in float32 fails them).
"""

from __future__ import annotations

import pytest
import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks import stages as S
from audiosr_verify.checks.precision import BOUNDS, check_precision
from audiosr_verify.subjects.loader import resolve_factory
from audiosr_verify.subjects.precision import PrecisionSubject
from audiosr_verify.util.paths import data_path

needs_fixtures = pytest.mark.skipif(not data_path(S.DEFAULT_FIXTURES, "metadata.json").exists(),
                                    reason="golden/oracle/tiny not exported (audiosr-verify oracle export)")


def test_precision_names_resolve_and_unknown_ones_are_one_line():
    assert callable(resolve_factory("precision:bf16")) and callable(resolve_factory("precision:fp16"))
    with pytest.raises(AudioSRError, match="known precisions are bf16, fp16"):
        resolve_factory("precision:int8")


@needs_fixtures
def test_bf16_networks_compute_in_bfloat16_within_their_bound():
    from audiosr_verify.oracle.fixtures import load_fixture_set

    shared = S.tiny_network()
    before = {k: v.clone() for k, v in list(shared.state_dict().items())[:5]}
    subject = PrecisionSubject("bf16", net=shared)
    subject.activate()
    _, items = load_fixture_set(S._resolve(S.DEFAULT_FIXTURES), S._resolve(S.DEFAULT_INPUTS), ["tone_mix_16k"])
    inp = items[0]
    with torch.no_grad():
        mean, _ = subject.condition_encode(inp.ref("lowpass.log_mel").numpy())
    ref = inp.ref("cond.posterior_mean")
    rel = float((mean.float() - ref).abs().max() / ref.abs().max())
    assert mean.dtype == torch.float32  # float32 at the network's boundary
    assert 1e-4 < rel < BOUNDS["bf16"].stage_peak_rel, rel  # not float32 noise, inside the bf16 bound
    assert subject.net is not shared  # the caller's network is never changed
    assert all(torch.equal(shared.state_dict()[k], v) for k, v in before.items())
    with torch.no_grad():
        again = shared.condition_posterior(inp.ref("lowpass.log_mel")[None, None]).mean
    assert float((again - ref).abs().max()) < 1.2e-5  # still the float32 reference


@pytest.mark.slow
@needs_fixtures
def test_bf16_verdict_passes_and_a_porting_fault_fails_the_same_bounds():
    bf16 = check_precision("precision:bf16")
    assert bf16.ok, bf16.summary_line()
    assert {s.stage for s in bf16.stages} == {"condition_encode", "unet", "ddim_step", "vae_decode", "vocoder"}
    assert len(bf16.outputs) == 3
    fault = check_precision("fault:leaky_relu_slope", "bf16")
    assert not fault.ok, fault.summary_line()
