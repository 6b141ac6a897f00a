"""model/resident.py: the resident pages of memory-mapped weights are handed back, and only those.

Dropping a page of a private file mapping re-reads the file on the next use;
dropping anything else would lose data (a weight written in place) or zero
it (weights built in memory). Both directions are checked: file pages go
(resident set down, values unchanged), written and anonymous pages stay.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosr_model.runtime import resident

pytestmark = pytest.mark.skipif(not resident.available(), reason="needs /proc/self/pagemap and madvise (Linux)")

N = 4 * 1024 * 1024  # float32 elements: 16 MiB


def _rss_file_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    return 0


def _mapped_module(tmp_path) -> tuple[torch.nn.Module, np.ndarray]:
    values = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    path = tmp_path / "weights.bin"
    values.tofile(path)
    weight = torch.from_file(str(path), shared=False, size=N, dtype=torch.float32)  # a private file mapping
    module = torch.nn.Module()
    module.register_buffer("w", weight)
    return module, values


def test_file_pages_are_dropped_and_read_back_unchanged(tmp_path):
    module, values = _mapped_module(tmp_path)
    assert float(module.w.sum()) == pytest.approx(float(values.sum(dtype=np.float64)), rel=1e-4)  # all pages in
    before = _rss_file_kb()
    dropped = resident.drop(module)
    assert dropped >= N * 4 - 2 * resident.PAGE  # every whole page of the tensor
    assert _rss_file_kb() < before - 8 * 1024  # the resident set really went down
    assert np.array_equal(module.w.numpy(), values)  # read again from the file, bit for bit


def test_written_pages_and_anonymous_memory_are_never_dropped(tmp_path):
    module, values = _mapped_module(tmp_path)
    module.w.sum()
    module.w[: N // 2].mul_(2.0)  # in place: copy-on-write, these pages now differ from the file
    dropped = resident.drop(module)
    assert 0 < dropped <= N * 2 + resident.PAGE  # at most the unwritten half
    expected = values.copy()
    expected[: N // 2] *= 2.0
    assert np.array_equal(module.w.numpy(), expected)  # the written half survived

    built = torch.nn.Linear(1024, 1024)  # weights in anonymous memory
    copy = built.weight.detach().clone()
    assert resident.drop(built) == 0
    assert torch.equal(built.weight, copy)
