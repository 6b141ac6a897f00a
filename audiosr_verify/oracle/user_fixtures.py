"""Fixtures from ANY checkpoint and ANY audio: ``oracle export --checkpoint CKPT --inputs FILE... -o FIX``.

The bundled set (``golden/oracle/tiny``) proves the machinery on seeded tiny
weights; a porter holds the real checkpoint and a port that hard-codes the full
size. This module runs the ORIGINAL code (its venv, `oracle.driver`) with the
user's checkpoint on the user's audio and writes a fixture set in the bundled
set's format (`golden/oracle/README.md`), readable by ``check --fixtures FIX``:

- every input is cut to one window (``--duration``, 5.12 s by default: the
  original's own window) at its own rate and channels and stored in
  ``FIX/inputs/`` (with ``inputs.json``: rate, channels, sha256), so the set
  carries the exact audio it was made from;
- the first input is exported at level ``full`` (the raw random draws, the UNet
  at fixed timesteps, step-0 model outputs), the others at ``chain``; every
  input stores the front end, the condition, the DDIM trajectory, the decoder,
  vocoder and post-processing outputs;
- the DDIM trajectory is kept within a size budget: all steps up to
  `TRAJECTORY_STEPS`, else that many steps evenly spread (first and last
  included), each with the previous step's ``x_prev`` (its teacher-forced
  input), so the teacher view checks every kept step and the decoder gets the
  last step's output;
- the original's plain ``super_resolution`` runs on the first input (``plain_runs="all"``: on every
  input) in the same process after the instrumented one, and the two final waveforms must have the same
  sha256 (the instrumentation is inert); the other inputs' end-to-end records come from their chain,
  marked ``plain_run: false``;
- ``metadata.json`` records the provenance: the checkpoint's file name, size,
  format and sha256, the original's and torch's versions, the CPU model and
  flags and the thread count, the seed, steps and guidance, the window length;
  and ``files`` (the sha256 of every fixture file), checked on opening.

Everything is validated before the original runs (checkpoint layout, audio
readable and long enough, names, options, the output folder), and the set is
published as a whole (`audiosr_model.publish.publish_dir`): a failure or a
signal leaves no partial folder.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from audiosr_model.config import is_config_file
from audiosr_model.errors import AudioSRError
from audiosr_verify.oracle.config_overrides import BUILTIN_PRESETS
from audiosr_verify.oracle.inference_weights import CheckpointFacts, check_layout, inference_copy

Progress = Callable[[str], None] | None

WINDOW_SECONDS = 5.12  # the original's pad_wav window: one latent of 512 mel frames
TRAJECTORY_STEPS = 12  # DDIM steps stored whole beyond which an even subset is kept (budget below)
BUDGET_BYTES_PER_INPUT = 20_000_000  # at most 20 MB per 5.12 s input at 50 steps (issue 22)
UNET_TIMESTEPS = (1, 501, 996)
INPUTS_DIR = "inputs"
NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ExportPlan:
    """Everything an export needs, validated; nothing written yet."""

    checkpoint: CheckpointFacts | None  # filled by check_plan_checkpoint (hashing a 6 GB file takes a while)
    preset: str
    inputs: list[tuple[str, Path]]  # (fixture name, audio file)
    output_dir: Path
    steps: int = 50
    seed: int = 42
    guidance: float = 3.5
    duration: float = WINDOW_SECONDS
    audio: dict[str, tuple[Any, int]] = field(default_factory=dict, repr=False)  # name -> (window [C, n], rate)
    checkpoint_path: Path | None = None
    plain_runs: str = "first"  # inputs whose plain super_resolution is compared with the chain: "first" or "all"


def original_step_count(steps: int) -> int:
    """The DDIM steps the original actually runs when asked for ``steps`` (make_ddim_timesteps, uniform)."""
    return len(range(0, 1000, max(1, 1000 // int(steps))))


def fixture_name(path: Path) -> str:
    """A file name safe for ``<name>.safetensors`` and a JSON key, from the audio file's stem."""
    return NAME_RE.sub("_", path.stem).strip("._") or "input"


