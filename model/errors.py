"""The one exception type the project raises for problems a user can act on.

Every message is a single line naming the file (or option) and what is wrong,
so the CLI can print it without a traceback.
"""

from __future__ import annotations


class AudioSRError(Exception):
    """Bad audio, bad checkpoint or bad option: one line, names the culprit."""

    def __init__(self, message: str, path: object | None = None):
        message = " ".join(str(message).split())  # keep it on one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = None if path is None else str(path)
