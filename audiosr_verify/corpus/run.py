"""The driver of a corpus evaluation: discover, skip what is done, dispatch to an engine, journal, summarise.

    OUT/run.json        the settings the rows were made with (a re-run must match them)
    OUT/results.jsonl   one row per file (journal.py), appended as each file finishes
    OUT/worst/          spectrogram data of the worst-ranked files (worst.py)
    OUT/summary.json    counts, distributions, stage failures, worst files (written at the end)
    OUT/summary.html    the same for a person: histograms, the worst files' spectrograms

Every option, the corpus and OUT are checked before anything is written or a
model loaded (`_preflight`); a corpus with no readable audio is an error, never
an empty success. A run that fails before its first result leaves OUT as it
found it (`_output_kept_only_with_results`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks.corpus import SUMMARY_METRICS, EvaluationSettings
from audiosr_verify.corpus.files import discover, probe
from audiosr_verify.corpus.journal import RESULTS_FILE, Journal
from audiosr_verify.corpus.options import check_evaluation
from audiosr_verify.corpus.worst import WORST_DIR, WorstFiles
from audiosr_verify.util.atomic import atomic_write

ENGINES = ("local", "ray")
RUN_FILE, SUMMARY_FILE, HTML_FILE = "run.json", "summary.json", "summary.html"
RUN_FILE_MAX_BYTES = 1 << 20  # the settings of a run: a few kB
# Metrics a run can rank its worst files by, and whether lower is better.
RANKABLE = {name: lower for name, _, lower in SUMMARY_METRICS if lower is not None}
RANKABLE.update(peak_relative_diff=True, max_abs_diff=True)


class Progress(Protocol):
    def start(self, total: int, completed: int) -> None: ...

    def advance(self, row: dict[str, Any]) -> None: ...


def default_rank_metric(settings: EvaluationSettings) -> str:
    """Parity: the project's floored spectral distance (robust to rounding); quality: the published LSD."""
    return "spectral_distance" if settings.mode == "against" else "lsd"


@dataclass
class CorpusRun:
    out_dir: Path
    files: int  # audio files in the corpus
    skipped: int  # already in results.jsonl
    evaluated: int  # by this run
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    @property
    def files_per_minute(self) -> float:
        return 60 * self.evaluated / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        c = self.summary.get("counts", {})
        return not c.get("unreadable") and not c.get("error")


def _check_previous_run(out: Path, identity: dict[str, Any]) -> None:
    """OUT may hold an earlier run's results only if they were made with the same settings (read-only).

    Its files are opened the safe way: a named pipe or a huge file in their
    place is one line, never a read that blocks or fills the memory.
    """
    _check_entries(out)
    run_file = out / RUN_FILE
    if not os.path.lexists(run_file):
        return
    from audiosr_verify.util.safe_open import read_json

    data = read_json(run_file, "run description", max_bytes=RUN_FILE_MAX_BYTES)
    before = data.get("identity") if isinstance(data, dict) else None
    if not isinstance(before, dict):
        raise AudioSRError("is not a run description of audiosr-verify evaluate; use another --output-dir",
                           run_file)
    differ = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
    if differ:
        shown = ", ".join(f"{k} {before.get(k)!r} -> {identity.get(k)!r}" for k in differ[:4])
        raise AudioSRError(f"holds results made with other settings ({shown}); use another --output-dir", out)


def _check_entries(out: Path) -> None:
    """results.jsonl must be a regular file and worst/ a directory where they exist (read by a re-run)."""
    import stat

    for name, is_kind, kind in ((RESULTS_FILE, stat.S_ISREG, "a regular file"), (WORST_DIR, stat.S_ISDIR,
                                                                                   "a directory")):
        try:
            mode = os.stat(out / name).st_mode
        except FileNotFoundError:
            if os.path.lexists(out / name):  # a dangling symlink
                raise AudioSRError(f"is not {kind} (a dangling symbolic link); use another --output-dir",
                                   out / name) from None
            continue
        except OSError as exc:
            raise AudioSRError(f"cannot check it ({exc.strerror or exc})", out / name) from None
        if not is_kind(mode):
            raise AudioSRError(f"is not {kind}; use another --output-dir", out / name)


def _preflight(corpus, settings: EvaluationSettings, out: Path, engine: str, workers: int, worst: int,
               rank_by: str | None):
    """Every check of a run, before anything is written or a model loaded: (the corpus's files, rank_by)."""
    from audiosr_verify.util.output_dirs import check_output_dir
    from audiosr_verify.subjects.loader import resolve_factory

    if engine not in ENGINES:
        raise AudioSRError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    check_evaluation(settings, workers, worst)
    rank_by = rank_by or default_rank_metric(settings)
    if rank_by not in RANKABLE:
        raise AudioSRError(f"cannot rank by {rank_by!r} (one of {', '.join(sorted(RANKABLE))})")
    for spec in filter(None, (settings.subject, settings.against)):
        resolve_factory(spec)  # a subject that cannot be found fails here, not in every worker
    files = discover(corpus)
    problem = probe(files)
    if problem is not None:  # an empty corpus is a usage error, never "0 files, OK"
        raise AudioSRError(f"no readable audio in the corpus ({problem})", corpus)
    check_output_dir(out)
    _check_previous_run(out, settings.identity())
    return files, rank_by


