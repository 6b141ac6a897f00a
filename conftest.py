"""Top-level pytest configuration: hypothesis profiles and the harness's pytest plugin.

Profiles: `ci` (derandomised, bounded examples; the default under CI=true) and
`dev` (more examples). Select with HYPOTHESIS_PROFILE=dev.

The plugin (`audiosr_verify.testing.pytest_plugin`: --golden-update, golden_check, ...)
is registered by its pytest11 entry point when the package is installed; from a
plain source tree (PYTHONPATH=.) this file registers it. Entry-point plugins are
imported before this conftest, so an already imported plugin module means it is
registered: naming it again would make pytest fail ("already registered").
"""

import os
import sys

from hypothesis import HealthCheck, settings

if "audiosr_verify.testing.pytest_plugin" not in sys.modules:
    pytest_plugins = ["audiosr_verify.testing.pytest_plugin"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _split_threads_between_xdist_workers() -> None:
    """Under pytest-xdist (`pytest -n auto`) each worker gets its share of the cores.

    Without this every worker's torch (and its OpenMP pool) takes all cores and the
    workers oversubscribe them. Verdicts do not depend on the thread count (see the
    docs/golden-verdicts.md); tests that need a given count set it themselves.
    An explicit OMP_NUM_THREADS wins.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers or "OMP_NUM_THREADS" in os.environ:
        return
    share = max(1, (os.cpu_count() or 1) // max(1, int(workers)))
    os.environ["OMP_NUM_THREADS"] = str(share)  # before torch is imported; subprocesses inherit it
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(share)


_split_threads_between_xdist_workers()


# Modules that share the session's check of the reference subject (minutes of CPU): one worker
# computes it once for both under `pytest -n auto --dist loadgroup` (the README's test command).
_REFERENCE_CHECK_MODULES = ("tests/test_functional_parity.py", "audiosr_verify/testing/suite/test_subject.py")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.nodeid.startswith(_REFERENCE_CHECK_MODULES):
            item.add_marker(pytest.mark.xdist_group("reference_check"))
