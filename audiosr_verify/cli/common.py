"""What the verbs of `audiosr-verify` share: exit codes, model options, loading the network.

Every verb module imports from here and nothing imports the verbs but
`cli.main`, so the CLI has no import cycle.
"""

from __future__ import annotations

import argparse

from audiosr_model.errors import AudioSRError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", metavar="PATH", help="AudioSR checkpoint (.bin/.ckpt/.pt or .safetensors)")
    g.add_argument("--preset", default=None, choices=["basic", "tiny"],
                   help="layout of the network (default: basic with --checkpoint, tiny with --random-weights)")
    g.add_argument("--config", metavar="YAML", help="custom model configuration (overrides --preset)")
    g.add_argument("--random-weights", action="store_true",
                   help="use deterministic random weights instead of a checkpoint (the bundled default)")
    g.add_argument("--weights-seed", type=int, default=0, help="seed of the random weights (default 0)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="compute device")


def load_network(args):
    """The network the model options ask for, with a one-line description."""
    from audiosr_model import config as cfg
    from audiosr_model.load import load_model, random_model, resolve_device

    device = resolve_device(args.device)
    if args.config:
        config = cfg.load_yaml(args.config)
    else:
        config = cfg.preset(args.preset or ("basic" if args.checkpoint else "tiny"))
    if args.checkpoint and args.random_weights:
        raise AudioSRError("give either --checkpoint or --random-weights, not both")
    if args.checkpoint:
        net, report = load_model(args.checkpoint, config, device)
        c = report.counts
        return net, f"{args.checkpoint} ({config.name}: {c['matched']} keys loaded, {c['ignored']} ignored)"
    if not args.random_weights:
        raise AudioSRError("no weights: give --checkpoint PATH, or --random-weights for the bundled tiny default")
    net = random_model(config, args.weights_seed, device)
    return net, f"random weights ({config.name}, seed {args.weights_seed})"


