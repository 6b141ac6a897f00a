"""Project-side driver of the oracle runner (imported in the project venv).

The runner executes inside the oracle venv as a subprocess; requests and
results travel as files (JSON and safetensors) so nothing of the original's
stack is ever imported here.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Optional

from audiosr_verify.oracle import venv as oracle_venv

RUNNER = Path(__file__).resolve().parent / "runner.py"
DEFAULT_TIMEOUT = 3600.0


class OracleUnavailable(RuntimeError):
    """No oracle interpreter: the original audiosr cannot be run here."""


class OracleError(RuntimeError):
    """The runner ran and failed; the message carries its error and stderr tail."""

    def __init__(self, message: str, stderr: str = "", result: Optional[dict] = None):
        super().__init__(message)
        self.stderr = stderr
        self.result = result


def oracle_python(python: str | os.PathLike | None = None) -> Path:
    """The interpreter to use, or OracleUnavailable saying how to get one."""
    if python is not None:
        p = Path(python)
        if not p.exists():
            raise OracleUnavailable(f"oracle interpreter {p} does not exist")
        return oracle_venv.check_interpreter(p)  # not executable: one line, not a PermissionError
    found = oracle_venv.find_oracle_python()
    if found is None:
        raise OracleUnavailable(
            f"no oracle venv at {oracle_venv.default_path()} (set {oracle_venv.ENV_VAR} or "
            "AUDIOSR_ORACLE_PYTHON, or build one with `python -m audiosr_verify.oracle.venv`)"
        )
    return found


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def with_overrides(request: dict) -> dict:
    """``request`` with the original's config overrides when its preset is a configuration file: the runner
    knows only its built-in presets (`oracle.config_overrides`)."""
    from audiosr_verify.oracle.config_overrides import request_overrides

    preset = request.get("preset")
    overrides = request_overrides(preset) if isinstance(preset, str) else None
    return request if overrides is None else {**request, "overrides": overrides}


def run(
    command: str,
    request: dict,
    workdir: str | os.PathLike,
    timeout: float = DEFAULT_TIMEOUT,
    python: str | os.PathLike | None = None,
) -> dict:
    """Run ``runner.py COMMAND`` on ``request``; return its result dict.

    Raises OracleUnavailable when there is no oracle interpreter, OracleError
    when the runner fails, times out or prints no result.
    """
    py = oracle_python(python)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    req_path = work / f"request-{command}-{uuid.uuid4().hex[:8]}.json"
    req_path.write_text(json.dumps(with_overrides(request), indent=1))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # nothing of the project venv may leak into the oracle
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    try:
        proc = subprocess.run(
            [str(py), str(RUNNER), command, str(req_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            cwd=str(work),
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise OracleError(f"oracle {command} timed out after {timeout:.0f} s\n{_tail(err)}", err) from None
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if proc.returncode != 0 or not isinstance(result, dict) or not result.get("ok"):
        what = (result or {}).get("error") if isinstance(result, dict) else None
        head = f"{what['type']}: {what['message']}" if what else f"exit code {proc.returncode}, no result line"
        raise OracleError(f"oracle {command} failed: {head}\n--- stderr (tail) ---\n{_tail(proc.stderr)}", proc.stderr, result)
    return result
