"""AutoencoderKL of AudioSR, inference only.

A port of the original ``audiosr/latent_encoder/autoencoder.py``,
``audiosr/latent_diffusion/modules/diffusionmodules/model.py`` (Encoder,
Decoder and their blocks) and ``.../distributions/distributions.py``
(DiagonalGaussianDistribution).

Module and parameter names are those of the original, so an original
state_dict (``first_stage_model.*`` / ``cond_stage_models.0.vae.*`` with the
prefix stripped) loads strictly. The arithmetic follows the original op by op;
training-only code (losses, timestep embedding, dropout) is left out: the VAE
never gets a timestep (``temb_ch = 0``) and dropout is the identity in eval.

Shapes: mel ``[B, 1, T, F]`` -> latent ``[B, embed_dim, T / 2**(L-1), F / 2**(L-1)]``
with ``L = len(ch_mult)``; for the released model ``[1,1,512,256] -> [1,16,64,32]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiosr_model.config import VAEConfig
from audiosr_model.nets import inplace

__all__ = [
    "AttnBlock",
    "AutoencoderKL",
    "Decoder",
    "DiagonalGaussian",
    "Downsample",
    "Encoder",
    "ResnetBlock",
    "Upsample",
    "swish",
]


def swish(x: Tensor) -> Tensor:
    """The original ``nonlinearity``: written out as x*sigmoid(x), not F.silu,
    so the rounding is the original's.

    In inference the product is written into the sigmoid's own buffer
    (``s * x`` is ``x * s`` bit for bit): one full-resolution temporary fewer
    at the VAE's widest layers (model/nets/inplace.py).
    """
    s = torch.sigmoid(x)
    return s.mul_(x) if inplace.may_write(s, x) else x * s


def group_norm(channels: int) -> nn.GroupNorm:
    """The original ``Normalize``: 32 groups, eps 1e-6 (not torch's 1e-5)."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def _check_supported(cfg: VAEConfig) -> None:
    # The original Encoder/Decoder swallow `downsample_time` in **kwargs and
    # ignore it; the released configs set it False. Refuse True rather than
    # silently building something a reader might think honours it.
    if cfg.downsample_time:
        raise NotImplementedError("VAEConfig.downsample_time=True is not supported")


class ResnetBlock(nn.Module):
    """Pre-activation residual block without timestep embedding.

    A 1x1 ``nin_shortcut`` projects the input when the width changes (the
    original's ``conv_shortcut`` variant is never enabled by AutoencoderKL).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))  # the original's dropout sits before conv2
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return inplace.add(h, x)  # x + h, into h's buffer where that is safe


class AttnBlock(nn.Module):
    """Single-head self-attention over all H*W positions ("vanilla" attention).

    Computed with two ``bmm`` calls in the original's order and memory layout
    (q^T k, scaled, softmax over keys; then v @ w^T) rather than with
    ``scaled_dot_product_attention``, whose fused kernels round differently.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1, stride=1, padding=0)
        self.k = nn.Conv2d(channels, channels, 1, stride=1, padding=0)
        self.v = nn.Conv2d(channels, channels, 1, stride=1, padding=0)
        self.proj_out = nn.Conv2d(channels, channels, 1, stride=1, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        h_ = self.norm(x)
        q, k, v = self.q(h_), self.k(h_), self.v(h_)
        b, c, h, w = q.shape
        # .contiguous() as in the original: bmm picks its kernel by layout.
        q = q.reshape(b, c, h * w).permute(0, 2, 1).contiguous()  # [b, hw, c]
        k = k.reshape(b, c, h * w)  # [b, c, hw]
        weights = torch.bmm(q, k) * (int(c) ** (-0.5))  # [b, hw_q, hw_k]
        weights = F.softmax(weights, dim=2)
        v = v.reshape(b, c, h * w)
        weights = weights.permute(0, 2, 1).contiguous()  # [b, hw_k, hw_q]
        h_ = torch.bmm(v, weights).reshape(b, c, h, w)  # [b, c, hw_q]
        return x + self.proj_out(h_)


class Downsample(nn.Module):
    """Halve H and W with a stride-2 3x3 conv.

    torch's conv pads symmetrically; the original pads only right and bottom
    (``(0, 1, 0, 1)``) and convolves with padding 0, which samples a different
    grid. Kept as is.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour repeat, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level; an attribute holder named like the original's
    bare ``nn.Module()`` (``block``, ``attn``, ``downsample``/``upsample``)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()  # one AttnBlock per block, or empty

    def run_blocks(self, h: Tensor) -> Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    """The middle: ResnetBlock, AttnBlock, ResnetBlock.

    The attention here is always present, whatever ``attn_resolutions`` says.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, h: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    """Mel ``[B, in_channels, T, F]`` -> moments ``[B, 2*z_channels, T/8, F/8]``
    (for 4 levels; ``z_channels`` only if ``double_z`` is False)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        _check_supported(cfg)
        ch, levels = cfg.ch, len(cfg.ch_mult)
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, stride=1, padding=1)

        in_ch_mult = (1,) + tuple(cfg.ch_mult)
        curr_res = cfg.resolution  # tracked only to place attention like the original
        self.down = nn.ModuleList()
        for i_level in range(levels):
            level = _Level()
            block_in = ch * in_ch_mult[i_level]
            block_out = ch * cfg.ch_mult[i_level]
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if curr_res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != levels - 1:
                level.downsample = Downsample(block_in)
                curr_res //= 2
            self.down.append(level)

        self.mid = _Mid(block_in)
        self.norm_out = group_norm(block_in)
        z_out = 2 * cfg.z_channels if cfg.double_z else cfg.z_channels
        self.conv_out = nn.Conv2d(block_in, z_out, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for i_level, level in enumerate(self.down):
            h = level.run_blocks(h)
            if i_level != len(self.down) - 1:
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent ``[B, z_channels, t, f]`` -> mel ``[B, out_ch, t*8, f*8]`` (4 levels)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        _check_supported(cfg)
        ch, levels = cfg.ch, len(cfg.ch_mult)
        block_in = ch * cfg.ch_mult[-1]
        curr_res = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, stride=1, padding=1)
        self.mid = _Mid(block_in)

        # Built from the lowest resolution up, but stored lowest-index =
        # highest-resolution, as the original does with `insert(0, up)`, so
        # that `up.0` is the level next to the output.
        ups: list[_Level] = []
        for i_level in reversed(range(levels)):
            level = _Level()
            block_out = ch * cfg.ch_mult[i_level]
            for _ in range(cfg.num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if curr_res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != 0:
                level.upsample = Upsample(block_in)
                curr_res *= 2
            ups.insert(0, level)
        self.up = nn.ModuleList(ups)

        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, stride=1, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for i_level in reversed(range(len(self.up))):
            level = self.up[i_level]
            h = level.run_blocks(h)
            if i_level != 0:
                h = level.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class DiagonalGaussian:
    """The posterior ``N(mean, std**2)`` given the encoder's moments.

    Unlike the original ``DiagonalGaussianDistribution.sample()``, which draws
    from torch's global RNG, sampling here needs the noise (or a generator) to
    be handed in, so every random draw is visible to the caller.
    """

    def __init__(self, moments: Tensor):
        self.moments = moments
        self.mean, logvar = torch.chunk(moments, 2, dim=1)
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(
        self, noise: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``mean + std * noise``; give exactly one of ``noise`` or ``generator``.

        With a generator the draw is ``torch.randn(mean.shape, generator=g)``
        on the generator's device, then moved, as the original draws
        ``torch.randn(shape).to(device)``: a CPU generator seeded like the
        global RNG reproduces the original's sample.
        """
        if (noise is None) == (generator is None):
            raise TypeError("DiagonalGaussian.sample needs exactly one of noise or generator")
        if noise is None:
            noise = torch.randn(self.mean.shape, generator=generator, device=generator.device)
        if noise.shape != self.mean.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} != latent shape {tuple(self.mean.shape)}")
        return self.mean + self.std * noise.to(self.mean.device)

    def mode(self) -> Tensor:
        return self.mean


