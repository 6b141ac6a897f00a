"""Sampling: the noise schedule (`schedule`) and the DDIM sampler with guidance (`ddim`).

Pure maths on tensors: nothing here imports file I/O (`audiosr_model.io`) or
run-time instrumentation (`audiosr_model.runtime`); tests/test_layout.py pins it.
"""

from audiosr_model.sampling.ddim import (
    DDIMStep,
    Denoiser,
    VPrediction,
    ddim_sample,
    ddim_step,
    extract,
    guided_denoiser,
)
from audiosr_model.sampling.schedule import (
    SCHEDULE_BUFFERS,
    DDIMSchedule,
    ddim_timesteps,
    make_beta_schedule,
    make_ddim_schedule,
    schedule_buffers,
)

__all__ = ["DDIMSchedule", "DDIMStep", "Denoiser", "SCHEDULE_BUFFERS", "VPrediction", "ddim_sample", "ddim_step",
           "ddim_timesteps", "extract", "guided_denoiser", "make_beta_schedule", "make_ddim_schedule",
           "schedule_buffers"]
