"""State-dict parity: every key of a checkpoint accounted for against our model.

`run_parity(source)` lists a checkpoint lazily (no tensor data, no pickle
code: `model.checkpoint_reader.inspect_checkpoint`), or reads a key manifest
(JSON), and classifies every key of the file and every parameter/buffer of our
network (`model_specs(skeleton(config))`) with `model.checkpoint.classify_keys`:
matched, ignored (declared group, with reason), missing, unexpected,
shape_mismatch, dtype_mismatch. It predicts exactly what `model.load.load_model`
will accept: weight-norm pairs (``X.weight_g`` + ``X.weight_v``) are folded into
``X.weight`` first, as the loader does, and ``module.``/``_orig_mod.`` prefixes
and a ``{"state_dict": ...}`` wrapper are removed by the reader.

With ``hash=True`` tensor data is read to find identical tensors (e.g. the two
VAE encoders) and the file's sha256. With ``manifest=`` the file's key set is
also compared with a reference manifest (for example the original layout);
that comparison is informational and does not change ``ok``.

Nothing here prints; the result is dataclasses with ``to_dict()``, rendered by
`audiosr_verify.report.parity`.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from audiosr_model.weights.checkpoint_reader import (
    _ITEMSIZE,
    CheckpointListing,
    _strip_prefixes,
    inspect_checkpoint,
    sha256_file,
    tensor_digests,
)
from audiosr_model.errors import AudioSRError
from audiosr_verify.oracle.manifests import MANIFEST_SCHEMA_VERSION, Manifest, read_manifest  # noqa: F401 (moved)
from audiosr_verify.util.cache import layout_cache_dir  # noqa: F401 (re-exported: its callers' old home)

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_SCHEMA_VERSION",
    "STATUSES",
    "DuplicateTensors",
    "GroupSummary",
    "KeyEntry",
    "ParityResult",
    "ReferenceDiff",
    "SourceInfo",
    "Variant",
    "build_manifest",
    "ModelLayout",
    "expected_layout",
    "layout_cache_dir",
    "model_layout",
    "fold_weight_norm",
    "module_group",
    "read_manifest",
    "run_parity",
]

SCHEMA_VERSION = 1
# Same order as model.checkpoint.STATUSES (kept here so rendering needs no torch import).
STATUSES = ("matched", "ignored", "missing", "unexpected", "shape_mismatch", "dtype_mismatch")
ACCOUNTED = ("matched", "ignored")
SCHEDULE_GROUP = "(schedule & scalars)"  # top-level buffers: betas, alphas_cumprod, ..., scale_factor, logvar

# torch.nn.utils.weight_norm and torch.nn.utils.parametrizations.weight_norm spellings
WEIGHT_NORM_SUFFIXES = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)
POSITION_IDS_SUFFIX = ".embeddings.position_ids"  # clap.model.text_branch.embeddings.position_ids

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Spec = tuple[tuple[int, ...], str]


# --------------------------------------------------------------------------
# Result model


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


# --------------------------------------------------------------------------
# Helpers


def module_group(key: str) -> str:
    """The module prefix a key is reported under.

    ``model.diffusion_model``, ``first_stage_model.decoder``,
    ``cond_stage_models.0.vae.encoder``, ``clap.model.audio_branch`` (other
    CLAP keys: ``clap``),
    ``model_ema`` (its keys have their dots removed), and one group for the
    top-level schedule buffers and scalars.
    """
    parts = key.split(".")
    if len(parts) == 1:
        return SCHEDULE_GROUP
    if parts[0] == "model_ema":
        return "model_ema"
    depth = 2
    if parts[0] == "cond_stage_models":
        depth = 4 if len(parts) > 2 and parts[2] == "vae" else 3
    elif parts[0] == "clap":
        # the two big encoders get their own rows; projections, scales, mel front end share one
        if len(parts) > 3 and parts[1] == "model" and parts[2] in ("audio_branch", "text_branch"):
            return ".".join(parts[:3])
        return "clap"
    return ".".join(parts[: max(1, min(depth, len(parts) - 1))])


def _numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


def _nbytes(shape: Iterable[int], dtype: str) -> int:
    return _numel(shape) * _ITEMSIZE.get(dtype, 0)


def fold_weight_norm(specs: Mapping[str, Spec]) -> tuple[dict[str, Spec], dict[str, tuple[str, str]]]:
    """Specs with each ``X.weight_g`` + ``X.weight_v`` pair replaced by ``X.weight``.

    Mirrors `model.vocoder.load_weight_norm_state`: the folded weight has v's
    shape and dtype. Returns (folded specs in file order, {folded key: (g, v)}).
    Unpaired halves, or pairs whose ``X.weight`` also exists, stay as they are
    (and so classify as unexpected).
    """
    folded: dict[str, Spec] = {}
    origin: dict[str, tuple[str, str]] = {}
    pairs: dict[str, tuple[str, str]] = {}
    for key in specs:
        for g_suffix, v_suffix in WEIGHT_NORM_SUFFIXES:
            for suffix, other in ((g_suffix, v_suffix), (v_suffix, g_suffix)):
                if key.endswith(suffix):
                    base = key[: -len(suffix)]
                    if base + other in specs and base + ".weight" not in specs:
                        g, v = (key, base + other) if suffix == g_suffix else (base + other, key)
                        pairs[key] = (g, v)
    for key, spec in specs.items():
        if key not in pairs:
            folded[key] = spec
            continue
        g, v = pairs[key]
        target = g[: -len(next(s for s, _ in WEIGHT_NORM_SUFFIXES if g.endswith(s)))] + ".weight"
        if target not in folded:  # first half met places the folded key
            folded[target] = specs[v]
            origin[target] = (g, v)
    return folded, origin


# --------------------------------------------------------------------------
# Manifests


def _is_manifest_file(path: Path) -> bool:
    """A JSON document (a manifest), as opposed to a checkpoint."""
    from audiosr_verify.util.safe_open import open_input

    try:
        with open_input(path, "checkpoint or manifest") as f:  # never blocks on a pipe
            head = f.read(512)
    except (AudioSRError, OSError):
        return False  # let the checkpoint reader produce the error message
    if path.suffix.lower() == ".json":
        return True
    return b"\0" not in head and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def build_manifest(source: str | os.PathLike, preset: str | None = None, hash: bool = False,
                   progress: Progress | None = None) -> dict[str, Any]:
    """A manifest (same format as golden/manifests/*.json) describing any checkpoint or manifest."""
    path = Path(source)
    if _is_manifest_file(path):
        m = read_manifest(path)
        info = SourceInfo(str(path), "manifest", path.stat().st_size, origin=m.source)
        specs = m.keys
        preset = preset or m.preset
    else:
        listing = inspect_checkpoint(path)
        info = _listing_source(listing, path)
        specs = {k: (t.shape, t.dtype) for k, t in listing.tensors.items()}
    if hash:
        info.sha256 = sha256_file(path, progress=_bytes_progress(progress, "sha256"))
    described = {
        "path": str(path), "file": path.name, "format": info.format, "size_bytes": info.size_bytes,
        "sha256": info.sha256, "wrapper": info.wrapper, "stripped_prefix": info.stripped_prefix,
        "tensors": len(specs), "parameters": sum(_numel(s) for s, _ in specs.values()),
        "tool": "audiosr-verify manifest",
    }
    if info.origin is not None:
        described["origin"] = info.origin
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "source": described,
        "preset": preset,
        "keys": {k: {"shape": list(s), "dtype": d} for k, (s, d) in specs.items()},
    }


# --------------------------------------------------------------------------
# Our side


LAYOUT_CACHE_VERSION = 1


@dataclass(frozen=True)
class ModelLayout:
    """Our network's parameters and buffers for a preset, and its declared ignore groups."""

    preset: str
    specs: dict[str, Spec]
    groups: tuple  # model.checkpoint.IgnoreGroup, in the order classify_keys tries them
    fingerprint: str  # sha256 of the model sources, torch version and preset
    cached: bool  # read from the layout cache instead of building the skeleton

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "keys": len(self.specs), "fingerprint": self.fingerprint,
                "cached": self.cached, "ignore_groups": [g.name for g in self.groups]}


def preset_tag(preset: str) -> str:
    """A preset's name, or for a configuration file ``config-`` and its content's sha256 (what the layout
    depends on: the same file moved is the same layout, an edited one is another)."""
    import hashlib

    from audiosr_model.config import is_config_file

    if not is_config_file(preset):
        return preset
    from audiosr_model.io.safe_open import MAX_CONFIG_BYTES, read_bytes

    return "config-" + hashlib.sha256(read_bytes(preset, "configuration", max_bytes=MAX_CONFIG_BYTES)).hexdigest()[:16]


def _layout_fingerprint(preset: str) -> str:
    """What the skeleton's layout depends on: the model package's sources and torch's version."""
    import hashlib
    import importlib.metadata

    import audiosr_model as model

    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "unknown"
    digest = hashlib.sha256(f"{LAYOUT_CACHE_VERSION}\0{preset_tag(preset)}\0{torch_version}\0".encode())
    root = Path(model.__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _read_cached_layout(path: Path) -> tuple[dict[str, Spec], list[str]] | None:
    from audiosr_verify.util.safe_open import read_json

    try:
        data = read_json(path, "layout cache")  # through the one opener: a pipe or device here never blocks
        specs = {k: (tuple(shape), dtype) for k, (shape, dtype) in data["specs"].items()}
        return specs, list(data["groups"])
    except (AudioSRError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent or damaged: rebuild


def _write_cached_layout(path: Path, specs: Mapping[str, Spec], group_names: list[str]) -> None:
    from audiosr_verify.util.atomic import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"specs": {k: [list(s), d] for k, (s, d) in specs.items()},
                                       "groups": group_names}), what="layout cache")
    except (AudioSRError, OSError):
        pass  # a read-only cache (or another run writing it) only costs speed


@functools.lru_cache(maxsize=8)
def model_layout(preset: str, cache: bool = True) -> ModelLayout:
    """Our network's layout (`model_specs(skeleton(config))`), from a fingerprinted cache if possible.

    Building the skeleton needs torch and about a second for ``basic``; the
    cache entry is keyed by the sha256 of every source file of the ``model``
    package, torch's version and the preset, so any code change rebuilds it.
    """
    from audiosr_model.weights.checkpoint import FIRST_STAGE_ENCODER_GROUP, IGNORE_GROUPS

    fingerprint = _layout_fingerprint(preset)
    cache_dir = layout_cache_dir() if cache else None
    path = cache_dir / f"layout-{preset_tag(preset)}-{fingerprint[:24]}.json" if cache_dir else None
    known = {g.name: g for g in IGNORE_GROUPS + (FIRST_STAGE_ENCODER_GROUP,)}
    hit = _read_cached_layout(path) if path else None
    if hit is not None and all(name in known for name in hit[1]):
        specs, names = hit
        return ModelLayout(preset, specs, tuple(known[n] for n in names), fingerprint, True)
    from audiosr_model.weights.checkpoint import groups_for, model_specs
    from audiosr_model.config import preset as get_preset
    from audiosr_model.weights.load import skeleton

    net = skeleton(get_preset(preset))
    specs, groups = model_specs(net), groups_for(net)
    if path is not None:
        _write_cached_layout(path, specs, [g.name for g in groups])
    return ModelLayout(preset, specs, tuple(groups), fingerprint, False)


def expected_layout(preset: str) -> tuple[dict[str, Spec], tuple]:
    """(specs of our network's parameters and buffers, its declared ignore groups)."""
    layout = model_layout(preset)
    return layout.specs, layout.groups


# --------------------------------------------------------------------------
# The check


def _listing_source(listing: CheckpointListing, path: Path) -> SourceInfo:
    return SourceInfo(
        str(path), listing.format, path.stat().st_size,
        wrapper=listing.wrapper, stripped_prefix=listing.stripped_prefix,
        extras=dict(listing.extras),
    )


def _bytes_progress(progress: Progress | None, stage: str):
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _classify(expected: Mapping[str, Spec], actual: Mapping[str, Spec], groups) -> list[KeyEntry]:
    from audiosr_model.weights.checkpoint import classify_keys

    folded, origin = fold_weight_norm(actual)
    report = classify_keys(expected, folded, groups)
    entries: list[KeyEntry] = []
    for ks in report.keys:
        pair = origin.get(ks.key) if ks.status != "missing" else None
        if pair is None:
            entries.append(KeyEntry(ks.key, ks.status, ks.expected_shape, ks.actual_shape, ks.dtype,
                                    ks.expected_dtype, ks.group, ks.reason, module_group(ks.key)))
            continue
        note = f"weight-norm pair folded into {ks.key}"
        reason = f"{ks.reason}; {note}" if ks.reason else note
        for half in pair:  # report the file's own keys, each with its own shape
            shape, dtype = actual[half]
            entries.append(KeyEntry(half, ks.status, ks.expected_shape, tuple(shape), dtype,
                                    ks.expected_dtype, ks.group, reason, module_group(half)))
    return entries


def _groups(entries: list[KeyEntry], actual: Mapping[str, Spec], nbytes: Mapping[str, int]) -> list[GroupSummary]:
    groups: dict[str, GroupSummary] = {}
    for e in entries:
        g = groups.setdefault(e.module, GroupSummary(e.module))
        g.keys += 1
        g.counts[e.status] += 1
        if e.status != "missing" and e.key in actual:
            shape, dtype = actual[e.key]
            g.parameters += _numel(shape)
            g.bytes += nbytes.get(e.key, _nbytes(shape, dtype))
    return list(groups.values())


def _variants(actual: Mapping[str, Spec], info: SourceInfo, folded_pairs: int) -> list[Variant]:
    keys = list(actual)
    ema = [k for k in keys if k.startswith("model_ema.")]
    clap = [k for k in keys if k.startswith("clap.")]
    pos = [k for k in clap if k.endswith(POSITION_IDS_SUFFIX)]
    wn = [k for k in keys if any(k.endswith(s) for pair in WEIGHT_NORM_SUFFIXES for s in pair)]
    floats = Counter(d for _, d in actual.values() if d.startswith(("float", "bfloat")))
    if info.wrapper == "state_dict":
        wrapper = Variant("wrapper", "state_dict", 'tensors nested under {"state_dict": ...} (the original format)')
    elif info.wrapper:
        wrapper = Variant("wrapper", info.wrapper, f"tensors nested under {info.wrapper!r}")
    elif info.format == "manifest":
        wrapper = Variant("wrapper", "n/a", "a manifest lists keys only")
    else:
        wrapper = Variant("wrapper", "plain", "plain dict of tensors")
    out = [
        wrapper,
        Variant("prefix", info.stripped_prefix or "none",
                f"'{info.stripped_prefix}' stripped from every key (DataParallel / torch.compile)"
                if info.stripped_prefix else "no wrapper prefix on the keys"),
        Variant("ema", "present" if ema else "absent",
                f"{len(ema):,} model_ema.* keys (EMA copy of the UNet, ignored)" if ema
                else "no model_ema.* keys (EMA copy stripped; inference does not need it)"),
        Variant("clap", "present" if clap else "absent",
                f"{len(clap):,} clap.* keys (ignored)" if clap else "no clap.* keys (CLAP stripped; never used)"),
    ]
    if clap:
        out.append(Variant(
            "clap_position_ids", "present" if pos else "absent",
            f"{pos[0]} present: saved with transformers <= 4.30 (3,743-key original layout)" if pos
            else "CLAP position_ids absent: saved with transformers >= 4.31, where the buffer is "
                 "non-persistent (3,742-key original layout)"))
    if wn:
        vocoder = sum(1 for k in wn if ".vocoder." in k)
        out.append(Variant(
            "weight_norm", "folded" if folded_pairs else "unpaired",
            f"{len(wn):,} weight-norm keys ({vocoder:,} under *.vocoder.*): {folded_pairs:,} "
            "weight_g/weight_v pairs fold into .weight as the loader does"
            + ("" if 2 * folded_pairs == len(wn) else f"; {len(wn) - 2 * folded_pairs} unpaired")))
    else:
        out.append(Variant("weight_norm", "none", "plain .weight keys (weight norm removed, as the original saves)"))
    if floats:
        main = floats.most_common(1)[0][0]
        value = main if len(floats) == 1 else "mixed"
        detail = ", ".join(f"{n:,} {d}" for d, n in floats.most_common()) + " floating-point tensors"
        out.append(Variant("precision", value, detail))
    return out


def _duplicates(path: Path, listing: CheckpointListing, actual_keys: Iterable[str]) -> list[DuplicateTensors]:
    digests = tensor_digests(path, listing)
    buckets: dict[tuple[str, tuple[int, ...], str], list[str]] = {}
    for key in actual_keys:
        info = listing.tensors[key]
        if info.nbytes == 0:
            continue
        buckets.setdefault((digests[key], info.shape, info.dtype), []).append(key)
    dups = [DuplicateTensors(d, shape, dtype, listing.tensors[ks[0]].nbytes, tuple(ks))
            for (d, shape, dtype), ks in buckets.items() if len(ks) > 1]
    return sorted(dups, key=lambda d: (-d.nbytes * (len(d.keys) - 1), d.keys[0]))


def _reference_diff(manifest: Manifest, actual: Mapping[str, Spec]) -> ReferenceDiff:
    ref = manifest.keys
    only_ref = [k for k in ref if k not in actual]
    only_file = [k for k in actual if k not in ref]
    shapes = [(k, tuple(ref[k][0]), tuple(actual[k][0])) for k in actual
              if k in ref and tuple(ref[k][0]) != tuple(actual[k][0])]
    dtypes = [(k, ref[k][1], actual[k][1]) for k in actual
              if k in ref and tuple(ref[k][0]) == tuple(actual[k][0]) and ref[k][1] != actual[k][1]]
    notes = []
    missing_pos = [k for k in only_ref if k.startswith("clap.") and k.endswith(POSITION_IDS_SUFFIX)]
    if missing_pos:
        notes.append(f"{missing_pos[0]} absent: saved with transformers >= 4.31 (non-persistent buffer)")
    extra_pos = [k for k in only_file if k.startswith("clap.") and k.endswith(POSITION_IDS_SUFFIX)]
    if extra_pos:
        notes.append(f"{extra_pos[0]} present only here: saved with transformers <= 4.30")
    for prefix, what in (("model_ema.", "EMA copy"), ("clap.", "CLAP")):
        n_ref = sum(1 for k in only_ref if k.startswith(prefix) and k not in missing_pos)
        n_file = sum(1 for k in only_file if k.startswith(prefix) and k not in extra_pos)
        if n_ref:
            notes.append(f"{n_ref:,} {prefix}* keys of the reference absent ({what} stripped)")
        if n_file:
            notes.append(f"{n_file:,} {prefix}* keys not in the reference ({what} present here only)")
    folded, origin = fold_weight_norm(actual)
    refolded = [t for t in origin if t in ref and t not in actual]
    if refolded:
        notes.append(f"{len(refolded):,} weights stored with weight norm (weight_g/weight_v) where "
                     "the reference has a plain .weight: folded on load")
    if dtypes:
        notes.append(f"{len(dtypes):,} keys with another dtype than the reference "
                     f"(e.g. {dtypes[0][0]}: {dtypes[0][1]} -> {dtypes[0][2]})")
    if not (only_ref or only_file or shapes or dtypes):
        notes.append("identical key set, shapes and dtypes")
    return ReferenceDiff(manifest.path, manifest.source, len(ref), len(actual), only_ref, only_file,
                         shapes, dtypes, notes)


def run_parity(
    source: str | os.PathLike,
    preset: str = "basic",
    manifest: str | os.PathLike | None = None,
    hash: bool = False,
    progress: Progress | None = None,
    layout_cache: bool = True,
) -> ParityResult:
    """Classify every key of ``source`` (checkpoint or manifest) against our ``preset`` network.

    ``progress(stage, done, total)`` is called for the stages "listing",
    "model", "classify", and with ``hash`` "sha256" (bytes) and "digests".
    ``layout_cache=False`` always builds our skeleton instead of reading the
    fingerprinted layout cache (see `model_layout`).
    """
    report = progress or (lambda stage, done, total: None)
    path = Path(source)
    report("listing", 0, 1)
    listing: CheckpointListing | None = None
    if _is_manifest_file(path):
        m = read_manifest(path)
        actual, stripped = _strip_prefixes(dict(m.keys))
        info = SourceInfo(str(path), "manifest", path.stat().st_size, origin=m.source, stripped_prefix=stripped)
        if m.source:
            info.wrapper = m.source.get("wrapper") if isinstance(m.source.get("wrapper"), str) else None
        nbytes = {k: _nbytes(s, d) for k, (s, d) in actual.items()}
    else:
        listing = inspect_checkpoint(path)
        actual = {k: (t.shape, t.dtype) for k, t in listing.tensors.items()}
        info = _listing_source(listing, path)
        nbytes = {k: t.nbytes for k, t in listing.tensors.items()}
    info.tensors = len(actual)
    info.parameters = sum(_numel(s) for s, _ in actual.values())
    info.tensor_bytes = sum(nbytes.values())
    report("listing", 1, 1)
    reference = read_manifest(manifest) if manifest is not None else None

    report("model", 0, 1)
    layout = model_layout(preset, cache=layout_cache)
    expected, groups = layout.specs, layout.groups
    report("model", 1, 1)

    report("classify", 0, 1)
    entries = _classify(expected, actual, groups)
    folded_pairs = len(fold_weight_norm(actual)[1])
    result = ParityResult(
        source=info, preset=preset, model_keys=len(expected), keys=entries, layout=layout.to_dict(),
        variants=_variants(actual, info, folded_pairs),
        groups=_groups(entries, actual, nbytes), hashed=hash,
    )
    if reference is not None:
        result.reference = _reference_diff(reference, actual)
    report("classify", 1, 1)

    if hash:
        info.sha256 = sha256_file(path, progress=_bytes_progress(progress, "sha256"))
        if listing is not None:
            report("digests", 0, 1)
            result.duplicates = _duplicates(path, listing, actual)
            report("digests", 1, 1)
    return result


# --------------------------------------------------------------------------- a subject's layout


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


def compare_layout(layout: Mapping[str, Any], manifest: str | os.PathLike) -> LayoutResult:
    """``layout`` ({key: (shape, dtype)}) against the original's key manifest (golden/manifests)."""
    from audiosr_verify import schema

    original = read_manifest(manifest)
    result = LayoutResult(str(manifest))
    ours = {str(k): (tuple(int(n) for n in v[0]), str(v[1]).replace("torch.", "")) for k, v in layout.items()}
    unused = lambda k: (k in schema.IGNORED_KEYS or k.startswith(schema.IGNORED_PREFIXES)  # noqa: E731
                        or k in schema.SCHEDULE_BUFFERS)
    for key, (shape, _dtype) in original.keys.items():
        if key in ours:
            if ours[key][0] == tuple(shape):
                result.matched += 1
            else:
                result.shape_mismatch.append(f"{key}: {list(ours[key][0])} vs the original's {list(shape)}")
        elif unused(key):
            result.ignored += 1
        else:
            result.missing.append(key)
    result.unexpected = sorted(k for k in ours if k not in original.keys)
    return result
