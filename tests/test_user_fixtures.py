"""Fixtures from the user's checkpoint and audio (issue 22): what can be checked without the original.

The export itself runs the original (oracle tier: `tests/test_user_fixtures_oracle.py`); here, in the fast
tier: the refusals that come before the original runs (options, audio, output folder, checkpoint layout),
the trajectory subset a long DDIM run keeps, and `check`'s side of a set made from a checkpoint (the
checkpoint recognised by its sha256, calibrated bounds read, integrity-checked and applied).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks import stages as S
from audiosr_verify.oracle import user_fixtures as U
from audiosr_verify.util.hashing import sha256_file
from audiosr_verify.util.paths import data_dir
from tests.test_hostile_support import assert_refused, hostile_env, run_cli, snapshot

TINY = data_dir() / "oracle" / "tiny"
FULL_INPUT = "tone_mix_16k"


def wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.2 * np.sin(2 * np.pi * (440 + 200 * c) * t) for c in range(channels)], axis=1)
    sf.write(path, x, rate)
    return path


# ---------------------------------------------------------------- the trajectory a long run keeps


def test_all_steps_are_kept_up_to_the_limit_and_an_even_subset_beyond():
    assert U._kept_steps(2) == [0, 1]
    assert U._kept_steps(U.TRAJECTORY_STEPS) == list(range(U.TRAJECTORY_STEPS))
    kept = U._kept_steps(50)
    assert len(kept) == U.TRAJECTORY_STEPS and kept[0] == 0 and kept[-1] == 49
    assert all(b - a >= 4 for a, b in zip(kept, kept[1:]))  # spread, not bunched


def test_trimming_keeps_each_kept_step_with_its_teacher_forced_input(tmp_path):
    from safetensors.torch import load_file, save_file
    import torch

    steps = 30
    tensors = {f"ddim.step{i}.{k}": torch.full((2,), float(i)) for i in range(steps) for k in ("pred_x0", "x_prev")}
    tensors["mel.decoded"] = torch.zeros(3)
    save_file(tensors, str(tmp_path / "x.safetensors"))
    meta = {"tensors": {k: {"shape": list(v.shape)} for k, v in tensors.items()}}
    info = U._trim_trajectory(tmp_path / "x.safetensors", meta, steps)
    kept = load_file(str(tmp_path / "x.safetensors"))
    for i in info["kept_steps"]:
        assert f"ddim.step{i}.pred_x0" in kept and f"ddim.step{i}.x_prev" in kept
        if i:
            assert f"ddim.step{i - 1}.x_prev" in kept  # its input
    dropped = [i for i in range(steps) if i not in info["kept_steps"] and i + 1 not in info["kept_steps"]]
    assert dropped and all(f"ddim.step{i}.x_prev" not in kept for i in dropped)
    assert "mel.decoded" in kept and set(meta["tensors"]) == set(kept)


def test_a_step_without_its_stored_input_is_skipped_not_failed(tmp_path):
    """A set keeping step 1 without step 0's outputs: the teacher view checks step 1 only, no error."""
    from safetensors.torch import load_file, save_file

    fix = tmp_path / "fix"
    shutil.copytree(TINY, fix)
    path = fix / f"{FULL_INPUT}.safetensors"
    tensors = load_file(str(path))
    del tensors["ddim.step0.pred_x0"]
    save_file(tensors, str(path))
    meta = json.loads((fix / "metadata.json").read_text())
    del meta["inputs"][FULL_INPUT]["tensors"]["ddim.step0.pred_x0"]
    (fix / "metadata.json").write_text(json.dumps(meta))
    from audiosr_verify.subjects.reference import ReferenceSubject

    ref = ReferenceSubject(net=S.tiny_network())
    view = type("DdimOnly", (), {"name": "ddim-only", "ddim_step": staticmethod(ref.ddim_step),
                                 "provided": staticmethod(lambda: ["ddim_step"])})()
    result = S.check_stages(view, fix, inputs=[FULL_INPUT])
    names = {c.name for c in result.comparisons}
    assert "ddim.step1.pred_x0" in names and "ddim.step1.x_prev" in names
    assert "ddim.step0.pred_x0" not in names
    assert result.ok, result.summary_line()


# ---------------------------------------------------------------- refused before the original runs

EXPORT = ["oracle", "export"]


def _ckpt(t: Path) -> Path:
    p = t / "c.bin"
    p.write_bytes(b"not read before the inputs are checked")
    return p


