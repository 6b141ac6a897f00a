"""The golden cases cover what users run: every enhance option, every pipeline path, every rate family.

No model runs here (fast tier): each case's claims (``covers`` in cases.json) are checked against its input
with the model's own functions, and every option of the ``enhance`` parser (introspected) and every path of
`golden.coverage.PATHS` must be exercised by some case, or be excused in `coverage.NOT_OUTPUT` /
`NOT_COVERED` with why. A new ``enhance`` option, or a path no case reaches any more, fails here.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

from audiosr_verify import golden as G
from audiosr_verify.golden import coverage as C

CASES = G.load_cases()
SETTINGS = G.RunSettings()  # the bundled store's run (golden check without options)


@pytest.fixture(scope="module")
def facts():
    return {c.name: C.input_facts(G.default_inputs_dir() / c.input) for c in CASES}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES if c.covers])
def test_each_declared_path_is_exercised_by_the_case_input(case, facts):
    assert not C.claim_problems(case, facts[case.name], SETTINGS)


def test_a_false_claim_is_caught(facts):
    from dataclasses import replace

    mono = next(c for c in CASES if c.name == "tones_16k")
    lying = replace(mono, covers=("chunking", "stereo", "full_window", "no_such_path"))
    problems = C.claim_problems(lying, facts[mono.name], SETTINGS)
    assert len(problems) == 4, problems


def test_every_enhance_option_and_choice_is_exercised_or_excused():
    assert C.option_gaps(CASES, SETTINGS) == []
    excused = set(C.NOT_OUTPUT) | {k.split("=")[0] for k in C.NOT_COVERED}
    known = set(C.output_options())
    assert excused <= known, f"excuses for options enhance no longer has: {sorted(excused - known)}"


def test_a_new_enhance_option_fails_the_coverage():
    parser = argparse.ArgumentParser(conflict_handler="resolve")  # the copy's --level replaces the real one
    for action in C.output_options().values():
        parser._add_action(action)
    parser.add_argument("--dither", choices=["none", "triangular"], default="none")
    parser.add_argument("--level", choices=["preserve", "faithful", "loudness"], default="preserve",
                        help="a new choice of an existing option")
    gaps = C.option_gaps(CASES, SETTINGS, parser)
    assert any(g.startswith("--dither") for g in gaps), gaps
    assert "--level loudness: run by no golden case" in gaps, gaps


def test_every_pipeline_path_is_exercised_and_exists_in_the_code():
    assert C.path_gaps(CASES) == []
    for name, path in C.PATHS.items():
        module, function = path.code.split(":")
        assert callable(getattr(importlib.import_module(module), function, None)), f"{name}: {path.code}"
    # the four paths, by name: a rename of PATHS must not drop one silently
    assert {"chunking", "channel_batching", "cross_fade", "silence", "full_window"} <= set(C.PATHS)


def test_every_rate_family_and_every_presets_window(facts):
    assert C.rate_gaps(facts.values()) == []
    assert C.window_gaps([(c, facts[c.name]) for c in CASES]) == []


def test_fast_paths_reproduce_a_case_that_differs_only_by_them():
    by_name = {c.name: c for c in CASES}
    fast = [c for c in CASES if c.golden]
    assert {k for c in fast for k in c.fast_paths()} >= {"precision", "attention", "batch_chunks"}
    for case in fast:
        owner = by_name[case.golden]
        assert not owner.golden and owner.input == case.input and owner.sha256 == case.sha256
        rest = {k: v for k, v in case.options.items() if k not in G.FAST_PATH_OPTIONS}
        assert rest == owner.options, f"{case.name} must run {owner.name}'s options, plus its fast path"


def test_the_subjects_store_has_every_case_a_subject_can_run(golden_store):
    """`golden check --subject S` compares the cases a schema enhance can run with the -faithful-first goldens."""
    key = G.RunSettings.for_subjects("reference").key
    runnable = [c.name for c in CASES if c.schema_problem() is None and not c.golden]
    assert "full_window_16k" in runnable
    assert [n for n in runnable if not golden_store.exists(key, n)] == []
    assert next(c for c in CASES if c.name == "stereo_24k").schema_problem()


def test_every_case_has_a_golden_and_a_row_in_the_coverage_table(golden_store):
    assert [c.name for c in CASES if not golden_store.exists(SETTINGS.key, c.golden_name)] == []
    rows = C.coverage_rows(CASES, SETTINGS, G.default_inputs_dir())
    assert [r["case"] for r in rows] == [c.name for c in CASES]
    long = next(r for r in rows if r["case"] == "long_8k")
    assert "3 chunks" in long["exercises"] and "--format flac-pcm16" in long["enhance options"]
    table = C.coverage_markdown(rows)
    assert table.count("\n") == len(rows) + 1
