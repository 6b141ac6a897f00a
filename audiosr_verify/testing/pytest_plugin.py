"""pytest plugin of the harness: options, ini settings, markers and fixtures (pytest11 entry point).

In another project (docs/pytest-plugin.md)::

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
    ``--audiosr-fixtures FIX``    the fixture set the packaged stage suite checks against (default the bundled
                                  tiny set; one from `oracle export --checkpoint` with --audiosr-checkpoint)
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

Waveforms: one layout, ``[samples]`` or ``[samples, channels]`` (frames first, as soundfile reads a file;
at most 16 channels; `audiosr_verify.testing.enhancer.WAVEFORM_LAYOUT`). Both fixtures refuse a waveform
that is empty, not numeric, 0-d, of 3 or more axes, NaN or Inf anywhere, or the other way round (``(2,
48000)`` is channels-first: transpose it; the plugin never guesses which axis is time), and ``enhance``
refuses settings the ``enhance`` CLI refuses. A refusal fails the test with one line naming the test and the
problem, before any model runs and before any golden is written.

Settings are checked when pytest starts, before any model or subject is built: a golden dir or report dir
that is a file (or lies under one), or an ``--audiosr-checkpoint`` that is not a readable regular file, is a
usage error naming it (a checkpoint from ``$AUDIOSR_CHECKPOINT`` is checked when a test first needs it, so
a stale variable does not break the sessions of projects that do not use the plugin).

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
from typing import NoReturn

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
    g.addoption("--audiosr-no-measure-noise", action="store_true", default=False, dest="audiosr_no_measure_noise",
                help="with --golden-update and --audiosr-checkpoint: do not measure the checkpoint's float noise on "
                "the bundled golden cases (its goldens are then judged by the tiny-model default bounds)")
    g.addoption("--audiosr-checkpoint", metavar="PATH", default=None, dest="audiosr_checkpoint",
                help="real AudioSR checkpoint for enhance / golden tests (default: tiny random weights); "
                "env AUDIOSR_CHECKPOINT")
    g.addoption("--audiosr-preset", metavar="NAME", default=None, choices=("basic", "tiny"), dest="audiosr_preset",
                help="layout of --audiosr-checkpoint (default basic)")
    g.addoption("--audiosr-golden-dir", metavar="DIR", default=None, dest="audiosr_golden_dir",
                help="golden store root (default: ini audiosr_golden_dir, else tests/goldens under the rootdir)")
    g.addoption("--audiosr-report-dir", metavar="DIR", default=None, dest="audiosr_report_dir",
                help="write report.json, report.md and report.html of the golden cases checked")
    g.addoption("--audiosr-fixtures", metavar="FIX", default=None, dest="audiosr_fixtures",
                help="oracle fixture set the packaged stage suite checks the subject against (default: the "
                "bundled tiny set); a set made by `oracle export --checkpoint` also needs --audiosr-checkpoint")
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
    problem = _settings_problem(config)
    if problem:
        raise pytest.UsageError(problem)
    if config.getoption("audiosr_golden_update", False) and getattr(config.option, "dist", "no") != "no":
        # Goldens are written by one process: two pytest-xdist workers updating the same case at once would
        # collide on its lock. Runs before xdist's own (trylast) configure, so the session stays in-process.
        config.option.dist = "no"
        config.option.numprocesses = None


def _settings_problem(config: pytest.Config) -> str | None:
    """The first setting of the plugin that cannot work, as one line naming it; None when all can.

    Stdlib only, unless a checkpoint is given on the command line: sessions that do not use the plugin
    pay nothing. Only what was set is checked (the default tests/goldens is checked when first used).
    """
    from audiosr_verify.testing.project_goldens import golden_dir_setting

    report = config.getoption("audiosr_report_dir", None)
    folders = [golden_dir_setting(config)]
    if report is not None:
        folders.append((f"--audiosr-report-dir {report}", report, Path(config.invocation_params.dir) / report))
    for setting, value, path in filter(None, folders):
        if not str(value).strip():
            return f"{setting.strip()}: empty path; give a folder"
        problem = _folder_problem(path)
        if problem:
            return f"{setting}: {problem}"
    if config.getoption("audiosr_checkpoint", None) is not None:
        return _checkpoint_problem(config)
    return None


def _folder_problem(path: Path) -> str | None:
    from audiosr_verify.testing.project_goldens import folder_problem

    problem = folder_problem(path)
    return f"{path} {problem}" if problem else None


def _checkpoint(config: pytest.Config) -> str | None:
    """The checkpoint of the session (``--audiosr-checkpoint``, else ``$AUDIOSR_CHECKPOINT``), or None."""
    from audiosr_verify.testing.project_goldens import checkpoint_setting

    setting = checkpoint_setting(config)
    return setting[1] if setting else None


def _checkpoint_problem(config: pytest.Config) -> str | None:
    """Why the session's checkpoint cannot be read (one line naming the setting and the file), or None."""
    from audiosr_model.errors import AudioSRError
    from audiosr_model.io.safe_open import check_input

    from audiosr_verify.testing.project_goldens import checkpoint_setting

    setting = checkpoint_setting(config)
    if setting is None:
        return None
    try:
        check_input(setting[1], "checkpoint")  # a readable, non-empty regular file (never a pipe or device)
    except AudioSRError as exc:
        return f"{setting[0]}: {exc}"
    return None


