"""The one way the harness publishes a file: write a temporary file beside it, then rename.

Readers never see a half-written file: the temporary file lives in the target's
directory (so the rename is atomic on one file system), is removed if anything
fails or the process is interrupted, and gets the mode the user's umask asks
for (mkstemp alone would leave 0600).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from audiosr_model.errors import AudioSRError

Writer = Callable[[Path], None]


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a mkstemp/mkdtemp entry the mode a plain open()/mkdir() would have had."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def atomic_write(path: str | os.PathLike, content: str | bytes | Writer, encoding: str = "utf-8") -> Path:
    """Publish ``content`` (text, bytes, or ``writer(tmp_path)``) at ``path``; never a partial file.

    Problems a user can fix (missing directory, target is a directory, disk
    full, no permission) raise `AudioSRError` naming ``path``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise AudioSRError("is a directory; give a file name", path)
    if not parent.is_dir():
        raise AudioSRError("directory does not exist", parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise AudioSRError(f"cannot write: {exc.strerror or exc}", path) from None
    try:
        if callable(content):
            os.close(fd)
            content(Path(tmp))
        else:
            data = content.encode(encoding) if isinstance(content, str) else content
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        publish_mode(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AudioSRError(f"cannot write: {exc.strerror or exc}", path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["atomic_write", "current_umask", "publish_mode"]
