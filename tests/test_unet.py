"""model.unet: same state_dict layout as the original UNet, shapes, embedding.

The manifests under golden/manifests/components were dumped from the ORIGINAL
audiosr UNetModel by tools/oracle/dump_unet_manifest.py; the numerical
comparison with the original lives in tools/oracle/check_unet.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from audiosr_model.config import basic, tiny
from audiosr_model.nets.unet import UNetModel, timestep_embedding

MANIFESTS = Path(__file__).resolve().parents[1] / "golden" / "manifests" / "components"
BASIC_UNET_PARAMS = 258_195_088  # counted on the original (model.diffusion_model)


def _build(name: str) -> UNetModel:
    """Tiny for real; basic on the meta device (no memory, shapes only)."""
    if name == "tiny":
        return UNetModel(tiny().unet)
    with torch.device("meta"):
        return UNetModel(basic().unet)


def _manifest(model: UNetModel) -> list[tuple[str, list[int], str]]:
    return [
        (key, list(t.shape), str(t.dtype).removeprefix("torch."))
        for key, t in model.state_dict().items()
    ]


@pytest.mark.parametrize("name,n_keys", [("tiny", 312), ("basic", 1104)])
def test_state_dict_matches_original(name, n_keys):
    golden = json.loads((MANIFESTS / f"unet_{name}.json").read_text())
    expected = [(key, shape, dtype) for key, (shape, dtype) in golden.items()]
    ours = _manifest(_build(name))
    assert len(expected) == n_keys
    assert {k for k, *_ in ours} == {k for k, *_ in expected}, "key names differ"
    assert ours == expected  # same shapes, dtypes and order


def test_basic_parameter_count():
    model = _build("basic")
    assert sum(p.numel() for p in model.parameters()) == BASIC_UNET_PARAMS


def test_tiny_forward_shape():
    torch.manual_seed(0)
    model = UNetModel(tiny().unet).eval()
    x = torch.randn(2, 32, 64, 32)
    with torch.no_grad():
        out = model(x, torch.tensor([1, 501]))
    assert out.shape == (2, 16, 64, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_rejects_sizes_the_skips_cannot_concatenate():
    model = UNetModel(tiny().unet)
    with pytest.raises(ValueError, match="multiples of 2"):
        model(torch.zeros(1, 32, 63, 32), torch.tensor([0]))


def test_timestep_embedding_cos_then_sin():
    t = torch.tensor([0, 7, 999])
    emb = timestep_embedding(t, 8)
    freqs = [math.exp(-math.log(10000) * i / 4) for i in range(4)]
    expected = torch.tensor(
        [[math.cos(s * f) for f in freqs] + [math.sin(s * f) for f in freqs] for s in (0, 7, 999)]
    )
    torch.testing.assert_close(emb, expected, rtol=0, atol=1e-4)
    odd = timestep_embedding(t, 9)
    assert odd.shape == (3, 9) and torch.equal(odd[:, -1], torch.zeros(3))


@pytest.mark.parametrize(
    "change", [{"use_spatial_transformer": False}, {"num_head_channels": -1}]
)
def test_options_audiosr_never_uses_are_refused(change):
    with pytest.raises(NotImplementedError):
        UNetModel(dataclasses.replace(tiny().unet, **change))
