"""Shared fixtures: the tiny preset with deterministic random weights."""

import pytest

from audiosr_model.config import tiny
from audiosr_model.load import random_model, random_state


@pytest.fixture(scope="session")
def tiny_config():
    return tiny()


@pytest.fixture(scope="session")
def tiny_state(tiny_config):
    return random_state(tiny_config, seed=0)


@pytest.fixture(scope="session")
def tiny_net(tiny_config):
    return random_model(tiny_config, seed=0)
