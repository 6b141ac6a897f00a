"""model.vocoder: key layout against the original, output length, weight-norm folding.

Key manifests come from the ORIGINAL hifigan/models.py Generator after
remove_weight_norm() (tools/oracle/dump_component_manifests.py);
numerical parity is checked by tools/oracle/check_components.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrizations, weight_norm

from audiosr_model.config import basic, tiny
from audiosr_model.errors import AudioSRError
from audiosr_model.nets.vocoder import Generator, load_weight_norm_state, output_length

MANIFESTS = Path(__file__).resolve().parents[1] / "golden" / "manifests" / "components"
PRESETS = {"tiny": tiny, "basic": basic}


def _manifest(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    data = json.loads((MANIFESTS / name).read_text())
    return {k: (tuple(shape), dtype) for k, (shape, dtype) in data.items()}


@pytest.mark.parametrize("preset", ["tiny", "basic"])
def test_keys_and_shapes_match_original(preset):
    with torch.device("meta"):
        gen = Generator(PRESETS[preset]().vocoder)
    ours = {
        k: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for k, t in gen.state_dict().items()
    }
    expected = _manifest(f"vocoder_{preset}.json")
    assert sorted(set(expected) - set(ours)) == []  # missing
    assert sorted(set(ours) - set(expected)) == []  # unexpected
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}


@pytest.mark.parametrize("preset", ["tiny", "basic"])
def test_512_frames_give_hop_times_frames_plus_16(preset):
    cfg = PRESETS[preset]().vocoder
    assert output_length(cfg, 512) == 480 * 512 + 16 == 245_776
    with torch.device("meta"):
        out = Generator(cfg)(torch.empty(1, 256, 512))
    assert out.shape == (1, 1, 245_776)


def test_tiny_real_forward_is_bounded():
    torch.manual_seed(0)
    cfg = tiny().vocoder
    gen = Generator(cfg).eval()
    with torch.no_grad():
        out = gen(torch.randn(2, 256, 8))
    assert out.shape == (2, 1, output_length(cfg, 8))
    assert out.abs().max() <= 1.0  # tanh


def _weight_normed_state(gen: Generator, parametrized: bool) -> dict[str, torch.Tensor]:
    """The state_dict of `gen` with weight norm applied to every conv, the way a
    raw HiFi-GAN training checkpoint stores it."""
    convs = [m for m in gen.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d))]
    for conv in convs:
        (parametrizations.weight_norm if parametrized else weight_norm)(conv)
    return {k: v.detach().clone() for k, v in gen.state_dict().items()}


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
@pytest.mark.parametrize("parametrized", [False, True])
def test_weight_norm_state_folds_to_plain_weights(parametrized):
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny().vocoder, upsample_initial_channel=32)
    plain = Generator(cfg).eval()
    wn = Generator(cfg).eval()
    state = _weight_normed_state(wn, parametrized)
    assert any(k.endswith(("weight_g", "original0")) for k in state)

    plain.load_state_dict(load_weight_norm_state(state), strict=True)
    mel = torch.randn(1, 256, 4)
    with torch.no_grad():
        torch.testing.assert_close(plain(mel), wn(mel), atol=1e-6, rtol=0)


def test_weight_norm_formula_norms_all_dims_but_0():
    g = torch.rand(4, 1, 1) + 0.5
    v = torch.randn(4, 3, 5)
    folded = load_weight_norm_state({"c.weight_g": g, "c.weight_v": v, "c.bias": torch.ones(3)})
    assert set(folded) == {"c.weight", "c.bias"}
    expected = g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()
    torch.testing.assert_close(folded["c.weight"], expected, atol=1e-6, rtol=1e-6)


def test_weight_norm_unpaired_key_is_an_error():
    with pytest.raises(AudioSRError):
        load_weight_norm_state({"c.weight_g": torch.ones(2, 1, 1)})
    with pytest.raises(AudioSRError):
        load_weight_norm_state({"c.weight_v": torch.ones(2, 1, 1)})


def test_only_resblock_1_exists():
    with pytest.raises(NotImplementedError):
        Generator(dataclasses.replace(tiny().vocoder, resblock="2"))
