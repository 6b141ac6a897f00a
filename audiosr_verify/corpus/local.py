"""The local engine: a pool of processes on this machine, one model per process.

Processes are started with ``spawn`` (a fresh interpreter: no torch state or
thread pool inherited from the driver) and load the subjects on their first
file; the driver keeps at most two files per worker in flight, so a huge
corpus costs no memory up front, and takes each row as soon as it is done.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable

from audiosr_model.errors import AudioSRError

OnResult = Callable[[dict[str, Any], Any], None]

_evaluator = None  # this worker process's FileEvaluator, made on the first file


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the driver, which stops the pool (no traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _evaluate(settings: dict[str, Any], job: dict[str, str]):
    global _evaluator
    if _evaluator is None:
        from multiprocessing.util import Finalize

        from audiosr_verify.checks.corpus import FileEvaluator

        _evaluator = FileEvaluator(settings)
        Finalize(None, _evaluator.close, exitpriority=10)  # run when the pool shuts the worker down
    return _evaluator.evaluate(job)


def run_local(settings, jobs: Iterable[dict[str, str]], workers: int, on_result: OnResult) -> None:
    """Evaluate ``jobs`` on ``workers`` processes; ``on_result(row, spectra)`` in the driver, as each finishes."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupts)
    data = settings.to_dict()
    todo = iter(jobs)
    pending: dict[Any, str] = {}

    def submit() -> bool:
        job = next(todo, None)
        if job is None:
            return False
        pending[pool.submit(_evaluate, data, job)] = job["file"]
        return True

    try:
        for _ in range(2 * workers):
            if not submit():
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f]):
                file = pending.pop(future)
                try:
                    row, spectra = future.result()
                except BrokenProcessPool:
                    raise AudioSRError(f"a worker process died while evaluating {file} (out of memory?); "
                                       "files finished before it are saved, run again to continue") from None
                on_result(row, spectra)
                submit()
    except BaseException:
        # Interrupted or failed: the files in flight will not be recorded, so do not wait for them (Python
        # 3.11 has no public way to stop busy workers; 3.14's terminate_workers does the same).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


__all__ = ["run_local"]
