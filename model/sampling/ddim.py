"""The DDIM sampler with classifier-free guidance and the v-parameterisation, as the original's ``DDIMSampler``.

Randomness is explicit: the sampler takes the initial noise and a callable
that returns the per-step noise, so callers decide the generator and order.
It yields after every step (`DDIMStep`), so a caller can watch, time or stop
the loop from outside (the way k-diffusion's samplers take ``callback=``):
nothing here knows of timings or memory policy. The schedule it walks is
`audiosr_model.sampling.schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from audiosr_model.sampling.schedule import DDIMSchedule

def extract(buffer: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    out = buffer.gather(-1, t)
    return out.reshape(t.shape[0], *((1,) * (ndim - 1)))


class VPrediction:
    """Conversions of the v-parameterisation over the float32 schedule buffers."""

    def __init__(self, sqrt_alphas_cumprod: torch.Tensor, sqrt_one_minus_alphas_cumprod: torch.Tensor):
        self.sqrt_ac = sqrt_alphas_cumprod
        self.sqrt_1m_ac = sqrt_one_minus_alphas_cumprod

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return extract(self.sqrt_ac, t, x_t.ndim) * v + extract(self.sqrt_1m_ac, t, x_t.ndim) * x_t

    def x0(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return extract(self.sqrt_ac, t, x_t.ndim) * x_t - extract(self.sqrt_1m_ac, t, x_t.ndim) * v


Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class DDIMStep:
    index: int  # position in the schedule, counting down to 0
    timestep: int
    x: torch.Tensor  # x after this step
    pred_x0: torch.Tensor


def guided_denoiser(
    unet: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    cond: torch.Tensor,
    uncond: torch.Tensor,
    guidance_scale: float,
) -> Denoiser:
    """Classifier-free guidance with both branches in ONE batched UNet call.

    ``cond``/``uncond`` are the (already scaled) condition latents that are
    concatenated to x along channels. The original calls the UNet twice; a
    batch of two computes the same numbers up to float reassociation.
    """

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance_scale == 1.0:
            return unet(torch.cat([x, cond], dim=1), t)
        x_in = torch.cat([torch.cat([x, cond], dim=1), torch.cat([x, uncond], dim=1)])
        out_cond, out_uncond = unet(x_in, torch.cat([t, t])).chunk(2)
        return out_uncond + guidance_scale * (out_cond - out_uncond)

    return denoise


def ddim_step(
    denoise: Denoiser,
    x: torch.Tensor,
    schedule: DDIMSchedule,
    index: int,
    vpred: VPrediction,
    noise: torch.Tensor,
) -> DDIMStep:
    """One DDIM update (the original's ``p_sample_ddim``) at position ``index`` of the schedule.

    ``noise`` is the raw standard-normal draw of this step; it is multiplied by
    sigma_t here, as the original does with its ``noise_like`` draw.
    """
    b = x.shape[0]
    timestep = int(schedule.timesteps[index])
    t = torch.full((b,), timestep, dtype=torch.long, device=x.device)
    v = denoise(x, t)
    e_t = vpred.eps(x, t, v)
    a_prev = torch.full((b, 1, 1, 1), float(schedule.alphas_prev[index]), device=x.device)
    sigma_t = torch.full((b, 1, 1, 1), float(schedule.sigmas[index]), device=x.device)
    pred_x0 = vpred.x0(x, t, v)
    dir_xt = (1.0 - a_prev - sigma_t**2).sqrt() * e_t
    x_prev = a_prev.sqrt() * pred_x0 + dir_xt + sigma_t * noise.to(x.device)
    return DDIMStep(index=index, timestep=timestep, x=x_prev, pred_x0=pred_x0)


def ddim_sample(
    denoise: Denoiser,
    x_T: torch.Tensor,
    schedule: DDIMSchedule,
    vpred: VPrediction,
    step_noise: Callable[[tuple[int, ...]], torch.Tensor],
) -> Iterator[DDIMStep]:
    """Run DDIM from x_T, yielding after every step (last yield is the sample).

    ``step_noise(shape)`` supplies the noise of each step; the original draws
    it with `torch.randn` on every step, the last one included.
    """
    x = x_T
    for index in reversed(range(len(schedule))):
        step = ddim_step(denoise, x, schedule, index, vpred, step_noise(tuple(x.shape)))
        x = step.x
        yield step


__all__ = ["DDIMStep", "Denoiser", "VPrediction", "ddim_sample", "ddim_step", "extract", "guided_denoiser"]
