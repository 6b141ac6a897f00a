"""Noise schedule, v-parameterisation and the DDIM sampler with guidance.

Written to reproduce the original (`ddpm.py` `register_schedule`, `ddim.py`
`DDIMSampler`, `diffusionmodules/util.py`) number for number, including its
dtype quirks:

- the cosine schedule is computed in float64 and not clipped (its last beta
  is 1.0); buffers are stored in float32;
- the DDIM sampler re-derives its alphas from the float32 buffer, so
  ``ddim_alphas`` is float32, ``ddim_alphas_prev`` float64 (a numpy array of
  float32 values) and ``ddim_sigmas`` float64; all three become float32 only
  when a step uses them;
- DDIM timesteps are uniform plus one ([501, 1] for 2 steps).

Randomness is explicit: the sampler takes the initial noise and a callable
that returns the per-step noise, so callers decide the generator and order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from audiosr_model.config import DiffusionConfig

SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)


def make_beta_schedule(cfg: DiffusionConfig) -> np.ndarray:
    """Betas in float64, as `make_beta_schedule` (cosine is not clipped)."""
    n = cfg.timesteps
    if cfg.beta_schedule == "cosine":
        # explicit CPU: the schedule is data, even when the network is built on "meta"
        steps = torch.arange(n + 1, dtype=torch.float64, device="cpu") / n + cfg.cosine_s
        alphas = torch.cos(steps / (1 + cfg.cosine_s) * np.pi / 2).pow(2)
        alphas = alphas / alphas[0]
        betas = 1 - alphas[1:] / alphas[:-1]
    elif cfg.beta_schedule == "linear":
        betas = (
            torch.linspace(cfg.linear_start**0.5, cfg.linear_end**0.5, n, dtype=torch.float64, device="cpu")
            ** 2
        )
    else:
        raise NotImplementedError(f"beta schedule {cfg.beta_schedule!r}")
    return betas.numpy()


def schedule_buffers(cfg: DiffusionConfig) -> dict[str, torch.Tensor]:
    """The 12 persistent schedule buffers of the original `register_schedule`."""
    betas = make_beta_schedule(cfg)
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    ac_prev = np.append(1.0, ac[:-1])
    eps = 1e-10  # the original adds it inside the sqrt_recip terms
    v_posterior = 0.0
    post_var = (1 - v_posterior) * betas * (1.0 - ac_prev) / (1.0 - ac) + v_posterior * betas
    values = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / (ac + eps)),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / (ac + eps) - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }
    return {k: torch.tensor(values[k], dtype=torch.float32, device="cpu") for k in SCHEDULE_BUFFERS}


def ddim_timesteps(num_steps: int, num_train_steps: int = 1000) -> np.ndarray:
    """Uniform spacing plus one, ascending (the original's `make_ddim_timesteps`)."""
    if num_steps < 1 or num_steps > num_train_steps:
        raise ValueError(f"DDIM steps must be in 1..{num_train_steps}, got {num_steps}")
    c = num_train_steps // num_steps
    steps = np.asarray(list(range(0, num_train_steps, c))) + 1
    # When c divides num_train_steps - 1 (3, 9, 27, 37, 111 or 333 steps of
    # 1000) the original produces timestep 1000 and crashes with an
    # IndexError; we drop that out-of-range step instead. Note also that the
    # count can exceed num_steps (7 steps give 8), exactly as in the original.
    return steps[steps < num_train_steps]


@dataclass(frozen=True)
class DDIMSchedule:
    timesteps: np.ndarray  # ascending DDPM timesteps
    alphas: torch.Tensor  # float32
    alphas_prev: np.ndarray  # float64
    sigmas: torch.Tensor  # float64

    def __len__(self) -> int:
        return len(self.timesteps)


def make_ddim_schedule(alphas_cumprod: torch.Tensor, num_steps: int, eta: float) -> DDIMSchedule:
    steps = ddim_timesteps(num_steps, alphas_cumprod.shape[0])
    ac = alphas_cumprod.detach().cpu().to(torch.float32)
    alphas = ac[steps]
    # A 0-d tensor next to python floats: numpy makes float64 of float32 values.
    alphas_prev = np.asarray([float(ac[0])] + ac[steps[:-1]].tolist(), dtype=np.float64)
    prev = torch.from_numpy(alphas_prev)
    sigmas = eta * torch.sqrt((1 - prev) / (1 - alphas) * (1 - alphas / prev))
    return DDIMSchedule(steps, alphas, alphas_prev, sigmas)


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
