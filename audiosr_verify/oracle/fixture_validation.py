"""A fixture set is checked when it is opened: a verdict over fixtures that are not there is no verdict.

`check --fixtures DIR` used to print "OK" on a folder that did not exist (nothing
was compared), accept metadata from a future schema, and end in a traceback on a
truncated file. Everything here raises one `AudioSRError` naming the file and the
problem (the CLI prints it as one line and exits 2):

- the folder exists, is a folder, and holds ``metadata.json`` (valid JSON, an object);
- its ``schema_version`` is the one this harness reads (`schema.SCHEMA_VERSION`);
- it names at least one input, each with its audio file, level and tensor table;
- the inputs asked for (``--input``) are among them;
- each input's ``<name>.safetensors`` is present, parses, and holds every tensor the
  metadata lists with the listed shape and dtype; where the metadata records the
  file's sha256 (``files``, written by `oracle export`), the bytes match it;
- each input's audio file is present and, where the inputs' index (``inputs.json``)
  records its sha256, the bytes match it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from audiosr_model.errors import AudioSRError
from audiosr_verify.oracle.config_overrides import BUILTIN_PRESETS
from audiosr_verify.schema import SCHEMA_VERSION

CONFIG_FILE = "config.yaml"  # a set made with a configuration that is neither preset keeps it here

LEVELS = ("dsp", "chain", "full")
CALIBRATION_FILE = "calibration.json"  # bounds measured for the set's checkpoint and size (checks/calibration.py)
CALIBRATION_VERSION = 1
MAX_FIXTURE_BYTES = 1 << 30  # one input's tensors: a few MB tiny, under 20 MB per 5.12 s at full size


def open_metadata(fixture_dir: Path) -> dict[str, Any]:
    """``metadata.json`` of ``fixture_dir``, its shape and schema version checked."""
    from audiosr_verify.util.safe_open import read_json

    if not fixture_dir.exists():
        raise AudioSRError("no such fixture directory (make one with `audiosr-verify oracle export`)", fixture_dir)
    if not fixture_dir.is_dir():
        raise AudioSRError("not a fixture directory (a file; --fixtures takes the folder of metadata.json)",
                           fixture_dir)
    path = fixture_dir / "metadata.json"
    if not path.exists():
        what = "empty folder" if not any(fixture_dir.iterdir()) else "folder without metadata.json"
        raise AudioSRError(f"not a fixture set ({what}; make one with `audiosr-verify oracle export`)", fixture_dir)
    meta = read_json(path, "fixture metadata")
    if not isinstance(meta, dict):
        raise AudioSRError(f"fixture metadata must be a JSON object, not {type(meta).__name__}", path)
    version = meta.get("schema_version")
    if version is None:
        raise AudioSRError(f"fixture metadata declares no schema_version; this harness reads version "
                           f"{SCHEMA_VERSION}", path)
    if str(version) != SCHEMA_VERSION:
        raise AudioSRError(f"fixture schema version {version!r} is not the one this harness reads "
                           f"({SCHEMA_VERSION}); re-export the fixtures or use the harness that wrote them", path)
    inputs = meta.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise AudioSRError("fixture metadata names no inputs: nothing to compare", path)
    for name, entry in inputs.items():
        _check_input_entry(name, entry, path)
    inputs_dir = meta.get("inputs_dir")
    if inputs_dir is not None and (not isinstance(inputs_dir, str) or "/" in inputs_dir or inputs_dir in ("", ".", "..")):
        raise AudioSRError("fixture metadata 'inputs_dir' must name a folder inside the set", path)
    checkpoint = meta.get("checkpoint")
    if checkpoint is not None and not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("sha256"), str)):
        raise AudioSRError("fixture metadata 'checkpoint' must record the checkpoint's sha256", path)
    files = meta.get("files")
    if files is not None and not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())):
        raise AudioSRError("fixture metadata 'files' must map file names to sha256 strings", path)
    preset = meta.get("preset", "tiny")
    if not isinstance(preset, str) or (preset not in BUILTIN_PRESETS and preset != CONFIG_FILE):
        raise AudioSRError(f"fixture metadata 'preset' must be basic, tiny or {CONFIG_FILE!r} (the set's own "
                           f"configuration), not {preset!r}", path)
    return meta


def fixture_preset(fixture_dir: Path, meta: dict[str, Any]) -> str:
    """The size the set was made at, as `audiosr_model.config.preset` reads it: ``basic``, ``tiny``, or the
    path of the set's own ``config.yaml`` (checked against its recorded sha256) for any other configuration."""
    from audiosr_model.config import load_yaml
    from audiosr_model.io.safe_open import MAX_CONFIG_BYTES
    from audiosr_verify.util.hashing import sha256_bytes
    from audiosr_verify.util.safe_open import read_bytes

    preset = meta.get("preset", "tiny")
    if preset != CONFIG_FILE:
        return preset
    path = Path(fixture_dir) / CONFIG_FILE
    data = read_bytes(path, "fixture configuration", max_bytes=MAX_CONFIG_BYTES)
    recorded = (meta.get("files") or {}).get(CONFIG_FILE)
    if recorded is None:
        raise AudioSRError("the set's configuration has no sha256 in metadata.json 'files'", path)
    if sha256_bytes(data) != recorded:
        raise AudioSRError("the set's configuration was changed after export (sha256 differs from "
                           "metadata.json); re-export the set", path)
    load_yaml(path)  # every value checked: one line naming the file
    return str(path.resolve())


