"""Goldens of a checkpoint of one's own get bounds measured on that checkpoint (audiosr_verify/golden/noise.py).

`golden update` (and `pytest --audiosr-checkpoint CKPT --golden-update`) with weights other than the bundled
random tiny ones measures each written golden's float noise (recomputed with another thread count and
oneDNN off; 1e-6 relative; +-1 ulp), derives bounds from it (never tighter than the default) and stores
both in tolerances.json; `golden check` says which bound applied to each metric and the noise beside it.
Both directions: the noise passes under the measured bounds, a real change still fails.

The model runs here are of the tiny preset, seeded checkpoint, one short case (full_window_16k: 1 DDIM step);
the rest works on waveforms (a `Producer`) and runs no model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiosr_verify import golden as G
from audiosr_verify.cli.main import main
from audiosr_verify.golden import noise as N
from audiosr_verify.golden.perturbations import CHANGES, gain_db, relative_noise

ROOT = Path(__file__).resolve().parent.parent
CASE = "full_window_16k"
SCALED = ("peak_relative_diff", "spectral_distance", "spectral_distance_worst_frame", "spectral_distance_hf",
          "si_sdr")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny-seed3.ckpt"
    assert main(["make-checkpoint", "--preset", "tiny", "--seed", "3", "--output", str(path)]) == 0
    return path


def _model_args(checkpoint: Path, store: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--preset", "tiny", "--golden-dir", str(store), "--case", CASE]


@pytest.fixture(scope="module")
def measured(checkpoint, tmp_path_factory):
    """A store updated by the CLI with that checkpoint: (store root, key, update's stdout)."""
    import contextlib
    import io

    store = tmp_path_factory.mktemp("measured")
    out = io.StringIO()  # a module fixture has no capsys
    with contextlib.redirect_stdout(out):
        assert main(["golden", "update", *_model_args(checkpoint, store)]) == 0
    key = G.RunSettings.for_checkpoint(checkpoint, preset="tiny").key
    return store, key, out.getvalue()


def _document(store: Path, key: str) -> dict:
    return json.loads((store / key / G.TOLERANCES_FILE).read_text())


# --------------------------------------------------------------------------- through the CLI, with a model


def test_update_stores_the_measured_noise_and_the_bounds_derived_from_it(measured):
    store, key, out = measured
    doc = _document(store, key)["measured"]
    assert doc["rule"] == N.RULE and doc["factor"] == N.FACTOR
    entry = doc["cases"][CASE]
    meta = json.loads((store / key / CASE / "meta.json").read_text())
    assert entry["golden_sha256"] == meta["output"]["sha256_float32"]  # it measured this golden
    assert entry["threads"]["recomputed"] != entry["threads"]["golden"]
    assert entry["host_cpu"] and entry["date"] and entry["torch"]
    # an honest measurement: another reduction order really changed the output, and every noise is recomputed
    assert entry["recomputation_identical"] is False
    variants = entry["noise"]
    assert set(variants) == {N.RECOMPUTED.format(threads=entry["threads"]["recomputed"]), "relative noise 1e-6",
                             "+-1 ulp"}
    for m in SCALED:
        values = [v[m] for v in variants.values()]
        assert all(isinstance(v, float) for v in values), (m, values)
        worst = min(values) if m == "si_sdr" else max(values)
        assert entry["worst_noise"][m] == worst
        assert 0 < worst < float("inf")
        default = G.DEFAULT_TOLERANCES[m]
        bound = entry["bounds"][m]
        if "max" in default:  # never tighter than the default; looser only by the rule
            assert bound["max"] == max(default["max"], N.FACTOR * worst)
        else:
            assert bound["min"] == min(default["min"], worst - N.SI_SDR_MARGIN_DB)
    # the update says what it measured, and that the recomputation differed
    assert f"{CASE}: float noise measured" in out and "differs" in out
    assert "differed on 1 of 1 measured case(s)" in out
    assert not entry["missed_changes"]  # every real change is still caught under the measured bounds


def test_check_reports_the_measured_bounds_and_noise_from_another_reduction_order_passes(measured, checkpoint,
                                                                                          tmp_path, capsys):
    """`golden check` recomputed with another thread count and oneDNN off: within tolerance, each metric's
    bound reported as measured for this checkpoint with its noise, in the table and in the JSON."""
    store, key, _ = measured
    report = tmp_path / "check.json"
    with N.other_reduction_order(N.other_threads(N.current_threads())):
        assert main(["golden", "check", *_model_args(checkpoint, store), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    case = result["cases"][0]
    assert case["status"] == "within_tolerance", case  # float noise: not bitwise identical, and it passes
    entry = _document(store, key)["measured"]["cases"][CASE]
    for m in SCALED:
        assert case["bounds"][m]["source"] == "measured"
        assert case["bounds"][m]["measured_noise"] == entry["worst_noise"][m]
        assert case["bounds"][m]["bound"] == entry["bounds"][m]
        assert case["bounds"][m]["default"] == G.DEFAULT_TOLERANCES[m]
    assert result["notices"] == []
    assert "bounds applied" in out and "measured" in out and "noise " in out
    assert "unmeasured" not in out


def test_no_measure_noise_writes_no_bounds_and_check_says_they_are_unmeasured(checkpoint, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["golden", "update", *_model_args(checkpoint, store), "--no-measure-noise"]) == 0
    out = capsys.readouterr().out
    key = G.RunSettings.for_checkpoint(checkpoint, preset="tiny").key
    assert not (store / key / G.TOLERANCES_FILE).exists()
    assert "float noise not measured" in out
    report = tmp_path / "check.json"
    assert main(["golden", "check", *_model_args(checkpoint, store), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    notice = [line for line in out.splitlines() if "tiny-model defaults, unmeasured for this checkpoint" in line]
    assert len(notice) == 1, out
    result = json.loads(report.read_text())
    assert len(result["notices"]) == 1 and "unmeasured for this checkpoint" in result["notices"][0]
    assert {b["source"] for b in result["cases"][0]["bounds"].values()} == {"default"}


def test_pytest_golden_update_with_a_checkpoint_measures_the_same_way(checkpoint, tmp_path):
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "AUDIOSR_CHECKPOINT")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"tests/test_golden_regression.py::test_golden_case[{CASE}]", "--golden-update",
                        "--audiosr-checkpoint", str(checkpoint), "--audiosr-preset", "tiny",
                        "--audiosr-golden-dir", str(store)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    key = G.RunSettings.for_checkpoint(checkpoint, preset="tiny").key
    entry = _document(store, key)["measured"]["cases"][CASE]
    assert entry["recomputation_identical"] is False
    assert set(entry["worst_noise"]) >= set(SCALED)
    assert f"{CASE}: float noise measured" in r.stdout


# --------------------------------------------------------------------------- the rule, and waveforms without a model


def test_the_rule_never_tightens_a_default_and_scales_the_noise():
    defaults = {"peak_relative_diff": {"max": 1e-3}, "si_sdr": {"min": 60.0}, "new_line_artifact": {"max": 0}}
    bounds, raised = N.derive_bounds(defaults, {"peak_relative_diff": 1e-6, "si_sdr": 120.0,
                                                "new_line_artifact": 0.0})
    assert bounds == defaults and raised == {}
    bounds, raised = N.derive_bounds(defaults, {"peak_relative_diff": 1e-3, "si_sdr": 65.0,
                                                "new_line_artifact": 1.0})
    assert bounds["peak_relative_diff"] == {"max": 4e-3}
    assert bounds["si_sdr"]["min"] == pytest.approx(65.0 - 12.0412, abs=1e-3)
    assert bounds["new_line_artifact"] == {"max": 0}  # a flag: never scaled
    assert set(raised) == {"peak_relative_diff", "si_sdr"}
    assert raised["peak_relative_diff"]["noise"] == 1e-3


def _signal() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(2 * 48000) / 48000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _settings() -> G.RunSettings:
    """Settings of a checkpoint of one's own (its key is its hash): the bounds are not the bundled ones."""
    return G.RunSettings(preset="tiny", weights_seed=None, checkpoint="mine.ckpt", checkpoint_sha256="ab" * 32)


def _producer(*outputs: np.ndarray):
    """A source giving ``outputs`` in turn (the golden, then its recomputation); the last one repeats."""
    calls = []

    def produce(case):
        calls.append(case.name)
        return outputs[min(len(calls), len(outputs)) - 1]

    produce.calls = calls
    return produce


def _case(store: G.GoldenStore) -> G.GoldenCase:
    return G.select_cases(store.cases(), [CASE])[0]


def test_bundled_weights_measure_nothing(tmp_path):
    store = G.GoldenStore(tmp_path)
    produce = _producer(_signal())
    run = G.run_golden(produce, G.RunSettings(), store, [_case(store)], update=True)
    assert run.passed and produce.calls == [CASE]  # no recomputation
    assert not (tmp_path / G.RunSettings().key / G.TOLERANCES_FILE).exists()
    assert run.results[0].noise is None and run.notices == []


def test_a_raised_bound_is_printed_with_its_noise_and_a_change_it_lets_through_is_reported(tmp_path):
    """Noise far above the tiny model's (2e-2 relative) raises the bounds: each raised one is printed with the
    noise that set it, at the update and at every check; 0.5 dB of gain is then within 4x that noise, and the
    update says it is no longer caught."""
    store = G.GoldenStore(tmp_path)
    case = _case(store)
    x = _signal()
    run = G.run_golden(_producer(x, relative_noise(x, 2e-2, seed=1)), _settings(), store, [case], update=True)
    res = run.results[0]
    assert res.status == "updated" and res.noise["raised"]
    assert any(n.startswith("bound RAISED above the default: peak_relative_diff") and "measured noise" in n
               for n in res.notes), res.notes
    assert "gain +0.5 dB" in res.noise["missed_changes"]
    assert any("NOT CAUGHT" in n for n in res.notes) and any("NOT CAUGHT" in n for n in run.notices)
    check = store.compare(case, relative_noise(x, 2e-2, seed=2), _settings(), write_obtained=False)
    assert check.passed and check.bounds["peak_relative_diff"]["source"] == "measured"
    assert any(n.startswith("bound of peak_relative_diff") and "measured noise" in n for n in check.notes)


def test_real_changes_fail_under_measured_bounds(tmp_path):
    store = G.GoldenStore(tmp_path)
    case = _case(store)
    x = _signal()
    recomputed = relative_noise(x, 1e-6, seed=3)  # a recomputation that differs by float noise
    G.run_golden(_producer(x, recomputed), _settings(), store, [case], update=True)
    key = _settings().key
    assert N.measured_entries(store, key)[CASE]["recomputation_identical"] is False
    gained = G.run_golden(_producer(gain_db(x, 0.5)), _settings(), store, [case], write_obtained=False)
    assert not gained.passed and gained.results[0].status == "failed"
    assert gained.results[0].bounds["spectral_distance"]["source"] == "measured"
    for name, change in CHANGES.items():
        res = store.compare(case, change(x, case.cutoff_hz), _settings(), write_obtained=False)
        assert res.status == "failed", name
    noisy = G.run_golden(_producer(relative_noise(x, 1e-6, seed=4)), _settings(), store, [case],
                         write_obtained=False)
    assert noisy.passed and noisy.results[0].status == "within_tolerance" and noisy.notices == []


def test_an_identical_recomputation_is_said_so(tmp_path):
    store = G.GoldenStore(tmp_path)
    x = _signal()
    run = G.run_golden(_producer(x), _settings(), store, [_case(store)], update=True)
    assert run.results[0].noise["recomputation_identical"] is True
    assert any("BIT-IDENTICAL" in n for n in run.notices)


def test_a_golden_rewritten_without_measuring_is_judged_by_the_defaults_again(tmp_path):
    store = G.GoldenStore(tmp_path)
    case = _case(store)
    x, y = _signal(), gain_db(_signal(), 1.0)
    G.run_golden(_producer(x, relative_noise(x, 2e-2, seed=1)), _settings(), store, [case], update=True)
    assert CASE in N.measured_entries(store, _settings().key)
    run = G.run_golden(_producer(y), _settings(), store, [case], update=True, measure_noise=False)
    assert any("not measured" in n for n in run.notices)
    assert CASE not in N.measured_entries(store, _settings().key)  # it measured the previous golden
    check = G.run_golden(_producer(y), _settings(), store, [case])
    assert {b["source"] for b in check.results[0].bounds.values()} == {"default"}
    assert len(check.notices) == 1 and "unmeasured for this checkpoint" in check.notices[0]


def test_a_user_override_still_wins_and_is_reported_as_such(tmp_path):
    store = G.GoldenStore(tmp_path)
    case = _case(store)
    x = _signal()
    G.run_golden(_producer(x, relative_noise(x, 1e-6, seed=1)), _settings(), store, [case], update=True)
    path = tmp_path / _settings().key / G.TOLERANCES_FILE
    doc = json.loads(path.read_text())
    doc["cases"] = {CASE: {"spectral_distance": {"max": 0.05}}}
    path.write_text(json.dumps(doc))
    res = store.compare(case, x, _settings(), write_obtained=False)
    assert res.bounds["spectral_distance"]["source"] == "case override"
    assert res.bounds["peak_relative_diff"]["source"] == "measured"
    assert any(n.startswith("bound of spectral_distance <= 0.05 (case override") for n in res.notes)
    # the next measured update keeps the user's own layer
    G.run_golden(_producer(x, relative_noise(x, 1e-6, seed=2)), _settings(), store, [case], update=True)
    assert json.loads(path.read_text())["cases"] == {CASE: {"spectral_distance": {"max": 0.05}}}


def test_a_subject_whose_recomputation_fails_gets_no_golden_and_an_error_saying_why(tmp_path):
    store = G.GoldenStore(tmp_path)
    calls = []

    def produce(case):
        calls.append(case.name)
        if len(calls) > 1:
            raise RuntimeError("the subject's session was closed")
        return _signal()

    run = G.run_golden(produce, _settings(), store, [_case(store)], update=True)
    res = run.results[0]
    assert res.status == "error" and not run.passed
    assert "measuring the float noise: RuntimeError: the subject's session was closed" in res.message
    assert "--no-measure-noise" in res.message
    assert not store.exists(_settings().key, CASE) and N.measured_entries(store, _settings().key) == {}
