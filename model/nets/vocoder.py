"""HiFi-GAN generator of AudioSR (the 48 kHz vocoder), inference only.

A port of ``Generator`` in the original ``audiosr/hifigan/models.py`` (the
class the original instantiates as ``Generator_old``; ``models_v2`` is not
used). The original wraps every conv in ``weight_norm`` and calls
``remove_weight_norm()`` at construction, so checkpoints hold plain
``.weight``/``.bias`` keys; here the convs are plain from the start.
``load_weight_norm_state`` folds ``weight_g``/``weight_v`` pairs of a raw
HiFi-GAN checkpoint into such keys.

Shapes: mel ``[B, num_mels, frames]`` -> waveform ``[B, 1, samples]`` in
[-1, 1], with ``samples = hop * frames + 16`` for the 48 kHz upsample rates
(245,776 for 512 frames): see ``output_length``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiosr_model.config import VocoderConfig
from audiosr_model.errors import AudioSRError
from audiosr_model.nets import inplace

__all__ = [
    "LRELU_SLOPE",
    "Generator",
    "ResBlock1",
    "load_weight_norm_state",
    "output_length",
]

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a dilated odd-sized kernel."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each a residual step.

    The original ``ResBlock`` of models.py: ``convs1`` carry the dilations,
    ``convs2`` have dilation 1.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size, 1))
            for _ in dilation
        )

    def forward(self, x: Tensor) -> Tensor:
        # The in-place steps write only into this block's own temporaries and
        # give the original's bits (model/nets/inplace.py): they keep the stage's
        # peak memory a few 47 MB tensors lower at the 48 kHz end.
        own = inplace.allowed()
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE, inplace=own))
            x = inplace.add(xt, x)
        return x


class Generator(nn.Module):
    """HiFi-GAN V1 generator: conv_pre, (leaky ReLU, transposed conv, mean of
    the multi-receptive-field resblocks) per upsample stage, conv_post, tanh."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        if cfg.resblock != "1":
            # models.py has only ResBlock (V1) and ignores `resblock`; refuse
            # a config asking for something the original would not build.
            raise NotImplementedError(f"HiFi-GAN resblock type {cfg.resblock!r}: only '1' exists in the original")
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.num_upsamples = len(cfg.upsample_rates)
        init_ch = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, init_ch, 7, 1, padding=3)

        # padding (k-u)//2 and NO output_padding, exactly as the original: for
        # odd k-u (the 5x stage, k=10) the stage yields u*L + 1 samples, which
        # is where the extra samples beyond hop*frames come from. The
        # released weights were trained with these lengths; do not "fix" them.
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(init_ch // 2**i, init_ch // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))
        )

        # Flat list, stage-major: resblocks[i * num_kernels + j].
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = init_ch // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(ch, k, tuple(d)))

        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        """Mel ``[B, num_mels, frames]`` (log-mel, as the VAE decodes it) -> ``[B, 1, samples]``."""
        own = inplace.allowed()  # in-place only on this forward's own temporaries
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE, inplace=own))
            # Summed in resblock order, then divided: the original's rounding.
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = inplace.add(xs, self.resblocks[i * self.num_kernels + j](x))
            x = xs.div_(self.num_kernels) if own else xs / self.num_kernels
        # The last leaky ReLU uses torch's default slope 0.01, not LRELU_SLOPE,
        # as in the original.
        x = self.conv_post(F.leaky_relu(x, inplace=own))
        return torch.tanh(x)  # one channel: nothing to gain in place


def output_length(cfg: VocoderConfig, frames: int) -> int:
    """Samples the generator returns for ``frames`` mel frames.

    ConvTranspose1d gives ``(L - 1) * u - 2 * ((k - u) // 2) + k`` per stage.
    """
    length = frames
    for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
        length = (length - 1) * u - 2 * ((k - u) // 2) + k
    return length


_WN_SUFFIXES = (
    # torch.nn.utils.weight_norm (what the original used)
    (".weight_g", ".weight_v"),
    # torch.nn.utils.parametrizations.weight_norm (newer torch)
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)


def load_weight_norm_state(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fold weight-norm pairs ``(g, v)`` into plain ``weight`` tensors.

    ``w = g * v / ||v||`` with the norm over every dim but 0, which is what
    ``weight_norm(dim=0)`` (the original's default, also for the transposed
    convs, whose dim 0 is the *input* channel) and ``remove_weight_norm``
    compute; ``torch._weight_norm`` is that same kernel, so the result is
    bit-identical to the original's. Other keys pass through unchanged.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for g_suffix, v_suffix in _WN_SUFFIXES:
            if key.endswith(g_suffix):
                prefix = key[: -len(g_suffix)]
                if prefix + v_suffix not in state_dict:
                    raise AudioSRError(f"{key} has no matching {prefix + v_suffix}")
                out[prefix + ".weight"] = torch._weight_norm(state_dict[prefix + v_suffix], value, 0)
                break
            if key.endswith(v_suffix):
                prefix = key[: -len(v_suffix)]
                if prefix + g_suffix not in state_dict:
                    raise AudioSRError(f"{key} has no matching {prefix + g_suffix}")
                break  # folded when its g is met
        else:
            out[key] = value
    return out
