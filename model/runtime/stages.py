"""The stage hook the product gives the pipeline: wall times (`timings`) and the stage-scoped memory policy
(`memory`).

`audiosr_model.pipeline` marks its stages by calling a hook, ``stages(name,
*networks)``, that returns a context manager (the way k-diffusion's samplers
take ``callback=``): the maths itself imports nothing of this package. The
pipeline's default hook does nothing; `audiosr_model.long_audio` (what
``enhance`` and the goldens run) passes `stage`, which

* times the stage into the active `timings` collector (a no-op without one), and
* for a network stage (``networks`` given: the modules whose weights it runs)
  runs it inside `memory.network_stage(*networks)`: activations from a warm
  heap, handed back with the networks' resident weight pages when it ends (a
  no-op unless `memory.configure()` applied).

The timing encloses the memory stage, so the trim at its end is counted in the
stage that caused it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from audiosr_model.runtime import memory, timings


def stage(name: str, *networks) -> contextlib.AbstractContextManager:
    """Stage ``name`` timed, and with ``networks`` run under the stage-scoped memory policy."""
    if not networks:
        return timings.stage(name)
    return _network_stage(name, networks)


@contextlib.contextmanager
def _network_stage(name: str, networks: tuple) -> Iterator[None]:
    with timings.stage(name), memory.network_stage(*networks):
        yield


__all__ = ["stage"]
