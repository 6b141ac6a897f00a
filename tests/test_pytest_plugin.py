"""The pytest plugin in fresh pytest processes: registered once, and free for sessions that do not use it.

Loading the plugin imports no numpy, torch or model module; a session that
uses none of its fixtures gets nothing written, whatever options it passes.
The golden flows themselves are in tests/test_pytest_plugin_project.py.

The subprocesses disable entry-point autoloading and name the plugin with -p,
so they behave the same whether or not the package is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(proj: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("CI", "AUDIOSR_CHECKPOINT")}
    full_env.update(PYTHONPATH=str(ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **env)
    cmd = [sys.executable, "-m", "pytest", "-p", "audiosr_verify.testing.pytest_plugin", "-p", "no:cacheprovider",
           "-rA", "-q", *args]
    return subprocess.run(cmd, cwd=proj, env=full_env, capture_output=True, text=True, timeout=300)


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


# --------------------------------------------------------------------------- unrelated sessions

HEAVY = ("torch", "numpy", "scipy", "soundfile", "safetensors", "rich", "audiosr_model", "audiosr_verify.golden")


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys, time; t = time.perf_counter(); import audiosr_verify.testing.pytest_plugin; "
            "from audiosr_verify.testing import audio_files; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


UNRELATED = """
import sys

def test_unrelated():
    assert 1 + 1 == 2

def test_the_plugin_costs_no_heavy_import():
    heavy = {heavy!r}
    assert [m for m in sys.modules if m.split(".")[0] in heavy or m in heavy] == []
"""

def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts)


def test_unrelated_sessions_pay_nothing_and_get_nothing_written(tmp_path):
    """A project that uses none of the fixtures: no heavy import, no file, even with the plugin's options."""
    proj = tmp_path / "unrelated"
    proj.mkdir()
    (proj / "test_unrelated.py").write_text(UNRELATED.format(heavy=HEAVY))
    (proj / "pytest.ini").write_text("[pytest]\n")
    before = _listing(proj)
    r = _pytest(proj, "--golden-update", f"--audiosr-report-dir={proj / 'reports'}", "--audiosr-subject", "no:such")
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr
    assert "golden regression" not in r.stdout, r.stdout
    assert _listing(proj) == before
    r = _pytest(proj, "--help")
    for option in ("--golden-update", "--audiosr-golden-dir", "--audiosr-subject", "audiosr_golden_dir"):
        assert option in r.stdout, r.stdout