@contextlib.contextmanager
def _output_kept_only_with_results(out: Path):
    """Create OUT; if the run fails before its first result, leave it as it was found.

    What this run added (OUT itself and its missing parents, run.json, an
    empty results.jsonl, worst/) goes again, so a failed start leaves no
    half-made output folder. Once a row is saved everything stays: a re-run
    continues from it.
    """
    from audiosr_verify.util.output_dirs import output_dir, remove_if_empty  # the CLI's one way to make and undo OUT

    out, created = output_dir(out)
    ours = [out / name for name in (RUN_FILE, RESULTS_FILE, WORST_DIR) if not os.path.lexists(out / name)]
    try:
        yield out
    except BaseException:
        if _no_results(out / RESULTS_FILE):
            for path in ours:
                _remove(path)
            remove_if_empty(out, created)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # worst/: spectrograms of rows that were never saved
    else:
        path.unlink(missing_ok=True)


def _no_results(results: Path) -> bool:
    try:
        return results.stat().st_size == 0
    except FileNotFoundError:
        return True


def _write_run_file(out: Path, settings: EvaluationSettings, corpus: Path) -> None:
    atomic_write(out / RUN_FILE, json.dumps({"identity": settings.identity(), "settings": settings.to_dict(),
                                             "corpus": str(corpus)}, indent=2) + "\n")


def evaluate_corpus(corpus: str | Path, settings: EvaluationSettings, out_dir: str | Path, *,
                    engine: str = "local", workers: int = 1, address: str | None = None, worst: int = 8,
                    rank_by: str | None = None, progress: Progress | None = None,
                    html: Callable[..., Path] | None = None) -> CorpusRun:
    """Evaluate every audio file under ``corpus`` not yet in ``out_dir``; write the summary; return the run.

    ``html``: the writer of the HTML summary, ``html(path, summary, rows, out_dir) -> path`` (the CLI passes
    `report.corpus.write_html`; the report sits above this layer, so it is handed in, never imported);
    None or False writes none.

    Every option, the corpus (at least one readable audio file) and OUT are
    checked before anything is written; a run that fails before its first
    result leaves OUT as it found it.
    """
    out = Path(out_dir)
    files, rank_by = _preflight(corpus, settings, out, engine, workers, worst, rank_by)
    if engine == "ray":
        from audiosr_verify.corpus.ray_engine import ray_session

        session = ray_session(address, workers * settings.threads)
    else:
        session = contextlib.nullcontext()
    start = time.perf_counter()
    with session, _output_kept_only_with_results(out):
        _check_previous_run(out, settings.identity())  # again: another run may have started meanwhile
        _write_run_file(out, settings, Path(corpus).resolve())
        rows, ranked, skipped = _evaluate_files(files, settings, out, engine, workers, address, worst, rank_by,
                                                progress)
    seconds = time.perf_counter() - start
    evaluated = len(files) - skipped
    result = CorpusRun(out, len(files), skipped, evaluated, seconds)
    from audiosr_verify.corpus.summary import summarize

    result.summary = summarize(rows, settings, str(Path(corpus).resolve()), ranked, rank_by,
                               {"engine": engine, "workers": workers, "address": address, "evaluated": evaluated,
                                "skipped": skipped, "wall_seconds": seconds,
                                "files_per_minute": result.files_per_minute})
    atomic_write(out / SUMMARY_FILE, json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    result.written = [out / "results.jsonl", out / SUMMARY_FILE]
    if html:
        result.written.append(html(out / HTML_FILE, result.summary, rows, out))
    return result


@contextlib.contextmanager
def _shared_weights(settings: EvaluationSettings, address: str | None):
    """On this machine, the bundled random weights are written once, by the driver, for every worker (and
    removed by it, also when the run is interrupted); on a cluster each worker writes its own."""
    if settings.checkpoint is not None or address:
        yield settings
        return
    import dataclasses
    import tempfile

    from audiosr_verify.checks.subject_check import write_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="audiosr-evaluate-") as tmp:
        path = write_random_checkpoint(tmp, settings.preset, settings.weights_seed)
        yield dataclasses.replace(settings, checkpoint=str(path))


def _evaluate_files(files, settings, out: Path, engine: str, workers: int, address: str | None, worst: int,
                    rank_by: str, progress: Progress | None) -> tuple[list[dict[str, Any]], list[str], int]:
    """Run what is not yet done; (the rows of the corpus's files sorted by file, the worst files, skipped)."""
    with Journal(out) as journal:
        todo = [f for f in files if not journal.done(f.rel)]
        kept = WorstFiles(out, worst, rank_by, RANKABLE[rank_by], journal.rows.values())
        if progress is not None:
            progress.start(len(files), len(files) - len(todo))

        def on_result(row: dict[str, Any], spectra) -> None:
            kept.offer(row, spectra)  # its spectrograms first: a saved row never lacks them
            journal.append(row)
            kept.settle()
            if progress is not None:
                progress.advance(row)

        jobs = (f.to_job() for f in todo)
        if todo:
            with _shared_weights(settings, address) as worker_settings:
                if engine == "local":
                    from audiosr_verify.corpus.local import run_local

                    run_local(worker_settings, jobs, min(workers, len(todo)), on_result)
                else:
                    from audiosr_verify.corpus.ray_engine import run_ray

                    run_ray(worker_settings, jobs, workers if address else min(workers, len(todo)), on_result)
        present = {f.rel for f in files}
        rows = sorted((r for f, r in journal.rows.items() if f in present), key=lambda r: r["file"])
        return rows, [f for f in kept.ranked() if f in present], len(files) - len(todo)


__all__ = ["CorpusRun", "ENGINES", "HTML_FILE", "RANKABLE", "RUN_FILE", "SUMMARY_FILE", "default_rank_metric",
           "evaluate_corpus"]
