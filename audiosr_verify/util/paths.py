"""Where the harness's data lives: the repository's ``golden/`` folder, shipped in the wheel.

``golden/`` stays at the top of the repository; packaging maps it to the
import name ``audiosr_verify.data`` (pyproject ``package-dir``), so the same
lookup finds it in a source checkout, an editable install and a wheel.
``$AUDIOSR_VERIFY_DATA`` points the harness at another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from audiosr_model.errors import AudioSRError

DATA_ENV = "AUDIOSR_VERIFY_DATA"


def data_dir() -> Path:
    """The data folder (manifests/, inputs/, oracle/, regression_inputs/, regression/)."""
    override = os.environ.get(DATA_ENV)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise AudioSRError(f"${DATA_ENV} is not a directory", path)
        return path
    import importlib.util

    spec = importlib.util.find_spec("audiosr_verify.data")
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent
    source = Path(__file__).resolve().parents[2] / "golden"  # a plain source tree on PYTHONPATH
    if source.is_dir():
        return source
    raise AudioSRError(f"the harness's data is not installed; set ${DATA_ENV} to a copy of golden/")


def data_path(*parts: str) -> Path:
    return data_dir().joinpath(*parts)


__all__ = ["DATA_ENV", "data_dir", "data_path"]
