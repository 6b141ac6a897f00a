"""Tests of audiosr_verify.compare.metrics on hand-computable and synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from audiosr_verify.compare import metrics as M

SR = 48000


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _noise(seconds: float = 1.0, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return scale * _rng(seed).standard_normal(int(seconds * SR))


def _tones(freqs: list[float], seconds: float, amp: float = 0.05) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(amp * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs))


def _speech_like(seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """Glottal pulse train (f0 wandering 100-200 Hz) through 3 formant resonators that
    change every 0.2 s, with pauses and a -70 dB noise floor."""
    rng = _rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = np.cumsum(f0) / SR
    pulses = np.zeros(n)
    pulses[np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1] = 1.0
    pulses = scipy.signal.lfilter([1.0], [1.0, -0.95], pulses)  # glottal roll-off
    out = np.zeros(n)
    seg = int(0.2 * SR)
    for start in range(0, n, seg):
        chunk = pulses[start : start + seg]
        y = chunk
        for fc, bw in ((rng.uniform(300, 900), 80), (rng.uniform(900, 2500), 120), (rng.uniform(2400, 3500), 200)):
            r = math.exp(-math.pi * bw / SR)
            y = scipy.signal.lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * fc / SR), r * r], y)
        out[start : start + seg] = y
    envelope = np.ones(n)
    for pause in (0.5, 1.4, 2.3):  # ~0.25 s pauses
        envelope[int(pause * SR) : int((pause + 0.25) * SR)] = 0.0
    out = out * scipy.signal.lfilter([0.01], [1, -0.99], envelope)  # smooth on/offsets
    out /= np.max(np.abs(out))
    return 0.5 * out + 1e-4 * rng.standard_normal(n)


def _music_like(seconds: float = 3.0, seed: int = 2) -> np.ndarray:
    """Random notes (MIDI 45-81) of 0.3 s with 6 decaying harmonics and a decay envelope."""
    rng = _rng(seed)
    seg = int(0.3 * SR)
    t = np.arange(seg) / SR
    env = np.exp(-t * 6) * np.minimum(1, t * 200)
    notes = []
    for _ in range(int(seconds / 0.3)):
        f = 440 * 2 ** ((rng.integers(45, 82) - 69) / 12)
        notes.append(env * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 7) if k * f < SR / 2))
    out = np.concatenate(notes)
    return 0.3 * out / np.max(np.abs(out)) + 1e-4 * rng.standard_normal(out.size)


# --------------------------------------------------------------------------- STFT


def test_stft_magnitude_matches_hand_dft_and_frame_count():
    x = _rng(3).standard_normal(37)
    n_fft, hop = 8, 3
    mag = M.stft_magnitude(x, n_fft=n_fft, hop_length=hop)
    assert mag.shape == (n_fft // 2 + 1, 1 + len(x) // hop)
    padded = np.concatenate([np.zeros(4), x, np.zeros(4)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    for t in (0, 5, mag.shape[1] - 1):
        frame = padded[t * hop : t * hop + n_fft] * window
        expected = np.abs(np.sum(frame[None, :] * np.exp(-2j * np.pi * k * n / n_fft), axis=1))
        np.testing.assert_allclose(mag[:, t], expected, atol=1e-12)


def test_stft_accepts_torch_and_row_vector():
    torch = pytest.importorskip("torch")
    x = _noise(0.1)
    ref = M.stft_magnitude(x)
    np.testing.assert_allclose(M.stft_magnitude(x[None, :]), ref)
    np.testing.assert_allclose(M.stft_magnitude(torch.from_numpy(x).float()[None]), ref, rtol=1e-5, atol=1e-5)
    # The MR-STFT path (short centred window, reflect padding) must equal torch.stft.
    spec = torch.stft(torch.from_numpy(x), 1024, 120, 600, window=torch.hann_window(600, dtype=torch.float64),
                      center=True, pad_mode="reflect", return_complex=True)
    ours = M.stft_magnitude(x, 1024, 120, win_length=600, pad_mode="reflect")
    np.testing.assert_allclose(ours, spec.abs().numpy(), atol=1e-10)


# --------------------------------------------------------------------------- LSD


def test_lsd_identity_gain_and_alignment():
    x = _noise(1.0)
    # Not exactly 0: the NVSR formula's "+ eps" inside log10 leaves a ~1e-8 bias.
    assert M.lsd(x, x, SR) == pytest.approx(0.0, abs=1e-7)
    assert M.lsd(x, 2 * x, SR) == pytest.approx(math.log10(4), rel=1e-6)  # every bin off by 2x
    assert M.lsd(x, 2 * x, SR, align_low_band=0.1) < 1e-3


def test_lsd_bands_and_silence():
    x = _noise(1.0)
    lowpassed = scipy.signal.sosfiltfilt(scipy.signal.butter(12, 4000, fs=SR, output="sos"), x)
    hf = M.lsd_hf(x, lowpassed, SR, cutoff_hz=6000)
    lf = M.lsd_lf(x, lowpassed, SR, cutoff_hz=3000)
    assert hf > 3 and lf < 0.05
    assert M.lsd(x, lowpassed, SR, band="high", cutoff_hz=6000) == hf
    with pytest.raises(ValueError):
        M.lsd(x, x, SR, band="high")
    z = np.zeros(SR // 2)
    assert M.lsd(z, z, SR) == pytest.approx(8.0)  # documented: -log10(eps) for silent bins


def test_lsd_trims_to_shorter():
    x = _noise(1.0)
    assert M.lsd(x, x[: SR // 2], SR) == M.lsd(x[: SR // 2], x[: SR // 2], SR)


# --------------------------------------------------------------------------- SI-SDR / SNR


def _at_snr(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = _rng(seed).standard_normal(x.size)
    noise *= np.sqrt(np.sum(x**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return x + noise


def test_si_sdr_and_snr_at_20_db():
    x = _speech_like(1.0)
    y = _at_snr(x, 20.0, seed=5)
    assert M.snr(x, y) == pytest.approx(20.0, abs=1e-9)
    assert M.si_sdr(x, y) == pytest.approx(20.0, abs=0.5)
    assert M.si_sdr(x, 3 * y) == pytest.approx(M.si_sdr(x, y))  # scale invariance
    assert M.si_sdr(x, x) == math.inf and M.snr(x, x) == math.inf
    z = np.zeros(100)
    assert M.snr(z, z) == math.inf and M.snr(z, x[:100]) == -math.inf
    assert M.si_sdr(z, x[:100]) == -math.inf
    # an all-zero (or constant) output against a real signal is the worst estimate, not a perfect one
    assert M.si_sdr(x[:100], z) == -math.inf and M.si_sdr(x[:100], z + 0.5) == -math.inf
    assert M.si_sdr(z, z) == math.inf  # silence for silence is still exact


# --------------------------------------------------------------------------- mel


def test_slaney_mel_scale_and_filterbank():
    assert M.hz_to_mel_slaney(1000.0) == pytest.approx(15.0)
    assert M.hz_to_mel_slaney(200.0 / 3.0) == pytest.approx(1.0)
    assert M.hz_to_mel_slaney(6400.0) == pytest.approx(42.0)  # 15 + 27 log(6.4)/log(6.4)
    f = np.array([0.0, 440.0, 1000.0, 5000.0, 20000.0])
    np.testing.assert_allclose(M.mel_to_hz_slaney(M.hz_to_mel_slaney(f)), f, atol=1e-9)
    fb = M.mel_filterbank(SR, 2048, 128)
    assert fb.shape == (128, 1025) and fb.min() >= 0
    bin_hz = SR / 2048
    area = fb.sum(axis=1) * bin_hz  # slaney norm: unit area in Hz once filters span many bins
    np.testing.assert_allclose(area[64:], 1.0, rtol=0.02)


def test_log_mel_l1():
    x = _noise(0.5)
    assert M.log_mel_l1(x, x, SR) == 0.0
    assert M.log_mel_l1(x, 2 * x, SR) == pytest.approx(math.log(2), rel=1e-9)
    z = np.zeros(SR // 4)
    assert M.log_mel_l1(z, z, SR) == 0.0


# --------------------------------------------------------------------------- SC / MR-STFT


def test_spectral_convergence():
    x = _noise(0.5)
    assert M.spectral_convergence(x, np.zeros_like(x)) == pytest.approx(1.0)
    assert M.spectral_convergence(x, x) == 0.0
    assert M.spectral_convergence(x, 1.5 * x) == pytest.approx(0.5)
    z = np.zeros_like(x)
    assert M.spectral_convergence(z, z) == 0.0 and M.spectral_convergence(z, x) == math.inf


def test_multi_resolution_stft_distance():
    x = _noise(0.5)
    assert M.multi_resolution_stft_distance(x, x) == 0.0
    # Magnitudes far above the 1e-7 power floor: SC = 1 and |log ratio| = log 2 per resolution.
    assert M.multi_resolution_stft_distance(x, 2 * x) == pytest.approx(1 + math.log(2), rel=1e-6)
    z = np.zeros_like(x)
    assert M.multi_resolution_stft_distance(z, z) == 0.0
    assert np.isfinite(M.multi_resolution_stft_distance(x, z))


# --------------------------------------------------------------------------- loudness


def test_loudness_calibration_and_difference():
    t = np.arange(3 * SR) / SR
    sine = np.sin(2 * np.pi * 997 * t)
    assert M.loudness_lufs(sine, SR) == pytest.approx(-3.01, abs=0.01)
    assert M.loudness_lufs(0.1 * sine, SR) == pytest.approx(-23.0, abs=0.1)
    x = _speech_like(2.0)
    assert M.loudness_difference(x, 2 * x, SR) == pytest.approx(20 * math.log10(2), abs=1e-6)
    z = np.zeros(SR)
    assert M.loudness_lufs(z, SR) == -math.inf
    assert M.loudness_difference(z, z, SR) == 0.0
    assert M.loudness_difference(z, x[:SR], SR) == math.inf


def test_loudness_gating_with_silence_padding():
    t = np.arange(2 * SR) / SR
    tone = 0.1 * np.sin(2 * np.pi * 997 * t)
    padded = np.concatenate([tone, np.zeros(2 * SR)])
    # 2 s of tone = 17 full blocks; the next 3 blocks hold 75/50/25 % tone and pass both
    # gates, all-silent blocks fail the absolute gate: mean z = (17 + 1.5) / 20 of the tone's.
    expected = M.loudness_lufs(tone, SR) + 10 * math.log10(18.5 / 20)
    assert M.loudness_lufs(padded, SR) == pytest.approx(expected, abs=0.01)


def test_loudness_agrees_with_the_bs1770_reference():
    """The K-weighting loudness_lufs uses (pyloudnorm's "DeMan" filters) at 48 kHz is the coefficient
    table of ITU-R BS.1770-4 (tables 1 and 2), and a signal shorter than one block still measures."""
    import pyloudnorm

    meter = pyloudnorm.Meter(SR, filter_class="DeMan")
    (shelf_b, shelf_a), (hp_b, hp_a) = [(f.b, f.a) for f in meter._filters.values()]
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-12)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-12)
    np.testing.assert_allclose(hp_b, [1.0, -2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(hp_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)
    # one 400 ms block by hand and the same samples measured as a block of a longer signal agree
    tone = 0.1 * np.sin(2 * np.pi * 997 * np.arange(int(0.4 * SR)) / SR)
    assert M.loudness_lufs(tone[:-1], SR) == pytest.approx(M.loudness_lufs(tone, SR), abs=0.01)
    assert M.loudness_lufs(np.zeros(100), SR) == -math.inf


# --------------------------------------------------------------------------- high band energy


def test_high_band_energy_ratio():
    x = _noise(0.5)
    assert M.high_band_energy_ratio(x, x, SR, 8000) == 1.0
    assert M.high_band_energy_ratio(x, 2 * x, SR, 8000) == pytest.approx(4.0)
    lowpassed = scipy.signal.sosfiltfilt(scipy.signal.butter(12, 4000, fs=SR, output="sos"), x)
    assert M.high_band_energy_ratio(x, lowpassed, SR, 8000) < 1e-5
    z = np.zeros_like(x)
    assert M.high_band_energy_ratio(z, z, SR, 8000) == 1.0
    assert M.high_band_energy_ratio(z, x, SR, 8000) == math.inf


# --------------------------------------------------------------------------- line artifacts

BIN_HZ = SR / 4096  # detector's default resolution
TONES = [3000.0, 7500.0, 853.5 * BIN_HZ, 12345.0, 18000.0]  # the third falls halfway between bins


def _assert_lines_at(result: M.LineArtifactResult, freqs: list[float]) -> None:
    assert result.flagged
    assert len(result.frequencies_hz) == len(freqs), result
    for got, want in zip(result.frequencies_hz, freqs):
        assert abs(got - want) <= 2 * BIN_HZ


def test_line_detector_finds_steady_tones_in_noise():
    out = _noise(3.0) + _tones(TONES, 3.0)
    _assert_lines_at(M.detect_line_artifacts(out, SR), TONES)
    _assert_lines_at(M.detect_line_artifacts(out, SR, reference=_noise(3.0, seed=9)), TONES)


def test_line_detector_finds_tones_added_to_speech():
    high = [9000.0, 15000.0]
    _assert_lines_at(M.detect_line_artifacts(_speech_like() + _tones(high, 3.0, amp=0.003), SR), high)


@pytest.mark.parametrize("make", [_speech_like, _music_like, _noise], ids=["speech", "music", "noise"])
def test_line_detector_quiet_on_natural_signals(make):
    result = M.detect_line_artifacts(make(), SR)
    assert not result.flagged and result.frequencies_hz == [], result
    assert result.score < 0.7  # music repeats notes and harmonics, so scores the highest (~0.5)


def test_line_detector_ignores_band_edge_and_silence():
    lowpassed = scipy.signal.sosfiltfilt(scipy.signal.butter(16, 8000, fs=SR, output="sos"), _noise(3.0))
    assert not M.detect_line_artifacts(lowpassed, SR).flagged
    silent = M.detect_line_artifacts(np.zeros(SR), SR)
    assert silent == M.LineArtifactResult(score=0.0, frequencies_hz=[], flagged=False)


def test_line_detector_tones_present_in_reference_are_not_flagged():
    tones = _tones(TONES, 3.0)
    out = _noise(3.0) + tones
    result = M.detect_line_artifacts(out, SR, reference=_noise(3.0, seed=4) + tones)
    assert not result.flagged and result.frequencies_hz == []
    # A low-rate reference (the SR input) that holds only the 3 kHz tone explains only that line.
    ref16 = scipy.signal.resample_poly(_noise(3.0, seed=4) + _tones([3000.0], 3.0), 1, 3)
    partial = M.detect_line_artifacts(out, SR, reference=ref16, reference_sample_rate=16000)
    _assert_lines_at(partial, TONES[1:])


# --------------------------------------------------------------------------- validation / compute_all


@pytest.mark.parametrize(
    "call",
    [
        lambda x: M.lsd(x, x, SR),
        lambda x: M.si_sdr(x, x),
        lambda x: M.snr(x, x),
        lambda x: M.log_mel_l1(x, x, SR),
        lambda x: M.spectral_convergence(x, x),
        lambda x: M.multi_resolution_stft_distance(x, x),
        lambda x: M.loudness_lufs(x, SR),
        lambda x: M.high_band_energy_ratio(x, x, SR, 4000),
        lambda x: M.detect_line_artifacts(x, SR),
        lambda x: M.stft_magnitude(x),
    ],
)
def test_nan_and_empty_inputs_raise(call):
    bad = _noise(0.1)
    bad[10] = np.nan
    with pytest.raises(ValueError):
        call(bad)
    with pytest.raises(ValueError):
        call(np.array([]))


def test_stereo_input_raises():
    with pytest.raises(ValueError):
        M.stft_magnitude(np.zeros((2, 100)))


def test_compute_all_names_and_values():
    x = _speech_like(1.0)
    y = _at_snr(x, 20.0, seed=6)
    full = M.compute_all(x, y, SR, cutoff_hz=4000)
    assert set(full) == set(M.METRIC_DEFINITIONS) - {"stft_magnitude"}
    assert set(M.compute_all(x, y, SR)) == set(full) - {"lsd_hf", "lsd_lf", "high_band_energy_ratio",
                                                        "spectral_distance_hf"}
    assert all(isinstance(v, float) and not math.isnan(v) for v in full.values())
    assert full["snr"] == pytest.approx(20.0)
    silent = M.compute_all(np.zeros(SR), np.zeros(SR), SR, cutoff_hz=4000)
    assert not any(math.isnan(v) for v in silent.values())
    assert M.METRICS_VERSION == "2"
    assert all(d.startswith(("v1:", "v2:")) for d in M.METRIC_DEFINITIONS.values())


def test_peak_relative_diff():
    x = _speech_like(0.5)
    assert M.peak_relative_diff(x, x) == 0.0
    y = x.copy()
    y[100] += 0.01 * np.max(np.abs(x))
    assert M.peak_relative_diff(x, y) == pytest.approx(0.01)
    assert M.peak_relative_diff(np.zeros(100), np.zeros(100)) == 0.0
    assert M.peak_relative_diff(np.zeros(100), np.ones(100)) == math.inf


def test_spectral_distance_floor_and_gain():
    x = _speech_like(1.0)
    same = M.spectral_distance(x, x, SR, cutoff_hz=4000)
    assert same.mean_db == 0.0 and same.worst_frame_db == 0.0 and same.hf_db == 0.0
    # a gain of g dB moves every bin above the floor by exactly g dB
    loud = M.spectral_distance(x, x * 10 ** (0.5 / 20), SR, cutoff_hz=4000)
    assert 0.2 < loud.mean_db <= 0.5 + 1e-9 and loud.worst_frame_db == pytest.approx(0.5, abs=0.05)
    # changes far below the floor (80 dB under the RMS) do not count; the published LSD counts them
    rng = np.random.default_rng(3)
    quiet = np.concatenate([x, np.zeros(SR)])
    dust = quiet + 1e-9 * rng.standard_normal(quiet.size)
    assert M.spectral_distance(quiet, dust, SR).mean_db < 1e-3
    assert M.lsd(quiet, dust, SR) > 0.5
    # a click in one frame shows in the worst frame, much less in the mean
    click = x.copy()
    click[SR // 2] += 0.05
    d = M.spectral_distance(x, click, SR)
    assert d.worst_frame_db > 10 * d.mean_db and d.worst_frame_db > 0.05
    # no cutoff: no band value
    assert M.spectral_distance(x, x, SR).hf_db is None
