"""Hostile input, every verb: refused in one line, with nothing written, nothing lost and no code run.

Each case builds a hostile file, directory or option in a fresh folder, runs
``audiosr-verify`` in a child process (address space capped at 3 GB, a
wall-clock limit, a private ``$TMPDIR``) and asserts the contract of issue 12
(`test_hostile_support.assert_refused`): non-zero exit; exactly one line on
stderr naming the file (or option) and the problem; no traceback; bounded
time and peak memory; every file in the folder exactly as before (nothing
partial, nothing lost); ``$TMPDIR`` empty; the canary a hostile payload would
create absent. None of these cases loads a model: every refusal comes first.

Classes of issue 12 covered here (the rest: test_hostile_runs.py):
  2. overlapping safetensors tensors fail ``parity`` (also with ``--hash``);
  3. pipes and ``/dev/zero`` as checkpoint, manifest, ``--config``, audio and
     golden files; the 1 GB ``data.pkl`` zip bomb; a ``bytearray(10**10)`` pickle;
  5. a target that is a directory, ``--seed -1`` / ``2**70``, missing output
     directories, golden ``meta.json`` of the wrong shape, a non-numeric
     tolerance, ``--config`` values of the wrong type or negative, a
     non-executable oracle python, ``oracle setup --path`` onto a file;
  6. paths with a newline or an undecodable byte stay on one line;
  1. two inputs with one stem in one run are refused, naming both.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosr_verify.util.paths import data_dir
from tests.test_hostile_support import CANARY, assert_refused, hostile_env, run_cli, snapshot

RATE = 16000


# ---------------------------------------------------------------- makers


def wav(path: Path, seconds: float = 0.3, rate: int = RATE, channels: int = 1, subtype: str = "PCM_16",
        value: float | None = None) -> Path:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (440 + 100 * c) * t) for c in range(channels)], axis=1)
    if value is not None:
        x[n // 2, 0] = value
    sf.write(path, x, rate, subtype=subtype, format="WAV")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def dev_zero(path: Path) -> Path:
    os.symlink("/dev/zero", path)
    return path


def text(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def patched_wav(path: Path, offset: int, data: bytes) -> Path:
    b = bytearray(wav(path).read_bytes())
    b[offset: offset + len(data)] = data
    path.write_bytes(bytes(b))
    return path


def pickle_zip(path: Path, payload: bytes, data_records: dict[str, bytes] | None = None,
               compress: int = zipfile.ZIP_STORED) -> Path:
    """A torch-zip-shaped archive whose data.pkl is ``payload``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
        for name, data in (data_records or {}).items():
            zf.writestr(zipfile.ZipInfo(f"archive/data/{name}"), data, compress_type=compress)
    return path


def evil_pickle() -> bytes:
    """Protocol-0 pickle calling os.system('touch CANARY') when loaded."""
    return f"cos\nsystem\n(S'touch {CANARY}'\ntR.".encode()


def bytearray_bomb() -> bytes:
    """A pickle asking the whitelisted bytearray for 10 GB."""
    return b"c__builtin__\nbytearray\n(I10000000000\ntR."


