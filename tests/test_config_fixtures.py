"""A configuration that is neither preset (issue 22): from a YAML to the original's config, fixtures and check.

Fast tier: the mapping from our `ModelConfig` to the original's config overrides (pinned on both presets,
so the runner's tiny sizes and ours cannot drift apart), the refusals that come before the original runs,
and the set's own copy of its configuration (integrity-checked). The export and the check themselves run
the original: `test_config_fixtures_oracle` at the end, slow and oracle-marked.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosr_model import config as cfg
from audiosr_model.errors import AudioSRError
from audiosr_verify import schema
from audiosr_verify.oracle.config_overrides import overrides_for, request_overrides
from audiosr_verify.oracle.fixture_validation import CONFIG_FILE, fixture_preset, open_metadata
from tests.test_hostile_support import assert_refused, run_cli


def small_config() -> cfg.ModelConfig:
    """Neither preset: the tiny layout with wider VAE, UNet and vocoder (every width a multiple of 32)."""
    t = cfg.tiny()
    return dataclasses.replace(
        t, name="custom-small", vae=dataclasses.replace(t.vae, ch=64),
        unet=dataclasses.replace(t.unet, model_channels=64, num_head_channels=32),
        vocoder=dataclasses.replace(t.vocoder, upsample_initial_channel=256))


@pytest.fixture
def small_yaml(tmp_path) -> Path:
    path = tmp_path / "small.yaml"
    cfg.save_yaml(small_config(), path)
    return path


# ---------------------------------------------------------------- our config in the original's terms


def test_the_presets_map_to_what_the_runner_has_always_built():
    assert overrides_for(cfg.basic()) == {}
    assert overrides_for(cfg.tiny()) == json.loads(json.dumps(schema.TINY_OVERRIDES))
    assert request_overrides("basic") is None and request_overrides("tiny") is None


def test_a_configuration_file_maps_every_changed_size(small_yaml):
    o = request_overrides(str(small_yaml))
    assert o["vae_ddconfig"]["ch"] == 64 and o["unet"]["model_channels"] == 64
    assert o["vocoder"]["upsample_initial_channel"] == 256
    assert "num_head_channels" not in o["unet"]  # 32 is the released model's: only what differs is carried
    embed = dataclasses.replace(cfg.basic(), vae=dataclasses.replace(cfg.basic().vae, embed_dim=8))
    assert overrides_for(embed) == {"vae_embed_dim": 8}


@pytest.mark.parametrize("section, field, value", [("audio", "hop_length", 320), ("diffusion", "timesteps", 500),
                                                   ("diffusion", "parameterization", "eps")])
def test_what_the_original_hard_codes_is_refused_naming_the_field(section, field, value):
    c = cfg.basic()
    c = dataclasses.replace(c, **{section: dataclasses.replace(getattr(c, section), **{field: value})})
    with pytest.raises(AudioSRError, match=rf"{section}\.{field} differs"):
        overrides_for(c)


def test_preset_reads_a_configuration_file_and_names_the_choices_otherwise(small_yaml):
    assert cfg.preset(str(small_yaml)) == small_config()
    with pytest.raises(AudioSRError, match="basic, tiny or a configuration file"):
        cfg.preset("large")


# ---------------------------------------------------------------- refusals before the original runs


def _wav(path: Path, seconds: float = 2.5) -> Path:
    """A tone with noise: the original cannot low-pass a lone tone (its cutoff detection puts the cutoff at
    Nyquist and scipy refuses Wn = 1), and a set of such an input compares only the stages before it."""
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * noise, 16000)
    return path


def test_make_checkpoint_writes_the_configuration_s_layout(tmp_path, small_yaml):
    from audiosr_model.weights.checkpoint_reader import inspect_checkpoint
    from audiosr_model.weights.load import skeleton

    r = run_cli(["make-checkpoint", "--config", str(small_yaml), "--seed", "5", "-o", str(tmp_path / "s.bin")],
                tmp_path)
    assert r.rc == 0, r.stderr
    keys = {k: tuple(t.shape) for k, t in inspect_checkpoint(tmp_path / "s.bin").tensors.items()}
    ours = {k: tuple(v.shape) for k, v in skeleton(small_config()).state_dict().items()}
    assert keys == ours


def test_export_refuses_a_configuration_it_cannot_give_the_original(tmp_path):
    bad = dataclasses.replace(cfg.tiny(), audio=dataclasses.replace(cfg.tiny().audio, mel_fmax=22000.0))
    cfg.save_yaml(bad, tmp_path / "bad.yaml")
    ckpt = tmp_path / "c.bin"
    ckpt.write_bytes(b"x")
    r = run_cli(["oracle", "export", "--checkpoint", str(ckpt), "--config", str(tmp_path / "bad.yaml"),
                 "--inputs", str(_wav(tmp_path / "a.wav")), "--duration", "2", "-o", str(tmp_path / "FIX")], tmp_path)
    assert_refused(r, None, "audio.mel_fmax differs")
    assert not (tmp_path / "FIX").exists()


def test_export_refuses_config_and_preset_together(tmp_path, small_yaml):
    r = run_cli(["oracle", "export", "--checkpoint", str(small_yaml), "--config", str(small_yaml), "--preset",
                 "tiny", "--inputs", str(_wav(tmp_path / "a.wav")), "-o", str(tmp_path / "FIX")], tmp_path)
    assert_refused(r, None, "--config and --preset")


# ---------------------------------------------------------------- the set's own copy of its configuration


def _set_with_config(tmp_path: Path, small_yaml: Path) -> Path:
    from audiosr_verify.util.hashing import sha256_file
    from audiosr_verify.util.paths import data_dir

    fix = tmp_path / "FIX"
    shutil.copytree(data_dir() / "oracle" / "tiny", fix)
    shutil.copy(small_yaml, fix / CONFIG_FILE)
    meta = json.loads((fix / "metadata.json").read_text())
    meta["preset"] = CONFIG_FILE
    meta.setdefault("files", {})[CONFIG_FILE] = sha256_file(fix / CONFIG_FILE)
    (fix / "metadata.json").write_text(json.dumps(meta))
    return fix


def test_a_set_s_configuration_is_read_from_the_set(tmp_path, small_yaml):
    fix = _set_with_config(tmp_path, small_yaml)
    preset = fixture_preset(fix, open_metadata(fix))
    assert Path(preset) == (fix / CONFIG_FILE).resolve() and cfg.preset(preset) == small_config()


def test_a_configuration_changed_after_export_is_refused(tmp_path, small_yaml):
    fix = _set_with_config(tmp_path, small_yaml)
    (fix / CONFIG_FILE).write_text((fix / CONFIG_FILE).read_text().replace("ch: 64", "ch: 96"))
    with pytest.raises(AudioSRError, match="changed after export"):
        fixture_preset(fix, open_metadata(fix))
    r = run_cli(["check", "reference", "--fixtures", str(fix)], tmp_path)
    assert_refused(r, fix / CONFIG_FILE, "changed after export")


def test_a_preset_the_harness_does_not_know_is_refused(tmp_path, small_yaml):
    fix = _set_with_config(tmp_path, small_yaml)
    meta = json.loads((fix / "metadata.json").read_text())
    meta["preset"] = "../elsewhere.yaml"
    (fix / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(AudioSRError, match="'preset' must be basic, tiny or 'config.yaml'"):
        open_metadata(fix)


# ---------------------------------------------------------------- through the original (oracle tier)


@pytest.mark.oracle
@pytest.mark.slow
def test_config_fixtures_oracle(tmp_path, small_yaml):
    """A configuration that is neither preset goes through export (the original built with it) and check."""
    from audiosr_verify.oracle import venv

    if venv.find_oracle_python() is None:
        pytest.skip("no oracle venv (audiosr-verify oracle setup)")
    r = run_cli(["make-checkpoint", "--config", str(small_yaml), "--seed", "5", "-o", str(tmp_path / "s.bin")],
                tmp_path)
    assert r.rc == 0, r.stderr
    r = run_cli(["oracle", "export", "--checkpoint", str(tmp_path / "s.bin"), "--config", str(small_yaml),
                 "--inputs", str(_wav(tmp_path / "a.wav")), "--steps", "10", "--duration", "2",
                 "-o", str(tmp_path / "FIX")], tmp_path, timeout=1500)
    assert r.rc == 0, r.stderr[-3000:]
    assert "warning" not in r.stderr, r.stderr[-3000:]  # the original enhanced the input: every stage has fixtures
    meta = json.loads((tmp_path / "FIX" / "metadata.json").read_text())
    assert meta["preset"] == CONFIG_FILE and meta["config"]["unet"]["model_channels"] == 64
    assert (tmp_path / "FIX" / "calibration.json").is_file()
    r = run_cli(["check", "reference", "--fixtures", str(tmp_path / "FIX"), "--checkpoint", str(tmp_path / "s.bin"),
                 "--json", str(tmp_path / "r.json")], tmp_path, timeout=1500)
    assert r.rc == 0, r.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    status = {s["name"]: s["status"] for s in data["stages"]}
    assert set(status.values()) == {"pass"}, status  # every stage compared, none left unchecked
