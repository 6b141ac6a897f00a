"""`check` is never OK on nothing: hostile fixture sets, options and subjects (issue 21).

Organised by the failure class each case guards against:

* **wrong verdict**: a check that compared nothing (a missing or empty fixture
  folder, a subject that provides no stage the fixtures cover, a schema version
  from the future) must never exit 0 or say OK;
* **traceback**: damaged fixtures, invalid metadata, an unknown ``--input``,
  bad ``--stage-timeout`` values, and subjects returning garbage (a string,
  ``None``, an object array, a 0-d scalar, an empty array, NaN...) end in one
  line (exit 2) or a failing stage that names the stage, what came back and
  what was expected;
* **hang**: a stage that never returns (sleeping, spinning, or swallowing
  exceptions) fails that stage within its time bound, and the run stops cleanly;
* **lost result / partial output**: the report of a run stopped by a hang is
  still written, with the results so far;
* **unclear message**: every refusal names the file or option and the problem.

Refusals run the CLI in a child process under `tests/test_hostile_support.py`'s
limits and contract (`assert_refused`); subject cases run the stage check in
process (milliseconds each: the fixtures feed the stage, the subject returns
garbage at once), with a few through the CLI for the exit code and the report.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from audiosr_verify.checks import stages as S
from audiosr_verify.util.paths import data_dir
from tests.test_hostile_support import assert_refused, hostile_env, run_cli, snapshot

TINY = data_dir() / "oracle" / "tiny"
DSP_INPUT = "tone_mix_8k"  # a `dsp` input: the DSP stages only
WHOLE_INPUT = "quiet_16k"  # a `dsp` input whose normalised waveform is stored whole: features run on it
CHAIN_INPUT = "noise_burst_48k"  # a `chain` input: the network stages too (the harness feeds them the original's)


# ---------------------------------------------------------------- fixture sets made hostile


def copy_set(tmp: Path, name: str = "fix") -> Path:
    dst = tmp / name
    shutil.copytree(TINY, dst)
    return dst


def edit_meta(fix: Path, change) -> Path:
    meta = json.loads((fix / "metadata.json").read_text())
    change(meta)
    (fix / "metadata.json").write_text(json.dumps(meta))
    return fix


def _set(tmp: Path, change=None, files=None) -> Path:
    fix = copy_set(tmp)
    if change is not None:
        edit_meta(fix, change)
    for name, make in (files or {}).items():
        make(fix / name)
    return fix


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def _garble_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:40] = b"\xff" * 32
    path.write_bytes(bytes(data))


def _lying_header(path: Path) -> None:
    """A header that declares far more data than the file holds."""
    header = json.dumps({"x": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)


def _drop_tensor(meta: dict) -> None:
    meta["inputs"][DSP_INPUT]["tensors"]["resample.extra"] = {"shape": [3], "dtype": "float32"}


def _wrong_shape(meta: dict) -> None:
    meta["inputs"][DSP_INPUT]["tensors"]["resample.waveform"]["shape"] = [7]


def _wrong_dtype(meta: dict) -> None:
    meta["inputs"][DSP_INPUT]["tensors"]["resample.waveform"]["dtype"] = "float64"


def _bad_hash(meta: dict) -> None:
    meta["files"] = {f"{DSP_INPUT}.safetensors": "0" * 64}


CHECK = ["check", "reference", "--no-modules"]


def _check(fix, *extra) -> list:
    return [*CHECK, "--fixtures", str(fix), *extra]


# Each case: tmp -> (argv, the path or option the line must name, words it must contain)
REFUSALS = {
    # wrong verdict: these exited 0 with "OK" before (nothing compared)
    "wrong verdict/fixture folder does not exist": lambda t: (_check(t / "nope"), t / "nope",
                                                              ("no such fixture directory",)),
    "wrong verdict/fixture folder is empty": lambda t: ((t / "empty").mkdir(), _check(t / "empty"), t / "empty",
                                                        ("empty folder",))[1:],
    "wrong verdict/fixture folder without metadata": lambda t: (
        (t / "d").mkdir(), (t / "d" / "x.safetensors").write_bytes(b"x"), _check(t / "d"), t / "d",
        ("without metadata.json",))[2:],
    "wrong verdict/schema version from the future": lambda t: (
        _check(_set(t, lambda m: m.update(schema_version=99))), t / "fix" / "metadata.json", ("schema version 99",)),
    "wrong verdict/schema version missing": lambda t: (
        _check(_set(t, lambda m: m.pop("schema_version"))), t / "fix" / "metadata.json", ("no schema_version",)),
    "wrong verdict/metadata names no inputs": lambda t: (
        _check(_set(t, lambda m: m.update(inputs={}))), t / "fix" / "metadata.json", ("names no inputs",)),
    "wrong verdict/an input lists no tensors": lambda t: (
        _check(_set(t, lambda m: m["inputs"][DSP_INPUT].update(tensors={}))), t / "fix" / "metadata.json",
        ("lists no tensors",)),
    "wrong verdict/fixture file changed since export (sha256)": lambda t: (
        _check(_set(t, _bad_hash)), t / "fix" / f"{DSP_INPUT}.safetensors", ("sha256",)),
    "wrong verdict/a listed tensor is missing from its file": lambda t: (
        _check(_set(t, _drop_tensor)), t / "fix" / f"{DSP_INPUT}.safetensors", ("lacks tensor 'resample.extra'",)),
    "wrong verdict/a tensor of another shape": lambda t: (
        _check(_set(t, _wrong_shape)), t / "fix" / f"{DSP_INPUT}.safetensors", ("has shape",)),
    "wrong verdict/a tensor of another dtype": lambda t: (
        _check(_set(t, _wrong_dtype)), t / "fix" / f"{DSP_INPUT}.safetensors", ("metadata.json says float64",)),
    "wrong verdict/an input's fixture file is missing": lambda t: (
        _check(_set(t, files={f"{DSP_INPUT}.safetensors": Path.unlink})), t / "fix" / f"{DSP_INPUT}.safetensors",
        ("missing",)),
    "wrong verdict/an input's audio file is missing": lambda t: (
        _check(_set(t, lambda m: m["inputs"][DSP_INPUT].update(file="gone.wav"))), t / "fix", ("gone.wav",)),
    "wrong verdict/metric verdict on a missing folder": lambda t: (
        ["check", "precision:bf16", "--fixtures", str(t / "nope")], t / "nope", ("no such fixture directory",)),
    # traceback: these ended in a Python traceback before
    "traceback/fixture file truncated": lambda t: (
        _check(_set(t, files={f"{DSP_INPUT}.safetensors": _truncate})), t / "fix" / f"{DSP_INPUT}.safetensors",
        ("damaged or truncated",)),
    "traceback/fixture file with a garbled header": lambda t: (
        _check(_set(t, files={f"{DSP_INPUT}.safetensors": _garble_header})), t / "fix" / f"{DSP_INPUT}.safetensors",
        ("damaged or truncated",)),
    "traceback/fixture header declares more data than the file holds": lambda t: (
        _check(_set(t, files={f"{DSP_INPUT}.safetensors": _lying_header})), t / "fix" / f"{DSP_INPUT}.safetensors",
        ("damaged or truncated",)),
    "traceback/metadata is not JSON": lambda t: (
        _check(_set(t, files={"metadata.json": lambda p: p.write_text("{\n")})), t / "fix" / "metadata.json",
        ("not valid JSON",)),
    "traceback/metadata is a JSON list": lambda t: (
        _check(_set(t, files={"metadata.json": lambda p: p.write_text("[1, 2]")})), t / "fix" / "metadata.json",
        ("must be a JSON object",)),
    "traceback/an input entry is a string": lambda t: (
        _check(_set(t, lambda m: m["inputs"].update({DSP_INPUT: "x"}))), t / "fix" / "metadata.json",
        ("must be an object",)),
    "traceback/an input of an unknown level": lambda t: (
        _check(_set(t, lambda m: m["inputs"][DSP_INPUT].update(level="huge"))), t / "fix" / "metadata.json",
        ("level 'huge'",)),
    "traceback/metadata without a weights digest": lambda t: (
        _check(_set(t, lambda m: m.pop("weights"))), t / "fix" / "metadata.json", ("weights digest",)),
    "traceback/fixture folder is a file": lambda t: (
        (t / "f").write_text("x"), _check(t / "f"), t / "f", ("a file",))[1:],
    "traceback/unknown --input": lambda t: ([*CHECK, "--input", "nope"], "nope", ("no fixture input",)),
    "traceback/unknown --input beside a known one": lambda t: (
        [*CHECK, "--input", DSP_INPUT, "--input", "zz_missing"], "zz_missing", ("no fixture input",)),
    "traceback/unknown --input on the metric verdict": lambda t: (
        ["check", "precision:bf16", "--input", "nope"], "nope", ("no fixture input",)),
    "unclear message/--stage-timeout negative": lambda t: ([*CHECK, "--stage-timeout", "-1"], "--stage-timeout",
                                                          ("from 0",)),
    "unclear message/--stage-timeout NaN": lambda t: ([*CHECK, "--stage-timeout", "nan"], "--stage-timeout",
                                                     ("finite",)),
    "unclear message/--stage-timeout text": lambda t: ([*CHECK, "--stage-timeout", "soon"], "--stage-timeout",
                                                      ("number",)),
}


def test_the_check_suite_covers_every_failure_class():
    classes = {name.split("/")[0] for cases in (REFUSALS, SUBJECT_CASES, CLI_SUBJECT_CASES) for name in cases}
    assert {"wrong verdict", "traceback", "hang", "unclear message"} <= classes
    assert len(REFUSALS) + len(SUBJECT_CASES) + len(CLI_SUBJECT_CASES) >= 60


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_hostile_fixture_set_or_option_is_refused(tmp_path, name):
    argv, named, words = REFUSALS[name](tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(argv, tmp_path, hostile_env(tmp_path))
    line = assert_refused(result, named, *words, before=before, root=tmp_path)
    assert result.rc == 2, line
    assert "OK" not in result.stdout


def test_a_fixture_set_with_the_recorded_sha256_is_accepted(tmp_path):
    """The other direction of the sha256 case: the right digest opens (and a library caller gets the tensors)."""
    from audiosr_verify.oracle.fixtures import load_fixture_set
    from audiosr_verify.util.hashing import sha256_file

    fix = _set(tmp_path, lambda m: m.update(files={f"{DSP_INPUT}.safetensors": sha256_file(
        TINY / f"{DSP_INPUT}.safetensors")}))
    meta, items = load_fixture_set(fix, S._resolve(S.DEFAULT_INPUTS), [DSP_INPUT])
    assert [i.name for i in items] == [DSP_INPUT] and "resample.waveform" in items[0].tensors


# ---------------------------------------------------------------- subjects that return garbage


class _One:
    """A subject with one stage that returns ``value`` (or runs ``value()`` when callable)."""

    def __init__(self, stage: str, value):
        self.name = f"garbage-{stage}"
        self._value = value
        self._stage = stage
        setattr(self, stage, self._call)

    def provided(self):
        return [self._stage]

    def _call(self, *args):
        if getattr(self._value, "__self__", None) is not None:  # a bound stage of another subject: delegate
            return self._value(*args)
        return self._value() if callable(self._value) else self._value


def _sleep_forever():
    time.sleep(3600)


def _spin_forever():
    while True:
        pass


def _swallow_and_sleep():
    while True:
        try:
            time.sleep(3600)
        except Exception:  # a subject that catches everything it can: the time bound must still end it
            pass


def _stft_with_a_batch_axis():
    """Shapes the boundary accepts (size-1 axes aside, rank 2) but the harness cannot index frames of."""
    return np.zeros((512, 256), dtype=np.float32), np.zeros((1, 512, 1024), dtype=np.float32)


# (stage, value, input, the error kind, words the error must contain)
SUBJECT_CASES = {
    "traceback/resample returns a string": ("resample", "hello", DSP_INPUT, "bad output", "a string"),
    "traceback/resample returns None": ("resample", None, DSP_INPUT, "bad output", "None"),
    "traceback/resample returns an object array": ("resample", np.array([object(), object()]), DSP_INPUT,
                                                   "bad output", "object"),
    "traceback/resample returns a 0-d scalar": ("resample", np.float32(0.5), DSP_INPUT, "bad output", "0-d"),
    "wrong verdict/resample returns an empty array": ("resample", np.zeros((1, 0), np.float32), DSP_INPUT,
                                                      "bad output", "empty"),
    "wrong verdict/resample returns NaN": ("resample", np.full((1, 48000), np.nan, np.float32), DSP_INPUT,
                                           "bad output", "NaN"),
    "wrong verdict/resample returns Inf": ("resample", np.full((1, 48000), np.inf, np.float32), DSP_INPUT,
                                           "bad output", "NaN or infinite"),
    "traceback/resample returns a bool array": ("resample", np.ones((1, 48000), bool), DSP_INPUT, "bad output",
                                                "bool"),
    "traceback/resample returns a complex array": ("resample", np.ones((1, 48000), np.complex64), DSP_INPUT,
                                                   "bad output", "complex"),
    "traceback/resample returns integers": ("resample", np.ones((1, 48000), np.int16), DSP_INPUT, "bad output",
                                            "floating point"),
    "traceback/resample returns a ragged list": ("resample", [[1.0, 2.0], [3.0]], DSP_INPUT, "bad output",
                                                 "list"),
    "traceback/resample returns a 4-d array": ("resample", np.ones((2, 3, 4, 5), np.float32), DSP_INPUT,
                                               "bad output", "rank 2"),
    "traceback/normalize returns a dict without its output": ("normalize", {"wave": np.ones(3)}, WHOLE_INPUT,
                                                              "bad output", "no output 'waveform'"),
    "traceback/features returns one array for two": ("features", np.ones((512, 256), np.float32), WHOLE_INPUT,
                                                     "bad output", "stft"),
    "traceback/features returns too many outputs": ("features", (np.ones(3), np.ones(3), np.ones(3)), WHOLE_INPUT,
                                                    "bad output", "at most 2"),
    "traceback/features returns an STFT the harness cannot index": ("features", _stft_with_a_batch_axis, WHOLE_INPUT,
                                                                        "unusable output", "could not use"),
    "traceback/cutoff returns a fraction": ("cutoff", 3.5, DSP_INPUT, "bad output", "whole number"),
    "traceback/cutoff returns a string": ("cutoff", "141", DSP_INPUT, "bad output", "a string"),
    "traceback/cutoff returns True": ("cutoff", True, DSP_INPUT, "bad output", "whole number"),
    "traceback/randomness returns a number for the filter type": (
        "randomness", (3, []), DSP_INPUT, "bad output", "expected a string"),
    "traceback/randomness returns draws of strings": ("randomness", ("ellip", ["a", "b"]), CHAIN_INPUT,
                                                      "bad output", "draws"),
    "traceback/vocoder returns None": ("vocoder", None, CHAIN_INPUT, "bad output", "None"),
    "traceback/vocoder returns a string": ("vocoder", "wave", CHAIN_INPUT, "bad output", "a string"),
    "wrong verdict/vocoder returns NaN": ("vocoder", lambda: np.full(245776, np.nan, np.float32), CHAIN_INPUT,
                                          "bad output", "NaN"),
    "traceback/condition_encode returns None for std": ("condition_encode", {"mean": np.ones((1, 16, 64, 32)),
                                                                             "std": None}, CHAIN_INPUT,
                                                        "bad output", "None for 'std'"),
    "traceback/ddim_schedule returns non-integral timesteps": (
        "ddim_schedule", {"timesteps": np.array([1.5, 501.0]), "alphas": np.ones(2), "alphas_prev": np.ones(2),
                          "sigmas": np.ones(2)}, CHAIN_INPUT, "bad output", "non-integral"),
    "traceback/vae_decode returns a torch bool tensor": ("vae_decode", lambda: __import__("torch").ones(3,
                                                         dtype=__import__("torch").bool), CHAIN_INPUT, "bad output",
                                                         "bool"),
    "hang/resample sleeps forever": ("resample", _sleep_forever, DSP_INPUT, "timed out", "did not return"),
    "hang/resample spins forever": ("resample", _spin_forever, DSP_INPUT, "timed out", "did not return"),
    "hang/resample swallows exceptions while sleeping": ("resample", _swallow_and_sleep, DSP_INPUT, "timed out",
                                                         "did not return"),
    "hang/vocoder sleeps forever": ("vocoder", _sleep_forever, CHAIN_INPUT, "timed out", "did not return"),
}


@pytest.mark.parametrize("name", sorted(SUBJECT_CASES))
def test_a_subject_returning_garbage_fails_its_stage_with_a_reason(name):
    stage, value, inp, kind, words = SUBJECT_CASES[name]
    start = time.monotonic()
    result = S.check_stages(_One(stage, value), inputs=[inp], views=("teacher",), stage_timeout=1.0)
    took = time.monotonic() - start
    assert result.ok is False, result.summary_line()
    errors = [e for e in result.errors if e["stage"] == stage]
    assert errors, (result.errors, result.summary_line())
    assert errors[0]["kind"] == kind, errors
    assert words in errors[0]["error"], errors
    status = {s.name: s.status for s in result.stages("teacher")}
    assert status[stage] == "fail", status
    assert f"{stage}.call" in {c.name for c in result.failures()}
    assert "\n" not in errors[0]["error"]
    assert took < 30, f"took {took:.1f} s"
    if kind == "timed out":
        assert result.stopped and stage in result.stopped
        assert result.to_dict()["stopped"]  # the report says why it stopped


def test_a_well_behaved_one_stage_subject_passes_with_what_it_compared():
    """The other direction: the same harness path passes a stage that returns the right value."""
    from audiosr_verify.subjects.reference import ReferenceSubject

    ref = ReferenceSubject(net=S.tiny_network())
    result = S.check_stages(_One("resample", ref.resample), inputs=[DSP_INPUT])
    assert result.ok is True, result.summary_line()
    assert result.compared() == {"comparisons": 2, "inputs": 1, "stages": 1}
    assert "2/2 comparisons on 1 inputs" in result.summary_line()
    assert result.call_times["resample"]["bound_s"] > 0


def test_a_subject_that_provides_nothing_is_never_ok():
    result = S.check_stages(type("Empty", (), {"name": "empty"})(), inputs=[DSP_INPUT])
    assert result.ok is False and result.compared()["comparisons"] == 0
    assert "NOTHING COMPARED" in result.summary_line()


def test_a_stage_the_chosen_inputs_do_not_cover_compares_nothing_and_is_not_ok():
    result = S.check_stages(_One("vocoder", np.zeros(3, np.float32)), inputs=[DSP_INPUT])
    assert result.ok is False and "NOTHING COMPARED" in result.summary_line()


def test_a_time_out_stops_the_run_and_keeps_the_results_so_far():
    calls = []

    class Slow:
        name = "slow-later"

        def provided(self):
            return ["normalize"]

        def normalize(self, x):
            calls.append(1)
            if len(calls) > 1:
                time.sleep(3600)
            return x * 0  # wrong but finite: a failing row that must survive the stop

    result = S.check_stages(Slow(), inputs=[WHOLE_INPUT, "tone_mix_16k", "clip_1p3s_16k"], views=("teacher",),
                            stage_timeout=1.0)
    assert [c.input for c in result.comparisons if c.name == "normalize.waveform"] == [WHOLE_INPUT]
    assert result.stopped.startswith("stopped after normalize on tone_mix_16k")
    assert "not checked: clip_1p3s_16k" in result.stopped
    assert result.ok is False


# ---------------------------------------------------------------- through the CLI: exit codes and reports

SUBJECT_FILE = '''
import time
import numpy as np

class Nothing:
    name = "nothing"

class LayoutOnly:
    name = "layout-only"
    def state_dict_layout(self):
        return {}

class Garbage:
    name = "garbage"
    def resample(self, wave, rate):
        return "not an array"

class Hangs:
    name = "hangs"
    def __init__(self):
        self.n = 0
    def normalize(self, x):
        self.n += 1
        if self.n > 1:
            time.sleep(3600)
        return 0.5 * (x - x.mean()) / (np.abs(x - x.mean()).max() + 1e-8)

class VocoderOnly:
    name = "vocoder-only"
    def vocoder(self, mel):
        return np.zeros(480 * mel.shape[-2] + 16, np.float32)

def nothing():
    return Nothing()

def layout_only():
    return LayoutOnly()

def garbage():
    return Garbage()

def hangs():
    return Hangs()

def vocoder_only():
    return VocoderOnly()
'''

# factory, extra options, the exit code, words of the summary line
CLI_SUBJECT_CASES = {
    "wrong verdict/a subject that provides nothing": ("nothing", [], 2, "provides no stage of the schema"),
    "wrong verdict/a subject with a layout and no stage": ("layout_only", [], 1, "NOTHING COMPARED"),
    "wrong verdict/a vocoder-only subject on a DSP-only input": ("vocoder_only", ["--input", DSP_INPUT], 1,
                                                                "NOTHING COMPARED"),
    "traceback/a subject returning a string": ("garbage", ["--input", DSP_INPUT], 1, "FAILED"),
    "hang/a subject that hangs on its second call": ("hangs", ["--input", WHOLE_INPUT, "--input", "tone_mix_16k",
                                                               "--stage-timeout", "2"], 1, "stopped after normalize"),
}


@pytest.mark.parametrize("name", sorted(CLI_SUBJECT_CASES))
def test_check_cli_never_says_ok_on_nothing_or_garbage(tmp_path, name):
    factory, extra, rc, words = CLI_SUBJECT_CASES[name]
    (tmp_path / "subj.py").write_text(SUBJECT_FILE)
    out = tmp_path / "report"
    argv = ["check", f"{tmp_path / 'subj.py'}:{factory}", "--no-modules", "--view", "teacher", "--json",
            str(tmp_path / "check.json"), "-o", str(out), *extra]
    result = run_cli(argv, tmp_path, hostile_env(tmp_path), timeout=120)
    assert not result.timed_out, result.stderr[-2000:]
    assert result.rc == rc, (result.rc, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    if rc == 2:  # refused before anything ran: one line, nothing written
        assert len(result.lines) == 1 and words in result.lines[0], result.stderr
        assert not (tmp_path / "check.json").exists() and not out.exists()
        return
    summary = [ln for ln in result.stdout.splitlines() if ln.startswith(factory.replace("_", "-"))]
    assert summary and words in summary[-1], result.stdout[-2000:]
    assert ": OK" not in result.stdout
    data = json.loads((tmp_path / "check.json").read_text())  # the report is written, also after a hang
    assert data["ok"] is False and words in data["summary"]
    assert "compared" in data and isinstance(data["compared"]["comparisons"], int)
    assert sorted(p.name for p in out.iterdir()) == ["check.html", "check.json", "check.md"]
    assert not list((tmp_path / "TMPDIR").iterdir())


def test_check_reports_what_it_compared_when_it_passes(tmp_path):
    """The passing direction through the CLI: a one-input check of the reference states its counts."""
    result = run_cli([*CHECK, "--input", DSP_INPUT, "--view", "teacher", "--json", str(tmp_path / "c.json")],
                     tmp_path, hostile_env(tmp_path), timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["ok"] is True and data["compared"]["comparisons"] > 0 and data["compared"]["inputs"] == 1
    assert f"{data['compared']['comparisons']} comparisons" in data["summary"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fixture_file_that_is_a_pipe_is_refused_without_blocking(tmp_path):
    fix = copy_set(tmp_path)
    (fix / f"{DSP_INPUT}.safetensors").unlink()
    os.mkfifo(fix / f"{DSP_INPUT}.safetensors")
    before = snapshot(tmp_path)
    result = run_cli(_check(fix), tmp_path, hostile_env(tmp_path))
    assert_refused(result, fix / f"{DSP_INPUT}.safetensors", "named pipe", before=before, root=tmp_path)
