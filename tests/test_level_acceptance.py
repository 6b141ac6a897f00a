"""Acceptance checks of issue 5, through the CLI on the tiny preset
(``enhance --random-weights --steps 2``), exactly as a user runs it:

- a digitally silent 3 s file -> an all-zero 48 kHz file of 144,000 samples;
- a tone at -90 dBFS RMS -> output RMS within 1 dB of -90 dBFS (preserve mode);
- a file with a NaN and a truncated file -> non-zero exit, one line on stderr each,
  nothing written.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

import audiosr_model.long_audio as long_audio
from audiosr_verify.cli import main as cli
from audiosr_verify.testing.strategies import write_audio
from audiosr_model.dsp import level

IN_RATE = 44100


def enhance(capsys, *argv):
    code = cli.main(["enhance", *map(str, argv), "--random-weights", "--preset", "tiny", "--steps", "2"])
    err = capsys.readouterr().err
    return code, err


def test_silent_3s_file_gives_144000_zero_samples(tmp_path, capsys):
    src = write_audio(tmp_path / "silence.wav", np.zeros((1, 3 * IN_RATE), np.float32), IN_RATE, "PCM_16")
    code, err = enhance(capsys, src, "-o", tmp_path / "out")
    assert code == 0, err
    y, rate = sf.read(tmp_path / "out" / "silence.wav", dtype="float32")
    assert rate == 48000
    assert y.shape == (144000,)
    assert not y.any()


def test_tone_at_minus_90_dbfs_keeps_its_level(tmp_path, capsys):
    n = 2 * IN_RATE
    t = np.arange(n) / IN_RATE
    x = np.sin(2 * np.pi * 1000.0 * t)
    x *= 10 ** (-90 / 20) / level.rms(x)
    src = write_audio(tmp_path / "quiet_tone.wav", x[None].astype(np.float32), IN_RATE, "FLOAT")
    code, err = enhance(capsys, src, "-o", tmp_path / "out", "--level", "preserve")
    assert code == 0, err
    y, rate = sf.read(tmp_path / "out" / "quiet_tone.wav", dtype="float32")
    assert rate == 48000 and y.shape == (96000,)
    assert np.isfinite(y).all()
    out_db = level.dbfs(level.rms(y))
    assert abs(out_db - -90.0) <= 1.0, f"output RMS {out_db:.2f} dBFS"


def _assert_refused(code, err, path, out_dir, words):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert str(path) in lines[0] and words in lines[0], lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_nan_file_is_refused(tmp_path, capsys):
    x = (0.1 * np.random.default_rng(0).standard_normal((1, IN_RATE))).astype(np.float32)
    x[0, 1000] = np.nan
    src = write_audio(tmp_path / "nan.wav", x, IN_RATE, "FLOAT")
    code, err = enhance(capsys, src, "-o", tmp_path / "out")
    _assert_refused(code, err, src, tmp_path / "out", "NaN")


def test_truncated_file_is_refused(tmp_path, capsys):
    x = (0.1 * np.random.default_rng(0).standard_normal((1, IN_RATE))).astype(np.float32)
    full = write_audio(tmp_path / "full.wav", x, IN_RATE, "PCM_16").read_bytes()
    src = tmp_path / "truncated.wav"
    src.write_bytes(full[: len(full) * 2 // 3])
    code, err = enhance(capsys, src, "-o", tmp_path / "out")
    _assert_refused(code, err, src, tmp_path / "out", "truncated")


def test_dc_only_file_at_44k1_is_silent_without_the_model(tmp_path):
    src = write_audio(tmp_path / "dc.wav", np.full((2, 2 * IN_RATE), 0.25, np.float32), IN_RATE, "FLOAT")
    result = long_audio.enhance_file(None, src, tmp_path / "dc_out.wav", steps=1)  # net=None: must not run
    # channels are kept by default (issue 13): both DC channels come back as digital silence
    assert result.silent_chunks == result.chunks * result.output_channels == 2
    y, _ = sf.read(tmp_path / "dc_out.wav", dtype="float32")
    assert y.shape == (96000, 2) and not y.any()
