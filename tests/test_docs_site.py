"""The documentation site builds with warnings as errors, every internal link and anchor resolves, and
every page renders in a browser with a clean console.

One build per module (``mkdocs build --strict`` of mkdocs.yml into a temporary folder, about 5 s), shared
by the tests, which stay on one xdist worker (``xdist_group``). Without mkdocs (the ``docs`` extra:
``pip install -e ".[docs]"``) the tests skip, saying so; under ``CI`` they fail instead, since .ci/run
installs it. The pages are served from 127.0.0.1 and opened in headless Chromium, driven as
tests/test_report_browser.py drives it (skipped without Chromium), with every host name but 127.0.0.1
unresolvable: a page that fetched anything from outside (a web font, a CDN script) would log an error.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("docs_site")

# the pages of the nav (mkdocs.yml), as built with directory URLs
PAGES = ("", "getting-started/", "enhance/", "check/", "full-size/", "faults/", "runtimes/", "pytest-plugin/",
         "golden-verdicts/", "evaluate/", "reports/", "level/", "performance/", "architecture/", "differences/",
         "measured/", "reference/cli/", "reference/api/", "reference/stages/")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        message = 'mkdocs-material is not installed (pip install -e ".[docs]"); the documentation site is not built'
        if os.environ.get("CI"):
            pytest.fail(f"{message}, and CI must build it (.ci/run installs the docs extra)", pytrace=False)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    proc = _build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def _build(config: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(out)], cwd=config.parent, env=env, capture_output=True, text=True,
                          timeout=300)


# --------------------------------------------------------------------------- the build


def test_a_broken_anchor_fails_the_strict_build(site, tmp_path):
    """Our configuration's validation turns a link to a missing anchor or page into a failed build."""
    import yaml

    ours = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config = {"site_name": "t", "strict": True, "validation": ours["validation"], "theme": {"name": "material",
              "font": False}, "nav": ["index.md", "b.md"]}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# A\n\n[b](b.md#gone) and [c](c.md)\n", encoding="utf-8")
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## Kept\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = _build(tmp_path / "mkdocs.yml", tmp_path / "out")
    assert proc.returncode != 0, proc.stderr
    assert "'b.md' does not contain an anchor '#gone'" in proc.stderr and "c.md" in proc.stderr, proc.stderr


def test_every_page_is_built(site):
    for page in PAGES:
        assert (site / page / "index.html").is_file(), page
    for img in ("architecture-layers.svg",):
        assert (site / "img" / img).is_file(), img
    assert not (site / "hooks").exists(), "docs/hooks/ is build code, not a page asset"


