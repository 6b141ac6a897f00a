"""`audiosr-verify enhance` end to end on the bundled tiny default."""

import numpy as np
import pytest
import soundfile as sf

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
    y, sr = sf.read(out_dir / "in.wav", dtype="float32")
    assert sr == 48000 and y.ndim == 1
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
