"""The one parser of subject spec strings: what ``audiosr-verify check SUBJECT`` and ``--audiosr-subject`` name.

    reference, original        a built-in subject (subjects/loader.py: BUILTIN)
    fault:NAME                 the reference with one porting fault (``fault:list`` names them)
    precision:P[+sdpa]...      the reference at another precision (subjects/fast_paths.py)
    package.module:factory     a factory in an importable module
    path/to/file.py:factory    a factory in a file (a path holds ``/`` or ``\\``, or ends in ``.py``;
                               ``C:\\port\\x.py:make``: the factory follows the LAST colon)

`parse_spec` only reads the string (nothing is imported): the loader, the golden store's folder name
and ``check --bounds auto`` all read a spec through it. Stdlib and the model's error type only: the
pytest plugin reads specs when its fixtures run.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiosr_model.errors import AudioSRError

BUILTIN_NAMES = ("reference", "original")
PREFIXED = ("fault", "precision")  # NAME:rest, the rest given to the family's own parser
KINDS = ("builtin", "fault", "precision", "file", "module", "unknown")
FORMS = "reference, original, fault:NAME (fault:list), precision:bf16, precision:fp16, precision:bf16+sdpa"


@dataclass(frozen=True)
class SubjectSpec:
    """A subject spec string, read: its kind, what it names and (file, module) the factory's name."""

    text: str
    kind: str  # one of KINDS; "unknown": no colon and no built-in name
    target: str  # built-in name | fault name | precision configuration | file path | module name
    factory: str = ""  # file and module: the name after the last colon

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def runs_product(self) -> bool:
        """Our product with one change (``fault:NAME``, not ``fault:list``)."""
        return self.kind == "fault" and self.target != "list"

    def problem(self) -> str | None:
        """Why the string names no subject by its form alone (None when it could name one)."""
        if self.kind == "unknown":
            return (f"subject {self.text!r}: not a built-in name ({FORMS}); "
                    "give package.module:factory or path/to/file.py:factory")
        if self.kind in ("file", "module") and (not self.target or not self.factory.isidentifier()):
            return f"subject {self.text!r}: expected package.module:factory or file.py:factory"
        return None


def _looks_like_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def parse_spec(text: str, *, strict: bool = True) -> SubjectSpec:
    """``text`` read as a subject spec. ``strict``: a string that cannot name a subject by its form (no colon
    and no built-in name, an empty module or file, a factory that is not an identifier) raises
    `AudioSRError` (one line); otherwise it comes back with what could be read (kind "unknown" when
    nothing could)."""
    text = str(text)
    family, sep, rest = text.partition(":")
    if text in BUILTIN_NAMES:
        spec = SubjectSpec(text, "builtin", text)
    elif sep and family in PREFIXED:
        spec = SubjectSpec(text, family, rest)
    elif not sep:
        spec = SubjectSpec(text, "unknown", text)
    else:
        where, _, factory = text.rpartition(":")
        spec = SubjectSpec(text, "file" if _looks_like_file(where) else "module", where, factory)
    if strict:
        problem = spec.problem()
        if problem:
            raise AudioSRError(problem)
    return spec


__all__ = ["BUILTIN_NAMES", "FORMS", "KINDS", "SubjectSpec", "parse_spec"]
