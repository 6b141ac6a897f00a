"""Porting faults as subjects: the reference with ONE realistic mistake each (``fault:NAME``).

Each fault says which stage of the schema should catch it first (the earliest
stage that can see it) and, where the stage has modules, which module first
departs. tests/test_injected_faults.py asserts both through the protocol, the
way a port's own CI would see them. A few faults live in the product around
the model (channels kept, silence, the preserve level), code that no stage of
the schema runs: their stage is None, and only the goldens can see them
(``audiosr-verify golden check --subject fault:NAME`` runs the product with the
fault, `FaultSubject.product`; tests/test_golden_faults.py).

A fault changes the subject's network once (``net``: an attribute of a layer,
a constant) or swaps a function of `audiosr_model` while the subject's stage
calls run (``patch``: module, attribute, replacement), so every stage that
uses the changed piece, `enhance` included, sees it. A patched function is also
swapped in every `audiosr_model` module that imported it by name (``from ...
import f``), so the product's own paths (chunks, channels) run the fault too. The faulty code itself
(a mel front end with another padding, a UNet forward with the skip
connection first...) is in `fault_variants`, one ``# FAULT:`` line each.

The catalogue is the harness's measured sensitivity: `python
benchmarks/bench_stage_margins.py` prints the error each fault makes at the
stage that catches it, next to that stage's tolerance (the table in docs/faults.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.schema import STAGE_NAMES
from audiosr_verify.subject import SubjectContext
from audiosr_verify.subjects import fault_variants as V
from audiosr_verify.subjects.reference import ReferenceSubject


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    stage: str | None  # the schema stage expected to catch it first; None: no stage runs it (the product's code)
    module: str | None = None  # the module expected to diverge first (stages with modules)
    net: Callable[[Any], None] | None = None
    patches: tuple[tuple[str, str, Callable[[Any], Any]], ...] = field(default_factory=tuple)  # (module, attr, f(old))


def _set_eps(prefix: str, eps: float, kind: type = torch.nn.GroupNorm) -> Callable[[Any], None]:
    def apply(net) -> None:
        n = 0
        for name, m in net.named_modules():
            if name.startswith(prefix) and isinstance(m, kind):
                m.eps, n = eps, n + 1
        assert n, f"no {kind.__name__} under {prefix}"

    return apply



def _vocoder_output_padding(net) -> None:
    ups1 = net.first_stage_model.vocoder.ups[1]  # the rate-5 layer, where (k - u) is odd
    ups1.output_padding = (1,)


def _vocoder_padding_rounded_up(net) -> None:
    ups1 = net.first_stage_model.vocoder.ups[1]  # (k - u + 1) // 2 = 3 where the original has (k - u) // 2 = 2
    ups1.padding = (3,)


def _vocoder_last_frame_dropped(net) -> None:
    net.vocode = V.vocode_dropping_last_frame(net)


def _unconditional_constant(net) -> None:
    net.unconditional_latent = lambda like: torch.full_like(like, -11.0)


def _timesteps_minus_one(old):
    return lambda n, total=1000: old(n, total) - 1


def _attention_scale_inner_dim(net) -> None:
    from audiosr_model.nets.attention import Attention

    for m in net.modules():
        if isinstance(m, Attention):
            m.scale = m.to_q.out_features ** -0.5  # 1/sqrt(inner_dim = heads * dim_head), not 1/sqrt(dim_head)


def _softmax_over_queries(net) -> None:
    from audiosr_model.nets.attention import Attention

    V.bind_on(net, Attention, "forward", V.attention_forward(softmax_dim=-2))


def _scale_factor_ignored(net) -> None:
    net.scale_factor.fill_(1.0)  # the checkpoint's scale_factor buffer (0.5 in the fixtures) not loaded


def _decoder_without_scale_factor(net) -> None:
    net.decode = lambda latent: net.first_stage_model.decode(latent)  # no division by scale_factor


def _epsilon_prediction(net) -> None:
    net.vprediction = lambda: V.EpsilonPrediction(net.sqrt_alphas_cumprod, net.sqrt_one_minus_alphas_cumprod)


def _schedule_in_float32(net) -> None:
    for name, value in V.float32_schedule_buffers(net.config.diffusion).items():
        getattr(net, name).copy_(value)


def _skip_connection_first(net) -> None:
    import types

    net.unet.forward = types.MethodType(V.unet_forward_skip_first, net.unet)


def _upsample_bilinear(net) -> None:
    from audiosr_model.nets.unet import Upsample

    V.bind_on(net.unet, Upsample, "forward", V.upsample_forward("bilinear"))


def _condition_first(net) -> None:
    net.unet_forward = V.unet_forward_condition_first(net)


def _weight_norm_unfolded(net) -> None:
    V.unfold_weight_norm(net.first_stage_model.vocoder)


def _both(module: str, attr: str, make) -> tuple[tuple[str, str, Callable[[Any], Any]], ...]:
    """The same replacement in ``module`` and in `audiosr_model.pipeline`, which imports ``attr`` by name."""
    return ((module, attr, make), ("audiosr_model.pipeline", attr, make))


def _eta_zero(old):
    return lambda alphas_cumprod, num_steps, eta: old(alphas_cumprod, num_steps, 0.0)


_UNET = "model.diffusion_model"
_VOC = "first_stage_model.vocoder"

FAULTS: dict[str, Fault] = {f.name: f for f in (
    # ---- DSP front end
    Fault("resampler_kernel", "scipy resample_poly (Kaiser FIR) instead of torchaudio's Hann-windowed sinc",
          "resample", patches=(("audiosr_model.dsp.resample", "resample", lambda old: V.resample_polyphase),)),
    Fault("skipped_normalization", "input not normalised to peak 0.5 before analysis", "normalize",
          patches=(("audiosr_model.dsp.level", "normalize_input", lambda old: (lambda x: x)),)),
    Fault("stft_pad_constant", "mel STFT padded with zeros instead of reflect padding", "features",
          patches=(("audiosr_model.dsp.features", "mel_spectrogram",
                    lambda old: V.mel_spectrogram_variant(pad_mode="constant")),)),
    Fault("stft_centered", "mel STFT with center=True (n_fft/2 padding) instead of the original's (n_fft-hop)/2 "
          "by hand and center=False", "features",
          patches=(("audiosr_model.dsp.features", "mel_spectrogram", lambda old: V.mel_spectrogram_variant(center=True)),)),
    Fault("window_symmetric", "symmetric Hann window (periodic=False) in the mel STFT", "features",
          patches=(("audiosr_model.dsp.features", "mel_spectrogram",
                    lambda old: V.mel_spectrogram_variant(periodic=False)),)),
    Fault("mel_htk", "HTK mel filterbank without area norm (torchaudio's default) instead of librosa's Slaney",
          "features", patches=(("audiosr_model.dsp.features", "_mel_basis_torch", lambda old: V.htk_mel_basis),)),
    Fault("cutoff_percentile", "cutoff detection at 97 % of the energy (utils.py's default) instead of 98.5 %",
          "cutoff", patches=(("audiosr_model.dsp.lowpass", "locate_cutoff_bin", V.cutoff_with_percentile(0.97)),
                             ("audiosr_model.dsp.postprocess", "locate_cutoff_bin", V.cutoff_with_percentile(0.97)))),
    Fault("lowpass_order", "low-pass filter of order 4 instead of 8", "lowpass",
          patches=(("audiosr_model.dsp.lowpass", "lowpass_or_passthrough", V.lowpass_with_order(4)),)),
    Fault("filter_types_sorted", "filter type drawn from a sorted list (bessel, butter, cheby1, ellip): the same "
          "seed picks another filter", "randomness",
          patches=(("audiosr_model.dsp.lowpass", "FILTER_TYPES", lambda old: tuple(sorted(old))),)),
    # ---- condition encoder
    Fault("vae_groupnorm_eps", "condition VAE GroupNorm eps 1e-5 (torch's default) instead of 1e-6",
          "condition_encode", "cond_stage_models.0.vae.encoder.down.0.block.0.norm1",
          net=_set_eps("cond_stage_models.0.vae", 1e-5)),
    # ---- UNet
    Fault("unet_groupnorm_eps", "UNet GroupNorm eps 1e-6 (copied from the VAE) instead of 1e-5", "unet",
          f"{_UNET}.input_blocks.1.0.in_layers.0", net=_set_eps(_UNET, 1e-6)),
    Fault("unet_layernorm_eps", "UNet transformer LayerNorm eps 1e-12 (BERT's) instead of torch's 1e-5", "unet",
          f"{_UNET}.input_blocks.3.1.transformer_blocks.0.norm1", net=_set_eps(_UNET, 1e-12, torch.nn.LayerNorm)),
    Fault("attention_scale", "attention logits scaled by 1/sqrt(inner_dim) instead of 1/sqrt(dim_head)", "unet",
          f"{_UNET}.input_blocks.3.1.transformer_blocks.0.attn1.to_out.0", net=_attention_scale_inner_dim),
    Fault("softmax_axis", "attention softmax over the queries (dim=-2) instead of the keys", "unet",
          f"{_UNET}.input_blocks.3.1.transformer_blocks.0.attn1.to_out.0", net=_softmax_over_queries),
    Fault("scale_factor_ignored", "the checkpoint's scale_factor not loaded (1.0): condition latent not scaled",
          "unet", f"{_UNET}.input_blocks.0.0", net=_scale_factor_ignored),
    Fault("condition_concat_order", "condition concatenated before x (channels 0-15) instead of after", "unet",
          f"{_UNET}.input_blocks.0.0", net=_condition_first,
          patches=_both("audiosr_model.sampling.ddim", "guided_denoiser", V.guided_denoiser_variant(condition_first=True))),
    Fault("skip_connection_order", "UNet skip connection concatenated before the upsampled features", "unet",
          f"{_UNET}.output_blocks.0.0.in_layers.0", net=_skip_connection_first),
    Fault("upsample_bilinear", "UNet upsampling bilinear instead of nearest", "unet",
          f"{_UNET}.output_blocks.1.3.conv", net=_upsample_bilinear),
    # ---- sampler
    Fault("ddim_timesteps_offset", "DDIM timesteps shifted by -1 (0-based instead of the original's +1)",
          "ddim_schedule", patches=(("audiosr_model.sampling.schedule", "ddim_timesteps", _timesteps_minus_one),)),
    Fault("ddim_eta_zero", "DDIM with eta 0 (deterministic) instead of the original's eta 1: sigma_t = 0",
          "ddim_schedule", patches=_both("audiosr_model.sampling.schedule", "make_ddim_schedule", _eta_zero)),
    Fault("schedule_float32", "cosine noise schedule computed in float32 instead of float64", "ddim_schedule",
          net=_schedule_in_float32),
    Fault("unconditional_constant", "unconditional condition -11.0 instead of -11.4981", "ddim_step",
          f"{_UNET}.input_blocks.0.0", net=_unconditional_constant),
    Fault("guidance_branches_swapped", "classifier-free guidance with the conditional and unconditional "
          "latents swapped", "ddim_step", f"{_UNET}.input_blocks.0.0",
          patches=_both("audiosr_model.sampling.ddim", "guided_denoiser", V.guided_denoiser_variant(swap_branches=True))),
    Fault("guidance_formula", "guidance cond + s (cond - uncond) instead of uncond + s (cond - uncond)",
          "ddim_step", patches=_both("audiosr_model.sampling.ddim", "guided_denoiser",
                                     V.guided_denoiser_variant(conditional_base=True))),
    Fault("epsilon_prediction", "UNet output read as epsilon (the LDM default) instead of v", "ddim_step",
          net=_epsilon_prediction),
    # ---- decoder, mel replacement, vocoder, post-processing
    Fault("decoder_scale_factor", "latent decoded without dividing by scale_factor", "vae_decode",
          "first_stage_model.post_quant_conv", net=_decoder_without_scale_factor),
    Fault("mel_replace_inclusive", "mel replacement of bins [:cutoff + 1] (one bin too many)", "mel_replace",
          patches=(("audiosr_model.dsp.postprocess", "mel_replace", lambda old: V.mel_replace_inclusive),)),
    Fault("vocoder_output_padding", "HiFi-GAN rate-5 upsampler with output_padding=1 (a hand-written layer list)",
          "vocoder", f"{_VOC}.ups.1", net=_vocoder_output_padding),
    Fault("vocoder_padding", "HiFi-GAN rate-5 upsampler with padding (k - u + 1) // 2 = 3 instead of 2",
          "vocoder", f"{_VOC}.ups.1", net=_vocoder_padding_rounded_up),
    # the stage check's input leaves the last frame in the padding, whose vocoder output is near silent: within
    # the vocoder's tolerance; the energy ratio of the post-processing is the first to move (measured)
    Fault("vocoder_last_frame_dropped", "HiFi-GAN given T - 1 mel frames (an off-by-one), its output zero-padded "
          "to the expected length", "postprocess", net=_vocoder_last_frame_dropped),
    Fault("weight_norm_unfolded", "HiFi-GAN weight norm not folded: the direction v used with g = 1", "vocoder",
          f"{_VOC}.conv_pre", net=_weight_norm_unfolded),
    Fault("leaky_relu_slope", "HiFi-GAN leaky ReLU slope 0.2 (MelGAN's) instead of 0.1", "vocoder",
          f"{_VOC}.ups.0", patches=(("audiosr_model.nets.vocoder", "LRELU_SLOPE", lambda old: 0.2),)),
    Fault("energy_ratio_unclamped", "STFT replacement without the original's [0.8, 1.2] clamp of the energy ratio",
          "postprocess",
          patches=(("audiosr_model.dsp.postprocess", "_energy_ratio", lambda old: V.energy_ratio_unclamped),)),
    # ---- the product around the model: no stage of the schema runs this code; the goldens see it
    Fault("silence_gate_60db", "silence judged at -60 dBFS (a common gate) instead of -100 dBFS: a quiet channel "
          "comes back as digital silence", None,
          patches=(("audiosr_model.dsp.level", "is_silent", V.silence_gate(-60.0)),)),
    Fault("preserve_level_peak", "preserve level matching the input's sample peak instead of its RMS", None,
          patches=(("audiosr_model.dsp.level", "preserve_output", lambda old: V.preserve_output_by_peak),)),
    Fault("channel_batch_draws", "channels enhanced in one batch each drawn their own noise instead of their "
          "mono run's", None,
          patches=(("audiosr_model.audio_channels", "_same_draw", lambda old: V.independent_channel_draws),)),
)}


class FaultSubject(ReferenceSubject):
    """The reference with one `Fault` applied."""

    def __init__(self, fault: Fault, context: SubjectContext | None = None, net=None, preset: str = "tiny"):
        super().__init__(context, net, preset)
        self.fault = fault
        self.name = f"fault:{fault.name}"
        self.description = fault.description
        for stage in STAGE_NAMES:
            setattr(self, stage, self._patched(getattr(self, stage)))

    def activate(self) -> None:
        super().activate()
        if self.fault.net is not None:
            self.fault.net(self.net)

    @contextlib.contextmanager
    def _patches(self):
        import importlib
        import sys

        saved = []
        try:
            named = {(module, attr) for module, attr, _ in self.fault.patches}
            for module, attr, make in self.fault.patches:
                mod = importlib.import_module(module)
                old = getattr(mod, attr)
                new = make(old)
                saved.append((mod, attr, old))
                setattr(mod, attr, new)
                # the same object imported by name elsewhere (long_audio's `resample`, the `sampling`
                # package's re-exports, the one-release shims at the old paths): swapped too, unless the
                # fault names that module itself
                for other_name, other in list(sys.modules.items()):
                    if (other_name.startswith("audiosr_model.") and (other_name, attr) not in named
                            and getattr(other, attr, None) is old):
                        saved.append((other, attr, old))
                        setattr(other, attr, new)
            yield
        finally:
            for mod, attr, old in reversed(saved):
                setattr(mod, attr, old)

    @contextlib.contextmanager
    def product(self):
        """Our product (`audiosr_model.long_audio.enhance_file` on the network this yields) with the fault in
        force: what ``audiosr-verify golden check --subject fault:NAME`` runs, with every case's options,
        against our own goldens."""
        with self._patches():
            yield self.net

    def _patched(self, method):
        def call(*args, **kwargs):
            with self._patches():
                return method(*args, **kwargs)

        call.__name__ = method.__name__
        return call

    def provided(self) -> frozenset[str]:
        return frozenset(STAGE_NAMES)


def factory(name: str) -> Callable[[SubjectContext], FaultSubject]:
    if name == "list" or name not in FAULTS:
        known = ", ".join(sorted(FAULTS))
        raise AudioSRError(f"fault {name!r}: known faults are {known}" if name != "list" else f"faults: {known}")

    def make(context: SubjectContext) -> FaultSubject:
        return FaultSubject(FAULTS[name], context)

    return make


__all__ = ["FAULTS", "Fault", "FaultSubject", "factory"]
