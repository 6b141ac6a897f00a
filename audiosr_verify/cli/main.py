"""`audiosr-verify`: enhance audio, make checkpoints, and verify implementations.

Every verb is a small function taking parsed arguments; problems a user can
fix are `AudioSRError`s, printed as one line without a traceback, exit 2.
This module only assembles the verbs (cli/enhance.py, parity.py, report.py,
oracle.py, check.py): they import `cli.common`, never this module.
"""

from __future__ import annotations

import argparse
import sys

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli import check, enhance, oracle, parity, report
from audiosr_verify.cli.common import EXIT_USAGE

VERB_MODULES = (enhance, parity, report, check, oracle)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiosr-verify",
        description="AudioSR super-resolution to 48 kHz, and the harness that verifies it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in VERB_MODULES:
        module.add_verbs(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AudioSRError as exc:
        print(f"audiosr-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("audiosr-verify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
