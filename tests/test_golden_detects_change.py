"""Acceptance: changing one model stage makes the golden comparison fail, readably.

The change: the vocoder's final activation becomes a hard clip (``clamp(x, -1, 1)``)
instead of ``tanh``: `audiosr_model.nets.vocoder`'s ``torch`` is monkeypatched for the duration
of one enhancement; no file is edited. Everything that writes works on a
temporary copy of the golden store, never on the committed one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import audiosr_model.nets.vocoder
import pytest

from audiosr_verify import golden as G
from audiosr_verify.report import sections as R
from audiosr_verify.report.render import case_table_text, to_html
from tests.test_report import decode_image, luminance, panel

ROOT = Path(__file__).resolve().parents[1]
CASE = "speech_lp4k"


class TorchWithHardClip:
    """`torch` for audiosr_model.nets.vocoder, except that ``tanh`` is a hard clip."""

    def __getattr__(self, name):
        import torch

        return getattr(torch, name)

    @staticmethod
    def tanh(x):
        import torch

        return torch.clamp(x, -1.0, 1.0)


PATCH_PLUGIN = '''
"""-p plugin for a pytest subprocess: the vocoder's final tanh becomes a hard clip."""
import audiosr_model.nets.vocoder
from tests.test_golden_detects_change import TorchWithHardClip

audiosr_model.nets.vocoder.torch = TorchWithHardClip()
'''


def _tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def case(golden_store, audiosr_settings):
    cases = {c.name: c for c in golden_store.cases()}
    if CASE not in cases or not golden_store.exists(audiosr_settings.key, CASE):
        pytest.skip(f"no committed golden {audiosr_settings.key}/{CASE}")
    return cases[CASE]


@pytest.fixture(scope="module")
def store_copy(golden_store, audiosr_settings, case, tmp_path_factory):
    """A temporary golden store holding a copy of the committed golden of CASE."""
    root = tmp_path_factory.mktemp("golden-copy")
    shutil.copytree(golden_store.case_dir(audiosr_settings.key, CASE), root / audiosr_settings.key / CASE)
    return G.GoldenStore(root, golden_store.inputs_dir)


@pytest.fixture(scope="module")
def changed_output(audiosr_net, audiosr_settings, golden_store, case, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audiosr_model.nets.vocoder, "torch", TorchWithHardClip())
        return G.enhance_case(audiosr_net, case, audiosr_settings, golden_store.inputs_dir,
                              tmp_path_factory.mktemp("changed"))


def test_changed_vocoder_fails_then_update_passes(changed_output, case, store_copy, golden_store,
                                                  audiosr_settings, tmp_path):
    committed = golden_store.case_dir(audiosr_settings.key, CASE)
    before = _tree_digest(committed)

    result = store_copy.compare(case, changed_output, audiosr_settings)
    assert result.status == "failed", result.rows()
    failed = [c.label for c in result.failed_checks()]
    assert failed, result.rows()
    text = case_table_text(result)
    assert f"golden case '{CASE}' (random-tiny-seed0): FAILED" in text or audiosr_settings.key != "random-tiny-seed0"
    for label in failed:
        assert f"| {CASE} | {label}" in text, text
    assert "--golden-update" in text
    copy_dir = store_copy.case_dir(audiosr_settings.key, CASE)
    assert {p.name for p in copy_dir.iterdir()} == set(G.GOLDEN_FILES + G.OBTAINED_FILES)

    # The difference is a picture: the difference panel of report.html is far from black, both in the
    # spectrogram it is drawn from and in the decoded image; and it can be heard.
    run = G.GoldenRun(audiosr_settings.key, {}, str(store_copy.root), [result])
    section = R.golden_section(run, store_copy)
    fig = next(f for f in section.items[0].figures if f.title == "spectrograms")
    assert f'src="data:{fig.mime};base64,' in to_html(R.Report(sections=[section]))
    diff_db = fig.arrays["spectrograms"]["difference"].db
    assert (diff_db > fig.arrays["vmin"] + 25).mean() > 0.05, "the change must be in the difference spectrogram"
    lit = luminance(panel(decode_image(fig.image), fig.panels["difference"])) > 0.25
    assert lit.mean() > 0.05, "the change must be visible in the difference picture"
    heard = next(c for c in section.items[0].clips if c.title == "output − golden")
    assert heard.caption.startswith("peak ") and float(heard.caption.split()[1]) > -60

    updated = store_copy.update(case, changed_output, audiosr_settings)
    assert updated.status == "updated"
    assert store_copy.compare(case, changed_output, audiosr_settings).status == "identical"
    assert {p.name for p in copy_dir.iterdir()} == set(G.GOLDEN_FILES)
    assert _tree_digest(committed) == before, "the committed golden store must not change"


@pytest.mark.slow
def test_pytest_golden_update_flow_on_a_copy(golden_store, audiosr_settings, case, tmp_path):
    """`pytest` fails with the table, `pytest --golden-update` rewrites the copy, then `pytest` passes."""
    if audiosr_settings.checkpoint:
        pytest.skip("runs the bundled tiny default only")
    copy = tmp_path / "golden"
    shutil.copytree(golden_store.case_dir(audiosr_settings.key, CASE), copy / audiosr_settings.key / CASE)
    committed = _tree_digest(golden_store.case_dir(audiosr_settings.key, CASE))
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "patch_vocoder_hardclip.py").write_text(textwrap.dedent(PATCH_PLUGIN))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "AUDIOSR_CHECKPOINT")}
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), str(ROOT)])

    def run(*extra):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "patch_vocoder_hardclip",
               "tests/test_golden_regression.py", "-k", CASE, f"--audiosr-golden-dir={copy}", *extra]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)

    r = run()
    assert r.returncode == 1 and f"golden case '{CASE}'" in r.stdout and "FAIL" in r.stdout, r.stdout + r.stderr
    r = run("--golden-update")
    assert r.returncode == 0 and "1 updated" in r.stdout, r.stdout + r.stderr
    r = run()
    assert r.returncode == 0 and "1 identical" in r.stdout, r.stdout + r.stderr
    assert _tree_digest(golden_store.case_dir(audiosr_settings.key, CASE)) == committed
