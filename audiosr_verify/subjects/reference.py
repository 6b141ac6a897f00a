"""The built-in subject ``reference``: our own implementation (`audiosr_model`), faithful mode.

Every stage of the schema is one call into `audiosr_model`; `enhance` runs
the whole pipeline with the original's level (peak 0.5) and channel choice
(channel 0), so its output is comparable with `audiosr.super_resolution`.
It also exposes its checkpoint layout and its modules (named as the
original's), so state-dict parity and first divergence can look inside it.

Fault subjects (subjects/faults.py) are this class with one change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audiosr_verify.subject import Subject, SubjectContext


def _np32(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().astype(np.float32, copy=False)
    return np.asarray(x, dtype=np.float32)


def _t32(x: Any) -> torch.Tensor:
    return x.detach().float() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, np.float32))


def guided_ddim_step(net, x, cond, index, steps, guidance, noise, cast, alphas_cumprod=None) -> dict:
    """The schema's ``ddim_step`` on ``net``: one guided DDIM step and the UNet's two halves.

    ``cast`` brings each tensor argument to the network's dtype (float32 here; float64 for the calibration's
    reference, `checks.calibration.Float64Reference`, which also passes the schedule's ``alphas_cumprod`` in
    the original's float32).
    """
    from audiosr_model.sampling.ddim import ddim_step, guided_denoiser
    from audiosr_model.sampling.schedule import make_ddim_schedule

    cond = cast(cond)
    sf = net.scale_factor
    outputs: list[torch.Tensor] = []

    def unet(x_in, t):
        out = net.unet(x_in, t)
        outputs.append(out)
        return out

    denoise = guided_denoiser(unet, cond * sf, net.unconditional_latent(cond) * sf, float(guidance))
    alphas = net.alphas_cumprod if alphas_cumprod is None else alphas_cumprod
    schedule = make_ddim_schedule(alphas, int(steps), net.config.diffusion.ddim_eta)
    step = ddim_step(denoise, cast(x), schedule, int(index), net.vprediction(), cast(noise))
    result = {"x_prev": step.x, "pred_x0": step.pred_x0}
    if outputs and outputs[0].shape[0] == 2 * step.x.shape[0]:
        result["model_cond"], result["model_uncond"] = outputs[0].chunk(2)
    return result


class ReferenceSubject(Subject):
    """Our model as a subject. ``net`` (a loaded `LatentDiffusion`) or ``context`` (a checkpoint) gives weights."""

    name = "reference"
    description = "audiosr_model (this project), faithful level, channel 0"

    def __init__(self, context: SubjectContext | None = None, net=None, preset: str = "tiny"):
        self.context = context
        self.preset = context.preset if context is not None else preset
        self.net = net

    # ------------------------------------------------------------------ lifecycle

    def activate(self) -> None:
        if self.net is None:
            from audiosr_model.weights.load import load_model

            if self.context is None:
                raise ValueError("ReferenceSubject needs a context (checkpoint) or a loaded net")
            self.net, _ = load_model(self.context.checkpoint, self.preset, self.context.device)

    def deactivate(self) -> None:
        pass  # the network may be shared with the caller; nothing to release

    # ------------------------------------------------------------------ structure

    def state_dict_layout(self):
        from audiosr_model import config as cfg
        from audiosr_model.weights.load import skeleton

        net = skeleton(cfg.preset(self.preset))
        return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()}

    def module_root(self):
        return self.net

    # ------------------------------------------------------------------ DSP front end

    def resample(self, waveform, rate):
        from audiosr_model.dsp.resample import resample

        w = _t32(waveform)
        return resample(w if w.dim() == 2 else w[None], int(rate), 48000).numpy()

    def normalize(self, waveform):
        from audiosr_model.dsp import level

        return level.normalize_input(_np32(waveform))

    def features(self, waveform):
        from audiosr_model.dsp import features

        w = _np32(waveform)
        return features.wav_feature_extraction(w[None], w.shape[-1] // 480)

    def cutoff(self, stft):
        from audiosr_model.dsp import lowpass

        return lowpass.locate_cutoff_bin(_t32(stft))

    def lowpass(self, waveform, cutoff_hz, filter_type):
        from audiosr_model.dsp import lowpass

        w = _np32(waveform)
        out = lowpass.lowpass_or_passthrough(w, float(cutoff_hz), 48000, order=8, ftype=str(filter_type))
        return np.asarray(out, dtype=np.float32)[: w.shape[-1]]

    def randomness(self, seed, latent_shape, count):
        from audiosr_model.pipeline import Randomness

        rng = Randomness(int(seed))
        ftype = rng.choose_filter()
        return ftype, [rng.randn(tuple(latent_shape)) for _ in range(int(count))]

    # ------------------------------------------------------------------ networks

    @torch.no_grad()
    def condition_encode(self, log_mel):
        post = self.net.condition_posterior(_t32(log_mel)[None, None])
        return post.mean, post.std

    @torch.no_grad()
    def unet(self, x, t, cond):
        return self.net.unet_forward(_t32(x), torch.as_tensor(t).long(), _t32(cond))

    def ddim_schedule(self, steps):
        from audiosr_model.sampling.schedule import make_ddim_schedule

        s = make_ddim_schedule(self.net.alphas_cumprod, int(steps), self.net.config.diffusion.ddim_eta)
        return {"timesteps": np.asarray(s.timesteps, dtype=np.int64), "alphas": s.alphas.double().numpy(),
                "alphas_prev": np.asarray(s.alphas_prev, dtype=np.float64), "sigmas": s.sigmas.double().numpy()}

    @torch.no_grad()
    def ddim_step(self, x, cond, index, steps, guidance, noise):
        return guided_ddim_step(self.net, x, cond, index, steps, guidance, noise, _t32)

    @torch.no_grad()
    def vae_decode(self, z):
        return self.net.decode(_t32(z))

    def mel_replace(self, mel, lowpass_mel):
        from audiosr_model.dsp import postprocess

        return postprocess.mel_replace(_t32(mel), _t32(lowpass_mel))

    @torch.no_grad()
    def vocoder(self, mel):
        return self.net.vocode(_t32(mel))[0, 0]

    # ------------------------------------------------------------------ post-processing

    def postprocess(self, waveform, lowpass_waveform):
        from audiosr_model.dsp import lowpass, postprocess

        voc, low = _np32(waveform), _np32(lowpass_waveform)
        out = postprocess.stft_replace_postprocess(voc, low)
        k = lowpass.cutoff_index_np(low)
        return {"waveform": np.asarray(out, np.float32), "cutoff_index": k,
                "energy_ratio": _raw_energy_ratio(low, voc, k)}

    def output_level(self, waveform):
        from audiosr_model.dsp import postprocess

        return postprocess.faithful_output_level(_np32(waveform)).astype(np.float32)

    # ------------------------------------------------------------------ end to end

    def enhance(self, waveform, rate, seed, steps, guidance):
        from audiosr_model.dsp import resample
        from audiosr_model.dsp import waveform as audio
        from audiosr_model.pipeline import Randomness, enhance_segment

        wave = _np32(waveform)
        if wave.ndim == 1:
            wave = wave[None]
        duration = wave.shape[-1] / int(rate)
        if int(rate) != 48000:
            wave = resample.resample(torch.from_numpy(np.ascontiguousarray(wave)), int(rate), 48000).numpy()
        mono = audio.to_mono(wave, "first")
        out = enhance_segment(self.net, mono, duration, Randomness(int(seed)), int(steps), float(guidance),
                              "faithful", None)
        # The length the original's output is compared over: the resampled input's, ceil(N * 48000 /
        # rate) (the original returns the whole padded segment). The CLI writes round(duration * 48000),
        # one sample fewer where the fraction is below one half: docs/differences.md.
        n = int(wave.shape[-1])
        w = out.waveform[:n]
        return np.pad(w, (0, n - w.shape[-1])) if w.shape[-1] < n else w


def _raw_energy_ratio(low: np.ndarray, voc: np.ndarray, k: int) -> float:
    """The unclamped energy ratio of the cutoff bin (the original's, before its [0.8, 1.2] clamp)."""
    from audiosr_model.dsp.waveform import numpy1_sum
    from audiosr_model.dsp.features import librosa_stft

    gt, out = librosa_stft(low), librosa_stft(voc)
    return float(np.mean(numpy1_sum(np.abs(gt[k])) / numpy1_sum(np.abs(out[k, ...]))))


def make_subject(context: SubjectContext) -> ReferenceSubject:
    return ReferenceSubject(context)


__all__ = ["ReferenceSubject", "make_subject"]
