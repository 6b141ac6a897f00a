"""Signals during a run: SIGTERM and SIGHUP stop it like SIGINT, and never in the middle of a rename.

:func:`install_signal_handlers` (the CLI calls it) makes SIGTERM and SIGHUP
raise ``KeyboardInterrupt`` exactly like SIGINT, so the same cleanup runs;
:func:`critical` defers a signal while a rename and its cleanup run, and a
second signal during cleanup is ignored; :func:`interruptible` re-opens a
stretch of long work inside a critical block. `audiosr_model.io.publish`
uses them around every commit.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Callable, Iterator

_signal_state = {"depth": 0, "pending": False, "received": None, "installed": 0}


def _on_signal(signum, frame) -> None:
    if _signal_state["received"] is not None:
        return  # already stopping: let the cleanup that is running finish
    _signal_state["received"] = signum
    if _signal_state["depth"]:
        _signal_state["pending"] = True  # a rename is in progress: raise when it is done
        return
    raise KeyboardInterrupt


def install_signal_handlers() -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (deferred inside :func:`critical`).

    Returns a function that restores the previous handlers. Only from the main
    thread (Python delivers signals there); a no-op elsewhere.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, _on_signal)
    _signal_state.update(depth=0, pending=False, received=None)
    _signal_state["installed"] += 1

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        _signal_state["installed"] -= 1
        if not _signal_state["installed"]:  # the run is over: what it received must not stop a later one
            _signal_state.update(depth=0, pending=False, received=None)

    return restore


def received_signal() -> int | None:
    """The signal that interrupted the run (for the exit status 128 + N), if any."""
    return _signal_state["received"]


class critical:
    """Defer SIGINT/SIGTERM/SIGHUP (as handled by :func:`install_signal_handlers`) until the block ends.

    A signal that arrives inside is raised as KeyboardInterrupt when the
    outermost block ends normally; if the block ends with an exception, that
    exception goes on (the run is stopping anyway).
    """

    def __enter__(self) -> None:
        _signal_state["depth"] += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        _signal_state["depth"] -= 1
        if _signal_state["depth"] == 0 and _signal_state["pending"] and exc_type is None:
            _signal_state["pending"] = False
            raise KeyboardInterrupt
        # ending with an exception: a pending signal stays pending, so that a caller who handles that
        # exception still stops at the next critical block or commit point (it is never lost)


def _raise_if_signalled() -> None:
    """At a commit point: a run that received a signal never publishes.

    The KeyboardInterrupt a signal raises can be lost on its way out (raised
    inside a finaliser, or caught by code run during the long work); the
    signal itself is recorded, and this turns it back into the interruption.
    """
    if _signal_state["installed"] and _signal_state["received"] is not None:
        _signal_state["pending"] = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside :func:`critical`, a stretch of long work that signals may interrupt."""
    depth = _signal_state["depth"]
    _signal_state["depth"] = 0
    try:
        if _signal_state["pending"]:
            _signal_state["pending"] = False
            raise KeyboardInterrupt
        yield
    finally:
        _signal_state["depth"] = depth


__all__ = ["critical", "install_signal_handlers", "interruptible", "received_signal"]