def plan_export(checkpoint: str | Path, inputs: list[str | Path], output_dir: str | Path, *, preset: str = "basic",
                steps: int = 50, seed: int = 42, guidance: float = 3.5, duration: float = WINDOW_SECONDS,
                progress: Progress = None, plain_runs: str = "first") -> ExportPlan:
    """Validate every option and file (one `AudioSRError` naming the culprit); read the audio windows.

    The checkpoint is checked to be a readable file here; its layout and hash by `check_plan_checkpoint`."""
    from audiosr_model import audio_options
    from audiosr_model.io.audio_file import read_audio
    from audiosr_model.io.safe_open import check_input

    if is_config_file(preset):  # a configuration that is neither preset: checked whole before anything runs
        from audiosr_model.config import load_yaml
        from audiosr_verify.oracle.config_overrides import overrides_for

        check_input(Path(preset), "configuration")
        overrides_for(load_yaml(preset))  # refuses what the original cannot change (one line)
        preset = str(Path(preset).resolve())
    elif preset not in BUILTIN_PRESETS:
        raise AudioSRError(f"unknown preset {preset!r}: basic, tiny, or a configuration file (--config)")
    audio_options.check_steps(steps)
    actual = original_step_count(steps)
    if actual != steps:
        honoured = [n for n in (10, 20, 25, 40, 50, 100, 200) if original_step_count(n) == n]
        raise AudioSRError(f"--steps {steps}: the original runs {actual} DDIM steps for it (its timesteps are "
                           f"range(0, 1000, 1000 // {steps})); use a count it honours, e.g. "
                           f"{', '.join(map(str, honoured))}")
    audio_options.check_seed(seed)
    audio_options.check_guidance(guidance)
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and 0.5 <= duration <= 60):
        raise AudioSRError(f"--duration must be from 0.5 to 60 seconds, got {duration!r}")
    if not inputs:
        raise AudioSRError("no --inputs: a fixture set needs at least one audio file")
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AudioSRError("output exists and is not an empty folder (fixture sets are written whole, never "
                           "merged)", out)
    if not out.parent.is_dir():
        raise AudioSRError("directory does not exist" if not out.parent.exists() else "is not a directory",
                           out.parent)
    names: dict[str, Path] = {}
    for raw in inputs:
        path = Path(raw)
        check_input(path, "audio file")
        name = fixture_name(path)
        if name in names:
            raise AudioSRError(f"two inputs give the fixture name {name!r}: {names[name]} and {path}; rename one",
                               path)
        names[name] = path
    check_input(Path(checkpoint), "checkpoint")
    if plain_runs not in ("first", "all"):
        raise AudioSRError(f"plain runs must be 'first' or 'all', got {plain_runs!r}")
    plan = ExportPlan(None, preset, list(names.items()), out, steps, seed, guidance, float(duration),  # type: ignore[arg-type]
                      plain_runs=plain_runs)
    for name, path in plan.inputs:
        wave, rate = read_audio(path)
        need = int(round(duration * rate))
        if wave.shape[1] < need:
            raise AudioSRError(f"too short for one window: {wave.shape[1] / rate:.2f} s, the window is "
                               f"{duration:g} s (--duration changes it)", path)
        plan.audio[name] = (wave[:, :need], int(rate))
    plan.checkpoint_path = Path(checkpoint)
    return plan


def check_plan_checkpoint(plan: ExportPlan, progress: Progress = None) -> ExportPlan:
    """The plan's checkpoint: the original's layout for the preset, and its sha256 (a full read: seconds)."""
    if progress:
        progress(f"checking the layout of {plan.checkpoint_path.name} and hashing it")
    plan.checkpoint = check_layout(plan.checkpoint_path, plan.preset)
    return plan


def _kept_steps(steps: int, keep: int = TRAJECTORY_STEPS) -> list[int]:
    """Steps of the trajectory stored whole: all up to ``keep``, else ``keep`` evenly spread, first and last."""
    if steps <= keep:
        return list(range(steps))
    return sorted({round(i * (steps - 1) / (keep - 1)) for i in range(keep)})


