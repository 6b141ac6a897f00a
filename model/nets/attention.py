"""Self-attention of the UNet (``attention.py`` of the original): `Attention`, the transformer blocks around it,
and the switch between its two backends (`set_attention`: ``math`` as the original, ``sdpa`` fused).

AudioSR passes no cross-attention context, so every layer here attends to its
own tokens; see `audiosr_model.nets.unet` for where the layers sit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ATTENTION_BACKENDS", "Attention", "BasicTransformerBlock", "FeedForward", "GEGLU", "SpatialTransformer",
           "set_attention"]


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
