"""pytest plugin of the harness: options, markers and fixtures (pytest11 entry point).

Options
    ``--golden-update``          write goldens instead of comparing (the only way they are made)
    ``--audiosr-checkpoint PATH`` run on a real checkpoint (default: tiny preset, random weights seed 0);
                                 also read from ``AUDIOSR_CHECKPOINT``
    ``--audiosr-preset NAME``    layout of that checkpoint (default basic)
    ``--audiosr-golden-dir DIR`` golden store root (default golden/regression)
    ``--audiosr-report-dir DIR`` write report.json/.md/.html of the golden cases checked in the session

    ``--audiosr-subject SUBJECT`` the implementation the packaged suites check (default reference)

Fixtures
    ``audiosr_subject``   the session's subject, activated (on the oracle fixtures' weights)
    ``audiosr_subject_check`` its `run_check` result (one per session)
    ``audiosr_settings``  `RunSettings` of the session (model + sampling settings, checkpoint key)
    ``golden_store``      the `GoldenStore`
    ``audiosr_net``       the network (session scope)
    ``enhance``           ``enhance(case_or_path) -> float32 waveform at 48 kHz`` (runs enhance_file in tmp)
    ``golden_check``      ``golden_check(case, waveform) -> CaseResult``; fails the test with a table

Markers: ``slow``, ``oracle``, ``real_checkpoint`` (skipped, with the reason, when no checkpoint is given).

Loaded through the entry point when the package is installed; the source
tree's top-level ``conftest.py`` registers it only when the entry point has
not (pytest refuses a plugin registered twice). Heavy imports (torch, the
model) happen inside fixtures, so merely loading the plugin stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PLUGIN_MODULE = "audiosr_verify.testing.pytest_plugin"
MARKERS = (
    "slow: long-running tests (full-size models, the full golden set); run with tox -e slow",
    "oracle: needs the original audiosr in its own venv; run with tox -e oracle",
    "real_checkpoint: needs a real AudioSR checkpoint (--audiosr-checkpoint PATH or AUDIOSR_CHECKPOINT)",
)
_RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("audiosr", "AudioSR verification harness")
    g.addoption("--golden-update", action="store_true", default=False,
                help="write (replace) the golden outputs of the cases run instead of comparing with them")
    g.addoption("--audiosr-checkpoint", metavar="PATH", default=os.environ.get("AUDIOSR_CHECKPOINT") or None,
                help="real AudioSR checkpoint for audiosr_net / golden tests (default: tiny random weights); "
                "env AUDIOSR_CHECKPOINT")
    g.addoption("--audiosr-preset", metavar="NAME", default=None, choices=("basic", "tiny"),
                help="layout of --audiosr-checkpoint (default basic)")
    g.addoption("--audiosr-golden-dir", metavar="DIR", default=None,
                help="golden store root (default golden/regression of the source tree)")
    g.addoption("--audiosr-report-dir", metavar="DIR", default=None,
                help="write report.json, report.md and report.html of the golden cases checked")
    g.addoption("--audiosr-subject", metavar="SUBJECT", default=os.environ.get("AUDIOSR_SUBJECT") or "reference",
                help="the implementation the harness suites check (audiosr_verify.testing.suite): reference "
                "(default), original, fault:NAME, package.module:factory or path/to/file.py:factory; "
                "env AUDIOSR_SUBJECT")


def pytest_configure(config: pytest.Config) -> None:
    declared = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for line in MARKERS:  # for projects that use the plugin without declaring them
        if line.split(":")[0] not in declared:
            config.addinivalue_line("markers", line)
    config.stash[_RESULTS] = []


def _checkpoint(config: pytest.Config) -> str | None:
    return config.getoption("--audiosr-checkpoint")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("real_checkpoint") is None:
        return
    path = _checkpoint(item.config)
    if not path:
        pytest.skip("real_checkpoint: no checkpoint given (use --audiosr-checkpoint PATH or AUDIOSR_CHECKPOINT)")
    if not Path(path).is_file():
        pytest.skip(f"real_checkpoint: checkpoint {path} does not exist")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def audiosr_settings(pytestconfig: pytest.Config):
    """Model and sampling settings of the golden runs (tiny/seed 0 weights, seed 42, 2 steps, 3.5, preserve)."""
    from audiosr_verify.golden import RunSettings

    path = _checkpoint(pytestconfig)
    if path:
        if not Path(path).is_file():
            pytest.skip(f"checkpoint {path} does not exist")
        return RunSettings.for_checkpoint(path, preset=pytestconfig.getoption("--audiosr-preset") or "basic")
    return RunSettings(preset=pytestconfig.getoption("--audiosr-preset") or "tiny", weights_seed=0)


@pytest.fixture(scope="session")
def golden_store(pytestconfig: pytest.Config):
    from audiosr_verify.golden import GoldenStore

    return GoldenStore(root=pytestconfig.getoption("--audiosr-golden-dir"))


@pytest.fixture(scope="session")
def audiosr_net(audiosr_settings):
    """The network of the session: the given checkpoint, else deterministic random weights."""
    from audiosr_model.load import load_model, random_model

    if audiosr_settings.checkpoint:
        net, _ = load_model(audiosr_settings.checkpoint, audiosr_settings.preset)
        return net
    return random_model(audiosr_settings.preset, audiosr_settings.weights_seed)


@pytest.fixture
def enhance(audiosr_net, audiosr_settings, golden_store, tmp_path):
    """``enhance(case_or_path) -> np.ndarray``: the session's model on a golden case or an audio file."""
    from audiosr_verify.golden import GoldenCase, enhance_case

    def run(case, **overrides):
        settings = audiosr_settings
        if overrides:
            from dataclasses import replace

            settings = replace(settings, **overrides)
        if isinstance(case, GoldenCase):
            return enhance_case(audiosr_net, case, settings, golden_store.inputs_dir, tmp_path)
        path = Path(case)
        adhoc = GoldenCase(path.stem, path.name, 0, None, "")
        return enhance_case(audiosr_net, adhoc, settings, path.parent, tmp_path)

    return run


