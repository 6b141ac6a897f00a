"""Build and find the oracle's own virtual environment.

The oracle is the ORIGINAL ``audiosr`` package, run offline. Its pins
(numpy 1.23, librosa 0.9.2, transformers 4.30, ...) must never leak into the
project's environment, so it lives in a venv of its own, by default
``~/.cache/audiosr-verify/oracle-venv`` (``AUDIOSR_ORACLE_VENV`` overrides).

Installation order matters (``requirements.txt`` marks the stages):

1. ``torch`` alone: on a machine with the CPU wheel on disk, pip takes it;
2. the packages that depend on torch, with ``--no-deps`` so that pip never
   resolves a second (CUDA, multi-GB) torch for them;
3. the ordinary dependencies, with ``constraints.txt`` holding numpy.

Idempotent: a marker file in the venv records a hash of the requirement
files and the Python version; a venv whose marker matches is left alone,
anything else is rebuilt with ``venv --clear``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
CONSTRAINTS = HERE / "constraints.txt"
MARKER = ".audiosr-oracle-ready"
ENV_VAR = "AUDIOSR_ORACLE_VENV"

Progress = Optional[Callable[[str], None]]


class OracleVenvError(RuntimeError):
    """The oracle venv could not be built (message names the failing step)."""


def default_path() -> Path:
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "audiosr-verify" / "oracle-venv"


def _python_in(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def read_stages(path: Path = REQUIREMENTS) -> dict[str, list[str]]:
    """Requirement lines grouped by their ``# [stage NAME]`` header."""
    stages: dict[str, list[str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        header = re.match(r"#\s*\[stage\s+([\w-]+)\]", raw.strip())
        if header:
            current = stages.setdefault(header.group(1), [])
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if current is None:
            raise OracleVenvError(f"{path}: requirement {line!r} before any '# [stage ...]' header")
        current.append(line)
    missing = {"torch", "no-deps", "deps"} - stages.keys()
    if missing:
        raise OracleVenvError(f"{path}: missing stage(s) {sorted(missing)}")
    return stages


def requirements_hash() -> str:
    h = hashlib.sha256()
    for path in (REQUIREMENTS, CONSTRAINTS):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"python {sys.version_info.major}.{sys.version_info.minor}".encode())
    return h.hexdigest()


def is_ready(path: Path | str | None = None) -> bool:
    venv = Path(path) if path is not None else default_path()
    marker = venv / MARKER
    if not venv.is_dir() or not marker.is_file():
        return False
    try:
        from audiosr_model.io.safe_open import read_text

        ready = read_text(marker, "oracle venv marker", max_bytes=4096).strip() == requirements_hash()
    except Exception:  # unreadable or hostile marker: not ready (setup rebuilds it)
        return False
    return ready and _python_in(venv).exists()


def check_interpreter(path: Path | str, where: str = "oracle interpreter") -> Path:
    """``path`` if it is an executable regular file; else one `AudioSRError` line saying what it is.

    Running a file without the execute bit, or a directory, would otherwise
    surface as a PermissionError traceback from subprocess.
    """
    from audiosr_model.errors import AudioSRError

    p = Path(path).expanduser()
    if not p.exists():
        raise AudioSRError(f"{where} does not exist", p)
    if p.is_dir():
        raise AudioSRError(f"{where} is a directory, not a Python executable", p)
    if not p.is_file():
        raise AudioSRError(f"{where} is not a regular file", p)
    if not os.access(p, os.X_OK):
        raise AudioSRError(f"{where} is not executable (chmod +x, or point to the venv's bin/python)", p)
    return p


def find_oracle_python(path: Path | str | None = None) -> Optional[Path]:
    """The oracle interpreter if a complete oracle venv exists, else None.

    ``AUDIOSR_ORACLE_PYTHON`` names an interpreter directly (for a venv built
    by other means); it must be an executable file (`check_interpreter`; an
    `AudioSRError` otherwise), and is trusted as such.
    """
    direct = os.environ.get("AUDIOSR_ORACLE_PYTHON")
    if direct and path is None:
        p = Path(direct).expanduser()
        return check_interpreter(p, "$AUDIOSR_ORACLE_PYTHON") if p.exists() else None
    venv = Path(path) if path is not None else default_path()
    return _python_in(venv) if is_ready(venv) else None


def _run(cmd: list[str], step: str, progress: Progress) -> None:
    if progress:
        progress(f"{step}: {' '.join(cmd[2:]) if len(cmd) > 2 else ' '.join(cmd)}")
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if progress:
        progress(f"{step}: done in {time.monotonic() - start:.0f} s")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise OracleVenvError(f"oracle venv: step '{step}' failed (exit {proc.returncode}):\n{tail}")


def create_oracle_venv(
    path: Path | str | None = None,
    progress: Progress = None,
    force: bool = False,
    python: str = sys.executable,
) -> Path:
    """Build the oracle venv at ``path`` (default: ``default_path()``).

    Returns the venv's interpreter. Does nothing when the venv is already
    complete for the current requirement files, unless ``force``.
    """
    venv = Path(path).expanduser() if path is not None else default_path()
    if venv.exists() and not venv.is_dir():
        raise OracleVenvError(f"{venv}: exists and is not a directory; give a directory for the oracle venv")
    if not venv.exists() and venv.parent.exists() and not venv.parent.is_dir():
        raise OracleVenvError(f"{venv.parent}: is not a directory; the oracle venv cannot be created under it")
    if not force and is_ready(venv):
        if progress:
            progress(f"oracle venv up to date: {venv}")
        return _python_in(venv)
    if venv.exists() and any(venv.iterdir()) and not (venv / "pyvenv.cfg").exists():
        raise OracleVenvError(f"{venv}: exists, is not empty and is not a virtual environment; refusing to clear it")

    stages = read_stages()
    start = time.monotonic()
    venv.parent.mkdir(parents=True, exist_ok=True)
    (venv / MARKER).unlink(missing_ok=True)
    _run([python, "-m", "venv", "--clear", str(venv)], "create venv", progress)
    py = str(_python_in(venv))
    # --no-compile: byte-compiling every file of torch, scipy, pandas, ... is most of
    # pip's time; the self-test below compiles just the modules the oracle imports.
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile"]
    _run(pip + stages["torch"], "install torch", progress)
    _run(pip + ["--no-deps"] + stages["no-deps"], "install torch-dependent packages (--no-deps)", progress)
    _run(pip + ["-c", str(CONSTRAINTS)] + stages["deps"], "install dependencies (numpy held)", progress)
    _run([py, str(HERE / "runner.py"), "selftest"], "self-test (shims + import audiosr)", progress)
    (venv / MARKER).write_text(requirements_hash() + "\n")
    if progress:
        progress(f"oracle venv ready at {venv} in {time.monotonic() - start:.0f} s")
    return _python_in(venv)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build the oracle venv (the original audiosr, offline).")
    parser.add_argument("path", nargs="?", default=None, help=f"venv directory (default {default_path()})")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    try:
        py = create_oracle_venv(args.path, progress=lambda m: print(m, file=sys.stderr), force=args.force)
    except OracleVenvError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(py)
    return 0


if __name__ == "__main__":
    sys.exit(main())
