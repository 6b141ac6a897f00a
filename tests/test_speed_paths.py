"""The speed paths of issue 16: SDPA attention, reduced precision, timings, memory, batched chunks.

Each faster path is held to the exact one: SDPA to the original's attention
arithmetic within float32 rounding (and a wrong scale would fail), batched
chunks to the chunk-by-chunk result, bf16 to its precision's tolerance.
Nothing here is timed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from audiosr_model import config as C
from audiosr_model.long_audio import enhance_file
from audiosr_model.nets.attention import Attention, set_attention
from audiosr_model.pipeline import Randomness, generate_many, prepare_segment
from audiosr_model.runtime import memory, precision, timings
from audiosr_model.weights.load import random_model

from audiosr_verify.cli.main import main


@pytest.fixture(scope="module")
def micro_net():
    """The tiny preset made smaller still where the pipeline allows (a cheaper VAE and vocoder)."""
    t = C.preset("tiny")
    cfg = dataclasses.replace(
        t, name="micro", vae=dataclasses.replace(t.vae, ch_mult=(1, 1, 1, 1)),
        vocoder=dataclasses.replace(t.vocoder, upsample_initial_channel=32, resblock_kernel_sizes=(3,),
                                    resblock_dilation_sizes=((1,),)))
    return random_model(cfg, 0, "cpu")


def _unet_out(unet, backend: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 16, 8, generator=g)
    set_attention(unet, backend)
    with torch.no_grad():
        return unet(x, torch.tensor([500, 11]))


# ------------------------------------------------------------------ attention


def test_sdpa_attention_equals_math_within_rounding(tiny_net):
    unet = copy.deepcopy(tiny_net.unet)  # never switch the session's shared network
    assert set_attention(unet, "sdpa") > 0
    exact, fused = _unet_out(unet, "math"), _unet_out(unet, "sdpa")
    assert exact.abs().max() > 0.1  # a real signal, not zeros
    assert (exact - fused).abs().max().item() <= 1e-5


def test_a_wrong_attention_scale_is_outside_that_tolerance(tiny_net):
    """The other direction: the 1e-5 above tells a changed scale apart."""
    unet = copy.deepcopy(tiny_net.unet)
    exact = _unet_out(unet, "math")
    for m in unet.modules():
        if isinstance(m, Attention):
            m.scale *= 1.1
    assert (exact - _unet_out(unet, "sdpa")).abs().max().item() > 1e-3


def test_attention_module_sdpa_matches_math():
    torch.manual_seed(1)
    att = Attention(64, heads=4, dim_head=16)
    x = torch.randn(3, 50, 64)
    with torch.no_grad():
        a = att(x)
        att.backend = "sdpa"
        b = att(x)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_unknown_attention_backend_is_refused(tiny_net):
    with pytest.raises(ValueError, match="attention backend"):
        set_attention(copy.deepcopy(tiny_net.unet), "flash")


# ------------------------------------------------------------------ precision


@pytest.mark.parametrize("flags, precision_name, ok", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16", True),
    ({"avx2", "amx_bf16"}, "bf16", True),
    ({"avx2", "fma"}, "bf16", False),
    ({"avx2", "avx512_bf16"}, "fp16", False),
    (set(), "fp32", True),
])
def test_native_support_follows_the_cpu_flags(monkeypatch, flags, precision_name, ok):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    assert (precision.native_support(precision_name, "cpu") is None) == ok


def test_no_fast_path_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, np.zeros(8000, np.float32), 16000)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    for name in ("fp16", "bf16"):
        code = main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--device", "cpu",
                     "--precision", name])
        err = capsys.readouterr().err.strip()
        assert code == 2
        assert err.count("\n") == 0 and "Traceback" not in err
        assert f"--precision {name} on cpu" in err
    assert not (tmp_path / "o").exists()  # refused before anything was created


def test_bf16_networks_stay_close_and_hand_back_float32(micro_net, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    net = copy.deepcopy(micro_net)
    exact = _unet_out(net.unet, "math")
    assert precision.apply_precision(net, "fp32") == []
    changed = precision.apply_precision(net, "bf16")
    assert "model.diffusion_model" in changed and "first_stage_model.vocoder" in changed
    low = _unet_out(net.unet, "math")
    assert low.dtype == torch.float32
    rel = ((low - exact).abs().max() / exact.abs().max()).item()
    assert 0 < rel < 0.1  # bfloat16 rounding: not bit-equal, well inside checks.precision's 0.1 bound


# ------------------------------------------------------------------ timings and memory


def test_timings_collect_only_inside_collecting():
    with timings.stage("vocoder"):
        pass  # no collector: nothing recorded anywhere, no error
    t = timings.Timings()
    with timings.collecting(t):
        with timings.stage("vocoder"):
            pass
        assert list(timings.each("ddim_step", iter(range(3)))) == [0, 1, 2]
    assert t.calls == {"vocoder": 1, "ddim_step": 3}
    assert timings.active() is None
    d = t.to_dict()["stages"]
    assert d["ddim_step"]["calls"] == 3 and d["vocoder"]["seconds"] >= 0


def test_enhance_timings_json_names_every_stage(tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, (0.2 * np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000)
    out = tmp_path / "t.json"
    code = main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--device", "cpu",
                 "--steps", "2", "--timings", "--timings-json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    stages = data["stages"]
    for name in ("load", "read_resample", "features", "condition_encode", "ddim", "ddim_step", "vae_decode",
                 "vocoder", "postprocess", "write"):
        assert name in stages, name
    assert stages["ddim_step"]["calls"] == 2 and stages["ddim"]["calls"] == 1
    assert stages["ddim_step"]["seconds"] <= stages["ddim"]["seconds"]
    assert sum(s["seconds"] for k, s in stages.items() if k != "ddim_step") <= data["total_s"]
    assert data["precision"] == "fp32" and data["attention"] == "math"
    err = capsys.readouterr().err
    assert "ddim_step" in err and "total" in err


def test_speed_options_leave_the_shared_random_network_alone(tmp_path, tiny_net):
    src = tmp_path / "a.wav"
    sf.write(src, (0.2 * np.sin(np.arange(8000) / 3.0)).astype(np.float32), 16000)
    out = tmp_path / "t.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--device", "cpu",
                 "--steps", "1", "--attention", "sdpa", "--timings-json", str(out)]) == 0
    assert json.loads(out.read_text())["attention"] == "sdpa"
    shared = random_model("tiny", 0, "cpu")  # the cached network every --random-weights run gets
    assert shared is tiny_net
    assert {m.backend for m in shared.modules() if isinstance(m, Attention)} == {"math"}


def test_timings_json_directory_must_exist(tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, np.zeros(8000, np.float32), 16000)
    code = main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--device", "cpu",
                 "--timings-json", str(tmp_path / "no" / "t.json")])
    assert code == 2 and "--timings-json" in capsys.readouterr().err


def test_memory_helpers_are_safe_and_can_be_turned_off(monkeypatch):
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "AUDIOSR_MALLOC"):
        monkeypatch.delenv(name, raising=False)
    assert memory.mode() == "reuse"
    with memory.network_stage():  # safe in any state (a CLI run in this worker may have configured it)
        pass
    memory.release()  # malloc_trim(0): a no-op where glibc is absent, never an error
    monkeypatch.setenv("AUDIOSR_MALLOC", "trim")
    assert memory.mode() == "trim" and memory.configure() is False  # glibc's own thresholds
    monkeypatch.setenv("AUDIOSR_MALLOC", "off")
    assert memory.mode() == "off" and memory.release() is False
    monkeypatch.setenv("AUDIOSR_MALLOC", "reuse")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert memory.user_tuned() and memory.configure() is False  # the user's own setting is kept
    monkeypatch.setenv("AUDIOSR_MALLOC", "bogus")
    assert memory.mode() == "reuse"


def test_reuse_mode_raises_the_thresholds_and_arms_the_network_stages():
    # in a child: the thresholds are process-wide, and this pytest worker must keep glibc's defaults
    code = ("from audiosr_model.runtime import memory\n"
            "import sys\n"
            "if not memory.available(): print('absent'); sys.exit(0)\n"
            "assert not memory.configured()\n"  # a library caller's process is left alone
            "ok = memory.configure()\n"
            "with memory.network_stage():\n"
            "    b = bytearray(64 << 20)\n"  # from the heap inside a stage; trimmed on leaving
            "print(ok, memory.configured())\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "AUDIOSR_MALLOC")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() in (["True", "True"], ["absent"])
    env["AUDIOSR_MALLOC"] = "trim"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() in (["False", "False"], ["absent"])


def test_in_place_steps_give_the_out_of_place_bits(tiny_net):
    # Under autograd every step runs out of place (model/inplace.py); without it the VAE decoder and the
    # vocoder write into their own temporaries. The bits must not move, and the caller's input must not.
    torch.manual_seed(3)
    z = torch.randn(1, tiny_net.config.diffusion.latent_channels, 16, 8)
    mel = torch.randn(1, tiny_net.config.vocoder.num_mels, 40)
    z_copy, mel_copy = z.clone(), mel.clone()
    with torch.enable_grad():
        decoded_ref = tiny_net.first_stage_model.decoder(z).detach()
        wave_ref = tiny_net.first_stage_model.vocoder(mel).detach()
    with torch.no_grad():
        decoded = tiny_net.first_stage_model.decoder(z)
        wave = tiny_net.first_stage_model.vocoder(mel)
    assert torch.equal(decoded, decoded_ref) and torch.equal(wave, wave_ref)
    assert torch.equal(z, z_copy) and torch.equal(mel, mel_copy)


def test_in_place_add_keeps_the_promoted_dtype_and_shape():
    from audiosr_model.nets import inplace

    with torch.no_grad():
        low, high = torch.ones(4, dtype=torch.bfloat16), torch.full((4,), 1e-3)
        assert inplace.add(low, high).dtype == torch.float32  # a bf16 buffer would round the sum
        small, big = torch.ones(1, 4), torch.ones(3, 4)
        assert inplace.add(small, big).shape == (3, 4) and small.shape == (1, 4)
        own = torch.ones(4)
        assert inplace.add(own, torch.ones(4)) is own
    outside = torch.ones(4)  # autograd on: never in place
    assert inplace.add(outside, torch.ones(4)) is not outside and not inplace.may_write(own, own)


def test_compile_failure_is_one_line_and_leaves_no_output(tmp_path, monkeypatch, capsys):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    src = tmp_path / "a.wav"
    sf.write(src, (0.2 * np.sin(np.arange(8000) / 3.0)).astype(np.float32), 16000)
    code = main(["enhance", str(src), "-o", str(tmp_path / "o"), "--random-weights", "--device", "cpu",
                 "--steps", "1", "--compile"])
    err = capsys.readouterr().err
    assert code != 0 and "--compile: compiling the UNet failed (RuntimeError: InvalidCxxCompiler" in err
    assert "Traceback" not in err and "more detail" not in err
    assert not list((tmp_path / "o").glob("*.wav")) if (tmp_path / "o").exists() else True


@pytest.mark.slow
def test_compiled_unet_stays_within_float_noise_and_times_its_compilation(tmp_path):
    src = tmp_path / "a.wav"
    sf.write(src, (0.2 * np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000)
    outs = {}
    for name, extra in (("plain", []), ("compiled", ["--compile"])):
        tj = tmp_path / f"{name}.json"
        code = main(["enhance", str(src), "--output", str(tmp_path / f"{name}.wav"), "--random-weights",
                     "--device", "cpu", "--steps", "3", "--seed", "7", "--timings-json", str(tj), *extra])
        assert code == 0
        outs[name] = (sf.read(tmp_path / f"{name}.wav", dtype="float32")[0], json.loads(tj.read_text()))
    (plain, t_plain), (compiled, t_compiled) = outs["plain"], outs["compiled"]
    assert "compile" not in t_plain["stages"] and t_compiled["compile"] is True
    assert t_compiled["stages"]["compile"]["calls"] == 1  # one chunk length: compiled once, then reused
    assert t_compiled["stages"]["ddim_step"]["calls"] == 3
    assert plain.shape == compiled.shape and float(np.max(np.abs(plain - compiled))) < 1e-4


# ------------------------------------------------------------------ batched chunks


def test_batched_chunks_equal_chunk_by_chunk(micro_net, tmp_path):
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    x = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(0).standard_normal(t.size))
    src = tmp_path / "long.wav"
    sf.write(src, x.astype(np.float32), rate)
    kw = {"steps": 1, "guidance_scale": 3.5, "seed": 7, "level_mode": "preserve", "chunk_seconds": 1.0, "overlap_seconds": 0.5}
    seq = enhance_file(micro_net, src, tmp_path / "seq.wav", batch_chunks=1, **kw)
    bat = enhance_file(micro_net, src, tmp_path / "bat.wav", batch_chunks=2, **kw)
    assert seq.chunks == bat.chunks == 2
    assert seq.cutoff_hz == bat.cutoff_hz and seq.filter_types == bat.filter_types
    a, _ = sf.read(tmp_path / "seq.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "bat.wav", dtype="float32")
    assert a.shape == b.shape and np.abs(a).max() > 1e-3
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


def test_generate_many_needs_one_length_and_one_rng_each(micro_net):
    rng = Randomness(1)
    short = prepare_segment((0.1 * np.ones(24000)).astype(np.float32) * np.sin(np.arange(24000)), 0.5, rng, None)
    long = prepare_segment((0.1 * np.sin(np.arange(300000))).astype(np.float32), 6.25, Randomness(1), None)
    with pytest.raises(ValueError, match="one padded length"):
        generate_many(micro_net, [short, long], [Randomness(1), Randomness(2)], 1, 3.5)
    with pytest.raises(ValueError, match="one Randomness"):
        generate_many(micro_net, [short], [], 1, 3.5)



# ------------------------------------------------------------------ one generate_many, one stage hook


def _recording_hook(seen: list):
    """A stage hook (`pipeline.StageHook`) that records (name, networks) and measures nothing."""
    import contextlib

    def stages(name, *networks):
        seen.append((name, networks))
        return contextlib.nullcontext()

    return stages


def test_channel_batches_run_the_stages_a_mono_segment_runs(micro_net):
    """Channels kept go through `generate_many` (with their own draw) under the same hook: same stages,
    the same networks handed to the memory policy, one ``ddim_step`` per step for the whole batch."""
    from audiosr_model.audio_channels import enhance_channels
    from audiosr_model.pipeline import enhance_segment

    t = np.arange(24000) / 48000
    left = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = (0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mono, pair = [], []
    enhance_segment(micro_net, left, 0.5, Randomness(3), 2, 3.5, stages=_recording_hook(mono))
    outs = enhance_channels(micro_net, np.stack([left, right]), 0.5, 3, 2, 3.5, stages=_recording_hook(pair))
    names = lambda seen: sorted({n for n, _ in seen})  # noqa: E731
    assert names(pair) == names(mono) == sorted(["features", "condition_encode", "ddim", "ddim_step", "vae_decode",
                                                 "postprocess", "vocoder"])
    net_stages = lambda seen: [(n, [id(m) for m in nets]) for n, nets in seen if nets]  # noqa: E731
    assert net_stages(pair) == net_stages(mono)  # condition VAE, UNet, decoder, vocoder: as for one segment
    assert [n for n, _ in pair].count("ddim_step") == 2 == [n for n, _ in mono].count("ddim_step")
    assert [n for n, _ in pair].count("features") == 2  # each channel prepared as its own mono file
    # the hook changes nothing: the default (no hook) gives the same bits
    plain = enhance_channels(micro_net, np.stack([left, right]), 0.5, 3, 2, 3.5)
    for a, b in zip(outs, plain):
        assert np.array_equal(a.waveform, b.waveform)


def test_long_audio_gives_the_pipeline_the_runtime_hook(micro_net, tmp_path):
    """A stereo file (channels batched) is timed stage by stage like a mono one (`enhance --timings`)."""
    rate = 24000
    t = np.arange(rate // 2) / rate
    sf.write(tmp_path / "st.wav", np.stack([0.3 * np.sin(2 * np.pi * 440 * t),
                                           0.1 * np.sin(2 * np.pi * 900 * t)], 1).astype(np.float32), rate)
    collected = timings.Timings()
    with timings.collecting(collected):
        enhance_file(micro_net, tmp_path / "st.wav", tmp_path / "out.wav", steps=2, seed=1)
    stages = collected.to_dict()["stages"]
    for name in ("read_resample", "features", "condition_encode", "ddim", "ddim_step", "vae_decode", "vocoder",
                 "postprocess", "write"):
        assert name in stages, name
    assert stages["ddim"]["calls"] == 1 and stages["ddim_step"]["calls"] == 2  # both channels in one batch
