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

Signals: :func:`install_signal_handlers` (the CLI calls it) makes SIGTERM
and SIGHUP raise ``KeyboardInterrupt`` exactly like SIGINT, so the same
cleanup runs; :func:`critical` defers a signal while a rename and its
cleanup run, and a second signal during cleanup is ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from audiosr_model.errors import AudioSRError

try:  # POSIX advisory locks; elsewhere an exclusive-create lock file stands in
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

Writer = Callable[[Path], None]
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
BACKUP_SUFFIX = ".previous"

# --------------------------------------------------------------------------- signals

_signal_state = {"depth": 0, "pending": False, "received": None, "installed": 0}


def _on_signal(signum, frame) -> None:
    if _signal_state["received"] is not None:
        return  # already stopping: let the cleanup that is running finish
    _signal_state["received"] = signum
    if _signal_state["depth"]:
        _signal_state["pending"] = True  # a rename is in progress: raise when it is done
        return
    raise KeyboardInterrupt


def install_signal_handlers() -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (deferred inside :func:`critical`).

    Returns a function that restores the previous handlers. Only from the main
    thread (Python delivers signals there); a no-op elsewhere.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, _on_signal)
    _signal_state.update(depth=0, pending=False, received=None)
    _signal_state["installed"] += 1

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        _signal_state["installed"] -= 1
        if not _signal_state["installed"]:  # the run is over: what it received must not stop a later one
            _signal_state.update(depth=0, pending=False, received=None)

    return restore


def received_signal() -> int | None:
    """The signal that interrupted the run (for the exit status 128 + N), if any."""
    return _signal_state["received"]


class critical:
    """Defer SIGINT/SIGTERM/SIGHUP (as handled by :func:`install_signal_handlers`) until the block ends.

    A signal that arrives inside is raised as KeyboardInterrupt when the
    outermost block ends normally; if the block ends with an exception, that
    exception goes on (the run is stopping anyway).
    """

    def __enter__(self) -> None:
        _signal_state["depth"] += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        _signal_state["depth"] -= 1
        if _signal_state["depth"] == 0 and _signal_state["pending"] and exc_type is None:
            _signal_state["pending"] = False
            raise KeyboardInterrupt
        # ending with an exception: a pending signal stays pending, so that a caller who handles that
        # exception still stops at the next critical block or commit point (it is never lost)


def _raise_if_signalled() -> None:
    """At a commit point: a run that received a signal never publishes.

    The KeyboardInterrupt a signal raises can be lost on its way out (raised
    inside a finaliser, or caught by code run during the long work); the
    signal itself is recorded, and this turns it back into the interruption.
    """
    if _signal_state["installed"] and _signal_state["received"] is not None:
        _signal_state["pending"] = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside :func:`critical`, a stretch of long work that signals may interrupt."""
    depth = _signal_state["depth"]
    _signal_state["depth"] = 0
    try:
        if _signal_state["pending"]:
            _signal_state["pending"] = False
            raise KeyboardInterrupt
        yield
    finally:
        _signal_state["depth"] = depth


# --------------------------------------------------------------------------- helpers


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a mkstemp/mkdtemp entry the mode a plain open()/mkdir() would have had."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


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