def test_the_cli_reference_is_generated_from_the_parser(site):
    """Every verb of the real parser, nested ones included, has its section, usage and options."""
    import argparse

    from audiosr_verify.cli.main import build_parser

    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "<!-- generated" not in page

    def verbs(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield [*path, name], sub
                    yield from verbs(sub, [*path, name])

    seen = 0
    for path, sub in verbs(build_parser(), []):
        anchor = "-".join(path)
        assert f'id="{anchor}"' in page, f"no section for {' '.join(path)}"
        assert f"usage: audiosr-verify {' '.join(path)}" in page, path
        for action in sub._actions:
            for opt in action.option_strings:
                if opt.startswith("--"):
                    assert opt in page, f"{' '.join(path)} {opt} missing from the CLI reference"
        seen += 1
    assert seen >= 15


def test_the_stage_schema_and_the_api_are_generated(site):
    from audiosr_verify.schema import STAGES

    stages = (site / "reference" / "stages" / "index.html").read_text(encoding="utf-8")
    for s in STAGES:
        assert f'id="{s.name}"' in stages, s.name
        for fixture in s.fixtures:
            assert fixture in stages, fixture
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for obj in ("audiosr_verify.subject.Subject", "audiosr_verify.subject.SubjectContext",
                "audiosr_verify.schema.Stage", "audiosr_verify.testing.pytest_plugin.enhance",
                "audiosr_verify.testing.pytest_plugin.golden_check", "audiosr_verify.testing.audio_files.audio_files"):
        assert f'id="{obj}"' in api, obj


# --------------------------------------------------------------------------- links


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (attribute, value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) is not None and tag in ("a", "img", "link", "script", "source", "audio", "iframe"):
                self.links.append((f"<{tag} {key}>", a[key]))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def broken_links(site: Path) -> list[str]:
    """Every internal href/src of every built page that names no file, or an anchor the page lacks."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        if rel == "404.html":  # its links are absolute to the site's root URL, unknown here
            continue
        base = "http://site/" + rel
        for attr, value in _parse(page).links:
            parts = urlsplit(value)
            if parts.scheme or value.startswith("//"):
                if parts.scheme in ("http", "https", "mailto", "data"):
                    continue
                problems.append(f"{rel}: {attr} {value}: unexpected scheme")
                continue
            target_url = urlsplit(urljoin(base, value))
            path = unquote(target_url.path).lstrip("/")
            target = site / path
            if path == "" or path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{rel}: {attr} {value}: no file {target.relative_to(site)}")
                continue
            fragment = unquote(target_url.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parse(target).ids:
                problems.append(f"{rel}: {attr} {value}: {target.relative_to(site)} has no anchor #{fragment}")
    return problems


def test_every_internal_link_and_anchor_resolves(site):
    problems = broken_links(site)
    assert not problems, "broken links in the site:\n" + "\n".join(problems)
    checked = sum(len(_parse(p).links) for p in site.rglob("*.html"))
    assert checked > 500, checked


def test_the_link_checker_sees_a_broken_link(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="here">x</h2><a href="../b/">b</a><a href="../c/">c</a>'
                                               '<a href="#there">t</a><a href="#here">h</a>'
                                               '<a href="../b/#gone">g</a><img src="../x.png">'
                                               '<a href="https://example.org/">e</a>', encoding="utf-8")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.html").write_text('<p id="kept">b</p>', encoding="utf-8")
    problems = broken_links(tmp_path)
    assert len(problems) == 4, problems
    assert any("no file c/index.html" in p for p in problems)
    assert any("#there" in p for p in problems) and any("#gone" in p for p in problems)
    assert any("x.png" in p for p in problems)


# --------------------------------------------------------------------------- a browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


PROBE = """
(async () => {
  const images = [...document.images];
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  await new Promise(r => setTimeout(r, 150));
  return {
    title: document.title,
    h1: (document.querySelector('article h1') || {}).textContent || '',
    images: images.map(img => ({src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth})),
    codeBlocks: document.querySelectorAll('pre code').length,
  };
})()
"""


def test_every_page_renders_in_chromium(served, tmp_path, monkeypatch):
    import tests.test_report_browser as browser_test

    exe = browser_test.chromium_binary()
    if exe is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set AUDIOSR_CHROMIUM); the site is not "
                    "rendered in a browser")
    # nothing but the local server can be reached: a page that loads anything from outside logs an error
    monkeypatch.setattr(browser_test, "FLAGS", (*browser_test.FLAGS,
                                                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))
    browser = browser_test.DevTools(exe, tmp_path / "profile")
    problems, images = [], 0
    try:
        for i, page in enumerate(PAGES):
            url = served + page
            if i == 0:
                browser.open(url)
            else:
                browser.events.clear()
                browser.send("Page.navigate", {"url": url})
                browser.wait_event("Page.loadEventFired")
            result = browser.evaluate(PROBE)
            time.sleep(0.1)  # late log entries
            for error in browser.errors():
                problems.append(f"/{page}: {error}")
            if not result["h1"].strip():
                problems.append(f"/{page}: no heading rendered ({result['title']!r})")
            for img in result["images"]:
                images += 1
                if not (img["complete"] and img["width"] > 0):
                    problems.append(f"/{page}: picture {img['src']} did not load")
    finally:
        browser.close()
    assert not problems, "\n".join(problems)
    assert images >= 4, images  # the architecture layers, the heatmap, the spectrogram pair
