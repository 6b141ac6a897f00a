"""What the hostile-input suite shares: running a verb under limits, and the contract it must keep.

(No tests here; the name keeps it beside the suite it serves.)

`run_cli` runs ``python -m audiosr_verify ...`` in a child process with a hard
address-space limit and a wall-clock limit, in a private ``$TMPDIR``, and
measures the child's own peak RSS (its ``VmHWM`` at exit: ``wait4``'s ``ru_maxrss`` would
include the parent's, which Linux carries across the exec of a vforked child). `assert_refused` checks the
contract of issue 12 on the result: a non-zero exit, exactly one line on
stderr naming the file and the problem, no traceback, bounded time and
memory, nothing written, nothing changed, no temporary file in ``$TMPDIR``
and no code run (the canary file a hostile payload would create is absent).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from audiosr_model.errors import printable

ADDRESS_SPACE_LIMIT = 3 << 30  # a runaway read fails fast instead of taking the machine
REFUSAL_RSS_MB = 1000  # torch alone is ~220 MB; the 1 GB zip bomb used to take 2.2 GB
REFUSAL_SECONDS = 60  # generous: the test machine is shared; a hang is caught long before the limit matters
CANARY = "CANARY_CODE_RAN"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    timed_out: bool = False

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


# The child sets its own limits before importing anything (no preexec_fn in a threaded test process).
LAUNCHER = (
    "import resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "import os\n"
    "try:\n"
    "    from audiosr_verify.cli.main import main\n"
    "    sys.exit(main(sys.argv[1:]))\n"
    "finally:\n"
    "    hwm = [ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM:')]\n"
    "    if hwm and os.environ.get('HOSTILE_HWM_FILE'):\n"
    "        open(os.environ['HOSTILE_HWM_FILE'], 'w').write(hwm[0])  # kB\n"
)


def hostile_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    tmpdir = tmp / "TMPDIR"
    tmpdir.mkdir(exist_ok=True)
    env.update({"TMPDIR": str(tmpdir), "COLUMNS": "200", "NO_COLOR": "1", "AUDIOSR_VERIFY_CACHE": str(tmp / "cache"),
                "OMP_NUM_THREADS": "1"})
    env.pop("AUDIOSR_ORACLE_PYTHON", None)
    env.update(extra)
    return env


def start_cli(argv: list, tmp: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path, Path]:
    stamp = time.monotonic_ns()
    out, err = tmp / f"stdout-{stamp}", tmp / f"stderr-{stamp}"
    env = dict(env or hostile_env(tmp))
    env["HOSTILE_HWM_FILE"] = str(out) + ".hwm"
    fo, fe = open(out, "wb"), open(err, "wb")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, *map(os.fsdecode, argv)], cwd=tmp,
                            env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
    fo.close()
    fe.close()
    return proc, out, err


def wait_cli(proc: subprocess.Popen, out: Path, err: Path, timeout: float, t0: float) -> Result:
    deadline = t0 + timeout
    rusage, status, timed_out = None, None, False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.kill(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    hwm = Path(str(out) + ".hwm")
    try:  # the child's own peak; without it (killed), wait4's figure, which can only overstate it
        max_rss_kb = float(hwm.read_text())
        hwm.unlink()
    except (OSError, ValueError):
        max_rss_kb = rusage.ru_maxrss
    result = Result(proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"), seconds,
                    max_rss_kb / 1024, timed_out)
    out.unlink()
    err.unlink()
    return result


def run_cli(argv: list, tmp: Path, env: dict | None = None, timeout: float = REFUSAL_SECONDS) -> Result:
    """``audiosr-verify ARGV`` in ``tmp`` under the limits; never hangs the test."""
    t0 = time.monotonic()
    proc, out, err = start_cli(argv, tmp, env)
    return wait_cli(proc, out, err, timeout, t0)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (names, kinds, sizes, content digests); the suite's own scratch excluded."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == "TMPDIR" or rel.startswith(("stdout-", "stderr-", "cache")):
                continue
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path) and st.st_size < (64 << 20):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[rel] = (st.st_mode & 0o170000, st.st_size, digest, os.readlink(path) if os.path.islink(path) else None)
    return seen


def assert_refused(result: Result, path: object, *words: str, before: dict | None = None, root: Path | None = None,
                   max_rss_mb: float = REFUSAL_RSS_MB, max_seconds: float = REFUSAL_SECONDS) -> str:
    """The contract of a refusal; returns the error line."""
    assert not result.timed_out, f"hung: no answer within the limit\n{result.stderr[-2000:]}"
    assert result.rc not in (0,) and result.rc < 128, f"exit {result.rc}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(result.lines) == 1, f"expected one line on stderr, got {len(result.lines)}:\n{result.stderr[-3000:]}"
    line = result.lines[0]
    assert line.startswith("audiosr-verify"), line
    if path is not None:
        assert printable(path) in line, f"{printable(path)!r} not named in: {line}"
    for word in words:
        assert word in line, f"{word!r} not in: {line}"
    assert result.seconds < max_seconds, f"took {result.seconds:.1f} s"
    assert result.max_rss_mb < max_rss_mb, f"peak RSS {result.max_rss_mb:.0f} MB"
    if root is not None:
        assert not (root / CANARY).exists(), "hostile code ran"
        leftovers = list((root / "TMPDIR").iterdir()) if (root / "TMPDIR").exists() else []
        assert leftovers == [], f"left in $TMPDIR: {leftovers}"
        if before is not None:
            after = snapshot(root)
            assert after == before, f"the run changed files: {_diff(before, after)}"
    return line


def _diff(before: dict, after: dict) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added {added}, removed {removed}, changed {changed}"


def partial_leftovers(root: Path) -> list[str]:
    """Temporary or lock files the publisher would leave if it failed to clean up."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if name.endswith((".partial", ".lock", ".previous")) or ".old-" in name or "partial" in name:
                bad.append(os.path.join(dirpath, name))
    return bad
