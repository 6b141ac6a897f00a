"""Live parity: fresh inputs drawn by hypothesis, run through the ORIGINAL audiosr and ours.

Marked ``oracle`` (run with ``tox -e oracle`` or ``pytest -m oracle``): each
example is written to a WAV file, the oracle runner's ``stages`` command runs
the original on it (tiny preset, the shared random weights, level ``full``:
DSP, every low-pass type, the generative chain, the UNet at fixed timesteps
and the random draws), and `stages.check_input` checks every stage of our
reference subject (teacher-forced and chained) and its end-to-end output with
the same tolerances as the fixture suite. `check original` is the harness's
self-test: the original, called stage by stage in its venv, against the
fixtures it made.
Skipped, with the reason, when the oracle venv is absent.

The tests at the bottom need no oracle: they check the `compare` verb's
message when the venv is missing, and that the module-by-module comparison
names the vocoder's rate-5 layer for the output_padding fault when the
reference is our own clean model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from audiosr_verify.checks import stages as F
from audiosr_verify.testing import strategies as S
from audiosr_verify.oracle import venv as oracle_venv

LIVE_EXAMPLES = 4
_counter = itertools.count()


def _oracle_python():
    py = oracle_venv.find_oracle_python()
    if py is None:
        pytest.skip(f"no oracle venv at {oracle_venv.default_path()}: run `audiosr-verify oracle setup` "
                    f"(or set {oracle_venv.ENV_VAR} / AUDIOSR_ORACLE_PYTHON)")
    return py


@pytest.fixture(scope="module")
def oracle_env(tmp_path_factory):
    from safetensors.torch import save_file

    from audiosr_verify.oracle import export

    py = _oracle_python()
    work = tmp_path_factory.mktemp("oracle-live")
    weights = work / "tiny_weights.safetensors"
    save_file(export.shared_tiny_weights(), str(weights))
    return py, work, weights


def run_original(oracle_env, path, name: str):
    """The original's stages for one audio file, as a fixture input."""
    from safetensors.torch import load_file

    from audiosr_verify.oracle import driver

    py, work, weights = oracle_env
    out_dir = work / f"stages-{name}"
    result = driver.run("stages", {
        "preset": "tiny", "weights": str(weights), "seed": 42, "ddim_steps": 2, "guidance_scale": 3.5,
        "unet_timesteps": [1, 501, 996], "out_dir": str(out_dir),
        "inputs": [{"name": name, "path": str(path), "level": "full", "filters": "all"}],
    }, work, python=py)
    meta = result["inputs"][name]
    chain = meta.get("chain") or {}
    # what super_resolution does with this input (the exporter checks that the
    # instrumented chain IS super_resolution; here the chain stands for it)
    if "error" in chain:
        meta["end2end"] = {"filter_type": meta["filter_type_for_seed"], "error": chain["error"]}
    else:
        meta["end2end"] = {"filter_type": meta["filter_type_for_seed"]}
    from audiosr_verify.oracle.fixtures import FixtureInput

    return FixtureInput(name, load_file(str(out_dir / f"{name}.safetensors")), meta, path)


def _explain(result: F.FunctionalResult) -> str:
    lines = [result.summary_line()]
    for c in result.failures():
        lines.append(f"  {c.name} on {c.input}: max |diff| {c.max_abs:.3g} > {c.tolerance_text()} "
                     f"(min passing {c.min_passing_atol:.3g}) {c.note}")
    lines += [f"  raised: {e}" for e in result.errors]
    return "\n".join(lines)


