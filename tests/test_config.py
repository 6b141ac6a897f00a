"""Config presets mirror the original and survive a YAML round trip."""

import pytest

from audiosr_model import config as cfg
from audiosr_model.errors import AudioSRError


def test_basic_mirrors_original_config():
    c = cfg.basic()
    # values of audiosr.utils.get_basic_config() and get_vocoder_config_48k()
    assert c.vae.ch == 128 and c.vae.ch_mult == (1, 2, 4, 8) and c.vae.num_res_blocks == 2
    assert c.unet.model_channels == 128 and c.unet.channel_mult == (1, 2, 3, 5)
    assert c.unet.attention_resolutions == (8, 4, 2) and c.unet.num_head_channels == 32
    assert c.vocoder.upsample_rates == (6, 5, 4, 2, 2) and c.vocoder.upsample_initial_channel == 1536
    assert c.vocoder.hop == c.audio.hop_length == 480
    assert c.diffusion.beta_schedule == "cosine" and c.diffusion.parameterization == "v"
    assert c.latent_downsample == 8


def test_tiny_keeps_hop_and_groupnorm_widths():
    c = cfg.tiny()
    assert c.vocoder.hop == 480
    assert c.vae.ch % 32 == 0 and c.unet.model_channels % 32 == 0
    assert c.latent_downsample == 8  # same latent geometry as basic


@pytest.mark.parametrize("name", ["basic", "tiny"])
def test_yaml_round_trip(tmp_path, name):
    c = cfg.preset(name)
    path = tmp_path / "c.yaml"
    cfg.save_yaml(c, path)
    assert cfg.load_yaml(path) == c


def test_unknown_field_and_preset_are_clear_errors(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("vae:\n  chanels: 3\n")
    with pytest.raises(AudioSRError, match="chanels"):
        cfg.load_yaml(path)
    with pytest.raises(AudioSRError, match="unknown preset"):
        cfg.preset("huge")
    path.write_text("- not a mapping\n")
    with pytest.raises(AudioSRError, match="bad.yaml"):
        cfg.load_yaml(path)