def _refuse(node: pytest.Item | pytest.Session | None, *what: object) -> NoReturn:
    """Fail the test with ONE line naming it, then what was refused and why: ``nodeid: what: problem``.

    Bad input or settings, not a bug to trace: no traceback. ``from None``: called in an ``except``
    block, pytest would otherwise print the caught error as well. A session fixture has no test to name
    (its node is the session, whose id is empty); pytest's report names each test it fails.
    """
    named = (node.nodeid,) if node is not None and node.nodeid else ()
    raise pytest.fail.Exception(": ".join(map(str, (*named, *what))), pytrace=False) from None


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up: the checkpoint is checked before any model
def pytest_runtest_setup(item: pytest.Item) -> None:
    marked = item.get_closest_marker("real_checkpoint") is not None
    if not marked and "audiosr_settings" not in getattr(item, "fixturenames", ()):
        return
    if not _checkpoint(item.config):
        if marked:
            pytest.skip("real_checkpoint: no checkpoint given (use --audiosr-checkpoint PATH or AUDIOSR_CHECKPOINT)")
        return
    problem = _checkpoint_problem(item.config)  # asked for but unreadable: not a skip (nothing verified), a failure
    if problem:
        _refuse(item, problem)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def audiosr_subject_spec(pytestconfig: pytest.Config) -> str:
    """The subject this session tests (a spec as ``check`` takes it): ``--audiosr-subject``, else
    ``$AUDIOSR_SUBJECT``, else the ini option, else ``reference``. Goldens are kept per subject."""
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
        problem = _checkpoint_problem(pytestconfig)  # $AUDIOSR_CHECKPOINT is checked here, on first use
        if problem:
            pytest.fail(problem, pytrace=False)
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
    from audiosr_model.weights.load import load_model, random_model

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
                _refuse(None, f"--audiosr-subject {audiosr_subject_spec}",
                        f"{subject.name} does not provide enhance")
            yield Enhancer(audiosr_settings, subject=subject)
    except AudioSRError as exc:
        _refuse(None, f"--audiosr-subject {audiosr_subject_spec}", exc)


@pytest.fixture
def enhance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, audiosr_settings):
    """``enhance(source, rate=None, **settings) -> Enhanced``: the session's subject at 48 kHz, float32 [N]
    ([N, C] when ``mix="keep"`` keeps several channels).

    ``source``: an audio file (a path as open() takes it, else relative to the test file's folder or the
    rootdir), an `AudioFile` from `audio_files`, a waveform with its ``rate`` or a bundled `GoldenCase`.
    A waveform is ``[samples]`` or ``[samples, channels]`` (frames first, as soundfile reads a file; at most
    16 channels), finite and non-empty: ``(2, 48000)`` is channels-first and refused (pass ``x.T``).
    ``settings`` override the run: ``seed=``, ``steps=``, ``guidance_scale=``, ``level_mode=``, ``mix=``,
    checked as the ``enhance`` CLI checks them. Anything refused fails the test in one line naming it,
    before the model is built or run.
    """
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.testing.enhancer import run_settings

    work: list[Path] = []

    def workdir() -> Path:  # made on first use, outside the test's own tmp_path
        if not work:
            work.append(tmp_path_factory.mktemp("audiosr-enhance"))
        return work[0]

    def run(source, rate: int | None = None, **overrides):
        try:
            job = _enhance_job(request, source, rate, run_settings(audiosr_settings, overrides), workdir)
        except AudioSRError as exc:
            _refuse(request.node, "enhance", exc)
        enhancer = request.getfixturevalue("audiosr_enhancer")  # the model: only for a checked job
        try:
            return enhancer.run(job, workdir())
        except AudioSRError as exc:
            _refuse(request.node, "enhance", exc)

    return run


