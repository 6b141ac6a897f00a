"""Weights: reading checkpoints without trusting them, loading them strictly, and seeded random weights.

- `checkpoint_reader`: lazy, pickle-free listing of torch zip and safetensors files, and the real loader;
- `checkpoint`: every key matched or ignored for a stated reason (strict loading, saving);
- `load`: a ready-to-run `LatentDiffusion` from a checkpoint or from seeded random weights;
- `random_weights`: deterministic random tensors for any layout.
"""
