"""The pytest plugin end to end, in pytest subprocesses on a throw-away project (no model runs).

The subprocesses disable entry-point autoloading and name the plugin with -p,
so they behave the same whether or not the package is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosr_verify.golden import GOLDEN_FILES, OBTAINED_FILES

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
import pytest
from audiosr_verify.golden import GoldenStore

@pytest.fixture(scope="session")
def golden_store(tmp_path_factory, pytestconfig):
    root = pytestconfig.getoption("--audiosr-golden-dir")
    return GoldenStore(root, "{inputs}")
"""

TESTS = """
import os
import numpy as np
import pytest
from audiosr_verify.golden import GoldenCase, sha256_path

SR = 48000

def _case(store, name):
    return GoldenCase(name, "tone.wav", 16000, 8000.0, sha256_path(store.inputs_dir / "tone.wav"))

def _wave():
    t = np.arange(SR) / SR
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(SR)).astype(np.float32)

def test_unchanged(golden_store, golden_check):
    golden_check(_case(golden_store, "tone_a"), _wave())

def test_maybe_changed(golden_store, golden_check):
    wave = np.tanh(4 * _wave()) if os.environ.get("CHANGE") else _wave()
    golden_check(_case(golden_store, "tone_b"), wave)

@pytest.mark.real_checkpoint
def test_needs_a_checkpoint():
    raise AssertionError("must be skipped without --audiosr-checkpoint")
"""


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    inputs = tmp_path / "inputs"
    proj.mkdir()
    inputs.mkdir()
    t = np.arange(16000) / 16000
    sf.write(inputs / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    (proj / "conftest.py").write_text(textwrap.dedent(CONFTEST.format(inputs=inputs)))
    (proj / "test_golden_plugin.py").write_text(textwrap.dedent(TESTS))
    return proj


def _pytest(proj: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("CI", "AUDIOSR_CHECKPOINT")}
    full_env.update(PYTHONPATH=str(ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **env)
    cmd = [sys.executable, "-m", "pytest", "-p", "audiosr_verify.testing.pytest_plugin", "-p", "no:cacheprovider",
           "-rA", "-q", *args]
    return subprocess.run(cmd, cwd=proj, env=full_env, capture_output=True, text=True, timeout=300)


def test_missing_update_pass_and_failure_table(tmp_path):
    proj = _project(tmp_path)
    golden = tmp_path / "golden"
    key = golden / "random-tiny-seed0"

    r = _pytest(proj, f"--audiosr-golden-dir={golden}", CI="true")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "2 failed" in out and "1 skipped" in out, out
    assert "MISSING" in out and "goldens are never created in CI" in out and "--golden-update" in out, out
    assert "real_checkpoint: no checkpoint given" in out, out
    assert not golden.exists(), "a check must never create goldens"

    r = _pytest(proj, f"--audiosr-golden-dir={golden}", "--golden-update")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 updated" in r.stdout, r.stdout
    for case in ("tone_a", "tone_b"):
        assert sorted(p.name for p in (key / case).iterdir()) == sorted(GOLDEN_FILES)

    reports = tmp_path / "reports"
    r = _pytest(proj, f"--audiosr-golden-dir={golden}", f"--audiosr-report-dir={reports}", CHANGE="1")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "1 failed, 1 passed, 1 skipped" in out, out
    assert "golden case 'tone_b' (random-tiny-seed0): FAILED" in out, out
    for needle in ("| tone_b | SI-SDR (dB)", "| tone_b | max |obtained - golden|", "FAIL", "obtained files written"):
        assert needle in out, out
    assert sorted(p.name for p in (key / "tone_b").iterdir()) == sorted(GOLDEN_FILES + OBTAINED_FILES)
    assert sorted(p.name for p in (key / "tone_a").iterdir()) == sorted(GOLDEN_FILES)
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is False
    assert [c["status"] for c in data["sections"][0]["data"]["cases"]] == ["identical", "failed"]
    assert (reports / "report.html").read_text().count("data:image/png;base64,") == 8


def test_plugin_loads_once_when_installed_as_entry_point(tmp_path):
    """With the pytest11 entry point present, the top-level conftest must not register it again."""
    dist = tmp_path / "site" / "audiosr_verify_fake-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: audiosr-verify-fake\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest11]\naudiosr_verify = audiosr_verify.testing.pytest_plugin\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    # (every ordinary run of this suite from the source tree covers the conftest path)
    r = subprocess.run([sys.executable, "-m", "pytest", "--co", "-p", "no:cacheprovider", "--trace-config",
                        "--golden-update", "tests/test_golden_store.py::test_checkpoint_keys"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 test collected" in r.stdout or "collected 1 item" in r.stdout, r.stdout
    # "active plugins:" lists "name : file": the plugin must be there once, under the entry point's name
    active = [line.split(":")[0].strip() for line in r.stdout.splitlines()
              if line.startswith("    ") and line.rstrip().endswith(str(Path("audiosr_verify", "testing", "pytest_plugin.py")))]
    assert active == ["audiosr_verify"], r.stdout