def tensor_pickle_zip(path: Path, compress: int) -> Path:
    """A real torch checkpoint rewritten with its tensor records deflated."""
    import torch

    plain = path.with_suffix(".plain")
    torch.save({"w": torch.zeros(4096)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            kind = compress if "/data/" in info.filename else zipfile.ZIP_STORED
            dst.writestr(zipfile.ZipInfo(info.filename), data, compress_type=kind)
    plain.unlink()
    return path


def safetensors_file(path: Path, header: dict, data: bytes) -> Path:
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return path


F32x4 = np.arange(4, dtype=np.float32).tobytes()
OVERLAP = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
GAP = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
       "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
TRAILING = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory) -> Path:
    """A 1 MB zip whose data.pkl inflates to 1 GB (built once, streamed: the test never holds it)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.ckpt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("archive/data.pkl", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(1024):
                f.write(block)
        zf.writestr("archive/version", "3\n")
    assert path.stat().st_size < 2 << 20
    return path


def golden_store(tmp: Path, case: str = "noise_burst_16k") -> Path:
    """A copy of one bundled golden case under tmp/store (key random-tiny-seed0)."""
    src = data_dir() / "regression" / "random-tiny-seed0" / case
    dst = tmp / "store" / "random-tiny-seed0" / case
    shutil.copytree(src, dst)
    return dst


def config_yaml(tmp: Path, body: str) -> Path:
    return text(tmp / "model.yaml", body)


# ---------------------------------------------------------------- cases
# name -> make(tmp) -> (argv, the path (or option) the line must name, words it must contain)

ENHANCE = ["enhance", "--random-weights", "--steps", "1"]


def _enhance(inputs, *extra, out="out"):
    return [*ENHANCE, *map(str, inputs), "-o", out, *extra]


def _two_stems(t):
    (t / "a").mkdir()
    (t / "b").mkdir()
    a = wav(t / "a" / "song.wav")
    b = t / "b" / "song.flac"
    sf.write(b, np.zeros((4800, 1)) + 0.1, RATE, format="FLAC")
    return _enhance([a, b]), "out/song.wav", ("a/song.wav", "b/song.flac", "both")


def _existing_output(t):
    (t / "out").mkdir()
    (t / "out" / "in.wav").write_bytes(b"an earlier result")
    return _enhance([wav(t / "in.wav")]), "out/in.wav", ("exists", "--overwrite")


def _target_is_directory(t):
    (t / "out" / "in.wav").mkdir(parents=True)
    return _enhance([wav(t / "in.wav")], "--overwrite"), "out/in.wav", ("existing directory",)


def _under_a_file(t):
    (t / "blocker").write_text("a file")
    return _enhance([wav(t / "in.wav")], out=str(t / "blocker" / "out")), t / "blocker" / "out", ("directory",)


def _output_is_input(t):
    src = wav(t / "in.wav")
    return _enhance([src], out="."), "in.wav", ("overwrite the input",)


def _newline_name(t):
    p = t / "bad\nname.wav"
    p.write_text("not audio")
    return _enhance([p]), p, ("not a readable audio file",)


def _undecodable_name(t):
    p = Path(os.fsdecode(os.fsencode(str(t)) + b"/bad\xffname.wav"))
    p.write_bytes(b"")
    return _enhance([p]), p, ("empty",)


def _lock_file(t, make):
    """A lock file planted beside the output (a symlink to a file elsewhere, a pipe): never written through."""
    victim = text(t / "victim.txt", "precious")
    (t / "out").mkdir()
    make(victim, t / "out" / ".in.wav.lock")
    return _enhance([wav(t / "in.wav")]), "out/in.wav", ("cannot lock",)


def _golden_meta(t, meta):
    d = golden_store(t)
    (d / "meta.json").write_text(json.dumps(meta))
    return (["golden", "check", "--golden-dir", str(t / "store"), "--case", "noise_burst_16k"], d / "meta.json",
            ("malformed golden meta",))


def _golden_meta_field(t):
    d = golden_store(t)
    meta = json.loads((d / "meta.json").read_text())
    meta["input"] = "a string where an object belongs"
    (d / "meta.json").write_text(json.dumps(meta))
    return (["golden", "check", "--golden-dir", str(t / "store"), "--case", "noise_burst_16k"], d / "meta.json",
            ("input must be an object",))


def _tolerances(t, body):
    golden_store(t)
    p = t / "store" / "random-tiny-seed0" / "tolerances.json"
    p.write_text(body)
    return ["golden", "check", "--golden-dir", str(t / "store"), "--case", "noise_burst_16k"], p, ("tolerances",)


def _golden_waveform_fifo(t):
    d = golden_store(t)
    (d / "output.safetensors").unlink()
    fifo(d / "output.safetensors")
    return (["golden", "check", "--golden-dir", str(t / "store"), "--case", "noise_burst_16k"],
            d / "output.safetensors", ("named pipe",))


def _cases_index(t, body):
    (t / "inputs").mkdir()
    p = text(t / "inputs" / "cases.json", body)
    return ["golden", "check", "--inputs-dir", str(t / "inputs"), "--golden-dir", str(t / "store")], p, ()


def _non_executable_python(t, verb):
    py = text(t / "python", "#!/bin/sh\n")
    py.chmod(0o644)
    return verb, py, ("not executable",), {"AUDIOSR_ORACLE_PYTHON": str(py)}


CASES = {
    # ---- enhance: audio inputs
    "enhance/input is a named pipe": lambda t: (_enhance([fifo(t / "in.wav")]), t / "in.wav", ("named pipe",)),
    "enhance/input is /dev/zero": lambda t: (_enhance([dev_zero(t / "in.wav")]), t / "in.wav",
                                             ("character device",)),
    "enhance/input is a directory": lambda t: ((t / "d.wav").mkdir(), _enhance([t / "d.wav"]), t / "d.wav",
                                               ("is a directory",))[1:],
    "enhance/input is missing": lambda t: (_enhance([t / "nope.wav"]), t / "nope.wav", ("no such file",)),
    "enhance/empty file": lambda t: (_enhance([text(t / "e.wav", "")]), t / "e.wav", ("empty",)),
    "enhance/text named .wav": lambda t: (_enhance([text(t / "t.wav", "hello\n" * 50)]), t / "t.wav",
                                          ("not a readable audio file",)),
    "enhance/truncated data": lambda t: (
        _enhance([(lambda p: (p.write_bytes(wav(p).read_bytes()[:3000]), p)[1])(t / "tr.wav")]), t / "tr.wav",
        ("truncated",)),
    "enhance/NaN sample": lambda t: (_enhance([wav(t / "n.wav", subtype="FLOAT", value=np.nan)]), t / "n.wav",
                                     ("NaN or Inf",)),
    "enhance/Inf sample": lambda t: (_enhance([wav(t / "i.wav", subtype="FLOAT", value=np.inf)]), t / "i.wav",
                                     ("NaN or Inf",)),
    "enhance/0 channels in header": lambda t: (_enhance([patched_wav(t / "c.wav", 22, struct.pack("<H", 0))]),
                                               t / "c.wav", ("not a readable audio file",)),
    "enhance/rate 400 kHz": lambda t: (_enhance([wav(t / "r.wav", 0.01, 400000)]), t / "r.wav",
                                       ("unsupported sample rate",)),
    "enhance/too short": lambda t: (_enhance([wav(t / "s.wav", 0.001)]), t / "s.wav", ("too short",)),
    "enhance/path with a newline": _newline_name,
    "enhance/path with an undecodable byte": _undecodable_name,
    # ---- enhance: outputs (issue 12, class 1 and 5)
    "enhance/two inputs with one stem": _two_stems,
    "enhance/one input twice": lambda t: (_enhance([wav(t / "x.wav"), t / "x.wav"]), "out/x.wav", ("both",)),
    "enhance/output exists": _existing_output,
    "enhance/output is a directory (--overwrite)": _target_is_directory,
    "enhance/output dir is a file": lambda t: (_enhance([wav(t / "in.wav")], out=str(text(t / "f", "x"))), t / "f",
                                               ("not a directory",)),
    "enhance/output dir under a file": _under_a_file,
    "enhance/output would overwrite the input": _output_is_input,
    "enhance/--output with two inputs": lambda t: ([*ENHANCE, str(wav(t / "a.wav")), str(wav(t / "b.wav")),
                                                    "--output", "o.wav"], "--output", ("one file",)),
    "enhance/--output unknown extension": lambda t: ([*ENHANCE, str(wav(t / "a.wav")), "--output", "o.mp3"],
                                                     "o.mp3", ("extension",)),
    "enhance/--output extension against --format": lambda t: ([*ENHANCE, str(wav(t / "a.wav")), "--output",
                                                               "o.wav", "--format", "flac"], "o.wav",
                                                              ("does not fit",)),
    "enhance/lock file is a symlink elsewhere": lambda t: _lock_file(t, lambda victim, lock: os.symlink(victim, lock)),
    "enhance/lock file is a named pipe": lambda t: _lock_file(t, lambda victim, lock: os.mkfifo(lock)),
    # ---- enhance: options (validated before the model loads)
    "enhance/--seed -1": lambda t: (_enhance([wav(t / "a.wav")], "--seed", "-1"), "--seed", ("from 0 to",)),
    "enhance/--seed 2**70": lambda t: (_enhance([wav(t / "a.wav")], "--seed", str(2**70)), "--seed",
                                       ("from 0 to",)),
    "enhance/--steps 0": lambda t: (_enhance([wav(t / "a.wav")], "--steps", "0"), "--steps", ("from 1 to",)),
    "enhance/--steps 100000": lambda t: (_enhance([wav(t / "a.wav")], "--steps", "100000"), "--steps",
                                         ("from 1 to",)),
    "enhance/--guidance nan": lambda t: (_enhance([wav(t / "a.wav")], "--guidance", "nan"), "--guidance",
                                         ("finite",)),
    "enhance/--guidance inf": lambda t: (_enhance([wav(t / "a.wav")], "--guidance", "inf"), "--guidance",
                                         ("finite",)),
    "enhance/--guidance -1": lambda t: (_enhance([wav(t / "a.wav")], "--guidance", "-1"), "--guidance",
                                        ("from 0 to",)),
    "enhance/--weights-seed -5": lambda t: (_enhance([wav(t / "a.wav")], "--weights-seed", "-5"),
                                            "--weights-seed", ("from 0 to",)),
    "enhance/--checkpoint with --random-weights": lambda t: (
        _enhance([wav(t / "a.wav")], "--checkpoint", str(wav(t / "c.bin"))), "--random-weights", ("not both",)),
    # ---- model options: checkpoint and --config
    "enhance/--checkpoint is a named pipe": lambda t: (
        ["enhance", str(wav(t / "a.wav")), "-o", "out", "--checkpoint", str(fifo(t / "c.ckpt"))], t / "c.ckpt",
        ("named pipe",)),
    "enhance/--checkpoint is /dev/zero": lambda t: (
        ["enhance", str(wav(t / "a.wav")), "-o", "out", "--checkpoint", str(dev_zero(t / "c.ckpt"))],
        t / "c.ckpt", ("character device",)),
    "enhance/--config is a named pipe": lambda t: (_enhance([wav(t / "a.wav")], "--config", str(fifo(t / "m.yaml"))),
                                                   t / "m.yaml", ("named pipe",)),
    "enhance/--config is /dev/zero": lambda t: (_enhance([wav(t / "a.wav")], "--config",
                                                         str(dev_zero(t / "m.yaml"))), t / "m.yaml",
                                                ("character device",)),
    "enhance/--config of 2 MB": lambda t: (_enhance([wav(t / "a.wav")], "--config",
                                                    str(text(t / "m.yaml", "#" * (2 << 20)))), t / "m.yaml",
                                           ("at most",)),
    "enhance/--config wrong type": lambda t: (_enhance([wav(t / "a.wav")], "--config",
                                                       str(config_yaml(t, "vae:\n  ch: abc\n"))), t / "model.yaml",
                                              ("vae.ch", "whole number")),
    "enhance/--config negative size": lambda t: (_enhance([wav(t / "a.wav")], "--config",
                                                          str(config_yaml(t, "unet:\n  model_channels: -32\n"))),
                                                 t / "model.yaml", ("unet.model_channels", "positive")),
    "enhance/--config python tag": lambda t: (
        _enhance([wav(t / "a.wav")], "--config",
                 str(config_yaml(t, f"name: !!python/object/apply:os.system ['touch {CANARY}']\n"))),
        t / "model.yaml", ("cannot read config",)),
    "enhance/--config alias bomb": lambda t: (
        _enhance([wav(t / "a.wav")], "--config", str(config_yaml(
            t, "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))))),
        t / "model.yaml", ("aliases",)),
    "enhance/--config not a mapping": lambda t: (_enhance([wav(t / "a.wav")], "--config",
                                                          str(config_yaml(t, "- a list\n"))), t / "model.yaml",
                                                 ("mapping",)),
    # ---- make-checkpoint
    "make-checkpoint/missing directory": lambda t: (["make-checkpoint", "-o", "nope/tiny.bin"], "nope",
                                                    ("does not exist",)),
    "make-checkpoint/output is a directory": lambda t: (["make-checkpoint", "-o", str((t / "d").mkdir() or "d")],
                                                        "d", ("existing directory",)),
    "make-checkpoint/--seed -1": lambda t: (["make-checkpoint", "-o", "x.bin", "--seed", "-1"], "--seed",
                                            ("from 0 to",)),
    "make-checkpoint/under a file": lambda t: (["make-checkpoint", "-o", str(text(t / "f", "x")) + "/x.bin"],
                                               t / "f", ("not a directory",)),
    # ---- parity
    "parity/checkpoint is a named pipe": lambda t: (["parity", str(fifo(t / "c.bin"))], t / "c.bin",
                                                    ("named pipe",)),
    "parity/.json manifest is /dev/zero": lambda t: (["parity", str(dev_zero(t / "m.json"))], t / "m.json",
                                                     ("character device",)),
    "parity/--manifest is a named pipe": lambda t: (
        ["parity", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "--manifest",
         str(fifo(t / "ref.json"))], t / "ref.json", ("named pipe",)),
    "parity/--manifest is /dev/zero": lambda t: (
        ["parity", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "--manifest",
         str(dev_zero(t / "ref.json"))], t / "ref.json", ("character device",)),
    "parity/pickle that runs code": lambda t: (["parity", str(pickle_zip(t / "evil.bin", evil_pickle()))],
                                               t / "evil.bin", ("refusing to unpickle",)),
    "parity/pickle asking bytearray for 10 GB": lambda t: (["parity", str(pickle_zip(t / "b.bin",
                                                                                     bytearray_bomb()))],
                                                           t / "b.bin", ("corrupt data.pkl",)),
    "parity/compressed tensor record": lambda t: (["parity", str(tensor_pickle_zip(t / "z.bin",
                                                                                   zipfile.ZIP_DEFLATED))],
                                                  t / "z.bin", ("compressed",)),
    "parity/overlapping safetensors": lambda t: (["parity", str(safetensors_file(t / "o.safetensors", OVERLAP,
                                                                                 F32x4))], t / "o.safetensors",
                                                 ("overlap",)),
    "parity --hash/overlapping safetensors": lambda t: (["parity", "--hash", str(safetensors_file(
        t / "o.safetensors", OVERLAP, F32x4))], t / "o.safetensors", ("overlap",)),
    "parity/safetensors with a gap": lambda t: (["parity", str(safetensors_file(t / "g.safetensors", GAP,
                                                                                F32x4 + F32x4))],
                                                t / "g.safetensors", ("unused bytes",)),
    "parity/safetensors with trailing bytes": lambda t: (["parity", str(safetensors_file(t / "t.safetensors",
                                                                                         TRAILING, F32x4))],
                                                         t / "t.safetensors", ("beyond its last tensor",)),
    "parity/manifest nested 100000 deep": lambda t: (["parity", str(text(t / "deep.json",
                                                                         "[" * 100000 + "]" * 100000))],
                                                     t / "deep.json", ("nested",)),
    "parity/manifest with NaN": lambda t: (["parity", str(text(t / "nan.json", '{"keys": {}, "x": NaN}'))],
                                           t / "nan.json", ("not valid JSON",)),
    "parity/manifest of 65 MB": lambda t: (
        ["parity", str((lambda p: (os.truncate(p.open("w").name, 65 << 20), p)[1])(t / "big.json"))],
        t / "big.json", ("at most",)),
    "parity/--json onto the checkpoint": lambda t: (
        ["parity", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "--json",
         str(t / "c.safetensors")], t / "c.safetensors", ("overwrite the input",)),
    "parity/--json and --html one file": lambda t: (
        ["parity", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "--json", "r", "--html", "r"],
        "r", ("same file",)),
    "parity/--json into a missing directory": lambda t: (
        ["parity", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "--json", "no/r.json"],
        "no", ("does not exist",)),
    "parity/--max-problems -1": lambda t: (["parity", "x.bin", "--max-problems", "-1"], "--max-problems",
                                           ("at least 0",)),
    # ---- manifest
    "manifest/output into a missing directory": lambda t: (
        ["manifest", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "-o", "no/m.json"], "no",
        ("does not exist",)),
    "manifest/output is a directory": lambda t: (
        ["manifest", str(safetensors_file(t / "c.safetensors", TRAILING, F32x4[:8])), "-o",
         str((t / "d").mkdir() or "d")], "d", ("existing directory",)),
    # ---- report
    "report/--config is /dev/zero": lambda t: (["report", "-o", "rep", "--config", str(dev_zero(t / "m.yaml"))],
                                               t / "m.yaml", ("character device",)),
    "report/--output-dir is a file": lambda t: (["report", "-o", str(text(t / "rep", "x"))], t / "rep",
                                                ("not a directory",)),
    "report/--inputs-dir missing": lambda t: (["report", "-o", "rep", "--inputs-dir", "nope"], "nope",
                                              ("does not exist",)),
    "report/unknown --case": lambda t: (["report", "-o", "rep", "--case", "nope"], "nope", ("unknown golden case",)),
    # ---- golden check / update: the store's files, read before the model loads
    "golden/meta.json is a list": lambda t: _golden_meta(t, [1, 2, 3]),
    "golden/meta.json input is a string": _golden_meta_field,
    "golden/non-numeric tolerance": lambda t: _tolerances(t, '{"default": {"si_sdr": {"min": "high"}}}'),
    "golden/tolerance with an unknown bound": lambda t: _tolerances(t, '{"default": {"si_sdr": {"below": 1}}}'),
    "golden/tolerances.json is /dev/zero": lambda t: (
        golden_store(t), ["golden", "check", "--golden-dir", str(t / "store"), "--case", "noise_burst_16k"],
        dev_zero(t / "store" / "random-tiny-seed0" / "tolerances.json"), ("character device",))[1:],
    "golden/golden waveform is a named pipe": _golden_waveform_fifo,
    "golden/cases.json is not JSON": lambda t: _cases_index(t, "{not json"),
    "golden/cases.json is a named pipe": lambda t: ((t / "inputs").mkdir(), ["golden", "check", "--inputs-dir",
                                                                            str(t / "inputs")],
                                                    fifo(t / "inputs" / "cases.json"), ("named pipe",))[1:],
    "golden update/--golden-dir is a file": lambda t: (["golden", "update", "--golden-dir",
                                                        str(text(t / "store", "x")), "--case", "noise_burst_16k"],
                                                       t / "store", ("not a directory",)),
    "golden/--json is a directory": lambda t: (["golden", "check", "--json", str((t / "j").mkdir() or "j"),
                                                "--case", "noise_burst_16k"], "j", ("existing directory",)),
    # ---- check
    "check/subject file missing": lambda t: (["check", "nope.py:make_subject"], "nope.py", ("not found",)),
    "check/--option with an empty key": lambda t: (["check", "reference", "--option", "=x"], "--option",
                                                   ("KEY is empty",)),
    "check/--json into a missing directory": lambda t: (["check", "reference", "--json", "no/c.json"], "no",
                                                        ("does not exist",)),
    # ---- oracle and compare
    "oracle setup/--path onto a file": lambda t: (["oracle", "setup", "--path", str(text(t / "venv", "x"))],
                                                  t / "venv", ("not a directory",)),
    "oracle export/--golden-dir is a file": lambda t: (["oracle", "export", "--golden-dir",
                                                        str(text(t / "g", "x"))], t / "g", ("not a directory",)),
    "compare/--atol nan": lambda t: (["compare", "--stage", "vocoder", "--atol", "nan"], "--atol", ("finite",)),
    "compare/unknown --stage": lambda t: (["compare", "--stage", "bogus"], "--stage", ("invalid choice",)),
    "check original/non-executable oracle python": lambda t: _non_executable_python(
        t, ["check", "original", "--no-modules"]),
}


@pytest.fixture(scope="session")
def layout_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("layout-cache")


def test_the_suite_has_at_least_60_cases_across_every_verb():
    verbs = {name.split("/")[0].split()[0] for name in CASES}
    assert len(CASES) >= 60
    assert {"enhance", "make-checkpoint", "parity", "manifest", "report", "golden", "check", "oracle",
            "compare"} <= verbs


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_refused(tmp_path, layout_cache, name):
    made = CASES[name](tmp_path)
    argv, named, words = made[:3]
    extra_env = made[3] if len(made) > 3 else {}
    env = hostile_env(tmp_path, AUDIOSR_VERIFY_CACHE=str(layout_cache), **extra_env)
    before = snapshot(tmp_path)
    result = run_cli(argv, tmp_path, env)
    assert_refused(result, named, *words, before=before, root=tmp_path)


def test_zip_bomb_is_refused_cheaply(tmp_path, zip_bomb, layout_cache):
    """A 1 MB zip whose data.pkl inflates to 1 GB: refused from its directory, in bounded memory."""
    env = hostile_env(tmp_path, AUDIOSR_VERIFY_CACHE=str(layout_cache))
    for argv in (["parity", str(zip_bomb)], ["parity", "--hash", str(zip_bomb)], ["manifest", str(zip_bomb), "-o",
                                                                                   "m.json"],
                 ["enhance", "in.wav", "-o", "out", "--checkpoint", str(zip_bomb)]):
        if argv[0] == "enhance":
            wav(tmp_path / "in.wav")
        before = snapshot(tmp_path)
        result = run_cli(argv, tmp_path, env)
        assert_refused(result, zip_bomb, "data.pkl", before=before, root=tmp_path, max_rss_mb=600)


def test_overlapping_safetensors_are_refused_by_parity_and_enhance_alike(tmp_path, tiny_state):
    """Class 2: parity's verdict on a file is the one loading it gets (never exit 0 for a file enhance refuses)."""
    from safetensors.torch import save_file

    from audiosr_model.weights.checkpoint_reader import inspect_checkpoint, load_state_dict

    good = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous().clone() for k, v in tiny_state.items()}, str(good))
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8: 8 + n])
    keys = [k for k in header if k != "__metadata__"]
    a, b = sorted(keys, key=lambda k: header[k]["data_offsets"][0])[:2]
    header[b]["data_offsets"] = list(header[a]["data_offsets"])  # b now reads a's bytes
    header[b]["shape"], header[b]["dtype"] = header[a]["shape"], header[a]["dtype"]
    bad = safetensors_file(tmp_path / "overlap.safetensors", header, raw[8 + n:])
    with pytest.raises(Exception, match="overlap|invalid offset") as inspected:
        inspect_checkpoint(bad)
    with pytest.raises(Exception, match="overlap|invalid offset") as loaded:
        load_state_dict(bad)
    assert str(bad) in str(inspected.value) and str(bad) in str(loaded.value)
    assert inspect_checkpoint(good).tensors  # the untouched file still passes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_library_readers_refuse_pipes_without_blocking(tmp_path):
    """The one opening routine: every reader of the project, called directly on a named pipe."""
    from audiosr_model import config
    from audiosr_model.io import audio_file as audio
    from audiosr_model.io import audio_stream
    from audiosr_model.weights import checkpoint_reader
    from audiosr_model.errors import AudioSRError
    from audiosr_verify.checks.state_dict import read_manifest
    from audiosr_verify.golden import read_waveform
    from audiosr_verify.util.safe_open import read_json

    pipe = fifo(tmp_path / "pipe")
    readers = [audio.read_audio, audio_stream.read_audio_info, audio_stream.check_audio_file,
               checkpoint_reader.inspect_checkpoint, checkpoint_reader.sha256_file, config.load_yaml,
               read_manifest, read_waveform, read_json]
    for read in readers:
        with pytest.raises(AudioSRError, match="named pipe"):
            read(pipe)
