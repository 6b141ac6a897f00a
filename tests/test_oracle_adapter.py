"""The oracle adapter: venv helper, driver, fixture inputs, manifests and exports.

Fast tests need nothing but the project venv. Tests marked ``oracle`` run the
original audiosr through the runner and are skipped when no oracle venv is
found (``python -m audiosr_verify.oracle.venv`` builds one;
``AUDIOSR_ORACLE_VENV`` / ``AUDIOSR_ORACLE_PYTHON`` point at one).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosr_verify.oracle import fixture_inputs
from audiosr_verify.oracle import driver, export, fixtures
from audiosr_verify.oracle import venv as oracle_venv

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
MANIFESTS = GOLDEN / "manifests"
ORACLE_TINY = GOLDEN / "oracle" / "tiny"


# ------------------------------------------------------------------ venv helper and driver


@pytest.fixture
def no_oracle(monkeypatch, tmp_path):
    monkeypatch.setenv(oracle_venv.ENV_VAR, str(tmp_path / "absent-venv"))
    monkeypatch.delenv("AUDIOSR_ORACLE_PYTHON", raising=False)
    return tmp_path / "absent-venv"


def test_default_path_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv(oracle_venv.ENV_VAR, raising=False)
    assert oracle_venv.default_path() == Path.home() / ".cache" / "audiosr-verify" / "oracle-venv"
    monkeypatch.setenv(oracle_venv.ENV_VAR, str(tmp_path / "x"))
    assert oracle_venv.default_path() == tmp_path / "x"


def test_find_oracle_python_missing(no_oracle):
    assert oracle_venv.find_oracle_python() is None


def test_find_oracle_python_needs_matching_marker(no_oracle):
    python = no_oracle / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert oracle_venv.find_oracle_python() is None  # no marker: an interrupted build
    (no_oracle / oracle_venv.MARKER).write_text("stale\n")
    assert oracle_venv.find_oracle_python() is None  # requirements changed since
    (no_oracle / oracle_venv.MARKER).write_text(oracle_venv.requirements_hash() + "\n")
    assert oracle_venv.find_oracle_python() == python


def test_requirement_stages_keep_torch_apart():
    stages = oracle_venv.read_stages()
    assert stages["torch"] == ["torch==2.13.0"]
    assert {"audiosr==0.0.7", "torchaudio==2.11.0", "torchvision==0.28.0", "timm==1.0.31", "torchlibrosa==0.1.0"} == set(
        stages["no-deps"]
    )
    assert not any(r.startswith("torch") for r in stages["deps"])
    assert "numpy==1.23.5" in oracle_venv.CONSTRAINTS.read_text()


def test_refuses_to_clear_a_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(oracle_venv.OracleVenvError, match="refusing"):
        oracle_venv.create_oracle_venv(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_driver_without_interpreter_raises_unavailable(no_oracle, tmp_path):
    with pytest.raises(driver.OracleUnavailable) as info:
        driver.run("manifest", {"preset": "tiny"}, tmp_path / "work")
    message = str(info.value)
    assert str(no_oracle) in message and "audiosr_verify.oracle.venv" in message


def test_driver_with_missing_explicit_interpreter(tmp_path):
    with pytest.raises(driver.OracleUnavailable, match="does not exist"):
        driver.run("manifest", {}, tmp_path, python=tmp_path / "nope" / "python")


def test_driver_failure_carries_stderr(tmp_path):
    # The project interpreter has no torchaudio: the runner dies during its shims.
    with pytest.raises(driver.OracleError) as info:
        driver.run("manifest", {"preset": "tiny"}, tmp_path, python=sys.executable, timeout=120)
    assert "stderr" in str(info.value)
    assert info.value.stderr


# ------------------------------------------------------------------ fixture inputs


def test_fixture_inputs_are_deterministic(tmp_path):
    for fx in fixture_inputs.FIXTURES:
        first, rate = fixture_inputs.synthesise(fx.name)
        again, _ = fixture_inputs.synthesise(fx.name)
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, fixture_inputs.generate(fx.name)[0])
        assert rate == fx.rate and first.shape == (fx.frames, fx.channels)
    a = fixture_inputs.write_fixture_inputs(tmp_path / "a")
    b = fixture_inputs.write_fixture_inputs(tmp_path / "b")
    assert a == b
    for name, entry in a["inputs"].items():
        assert (tmp_path / "a" / entry["file"]).read_bytes() == (tmp_path / "b" / entry["file"]).read_bytes()


def test_fixture_inputs_read_back_exactly(tmp_path):
    index = fixture_inputs.write_fixture_inputs(tmp_path)
    total = 0
    for name, entry in index["inputs"].items():
        data, rate = sf.read(str(tmp_path / entry["file"]), dtype="float32", always_2d=True)
        expected, _ = fixture_inputs.as_float32(name)
        assert rate == entry["sample_rate"] and data.shape == (entry["frames"], entry["channels"])
        np.testing.assert_array_equal(data, expected)
        total += entry["bytes"]
    assert total < 3 * 1024 * 1024


def test_fixture_inputs_cover_the_brief():
    fx = fixture_inputs.BY_NAME
    assert {fx[n].rate for n in ("tone_mix_8k", "tone_mix_16k", "tone_mix_22k", "tone_mix_44k")} == {8000, 16000, 22050, 44100}
    assert fx["stereo_44k"].channels == 2
    assert fx["clip_11s_44k"].seconds == 11.0 and fx["clip_1p3s_16k"].seconds == 1.3
    silence, _ = fixture_inputs.generate("silence_48k")
    assert not silence.any()
    quiet, _ = fixture_inputs.as_float32("quiet_16k")
    assert abs(20 * np.log10(np.abs(quiet).max()) + 80) < 0.1
    tone, rate = fixture_inputs.as_float32("tone_523_22k")
    spectrum = np.abs(np.fft.rfft(tone[:, 0]))
    assert np.fft.rfftfreq(len(tone), 1 / rate)[spectrum.argmax()] == pytest.approx(523, abs=2)


def test_committed_inputs_match_the_generator():
    index_path = GOLDEN / "inputs" / "inputs.json"
    if not index_path.exists():
        pytest.skip("golden/inputs not exported yet")
    index = json.loads(index_path.read_text())
    for name, entry in index["inputs"].items():
        data = (GOLDEN / "inputs" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        expected, _ = fixture_inputs.as_float32(name)
        got, _ = sf.read(str(GOLDEN / "inputs" / entry["file"]), dtype="float32", always_2d=True)
        np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------ manifests


def _manifest(preset: str) -> dict:
    path = MANIFESTS / f"audiosr_{preset}.json"
    if not path.exists():
        pytest.skip(f"{path} not exported yet")
    return json.loads(path.read_text())


def _count(keys, prefix):
    return sum(1 for k in keys if k.startswith(prefix))


def test_basic_manifest_layout():
    m = _manifest("basic")
    assert m["schema_version"] == 1 and m["preset"] == "basic"
    keys = m["keys"]
    assert len(keys) == 3743
    assert _count(keys, "model.diffusion_model.") == 1104
    assert _count(keys, "model_ema.") == 1106
    assert "model_ema.decay" in keys and "model_ema.num_updates" in keys
    assert keys["scale_factor"] == {"shape": [], "dtype": "float32"}
    assert m["source"]["transformers"] == "4.30.2" and m["source"]["audiosr"] == "0.0.7"
    assert m["source"]["parameters"] == 1_285_395_637
    elements = sum(int(np.prod(v["shape"])) for v in keys.values())
    assert elements == 1_544_136_939
    for key, entry in keys.items():
        assert isinstance(entry["shape"], list) and entry["dtype"] in {"float32", "int64", "int32"}, key


def test_tiny_manifest_layout():
    m = _manifest("tiny")
    keys = m["keys"]
    assert len(keys) == 1276
    assert _count(keys, "clap.") == 0
    assert m["source"]["parameters"] == 8_823_948
    assert keys["first_stage_model.vocoder.conv_pre.weight"]["shape"][0] == 128


# ------------------------------------------------------------------ oracle fixtures


def _metadata() -> dict:
    if not (ORACLE_TINY / "metadata.json").exists():
        pytest.skip("golden/oracle/tiny not exported yet")
    return json.loads((ORACLE_TINY / "metadata.json").read_text())


def test_oracle_fixtures_match_their_metadata():
    from safetensors import safe_open

    meta = _metadata()
    total = sum(p.stat().st_size for p in ORACLE_TINY.iterdir())
    assert total < 20 * 1024 * 1024
    assert (GOLDEN / "oracle" / "README.md").exists()
    for name, entry in meta["inputs"].items():
        with safe_open(str(ORACLE_TINY / f"{name}.safetensors"), "pt") as f:
            stored = set(f.keys())
            assert stored == set(entry["tensors"]), name
            for tname, info in entry["tensors"].items():
                assert list(f.get_slice(tname).get_shape()) == info["shape"], (name, tname)
                assert info["source"]


def test_oracle_fixture_records_original_behaviour():
    meta = _metadata()
    assert set(meta["chosen_filter_types"].values()) == {"ellip"}  # seed 42
    for name in ("silence_48k", "tone_523_22k"):
        err = meta["errors"][name]["end2end"]
        assert err["type"] == "ValueError" and "0 < Wn < 1" in err["message"]
    for name, entry in meta["inputs"].items():
        if entry["level"] in ("chain", "full"):
            assert entry["end2end"]["equals_chain_final"], name
            assert entry["chain"]["ddim_timesteps"] == [1, 501]


def test_shared_weights_regenerate_bit_for_bit():
    meta = _metadata()
    weights = export.shared_tiny_weights(MANIFESTS / "audiosr_tiny.json", seed=meta["weights"]["seed"])
    assert float(weights["scale_factor"]) == 0.5
    assert not any(k.startswith(export.IGNORED_PREFIXES) for k in weights)
    assert export.weights_digest(weights) == meta["weights"]["digest"]


def test_fixture_reader_expands_constant_runs():
    tensors, meta = fixtures.load_input("tone_mix_16k") if (ORACLE_TINY / "metadata.json").exists() else pytest.skip(
        "golden/oracle/tiny not exported yet"
    )
    mel = fixtures.reference(tensors, meta, "features.log_mel")
    assert mel.shape == (meta["target_frame"], 256)
    assert bool((mel[-1] == torch.log(torch.tensor(1e-5))).all())


# ------------------------------------------------------------------ with the oracle


def _oracle_python():
    py = oracle_venv.find_oracle_python()
    if py is None:
        pytest.skip(f"no oracle venv at {oracle_venv.default_path()} (python -m audiosr_verify.oracle.venv)")
    return py


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    """Tiny weights plus a fresh short input, run through stages/end2end once."""
    py = _oracle_python()
    from safetensors.torch import save_file

    work = tmp_path_factory.mktemp("oracle")
    weights = export.shared_weights(_manifest("tiny"))
    save_file(weights, str(work / "w.safetensors"))
    t = np.arange(12000) / 24000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)
    sf.write(str(work / "fresh.wav"), tone, 24000, subtype="PCM_16")
    sf.write(str(work / "silent.wav"), np.zeros(24000, np.float32), 48000, subtype="PCM_16")
    common = {"preset": "tiny", "weights": str(work / "w.safetensors"), "seed": 42, "ddim_steps": 2, "guidance_scale": 3.5}
    stages = driver.run(
        "stages",
        {**common, "out_dir": str(work / "stages"),
         "inputs": [{"name": "fresh", "path": str(work / "fresh.wav"), "level": "full"}]},
        work, python=py,
    )
    e2e = driver.run(
        "end2end",
        {**common, "out_dir": str(work / "e2e"),
         "inputs": [{"name": "fresh", "path": str(work / "fresh.wav")}, {"name": "silent", "path": str(work / "silent.wav")}]},
        work, python=py,
    )
    return {"py": py, "work": work, "stages": stages, "end2end": e2e, "common": common}


@pytest.mark.oracle
def test_oracle_manifest_matches_committed(tmp_path):
    py = _oracle_python()
    result = driver.run("manifest", {"preset": "tiny", "out": str(tmp_path / "m.json")}, tmp_path, python=py)
    assert result["n_keys"] == 1276
    assert json.loads((tmp_path / "m.json").read_text())["keys"] == _manifest("tiny")["keys"]


@pytest.mark.oracle
def test_oracle_stages_on_a_fresh_input(oracle_run):
    from safetensors.torch import load_file

    meta = oracle_run["stages"]["inputs"]["fresh"]
    tensors = load_file(str(oracle_run["work"] / "stages" / "fresh.safetensors"))
    assert meta["length_48k"] == 24000 and meta["target_frame"] == 512
    assert meta["filter_type_for_seed"] == "ellip" and meta["chain"]["filter_types_used"] == ["ellip"]
    assert tensors["normalize.waveform"].shape == (24000,)
    assert tensors["cond.posterior_mean"].shape == (1, 16, 64, 32)
    assert tensors["unet.input"].shape == (1, 32, 64, 32)
    assert tensors["final.waveform"].shape == (24000,)
    assert [d["role"] for d in meta["chain"]["random_draws"]][2] == "x_T"
    assert oracle_run["stages"]["weights"]["scale_factor"] == 0.5
    # the instrumented chain equals the plain super_resolution call
    fresh = oracle_run["end2end"]["inputs"]["fresh"]
    assert fresh["checksum"]["sha256"] == meta["chain"]["final"]["sha256"]


@pytest.mark.oracle
def test_oracle_records_the_silence_error(oracle_run):
    silent = oracle_run["end2end"]["inputs"]["silent"]
    assert silent["error"]["type"] == "ValueError"
    assert silent["filter_type"] == "ellip"


@pytest.mark.oracle
def test_oracle_modules_hooks_the_unet(oracle_run, tmp_path):
    from safetensors.torch import load_file, save_file

    stage_file = oracle_run["work"] / "stages" / "fresh.safetensors"
    t = load_file(str(stage_file))
    save_file({"x": t["ddim.x_T"], "t": torch.tensor([501]), "cond": t["cond.latent"]}, str(tmp_path / "in.safetensors"))
    result = driver.run(
        "modules",
        {**oracle_run["common"], "stage": "unet", "inputs": str(tmp_path / "in.safetensors"), "out": str(tmp_path / "m.safetensors")},
        tmp_path, python=oracle_run["py"],
    )
    outs = load_file(str(tmp_path / "m.safetensors"))
    assert result["order"][-1]["module"] == "model.diffusion_model"
    assert torch.equal(outs["model.diffusion_model"], t["unet.out.t501"])


@pytest.mark.oracle
def test_oracle_rejects_incomplete_weights(oracle_run, tmp_path):
    from safetensors.torch import load_file, save_file

    weights = load_file(oracle_run["common"]["weights"])
    weights.pop("first_stage_model.post_quant_conv.weight")
    save_file(weights, str(tmp_path / "w.safetensors"))
    with pytest.raises(driver.OracleError, match="missing"):
        driver.run("end2end",
                   {**oracle_run["common"], "weights": str(tmp_path / "w.safetensors"), "inputs": [], "out_dir": str(tmp_path)},
                   tmp_path, python=oracle_run["py"])
