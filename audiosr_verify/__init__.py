"""Verification harness for AudioSR implementations."""

__version__ = "0.1.0"
