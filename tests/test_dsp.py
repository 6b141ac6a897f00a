"""Fast DSP tests (project venv only, no oracle): shapes, properties, error handling.

Bit-exactness against the original is checked by
``audiosr_verify/oracle/check_dsp.py`` and the parity fixtures.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiosr_model.dsp.waveform import (
    normalize_wav,
    numpy1_mean,
    pad_wav,
    padded_duration,
    target_frames,
    target_samples,
    to_mono,
)
from audiosr_model.errors import AudioSRError
from audiosr_model.io.audio_file import read_audio, write_audio_atomic
from audiosr_model.dsp.features import (
    hann_periodic_np,
    librosa_istft,
    librosa_stft,
    mel_filterbank,
    mel_spectrogram,
    wav_feature_extraction,
)
from audiosr_model.dsp.lowpass import (
    FILTER_TYPES,
    cutoff_hz_from_stft,
    cutoff_index_np,
    locate_cutoff_bin,
    lowpass,
    lowpass_or_passthrough,
)
from audiosr_model.dsp.postprocess import faithful_output_level, mel_replace, stft_replace_postprocess
from audiosr_model.dsp.resample import resample, resampled_length

SR = 48000


def _tone(freq, n=SR, sr=SR, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def _level_db(x, freq, sr=SR):
    """Amplitude of ``freq`` in ``x`` (dB re 1), from a Hann-windowed DFT of the middle."""
    mid = x[len(x) // 4 : 3 * len(x) // 4].astype(np.float64)
    w = np.hanning(len(mid))
    spec = np.abs(np.fft.rfft(mid * w)) * 2 / w.sum()
    k = int(round(freq * len(mid) / sr))
    return 20 * np.log10(spec[max(k - 3, 0) : k + 4].max() + 1e-20)


def _find_cutoff_reference(x, percentile):
    """The original `_find_cutoff` loop, verbatim, for comparison."""
    percentile = x[-1] * percentile
    for i in range(1, x.shape[0]):
        if x[-i] < percentile:
            return x.shape[0] - i
    return 0


# ------------------------------------------------------------------ resample


@pytest.mark.parametrize("sr", [1000, 8000, 11025, 16000, 22050, 32000, 44100, 96000, 192000, 384000])
@pytest.mark.parametrize("n", [1, 101, 4799, 12345])
def test_resample_length(sr, n):
    x = torch.randn(2, n)
    y = resample(x, sr, SR)
    assert y.shape == (2, resampled_length(n, sr, SR))
    assert y.shape[-1] == math.ceil(SR * n / sr)
    assert y.dtype == torch.float32


def test_resample_same_rate_is_identity():
    x = torch.randn(1, 1000)
    assert resample(x, SR, SR) is x


def test_resample_keeps_a_tone():
    x = torch.from_numpy(_tone(1000.0, n=16000, sr=16000))
    y = resample(x[None], 16000, SR)[0].numpy()
    assert abs(_level_db(y, 1000.0) - 20 * np.log10(0.5)) < 0.1


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError):
        resample(torch.zeros(10), 0, SR)
    with pytest.raises(ValueError):
        resample(torch.zeros(10), 44100.5, SR)
    with pytest.raises(TypeError):
        resample(torch.zeros(10, dtype=torch.int16), 16000, SR)


def test_resample_chunked_kernel_matches_single_kernel(monkeypatch):
    import audiosr_model.dsp.resample as rs

    x = torch.randn(1, 3000)
    whole = rs.resample(x, 997, 1009)  # co-prime: 1009 phases of 1011 taps
    monkeypatch.setattr(rs, "_MAX_KERNEL_ELEMENTS", 100_000)  # forces phase chunks
    chunked = rs.resample(x, 997, 1009)
    # same kernel values; conv1d may round differently for a different batch of phases
    assert chunked.shape == whole.shape
    assert torch.allclose(chunked, whole, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ audio prep


def test_normalize_wav_properties():
    x = (np.random.default_rng(0).standard_normal(50000) * 0.1 + 0.3).astype(np.float32)
    y = normalize_wav(x)
    assert y.dtype == np.float32
    assert abs(float(np.max(np.abs(y))) - 0.5) < 1e-6
    assert abs(float(np.mean(y))) < 1e-4
    assert np.all(normalize_wav(np.zeros(200, np.float32)) == 0)


def test_numpy1_mean_close_to_numpy_and_exact_below_one_chunk():
    rng = np.random.default_rng(1)
    for n in (5, 8192, 8193, 100003):
        x = rng.standard_normal(n).astype(np.float32) + np.float32(0.3)
        m = numpy1_mean(x)
        assert isinstance(m, np.float32)
        assert abs(float(m) - float(np.mean(x.astype(np.float64)))) < 1e-5
        if n <= 8192:
            assert m == np.mean(x)
    rows = rng.standard_normal((3, 20000)).astype(np.float32)
    assert numpy1_mean(rows).shape == (3,)


def test_padded_duration_and_frames():
    assert padded_duration(5.12) == 5.12
    assert target_frames(5.12) == 512 and target_samples(5.12) == 245760
    assert target_frames(padded_duration(1.0)) == 512
    assert target_frames(padded_duration(7.0)) == 1024
    # the original's float quirks, reproduced on purpose
    assert 15.36 % 5.12 != 0 and padded_duration(15.36) == 15.36
    assert target_frames(padded_duration(15.36)) == 1536
    assert target_frames(padded_duration(532 / 8000)) == 511
    assert target_samples(padded_duration(532 / 8000)) == 245759


def test_pad_wav():
    x = np.ones((1, 1000), np.float32)
    y = pad_wav(x, 2000)
    assert y.shape == (1, 2000) and y.dtype == np.float32
    assert np.all(y[:, :1000] == 1) and np.all(y[:, 1000:] == 0)
    assert pad_wav(x, 1000) is x
    with pytest.raises(ValueError):
        pad_wav(np.ones((1, 100), np.float32), 2000)
    with pytest.raises(ValueError):
        pad_wav(x, 999)


def test_to_mono():
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    assert np.array_equal(to_mono(x, "first"), [1.0, 2.0])
    assert np.array_equal(to_mono(x, "mean"), [2.0, 4.0])
    assert to_mono(x).dtype == np.float32
    with pytest.raises(ValueError):
        to_mono(x, "left")


# ------------------------------------------------------------------ read / write


def test_read_audio_int16_scaling_and_layout(tmp_path):
    path = tmp_path / "a.wav"
    data = np.zeros((1000, 2), np.int16)
    data[:, 0] = 16384
    data[:, 1] = -32768
    sf.write(path, data, 16000, subtype="PCM_16")
    x, sr = read_audio(path)
    assert sr == 16000 and x.shape == (2, 1000) and x.dtype == np.float32
    assert np.all(x[0] == 0.5) and np.all(x[1] == -1.0)


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(4800, np.float32), SR, subtype="PCM_16")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    nan = tmp_path / "nan.wav"
    sig = np.zeros(4800, np.float32)
    sig[10] = np.nan
    sf.write(nan, sig, SR, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    sig[10] = np.inf
    sf.write(inf, sig, SR, subtype="FLOAT")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), np.float32), SR, subtype="PCM_16")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(33, np.float32), 16000, subtype="PCM_16")  # 99 samples at 48 kHz
    directory = tmp_path / "adir.wav"
    directory.mkdir()
    return {
        "missing": (tmp_path / "missing.wav", "not found"),
        "directory": (directory, "directory"),
        "empty": (empty, "empty"),
        "text": (text, "decode"),
        "truncated": (truncated, "decode"),
        "nan": (nan, "contains NaN or Inf samples"),
        "inf": (inf, "contains NaN or Inf samples"),
        "zero": (zero, "no samples"),
        "short": (short, "too short"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "directory", "empty", "text", "truncated", "nan", "inf", "zero", "short"]
)
def test_read_audio_errors(tmp_path, case):
    path, words = _bad_files(tmp_path)[case]
    with pytest.raises(AudioSRError) as info:
        read_audio(path)
    message = str(info.value)
    assert str(path) in message
    assert words in message
    assert "\n" not in message


def test_read_audio_minimum_length_boundary(tmp_path):
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.full(101, 0.1, np.float32), SR, subtype="FLOAT")
    assert read_audio(ok)[0].shape == (1, 101)
    bad = tmp_path / "bad.wav"
    sf.write(bad, np.full(100, 0.1, np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioSRError):
        read_audio(bad)


def test_write_audio_atomic_round_trip(tmp_path):
    path = tmp_path / "out.wav"
    w = np.stack([_tone(440.0, 4800), _tone(880.0, 4800)])
    write_audio_atomic(path, w, SR)
    x, sr = read_audio(path)
    assert sr == SR and np.array_equal(x, w)
    assert sf.info(str(path)).subtype == "FLOAT"
    assert os.listdir(tmp_path) == ["out.wav"]
    write_audio_atomic(path, w[0], SR, subtype="PCM_16")  # replaces
    assert sf.info(str(path)).subtype == "PCM_16"


def test_write_audio_atomic_failure_leaves_nothing(tmp_path):
    path = tmp_path / "out.flac"
    with pytest.raises(AudioSRError) as info:
        write_audio_atomic(path, _tone(440.0, 4800), SR, subtype="FLOAT")  # FLAC has no float
    assert str(path) in str(info.value)
    assert os.listdir(tmp_path) == []
    # an existing file survives a failed overwrite
    keep = tmp_path / "keep.wav"
    write_audio_atomic(keep, _tone(440.0, 4800), SR)
    before = keep.read_bytes()
    with pytest.raises(AudioSRError):
        write_audio_atomic(keep, _tone(440.0, 4800), SR, subtype="NOT_A_SUBTYPE")
    assert keep.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.wav"]
    with pytest.raises(AudioSRError):
        write_audio_atomic(tmp_path / "x.notaudio", _tone(440.0, 4800), SR)
    assert sorted(os.listdir(tmp_path)) == ["keep.wav"]


def test_write_audio_atomic_bad_directory(tmp_path):
    with pytest.raises(AudioSRError, match="does not exist"):
        write_audio_atomic(tmp_path / "nope" / "out.wav", _tone(440.0, 480), SR)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_write_audio_atomic_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(AudioSRError, match="not writable"):
            write_audio_atomic(ro / "out.wav", _tone(440.0, 480), SR)
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------ features


def test_feature_shapes_for_one_segment():
    w = np.random.default_rng(0).standard_normal((1, 245760)).astype(np.float32) * 0.1
    mel, stft = wav_feature_extraction(w, 512)
    assert mel.shape == (512, 256) and stft.shape == (512, 1024)
    assert mel.dtype == torch.float32 and stft.dtype == torch.float32
    assert float(mel.min()) >= math.log(1e-5) - 1e-6


def test_feature_extraction_pads_and_cuts_frames():
    w = np.random.default_rng(0).standard_normal((1, 48000)).astype(np.float32)
    mel, stft = wav_feature_extraction(w, 512)
    assert mel.shape == (512, 256) and stft.shape == (512, 1024)
    assert torch.all(mel[101:] == 0)  # zero padding (of the log mel), as the original
    mel, _ = wav_feature_extraction(w, 50)
    assert mel.shape == (50, 256)


def test_mel_spectrogram_frame_count():
    for n in (785, 48000, 245760, 245759):
        log_mel, mag = mel_spectrogram(torch.zeros(1, n))
        frames = 1 + (n + 1568 - 2048) // 480
        assert log_mel.shape == (256, frames) and mag.shape == (1025, frames)


def test_mel_filterbank_matches_librosa_values():
    m = mel_filterbank()
    assert m.shape == (256, 1025) and m.dtype == np.float32
    assert np.all(m >= 0) and np.all(m.max(axis=1) > 0)
    # values of librosa 0.9.2's librosa.filters.mel(sr=48000, n_fft=2048, n_mels=256, fmin=20, fmax=24000)
    assert float(m.astype(np.float64).sum()) == pytest.approx(10.916973730454174, rel=1e-9)
    assert float(m[0].max()) == pytest.approx(0.018950611352920532, rel=1e-7)
    assert float(m[100, 81]) == pytest.approx(0.021515166386961937, rel=1e-7)
    assert float(m[10].sum()) == pytest.approx(0.03786815330386162, rel=1e-7)
    assert int(np.argmax(m[255])) == 1007


def test_hann_window_is_periodic():
    w = hann_periodic_np(2048)
    assert np.allclose(w, torch.hann_window(2048, dtype=torch.float64).numpy(), atol=1e-15)


def test_librosa_stft_istft_round_trip():
    x = np.random.default_rng(0).standard_normal(30001).astype(np.float32)
    S = librosa_stft(x)
    assert S.shape == (1025, 1 + 30001 // 512) and S.dtype == np.complex64
    y = librosa_istft(S, length=len(x))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1e-5
    longer = librosa_istft(S, length=40000)
    assert np.array_equal(longer[:30001], y) and np.all(longer[31000:] == 0)  # zero padded
    assert librosa_istft(S).shape == (512 * (S.shape[1] - 1),)
    assert librosa_stft(x.astype(np.float64)).dtype == np.complex128


# ------------------------------------------------------------------ low-pass and cut-off


@pytest.mark.parametrize("ftype", FILTER_TYPES)
def test_lowpass_attenuates_above_cutoff(ftype):
    cutoff = 8000.0
    x = _tone(cutoff + 2000.0) + _tone(1000.0)
    y = lowpass(x, cutoff, ftype=ftype)
    assert y.shape == x.shape
    assert _level_db(y, cutoff + 2000.0) - _level_db(x, cutoff + 2000.0) < -40
    # well inside the pass band (Bessel rolls off early, and is applied 4 times)
    assert abs(_level_db(y, 1000.0) - _level_db(x, 1000.0)) < 1.0


def test_lowpass_nyquist_and_bad_args():
    x = _tone(1000.0, 4800)
    with pytest.raises(ValueError):
        lowpass(x, 24000.0)
    assert lowpass_or_passthrough(x, 24000.0) is x
    assert lowpass_or_passthrough(x, 8000.0).shape == x.shape
    with pytest.raises(ValueError):
        lowpass(x, 8000.0, ftype="cheby2")
    with pytest.raises(ValueError):
        lowpass(x[None], 8000.0)
    # order is clamped to [2, 10] as the original does
    assert np.array_equal(lowpass(x, 8000.0, order=30), lowpass(x, 8000.0, order=10))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 100, allow_nan=False, width=32), min_size=2, max_size=40),
    st.integers(1, 5),
)
def test_locate_cutoff_bin_matches_the_original_loop(values, frames):
    spec = torch.tensor([values] * frames, dtype=torch.float32)
    energy = torch.cumsum(torch.sum(spec, dim=0), dim=0)
    assert locate_cutoff_bin(spec) == _find_cutoff_reference(energy, 0.985)


def test_locate_cutoff_bin_band_limited_spectrum():
    spec = torch.zeros(10, 1024)
    spec[:, :400] = 1.0
    # cumulative energy 10 * (k + 1) stays below 0.985 * 4000 = 3940 up to bin 392
    assert locate_cutoff_bin(spec) == 392
    assert locate_cutoff_bin(torch.zeros(10, 1024)) == 0
    assert cutoff_hz_from_stft(torch.zeros(10, 1024)) == 24000.0  # "empty" rule
    assert cutoff_hz_from_stft(spec) == 392 / 1024 * 24000


def test_cutoff_index_np_of_band_limited_noise():
    x = np.random.default_rng(0).standard_normal(48000)
    y = lowpass(x, 6000.0).astype(np.float32)
    k = cutoff_index_np(y)
    assert abs(k / 1024 * 24000 - 6000) < 500


# ------------------------------------------------------------------ post-processing


def test_mel_replace():
    out = torch.full((2, 1, 8, 16), -3.0)
    cond = torch.full((2, 8, 16), -20.0)
    cond[0, :, :6] = 1.0  # item 0: energy in bins 0..5
    cond[1, :, :12] = 1.0
    res = mel_replace(out, cond)
    assert torch.all(out == -3.0)  # input untouched
    k0 = locate_cutoff_bin(torch.exp(cond[0]))
    assert 0 < k0 <= 6
    assert torch.equal(res[0, 0, :, :k0], cond[0, :, :k0])
    assert torch.all(res[0, 0, :, k0:] == -3.0)
    assert torch.equal(mel_replace(out, cond[:, None]), res)


def test_stft_replace_postprocess_identity():
    x = lowpass(np.random.default_rng(0).standard_normal(48000), 6000.0).astype(np.float32)
    y = stft_replace_postprocess(x.copy(), x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y - x)) < 1e-5


def test_faithful_output_level():
    w = np.stack([_tone(300.0, 4800, amp=0.1) + 0.05, np.zeros(4800, np.float32)])
    y = faithful_output_level(w)
    assert y.dtype == np.float32 and y.shape == w.shape
    assert abs(float(np.max(np.abs(y[0] + np.mean(0.5 * w[0] / np.max(np.abs(w[0])))))) - 0.5) < 1e-6
    assert abs(float(np.mean(y[0]))) < 1e-6
    assert np.all(y[1] == 0) and np.all(np.isfinite(y))
