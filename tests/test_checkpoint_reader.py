"""Tests for model.checkpoint_reader: lazy, safe checkpoint inspection."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from audiosr_model.weights import checkpoint_reader as cr
from audiosr_model.weights.checkpoint_reader import (
    TensorInfo,
    inspect_checkpoint,
    load_state_dict,
    sha256_file,
    tensor_digests,
)
from audiosr_model.errors import AudioSRError


def _info(key: str, t: torch.Tensor, storage: str | None = None) -> TensorInfo:
    """What the listing should say about a real tensor."""
    return TensorInfo(
        key=key,
        shape=tuple(t.shape),
        dtype=str(t.dtype).removeprefix("torch."),
        nbytes=t.numel() * t.element_size(),
        storage=storage,
        offset=t.storage_offset() if storage is not None else 0,
    )


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "conv.weight": torch.randn(3, 2, 5),
        "conv.bias": torch.randn(3),
        "half": torch.randn(7).half(),
        "steps": torch.tensor(11),  # 0-dim int64
        "base": base,
        "rows": base[1:3],  # contiguous view sharing base's storage at an offset
    }


def _storage_ids(listing) -> dict[str, str | None]:
    return {k: v.storage for k, v in listing.tensors.items()}


# --------------------------------------------------------------------------
# Listings


def test_wrapped_state_dict_listing(tmp_path, tensors):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": tensors, "global_step": 1234, "epoch": 3.0}, path)
    listing = inspect_checkpoint(path)

    assert listing.format == "torch-zip"
    assert listing.path == str(path)
    assert listing.wrapper == "state_dict"
    assert listing.stripped_prefix is None
    assert list(listing.tensors) == list(tensors)  # file order
    ids = _storage_ids(listing)
    assert ids["rows"] == ids["base"]  # shared storage -> same id
    assert len({ids[k] for k in tensors if k != "rows"}) == len(tensors) - 1
    assert listing.tensors == {k: _info(k, t, ids[k]) for k, t in tensors.items()}
    assert listing.tensors["half"].dtype == "float16"
    assert listing.tensors["half"].nbytes == 14
    assert listing.tensors["rows"].offset == 6
    assert listing.extras == {"global_step": "int", "epoch": "float"}


def test_plain_prefixed_state_dict(tmp_path, tensors):
    path = tmp_path / "pytorch_model.bin"
    torch.save({f"module.{k}": v for k, v in tensors.items()}, path)
    listing = inspect_checkpoint(path)
    assert listing.wrapper is None
    assert listing.stripped_prefix == "module."
    assert list(listing.tensors) == list(tensors)
    assert listing.extras == {}


def test_prefix_only_stripped_when_on_every_key(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"module.a": torch.ones(1), "b": torch.ones(1)}, path)
    listing = inspect_checkpoint(path)
    assert listing.stripped_prefix is None
    assert list(listing.tensors) == ["module.a", "b"]


def test_module_state_dict_with_parameters_and_compile_prefix(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    state = module.state_dict()  # OrderedDict carrying _metadata
    path = tmp_path / "weird name.weights"  # format comes from content, not suffix
    torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, path)
    listing = inspect_checkpoint(path)
    assert listing.stripped_prefix == "_orig_mod."
    assert {k: (v.shape, v.dtype) for k, v in listing.tensors.items()} == {
        k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()
    }
    # a bare nn.Parameter is pickled through _rebuild_parameter
    torch.save({"p": torch.nn.Parameter(torch.ones(2, 2))}, path)
    assert inspect_checkpoint(path).tensors["p"].shape == (2, 2)


def test_safetensors_listing(tmp_path, tensors):
    path = tmp_path / "model.safetensors"
    plain = {f"module.{k}": v.clone() for k, v in tensors.items()}  # no shared storage
    save_file(plain, str(path))
    listing = inspect_checkpoint(path)
    assert listing.format == "safetensors"
    assert listing.wrapper is None
    assert listing.stripped_prefix == "module."
    assert listing.tensors == {k: _info(k, t) for k, t in tensors.items()}
    assert listing.extras == {}


def test_safetensors_header_corruption(tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file({"a": torch.ones(4)}, str(path))
    raw = path.read_bytes()
    path.write_bytes(raw[:-4])  # data truncated: offsets now point past the end
    with pytest.raises(AudioSRError, match="past the end") as exc:
        inspect_checkpoint(path)
    assert str(path) in str(exc.value)
    n = int.from_bytes(raw[:8], "little")
    path.write_bytes(raw[:8] + b"{" + b"x" * (n - 1) + raw[8 + n:])
    with pytest.raises(AudioSRError, match="not valid JSON"):
        inspect_checkpoint(path)
    path.write_bytes((10**6).to_bytes(8, "little") + raw[8:])
    with pytest.raises(AudioSRError, match="header length"):
        inspect_checkpoint(path)


# --------------------------------------------------------------------------
# Inspection reads no tensor data


def test_inspect_opens_only_data_pkl(tmp_path, tensors, monkeypatch):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": tensors}, path)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    inspect_checkpoint(path)
    assert opened and all(n.endswith("/data.pkl") for n in opened), opened


def test_inspect_ignores_corrupt_tensor_bytes(tmp_path):
    # Garbage in a data record fails zipfile's CRC check when read, so a
    # listing that still succeeds proves the record was never read.
    path = tmp_path / "model.pt"
    marker = torch.full((64,), 1234.5)
    torch.save({"w": marker}, path)
    raw = path.read_bytes()
    pattern = marker.numpy().tobytes()
    assert raw.count(pattern) == 1
    path.write_bytes(raw.replace(pattern, b"\x00" * len(pattern)))
    with zipfile.ZipFile(path) as zf, pytest.raises(zipfile.BadZipFile):
        zf.read(next(n for n in zf.namelist() if n.endswith("/data/0")))
    assert inspect_checkpoint(path).tensors["w"].shape == (64,)


def test_inspect_does_not_call_torch_load(tmp_path, tensors, monkeypatch):
    path = tmp_path / "model.pt"
    torch.save(tensors, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("inspect_checkpoint must not call torch.load")

    monkeypatch.setattr(torch, "load", forbidden)
    assert list(inspect_checkpoint(path).tensors) == list(tensors)


# --------------------------------------------------------------------------
# Hostile pickles are refused without running them


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(tmp_path, marker):
    """A real torch.save zip whose data.pkl is replaced by a hostile pickle."""
    good, evil = tmp_path / "good.pt", tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2)}, good)
    payload = pickle.dumps({"w": _Evil(marker)}, protocol=2)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = payload if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info, data)
    # sanity: the payload really would run if unpickled naively
    assert b"system" in payload
    return evil


def test_malicious_pickle_refused_by_inspect(tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path, marker)
    with pytest.raises(AudioSRError, match=r"refusing to unpickle (posix|nt|os)\.system") as exc:
        inspect_checkpoint(evil)
    assert str(evil) in str(exc.value)
    assert not marker.exists()


def test_malicious_pickle_refused_by_load(tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path, marker)
    with pytest.raises(AudioSRError, match="refusing to unpickle") as exc:
        load_state_dict(evil)
    assert str(evil) in str(exc.value)
    assert not marker.exists()


def test_malicious_pickle_refused_by_torch_weights_only(tmp_path, monkeypatch):
    # Second line of defence: even if the pre-check were bypassed, torch's
    # weights_only unpickler refuses and the error becomes an AudioSRError.
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path, marker)
    fake = cr.CheckpointListing(str(evil), "torch-zip", None, None, {}, {})
    monkeypatch.setattr(cr, "inspect_checkpoint", lambda path: fake)
    with pytest.raises(AudioSRError, match="cannot load checkpoint.*system") as exc:
        load_state_dict(evil)
    assert str(evil) in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not marker.exists()


def test_non_latin1_codecs_refused(tmp_path):
    class Encoded:
        def __reduce__(self):
            import _codecs

            return (_codecs.encode, ("abc", "rot13"))

    path = tmp_path / "codec.pt"
    torch.save({"w": torch.ones(1)}, path)
    with zipfile.ZipFile(path) as src:
        infos = [(i, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in infos:
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps({"x": Encoded()}, protocol=2)
            dst.writestr(info, data)
    with pytest.raises(AudioSRError, match="corrupt data.pkl"):
        inspect_checkpoint(path)


def test_pickle_cannot_mutate_whitelist(tmp_path):
    # BUILD on a whitelisted stand-in ({"a": FloatStorage} then set its name)
    # must fail rather than rename float32 storages for later inspections.
    path = tmp_path / "build.pt"
    torch.save({"w": torch.ones(1)}, path)
    payload = (b"\x80\x02}X\x01\x00\x00\x00actorch\nFloatStorage\n"
               b"}X\x04\x00\x00\x00nameX\x07\x00\x00\x00float64sbs.")
    with zipfile.ZipFile(path) as src:
        infos = [(i, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in infos:
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else data)
    with pytest.raises(AudioSRError, match="corrupt data.pkl"):
        inspect_checkpoint(path)
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(3)}, good)
    assert inspect_checkpoint(good).tensors["w"] == TensorInfo("w", (3,), "float32", 12, "0", 0)


# --------------------------------------------------------------------------
# Unsupported and broken files


def test_legacy_format_refused(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    for func in (inspect_checkpoint, load_state_dict):
        with pytest.raises(AudioSRError, match="legacy \\(non-zip\\) torch checkpoint") as exc:
            func(path)
        assert str(path) in str(exc.value)


def _broken_files(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    text = tmp_path / "page.ckpt"
    text.write_text("<html><body>404 Not Found</body></html>\n")
    lfs = tmp_path / "lfs.ckpt"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n")
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"w": torch.randn(256)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:600])
    nopkl = tmp_path / "nopkl.ckpt"
    with zipfile.ZipFile(nopkl, "w") as zf:
        zf.writestr("archive/other.txt", "hi")
    raw_pickle = tmp_path / "raw.pkl"
    raw_pickle.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    directory = tmp_path / "a_directory.ckpt"
    directory.mkdir()
    missing = tmp_path / "missing.ckpt"
    return {
        "empty": (empty, "empty file"),
        "text": (text, "text file"),
        "lfs": (lfs, "Git LFS pointer"),
        "truncated": (truncated, "truncated or corrupt zip"),
        "nopkl": (nopkl, "no <archive>/data.pkl"),
        "raw_pickle": (raw_pickle, "bare pickle"),
        "directory": (directory, "is a directory"),
        "missing": (missing, "not found"),
    }


@pytest.mark.parametrize(
    "kind", ["empty", "text", "lfs", "truncated", "nopkl", "raw_pickle", "directory", "missing"]
)
@pytest.mark.parametrize("func", [inspect_checkpoint, load_state_dict, tensor_digests])
def test_broken_files_raise_one_line_error(tmp_path, kind, func):
    path, reason = _broken_files(tmp_path)[kind]
    with pytest.raises(AudioSRError) as exc:
        func(path)
    message = str(exc.value)
    assert str(path) in message and reason in message
    assert "\n" not in message


def test_sha256_file_errors(tmp_path):
    with pytest.raises(AudioSRError, match="not found"):
        sha256_file(tmp_path / "missing.bin")
    with pytest.raises(AudioSRError, match="directory"):
        sha256_file(tmp_path)


def test_non_dict_checkpoint_refused(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(AudioSRError, match="not a dict of tensors"):
        inspect_checkpoint(path)


# --------------------------------------------------------------------------
# Hashing and real loading


def test_sha256_file_matches_hashlib(tmp_path, tensors):
    path = tmp_path / "model.pt"
    torch.save(tensors, path)
    seen: list[tuple[int, int]] = []
    digest = sha256_file(path, chunk=100, progress=lambda done, total: seen.append((done, total)))
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    assert seen[-1] == (size, size) and len(seen) == -(-size // 100)


def test_tensor_digests_torch_zip(tmp_path):
    base = torch.randn(5, 6)
    state = {
        "a": torch.randn(4, 3),
        "c": torch.randn(4, 3),
        "base": base,
        "rows": base[2:],  # contiguous slice of a shared storage
        "cols": base[:, ::2],  # strided view: goes through the torch.load fallback
        "half": torch.randn(3).half(),
        "empty": torch.ones(0, 3),
    }
    state["b"] = state["a"].clone()
    state["rows_copy"] = state["rows"].clone()
    state["cols_copy"] = state["cols"].clone()
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "global_step": 3}, path)
    digests = tensor_digests(path)
    assert list(digests) == list(inspect_checkpoint(path).tensors)
    assert digests["a"] == digests["b"]
    assert digests["a"] != digests["c"]
    assert digests["rows"] == digests["rows_copy"] != digests["base"]
    assert digests["cols"] == digests["cols_copy"]
    assert digests["half"] == hashlib.sha256(state["half"].numpy().tobytes()).hexdigest()
    assert digests["empty"] == hashlib.sha256(b"").hexdigest()


def test_tensor_digests_safetensors(tmp_path):
    a = torch.randn(8)
    path = tmp_path / "model.safetensors"
    save_file({"a": a, "b": a.clone(), "c": torch.randn(8)}, str(path))
    digests = tensor_digests(path)
    assert digests["a"] == digests["b"] != digests["c"]
    assert digests["a"] == hashlib.sha256(a.numpy().tobytes()).hexdigest()


def test_load_state_dict_torch_zip(tmp_path, tensors):
    path = tmp_path / "model.ckpt"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in tensors.items()}, "global_step": 7}, path
    )
    loaded = load_state_dict(path)
    assert list(loaded) == list(tensors) == list(inspect_checkpoint(path).tensors)
    for key, value in tensors.items():
        assert loaded[key].dtype == value.dtype
        assert torch.equal(loaded[key], value)
    assert not load_state_dict(path, mmap=False)["base"].requires_grad


def test_load_state_dict_safetensors(tmp_path, tensors):
    path = tmp_path / "model.safetensors"
    plain = {k: v.clone() for k, v in tensors.items()}
    save_file(plain, str(path))
    loaded = load_state_dict(path)
    assert set(loaded) == set(plain)
    assert all(torch.equal(loaded[k], v) for k, v in plain.items())
