"""Export the oracle's references into ``golden/`` (runs in the project venv).

- ``export_manifests(out_dir)``: ``audiosr_basic.json`` and ``audiosr_tiny.json``,
  every state_dict key of the ORIGINAL model with shape and dtype.
- ``export_fixtures(golden_dir)``: ``inputs/`` (deterministic fixture audio) and
  ``oracle/tiny/`` (the original's stage-by-stage outputs on the shared tiny
  random weights, plus ``metadata.json``). Schema: ``golden/oracle/README.md``.

The shared tiny weights are never stored (35 MB): ``shared_tiny_weights()``
regenerates them bit for bit from the tiny manifest, the seed and
``model.random_weights`` (whose GENERATOR_VERSION is recorded), and
``weights_digest()`` checks the regeneration against ``metadata.json``.

    python -m audiosr_verify.oracle.export [--golden DIR] [--manifests-only | --fixtures-only]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify import schema
from audiosr_verify.oracle import fixture_inputs
from audiosr_verify.util.hashing import sha256_file
from audiosr_verify.util.paths import data_dir
from audiosr_verify.oracle import driver

SCHEMA_VERSION = 1

WEIGHTS_SEED = 0
SCALE_FACTOR = 0.5  # not the default 1.0: a dropped or ignored scale_factor shows up
# Groups of the original's state_dict inference never uses, not in the shared weights: the schema's one list
# (it used to be copied here by hand, with nothing pinning the two together).
IGNORED_PREFIXES = schema.IGNORED_PREFIXES

SEED = 42
DDIM_STEPS = 2
GUIDANCE = 3.5
UNET_TIMESTEPS = [1, 501, 996]

# What to store per fixture (see golden/oracle/README.md):
#   level   "dsp" (front end, cutoff, low-pass), "chain" (+ the whole DDIM, decoder,
#           vocoder and post-processing path), "full" (+ raw random draws, UNet at
#           fixed timesteps, step-0 model outputs, replaced mel);
#   filters "all" stores the four low-pass types, "seed" only the one seed 42 picks;
#   max_samples / max_lowpass_mel_rows keep the budget (golden/oracle < 20 MB).
INPUT_PLAN = {
    "tone_mix_8k": {"filters": "all", "max_samples": 24000},
    "tone_mix_16k": {"level": "full", "filters": "all"},
    "tone_mix_22k": {"filters": "seed", "max_samples": 24000},
    "tone_mix_44k": {"filters": "seed", "max_samples": 24000},
    "noise_burst_48k": {"level": "chain", "filters": "seed"},
    "clip_1p3s_16k": {"level": "chain", "filters": "all"},
    "clip_11s_44k": {"filters": "seed", "max_samples": 48000, "max_mel_rows": 640, "max_lowpass_mel_rows": 128},
    "stereo_44k": {"filters": "seed", "max_samples": 24000},
    "silence_48k": {"max_samples": 24000},
    "quiet_16k": {"filters": "all"},
    "tone_523_22k": {"max_samples": 24000},
}
BUDGET_BYTES = 20_000_000

Progress = Optional[Callable[[str], None]]


def _say(progress: Progress, msg: str) -> None:
    if progress:
        progress(msg)


# ------------------------------------------------------------------ the original's two runs of an input


def merge_end2end(name: str, meta: dict, e: dict) -> dict:
    """An input's stage metadata with its plain ``super_resolution`` run (``end2end``) merged in.

    The instrumented chain and the plain run must give the same final waveform (sha256): otherwise the
    original is not deterministic on this host and no fixture of it can be trusted (one line, nothing
    published). Shared by the bundled export and `user_fixtures`.
    """
    end2end = {k: e[k] for k in ("filter_type", "error", "checksum", "shape") if k in e}
    end2end["plain_run"] = e.get("plain_run", True)  # False: taken from the chain (user_fixtures.chain_as_end2end)
    chain = meta.get("chain") or {}
    if "final" in chain and "checksum" in e:
        end2end["equals_chain_final"] = chain["final"]["sha256"] == e["checksum"]["sha256"]
        if not end2end["equals_chain_final"]:
            raise AudioSRError(f"input {name}: the instrumented chain and plain super_resolution of the original "
                               "differ (not deterministic on this host?)")
    meta["end2end"] = end2end
    meta.pop("bytes", None)
    meta.pop("seconds", None)
    return meta


# ------------------------------------------------------------------ manifests


def export_manifests(out_dir: str | os.PathLike | None = None, presets=("basic", "tiny"),
                     progress: Progress = None, python=None) -> dict:
    """Write ``audiosr_<preset>.json`` for each preset; return {preset: summary}."""
    out = Path(out_dir) if out_dir is not None else data_dir() / "manifests"
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    with tempfile.TemporaryDirectory(prefix="audiosr-oracle-") as work:
        for preset in presets:
            _say(progress, f"manifest {preset}: building the original model")
            target = out / f"audiosr_{preset}.json"
            result = driver.run("manifest", {"preset": preset, "out": str(target)}, work, python=python)
            summary[preset] = {k: result[k] for k in ("n_keys", "parameters", "groups")}
            _say(progress, f"manifest {preset}: {result['n_keys']} keys -> {target}")
    return summary


def read_manifest(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------ shared weights


def is_shared_key(key: str) -> bool:
    from audiosr_model.weights.random_weights import COMPUTED_BUFFERS

    if key.startswith(IGNORED_PREFIXES):
        return False
    return key.rsplit(".", 1)[-1] not in COMPUTED_BUFFERS


def shared_weights(manifest: dict, seed: int = WEIGHTS_SEED, scale_factor: float = SCALE_FACTOR) -> dict[str, torch.Tensor]:
    """Random weights for every key inference uses, in manifest order, plus scale_factor."""
    from audiosr_model.weights.random_weights import random_state_dict

    shapes = {
        k: (tuple(v["shape"]), getattr(torch, v["dtype"]))
        for k, v in manifest["keys"].items()
        if is_shared_key(k)
    }
    weights = random_state_dict(shapes, seed)
    weights["scale_factor"] = torch.tensor(float(scale_factor), dtype=torch.float32)
    return weights


def shared_tiny_weights(manifest_path: str | os.PathLike | None = None,
                        seed: int = WEIGHTS_SEED) -> dict[str, torch.Tensor]:
    if manifest_path is None:
        manifest_path = data_dir() / "manifests" / "audiosr_tiny.json"
    return shared_weights(read_manifest(manifest_path), seed)


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted keys of (key, dtype, shape, raw bytes)."""
    h = hashlib.sha256()
    for key in sorted(weights):
        t = weights[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _weights_metadata(weights: dict, manifest_rel: str) -> dict:
    from audiosr_model.weights import random_weights

    return {
        "generator": "model.random_weights.random_state_dict",
        "generator_version": random_weights.GENERATOR_VERSION,
        "seed": WEIGHTS_SEED,
        "keys_from": manifest_rel,
        "excluded_prefixes": list(IGNORED_PREFIXES),
        "excluded_leaves": sorted(random_weights.COMPUTED_BUFFERS),
        "scale_factor": SCALE_FACTOR,
        "scale_factor_note": "random checkpoints set scale_factor to 0.5 (not 1.0) so that a dropped scale_factor is detectable",
        "n_keys": len(weights),
        "n_elements": int(sum(t.numel() for t in weights.values())),
        "digest": weights_digest(weights),
        "digest_rule": "audiosr_verify.oracle.export.weights_digest: sha256 over sorted keys of key|dtype|shape| + raw bytes",
        "stored": False,
    }


# ------------------------------------------------------------------ fixtures


def export_inputs(out_dir: str | os.PathLike | None = None) -> dict:
    return fixture_inputs.write_fixture_inputs(out_dir if out_dir is not None else data_dir() / "inputs")


def export_fixtures(golden_dir: str | os.PathLike | None = None, progress: Progress = None,
                    python=None, workdir: str | os.PathLike | None = None) -> dict:
    """Write ``inputs/`` and ``oracle/tiny/`` under ``golden_dir``; return metadata."""
    golden = Path(golden_dir) if golden_dir is not None else data_dir()
    manifest_path = golden / "manifests" / "audiosr_tiny.json"
    if not manifest_path.exists():
        export_manifests(golden / "manifests", presets=("tiny",), progress=progress, python=python)
    _say(progress, "fixture inputs")
    index = export_inputs(golden / "inputs")

    out_dir = golden / "oracle" / "tiny"
    own_work = workdir is None
    work = Path(tempfile.mkdtemp(prefix="audiosr-oracle-")) if own_work else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        from safetensors.torch import save_file

        weights = shared_weights(read_manifest(manifest_path))
        weights_path = work / "tiny_weights.safetensors"
        save_file(weights, str(weights_path))
        stage_dir = work / "stages"
        inputs = [
            {
                "name": name,
                "path": str((golden / "inputs" / entry["file"]).resolve()),
                "level": "dsp",
                "filters": "seed",
                **INPUT_PLAN.get(name, {}),
            }
            for name, entry in index["inputs"].items()
        ]
        common = {"preset": "tiny", "weights": str(weights_path), "seed": SEED, "ddim_steps": DDIM_STEPS,
                  "guidance_scale": GUIDANCE}
        _say(progress, f"oracle stages for {len(inputs)} inputs")
        start = time.monotonic()
        stages = driver.run("stages", {**common, "inputs": inputs, "out_dir": str(stage_dir),
                                       "unet_timesteps": UNET_TIMESTEPS}, work, python=python)
        _say(progress, f"oracle stages done in {time.monotonic() - start:.0f} s; end2end")
        e2e = driver.run("end2end", {**common, "inputs": [{"name": i["name"], "path": i["path"]} for i in inputs],
                                     "out_dir": str(work / "end2end")}, work, python=python)

        per_input = {name: merge_end2end(name, meta, e2e["inputs"][name]) for name, meta in stages["inputs"].items()}

        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        for name in per_input:
            shutil.copyfile(stage_dir / f"{name}.safetensors", out_dir / f"{name}.safetensors")
        errors = {n: {**m.get("errors", {}), **({"end2end": m["end2end"]["error"]} if "error" in m["end2end"] else {})}
                  for n, m in per_input.items()}
        metadata = {
            "schema_version": SCHEMA_VERSION,
            "preset": "tiny",
            "versions": stages["versions"],
            "weights": _weights_metadata(weights, "golden/manifests/audiosr_tiny.json"),
            "weights_load_report": {k: v for k, v in stages["weights"].items() if k != "path"},
            "seed": SEED,
            "ddim_steps": DDIM_STEPS,
            "ddim_eta": 1.0,
            "guidance_scale": GUIDANCE,
            "unet_timesteps": UNET_TIMESTEPS,
            "levels": {n: m["level"] for n, m in per_input.items()},
            "plan": INPUT_PLAN,
            "chosen_filter_types": {n: m["end2end"].get("filter_type") for n, m in per_input.items()},
            "errors": {n: e for n, e in errors.items() if e},
            "inputs": per_input,
            # checked when the set is opened (oracle/fixture_validation.py): a changed or damaged file is refused
            "files": {f"{n}.safetensors": sha256_file(out_dir / f"{n}.safetensors") for n in per_input},
        }
        (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
        total = sum(p.stat().st_size for p in out_dir.iterdir())
        _say(progress, f"golden/oracle/tiny: {total / 1e6:.2f} MB")
        if total > BUDGET_BYTES:
            raise RuntimeError(f"{out_dir}: {total} bytes exceeds the {BUDGET_BYTES} byte budget")
        return metadata
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Export oracle manifests and fixtures into golden/.")
    parser.add_argument("--golden", default=None, help="data folder (default: the harness data, golden/)")
    parser.add_argument("--python", default=None, help="oracle interpreter (default: the oracle venv)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--manifests-only", action="store_true")
    group.add_argument("--fixtures-only", action="store_true")
    args = parser.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if not args.fixtures_only:
            export_manifests(Path(args.golden) / "manifests" if args.golden else None, progress=say, python=args.python)
        if not args.manifests_only:
            export_fixtures(args.golden, progress=say, python=args.python)
    except (driver.OracleUnavailable, driver.OracleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
