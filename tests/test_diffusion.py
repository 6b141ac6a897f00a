"""Schedule, DDIM arithmetic and guidance batching."""

import numpy as np
import torch

from audiosr_model.config import DiffusionConfig
from audiosr_model.sampling.ddim import VPrediction, ddim_sample, guided_denoiser
from audiosr_model.sampling.schedule import ddim_timesteps, make_ddim_schedule, schedule_buffers


def test_ddim_timesteps_are_uniform_plus_one():
    assert ddim_timesteps(2).tolist() == [1, 501]
    steps = ddim_timesteps(200)
    assert steps[0] == 1 and steps[1] == 6 and steps[-1] == 996


def test_cosine_schedule_is_not_clipped():
    buf = schedule_buffers(DiffusionConfig())
    assert len(buf) == 12
    assert all(v.dtype == torch.float32 and v.shape == (1000,) for v in buf.values())
    assert buf["betas"][-1].item() == 1.0  # the original does not clip the last beta
    assert buf["alphas_cumprod"][-1].item() == 0.0
    assert torch.isfinite(buf["sqrt_recip_alphas_cumprod"]).all()  # 1e-10 inside the sqrt


def test_ddim_schedule_dtypes_follow_the_original():
    ac = schedule_buffers(DiffusionConfig())["alphas_cumprod"]
    s = make_ddim_schedule(ac, 2, 1.0)
    assert s.alphas.dtype == torch.float32
    assert s.alphas_prev.dtype == np.float64 and s.alphas_prev[0] == float(ac[0])
    assert s.sigmas.dtype == torch.float64 and (s.sigmas > 0).all()


def test_v_prediction_round_trip():
    buf = schedule_buffers(DiffusionConfig())
    vp = VPrediction(buf["sqrt_alphas_cumprod"], buf["sqrt_one_minus_alphas_cumprod"])
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    t = torch.tensor([10, 700])
    a = buf["sqrt_alphas_cumprod"][t].view(-1, 1, 1, 1)
    s = buf["sqrt_one_minus_alphas_cumprod"][t].view(-1, 1, 1, 1)
    x_t, v = a * x0 + s * eps, a * eps - s * x0
    torch.testing.assert_close(vp.x0(x_t, t, v), x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vp.eps(x_t, t, v), eps, atol=1e-5, rtol=1e-5)


def toy_unet(x, t):
    # depends on both halves of the channel axis and on t, per sample
    return x[:, :2] * 0.5 - x[:, 2:] * 0.25 + t.view(-1, 1, 1, 1) * 1e-3


def test_guidance_in_one_batched_call_equals_two_calls():
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 2, 4, 4, generator=g)
    uncond = torch.full_like(cond, -11.4981)
    t = torch.tensor([501])
    calls = []

    def counting(xc, tt):
        calls.append(xc.shape[0])
        return toy_unet(xc, tt)

    out = guided_denoiser(counting, cond, uncond, 3.5)(x, t)
    c = toy_unet(torch.cat([x, cond], 1), t)
    u = toy_unet(torch.cat([x, uncond], 1), t)
    torch.testing.assert_close(out, u + 3.5 * (c - u))
    assert calls == [2]  # one UNet call with a batch of two


def test_ddim_sample_draws_noise_every_step_including_the_last():
    ac = schedule_buffers(DiffusionConfig())["alphas_cumprod"]
    buf = schedule_buffers(DiffusionConfig())
    vp = VPrediction(buf["sqrt_alphas_cumprod"], buf["sqrt_one_minus_alphas_cumprod"])
    draws = []

    def noise(shape):
        draws.append(shape)
        return torch.zeros(shape)

    x_T = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    steps = list(ddim_sample(lambda x, t: x * 0.1, x_T, make_ddim_schedule(ac, 3, 1.0), vp, noise))
    assert [s.timestep for s in steps] == [667, 334, 1]
    assert [s.index for s in steps] == [2, 1, 0]
    assert len(draws) == 3


def test_step_counts_where_the_original_crashes_are_clipped():
    # the original indexes alphas_cumprod[1000] for these counts and raises IndexError
    for n in (3, 9, 27, 37, 111, 333):
        steps = ddim_timesteps(n)
        assert steps.max() < 1000 and len(steps) == n
    assert len(ddim_timesteps(7)) == 8  # the original's quirk, kept
