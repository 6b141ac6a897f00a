"""`audiosr-verify enhance` and `audiosr-verify make-checkpoint`.

`enhance` does every check before the model is loaded, in this order: the
options (argparse types, the model options, --precision and --compile against
the device), the outputs against each other (two inputs with one stem would
write one file: refused, naming both), every input in full (header, length,
NaN/Inf, truncation), then every output (the audio files and --timings-json)
against the inputs and the file system, each locked for the whole run so that
a concurrent run cannot replace a result (`audiosr_model.io.publish.Reservation`).
Each result is published whole or not at all; an output that cannot be
written makes the exit status non-zero. A run that fails before writing
anything removes the output directory it created.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_options,
    batch_chunks_type,
    check_model_options,
    guidance_type,
    load_network,
    output_dir,
    remove_if_empty,
    seed_type,
    steps_type,
)

from audiosr_model.audio_options import BATCH_CHUNKS_RANGE, MAX_GUIDANCE, MAX_STEPS, MIX_MODES, OUTPUT_FORMATS


def add_verbs(sub) -> None:
    """Register `enhance` and `make-checkpoint` on an argparse sub-parsers object."""
    p = sub.add_parser("enhance", help="super-resolve audio files to 48 kHz",
                       description="Enhance each INPUT to DIR/<stem>.wav (48 kHz 32-bit float WAV, the input's "
                       "channels) or to --output FILE. Without --checkpoint, give --random-weights to run the "
                       "bundled tiny default.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (any rate soundfile reads)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output-dir", "-o", metavar="DIR", help="write DIR/<input stem>.<format extension>")
    where.add_argument("--output", metavar="FILE",
                       help="one INPUT only: write FILE (its extension, .wav or .flac, sets the format)")
    add_model_options(p)
    p.add_argument("--steps", type=steps_type, default=50,
                   help=f"DDIM steps, 1 to {MAX_STEPS} (default 50; the original uses 200)")
    p.add_argument("--guidance", type=guidance_type, default=3.5,
                   help=f"classifier-free guidance scale, 0 to {MAX_GUIDANCE:g} (default 3.5)")
    p.add_argument("--seed", type=seed_type, default=42, help="random seed, 0 to 2**32-1 (default 42, as the original)")
    p.add_argument("--level", default="preserve", choices=["preserve", "faithful"],
                   help="output level: keep the input's RMS (preserve, default) or peak 0.5 like the original")
    p.add_argument("--mix", default="keep", choices=list(MIX_MODES),
                   help="channels: enhance each and keep them (keep, default), or mono from their average "
                   "(mean) or from the first channel like the original (first)")
    p.add_argument("--format", default=None, choices=list(OUTPUT_FORMATS),
                   help="output format: wav (32-bit float, default), wav-pcm16, wav-pcm24, flac (24-bit), "
                   "flac-pcm16; with --output, default from its extension")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    speed = p.add_argument_group("speed")
    speed.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                       help="network precision: fp32 (default, the original's numbers), bf16 (CPU with native "
                       "bfloat16, or CUDA) or fp16 (CUDA) under torch.autocast; DSP and DDIM stay float32")
    speed.add_argument("--attention", default="math", choices=["math", "sdpa"],
                       help="UNet attention: the original's arithmetic (math, default) or torch's fused "
                       "scaled_dot_product_attention (sdpa; equal within float rounding)")
    speed.add_argument("--compile", action="store_true",
                       help="run the UNet through torch.compile (opt-in: the first step at each chunk length "
                       "compiles, timed as its own 'compile' stage; needs a C++ compiler on CPU)")
    speed.add_argument("--batch-chunks", type=batch_chunks_type, default=1, metavar="N",
                       help=f"long mono files: run N chunks through the networks in one batched call, "
                       f"{BATCH_CHUNKS_RANGE[0]} to {BATCH_CHUNKS_RANGE[1]} (default 1; more uses more memory, "
                       "pays off on GPUs)")
    speed.add_argument("--timings", action="store_true", help="print per-stage wall times to stderr")
    speed.add_argument("--timings-json", metavar="FILE",
                       help="write per-stage wall times as JSON to FILE (checked, like every output, before the "
                       "model is loaded)")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("make-checkpoint", help="write deterministic random weights as a checkpoint",
                       description="Write a checkpoint with seeded random weights for a preset, in the "
                       "original format ({'state_dict': ...} torch zip) or as safetensors.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--preset", default="tiny", choices=["basic", "tiny"])
    size.add_argument("--config", metavar="YAML", help="a model configuration (the YAML of enhance --config) "
                      "instead of a preset")
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the weights, 0 to 2**32-1 (default 0)")
    p.add_argument("--output", "-o", required=True, metavar="FILE")
    p.add_argument("--format", choices=["bin", "safetensors"], default=None,
                   help="file format (default: from the extension; .safetensors -> safetensors, else bin)")
    p.set_defaults(func=cmd_make_checkpoint)


def _plan_targets(args) -> tuple[list[Path], str | None]:
    """One output path per input (checked against each other), and the format they are written in."""
    from audiosr_model.audio_options import output_format
    from audiosr_model.io.publish import identity

    if args.output:
        if len(args.inputs) != 1:
            raise AudioSRError(f"--output names one file, but {len(args.inputs)} inputs were given; "
                               "use --output-dir for several")
        fmt = output_format(args.output, args.format)
        return [Path(args.output)], fmt
    fmt = args.format or "wav"
    out_dir = Path(args.output_dir)
    targets = [out_dir / (Path(item).stem + OUTPUT_FORMATS[fmt][2]) for item in args.inputs]
    seen: dict[str, str] = {}
    for item, target in zip(args.inputs, targets):
        key = identity(target)
        if key in seen:  # a/song.wav and b/song.flac: refused, not renamed (docs/level.md, "Bad input")
            raise AudioSRError(f"inputs {seen[key]} and {item} would both be written to {target}; "
                               "enhance them in separate runs (or into separate --output-dir)", target)
        seen[key] = item
    return targets, fmt


def cmd_enhance(args) -> int:
    from audiosr_model.audio_options import check_run_options
    from audiosr_model.io.audio_stream import check_audio_file
    from audiosr_model.io.publish import Reservation

    check_run_options(args.steps, args.guidance, args.seed, args.level, args.mix)
    check_model_options(args)
    _check_speed_options(args)
    targets, fmt = _plan_targets(args)
    # Every input is checked in full (header, length, NaN/Inf, truncation) before
    # the model is loaded or anything is created: a bad file costs one line.
    for item in args.inputs:
        check_audio_file(item)
    out_dir, created = output_dir(args.output_dir) if args.output_dir else (None, None)
    try:
        _check_timings_json(args.timings_json)  # after -o is made: --timings-json may go inside it
        # Every output (the audio, --timings-json) is checked against the others, the inputs and the file
        # system, and locked, before the model is loaded (Reservation.__enter__).
        with Reservation(_reserved(args, targets), inputs=args.inputs) as reservation:
            failures, written = _enhance_all(args, targets, fmt, reservation)
    finally:
        if out_dir is not None:
            remove_if_empty(out_dir, created)
    return EXIT_FAILED if failures else EXIT_OK


def _reserved(args, targets: list[Path]) -> list:
    """The run's outputs as publish targets: one per input, and the --timings-json file."""
    from audiosr_model.io.publish import Target

    reserved = [Target(t, source=str(item), overwrite=args.overwrite) for t, item in zip(targets, args.inputs)]
    if args.timings_json:  # a report about the run: replaced like any report, never an input or a result
        reserved.append(Target(Path(args.timings_json), source="--timings-json", what="--timings-json"))
    return reserved


