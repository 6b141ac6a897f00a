"""Property tests of the level contract (model/dsp/level.py, docs/level-contract.md).

Normalisation is the original's ``0.5 * (x - mean) / (max|x - mean| + 1e-8)``
in float32. Tolerances below are stated in terms of float32's epsilon and of
the 1e-8 the original adds to the peak; they are what that arithmetic allows,
not fudge factors.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audiosr_verify.testing import strategies as ast
from audiosr_model.dsp import level
from audiosr_model.dsp.waveform import normalize_wav
from audiosr_model.errors import AudioSRError

EPS32 = float(np.finfo(np.float32).eps)
SHORT = dict(max_seconds=2.0, max_channels=1)


def _mono(example):
    x, _ = example
    return x[0]


def _centred_peak32(x: np.ndarray) -> float:
    """max|x - mean| as the normalisation computes it (float32 mean, as numpy 1.x)."""
    from audiosr_model.dsp.waveform import numpy1_mean

    return float(np.max(np.abs(x - numpy1_mean(x))))


def _float_tol(x: np.ndarray) -> float:
    """Float32 error of mean removal, relative to the normalised peak.

    The mean of N float32 samples carries an error of a few ulp of max|x|
    (numpy 1.x sums 8192-sample blocks one after another: we allow 64 ulp),
    which after division by the centred peak is ``64 eps max|x| / peak``.
    """
    p = _centred_peak32(x)
    return 64 * EPS32 * float(np.max(np.abs(x))) / p + 4 * EPS32


finite_arrays = hnp.arrays(
    np.float32,
    st.integers(1, 400),
    elements=st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True),
)


# ---------------------------------------------------------------- normalisation


@given(st.one_of(finite_arrays, ast.audio(**SHORT).map(_mono)))
def test_normalize_finite_in_finite_out(x):
    y = level.normalize_input(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all()
    assert np.max(np.abs(y)) <= 0.5 * (1 + 2 * EPS32)


@given(st.floats(float(np.float32(1e33)), float(np.float32(3e38)), width=32), st.integers(2, 50))
def test_normalize_huge_float_files_stay_finite(big, n):
    """A float32 mean overflows for |x| ~ 1e34+; the guard recomputes in float64."""
    x = np.full(n, big, dtype=np.float32)
    x[::2] = -big
    y = level.normalize_input(x)
    assert np.isfinite(y).all()
    assert abs(float(np.max(np.abs(y))) - 0.5) < 1e-6


@given(ast.non_silent_audio(**SHORT).map(_mono))
def test_normalize_is_the_original_bit_for_bit(x):
    np.testing.assert_array_equal(level.normalize_input(x), normalize_wav(x))


@given(ast.audio(**SHORT).map(_mono))
def test_normalize_removes_the_mean(x):
    y = level.normalize_input(x)
    assume(_centred_peak32(x) > 0)
    # 0.5 * |mean error| / peak: the mean error is bounded as in _float_tol
    assert abs(float(np.mean(y, dtype=np.float64))) <= 0.5 * _float_tol(x)


@given(ast.non_silent_audio(**SHORT).map(_mono))
def test_normalize_peak_is_one_half(x):
    """Peak = 0.5 p / (p + 1e-8) up to float32 rounding (p = centred peak): 0.5 to
    within 0.1 % at the silence threshold, to within 2e-6 above -80 dBFS peak."""
    y = level.normalize_input(x)
    p = _centred_peak32(x)
    expected = 0.5 * p / (p + 1e-8)
    assert abs(float(np.max(np.abs(y))) - expected) <= 2 * EPS32
    assert abs(float(np.max(np.abs(y))) - 0.5) <= 0.5 * 1e-8 / p + 2 * EPS32


@given(
    ast.audio(("tone", "noise", "mix", "clipped", "impulsive", "quiet"), **SHORT).map(_mono),
    st.floats(1e-6, 1e3),
)
def test_normalize_is_scale_invariant(x, a):
    """n(a x) = n(x) except for the 1e-8 added to the peak, which weighs
    1e-8 / (a p) relative: |n(a x) - n(x)| <= 0.5 (1e-8/(a p) + 1e-8/p) + float32 error."""
    xa = (x.astype(np.float64) * a).astype(np.float32)
    p, pa = _centred_peak32(x), _centred_peak32(xa)
    assume(pa > 0)
    assume(pa > 1e-30)  # far below the silence threshold, products go subnormal and lose bits
    diff = np.max(np.abs(level.normalize_input(xa).astype(np.float64) - level.normalize_input(x)))
    tol = 0.5 * (1e-8 / pa + 1e-8 / p) + 0.5 * (_float_tol(x) + _float_tol(xa)) + 1e-7
    assert diff <= tol


@given(ast.non_silent_audio(**SHORT).map(_mono))
def test_normalize_is_idempotent(x):
    """A second pass changes nothing but what the first pass left: its 1e-8 (peak
    0.5 p/(p+1e-8) instead of 0.5) and its float32 residual mean m1 (large when a big
    DC offset carried small content), which the second pass removes:
    |n(n(x)) - n(x)| <= 0.5 (1e-8/p + 1e-8/0.5) + 2 |m1| + float32 rounding."""
    y = level.normalize_input(x)
    z = level.normalize_input(y)
    p = _centred_peak32(x)
    m1 = abs(float(np.mean(y, dtype=np.float64)))
    np.testing.assert_allclose(z, y, rtol=0, atol=0.5 * (1e-8 / p + 1e-8 / 0.5) + 2 * m1 + 8 * EPS32)


@given(ast.audio(**SHORT).map(_mono))
def test_normalize_is_sign_symmetric(x):
    """Exact: the float32 mean and peak of -x are those of x negated."""
    np.testing.assert_array_equal(level.normalize_input(-x), -level.normalize_input(x))


# ---------------------------------------------------------------- silence


@given(ast.silent_kinds_audio(max_seconds=2.0))
def test_silent_kinds_are_silent(example):
    x, _ = example
    for ch in x:
        assert level.is_silent(ch)
    assert level.is_silent(x.mean(axis=0))


@given(ast.quiet_audio(max_seconds=2.0, max_channels=1))
def test_quiet_is_not_silent(example):
    x, _ = example
    assert not level.is_silent(x[0])
    assert level.rms(x[0]) >= level.SILENCE_PEAK * (1 - 1e-4)


@given(st.floats(-1, 1), st.floats(0, 0.99))
def test_silence_threshold_is_the_centred_peak(dc, frac):
    """DC plus a wiggle: silent iff the mean-removed peak <= 1e-5, whatever the DC."""
    wiggle = frac * 2 * level.SILENCE_PEAK
    x = np.full(1000, dc, dtype=np.float64)
    x[::2] += wiggle
    assert level.is_silent(x) == (level.peak(x) <= level.SILENCE_PEAK)
    assert level.is_silent(np.full(10, dc))


# ---------------------------------------------------------------- output level


model_outputs = st.one_of(
    ast.audio(("tone", "noise", "mix", "clipped", "impulsive", "quiet", "silent"), **SHORT).map(_mono),
    ast.audio(("tone", "noise"), level_db=(-3.0, 20.0), **SHORT).map(_mono),  # hot model outputs
)


@given(st.data())
def test_preserve_output_contract(data):
    ref = data.draw(ast.audio(**SHORT).map(_mono), label="reference")
    y = data.draw(model_outputs, label="model output")
    n = min(len(ref), len(y))
    ref, y = ref[:n], y[:n]
    out, info = level.preserve_output(y, ref)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert np.isfinite(out).all()
    assert np.max(np.abs(out), initial=0) <= level.PEAK_LIMIT
    target, got = level.rms(ref), level.rms(out)
    if target == 0 or level.rms(y) == 0:
        assert not out.any()
        return
    # the gain cap: at most MAX_GAIN x the inverse of the input normalisation
    assert info["gain"] <= level.MAX_GAIN / level.input_gain(ref) * (1 + 1e-12)
    assert got <= target * (1 + 1e-6)
    if not info["capped"] and not info["limited"]:
        assert abs(got - target) <= 1e-6 * target
    if info["limited"]:
        assert abs(float(np.max(np.abs(out))) - level.PEAK_LIMIT) <= 1e-6


@given(ast.audio(("tone", "noise", "mix", "silent", "impulsive"), **SHORT).map(_mono))
def test_faithful_output_level(y):
    out = level.faithful_output(y)
    assert np.isfinite(out).all() and out.shape == y.shape
    if not y.any():
        assert not out.any()
        return
    # peak 0.5 before the mean is removed: after it, within 0.5 + |mean|
    assert float(np.max(np.abs(out))) <= 0.5 + abs(float(np.mean(0.5 * y / np.max(np.abs(y))))) + 4 * EPS32
    assert abs(float(np.mean(out, dtype=np.float64))) <= 1e-6


@settings(max_examples=5)
@given(st.sampled_from([np.nan, np.inf, -np.inf]))
def test_non_finite_model_output_is_an_error(bad):
    y = np.ones(100, dtype=np.float32)
    y[3] = bad
    with pytest.raises(AudioSRError):
        level.preserve_output(y, np.ones(100))
    with pytest.raises(AudioSRError):
        level.faithful_output(y)


# ---------------------------------------------------------------- the strategies themselves


@settings(max_examples=40)
@given(st.data())
def test_strategies_deliver_what_they_promise(data):
    kind = data.draw(st.sampled_from(ast.KINDS), label="kind")
    x, rate = data.draw(ast.audio((kind,), max_seconds=0.5), label="audio")
    assert x.dtype == np.float32 and x.ndim == 2
    assert 1 <= x.shape[0] <= 6 and x.shape[1] >= 1
    assert 8000 <= rate <= 96000
    assert np.isfinite(x).all() and float(np.max(np.abs(x))) <= 1.0
    if kind in ast.SILENT_KINDS:
        assert all(level.is_silent(ch) for ch in x)
    if kind == "quiet":
        assert all(-100.5 <= level.dbfs(level.rms(ch)) <= -39.5 for ch in x)
