"""What the verbs of `audiosr-verify` share: exit codes, option types, model options, loading the network.

Every verb module imports from here and nothing imports the verbs but
`cli.main`, so the CLI has no import cycle.

Options are validated where they are parsed (the argparse ``type=`` functions
below: a seed out of range or a NaN guidance is refused before anything
runs). Those types wrap the validators of ``audiosr_model.audio_options``,
the one place each range is defined (`seed_type`, `steps_type`,
`guidance_type`, `batch_chunks_type` here; ``check_seed`` & co. there for
code that gets its values elsewhere, such as the pytest plugin or `check`).
Output directories are checked before any work (`check_output_dir`), and what
`output_dir` creates, `remove_if_empty` takes back when a run fails before
writing anything. `check_model_options` validates the model options (checkpoint
file, configuration, weights) before any verb loads a model, so a bad value
costs one line and no work.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from audiosr_model.audio_options import (
    BATCH_CHUNKS_RANGE,
    GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    finite_number_in,
    whole_number_in,
)
from audiosr_model.errors import AudioSRError
from audiosr_verify.util.output_dirs import check_output_dir, output_dir, remove_if_empty  # noqa: F401 (re-exported)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SEED_MAX = SEED_RANGE[1]  # numpy's RandomState takes no more
MAX_PARAMETERS = 4_000_000_000  # 16 GB of float32, far above the released model


def _argument(check, value, *limits):
    """``check(value, *limits)`` with its refusal as argparse's error (one line, naming the option)."""
    try:
        return check(value, *limits)
    except AudioSRError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_in(low: int, high: int | None = None, what: str = "value"):
    """argparse type: a whole number in [low, high], judged by `audio_options.whole_number_in`."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        return _argument(whole_number_in, value, low, high, what)

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def float_in(low: float, high: float | None = None, what: str = "value"):
    """argparse type: a finite number in [low, high] (NaN, infinities refused), by `audio_options.finite_number_in`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        return _argument(finite_number_in, value, low, high, what)

    parse.__name__ = what
    return parse


# The sampling options' argparse types, built from the ranges of `audiosr_model.audio_options` (their only
# definition): every verb that takes --seed/--steps/--guidance uses these, so all refuse the same values.
seed_type = int_in(*SEED_RANGE, "seed")
steps_type = int_in(*STEPS_RANGE, "steps")
guidance_type = float_in(*GUIDANCE_RANGE, "guidance")
batch_chunks_type = int_in(*BATCH_CHUNKS_RANGE, "batch-chunks")


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", metavar="PATH", help="AudioSR checkpoint (.bin/.ckpt/.pt or .safetensors)")
    g.add_argument("--preset", default=None, choices=["basic", "tiny"],
                   help="layout of the network (default: basic with --checkpoint, tiny with --random-weights)")
    g.add_argument("--config", metavar="YAML", help="custom model configuration (overrides --preset)")
    g.add_argument("--random-weights", action="store_true",
                   help="use deterministic random weights instead of a checkpoint (the bundled default)")
    g.add_argument("--weights-seed", type=seed_type, default=0,
                   help=f"seed of the random weights, 0 to {SEED_MAX} (default 0)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="compute device")


def check_model_options(args, require_weights: bool = True):
    """Validate the model options without loading anything; the configuration they select.

    The checkpoint must be a readable regular file, ``--config`` a valid
    configuration (every value type- and range-checked) that builds a network
    of sane size; ``--checkpoint`` and ``--random-weights`` exclude each
    other. The result is kept on ``args`` for `load_network`.
    """
    from audiosr_model import config as cfg
    from audiosr_model.io.safe_open import check_input

    if getattr(args, "checkpoint", None) and getattr(args, "random_weights", False):
        raise AudioSRError("give either --checkpoint or --random-weights, not both")
    if require_weights and not args.checkpoint and not args.random_weights:
        raise AudioSRError("no weights: give --checkpoint PATH, or --random-weights for the bundled tiny default")
    if args.checkpoint:
        check_input(args.checkpoint, "checkpoint")
    if args.config:
        config = cfg.load_yaml(args.config)
        _check_network_size(config, args.config)
    else:
        config = cfg.preset(args.preset or ("basic" if args.checkpoint else "tiny"))
    args._checked_config = config
    return config


def _check_network_size(config, path) -> None:
    """Build the network on the meta device (no memory) and refuse one too large to hold."""
    from audiosr_model.weights.load import skeleton

    try:
        net = skeleton(config)
    except Exception as exc:  # a configuration our network classes cannot take
        raise AudioSRError(f"the configuration does not describe a network: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}", path) from None
    count = sum(t.numel() for t in net.state_dict().values())
    if count > MAX_PARAMETERS:
        raise AudioSRError(f"the configuration describes {count:,} parameters ({4 * count / 2**30:.0f} GiB); "
                           f"at most {MAX_PARAMETERS:,} are accepted", path)


def load_network(args):
    """The network the model options ask for, with a one-line description."""
    from audiosr_model.weights.load import load_model, random_model, resolve_device

    config = getattr(args, "_checked_config", None) or check_model_options(args)
    device = resolve_device(args.device)
    if args.checkpoint:
        net, report = load_model(args.checkpoint, config, device)
        c = report.counts
        return net, f"{args.checkpoint} ({config.name}: {c['matched']} keys loaded, {c['ignored']} ignored)"
    net = random_model(config, args.weights_seed, device)
    return net, f"random weights ({config.name}, seed {args.weights_seed})"


def input_dir(path: str | os.PathLike | None, what: str) -> Path | None:
    """A directory the run reads from: it must exist and be a directory (one line otherwise)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise AudioSRError(f"{what} does not exist", p)
    if not p.is_dir():
        raise AudioSRError(f"{what} is not a directory", p)
    return p


__all__ = [
    "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "SEED_MAX", "add_model_options", "batch_chunks_type",
    "check_model_options", "check_output_dir", "float_in", "guidance_type", "input_dir", "int_in", "load_network",
    "output_dir", "parse_options", "remove_if_empty", "seed_type", "steps_type",
]

def parse_options(items: list[str]) -> dict[str, str]:
    """--option KEY=VALUE items as a dict (subject factories read them from context.options)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise AudioSRError(f"--option {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        if not k.strip():
            raise AudioSRError(f"--option {item!r}: the KEY is empty")
        out[k.strip()] = v
    return out
