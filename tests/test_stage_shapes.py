"""Stage shapes of the full `basic` preset (on the meta device: no memory used)."""

import torch

from audiosr_model.config import basic
from audiosr_model.weights.load import skeleton


def test_basic_stage_shapes_for_5_12_seconds():
    net = skeleton(basic())
    with torch.device("meta"):
        mel = torch.empty(1, 1, 512, 256)
        posterior = net.condition_posterior(mel)
        assert tuple(posterior.mean.shape) == (1, 16, 64, 32)
        assert net.latent_shape(tuple(mel.shape)) == (1, 16, 64, 32)
        x = torch.empty(1, 16, 64, 32)
        v = net.unet_forward(x, torch.zeros(1, dtype=torch.long), posterior.mean)
        assert tuple(v.shape) == (1, 16, 64, 32)
        assert net.unet.input_blocks[0][0].in_channels == 32  # latent + condition
        decoded = net.decode(x)
        assert tuple(decoded.shape) == (1, 1, 512, 256)
        wave = net.vocode(decoded)
        assert tuple(wave.shape) == (1, 1, 245_776)  # 480 * 512 + 16


def test_basic_parameter_budget():
    net = skeleton(basic())
    counts = {}
    for key, t in net.state_dict().items():
        group = ".".join(key.split(".")[:2])
        counts[group] = counts.get(group, 0) + t.numel()
    unet = counts["model.diffusion_model"]
    assert 250e6 < unet < 270e6  # ORACLE.md: 258 M
    total = sum(counts.values())
    # EMA, CLAP and the condition decoder/vocoder are not built: far below the original's 1.54 G
    assert total < 0.8e9