def _enhance_job(request: pytest.FixtureRequest, source, rate, settings, workdir):
    """The checked `Job` for what a test gave ``enhance``; nothing is built or run yet."""
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.golden import GoldenCase
    from audiosr_verify.testing.enhancer import case_job, file_job, find_input, waveform_job

    if isinstance(source, (GoldenCase, str, os.PathLike)) and rate is not None:
        raise AudioSRError(f"rate={rate!r} is for a waveform; an audio file has its own rate")
    if isinstance(source, GoldenCase):
        return case_job(source, request.getfixturevalue("golden_store").inputs_dir, settings)
    if isinstance(source, (str, os.PathLike)):
        path = find_input(source, [Path(request.node.path).parent, Path(request.config.rootpath)])
        return file_job(path, Path(request.config.rootpath), settings)
    if rate is None:
        raise AudioSRError("give a path to an audio file, or a waveform with its rate (rate=...)")
    return waveform_job(source, rate, workdir(), settings)


@pytest.fixture
def golden_check(request: pytest.FixtureRequest, audiosr_settings):
    """``golden_check(name, waveform, input=None)``: compare with (or with --golden-update, write) its golden.

    ``name``: the case (letters, digits, ``_ . -``), one per test session; an `AudioFile` gives its case
    name and its file as the input. ``waveform``: 48 kHz, usually what ``enhance`` returned (its input
    file's sha256, rate and the run settings go into the golden's meta.json): ``[samples]`` or ``[samples,
    channels]`` (frames first, at most 16 channels; stored frame-interleaved, as in a WAV file), finite and
    non-empty; anything else (``(2, 48000)`` is channels-first: pass ``x.T``) fails the test in one line
    before any golden is read or written. ``input``: the audio file a waveform of your own was made from.
    A bundled `GoldenCase` instead of a name checks the harness's own store. The check never passes
    without comparing: a missing golden fails (with the command that writes it); a failed or stale one
    fails the test with a table naming the case and every metric, the obtained files written beside it.
    """
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.golden import GoldenCase, in_ci
    from audiosr_verify.report.render import case_table_text
    from audiosr_verify.testing.enhancer import check_waveform
    from audiosr_verify.testing.project_goldens import update_command

    config = request.config
    update = config.getoption("audiosr_golden_update")
    command = update_command(config, request.node)

    def check(case, obtained, settings=None, *, input=None):
        what = _golden_label(case)
        try:  # first: a refused waveform reaches no store, so no golden is written or compared
            waveform = check_waveform(obtained)
        except AudioSRError as exc:
            _refuse(request.node, what, exc)
        harness = isinstance(case, GoldenCase)
        if harness:
            store = request.getfixturevalue("golden_store")
        else:
            case, settings, store = _project_case(request, case, obtained, settings, input)
        settings = settings or audiosr_settings
        problem = _folder_problem(store.case_dir(settings.key, case.name))  # a file on the way, default dir too
        if problem:
            _refuse(request.node, what, f"golden dir: {problem}")
        try:
            if update and harness:  # a checkpoint's float noise measured as `golden update` does (golden/noise.py)
                from audiosr_verify.golden.noise import update_case

                recompute = lambda threads: request.getfixturevalue("enhance")(case)  # noqa: E731
                result = update_case(store, case, waveform, settings, recompute,
                                     False if config.getoption("audiosr_no_measure_noise") else None)
            elif update:
                result = store.update(case, waveform, settings)
            else:
                result = store.compare(case, waveform, settings, ci=in_ci(), update_hint=command)
        except (AudioSRError, OSError) as exc:  # a golden that cannot be read or written: one line, no traceback
            _refuse(request.node, what, exc)
        config.stash[_RESULTS].append(result)
        if not result.passed:
            pytest.fail(case_table_text(result), pytrace=False)
        return result

    return check


