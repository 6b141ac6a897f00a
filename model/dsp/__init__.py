"""The signal processing around the networks, as the original computes it.

- `waveform`: the waveform preparation of ``read_wav_file`` (normalise, pad) and the 48 kHz facts;
- `resample`: torchaudio's band-limited resampling;
- `features`: the mel spectrogram and librosa's STFT/ISTFT;
- `lowpass`: cut-off detection and the low-pass filters;
- `postprocess`: mel and STFT replacement below the cut-off;
- `level`: the level contract (silence, input normalisation, output level).

Pure maths on arrays: nothing here imports file I/O (`audiosr_model.io`) or
run-time instrumentation (`audiosr_model.runtime`); tests/test_layout.py pins it.
"""
