"""Fixtures from a checkpoint and audio, made by the ORIGINAL (oracle tier: `tox -e oracle`).

A seeded tiny checkpoint in the original's format stands in for the user's (the full-size run is
`python benchmarks/bench_user_fixtures.py`): two recordings of a few seconds (16 kHz mono, 44.1 kHz
stereo) are exported at 20 DDIM steps (12 kept) with calibration; `check reference` passes under the
calibrated bounds, the vocoder output-padding fault fails at `vocoder` / `first_stage_model.vocoder.ups.1`,
and another checkpoint is refused naming both hashes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.test_hostile_support import hostile_env, run_cli

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from audiosr_verify.oracle import venv

    if venv.find_oracle_python() is None:
        pytest.skip("no oracle venv (audiosr-verify oracle setup)")
    tmp = tmp_path_factory.mktemp("user-fixtures")
    env = hostile_env(tmp)
    env.pop("AUDIOSR_VERIFY_CACHE")
    r = run_cli(["make-checkpoint", "--preset", "tiny", "--seed", "7", "--output", str(tmp / "mine.bin")], tmp, env)
    assert r.rc == 0, r.stderr
    rng = np.random.default_rng(0)
    t16 = np.arange(int(5.5 * 16000)) / 16000
    sf.write(tmp / "speech.wav", 0.3 * np.sin(2 * np.pi * 300 * t16) * (1 + np.sin(2 * np.pi * 2 * t16))
             + 0.02 * rng.standard_normal(t16.size), 16000)
    t44 = np.arange(int(5.3 * 44100)) / 44100
    sf.write(tmp / "music.wav", np.stack([0.2 * np.sin(2 * np.pi * 880 * t44), 0.05 * np.sin(2 * np.pi * 2500 * t44)],
                                         axis=1), 44100, subtype="PCM_16")
    r = run_cli(["oracle", "export", "--checkpoint", str(tmp / "mine.bin"), "--preset", "tiny", "--inputs",
                 str(tmp / "speech.wav"), str(tmp / "music.wav"), "--steps", "20", "-o", str(tmp / "FIX")],
                tmp, env, timeout=900)
    assert r.rc == 0, r.stderr[-3000:]
    return tmp, env


def test_the_set_records_its_provenance_and_calibration(exported):
    tmp, _ = exported
    meta = json.loads((tmp / "FIX" / "metadata.json").read_text())
    assert meta["kind"] == "user" and meta["preset"] == "tiny" and meta["ddim_steps"] == 20
    assert len(meta["checkpoint"]["sha256"]) == 64 and meta["checkpoint"]["file"] == "mine.bin"
    assert meta["versions"]["audiosr"] == "0.0.7" and meta["host"]["cpu_model"]
    assert sorted(meta["inputs"]) == ["music", "speech"] and meta["levels"]["speech"] == "full"
    assert meta["inputs"]["music"]["channels"] == 2
    assert set(meta["files"]) == {"speech.safetensors", "music.safetensors", "calibration.json"}
    cal = json.loads((tmp / "FIX" / "calibration.json").read_text())
    assert cal["bounds"] and all(v > 0 for v in cal["bounds"].values())
    # the plain super_resolution ran on the first input only (same process) and equalled the instrumented run
    speech, music = meta["inputs"]["speech"]["end2end"], meta["inputs"]["music"]["end2end"]
    assert speech["plain_run"] is True and speech["equals_chain_final"] is True
    assert music["plain_run"] is False and "equals_chain_final" not in music and music["filter_type"]


def test_calibrate_stored_shows_the_export_s_bounds_and_the_fault_table(exported):
    tmp, env = exported
    r = run_cli(["oracle", "calibrate", str(tmp / "FIX"), "--checkpoint", str(tmp / "mine.bin"), "--stored",
                 "--faults", "--json", str(tmp / "cal.json")], tmp, env, timeout=900)
    data = json.loads((tmp / "cal.json").read_text())
    stored = json.loads((tmp / "FIX" / "calibration.json").read_text())
    assert data["bounds"] == stored["bounds"] and "stored at export" in r.stdout
    assert data["faults"] and {f["stage"] for f in data["faults"]} >= {"unet", "vocoder"}
    assert r.rc == (0 if all(f["caught"] for f in data["faults"]) else 1), r.stdout[-2000:]


def test_reference_passes_under_the_calibrated_bounds(exported):
    tmp, env = exported
    r = run_cli(["check", "reference", "--fixtures", str(tmp / "FIX"), "--checkpoint", str(tmp / "mine.bin"),
                 "--json", str(tmp / "ref.json")], tmp, env, timeout=600)
    assert r.rc == 0, r.stdout[-3000:] + r.stderr[-2000:]
    data = json.loads((tmp / "ref.json").read_text())
    assert data["ok"] and data["compared"]["inputs"] == 2 and "bounds calibrated" in data["summary"]


def test_the_vocoder_padding_fault_is_named_at_its_module(exported):
    tmp, env = exported
    r = run_cli(["check", "fault:vocoder_output_padding", "--fixtures", str(tmp / "FIX"), "--checkpoint",
                 str(tmp / "mine.bin"), "--view", "teacher", "--input", "speech", "--json", str(tmp / "f.json")],
                tmp, env, timeout=600)
    assert r.rc == 1, r.stderr[-2000:]
    first = json.loads((tmp / "f.json").read_text())["first_divergence"]
    assert first["stage"] == "vocoder" and first["module"] == "first_stage_model.vocoder.ups.1"


def test_another_checkpoint_is_refused_naming_both_hashes(exported):
    tmp, env = exported
    r = run_cli(["make-checkpoint", "--preset", "tiny", "--seed", "8", "--output", str(tmp / "other.bin")], tmp, env)
    assert r.rc == 0
    r = run_cli(["check", "reference", "--fixtures", str(tmp / "FIX"), "--checkpoint", str(tmp / "other.bin")],
                tmp, env)
    assert r.rc == 2 and len(r.lines) == 1 and "not the checkpoint the fixture set was made with" in r.lines[0]


def test_the_packaged_suite_runs_on_the_set(exported):
    import subprocess
    import sys

    tmp, env = exported
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs",
                           "audiosr_verify.testing.suite.test_subject", "--audiosr-fixtures", str(tmp / "FIX"),
                           "--audiosr-checkpoint", str(tmp / "mine.bin")], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert " passed" in proc.stdout.splitlines()[-1]
