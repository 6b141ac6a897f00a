"""pytest plugin of the harness: options, ini settings, markers and fixtures (pytest11 entry point).

In another project (the README's "Use it in your project's tests")::

    def test_my_file(enhance, golden_check):
        golden_check("my_case", enhance("my.wav"))

``pytest --golden-update`` writes the golden under ``tests/goldens/<subject>/<weights>/my_case/``
(see `audiosr_verify.testing.project_goldens`); ``pytest`` then compares with it.

Options
    ``--golden-update``           write goldens instead of comparing (the only way they are made);
                                  also ``--audiosr-golden-update`` (the only name when another plugin has taken it)
    ``--audiosr-checkpoint PATH`` run on a real checkpoint (default: tiny preset, random weights seed 0);
                                  also read from ``AUDIOSR_CHECKPOINT``
    ``--audiosr-preset NAME``     layout of that checkpoint (default basic)
    ``--audiosr-golden-dir DIR``  golden store root: a project's (default: ini ``audiosr_golden_dir``, else
                                  tests/goldens under the rootdir); for the harness's own cases (`GoldenCase`)
                                  the bundled golden/regression
    ``--audiosr-report-dir DIR``  write report.json/.md/.html of the golden cases checked in the session
    ``--audiosr-subject SUBJECT`` the implementation that ``enhance`` runs and the packaged suites check
                                  (default reference; env ``AUDIOSR_SUBJECT``; ini ``audiosr_subject``)

Fixtures
    ``enhance``           ``enhance(path | AudioFile | waveform, rate=None, **settings) -> Enhanced`` (48 kHz float32)
    ``golden_check``      ``golden_check(name, waveform, input=None) -> CaseResult``; fails the test with a table
    ``audiosr_settings``  `RunSettings` of the session (subject, weights, sampling settings)
    ``audiosr_project_store`` the project's `GoldenStore` of the session's subject
    ``golden_store``      the harness's own store (bundled `GoldenCase` inputs)
    ``audiosr_net``       our network (session scope; with the reference subject)
    ``audiosr_subject``   the session's subject, activated on the oracle fixtures' weights (packaged suites)
    ``audiosr_subject_check`` its `run_check` result (one per session)

Markers: ``slow``, ``oracle``, ``real_checkpoint`` (skipped, with the reason, when no checkpoint is given).

The plugin loads in every pytest session of an environment where the package
is installed, so loading it must cost nothing: this module imports only pytest
and the stdlib; numpy, torch and the model are imported by the fixtures that
need them, and nothing is written unless a golden fixture runs. The source
tree's top-level ``conftest.py`` registers it only when the entry point has
not (pytest refuses a plugin registered twice).
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
_CASE_OWNERS = pytest.StashKey[dict]()  # (golden dir) -> nodeid of the test that checked it first


def _taken(parser: pytest.Parser, name: str) -> bool:
    """Whether another plugin already registered the option ``name`` (then we do not claim it too)."""
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    return any(name in opt.names() for g in groups if g is not None for opt in getattr(g, "options", []))


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("audiosr", "AudioSR verification harness")
    update_names = ["--audiosr-golden-update"] + ([] if _taken(parser, "--golden-update") else ["--golden-update"])
    g.addoption(*reversed(update_names), action="store_true", default=False, dest="audiosr_golden_update",
                help="write (replace) the golden outputs of the golden checks run instead of comparing with them")
    g.addoption("--audiosr-checkpoint", metavar="PATH", default=os.environ.get("AUDIOSR_CHECKPOINT") or None,
                dest="audiosr_checkpoint",
                help="real AudioSR checkpoint for enhance / golden tests (default: tiny random weights); "
                "env AUDIOSR_CHECKPOINT")
    g.addoption("--audiosr-preset", metavar="NAME", default=None, choices=("basic", "tiny"), dest="audiosr_preset",
                help="layout of --audiosr-checkpoint (default basic)")
    g.addoption("--audiosr-golden-dir", metavar="DIR", default=None, dest="audiosr_golden_dir",
                help="golden store root (default: ini audiosr_golden_dir, else tests/goldens under the rootdir)")
    g.addoption("--audiosr-report-dir", metavar="DIR", default=None, dest="audiosr_report_dir",
                help="write report.json, report.md and report.html of the golden cases checked")
    g.addoption("--audiosr-subject", metavar="SUBJECT", default=None, dest="audiosr_subject",
                help="the implementation enhance runs and the harness suites check: reference (default), "
                "original, fault:NAME, package.module:factory or path/to/file.py:factory; env AUDIOSR_SUBJECT, "
                "ini audiosr_subject")
    parser.addini("audiosr_golden_dir", "golden store of this project, relative to the ini file "
                  "(default tests/goldens)", type="string", default="")
    parser.addini("audiosr_subject", "subject that enhance runs and the harness suites check (default reference)",
                  type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    declared = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for line in MARKERS:  # for projects that use the plugin without declaring them
        if line.split(":")[0] not in declared:
            config.addinivalue_line("markers", line)
    config.stash[_RESULTS] = []
    config.stash[_CASE_OWNERS] = {}
    if config.getoption("audiosr_golden_update", False) and getattr(config.option, "dist", "no") != "no":
        # Goldens are written by one process: two pytest-xdist workers updating the same case at once would
        # collide on its lock. Runs before xdist's own (trylast) configure, so the session stays in-process.
        config.option.dist = "no"
        config.option.numprocesses = None


def _checkpoint(config: pytest.Config) -> str | None:
    return config.getoption("audiosr_checkpoint")


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
def audiosr_subject_spec(pytestconfig: pytest.Config) -> str:
    from audiosr_verify.testing.project_goldens import subject_spec

    return subject_spec(pytestconfig)


@pytest.fixture(scope="session")
def audiosr_settings(pytestconfig: pytest.Config, audiosr_subject_spec: str):
    """Settings of the session's outputs: our model (tiny/seed 0 weights, preserve level) or a subject's
    ``enhance`` (faithful level, channel 0); seed 42, 2 DDIM steps, guidance 3.5."""
    from audiosr_verify.golden import RunSettings
    from audiosr_verify.testing.project_goldens import DEFAULT_SUBJECT

    path = _checkpoint(pytestconfig)
    preset = pytestconfig.getoption("audiosr_preset")
    subject = None if audiosr_subject_spec == DEFAULT_SUBJECT else audiosr_subject_spec
    faithful = {"level_mode": "faithful", "mix": "first", "subject": subject} if subject else {}
    if path:
        if not Path(path).is_file():
            pytest.skip(f"checkpoint {path} does not exist")
        return RunSettings.for_checkpoint(path, preset=preset or "basic", **faithful)
    if subject:
        return RunSettings.for_subjects(subject, preset=preset or "tiny", weights_seed=0)
    return RunSettings(preset=preset or "tiny", weights_seed=0)


@pytest.fixture(scope="session")
def golden_store(pytestconfig: pytest.Config):
    """The harness's own store: goldens of the bundled `GoldenCase` inputs (default golden/regression)."""
    from audiosr_verify.golden import GoldenStore

    root = pytestconfig.getoption("audiosr_golden_dir")
    return GoldenStore(root=None if root is None else Path(pytestconfig.invocation_params.dir) / root)


