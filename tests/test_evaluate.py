"""`evaluate`: the results journal, corpus discovery, bad corpora, the modes and the worst-file data.

These use a cheap numpy subject (a polyphase resampler with a seeded whisper
of noise), so the plumbing is tested in seconds; tests/test_evaluate_engines.py
runs the real tiny model through both engines (the acceptance tests).
"""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest
import soundfile as sf

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.main import main
from audiosr_verify.corpus.files import discover
from audiosr_verify.corpus.journal import Journal, read_rows
from audiosr_verify.corpus.ray_engine import ray_available
from audiosr_verify.corpus.worst import WorstFiles, spectra_name

CHEAP_SUBJECT = textwrap.dedent('''
    import numpy as np
    import scipy.signal
    from math import gcd


    class Cheap:
        name = "cheap"

        def __init__(self, gain=1.0):
            self.gain = gain

        def normalize(self, waveform):
            x = waveform - waveform.mean()
            return 0.5 * x / (np.abs(x).max() + 1e-8) * self.gain

        def enhance(self, waveform, rate, seed, steps, guidance):
            g = gcd(int(rate), 48000)
            y = scipy.signal.resample_poly(waveform[0].astype(np.float64), 48000 // g, int(rate) // g)
            y = y[: int(round(waveform.shape[1] * 48000 / rate))]
            noise = np.random.default_rng(seed).standard_normal(y.size) * 1e-4
            return (self.gain * y + noise).astype(np.float32)


    def make_subject(context):
        return Cheap()


    def make_louder(context):
        return Cheap(gain=1.1)


    def make_broken(context):
        class Broken(Cheap):
            def enhance(self, *args):
                raise RuntimeError("no")
        return Broken()
''')


@pytest.fixture
def cheap(tmp_path):
    path = tmp_path / "cheap_subject.py"
    path.write_text(CHEAP_SUBJECT)
    return str(path)


def _write(path, rate=16000, seconds=0.25, freq=440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    for i, rate in enumerate([16000, 22050, 44100, 48000]):
        _write(root / ("sub" if i % 2 else "") / f"f{i}.wav", rate, freq=300.0 + 500 * i)
    (root / "broken.wav").write_text("not audio")
    (root / "notes.txt").write_text("not an audio extension: ignored")
    return root


def _run(*argv) -> int:
    return main(["evaluate", *map(str, argv)])


# --------------------------------------------------------------------------- journal


def test_journal_appends_and_reopens_without_duplicates(tmp_path):
    with Journal(tmp_path) as j:
        j.append({"file": "a.wav", "status": "ok"})
        j.append({"file": "b.wav", "status": "ok"})
        with pytest.raises(RuntimeError):
            j.append({"file": "a.wav", "status": "ok"})
    with Journal(tmp_path) as j:
        assert j.done("a.wav") and j.done("b.wav") and not j.done("c.wav")
        j.append({"file": "c.wav", "status": "ok"})
    assert [r["file"] for r in read_rows(tmp_path / "results.jsonl")] == ["a.wav", "b.wav", "c.wav"]


@pytest.mark.parametrize("tail", [b'{"file": "c.wav", "sta', b'{"file": "c.wav"}', b"\x00\x00\x00\n"])
def test_journal_cuts_a_torn_last_line(tmp_path, tail):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"file": "a.wav"}\n{"file": "b.wav"}\n' + tail)
    with Journal(tmp_path) as j:
        assert j.torn and sorted(j.rows) == ["a.wav", "b.wav"]
        j.append({"file": "c.wav"})
    assert path.read_bytes() == b'{"file": "a.wav"}\n{"file": "b.wav"}\n{"file": "c.wav"}\n'


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tmp_path):
    with Journal(tmp_path):
        with pytest.raises(AudioSRError, match="another run"):
            Journal(tmp_path).open()
    with Journal(tmp_path) as j:  # released: the next run goes on
        j.append({"file": "a.wav"})


def test_journal_refuses_a_garbled_line_in_the_middle(tmp_path):
    (tmp_path / "results.jsonl").write_bytes(b'{"file": "a.wav"}\nnonsense\n{"file": "b.wav"}\n')
    with pytest.raises(AudioSRError, match="line 2 is not a result row"):
        Journal(tmp_path).open()


# --------------------------------------------------------------------------- discovery and bad corpora