def _golden_label(case) -> str:
    """``golden_check 'name'`` for messages, whatever the test passed as the case."""
    name = getattr(case, "name", None) or getattr(case, "case", None) or case
    return f"golden_check {name!r}" if isinstance(name, str) else "golden_check"


def _project_case(request: pytest.FixtureRequest, name, obtained, settings, input):
    """(`GoldenCase` with the input's provenance, settings, the project store) for a named case."""
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.testing.audio_files import AudioFile, check_case_name
    from audiosr_verify.testing.enhancer import file_source, find_input

    if isinstance(name, AudioFile):  # golden_check(audio, ...): its case name, and the file as its input
        name, input = name.case, name.path if input is None else input
    try:
        check_case_name(name)
    except ValueError as exc:
        _refuse(request.node, "golden_check", exc)
    store = request.getfixturevalue("audiosr_project_store")
    config = request.config
    source = getattr(obtained, "source", None)
    if input is not None:
        try:
            path = find_input(input, [Path(request.node.path).parent, Path(config.rootpath)])
            source = file_source(path, Path(config.rootpath), getattr(source, "settings", None))
        except AudioSRError as exc:
            _refuse(request.node, f"golden_check {name!r}: input", exc)
    settings = settings or getattr(source, "settings", None)
    owners = config.stash[_CASE_OWNERS]
    key = str(store.case_dir((settings or request.getfixturevalue("audiosr_settings")).key, name))
    first = owners.setdefault(key, request.node.nodeid)
    if first != request.node.nodeid:
        _refuse(request.node, "golden_check", f"case {name!r} is already checked by {first}; give each case its "
                "own name")
    from audiosr_verify.golden import GoldenCase

    case = source.case(name) if source is not None else GoldenCase(name, None, None, None, "", kind="waveform",
                                                                    tier="")
    return case, settings, store


@pytest.fixture(scope="session")
def audiosr_subject_check(audiosr_subject_spec, pytestconfig):
    """`run_check` of the session's subject (state dict, stages teacher-forced and chained, first divergence),
    against ``--audiosr-fixtures`` (default: the bundled tiny set) with ``--audiosr-checkpoint`` for a set
    exported from a checkpoint."""
    from audiosr_model.errors import AudioSRError

    from audiosr_verify.checks import stages as S
    from audiosr_verify.checks.subject_check import run_check

    fixtures = pytestconfig.getoption("audiosr_fixtures")
    checkpoint = pytestconfig.getoption("audiosr_checkpoint") if fixtures else None
    try:
        result = run_check(audiosr_subject_spec, fixture_dir=fixtures or S.DEFAULT_FIXTURES, checkpoint=checkpoint)
    except AudioSRError as exc:
        _refuse(None, f"--audiosr-subject {audiosr_subject_spec}", exc)
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
        _refuse(None, f"--audiosr-subject {audiosr_subject_spec}", exc)
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
        for r in results:  # what the update measured: a bound above its default is never silent
            if r.status == "updated":
                for note in r.notes:
                    terminalreporter.write_line(f"{r.case}: {note}")
    for r in results:
        if not r.passed and r.written:
            terminalreporter.write_line(f"{r.case}: obtained files in {r.golden_dir}")


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    out = config.getoption("audiosr_report_dir", default=None)
    results = config.stash.get(_RESULTS, [])
    if not out or not results:
        return
    from audiosr_model.errors import AudioSRError

    from audiosr_verify import golden as G
    from audiosr_verify.report.sections import Report, environment, golden_section
    from audiosr_verify.report.render import write_all

    run = G.GoldenRun(results[0].checkpoint_key, {}, str(Path(results[0].golden_dir).parent.parent),
                      list(results), updated=any(r.status == "updated" for r in results))
    report = Report(title="AudioSR golden regression (pytest session)", model=results[0].checkpoint_key,
                    environment=environment(), sections=[golden_section(run)])
    try:
        write_all(report, Path(config.invocation_params.dir) / out)
    except (OSError, AudioSRError) as exc:  # asked for and not written: a lost result, so not a passing session
        config.get_terminal_writer().line(f"ERROR: --audiosr-report-dir {out}: cannot write the report: {exc}",
                                          red=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
