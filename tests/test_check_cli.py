"""`audiosr-verify check SUBJECT` as a user runs it: exit codes, the JSON contract, loading subjects.

The subject file test runs in a directory that also holds a `model.py` that
raises on import (what hand-made reconstructions have): nothing of ours may
import it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audiosr_verify.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "examples" / "subjects" / "minimal_port.py"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_check_reference_passes_with_the_documented_json(tmp_path, capsys):
    out = tmp_path / "ref.json"
    # one input, both views: the CLI and its JSON (every input is the packaged suite's job: suite/test_subject.py)
    assert main(["check", "reference", "--input", "tone_mix_16k", "--json", str(out),
                 "--output-dir", str(tmp_path / "o")]) == 0
    data = _json(out)
    assert data["ok"] is True and data["subject"] == "reference" and data["first_divergence"] is None
    for row in data["stages"]:
        assert {"name", "status", "max_abs", "min_passing_atol"} <= set(row)
    passed = [s["name"] for s in data["stages"] if s["status"] == "pass"]
    assert len(passed) >= 10 and "state_dict" in passed and "vocoder" in passed
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"check.json", "check.md", "check.html"}
    assert "reference: OK" in capsys.readouterr().out


def test_check_fault_exits_1_and_names_stage_and_module(tmp_path):
    out = tmp_path / "f.json"
    code = main(["check", "fault:vocoder_output_padding", "--json", str(out), "--input", "tone_mix_16k",
                 "--view", "teacher"])
    data = _json(out)
    assert code == 1 and data["ok"] is False
    assert data["first_divergence"]["stage"] == "vocoder"
    assert data["first_divergence"]["module"] == "first_stage_model.vocoder.ups.1"
    assert [s["name"] for s in data["stages"] if s["status"] == "fail"] == ["vocoder"]


def test_subject_file_beside_a_raising_model_py(tmp_path):
    shutil.copy(MINIMAL, tmp_path / "minimal_port.py")
    (tmp_path / "model.py").write_text("raise RuntimeError('the wrong model.py was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "audiosr_verify", "check", "./minimal_port.py:make_subject",
                        "--json", "m.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = _json(tmp_path / "m.json")
    status = {s["name"]: s["status"] for s in data["stages"]}
    assert status["normalize"] == status["cutoff"] == status["state_dict"] == "pass"
    assert status["vocoder"] == status["unet"] == "not_provided"  # never reported as passed


@pytest.mark.parametrize("spec, needle", [
    ("no_such_subject", "not a built-in name"),
    ("missing_file.py:make_subject", "subject file not found"),
    ("json:no_such_factory", "has no callable no_such_factory"),
    ("no_such_package_xyz:make", "cannot import no_such_package_xyz"),
    ("fault:nope", "known faults are"),
])
def test_bad_subject_is_one_line_and_exit_2(spec, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_factory_that_raises_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def make_subject(context):\n    raise ValueError('no GPU here')\n")
    assert main(["check", f"{bad}:make_subject"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "factory raised ValueError: no GPU here" in err[0], err


def test_duck_typed_subject_object(tmp_path):
    """Any object with stage methods is a subject (no base class needed)."""
    from audiosr_verify.checks.subject_check import run_check

    class Port:
        name = "duck"

        def normalize(self, waveform):
            x = waveform - waveform.mean()
            return 0.5 * x / (abs(x).max() + 1e-8)

    result = run_check(Port(), inputs=["tone_mix_16k"], views=("teacher",))
    status = {s["name"]: s["status"] for s in result.stage_statuses()}
    assert status["normalize"] == "pass" and status["state_dict"] == "not_provided"
    assert result.ok
