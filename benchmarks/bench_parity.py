"""Benchmark: `audiosr-verify parity` on a full-size checkpoint vs plain torch.load.

Writes a checkpoint in the ORIGINAL format (``torch.save({"state_dict": ...})``)
with every key of a reference manifest (default golden/manifests/audiosr_basic.json,
3,743 keys, about 6.2 GB) filled with cheap deterministic data, plus a fault
variant (one key dropped, one shape changed, one key added). Then measures, each
in its own subprocess (wall time, peak RSS from wait4, bytes read from
/proc/self/io ``rchar``):

  parity        `audiosr-verify parity FILE` (lazy listing, no tensor data), once
                with a cold layout cache, then --repeat times warm
  parity-fault  the same on the fault variant: must exit 1 naming exactly the 3 keys
  parity-hash   `--hash` (reads all data: sha256 + per-tensor digests), --with-hash
  torch.load    plain torch.load + load_state_dict(strict=False) into our
                skeleton-materialised network (what the original does)
  import torch  python + `import torch` alone: the floor of any torch-using command

Targets (issue 4): parity <= 5 s wall, <= 500 MB peak RSS, exit 0, all keys
classified, no tensor data read. The page cache is warm (files just written).

    PYTHONPATH=. python benchmarks/bench_parity.py [--json FILE] [--workdir DIR]

Needs about 2x the checkpoint size on disk (both files are removed afterwards
unless --keep) and about 1.1x its size in RAM while writing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = ROOT / "golden" / "manifests" / "audiosr_basic.json"
# Fault variant: keys of our model in every preset.
DROP_KEY = "model.diffusion_model.out.2.weight"
RESHAPE_KEY = "first_stage_model.post_quant_conv.weight"
ADD_KEY = "model.diffusion_model.bench_extra.weight"
TARGET_WALL_S, TARGET_RSS_MB = 5.0, 500.0

# Runs a module (or code) in the child and records its read() byte count at exit.
_WRAPPER = r"""
import atexit, os, runpy, sys
def _dump():
    with open("/proc/self/io") as f:
        io = dict(line.split(":", 1) for line in f.read().splitlines())
    with open(os.environ["BENCH_IO_OUT"], "w") as f:
        f.write(io["rchar"].strip())
atexit.register(_dump)
kind, target = sys.argv[1], sys.argv[2]
sys.argv = [target] + sys.argv[3:]
if kind == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""

_BASELINE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from audiosr_model.config import preset
from audiosr_model.weights.load import skeleton
t1 = time.perf_counter()
net = skeleton(preset(sys.argv[2])).to_empty(device="cpu")
t2 = time.perf_counter()
obj = torch.load(sys.argv[1], map_location="cpu")
sd = obj.get("state_dict", obj)
t3 = time.perf_counter()
out = {"import_s": t1 - t0, "materialise_s": t2 - t1, "torch_load_s": t3 - t2}
try:
    res = net.load_state_dict(sd, strict=False)
    out.update(missing=len(res.missing_keys), unexpected=len(res.unexpected_keys), error=None)
except RuntimeError as exc:
    out.update(missing=None, unexpected=None, error=str(exc).strip().splitlines()[-1].strip()[:200])
