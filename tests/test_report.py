"""The report model and its renderers (rich, JSON, Markdown, HTML), on synthetic results."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from audiosr_verify import golden as G
from audiosr_verify.report import model as R
from audiosr_verify.report import render as RR
from audiosr_verify.report import spectrogram as S

SR = 48000


def _decode_png(data: bytes) -> tuple[int, int, np.ndarray]:
    """(width, height, palette indices) of an 8-bit palette PNG written by spectrogram.png_bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + length
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, ctype) == (8, 3) and len(chunks[b"PLTE"]) == 256 * 3
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, w + 1)
    assert not raw[:, 0].any()  # filter type 0 on every row
    return w, h, raw[:, 1:]


def test_png_and_colormap():
    cmap = S.colormap()
    assert cmap.shape == (255, 3) and tuple(cmap[0]) == (0, 0, 4) and tuple(cmap[-1]) == (252, 253, 191)
    idx = np.arange(12, dtype=np.uint8).reshape(3, 4)
    w, h, pixels = _decode_png(S.png_bytes(idx, S.palette()))
    assert (w, h) == (4, 3) and np.array_equal(pixels, idx)


def test_spectrogram_axes():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 12000 * t)
    db = S.log_power_db(tone, SR)
    assert db.shape[0] == S.ROWS
    assert abs(int(np.argmax(db.mean(axis=1))) - S.ROWS // 2) <= 1  # 12 kHz is half way up to 24 kHz
    low = S.log_power_db(tone[::3], 16000)  # a 16 kHz input: its 12 kHz tone aliases to 4 kHz
    assert abs(int(np.argmax(low.mean(axis=1))) - S.ROWS // 6) <= 1


@pytest.fixture
def golden_run(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    t = np.arange(16000) / 16000
    sf.write(inputs / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    store = G.GoldenStore(tmp_path / "regression", inputs)
    case = G.GoldenCase("tone", "tone.wav", 16000, 8000.0, G.sha256_path(inputs / "tone.wav"))
    other = G.GoldenCase("tone_b", "tone.wav", 16000, 8000.0, case.sha256)
    settings = G.RunSettings()
    rng = np.random.default_rng(0)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR) + 0.01 * rng.standard_normal(SR)).astype(np.float32)
    store.update(case, wave, settings)
    store.update(other, wave, settings)
    run = G.GoldenRun(settings.key, {}, str(store.root))
    run.results.append(store.compare(case, wave, settings))
    run.results.append(store.compare(other, np.tanh(4 * wave), settings))
    return run, store


def test_golden_section_items_tables_and_figures(golden_run):
    run, store = golden_run
    section = R.golden_section(run, store)
    assert section.status == "fail" and section.key == "golden_regression"
    assert [i.status for i in section.items] == ["pass", "fail"]
    identical, failed = section.items
    assert [f.title for f in failed.figures] == ["input", "output", "golden", "difference"]
    _, _, diff = _decode_png(failed.figures[3].png)
    assert (diff[:, 4:-4] > 0).mean() > 0.5, "a real difference must be visible"
    _, _, same = _decode_png(identical.figures[3].png)
    assert not same[:, 4:-4].any(), "identical output: the difference picture is black"
    assert any(row[-1] == "FAIL" for row in failed.tables[0].rows)
    assert section.tables[0].columns[0] == "case" and len(section.tables[0].rows) == 2


def _report(golden_run, **kw) -> R.Report:
    run, store = golden_run
    return R.Report(model="test model", sections=[
        R.Section("state_dict_parity", "State-dict parity", "pass", "all keys accounted for"),
        R.Section("functional_parity", "Functional parity", "not_available", "not yet"),
        R.golden_section(run, store),
    ], **kw)


def test_report_passes_only_when_every_section_passes(golden_run):
    report = _report(golden_run)
    assert not report.passed and report.exit_code == 1
    report.sections[2].status = "pass"
    assert report.passed and report.exit_code == 0  # not_available does not fail...
    report.strict = True
    assert not report.passed  # ...unless strict


def test_renderers(golden_run, tmp_path):
    report = _report(golden_run)
    data = json.loads(RR.to_json(report))
    assert data["ok"] is False and [s["key"] for s in data["sections"]][2] == "golden_regression"
    assert data["sections"][2]["data"]["cases"][1]["status"] == "failed"
    md = RR.to_markdown(report)
    assert "# AudioSR compatibility report" in md and "tone_b" in md and "SI-SDR (dB)" in md
    html = RR.to_html(report)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 8
    for b64 in images:
        _decode_png(base64.b64decode(b64))
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    console = Console(file=__import__("io").StringIO(), width=140, color_system=None)
    RR.print_rich(report, console)
    text = console.file.getvalue()
    assert "FAIL" in text and "tone_b" in text and "Golden regression" in text
    written = RR.write_all(report, tmp_path / "out")
    assert sorted(p.name for p in written) == ["report.html", "report.json", "report.md"]


def test_functional_section_from_a_check_result():
    from audiosr_verify.checks.subject_check import run_check

    check = run_check("fault:vocoder_output_padding", inputs=["tone_mix_16k"], views=("teacher",))
    section = R.functional_section(check=check)
    assert section.status == "fail" and "first divergence" in section.summary
    assert section.items[0].name.startswith("first divergence: vocoder, module first_stage_model.vocoder.ups.1")
    stages = section.tables[0]
    assert stages.title == "stages" and ["vocoder", "fail"] == stages.rows[[r[0] for r in stages.rows].index("vocoder")][:2]




def test_junit_summary(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="3">'
        '<testcase classname="tests.test_properties_level" name="test_a"/>'
        '<testcase classname="tests.test_properties_level" name="test_b"><failure message="boom">x</failure>'
        '</testcase><testcase classname="tests.test_properties_audio" name="test_c"><skipped/></testcase>'
        "</testsuite></testsuites>")
    section = R._junit_section(xml, 1, "pytest ...")
    assert section.status == "fail" and "1 passed" in section.summary and "1 failed" in section.summary
    assert section.data["failures"][0][0] == "test_properties_level::test_b"
    assert {i.name: i.status for i in section.items} == {"test_properties_level": "fail",
                                                         "test_properties_audio": "pass"}


def test_parity_section_on_tiny_random_weights(tmp_path):
    section = R.parity_section(None, "tiny", 0, manifest=tmp_path / "absent.json")
    assert section.status == "pass", section.summary
    assert section.items[0].status == "pass" and section.items[1].status == "not_available"
    assert section.data["model"]["ok"] is True


def test_cli_unknown_case_is_a_usage_error(capsys):
    from audiosr_verify.cli.main import main

    assert main(["golden", "check", "--case", "no_such_case"]) == 2
    assert "unknown golden case no_such_case" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_report_on_one_case(tmp_path):
    from audiosr_verify.cli.main import main

    code = main(["report", "-o", str(tmp_path), "--case", "tones_8k", "--no-properties"])
    data = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, data
    assert [s["status"] for s in data["sections"]][::2] == ["pass", "pass"]
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 4
