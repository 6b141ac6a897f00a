"""Full-size parity: the `basic` network, ours and the original, on the same random weights.

Marked ``slow`` (``tox -e slow``) and needs the oracle venv. The shared
random weights of the basic manifest (every key inference uses; CLAP, the
EMA copy and the condition VAE's decoder/vocoder are left at the original's
own initialisation) are written once to a safetensors file (3 GB). Then,
sequentially, never both models in one process:

1. the original (oracle venv subprocess, ~7.4 GB + the weights) runs one UNet
   forward, both VAE encoders, the VAE decoder and the vocoder on 5.12 s
   shapes and saves the outputs;
2. ours (this process, ~3 GB) loads the same file and runs the same calls.

Inputs are the tiny fixture's stage inputs (same shapes at 5.12 s). Prints a
table of errors and times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from audiosr_verify.checks import stages as F
from audiosr_verify.compare.tensors import compare_tensors
from audiosr_verify.oracle import venv as oracle_venv
from audiosr_verify.util.paths import data_path

pytestmark = pytest.mark.slow

# stage -> (atol, rtol): fp32, layers 4-48x wider than tiny; measured bit-exact here
TOLERANCES = {
    "unet": (1e-5, 1e-5),
    "first_stage_encode": (1e-5, 1e-5),
    "cond_stage_encode": (1e-5, 1e-5),
    "decode_first_stage": (1e-5, 1e-5),
    "vocoder": (1e-5, 1e-5),
}

# Runs INSIDE the oracle venv: the runner's own model builder and stage calls, outputs only.
ORACLE_SCRIPT = r"""
import json, sys, time, resource
sys.path.insert(0, sys.argv[1])
import runner  # applies the shims, imports audiosr
import torch
from safetensors.torch import load_file, save_file
torch.set_grad_enabled(False)
t0 = time.monotonic()
model, report = runner.build_loaded({"preset": "basic", "weights": sys.argv[2]})
times = {"build_and_load": time.monotonic() - t0}
inputs = load_file(sys.argv[3])
outs = {}
for stage in json.loads(sys.argv[5]):
    ins = {k.split(".", 1)[1]: v for k, v in inputs.items() if k.startswith(stage + ".")}
    _, thunk = runner._stage_call(model, stage, ins)
    t = time.monotonic()
    outs[stage] = thunk().contiguous()
    times[stage] = time.monotonic() - t
save_file(outs, sys.argv[4])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
runner._REAL_STDOUT.write(json.dumps({"times": times, "peak_rss_gb": peak, "weights": report}) + "\n")
"""


def _stage_inputs() -> dict[str, torch.Tensor]:
    from audiosr_verify.checks import first_divergence as D

    out = {}
    for stage in ("unet", "cond_stage_encode", "decode_first_stage", "vocoder"):
        data, _ = D.stage_inputs(stage)
        out.update({f"{stage}.{k}": v for k, v in data.items()})
    out["first_stage_encode.mel"] = out["cond_stage_encode.mel"][:, None].clone()  # [B, 1, T, F]
    return out


def _ours(net, stage: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    ins = {k.split(".", 1)[1]: v for k, v in inputs.items() if k.startswith(stage + ".")}
    if stage == "first_stage_encode":
        return net.first_stage_model.encode(ins["mel"]).moments
    from audiosr_verify.checks import first_divergence as D

    return D._stage_call(net, stage, ins)()


@pytest.fixture(scope="module")
def basic_weights_file(tmp_path_factory):
    from safetensors.torch import save_file

    from audiosr_verify.oracle import export

    if oracle_venv.find_oracle_python() is None:
        pytest.skip(f"no oracle venv at {oracle_venv.default_path()}: run `audiosr-verify oracle setup`")
    manifest = data_path("manifests", "audiosr_basic.json")
    work = tmp_path_factory.mktemp("full-size")
    path = work / "basic_weights.safetensors"
    start = time.monotonic()
    weights = export.shared_weights(export.read_manifest(manifest))
    save_file(weights, str(path))
    n = sum(t.numel() for t in weights.values())
    del weights
    return path, {"weights_elements": n, "weights_seconds": time.monotonic() - start}


def test_full_size_stages_match_the_original(basic_weights_file, tmp_path):
    from safetensors.torch import load_file, save_file

    from audiosr_verify.oracle import driver

    wpath, info = basic_weights_file
    stages = list(TOLERANCES)
    inputs = _stage_inputs()
    ipath, opath = tmp_path / "inputs.safetensors", tmp_path / "original.safetensors"
    save_file(inputs, str(ipath))

    # 1. the original, alone in its own process
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.monotonic()
    proc = subprocess.run([str(driver.oracle_python()), "-c", ORACLE_SCRIPT, str(driver.RUNNER.parent), str(wpath),
                           str(ipath), str(opath), json.dumps(stages)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    original = json.loads(proc.stdout.strip().splitlines()[-1])
    original["wall"] = time.monotonic() - start
    ref = load_file(str(opath))

    # 2. ours, after the original has exited
    start = time.monotonic()
    state = load_file(str(wpath))
    net = F.shared_network("basic", state)
    del state
    ours_times = {"build_and_load": time.monotonic() - start}
    results = []
    with torch.no_grad():
        for stage in stages:
            t = time.monotonic()
            out = _ours(net, stage, inputs)
            ours_times[stage] = time.monotonic() - t
            atol, rtol = TOLERANCES[stage]
            results.append(compare_tensors(stage, out, ref[stage], atol, rtol, "basic 5.12 s"))
    del net

    lines = [f"weights: {info['weights_elements']:,} elements, generated+saved in {info['weights_seconds']:.0f} s",
             f"original: build+load {original['times']['build_and_load']:.0f} s, peak RSS "
             f"{original['peak_rss_gb']:.1f} GB, wall {original['wall']:.0f} s",
             f"ours: build+load {ours_times['build_and_load']:.0f} s",
             f"{'stage':20s} {'shape':>20s} {'max|diff|':>10s} {'max|ref|':>10s} {'cosine':>12s} "
             f"{'orig s':>7s} {'ours s':>7s}"]
    for c in results:
        lines.append(f"{c.name:20s} {str(list(c.shape)):>20s} {c.max_abs:10.3g} "
                     f"{float(ref[c.name].abs().max()):10.3g} {c.cosine:12.9f} "
                     f"{original['times'][c.name]:7.1f} {ours_times[c.name]:7.1f}")
    print("\n".join(lines), file=sys.stderr)
    bad = [f"{c.name}: max |diff| {c.max_abs:.3g} > {c.tolerance_text()} ({c.note})" for c in results if not c.passed]
    assert not bad, "\n".join(bad + lines)
