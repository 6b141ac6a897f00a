"""Per-stage wall times of a run (`enhance --timings`), at no cost when nobody asks.

Stages are marked with ``with timings.stage("vocoder"):`` (the pipeline's through its
stage hook, `audiosr_model.runtime.stages.stage`). When
no collector is active (the default) that is a shared no-op context; inside
``with timings.collecting(Timings()) as t:`` every stage adds its wall time
(``time.perf_counter``) to ``t``. On CUDA the device is synchronised at each
stage boundary while collecting, so the time lands on the stage that spent it.

Stages (in pipeline order): ``load``, ``read_resample``, ``features`` (padding,
mel/STFT, cutoff, low-pass and its mel), ``condition_encode``, ``ddim`` (all
steps; each step also counted under ``ddim_step``, whose mean is the time of
one guided UNet call plus its DDIM update), ``vae_decode``, ``vocoder``,
``postprocess`` (mel and STFT replacement, output level), ``write``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

STAGES = ("load", "read_resample", "features", "condition_encode", "ddim", "ddim_step", "compile", "vae_decode",
          "vocoder", "postprocess", "write")

_active: contextvars.ContextVar[Timings | None] = contextvars.ContextVar("audiosr_timings", default=None)


def _sync() -> None:
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


@dataclass
class Timings:
    """Total seconds and number of calls per stage."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)
        self.calls[name] = self.calls.get(name, 0) + 1

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        _sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            _sync()
            self.add(name, time.perf_counter() - t0)

    def ordered(self) -> list[str]:
        known = [s for s in STAGES if s in self.seconds]
        return known + sorted(s for s in self.seconds if s not in STAGES)

    def to_dict(self) -> dict:
        stages = {}
        for name in self.ordered():
            n = self.calls[name]
            stages[name] = {"seconds": round(self.seconds[name], 6), "calls": n,
                            "mean_s": round(self.seconds[name] / n, 6)}
        return {"stages": stages, **self.extra}

    def write_json(self, path) -> None:
        from pathlib import Path

        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def lines(self) -> list[str]:
        out = [f"{'stage':<18}{'seconds':>10}{'calls':>7}{'mean s':>10}"]
        for name in self.ordered():
            n = self.calls[name]
            out.append(f"{name:<18}{self.seconds[name]:>10.3f}{n:>7}{self.seconds[name] / n:>10.3f}")
        return out


def active() -> Timings | None:
    return _active.get()


@contextlib.contextmanager
def collecting(timings: Timings) -> Iterator[Timings]:
    """Make ``timings`` the collector of every `stage` in this context."""
    token = _active.set(timings)
    try:
        yield timings
    finally:
        _active.reset(token)


_NOOP = contextlib.nullcontext()


def stage(name: str):
    """A context manager timing stage ``name`` into the active collector (no-op without one)."""
    t = _active.get()
    return _NOOP if t is None else t.stage(name)


def add(name: str, seconds: float) -> None:
    t = _active.get()
    if t is not None:
        t.add(name, seconds)


def each(name: str, iterable: Iterable[T]) -> Iterator[T]:
    """Yield from ``iterable``, timing the production of every item as one call of stage ``name``."""
    t = _active.get()
    if t is None:
        yield from iterable
        return
    it = iter(iterable)
    while True:
        _sync()
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        _sync()
        t.add(name, time.perf_counter() - t0)
        yield item


__all__ = ["STAGES", "Timings", "active", "add", "collecting", "each", "stage"]
