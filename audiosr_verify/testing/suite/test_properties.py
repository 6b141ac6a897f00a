"""Level, silence and feature invariants of the session's subject, hammered by hypothesis.

The properties (audiosr_verify/checks/properties.py) follow from the
original's arithmetic, so the original satisfies them too. Stages the subject
does not provide are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiosr_verify.checks import properties as P
from audiosr_verify.testing import strategies as A

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
SLOW = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


def _needs(subject, stage: str) -> None:
    if stage not in subject.provided():
        pytest.skip(f"{subject.name} does not provide {stage}")


def _mono(example) -> np.ndarray:
    audio, _ = example
    return np.ascontiguousarray(audio[0], dtype=np.float32)


@FAST
@given(example=A.audio(max_seconds=0.5, max_channels=1))
def test_normalize_peak_and_mean(audiosr_subject, example):
    _needs(audiosr_subject, "normalize")
    assert P.normalize_properties(audiosr_subject, _mono(example)) == []


@FAST
@given(example=A.audio(max_seconds=0.4, max_channels=1), frames=st.integers(4, 40))
def test_features_shapes_and_floor(audiosr_subject, example, frames):
    _needs(audiosr_subject, "features")
    x = _mono(example)
    padded = np.zeros(frames * 480, np.float32)
    padded[: min(x.size, padded.size)] = x[: padded.size]
    assert P.features_properties(audiosr_subject, padded) == []


@FAST
@given(stft=st.integers(0, 2**32 - 1).map(
    lambda seed: np.abs(np.random.default_rng(seed).standard_normal((8, 1024))).astype(np.float32)
    * np.linspace(1.0, 0.0, 1024, dtype=np.float32)))
def test_cutoff_range_and_scale(audiosr_subject, stft):
    _needs(audiosr_subject, "cutoff")
    assert P.cutoff_properties(audiosr_subject, stft) == []


@FAST
@given(example=A.audio(max_seconds=0.5, max_channels=1))
def test_output_level(audiosr_subject, example):
    _needs(audiosr_subject, "output_level")
    assert P.output_level_properties(audiosr_subject, _mono(example)) == []


@SLOW
@given(example=A.audio(min_seconds=0.05, max_seconds=1.0, max_channels=2, rates=(16000, 22050, 48000)))
def test_enhance_length_silence_and_gain(audiosr_subject, example):
    _needs(audiosr_subject, "enhance")
    audio, rate = example
    assert P.enhance_properties(audiosr_subject, np.ascontiguousarray(audio, np.float32), rate) == []
