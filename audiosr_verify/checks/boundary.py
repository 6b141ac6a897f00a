"""What a subject hands back, checked at the boundary before the harness touches it.

A subject is somebody else's code: a stage may return a string, ``None``, an
object array, a 0-d scalar, an empty array or NaNs. Without this check such a
value travelled into the comparison code and ended in a traceback (or, for an
empty array, in a comparison of nothing). `check_outputs` turns a stage's
return value into ``{output name: value}`` when every output is what the
schema (`audiosr_verify.schema`) declares, and otherwise raises `BadOutput`
with one line naming what came back and what was expected; the stage check
records that as a failing row of the stage, never as a pass.

Shapes are checked as far as the harness relies on them: the rank after
dropping size-1 axes may not exceed the schema's rank (``[1, 1, N]`` for a
waveform ``[N]`` is accepted, as the original returns it so); whether the sizes
equal the original's is the comparison's business (a mismatch fails there,
with both shapes in the note).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audiosr_verify import schema


class BadOutput(Exception):
    """A stage returned something that is not what the schema declares."""


def describe(value: Any) -> str:
    """A short, one-line description of what came back (never the value itself: it may be huge)."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if hasattr(value, "detach") and hasattr(value, "shape"):
        return f"a torch tensor {list(value.shape)} of {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"a numpy array {list(value.shape)} of {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:6]}"
    return f"a {type(value).__name__}"


def _rank(shape: str) -> int | None:
    """The rank a symbolic shape declares (``[T, 256]`` -> 2), None for scalars and lists of arrays."""
    if not shape.startswith("["):
        return None
    inner = shape.strip("[]").strip()
    return 0 if not inner else inner.count(",") + 1


def _as_numpy(value: Any) -> np.ndarray | None:
    """A numeric numpy view of an array-like, None when it is not one (strings, None, objects...)."""
    if hasattr(value, "detach") and hasattr(value, "dtype"):  # a torch tensor (any device and dtype)
        import torch

        t = value.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.is_complex() or t.dtype == torch.bool:
            return t.numpy()  # refused below with its dtype named
        return t.numpy()
    if isinstance(value, (str, bytes, dict)) or value is None:
        return None
    try:
        arr = np.asarray(value)
    except Exception:  # a ragged list, an object that refuses conversion
        return None
    return arr


def _array(spec: schema.TensorSpec, value: Any, what: str) -> Any:
    arr = _as_numpy(value)
    want = f"an array {spec.shape} of {spec.dtype}"
    if arr is None or arr.dtype.kind not in "biufc":
        raise BadOutput(f"{what} is {describe(value)}; expected {want}")
    if arr.dtype.kind == "b" or arr.dtype.kind == "c":
        raise BadOutput(f"{what} is {describe(value)} ({arr.dtype}); expected {want}")
    if spec.dtype.startswith("int"):
        if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
            raise BadOutput(f"{what} holds non-integral values ({describe(value)}); expected {want}")
    elif arr.dtype.kind not in "f":
        raise BadOutput(f"{what} is {describe(value)}; expected {want} (floating point)")
    if arr.ndim == 0:
        raise BadOutput(f"{what} is a 0-d scalar; expected {want}")
    if arr.size == 0:
        raise BadOutput(f"{what} is empty ({describe(value)}); expected {want}")
    rank = _rank(spec.shape)
    kept = [d for d in arr.shape if d != 1] or [1]
    if rank and len(kept) > rank:
        raise BadOutput(f"{what} is {describe(value)}; expected rank {rank} ({spec.shape})")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise BadOutput(f"{what} has {bad} NaN or infinite value(s) of {arr.size} ({describe(value)})")
    return value


def _integer(spec: schema.TensorSpec, value: Any, what: str) -> int:
    arr = _as_numpy(value)
    if isinstance(value, bool) or arr is None or arr.size != 1 or arr.dtype.kind not in "iuf":
        raise BadOutput(f"{what} is {describe(value)}; expected a whole number")
    x = arr.reshape(()).item()
    if isinstance(x, float) and (not math.isfinite(x) or x != round(x)):
        raise BadOutput(f"{what} is {x!r}; expected a whole number")
    return int(x)


def _number(spec: schema.TensorSpec, value: Any, what: str) -> float:
    arr = _as_numpy(value)
    if isinstance(value, bool) or arr is None or arr.size != 1 or arr.dtype.kind not in "iuf":
        raise BadOutput(f"{what} is {describe(value)}; expected a finite number")
    x = float(arr.reshape(()).item())
    if not math.isfinite(x):
        raise BadOutput(f"{what} is {x!r}; expected a finite number")
    return x


def _text(spec: schema.TensorSpec, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadOutput(f"{what} is {describe(value)}; expected a string")
    return value


def _draws(spec: schema.TensorSpec, value: Any, what: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise BadOutput(f"{what} is {describe(value)}; expected a list of arrays")
    item = schema.TensorSpec(spec.name, "[1, 16, T/8, 32]")
    return [_array(item, v, f"{what}[{i}]") for i, v in enumerate(value)]


def _checker(spec: schema.TensorSpec):
    if spec.dtype == "str":
        return _text
    if spec.shape == "int":
        return _integer
    if spec.shape == "float":
        return _number
    if spec.shape.startswith("count x"):
        return _draws
    return _array


def check_outputs(stage_name: str, value: Any) -> dict[str, Any]:
    """``{output name: value}`` of a stage's return value, every output as the schema declares it."""
    st = schema.stage(stage_name)
    expected = ", ".join(t.name for t in st.outputs if t.name not in st.optional_outputs)
    if value is None:
        raise BadOutput(f"returned None; expected {expected}")
    names = [t.name for t in st.outputs]
    if isinstance(value, (tuple, list)) and len(names) > 1 and len(value) > len(names):
        raise BadOutput(f"returned {describe(value)}; expected at most {len(names)} ({', '.join(names)})")
    out = schema.named_outputs(stage_name, value)
    for spec in st.outputs:
        got = out.get(spec.name)
        if got is None:
            if spec.name in st.optional_outputs:
                continue
            what = "no output" if spec.name not in out else "None for"
            raise BadOutput(f"returned {what} {spec.name!r} ({describe(value)}); expected {expected}")
        out[spec.name] = _checker(spec)(spec, got, f"output {spec.name!r}")
    return out


__all__ = ["BadOutput", "check_outputs", "describe"]
