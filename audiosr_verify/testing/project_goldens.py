"""Where a project's goldens live and how a user recreates one: read from the pytest configuration.

Layout of a project's store (default ``tests/goldens`` under pytest's rootdir)::

    <golden dir>/<subject>/<weights key>/<case>/output.safetensors, meta.json, output.flac

``<subject>`` is ``reference`` (this package's model) or the ``--audiosr-subject``
made safe for a folder name; ``<weights key>`` is ``random-<preset>-seed<N>`` or
the first 16 hex digits of the checkpoint's sha256, with ``-faithful-first``
for a subject's ``enhance``. Goldens of different subjects and checkpoints
therefore live side by side.

Stdlib only (and the light spec parser, `subjects.spec`): the plugin imports
this when its fixtures run, and nothing here may slow down a session that does not use them.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from pathlib import Path

DEFAULT_SUBJECT = "reference"
DEFAULT_PROJECT_DIR = Path("tests", "goldens")
INI_GOLDEN_DIR = "audiosr_golden_dir"
INI_SUBJECT = "audiosr_subject"
SUBJECT_ENV = "AUDIOSR_SUBJECT"
CHECKPOINT_ENV = "AUDIOSR_CHECKPOINT"
UPDATE_OPTION = "--golden-update"


def subject_spec(config) -> str:
    """The session's subject: ``--audiosr-subject``, else ``$AUDIOSR_SUBJECT``, else the ini, else reference."""
    return (config.getoption("audiosr_subject", None) or os.environ.get(SUBJECT_ENV)
            or (config.getini(INI_SUBJECT) or "").strip() or DEFAULT_SUBJECT)


def subject_folder(spec: str) -> str:
    """A folder name for a subject: ``fault:x`` -> ``fault-x``; ``path/to/port.py:make`` -> ``port.py-make``."""
    from audiosr_verify.subjects.spec import parse_spec

    parsed = parse_spec(spec, strict=False)
    if parsed.is_file:
        spec = Path(parsed.target).name + ":" + parsed.factory  # a file: its name, not where this machine keeps it
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-.") or "subject"


def project_golden_root(config) -> Path:
    """``--audiosr-golden-dir`` (from where pytest was started), else the ini setting (from the ini
    file's folder), else ``tests/goldens`` under pytest's rootdir."""
    setting = golden_dir_setting(config)
    return setting[2] if setting else Path(config.rootpath) / DEFAULT_PROJECT_DIR


def golden_dir_setting(config) -> tuple[str, str, Path] | None:
    """The golden dir as set: ``(the setting as a user wrote it, its value, the resolved path)``, from the
    option, else the ini; None when neither sets it."""
    option = config.getoption("audiosr_golden_dir", None)
    if option is not None:
        return f"--audiosr-golden-dir {option}", option, (Path(config.invocation_params.dir) / option).resolve()
    ini = (config.getini(INI_GOLDEN_DIR) or "").strip()
    if ini:
        base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
        where = f" in {config.inipath}" if config.inipath else ""
        return f"{INI_GOLDEN_DIR} = {ini}{where}", ini, (base / ini).resolve()
    return None


def checkpoint_setting(config) -> tuple[str, str] | None:
    """The checkpoint asked for, as ``(where it was set, path)``: the option, else ``$AUDIOSR_CHECKPOINT``."""
    option = config.getoption("audiosr_checkpoint", None)
    if option is not None:
        return "--audiosr-checkpoint", option
    env = os.environ.get(CHECKPOINT_ENV)
    return (CHECKPOINT_ENV, env) if env else None


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used (or made) as a folder: it, or a folder above it, is not one. None if it can.

    Checked up front so a file where a store or a report should go is a usage error, not a traceback from
    ``mkdir`` in the middle of the session.
    """
    for p in (path, *path.parents):
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.islink(p):
                return "is a broken symbolic link" if p == path else f"is under {p}, a broken symbolic link"
            continue  # made when needed; what lies above decides
        except OSError as exc:
            return f"cannot be checked ({exc.strerror or exc})"
        if stat.S_ISDIR(st.st_mode):
            return None
        kind = ("a regular file" if stat.S_ISREG(st.st_mode) else "a named pipe" if stat.S_ISFIFO(st.st_mode)
                else "not a directory")
        return f"is {kind}, not a folder" if p == path else f"is under {p}, which is {kind}"
    return None


def update_command(config, item=None) -> str:
    """The command that writes the golden(s) of ``item`` (or of the whole session) with these settings."""
    words = ["python", "-m", "pytest"]
    if item is not None:
        here = Path(config.invocation_params.dir)
        try:
            where = os.path.relpath(item.path, here)
        except ValueError:  # another drive
            where = str(item.path)
        _, sep, inside = item.nodeid.partition("::")
        words.append(Path(where).as_posix() + (sep + inside if sep else ""))
    words.append(UPDATE_OPTION)
    checkpoint = checkpoint_setting(config)  # from $AUDIOSR_CHECKPOINT too: the command must stand alone
    for option, value in (("--audiosr-golden-dir", config.getoption("audiosr_golden_dir", None)),
                          ("--audiosr-checkpoint", checkpoint[1] if checkpoint else None),
                          ("--audiosr-preset", config.getoption("audiosr_preset", None))):
        if value:
            words += [option, str(value)]
    spec = subject_spec(config)
    if spec != DEFAULT_SUBJECT:
        words += ["--audiosr-subject", spec]
    return " ".join(shlex.quote(w) for w in words)


__all__ = ["CHECKPOINT_ENV", "DEFAULT_PROJECT_DIR", "DEFAULT_SUBJECT", "INI_GOLDEN_DIR", "INI_SUBJECT",
           "checkpoint_setting", "folder_problem", "golden_dir_setting", "project_golden_root", "subject_folder",
           "subject_spec", "update_command"]
