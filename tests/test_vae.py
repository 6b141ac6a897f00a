"""model.vae: key layout against the original, shapes, and the Gaussian posterior.

The key manifests were dumped from the ORIGINAL AutoencoderKL by
tools/oracle/dump_component_manifests.py; numerical parity with the
original is checked by tools/oracle/check_components.py (oracle venv).
Full-size models are built on the meta device, so no memory is used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from audiosr_model.config import VAEConfig, basic, tiny
from audiosr_model.nets.vae import AttnBlock, AutoencoderKL, DiagonalGaussian, Downsample, Encoder, Upsample
from audiosr_model.nets.vocoder import Generator

MANIFESTS = Path(__file__).resolve().parents[1] / "golden" / "manifests" / "components"
PRESETS = {"tiny": tiny, "basic": basic}


def _manifest(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    data = json.loads((MANIFESTS / name).read_text())
    return {k: (tuple(shape), dtype) for k, (shape, dtype) in data.items()}


def _layout(module: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        k: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for k, t in module.state_dict().items()
    }


def _build(preset: str, **kwargs) -> AutoencoderKL:
    cfg = PRESETS[preset]()
    with torch.device("meta"):
        return AutoencoderKL(cfg.vae, **kwargs)


@pytest.mark.parametrize("preset", ["tiny", "basic"])
def test_keys_and_shapes_match_original(preset):
    """The original AutoencoderKL always owns its HiFi-GAN as `vocoder`."""
    cfg = PRESETS[preset]()
    with torch.device("meta"):
        vae = AutoencoderKL(cfg.vae, vocoder=Generator(cfg.vocoder))
    expected = _manifest(f"vae_{preset}.json")
    ours = _layout(vae)
    assert sorted(set(expected) - set(ours)) == []  # missing
    assert sorted(set(ours) - set(expected)) == []  # unexpected
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}


@pytest.mark.parametrize("preset", ["tiny", "basic"])
def test_partial_models_drop_exactly_their_halves(preset):
    expected = _manifest(f"vae_{preset}.json")
    decoder_only = _layout(_build(preset, with_encoder=False))
    encoder_only = _layout(_build(preset, with_decoder=False))
    no_vocoder = {k: v for k, v in expected.items() if not k.startswith("vocoder.")}
    assert decoder_only == {
        k: v for k, v in no_vocoder.items() if not k.startswith(("encoder.", "quant_conv."))
    }
    assert encoder_only == {
        k: v for k, v in no_vocoder.items() if not k.startswith(("decoder.", "post_quant_conv."))
    }


@pytest.mark.parametrize("preset", ["tiny", "basic"])
def test_full_size_shapes_on_meta(preset):
    """5.12 s of mel [1,1,512,256] <-> latent [1,16,64,32]; decode inverts it."""
    vae = _build(preset)
    with torch.device("meta"):
        posterior = vae.encode(torch.empty(1, 1, 512, 256))
        assert posterior.mean.shape == (1, 16, 64, 32)
        assert posterior.std.shape == (1, 16, 64, 32)
        assert vae.decode(posterior.mean).shape == (1, 1, 512, 256)


def test_tiny_real_forward_small_input():
    torch.manual_seed(0)
    vae = AutoencoderKL(tiny().vae).eval()
    mel = torch.randn(2, 1, 64, 32)
    with torch.no_grad():
        posterior = vae.encode(mel)
        assert posterior.mean.shape == (2, 16, 8, 4)
        out = vae.decode(posterior.mode())
    assert out.shape == (2, 1, 64, 32)
    assert torch.isfinite(out).all()


def test_attention_levels_follow_attn_resolutions():
    """Attention sits where the running resolution (from cfg.resolution) is listed;
    the middle always has one."""
    cfg = dataclasses.replace(tiny().vae, attn_resolutions=(64,))
    with torch.device("meta"):
        vae = AutoencoderKL(cfg)
    keys = vae.state_dict().keys()
    # resolution 256 -> levels at 256, 128, 64, 32: level 2 of both halves.
    assert {k.split(".attn.")[0] for k in keys if ".attn." in k} == {"encoder.down.2", "decoder.up.2"}
    assert "encoder.mid.attn_1.q.weight" in keys and "decoder.mid.attn_1.q.weight" in keys
    assert len([k for k in keys if k.startswith("decoder.up.2.attn.") and k.endswith("q.weight")]) == 2


def test_attention_matches_textbook_formula():
    torch.manual_seed(1)
    block = AttnBlock(32).eval()
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        h = block.norm(x)
        q, k, v = (m(h).flatten(2) for m in (block.q, block.k, block.v))  # [b, c, n]
        weights = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(32), dim=-1)
        ref = x + block.proj_out(torch.einsum("bij,bcj->bci", weights, v).reshape(x.shape))
        torch.testing.assert_close(block(x), ref, atol=1e-5, rtol=1e-5)


def test_downsample_pads_right_and_bottom_only():
    down = Downsample(1)
    with torch.no_grad():
        down.conv.weight.zero_()
        down.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
        down.conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = down(x)
    assert out.shape == (1, 1, 2, 2)
    # No padding on top/left: windows start at rows/cols 0 and 2.
    assert out.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_upsample_is_nearest_then_conv():
    up = Upsample(1)
    with torch.no_grad():
        up.conv.weight.zero_()
        up.conv.weight[0, 0, 1, 1] = 1.0  # identity conv
        up.conv.bias.zero_()
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert torch.equal(up(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_gaussian_moments_clamp_and_sample():
    mean = torch.randn(1, 2, 3, 3)
    logvar = torch.tensor([-40.0, 0.0, 25.0]).repeat(1, 2, 3, 1)
    post = DiagonalGaussian(torch.cat([mean, logvar], dim=1))
    assert torch.equal(post.mean, mean)
    assert torch.equal(post.mode(), mean)
    assert torch.equal(post.logvar, logvar.clamp(-30.0, 20.0))
    assert torch.equal(post.std, torch.exp(0.5 * logvar.clamp(-30.0, 20.0)))
    noise = torch.randn(1, 2, 3, 3)
    assert torch.equal(post.sample(noise), mean + post.std * noise)


def test_gaussian_generator_reproduces_global_randn():
    """sample(generator=g) draws what the original's torch.randn(shape) draws
    after torch.manual_seed with the same seed."""
    post = DiagonalGaussian(torch.randn(1, 32, 4, 4))
    torch.manual_seed(42)
    expected = post.mean + post.std * torch.randn(post.mean.shape)
    got = post.sample(generator=torch.Generator().manual_seed(42))
    assert torch.equal(got, expected)


def test_gaussian_sample_needs_exactly_one_source():
    post = DiagonalGaussian(torch.zeros(1, 4, 2, 2))
    with pytest.raises(TypeError):
        post.sample()
    with pytest.raises(TypeError):
        post.sample(torch.zeros(1, 2, 2, 2), generator=torch.Generator())
    with pytest.raises(ValueError):
        post.sample(torch.zeros(1, 2, 3, 3))


def test_unsupported_options_refused():
    with pytest.raises(NotImplementedError):
        Encoder(dataclasses.replace(VAEConfig(), downsample_time=True))
    with pytest.raises(NotImplementedError):
        AutoencoderKL(dataclasses.replace(tiny().vae, double_z=False))


def test_missing_half_raises():
    with torch.device("meta"):
        vae = AutoencoderKL(tiny().vae, with_encoder=False)
        with pytest.raises(RuntimeError):
            vae.encode(torch.empty(1, 1, 64, 32))
        assert vae.decode(torch.empty(1, 16, 8, 4)).shape == (1, 1, 64, 32)
