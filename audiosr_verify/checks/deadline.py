"""A time bound on each stage call of a subject: one port that never returns must not block a CI job.

`bounded(seconds, stage)` arms a real-time interval timer around a call and,
when it fires, raises `StageTimeout` in the calling thread (the way
pytest-timeout's ``signal`` method does). It derives from BaseException so that
a subject's own ``except Exception`` cannot swallow it. It interrupts Python
code and blocking system calls (``time.sleep``, a lock, a pipe read); a C
extension that never returns to the interpreter cannot be interrupted from
inside the process, which no in-process bound can do.

The bound is a whole-call wall-clock limit; it only applies in the main thread
of the process (where POSIX delivers SIGALRM's handler); elsewhere calls run
unbounded and `available()` says so.

Default bounds (`default_seconds`) scale with the stage's work: a floor for the
DSP stages, and for the network stages a figure proportional to the number of
weights the fixture set was made with (its metadata records it) and to the
window length, capped at `CAP_SECONDS`. On the tiny fixtures the reference's
slowest call of any stage takes about 2 s on 2 cores (``check --json`` records
each stage's slowest call and the bound it ran under), so the bounds leave 50x
and more. The scaling by weights is deliberately generous (a full-size network
does not take 120x a tiny one's time per weight); the bound is there to end a
hang, not to judge speed, and ``--stage-timeout`` sets one figure for all.
"""

from __future__ import annotations

import contextlib
import signal
import threading

# Seconds per stage call of the tiny configuration over one 5.12 s window (512 frames). The reference
# takes at most ~2 s for any of them on 2 cores (the UNet-heavy ddim_step, enhance ~6 s); the floor
# keeps a loaded CI machine from failing a slow but correct port.
FLOOR_SECONDS = 120.0
CAP_SECONDS = 1800.0  # one call never gets more than 30 minutes by default (a CI job has 90)
TINY_WEIGHTS = 6_260_971  # elements of the tiny preset's shared weights (golden/oracle/tiny metadata)
NETWORK_STAGES = ("condition_encode", "unet", "ddim_step", "vae_decode", "vocoder", "enhance")
# Per 512 frames and per tiny-sized network: the generous budget of one call (tiny reference: 0.1-2 s).
NETWORK_SECONDS = {"condition_encode": 60.0, "unet": 60.0, "ddim_step": 120.0, "vae_decode": 60.0,
                   "vocoder": 120.0, "enhance": 300.0}


class StageTimeout(BaseException):
    """A stage call ran past its bound (BaseException: a subject's ``except Exception`` must not hide it)."""

    def __init__(self, stage: str, seconds: float):
        super().__init__(f"{stage} did not return within {seconds:g} s (the stage time bound; "
                         f"--stage-timeout changes it)")
        self.stage, self.seconds = stage, seconds


def available() -> bool:
    """Whether calls made from this thread can be bounded."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def bounded(seconds: float | None, stage: str):
    """Raise `StageTimeout` in this thread if the block runs longer than ``seconds`` (None or 0: no bound)."""
    if not seconds or not available():
        yield
        return

    def fire(signum, frame):
        raise StageTimeout(stage, seconds)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def default_seconds(stage: str, weights: int | None = None, frames: int | None = None) -> float:
    """The default bound of one call of ``stage`` for a network of ``weights`` elements over ``frames``."""
    if stage not in NETWORK_SECONDS:
        return min(CAP_SECONDS, FLOOR_SECONDS * max(1.0, (frames or 512) / 512))
    size = max(1.0, (weights or TINY_WEIGHTS) / TINY_WEIGHTS)
    length = max(1.0, (frames or 512) / 512)
    return min(CAP_SECONDS, max(FLOOR_SECONDS, NETWORK_SECONDS[stage] * size * length))


__all__ = ["StageTimeout", "available", "bounded", "default_seconds"]
