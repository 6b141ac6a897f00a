"""The pytest plugin as another project uses it: `pytester` runs it in throw-away projects.

Named cases, provenance of the input, the project's store (tests/goldens, the
ini setting, the option), goldens of subjects and checkpoints side by side,
the audio-folder helper and a subject's ``enhance``. Outputs here are made
without the model (a file resampled by repetition, or a numpy subject), so
these runs take about a second each; tests/test_pytest_plugin_acceptance.py
runs the real model from a directory outside the repository.

Each run disables entry-point autoloading and names the plugin with -p, so it
behaves the same whether or not the package is installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiosr_verify.golden import GOLDEN_FILES, OBTAINED_FILES
from audiosr_verify.util.hashing import sha256_file

pytest_plugins = ["pytester"]

PLUGIN = "audiosr_verify.testing.pytest_plugin"

# An "enhanced output" made from the input file without the model: the file at 48 kHz by repetition.
TEST_PROJECT = """
import os
import numpy as np
import soundfile as sf

def _output(path):
    x, rate = sf.read(path, dtype="float32")
    return (np.repeat(x, 48000 // rate) * float(os.environ.get("GAIN", "1"))).astype(np.float32)

def test_tone(golden_check):
    golden_check("tone", _output("tone.wav"), input="tone.wav")

def test_plain(golden_check):
    golden_check("plain", (0.3 * np.sin(np.arange(48000) / 7)).astype(np.float32))
"""


def _tone(path, freq=440.0, rate=16000):
    t = np.arange(rate) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="PCM_16")


# pytester's in-process runs drop every module a run imported; an extension module (numpy.fft, torch)
# cannot be imported twice in one process, so what the runs need is imported here, outside them.
PRELOAD = ("numpy.fft", "numpy.linalg", "numpy.random", "scipy.signal", "scipy.fft", "scipy.ndimage", "torch",
           "soundfile", "safetensors.numpy", "audiosr_model.weights.load", "audiosr_model.long_audio",
           "audiosr_model.io.audio_stream", "audiosr_verify.golden", "audiosr_verify.compare.metrics",
           "audiosr_verify.report.sections", "audiosr_verify.report.render", "audiosr_verify.compare.spectrogram",
           "audiosr_verify.testing.enhancer", "audiosr_verify.checks.subject_check",
           "audiosr_verify.subjects.loader")


@pytest.fixture(scope="module")
def preloaded():
    """Imported before `pytester` snapshots sys.modules (it restores that snapshot after each test)."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from audiosr_verify.golden import library_versions

    library_versions()  # its lazy imports too


@pytest.fixture
def project(preloaded, pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("CI", "AUDIOSR_CHECKPOINT", "AUDIOSR_SUBJECT", "GAIN"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\n")  # the rootdir is the project, whatever lies above it
    return pytester


def _run(pytester, *args):
    r = pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider", "-rA", *args)
    return r, r.stdout.str() + r.stderr.str()


def test_missing_update_pass_change_and_stale_input(project, monkeypatch):
    project.makepyfile(test_proj=TEST_PROJECT)
    _tone(project.path / "tone.wav")
    goldens = project.path / "tests" / "goldens"
    key = goldens / "reference" / "random-tiny-seed0"

    # 1. no goldens, CI: fails with the exact command, creates nothing
    monkeypatch.setenv("CI", "true")
    r, out = _run(project)
    assert r.ret == 1 and "2 failed" in out, out
    assert "golden case 'tone' (random-tiny-seed0): MISSING" in out, out
    assert "goldens are never created in CI" in out, out
    assert "create it with: python -m pytest test_proj.py::test_tone --golden-update" in out, out
    assert "create it with: python -m pytest test_proj.py::test_plain --golden-update" in out, out
    assert not goldens.exists(), "a check must never create goldens"
    monkeypatch.delenv("CI")
    r, out = _run(project)  # nor outside CI: only when asked
    assert r.ret == 1 and "MISSING" in out and not goldens.exists(), out

    # 2. --golden-update writes them, with the input's provenance
    r, out = _run(project, "--golden-update")
    assert r.ret == 0 and "2 passed" in out and "2 updated" in out, out
    for case in ("tone", "plain"):
        assert sorted(p.name for p in (key / case).iterdir()) == sorted(GOLDEN_FILES)
    meta = json.loads((key / "tone" / "meta.json").read_text())
    assert meta["input"]["file"] == "tone.wav"
    assert meta["input"]["sha256"] == sha256_file(project.path / "tone.wav")
    assert meta["input"]["sample_rate"] == 16000 and meta["input"]["cutoff_hz"] == 8000.0
    assert meta["run"] == {"seed": 42, "steps": 2, "guidance_scale": 3.5, "level_mode": "preserve", "mix": "mean"}
    assert meta["model"] == {"preset": "tiny", "weights": "random", "weights_seed": 0}
    assert meta["made_by"] == "audiosr_model (enhance_file)"
    assert meta["generated_by"] == "python -m pytest --golden-update"
    assert json.loads((key / "plain" / "meta.json").read_text())["input"]["file"] is None

    # 3. the next run passes
    r, out = _run(project)
    assert r.ret == 0 and "2 passed" in out and "2 identical" in out, out

    # 4. a changed output fails with the table, writes the obtained files and the report
    reports = project.path / "reports"
    monkeypatch.setenv("GAIN", "1.05")
    r, out = _run(project, f"--audiosr-report-dir={reports}")
    assert r.ret == 1 and "1 failed, 1 passed" in out, out
    assert "golden case 'tone' (random-tiny-seed0): FAILED" in out, out
    for needle in ("| tone | SI-SDR (dB)", "| tone | max |obtained - golden|", "FAIL", "obtained files written",
                   "regenerate with: python -m pytest test_proj.py::test_tone --golden-update"):
        assert needle in out, out
    assert sorted(p.name for p in (key / "tone").iterdir()) == sorted(GOLDEN_FILES + OBTAINED_FILES)
    assert sorted(p.name for p in (key / "plain").iterdir()) == sorted(GOLDEN_FILES)
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is False
    assert sorted(c["status"] for c in data["sections"][0]["data"]["cases"]) == ["failed", "identical"]
    assert (reports / "report.md").is_file() and (reports / "report.html").is_file()
    monkeypatch.delenv("GAIN")

    # 5. a changed input is a stale golden, not a model regression
    _tone(project.path / "tone.wav", freq=660.0)
    r, out = _run(project)
    assert r.ret == 1 and "1 failed, 1 passed" in out, out
    assert "golden case 'tone' (random-tiny-seed0): STALE" in out, out
    assert "stale golden: the input changed: input tone.wav changed" in out, out
    assert "FAILED (" not in out.split("golden case 'tone'")[1].split("\n")[0], out


def test_store_from_option_or_ini_and_side_by_side(project, monkeypatch):
    """Goldens of subjects and checkpoints get folders of their own; the ini and the option move the store."""
    project.makepyfile(test_proj=TEST_PROJECT)
    _tone(project.path / "tone.wav")
    (project.path / "fake.ckpt").write_bytes(b"not a real checkpoint: only its sha256 names the folder")
    ckpt_key = sha256_file(project.path / "fake.ckpt")[:16]
    project.makeini("[pytest]\naudiosr_golden_dir = regression/goldens\n")
    root = project.path / "regression" / "goldens"
    runs = {
        ("reference", "random-tiny-seed0"): (),
        ("fault-vocoder_output_padding", "random-tiny-seed0-faithful-first"):
            ("--audiosr-subject", "fault:vocoder_output_padding"),
        ("reference", ckpt_key): ("--audiosr-checkpoint", "fake.ckpt"),
    }
    for (subject, key), extra in runs.items():
        r, out = _run(project, "--golden-update", *extra)
        assert r.ret == 0 and "2 updated" in out, out
        assert (root / subject / key / "tone" / "output.safetensors").is_file(), sorted(root.rglob("*"))
    assert not (project.path / "tests").exists()
    meta = json.loads((root / "fault-vocoder_output_padding" / "random-tiny-seed0-faithful-first" / "tone"
                       / "meta.json").read_text())
    assert meta["made_by"] == "fault:vocoder_output_padding" and meta["run"]["level_mode"] == "faithful"
    for extra in runs.values():  # each compares with its own goldens
        r, out = _run(project, *extra)
        assert r.ret == 0 and "2 identical" in out, out

    # the option wins over the ini, relative to where pytest starts; the command says so
    monkeypatch.setenv("CI", "1")
    r, out = _run(project, "--audiosr-golden-dir", "elsewhere")
    assert r.ret == 1 and "MISSING" in out, out
    assert ("create it with: python -m pytest test_proj.py::test_tone --golden-update "
            "--audiosr-golden-dir elsewhere") in out, out
    r, out = _run(project, "--audiosr-checkpoint", "fake.ckpt", "--audiosr-golden-dir", "elsewhere")
    assert "--golden-update --audiosr-golden-dir elsewhere --audiosr-checkpoint fake.ckpt" in out, out


SUBJECT_FILE = '''
import numpy as np
from audiosr_verify.subject import Subject

class RepeatPort(Subject):
    """A stand-in port: 'enhances' by repeating samples up to 48 kHz."""
    name = "repeat-port"

    def __init__(self, context):
        self.context = context

    def enhance(self, waveform, rate, seed, steps, guidance):
        x = np.asarray(waveform, dtype=np.float32)
        x = x[0] if x.ndim == 2 else x
        return np.repeat(x, 48000 // rate)

def make_subject(context):
    return RepeatPort(context)

def make_other(context):  # another subject: goldens of its own
    return RepeatPort(context)
'''


def test_enhance_runs_any_subject(project):
    project.makepyfile(my_port=SUBJECT_FILE, test_port="""
        import numpy as np
        import soundfile as sf

        def test_tone(enhance, golden_check):
            out = enhance("tone.wav")
            assert out.shape == (48000,) and out.source.sample_rate == 16000
            x, rate = sf.read("tone.wav", dtype="float32")
            same = enhance(x, rate=rate)  # the same samples as an array: the same output, no file recorded
            assert np.array_equal(same, out) and same.source.file is None and same.source.sha256 != out.source.sha256
            golden_check("tone", out)
    """)
    _tone(project.path / "tone.wav")
    r, out = _run(project, "--golden-update", "--audiosr-subject", "my_port.py:make_subject")
    assert r.ret == 0 and "1 updated" in out, out
    d = project.path / "tests" / "goldens" / "my_port.py-make_subject" / "random-tiny-seed0-faithful-first" / "tone"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["made_by"] == "my_port.py:make_subject"
    assert meta["input"]["sha256"] == sha256_file(project.path / "tone.wav")
    assert meta["generated_by"] == "python -m pytest --golden-update --audiosr-subject my_port.py:make_subject"
    golden = sf.read(project.path / "tone.wav", dtype="float32")[0]
    from audiosr_verify.golden import read_waveform

    assert np.array_equal(read_waveform(d / "output.safetensors"), np.repeat(golden, 3))
    r, out = _run(project, "--audiosr-subject", "my_port.py:make_subject")
    assert r.ret == 0 and "1 identical" in out, out
    r, out = _run(project, "--audiosr-subject", "my_port.py:make_other")  # not the goldens of another subject
    assert r.ret == 1 and "MISSING" in out, out
    assert "my_port.py-make_other/random-tiny-seed0-faithful-first/tone" in out.replace("\\", "/"), out


def test_audio_folder_helper_gives_one_case_per_file(project):
    audio = project.path / "tests" / "audio"
    (audio / "speech").mkdir(parents=True)
    _tone(audio / "a.wav")
    _tone(audio / "speech" / "b 1.flac")
    (audio / "notes.txt").write_text("not audio")
    (project.path / "tests" / "test_folder.py").write_text(
        "import pytest\n"
        "from audiosr_verify.testing import audio_files\n"
        "@pytest.mark.parametrize('audio', audio_files('audio', '**/*'))\n"
        "def test_audio(audio, golden_check):\n"
        "    import numpy as np, soundfile as sf\n"
        "    x, rate = sf.read(audio, dtype='float32')\n"
        "    golden_check(audio, np.repeat(x, 48000 // rate))  # its case name, its file as the input\n"
        "@pytest.mark.parametrize('audio', audio_files('audio'))\n"
        "def test_top_level_only(audio):\n"
        "    assert audio.path.parent.name == 'audio'\n")
    r, out = _run(project, "--golden-update", "-v")
    assert r.ret == 0 and "3 passed" in out, out
    assert "test_audio[a] PASSED" in out and "test_audio[speech-b-1] PASSED" in out, out
    assert "test_top_level_only[a] PASSED" in out, out
    key = project.path / "tests" / "goldens" / "reference" / "random-tiny-seed0"
    assert sorted(p.name for p in key.iterdir()) == ["a", "speech-b-1"]
    assert json.loads((key / "speech-b-1" / "meta.json").read_text())["input"]["file"] == "tests/audio/speech/b 1.flac"

    (project.path / "tests" / "test_empty.py").write_text(
        "from audiosr_verify.testing import audio_files\n"
        "CASES = audio_files('no_such_folder')\n")
    r, out = _run(project, "tests/test_empty.py")
    assert r.ret != 0 and "audio_files: " in out and "no_such_folder: no such folder" in out, out


def test_user_mistakes_fail_in_one_line(project):
    project.makepyfile(test_bad="""
        import numpy as np

        def test_same_name_a(golden_check):
            golden_check("same", np.zeros(4800, np.float32))

        def test_same_name_b(golden_check):
            golden_check("same", np.ones(4800, np.float32))

        def test_bad_name(golden_check):
            golden_check("../escape", np.zeros(4800, np.float32))

        def test_no_such_file(enhance):
            enhance("missing.wav")

        def test_waveform_without_rate(enhance):
            enhance(np.zeros(16000, np.float32))
    """)
    r, out = _run(project, "--golden-update")
    assert r.ret == 1 and "4 failed, 1 passed" in out, out
    assert "golden_check: case 'same' is already checked by test_bad.py::test_same_name_a" in out, out
    assert "golden_check: golden case name '../escape': use 1 to 128 letters" in out, out
    assert "enhance: missing.wav: no such audio file (looked in" in out, out
    assert "enhance: give a path to an audio file, or a waveform with its rate (rate=...)" in out, out
    assert "Traceback" not in out, out
    assert not (project.path / "tests" / "goldens" / "reference" / "random-tiny-seed0" / "..").resolve().joinpath(
        "escape").exists()


def test_enhance_a_file_with_our_model(project):
    """The real ``enhance`` (tiny seeded weights, 2 steps; one model run, the rest is plumbing tested above)."""
    project.makepyfile(test_model="""
        import numpy as np

        def test_file(enhance, golden_check):
            out = enhance("tone.wav")
            assert out.dtype == np.float32 and out.shape == (48000,) and np.all(np.isfinite(out))
            assert out.source.file == "tone.wav" and out.source.settings.steps == 2
            golden_check("tone", out)
    """)
    _tone(project.path / "tone.wav")
    r, out = _run(project, "--golden-update")
    assert r.ret == 0 and "1 passed" in out and "1 updated" in out, out
    meta = json.loads((project.path / "tests" / "goldens" / "reference" / "random-tiny-seed0" / "tone"
                       / "meta.json").read_text())
    assert meta["input"]["file"] == "tone.wav" and meta["made_by"] == "audiosr_model (enhance_file)"


# --------------------------------------------------------------------------- the harness's own cases

HARNESS_CONFTEST = """
import pytest
from audiosr_verify.golden import GoldenStore

@pytest.fixture(scope="session")
def golden_store(pytestconfig):
    return GoldenStore(pytestconfig.getoption("audiosr_golden_dir"), "{inputs}")
"""

HARNESS_TESTS = """
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


def test_bundled_cases_missing_update_pass_and_failure_table(project, monkeypatch):
    """`GoldenCase` objects (the harness's own cases) go to the harness's store layout: <dir>/<key>/<case>."""
    inputs = project.path / "inputs"
    inputs.mkdir()
    _tone(inputs / "tone.wav")
    project.makeconftest(HARNESS_CONFTEST.format(inputs=inputs))
    project.makepyfile(test_golden_plugin=HARNESS_TESTS)
    golden = project.path / "golden"
    key = golden / "random-tiny-seed0"

    monkeypatch.setenv("CI", "true")
    r, out = _run(project, f"--audiosr-golden-dir={golden}")
    assert r.ret == 1 and "2 failed" in out and "1 skipped" in out, out
    assert "MISSING" in out and "goldens are never created in CI" in out, out
    assert "create it with: python -m pytest test_golden_plugin.py::test_unchanged --golden-update" in out, out
    assert "real_checkpoint: no checkpoint given" in out, out
    assert not golden.exists(), "a check must never create goldens"
    monkeypatch.delenv("CI")

    r, out = _run(project, f"--audiosr-golden-dir={golden}", "--golden-update")
    assert r.ret == 0 and "2 updated" in out, out
    for case in ("tone_a", "tone_b"):
        assert sorted(p.name for p in (key / case).iterdir()) == sorted(GOLDEN_FILES)

    reports = project.path / "reports"
    monkeypatch.setenv("CHANGE", "1")
    r, out = _run(project, f"--audiosr-golden-dir={golden}", f"--audiosr-report-dir={reports}")
    assert r.ret == 1 and "1 failed, 1 passed, 1 skipped" in out, out
    assert "golden case 'tone_b' (random-tiny-seed0): FAILED" in out, out
    for needle in ("| tone_b | SI-SDR (dB)", "| tone_b | max |obtained - golden|", "FAIL", "obtained files written"):
        assert needle in out, out
    assert sorted(p.name for p in (key / "tone_b").iterdir()) == sorted(GOLDEN_FILES + OBTAINED_FILES)
    assert sorted(p.name for p in (key / "tone_a").iterdir()) == sorted(GOLDEN_FILES)
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is False
    assert [c["status"] for c in data["sections"][0]["data"]["cases"]] == ["identical", "failed"]
    assert "tone_b" in (reports / "report.html").read_text() and (reports / "report.md").is_file()


# --------------------------------------------------------------------------- option clashes

OTHER_PLUGIN = """
def pytest_addoption(parser):
    parser.addoption("--golden-update", action="store_true", dest="other_golden_update",
                     help="another plugin's option of the same name")
"""


def test_another_plugins_golden_update_option_is_left_to_it(project):
    """When a plugin loaded first owns --golden-update, ours answers to --audiosr-golden-update only."""
    project.makepyfile(other_plugin_h15=OTHER_PLUGIN, test_clash="""
        import numpy as np

        def test_other(pytestconfig):
            assert pytestconfig.getoption("other_golden_update") is True

        def test_ours(golden_check):
            golden_check("tone", np.zeros(4800, np.float32))
    """)
    project.syspathinsert()
    args = ("-p", "other_plugin_h15", "-p", PLUGIN, "-p", "no:cacheprovider", "-rA", "--golden-update")
    r = project.runpytest(*args)
    out = r.stdout.str() + r.stderr.str()
    assert r.ret == 1 and "1 failed, 1 passed" in out and "MISSING" in out, out  # ours did not update
    r = project.runpytest(*args, "--audiosr-golden-update")
    out = r.stdout.str() + r.stderr.str()
    assert r.ret == 0 and "1 updated" in out, out
    assert (project.path / "tests" / "goldens" / "reference" / "random-tiny-seed0" / "tone" / "meta.json").is_file()
