"""Output directories of a run: checked before any work, made, and undone when the run wrote nothing.

Used by the CLI's verbs (through `cli.common`, which re-exports these) and by
`corpus.run`, which sits below the CLI and so may not import it.
"""

from __future__ import annotations

import os
from pathlib import Path

from audiosr_model.errors import AudioSRError


def check_output_dir(path: str | os.PathLike) -> Path:
    """Refuse, without creating anything, a directory the run could not write into.

    It must be a directory or not exist yet; then its nearest existing
    ancestor must be a directory this process may create entries in. Checked
    before any work, so a bad ``-o`` costs one line and not a run.
    """
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            raise AudioSRError("output path exists and is not a directory", p)
        return p
    ancestor = _nearest_existing(p)
    if not ancestor.is_dir():
        raise AudioSRError(f"cannot create the output directory: {ancestor} is not a directory", p)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise AudioSRError(f"cannot create the output directory: {ancestor} is not writable", p)
    return p


def _nearest_existing(p: Path) -> Path:
    for parent in p.absolute().parents:
        if os.path.lexists(parent):
            return parent
    return Path(p.anchor or ".")


def output_dir(path: str | os.PathLike, create: bool = True) -> tuple[Path, Path | None]:
    """A directory the run writes into: ``(path, created)``; refused if it is a file or cannot be made.

    ``created`` is the top-most directory this call made (``out`` for ``-o
    out``, ``a`` for ``-o a/b/out`` when ``a`` was missing), or None: give it
    to `remove_if_empty` so that a run that ends with nothing written leaves
    none of them behind.
    """
    p = check_output_dir(path)
    if not create or p.is_dir():
        return p, None
    top = next((q for q in reversed([p, *p.parents]) if not os.path.lexists(q)), p)
    try:
        p.mkdir(parents=True)
    except FileExistsError:  # made meanwhile by someone else: not ours to remove
        return p, None
    except OSError as exc:
        raise AudioSRError(f"cannot create the output directory ({exc.strerror or exc})", p) from None
    return p, top


def remove_if_empty(path: Path, created: Path | bool | None) -> None:
    """Undo the output directories `output_dir` created when the run ends with nothing in them.

    Removes ``path`` and then its parents up to ``created`` (the top-most one
    made), each only while empty: a file written meanwhile keeps its folder.
    """
    if not created:
        return
    top = Path(created) if isinstance(created, (str, os.PathLike)) else Path(path)
    current = Path(path)
    while True:
        try:
            current.rmdir()
        except OSError:
            return
        if current == top or current.parent == current:
            return
        current = current.parent


__all__ = ["check_output_dir", "output_dir", "remove_if_empty"]
