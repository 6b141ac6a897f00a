"""Hostile conditions while a run works: signals, a concurrent run, a full disk, a vanished directory, non-finite numbers.

Each test runs the real CLI in a child process (tiny preset, random weights)
and checks what is left on disk: every result whole or absent, no temporary
or lock file, ``$TMPDIR`` empty, nothing an earlier run wrote lost.

Classes of issue 12 proved here (the refusals: test_hostile_inputs.py):
  1. two concurrent runs writing one file lose no result; a golden case
     killed between the two steps of its replacement is the old or the new one;
  4. SIGTERM and SIGINT during ``enhance`` and ``golden update`` leave nothing
     partial (also in ``$TMPDIR``);
  5. a full disk (tmpfs) for ``enhance``, ``make-checkpoint``, ``parity --json``
     and ``golden update``, and an output directory removed mid-run: one line;
  6. non-finite output traced to the run (input, seed, steps, guidance); a
     float WAV of finite +-3e38 samples enhanced instead of becoming NaN.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosr_verify.util.paths import data_dir
from tests.test_hostile_support import (
    assert_refused,
    partial_leftovers,
    run_cli,
    snapshot,
    start_cli,
    wait_cli,
)

RATE = 16000
MODEL_SECONDS = 300  # generous: the tiny model on a loaded two-core machine


def wav(path: Path, seconds: float = 0.5, rate: int = RATE, channels: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (440 + 100 * c + 50 * seed) * t) + 0.01 * rng.standard_normal(n)
                  for c in range(channels)], axis=1)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


def error_lines(result) -> list[str]:
    return [ln for ln in result.lines if ln.startswith("audiosr-verify")]


def assert_failed_cleanly(result, path, *words) -> str:
    """A run that failed while working: one error line naming ``path``, no traceback."""
    assert not result.timed_out, result.stderr[-2000:]
    assert result.rc not in (0,) and result.rc < 128, f"exit {result.rc}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-3000:]
    assert str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def wait_for(predicate, seconds: float, proc=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before the moment the test waits for")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the run to reach the point under test")


# ---------------------------------------------------------------- signals (class 4)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_enhance_leaves_nothing_partial(tmp_path, sig):
    src = wav(tmp_path / "in.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.wav").write_bytes(b"a result of an earlier run")
    t0 = time.monotonic()
    proc, so, se = start_cli(["enhance", str(src), "-o", str(out), "--random-weights", "--steps", "1000"], tmp_path)
    wait_for(lambda: any(p.name.endswith(".partial") for p in out.iterdir()), MODEL_SECONDS, proc)
    time.sleep(0.5)  # inside the sampler
    proc.send_signal(sig)
    result = wait_cli(proc, so, se, 120, t0)
    assert result.rc == 128 + sig, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"interrupted by {signal.Signals(sig).name}" in result.lines[-1]
    assert sorted(p.name for p in out.iterdir()) == ["earlier.wav"]  # nothing partial, nothing lost
    assert (out / "earlier.wav").read_bytes() == b"a result of an earlier run"
    assert list((tmp_path / "TMPDIR").iterdir()) == []


def _long_case_store(tmp: Path) -> tuple[Path, Path, dict]:
    """Inputs with one 60 s case, and a store already holding a golden for it (to be kept)."""
    inputs = tmp / "inputs"
    inputs.mkdir()
    wav(inputs / "long.wav", seconds=60.0)
    (inputs / "cases.json").write_text(json.dumps({"cases": [
        {"name": "long", "input": "long.wav", "sample_rate": RATE, "cutoff_hz": 8000.0, "sha256": "-"}]}))
    store = tmp / "store"
    shutil.copytree(data_dir() / "regression" / "random-tiny-seed0" / "noise_burst_16k",
                    store / "random-tiny-seed0" / "long")
    return inputs, store, snapshot(store)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_golden_update_keeps_the_old_golden(tmp_path, sig):
    inputs, store, before = _long_case_store(tmp_path)
    t0 = time.monotonic()
    proc, so, se = start_cli(["golden", "update", "--golden-dir", str(store), "--inputs-dir", str(inputs),
                              "--case", "long"], tmp_path)
    wait_for(lambda: any((tmp_path / "TMPDIR").iterdir()), MODEL_SECONDS, proc)  # run_golden's work folder
    time.sleep(1.0)
    proc.send_signal(sig)
    result = wait_cli(proc, so, se, 120, t0)
    assert result.rc == 128 + sig, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert snapshot(store) == before  # the old golden, whole; no .partial folder
    assert partial_leftovers(store) == []
    assert list((tmp_path / "TMPDIR").iterdir()) == []  # the work folder in $TMPDIR went too


def test_signals_are_deferred_while_a_rename_runs():
    """In-process: inside critical() a SIGTERM waits; it is raised as KeyboardInterrupt when the block ends."""
    from audiosr_verify.util.atomic import critical, install_signal_handlers, received_signal

    restore = install_signal_handlers()
    try:
        reached = False
        with pytest.raises(KeyboardInterrupt):
            with critical():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now, and deferred
                reached = True
        assert reached and received_signal() == signal.SIGTERM
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


def test_a_signal_whose_interrupt_was_swallowed_still_stops_the_publish(tmp_path):
    """The KeyboardInterrupt of a signal can be lost on its way out (careless code, a finaliser); the
    recorded signal still stops the run at the commit point: nothing published, nothing partial."""
    from audiosr_verify.util.atomic import install_signal_handlers, publish_file

    target = tmp_path / "out.txt"

    def write(tmp):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler raises here
        except KeyboardInterrupt:
            pass  # ... and something swallows it
        tmp.write_text("finished anyway")

    restore = install_signal_handlers()
    try:
        with pytest.raises(KeyboardInterrupt):
            publish_file(target, write)
    finally:
        restore()
    assert not target.exists() and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- concurrency (class 1)


def test_two_concurrent_runs_with_one_stem_lose_no_result(tmp_path):
    """a/song.wav and b/song.wav into one folder at once: one writes, the other refuses; the file is the writer's."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    seconds = {"a": 0.5, "b": 0.7}  # the output's length tells which run wrote it
    for name, s in seconds.items():
        wav(tmp_path / name / "song.wav", seconds=s, seed=ord(name))
    out = tmp_path / "out"
    t0 = time.monotonic()
    runs = {name: start_cli(["enhance", str(tmp_path / name / "song.wav"), "-o", str(out), "--random-weights",
                             "--steps", "2"], tmp_path) for name in seconds}
    results = {name: wait_cli(*run, MODEL_SECONDS, t0) for name, run in runs.items()}
    winners = [n for n, r in results.items() if r.rc == 0]
    assert len(winners) == 1, {n: (r.rc, r.stderr[-800:]) for n, r in results.items()}
    loser = results[next(n for n in seconds if n not in winners)]
    line = assert_failed_cleanly(loser, "song.wav")
    assert "another run" in line or "exists" in line, line
    assert sf.info(str(out / "song.wav")).frames == round(seconds[winners[0]] * 48000)
    assert sorted(p.name for p in out.iterdir()) == ["song.wav"]


