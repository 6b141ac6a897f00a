"""The latent-diffusion UNet of AudioSR (``model.diffusion_model``), inference only.

A port of ``audiosr/latent_diffusion/modules/diffusionmodules/openaimodel.py``
(``UNetModel``), ``attention.py`` (``SpatialTransformer``) and
``diffusionmodules/util.py`` restricted to the path AudioSR inference takes:

- the condition (low-pass latent) is concatenated to the input, so there is no
  cross-attention context: ``DiffusionWrapper`` passes ``context_list=[]`` and
  ``y=None``; every ``SpatialTransformer`` therefore runs with ``context=None``;
- ``use_spatial_transformer=True``, ``num_head_channels`` set, ``legacy=True``,
  ``conv_resample=True``, ``resblock_updown=False``, ``use_scale_shift_norm=False``,
  ``dims=2``, float32.

Submodule names (and registration order) are those of the original, so a
checkpoint's ``model.diffusion_model.*`` keys load strictly.

Where the attention layers are (per attention resolution, and in the middle):
``[ResBlock, SpatialTransformer (extra_sa_layer), SpatialTransformer (the
"context" one, context_dim=None)]``. With no context, both transformers are pure
self-attention, and inside each ``BasicTransformerBlock`` both ``attn1`` and
``attn2`` attend to the block's own (normalised) tokens. ``attn2.to_k``/``to_v``
were built with ``context_dim=None`` and therefore take ``inner_dim`` inputs;
every weight in the state dict is used at inference, none is dead. Those
layers (and the ``math``/``sdpa`` switch) are `audiosr_model.nets.attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiosr_model.config import UNetConfig
from audiosr_model.nets.attention import SpatialTransformer

__all__ = ["UNetModel", "timestep_embedding"]


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of (possibly fractional) timesteps [B].

    Same op order as the original: frequencies in float32, ``cos`` half first,
    then ``sin``; a zero column pads an odd ``dim``.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
    ).to(device=timesteps.device)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32, C) computed in float32 whatever the input dtype (util.py)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)  # eps 1e-5 (torch default), as the original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class ResBlock(nn.Module):
    """Residual block conditioned additively on the timestep embedding."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(
            GroupNorm32(channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Identity(),  # the original's Dropout; kept so the conv stays at index 3
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        if out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (conv_resample=True)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.Sequential):
    """Sequential that hands the timestep embedding to its ResBlocks only."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


def _attention_layers(cfg: UNetConfig, ch: int) -> list[nn.Module]:
    """The transformers placed after a ResBlock at an attention resolution.

    Head split as the original with ``legacy=True``: ``num_heads = ch //
    num_head_channels`` and ``dim_head = ch // num_heads``. The original appends
    one optional extra self-attention transformer plus one per context_dim entry;
    context_dim is None, i.e. ``[None]``, giving exactly one more.
    """
    num_heads = ch // cfg.num_head_channels
    dim_head = ch // num_heads
    count = (1 if cfg.extra_sa_layer else 0) + 1
    return [
        SpatialTransformer(ch, num_heads, dim_head, depth=cfg.transformer_depth)
        for _ in range(count)
    ]


class UNetModel(nn.Module):
    """AudioSR's diffusion UNet: ``forward(x [B, in, T, F], timesteps [B]) -> [B, out, T, F]``.

    ``T`` and ``F`` must be multiples of ``2 ** (len(channel_mult) - 1)`` (the
    skip connections are concatenated after each 2x upsampling).
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        if not cfg.use_spatial_transformer:
            raise NotImplementedError("UNet without spatial transformer (AttentionBlock) is not used by AudioSR")
        if cfg.num_head_channels <= 0:
            raise NotImplementedError("num_heads-based head split (num_head_channels=-1) is not used by AudioSR")
        self.cfg = cfg
        self.model_channels = cfg.model_channels
        mc = cfg.model_channels
        time_embed_dim = mc * 4
        self.time_embed = nn.Sequential(
            nn.Linear(mc, time_embed_dim), nn.SiLU(), nn.Linear(time_embed_dim, time_embed_dim)
        )

        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))]
        )
        input_block_chans = [mc]
        ch, ds = mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, time_embed_dim, mult * mc)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += _attention_layers(cfg, ch)
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                input_block_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                input_block_chans.append(ch)
                ds *= 2

        # The middle block always has attention, whatever attention_resolutions says.
        self.middle_block = TimestepEmbedSequential(
            ResBlock(ch, time_embed_dim),
            *_attention_layers(cfg, ch),
            ResBlock(ch, time_embed_dim),
        )

        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                ich = input_block_chans.pop()
                layers = [ResBlock(ch + ich, time_embed_dim, mc * mult)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers += _attention_layers(cfg, ch)
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            GroupNorm32(ch),
            nn.SiLU(),
            nn.Conv2d(mc, cfg.out_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Predict the diffusion target (v for AudioSR) for latents ``x`` at ``timesteps``."""
        factor = 2 ** (len(self.cfg.channel_mult) - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"UNet input {tuple(x.shape)}: T and F must be multiples of {factor}")
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        hs = []
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
