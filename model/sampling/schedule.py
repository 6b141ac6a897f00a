"""The noise schedule of the original and its DDIM sub-schedule, number for number.

Written to reproduce the original (`ddpm.py` `register_schedule`, `ddim.py`
`DDIMSampler`, `diffusionmodules/util.py`), including its dtype quirks:

- the cosine schedule is computed in float64 and not clipped (its last beta
  is 1.0); buffers are stored in float32;
- the DDIM sampler re-derives its alphas from the float32 buffer, so
  ``ddim_alphas`` is float32, ``ddim_alphas_prev`` float64 (a numpy array of
  float32 values) and ``ddim_sigmas`` float64; all three become float32 only
  when a step uses them;
- DDIM timesteps are uniform plus one ([501, 1] for 2 steps).

The sampler that walks this schedule is `audiosr_model.sampling.ddim`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


__all__ = ["DDIMSchedule", "SCHEDULE_BUFFERS", "ddim_timesteps", "make_beta_schedule", "make_ddim_schedule",
           "schedule_buffers"]
