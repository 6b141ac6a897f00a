"""Lazy, safe inspection of model checkpoints.

`inspect_checkpoint` lists a checkpoint's tensors (key, shape, dtype, size,
storage) without reading any tensor data and without running pickle code:

* torch zip checkpoints (``torch.save``; any file name) are recognised by the
  zip magic; only their ``<archive>/data.pkl`` record is read, and it is parsed
  by a restricted unpickler whose globals are a short whitelist of harmless
  stand-ins. Storages become placeholders, tensors become `TensorInfo`.
* safetensors files are recognised by their 8-byte header length + JSON
  header; only the header is read and validated against the file size.

`load_state_dict` is the real loader (``torch.load(weights_only=True)`` or
``safetensors``); `tensor_digests` and `sha256_file` read data on purpose.
Every problem a user can act on becomes a one-line `AudioSRError`.

One concern, above the project's 500 lines for that reason: reading a
checkpoint file without trusting it. The torch zip and safetensors readers
share the listing types, the key handling (wrappers, prefixes) and the error
wording, and the real loader checks a file with the same listing first.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple

from audiosr_model.errors import AudioSRError
from audiosr_model.io.safe_open import check_input, open_input

__all__ = [
    "CheckpointListing",
    "TensorInfo",
    "inspect_checkpoint",
    "load_state_dict",
    "sha256_file",
    "tensor_digests",
]

# Element sizes of the dtypes a checkpoint may name (fixed table: looking names
# up on the torch module could trigger its lazy submodule imports).
_ITEMSIZE = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "complex128": 16, "complex64": 8,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1,
}
# torch's legacy typed-storage class names -> dtype; UntypedStorage counts bytes.
_STORAGE_DTYPE = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
}
_SAFETENSORS_DTYPE = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "C64": "complex64",
}
_PREFIXES = ("module.", "_orig_mod.")  # added by DataParallel/DDP and torch.compile
# Legacy torch.save writes this magic number first, pickled with protocol 2.
_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_LEGACY_MESSAGE = (
    "legacy (non-zip) torch checkpoint is not supported; "
    "re-save it with torch.save in a current PyTorch"
)
# data.pkl only holds metadata (keys, shapes, strides): 0.4 MB for the 3,743 keys of the
# released checkpoint. The bound is on the bytes actually inflated, not on the size the
# zip's directory declares, so a small archive that inflates to a gigabyte costs 64 MB
# at most before it is refused.
_MAX_PICKLE = 64 << 20
_MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorInfo:
    key: str
    shape: tuple[int, ...]
    dtype: str  # torch dtype name without "torch.", e.g. "float32"
    nbytes: int  # numel * itemsize
    storage: str | None = None  # storage id inside the file; None for safetensors
    offset: int = 0  # element offset in the storage
    # Strides are only needed to read the bytes back (tensor_digests); kept out
    # of equality so listings compare by what they describe.
    stride: tuple[int, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CheckpointListing:
    path: str
    format: str  # "torch-zip" | "safetensors"
    wrapper: str | None  # "state_dict" when the tensors were nested under it
    stripped_prefix: str | None  # e.g. "module." when stripped from every key
    tensors: dict[str, TensorInfo]  # insertion order = file order
    extras: dict[str, str]  # non-tensor entries described by type name


# --------------------------------------------------------------------------
# Stand-ins produced by the restricted unpickler (no real torch objects)


# Stand-ins are NamedTuples: pickle's BUILD opcode writes into an object's
# __dict__ or calls its __setstate__ (frozen dataclasses have one), which would
# let a hostile file rewrite the shared whitelist markers for every later
# inspection in the process. Tuples offer neither, so BUILD on them fails.


class _Marker(NamedTuple):
    """A whitelisted torch global (dtype, storage class, layout) by name."""

    kind: str
    name: str


class _StorageRef(NamedTuple):
    key: str
    dtype: str
    numel: int  # in elements of `dtype` (bytes for UntypedStorage)

    @property
    def nbytes(self) -> int:
        return self.numel * _ITEMSIZE[self.dtype]


class _TensorStub(NamedTuple):
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"bad tensor {what} {value!r}")
    return value


def _make_stub(storage: Any, offset: Any, size: Any, stride: Any, dtype: str) -> _TensorStub:
    if not isinstance(storage, _StorageRef) or type(offset) is not int or offset < 0:
        raise ValueError("tensor without a valid storage reference")
    shape, strides = _ints(tuple(size), "size"), _ints(tuple(stride), "stride")
    if len(shape) != len(strides):
        raise ValueError(f"tensor size {shape} and stride {strides} disagree")
    return _TensorStub(storage, offset, shape, strides, dtype)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _make_stub(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _make_stub(storage, storage_offset, size, stride, getattr(storage, "dtype", ""))


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad,
                       backward_hooks, dtype, metadata=None):
    # v3 stores an UntypedStorage (counted in bytes) plus the tensor's dtype.
    if not isinstance(dtype, _Marker) or dtype.kind != "dtype":
        raise ValueError(f"bad tensor dtype {dtype!r}")
    return _make_stub(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return data


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3,
               _rebuild_parameter, _rebuild_parameter_with_state)
_TENSOR_TYPE = _Marker("type", "Tensor")


def _rebuild_from_type_v2(func, new_type, args, state):
    # Plain tensors carrying python attributes are pickled through this; only
    # our own rebuild functions and the plain Tensor/Parameter types may appear.
    if func not in _REBUILDERS or new_type is not _TENSOR_TYPE:
        raise ValueError("tensor subclass in checkpoint")
    return func(*args)


def _get_layout(name):
    return _Marker("layout", str(name))


def _codecs_encode(text, encoding):
    # Protocol-2 pickles spell bytes as _codecs.encode(str, "latin1"); no other codec.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise ValueError(f"unexpected _codecs.encode({encoding!r})")
    return text.encode("latin1")


def _bytearray(data=b"", encoding=None):
    # Pickles spell a bytearray as bytearray(bytes) or bytearray(str, "latin-1"); bytearray(N)
    # would allocate N bytes from a number in the file, so only those two forms pass.
    if isinstance(data, (bytes, bytearray)) and encoding is None:
        return bytearray(data)
    if isinstance(data, str) and encoding in ("latin1", "latin-1"):
        return bytearray(data, "latin-1")
    raise ValueError("bytearray from anything but bytes or a latin-1 string")


def _safe_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch._tensor", "Tensor"): _TENSOR_TYPE,
        ("torch", "Tensor"): _TENSOR_TYPE,
        ("torch.nn.parameter", "Parameter"): _TENSOR_TYPE,
        ("torch.serialization", "_get_layout"): _get_layout,
        ("torch", "strided"): _Marker("layout", "torch.strided"),
        ("torch", "Size"): tuple,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): _bytearray,
        ("builtins", "complex"): complex,
        ("_codecs", "encode"): _codecs_encode,
    }
    for name, dtype in _STORAGE_DTYPE.items():
        table["torch", name] = _Marker("storage", dtype)
    table["torch.storage", "UntypedStorage"] = _Marker("storage", "uint8")
    for dtype in _ITEMSIZE:
        table["torch", dtype] = _Marker("dtype", dtype)
    return table


_SAFE_GLOBALS = _safe_globals()


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only whitelisted globals, to inert stand-ins."""

    def __init__(self, data: bytes, path: str):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._path = path
        self._storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Overriding find_class skips pickle's Python-2 name fix-up; redo the one we need.
        found = _SAFE_GLOBALS.get(("builtins" if module == "__builtin__" else module, name))
        if found is None:
            raise AudioSRError(
                f"refusing to unpickle {module}.{name}: checkpoints may only contain tensors",
                self._path,
            )
        return found

    def persistent_load(self, pid: Any) -> _StorageRef:
        # torch writes ("storage", storage_type, key, location, numel); we keep
        # the description and never touch the data record it names.
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ValueError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _Marker) or storage_type.kind != "storage":
            raise ValueError(f"unexpected storage type {storage_type!r}")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise ValueError(f"bad storage reference {pid!r}")
        # a storage marker's name is its dtype
        return self._storages.setdefault(key, _StorageRef(key, storage_type.name, numel))


