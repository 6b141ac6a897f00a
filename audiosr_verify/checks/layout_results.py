"""The result types of state-dict parity (`checks.state_dict`): what became of every key, and why.

Data only (dataclasses with ``to_dict()``), rendered by `report.parity` and written by
``parity --json``: a `ParityResult` classifies every key of a checkpoint against our network, a
`LayoutResult` a subject's layout against the original's manifest (the schema's ``state_dict`` stage).
Keys are grouped by `checks.layout_keys.module_group`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from audiosr_verify.checks.layout_keys import fold_weight_norm, module_group

SCHEMA_VERSION = 1
# Same order as model.checkpoint.STATUSES (kept here so rendering needs no torch import).
STATUSES = ("matched", "ignored", "missing", "unexpected", "shape_mismatch", "dtype_mismatch")
ACCOUNTED = ("matched", "ignored")


@dataclass(frozen=True)
class KeyEntry:
    """One key of the file (or of our model, when missing) and what became of it."""

    key: str
    status: str
    expected_shape: tuple[int, ...] | None
    actual_shape: tuple[int, ...] | None
    dtype: str | None  # the file's dtype (our model's for missing keys)
    expected_dtype: str | None
    group: str | None  # declared ignore group (ema, clap, ...), None unless ignored
    reason: str | None
    module: str  # module prefix used to group the report (module_group)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "expected_shape": _list(self.expected_shape),
            "actual_shape": _list(self.actual_shape),
            "dtype": self.dtype,
            "expected_dtype": self.expected_dtype,
            "group": self.group,
            "reason": self.reason,
            "module": self.module,
        }


@dataclass
class GroupSummary:
    """Keys of one module prefix: how many, their size in the file, and their statuses."""

    name: str
    keys: int = 0
    parameters: int = 0  # elements of the file's tensors in this group
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})

    @property
    def ok(self) -> bool:
        return all(self.counts[s] == 0 for s in STATUSES if s not in ACCOUNTED)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "keys": self.keys, "parameters": self.parameters,
                "bytes": self.bytes, "counts": dict(self.counts), "ok": self.ok}


@dataclass(frozen=True)
class Variant:
    """A recognised way real checkpoints differ (EMA stripped, newer transformers, ...)."""

    name: str
    value: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "detail": self.detail}


@dataclass
class SourceInfo:
    path: str
    format: str  # "torch-zip" | "safetensors" | "manifest"
    size_bytes: int
    sha256: str | None = None
    wrapper: str | None = None  # "state_dict" when nested under it
    stripped_prefix: str | None = None
    tensors: int = 0  # keys in the file
    parameters: int = 0  # elements over all tensors in the file
    tensor_bytes: int = 0
    extras: dict[str, str] = field(default_factory=dict)  # non-tensor entries by type name
    origin: dict[str, Any] | None = None  # a manifest's own "source" description

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "format": self.format, "size_bytes": self.size_bytes,
            "sha256": self.sha256, "wrapper": self.wrapper, "stripped_prefix": self.stripped_prefix,
            "tensors": self.tensors, "parameters": self.parameters, "tensor_bytes": self.tensor_bytes,
            "extras": dict(self.extras), "origin": self.origin,
        }


@dataclass(frozen=True)
class DuplicateTensors:
    """Keys holding byte-identical tensors of one shape and dtype."""

    sha256: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # of one copy
    keys: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "shape": list(self.shape), "dtype": self.dtype,
                "nbytes": self.nbytes, "keys": list(self.keys)}


@dataclass
class ReferenceDiff:
    """Key-set comparison of the file with a reference manifest (informational)."""

    path: str
    origin: dict[str, Any] | None
    reference_keys: int
    file_keys: int
    only_in_reference: list[str]
    only_in_file: list[str]
    shape_differs: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # key, reference, file
    dtype_differs: list[tuple[str, str, str]]  # key, reference, file
    notes: list[str]

    @property
    def identical(self) -> bool:
        return not (self.only_in_reference or self.only_in_file or self.shape_differs or self.dtype_differs)

    def unexplained(self) -> tuple[list[str], list[str]]:
        """Keys only on one side that no note summarises (EMA, CLAP, weight-norm halves)."""
        _, origin = fold_weight_norm({k: ((), "float32") for k in self.only_in_file})
        halves = {h for t, pair in origin.items() if t in self.only_in_reference for h in pair}

        def summarised(key: str) -> bool:
            return key.startswith(("model_ema.", "clap.")) or key in halves or key in origin

        return ([k for k in self.only_in_reference if not summarised(k)],
                [k for k in self.only_in_file if not summarised(k)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "origin": self.origin, "identical": self.identical,
            "reference_keys": self.reference_keys, "file_keys": self.file_keys,
            "only_in_reference": list(self.only_in_reference), "only_in_file": list(self.only_in_file),
            "shape_differs": [{"key": k, "reference_shape": list(r), "file_shape": list(a)}
                              for k, r, a in self.shape_differs],
            "dtype_differs": [{"key": k, "reference_dtype": r, "file_dtype": a} for k, r, a in self.dtype_differs],
            "notes": list(self.notes),
            "unexplained_only_in_reference": self.unexplained()[0],
            "unexplained_only_in_file": self.unexplained()[1],
        }


@dataclass
class ParityResult:
    source: SourceInfo
    preset: str
    model_keys: int
    keys: list[KeyEntry]
    variants: list[Variant]
    groups: list[GroupSummary]
    hashed: bool = False
    duplicates: list[DuplicateTensors] | None = None  # None unless hashed (and the file has data)
    reference: ReferenceDiff | None = None
    layout: dict[str, Any] | None = None  # ModelLayout.to_dict(): where our side came from
    schema_version: int = SCHEMA_VERSION

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(k.status for k in self.keys)
        return {s: c.get(s, 0) for s in STATUSES}

    @property
    def ok(self) -> bool:
        """Nothing unaccounted: every key is matched or ignored for a declared reason."""
        return all(k.status in ACCOUNTED for k in self.keys)

    def problems(self) -> list[KeyEntry]:
        return [k for k in self.keys if k.status not in ACCOUNTED]

    def by_status(self, status: str) -> list[KeyEntry]:
        return [k for k in self.keys if k.status == status]

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def summary_line(self) -> str:
        c = self.counts
        verdict = "OK" if self.ok else "FAILED"
        parts = [f"{c[s]:,} {s.replace('_', ' ')}" for s in STATUSES if c[s] or s in ACCOUNTED]
        return (f"parity {verdict}: {self.source.tensors:,} file keys vs {self.model_keys:,} model keys "
                f"({self.preset}): " + ", ".join(parts))

    def duplicate_modules(self) -> list[dict[str, Any]]:
        """Duplicates summed per set of module groups (e.g. the two VAE encoders)."""
        if not self.duplicates:
            return []
        acc: dict[tuple[str, ...], dict[str, Any]] = {}
        for d in self.duplicates:
            mods = tuple(dict.fromkeys(module_group(k) for k in d.keys))
            entry = acc.setdefault(mods, {"modules": list(mods), "tensors": 0, "redundant_bytes": 0})
            entry["tensors"] += 1
            entry["redundant_bytes"] += d.nbytes * (len(d.keys) - 1)
        return sorted(acc.values(), key=lambda e: -e["redundant_bytes"])

    def to_dict(self) -> dict[str, Any]:
        dup = None
        if self.duplicates is not None:
            dup = {
                "groups": [d.to_dict() for d in self.duplicates],
                "by_module": self.duplicate_modules(),
                "redundant_bytes": sum(d.nbytes * (len(d.keys) - 1) for d in self.duplicates),
            }
        return {
            "schema_version": self.schema_version,
            "ok": self.ok,
            "summary": self.counts,
            "preset": self.preset,
            "source": self.source.to_dict(),
            "totals": {"file_keys": self.source.tensors, "model_keys": self.model_keys,
                       "report_entries": len(self.keys)},
            "variants": [v.to_dict() for v in self.variants],
            "groups": [g.to_dict() for g in self.groups],
            "keys": [k.to_dict() for k in self.keys],
            "hashed": self.hashed,
            "duplicates": dup,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "model_layout": self.layout,
        }


def _list(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)


@dataclass
class LayoutResult:
    """A subject's state-dict layout against the original's manifest (the schema's ``state_dict`` stage).

    Every original key inference uses must be in the subject's layout with the
    same shape (``missing`` / ``shape_mismatch`` otherwise); keys of the groups
    inference never uses (schema.IGNORED_*) and the schedule buffers the original
    computes may be absent; a key the original does not have is ``unexpected``.
    Parameter-free modules add no key, so they can never fix a "missing key".
    """

    manifest: str
    matched: int = 0
    ignored: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary_line(self) -> str:
        head = f"{self.matched} keys match the original's layout, {self.ignored} unused by inference"
        bad = [f"{len(v)} {k.replace('_', ' ')}" for k, v in (("missing", self.missing), ("unexpected", self.unexpected),
                                                            ("shape_mismatch", self.shape_mismatch)) if v]
        return head + ("; " + ", ".join(bad) if bad else "")

    def to_dict(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "ok": self.ok, "matched": self.matched, "ignored": self.ignored,
                "missing": self.missing, "unexpected": self.unexpected, "shape_mismatch": self.shape_mismatch,
                "summary": self.summary_line()}


__all__ = ["ACCOUNTED", "SCHEMA_VERSION", "STATUSES", "DuplicateTensors", "GroupSummary", "KeyEntry", "LayoutResult",
           "ParityResult", "ReferenceDiff", "SourceInfo", "Variant"]