def test_killed_between_the_two_renames_a_golden_is_old_or_new(tmp_path):
    """Where RENAME_EXCHANGE is missing, the swap takes two renames: SIGKILL between them loses nothing."""
    store_root = tmp_path / "store"
    case_dir = store_root / "random-tiny-seed0" / "noise_burst_16k"
    shutil.copytree(data_dir() / "regression" / "random-tiny-seed0" / "noise_burst_16k", case_dir)
    old = (case_dir / "output.safetensors").read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from audiosr_model.io import publish
        from audiosr_verify import golden as G
        publish.exchange = lambda a, b: False          # as on a kernel or file system without it
        real_rename = os.rename
        def rename(src, dst):
            real_rename(src, dst)
            if str(dst).endswith(publish.BACKUP_SUFFIX):  # the old case moved aside, the new one not yet in
                os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename
        store = G.GoldenStore({str(store_root)!r})
        case = next(c for c in store.cases() if c.name == "noise_burst_16k")
        store.update(case, np.zeros(72000, np.float32), G.RunSettings())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    from audiosr_verify import golden as G

    store = G.GoldenStore(store_root)
    golden = store.load("random-tiny-seed0", "noise_burst_16k")  # readers fall back to the moved-aside case
    assert golden is not None and golden.waveform.tobytes() == G.read_waveform(
        data_dir() / "regression" / "random-tiny-seed0" / "noise_burst_16k" / "output.safetensors").tobytes()
    case = next(c for c in store.cases() if c.name == "noise_burst_16k")
    new = np.full(72000, 0.25, np.float32)
    store.update(case, new, G.RunSettings())  # the next publish recovers, then replaces
    assert store.load("random-tiny-seed0", "noise_burst_16k").waveform.tobytes() == new.tobytes()
    assert partial_leftovers(store_root) == []
    assert old != (case_dir / "output.safetensors").read_bytes()