# --------------------------------------------------------------------------
# File checks and format sniffing


def _open(path: Any):
    """The checkpoint through `safe_open.open_input`: a regular, non-empty file (never a pipe)."""
    return open_input(path, "checkpoint")


def _file_size(path: Any) -> int:
    """Size of a readable regular file, or an AudioSRError saying why not."""
    return check_input(path, "checkpoint")


def _read_head(path: Any, n: int = 512) -> bytes:
    with _open(path) as f:
        try:
            return f.read(n)
        except OSError as exc:
            raise AudioSRError(f"cannot read checkpoint: {exc.strerror or exc}", path) from None


def _sniff(path: Any) -> str:
    """'torch-zip' or 'safetensors' by content; anything else is an error."""
    head = _read_head(path)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "torch-zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        if head[2:2 + len(_LEGACY_MAGIC)] == _LEGACY_MAGIC:
            raise AudioSRError(_LEGACY_MESSAGE, path)
        raise AudioSRError("bare pickle file, not a torch zip checkpoint or safetensors; "
                           "refusing to unpickle it", path)
    # safetensors: u64 header length, then a JSON object; a text file has a huge "length".
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 32:
        return "safetensors"
    if head.startswith(b"version https://git-lfs"):
        raise AudioSRError("is a Git LFS pointer, not the checkpoint data (run git lfs pull)", path)
    try:
        head.decode("utf-8")
        is_text = all(c >= 0x20 or c in b"\t\r\n" for c in head)
    except UnicodeDecodeError:
        is_text = False
    if is_text:
        raise AudioSRError("is a text file, not a checkpoint "
                           "(an error page saved by a download?)", path)
    raise AudioSRError("unrecognised format: neither a torch zip checkpoint nor safetensors", path)


