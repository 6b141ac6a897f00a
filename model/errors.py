"""The one exception type the project raises for problems a user can act on.

Every message is a single line naming the file (or option) and what is wrong,
so the CLI can print it without a traceback.
"""

from __future__ import annotations


def printable(text: object) -> str:
    """``text`` with control characters (a newline in a file name) and undecodable bytes escaped.

    A path may hold any byte but NUL and '/': printed raw, a newline would
    break the one-line rule and a surrogate-escaped byte would make printing
    itself fail.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in text)


class AudioSRError(Exception):
    """Bad audio, bad checkpoint or bad option: one line, names the culprit."""

    def __init__(self, message: str, path: object | None = None):
        message = printable(" ".join(str(message).split()))  # keep it on one line
        if path is not None:
            message = f"{printable(path)}: {message}"
        super().__init__(message)
        self.path = None if path is None else str(path)
