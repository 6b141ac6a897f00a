"""Issue 15's acceptance: the three-line golden test of another project, with the real model.

From a directory outside the repository that also holds a ``model.py`` which
raises on import: one ``--golden-update`` run, then the test passes; after the
audio file's content changes the run fails and says the input changed; with
the golden removed and ``CI=true`` it fails with the command that creates it.

Each step is a fresh ``python -m pytest`` process (the installed entry point
loads the plugin; from a plain source tree, -p and PYTHONPATH do) that runs
the bundled default: the tiny preset's seeded random weights, 2 DDIM steps.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "audiosr_verify.testing.pytest_plugin"

THREE_LINES = """\
def test_my_file(enhance, golden_check):
    golden_check("my_case", enhance("my.wav"))
"""
SHADOW = 'raise ImportError("this project\'s own model.py was imported by the AudioSR plugin")\n'


def _installed() -> bool:
    return any(e.value == PLUGIN for e in importlib.metadata.entry_points(group="pytest11"))


def _pytest(project: Path, *args: str, ci: bool = False) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "AUDIOSR_CHECKPOINT", "AUDIOSR_SUBJECT", "PYTEST_ADDOPTS", "PYTHONPATH")}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    if not _installed():  # a plain source tree: load the plugin by name
        env["PYTHONPATH"] = str(ROOT)
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        cmd[3:3] = ["-p", PLUGIN]
    if ci:
        env["CI"] = "true"
    r = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    return r.returncode, r.stdout + r.stderr


def _write_audio(path: Path, freq: float) -> None:
    t = np.arange(16000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, subtype="PCM_16")


@pytest.mark.slow
def test_three_line_golden_test_outside_the_repository(tmp_path):
    project = tmp_path / "my_project"
    project.mkdir()
    assert ROOT not in project.parents
    (project / "model.py").write_text(SHADOW)
    (project / "test_my.py").write_text(THREE_LINES)
    _write_audio(project / "my.wav", 440.0)
    golden = project / "tests" / "goldens" / "reference" / "random-tiny-seed0" / "my_case"

    rc, out = _pytest(project, "--golden-update")
    assert rc == 0 and "1 passed" in out and "1 updated" in out, out
    assert (golden / "output.safetensors").is_file() and (golden / "meta.json").is_file(), out

    rc, out = _pytest(project)
    assert rc == 0 and "1 passed" in out and "1 identical" in out, out

    _write_audio(project / "my.wav", 660.0)  # the same file name, other content
    rc, out = _pytest(project)
    assert rc == 1 and "1 failed" in out, out
    assert "golden case 'my_case' (random-tiny-seed0): STALE" in out, out
    assert "stale golden: the input changed: input my.wav changed" in out, out

    shutil.rmtree(project / "tests" / "goldens")
    rc, out = _pytest(project, ci=True)
    assert rc == 1 and "1 failed" in out, out
    assert "golden case 'my_case' (random-tiny-seed0): MISSING" in out, out
    assert "goldens are never created in CI" in out, out
    assert "create it with: python -m pytest test_my.py::test_my_file --golden-update" in out, out
    assert not (project / "tests" / "goldens").exists()
    assert "this project's own model.py" not in out, out
