"""``OUT/results.jsonl``: one JSON object per evaluated file, appended as each file finishes.

Written so that a killed run loses nothing already written: each row is one
``write`` of a whole line on a file opened with ``O_APPEND``, followed by
``fsync``, by the driver alone (workers return rows, they never write). A run
killed in the middle of a write leaves at most one torn last line; opening the
journal again cuts it off (that file is simply redone) and returns the finished
rows, so a re-run with the same OUT skips them and never writes a duplicate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from audiosr_model.errors import AudioSRError

RESULTS_FILE = "results.jsonl"


class Journal:
    """The results file of one output directory (see the module docstring)."""

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / RESULTS_FILE
        self._fd: int | None = None
        self._lock = None
        self.rows: dict[str, dict[str, Any]] = {}  # file -> row, in file order
        self.torn = False  # a torn last line was cut off when opening

    def open(self) -> "Journal":
        """Lock, read the finished rows (cutting off a torn last line) and open the file for appending.

        The lock (an ``flock`` beside the file, dropped by the kernel if the run dies) makes a second run
        on the same OUT fail at once instead of writing the same files twice.
        """
        from audiosr_verify.util.atomic import TargetLock

        self._lock = TargetLock(self.path, "results file").acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        if self.path.exists():
            self.rows, keep, self.torn = _read(self.path)
            if self.torn:
                os.truncate(self.path, keep)
        new = not self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise AudioSRError(f"cannot write the results ({exc.strerror or exc})", self.path) from None
        if new:
            _fsync_dir(self.path.parent)  # the file's name survives a crash too

    def done(self, file: str) -> bool:
        return file in self.rows

    def append(self, row: dict[str, Any]) -> None:
        """Write ``row`` as one line and make it durable before returning."""
        if self._fd is None:
            raise RuntimeError("journal not open")
        if row["file"] in self.rows:
            raise RuntimeError(f"{row['file']} is already in {self.path}")  # the driver's bug, not the user's
        data = (json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (full disk, signal): finish the line
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            raise AudioSRError(f"cannot write the results ({exc.strerror or exc})", self.path) from None
        self.rows[row["file"]] = row

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __enter__(self) -> "Journal":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("file"), str) else None


def _read(path: Path) -> tuple[dict[str, dict[str, Any]], int, bool]:
    """(rows by file, bytes to keep, whether the end was torn)."""
    *complete, tail = path.read_bytes().split(b"\n")  # tail: what follows the last newline
    rows: dict[str, dict[str, Any]] = {}
    keep = 0
    for i, line in enumerate(complete):
        row = _parse(line)
        if row is None:
            if i == len(complete) - 1 and not tail:  # a garbled last line (a crash can leave NUL bytes): redo it
                return rows, keep, True
            raise AudioSRError(f"line {i + 1} is not a result row; remove it or use another output directory", path)
        rows.setdefault(row["file"], row)
        keep += len(line) + 1
    return rows, keep, bool(tail)  # bytes after the last newline: a write that did not finish


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete rows of a results file (a torn last line ignored), in file order."""
    return list(_read(Path(path))[0].values())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on this platform (Windows): the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["Journal", "RESULTS_FILE", "read_rows"]
