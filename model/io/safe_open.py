"""The one way the project opens an input file: regular files only, bounded, one-line errors.

Every file the tool reads (audio, checkpoints, manifests, configs, golden
files) goes through :func:`open_input`. It opens without blocking and checks
the *opened* descriptor, so:

- a named pipe cannot block ``open()`` forever (``O_NONBLOCK`` on the open,
  cleared again for a regular file);
- a device such as ``/dev/zero`` (or a symlink to one) is refused before a
  byte is read: it would otherwise be read until memory runs out;
- what is checked is what is read: ``fstat`` on the descriptor, not ``stat``
  on a path that may be swapped in between;
- a file larger than the caller's bound is refused from its size, and
  :func:`read_bytes` never reads more than the bound, even from a file that
  grows while it is read.

Every problem is an `AudioSRError`: one line, naming the file. The harness
reaches the same routine through ``audiosr_verify.util.safe_open``, which adds
type-checked JSON for its own files (``audiosr_model`` never imports the
harness, so the routine lives here).
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
from typing import Any, BinaryIO

from audiosr_model.errors import AudioSRError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
# Bounds on files that are read whole: each is far above any real file of its
# kind (the basic checkpoint's manifest is 0.5 MB, a golden meta.json 3 kB, a
# YAML config 2 kB) and far below what would strain memory.
MAX_JSON_BYTES = 64 * MIB
MAX_CONFIG_BYTES = 1 * MIB
MAX_JSON_DEPTH = 64

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _a(what: str) -> str:
    return f"an {what}" if what[:1].lower() in "aeiou" else f"a {what}"


def _refuse_stat(st: os.stat_result, path: Any, what: str, max_bytes: int | None, allow_empty: bool) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise AudioSRError(f"is a directory, not {_a(what)}", path)
    if not stat.S_ISREG(st.st_mode):
        raise AudioSRError(f"is not a regular file ({_kind(st.st_mode)}), not {_a(what)}", path)
    if st.st_size == 0 and not allow_empty:
        raise AudioSRError(f"is an empty file (0 bytes), not {_a(what)}", path)
    if max_bytes is not None and st.st_size > max_bytes:
        raise AudioSRError(f"is {st.st_size:,} bytes; {_a(what)} is at most {max_bytes:,} bytes, "
                           "refusing to read it", path)


def open_input(path: Any, what: str = "file", *, max_bytes: int | None = None,
               allow_empty: bool = False) -> BinaryIO:
    """Open ``path`` for reading (binary) after checking it is a bounded regular file.

    ``what`` names the kind of file in messages ("checkpoint", "audio file",
    ...). ``max_bytes`` refuses larger files; ``allow_empty`` accepts 0 bytes.
    The caller closes the returned file object (use ``with``).
    """
    if path is None or str(path) == "":
        raise AudioSRError(f"no {what} given")
    try:
        fd = os.open(os.fspath(path), _OPEN_FLAGS)
    except FileNotFoundError:
        raise AudioSRError(f"no such file ({what} not found)", path) from None
    except IsADirectoryError:
        raise AudioSRError(f"is a directory, not {_a(what)}", path) from None
    except PermissionError:
        raise AudioSRError(f"cannot open {what}: permission denied", path) from None
    except NotADirectoryError:
        raise AudioSRError(f"no such file ({what} not found: a parent is not a directory)", path) from None
    except OSError as exc:
        raise AudioSRError(f"cannot open {what}: {exc.strerror or exc}", path) from None
    except (TypeError, ValueError) as exc:  # a NUL byte in the name, a non-path object
        raise AudioSRError(f"not a usable file name for {_a(what)} ({exc})", repr(path)) from None
    try:
        _refuse_stat(os.fstat(fd), path, what, max_bytes, allow_empty)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_input(path: Any, what: str = "file", *, max_bytes: int | None = None,
                allow_empty: bool = False) -> int:
    """Open and close ``path`` as :func:`open_input` would; its size in bytes."""
    with open_input(path, what, max_bytes=max_bytes, allow_empty=allow_empty) as f:
        return os.fstat(f.fileno()).st_size


def read_bytes(path: Any, what: str = "file", *, max_bytes: int, allow_empty: bool = False) -> bytes:
    """The whole file, refused when larger than ``max_bytes`` (also if it grows while read)."""
    with open_input(path, what, max_bytes=max_bytes, allow_empty=allow_empty) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise AudioSRError(f"cannot read {what}: {exc.strerror or exc}", path) from None
    if len(data) > max_bytes:
        raise AudioSRError(f"grew past {max_bytes:,} bytes while being read; refusing it", path)
    return data


def read_text(path: Any, what: str = "file", *, max_bytes: int, allow_empty: bool = False) -> str:
    """UTF-8 text (a byte-order mark is dropped); bounded as :func:`read_bytes`."""
    data = read_bytes(path, what, max_bytes=max_bytes, allow_empty=allow_empty)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AudioSRError(f"{what} is not UTF-8 text (byte {exc.start})", path) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (a deep document must not hit the recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def parse_json(text: str, path: Any, what: str = "JSON file") -> Any:
    """JSON with one-line errors; NaN/Infinity (not JSON) and absurd nesting refused."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise AudioSRError(f"{what} is nested too deeply", path) from None
    except ValueError as exc:
        raise AudioSRError(f"not valid JSON ({exc})", path) from None
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise AudioSRError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep", path)
    return data


def read_json(path: Any, what: str = "JSON file", *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A bounded JSON document, parsed (types are the caller's to check)."""
    return parse_json(read_text(path, what, max_bytes=max_bytes), path, what)


def finite_number(value: Any) -> bool:
    """A real number (bool excluded) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class BoundedReader(io.RawIOBase):
    """A read-only view of at most ``limit`` bytes of a stream; reading more is an error.

    Used where a library reads a record whose declared size may lie (a zip
    member inflating far beyond its header): the bound holds whatever the
    header says.
    """

    def __init__(self, raw: BinaryIO, limit: int, path: Any, what: str):
        self._raw, self._left, self._path, self._what = raw, limit, path, what
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = len(buffer)
        chunk = self._raw.read(min(want, self._left + 1))
        if len(chunk) > self._left:
            raise AudioSRError(f"{self._what} inflates past {self._limit:,} bytes; refusing to read it",
                               self._path)
        self._left -= len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


__all__ = [
    "BoundedReader", "GIB", "KIB", "MAX_CONFIG_BYTES", "MAX_JSON_BYTES", "MIB", "check_input", "finite_number",
    "open_input", "parse_json", "read_bytes", "read_json", "read_text",
]
