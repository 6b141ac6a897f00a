"""The report model, its pictures, sounds and renderers (rich, JSON, Markdown, HTML), on synthetic results."""

from __future__ import annotations

import base64
import io
import json
import math
import re

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from audiosr_verify import golden as G
from audiosr_verify.compare.tensors import compare_tensors
from audiosr_verify.report import sections as R
from audiosr_verify.report import pictures as P
from audiosr_verify.report import render as RR
from audiosr_verify.compare import spectrogram as S

SR = 48000


def decode_image(data: bytes) -> np.ndarray:
    """RGB(A) floats in [0, 1] of an encoded picture (PNG natively, WebP through Pillow)."""
    import matplotlib.image

    kind = "webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "png"
    image = matplotlib.image.imread(io.BytesIO(data), format=kind)
    return image / 255.0 if image.dtype == np.uint8 else image


def panel(image: np.ndarray, box: tuple[int, int, int, int], inset: int = 3) -> np.ndarray:
    """The inside of one axes of a picture (``box`` from `Figure.panels`), its frame cut away."""
    left, top, right, bottom = box
    return image[top + inset:bottom - inset, left + inset:right - inset, :3]


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def test_spectrogram_axes_and_level():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 12000 * t)  # exactly on bin 256 of 1024 at 48 kHz: no scalloping
    s = S.spectrogram(tone, SR)
    assert s.db.shape[0] == S.N_FFT // 2 + 1 and s.freqs_hz[-1] == 24000
    peak = int(np.argmax(s.db.mean(axis=1)))
    assert s.freqs_hz[peak] == 12000
    assert np.median(s.db[peak]) == pytest.approx(0.0, abs=0.01)  # a full-scale sine reads 0 dB
    assert np.median(S.spectrogram(0.5 * tone, SR).db[peak]) == pytest.approx(-6.02, abs=0.01)
    assert s.times_s[-1] == pytest.approx(1.0, abs=S.N_FFT / SR)
    low = S.spectrogram(tone[::3], 16000)  # a 16 kHz input: its 12 kHz tone aliases to 4 kHz
    assert low.freqs_hz[int(np.argmax(low.db.mean(axis=1)))] == pytest.approx(4000, abs=SR / S.N_FFT)
    silent = S.spectrogram(np.zeros(SR), SR)
    assert (silent.db == S.FLOOR_DB).all()


@pytest.fixture
def golden_run(tmp_path):
    return make_golden_run(tmp_path)


def make_golden_run(tmp_path) -> tuple[G.GoldenRun, G.GoldenStore]:
    """Two golden cases of one 16 kHz tone: the first identical, the second changed (tanh(4x))."""
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
    assert any(row[-1] == "FAIL" for row in failed.tables[0].rows)
    assert section.tables[0].columns[0] == "case" and len(section.tables[0].rows) == 2
    for item in (identical, failed):
        (fig,) = item.figures
        assert list(fig.panels) == ["input", "output", "golden", "difference"]
        assert "cutoff" in fig.caption
    # What is drawn: the arrays...
    same = identical.figures[0].arrays
    assert (same["spectrograms"]["difference"].db == S.FLOOR_DB).all(), "identical output: nothing to show"
    changed = failed.figures[0].arrays
    assert (changed["spectrograms"]["difference"].db > changed["vmin"] + 20).mean() > 0.5
    # ...and the pictures: the difference panel is dark when identical, lit up when not.
    for item, lit in ((identical, False), (failed, True)):
        fig = item.figures[0]
        bright = (luminance(panel(decode_image(fig.image), fig.panels["difference"])) > 0.25).mean()
        assert bright > 0.5 if lit else bright < 0.03, (item.name, bright)
        output = panel(decode_image(fig.image), fig.panels["output"])
        assert (luminance(output) > 0.25).mean() > 0.3  # the output itself is not black


