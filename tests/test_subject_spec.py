"""The one parser of subject spec strings (subjects/spec.py) and the places that read a spec through it."""

from __future__ import annotations

import pytest

from audiosr_model.errors import AudioSRError
from audiosr_verify.subjects.loader import describe_builtins, resolve_factory, runs_product
from audiosr_verify.subjects.spec import FORMS, SubjectSpec, parse_spec
from audiosr_verify.testing.project_goldens import subject_folder


@pytest.mark.parametrize("text, kind, target, factory", [
    ("reference", "builtin", "reference", ""),
    ("original", "builtin", "original", ""),
    ("fault:groupnorm_eps", "fault", "groupnorm_eps", ""),
    ("fault:list", "fault", "list", ""),
    ("fault:a:b", "fault", "a:b", ""),  # the family's parser gets everything after the first colon
    ("precision:bf16", "precision", "bf16", ""),
    ("precision:bf16+sdpa+compile", "precision", "bf16+sdpa+compile", ""),
    ("my_port.subject:make", "module", "my_port.subject", "make"),
    ("pkg:make", "module", "pkg", "make"),
    ("port.py:make", "file", "port.py", "make"),
    ("path/to/port.py:make", "file", "path/to/port.py", "make"),
    ("./port:make", "file", "./port", "make"),
    ("/abs/dir/port.py:make_subject", "file", "/abs/dir/port.py", "make_subject"),
    # Windows: the drive letter's colon is not the factory's; a backslash makes it a file
    ("C:\\ports\\port.py:make", "file", "C:\\ports\\port.py", "make"),
    ("C:/ports/port.py:make", "file", "C:/ports/port.py", "make"),
    ("D:\\port:make", "file", "D:\\port", "make"),
])
def test_parse_spec(text, kind, target, factory):
    spec = parse_spec(text)
    assert (spec.kind, spec.target, spec.factory, spec.text) == (kind, target, factory, text)
    assert spec.is_file == (kind == "file")
    assert spec.problem() is None


@pytest.mark.parametrize("text, message", [
    ("nonsense", "not a built-in name"),
    ("precision", "not a built-in name"),
    ("", "not a built-in name"),
    (":make", "expected package.module:factory"),
    ("pkg.mod:", "expected package.module:factory"),
    ("pkg.mod:not-an-identifier", "expected package.module:factory"),
    ("C:\\ports\\port.py", "expected package.module:factory"),  # a drive letter, no factory
    ("port.py:1make", "expected package.module:factory"),
])
def test_parse_spec_refuses_what_names_nothing(text, message):
    with pytest.raises(AudioSRError, match=message):
        parse_spec(text)
    lenient = parse_spec(text, strict=False)  # never raises: the form as far as it could be read
    assert isinstance(lenient, SubjectSpec) and lenient.problem() is not None and message in lenient.problem()


def test_unknown_name_lists_the_builtin_forms():
    assert describe_builtins() == FORMS
    with pytest.raises(AudioSRError) as exc:
        parse_spec("referenc")
    assert FORMS in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text, product", [
    ("fault:groupnorm_eps", True), ("fault:", True), ("fault:list", False), ("reference", False),
    ("precision:bf16", False), ("x.py:fault", False), ("faults:x", False), ("", False), (None, False),
])
def test_runs_product(text, product):
    assert runs_product(text) is product


def _old_subject_folder(spec: str) -> str:
    """testing/project_goldens.subject_folder before the shared parser (POSIX), for the cases below."""
    import os
    import re
    from pathlib import Path

    head, sep, factory = spec.rpartition(":")
    if sep and ("/" in head or os.sep in head or head.endswith(".py")):
        spec = Path(head).name + ":" + factory
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-.") or "subject"


@pytest.mark.parametrize("spec, folder", [
    ("reference", "reference"),
    ("fault:groupnorm_eps", "fault-groupnorm_eps"),
    ("precision:bf16+sdpa", "precision-bf16-sdpa"),
    ("path/to/port.py:make", "port.py-make"),
    ("/abs/port.py:make", "port.py-make"),
    ("port.py:make", "port.py-make"),
    ("my_port.subject:make", "my_port.subject-make"),
    ("C:\\ports\\port.py:make", None),
    ("nonsense", "nonsense"),
    (":::", "subject"),
])
def test_subject_folder(spec, folder):
    got = subject_folder(spec)
    assert got == _old_subject_folder(spec)
    if folder is not None:
        assert got == folder


def test_resolve_factory_reads_specs_through_the_parser(tmp_path):
    port = tmp_path / "port.py"
    port.write_text("def make():\n    return None\n", encoding="utf-8")
    assert resolve_factory(f"{port}:make").__name__ == "make"
    assert resolve_factory("audiosr_verify.subjects.reference:make_subject").__name__ == "make_subject"
    assert resolve_factory("reference").__module__ == "audiosr_verify.subjects.reference"
    with pytest.raises(AudioSRError, match="not a built-in name"):
        resolve_factory("referenc")
    with pytest.raises(AudioSRError, match="has no callable nothing"):
        resolve_factory(f"{port}:nothing")
    with pytest.raises(AudioSRError, match="subject file not found"):
        resolve_factory(f"{tmp_path / 'missing.py'}:make")
