"""`audiosr-verify enhance` end to end on the bundled tiny default, channels kept, output formats."""

import numpy as np
import pytest
import soundfile as sf

from audiosr_model import audio_options
from audiosr_model.audio_channels import enhance_channels
from audiosr_model.dsp import level
from audiosr_model.pipeline import Randomness, enhance_segment
from audiosr_verify.cli.main import main


def _write(path, seconds, rate, channels):
    t = np.arange(int(round(seconds * rate))) / rate
    tones = [0.3 * np.sin(2 * np.pi * f * t) for f in (440.0, 1234.0)[:channels]]
    data = np.stack(tones, axis=1) if channels > 1 else tones[0]
    sf.write(path, data, rate, subtype="PCM_16")


@pytest.mark.parametrize(
    "rate,channels,seconds",
    [(16000, 1, 1.3), (44100, 2, 1.3), (44100, 1, 20.0)],
    ids=["16k-mono-1.3s", "44k-stereo-1.3s", "44k-mono-20s-chunked"],
)
def test_enhance_lengths_are_exact(tmp_path, rate, channels, seconds):
    src = tmp_path / "in.wav"
    _write(src, seconds, rate, channels)
    out_dir = tmp_path / "out"
    code = main(["enhance", str(src), "-o", str(out_dir), "--random-weights", "--steps", "1", "--device", "cpu"])
    assert code == 0
    y, sr = sf.read(out_dir / "in.wav", dtype="float32", always_2d=True)
    # Channels are kept by default (issue 13): the stereo case used to come back mono.
    assert sr == 48000 and y.shape[1] == channels
    assert len(y) == round(seconds * 48000)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert sorted(p.name for p in out_dir.iterdir()) == ["in.wav"]  # no temp files left


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src = tmp_path / "a.wav"
    _write(src, 0.5, 16000, 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wav").write_bytes(b"keep")
    code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--random-weights"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert (tmp_path / "out" / "a.wav").read_bytes() == b"keep"


def test_no_weights_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "a.wav"
    _write(src, 0.5, 16000, 1)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o")]) == 2
    assert "--random-weights" in capsys.readouterr().err


def test_make_checkpoint_then_enhance_with_it(tmp_path):
    ckpt = tmp_path / "tiny.safetensors"
    assert main(["make-checkpoint", "--preset", "tiny", "--seed", "0", "-o", str(ckpt)]) == 0
    src = tmp_path / "a.wav"
    _write(src, 0.5, 22050, 1)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o"), "--checkpoint", str(ckpt),
                 "--preset", "tiny", "--steps", "1"]) == 0
    with_ckpt, _ = sf.read(tmp_path / "o" / "a.wav", dtype="float32")
    assert main(["enhance", str(src), "-o", str(tmp_path / "r"), "--random-weights", "--steps", "1"]) == 0
    random, _ = sf.read(tmp_path / "r" / "a.wav", dtype="float32")
    np.testing.assert_array_equal(with_ckpt, random)  # same weights, same seed: same output


# ---------------------------------------------------------------- channels kept (issue 13)


def _dbfs(x):
    return level.dbfs(level.rms(x))


def test_stereo_comes_back_stereo_with_each_channel_level(tmp_path):
    """Acceptance: different content and level per channel; each channel's level within 1 dB (preserve)."""
    rate, n = 16000, 16000
    t = np.arange(n) / rate
    rng = np.random.default_rng(7)
    left = 0.5 * np.sin(2 * np.pi * 440 * t) * np.hanning(n)  # a loud tone
    right = 0.01 * rng.standard_normal(n)  # quiet noise, about 34 dB below
    src = tmp_path / "stereo.wav"
    sf.write(src, np.stack([left, right], axis=1), rate, subtype="FLOAT")
    out = tmp_path / "out"
    assert main(["enhance", str(src), "-o", str(out), "--random-weights", "--steps", "1", "--device", "cpu"]) == 0
    y, sr = sf.read(out / "stereo.wav", dtype="float32", always_2d=True)
    assert sr == 48000 and y.shape == (48000, 2)
    x48, _ = sf.read(src, dtype="float64", always_2d=True)
    from audiosr_model.dsp.resample import resample
    import torch

    for c, name in enumerate(("left", "right")):
        reference = resample(torch.from_numpy(x48[:, c].astype(np.float32)), rate, 48000).numpy()
        assert abs(_dbfs(y[:, c]) - _dbfs(reference)) <= 1.0, (name, _dbfs(y[:, c]), _dbfs(reference))
    assert abs(_dbfs(y[:, 0]) - _dbfs(y[:, 1])) > 20  # the levels stayed apart: not one gain for both
    assert not np.allclose(y[:, 0], y[:, 1])