def _check_input_entry(name: str, entry: Any, path: Path) -> None:
    where = f"input {name!r}"
    if not isinstance(entry, dict):
        raise AudioSRError(f"{where} must be an object", path)
    if not isinstance(entry.get("file"), str) or not entry["file"]:
        raise AudioSRError(f"{where} names no audio file", path)
    if entry.get("level", "dsp") not in LEVELS:
        raise AudioSRError(f"{where} has level {entry.get('level')!r}; known: {', '.join(LEVELS)}", path)
    tensors = entry.get("tensors")
    if not isinstance(tensors, dict) or not tensors:
        raise AudioSRError(f"{where} lists no tensors", path)
    for tname, info in tensors.items():
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list) or \
                not all(isinstance(d, int) and d >= 0 for d in info["shape"]):
            raise AudioSRError(f"{where}: tensor {tname!r} has no valid shape", path)
    for key in ("padded_length", "target_frame"):
        if key in entry and not (isinstance(entry[key], int) and entry[key] > 0):
            raise AudioSRError(f"{where}: {key} must be a positive whole number", path)


def resolve_names(meta: dict[str, Any], fixture_dir: Path, names: Iterable[str] | None) -> list[str]:
    """The inputs to check: all, or the ones asked for, each of which must exist."""
    if names is None:
        return list(meta["inputs"])
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise AudioSRError("no fixture input selected: nothing to compare", fixture_dir)
    unknown = [n for n in wanted if n not in meta["inputs"]]
    if unknown:
        raise AudioSRError(f"no fixture input {', '.join(map(repr, unknown))} (--input); this set has "
                           f"{', '.join(meta['inputs'])}", fixture_dir)
    return wanted


