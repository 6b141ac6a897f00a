"""`audiosr-verify`: enhance audio, make checkpoints, and verify implementations.

Every verb is a small function taking parsed arguments; problems a user can
fix are `AudioSRError`s, printed as one line without a traceback, exit 2.
A bad option is one line too (argparse's usage block is left out; ``--help``
shows it). SIGTERM and SIGHUP are handled like SIGINT: the run stops, every
temporary file is removed, and the exit status is 128 + the signal number.
This module only assembles the verbs (cli/enhance.py, parity.py, report.py,
oracle.py, check.py): they import `cli.common`, never this module.
"""

from __future__ import annotations

import argparse
import sys

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli import check, enhance, evaluate, oracle, parity, report
from audiosr_verify.cli.common import EXIT_USAGE

VERB_MODULES = (enhance, parity, report, check, oracle, evaluate)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line (``audiosr-verify enhance: error: argument --seed: ...``)."""

    def error(self, message: str):
        from audiosr_model.errors import printable

        self.exit(EXIT_USAGE, f"{self.prog}: error: {printable(' '.join(message.split()))}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="audiosr-verify",
        description="AudioSR super-resolution to 48 kHz, and the harness that verifies it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in VERB_MODULES:
        module.add_verbs(sub)
    return parser


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    from audiosr_verify.util.atomic import install_signal_handlers, received_signal

    restore = install_signal_handlers()
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # a bad option (its one line printed) or --help: the status is returned,
            return _exit_status(exc.code)  # as for any other refusal, so callers of main() see 2, not a raise
        code = int(args.func(args) or 0)
        if received_signal() is not None:  # a signal whose KeyboardInterrupt was lost on its way out
            raise KeyboardInterrupt
        return code
    except AudioSRError as exc:
        print(f"audiosr-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        import signal

        sig = received_signal() or signal.SIGINT
        print(f"audiosr-verify: interrupted by {signal.Signals(sig).name}; no partial output was left",
              file=sys.stderr)
        return 128 + int(sig)
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
