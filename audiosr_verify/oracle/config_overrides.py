"""A model configuration, said in the original's terms: what its runner changes in its own config.

The original builds its network from ``audiosr.utils.get_basic_config()`` and
``audiosr.utilities.model.get_vocoder_config_48k()``. The runner
(`oracle/runner.py`) builds any size by updating those two with an overrides
mapping of the shape of `schema.TINY_OVERRIDES`:

* ``vae_ddconfig``: the AutoencoderKL ``ddconfig`` (both VAEs: the first stage
  and the low-pass condition's), ``vae_embed_dim`` its ``embed_dim``;
* ``unet``: the ``UNetModel`` parameters;
* ``vocoder``: the HiFi-GAN config.

`overrides_for` derives that mapping from one of our `ModelConfig` s (the
fields that differ from the released ``basic``), so a configuration YAML
(``oracle export --config``) reaches the original without a preset of its own.
What the original cannot change through its config (the audio front end, the
diffusion schedule, the latent geometry: hard-coded in its pipeline) is
refused in one line naming the field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from audiosr_model.errors import AudioSRError

BUILTIN_PRESETS = ("basic", "tiny")

# our field -> the original's key, per section (the same names except where noted)
VAE_DDCONFIG = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "z_channels", "in_channels", "out_ch",
                "resolution", "mel_bins", "double_z", "downsample_time", "dropout")
UNET_PARAMS = ("image_size", "in_channels", "out_channels", "model_channels", "attention_resolutions",
               "num_res_blocks", "channel_mult", "num_head_channels", "extra_sa_layer", "use_spatial_transformer",
               "transformer_depth")
VOCODER_CONFIG = ("num_mels", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock",
                  "resblock_kernel_sizes", "resblock_dilation_sizes")


def _plain(value: Any) -> Any:
    """Tuples as lists (the original's config holds lists; JSON requests carry lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _changed(ours, basic, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _plain(getattr(ours, f)) for f in fields if getattr(ours, f) != getattr(basic, f)}


def overrides_for(config) -> dict[str, Any]:
    """The original's overrides for ``config`` (empty for ``basic``; `schema.TINY_OVERRIDES` for ``tiny``)."""
    from audiosr_model import config as cfg

    basic = cfg.basic()
    for section in ("audio", "diffusion"):
        ours, theirs = getattr(config, section), getattr(basic, section)
        moved = [f.name for f in dataclasses.fields(ours)
                 if getattr(ours, f.name) != getattr(theirs, f.name) and f.name != "scale_factor"]
        if moved:
            raise AudioSRError(f"configuration {config.name!r}: {section}.{moved[0]} differs from the released "
                               "model's, which the original hard-codes in its pipeline (only vae, unet and vocoder "
                               "sizes can change)")
    known = set(VAE_DDCONFIG) | {"embed_dim"}
    extra = [f.name for f in dataclasses.fields(config.vae) if f.name not in known]
    if extra:  # a field added to VAEConfig without a home here would silently not reach the original
        raise AudioSRError(f"vae.{extra[0]} has no counterpart in the original's config (config_overrides.py)")
    overrides: dict[str, Any] = {}
    vae = _changed(config.vae, basic.vae, VAE_DDCONFIG)
    if vae:
        overrides["vae_ddconfig"] = vae
    if config.vae.embed_dim != basic.vae.embed_dim:
        overrides["vae_embed_dim"] = config.vae.embed_dim
    unet = _changed(config.unet, basic.unet, UNET_PARAMS)
    if unet:
        overrides["unet"] = unet
    vocoder = _changed(config.vocoder, basic.vocoder, VOCODER_CONFIG)
    if vocoder:
        overrides["vocoder"] = vocoder
    return overrides


def request_overrides(preset: str) -> dict[str, Any] | None:
    """What a runner request for ``preset`` carries besides its name: None for a built-in preset (the runner
    knows them), the overrides of the configuration file otherwise."""
    from audiosr_model import config as cfg

    if preset in BUILTIN_PRESETS:
        return None
    return overrides_for(cfg.preset(preset))


__all__ = ["BUILTIN_PRESETS", "overrides_for", "request_overrides"]
