"""The one way the project publishes an output: checked up front, locked, written beside, renamed.

Every file or directory the tool writes (enhanced audio, reports,
checkpoints, manifests, goldens) goes through here:

1. **Checked before any work** (:func:`check_targets`): the targets of one run
   against each other (two inputs ``a/song.wav`` and ``b/song.flac`` would
   both write ``out/song.wav``: refused, naming both), against the inputs
   (never overwrite an input), and against the file system (a target that
   is a directory, an existing file without overwrite, a missing or
   unwritable directory).
2. **Locked for the whole run** (:class:`Reservation`): a hidden
   ``.NAME.lock`` beside each target holds an ``flock``; a second run that
   wants the same file fails at once, before loading a model, instead of
   silently replacing the first run's result. The kernel drops the lock when
   a process dies, so a killed run never blocks the next one.
3. **Written beside and renamed** (:func:`publish_file`): the content goes to
   a hidden temporary file in the target's directory, gets the mode the
   umask asks for (a temporary file alone would be 0600), and is renamed
   onto the target: readers see the old file or the complete new one. Without
   overwrite the rename is exclusive (``link``), so a file that appeared
   meanwhile is never replaced. On any error or interruption the temporary
   file is removed.
4. **Directories swapped atomically** (:func:`publish_dir`, a golden case):
   ``renameat2(RENAME_EXCHANGE)`` swaps the new directory with the old one in
   one step; where the kernel or file system lacks it, the old directory is
   first moved to a fixed backup name that readers fall back to
   (:func:`published_dir`) and the next publish restores or removes, so a
   kill between the two renames still leaves the old or the new case.

Steps 1 and 2 are `audiosr_model.io.targets`; the signal handling around
every commit (SIGTERM and SIGHUP stop a run like SIGINT, never in the middle
of a rename) is `audiosr_model.io.signals`. This module re-exports both, so
``audiosr_model.io.publish`` is the whole publishing API.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from audiosr_model.errors import AudioSRError
from audiosr_model.io.signals import (  # noqa: F401  (re-exported: the publishing API in one place)
    _raise_if_signalled,
    critical,
    install_signal_handlers,
    interruptible,
    received_signal,
)
from audiosr_model.io.targets import (  # noqa: F401  (re-exported: the publishing API in one place)
    LOCK_SUFFIX,
    PARTIAL_SUFFIX,
    Target,
    TargetLock,
    _parent,
    _reason,
    _remove,
    check_targets,
    identity,
    probe_directory,
    write_error,
)

Writer = Callable[[Path], None]
BACKUP_SUFFIX = ".previous"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a mkstemp/mkdtemp entry the mode a plain open()/mkdir() would have had."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


class Reservation:
    """The outputs of one run: checked, then locked until the run ends.

    ``with Reservation(targets, inputs) as r:`` checks the targets
    (:func:`check_targets`), locks each, and checks them again under the lock
    (another run may have written one in between). ``r.publish(path, writer)``
    writes one of them. Leaving the block releases every lock.
    """

    def __init__(self, targets: Iterable[Target], inputs: Iterable[str | os.PathLike] = ()):
        self.targets = list(targets)
        self.inputs = list(inputs)
        self._locks: list[TargetLock] = []
        self._by_key = {identity(t.path): t for t in self.targets}

    def __enter__(self) -> "Reservation":
        check_targets(self.targets, self.inputs)
        try:
            for t in self.targets:
                self._locks.append(TargetLock(t.path, t.what).acquire())
            check_targets(self.targets, self.inputs, probe=False)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        while self._locks:
            self._locks.pop().release()

    def target(self, path: str | os.PathLike) -> Target:
        try:
            return self._by_key[identity(path)]
        except KeyError:
            raise ValueError(f"{path} is not a reserved output") from None

    def publish(self, path: str | os.PathLike, write: Writer) -> Path:
        t = self.target(path)
        if t.directory:
            return publish_dir(t.path, write, what=t.what, lock=False)
        return publish_file(t.path, write, overwrite=t.overwrite, what=t.what, lock=False)


# --------------------------------------------------------------------------- files


def publish_file(path: str | os.PathLike, write: Writer, *, overwrite: bool = True, what: str = "output",
                 lock: bool = True) -> Path:
    """Publish ``write(tmp_path)``'s file at ``path``: complete or not at all.

    ``write`` creates the content at the temporary path it is given (the path
    exists, empty). Problems a user can fix (missing directory, the target is
    a directory, disk full, no permission) raise `AudioSRError` naming
    ``path``; the temporary file is removed on every error and interruption.
    ``lock`` takes the target's lock for the duration (a `Reservation`
    already holds it).
    """
    path = Path(path)
    if lock:
        with TargetLock(path, what):
            return publish_file(path, write, overwrite=overwrite, what=what, lock=False)
    parent = _parent(path)
    if path.is_dir():
        raise AudioSRError(f"{what} path is an existing directory; give a file name", path)
    if not parent.is_dir():
        raise AudioSRError("directory does not exist" if not parent.exists() else "is not a directory",
                           parent)
    if not overwrite and os.path.lexists(path):
        raise AudioSRError(f"{what} exists (use --overwrite to replace it)", path)
    with critical():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=parent)
        except OSError as exc:
            raise AudioSRError(f"cannot write {what}: {_reason(exc)}", path) from None
        os.close(fd)
        try:
            with interruptible():
                write(Path(tmp))
            _raise_if_signalled()
            _sync(tmp)
            publish_mode(tmp)
            _commit_file(tmp, path, overwrite, what)
        except OSError as exc:
            _remove(tmp)
            if not parent.is_dir():
                raise AudioSRError(f"the output directory disappeared while writing {path.name}", parent) from None
            raise AudioSRError(f"cannot write {what}: {_reason(exc)}", path) from None
        except BaseException:
            _remove(tmp)
            raise
    return path


def _sync(path: str) -> None:
    """Flush a finished temporary file to disk, so a full disk shows here and a crash keeps it whole."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV,
                  getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _commit_file(tmp: str, path: Path, overwrite: bool, what: str) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if the target exists: never replaces what appeared meanwhile
    except FileExistsError:
        raise AudioSRError(f"{what} appeared while this run was working and was left as it is "
                           "(use --overwrite to replace it)", path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):  # no hard links here: the target lock covers cooperating runs
            raise AudioSRError(f"{what} appeared while this run was working and was left as it is", path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


# --------------------------------------------------------------------------- directories


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_function():
    """libc's renameat2 (glibc >= 2.28), looked up once, on first use; None where absent."""
    for name in (None, "c"):
        try:
            if name is None:
                libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc on Linux
            else:
                libc = ctypes.CDLL(ctypes.util.find_library(name) or "libc.so.6", use_errno=True)
            fn = libc.renameat2
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    return None


_renameat2_cache: list = []


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2); False where unsupported."""
    if not _renameat2_cache:
        _renameat2_cache.append(_renameat2_function())
    renameat2 = _renameat2_cache[0]
    if renameat2 is None:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        return False
    raise OSError(err, os.strerror(err), str(b))


def backup_path(final: str | os.PathLike) -> Path:
    final = Path(final)
    return _parent(final) / f".{final.name}{BACKUP_SUFFIX}"


def published_dir(final: str | os.PathLike) -> Path:
    """Where a reader finds a published directory: ``final``, or its backup if a swap was cut short."""
    final = Path(final)
    if not final.exists() and backup_path(final).is_dir():
        return backup_path(final)
    return final


def recover_dir(final: str | os.PathLike) -> None:
    """Finish what an interrupted :func:`publish_dir` left (call with the target's lock held).

    A backup with no ``final`` is the old directory: it goes back. A backup
    beside a ``final`` is the old one after a completed swap: it goes. Stale
    temporary directories (``.NAME.*.partial``, and the ``.NAME.old-PID`` of
    earlier versions) of a killed run go too.
    """
    final = Path(final)
    parent, backup = _parent(final), backup_path(final)
    if backup.exists():
        if not final.exists():
            os.rename(backup, final)
        else:
            _remove(backup)
    if parent.is_dir():
        for entry in parent.iterdir():
            name = entry.name
            if name.startswith(f".{final.name}.") and (name.endswith(PARTIAL_SUFFIX) or ".old-" in name):
                _remove(entry)


def publish_dir(final: str | os.PathLike, build: Writer, *, what: str = "directory", lock: bool = True) -> Path:
    """Publish the directory ``build(tmp_dir)`` fills at ``final``, replacing it as a whole.

    At every instant ``final`` is the complete old directory or the complete
    new one (see the module notes); the temporary directory is removed on any
    error or interruption.
    """
    final = Path(final)
    if lock:
        with TargetLock(final, what):
            return publish_dir(final, build, what=what, lock=False)
    parent = _parent(final)
    if final.exists() and not final.is_dir():
        raise AudioSRError(f"{what} path exists and is not a directory", final)
    if not parent.is_dir():
        raise AudioSRError("directory does not exist", parent)
    try:
        recover_dir(final)
    except OSError as exc:
        raise AudioSRError(f"cannot recover an interrupted update: {_reason(exc)}", final) from None
    backup = backup_path(final)
    with critical():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=parent))
        except OSError as exc:
            raise AudioSRError(f"cannot write {what}: {_reason(exc)}", final) from None
        try:
            with interruptible():
                build(tmp)
            _raise_if_signalled()
            for entry in tmp.rglob("*"):
                if entry.is_file():
                    _sync(str(entry))
                publish_mode(entry, directory=entry.is_dir())
            publish_mode(tmp, directory=True)
            if not final.exists():
                os.rename(tmp, final)
            elif exchange(tmp, final):
                _remove(tmp)  # now the old directory
            else:
                os.rename(final, backup)
                os.rename(tmp, final)
                _remove(backup)
        except BaseException as exc:
            if backup.exists() and not final.exists():
                with contextlib.suppress(OSError):
                    os.rename(backup, final)
            _remove(tmp)
            if isinstance(exc, OSError):
                raise AudioSRError(f"cannot write {what}: {_reason(exc)}", final) from None
            raise
    return final


__all__ = [
    "Reservation", "Target", "TargetLock", "backup_path", "write_error", "check_targets", "critical", "current_umask",
    "exchange", "identity", "install_signal_handlers", "interruptible", "publish_dir", "publish_file",
    "probe_directory", "publish_mode", "published_dir", "received_signal", "recover_dir",
]
