"""Hostile waveforms and settings handed to the pytest plugin: refused in one line, never a verdict on nothing.

Issue 21 ("a verdict is never OK on nothing"), the plugin's part. Every case is
a test of a throw-away project run by a fresh ``python -m pytest`` process
(plugin named with -p, entry points off, private ``$TMPDIR``), and each case
asserts the whole contract:

- the inner test does not pass (it fails, or errors at setup), and a setting
  that cannot work stops the session with pytest's usage error (exit 4);
- the message is ONE line naming the test (its nodeid) and the problem, or for
  a setting, the option and the path;
- no traceback from the harness (no "Traceback", no file of the harness);
- the project, golden dir included, is byte for byte as before: no golden
  written, replaced or half-made, even with ``--golden-update``;
- within a time bound (a refusal comes before any model runs).

Cases are named ``<class>-<what>`` by the failure each one used to end in:
wrong_verdict (the test passed on nothing, or everything was skipped),
traceback, hang, partial_output, unclear_message, lost_result. The waveform
cases share one project and run as two sessions (with ``--golden-update`` and
without); each setting case is a session of its own, stopped at configure
time. Both directions: a valid ``[samples]`` and ``[samples, 2]`` waveform
(and ``enhance`` of a ``[samples, 2]`` array, one tiny-model run) still pass,
golden update then check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_hostile_support import hostile_env, snapshot

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "audiosr_verify.testing.pytest_plugin"
SESSION_SECONDS = 120  # a whole inner session, model runs included; a hang is killed here
REFUSAL_SECONDS = 30  # one refused test (setup + call; milliseconds, but the machine is shared): no model runs
HARNESS_FILES = ("audiosr_verify/", "audiosr_model/", "site-packages/")
KEY_DIR = "tests/goldens/reference/random-tiny-seed0"  # the project's goldens of the default run

# Records every test report of the inner session (nodeid, phase, outcome, message, duration) as JSON lines.
RECORDER = """
import json, os

def pytest_runtest_logreport(report):
    with open(os.environ["HOSTILE_RECORDS"], "a") as f:
        f.write(json.dumps({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                            "message": report.longreprtext, "duration": report.duration}) + "\\n")
"""

PRELUDE = """
import numpy as np

