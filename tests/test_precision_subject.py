"""Reduced precision as a subject: `precision:bf16` computes in bfloat16, and its verdict is in metric terms.

Fast tier: the subject is a built-in name, its networks really run in
bfloat16 (the condition encoder departs from float32 by far more than float
noise, yet stays inside the bf16 bound), and the caller's network is left
alone. Slow tier: the whole metric verdict in both directions (bf16 passes
its bounds; a porting fault in float32 fails them).
"""

from __future__ import annotations

import pytest
import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks import stages as S
from audiosr_verify.checks.metric_verdict import BOUNDS, check_precision
from audiosr_verify.subjects.loader import resolve_factory
from audiosr_verify.subjects.fast_paths import PrecisionSubject
from audiosr_verify.util.paths import data_path

needs_fixtures = pytest.mark.skipif(not data_path(S.DEFAULT_FIXTURES, "metadata.json").exists(),
                                    reason="golden/oracle/tiny not exported (audiosr-verify oracle export)")


def test_precision_names_resolve_and_unknown_ones_are_one_line():
    assert callable(resolve_factory("precision:bf16")) and callable(resolve_factory("precision:fp16"))
    with pytest.raises(AudioSRError, match="known precisions are fp32, bf16, fp16"):
        resolve_factory("precision:int8")
    assert callable(resolve_factory("precision:bf16+sdpa")) and callable(resolve_factory("precision:fp32+sdpa"))
    assert callable(resolve_factory("precision:fp32+compile"))
    for bad in ("precision:bf16+flash", "precision:bf16+sdpa+math", "precision:fp32+compile+compile"):
        with pytest.raises(AudioSRError, match=r"only \+sdpa or \+math"):
            resolve_factory(bad)


def test_enhance_configurations_are_subjects(monkeypatch):
    # precision:P+A is what `enhance --precision P --attention A` runs: same autocast, same attention switch
    from audiosr_model.nets.attention import Attention

    subject = PrecisionSubject("bf16", net=S.tiny_network(), attention="sdpa")
    subject.activate()
    assert subject.name == "precision:bf16+sdpa"
    backends = {m.backend for m in subject.net.unet.modules() if isinstance(m, Attention)}
    assert backends == {"sdpa"}
    assert {m.backend for m in S.tiny_network().unet.modules() if isinstance(m, Attention)} == {"math"}


def test_check_cli_judges_precision_subjects_by_their_metric_bounds(tmp_path, capsys):
    from audiosr_verify.cli.main import main

    assert main(["check", "precision:bf16+fast"]) == 2
    assert "only +sdpa or +math" in capsys.readouterr().err
    assert main(["check", "precision:bf16", "--option", "a=1"]) == 2  # options of the stage check only
    assert "--bounds bf16" in capsys.readouterr().err


@needs_fixtures
def test_bf16_networks_compute_in_bfloat16_within_their_bound():
    from audiosr_verify.oracle.fixtures import load_fixture_set

    shared = S.tiny_network()
    before = {k: v.clone() for k, v in list(shared.state_dict().items())[:5]}
    subject = PrecisionSubject("bf16", net=shared)
    subject.activate()
    _, items = load_fixture_set(S._resolve(S.DEFAULT_FIXTURES), S._resolve(S.DEFAULT_INPUTS), ["tone_mix_16k"])
    inp = items[0]
    with torch.no_grad():
        mean, _ = subject.condition_encode(inp.ref("lowpass.log_mel").numpy())
    ref = inp.ref("cond.posterior_mean")
    rel = float((mean.float() - ref).abs().max() / ref.abs().max())
    assert mean.dtype == torch.float32  # float32 at the network's boundary
    assert 1e-4 < rel < BOUNDS["bf16"].stage_peak_rel, rel  # not float32 noise, inside the bf16 bound
    assert subject.net is not shared  # the caller's network is never changed
    assert all(torch.equal(shared.state_dict()[k], v) for k, v in before.items())
    with torch.no_grad():
        again = shared.condition_posterior(inp.ref("lowpass.log_mel")[None, None]).mean
    assert float((again - ref).abs().max()) < 1.2e-5  # still the float32 reference


@needs_fixtures
def test_check_fp32_sdpa_passes_float32_metric_bounds_and_a_fault_fails_them(tmp_path, capsys):
    # `check precision:fp32+sdpa` is judged in metric terms under the fp32 bounds (stage errors <= 1e-4):
    # SDPA at the original's scale passes; a vocoder fault fails the same bounds (exit 1), JSON written
    from audiosr_verify.cli.main import main

    out = tmp_path / "sdpa.json"
    assert main(["check", "precision:fp32+sdpa", "--json", str(out), "--input", "tone_mix_16k"]) == 0
    data = __import__("json").loads(out.read_text())
    assert data["ok"] and data["precision"] == "fp32" and len(data["stages"]) == 5
    assert max(s["peak_rel"] for s in data["stages"]) < BOUNDS["fp32"].stage_peak_rel
    assert main(["check", "fault:leaky_relu_slope", "--bounds", "fp32", "--input", "tone_mix_16k"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.slow
@needs_fixtures
def test_bf16_sdpa_verdict_passes_its_bounds():
    result = check_precision("precision:bf16+sdpa")
    assert result.ok, result.summary_line()
    assert result.precision == "bf16" and len(result.outputs) == 3


@pytest.mark.slow
@needs_fixtures
def test_bf16_verdict_passes_and_a_porting_fault_fails_the_same_bounds():
    bf16 = check_precision("precision:bf16")
    assert bf16.ok, bf16.summary_line()
    assert {s.stage for s in bf16.stages} == {"condition_encode", "unet", "ddim_step", "vae_decode", "vocoder"}
    assert len(bf16.outputs) == 3
    fault = check_precision("fault:leaky_relu_slope", "bf16")
    assert not fault.ok, fault.summary_line()
