"""Verification verbs of `audiosr-verify`, registered by the modules that implement them."""

from __future__ import annotations


def add_verbs(sub) -> None:
    """Register the verification verbs on the `audiosr-verify` sub-parser."""
    from audiosr_verify import cli_parity, cli_report

    cli_parity.add_verbs(sub)
    cli_report.add_verbs(sub)

    from audiosr_verify import cli_oracle

    cli_oracle.add_verbs(sub)
