"""Shared fixtures: the tiny preset with deterministic random weights."""

import pytest

from audiosr_model.config import tiny
from audiosr_model.weights.load import random_model, random_state


@pytest.fixture(scope="session")
def tiny_config():
    return tiny()


@pytest.fixture(scope="session")
def tiny_state(tiny_config):
    return random_state(tiny_config, seed=0)


@pytest.fixture(scope="session")
def tiny_net(tiny_config):
    return random_model(tiny_config, seed=0)


@pytest.fixture(scope="session")
def golden_outputs():
    """``golden_outputs(case, enhance)``: a bundled golden case's output, computed once per torch thread count.

    The regression test (tests/test_golden_regression.py) runs every case at the session's thread count, which
    is one of the counts the portability test (tests/test_golden_portability.py) recomputes them with: the
    second one reuses the first's output instead of enhancing again. ``enhance`` is the calling test's fixture.
    (Under `pytest -n auto --dist loadgroup` both tests are one xdist group, so they share a worker's cache:
    `pytest_collection_modifyitems` below.)
    """
    import torch

    cache = {}

    def output(case, enhance):
        key = (case.name, torch.get_num_threads())
        if key not in cache:
            cache[key] = enhance(case)
        return cache[key]

    return output


_GOLDEN_OUTPUT_TESTS = ("tests/test_golden_regression.py::test_golden_case",
                        "tests/test_golden_portability.py::test_outputs_recomputed_with_other_thread_counts_pass")


def pytest_collection_modifyitems(config, items):
    """The two users of `golden_outputs` on one xdist worker (the mark exists only where xdist is loaded)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.nodeid.startswith(_GOLDEN_OUTPUT_TESTS):
            item.add_marker(pytest.mark.xdist_group("golden_outputs"))
