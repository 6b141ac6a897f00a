"""A clean, strict, offline implementation of AudioSR inference."""

from audiosr_model.errors import AudioSRError

__all__ = ["AudioSRError"]
