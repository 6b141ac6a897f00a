"""report.html in a real browser: every picture and every player loads, and the console stays clean.

Headless Chromium (Debian's ``chromium``; ``AUDIOSR_CHROMIUM`` names another
binary) is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in NUL on file descriptors 3 and 4), so no driver, no
websocket library and no network port are needed. The page is opened from a
file; a probe then waits until every ``<img>`` is decoded and every ``<audio>``
has read its metadata, and decodes each clip with Web Audio. Console messages,
uncaught exceptions and browser log entries of level error fail the test.
Without Chromium the tests skip, saying why.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from audiosr_verify.compare.tensors import compare_tensors
from audiosr_verify.report import sections as R
from audiosr_verify.report import render as RR
from tests.test_report import make_golden_run

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The flags this machine needs (no sandbox as root, no GPU, no background network; see the README).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio")


def chromium_binary() -> str | None:
    named = os.environ.get("AUDIOSR_CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture
def golden_run(tmp_path):
    return make_golden_run(tmp_path)  # a passing and a failing golden case


@pytest.fixture(scope="module")
def chromium():
    exe = chromium_binary()
    if exe is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set AUDIOSR_CHROMIUM); "
                    "the report is not rendered in a browser")
    return exe


class DevTools:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # preexec_fn (not thread-safe in general) is the one way to put the pipe on descriptors 3 and 4,
        # the protocol's fixed ones (commands in, replies out); nothing else runs threads here.
        def wire():
            # copies above 3 and 4 first, so neither end can be overwritten by the other's dup2
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
            for fd, target in zip(high, (3, 4)):
                os.dup2(fd, target)  # inheritable, unlike os.pipe()'s ends

        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty browser must never block on it
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                      "about:blank"], preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id, timeout, method)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        return self._wait(lambda m: m.get("method") == method, timeout, method)

    def _wait(self, match, timeout: float, what: str) -> dict:
        for m in self.events:
            if match(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                m = json.loads(raw)
                if "id" not in m:
                    self.events.append(m)
                if match(m):
                    return m
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self._stderr.seek(0)
                err = self._stderr.read().decode(errors="replace")[-2000:]
                raise TimeoutError(f"no answer to {what} within {timeout:.0f} s (browser exit code "
                                   f"{self.proc.poll()}): {err}")
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 120.0):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"probe failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    def errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and browser log errors seen so far."""
        out = []
        for m in self.events:
            p = m.get("params", {})
            if m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description")))
                                                                    for a in p.get("args", [])))
            elif m.get("method") == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
            elif m.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):  # already gone: the wait below reaps it
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._stderr.close()


# Waits for every image and every player, then decodes every clip with Web Audio.
PROBE = """
(async () => {
  const until = (ms) => new Promise(r => setTimeout(r, ms));
  const images = [...document.images];
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null : new Promise(r => {
    a.addEventListener('loadedmetadata', r, {once: true});
    a.addEventListener('error', r, {once: true});
    a.load();
  })));
  const decoded = [];
  for (const a of audios) {
    try {
      const bytes = await (await fetch(a.src)).arrayBuffer();
      const ctx = new OfflineAudioContext(1, 1, 48000);
      const buf = await ctx.decodeAudioData(bytes);
      const x = buf.getChannelData(0);
      let peak = 0; for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]));
      decoded.push({ok: true, seconds: buf.duration, peak: peak});
    } catch (e) { decoded.push({ok: false, error: String(e)}); }
  }
  await until(200);
  return {
    images: images.map(img => ({alt: img.alt, complete: img.complete, width: img.naturalWidth,
                                height: img.naturalHeight})),
    audios: audios.map((a, i) => ({title: a.title, readyState: a.readyState, duration: a.duration,
                                   error: a.error ? a.error.code : null, decoded: decoded[i]})),
  };
})()
"""


def render_in_chromium(exe: str, html_path: Path, profile: Path) -> tuple[dict, list[str]]:
    browser = DevTools(exe, profile)
    try:
        browser.open(html_path.resolve().as_uri())
        result = browser.evaluate(PROBE)
        time.sleep(0.2)  # let late log entries arrive
        return result, browser.errors()
    finally:
        browser.close()