REFUSALS = {
    "no --inputs": lambda t: ([*EXPORT, "--checkpoint", str(_ckpt(t)), "-o", str(t / "FIX")], "--inputs",
                              ("need --checkpoint, --inputs and --output-dir",)),
    "no --output-dir": lambda t: ([*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6))],
                                  "--output-dir", ("missing",)),
    "with --fixtures-only": lambda t: ([*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6)),
                                        "-o", str(t / "FIX"), "--fixtures-only"], "--fixtures-only", ("not with",)),
    "input too short for one window": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "s.wav", 2.0)), "-o", str(t / "FIX")],
        t / "s.wav", ("too short for one window",)),
    "input too short for the --duration asked": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "s.wav", 6.0)), "-o", str(t / "FIX"),
         "--duration", "8"], t / "s.wav", ("too short",)),
    "input is not audio": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str((lambda p: (p.write_text("x" * 100), p)[1])(
            t / "t.wav")), "-o", str(t / "FIX")], t / "t.wav", ("cannot decode",)),
    "input is missing": lambda t: ([*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(t / "nope.wav"),
                                    "-o", str(t / "FIX")], t / "nope.wav", ("no such file",)),
    "two inputs give one fixture name": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6)),
         str(wav((t / "d").mkdir() or t / "d" / "a.wav", 6)), "-o", str(t / "FIX")], "a.wav", ("fixture name 'a'",)),
    "output folder is not empty": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6)), "-o",
         str((lambda d: (d.mkdir(), (d / "x").write_text("keep"), d)[2])(t / "FIX"))], t / "FIX", ("not an empty",)),
    "output is under a file": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6)), "-o",
         str((lambda f: (f.write_text("x"), f / "FIX")[1])(t / "file"))], t / "file", ("not a directory",)),
    "checkpoint is missing": lambda t: ([*EXPORT, "--checkpoint", str(t / "none.bin"), "--inputs",
                                         str(wav(t / "a.wav", 6)), "-o", str(t / "FIX")], t / "none.bin",
                                        ("no such file",)),
    "--duration out of range": lambda t: ([*EXPORT, "--checkpoint", "c", "--inputs", "a", "-o", "F", "--duration",
                                           "0.1"], "--duration", ("from 0.5",)),
    "--steps the original does not honour": lambda t: (
        [*EXPORT, "--checkpoint", str(_ckpt(t)), "--inputs", str(wav(t / "a.wav", 6)), "-o", str(t / "FIX"),
         "--steps", "30"], "--steps 30", ("runs 31 DDIM steps",)),
    "--steps 0": lambda t: ([*EXPORT, "--checkpoint", "c", "--inputs", "a", "-o", "F", "--steps", "0"], "steps",
                            ("from 1",)),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_export_refuses_bad_input_before_the_original_runs(tmp_path, name):
    argv, named, words = REFUSALS[name](tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(argv, tmp_path, hostile_env(tmp_path))
    assert_refused(result, named, *words, before=before, root=tmp_path)
    assert not (tmp_path / "FIX").exists() or name == "output folder is not empty"


def test_a_checkpoint_of_another_layout_is_refused_and_its_own_accepted(tmp_path, tiny_state):
    from audiosr_model.weights.checkpoint import save_checkpoint
    from audiosr_verify.oracle.inference_weights import check_layout

    path = tmp_path / "tiny.safetensors"
    save_checkpoint(tiny_state, path, "safetensors")
    with pytest.raises(AudioSRError, match=r"tiny\.safetensors: not the original's basic layout"):
        check_layout(path, "basic")
    facts = check_layout(path, "tiny")
    assert facts.sha256 == sha256_file(path) and facts.inference_elements > 0


# ---------------------------------------------------------------- check's side of a set made from a checkpoint


def _user_set(tmp: Path, checkpoint: Path | None = None, sha: str | None = None) -> Path:
    """The bundled set, relabelled as made from ``checkpoint``: for the refusals, which come before any comparison."""
    fix = tmp / "fix"
    shutil.copytree(TINY, fix)
    meta = json.loads((fix / "metadata.json").read_text())
    meta["checkpoint"] = {"file": "made_with.bin", "sha256": sha or (sha256_file(checkpoint) if checkpoint else "0" * 64)}
    (fix / "metadata.json").write_text(json.dumps(meta))
    return fix


def test_check_asks_for_the_checkpoint_a_set_was_made_from(tmp_path):
    fix = _user_set(tmp_path)
    result = run_cli(["check", "reference", "--fixtures", str(fix)], tmp_path, hostile_env(tmp_path))
    assert_refused(result, fix, "give it with --checkpoint", "made_with.bin")


def test_check_refuses_another_checkpoint_naming_both_hashes(tmp_path, tiny_state):
    from audiosr_model.weights.checkpoint import save_checkpoint

    other = tmp_path / "other.safetensors"
    save_checkpoint(tiny_state, other, "safetensors")
    fix = _user_set(tmp_path, sha="ab" * 32)
    meta = json.loads((fix / "metadata.json").read_text())
    meta["preset"] = "tiny"
    (fix / "metadata.json").write_text(json.dumps(meta))
    result = run_cli(["check", "reference", "--fixtures", str(fix), "--checkpoint", str(other)], tmp_path,
                     hostile_env(tmp_path))
    line = assert_refused(result, other, "not the checkpoint the fixture set was made with")
    assert sha256_file(other)[:16] in line and "abababababababab" in line


def test_check_refuses_a_checkpoint_for_the_bundled_set(tmp_path):
    (tmp_path / "c.bin").write_bytes(b"x")
    result = run_cli(["check", "reference", "--checkpoint", str(tmp_path / "c.bin")], tmp_path, hostile_env(tmp_path))
    assert_refused(result, "oracle/tiny", "shared seeded weights")


def _calibrated_set(tmp: Path, bounds: dict, record_sha: str | None = "right", version: int = 1) -> Path:
    fix = tmp / "fix"
    shutil.copytree(TINY, fix)
    (fix / "calibration.json").write_text(json.dumps({"version": version, "bounds": bounds}))
    meta = json.loads((fix / "metadata.json").read_text())
    if record_sha is not None:
        meta["files"] = {"calibration.json": sha256_file(fix / "calibration.json") if record_sha == "right"
                         else record_sha}
    (fix / "metadata.json").write_text(json.dumps(meta))
    return fix


def test_a_calibration_changed_since_export_is_refused(tmp_path):
    fix = _calibrated_set(tmp_path, {"vocoder.waveform": 1.0}, record_sha="0" * 64)
    result = run_cli(["check", "reference", "--fixtures", str(fix), "--input", "tone_mix_8k"], tmp_path,
                     hostile_env(tmp_path))
    assert_refused(result, fix / "calibration.json", "changed since export")


def test_a_calibration_of_an_unknown_version_or_shape_is_refused(tmp_path):
    from audiosr_verify.oracle.fixture_validation import open_metadata, read_calibration

    fix = _calibrated_set(tmp_path, {"vocoder.waveform": 1e-5}, version=7)
    with pytest.raises(AudioSRError, match="calibration version 7"):
        read_calibration(fix, open_metadata(fix))
    (fix / "calibration.json").write_text(json.dumps({"version": 1, "bounds": {"x": "big"}}))
    with pytest.raises(AudioSRError, match="finite non-negative"):
        read_calibration(fix, None)


def _vocoder_of(subject):
    return type("VocoderOnly", (), {"name": subject.name, "vocoder": staticmethod(subject.vocoder),
                                    "provided": staticmethod(lambda: ["vocoder"])})()


def test_calibrated_bounds_decide_the_verdict_and_are_shown_with_their_margin(tmp_path):
    """Both directions: a vocoder fault (leaky ReLU slope, error ~0.26) fails under the schema's bound and under a
    calibrated bound of realistic size, and passes under an absurd calibrated one: the set's figure decides."""
    from audiosr_verify.subjects.faults import FAULTS, FaultSubject

    fault = FaultSubject(FAULTS["leaky_relu_slope"], net=S.shared_network("tiny"))
    fault.activate()
    verdicts = {}
    for label, bounds in (("schema", {}), ("realistic", {"vocoder.waveform": 2e-5}), ("absurd", {"vocoder.waveform": 10.0})):
        fix = _calibrated_set(tmp_path / label, bounds)
        result = S.check_stages(_vocoder_of(fault), fix, inputs=[FULL_INPUT])
        verdicts[label] = {s.name: s for s in result.stages("teacher")}["vocoder"]
    assert verdicts["schema"].status == "fail" and verdicts["schema"].bound_source == "schema"
    assert verdicts["realistic"].status == "fail" and verdicts["realistic"].bound_source == "calibrated"
    assert verdicts["absurd"].status == "pass" and verdicts["absurd"].bound == 10.0
    assert 1 < verdicts["absurd"].margin < 1e3


def test_check_shows_the_calibrated_bound_in_its_table(tmp_path):
    from audiosr_verify.checks.subject_check import CheckResult
    from audiosr_verify.report.check import rows
    from audiosr_verify.subjects.reference import ReferenceSubject

    fix = _calibrated_set(tmp_path, {"vocoder.waveform": 2e-5})
    stages = S.check_stages(_vocoder_of(ReferenceSubject(net=S.tiny_network())), fix, inputs=[FULL_INPUT])
    result = CheckResult("reference", stages=stages)
    voc = [r for r in rows(result) if r[0] == "vocoder"][0]
    assert voc[1] == "pass" and voc[4].startswith("2.00e-05 cal (")
    assert "bounds calibrated for the fixture set (1 tensors)" in result.summary_line()


def test_the_packaged_suite_fails_on_a_fixture_set_that_is_not_there(tmp_path):
    """`pytest --pyargs audiosr_verify.testing.suite --audiosr-fixtures DIR`: a missing set fails, never passes."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs",
                           "audiosr_verify.testing.suite.test_subject", "-k", "something_was_compared",
                           "--audiosr-fixtures", str(tmp_path / "nope")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "no such fixture directory" in out and " passed" not in out.splitlines()[-1]
