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
every weight in the state dict is used at inference, none is dead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiosr_model.config import UNetConfig

__all__ = ["ATTENTION_BACKENDS", "UNetModel", "set_attention", "timestep_embedding"]


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


class Attention(nn.Module):
    """Multi-head attention of attention.py's ``CrossAttention``, always used as
    self-attention here (AudioSR passes no context).

    Same arithmetic as the original: ``(q @ k^T) * dim_head**-0.5`` then softmax
    in the tensor's dtype (float32 for AudioSR; the original does not upcast here).
    """

    backend = "math"  # or "sdpa": see `set_attention`

    def __init__(self, query_dim: int, heads: int, dim_head: int):
        super().__init__()
        inner_dim = dim_head * heads
        self.scale = dim_head**-0.5
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        # context_dim is None in AudioSR, so keys/values read query_dim features.
        self.to_k = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(query_dim, inner_dim, bias=False)
        # Index 0 is the Linear; the original's Dropout (index 1) has no weights.
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim))

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """[B, N, H*D] -> [B*H, N, D] (einops 'b n (h d) -> (b h) n d')."""
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3).reshape(b * self.heads, n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend == "sdpa":
            return self._forward_sdpa(x)
        b, n, _ = x.shape
        q = self._split_heads(self.to_q(x))
        k = self._split_heads(self.to_k(x))
        v = self._split_heads(self.to_v(x))
        sim = torch.einsum("bid,bjd->bij", q, k) * self.scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bij,bjd->bid", attn, v)
        out = out.reshape(b, self.heads, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)

    def _forward_sdpa(self, x: torch.Tensor) -> torch.Tensor:
        """The same attention through ``F.scaled_dot_product_attention`` (fused; equal within rounding)."""
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, N, H*D] -> [B, H, N, D]
            return t.reshape(b, n, self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.to_q(x)), heads(self.to_k(x)), heads(self.to_v(x)),
                                             scale=self.scale)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


ATTENTION_BACKENDS = ("math", "sdpa")


def set_attention(module: nn.Module, backend: str) -> int:
    """Switch every `Attention` under ``module`` to ``backend``; how many were switched.

    ``math`` (the default) is the original's arithmetic op for op;
    ``sdpa`` calls ``torch.nn.functional.scaled_dot_product_attention`` with
    the same scale: the same function, computed fused (flash attention where
    the device has it), so it differs from ``math`` only by float rounding.
    """
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"attention backend {backend!r}: use {' or '.join(ATTENTION_BACKENDS)}")
    count = 0
    for m in module.modules():
        if isinstance(m, Attention):
            m.backend = backend
            count += 1
    return count


class GEGLU(nn.Module):
    """Gated GELU projection: ``a * gelu(gate)`` with ``a, gate`` from one Linear."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward with 4x inner width (gated_ff=True)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner_dim = int(dim * mult)
        # Identity stands for the original's Dropout so the output Linear is net.2.
        self.net = nn.Sequential(GEGLU(dim, inner_dim), nn.Identity(), nn.Linear(inner_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm transformer block: self-attn, (context-free) attn2, feed-forward."""

    def __init__(self, dim: int, n_heads: int, d_head: int):
        super().__init__()
        # Registration order as the original (attn1, ff, attn2, norms) keeps the
        # state_dict order identical.
        self.attn1 = Attention(dim, n_heads, d_head)
        self.ff = FeedForward(dim)
        # "Cross"-attention in the original; with context=None it attends to x.
        self.attn2 = Attention(dim, n_heads, d_head)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x)) + x
        x = self.ff(self.norm3(x)) + x
        return x


class SpatialTransformer(nn.Module):
    """GroupNorm, 1x1 in-projection, transformer over the T*F tokens, 1x1 out."""

    def __init__(self, in_channels: int, n_heads: int, d_head: int, depth: int = 1):
        super().__init__()
        inner_dim = n_heads * d_head
        # attention.py's Normalize: plain GroupNorm with eps 1e-6, no float32 cast.
        self.norm = nn.GroupNorm(num_groups=32, num_channels=in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner_dim, n_heads, d_head) for _ in range(depth)]
        )
        self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x_in = x
        x = self.proj_in(self.norm(x))
        c = x.shape[1]
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # b c h w -> b (h w) c
        for block in self.transformer_blocks:
            x = block(x)
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2)  # b (h w) c -> b c h w
        return self.proj_out(x) + x_in


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