@pytest.mark.oracle
@settings(max_examples=LIVE_EXAMPLES, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    example=S.audio(S.NON_SILENT_KINDS, rates=[8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000],
                    max_channels=2, min_seconds=0.2, max_seconds=1.5),
    subtype=st.sampled_from(["PCM_16", "FLOAT"]),
)
def test_fresh_input_matches_the_original_stage_by_stage(oracle_env, example, subtype):
    audio, rate = example
    name = f"live{next(_counter)}"
    path = S.write_audio(oracle_env[1] / f"{name}.wav", audio, rate, subtype)
    inp = run_original(oracle_env, path, name)
    from audiosr_verify.oracle.fixtures import find_draws
    from audiosr_verify.subjects.reference import ReferenceSubject

    result = F.StageCheckResult(fixture_dir="live")
    F.check_input(ReferenceSubject(net=F.tiny_network()), inp, result, F.Settings(), find_draws([inp]))
    assert result.comparisons
    assert result.ok, _explain(result)
    stages = {c.name for c in result.comparisons}
    assert {"normalize.waveform", "features.log_mel", "lowpass.ellip"} <= stages or "end2end.behaviour" in stages
    assert "end2end.waveform" in stages or "end2end.behaviour" in stages


@pytest.mark.oracle
def test_check_original_passes_against_the_fixtures_it_made():
    """The harness's self-test: the original, stage by stage through the protocol, against its own fixtures."""
    _oracle_python()
    from audiosr_verify.checks.subject_check import run_check

    result = run_check("original")
    assert result.ok, result.summary_line()
    statuses = {s["name"]: s["status"] for s in result.stage_statuses()}
    assert set(statuses.values()) == {"pass"}, statuses
    # deterministic stages are bit-exact: every exact-tolerance row is identical
    exact = [c for c in result.stages.comparisons if c.exact and c.size > 1]
    assert exact and all(c.identical for c in exact)


@pytest.mark.oracle
def test_compare_names_the_rate5_upsampler_for_output_padding():
    _oracle_python()
    from audiosr_verify.checks.first_divergence import find_first_divergence

    result = find_first_divergence("vocoder", "tiny", fault="output_padding")
    first = result.first_divergence
    assert first is not None and first.key == "first_stage_model.vocoder.ups.1", result.summary_line()
    rows = result.rows[: result.rows.index(first)]
    assert rows and all(r.status == "match" for r in rows)


@pytest.mark.oracle
@pytest.mark.parametrize("stage", ["unet", "cond_stage_encode", "decode_first_stage", "vocoder"])
def test_compare_clean_model_has_no_divergence(stage):
    _oracle_python()
    from audiosr_verify.checks.first_divergence import find_first_divergence

    result = find_first_divergence(stage, "tiny")
    assert result.ok, result.summary_line()
    assert not [r for r in result.rows if r.status == "diverges"]
    # modules only the original runs must be no-ops at inference (Dropout); ours may group blocks differently
    extra = {r.type for r in result.rows if r.status == "only_original"}
    assert extra <= {"Dropout", "Identity"}, extra


# --------------------------------------------------------------------------- no oracle needed


def test_compare_without_oracle_venv_says_how_to_set_it_up(monkeypatch, tmp_path, capsys):
    from audiosr_verify.cli import main as cli

    monkeypatch.setenv(oracle_venv.ENV_VAR, str(tmp_path / "nowhere"))
    monkeypatch.delenv("AUDIOSR_ORACLE_PYTHON", raising=False)
    code = cli.main(["compare", "--stage", "vocoder"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "audiosr-verify oracle setup" in err[0], err


def test_module_comparison_names_ups1_against_a_clean_reference():
    """The hook/key/order machinery, with our clean model standing in for the original."""
    from audiosr_verify.checks import first_divergence as D

    inputs, _ = D.stage_inputs("vocoder")

    def clean_reference(preset, stage, inputs, weights, work, python=None):
        outs, order, out = D.run_ours(F.shared_network(preset, weights), stage, inputs)
        return {**outs, "__output__": out}, order

    result = D.find_first_divergence("vocoder", "tiny", fault="output_padding", oracle=clean_reference)
    first = result.first_divergence
    assert first is not None and first.key == "first_stage_model.vocoder.ups.1", result.summary_line()
    assert first.comparison.ours_shape != first.comparison.shape
    assert "ups.1" in result.summary_line()
    clean = D.find_first_divergence("vocoder", "tiny", oracle=clean_reference)
    assert clean.ok and clean.output is not None and clean.output.max_abs == 0
    data = result.to_dict()
    assert data["first_divergence"] == "first_stage_model.vocoder.ups.1"
    assert np.isfinite(len(data["modules"]))