def _check_timings_json(path: str | None) -> None:
    """Its folder must exist (the message names the option; Reservation checks the file itself)."""
    if path is None:
        return
    parent = Path(path).parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise AudioSRError(f"--timings-json: its folder {parent} {why}", Path(path))


def _check_speed_options(args) -> None:
    """--precision and --compile need support on the device: refused here, not after loading the model."""
    from audiosr_model.weights.load import resolve_device
    from audiosr_model.runtime.precision import check_precision

    device = resolve_device(args.device)
    check_precision(args.precision, device)
    if args.compile:
        _check_compiler(device)


def _check_compiler(device) -> None:
    """--compile on CPU needs a C++ compiler; without one it would fail at the first step, after the model is
    built, once per file.

    The compiler looked for is the one torch's inductor tries by default ($CXX, else g++; clang++ on macOS),
    run with --version as inductor does. Inductor itself is not imported here: its import alone makes a cache
    folder under $TMPDIR, which a refused run must not leave.
    """
    import shutil
    import subprocess

    if device.type != "cpu" or os.environ.get("TORCH_INDUCTOR_INSTALL_GXX"):  # the latter: inductor fetches one
        return
    compiler = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    found = shutil.which(compiler)
    try:
        if found is None:
            raise FileNotFoundError(compiler)
        subprocess.run([found, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        raise AudioSRError(f"--compile on cpu needs a working C++ compiler; {compiler!r} "
                           f"{'is not found' if found is None else 'does not run'} (install g++ or set CXX)") from None


def _enhance_all(args, targets: list[Path], fmt: str, reservation) -> tuple[int, int]:
    from rich.console import Console

    from audiosr_model.runtime import memory, timings
    from audiosr_model.runtime.speed import fast_network

    console = Console(stderr=True)
    memory.configure()  # activations from a warm heap, trimmed between stages (model/runtime/memory.py)
    collect = timings.Timings() if (args.timings or args.timings_json) else None
    t_start = time.perf_counter()
    with console.status("loading model"):
        t0 = time.perf_counter()
        net, described = load_network(args)
        # the one home of the speed options (shared with the fast-path goldens and the precision subjects);
        # random weights are a cached, shared network: copied before they are changed
        net = fast_network(net, args.precision, args.attention, args.compile, copy_first=bool(args.random_weights))
        memory.release()  # what loading freed (a checkpoint's buffers) goes back before the first chunk
        if collect is not None:
            collect.add("load", time.perf_counter() - t0)
    extra = "" if (args.precision, args.attention, args.compile) == ("fp32", "math", False) else \
        f" [precision {args.precision}, attention {args.attention}{', compiled UNet' if args.compile else ''}]"
    console.print(f"model: {described}{extra}", highlight=False, markup=False)
    failures = written = 0
    try:
        with timings.collecting(collect) if collect is not None else contextlib.nullcontext():
            failures, written = _enhance_files(args, targets, fmt, reservation, net, console)
    finally:
        if collect is not None:
            failures += not _report_timings(args, collect, time.perf_counter() - t_start, described, reservation)
    return failures, written


def _report_timings(args, collect, total: float, described: str, reservation) -> bool:
    """Print and/or publish the timings; False when --timings-json could not be written (the run then fails)."""
    collect.extra.update({"total_s": round(total, 6), "model": described, "precision": args.precision,
                          "attention": args.attention, "compile": args.compile, "steps": args.steps,
                          "batch_chunks": args.batch_chunks, "inputs": len(args.inputs)})
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:  # a CUDA run: its device peak
        collect.extra["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        collect.extra["cuda_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    if args.timings:
        for line in collect.lines():
            print(line, file=sys.stderr)
        print(f"{'total':<18}{total:>10.3f}", file=sys.stderr)
        if "cuda_peak_allocated_mb" in collect.extra:
            print(f"cuda peak allocated {collect.extra['cuda_peak_allocated_mb']:.0f} MB", file=sys.stderr)
    if args.timings_json:
        try:  # written beside and renamed, like every output: never half a file, never through a symlink
            reservation.publish(args.timings_json, collect.write_json)
        except (AudioSRError, OSError) as exc:
            print(f"audiosr-verify: error: cannot write --timings-json {args.timings_json}: "
                  f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return False
    return True


def _enhance_files(args, targets: list[Path], fmt: str, reservation, net, console) -> tuple[int, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from audiosr_model.long_audio import enhance_file

    table = Table(title="enhanced")
    for col in ("input", "rate", "ch", "seconds", "cutoff Hz", "filter", "level", "output", "time s"):
        table.add_column(col)
    failures = written = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        files = progress.add_task("files", total=len(targets))
        steps = progress.add_task("sampler", total=1)
        for item, target in zip(args.inputs, targets):
            progress.update(steps, description=f"{Path(item).name}", completed=0)

            def report(what, done, total):
                if what == "step":
                    progress.update(steps, completed=done, total=total)

            t0 = time.perf_counter()
            try:
                r = enhance_file(net, item, target, steps=args.steps, guidance_scale=args.guidance,
                                 seed=args.seed, level_mode=args.level, mix=args.mix, progress=report,
                                 out_format=fmt, publish=reservation.publish, batch_chunks=args.batch_chunks)
            except AudioSRError as exc:
                failures += 1
                print(f"audiosr-verify: error: {exc}", file=sys.stderr)  # one line: rich would wrap it
                progress.advance(files)
                continue
            written += 1
            cut = ", ".join(f"{c:.0f}" for c in r.cutoff_hz) or "-"
            lvl = "silent" if r.silent_chunks == r.chunks * r.output_channels else args.level
            table.add_row(Path(item).name, str(r.input_rate), f"{r.channels}->{r.output_channels}",
                          f"{r.duration:.2f}", cut, ",".join(sorted(set(r.filter_types))) or "-", lvl,
                          str(target), f"{time.perf_counter() - t0:.1f}")
            progress.advance(files)
    console.print(table)
    return failures, written


def cmd_make_checkpoint(args) -> int:
    from audiosr_model import config as cfg
    from audiosr_model.weights.checkpoint import save_checkpoint
    from audiosr_model.weights.load import random_state
    from audiosr_model.io.publish import Target, check_targets

    fmt = args.format or ("safetensors" if Path(args.output).suffix == ".safetensors" else "bin")
    check_targets([Target(Path(args.output), "--output", what="checkpoint")])  # before building the weights
    config = cfg.load_yaml(args.config) if args.config else cfg.preset(args.preset)
    state = random_state(config, args.seed)
    save_checkpoint(state, args.output, fmt)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {args.output}: {len(state)} keys, {n:,} elements ({args.config or args.preset}, seed {args.seed})")
    return EXIT_OK
