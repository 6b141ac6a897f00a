"""Moved to audiosr_model.nets.unet, audiosr_model.nets.attention; kept for one release: import from there."""

from audiosr_model.nets.attention import *  # noqa: F401,F403
from audiosr_model.nets.unet import *  # noqa: F401,F403
from audiosr_model.nets.unet import (  # noqa: F401  (names outside its __all__)
    Downsample,
    GroupNorm32,
    ResBlock,
    TimestepEmbedSequential,
    Upsample,
)