# --------------------------------------------------------------------------
# Shared structure handling (listing and real loading agree on keys)


def _type_name(value: Any) -> str:
    if isinstance(value, _TensorStub):
        return "Tensor"
    if isinstance(value, _Marker):
        return value.kind
    return type(value).__name__


def _split(obj: Any, path: Any, is_tensor: Callable[[Any], bool]):
    """(wrapper, tensors, extras) of a checkpoint's top-level object."""
    if not isinstance(obj, dict):
        raise AudioSRError(f"holds a {_type_name(obj)}, not a dict of tensors", path)
    wrapper, inner, outer = None, obj, {}
    if isinstance(obj.get("state_dict"), dict):
        wrapper, inner = "state_dict", obj["state_dict"]
        outer = {k: v for k, v in obj.items() if k != "state_dict"}
    tensors, extras = {}, {}
    for key, value in inner.items():
        if isinstance(key, str) and is_tensor(value):
            tensors[key] = value
        else:  # e.g. "_extra_state"; named so it cannot clash with outer keys
            extras[f"{wrapper}.{key}" if wrapper else str(key)] = _type_name(value)
    for key, value in outer.items():
        extras[str(key)] = _type_name(value)
    return wrapper, tensors, extras


def _strip_prefixes(tensors: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Drop wrapper prefixes shared by *every* key (repeatedly, e.g. module._orig_mod.)."""
    stripped = ""
    while tensors:
        prefix = next((p for p in _PREFIXES if all(k.startswith(p) for k in tensors)), None)
        if prefix is None:
            break
        tensors = {k[len(prefix):]: v for k, v in tensors.items()}
        stripped += prefix
    return tensors, stripped or None


# --------------------------------------------------------------------------
# torch zip checkpoints


@contextlib.contextmanager
def _open_zip(path: Any) -> Iterator[zipfile.ZipFile]:
    with _open(path) as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise AudioSRError(f"truncated or corrupt zip archive ({exc})", path) from None
        with zf:
            yield zf


def _record_prefix(zf: zipfile.ZipFile, path: Any) -> str:
    """The '<archive>/' directory holding data.pkl (torch names it after the file)."""
    found = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if not found:
        raise AudioSRError("zip archive has no <archive>/data.pkl record: "
                           "not a torch checkpoint", path)
    if len(found) > 1:
        raise AudioSRError(f"zip archive holds {len(found)} data.pkl records: "
                           "not a torch checkpoint", path)
    prefix = found[0][: -len("data.pkl")]
    if any(n.startswith(prefix + "code/") for n in zf.namelist()):
        raise AudioSRError("is a TorchScript archive (torch.jit.save), "
                           "not a state-dict checkpoint", path)
    return prefix


def _unpickle_listing(zf: zipfile.ZipFile, prefix: str, path: Any) -> Any:
    info = zf.getinfo(prefix + "data.pkl")
    if info.file_size > _MAX_PICKLE:
        raise AudioSRError(f"data.pkl declares {info.file_size:,} bytes (at most {_MAX_PICKLE:,} for "
                           "a checkpoint's metadata); refusing to inflate it", path)
    try:
        with zf.open(info) as record:  # the only record read: tensor data records stay untouched
            raw = record.read(_MAX_PICKLE + 1)  # bounded whatever the directory claims
        if len(raw) > _MAX_PICKLE:
            raise AudioSRError(f"data.pkl inflates past {_MAX_PICKLE:,} bytes (its zip entry "
                               f"declares {info.file_size:,}); refusing to parse it", path)
        return _SafeUnpickler(raw, str(path)).load()
    except AudioSRError:
        raise
    except Exception as exc:  # malformed pickle or zip record: one line, no traceback
        raise AudioSRError(f"corrupt data.pkl ({type(exc).__name__}: {exc})", path) from None


def _extent(stub: _TensorStub) -> int:
    """Elements of storage the tensor reaches, counted from its offset."""
    if 0 in stub.shape:
        return 0
    return 1 + sum((n - 1) * s for n, s in zip(stub.shape, stub.stride))


def _zip_tensor_info(key: str, stub: _TensorStub, zf: zipfile.ZipFile, prefix: str,
                     path: Any, archive_size: int) -> TensorInfo:
    if stub.dtype not in _ITEMSIZE:
        raise AudioSRError(f"tensor {key!r} has unsupported dtype {stub.dtype!r}", path)
    itemsize = _ITEMSIZE[stub.dtype]
    record = f"{prefix}data/{stub.storage.key}"
    try:
        zinfo = zf.getinfo(record)  # central directory only, no data read
    except KeyError:
        raise AudioSRError(f"tensor {key!r}: storage record {record} is missing", path) from None
    if zinfo.compress_type != zipfile.ZIP_STORED:
        # torch.save stores tensor data uncompressed; a compressed record could inflate without bound
        raise AudioSRError(f"storage record {record} is compressed; torch checkpoints store tensor data "
                           "uncompressed (refusing to inflate it)", path)
    if zinfo.header_offset + zinfo.compress_size > archive_size:
        raise AudioSRError(f"storage record {record} extends past the end of the file "
                           "(truncated or corrupt checkpoint)", path)
    record_size = zinfo.file_size
    needed = (stub.offset + _extent(stub)) * itemsize if _extent(stub) else 0
    if needed > min(record_size, stub.storage.nbytes):
        raise AudioSRError(f"tensor {key!r} points past the end of storage record {record} "
                           "(truncated or corrupt checkpoint)", path)
    return TensorInfo(key, stub.shape, stub.dtype, math.prod(stub.shape) * itemsize,
                      stub.storage.key, stub.offset, stub.stride)


def _inspect_zip(path: Any) -> CheckpointListing:
    with _open_zip(path) as zf:
        prefix = _record_prefix(zf, path)
        obj = _unpickle_listing(zf, prefix, path)
        wrapper, stubs, extras = _split(obj, path, lambda v: isinstance(v, _TensorStub))
        stubs, stripped = _strip_prefixes(stubs)
        archive_size = os.fstat(zf.fp.fileno()).st_size
        tensors = {k: _zip_tensor_info(k, s, zf, prefix, path, archive_size) for k, s in stubs.items()}
    return CheckpointListing(str(path), "torch-zip", wrapper, stripped, tensors, extras)


# --------------------------------------------------------------------------
# safetensors


def _safetensors_entry(key: str, spec: Any, data_size: int, path: Any):
    """(dtype, shape, begin, end) of one header entry, validated."""
    bad = f"safetensors header entry {key!r}"
    if not isinstance(spec, dict) or spec.get("dtype") not in _SAFETENSORS_DTYPE:
        raise AudioSRError(f"{bad} has a missing or unsupported dtype", path)
    shape, offsets = spec.get("shape"), spec.get("data_offsets")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise AudioSRError(f"{bad} has a bad shape {shape!r}", path)
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(n) is int for n in offsets) and 0 <= offsets[0] <= offsets[1]):
        raise AudioSRError(f"{bad} has bad data_offsets {offsets!r}", path)
    dtype = _SAFETENSORS_DTYPE[spec["dtype"]]
    begin, end = offsets
    if end > data_size:
        raise AudioSRError(f"{bad} ends past the end of the file (truncated?)", path)
    needed = math.prod(shape) * _ITEMSIZE[dtype]
    if end - begin != needed:
        raise AudioSRError(f"{bad}: data_offsets span {end - begin} bytes, "
                           f"shape {shape} of {dtype} needs {needed}", path)
    return dtype, tuple(shape), begin, end


def _read_safetensors_header(path: Any):
    """(data_start, {key: (dtype, shape, begin, end)} in file order, has_metadata)."""
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        n = int.from_bytes(f.read(8), "little")
        if n < 2 or n > min(size - 8, _MAX_SAFETENSORS_HEADER):
            raise AudioSRError(f"safetensors header length {n} does not fit a {size}-byte file "
                               "(truncated or not safetensors)", path)
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise AudioSRError("safetensors header is not valid JSON", path) from None
    if not isinstance(header, dict):
        raise AudioSRError("safetensors header is not a JSON object", path)
    if not isinstance(header.get("__metadata__", {}), dict):
        raise AudioSRError("safetensors __metadata__ is not a JSON object", path)
    entries = {k: _safetensors_entry(k, v, size - 8 - n, path)
               for k, v in header.items() if k != "__metadata__"}
    ordered = dict(sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])))  # by data offset
    _check_tiling(ordered, size - 8 - n, path)
    return 8 + n, ordered, "__metadata__" in header


def _check_tiling(ordered: dict[str, tuple], data_size: int, path: Any) -> None:
    """Tensors must tile the data section exactly, as the safetensors library requires to load it.

    Overlapping tensors (two keys reading the same bytes), gaps and trailing
    bytes are refused here, so `parity` judges a file exactly as loading it
    would (the library: "invalid offset", "file not fully covered").
    """
    end, previous = 0, None
    for key, (_dtype, _shape, begin, stop) in ordered.items():
        if begin < end:
            raise AudioSRError(f"safetensors tensors {previous!r} and {key!r} overlap in the data section "
                               f"(bytes {begin}-{end}); the file cannot be loaded", path)
        if begin > end:
            raise AudioSRError(f"safetensors data section has {begin - end} unused bytes before tensor {key!r}; "
                               "the file cannot be loaded", path)
        end, previous = stop, key
    if end != data_size:
        raise AudioSRError(f"safetensors data section has {data_size - end} bytes beyond its last tensor "
                           "(not fully covered); the file cannot be loaded", path)


def _inspect_safetensors(path: Any) -> CheckpointListing:
    _, entries, has_metadata = _read_safetensors_header(path)
    entries, stripped = _strip_prefixes(entries)
    tensors = {k: TensorInfo(k, shape, dtype, end - begin)
               for k, (dtype, shape, begin, end) in entries.items()}
    extras = {"__metadata__": "dict"} if has_metadata else {}
    return CheckpointListing(str(path), "safetensors", None, stripped, tensors, extras)


# --------------------------------------------------------------------------
# Public API


def inspect_checkpoint(path: Any) -> CheckpointListing:
    """List a checkpoint's tensors without reading tensor data or running pickle code."""
    fmt = _sniff(path)
    return _inspect_zip(path) if fmt == "torch-zip" else _inspect_safetensors(path)


def sha256_file(path: Any, chunk: int = 1 << 20,
                progress: Callable[[int, int], None] | None = None) -> str:
    """Hex sha256 of a whole file; progress(done_bytes, total_bytes) after each chunk."""
    done, digest = 0, hashlib.sha256()
    try:
        with _open(path) as f:
            total = os.fstat(f.fileno()).st_size
            while block := f.read(chunk):
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except OSError as exc:
        raise AudioSRError(f"cannot read checkpoint: {exc.strerror or exc}", path) from None
    return digest.hexdigest()


def _hash_slice(f: Any, start: int, length: int, chunk: int = 1 << 20) -> str:
    f.seek(start)
    digest, left = hashlib.sha256(), length
    while left:
        block = f.read(min(chunk, left))
        if not block:
            raise EOFError("data ends early")
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


def _is_contiguous(info: TensorInfo) -> bool:
    if info.stride is None:
        return False
    expected = 1
    for n, s in reversed(list(zip(info.shape, info.stride))):
        if n != 1 and s != expected:  # size-1 dims may carry any stride
            return False
        expected *= n
    return True


def _hash_tensor(t: Any) -> str:
    # Same bytes as the stored form of a C-contiguous tensor, so both paths agree.
    import torch

    flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest()


def _zip_digests(path: Any, listing: CheckpointListing) -> dict[str, str]:
    digests, views = {}, []
    with _open_zip(path) as zf:
        prefix = _record_prefix(zf, path)
        for key, info in listing.tensors.items():
            if info.nbytes and not _is_contiguous(info):
                views.append(key)  # strided view: the bytes are not one slice
                continue
            start = info.offset * _ITEMSIZE[info.dtype]
            with zf.open(f"{prefix}data/{info.storage}") as f:
                digests[key] = _hash_slice(f, start, info.nbytes)
    if views:
        state = load_state_dict(path)
        digests.update({key: _hash_tensor(state[key]) for key in views})
    return {key: digests[key] for key in listing.tensors}  # listing order


def _safetensors_digests(path: Any, listing: CheckpointListing) -> dict[str, str]:
    data_start, entries, _ = _read_safetensors_header(path)
    entries, _ = _strip_prefixes(entries)
    with _open(path) as f:
        return {k: _hash_slice(f, data_start + entries[k][2], entries[k][3] - entries[k][2])
                for k in listing.tensors}


def tensor_digests(path: Any, listing: CheckpointListing | None = None) -> dict[str, str]:
    """sha256 of each tensor's raw (C-order) bytes; equal tensors get equal digests."""
    listing = listing or inspect_checkpoint(path)
    try:
        if listing.format == "safetensors":
            return _safetensors_digests(path, listing)
        return _zip_digests(path, listing)
    except AudioSRError:
        raise
    except Exception as exc:
        raise AudioSRError(f"cannot read tensor data ({type(exc).__name__}: {exc})", path) from None


def _torch_error_summary(exc: BaseException) -> str:
    """One informative line of torch's multi-paragraph load errors."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # weights_only failures open with boilerplate; the line naming the global matters.
    best = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported global" in ln),
                lines[0] if lines else "")
    return f"{type(exc).__name__}: {best[:300]}"


def load_state_dict(path: Any, mmap: bool = True) -> dict[str, Any]:
    """Load the tensors (unwrapped, prefix-stripped, detached) on CPU.

    The checkpoint is inspected first, so hostile or malformed files are refused
    by the restricted reader before torch opens them; torch's own weights_only
    unpickler is the second line of defence. Non-tensor entries are dropped.
    `mmap` applies to torch zip files (safetensors are memory-mapped anyway).
    """
    listing = inspect_checkpoint(path)
    try:
        if listing.format == "safetensors":
            import safetensors.torch

            obj = safetensors.torch.load_file(str(path), device="cpu")
        else:
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        raise AudioSRError(f"cannot load checkpoint ({_torch_error_summary(exc)})", path) from None
    import torch

    _, tensors, _ = _split(obj, path, torch.is_tensor)
    tensors, _ = _strip_prefixes(tensors)
    return {k: v.detach() for k, v in tensors.items()}