def assert_renders(exe: str, html_path: Path, profile: Path, min_images: int, min_audios: int) -> dict:
    result, errors = render_in_chromium(exe, html_path, profile)
    html = html_path.read_text(encoding="utf-8")
    assert len(result["images"]) == html.count("<img ") >= min_images, result["images"]
    assert len(result["audios"]) == html.count("<audio ") >= min_audios, result["audios"]
    for img in result["images"]:
        assert img["complete"] and img["width"] > 100 and img["height"] > 100, img
    for a in result["audios"]:
        assert a["error"] is None and a["readyState"] >= 1 and a["duration"] > 0.1, a
        assert a["decoded"]["ok"] and abs(a["decoded"]["seconds"] - a["duration"]) < 0.1, a
    assert errors == [], errors
    return result


# --------------------------------------------------------------------------- a report with every kind of content


def _stage_result() -> object:
    """A `StageCheckResult` with passing, bit-identical and failing rows in both views (no model run)."""
    from audiosr_verify.checks.stages import StageCheckResult

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(64)
    rows = []
    for view in ("teacher", "chained"):
        for inp in ("tone_16k", "noise_48k", "speech_22k"):
            for name, stage, err, atol in (("resample.waveform", "resample", 0.0, 1e-6),
                                           ("vocoder.waveform", "vocoder", 3e-6, 1e-5),
                                           ("final.waveform", "output_level", 2e-4 if inp == "noise_48k" else 1e-7,
                                            1e-5)):
                c = compare_tensors(name, ref + err, ref, atol, input=inp)
                c.stage, c.view = stage, view
                rows.append(c)
    return StageCheckResult(subject="synthetic", provided=["resample", "vocoder", "output_level"], comparisons=rows,
                            inputs=["tone_16k", "noise_48k", "speech_22k"])


def test_report_html_renders_in_chromium(chromium, golden_run, tmp_path):
    run, store = golden_run
    functional = R.Section("functional_parity", "Functional parity", "fail", "synthetic stage check",
                           figures=R.functional_figures(_stage_result()))
    report = R.Report(model="test model", sections=[
        R.Section("state_dict_parity", "State-dict parity", "pass", "all keys accounted for"),
        functional, R.golden_section(run, store)])
    RR.write_all(report, tmp_path / "out")
    result = assert_renders(chromium, tmp_path / "out" / "report.html", tmp_path / "profile",
                            min_images=5, min_audios=8)
    peaks = [a["decoded"]["peak"] for a in result["audios"]]
    # input, golden, output, difference per case: the identical case's difference is silent (Opus decodes
    # digital silence to denormals), the other's is not
    assert peaks[3] < 1e-6 and peaks[7] > 0.01 and min(peaks[:3] + peaks[4:7]) > 0.05, peaks


def test_a_broken_picture_is_noticed(chromium, tmp_path):
    """The probe can fail: a picture and a clip that do not decode and a console error are all caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>'
                    '<img alt="x" src="data:image/png;base64,iVBORw0KGgoAAAA=">'
                    '<audio controls preload="metadata" src="data:audio/ogg;base64,T2dnUwAAAAAAAA=="></audio>'
                    "<script>console.error('boom')</script></body></html>", encoding="utf-8")
    result, errors = render_in_chromium(chromium, page, tmp_path / "profile")
    assert result["images"][0]["width"] == 0
    audio = result["audios"][0]
    assert audio["error"] is not None and audio["readyState"] == 0 and not audio["decoded"]["ok"], audio
    assert any("boom" in e for e in errors), errors


@pytest.mark.slow
def test_cli_report_renders_in_chromium(chromium, tmp_path):
    """What `audiosr-verify report` writes (two golden cases, no property tests) renders."""
    from audiosr_verify.cli.main import main

    code = main(["report", "-o", str(tmp_path / "out"), "--case", "tones_8k", "--case", "speech_lp4k",
                 "--no-properties"])
    assert code == 0
    assert_renders(chromium, tmp_path / "out" / "report.html", tmp_path / "profile", min_images=5, min_audios=8)
