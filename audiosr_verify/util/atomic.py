"""The one way the harness publishes a file or directory (``audiosr_model.io.publish``, re-exported).

Readers never see a half-written file: content goes to a temporary file in
the target's directory, gets the mode the umask asks for, and is renamed into
place; a lock beside the target keeps a concurrent run from replacing it
mid-way; any error or interruption removes the temporary file. Directories
(a golden case) are swapped in one step. See ``audiosr_model.io.publish`` for
the guarantees; the model package holds the routine because it publishes
enhanced audio itself and never imports the harness.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from audiosr_model.io.publish import (
    Reservation,
    Target,
    TargetLock,
    check_targets,
    critical,
    current_umask,
    install_signal_handlers,
    probe_directory,
    publish_dir,
    publish_file,
    publish_mode,
    published_dir,
    received_signal,
    recover_dir,
    write_error,
)

Writer = Callable[[Path], None]


def atomic_write(path: str | os.PathLike, content: str | bytes | Writer, encoding: str = "utf-8",
                 *, overwrite: bool = True, what: str = "output", lock: bool = True) -> Path:
    """Publish ``content`` (text, bytes, or ``writer(tmp_path)``) at ``path``; never a partial file.

    Problems a user can fix (missing directory, target is a directory, disk
    full, no permission) raise `AudioSRError` naming ``path``.
    """
    if callable(content):
        write = content
    else:
        data = content.encode(encoding) if isinstance(content, str) else bytes(content)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

    return publish_file(path, write, overwrite=overwrite, what=what, lock=lock)


__all__ = [
    "Reservation", "Target", "TargetLock", "atomic_write", "check_targets", "critical", "current_umask",
    "install_signal_handlers", "probe_directory", "publish_dir", "publish_file", "publish_mode", "published_dir",
    "received_signal", "recover_dir", "write_error",
]
