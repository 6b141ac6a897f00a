"""Bad input: one AudioSRError with a one-line message naming the file and the problem.

Every case goes through ``model.long_audio.enhance_file`` and through the CLI
(``audiosr_verify.cli.main``): non-zero exit, exactly one line on stderr, no
traceback, and nothing written to the output directory (no partial or
temporary files either). Accepted inputs (8/16/24/32-bit integer and 32/64-bit
float WAV, FLAC, AIFF, 1-6 channels, 1-384 kHz) go through the same paths.

The model is never needed here: the CLI's ``load_network`` is replaced by the
session's tiny network, and for accepted inputs ``enhance_segment`` by an
identity, so these tests check I/O, validation, mixing, resampling and
atomic output without paying for diffusion.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audiosr_model.long_audio as long_audio
from audiosr_verify.cli import enhance as cli_enhance
from audiosr_verify.cli import main as cli
from audiosr_verify.testing.strategies import write_audio
from audiosr_model.errors import AudioSRError
from audiosr_model.pipeline import SegmentResult

RATE = 48000


# ---------------------------------------------------------------- makers


def _tone(n: int, channels: int = 1, rate: int = RATE) -> np.ndarray:
    t = np.arange(n) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def _good_wav(path: Path, n: int = RATE // 2, subtype: str = "PCM_16", rate: int = RATE) -> Path:
    return write_audio(path, _tone(n, rate=rate), rate, subtype)


def _patched(path: Path, offset: int, data: bytes) -> Path:
    b = bytearray(_good_wav(path).read_bytes())
    b[offset : offset + len(data)] = data
    path.write_bytes(bytes(b))
    return path


def _with_sample(path: Path, value: float) -> Path:
    x = _tone(RATE // 2)
    x[0, 1234] = value
    return write_audio(path, x, RATE, "FLOAT")


def _truncated(path: Path) -> Path:
    b = _good_wav(path).read_bytes()
    path.write_bytes(b[: len(b) // 2])
    return path


BAD_INPUTS = {
    # name: (make(path) -> path, file name, words the message must contain)
    "empty file": (lambda p: (p.write_bytes(b""), p)[1], "empty.wav", "empty"),
    "zero samples": (lambda p: write_audio(p, np.zeros((1, 0), np.float32), RATE), "zero.wav", "no samples"),
    "100 samples at 48 kHz": (lambda p: write_audio(p, _tone(100), RATE), "short.wav", "too short"),
    "2 samples at 1 kHz": (lambda p: write_audio(p, _tone(2, rate=1000), 1000), "short1k.wav", "too short"),
    "NaN sample": (lambda p: _with_sample(p, np.nan), "nan.wav", "NaN or Inf"),
    "Inf sample": (lambda p: _with_sample(p, np.inf), "inf.wav", "NaN or Inf"),
    "-Inf sample": (lambda p: _with_sample(p, -np.inf), "neginf.wav", "NaN or Inf"),
    "truncated data": (_truncated, "truncated.wav", "truncated"),
    "truncated header": (lambda p: (p.write_bytes(_good_wav(p).read_bytes()[:30]), p)[1], "header.wav", "not a readable audio file"),
    "corrupt header (RIFF id)": (lambda p: _patched(p, 0, b"RIFX"), "corrupt.wav", "not a readable audio file"),
    "corrupt header (WAVE id)": (lambda p: _patched(p, 8, b"WAVX"), "corrupt2.wav", "not a readable audio file"),
    "unknown codec tag": (lambda p: _patched(p, 20, struct.pack("<H", 0x1234)), "codec.wav", "not a readable audio file"),
    "0 channels in header": (lambda p: _patched(p, 22, struct.pack("<H", 0)), "nochannels.wav", "Channel count is zero"),
    "rate 0 in header": (lambda p: _patched(p, 24, struct.pack("<I", 0)), "rate0.wav", "not a readable audio file"),
    "text named .wav": (lambda p: (p.write_text("this is not audio\n" * 20), p)[1], "text.wav", "not a readable audio file"),
    "unsupported format (MP4 box)": (
        lambda p: (p.write_bytes(b"\x00\x00\x00\x20ftypM4A " + os.urandom(2000)), p)[1],
        "song.m4a",
        "not a readable audio file",
    ),
    "rate below 1 kHz": (lambda p: write_audio(p, _tone(400, rate=800), 800), "rate800.wav", "unsupported sample rate 800 Hz"),
    "rate above 384 kHz": (lambda p: write_audio(p, _tone(4000, rate=400000), 400000), "rate400k.wav", "unsupported sample rate 400000 Hz"),
    "directory": (lambda p: (p.mkdir(), p)[1], "folder.wav", "is a directory"),
    "missing file": (lambda p: p, "missing.wav", "no such file"),
}


@pytest.fixture
def fake_model(monkeypatch, tiny_net):
    """CLI without loading weights, and enhance_segment = identity (the I/O path only)."""
    monkeypatch.setattr(cli_enhance, "load_network", lambda args: (tiny_net, "tiny (test)"))

    def identity(net, mono, duration, rng, steps=1, guidance_scale=3.5, level_mode="preserve", filter_type=None, on_step=None,
                 stages=None):
        return SegmentResult(np.asarray(mono, np.float32).copy(), silent=False)

    def identity_channels(net, channels, duration, seed, *args, **kw):
        return [identity(net, x, duration, None) for x in channels]

    monkeypatch.setattr(long_audio, "enhance_segment", identity)
    monkeypatch.setattr(long_audio, "enhance_channels", identity_channels)


def run_cli(capsys, *argv) -> tuple[int, list[str], str]:
    code = cli.main(["enhance", *map(str, argv), "--random-weights", "--steps", "1"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()], err


def _files_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*")) if d.exists() else []


def _assert_one_line_error(code: int, lines: list[str], raw: str, path: Path, words: str):
    assert code != 0
    assert "Traceback" not in raw
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{raw}"
    assert str(path) in lines[0], lines[0]
    assert words in lines[0], lines[0]


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_enhance_file(tmp_path, case):
    make, name, words = BAD_INPUTS[case]
    path = make(tmp_path / name)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(AudioSRError) as info:
        long_audio.enhance_file(None, path, out_dir / "result.wav", steps=1)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert words in message, message
    assert _files_under(out_dir) == []


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_cli(tmp_path, capsys, fake_model, case):
    make, name, words = BAD_INPUTS[case]
    path = make(tmp_path / name)
    out_dir = tmp_path / "out"
    code, lines, raw = run_cli(capsys, path, "--output-dir", out_dir)
    _assert_one_line_error(code, lines, raw, path, words)
    assert _files_under(out_dir) == []


def test_bad_input_among_good_ones_writes_nothing(tmp_path, capsys, fake_model):
    """A batch with one bad file is refused as a whole, before anything is written."""
    good = _good_wav(tmp_path / "good.wav")
    bad = _with_sample(tmp_path / "bad.wav", np.nan)
    out_dir = tmp_path / "out"
    code, lines, raw = run_cli(capsys, good, bad, "--output-dir", out_dir)
    _assert_one_line_error(code, lines, raw, bad, "NaN or Inf")
    assert _files_under(out_dir) == []


def test_nan_late_in_a_long_file_leaves_no_partial_output(tmp_path, fake_model):
    """enhance_file discovers NaN in chunk 2 after chunk 1 was written to the temp file:
    the temp file is removed and no output appears."""
    x = _tone(20 * RATE)
    x[0, 18 * RATE] = np.nan
    path = write_audio(tmp_path / "late_nan.wav", x, RATE, "FLOAT")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(AudioSRError, match="NaN or Inf"):
        long_audio.enhance_file(None, path, out_dir / "late_nan.wav", steps=1)
    assert _files_under(out_dir) == []


# ---------------------------------------------------------------- output directory


def test_output_directory_under_a_regular_file(tmp_path, capsys, fake_model):
    """A directory that cannot exist (its parent is a file): works for root too."""
    src = _good_wav(tmp_path / "in.wav")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    out_dir = blocker / "out"
    with pytest.raises(AudioSRError) as info:
        long_audio.enhance_file(None, src, out_dir / "in.wav", steps=1)
    assert "\n" not in str(info.value) and str(out_dir) in str(info.value)
    code, lines, raw = run_cli(capsys, src, "--output-dir", out_dir)
    _assert_one_line_error(code, lines, raw, out_dir, "")
    assert blocker.read_text() == "a file, not a directory"


def test_output_directory_is_a_file(tmp_path, capsys, fake_model):
    src = _good_wav(tmp_path / "in.wav")
    target = tmp_path / "taken"
    target.write_text("x")
    code, lines, raw = run_cli(capsys, src, "--output-dir", target)
    _assert_one_line_error(code, lines, raw, target, "not a directory")


def _can_write_despite_chmod(d: Path) -> bool:
    probe = d / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


def test_unwritable_output_directory(tmp_path, capsys, fake_model):
    src = _good_wav(tmp_path / "in.wav")
    out_dir = tmp_path / "readonly"
    out_dir.mkdir()
    out_dir.chmod(0o500)
    try:
        if _can_write_despite_chmod(out_dir):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 0o500 does not stop writes; "
                        "test_output_directory_under_a_regular_file covers the impossible directory")
        with pytest.raises(AudioSRError) as info:
            long_audio.enhance_file(None, src, out_dir / "in.wav", steps=1)
        assert "\n" not in str(info.value)
        code, lines, raw = run_cli(capsys, src, "--output-dir", out_dir)
        _assert_one_line_error(code, lines, raw, out_dir, "writ")
        assert _files_under(out_dir) == []
    finally:
        out_dir.chmod(0o700)


# ---------------------------------------------------------------- accepted inputs


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats_are_accepted(tmp_path, capsys, fake_model, subtype):
    x = _tone(RATE // 4)
    path = write_audio(tmp_path / f"in_{subtype}.wav", x, RATE, subtype)
    out_dir = tmp_path / "out"
    code, _, raw = run_cli(capsys, path, "--output-dir", out_dir)
    assert code == 0, raw
    y, rate = sf.read(out_dir / path.name, dtype="float32")
    assert rate == RATE and y.shape == (x.shape[1],)
    step = {"PCM_U8": 2 / 256, "PCM_16": 2 / 65536}.get(subtype, 1e-6)
    np.testing.assert_allclose(y, x[0], atol=step)  # identity model: the decoded samples come back


@pytest.mark.parametrize("fmt,subtype", [("flac", "PCM_16"), ("aiff", "PCM_24"), ("w64", "FLOAT"), ("rf64", "FLOAT")])
def test_other_containers_are_accepted(tmp_path, capsys, fake_model, fmt, subtype):
    path = write_audio(tmp_path / f"in.{fmt}", _tone(RATE // 4), RATE, subtype)
    code, _, raw = run_cli(capsys, path, "--output-dir", tmp_path / "out")
    assert code == 0, raw
    assert sf.info(str(tmp_path / "out" / "in.wav")).frames == RATE // 4


@pytest.mark.parametrize("rate", [1000, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000, 384000])
def test_rates_from_1k_to_384k_are_accepted(tmp_path, capsys, fake_model, rate):
    n = max(3, int(0.05 * rate))
    path = write_audio(tmp_path / f"in_{rate}.wav", _tone(n, rate=rate), rate, "FLOAT")
    code, _, raw = run_cli(capsys, path, "--output-dir", tmp_path / "out")
    assert code == 0, raw
    info = sf.info(str(tmp_path / "out" / path.name))
    assert info.samplerate == RATE and info.channels == 1
    assert info.frames == round(n * RATE / rate)


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("mix", ["mean", "first"])
def test_channels_are_mixed_to_mono(tmp_path, capsys, fake_model, channels, mix):
    x = _tone(RATE // 4, channels)
    path = write_audio(tmp_path / "in.wav", x, RATE, "FLOAT")
    code = cli.main(["enhance", str(path), "-o", str(tmp_path / "out"), "--random-weights", "--mix", mix])
    assert code == 0, capsys.readouterr().err
    y, _ = sf.read(tmp_path / "out" / "in.wav", dtype="float32")
    expected = x.mean(axis=0) if mix == "mean" else x[0]
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_channels_are_kept_by_default(tmp_path, capsys, fake_model, channels):
    x = _tone(RATE // 4, channels)
    path = write_audio(tmp_path / "in.wav", x, RATE, "FLOAT")
    code = cli.main(["enhance", str(path), "-o", str(tmp_path / "out"), "--random-weights"])
    assert code == 0, capsys.readouterr().err
    y, _ = sf.read(tmp_path / "out" / "in.wav", dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, x, atol=1e-6)  # identity model: every channel comes back, in order


# ---------------------------------------------------------------- publishing


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_enhanced_files_respect_the_umask(tmp_path, capsys, fake_model, umask, mode):
    """Issue 12: enhanced files used to be 0600 whatever the umask (a temporary file's mode)."""
    src = _good_wav(tmp_path / "in.wav")
    old = os.umask(umask)
    try:
        code, _, raw = run_cli(capsys, src, "--output-dir", tmp_path / "out")
    finally:
        os.umask(old)
    assert code == 0, raw
    assert (tmp_path / "out" / "in.wav").stat().st_mode & 0o777 == mode


def test_a_failed_overwrite_keeps_the_earlier_result(tmp_path, capsys, fake_model):
    """--overwrite with an input that fails late (NaN in its second chunk): the old output stays whole."""
    x = _tone(20 * RATE)
    x[0, 18 * RATE] = np.nan
    bad = write_audio(tmp_path / "song.wav", x, RATE, "FLOAT")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "song.wav").write_bytes(b"the earlier result")
    with pytest.raises(AudioSRError, match="NaN or Inf"):
        long_audio.enhance_file(None, bad, out_dir / "song.wav", steps=1, overwrite=True)
    assert (out_dir / "song.wav").read_bytes() == b"the earlier result"
    assert sorted(p.name for p in out_dir.iterdir()) == ["song.wav"]  # no temporary or lock file


def test_without_overwrite_a_file_that_appears_meanwhile_is_kept(tmp_path, fake_model):
    """Exclusive publish: a file created while the run worked is never replaced without --overwrite."""
    from audiosr_model.io.publish import publish_file

    target = tmp_path / "out.wav"

    def write(tmp):
        target.write_bytes(b"someone else's")  # appears while we write
        tmp.write_bytes(b"ours")

    with pytest.raises(AudioSRError, match="appeared while this run was working"):
        publish_file(target, write, overwrite=False)
    assert target.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
