"""From a wheel, in a fresh venv, beside a user's own model.py: the installed checks find their data.

Slow (builds the wheel and a venv with torch from the local wheel cache): run
with ``pytest -m slow tests/test_wheel.py`` or ``tox -e slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_check_reference_from_a_wheel_beside_a_raising_model_py(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=600)
    wheel = next(wheels.glob("audiosr_verify-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0", f"{wheel}[test]"], check=True,
                   timeout=1800)
    work = tmp_path / "project"
    work.mkdir()
    (work / "model.py").write_text("raise RuntimeError('a user model.py was imported')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUDIOSR_VERIFY_DATA")}
    r = subprocess.run([str(py), "-m", "audiosr_verify", "check", "reference", "--json", "r.json"], cwd=work,
                       env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((work / "r.json").read_text())
    assert sum(s["status"] == "pass" for s in data["stages"]) >= 10
    r = subprocess.run([str(py), "-m", "audiosr_verify", "golden", "check", "--fast"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
