"""Moved to audiosr_model.nets.latent_diffusion; kept for one release: import from there."""

from audiosr_model.nets.latent_diffusion import *  # noqa: F401,F403
