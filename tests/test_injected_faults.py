"""Injected faults: the functional-parity suite must catch each one AT the stage that owns it.

Every fault is a typical porting bug, applied by wrapping or monkeypatching
our model in the test (never by editing model files). The suite runs on the
`full` fixture input (it stores every stage) and stops at the first failing
stage; the test asserts that this FIRST failure, in pipeline order, is the
stage where the fault lives, so a report would point the engineer at the
right place. (That the clean model passes every stage is
tests/test_functional_parity.py's job.)
"""

from __future__ import annotations

import pytest
import torch

from audiosr_verify.checks import stages as F
from audiosr_verify.util.paths import data_path

pytestmark = pytest.mark.skipif(
    not data_path(F.DEFAULT_FIXTURES, "metadata.json").exists(),
    reason="golden/oracle/tiny not exported (audiosr-verify oracle export)",
)

INPUT = "tone_mix_16k"  # level "full": every stage stored
CHAIN_INPUT = "noise_burst_48k"  # level "chain": the generative path only (cheaper)


def fresh_net():
    return F.shared_network("tiny")


def first_failure(net=None, inputs=(INPUT,)):
    result = F.run_fixture_suite(inputs=list(inputs), net=net, stop_at_first_failure=True)
    first = result.first_failure()
    assert first is not None, f"the fault went unnoticed: {result.summary_line()}"
    return first, result


def _describe(first) -> str:
    return f"first failure {first.name} on {first.input}: max |diff| {first.max_abs:.3g} ({first.note})"


def test_vocoder_output_padding_is_caught_at_the_vocoder():
    net = fresh_net()
    ups1 = net.first_stage_model.vocoder.ups[1]  # the rate-5 layer (k - u odd)
    assert ups1.stride == (5,)
    ups1.output_padding = (1,)
    first, _ = first_failure(net, inputs=(CHAIN_INPUT,))
    assert first.name == "vocoder.waveform", _describe(first)
    assert first.input == CHAIN_INPUT


def test_skipped_input_normalisation_is_caught_at_normalize(monkeypatch):
    import audiosr_model.level

    monkeypatch.setattr(audiosr_model.level, "normalize_input", lambda x: x)  # the pipeline's normalisation
    first, _ = first_failure(inputs=("tone_mix_8k", INPUT))
    assert first.name == "normalize.waveform", _describe(first)


@pytest.mark.parametrize(
    "where, eps, expected",
    [
        # the VAE's Normalize uses 1e-6; torch's default 1e-5 is the classic slip
        ("cond_stage_models.0.vae", 1e-5, "cond.posterior_mean"),
        # the UNet's GroupNorm32 uses torch's 1e-5; copying the VAE's 1e-6 is the reverse slip
        ("model.diffusion_model", 1e-6, "unet.out.t1"),
    ],
)
def test_groupnorm_eps_is_caught_at_the_first_module_using_it(where, eps, expected):
    net = fresh_net()
    changed = 0
    for name, module in net.named_modules():
        if name.startswith(where) and isinstance(module, torch.nn.GroupNorm):
            module.eps = eps
            changed += 1
    assert changed
    first, _ = first_failure(net)
    assert first.name == expected, _describe(first)


def test_unconditional_constant_is_caught_at_the_unconditional_unet_call():
    net = fresh_net()
    net.unconditional_latent = lambda like: torch.full_like(like, -11.0)  # instead of -11.4981
    first, result = first_failure(net)
    # the fixture's `unet.input` is the unconditional call's input, so the
    # constant shows there first; without it, at the unconditional output
    expected = {"unet.input_uncond", "unet.out_uncond.t501"}
    assert first.name in expected, _describe(first)
    assert all(c.passed for c in result.comparisons if c.name.startswith("unet.out.t"))


def test_ddim_timesteps_shifted_by_one_are_caught_in_the_ddim_trajectory(monkeypatch):
    import audiosr_model.diffusion

    original = audiosr_model.diffusion.ddim_timesteps
    monkeypatch.setattr(audiosr_model.diffusion, "ddim_timesteps", lambda n, total=1000: original(n, total) - 1)
    first, _ = first_failure()
    assert first.name.startswith("ddim."), _describe(first)
    assert first.name == "ddim.timesteps", _describe(first)
