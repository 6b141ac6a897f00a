"""The published reconstruction at its own size: hard-coded to the released model, as it was published.

    audiosr-verify oracle export --checkpoint basic.bin --inputs speech.wav music.wav --output-dir FIX
    audiosr-verify check examples/subjects/seed_reconstruction_full.py:make_subject \\
        --fixtures FIX --checkpoint basic.bin

`seed_reconstruction.py` takes its sizes from the fixtures (so that the fast
tier can run it on the tiny ones); the reconstruction that was published never
did. This one builds the released ``audiosr_basic`` network with its channel
counts written in (the HiFi-GAN's 1536 initial channels, its stride-5
upsampler with ``output_padding=1``), whatever the fixtures say, and refuses
a fixture set of another size in one line rather than loading the wrong
weights into it. The four deviations are those of `seed_reconstruction`.
"""

from __future__ import annotations

import torch

from audiosr_model.errors import AudioSRError
from seed_reconstruction import SeedReconstruction, add_parameter_free_modules, hand_written_upsamplers

PUBLISHED_PRESET = "basic"  # the released audiosr_basic / audiosr_speech layout
VOCODER_CHANNELS = 1536  # hard-coded, as published


def build_published_network():
    """The reconstruction's network as published, on the meta device."""
    from audiosr_model import config as cfg
    from audiosr_model.weights.load import skeleton

    net = skeleton(cfg.preset(PUBLISHED_PRESET))
    with torch.device("meta"):
        net.first_stage_model.vocoder.ups = hand_written_upsamplers(VOCODER_CHANNELS)
        net.added_modules = add_parameter_free_modules(net)
    return net


class PublishedSeedReconstruction(SeedReconstruction):
    name = "seed-reconstruction-full"

    def __init__(self, context=None, net=None, preset: str = PUBLISHED_PRESET):
        super().__init__(context, net, preset)
        if self.preset != PUBLISHED_PRESET:
            raise AudioSRError(f"{self.name} is the released model's size ({PUBLISHED_PRESET}); these fixtures are "
                               f"{self.preset!r}: export fixtures from a full-size checkpoint "
                               "(oracle export --checkpoint)")

    def activate(self) -> None:
        from audiosr_model.weights.checkpoint import load_into
        from audiosr_model.weights.checkpoint_reader import load_state_dict

        net = build_published_network()
        load_into(net, load_state_dict(self.context.checkpoint, mmap=True), source=self.context.checkpoint)
        self.net = net.to(self.context.device).eval().requires_grad_(False)

    def state_dict_layout(self):
        net = build_published_network()
        return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()}


def make_subject(context):
    return PublishedSeedReconstruction(context)
