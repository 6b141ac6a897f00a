"""The original audiosr and ours side by side: one run, one checkpoint, one input (issue 16).

Same full-size random checkpoint in the original's release format (a
``{"state_dict": ...}`` torch zip with all 3,743 keys, 6.18 GB: the weights
of ``audiosr-verify make-checkpoint --preset basic --seed 0`` for the keys
inference uses, zeros for those it never reads; written once to
``~/.cache/audiosr-verify/bench/`` unless ``--checkpoint`` is given), same
5.12 s input at 16 kHz, ``--steps`` DDIM steps (default 50), guidance 3.5,
seed 42.

* original: ``audiosr`` 0.0.7 in the oracle venv (ORACLE.md), driven like its
  own ``build_model`` (build ``LatentDiffusion``, ``torch.load``,
  ``load_state_dict(strict=False)``) and ``super_resolution``; its stages
  timed by wrapping their forwards (UNet, condition encoder, first-stage
  encoder, VAE decode, vocoder), the DDIM sampler and ``make_batch``;
* ours: ``audiosr-verify enhance --level faithful --mix first`` with
  ``--timings-json``, in fp32 and in each ``--precision``/``--attention`` variant asked for.

Each run is its own subprocess: whole-process wall time and peak RSS (wait4)
are its own. Fair by construction (issue 25): the checkpoint is read into the
page cache right before EACH side runs (the original's 12.4 GB peak evicts
part of it, so the side that runs second would otherwise pay cold reads; each
read's time is reported as ``checkpoint_read_s``, the first one being the cold
load when the file was not cached); the host's load average and the busiest
other processes are sampled before each run and printed (``--require-idle``
refuses to measure on a busy host); with ``--repeats N`` the sides alternate
their order round by round and every figure is the median of N runs with its
spread (min..max). Also measured: the float32 and bfloat16 matmul peak of this
host (2048^3, best of 5) and each network stage's FLOPs (torch's
FlopCounterMode on the meta device), hence GFLOP/s per stage and its share
of the peak; max abs difference of each output from the original's.

    python benchmarks/bench_vs_original.py [--steps 50] [--checkpoint FILE] [--variants bf16 sdpa bf16+sdpa]
        [--malloc-variants] [--json FILE] [--skip-original] [--repeats 3] [--require-idle]

``--malloc-variants`` adds ours in fp32 under the old 1 MiB mmap threshold
(``MALLOC_MMAP_THRESHOLD_=1048576``), under glibc's defaults
(``AUDIOSR_MALLOC=off``) and under glibc's thresholds with trimming between
chunks (``AUDIOSR_MALLOC=trim``, the previous default), to compare their
stage times and peaks with the allocator setting `enhance` now uses
(``reuse``: model/runtime/memory.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
SECONDS = 5.12
MANIFESTS = ROOT / "golden" / "manifests"
CACHE = Path.home() / ".cache" / "audiosr-verify" / "bench"

ORIGINAL_SCRIPT = r'''
import importlib.util, json, sys, time
T0 = time.perf_counter()
runner_path, ckpt, wav, out_npy, steps, out_json, preset = sys.argv[1:8]
spec = importlib.util.spec_from_file_location("oracle_runner", runner_path)
runner = importlib.util.module_from_spec(spec)
sys.modules["oracle_runner"] = runner
spec.loader.exec_module(runner)  # shims, then imports the original audiosr
import numpy as np, torch
times, calls = {}, {}
def add(name, dt):
    times[name] = times.get(name, 0.0) + dt
    calls[name] = calls.get(name, 0) + 1
def timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            add(name, time.perf_counter() - t)
    return wrapper
t_import = time.perf_counter() - T0
t = time.perf_counter()
model = runner.build(preset)
t_build = time.perf_counter() - t
t = time.perf_counter()
state = torch.load(ckpt, map_location="cpu")["state_dict"]
t_read = time.perf_counter() - t
t = time.perf_counter()
model.load_state_dict(state, strict=False)
model.eval()
del state
t_load_sd = time.perf_counter() - t
m = model
m.model.diffusion_model.forward = timed("unet_call", m.model.diffusion_model.forward)
m.cond_stage_models[0].forward = timed("condition_encode", m.cond_stage_models[0].forward)
m.encode_first_stage = timed("first_stage_encode", m.encode_first_stage)
m.decode_first_stage = timed("vae_decode", m.decode_first_stage)
m.first_stage_model.vocoder.forward = timed("vocoder", m.first_stage_model.vocoder.forward)
runner.DDIMSampler.sample = timed("ddim", runner.DDIMSampler.sample)
runner.pipeline_mod.make_batch_for_super_resolution = timed(
    "read_features", runner.pipeline_mod.make_batch_for_super_resolution)
t = time.perf_counter()
wave = runner.super_resolution(model, wav, 42, int(steps), 3.5)
t_enhance = time.perf_counter() - t
np.save(out_npy, np.asarray(wave, dtype=np.float32))
json.dump({"import_s": t_import, "build_s": t_build, "read_s": t_read, "load_state_dict_s": t_load_sd,
           "load_s": t_build + t_read + t_load_sd, "enhance_s": t_enhance,
           "stages": {k: {"seconds": v, "calls": calls[k]} for k, v in times.items()},
           "threads": torch.get_num_threads(), "torch": torch.__version__},
          open(out_json, "w"), indent=1)
'''


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; its wall time and its own peak RSS (ru_maxrss of this one child, via wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # read both pipes without deadlock, then reap with wait4 for the child's own rusage
    import threading

    bufs = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda s, k: bufs[k].append(s.read()), args=(proc.stdout, "out")),
               threading.Thread(target=lambda s, k: bufs[k].append(s.read()), args=(proc.stderr, "err"))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = "".join(bufs["err"])
    if proc.returncode != 0:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "stderr_tail": err[-2000:]}


def warm_page_cache(path: Path, chunk: int = 16 << 20) -> float:
    """Read ``path`` whole (into the page cache); the seconds it took (cold if it was not cached)."""
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        buf = bytearray(chunk)
        view = memoryview(buf)
        while f.readinto(view):
            pass
    return time.perf_counter() - t0


def _proc_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        ticks[int(d.name)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def host_load(sample_s: float = 2.0) -> dict:
    """Load average and the other processes using CPU over ``sample_s`` (pid, name, % of one core)."""
    if not Path("/proc/loadavg").exists():
        return {"load_avg": list(os.getloadavg()), "busy": []}
    before = _proc_ticks()
    time.sleep(sample_s)
    after = _proc_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    busy = []
    for pid, (name, t) in after.items():
        if pid == me or pid not in before:
            continue
        pct = 100.0 * (t - before[pid][1]) / hz / sample_s
        if pct >= 5:
            busy.append({"pid": pid, "name": name, "cpu_percent": round(pct)})
    busy.sort(key=lambda b: -b["cpu_percent"])
    return {"load_avg": [round(x, 2) for x in os.getloadavg()], "busy": busy[:5]}


def is_idle(load: dict) -> bool:
    """No other process used 5 % of a core over the sample. (The load average is printed, not judged: it
    decays over minutes, so right after a previous side it stays high on an idle host.)"""
    return not load["busy"]


def median_spread(values: list[float]) -> dict:
    v = sorted(values)
    return {"median": float(np.median(v)), "min": v[0], "max": v[-1], "n": len(v)}


def summarise(runs: list[dict]) -> dict:
    """One side's runs -> its median figures (what the table prints), with every run and the spread kept."""
    keys = ("wall_s", "load_s", "enhance_s", "peak_rss_mb")
    out = dict(runs[len(runs) // 2]) if len(runs) % 2 else dict(runs[0])
    for k in keys:
        if all(k in r for r in runs):
            out[k] = median_spread([r[k] for r in runs])["median"]
    out["spread"] = {k: median_spread([r[k] for r in runs]) for k in keys if all(k in r for r in runs)}
    out["runs"] = [{k: r.get(k) for k in (*keys, "checkpoint_read_s", "host_before", "order")} for r in runs]
    return out


def matmul_peak(dtype_name: str, n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` GFLOP/s of an n x n x n matmul in ``dtype_name`` (this process's threads)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def stage_flops(preset: str) -> dict:
    """FLOPs of one call of each network stage (5.12 s input), counted on the meta device."""
    import torch
    from audiosr_model import config as cfg
    from audiosr_model.weights.load import skeleton
    from torch.utils.flop_counter import FlopCounterMode

    net = skeleton(cfg.preset(preset))

    def count(fn) -> int:
        with FlopCounterMode(display=False) as f, torch.no_grad():
            fn()
        return int(f.get_total_flops())

    with torch.device("meta"):
        mel, lat = torch.empty(1, 1, 512, 256), torch.empty(1, 16, 64, 32)
        return {
            "condition_encode": count(lambda: net.condition_posterior(mel)),
            "unet_batch1": count(lambda: net.unet(torch.empty(1, 32, 64, 32), torch.zeros(1, dtype=torch.long))),
            "ddim_step": count(lambda: net.unet(torch.empty(2, 32, 64, 32), torch.zeros(2, dtype=torch.long))),
            "vae_decode": count(lambda: net.decode(lat)),
            "vocoder": count(lambda: net.vocode(mel)),
        }


def cpu_model() -> str:
    from audiosr_model.runtime.host import cpu_model as model

    return model()


def cpu_flags() -> list[str]:
    from audiosr_model.runtime.host import cpu_flags as flags

    keep = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_fp16",
            "amx_tile", "f16c")
    return sorted(f for f in flags() if f in keep)




def ensure_checkpoint(path: Path, preset: str) -> None:
    """The release-format checkpoint: every one of the original's 3,743 keys (6.18 GB), made if absent.

    The keys inference uses hold ``make-checkpoint --preset basic --seed 0``'s
    random weights; the others (EMA copy, CLAP, the condition VAE's decoder and
    vocoder, ``logvar``), which both models load and never use, hold zeros.
    """
    if path.exists():
        return
    import torch
    from audiosr_model import config as cfg
    from audiosr_model.weights.checkpoint import save_checkpoint
    from audiosr_model.weights.load import random_state

    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing the release-format {preset} checkpoint {path} ...", file=sys.stderr, flush=True)
    state = random_state(cfg.preset(preset), 0)
    layout = json.loads((MANIFESTS / f"audiosr_{preset}.json").read_text())["keys"]
    for key, spec in layout.items():
        if key not in state:
            state[key] = torch.zeros(spec["shape"], dtype=getattr(torch, spec["dtype"]))
    missing = sorted(set(state) - set(layout))
    if missing:
        raise SystemExit(f"keys not in the original's layout: {missing[:5]}")
    save_checkpoint({k: state[k] for k in layout}, path, "bin")


def read_output(path: Path) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == 48000
    return y[:, 0]


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[-1], b.shape[-1])
    return float(np.max(np.abs(a[:n].astype(np.float64) - b[:n].astype(np.float64))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--preset", default="basic", choices=["basic", "tiny"], help="network size (tiny: a smoke test)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help=f"original-format checkpoint (made if absent; default {CACHE}/<preset>-seed0.bin)")
    ap.add_argument("--variants", nargs="*", default=["bf16"],
                    help="ours besides fp32: bf16, fp16, sdpa, compile or combinations like bf16+sdpa "
                         "(default: bf16)")
    ap.add_argument("--malloc-variants", action="store_true",
                    help="also ours in fp32 under the old 1 MiB mmap pin, under glibc defaults, and with glibc's "
                         "thresholds plus malloc_trim between chunks (AUDIOSR_MALLOC=trim, the previous default)")
    ap.add_argument("--skip-original", action="store_true", help="ours only")
    ap.add_argument("--fp32-again", action="store_true",
                    help="run ours in fp32 once more at the end (how much the machine's load moved the numbers)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of every side, alternating their order round by round; figures are medians")
    ap.add_argument("--require-idle", action="store_true",
                    help="refuse to measure when the host is busy (load average or another process using CPU)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--device", default="auto",
                    help="device for ours: auto (cuda where torch sees one, else cpu; the original runs on the "
                         "CPU as its release does here), cpu or cuda")
    ap.add_argument("--batch-chunks", type=int, default=1,
                    help="ours: chunks per batched network call (a GPU path; pays off on long inputs)")
    if argv is None and sys.argv[1:2] == ["--write-checkpoint"]:
        ensure_checkpoint(Path(sys.argv[2]), sys.argv[3])
        return 0
    args = ap.parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    from audiosr_model.runtime.precision import native_support

    from audiosr_verify.oracle import driver

    args.checkpoint = args.checkpoint or CACHE / f"{args.preset}-seed0.bin"
    if not args.checkpoint.exists():
        # in a child: a child's ru_maxrss starts at its parent's high-water mark (vfork + exec), so this
        # process must never hold the 6 GB state itself, or every peak RSS below would read 6 GB
        subprocess.run([sys.executable, __file__, "--write-checkpoint", str(args.checkpoint), args.preset],
                       check=True)
    result: dict = {
        "host": {"cpu": cpu_model(), "flags": cpu_flags(), "cores": os.cpu_count(), "load_avg": os.getloadavg(),
                 "python": platform.python_version()},
        "setup": {"device_ours": device, "batch_chunks": args.batch_chunks, "checkpoint": str(args.checkpoint),
                  "checkpoint_bytes": args.checkpoint.stat().st_size, "preset": args.preset,
                  "input": f"{SECONDS} s at {RATE} Hz", "steps": args.steps, "guidance": 3.5, "seed": 42},
    }
    result["host"]["threads"] = torch.get_num_threads()
    result["peak_gflops"] = {"fp32": matmul_peak("fp32")}
    if native_support("bf16", "cpu") is None:
        result["peak_gflops"]["bf16"] = matmul_peak("bf16")
    flops = stage_flops(args.preset)
    result["flops"] = flops

    with tempfile.TemporaryDirectory(prefix="bench_vs_original.") as tmp:
        tmp = Path(tmp)
        src = tmp / "in.wav"
        t = np.arange(int(SECONDS * RATE)) / RATE
        sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 3100 * t), RATE)
        outputs: dict[str, np.ndarray] = {}
        sides = []  # (name, run once -> its record and output)

        if not args.skip_original:
            py = driver.oracle_python()
            script = tmp / "original.py"
            script.write_text(ORIGINAL_SCRIPT)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

            def original(py=py, script=script, env=env):
                r = run_measured([str(py), str(script), str(driver.RUNNER), str(args.checkpoint), str(src),
                                  str(tmp / "orig.npy"), str(args.steps), str(tmp / "orig.json"), args.preset], env)
                r.update(json.loads((tmp / "orig.json").read_text()))
                r.pop("stderr_tail", None)
                return r, np.load(tmp / "orig.npy").reshape(-1)

            sides.append(("original", original))

        runs = [("fp32", [], {})]
        for v in args.variants:
            parts = v.split("+")
            extra = []
            for p in parts:
                extra += {"sdpa": ["--attention", "sdpa"], "compile": ["--compile"]}.get(p, ["--precision", p])
            if any(p in ("bf16", "fp16") and native_support(p, device) for p in parts):
                result.setdefault("skipped", {})[v] = native_support(
                    next(p for p in parts if p in ("bf16", "fp16")), device)
                continue
            runs.append((v, extra, {}))
        if args.malloc_variants:
            runs.append(("fp32 mmap pin 1 MiB", [], {"MALLOC_MMAP_THRESHOLD_": "1048576"}))
            runs.append(("fp32 glibc default", [], {"AUDIOSR_MALLOC": "off"}))
            runs.append(("fp32 trim only", [], {"AUDIOSR_MALLOC": "trim"}))
        if args.fp32_again:
            runs.append(("fp32 again", [], {}))
        import resource

        # floor of every child's peak RSS below (see --write-checkpoint above)
        result["host"]["bench_process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for i, (name, extra, env_extra) in enumerate(runs):
            def ours(i=i, extra=extra, env_extra=env_extra):
                out, tj = tmp / f"ours-{i}.wav", tmp / f"ours-{i}.json"
                cmd = [sys.executable, "-m", "audiosr_verify.cli.main", "enhance", str(src), "--output", str(out),
                       "--checkpoint", str(args.checkpoint), "--preset", args.preset, "--steps", str(args.steps),
                       "--guidance", "3.5", "--seed", "42", "--level", "faithful", "--mix", "first",
                       "--device", device, "--overwrite", "--timings-json", str(tj),
                       "--batch-chunks", str(args.batch_chunks), *extra]
                r = run_measured(cmd, dict(os.environ, **env_extra))
                r.pop("stderr_tail", None)
                r["command_options"] = extra
                r["env"] = env_extra
                r["timings"] = json.loads(tj.read_text())
                stages = r["timings"]["stages"]
                r["load_s"] = stages["load"]["seconds"]
                r["enhance_s"] = r["timings"]["total_s"] - r["load_s"]
                return r, read_output(out)

            sides.append((name, ours))

        records: dict[str, list[dict]] = {name: [] for name, _ in sides}
        for round_ in range(max(1, args.repeats)):
            order = sides if round_ % 2 == 0 else sides[::-1]  # alternate: no side always runs second
            for pos, (name, side) in enumerate(order):
                load = host_load()
                idle = is_idle(load)
                busy = ", ".join(f"{b['name']} {b['cpu_percent']}%" for b in load["busy"]) or "none"
                print(f"round {round_ + 1}/{args.repeats}: {name} ... load average {load['load_avg'][0]}, "
                      f"busy: {busy}", file=sys.stderr, flush=True)
                if args.require_idle and not idle:
                    raise SystemExit(f"the host is busy (load average {load['load_avg']}, {load['busy']}): "
                                     "not measuring (--require-idle)")
                read_s = warm_page_cache(args.checkpoint)  # both sides start with the checkpoint cached
                r, wave = side()
                r.update(checkpoint_read_s=round(read_s, 2), host_before=load, order=pos, idle=idle)
                records[name].append(r)
                outputs[name] = wave
        result["setup"]["repeats"] = max(1, args.repeats)
        result["setup"]["all_runs_idle"] = all(r["idle"] for rs in records.values() for r in rs)
        if "original" in records:
            result["original"] = summarise(records.pop("original"))
        result["ours"] = {name: summarise(rs) for name, rs in records.items()}

    # differences, ratios, GFLOP/s
    if "original" in outputs:
        for name in result["ours"]:
            result["ours"][name]["max_abs_diff_vs_original"] = max_abs(outputs[name], outputs["original"])
        result["original"]["output_samples"] = int(outputs["original"].shape[-1])
    for name in result["ours"]:
        result["ours"][name]["max_abs_diff_vs_ours_fp32"] = max_abs(outputs[name], outputs["fp32"])
        result["ours"][name]["output_samples"] = int(outputs[name].shape[-1])
        st = result["ours"][name]["timings"]["stages"]
        peak = result["peak_gflops"]["bf16" if "bf16" in name else "fp32"]
        g = {}
        for stage in ("condition_encode", "ddim_step", "vae_decode", "vocoder"):
            if stage in st:
                rate = flops[stage] * st[stage]["calls"] / st[stage]["seconds"] / 1e9
                g[stage] = {"gflops": rate, "of_peak": rate / peak}
        result["ours"][name]["gflops"] = g
    if "original" in result:
        o = result["original"]
        st = o["stages"]
        g = {}
        for stage, key in (("condition_encode", "condition_encode"), ("unet_call", "unet_batch1"),
                           ("vae_decode", "vae_decode"), ("vocoder", "vocoder")):
            if stage in st:
                rate = flops[key] * st[stage]["calls"] / st[stage]["seconds"] / 1e9
                g[stage] = {"gflops": rate, "of_peak": rate / result["peak_gflops"]["fp32"]}
        o["gflops"] = g
        for name, r in result["ours"].items():
            r["ratio_vs_original"] = {"whole_process": r["wall_s"] / o["wall_s"],
                                      "load": r["load_s"] / o["load_s"], "enhance": r["enhance_s"] / o["enhance_s"],
                                      "peak_rss": r["peak_rss_mb"] / o["peak_rss_mb"]}
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def print_table(result: dict) -> None:
    o = result.get("original")
    cols = ([("original", o)] if o else []) + list(result["ours"].items())
    print(f"host: {result['host']['cpu']}, {result['host']['threads']} threads; flags: "
          f"{' '.join(result['host']['flags'])}")
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["peak_gflops"].items()))
    print(f"{'':<28}" + "".join(f"{n[:22]:>24}" for n, _ in cols))

    def row(label, fn):
        cells = []
        for n, r in cols:
            try:
                cells.append(fn(n, r))
            except (KeyError, TypeError):
                cells.append("-")
        print(f"{label:<28}" + "".join(f"{c:>24}" for c in cells))

    print(f"{result['setup'].get('repeats', 1)} run(s) per side, alternating order; medians, spread min..max; "
          f"checkpoint read into the page cache before each run; host idle in every run: "
          f"{result['setup'].get('all_runs_idle')}")
    row("whole process s", lambda n, r: f"{r['wall_s']:.1f}" + (
        f" ({r['ratio_vs_original']['whole_process']:.2f}x)" if "ratio_vs_original" in r else ""))
    row("whole process spread s", lambda n, r: f"{r['spread']['wall_s']['min']:.1f}..{r['spread']['wall_s']['max']:.1f}")
    row("load s", lambda n, r: f"{r['load_s']:.1f}")
    row("checkpoint read s (1st)", lambda n, r: f"{r['runs'][0]['checkpoint_read_s']:.1f}")
    row("enhance s", lambda n, r: f"{r['enhance_s']:.1f}" + (
        f" ({r['ratio_vs_original']['enhance']:.2f}x)" if "ratio_vs_original" in r else ""))
    row("peak RSS MB", lambda n, r: f"{r['peak_rss_mb']:.0f}")
    row("max abs vs original", lambda n, r: f"{r['max_abs_diff_vs_original']:.2e}")
    row("CUDA peak allocated MB", lambda n, r: f"{r['timings']['cuda_peak_allocated_mb']:.0f}")

    def stage(n, r, name):
        st = r["stages"] if n == "original" else r["timings"]["stages"]
        s = st[name]
        return f"{s['seconds']:.2f} s/{s['calls']}"

    for name in ("read_features", "features", "first_stage_encode", "condition_encode", "ddim", "unet_call",
                 "ddim_step", "compile", "vae_decode", "vocoder"):
        row(name, lambda n, r, name=name: stage(n, r, name))
    for name in ("condition_encode", "unet_call", "ddim_step", "vae_decode", "vocoder"):
        row(f"GFLOP/s {name}", lambda n, r, name=name: f"{r['gflops'][name]['gflops']:.0f} "
            f"({100 * r['gflops'][name]['of_peak']:.0f}%)")


if __name__ == "__main__":
    sys.exit(main())