def test_discover_is_recursive_sorted_and_audio_only(corpus):
    (corpus / ".hidden.wav").write_bytes(b"")
    assert [f.rel for f in discover(corpus)] == ["broken.wav", "f0.wav", "f2.wav", "sub/f1.wav", "sub/f3.wav"]


@pytest.mark.parametrize("make", ["missing", "empty", "only_text", "only_broken"])
def test_a_corpus_without_readable_audio_is_one_line_and_writes_nothing(tmp_path, cheap, capsys, make):
    root = tmp_path / "c"
    if make != "missing":
        root.mkdir()
    if make == "only_text":
        (root / "a.txt").write_text("x")
    if make == "only_broken":
        (root / "a.wav").write_text("x")
        (root / "b.flac").write_bytes(b"")
    out = tmp_path / "out"
    assert _run(root, "--subject", f"{cheap}:make_subject", "--random-weights", "-o", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(root) in err[0], err
    assert ("no readable audio" in err[0]) == (make != "missing")
    assert not out.exists()


# --------------------------------------------------------------------------- runs with the cheap subject


def test_input_mode_rows_summary_and_html(corpus, cheap, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run(corpus, "--subject", f"{cheap}:make_subject", "--random-weights", "--steps", "1", "-o", out)
    assert code == 1  # broken.wav is reported, not fatal
    assert "broken.wav: not a readable audio file" in capsys.readouterr().err
    rows = {r["file"]: r for r in read_rows(out / "results.jsonl")}
    assert sorted(rows) == ["broken.wav", "f0.wav", "f2.wav", "sub/f1.wav", "sub/f3.wav"]
    assert rows["broken.wav"]["status"] == "unreadable" and str(corpus) not in rows["broken.wav"]["error"]
    ok = rows["f0.wav"]
    assert ok["status"] == "ok" and ok["rate"] == 16000 and ok["cutoff_hz"] == 8000.0
    assert ok["output_samples"] == 12000 and abs(ok["duration_s"] - 0.25) < 1e-12
    m = ok["metrics"]
    assert m["lsd_lf"] < m["lsd_hf"]  # the band below the cutoff is the input's, above it is new
    assert abs(m["level_difference_db"]) < 0.2 and m["si_sdr"] > 30
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 4, "unreadable": 1, "error": 0}
    assert summary["metrics"]["lsd"]["count"] == 4 and summary["rank_by"] == "lsd"
    assert [w["file"] for w in summary["worst"]] == sorted(
        (f for f in rows if rows[f]["status"] == "ok"), key=lambda f: -rows[f]["metrics"]["lsd"])
    html = (out / "summary.html").read_text()
    assert html.count('alt="spectrograms of') == 4 and "Unreadable files" in html and "histogram" in html


def test_against_mode_sees_the_difference_and_compares_shared_stages(corpus, cheap, tmp_path):
    out = tmp_path / "out"
    code = _run(corpus, "--subject", f"{cheap}:make_louder", "--against", f"{cheap}:make_subject",
                "--random-weights", "--steps", "1", "-o", out)
    assert code == 1
    row = next(r for r in read_rows(out / "results.jsonl") if r["file"] == "sub/f1.wav")
    assert abs(row["metrics"]["level_difference_db"] - 20 * np.log10(1.1)) < 0.01
    assert row["metrics"]["si_sdr"] > 30  # a gain is not a change of shape
    assert row["stages"] == {"compared": {}, "stopped": "resample: neither subject provides it"}
    compared = next(r for r in read_rows(out / "results.jsonl") if r["file"] == "sub/f3.wav")["stages"]["compared"]
    assert list(compared) == ["normalize.waveform"] and not compared["normalize.waveform"]["passed"]
    same = tmp_path / "same"
    _run(corpus, "--subject", f"{cheap}:make_subject", "--against", f"{cheap}:make_subject", "--random-weights",
         "-o", same)
    row = next(r for r in read_rows(same / "results.jsonl") if r["file"] == "sub/f3.wav")
    assert row["metrics"]["max_abs_diff"] == 0 and row["metrics"]["si_sdr"] == "inf"
    assert row["stages"]["compared"]["normalize.waveform"]["passed"]
    summary = json.loads((same / "summary.json").read_text())
    assert summary["metrics"]["si_sdr"]["infinite"] == 4 and summary["rank_by"] == "spectral_distance"


def test_golden_mode_band_limits_the_input(corpus, cheap, tmp_path):
    out = tmp_path / "out"
    _run(corpus, "--subject", f"{cheap}:make_subject", "--golden", "--input-rate", "16000", "--random-weights",
         "-o", out)
    rows = {r["file"]: r for r in read_rows(out / "results.jsonl")}
    assert rows["f0.wav"]["status"] == "error" and "not above --input-rate" in rows["f0.wav"]["error"]
    f3 = rows["sub/f3.wav"]  # 48 kHz, 1800 Hz tone: survives the band limit
    assert f3["status"] == "ok" and f3["cutoff_hz"] == 8000.0 and f3["metrics"]["si_sdr"] > 30


def test_a_failing_subject_is_a_row_not_a_crash(corpus, cheap, tmp_path):
    out = tmp_path / "out"
    assert _run(corpus, "--subject", f"{cheap}:make_broken", "--random-weights", "-o", out) == 1
    rows = [r for r in read_rows(out / "results.jsonl") if r["status"] == "error"]
    assert len(rows) == 4 and rows[0]["error"].endswith("cheap.enhance raised RuntimeError: no")


def test_rerun_skips_finished_files_and_refuses_other_settings(corpus, cheap, tmp_path, capsys):
    out = tmp_path / "out"
    args = [corpus, "--subject", f"{cheap}:make_subject", "--random-weights", "--steps", "1", "-o", out]
    _run(*args)
    first = (out / "results.jsonl").read_bytes()
    lines = first.splitlines(keepends=True)
    (out / "results.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:10])  # as a kill mid-write leaves it
    _write(corpus / "new.wav")
    capsys.readouterr()
    _run(*args)
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == 6 and len({r["file"] for r in rows}) == 6
    assert "4 evaluated now, 2 already done" in capsys.readouterr().out
    assert _run(*args[:-2], "--steps", "2", "-o", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings (steps 1 -> 2)" in err[0]


def test_usage_errors_are_one_line(corpus, cheap, tmp_path, capsys):
    for extra in (["--workers", "0"], ["--rank-by", "nonsense"], ["--steps", "0"], ["--worst", "-1"], [],
                  ["--random-weights", "--checkpoint", "x.bin"]):
        argv = [corpus, "--subject", f"{cheap}:make_subject", "-o", tmp_path / "o", *extra]
        if extra != [] and "--checkpoint" not in extra:
            argv.append("--random-weights")
        assert _run(*argv) == 2, extra
        assert len(capsys.readouterr().err.strip().splitlines()) == 1, extra


# --------------------------------------------------------------------------- worst files


def test_worst_files_are_the_same_whatever_the_order(tmp_path):
    rows = [{"file": f"f{i}", "status": "ok", "metrics": {"lsd": float(v)}} for i, v in enumerate([3, 1, 4, 1, 5, 9])]
    spectra = {"input": np.zeros((2, 2), np.float16), "input_rate": np.array(16000)}
    kept_sets = []
    for order, name in ((rows, "a"), (rows[::-1], "b"), (rows[2:] + rows[:2], "c")):
        w = WorstFiles(tmp_path / name, 3, "lsd", True)
        for r in order:
            w.offer(r, spectra)
            w.settle()
        assert sorted(os.listdir(tmp_path / name / "worst")) == sorted(spectra_name(f) for f in w.kept)
        kept_sets.append(w.ranked())
    assert kept_sets == [["f5", "f4", "f2"]] * 3
    w = WorstFiles(tmp_path / "a", 2, "lsd", True, rows)  # reopened with a smaller k: the rest is removed
    assert w.ranked() == ["f5", "f4"] and len(os.listdir(tmp_path / "a" / "worst")) == 2


@pytest.mark.skipif(not ray_available(), reason="Ray is not installed (pip install 'audiosr-verify[ray]')")
def test_a_ray_address_nobody_answers_is_one_line_and_writes_nothing(corpus, cheap, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run(corpus, "--subject", f"{cheap}:make_subject", "--random-weights", "--engine", "ray",
                "--address", "127.0.0.1:1", "-o", out)  # loopback, a port nothing listens on
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no Ray cluster answers at 127.0.0.1:1" in err[0]
    assert not out.exists()
