"""Name -> subject: built-in names, ``package.module:factory`` and ``path/to/file.py:factory``.

Built-in names:

    reference          our implementation (audiosr_model), faithful level
    original           audiosr 0.0.7 itself, running in the oracle venv (audiosr-verify oracle setup)
    fault:NAME         the reference with one porting fault (subjects/faults.py; `fault:list` names them)
    precision:P[+sdpa][+compile]
                       the reference with its networks in bf16 or fp16 (or fp32), optionally with
                       SDPA attention and a compiled UNet: what enhance --precision/--attention/--compile
                       runs (subjects/fast_paths.py)

A file is imported under a private module name; its directory is appended to
``sys.path`` (after everything else, so a ``model.py`` beside it shadows
nothing of ours) for its own sibling imports. Every problem is one
`AudioSRError` line naming the subject.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from audiosr_model.errors import AudioSRError
from audiosr_verify.subject import Subject, SubjectContext, call_factory
from audiosr_verify.subjects.spec import FORMS, parse_spec

BUILTIN: dict[str, str] = {
    "reference": "audiosr_verify.subjects.reference:make_subject",
    "original": "audiosr_verify.subjects.original:make_subject",
}


def describe_builtins() -> str:
    return FORMS


def runs_product(spec: str | None) -> bool:
    """Whether ``spec`` is our product with one change (``fault:NAME``).

    Its golden check runs the product itself (``enhance_file`` with every case's options, the fault in
    force: `FaultSubject.product`) against our own goldens, instead of the schema's faithful ``enhance``
    against the ``-faithful-first`` goldens of subjects: a fault in the channels, the silence test or the
    preserve level is only there. Known from the name alone, before the subject is built.
    """
    return bool(spec) and parse_spec(spec, strict=False).runs_product


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise AudioSRError("subject file not found" if not path.exists() else "subject is not a regular file", path)
    name = "audiosr_subject_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AudioSRError("cannot import subject file", path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)  # last: its neighbours never shadow our packages
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise AudioSRError(f"importing the subject raised {type(exc).__name__}: {_one_line(exc)}", path) from None
    return module


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def resolve_factory(spec: str) -> Callable[..., Any]:
    """The factory a subject spec names (not called yet)."""
    spec = BUILTIN.get(spec, spec)  # a built-in name: the module:factory it stands for
    parsed = parse_spec(spec)
    if parsed.kind == "fault":
        from audiosr_verify.subjects import faults

        return faults.factory(parsed.target)
    if parsed.kind == "precision":
        from audiosr_verify.subjects import fast_paths

        return fast_paths.factory(parsed.target)
    where, factory = parsed.target, parsed.factory
    if parsed.is_file:
        module = _load_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise AudioSRError(f"subject {spec!r}: cannot import {where} ({_one_line(exc)})") from None
        except Exception as exc:
            raise AudioSRError(f"subject {spec!r}: importing {where} raised {type(exc).__name__}: "
                               f"{_one_line(exc)}") from None
    fn = getattr(module, factory, None)
    if not callable(fn):
        raise AudioSRError(f"subject {spec!r}: {where} has no callable {factory}")
    return fn


def load_subject(spec: str | Subject, context: SubjectContext) -> Subject:
    """The subject ``spec`` names, made by its factory with ``context``."""
    if not isinstance(spec, str):
        from audiosr_verify.subject import as_subject

        return as_subject(spec)
    factory = resolve_factory(spec)
    try:
        subject = call_factory(factory, context)
    except AudioSRError:
        raise
    except Exception as exc:
        raise AudioSRError(f"subject {spec!r}: its factory raised {type(exc).__name__}: {_one_line(exc)}") from None
    if not subject.provided() and subject.state_dict_layout() is None:
        raise AudioSRError(f"subject {spec!r} provides no stage of the schema and no state-dict layout")
    return subject


__all__ = ["BUILTIN", "describe_builtins", "load_subject", "resolve_factory", "runs_product"]
