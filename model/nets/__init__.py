"""The networks of AudioSR, inference only, under the original's parameter names.

- `latent_diffusion`: `LatentDiffusion`, the whole network (every weight inference uses);
- `unet`: the latent-diffusion UNet; `attention`: its self-attention and transformer blocks;
- `vae`: the AutoencoderKL (condition encoder, latent decoder);
- `vocoder`: the 48 kHz HiFi-GAN generator;
- `inplace`: in-place arithmetic where it gives the same bits.

Pure maths on tensors: nothing here imports file I/O (`audiosr_model.io`) or
run-time instrumentation (`audiosr_model.runtime`); tests/test_layout.py pins it.
"""
