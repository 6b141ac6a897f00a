"""The Ray engine: one actor per worker, each holding its own model; on this machine or a cluster.

Install with the ``[ray]`` extra. Without ``address`` a private Ray instance
is started with ``workers x threads`` CPUs and stopped afterwards; with
``address`` (``auto`` or ``HOST:PORT``) the run joins an existing cluster,
where every node needs this package installed and the corpus, the checkpoint
and any subject file at the same paths (a shared file system). Actors are
scheduled with ``threads`` CPUs each (and one GPU each with ``--device cuda``);
results stream back to the driver as each file finishes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterable

from audiosr_model.errors import AudioSRError

OnResult = Callable[[dict[str, Any], Any], None]


class _Worker:
    """The actor: a FileEvaluator, with set-up errors kept as one line for the driver."""

    def __init__(self, settings: dict[str, Any]):
        from audiosr_verify.checks.corpus import FileEvaluator

        self.error = None
        self.evaluator = None
        try:
            self.evaluator = FileEvaluator(settings)
        except AudioSRError as exc:
            self.error = str(exc)

    def evaluate(self, job: dict[str, str]):
        if self.error is not None:
            return "error", self.error
        return "ok", self.evaluator.evaluate(job)

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on is one line now; Ray itself would retry for minutes."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "ray://...", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise AudioSRError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                           "`ray start --head`, or leave out --address") from None


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int):
    """Ray connected for the block: a private local instance with ``cpus`` CPUs, or the cluster at ``address``.

    Entered before anything is written, so a cluster that cannot be reached leaves no output behind. An
    instance this process already runs (a test, a notebook) is used as it is and left running.
    """
    if not ray_available():
        raise AudioSRError("--engine ray needs Ray: pip install 'audiosr-verify[ray]'")
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                                  configure_logging=True)
    if address:
        _reachable(address)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=cpus, **kwargs)
    except Exception as exc:  # ConnectionError, a bad address, a node that cannot start
        raise AudioSRError(f"cannot start or join Ray ({type(exc).__name__}: {' '.join(str(exc).split())})") \
            from None
    try:
        yield
    finally:
        ray.shutdown()


def run_ray(settings, jobs: Iterable[dict[str, str]], workers: int, on_result: OnResult) -> None:
    """Evaluate ``jobs`` on ``workers`` Ray actors (inside `ray_session`); ``on_result(row, spectra)`` as each
    finishes, in the driver."""
    import ray
    from ray.util import ActorPool

    actors = []
    try:
        options: dict[str, Any] = {"num_cpus": settings.threads}
        if settings.device == "cuda":
            options["num_gpus"] = 1
        actor_class = ray.remote(_Worker).options(**options)
        actors = [actor_class.remote(settings.to_dict()) for _ in range(workers)]
        pool = ActorPool(actors)
        results = pool.map_unordered(lambda actor, job: actor.evaluate.remote(job), list(jobs))
        while True:
            try:
                status, value = next(results)
            except StopIteration:
                break
            except ray.exceptions.RayActorError as exc:
                raise AudioSRError(f"a Ray worker died ({' '.join(str(exc).split())[:200]}); the finished files "
                                   "are saved, run again to continue") from None
            if status == "error":
                raise AudioSRError(value)
            on_result(*value)
        ray.get([a.close.remote() for a in actors], timeout=60)
    finally:
        for a in actors:
            ray.kill(a)


__all__ = ["ray_available", "ray_session", "run_ray"]
