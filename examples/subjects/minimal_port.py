"""A minimal subject: the shape of what you write to put YOUR implementation under the harness.

    python -m audiosr_verify check examples/subjects/minimal_port.py:make_subject --json out.json

This "port" implements two DSP stages from scratch with numpy and declares its
checkpoint layout; every other stage is reported as not_provided. Replace the
bodies with calls into your code (ONNX sessions, a GGUF runtime, your
torch module...). Arrays in, arrays out; see `audiosr_verify.subject` for the
signature of every stage.
"""

import numpy as np
from safetensors import safe_open

from audiosr_verify.subject import Subject


class MinimalPort(Subject):
    name = "minimal-port"
    description = "numpy normalize and cutoff, written from the original's description"

    def __init__(self, context):
        self.checkpoint = context.checkpoint  # the weights the harness's fixtures were made with

    def state_dict_layout(self):
        with safe_open(self.checkpoint, "np") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), "float32") for k in f.keys()}

    def normalize(self, waveform):
        x = waveform - waveform.mean()
        return 0.5 * x / (np.abs(x).max() + 1e-8)

    def cutoff(self, stft):
        energy = np.cumsum(np.abs(stft).sum(axis=0))
        below = np.nonzero(energy[1:] < energy[-1] * 0.985)[0]
        return int(below.max()) + 1 if below.size else 0


def make_subject(context):
    return MinimalPort(context)
