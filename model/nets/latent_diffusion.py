"""The AudioSR network: every weight inference uses, under the original's names.

Attribute names reproduce the original `LatentDiffusion` so that state_dict
keys are identical to the released checkpoint's:

- ``model.diffusion_model.*``            the UNet (inside `DiffusionWrapper`)
- ``first_stage_model.{encoder,quant_conv,decoder,post_quant_conv,vocoder}.*``
- ``cond_stage_models.0.vae.{encoder,quant_conv}.*``  the condition encoder
- the 12 schedule buffers and ``scale_factor``

What the original also holds but inference never uses (EMA copy, CLAP, the
condition VAE's decoder and vocoder, ``logvar``) is not built here; the
checkpoint loader declares those keys as ignored, with reasons.

Each stage is a method with tensors in and out, so tests and the parity
harness can call one stage alone.
"""

from __future__ import annotations

import torch
from torch import nn

from audiosr_model.config import ModelConfig
from audiosr_model.nets.unet import UNetModel
from audiosr_model.nets.vae import AutoencoderKL, DiagonalGaussian
from audiosr_model.nets.vocoder import Generator
from audiosr_model.sampling.ddim import VPrediction
from audiosr_model.sampling.schedule import SCHEDULE_BUFFERS, schedule_buffers


class DiffusionWrapper(nn.Module):
    """Holds the UNet under the name the checkpoint uses (``model.diffusion_model``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.diffusion_model = UNetModel(config.unet)


class VAEFeatureExtract(nn.Module):
    """The condition encoder: a second VAE of which only the encoder is used."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.vae = AutoencoderKL(config.vae, with_encoder=True, with_decoder=False)


class LatentDiffusion(nn.Module):
    def __init__(self, config: ModelConfig, with_first_stage_encoder: bool = True):
        super().__init__()
        self.config = config
        self.model = DiffusionWrapper(config)
        self.first_stage_model = AutoencoderKL(
            config.vae,
            with_encoder=with_first_stage_encoder,
            with_decoder=True,
            vocoder=Generator(config.vocoder),
        )
        self.cond_stage_models = nn.ModuleList([VAEFeatureExtract(config)])
        for name, value in schedule_buffers(config.diffusion).items():
            self.register_buffer(name, value)
        self.register_buffer(
            "scale_factor", torch.tensor(float(config.diffusion.scale_factor), dtype=torch.float32, device="cpu")
        )

    # ------------------------------------------------------------------ stages
    @property
    def unet(self) -> UNetModel:
        return self.model.diffusion_model

    @property
    def condition_vae(self) -> AutoencoderKL:
        return self.cond_stage_models[0].vae

    def vprediction(self) -> VPrediction:
        return VPrediction(self.sqrt_alphas_cumprod, self.sqrt_one_minus_alphas_cumprod)

    def condition_posterior(self, lowpass_mel: torch.Tensor) -> DiagonalGaussian:
        """Posterior of the condition VAE for a low-pass log-mel [B, 1, T, F]."""
        return self.condition_vae.encode(lowpass_mel)

    def latent_shape(self, mel_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Latent shape for a mel of shape [B, 1, T, F] (what the first-stage encoder gives)."""
        down = self.config.latent_downsample
        b, _, t, f = mel_shape
        return (b, self.config.vae.embed_dim, t // down, f // down)

    def unconditional_latent(self, like: torch.Tensor) -> torch.Tensor:
        """The original's unconditional condition: a constant latent (-11.4981).

        The original builds it as ``-11.4981 + embed * 0.0``, which would turn
        NaN/Inf in the embedding into NaN; a plain constant does not.
        """
        return torch.full_like(like, self.config.diffusion.unconditional_constant)

    def unet_forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One UNet call on x concatenated with the UNSCALED condition latent.

        The original's `DiffusionWrapper` multiplies the concat condition by
        ``scale_factor`` before concatenating; so does this.
        """
        return self.unet(torch.cat([x, cond * self.scale_factor], dim=1), t)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent [B, 16, T/8, F/8] -> log-mel [B, 1, T, F] (divides by scale_factor)."""
        return self.first_stage_model.decode(latent / self.scale_factor)

    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, T, F] -> waveform [B, 1, 480 * T + 16] at 48 kHz."""
        return self.first_stage_model.vocoder(mel.squeeze(1).transpose(1, 2))

    def share_identical_encoders(self) -> bool:
        """Point the first-stage encoder at the condition encoder when their weights are equal.

        The released checkpoints carry two copies of the same VAE encoder;
        keeping one saves memory. Returns True when they were shared.
        """
        first = self.first_stage_model
        if not hasattr(first, "encoder"):
            return False
        cond = self.condition_vae
        a, b = first.encoder.state_dict(), cond.encoder.state_dict()
        same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        same = same and torch.equal(first.quant_conv.weight, cond.quant_conv.weight)
        same = same and torch.equal(first.quant_conv.bias, cond.quant_conv.bias)
        if same:
            first.encoder = cond.encoder
            first.quant_conv = cond.quant_conv
        return same


def inference_keys() -> tuple[str, ...]:
    return SCHEDULE_BUFFERS + ("scale_factor",)