def _trim_trajectory(path: Path, meta: dict[str, Any], steps: int) -> dict[str, Any]:
    """Drop the DDIM steps outside the kept subset from one input's file (and its metadata); what was kept."""
    from safetensors.torch import load_file, save_file

    kept = _kept_steps(steps)
    inputs = {k - 1 for k in kept if k > 0}  # a kept step's teacher-forced input: the previous x_prev
    tensors = load_file(str(path))
    drop = []
    for name in tensors:
        if re.fullmatch(r"noise\.ddim_step\d+", name):
            # the step noise of a long run is regenerated from the seed when checked, each draw's sha256
            # against the original's record (oracle/fixtures.py find_draws): 50 draws would be 6.5 MB
            if steps > TRAJECTORY_STEPS:
                drop.append(name)
            continue
        m = re.fullmatch(r"ddim\.step(\d+)\.(\w+)", name)
        if not m:
            continue
        i, what = int(m.group(1)), m.group(2)
        if i in kept or (i in inputs and what == "x_prev"):
            continue
        drop.append(name)
    for name in drop:
        del tensors[name]
        meta["tensors"].pop(name, None)
    if drop:
        save_file(tensors, str(path))
    return {"steps": steps, "kept_steps": kept, "input_steps": sorted(inputs - set(kept)),
            "rule": f"all steps up to {TRAJECTORY_STEPS}, else {TRAJECTORY_STEPS} evenly spread (first and last); "
                    "each kept step with the previous step's x_prev (its teacher-forced input); beyond "
                    f"{TRAJECTORY_STEPS} steps the step noise is not stored but regenerated from the seed, "
                    "checked against the sha256 the original recorded for each draw"}


def chain_as_end2end(meta: dict[str, Any]) -> dict[str, Any]:
    """An input's end-to-end record taken from its instrumented chain, for an input whose plain run was not
    repeated (``plain_runs="first"``): the chain's final waveform, low-pass choice or exception, marked so.

    The plain run proves the instrumentation inert (same final sha256); it is the same code path for every
    input, so by default only the first input pays for it (a full-size 50-step run is minutes)."""
    chain = meta.get("chain") or {}
    record: dict[str, Any] = {"plain_run": False}
    if "error" in chain:
        record["error"] = chain["error"]
    used = chain.get("filter_types_used") or []
    # a chain that raised records no choice: the seed's choice, made the way the original makes it (dsp stages)
    record["filter_type"] = used[0] if used else meta.get("filter_type_for_seed")
    return record


def _write_inputs(plan: ExportPlan, directory: Path) -> dict[str, Any]:
    import soundfile as sf

    from audiosr_verify.util.hashing import sha256_file

    directory.mkdir()
    index: dict[str, Any] = {"schema_version": 1, "generator": "audiosr-verify oracle export --inputs",
                             "inputs": {}}
    for name, source in plan.inputs:
        wave, rate = plan.audio[name]
        path = directory / f"{name}.wav"
        sf.write(str(path), wave.T, rate, subtype="FLOAT", format="WAV")  # float32: the window bit for bit
        index["inputs"][name] = {"file": path.name, "source": source.name, "sample_rate": rate,
                                 "channels": int(wave.shape[0]), "frames": int(wave.shape[1]),
                                 "seconds": round(wave.shape[1] / rate, 6), "subtype": "FLOAT",
                                 "sha256": sha256_file(path)}
    (directory / "inputs.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def _host_facts() -> dict[str, Any]:
    import os

    from audiosr_model.runtime.host import cpu_flags, cpu_model

    interesting = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "f16c", "neon", "sve")
    return {"cpu_model": cpu_model(), "cpu_flags": sorted(f for f in cpu_flags() if f in interesting),
            "cpus": os.cpu_count()}