@pytest.fixture(scope="session")
def audiosr_project_store(pytestconfig: pytest.Config, audiosr_subject_spec: str):
    """This project's goldens of the session's subject: ``<golden dir>/<subject>/<weights key>/<case>/``."""
    from audiosr_verify.golden import GoldenStore
    from audiosr_verify.testing.project_goldens import project_golden_root, subject_folder, update_command

    root = project_golden_root(pytestconfig) / subject_folder(audiosr_subject_spec)
    return GoldenStore(root, inputs_dir=Path(pytestconfig.rootpath), update_hint=update_command(pytestconfig))


@pytest.fixture(scope="session")
def audiosr_net(audiosr_settings):
    """The network of the session: the given checkpoint, else deterministic random weights."""
    from audiosr_model.load import load_model, random_model

    if audiosr_settings.checkpoint:
        net, _ = load_model(audiosr_settings.checkpoint, audiosr_settings.preset)
        return net
    return random_model(audiosr_settings.preset, audiosr_settings.weights_seed)


@pytest.fixture(scope="session")
def audiosr_enhancer(request: pytest.FixtureRequest, audiosr_settings, audiosr_subject_spec):
    """The session's subject as an `Enhancer`: our network, or the subject opened for the session."""
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.testing.enhancer import Enhancer

    if audiosr_settings.subject is None:
        yield Enhancer(audiosr_settings, net=request.getfixturevalue("audiosr_net"))
        return
    from audiosr_verify.checks.subject_check import opened_subject

    s = audiosr_settings
    try:
        with opened_subject(audiosr_subject_spec, s.checkpoint, s.preset, s.weights_seed or 0) as subject:
            if "enhance" not in subject.provided():
                pytest.fail(f"--audiosr-subject {audiosr_subject_spec}: {subject.name} does not provide enhance",
                            pytrace=False)
            yield Enhancer(audiosr_settings, subject=subject)
    except AudioSRError as exc:
        pytest.fail(f"--audiosr-subject {audiosr_subject_spec}: {exc}", pytrace=False)


