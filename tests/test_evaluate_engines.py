"""Acceptance of `evaluate` on a 12-file synthetic corpus, tiny preset, random weights (the real model).

- `--engine ray --workers 2` gives exactly the per-file rows of `--engine local --workers 2`
  (everything but the timings, which are the one thing allowed to differ);
- a run killed (SIGKILL, whole process group) after a few files and run again ends with
  12 rows, no duplicates, and the same rows as an uninterrupted run (so one worker and
  two, and a resumed run, agree too).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosr_verify.checks.corpus import EvaluationSettings
from audiosr_verify.corpus.journal import read_rows
from audiosr_verify.corpus.ray_engine import ray_available
from audiosr_verify.corpus.run import evaluate_corpus

FILES = 12
SETTINGS = EvaluationSettings(subject="reference", mode="input", preset="tiny", steps=1)


def make_corpus(root: Path, files: int = FILES) -> Path:
    """Tones plus noise at four rates, in two folders; lengths differ so no two files are alike."""
    rng = np.random.default_rng(0)
    for i in range(files):
        rate = (16000, 22050, 44100, 48000)[i % 4]
        n = int(rate * (0.3 + 0.05 * i))
        t = np.arange(n) / rate
        x = 0.2 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.02 * rng.standard_normal(n)
        path = root / ("a" if i < files // 2 else "b/c") / f"f{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x.astype(np.float32), rate)
    return root


def comparable(rows: list[dict]) -> dict[str, dict]:
    """Rows by file, without the timings."""
    return {r["file"]: {k: v for k, v in r.items() if k != "timing"} for r in rows}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus12"))


@pytest.fixture(scope="module")
def local_rows(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    run = evaluate_corpus(corpus, SETTINGS, out, engine="local", workers=2, html=False)
    assert run.evaluated == FILES and run.ok
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == FILES and all(r["status"] == "ok" for r in rows)
    return comparable(rows)


@pytest.mark.skipif(not ray_available(), reason="Ray is not installed (pip install 'audiosr-verify[ray]')")
def test_ray_gives_exactly_the_rows_of_the_local_engine(corpus, local_rows, tmp_path):
    run = evaluate_corpus(corpus, SETTINGS, tmp_path, engine="ray", workers=2, html=False)
    assert run.evaluated == FILES
    assert comparable(read_rows(tmp_path / "results.jsonl")) == local_rows


def _rows_on_disk(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_a_killed_run_resumes_without_losing_or_repeating_a_file(corpus, local_rows, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "audiosr_verify", "evaluate", str(corpus), "--random-weights", "--steps", "1",
           "--workers", "1", "-o", str(out)]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # what the killed worker leaves (its weights) stays in tmp_path
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 300
    try:
        while _rows_on_disk(results) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker, mid-file
        proc.wait()
    killed_at = len(read_rows(results))
    assert 3 <= killed_at < FILES, "the run was not killed part-way"
    done = subprocess.run(cmd[:-4] + ["--workers", "2", "-o", str(out)], capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert f"{FILES - killed_at} evaluated now, {killed_at} already done" in " ".join(done.stdout.split())
    rows = read_rows(results)
    assert len(rows) == FILES and len(results.read_bytes().splitlines()) == FILES
    assert comparable(rows) == local_rows
