"""Strict loading: round trips, and every fault named by its key."""

import pytest
import torch

from audiosr_model.errors import AudioSRError
from audiosr_model.weights.checkpoint import classify_keys, load_into, save_checkpoint, tensor_specs
from audiosr_model.weights.load import load_model, random_state, skeleton


@pytest.mark.parametrize("fmt,name", [("bin", "ckpt.bin"), ("safetensors", "ckpt.safetensors")])
def test_round_trip_both_formats(tmp_path, tiny_config, tiny_state, fmt, name):
    path = tmp_path / name
    save_checkpoint(tiny_state, path, fmt)
    net, report = load_model(path, tiny_config)
    assert report.ok and report.counts["matched"] == len(tiny_state)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in tiny_state.items())


def test_random_state_is_deterministic(tiny_config, tiny_state):
    again = random_state(tiny_config, seed=0)
    assert all(torch.equal(again[k], v) for k, v in tiny_state.items())
    other = random_state(tiny_config, seed=1)
    assert not torch.equal(other["model.diffusion_model.out.2.weight"], tiny_state["model.diffusion_model.out.2.weight"])
    assert tiny_state["scale_factor"].item() == 0.5


def _load(tiny_config, state):
    return load_into(skeleton(tiny_config), state, source="test.ckpt")


def test_dropped_key_is_named(tiny_config, tiny_state):
    state = dict(tiny_state)
    del state["first_stage_model.vocoder.conv_post.weight"]
    with pytest.raises(AudioSRError, match=r"1 missing: first_stage_model\.vocoder\.conv_post\.weight"):
        _load(tiny_config, state)


def test_extra_key_is_named(tiny_config, tiny_state):
    state = dict(tiny_state, **{"model.diffusion_model.extra.weight": torch.zeros(3)})
    with pytest.raises(AudioSRError, match=r"1 unexpected: model\.diffusion_model\.extra\.weight"):
        _load(tiny_config, state)


def test_wrong_shape_is_named(tiny_config, tiny_state):
    key = "cond_stage_models.0.vae.quant_conv.weight"
    state = dict(tiny_state, **{key: torch.zeros(1, 1, 1, 1)})
    with pytest.raises(AudioSRError, match=rf"1 shape mismatch: {key}"):
        _load(tiny_config, state)


def test_wrong_dtype_is_named(tiny_config, tiny_state):
    key = "model.diffusion_model.out.2.bias"
    state = dict(tiny_state, **{key: tiny_state[key].half()})
    with pytest.raises(AudioSRError, match=rf"1 dtype mismatch: {key}"):
        _load(tiny_config, state)


def test_declared_groups_are_ignored_with_reasons(tiny_config, tiny_state):
    extra = {
        "model_ema.decay": torch.tensor(0.999),
        "clap.model.logit_scale_a": torch.tensor(1.0),
        "cond_stage_models.0.vae.decoder.conv_in.weight": torch.zeros(1),
        "cond_stage_models.0.vae.vocoder.conv_pre.weight": torch.zeros(1),
        "logvar": torch.zeros(1000),
    }
    report = _load(tiny_config, dict(tiny_state, **extra))
    ignored = {k.key: k for k in report.by_status("ignored")}
    assert set(ignored) == set(extra)
    assert all(k.reason for k in ignored.values())
    assert ignored["model_ema.decay"].group == "ema"


def test_classification_reports_every_kind_at_once():
    expected = {"a": ((2,), "float32"), "b": ((3,), "float32"), "c": ((1,), "float32"), "d": ((1,), "float32")}
    actual = {"a": ((2,), "float32"), "b": ((4,), "float32"), "c": ((1,), "float16"), "z": ((1,), "float32")}
    report = classify_keys(expected, actual)
    assert {k.key: k.status for k in report.keys} == {
        "a": "matched", "b": "shape_mismatch", "c": "dtype_mismatch", "z": "unexpected", "d": "missing",
    }
    assert not report.ok


def test_identical_encoders_are_kept_once(tiny_config, tiny_state):
    state = dict(tiny_state)
    for k in list(state):
        if k.startswith("cond_stage_models.0.vae.") and not k.startswith("cond_stage_models.0.vae.vocoder"):
            state["first_stage_model." + k[len("cond_stage_models.0.vae."):]] = state[k]
    net = skeleton(tiny_config)
    load_into(net, state)
    assert net.share_identical_encoders()
    assert net.first_stage_model.encoder is net.condition_vae.encoder
    assert set(net.state_dict()) == set(tiny_state)  # both names still listed


def test_specs_cover_buffers(tiny_state):
    specs = tensor_specs(tiny_state)
    assert specs["betas"] == ((1000,), "float32") and specs["scale_factor"] == ((), "float32")