def test_killed_after_the_exchange_the_golden_is_new(tmp_path):
    """With RENAME_EXCHANGE the swap is one step; SIGKILL before the old copy is deleted leaves the new case."""
    store_root = tmp_path / "store"
    shutil.copytree(data_dir() / "regression" / "random-tiny-seed0" / "noise_burst_16k",
                    store_root / "random-tiny-seed0" / "noise_burst_16k")
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from audiosr_model.io import publish
        from audiosr_verify import golden as G
        real = publish.exchange
        def exchange(a, b):
            assert real(a, b), "this kernel has no RENAME_EXCHANGE"
            os.kill(os.getpid(), signal.SIGKILL)
        publish.exchange = exchange
        store = G.GoldenStore({str(store_root)!r})
        case = next(c for c in store.cases() if c.name == "noise_burst_16k")
        store.update(case, np.full(72000, 0.5, np.float32), G.RunSettings())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    if "no RENAME_EXCHANGE" in proc.stderr:
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here; the two-rename path is tested above")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    from audiosr_verify import golden as G

    store = G.GoldenStore(store_root)
    assert store.load("random-tiny-seed0", "noise_burst_16k").waveform.max() == np.float32(0.5)
    case = next(c for c in store.cases() if c.name == "noise_burst_16k")
    store.update(case, np.zeros(72000, np.float32), G.RunSettings())  # cleans the killed run's old copy
    assert partial_leftovers(store_root) == []


# ---------------------------------------------------------------- full disk (class 5)


@pytest.fixture
def small_disk(tmp_path):
    """A tiny tmpfs (root only); skipped with the reason where it cannot be mounted."""
    mounted = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs for the disk-full cases needs root")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` up; the filler must survive every test unchanged."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_while_enhancing(tmp_path, small_disk):
    disk = small_disk("64k")  # a 0.5 s float WAV at 48 kHz needs 96 kB
    result = run_cli(["enhance", str(wav(tmp_path / "in.wav")), "-o", str(disk), "--random-weights", "--steps", "1"],
                     tmp_path, timeout=MODEL_SECONDS)
    assert_failed_cleanly(result, disk / "in.wav", "No space left")
    assert list(disk.iterdir()) == []


def test_disk_full_for_a_checkpoint(tmp_path, small_disk):
    disk = small_disk("1m")  # the tiny checkpoint is 25 MB
    result = run_cli(["make-checkpoint", "-o", str(disk / "tiny.bin")], tmp_path, timeout=MODEL_SECONDS)
    assert_refused(result, disk / "tiny.bin", "cannot write checkpoint", max_rss_mb=2000,
                   max_seconds=MODEL_SECONDS)
    assert list(disk.iterdir()) == []


def test_disk_full_for_a_parity_report(tmp_path, small_disk):
    from safetensors.numpy import save_file

    ckpt = tmp_path / "c.safetensors"
    save_file({"w": np.zeros(4, np.float32)}, str(ckpt))
    disk = small_disk("64k")
    filler = _fill(disk)
    size = filler.stat().st_size
    result = run_cli(["parity", str(ckpt), "--json", str(disk / "parity.json")], tmp_path)
    assert_refused(result, disk / "parity.json", "No space left")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"] and filler.stat().st_size == size