def test_golden_section_clips(golden_run):
    run, store = golden_run
    identical, failed = R.golden_section(run, store).items
    for item, diff_peak in ((identical, 0.0), (failed, 0.1)):
        assert [c.title for c in item.clips] == ["input", "golden", "obtained output", "output − golden"]
        for clip in item.clips:
            x, rate = sf.read(io.BytesIO(clip.data))
            assert rate == 48000 and abs(len(x) / rate - 1.0) < 0.01 and clip.seconds == pytest.approx(1.0)
        diff, _ = sf.read(io.BytesIO(item.clips[3].data))
        assert np.abs(diff).max() < 1e-4 if diff_peak == 0 else np.abs(diff).max() > diff_peak
    assert identical.clips[3].caption == "silent"
    out, _ = sf.read(io.BytesIO(failed.clips[2].data))
    ref = run.results[1].obtained
    assert np.corrcoef(out[:len(ref)], ref[:len(out)])[0, 1] > 0.99  # the clip is the output, lossy but faithful


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
    assert data["schema_version"] == 2
    figure = data["sections"][2]["items"][1]["figures"][0]
    assert figure["title"] == "spectrograms" and figure["bytes"] > 1000
    assert [c["mime"] for c in data["sections"][2]["items"][1]["clips"]] == ["audio/ogg"] * 4
    md = RR.to_markdown(report)
    assert "# AudioSR compatibility report" in md and "tone_b" in md and "SI-SDR (dB)" in md
    assert "In report.html: spectrograms, input (audio)" in md
    html = RR.to_html(report)
    images = re.findall(r'<img [^>]*src="data:(image/[a-z]+);base64,([^"]+)"', html)
    assert len(images) == 2
    for mime, b64 in images:
        assert decode_image(base64.b64decode(b64)).shape[0] > 100
    clips = re.findall(r'<audio [^>]*src="data:(audio/[a-z]+);base64,([^"]+)"', html)
    assert len(clips) == 8
    for mime, b64 in clips:
        assert sf.info(io.BytesIO(base64.b64decode(b64))).duration > 0.9
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    console = Console(file=io.StringIO(), width=140, color_system=None)
    RR.print_rich(report, console)
    text = console.file.getvalue()
    assert "FAIL" in text and "tone_b" in text and "Golden regression" in text
    written = RR.write_all(report, tmp_path / "out")
    assert sorted(p.name for p in written) == ["report.html", "report.json", "report.md"]


# --------------------------------------------------------------------------- functional parity pictures


def _comparison(err: float, atol: float, rtol: float = 0.0, shape: int = 8, view: str = "teacher", name: str = "x",
                input: str = "a"):
    ref = np.linspace(1.0, 2.0, 8)
    c = compare_tensors(name, ref[:shape] + err if shape == 8 else np.ones(shape), ref, atol, rtol, input=input)
    c.view = view
    return c


@settings(max_examples=200, deadline=None)
@given(err=st.floats(0, 1e-3), atol=st.sampled_from([0.0, 1e-6, 1e-5, 1e-4]),
       rtol=st.sampled_from([0.0, 1e-6, 1e-5]))
def test_tolerance_ratio_is_at_most_one_exactly_when_the_row_passes(err, atol, rtol):
    c = _comparison(err, atol, rtol)
    ratio = P.tolerance_ratio(c)
    assert (ratio <= 1) == c.passed, (ratio, c)
    if atol > 0 and c.passed:
        assert ratio == pytest.approx(max(err - rtol * 1.0, 0) / atol, rel=1e-6, abs=1e-9)


def test_tolerance_ratio_values():
    assert P.tolerance_ratio(_comparison(0.5e-5, 1e-5)) == pytest.approx(0.5)
    assert P.tolerance_ratio(_comparison(3e-5, 1e-5)) == pytest.approx(3.0)
    assert P.tolerance_ratio(_comparison(0.1e-5, 0.0, 1e-5)) == pytest.approx(0.1)  # relative only: max_rel / rtol
    assert P.tolerance_ratio(_comparison(0.0, 0.0)) == 0.0  # bit-exact and identical
    assert P.tolerance_ratio(_comparison(1e-9, 0.0)) == math.inf  # bit-exact and not
    assert P.tolerance_ratio(_comparison(0.0, 1e-5, shape=5)) == math.inf  # shape mismatch