def test_batched_channels_equal_their_mono_runs(tiny_net):
    """Each channel of a batched pass gets the numbers of its own mono run (float reassociation aside)."""
    rng = np.random.default_rng(3)
    x = np.stack([0.2 * rng.standard_normal(24000), 0.05 * np.sin(np.arange(24000) / 9.0),
                  np.zeros(24000)]).astype(np.float32)
    batched = enhance_channels(tiny_net, x, 0.5, seed=42, steps=1, guidance_scale=3.5, batch=2)
    for c in range(2):
        mono = enhance_segment(tiny_net, x[c], 0.5, Randomness(42), 1, 3.5)
        assert batched[c].cutoff_hz == mono.cutoff_hz and batched[c].filter_type == mono.filter_type
        np.testing.assert_allclose(batched[c].waveform, mono.waveform, rtol=0, atol=1e-5)
    assert batched[2].silent and not batched[2].waveform.any()  # a silent channel stays digital silence


def test_identical_channels_come_back_identical(tiny_net):
    x = np.tile(0.2 * np.sin(np.arange(24000) / 7.0, dtype=np.float64).astype(np.float32), (2, 1))
    a, b = enhance_channels(tiny_net, x, 0.5, seed=5, steps=1, guidance_scale=3.5)
    np.testing.assert_array_equal(a.waveform, b.waveform)


@pytest.mark.parametrize("mix", ["mean", "first"])
def test_mix_still_gives_mono(tmp_path, mix):
    src = tmp_path / "st.wav"
    _write(src, 0.5, 16000, 2)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--steps", "1",
                 "--mix", mix]) == 0
    y, _ = sf.read(tmp_path / "o" / "st.wav", dtype="float32", always_2d=True)
    assert y.shape == (24000, 1)


@pytest.mark.parametrize("argv,name,container,subtype", [
    (["--format", "flac"], "a.flac", "FLAC", "PCM_24"),
    (["--format", "wav-pcm16"], "a.wav", "WAV", "PCM_16"),
    (["--output", "{tmp}/x.flac"], "x.flac", "FLAC", "PCM_24"),
    (["--output", "{tmp}/x.wav", "--format", "wav-pcm24"], "x.wav", "WAV", "PCM_24"),
])
def test_output_format_by_option_or_extension(tmp_path, argv, name, container, subtype):
    src = tmp_path / "a.wav"
    _write(src, 0.3, 16000, 1)
    argv = [a.replace("{tmp}", str(tmp_path / "o")) for a in argv]
    (tmp_path / "o").mkdir()
    if "--output" not in argv:
        argv += ["-o", str(tmp_path / "o")]
    assert main(["enhance", str(src), "--random-weights", "--steps", "1", *argv]) == 0
    info = sf.info(str(tmp_path / "o" / name))
    assert (info.format, info.subtype, info.samplerate, info.frames) == (container, subtype, 48000, 14400)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [name]


def test_output_file_extension_must_fit_the_format(tmp_path, capsys):
    src = tmp_path / "a.wav"
    _write(src, 0.3, 16000, 1)
    assert main(["enhance", str(src), "--random-weights", "--output", str(tmp_path / "x.flac"),
                 "--format", "wav"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.flac" in err[0] and "does not fit" in err[0]
    assert not (tmp_path / "x.flac").exists()


def test_option_tables_agree_with_the_model():
    from audiosr_model import long_audio

    assert audio_options.LEVEL_MODES == level.LEVEL_MODES
    assert long_audio.MIX_MODES == audio_options.MIX_MODES == ("keep", "mean", "first")