def test_disk_full_during_golden_update_keeps_the_old_golden(tmp_path, small_disk):
    disk = small_disk("1m")
    case = "noise_burst_16k"
    shutil.copytree(data_dir() / "regression" / "random-tiny-seed0" / case, disk / "random-tiny-seed0" / case)
    _fill(disk)
    before = snapshot(disk)
    result = run_cli(["golden", "update", "--golden-dir", str(disk), "--case", case], tmp_path,
                     timeout=MODEL_SECONDS)
    assert_failed_cleanly(result, disk / "random-tiny-seed0" / case, "No space left")
    assert snapshot(disk) == before
    assert list((tmp_path / "TMPDIR").iterdir()) == []


def test_output_directory_removed_during_the_run(tmp_path):
    src = wav(tmp_path / "in.wav")
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc, so, se = start_cli(["enhance", str(src), "-o", str(out), "--random-weights", "--steps", "3"], tmp_path)
    wait_for(lambda: out.is_dir() and any(p.name.endswith(".partial") for p in out.iterdir()), MODEL_SECONDS, proc)
    shutil.rmtree(out)
    result = wait_cli(proc, so, se, MODEL_SECONDS, t0)
    assert_failed_cleanly(result, out, "disappeared")
    assert not out.exists()


# ---------------------------------------------------------------- non-finite numbers (class 6)


def test_non_finite_output_is_traced_to_the_run(tmp_path):
    """Weights that make NaN: the line names the input, the chunk and the options, not just 'broken weights'."""
    import torch
    from safetensors.torch import save_file

    from audiosr_model.config import tiny
    from audiosr_model.weights.load import random_state

    state = random_state(tiny(), 0)
    state["first_stage_model.vocoder.conv_post.bias"] = torch.full_like(
        state["first_stage_model.vocoder.conv_post.bias"], float("nan"))
    ckpt = tmp_path / "nan.safetensors"
    save_file({k: v.contiguous().clone() for k, v in state.items()}, str(ckpt))
    src = wav(tmp_path / "in.wav")
    result = run_cli(["enhance", str(src), "-o", "out", "--checkpoint", str(ckpt), "--preset", "tiny",
                      "--steps", "1", "--seed", "7", "--guidance", "2.5"], tmp_path, timeout=MODEL_SECONDS)
    assert_failed_cleanly(result, src, "NaN or Inf", "seed 7", "1 steps", "guidance 2.5")
    assert not (tmp_path / "out").exists()  # the folder this run created, empty, is removed again


@pytest.mark.parametrize("rate", [48000, 44100])
def test_finite_samples_near_the_float32_limit_are_enhanced(tmp_path, rate):
    """+-3e38 in both channels: their float32 mean used to overflow into NaN ('broken weights')."""
    n = rate // 2
    x = 3e38 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    src = tmp_path / "huge.wav"
    sf.write(src, np.stack([x, x], axis=1).astype(np.float32), rate, subtype="FLOAT")
    result = run_cli(["enhance", str(src), "-o", "out", "--random-weights", "--steps", "1", "--mix", "mean"],
                     tmp_path, timeout=MODEL_SECONDS)
    assert result.rc == 0, result.stderr[-2000:]
    y, sr = sf.read(tmp_path / "out" / "huge.wav", dtype="float32")
    assert sr == 48000 and len(y) == 24000 and np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_samples_whose_resampling_overflows_are_named(tmp_path):
    """A full-scale float32 square wave at 44.1 kHz overflows when resampled: refused, naming the file."""
    rate = 44100
    x = np.float32(3.4e38) * np.sign(np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate))
    src = tmp_path / "square.wav"
    sf.write(src, x.astype(np.float32), rate, subtype="FLOAT")
    result = run_cli(["enhance", str(src), "-o", "out", "--random-weights", "--steps", "1"], tmp_path,
                     timeout=MODEL_SECONDS)
    assert_failed_cleanly(result, src, "too large", "scale the file down")
    assert not (tmp_path / "out").exists()
