"""The fast tier runs on every core in tox (pytest-xdist), and golden updates stay in one process."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_tox_runs_the_fast_tier_with_xdist():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "tox.ini")
    assert "pytest-xdist" in ini["testenv"]["deps"]
    assert "-n auto" in ini["testenv"]["commands"]


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed (tox has it)")
def test_golden_update_turns_xdist_off(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", *extra,
                               str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)

    parallel, updating = run(), run("--golden-update")
    assert parallel.returncode == 0 and "2 workers" in parallel.stdout, parallel.stdout
    assert updating.returncode == 0 and "workers" not in updating.stdout, updating.stdout
