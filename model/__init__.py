"""A clean, strict, offline implementation of AudioSR inference."""

from model.errors import AudioSRError

__all__ = ["AudioSRError"]
