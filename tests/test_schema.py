"""The stage schema: stdlib only, self-consistent, and in agreement with the reference implementation.

`audiosr_verify/schema.py` is the one definition both sides of the parity check
use (the oracle runner imports it by path inside the original's venv). Where
`audiosr_model` must hold the same facts itself (it imports nothing of the
harness), this file checks the two against each other, mechanically.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audiosr_verify import schema

SCHEMA_FILE = Path(schema.__file__)


def test_schema_imports_only_the_standard_library():
    tree = ast.parse(SCHEMA_FILE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names
    # and it loads by file path in a bare interpreter, as the oracle runner loads it
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('x', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); sys.modules['x'] = m; s.loader.exec_module(m); "
            "print(len(m.STAGES))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(SCHEMA_FILE)], capture_output=True, text=True)
    assert out.returncode == 0 and int(out.stdout) == len(schema.STAGES), out.stderr


def test_every_fixture_tensor_has_one_stage_and_a_reason():
    from audiosr_verify.util.paths import data_path

    meta = json.loads(data_path("oracle", "tiny", "metadata.json").read_text())
    inputs_only = ("noise.", "ddim.x_T", "unet.input")
    for name, m in meta["inputs"].items():
        for tensor in m["tensors"]:
            if tensor.startswith(inputs_only):
                continue
            st = schema.stage_of(tensor)
            tol = schema.tolerance(tensor)
            assert tol.why and st.name in schema.STAGE_NAMES, tensor
            assert schema.tolerance(tensor, "chained").atol >= tol.atol


def test_stage_names_signatures_and_order():
    assert len(set(schema.STAGE_NAMES)) == len(schema.STAGES)
    assert set(schema.CHAIN_STAGES) <= set(schema.STAGE_NAMES)
    for st in schema.STAGES:
        assert st.signature().startswith(st.name + "(") and " -> " in st.signature()
        assert set(st.optional_outputs) <= {t.name for t in st.outputs}
    ranks = [schema.rank(n) for n in ("resample.waveform", "normalize.waveform", "features.log_mel",
                                      "unet.out.t1", "ddim.step0.pred_x0", "ddim.step1.pred_x0",
                                      "vocoder.waveform", "end2end.waveform")]
    assert ranks == sorted(ranks)
    with pytest.raises(KeyError):
        schema.stage_of("no.such.tensor")


def test_constants_agree_with_the_reference_implementation():
    from audiosr_model import config, sampling
    from audiosr_model.dsp import lowpass
    from audiosr_model.weights.checkpoint import IGNORE_GROUPS

    assert tuple(schema.SCHEDULE_BUFFERS) == tuple(sampling.SCHEDULE_BUFFERS)
    assert tuple(schema.FILTER_TYPES) == tuple(lowpass.FILTER_TYPES)
    assert schema.UNCONDITIONAL_CONSTANT == config.DiffusionConfig().unconditional_constant
    # every key the schema calls unused is in one of the model's declared ignore groups, and vice versa
    samples = [p + "x" for p in schema.IGNORED_PREFIXES] + list(schema.IGNORED_KEYS)
    for key in samples:
        assert any(g.matches(key) for g in IGNORE_GROUPS), key
    assert all(any(g.matches(k) for k in samples) for g in IGNORE_GROUPS)
    tiny = config.tiny()
    o = schema.TINY_OVERRIDES
    assert (tiny.vae.ch, list(tiny.vae.ch_mult), tiny.vae.num_res_blocks) == (
        o["vae_ddconfig"]["ch"], o["vae_ddconfig"]["ch_mult"], o["vae_ddconfig"]["num_res_blocks"])
    assert (tiny.unet.model_channels, list(tiny.unet.channel_mult), list(tiny.unet.attention_resolutions),
            tiny.unet.num_res_blocks, tiny.unet.num_head_channels) == tuple(o["unet"][k] for k in (
                "model_channels", "channel_mult", "attention_resolutions", "num_res_blocks", "num_head_channels"))
    assert (tiny.vocoder.upsample_initial_channel, list(tiny.vocoder.resblock_kernel_sizes),
            [list(d) for d in tiny.vocoder.resblock_dilation_sizes]) == tuple(o["vocoder"][k] for k in (
                "upsample_initial_channel", "resblock_kernel_sizes", "resblock_dilation_sizes"))


def test_the_oracle_runner_takes_its_constants_from_the_schema():
    """No constant copied by hand into the runner: it names schema's values."""
    runner = (SCHEMA_FILE.parent / "oracle" / "runner.py").read_text()
    for name in ("IGNORED_PREFIXES", "SCHEDULE_BUFFERS", "FILTER_TYPES", "COND_KEY", "TINY_OVERRIDES"):
        assert f"schema.{name}" in runner, name
    assert '"concat_lowpass_cond"' not in runner and "model_channels" not in runner
