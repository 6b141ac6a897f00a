"""The outputs of a run, checked before any work and locked until it ends.

:func:`check_targets` refuses, up front, a set of outputs that cannot all be
written (two that are one file, one that is an input, a missing or
unwritable directory, a directory where a file is asked for, an existing
file without overwrite); :class:`TargetLock` holds an ``flock`` on a hidden
``.NAME.lock`` beside one target, so a second run that wants the same file
fails at once. Publishing itself is `audiosr_model.io.publish` (which also
holds `Reservation`: check, lock, and publish the run's targets).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from audiosr_model.errors import AudioSRError
from audiosr_model.io.signals import critical

try:  # POSIX advisory locks; elsewhere an exclusive-create lock file stands in
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def write_error(exc: BaseException, path: str | os.PathLike) -> str:
    """What went wrong writing ``path``, in words: the OS's reason, or the library's plus a full disk.

    libsndfile reports a failed write as "System error." and torch as "file
    write failed"; when the file system holding ``path`` has no space left,
    say so, since that is what the user can act on.
    """
    text = " ".join(str(getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or exc).split())
    text = text[:200] or type(exc).__name__
    if "No space left" not in text:
        try:
            st = os.statvfs(_parent(Path(path)))
            if st.f_bavail * st.f_frsize < (1 << 16):
                text = f"No space left on device ({text})"
        except OSError:
            pass
    return text


def _remove(path: str | os.PathLike) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def identity(path: str | os.PathLike) -> str:
    """A key that two spellings of one target share (symlinked directories, ``..``, case on Windows)."""
    path = Path(path)
    parent = os.path.realpath(_parent(path))
    return os.path.normcase(os.path.join(parent, path.name))


# --------------------------------------------------------------------------- checking targets


@dataclass(frozen=True)
class Target:
    """One output of a run: where, what makes it (for messages), whether it may replace a file."""

    path: Path
    source: str = ""  # the input or option that produces it
    overwrite: bool = True
    directory: bool = False  # a directory published as a whole (publish_dir)
    what: str = "output"

    @classmethod
    def of(cls, path: str | os.PathLike, source: str = "", **kw: Any) -> "Target":
        return cls(Path(path), source, **kw)


def check_targets(targets: Iterable[Target], inputs: Iterable[str | os.PathLike] = (),
                  probe: bool = True) -> list[Target]:
    """Refuse, before any work, a set of outputs that cannot all be written as asked.

    Two targets that are the same file; a target that is one of ``inputs``; a
    missing parent directory; a target that exists as a directory (or other
    non-file) when a file is asked for; an existing file without
    ``overwrite``; and (``probe``) a directory in which a file cannot be
    created. Messages name the target and, for clashes, both sources.
    """
    targets = list(targets)
    seen: dict[str, Target] = {}
    for t in targets:
        key = identity(t.path)
        if key in seen:
            a, b = seen[key].source or "one output", t.source or "another"
            raise AudioSRError(f"two outputs of this run are the same file ({a} and {b}); "
                               "run them separately or give distinct names", t.path)
        seen[key] = t
    for item in inputs:
        for t in targets:
            if identity(item) == identity(t.path) or _same_file(item, t.path):
                raise AudioSRError(f"output would overwrite the input {item}; choose another output", t.path)
    probed: set[str] = set()
    for t in targets:
        parent = _parent(t.path)
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "directory does not exist"
            raise AudioSRError(f"{what} (needed for {t.path.name})", parent)
        try:
            st = os.stat(t.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise AudioSRError(f"cannot check the output: {_reason(exc)}", t.path) from None
        if st is not None:
            if stat.S_ISDIR(st.st_mode) and not t.directory:
                raise AudioSRError(f"{t.what} path is an existing directory; give a file name", t.path)
            if not t.directory and not stat.S_ISREG(st.st_mode):
                raise AudioSRError(f"{t.what} path exists and is not a regular file", t.path)
            if not t.overwrite:
                raise AudioSRError(f"{t.what} exists (use --overwrite to replace it)", t.path)
        key = os.path.realpath(parent)
        if probe and key not in probed:
            probed.add(key)
            probe_directory(parent)
    return targets


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def probe_directory(directory: Path) -> None:
    with critical():
        try:
            fd, probe = tempfile.mkstemp(prefix=".audiosr-probe.", suffix=PARTIAL_SUFFIX, dir=directory)
        except OSError as exc:
            raise AudioSRError(f"cannot write to the output directory ({_reason(exc)})", directory) from None
        os.close(fd)
        _remove(probe)


# --------------------------------------------------------------------------- locks


class TargetLock:
    """An exclusive lock on one output path, held from planning to publishing.

    The lock file ``.NAME.lock`` sits beside the target; it holds the owner's
    pid for the message a second run prints, and is removed on release. A
    lock file left by a killed run holds no lock and is simply taken over.
    """

    def __init__(self, target: str | os.PathLike, what: str = "output"):
        self.target = Path(target)
        self.what = what
        self.path = _parent(self.target) / f".{self.target.name}{LOCK_SUFFIX}"
        self.fd: int | None = None

    def acquire(self) -> "TargetLock":
        with critical():  # a signal between creating and locking would leave the file behind
            return self._acquire()

    def _acquire(self) -> "TargetLock":
        for _ in range(50):
            try:
                # O_NOFOLLOW: a symlink planted as the lock file must not make us write where it points
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                             | (0 if fcntl else os.O_EXCL), 0o666)
            except FileExistsError:  # no fcntl: an existing lock file means a lock
                raise AudioSRError(f"another run is writing this {self.what} (lock file {self.path.name}; "
                                   "remove it if no run is active)", self.target) from None
            except OSError as exc:
                raise AudioSRError(f"cannot lock the {self.what} ({self.path.name}: {_reason(exc)})",
                                   self.target) from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise AudioSRError(f"cannot lock the {self.what}: {self.path.name} is not a regular file",
                                   self.target)
            if fcntl is None:  # pragma: no cover
                self.fd = fd
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = _read_owner(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise AudioSRError(f"another run{owner} is writing this {self.what}; wait for it to "
                                       "finish or choose another output", self.target) from None
                raise AudioSRError(f"cannot lock the {self.what}: {_reason(exc)}", self.target) from None
            # The previous owner may have removed the file between our open and our lock.
            try:
                current = os.stat(self.path)
                held = os.fstat(fd)
                same = (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                break
            os.close(fd)
        else:  # pragma: no cover - 50 lost races in a row
            raise AudioSRError(f"cannot lock the {self.what} (lock file keeps changing)", self.target)
        try:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only for messages
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with critical():
            try:
                os.unlink(self.path)  # while still holding it: see acquire()
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "TargetLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


__all__ = ["LOCK_SUFFIX", "PARTIAL_SUFFIX", "Target", "TargetLock", "check_targets", "identity", "probe_directory",
           "write_error"]