out["load_state_dict_s"] = time.perf_counter() - t3
print("BENCH " + json.dumps(out))
"""


# --------------------------------------------------------------------------
# Writing the checkpoints (in a child process, so the parent stays small)


def _fill_value(key: str, index: dict[str, int]) -> float:
    # The condition VAE is a copy of the first-stage VAE (as in a frozen, shared VAE),
    # so --hash has real duplicates to find; every other key gets its own value.
    twin = key.replace("cond_stage_models.0.vae.", "first_stage_model.", 1)
    i = index.get(twin, index[key])
    return 1e-3 + i * 1e-4


def write_checkpoints(manifest: Path, clean: Path, fault: Path) -> dict:
    import torch

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
              "float64": torch.float64, "int64": torch.int64, "int32": torch.int32, "uint8": torch.uint8,
              "int8": torch.int8, "int16": torch.int16, "bool": torch.bool}
    keys = json.loads(manifest.read_text())["keys"]
    index = {k: i for i, k in enumerate(keys)}
    t0 = time.perf_counter()
    state = {}
    for key, spec in keys.items():
        dtype = dtypes[spec["dtype"]]
        t = torch.empty(spec["shape"], dtype=dtype)
        t.fill_(_fill_value(key, index) if dtype.is_floating_point else index[key] % 100)
        state[key] = t
    t1 = time.perf_counter()
    torch.save({"state_dict": state}, clean)
    t2 = time.perf_counter()
    for key in (DROP_KEY, RESHAPE_KEY):
        if key not in state:
            raise SystemExit(f"{manifest}: has no key {key}; cannot build the fault variant")
    del state[DROP_KEY]
    old = state[RESHAPE_KEY]
    state[RESHAPE_KEY] = torch.full((old.shape[0] + 1, *old.shape[1:]), 0.5)
    state[ADD_KEY] = torch.full((4,), 0.25)
    torch.save({"state_dict": state}, fault)
    t3 = time.perf_counter()
    return {"keys": len(keys), "fill_s": t1 - t0, "save_s": t2 - t1, "save_fault_s": t3 - t2,
            "fault_keys": {"missing": DROP_KEY, "shape_mismatch": RESHAPE_KEY, "unexpected": ADD_KEY}}


# --------------------------------------------------------------------------
# Measuring a child process


def measure(argv: list[str], workdir: Path, label: str) -> dict:
    """Run a child; wall time, exit code, peak RSS (wait4) and rchar bytes."""
    io_file = workdir / f".io-{label}"
    out_file, err_file = workdir / f".out-{label}", workdir / f".err-{label}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_IO_OUT=str(io_file))
    with open(out_file, "wb") as out, open(err_file, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rchar = int(io_file.read_text()) if io_file.exists() else None
    result = {"label": label, "exit": proc.returncode, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
              "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "read_bytes": rchar,
              "stdout": out_file.read_text(errors="replace"), "stderr": err_file.read_text(errors="replace")}
    for f in (io_file, out_file, err_file):
        f.unlink(missing_ok=True)
    return result


def _wrapped(kind: str, target: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _WRAPPER, kind, target, *args]


def _parity_module() -> str:
    """`audiosr_verify.cli.main` once it has the parity verb, else the verbs' own entry point."""
    sys.path.insert(0, str(ROOT))
    from audiosr_verify.cli import main as cli

    sub = next(a for a in cli.build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return "audiosr_verify.cli.main" if "parity" in sub.choices else "audiosr_verify.cli.parity"


def _summarise(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    last = dict(runs[-1])
    last.update(wall_s=statistics.median(walls), wall_min_s=min(walls), wall_max_s=max(walls), runs=len(runs),
                peak_rss_mb=max(r["peak_rss_mb"] for r in runs))
    return last


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="key layout to write (original layout)")
    ap.add_argument("--preset", default="basic", choices=["basic", "tiny"])
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the checkpoints (default: a temp dir in /tmp)")
    ap.add_argument("--repeat", type=int, default=3, help="parity runs to take the median of (default 3)")
    ap.add_argument("--with-hash", action="store_true", help="also time `parity --hash` (reads all data twice)")
    ap.add_argument("--skip-torch-load", action="store_true", help="skip the torch.load baseline")
    ap.add_argument("--keep", action="store_true", help="keep the written checkpoints")
    ap.add_argument("--json", metavar="FILE", help="write the results here (default: JSON on stdout, table on stderr)")
    ap.add_argument("--write-checkpoints", nargs=3, metavar=("MANIFEST", "CLEAN", "FAULT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.write_checkpoints:  # child mode
        m, clean, fault = map(Path, args.write_checkpoints)
        print("BENCH " + json.dumps(write_checkpoints(m, clean, fault)))
        return 0

    if not args.manifest.exists():
        print(f"{args.manifest}: manifest not found", file=sys.stderr)
        return 2
    manifest = json.loads(args.manifest.read_text())
    n_keys = len(manifest["keys"])
    itemsize = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "int16": 2}
    est = sum(math.prod(v["shape"]) * itemsize.get(v["dtype"], 1) for v in manifest["keys"].values())
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    if free < 2.1 * est + (1 << 30):
        print(f"{parent}: {free / 1e9:.1f} GB free, need {2.1 * est / 1e9 + 1:.1f} GB", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench_parity.", dir=parent))
    clean, fault = workdir / "pytorch_model.bin", workdir / "pytorch_model_fault.bin"
    table_out = sys.stdout if args.json else sys.stderr
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {"manifest": str(args.manifest), "preset": args.preset, "keys": n_keys,
                     "tensor_bytes": est, "workdir": str(workdir), "python": sys.version.split()[0],
                     "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    try:
        log(f"writing {n_keys:,}-key checkpoints ({est / 1e9:.2f} GB each) to {workdir} ...")
        w = measure([sys.executable, __file__, "--write-checkpoints", str(args.manifest), str(clean), str(fault)],
                    workdir, "write")
        if w["exit"] != 0:
            log(w["stderr"])
            return 2
        results["write"] = json.loads(w["stdout"].split("BENCH ", 1)[1]) | {
            "wall_s": w["wall_s"], "peak_rss_mb": w["peak_rss_mb"], "file_bytes": clean.stat().st_size}
        log(f"  wrote {clean.stat().st_size / 1e9:.2f} GB in {w['wall_s']:.0f} s (writer peak RSS {w['peak_rss_mb']:.0f} MB)")

        module = _parity_module()
        results["parity_command"] = f"python -m {module} parity FILE --preset {args.preset} --json REPORT"
        report = workdir / "report.json"
        # Our layout comes from a fingerprinted cache once built: time the first (cold) run apart.
        os.environ["AUDIOSR_VERIFY_CACHE"] = str(workdir / "layout-cache")
        log("parity, cold layout cache ...")
        results["parity_cold"] = measure(_wrapped("-m", module, "parity", str(clean), "--preset", args.preset,
                                                  "--json", str(report)), workdir, "parity-cold")
        runs = []
        for i in range(args.repeat):
            log(f"parity run {i + 1}/{args.repeat} ...")
            runs.append(measure(_wrapped("-m", module, "parity", str(clean), "--preset", args.preset,
                                         "--json", str(report)), workdir, "parity"))
        par = _summarise(runs)
        data = json.loads(report.read_text())
        par["summary"] = data["summary"]
        par["file_keys_classified"] = sum(v for k, v in data["summary"].items() if k != "missing")
        par["variants"] = {v["name"]: v["value"] for v in data["variants"]}
        par["model_layout"] = data.get("model_layout")
        results["parity"] = par

        log("parity on the fault variant ...")
        fr = measure(_wrapped("-m", module, "parity", str(fault), "--preset", args.preset, "--json", str(report)),
                     workdir, "parity-fault")
        fdata = json.loads(report.read_text())
        named = {k["key"]: k["status"] for k in fdata["keys"] if k["status"] not in ("matched", "ignored")}
        fr["problems"] = named
        fr["names_exactly_the_faults"] = named == {DROP_KEY: "missing", RESHAPE_KEY: "shape_mismatch",
                                                   ADD_KEY: "unexpected"}
        results["parity_fault"] = fr

        if args.with_hash:
            log("parity --hash ...")
            results["parity_hash"] = measure(_wrapped("-m", module, "parity", str(clean), "--preset", args.preset,
                                                      "--hash", "--json", str(report)), workdir, "parity-hash")
            hdata = json.loads(report.read_text())
            results["parity_hash"]["duplicates"] = hdata["duplicates"]["by_module"][:5]

        log("import torch alone ...")
        results["import_torch"] = _summarise([measure(_wrapped("-c", "import torch"), workdir, "import")
                                              for _ in range(args.repeat)])

        if not args.skip_torch_load:
            for label, path in (("torch_load", clean), ("torch_load_fault", fault)):
                log(f"{label}: torch.load + load_state_dict(strict=False) ...")
                b = measure(_wrapped("-c", _BASELINE, str(path), args.preset), workdir, label)
                if "BENCH " in b["stdout"]:
                    b["detail"] = json.loads(b["stdout"].split("BENCH ", 1)[1])
                results[label] = b
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")

    for r in results.values():  # child output is in the measurements' own fields
        if isinstance(r, dict):
            r.pop("stdout", None)
            r.pop("stderr", None)
    par, fr = results["parity"], results["parity_fault"]
    floor = results["import_torch"]["read_bytes"] or 0
    par["extra_read_bytes"] = None if par["read_bytes"] is None else par["read_bytes"] - floor
    results["targets"] = {
        "wall_le_5s": par["wall_s"] <= TARGET_WALL_S,
        "peak_rss_le_500mb": par["peak_rss_mb"] <= TARGET_RSS_MB,
        "exit_0": par["exit"] == 0,
        "all_keys_classified": par["file_keys_classified"] == n_keys,
        # bytes read beyond what `import torch` reads (python sources, libraries)
        "no_tensor_data_read": par["extra_read_bytes"] is not None
        and par["extra_read_bytes"] < 0.01 * results["write"]["file_bytes"],
        "fault_exit_1_names_3_keys": fr["exit"] == 1 and fr["names_exactly_the_faults"],
    }
    _print_table(results, table_out)
    text = json.dumps(results, indent=2, default=str) + "\n"
    if args.json:
        Path(args.json).write_text(text)
    else:
        sys.stdout.write(text)
    return 0 if all(results["targets"].values()) else 1


def _print_table(results: dict, file) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"parity benchmark: {results['keys']:,} keys, {results['write']['file_bytes'] / 1e9:.2f} GB "
                    f"({results['cpus']} CPUs, load {results['load_average'][0]:.1f})")
    for col in ("run", "exit", "wall s", "peak RSS MB", "read MB", "notes"):
        t.add_column(col, justify="left" if col in ("run", "notes") else "right")

    def row(name, r, notes=""):
        if r is None:
            return
        read = "-" if r.get("read_bytes") is None else f"{r['read_bytes'] / 1e6:,.1f}"
        wall = f"{r['wall_s']:.2f}" + (f" ({r['wall_min_s']:.2f}-{r['wall_max_s']:.2f})" if r.get("runs", 1) > 1 else "")
        t.add_row(name, str(r["exit"]), wall, f"{r['peak_rss_mb']:,.0f}", read, notes)

    row("parity (cold layout cache)", results.get("parity_cold"), "builds our skeleton, writes the layout cache")
    p = results["parity"]
    row("parity", p, f"{p['file_keys_classified']:,} keys classified; " + ", ".join(
        f"{v} {k}" for k, v in p["summary"].items() if v))
    f = results["parity_fault"]
    row("parity (fault variant)", f, ("names exactly: " if f["names_exactly_the_faults"] else "names: ")
        + ", ".join(f"{k} ({s})" for k, s in f["problems"].items()))
    if "parity_hash" in results:
        h = results["parity_hash"]
        row("parity --hash", h, "; ".join(f"{' = '.join(d['modules'])}: {d['tensors']} tensors"
                                          for d in h.get("duplicates", [])[:2]))
    row("import torch (floor)", results["import_torch"])
    for label in ("torch_load", "torch_load_fault"):
        b = results.get(label)
        if b:
            d = b.get("detail", {})
            note = (f"error: {d['error']}" if d.get("error") else
                    f"strict=False: {d.get('missing')} missing, {d.get('unexpected')} unexpected, silently")
            row("torch.load + load_state_dict" + (" (fault)" if label.endswith("fault") else ""), b, note)
    w = results["write"]
    t.caption = (f"writer: {w['wall_s']:.0f} s, peak RSS {w['peak_rss_mb']:,.0f} MB · targets: "
                 + ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in results["targets"].items()))
    Console(file=file, width=170).print(t)


if __name__ == "__main__":
    sys.exit(main())