def export_user_fixtures(plan: ExportPlan, progress: Progress = None, python: str | None = None,
                         finish: Callable[[Path, Path], list[str]] | None = None) -> dict[str, Any]:
    """Run the original on the plan's inputs with its checkpoint; publish the fixture set whole; its metadata.

    ``finish(set_dir, weights)``, when given, runs on the complete set before it is published (the
    calibration: `checks.calibration`, which this layer does not import) and returns the names of the files
    it added, whose sha256 join the set's ``files``."""
    from audiosr_model.io.publish import publish_dir
    from audiosr_verify.oracle import driver
    from audiosr_verify.oracle.export import merge_end2end
    from audiosr_verify.util.hashing import sha256_file

    say = progress or (lambda m: None)
    if plan.checkpoint is None:
        check_plan_checkpoint(plan, say)
    weights = inference_copy(plan.checkpoint, say)
    result: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="audiosr-export-"))
        try:
            index = _write_inputs(plan, tmp / INPUTS_DIR)
            items = [{"name": name, "path": str((tmp / INPUTS_DIR / entry["file"]).resolve()),
                      "level": "full" if i == 0 else "chain", "filters": "seed"}
                     for i, (name, entry) in enumerate(index["inputs"].items())]
            common = {"preset": plan.preset, "weights": str(weights), "seed": plan.seed,
                      "ddim_steps": plan.steps, "guidance_scale": plan.guidance}
            start = time.monotonic()
            say(f"the original: every stage of {len(items)} input(s), {plan.steps} DDIM steps ({plan.preset})")
            plain = [i["name"] for i in items] if plan.plain_runs == "all" else [items[0]["name"]]
            stages = driver.run("stages", {**common, "inputs": items, "out_dir": str(work / "stages"),
                                           "unet_timesteps": list(UNET_TIMESTEPS), "plain": plain},
                                work, python=python)
            say(f"the original's stages and {len(plain)} plain run(s) done in {time.monotonic() - start:.0f} s")
            per_input, trajectory = {}, {}
            for name, meta in stages["inputs"].items():
                meta = merge_end2end(name, meta, meta.pop("plain", None) or chain_as_end2end(meta))
                shutil.copyfile(work / "stages" / f"{name}.safetensors", tmp / f"{name}.safetensors")
                trajectory[name] = _trim_trajectory(tmp / f"{name}.safetensors", meta, plan.steps)
                per_input[name] = meta
            over = {}
            for name, meta in per_input.items():  # a size budget, not a correctness matter: recorded, said
                size = (tmp / f"{name}.safetensors").stat().st_size
                if size > BUDGET_BYTES_PER_INPUT * max(1.0, plan.duration / WINDOW_SECONDS):
                    over[name] = size
                    say(f"input {name}: {size:,} bytes of fixtures, over the budget of {BUDGET_BYTES_PER_INPUT:,} "
                        f"per {WINDOW_SECONDS} s")
            errors = {n: {**m.get("errors", {}), **({"end2end": m["end2end"]["error"]}
                                                       if "error" in m["end2end"] else {})}
                      for n, m in per_input.items()}
            metadata = {
                "schema_version": 1,
                "kind": "user",
                "preset": plan.preset,
                "versions": stages["versions"],
                "host": _host_facts(),
                "checkpoint": plan.checkpoint.to_dict(),
                "weights": {"n_elements": plan.checkpoint.inference_elements, "digest": None,
                            "from_checkpoint": True},
                "weights_load_report": {k: v for k, v in stages["weights"].items() if k != "path"},
                "seed": plan.seed,
                "ddim_steps": plan.steps,
                "ddim_eta": 1.0,
                "guidance_scale": plan.guidance,
                "unet_timesteps": list(UNET_TIMESTEPS),
                "window_seconds": plan.duration,
                "inputs_dir": INPUTS_DIR,
                "trajectory": trajectory,
                "over_size_budget": over,
                "levels": {n: m["level"] for n, m in per_input.items()},
                "chosen_filter_types": {n: m["end2end"].get("filter_type") for n, m in per_input.items()},
                "errors": {n: e for n, e in errors.items() if e},
                "inputs": per_input,
                "files": {f"{n}.safetensors": sha256_file(tmp / f"{n}.safetensors") for n in per_input},
            }
            if is_config_file(plan.preset):  # the set keeps its configuration: it travels with the fixtures
                from audiosr_model.config import load_yaml
                from audiosr_verify.oracle.fixture_validation import CONFIG_FILE

                config = load_yaml(plan.preset)
                (tmp / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
                metadata.update(preset=CONFIG_FILE, config=config.to_dict())
                metadata["files"][CONFIG_FILE] = sha256_file(tmp / CONFIG_FILE)
            (tmp / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
            if finish is not None:
                for added in finish(tmp, weights):
                    metadata["files"][added] = sha256_file(tmp / added)
                (tmp / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
            result.update(metadata)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    publish_dir(plan.output_dir, build, what="fixture set")
    return result


__all__ = ["ExportPlan", "TRAJECTORY_STEPS", "WINDOW_SECONDS", "check_plan_checkpoint", "export_user_fixtures",
           "fixture_name", "plan_export"]
