"""The golden store on synthetic waveforms (no model): compare, tolerances, update, missing, stale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiosr_verify import golden as G
from audiosr_verify.report.render import case_table_text

SR = 48000


@pytest.fixture
def store(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    t = np.arange(16000) / 16000
    sf.write(inputs / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return G.GoldenStore(tmp_path / "regression", inputs)


@pytest.fixture
def case(store):
    return G.GoldenCase("tone", "tone.wav", 16000, 8000.0, G.sha256_path(store.inputs_dir / "tone.wav"))


@pytest.fixture
def settings():
    return G.RunSettings()


def _wave(seed: int = 0, n: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(n)).astype(np.float32)


def test_checkpoint_keys():
    assert G.RunSettings().key == "random-tiny-seed0"
    assert G.RunSettings(checkpoint_sha256="ab" * 32, weights_seed=None).key == "ab" * 8


def test_update_writes_files_atomically_and_identical_passes(store, case, settings):
    wave = _wave()
    res = store.update(case, wave, settings)
    assert res.status == "updated" and res.passed
    d = store.case_dir(settings.key, case.name)
    assert sorted(p.name for p in d.iterdir()) == sorted(G.GOLDEN_FILES)
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")], "temporary directory left behind"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["input"]["sha256"] == case.sha256
    assert meta["model"] == {"preset": "tiny", "weights": "random", "weights_seed": 0}
    assert meta["run"] == {"seed": 42, "steps": 2, "guidance_scale": 3.5, "level_mode": "preserve", "mix": "mean"}
    assert {"torch", "numpy", "scipy", "soundfile"} <= set(meta["versions"])
    assert meta["metrics"]["version"] and "lsd" in meta["metrics"]["definitions"]
    assert meta["tolerances"]["si_sdr"] == G.DEFAULT_TOLERANCES["si_sdr"]
    flac, rate = sf.read(d / "output.flac")
    assert rate == SR and sf.info(d / "output.flac").subtype == "PCM_16" and flac.shape == wave.shape
    np.testing.assert_array_equal(G.read_waveform(d / "output.safetensors"), wave)

    res = store.compare(case, wave.copy(), settings)
    assert res.status == "identical" and res.passed and not res.written


def test_small_difference_is_within_tolerance(store, case, settings):
    wave = _wave()
    store.update(case, wave, settings)
    res = store.compare(case, wave + np.float32(1e-5), settings)
    assert res.status == "within_tolerance", res.rows()
    assert {c.name for c in res.checks} >= {"peak_relative_diff", "spectral_distance", "spectral_distance_worst_frame",
                                           "si_sdr", "new_line_artifact", "lsd", "max_abs_diff"}


def test_failure_writes_obtained_files_and_names_metrics(store, case, settings):
    store.update(case, _wave(), settings)
    changed = np.tanh(3 * _wave(seed=1)) * 0.5
    res = store.compare(case, changed, settings)
    assert res.status == "failed" and not res.passed
    failed = {c.name for c in res.failed_checks()}
    assert {"peak_relative_diff", "spectral_distance", "si_sdr"} <= failed
    d = store.case_dir(settings.key, case.name)
    assert sorted(p.name for p in d.iterdir()) == sorted(G.GOLDEN_FILES + G.OBTAINED_FILES)
    np.testing.assert_array_equal(G.read_waveform(d / "obtained.safetensors"), changed.astype(np.float32))
    comparison = json.loads((d / "comparison.json").read_text())
    assert comparison["status"] == "failed" and comparison["case"] == "tone"
    text = case_table_text(res)
    for needle in ("tone", "SI-SDR (dB)", "max |obtained - golden|", "FAIL", "--golden-update"):
        assert needle in text, text
    # the golden itself is untouched, and a later pass removes the stale obtained files
    assert store.compare(case, _wave(), settings).status == "identical"
    assert sorted(p.name for p in d.iterdir()) == sorted(G.GOLDEN_FILES)


def test_length_change_fails(store, case, settings):
    store.update(case, _wave(), settings)
    res = store.compare(case, _wave()[:-10], settings, write_obtained=False)
    assert res.status == "failed" and res.checks[0].name == "length"


def test_missing_golden_fails_and_is_not_created(store, case, settings):
    res = store.compare(case, _wave(), settings, ci=False)
    assert res.status == "missing" and not res.passed and "--golden-update" in res.message
    assert not store.case_dir(settings.key, case.name).exists()
    res = store.compare(case, _wave(), settings, ci=True)
    assert res.status == "missing" and "CI" in res.message
    assert not store.root.exists()


def test_stale_when_input_or_settings_change(store, case, settings):
    store.update(case, _wave(), settings)
    from dataclasses import replace

    res = store.compare(case, _wave(), replace(settings, steps=3))
    assert res.status == "stale" and "run.steps" in res.message
    sf.write(store.inputs_dir / "tone.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    res = store.compare(case, _wave(), settings)
    assert res.status == "stale" and "input tone.wav changed" in res.message


def test_tolerance_overrides(store, case, settings):
    store.update(case, _wave(), settings)
    noisy = _wave() + np.float32(0.01) * np.random.default_rng(5).standard_normal(SR).astype(np.float32)
    assert store.compare(case, noisy, settings).status == "failed"
    key_dir = store.key_dir(settings.key)
    (key_dir / G.TOLERANCES_FILE).write_text(json.dumps(
        {"default": {"si_sdr": {"min": 20.0}, "spectral_distance": {"max": 20.0},
                     "spectral_distance_worst_frame": {"max": 20.0}, "spectral_distance_hf": {"max": 20.0}},
         "cases": {"tone": {"peak_relative_diff": {"max": 0.5}}}}))
    res = store.compare(case, noisy, settings)
    assert res.status == "within_tolerance", res.rows()
    assert res.tolerances["si_sdr"] == {"min": 20.0} and res.tolerances["peak_relative_diff"] == {"max": 0.5}
    # a case's meta overrides win, and survive an update
    meta_path = store.case_dir(settings.key, "tone") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["tolerance_overrides"] = {"si_sdr": {"min": 60.0}}
    meta_path.write_text(json.dumps(meta))
    assert store.compare(case, noisy, settings).status == "failed"
    store.update(case, _wave(), settings)
    assert json.loads(meta_path.read_text())["tolerance_overrides"] == {"si_sdr": {"min": 60.0}}


def test_bad_tolerance_is_an_error():
    with pytest.raises(G.AudioSRError, match="tolerance"):
        G.merge_tolerances({"lsd": {"below": 1}})


def test_select_cases(case):
    assert G.select_cases([case], None) == [case]
    with pytest.raises(G.AudioSRError, match="unknown golden case nope"):
        G.select_cases([case], ["nope"])


def test_committed_case_index_matches_inputs():
    cases = G.load_cases()
    assert 20 <= len(cases) <= 30
    for c in cases:
        path = G.default_inputs_dir() / c.input
        info = sf.info(path)
        assert info.subtype == "PCM_16" and info.samplerate == c.sample_rate
        # short, except what only a long file exercises (chunks): golden/ stays small, the tiers fast
        assert info.frames / info.samplerate <= (30.0 if "chunking" in c.covers else 5.12 + 1e-9)
        assert G.sha256_path(path) == c.sha256, f"{c.input} differs from cases.json"


# --------------------------------------------------------------------------- several channels, 16-bit, fast paths


def _stereo(n: int = SR) -> np.ndarray:
    """A loud left channel and a right one 60 dB below it."""
    return np.stack([_wave(0, n), 1e-3 * _wave(1, n)], axis=1).astype(np.float32)


def test_channels_are_compared_one_by_one_against_their_own_peak(store, case, settings):
    wave = _stereo()
    res = store.update(case, wave, settings)
    meta = json.loads((store.case_dir(settings.key, "tone") / "meta.json").read_text())
    assert meta["output"]["channels"] == 2 and meta["output"]["samples"] == SR
    assert G.read_waveform(store.case_dir(settings.key, "tone") / "output.safetensors").shape == (2 * SR,)
    assert store.compare(case, wave.copy(), settings).status == "identical"
    quiet_changed = wave.copy()
    quiet_changed[:, 1] *= 1.06  # +0.5 dB on the quiet channel: 6e-5 of the loud channel's peak
    res = store.compare(case, quiet_changed, settings, write_obtained=False)
    assert res.status == "failed", res.rows()
    assert any("channels compared one by one" in n for n in res.notes)
    swapped = store.compare(case, wave[:, ::-1], settings, write_obtained=False)
    assert swapped.status == "failed"
    mono = store.compare(case, wave[:, 0], settings, write_obtained=False)
    assert mono.status == "failed" and "x 2 channels" in mono.message


def test_a_16_bit_output_is_stored_as_its_samples(store, case, settings, tmp_path):
    sf.write(tmp_path / "o.wav", _wave(), SR, subtype="PCM_16")
    pcm16, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    store.update(case, pcm16, settings)
    d = store.case_dir(settings.key, "tone")
    assert json.loads((d / "meta.json").read_text())["output"]["dtype"] == "int16"
    assert (d / "output.safetensors").stat().st_size < 2.1 * SR  # two bytes a sample
    assert store.compare(case, pcm16, settings).status == "identical"
    store.update(case, _wave(), settings)  # a float output stays float
    assert json.loads((d / "meta.json").read_text())["output"]["dtype"] == "float32"


def test_a_long_goldens_listening_copy_is_its_first_seconds(store, case, settings):
    n = int((G.store.LISTEN_SECONDS + 3) * SR)
    store.update(case, _wave(0, n), settings)
    d = store.case_dir(settings.key, "tone")
    assert sf.info(d / "output.flac").frames == int(G.store.LISTEN_SECONDS * SR)
    assert G.read_waveform(d / "output.safetensors").shape == (n,)


def test_a_fast_path_is_judged_against_the_golden_it_names_under_its_bounds(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    t = np.arange(16000) / 16000
    sf.write(inputs / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    sha = G.sha256_path(inputs / "tone.wav")
    entries = [
        {"name": "tone", "input": "tone.wav", "sample_rate": 16000, "cutoff_hz": 8000.0, "sha256": sha,
         "options": {"steps": 1}},
        {"name": "tone_bf16", "input": "tone.wav", "sample_rate": 16000, "cutoff_hz": 8000.0, "sha256": sha,
         "options": {"steps": 1, "precision": "bf16"}, "golden": "tone"},
        {"name": "tone_sdpa", "input": "tone.wav", "sample_rate": 16000, "cutoff_hz": 8000.0, "sha256": sha,
         "options": {"steps": 1, "attention": "sdpa"}, "golden": "tone"},
    ]
    (inputs / "cases.json").write_text(json.dumps({"cases": entries}))
    store = G.GoldenStore(tmp_path / "regression", inputs)
    own, bf16, sdpa = store.cases()
    settings = G.RunSettings()
    wave = _wave()
    assert store.update(own, wave, settings).status == "updated"
    meta = json.loads((store.case_dir(settings.key, "tone") / "meta.json").read_text())
    assert meta["run"]["steps"] == 1 and "precision" not in meta["run"]  # defaults are not recorded
    # 0.01 dB of level and 1e-3 of noise: far beyond float rounding, within what bf16 costs
    close = (wave * 10 ** (0.01 / 20) + 1e-3 * np.random.default_rng(3).standard_normal(SR)).astype(np.float32)
    assert store.compare(sdpa, close, settings).status == "failed"
    res = store.compare(bf16, close, settings)
    assert res.status == "within_tolerance", res.rows()
    assert "peak_relative_diff" not in res.tolerances and res.tolerances["si_sdr"] == {"min": 25.0}
    assert "against the golden of tone" in res.message and not store.case_dir(settings.key, "tone_bf16").exists()
    assert store.update(bf16, close, settings).status == "within_tolerance"  # a fast path writes nothing
    assert not store.case_dir(settings.key, "tone_bf16").exists()
    assert store.compare(bf16, 0.5 * wave, settings).status == "failed"  # -6 dB: beyond bf16's bounds


def test_a_case_whose_options_changed_is_stale(store, case, settings):
    from dataclasses import replace

    store.update(case, _wave(), settings)
    res = store.compare(replace(case, options={"format": "wav-pcm16"}), _wave(), settings)
    assert res.status == "stale" and "run.out_format is 'wav-pcm16', golden made with 'wav'" in res.message
    store.update(replace(case, options={"mix": "keep"}), _wave(), settings)
    res = store.compare(case, _wave(), settings)
    assert res.status == "stale" and "run.mix" in res.message


def test_not_applicable_cases_are_reported_and_compare_nothing(store, case, settings):
    from dataclasses import replace

    stereo = replace(case, name="kept", options={"mix": "keep"})
    producer = G.subject_producer(object(), settings, store.inputs_dir)  # never called: nothing it can run
    run = G.run_golden(producer, settings, store, [stereo])
    assert run.results[0].status == "not_applicable" and "--mix keep" in run.results[0].message
    assert run.results[0].passed and not run.passed  # never OK on nothing