@pytest.fixture
def golden_check(request: pytest.FixtureRequest, golden_store, audiosr_settings):
    """``golden_check(case, waveform)``: compare with (or with --golden-update, write) the case's golden.

    A failed, stale or missing golden fails the test with a table naming the
    case and every metric; the obtained files are written beside the golden.
    """
    from audiosr_verify.golden import in_ci
    from audiosr_verify.report.render import case_table_text

    update = request.config.getoption("--golden-update")

    def check(case, obtained, settings=None):
        settings = settings or audiosr_settings
        if update:
            result = golden_store.update(case, obtained, settings)
        else:
            result = golden_store.compare(case, obtained, settings, ci=in_ci())
        request.config.stash[_RESULTS].append(result)
        if not result.passed:
            pytest.fail(case_table_text(result), pytrace=False)
        return result

    return check


@pytest.fixture(scope="session")
def audiosr_subject_spec(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("--audiosr-subject")


@pytest.fixture(scope="session")
def audiosr_subject_check(audiosr_subject_spec):
    """`run_check` of the session's subject (state dict, stages teacher-forced and chained, first divergence)."""
    from audiosr_model.errors import AudioSRError
    from audiosr_verify.checks.subject_check import run_check

    try:
        result = run_check(audiosr_subject_spec)
    except AudioSRError as exc:
        pytest.fail(f"--audiosr-subject {audiosr_subject_spec}: {exc}", pytrace=False)
    if not result.stages.available:
        pytest.skip(result.stages.reason)
    return result


@pytest.fixture(scope="session")
def audiosr_subject(audiosr_subject_spec, tmp_path_factory):
    """The session's subject, activated on the weights the oracle fixtures were made with."""
    from audiosr_model.errors import AudioSRError
    from audiosr_verify.checks.subject_check import write_shared_checkpoint
    from audiosr_verify.subject import SubjectContext
    from audiosr_verify.subjects.loader import load_subject

    try:
        path = write_shared_checkpoint(tmp_path_factory.mktemp("audiosr-subject"))
        subject = load_subject(audiosr_subject_spec, SubjectContext(str(path)))
        subject.activate()
    except AudioSRError as exc:
        pytest.fail(f"--audiosr-subject {audiosr_subject_spec}: {exc}", pytrace=False)
    yield subject
    subject.deactivate()


# --------------------------------------------------------------------------- session end


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
    terminalreporter.write_sep("-", f"golden regression ({results[0].checkpoint_key}): {parts}")
    if counts.get("updated"):
        terminalreporter.write_line(f"goldens written under {Path(results[0].golden_dir).parent}; "
                                    "review with `git diff --stat golden/` and commit them")
    for r in results:
        if not r.passed and r.written:
            terminalreporter.write_line(f"{r.case}: obtained files in {r.golden_dir}")


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    out = config.getoption("--audiosr-report-dir", default=None)
    results = config.stash.get(_RESULTS, [])
    if not out or not results:
        return
    from audiosr_verify import golden as G
    from audiosr_verify.report.model import Report, environment, golden_section
    from audiosr_verify.report.render import write_all

    run = G.GoldenRun(results[0].checkpoint_key, {}, str(Path(results[0].golden_dir).parent.parent),
                      list(results), updated=any(r.status == "updated" for r in results))
    report = Report(title="AudioSR golden regression (pytest session)", model=results[0].checkpoint_key,
                    environment=environment(), sections=[golden_section(run)])
    write_all(report, out)
