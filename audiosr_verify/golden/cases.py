"""Golden cases: an input file, the ``enhance`` options it runs with, and what it exercises.

The bundled cases are listed in ``golden/regression_inputs/cases.json``
(written by ``tools/regression_inputs.py``). Besides its input, a case says,
as data:

* ``options``: the ``enhance`` options it runs with, by their argparse names
  (``{"mix": "keep", "format": "flac", "steps": 1}``); the rest come from the
  store's run settings (`RunSettings`). `CASE_OPTIONS` maps each to the
  setting it sets;
* ``covers``: the pipeline paths it exercises (`golden.coverage.PATHS`),
  checked against the input where that is cheap (tests/test_golden_coverage.py);
* ``golden``: for a fast path (`FAST_PATH_OPTIONS`: the same output, computed
  faster), the case whose golden it must reproduce within its measured bounds,
  instead of a golden of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from audiosr_model.errors import AudioSRError
from audiosr_verify.golden.paths import PRODUCT_PATHS
from audiosr_verify.util.paths import data_dir
from audiosr_verify.util.safe_open import read_json

CASES_FILE = "cases.json"

# enhance's option (its argparse dest) -> the `RunSettings` field it sets
CASE_OPTIONS = {
    "level": "level_mode", "mix": "mix", "steps": "steps", "guidance": "guidance_scale", "seed": "seed",
    "format": "out_format", "precision": "precision", "attention": "attention", "batch_chunks": "batch_chunks",
    "compile": "compile",
}
# Options that change how fast the output is computed, not what it is (within their measured bounds): a case
# running one is judged against the golden of the case it names in ``golden``, which must run the same input
# with the same other options.
FAST_PATH_OPTIONS = ("precision", "attention", "batch_chunks", "compile")
# What a subject's schema `enhance(waveform, rate, seed, steps, guidance)` can be asked for: it is the
# original's, faithful level on channel 0; every other option is the product's (`enhance_file`).
SCHEMA_OPTIONS = {"steps": None, "seed": None, "guidance": None, "level": "faithful", "mix": "first"}


@dataclass(frozen=True)
class GoldenCase:
    """One regression input (a file under ``golden/regression_inputs``) and what it exercises."""

    name: str
    input: str | None  # file inside the inputs directory; None: a waveform handed over directly, no file
    sample_rate: int | None
    cutoff_hz: float | None  # nominal band limit of the input (for the above-cutoff metrics)
    sha256: str
    kind: str = "synthetic"  # synthetic | recording
    tier: str = "full"  # fast: in the default test tier; full: with -m slow and in the report
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False)  # enhance options, by argparse dest
    covers: tuple[str, ...] = ()  # pipeline paths it exercises (golden.coverage.PATHS)
    golden: str | None = None  # a fast path: judged against this case's golden

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input": self.input, "sample_rate": self.sample_rate,
                "cutoff_hz": self.cutoff_hz, "sha256": self.sha256, "kind": self.kind,
                "tier": self.tier, "description": self.description, "options": dict(self.options),
                "covers": list(self.covers), "golden": self.golden}

    @property
    def golden_name(self) -> str:
        """The case whose golden this one is compared with (its own, unless it is a fast path)."""
        return self.golden or self.name

    def fast_paths(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k in FAST_PATH_OPTIONS}

    def schema_problem(self) -> str | None:
        """Why a subject's schema ``enhance`` (faithful level, channel 0) cannot run this case; None if it can."""
        options = {k: v for k, v in self.options.items()
                   if k not in SCHEMA_OPTIONS or SCHEMA_OPTIONS[k] not in (None, v)}
        product = ([options_text(options)] if options else []) + [p for p in self.covers if p in PRODUCT_PATHS]
        return f"needs the product's {', '.join(product)}" if product else None


def default_inputs_dir() -> Path:
    """The bundled golden inputs and their case index (``golden/regression_inputs``)."""
    return data_dir() / "regression_inputs"


def options_text(options: dict[str, Any]) -> str:
    """``--precision bf16 --compile``: options as they are written on enhance's command line."""
    flag = lambda k: "--" + k.replace("_", "-")  # noqa: E731
    return " ".join(flag(k) if v is True else f"{flag(k)} {v}" for k, v in options.items())


def _case(entry: dict[str, Any]) -> GoldenCase:
    values = {k: entry[k] for k in GoldenCase.__dataclass_fields__ if k in entry}
    values["options"] = dict(values.get("options") or {})
    values["covers"] = tuple(values.get("covers") or ())
    unknown = sorted(set(values["options"]) - set(CASE_OPTIONS))
    if unknown:
        raise ValueError(f"case {values.get('name')!r}: unknown option {', '.join(unknown)} "
                         f"(known: {', '.join(CASE_OPTIONS)})")
    case = GoldenCase(**values)
    if case.golden and not case.fast_paths():
        raise ValueError(f"case {case.name!r} borrows the golden of {case.golden!r} but runs no fast path")
    return case


def load_cases(inputs_dir: str | os.PathLike | None = None) -> list[GoldenCase]:
    """The cases listed in ``<inputs_dir>/cases.json`` (written by tools/regression_inputs.py)."""
    inputs_dir = Path(inputs_dir) if inputs_dir is not None else default_inputs_dir()
    index = inputs_dir / CASES_FILE
    if not os.path.lexists(index):  # present but not a regular file: refused by read_json, not "no cases"
        return []
    try:
        data = read_json(index, "case index", max_bytes=16 << 20)  # bounded, regular file
        cases = [_case(c) for c in data["cases"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise AudioSRError(f"malformed case index: {exc}", index) from None
    names = {c.name for c in cases}
    orphans = [f"{c.name} -> {c.golden}" for c in cases if c.golden and c.golden not in names]
    if orphans:
        raise AudioSRError(f"malformed case index: golden of an unknown case ({', '.join(orphans)})", index)
    return cases


def select_cases(cases: list[GoldenCase], names: Iterable[str] | None) -> list[GoldenCase]:
    """``cases`` restricted to ``names`` (all when empty); unknown names are an error."""
    names = list(names or [])
    if not names:
        return list(cases)
    by_name = {c.name: c for c in cases}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise AudioSRError(f"unknown golden case {', '.join(unknown)}; known: {', '.join(by_name) or 'none'}")
    return [by_name[n] for n in names]


__all__ = ["CASES_FILE", "CASE_OPTIONS", "FAST_PATH_OPTIONS", "SCHEMA_OPTIONS", "GoldenCase", "load_cases",
           "options_text", "select_cases"]