class AutoencoderKL(nn.Module):
    """The VAE with the original's submodule names.

    ``with_encoder=False`` drops ``encoder``/``quant_conv`` (the first-stage
    VAE only decodes at inference); ``with_decoder=False`` drops
    ``decoder``/``post_quant_conv`` (the condition VAE only encodes). The
    original always owns a HiFi-GAN as ``vocoder``; pass one to keep its
    ``vocoder.*`` keys, or None to leave it out.
    """

    def __init__(
        self,
        cfg: VAEConfig,
        with_encoder: bool = True,
        with_decoder: bool = True,
        vocoder: nn.Module | None = None,
    ):
        super().__init__()
        if not cfg.double_z:
            # The original asserts double_z: the encoder must emit mean and logvar.
            raise NotImplementedError("AutoencoderKL needs VAEConfig.double_z=True")
        self.cfg = cfg
        if with_encoder:
            self.encoder = Encoder(cfg)
            self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.embed_dim, 1)
        if with_decoder:
            self.decoder = Decoder(cfg)
            self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        if vocoder is not None:
            self.vocoder = vocoder

    def encode(self, mel: Tensor) -> DiagonalGaussian:
        """Mel ``[B, 1, T, F]`` -> posterior over latents ``[B, embed_dim, T/8, F/8]``."""
        if not hasattr(self, "encoder"):
            raise RuntimeError("this AutoencoderKL was built with_encoder=False")
        return DiagonalGaussian(self.quant_conv(self.encoder(mel)))

    def decode(self, z: Tensor) -> Tensor:
        """Latent ``[B, embed_dim, t, f]`` -> mel ``[B, 1, 8t, 8f]``."""
        if not hasattr(self, "decoder"):
            raise RuntimeError("this AutoencoderKL was built with_decoder=False")
        return self.decoder(self.post_quant_conv(z))