@pytest.fixture
def enhance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``enhance(source, rate=None, **settings) -> Enhanced``: the session's subject at 48 kHz, float32 [N].

    ``source``: an audio file (a path as open() takes it, else relative to the test file's folder or the
    rootdir), an `AudioFile` from `audio_files`, a waveform ([N] or [N, C]; give ``rate``) or a bundled
    `GoldenCase`. ``settings`` override the run (``steps=``, ``seed=``, ``guidance_scale=``...).
    """
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.golden import GoldenCase
    from audiosr_verify.testing.enhancer import Enhanced, find_input

    config = request.config
    work: list[Path] = []

    def workdir() -> Path:  # made on first use, outside the test's own tmp_path
        if not work:
            work.append(tmp_path_factory.mktemp("audiosr-enhance"))
        return work[0]

    def run(source, rate: int | None = None, **overrides):
        enhancer = request.getfixturevalue("audiosr_enhancer")
        try:
            if isinstance(source, GoldenCase):
                from dataclasses import replace

                settings = replace(enhancer.settings, **overrides) if overrides else None
                inputs = request.getfixturevalue("golden_store").inputs_dir
                return Enhanced(enhancer.run_case(source, inputs, workdir(), settings), None)
            if isinstance(source, (str, os.PathLike)):
                path = find_input(source, [Path(request.node.path).parent, Path(config.rootpath)])
                return enhancer.run_file(path, Path(config.rootpath), workdir(), **overrides)
            if rate is None:
                raise AudioSRError("enhance: give a path to an audio file, or a waveform with its rate (rate=...)")
            return enhancer.run_waveform(source, rate, workdir(), **overrides)
        except AudioSRError as exc:
            pytest.fail(f"enhance: {exc}", pytrace=False)

    return run


@pytest.fixture
def golden_check(request: pytest.FixtureRequest, audiosr_settings):
    """``golden_check(name, waveform, input=None)``: compare with (or with --golden-update, write) its golden.

    ``name``: the case (letters, digits, ``_ . -``), one per test session; an `AudioFile` gives its case
    name and its file as the input. ``waveform``: float32 [N] at 48 kHz, usually what ``enhance`` returned
    (its input file's sha256, rate and the run settings go into the golden's meta.json). ``input``: the
    audio file a waveform of your own was made from. A bundled `GoldenCase` instead of a name checks the
    harness's own store. A failed, stale or missing golden fails the test with a table naming the case and
    every metric; the obtained files are written beside the golden.
    """
    from audiosr_verify.golden import GoldenCase, in_ci
    from audiosr_verify.report.render import case_table_text
    from audiosr_verify.testing.project_goldens import update_command

    config = request.config
    update = config.getoption("audiosr_golden_update")
    command = update_command(config, request.node)

    def check(case, obtained, settings=None, *, input=None):
        if isinstance(case, GoldenCase):
            store = request.getfixturevalue("golden_store")
        else:
            case, obtained, settings, store = _project_case(request, case, obtained, settings, input)
        settings = settings or audiosr_settings
        if update:
            result = store.update(case, obtained, settings)
        else:
            result = store.compare(case, obtained, settings, ci=in_ci(), update_hint=command)
        config.stash[_RESULTS].append(result)
        if not result.passed:
            pytest.fail(case_table_text(result), pytrace=False)
        return result

    return check


def _project_case(request: pytest.FixtureRequest, name, obtained, settings, input):
    """(`GoldenCase` with the input's provenance, plain waveform, settings, the project store) for a named case."""
    import numpy as np
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.testing.audio_files import AudioFile, check_case_name
    from audiosr_verify.testing.enhancer import file_source, find_input

    if isinstance(name, AudioFile):  # golden_check(audio, ...): its case name, and the file as its input
        name, input = name.case, name.path if input is None else input
    try:
        check_case_name(name)
    except ValueError as exc:
        pytest.fail(f"golden_check: {exc}", pytrace=False)
    store = request.getfixturevalue("audiosr_project_store")
    config = request.config
    source = getattr(obtained, "source", None)
    if input is not None:
        try:
            path = find_input(input, [Path(request.node.path).parent, Path(config.rootpath)])
            source = file_source(path, Path(config.rootpath), getattr(source, "settings", None))
        except AudioSRError as exc:
            pytest.fail(f"golden_check {name!r}: input: {exc}", pytrace=False)
    settings = settings or getattr(source, "settings", None)
    owners = config.stash[_CASE_OWNERS]
    key = str(store.case_dir((settings or request.getfixturevalue("audiosr_settings")).key, name))
    first = owners.setdefault(key, request.node.nodeid)
    if first != request.node.nodeid:
        pytest.fail(f"golden_check: case {name!r} is already checked by {first}; give each case its own name",
                    pytrace=False)
    from audiosr_verify.golden import GoldenCase

    case = source.case(name) if source is not None else GoldenCase(name, None, None, None, "", kind="waveform",
                                                                    tier="")
    return case, np.asarray(obtained, dtype=np.float32), settings, store


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
        where = sorted({str(Path(r.golden_dir).parent) for r in results if r.status == "updated"})
        terminalreporter.write_line(f"goldens written under {', '.join(where)}; review them "
                                    "(git diff --stat) and commit them")
    for r in results:
        if not r.passed and r.written:
            terminalreporter.write_line(f"{r.case}: obtained files in {r.golden_dir}")


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    out = config.getoption("audiosr_report_dir", default=None)
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
    write_all(report, Path(config.invocation_params.dir) / out)