def read_fixture_tensors(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """The tensors of one fixture file through the one opener (bounded, regular file), parse errors named;
    its bytes checked against ``sha256`` when the set records one."""
    from safetensors.torch import load

    from audiosr_verify.util.hashing import sha256_bytes
    from audiosr_verify.util.safe_open import read_bytes

    data = read_bytes(path, "fixture", max_bytes=MAX_FIXTURE_BYTES)
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise AudioSRError(f"fixture file has sha256 {sha256_bytes(data)[:16]}..., the fixture set records "
                           f"{sha256[:16]}... (changed or damaged since export)", path)
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error type (and others on a lying header)
        raise AudioSRError(f"fixture file is damaged or truncated ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'})", path) from None


def check_input_tensors(fixture_dir: Path, name: str, entry: dict[str, Any],
                        files: dict[str, str] | None) -> dict[str, Any]:
    """One input's tensors: the file present (hash checked when recorded), every listed tensor as listed."""
    path = fixture_dir / f"{name}.safetensors"
    if not path.exists() and not path.is_symlink():
        raise AudioSRError(f"fixture file of input {name!r} is missing (the set is incomplete)", path)
    tensors = read_fixture_tensors(path, (files or {}).get(path.name))
    for tname, info in entry["tensors"].items():
        if tname not in tensors:
            raise AudioSRError(f"fixture file lacks tensor {tname!r} that metadata.json lists", path)
        t = tensors[tname]
        if list(t.shape) != list(info["shape"]):
            raise AudioSRError(f"tensor {tname!r} has shape {list(t.shape)}, metadata.json says {info['shape']}",
                               path)
        dtype = info.get("dtype")
        if dtype and str(t.dtype).replace("torch.", "") != dtype:
            raise AudioSRError(f"tensor {tname!r} is {str(t.dtype).replace('torch.', '')}, metadata.json says "
                               f"{dtype}", path)
    return tensors


def check_audio_file(inputs_dir: Path, entry: dict[str, Any], name: str, fixture_dir: Path) -> Path:
    """The input's audio file: present, and with the sha256 the inputs' index records (when it does)."""
    from audiosr_verify.util.safe_open import read_json

    path = inputs_dir / entry["file"]
    if not path.is_file():
        raise AudioSRError(f"audio file of fixture input {name!r} ({entry['file']}) is missing from {inputs_dir}",
                           fixture_dir)
    index_path = inputs_dir / "inputs.json"
    if index_path.is_file():
        index = read_json(index_path, "fixture inputs index")
        recorded = index.get("inputs", {}).get(name, {}) if isinstance(index, dict) else {}
        if isinstance(recorded, dict) and isinstance(recorded.get("sha256"), str) and \
                recorded.get("file") == entry["file"]:
            from audiosr_verify.util.hashing import sha256_file

            got = sha256_file(path)  # a regular file (checked above): reading it cannot block
            if got != recorded["sha256"]:
                raise AudioSRError(f"fixture input audio has sha256 {got[:16]}..., the inputs' index records "
                                   f"{recorded['sha256'][:16]}... (changed or damaged since export)", path)
    return path


def read_calibration(fixture_dir: Path, meta: dict[str, Any] | None = None) -> dict[str, float] | None:
    """The calibrated atol per fixture tensor of a set (None when it has no calibration); its sha256 checked
    against the set's ``files`` when recorded (a loosened bound is a wrong verdict waiting to happen)."""
    data = read_calibration_file(fixture_dir, meta)
    return None if data is None else {str(k): float(v) for k, v in data["bounds"].items()}


def read_calibration_file(fixture_dir: Path, meta: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A set's whole ``calibration.json`` (None when it has none), read once and checked as
    `read_calibration` describes: sha256, version, finite non-negative bounds."""
    import math

    from audiosr_verify.util.hashing import sha256_bytes
    from audiosr_verify.util.safe_open import parse_json, read_bytes

    path = Path(fixture_dir) / CALIBRATION_FILE
    recorded = ((meta or {}).get("files") or {}).get(CALIBRATION_FILE)
    if not path.exists() and not path.is_symlink():
        if recorded:
            raise AudioSRError("the fixture set records a calibration that is missing", path)
        return None
    raw = read_bytes(path, "fixture calibration", max_bytes=16 << 20)
    if recorded and sha256_bytes(raw) != recorded:
        raise AudioSRError(f"calibration has sha256 {sha256_bytes(raw)[:16]}..., the fixture set records "
                           f"{recorded[:16]}... (changed since export)", path)
    data = parse_json(raw.decode("utf-8", "replace"), path, "fixture calibration")
    bounds = data.get("bounds") if isinstance(data, dict) else None
    if not isinstance(bounds, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v) and v >= 0 for v in bounds.values()):
        raise AudioSRError("calibration 'bounds' must map tensor names to finite non-negative numbers", path)
    if data.get("version") != CALIBRATION_VERSION:
        raise AudioSRError(f"calibration version {data.get('version')!r} is not {CALIBRATION_VERSION}", path)
    return data


__all__ = ["CALIBRATION_FILE", "CALIBRATION_VERSION", "CONFIG_FILE", "fixture_preset", "read_calibration", "read_calibration_file", "check_audio_file", "check_input_tensors", "open_metadata", "read_fixture_tensors", "resolve_names"]
