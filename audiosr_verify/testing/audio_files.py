"""Test cases from a folder of audio files: ``@pytest.mark.parametrize("audio", audio_files("audio"))``.

Each file becomes one `AudioFile` parameter whose test id and golden case name
are its path inside the folder without the extension (``speech/a.wav`` ->
``speech-a``), so the same file keeps the same golden when others are added::

    from audiosr_verify.testing import audio_files

    @pytest.mark.parametrize("audio", audio_files("audio"))      # tests/audio/*.wav, .flac, ...
    def test_enhanced_audio(audio, enhance, golden_check):
        golden_check(audio.case, enhance(audio))

Stdlib only (plus pytest, already loaded in any test session): user test
modules import it at collection time.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc", ".mp3", ".w64", ".caf")
_CASE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_case_name(name: object) -> str:
    """``name`` if it can name a golden (one folder: letters, digits, ``_ . -``), else ValueError saying why."""
    if not isinstance(name, str):
        raise ValueError(f"a golden case is named by a string, got {type(name).__name__} {name!r}")
    if not _CASE_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"golden case name {name!r}: use 1 to 128 letters, digits, '_', '.' or '-' "
                         "(it names a folder), not starting with '.' or '-'")
    return name


def case_name_for(relative: str) -> str:
    """A golden case name for a file's path inside its folder: extension dropped, other characters -> '-'."""
    stem = relative.rsplit(".", 1)[0] if "." in Path(relative).name else relative
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "audio"
    return name[:128]


@dataclass(frozen=True)
class AudioFile:
    """One audio file of a folder: ``case`` (its golden case name, also the test id) and ``path``."""

    case: str
    """The golden case name (and test id): the file's path under the folder, made safe for a folder name."""
    path: Path
    """The audio file."""

    def __fspath__(self) -> str:  # enhance(audio), open(audio), soundfile.read(audio) take it as a path
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def _caller_dir() -> Path:
    """The folder of the source file that called the function calling this one."""
    return Path(sys._getframe(2).f_code.co_filename).resolve().parent


def audio_files(folder: str | os.PathLike, pattern: str = "*", suffixes: tuple[str, ...] = AUDIO_SUFFIXES,
                marks=()) -> list:
    """``pytest.param(AudioFile, id=case)`` for every audio file of ``folder`` matching ``pattern``, sorted.

    ``folder``: absolute, or relative to the folder of the test file that calls this (not to the current
    directory, so the result does not depend on where pytest is started). ``pattern``: a glob inside it
    (``"**/*"`` to include subfolders). Only files whose extension is in ``suffixes`` count. A missing
    folder, or one without audio files, is a collection error naming it: an empty parameter list would
    silently skip the test.
    """
    base = Path(folder)
    if not base.is_absolute():
        base = _caller_dir() / base
    if not base.is_dir():
        pytest.fail(f"audio_files: {base}: no such folder", pytrace=False)
    wanted = {s.lower() for s in suffixes}
    files = sorted(p for p in base.glob(pattern) if p.is_file() and p.suffix.lower() in wanted)
    if not files:
        pytest.fail(f"audio_files: {base}: no audio files matching {pattern!r} "
                    f"({', '.join(sorted(wanted))})", pytrace=False)
    names: dict[str, Path] = {}
    params = []
    for path in files:
        relative = path.relative_to(base).as_posix()
        name = case_name_for(relative)
        if name in names:  # a.wav and a.flac: keep the extension in both names' place
            name = case_name_for(relative.replace(".", "_"))
        if name in names:
            pytest.fail(f"audio_files: {base}: {names[name].name} and {path.name} give the same case name "
                        f"{name!r}; rename one", pytrace=False)
        names[name] = path
        params.append(pytest.param(AudioFile(name, path), id=name, marks=marks))
    return params


__all__ = ["AUDIO_SUFFIXES", "AudioFile", "audio_files", "case_name_for", "check_case_name"]
