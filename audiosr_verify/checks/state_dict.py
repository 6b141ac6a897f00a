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
`audiosr_verify.report.parity`. This module holds the classification and the
manifest a checkpoint is described by; beside it: the result types
(`checks.layout_results`), how keys are named and grouped (`checks.layout_keys`)
and our network's cached layout (`checks.layout_cache`), all re-exported here.
"""

from __future__ import annotations

import math
import os
from collections import Counter
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
from audiosr_verify.checks.layout_cache import (  # re-exported: their callers' old home
    LAYOUT_CACHE_VERSION, ModelLayout, expected_layout, model_layout, preset_tag,
)
from audiosr_verify.checks.layout_keys import (  # re-exported: their callers' old home
    POSITION_IDS_SUFFIX, SCHEDULE_GROUP, WEIGHT_NORM_SUFFIXES, Spec, fold_weight_norm, module_group,
)
from audiosr_verify.checks.layout_results import (  # re-exported: their callers' old home
    ACCOUNTED, SCHEMA_VERSION, STATUSES, DuplicateTensors, GroupSummary, KeyEntry, LayoutResult, ParityResult,
    ReferenceDiff, SourceInfo, Variant,
)
from audiosr_verify.oracle.manifests import MANIFEST_SCHEMA_VERSION, Manifest, read_manifest  # noqa: F401 (moved)
from audiosr_verify.util.cache import layout_cache_dir  # noqa: F401 (re-exported: its callers' old home)

__all__ = [
    "ACCOUNTED", "LAYOUT_CACHE_VERSION", "MANIFEST_SCHEMA_VERSION", "POSITION_IDS_SUFFIX", "SCHEDULE_GROUP",
    "SCHEMA_VERSION", "STATUSES", "WEIGHT_NORM_SUFFIXES", "DuplicateTensors", "GroupSummary", "KeyEntry",
    "LayoutResult", "Manifest", "ModelLayout", "ParityResult", "ReferenceDiff", "SourceInfo", "Spec", "Variant",
    "build_manifest", "compare_layout", "expected_layout", "fold_weight_norm", "layout_cache_dir", "model_layout",
    "module_group", "preset_tag", "read_manifest", "run_parity",
]


Progress = Callable[[str, int, int], None]  # (stage, done, total)


# --------------------------------------------------------------------------
# Helpers


def _numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


def _nbytes(shape: Iterable[int], dtype: str) -> int:
    return _numel(shape) * _ITEMSIZE.get(dtype, 0)


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
