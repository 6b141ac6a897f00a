"""The audio files of a corpus: every file under CORPUS (recursively) with an audio extension.

The list is sorted by the path relative to CORPUS, so every engine and every
re-run sees the same order. Whether a file is actually readable is decided
per file by the worker (an unreadable file becomes a result row, not an
error); `probe` only answers "is there anything here at all" before a model is
loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from audiosr_model.errors import AudioSRError

# Extensions libsndfile reads (soundfile.available_formats()) plus their usual spellings.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
    ".caf", ".w64", ".rf64", ".avr", ".htk", ".ircam", ".sf", ".mat", ".nist", ".sph", ".paf", ".pvf",
    ".sd2", ".sds", ".svx", ".8svx", ".voc", ".wve", ".xi", ".mpc",
})


@dataclass(frozen=True)
class CorpusFile:
    rel: str  # path relative to CORPUS, with "/" separators: the `file` field of a result row
    path: str  # absolute path the workers open

    def to_job(self) -> dict[str, str]:
        return {"file": self.rel, "path": self.path}


def discover(corpus: str | os.PathLike) -> list[CorpusFile]:
    """Every file under ``corpus`` whose extension is an audio format, sorted by relative path."""
    root = Path(corpus)
    if not root.exists():
        raise AudioSRError("corpus not found", root)
    if not root.is_dir():
        raise AudioSRError("corpus is not a directory", root)
    root = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            full = Path(dirpath) / name
            found.append(CorpusFile(full.relative_to(root).as_posix(), str(full)))
    return sorted(found, key=lambda f: f.rel)


def probe(files: list[CorpusFile]) -> str | None:
    """``None`` as soon as one file has a readable audio header; else why the first one is not."""
    from audiosr_model.io.audio_stream import read_audio_info

    first_problem = None
    for f in files:
        try:
            read_audio_info(f.path)
            return None
        except AudioSRError as exc:
            first_problem = first_problem or str(exc)
    return first_problem or "no files with an audio extension"


__all__ = ["AUDIO_EXTENSIONS", "CorpusFile", "discover", "probe"]