RATE = 16000
MONO = (0.3 * np.sin(np.arange(4800) / 7)).astype(np.float32)
STEREO = np.stack([MONO, 0.5 * MONO], axis=1)  # [samples, 2]
MONO16 = (0.3 * np.sin(np.arange(RATE // 2) / 5)).astype(np.float32)
STEREO16 = np.stack([MONO16, -MONO16], axis=1)
"""

VALID = PRELUDE + """
def test_mono(golden_check):
    golden_check("mono", MONO)

def test_stereo(golden_check):
    golden_check("stereo", STEREO)

def test_enhance_stereo(enhance, golden_check):
    out = enhance(STEREO16, rate=RATE)  # [samples, 2]: two channels, not 8000
    assert out.source.channels == 2 and out.source.frames == RATE // 2, out.source
    assert out.ndim == 1 and out.size == 3 * (RATE // 2) and np.all(np.isfinite(out)), out.shape
    golden_check("enhance_stereo", out)
"""


@dataclass(frozen=True)
class Case:
    klass: str  # the failure it used to end in
    name: str
    body: str  # the test's body (PRELUDE's names in scope)
    words: tuple[str, ...]  # what the one line must say, besides the test's nodeid
    keeps: str = ""  # a golden (made by the valid session) that must be there before, and unchanged after

    @property
    def id(self) -> str:
        return f"{self.klass}-{self.name}"

    @property
    def function(self) -> str:
        return f"test_{self.klass}__{self.name}"


def _gc(name: str, waveform: str) -> str:
    return f'golden_check("{name}", {waveform})'


WAVEFORM_CASES = [
    # wrong verdict: a golden of nothing, or of a silently flattened array, written and then "identical"
    Case("wrong_verdict", "golden_check_empty", _gc("empty", "np.zeros(0, np.float32)"),
         ("golden_check 'empty'", "no samples")),
    Case("wrong_verdict", "golden_check_empty_frames", _gc("empty2", "np.zeros((0, 2), np.float32)"),
         ("golden_check 'empty2'", "no samples")),
    Case("wrong_verdict", "golden_check_channels_first", _gc("cf", "STEREO.T"),
         ("golden_check 'cf'", "(2, 4800)", "channels-first", "waveform.T")),
    Case("wrong_verdict", "golden_check_channels_first_mono", _gc("cf1", "MONO[None, :]"),
         ("golden_check 'cf1'", "(1, 4800)", "channels-first")),
    # traceback: from numpy, safetensors, json or soundfile inside the harness
    Case("traceback", "golden_check_inf_sample", "x = MONO.copy(); x[100] = np.inf; " + _gc("inf", "x"),
         ("golden_check 'inf'", "1 of 4800 samples are NaN or Inf", "index 100")),
    Case("traceback", "golden_check_float64_overflow", _gc("big", "np.full(4800, 1e39)"),
         ("golden_check 'big'", "NaN or Inf (as float32)")),
    Case("traceback", "golden_check_string", _gc("text", '"not audio"'),
         ("golden_check 'text'", "array of numbers", "got str")),
    Case("traceback", "golden_check_none", _gc("none", "None"), ("golden_check 'none'", "array of numbers")),
    Case("traceback", "golden_check_object_array", _gc("obj", "np.array([object()] * 4800)"),
         ("golden_check 'obj'", "array of numbers", "dtype object")),
    Case("traceback", "golden_check_complex", _gc("cplx", "MONO.astype(np.complex64)"),
         ("golden_check 'cplx'", "array of numbers")),
    Case("traceback", "golden_check_scalar", _gc("scalar", "np.float32(0.5)"),
         ("golden_check 'scalar'", "a single number")),
    Case("traceback", "golden_check_3d", _gc("cube", "np.zeros((3, 4800, 2), np.float32)"),
         ("golden_check 'cube'", "3 axes")),
    Case("traceback", "golden_check_case_dir_is_file", _gc("blocked", "MONO"),
         ("golden_check 'blocked'", "golden dir:", "blocked is a regular file, not a folder")),
    Case("traceback", "enhance_all_nan", "enhance(np.full(RATE, np.nan, np.float32), rate=RATE)",
         ("enhance", "16000 of 16000 samples are NaN or Inf")),
    Case("traceback", "enhance_ragged_list", "enhance([[0.1, 0.2], [0.3]], rate=RATE)",
         ("enhance", "array of numbers")),
    Case("traceback", "enhance_unknown_setting", "enhance(MONO16, rate=RATE, guidance=3.0)",
         ("enhance", "unknown setting 'guidance'", "guidance_scale")),
    # hang: a named pipe must be refused without being opened
    Case("hang", "enhance_fifo_input", 'enhance("pipe.wav")', ("enhance", "pipe.wav", "not a regular file")),
    Case("hang", "golden_check_fifo_input", 'golden_check("piped", MONO, input="pipe.wav")',
         ("golden_check 'piped'", "pipe.wav", "not a regular file")),
    # partial output: folders of a golden made before the write failed; a WAV of 8000 channels written
    Case("partial_output", "golden_check_all_nan", _gc("nan", "np.full(4800, np.nan, np.float32)"),
         ("golden_check 'nan'", "4800 of 4800 samples are NaN or Inf")),
    Case("partial_output", "enhance_channels_first", "enhance(STEREO16.T, rate=RATE)",
         ("enhance", "(2, 8000)", "channels-first", "waveform.T")),
    # unclear message: a chained second error, or a layout guessed instead of named
    Case("unclear_message", "golden_check_square", _gc("square", "np.zeros((8, 8), np.float32)"),
         ("golden_check 'square'", "cannot tell channels from samples")),
    Case("unclear_message", "golden_check_too_many_channels", _gc("wide", "np.zeros((4800, 20), np.float32)"),
         ("golden_check 'wide'", "cannot tell channels from samples", "at most 16 channels")),
    Case("unclear_message", "enhance_steps_zero", "enhance(MONO16, rate=RATE, steps=0)",
         ("enhance", "steps must be a whole number from 1 to 1000, got 0")),
    Case("unclear_message", "enhance_seed_negative", "enhance(MONO16, rate=RATE, seed=-1)",
         ("enhance", "seed must be a whole number", "got -1")),
    Case("unclear_message", "enhance_guidance_nan", "enhance(MONO16, rate=RATE, guidance_scale=float('nan'))",
         ("enhance", "guidance scale must be a finite number", "got nan")),
    Case("unclear_message", "enhance_level_mode", 'enhance(MONO16, rate=RATE, level_mode="loud")',
         ("enhance", "unknown level mode 'loud'")),
    Case("unclear_message", "enhance_rate_zero", "enhance(MONO16, rate=0)", ("enhance", "sample rate", "got 0")),
    Case("unclear_message", "enhance_rate_bool", "enhance(MONO16, rate=True)",
         ("enhance", "sample rate", "got True")),
    Case("unclear_message", "enhance_rate_with_file", 'enhance("tone.wav", rate=RATE)',
         ("enhance", "rate=16000 is for a waveform")),
    # lost result: --golden-update replacing a good golden with nothing, or with a flattened array
    Case("lost_result", "update_replaces_golden_with_empty", _gc("mono", "MONO[:0]"),
         ("golden_check 'mono'", "no samples"), keeps="mono"),
    Case("lost_result", "update_replaces_golden_with_channels_first", _gc("stereo", "STEREO.T"),
         ("golden_check 'stereo'", "channels-first"), keeps="stereo"),
]


@dataclass(frozen=True)
class Setting:
    klass: str
    name: str
    args: tuple[str, ...]  # pytest arguments ({afile}-style names are files of the project)
    words: tuple[str, ...]  # what the one "ERROR:" line must say
    ini: str = ""  # the project's ini body for this session
    env: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.klass}-{self.name}"


SETTING_CASES = [
    # wrong verdict: a checkpoint asked for but absent used to skip every test (exit 0, nothing verified)
    Setting("wrong_verdict", "checkpoint_missing", ("--audiosr-checkpoint", "no-such.ckpt"),
            ("--audiosr-checkpoint", "no-such.ckpt", "no such file")),
    Setting("wrong_verdict", "checkpoint_is_directory", ("--audiosr-checkpoint", "adir"),
            ("--audiosr-checkpoint", "adir", "is a directory")),
    # traceback: NotADirectoryError / FileExistsError from mkdir in the middle of the session
    Setting("traceback", "golden_dir_is_file", ("--audiosr-golden-dir", "afile"),
            ("--audiosr-golden-dir afile", "afile is a regular file")),
    Setting("traceback", "golden_dir_under_file", ("--audiosr-golden-dir", "afile/goldens"),
            ("--audiosr-golden-dir afile/goldens", "is under", "afile, which is a regular file")),
    Setting("traceback", "ini_golden_dir_is_file", (),
            ("audiosr_golden_dir = afile in ", "pytest.ini", "afile is a regular file"),
            ini="audiosr_golden_dir = afile\n"),
    # hang: a named pipe is never opened for reading
    Setting("hang", "checkpoint_is_fifo", ("--audiosr-checkpoint", "pipe.wav"),
            ("--audiosr-checkpoint", "pipe.wav", "named pipe")),
    Setting("hang", "golden_dir_is_fifo", ("--audiosr-golden-dir", "pipe.wav"),
            ("--audiosr-golden-dir pipe.wav", "is a named pipe, not a folder")),
    # unclear message
    Setting("unclear_message", "checkpoint_empty_file", ("--audiosr-checkpoint", "empty.ckpt"),
            ("--audiosr-checkpoint", "empty.ckpt", "empty file")),
    Setting("unclear_message", "golden_dir_empty", ("--audiosr-golden-dir=",),
            ("--audiosr-golden-dir", "empty path")),
    # lost result: the report asked for failed at the very end, after every test had passed
    Setting("lost_result", "report_dir_is_file", ("--audiosr-report-dir", "afile"),
            ("--audiosr-report-dir afile", "afile is a regular file")),
    Setting("lost_result", "report_dir_under_file", ("--audiosr-report-dir", "afile/reports"),
            ("--audiosr-report-dir afile/reports", "is under")),
]


# ---------------------------------------------------------------- running the inner sessions


@dataclass
class Session:
    rc: int
    out: str  # stdout and stderr
    err: str
    seconds: float
    records: list[dict]
    timed_out: bool = False

    def reports(self, nodeid: str) -> list[dict]:
        return [r for r in self.records if r["nodeid"] == nodeid]


def _pytest(project: Path, scratch: Path, *args: str, env: dict | None = None) -> Session:
    """``python -m pytest ARGS`` in ``project``; never hangs the outer test."""
    records = scratch / f"records-{time.monotonic_ns()}.jsonl"
    full_env = hostile_env(scratch, PYTHONPATH=str(ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
                           PYTHONDONTWRITEBYTECODE="1", HOSTILE_RECORDS=str(records))
    for name in ("CI", "AUDIOSR_CHECKPOINT", "AUDIOSR_SUBJECT", "PYTEST_ADDOPTS"):
        full_env.pop(name, None)
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider", "-q", *args]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=project, env=full_env, capture_output=True, text=True, timeout=SESSION_SECONDS)
        rc, out, err, timed_out = r.returncode, r.stdout, r.stderr, False
    except subprocess.TimeoutExpired as exc:
        rc, timed_out = -9, True
        out, err = (exc.stdout or b"").decode(errors="replace"), (exc.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - t0
    lines = records.read_text().splitlines() if records.exists() else []
    return Session(rc, out + err, err, seconds, [json.loads(line) for line in lines], timed_out)


def _make_project(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(RECORDER)
    (project / "test_valid.py").write_text(VALID)
    hostile = [PRELUDE] + [f"\ndef {c.function}(enhance, golden_check):\n    {c.body}\n" for c in WAVEFORM_CASES]
    (project / "test_hostile.py").write_text("".join(hostile))
    (project / "test_one.py").write_text(PRELUDE + "\ndef test_one(golden_check):\n    golden_check('one', MONO)\n")
    t = np.arange(4800) / 16000
    sf.write(project / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    os.mkfifo(project / "pipe.wav")
    (project / "afile").write_text("a regular file where a folder belongs\n")
    (project / "adir").mkdir()
    (project / "empty.ckpt").write_bytes(b"")
    blocked = project / KEY_DIR / "blocked"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the case's folder belongs\n")
    return project


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One project: the valid tests (update, then check), then the hostile ones (update, then check)."""
    root = tmp_path_factory.mktemp("hostile-plugin")
    project = _make_project(root)
    done = {"project": project, "scratch": root}
    done["valid_update"] = _pytest(project, root, "test_valid.py", "--golden-update")
    done["valid_check"] = _pytest(project, root, "test_valid.py")
    for mode, args in (("update", ("--golden-update",)), ("check", ())):
        before = snapshot(project)
        done[mode] = (_pytest(project, root, "test_hostile.py", *args), before, snapshot(project))
    return done


# ---------------------------------------------------------------- the contract


def _one_line_naming(message: str, nodeid: str, words: tuple[str, ...]) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{message}"
    line = lines[0]
    assert line.startswith(f"{nodeid}: "), f"the test is not named first: {line}"
    for word in words:
        assert word in line, f"{word!r} not in: {line}"
    assert "Traceback" not in line and not any(f in line.replace("\\", "/") for f in HARNESS_FILES), line
    return line


def _assert_refused_test(session: Session, nodeid: str, words: tuple[str, ...]) -> None:
    assert not session.timed_out, f"hung: no answer in {SESSION_SECONDS} s\n{session.out[-3000:]}"
    assert session.rc == 1, f"exit {session.rc}\n{session.out[-3000:]}"
    reports = session.reports(nodeid)
    assert reports, f"{nodeid} did not run\n{session.out[-3000:]}"
    assert not any(r["when"] == "call" and r["outcome"] == "passed" for r in reports), f"{nodeid} passed"
    failed = [r for r in reports if r["outcome"] == "failed"]
    assert len(failed) == 1, reports
    _one_line_naming(failed[0]["message"], nodeid, words)
    seconds = sum(r["duration"] for r in reports)
    assert seconds < REFUSAL_SECONDS, f"{nodeid} took {seconds:.1f} s"
    for marker in ("Traceback", "INTERNALERROR"):
        assert marker not in session.out, session.out[-3000:]


@pytest.mark.parametrize("mode", ["update", "check"])
@pytest.mark.parametrize("case", WAVEFORM_CASES, ids=lambda c: c.id)
def test_hostile_waveform_or_setting_is_refused(runs, case, mode):
    session, before, after = runs[mode]
    _assert_refused_test(session, f"test_hostile.py::{case.function}", case.words)
    if case.keeps:  # else the case would pass on nothing: there must be a golden to lose
        assert f"{KEY_DIR}/{case.keeps}/output.safetensors" in before, sorted(before)
    assert after == before, "the session changed the project (a golden written, replaced or half-made)"


@pytest.mark.parametrize("case", SETTING_CASES, ids=lambda c: c.id)
def test_hostile_plugin_setting_is_a_usage_error(runs, case, tmp_path):
    project = runs["project"]
    (project / "pytest.ini").write_text("[pytest]\n" + case.ini)
    try:
        before = snapshot(project)
        session = _pytest(project, tmp_path, "test_one.py", "--golden-update", *case.args)
        after = snapshot(project)
    finally:
        (project / "pytest.ini").write_text("[pytest]\n")
    assert not session.timed_out, f"hung\n{session.out[-3000:]}"
    assert session.rc == pytest.ExitCode.USAGE_ERROR, f"exit {session.rc}\n{session.out[-3000:]}"
    lines = [ln for ln in session.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), session.out[-3000:]
    for word in case.words:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"
    assert "Traceback" not in session.out and session.records == [], session.out[-3000:]
    assert session.seconds < SESSION_SECONDS / 4, f"took {session.seconds:.1f} s"
    assert after == before, "a refused setting changed the project"


def test_wrong_verdict_stale_checkpoint_variable_fails_each_test(runs, tmp_path):
    """``$AUDIOSR_CHECKPOINT`` naming no file: every test that needs it fails, in one line naming it; not a
    usage error (projects that do not use the plugin are not stopped) and no longer a silent skip."""
    project = runs["project"]
    before = snapshot(project)
    session = _pytest(project, tmp_path, "test_one.py", "--golden-update",
                      env={"AUDIOSR_CHECKPOINT": str(project / "gone.ckpt")})
    _assert_refused_test(session, "test_one.py::test_one", ("AUDIOSR_CHECKPOINT", "gone.ckpt", "no such file"))
    assert snapshot(project) == before


def test_traceback_default_golden_dir_is_a_file_fails_each_test(tmp_path):
    """The default tests/goldens is not checked at configure (every session would pay): on first use."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(RECORDER)
    (project / "test_one.py").write_text(PRELUDE + "\ndef test_one(golden_check):\n    golden_check('one', MONO)\n")
    (project / "tests" / "goldens").write_text("a file where the golden dir belongs\n")
    before = snapshot(project)
    session = _pytest(project, tmp_path, "test_one.py", "--golden-update")
    _assert_refused_test(session, "test_one.py::test_one", ("golden_check 'one'", "golden dir:", "is under",
                                                            "goldens, which is a regular file"))
    assert snapshot(project) == before


# ---------------------------------------------------------------- both directions


@pytest.mark.parametrize("name", ["mono", "stereo", "enhance_stereo"])
def test_valid_waveform_passes_update_then_check(runs, name):
    """A ``[samples]`` and a ``[samples, 2]`` waveform, and enhance of a ``[samples, 2]`` one, still pass."""
    update, check = runs["valid_update"], runs["valid_check"]
    assert update.rc == 0 and "3 updated" in update.out, update.out[-3000:]
    assert check.rc == 0 and "3 identical" in check.out, check.out[-3000:]
    nodeid = f"test_valid.py::test_{name}"
    for session in (update, check):
        assert [r["outcome"] for r in session.reports(nodeid)] == ["passed"] * 3, session.reports(nodeid)
    golden = runs["project"] / KEY_DIR / name
    assert (golden / "output.safetensors").is_file() and (golden / "meta.json").is_file()
    meta = json.loads((golden / "meta.json").read_text())
    if name == "enhance_stereo":
        assert "2 channel(s), 8000 frames at 16000 Hz" in meta["input"]["description"], meta["input"]
