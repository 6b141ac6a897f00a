"""Run the property tests in a subprocess and hand back what pytest reported, as data.

The report (`report.sections.property_section`) turns the result into a section;
it never runs tests or imports the suite itself (a report is below the tests
in the layers). Always the packaged invariants of the subject
(``audiosr_verify/testing/suite/test_properties.py``, in a wheel too); in a
source tree also the project's own contract (``tests/test_properties_*.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROPERTY_TESTS = "tests/test_properties_*.py"


@dataclass(frozen=True)
class PropertyRun:
    command: str
    returncode: int
    junit_xml: str | None  # pytest's JUnit XML; None when it wrote none
    error: str | None = None  # why there are no results (time-out, pytest failing to start)


def run_property_tests(subject: str = "reference", pattern: str = PROPERTY_TESTS,
                       root: str | os.PathLike | None = None, timeout: float = 900.0) -> PropertyRun:
    """The property tests (not slow, not oracle) of ``subject``, run by pytest in a subprocess."""
    from audiosr_verify.testing.suite import test_properties as packaged

    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]  # the source tree
    files = [Path(packaged.__file__)] + sorted(root.glob(pattern))
    with tempfile.TemporaryDirectory(prefix="audiosr-props-") as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow and not oracle", "-p", "no:cacheprovider",
               f"--junitxml={xml}", f"--audiosr-subject={subject}", *[str(f) for f in files]]
        command = " ".join(cmd[2:])
        env = dict(os.environ)
        if (root / "audiosr_verify").is_dir():
            env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        try:
            proc = subprocess.run(cmd, cwd=root if root.is_dir() else None, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return PropertyRun(command, -1, None, f"timed out after {timeout:.0f} s")
        if not xml.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            return PropertyRun(command, proc.returncode, None,
                               f"pytest exited {proc.returncode} without results: " + " | ".join(tail))
        return PropertyRun(command, proc.returncode, xml.read_text(encoding="utf-8"))


__all__ = ["PROPERTY_TESTS", "PropertyRun", "run_property_tests"]
