"""State-dict parity: every key accounted for, each fault named by its key, reports and CLI."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from audiosr_verify.checks import layout_cache
from audiosr_verify.report import parity as parity_report
from audiosr_verify.checks.state_dict import (
    SCHEDULE_GROUP,
    STATUSES,
    build_manifest,
    fold_weight_norm,
    model_layout,
    module_group,
    read_manifest,
    run_parity,
)
from audiosr_model.errors import AudioSRError
from audiosr_model.weights.checkpoint import save_checkpoint
from audiosr_model.weights.load import load_model

MANIFESTS = Path(__file__).resolve().parent.parent / "golden" / "manifests"
FORMATS = [("bin", "ckpt.bin"), ("safetensors", "ckpt.safetensors")]
KEY_FIELDS = {"key", "status", "expected_shape", "actual_shape", "dtype", "group", "reason"}


@pytest.fixture(autouse=True, scope="module")
def _private_layout_cache(tmp_path_factory):
    """Keep the layout cache of these tests out of ~/.cache."""
    old = os.environ.get("AUDIOSR_VERIFY_CACHE")
    os.environ["AUDIOSR_VERIFY_CACHE"] = str(tmp_path_factory.mktemp("layout-cache"))
    yield
    if old is None:
        os.environ.pop("AUDIOSR_VERIFY_CACHE", None)
    else:
        os.environ["AUDIOSR_VERIFY_CACHE"] = old


def _save(tmp_path: Path, state, fmt: str = "bin", name: str | None = None) -> Path:
    path = tmp_path / (name or ("ckpt.safetensors" if fmt == "safetensors" else "ckpt.bin"))
    save_checkpoint(state, path, fmt)
    return path


def _problems(result) -> dict[str, str]:
    return {k.key: k.status for k in result.problems()}


def _manifest_or_skip(name: str) -> Path:
    path = MANIFESTS / name
    if not path.exists():
        pytest.skip(f"{path.relative_to(MANIFESTS.parent.parent)} not committed yet "
                    "(written from the ORIGINAL code by the oracle manifest dump)")
    return path


def _weight_norm(state: dict, key: str) -> dict:
    """``state`` with ``key`` split into weight_g/weight_v as torch.nn.utils.weight_norm(dim=0) stores it."""
    w = state[key]
    g = w.flatten(1).norm(dim=1).reshape(-1, *([1] * (w.dim() - 1)))
    base = key[: -len(".weight")]
    out = {}
    for k, v in state.items():
        if k == key:
            out[base + ".weight_g"], out[base + ".weight_v"] = g.clone(), w.clone()
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------
# Our layouts against the original's (committed manifests)


@pytest.mark.parametrize("preset,name,n_keys", [("basic", "audiosr_basic.json", 3743),
                                                ("tiny", "audiosr_tiny.json", None)])
def test_committed_manifest_fully_accounted(preset, name, n_keys):
    path = _manifest_or_skip(name)
    result = run_parity(path, preset=preset)
    assert result.ok, result.summary_line() + ": " + ", ".join(list(_problems(result))[:10])
    c = result.counts
    assert c["missing"] == 0 and c["matched"] == result.model_keys
    assert c["matched"] + c["ignored"] == result.source.tensors
    assert result.source.format == "manifest"
    if n_keys is not None:
        assert result.source.tensors == n_keys
        assert result.variant("ema").value == "present"
        assert result.variant("clap_position_ids").value == "present"
        assert result.variant("weight_norm").value == "none"
    assert all(k.reason for k in result.by_status("ignored"))


def test_committed_basic_manifest_variants(tmp_path):
    data = json.loads(_manifest_or_skip("audiosr_basic.json").read_text())
    keys = data["keys"]
    pos = [k for k in keys if k.startswith("clap.") and k.endswith(".embeddings.position_ids")]
    assert len(pos) == 1
    # transformers >= 4.31: 3,742 keys, position_ids absent
    newer = dict(data, keys={k: v for k, v in keys.items() if k not in pos})
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    result = run_parity(tmp_path / "newer.json", manifest=MANIFESTS / "audiosr_basic.json")
    assert result.ok and result.source.tensors == 3742
    assert result.variant("clap_position_ids").value == "absent"
    assert result.reference.only_in_reference == pos and not result.reference.only_in_file
    assert any("transformers >= 4.31" in n for n in result.reference.notes)
    assert result.reference.unexplained() == ([], [])
    # EMA stripped
    no_ema = dict(data, keys={k: v for k, v in keys.items() if not k.startswith("model_ema.")})
    (tmp_path / "no_ema.json").write_text(json.dumps(no_ema))
    result = run_parity(tmp_path / "no_ema.json")
    assert result.ok and result.variant("ema").value == "absent"


# --------------------------------------------------------------------------
# Clean checkpoints, both formats


@pytest.mark.parametrize("fmt,name", FORMATS)
def test_clean_tiny_checkpoint_is_ok(tmp_path, tiny_state, fmt, name):
    result = run_parity(_save(tmp_path, tiny_state, fmt, name), preset="tiny")
    assert result.ok
    assert result.counts == dict.fromkeys(STATUSES, 0) | {"matched": len(tiny_state)}
    assert result.source.format == ("safetensors" if fmt == "safetensors" else "torch-zip")
    assert result.source.tensors == len(tiny_state) and result.source.sha256 is None
    assert result.duplicates is None and not result.hashed
    assert sum(g.keys for g in result.groups) == len(tiny_state)
    assert result.variant("ema").value == "absent"
    assert result.variant("clap").value == "absent"
    assert result.variant("prefix").value == "none"
    assert result.variant("wrapper").value == ("state_dict" if fmt == "bin" else "plain")


def test_parity_reads_no_tensor_data(tmp_path, tiny_state, monkeypatch):
    path = _save(tmp_path, tiny_state)
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    assert run_parity(path, preset="tiny").ok
    assert opened and all(n.endswith("/data.pkl") for n in opened)


# --------------------------------------------------------------------------
# Each fault named by its exact key


def _faults(state):
    drop = "first_stage_model.vocoder.conv_post.weight"
    shape = "cond_stage_models.0.vae.quant_conv.weight"
    added = "model.diffusion_model.extra_block.weight"
    half = "model.diffusion_model.out.2.bias"
    return {
        "missing": (drop, {k: v for k, v in state.items() if k != drop}),
        "shape_mismatch": (shape, dict(state, **{shape: torch.zeros(1, 1, 1, 1)})),
        "unexpected": (added, dict(state, **{added: torch.zeros(3)})),
        "dtype_mismatch": (half, dict(state, **{half: state[half].half()})),
    }


@pytest.mark.parametrize("fmt,name", FORMATS)
@pytest.mark.parametrize("status", ["missing", "shape_mismatch", "unexpected", "dtype_mismatch"])
def test_fault_reported_with_exact_key(tmp_path, tiny_state, fmt, name, status):
    key, state = _faults(tiny_state)[status]
    result = run_parity(_save(tmp_path, state, fmt, name), preset="tiny")
    assert not result.ok
    assert _problems(result) == {key: status}
    entry = next(k for k in result.keys if k.key == key)
    if status == "shape_mismatch":
        assert entry.expected_shape == tuple(tiny_state[key].shape) and entry.actual_shape == (1, 1, 1, 1)
    if status == "dtype_mismatch":
        assert (entry.dtype, entry.expected_dtype) == ("float16", "float32")
    if status == "missing":
        assert entry.actual_shape is None and entry.expected_shape == tuple(tiny_state[key].shape)
    group = next(g for g in result.groups if g.name == module_group(key))
    assert group.counts[status] == 1 and not group.ok


def test_all_faults_at_once(tmp_path, tiny_state):
    faults = _faults(tiny_state)
    state = dict(tiny_state)
    for status, (key, faulty) in faults.items():
        if key in faulty:
            state[key] = faulty[key]
        else:
            del state[key]
    result = run_parity(_save(tmp_path, state), preset="tiny")
    assert _problems(result) == {key: status for status, (key, _) in faults.items()}
    assert result.counts["matched"] == len(tiny_state) - 3


# --------------------------------------------------------------------------
# Variants


def test_ema_clap_and_position_ids_variants(tmp_path, tiny_state):
    extra = {
        "model_ema.decay": torch.tensor(0.999),
        "model_ema.num_updates": torch.tensor(7, dtype=torch.int32),
        "model_ema.diffusion_modelout2bias": torch.zeros(16),
        "clap.model.logit_scale_a": torch.tensor(1.0),
        "clap.model.text_branch.embeddings.position_ids": torch.arange(514).unsqueeze(0),
        "cond_stage_models.0.vae.decoder.conv_in.weight": torch.zeros(2, 2, 3, 3),
        "logvar": torch.zeros(1000),
    }
    result = run_parity(_save(tmp_path, dict(tiny_state, **extra)), preset="tiny")
    assert result.ok and result.counts["ignored"] == len(extra)
    assert result.variant("ema").value == "present"
    assert result.variant("clap").value == "present"
    assert result.variant("clap_position_ids").value == "present"
    ignored = {k.key: k for k in result.by_status("ignored")}
    assert ignored["model_ema.decay"].group == "ema" and ignored["model_ema.decay"].module == "model_ema"
    assert ignored["clap.model.logit_scale_a"].module == "clap"
    assert all(k.reason for k in ignored.values())

    no_pos = {k: v for k, v in extra.items() if not k.endswith("position_ids")}
    result = run_parity(_save(tmp_path, dict(tiny_state, **no_pos), name="newer.bin"), preset="tiny")
    assert result.ok and result.variant("clap_position_ids").value == "absent"
    assert "4.31" in result.variant("clap_position_ids").detail


@pytest.mark.parametrize("fmt,name", FORMATS)
def test_weight_norm_vocoder_keys_fold_to_matched(tmp_path, tiny_state, tiny_config, fmt, name):
    keys = ["first_stage_model.vocoder.conv_pre.weight", "first_stage_model.vocoder.ups.0.weight",
            "first_stage_model.vocoder.resblocks.0.convs1.0.weight"]
    state = dict(tiny_state)
    for key in keys:
        assert key in state
        state = _weight_norm(state, key)
    path = _save(tmp_path, state, fmt, name)
    result = run_parity(path, preset="tiny")
    assert result.ok, result.summary_line()
    assert result.counts["matched"] == len(state)  # every file key, g and v included
    wn = result.variant("weight_norm")
    assert wn.value == "folded" and "3 weight_g/weight_v pairs" in wn.detail
    entry = next(k for k in result.keys if k.key == keys[0][: -len("weight")] + "weight_g")
    assert entry.status == "matched" and "folded" in entry.reason
    # parity predicts the strict loader: it loads the same file
    _, report = load_model(path, tiny_config)
    assert report.ok


def test_unpaired_weight_norm_half_is_unexpected(tmp_path, tiny_state):
    key = "first_stage_model.vocoder.conv_pre.weight"
    state = _weight_norm(tiny_state, key)
    del state[key[: -len("weight")] + "weight_v"]
    result = run_parity(_save(tmp_path, state), preset="tiny")
    assert _problems(result) == {key[: -len("weight")] + "weight_g": "unexpected", key: "missing"}


def test_fold_weight_norm_specs():
    specs = {"a.weight_g": ((4, 1, 1), "float32"), "a.weight_v": ((4, 2, 3), "float32"),
             "b.parametrizations.weight.original0": ((2, 1), "float32"),
             "b.parametrizations.weight.original1": ((2, 5), "float32"), "c.bias": ((4,), "float32")}
    folded, origin = fold_weight_norm(specs)
    assert folded == {"a.weight": ((4, 2, 3), "float32"), "b.weight": ((2, 5), "float32"), "c.bias": ((4,), "float32")}
    assert origin["a.weight"] == ("a.weight_g", "a.weight_v")


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefix_stripped(tmp_path, tiny_state, prefix):
    path = tmp_path / "prefixed.bin"
    torch.save({prefix + k: v for k, v in tiny_state.items()}, path)  # plain, no {"state_dict"} wrapper
    result = run_parity(path, preset="tiny")
    assert result.ok
    assert result.variant("prefix").value == prefix and result.variant("wrapper").value == "plain"


def test_module_groups():
    assert module_group("betas") == module_group("scale_factor") == SCHEDULE_GROUP
    assert module_group("model.diffusion_model.input_blocks.0.0.weight") == "model.diffusion_model"
    assert module_group("first_stage_model.vocoder.conv_pre.weight") == "first_stage_model.vocoder"
    assert module_group("cond_stage_models.0.vae.encoder.conv_in.weight") == "cond_stage_models.0.vae.encoder"
    assert module_group("model_ema.diffusion_modelout2bias") == "model_ema"
    assert module_group("clap.model.audio_branch.bn0.weight") == "clap.model.audio_branch"
    assert module_group("clap.model.text_branch.embeddings.position_ids") == "clap.model.text_branch"
    assert module_group("clap.model.text_projection.0.weight") == module_group("clap.model.logit_scale_t") == "clap"


# --------------------------------------------------------------------------
# Manifests as source and as reference


@pytest.mark.parametrize("fmt,name", FORMATS)
def test_manifest_round_trip(tmp_path, tiny_state, fmt, name):
    path = _save(tmp_path, tiny_state, fmt, name)
    manifest = build_manifest(path, preset="tiny")
    assert manifest["schema_version"] == 1 and manifest["preset"] == "tiny"
    assert list(manifest["keys"]) == list(read_manifest_keys(path))
    assert manifest["keys"]["scale_factor"] == {"shape": [], "dtype": "float32"}
    out = tmp_path / "m.json"
    out.write_text(json.dumps(manifest))
    assert read_manifest(out).keys == {k: (tuple(v.shape), "float32") for k, v in tiny_state.items()}
    result = run_parity(out, preset="tiny")
    assert result.ok and result.source.format == "manifest" and result.counts["matched"] == len(tiny_state)


def read_manifest_keys(path):
    from audiosr_model.weights.checkpoint_reader import inspect_checkpoint

    return inspect_checkpoint(path).tensors


def test_reference_comparison_is_informational(tmp_path, tiny_state):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps(build_manifest(_save(tmp_path, tiny_state, name="full.bin"))))
    dropped = "first_stage_model.vocoder.conv_post.bias"
    state = {k: v for k, v in tiny_state.items() if k != dropped}
    state["model_ema.decay"] = torch.tensor(0.999)
    result = run_parity(_save(tmp_path, state, name="partial.bin"), preset="tiny", manifest=ref)
    assert result.reference.only_in_reference == [dropped]
    assert result.reference.only_in_file == ["model_ema.decay"]
    assert result.reference.unexplained() == ([dropped], [])  # EMA is summarised by a note
    assert f"reference only: `{dropped}`" in parity_report.to_markdown(result)
    assert _problems(result) == {dropped: "missing"}
    same = run_parity(tmp_path / "full.bin", preset="tiny", manifest=ref)
    assert same.ok and same.reference.identical


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ('{"schema_version": 1}', "not a key manifest"),
    ('{"keys": {"a": {"shape": [2], "dtype": "float99"}}}', "unknown dtype"),
    ('{"schema_version": 9, "keys": {}}', "schema_version"),
])
def test_bad_manifest_is_one_line_error(tmp_path, content, match):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(AudioSRError, match=match) as exc:
        run_parity(bad, preset="tiny")
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


# --------------------------------------------------------------------------
# Our layout: built from the skeleton, cached by a fingerprint of the model sources


def test_layout_cache_round_trip_and_invalidation(tmp_path, monkeypatch):
    from audiosr_model.weights.checkpoint import model_specs
    from audiosr_model.config import tiny
    from audiosr_model.weights.load import skeleton

    monkeypatch.setenv("AUDIOSR_VERIFY_CACHE", str(tmp_path))
    model_layout.cache_clear()
    try:
        built = model_layout("tiny")
        assert not built.cached and built.specs == model_specs(skeleton(tiny()))
        assert len(list(tmp_path.glob("layout-tiny-*.json"))) == 1
        model_layout.cache_clear()
        again = model_layout("tiny")
        assert again.cached and again.specs == built.specs and again.groups == built.groups
        assert list(again.specs) == list(built.specs)  # model order kept
        model_layout.cache_clear()
        assert not model_layout("tiny", cache=False).cached
        # any change of the model sources (or torch) changes the fingerprint: rebuilt
        monkeypatch.setattr(layout_cache, "_layout_fingerprint", lambda preset: "f" * 64)
        model_layout.cache_clear()
        assert not model_layout("tiny").cached
        # a damaged entry is rebuilt, not trusted
        for f in tmp_path.glob("layout-tiny-*.json"):
            f.write_text("{damaged")
        model_layout.cache_clear()
        assert not model_layout("tiny").cached
    finally:
        model_layout.cache_clear()


def test_layout_fingerprint_covers_model_sources(monkeypatch, tmp_path):
    import audiosr_model as model

    first = layout_cache._layout_fingerprint("tiny")
    assert first == layout_cache._layout_fingerprint("tiny") != layout_cache._layout_fingerprint("basic")
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "__init__.py").write_text("# changed\n")
    monkeypatch.setattr(model, "__file__", str(fake / "__init__.py"))
    assert layout_cache._layout_fingerprint("tiny") != first


# --------------------------------------------------------------------------
# Hashing


@pytest.mark.parametrize("fmt,name", FORMATS)
def test_hash_finds_duplicates_and_sha256(tmp_path, tiny_state, fmt, name):
    import hashlib

    state = dict(tiny_state)
    a, b = "first_stage_model.encoder.conv_in.weight", "cond_stage_models.0.vae.encoder.conv_in.weight"
    state[b] = state[a].clone()
    path = _save(tmp_path, state, fmt, name)
    result = run_parity(path, preset="tiny", hash=True)
    assert result.ok and result.hashed
    assert result.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # file order: safetensors sorts keys, torch keeps insertion order
    assert [set(d.keys) for d in result.duplicates] == [{a, b}]
    assert set(result.duplicate_modules()[0]["modules"]) == {"first_stage_model.encoder", "cond_stage_models.0.vae.encoder"}
    d = result.to_dict()["duplicates"]
    assert set(d["groups"][0]["keys"]) == {a, b} and d["redundant_bytes"] == state[a].numel() * 4


# --------------------------------------------------------------------------
# Result schema and renderers


def test_json_schema(tmp_path, tiny_state):
    key, state = _faults(tiny_state)["shape_mismatch"]
    result = run_parity(_save(tmp_path, state), preset="tiny")
    data = json.loads(parity_report.to_json(result))
    assert data["schema_version"] == 1 and data["ok"] is False and data["preset"] == "tiny"
    assert list(data["summary"]) == list(STATUSES)
    assert data["summary"]["shape_mismatch"] == 1
    assert {"path", "format", "size_bytes", "sha256"} <= set(data["source"])
    assert data["source"]["size_bytes"] == os.path.getsize(tmp_path / "ckpt.bin")
    assert len(data["keys"]) == len(tiny_state)
    assert all(KEY_FIELDS <= set(k) for k in data["keys"])
    entry = next(k for k in data["keys"] if k["key"] == key)
    assert entry["status"] == "shape_mismatch" and entry["actual_shape"] == [1, 1, 1, 1]
    assert {v["name"] for v in data["variants"]} >= {"ema", "prefix", "wrapper", "weight_norm"}
    g = data["groups"][0]
    assert {"name", "keys", "parameters", "bytes", "counts"} <= set(g) and list(g["counts"]) == list(STATUSES)
    assert data["duplicates"] is None and data["reference"] is None
    assert data["model_layout"]["preset"] == "tiny" and data["model_layout"]["keys"] == len(tiny_state)


def test_renderers_name_offending_keys(tmp_path, tiny_state):
    from rich.console import Console

    state = dict(tiny_state)
    for key, faulty in _faults(tiny_state).values():
        if key in faulty:
            state[key] = faulty[key]
        else:
            del state[key]
    result = run_parity(_save(tmp_path, state), preset="tiny")
    assert len(result.problems()) == 4
    md, page = parity_report.to_markdown(result), parity_report.to_html(result)
    console = Console(record=True, width=200)
    parity_report.print_rich(result, console)
    text = console.export_text()
    for k in result.problems():
        assert f"`{k.key}`" in md and k.status in md
        assert k.key in page and k.key in text
    assert "FAILED" in md and "FAILED" in page and "FAILED" in text
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<script" not in page
    assert "model.diffusion_model" in text and "| module |" in md


def test_html_escapes_keys(tmp_path, tiny_state):
    state = dict(tiny_state, **{"<b>evil</b>&key": torch.zeros(1)})
    page = parity_report.to_html(run_parity(_save(tmp_path, state, "safetensors"), preset="tiny"))
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;&amp;key" in page


def test_human_bytes():
    assert parity_report.human_bytes(0) == "0 B"
    assert parity_report.human_bytes(6_182_547_756) == "6.18 GB"


# --------------------------------------------------------------------------
# CLI


@pytest.fixture
def cli_main():
    """`audiosr-verify`'s entry point (the parity verbs are registered by cli.main)."""
    from audiosr_verify.cli.main import main

    return main


