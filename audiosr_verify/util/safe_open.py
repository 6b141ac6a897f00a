"""The one way the harness opens an input file, and type-checked JSON for its own files.

`open_input` (and `read_bytes`, `read_text`, `read_json`) are the model
package's routine (``audiosr_model.io.safe_open``), re-exported: regular files
only (a named pipe or ``/dev/zero`` is refused before a byte is read), sizes
bounded before reading, one-line errors naming the file.

`read_json_as(path, what, shape)` adds a check of the document's shape: a
golden ``meta.json`` that is a list, a string where an object belongs, or a
tolerance that is not a number is reported as one line naming the file and
the field, instead of surfacing later as a traceback. Shapes are small
nested descriptions (see `Obj`, `MapOf`, `ListOf`, `Number`); the handful of
files the harness reads do not justify a JSON-Schema dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audiosr_model.errors import AudioSRError
from audiosr_model.io.safe_open import (
    MAX_JSON_BYTES,
    BoundedReader,
    check_input,
    finite_number,
    open_input,
    parse_json,
    read_bytes,
    read_json,
    read_text,
)

MAX_GOLDEN_JSON_BYTES = 16 << 20  # meta.json / tolerances.json / cases.json: a few kB in practice
MAX_GOLDEN_WAVEFORM_BYTES = 1 << 30  # a golden output: 1.2 MB for 5 s; 1 GB is over an hour of float32


class Number:
    """A finite real number (not a bool)."""


class Text:
    """A string."""


class Anything:
    """Any JSON value."""


@dataclass(frozen=True)
class Obj:
    """A JSON object with known fields (each optional unless in ``required``).

    Other fields are allowed unless ``closed``; ``nonempty`` asks for at least one field.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    nullable: bool = False
    closed: bool = False
    nonempty: bool = False


@dataclass(frozen=True)
class MapOf:
    """A JSON object whose every value has one shape."""

    value: Any
    nullable: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Any
    nullable: bool = False


@dataclass(frozen=True)
class Nullable:
    """``shape`` or null."""

    shape: Any


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_shape(value: Any, shape: Any, where: str = "") -> str | None:
    """None if ``value`` fits ``shape``, else what is wrong (with the field's dotted path)."""
    here = where or "the document"
    if shape is Anything:
        return None
    if isinstance(shape, Nullable):
        return None if value is None else check_shape(value, shape.shape, where)
    if shape is Number:
        return None if finite_number(value) else f"{here} must be a finite number, not {_type_name(value)}"
    if shape is Text:
        return None if isinstance(value, str) else f"{here} must be a string, not {_type_name(value)}"
    if isinstance(shape, (Obj, MapOf, ListOf)) and value is None and shape.nullable:
        return None
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return f"{here} must be a list, not {_type_name(value)}"
        for i, item in enumerate(value):
            problem = check_shape(item, shape.item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(shape, (Obj, MapOf)):
        if not isinstance(value, dict):
            return f"{here} must be an object, not {_type_name(value)}"
        if isinstance(shape, Obj):
            missing = [k for k in shape.required if k not in value]
            if missing:
                return f"{here} lacks the field {missing[0]!r}"
            extra = [k for k in value if k not in shape.fields] if shape.closed else []
            if extra:
                return f"{here} has an unknown field {extra[0]!r} (expected {', '.join(shape.fields)})"
            if shape.nonempty and not value:
                return f"{here} must not be empty (expected {' or '.join(shape.fields)})"
            items = [(k, value[k], s) for k, s in shape.fields.items() if k in value]
        else:
            items = [(k, v, shape.value) for k, v in value.items()]
        for key, item, sub in items:
            problem = check_shape(item, sub, f"{where}.{key}" if where else str(key))
            if problem:
                return problem
        return None
    raise TypeError(f"unknown shape {shape!r}")


def read_json_as(path: Any, what: str, shape: Any, *, max_bytes: int = MAX_GOLDEN_JSON_BYTES) -> Any:
    """A bounded JSON document that must fit ``shape``; otherwise one line naming the file and field."""
    data = read_json(path, what, max_bytes=max_bytes)
    problem = check_shape(data, shape)
    if problem:
        raise AudioSRError(f"malformed {what}: {problem}", path)
    return data


# ---- the harness's own JSON files

BOUND = Obj({"max": Number, "min": Number}, closed=True, nonempty=True)
TOLERANCE_LAYER = MapOf(Nullable(BOUND))  # metric -> {"max": x} | {"min": x} | null (drops the check)
TOLERANCES_SHAPE = Obj({"default": Nullable(TOLERANCE_LAYER), "cases": Nullable(MapOf(Nullable(TOLERANCE_LAYER)))})
GOLDEN_META_SHAPE = Obj({
    "case": Text,
    "checkpoint_key": Text,
    "input": Obj({"file": Nullable(Text), "sha256": Nullable(Text)}),
    "model": Obj({}),
    "run": Obj({}),
    "output": Obj({"samples": Number}),
    "versions": MapOf(Anything),
    "metrics": Obj({}),
    "tolerances": TOLERANCE_LAYER,
    "tolerance_overrides": Nullable(TOLERANCE_LAYER),
})


__all__ = [
    "Anything", "BOUND", "BoundedReader", "GOLDEN_META_SHAPE", "ListOf", "MAX_GOLDEN_JSON_BYTES",
    "MAX_GOLDEN_WAVEFORM_BYTES", "MAX_JSON_BYTES", "MapOf", "Nullable", "Number", "Obj", "TOLERANCES_SHAPE",
    "TOLERANCE_LAYER", "Text", "check_input", "check_shape", "finite_number", "open_input", "parse_json",
    "read_bytes", "read_json", "read_json_as", "read_text",
]