def test_heatmap_colours_each_cell_by_its_verdict():
    rows = [_comparison(err, 1e-5, name=name, input=inp)
            for name, errs in (("s1", (0.0, 5e-8)), ("s2", (5e-6, 2e-5))) for inp, err in zip(("a", "b"), errs)]
    pic = P.stage_heatmap(rows, ["a", "b"])
    image = decode_image(pic.image)[..., :3]
    left, top, right, bottom = pic.panels["grid"]

    def colour(i, j):  # near the left edge of cell (row i, column j), away from its number
        y = int(top + (i + 0.5) * (bottom - top) / 2)
        x = int(left + (j + 0.1) * (right - left) / 2)
        return tuple(np.round(image[y, x] * 255).astype(int))

    def hex_rgb(h):
        return tuple(int(h[k:k + 2], 16) for k in (1, 3, 5))

    def near(a, b):
        return max(abs(x - y) for x, y in zip(a, b)) <= 3

    assert near(colour(0, 0), hex_rgb(P.ZERO_COLOUR))  # identical
    assert near(colour(0, 1), hex_rgb(P.RATIO_COLOURS[1]))  # 5e-8 / 1e-5 = 5e-3: a light green decade
    assert near(colour(1, 0), hex_rgb(P.RATIO_COLOURS[3]))  # 0.5 of the tolerance: the last green
    assert near(colour(1, 1), hex_rgb(P.RATIO_COLOURS[4]))  # 2 x the tolerance: the first red


def test_functional_section_from_a_check_result():
    from audiosr_verify.checks.subject_check import run_check

    check = run_check("fault:vocoder_output_padding", inputs=["tone_mix_16k"], views=("teacher",))
    section = R.functional_section(check=check)
    assert section.status == "fail" and "first divergence" in section.summary
    assert section.items[0].name.startswith("first divergence: vocoder, module first_stage_model.vocoder.ups.1")
    stages = section.tables[0]
    assert stages.title == "stages" and ["vocoder", "fail"] == stages.rows[[r[0] for r in stages.rows].index("vocoder")][:2]
    every = section.tables[1]
    assert every.folded and len(every.rows) == len(check.stages.comparisons)
    assert [f.title for f in section.figures] == ["stage parity heatmap, teacher"]  # no chained view asked for
    html = RR.to_html(R.Report(sections=[section]))
    assert html.index("stage parity heatmap") < html.index("<summary>every comparison")


def test_divergence_curves_draw_every_input():
    rows = [_comparison(err, 1e-4, view="chained", name=n, input=inp)
            for inp in ("a", "b") for n, err in (("resample.waveform", 0.0), ("mel.decoded", 1e-6),
                                                 ("vocoder.waveform", 3e-4 if inp == "b" else 2e-6))]
    rows.append(_comparison(0.0, 1e-4, shape=5, view="chained", name="final.waveform", input="b"))
    pic = P.divergence_curves(rows, ["a", "b"])
    assert pic.mime == "image/png" and decode_image(pic.image).shape[1] == pic.width > 500
    section = R.Section("functional_parity", "Functional parity", "fail", "x")
    from audiosr_verify.checks.stages import StageCheckResult

    section.figures = R.functional_figures(StageCheckResult(comparisons=rows, inputs=["a", "b"]))
    assert [f.title for f in section.figures] == ["stage parity heatmap, chained", "divergence along the pipeline"]


def test_junit_summary(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="3">'
        '<testcase classname="tests.test_properties_level" name="test_a"/>'
        '<testcase classname="tests.test_properties_level" name="test_b"><failure message="boom">x</failure>'
        '</testcase><testcase classname="tests.test_properties_audio" name="test_c"><skipped/></testcase>'
        "</testsuite></testsuites>")
    from audiosr_verify.testing.property_run import PropertyRun

    section = R.property_section(PropertyRun("pytest ...", 1, xml.read_text()))
    assert section.status == "fail" and "1 passed" in section.summary and "1 failed" in section.summary
    assert section.data["failures"][0][0] == "test_properties_level::test_b"
    assert {i.name: i.status for i in section.items} == {"test_properties_level": "fail",
                                                         "test_properties_audio": "pass"}
    # no results: an error with the reason, never a pass on nothing
    empty = R.property_section(PropertyRun("pytest ...", -1, None, "timed out after 900 s"))
    assert empty.status == "error" and "timed out" in empty.summary


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
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img ") == 4 and html.count("<audio ") == 4  # 3 parity pictures + 1 case