def test_cli_ok_writes_reports(tmp_path, tiny_state, cli_main, capsys):
    path = _save(tmp_path, tiny_state)
    out = tmp_path / "out"
    out.mkdir()
    rc = cli_main(["parity", str(path), "--preset", "tiny", "--json", str(out / "r.json"),
                   "--markdown", str(out / "r.md"), "--html", str(out / "r.html")])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "parity OK" in stdout and "first_stage_model.vocoder" in stdout
    assert json.loads((out / "r.json").read_text())["ok"] is True
    assert "State-dict parity: OK" in (out / "r.md").read_text()
    assert (out / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json", "r.md"]  # no temp files left


def test_cli_fault_exits_1_and_names_keys(tmp_path, tiny_state, cli_main, capsys):
    key, state = _faults(tiny_state)["unexpected"]
    path = _save(tmp_path, state)
    rc = cli_main(["parity", str(path), "--preset", "tiny", "--json", str(tmp_path / "r.json")])
    assert rc == 1
    assert key in capsys.readouterr().out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is False and [k["key"] for k in data["keys"] if k["status"] == "unexpected"] == [key]


def test_cli_manifest_verb_and_manifest_as_source(tmp_path, tiny_state, cli_main, capsys):
    path = _save(tmp_path, tiny_state, "safetensors")
    out = tmp_path / "m.json"
    assert cli_main(["manifest", str(path), "--output", str(out), "--preset", "tiny", "--hash"]) == 0
    manifest = json.loads(out.read_text())
    assert len(manifest["keys"]) == len(tiny_state) and manifest["source"]["format"] == "safetensors"
    assert len(manifest["source"]["sha256"]) == 64
    assert cli_main(["parity", str(out), "--preset", "tiny"]) == 0
    assert cli_main(["parity", str(path), "--preset", "tiny", "--manifest", str(out)]) == 0
    assert "identical key set" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "directory"])
def test_cli_bad_file_exits_2(tmp_path, cli_main, capsys, kind):
    bad = tmp_path / "bad.bin"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("<html>404 not found</html>")
    elif kind == "directory":
        bad.mkdir()
    assert cli_main(["parity", str(bad), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err and "Traceback" not in err


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cli_refuses_malicious_pickle(tmp_path, cli_main, capsys):
    good, evil, marker = tmp_path / "good.pt", tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"w": torch.ones(2)}, good)
    payload = pickle.dumps({"state_dict": {"w": _Evil(marker)}}, protocol=2)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else src.read(info))
    for argv in (["parity", str(evil), "--preset", "tiny", "--hash"], ["manifest", str(evil), "-o", str(tmp_path / "m.json")]):
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert str(evil) in err and "refusing to unpickle" in err
    assert not marker.exists() and not (tmp_path / "m.json").exists()


def test_cli_refuses_to_overwrite_input(tmp_path, tiny_state, cli_main, capsys):
    path = _save(tmp_path, tiny_state)
    before = path.read_bytes()
    assert cli_main(["parity", str(path), "--preset", "tiny", "--json", str(path)]) == 2
    assert path.read_bytes() == before
    assert "overwrite" in capsys.readouterr().err
