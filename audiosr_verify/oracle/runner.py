"""Run the ORIGINAL audiosr offline. Runs INSIDE the oracle venv, never imported
into the project's environment.

    python runner.py COMMAND REQUEST.json
    python runner.py selftest          (imports everything; used by venv.py)

Communication is by files only: a JSON request in, safetensors/JSON files
out, and one JSON line on stdout (the result, or {"ok": false, "error": ...}).
Everything else the original prints goes to stderr.

Commands (request fields in brackets, * = required):

- ``manifest``  [preset*, out]: every state_dict key with shape and dtype,
  plus versions and parameter counts; written to ``out`` (JSON).
- ``stages``    [preset*, weights*, inputs* ({name, path, level}), out_dir*,
  seed=42, ddim_steps=2, guidance_scale=3.5, unet_timesteps=[1,501,996]]:
  the original, stage by stage, one ``<name>.safetensors`` per input; per-
  input metadata in the result. Schema: golden/oracle/README.md. [plain:
  names of inputs whose plain ``super_resolution`` (as ``end2end``) also
  runs in this process, recorded under ``plain``.]
- ``end2end``   [preset*, weights*, inputs* ({name, path}), out_dir*, seed,
  ddim_steps, guidance_scale]: ``audiosr.super_resolution`` as is; final
  waveform per input, chosen filter type, exceptions recorded as data.
- ``modules``   [preset*, weights*, stage*, inputs* (safetensors path), out*]:
  forward hooks on every module of one stage; every module output in
  execution order. Stages: unet, first_stage_encode, cond_stage_encode,
  decode_first_stage, vocoder.

Weights: a safetensors file whose every key must exist in the original's
state_dict with the same shape; every original key it lacks must be in a
group inference never uses (``IGNORED_*``) or a schedule buffer the original
computes itself.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import json
import os
import sys
import time
import traceback
from pathlib import Path

_REAL_STDOUT = sys.stdout
sys.stdout = sys.stderr  # the original prints freely; only our final line goes to stdout

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shims  # noqa: E402

shims.install()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from module_hooks import record_module_outputs  # noqa: E402  (shared with first_divergence)
from safetensors.torch import load_file, save_file  # noqa: E402

import audiosr  # noqa: E402,F401
import audiosr.latent_diffusion.models.ddpm as ddpm_mod  # noqa: E402
import audiosr.pipeline as pipeline_mod  # noqa: E402
import audiosr.utilities.model as vocoder_cfg_mod  # noqa: E402
import audiosr.utils as utils_mod  # noqa: E402
from audiosr.latent_diffusion.models.ddim import DDIMSampler  # noqa: E402
from audiosr.latent_diffusion.modules.distributions.distributions import (  # noqa: E402
    DiagonalGaussianDistribution,
)



def _load_schema():
    """The harness's stage schema (stdlib only), by file path: the one definition both sides use."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("audiosr_verify_schema", HERE.parent / "schema.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


schema = _load_schema()
# Original keys a weights file may lack (groups inference never touches), buffers the original computes
IGNORED_PREFIXES = schema.IGNORED_PREFIXES
IGNORED_KEYS = frozenset(schema.IGNORED_KEYS)
SCHEDULE_BUFFERS = frozenset(schema.SCHEDULE_BUFFERS)
FILTER_TYPES = schema.FILTER_TYPES
COND_KEY = schema.COND_KEY


def log(msg: str) -> None:
    print(f"[oracle] {msg}", file=sys.stderr, flush=True)


def is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for dist in ("torch", "numpy", "scipy", "librosa", "transformers", "audiosr", "torchaudio", "soundfile"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["torch_num_threads"] = torch.get_num_threads()
    return out


# --------------------------------------------------------------------------- model


TINY_VAE = schema.TINY_OVERRIDES["vae_ddconfig"]
TINY_UNET = schema.TINY_OVERRIDES["unet"]
TINY_VOCODER = schema.TINY_OVERRIDES["vocoder"]

_ORIG_VOCODER_CONFIG = vocoder_cfg_mod.get_vocoder_config_48k
_ORIG_CLAP = ddpm_mod.CLAPAudioEmbeddingClassifierFreev2


class _NoClap(torch.nn.Module):
    """Stands in for CLAP in the tiny preset: inference never calls it."""

    def __init__(self, *args, **kwargs):
        super().__init__()


def preset_overrides(preset: str, overrides: dict | None = None) -> dict:
    """What changes in the original's own config: nothing for basic, the tiny sizes for tiny, and for a
    configuration file (any other preset) the ``overrides`` its request carries (audiosr_verify's
    oracle/config_overrides.py derives them from the YAML)."""
    if preset == "basic" and not overrides:
        return {}
    if preset == "tiny" and not overrides:
        return copy.deepcopy(schema.TINY_OVERRIDES)
    if overrides is None:
        raise ValueError(f"preset {preset!r} is neither basic nor tiny, and the request carries no overrides")
    known = {"vae_ddconfig", "vae_embed_dim", "unet", "vocoder"}
    if set(overrides) - known:
        raise ValueError(f"unknown overrides {sorted(set(overrides) - known)} (known: {sorted(known)})")
    return copy.deepcopy(overrides)


def model_config(preset: str, overrides: dict | None = None) -> dict:
    changes = preset_overrides(preset, overrides)
    config = copy.deepcopy(utils_mod.get_basic_config())
    params = config["model"]["params"]
    first = params["first_stage_config"]["params"]
    cond_vae = params["cond_stage_config"][COND_KEY]["params"]["first_stage_config"]["params"]
    for vae in (first, cond_vae):  # one VAE configuration for both, as in our ModelConfig
        vae["ddconfig"].update(copy.deepcopy(changes.get("vae_ddconfig", {})))
        if "vae_embed_dim" in changes:
            vae["embed_dim"] = changes["vae_embed_dim"]
    params["unet_config"]["params"].update(copy.deepcopy(changes.get("unet", {})))
    params["device"] = torch.device("cpu")
    return config


@contextlib.contextmanager
def preset_patches(preset: str, overrides: dict | None = None):
    """The vocoder config and CLAP class are looked up at call time: swap them for any size but basic's.

    CLAP is never called at inference; below the released size it is replaced by an empty module (its
    keys are not inference keys, and a small checkpoint has none).
    """
    changes = preset_overrides(preset, overrides)
    if not changes:
        yield
        return

    def sized_vocoder_config():
        cfg = _ORIG_VOCODER_CONFIG()
        cfg.update(copy.deepcopy(changes.get("vocoder", {})))
        return cfg

    vocoder_cfg_mod.get_vocoder_config_48k = sized_vocoder_config
    ddpm_mod.CLAPAudioEmbeddingClassifierFreev2 = _NoClap
    try:
        yield
    finally:
        vocoder_cfg_mod.get_vocoder_config_48k = _ORIG_VOCODER_CONFIG
        ddpm_mod.CLAPAudioEmbeddingClassifierFreev2 = _ORIG_CLAP


def build(preset: str, overrides: dict | None = None):
    """The original LatentDiffusion, built from its own config (never build_model())."""
    start = time.monotonic()
    config = model_config(preset, overrides)
    with preset_patches(preset, overrides):
        model = ddpm_mod.LatentDiffusion(**config["model"]["params"])
    model.eval()
    log(f"built original LatentDiffusion ({preset if not overrides else 'configuration file'}) "
        f"in {time.monotonic() - start:.1f} s")
    return model


def load_weights(model, path: str) -> dict:
    """Load a weights file strictly (see module docstring); returns a report."""
    weights = load_file(path)
    state = model.state_dict()
    unknown = sorted(k for k in weights if k not in state)
    if unknown:
        raise KeyError(f"{path}: {len(unknown)} key(s) not in the original model, e.g. {unknown[:5]}")
    bad_shape = [
        f"{k}: file {list(v.shape)} vs original {list(state[k].shape)}"
        for k, v in weights.items()
        if tuple(v.shape) != tuple(state[k].shape)
    ]
    if bad_shape:
        raise ValueError(f"{path}: {len(bad_shape)} shape mismatch(es), e.g. {bad_shape[:5]}")
    missing = [k for k in state if k not in weights]
    computed = [k for k in missing if k in SCHEDULE_BUFFERS]
    ignored = [k for k in missing if is_ignored(k)]
    required = [k for k in missing if k not in SCHEDULE_BUFFERS and not is_ignored(k)]
    if required:
        raise KeyError(
            f"{path}: {len(required)} key(s) inference needs are missing, e.g. {required[:5]}"
        )
    schedule_diff = {
        k: float((weights[k].double() - state[k].double()).abs().max())
        for k in SCHEDULE_BUFFERS
        if k in weights
    }
    result = model.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys
    # DiffusionWrapper keeps a reference to the scale_factor buffer; load_state_dict
    # copies in place, so both must agree (a dropped scale_factor would show here).
    if isinstance(model.scale_factor, torch.Tensor):
        assert model.model.scale_factor is model.scale_factor or float(model.model.scale_factor) == float(
            model.scale_factor
        )
    return {
        "path": str(path),
        "loaded_keys": len(weights),
        "ignored_missing": len(ignored),
        "computed_missing": len(computed),
        "schedule_buffers_from_file_max_abs_diff": schedule_diff,
        "scale_factor": float(model.scale_factor),
    }


def build_loaded(request: dict):
    model = build(request["preset"], request.get("overrides"))
    report = load_weights(model, request["weights"])
    return model, report


# --------------------------------------------------------------------------- helpers


def to_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x.detach().clone().contiguous()


def checksum(t: torch.Tensor) -> dict:
    t = to_tensor(t)
    return {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "sum": float(t.double().sum()),
        "abs_max": float(t.abs().max()) if t.numel() else 0.0,
        "sha256": hashlib.sha256(t.cpu().numpy().tobytes()).hexdigest(),
    }


def error_record(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc)}


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def forced_filter(ftype: str):
    """np.random.choice returns ``ftype`` (and draws nothing) while active."""
    with patched(np.random, "choice", lambda options, *a, **k: ftype):
        yield


class Store:
    """Tensors of one input, with how each one was trimmed."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.info: dict[str, dict] = {}

    def add(self, name: str, value, source: str, **extra) -> None:
        t = to_tensor(value).to(torch.float32) if to_tensor(value).is_floating_point() else to_tensor(value)
        self.tensors[name] = t
        self.info[name] = {"source": source, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), **extra}

    def add_trimmed(self, name: str, value, source: str, length: int, axis: int = -1) -> None:
        """Keep the first ``length`` samples along ``axis``; record what was dropped."""
        t = to_tensor(value)
        full = t.shape[axis]
        kept = t.narrow(axis, 0, min(length, full))
        self.add(name, kept, source, trim={"axis": axis, "full_length": int(full), "kept": int(kept.shape[axis])})

    def add_constant_tail(self, name: str, value, source: str, axis: int = 0) -> None:
        """Drop the trailing slices along ``axis`` that are one exact constant run (or two)."""
        t = to_tensor(value)
        full = t.shape[axis]
        runs = []
        end = full
        for _ in range(2):
            if end <= 1:  # keep at least one slice
                break
            last = t.narrow(axis, end - 1, 1)
            value0 = last.flatten()[0]
            if not bool((last == value0).all()):
                break
            start = end - 1
            while start > 1 and bool((t.narrow(axis, start - 1, 1) == value0).all()):
                start -= 1
            runs.insert(0, {"start": int(start), "stop": int(end), "value": float(value0)})
            end = start
        kept = t.narrow(axis, 0, end)
        self.add(name, kept, source, trim={"axis": axis, "full_length": int(full), "kept": int(end), "constant_runs": runs})

    def save(self, path: Path) -> int:
        save_file(self.tensors, str(path), metadata={"schema_version": "1"})
        return path.stat().st_size


# --------------------------------------------------------------------------- stages


def dsp_stages(path: str, seed: int, store: Store, max_samples: int | None = None,
               filters: str = "all", max_lowpass_mel_rows: int | None = None,
               max_mel_rows: int | None = None) -> dict:
    """Deterministic front end, each arrow by the original's own function.

    Waveforms are stored for the input's length at 48 kHz (at most
    ``max_samples`` from the start); the rest is recorded as a trim. Every
    filter type runs (errors are recorded); ``filters="seed"`` stores only
    the type the seed picks."""
    import torchaudio

    meta: dict = {"errors": {}}
    wave, sr = torchaudio.load(path)
    meta.update(sample_rate=int(sr), channels=int(wave.shape[0]), frames=int(wave.shape[-1]))
    resampled = torchaudio.functional.resample(wave, sr, 48000)
    ch0 = resampled.numpy()[0, ...]
    n48 = int(ch0.shape[-1])
    meta["length_48k"] = n48
    keep = n48 if not max_samples else min(n48, int(max_samples))
    meta["stored_samples"] = keep
    if sr != 48000:
        store.add_trimmed("resample.waveform", ch0, "torchaudio.functional.resample(torchaudio.load(path), sr, 48000)[0] (channel 0, as read_wav_file takes it)", keep)
    normalized = utils_mod.normalize_wav(ch0)
    store.add_trimmed("normalize.waveform", normalized, "audiosr.utils.normalize_wav(resampled channel 0); padded = this + zeros up to padded_length (pad_wav)", keep)

    padded, target_frame, pad_duration = utils_mod.read_wav_file(path)
    assert padded.shape[0] == 1 and np.array_equal(padded[0, :n48], normalized)
    assert not padded[0, n48:].any()
    meta.update(pad_duration=float(pad_duration), target_frame=int(target_frame), padded_length=int(padded.shape[-1]))

    log_mel, stft = utils_mod.wav_feature_extraction(padded, target_frame)
    source = "audiosr.utils.wav_feature_extraction(padded, target_frame)[0] (after pad_spec) [frames, 256]"
    if max_mel_rows:
        store.add_trimmed("features.log_mel", log_mel, source, int(max_mel_rows), axis=0)
    else:
        store.add_constant_tail("features.log_mel", log_mel, source)
    store.add(
        "features.stft_bin_sum",
        torch.sum(torch.abs(stft), dim=0),
        "torch.sum(abs(stft), dim=0) of wav_feature_extraction(...)[1] [1025]: what the cutoff finder accumulates",
    )
    frames = sorted({i for i in list(range(0, 8)) + list(range(stft.shape[0] // 2 - 4, stft.shape[0] // 2 + 4)) if 0 <= i < stft.shape[0]})
    store.add(
        "features.stft_frames",
        stft[frames],
        "wav_feature_extraction(...)[1][frame_index] magnitudes [n, 1025]",
        frame_index=frames,
    )
    meta["stft_frames"] = int(stft.shape[0])

    cutoff_bin = utils_mod._locate_cutoff_freq(stft, percentile=0.985)
    cutoff_hz = cutoff_bin / 1024 * 24000
    meta.update(cutoff_bin=int(cutoff_bin), cutoff_hz=float(cutoff_hz), cutoff_hz_used=float(24000 if cutoff_hz < 1000 else cutoff_hz))

    # Which type does np.random.choice pick after seed_everything(seed)?
    pipeline_mod.seed_everything(seed)
    meta["filter_type_for_seed"] = str(np.random.choice(list(FILTER_TYPES)))

    batch = {"waveform": torch.FloatTensor(padded), "stft": torch.FloatTensor(stft), "sampling_rate": 48000}
    for ftype in FILTER_TYPES:
        try:
            with forced_filter(ftype):
                out = utils_mod.lowpass_filtering_prepare_inference(batch)["waveform_lowpass"]
        except Exception as exc:  # the original's behaviour is data here
            meta["errors"][f"lowpass.{ftype}"] = error_record(exc)
            continue
        seed_type = ftype == meta["filter_type_for_seed"]
        if filters == "all" or seed_type:
            store.add_trimmed(f"lowpass.{ftype}", out[0], "audiosr.utils.lowpass_filtering_prepare_inference(batch)['waveform_lowpass'][0] with np.random.choice forced to this type", keep)
        if seed_type:
            lp_mel, _ = utils_mod.wav_feature_extraction(out, target_frame)
            source = f"wav_feature_extraction(waveform_lowpass[{ftype}], target_frame)[0] [frames, 256] (the condition's input)"
            if max_lowpass_mel_rows:
                store.add_trimmed("lowpass.log_mel", lp_mel, source, int(max_lowpass_mel_rows), axis=0)
            else:
                store.add_constant_tail("lowpass.log_mel", lp_mel, source)
    return meta


class Capture:
    """Instruments one super_resolution call on the real code path."""

    def __init__(self, model):
        self.model = model
        self.draws: list[tuple[str, torch.Tensor]] = []
        self.posteriors: list[dict] = []
        self.steps: list[dict] = []
        self.apply_calls: list[torch.Tensor] = []
        self.events: dict = {}
        self.filter_types: list[str] = []

    @contextlib.contextmanager
    def active(self):
        cap = self
        real_randn, real_rand = torch.randn, torch.rand
        real_sample = DiagonalGaussianDistribution.sample
        real_step = DDIMSampler.p_sample_ddim
        real_lowpass = utils_mod.lowpass
        real_make_batch = pipeline_mod.make_batch_for_super_resolution
        model = self.model
        real_apply = model.apply_model
        real_decode = model.decode_first_stage
        real_replace = model.mel_replace_ops
        real_voc = model.mel_spectrogram_to_waveform
        real_post = model.postprocessing

        def randn(*args, **kwargs):
            out = real_randn(*args, **kwargs)
            cap.draws.append(("randn", out.clone()))
            return out

        def rand(*args, **kwargs):
            out = real_rand(*args, **kwargs)
            cap.draws.append(("rand", out.clone()))
            return out

        def sample(self_):
            n = len(cap.draws)
            out = real_sample(self_)
            cap.posteriors.append({"mean": self_.mean.clone(), "std": self_.std.clone(), "noise": cap.draws[n][1], "sample": out.clone()})
            return out

        def p_sample_ddim(self_, x, c, t, index, **kwargs):
            n = len(cap.draws)
            calls = len(cap.apply_calls)
            x_prev, pred_x0 = real_step(self_, x, c, t, index, **kwargs)
            cap.steps.append(
                {
                    "t": int(t[0]),
                    "index": int(index),
                    "x": x.clone(),
                    "x_prev": x_prev.clone(),
                    "pred_x0": pred_x0.clone(),
                    "noise": cap.draws[n][1] if len(cap.draws) > n else None,
                    "model_outputs": cap.apply_calls[calls:],
                    "a_t": float(self_.ddim_alphas[index]),
                    "a_prev": float(self_.ddim_alphas_prev[index]),
                    "sigma_t": float(self_.ddim_sigmas[index]),
                }
            )
            cap.events.setdefault("ddim_timesteps", [int(v) for v in self_.ddim_timesteps])
            return x_prev, pred_x0

        def apply_model(x, t, cond, *a, **k):
            out = real_apply(x, t, cond, *a, **k)
            cap.apply_calls.append(out.clone())
            return out

        def lowpass(data, highcut, fs, order=5, _type="butter"):
            cap.filter_types.append(str(_type))
            return real_lowpass(data, highcut, fs, order=order, _type=_type)

        def make_batch(*args, **kwargs):
            batch, duration = real_make_batch(*args, **kwargs)
            cap.events["batch"] = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
            cap.events["duration"] = duration
            return batch, duration

        def decode(z):
            out = real_decode(z)
            cap.events["decode_in"] = z.clone()
            cap.events["decoded"] = out.clone()  # mel_replace_ops edits it in place
            return out

        def replace(samples, inp):
            out = real_replace(samples, inp)
            cap.events["replaced"] = out.clone()
            return out

        def vocode(mel, *a, **k):
            out = real_voc(mel, *a, **k)
            cap.events["vocoder"] = np.array(out, copy=True)  # postprocessing edits it in place
            return out

        def post(out_batch, x_batch):
            cap.events["post_lowpass_in"] = to_tensor(x_batch)
            out = real_post(out_batch, x_batch)
            cap.events["post"] = np.array(out, copy=True)
            return out

        with contextlib.ExitStack() as stack:
            stack.enter_context(patched(torch, "randn", randn))
            stack.enter_context(patched(torch, "rand", rand))
            stack.enter_context(patched(DiagonalGaussianDistribution, "sample", sample))
            stack.enter_context(patched(DDIMSampler, "p_sample_ddim", p_sample_ddim))
            stack.enter_context(patched(utils_mod, "lowpass", lowpass))
            stack.enter_context(patched(pipeline_mod, "make_batch_for_super_resolution", make_batch))
            for name, fn in (
                ("apply_model", apply_model),
                ("decode_first_stage", decode),
                ("mel_replace_ops", replace),
                ("mel_spectrogram_to_waveform", vocode),
                ("postprocessing", post),
            ):
                setattr(model, name, fn)
            try:
                yield self
            finally:
                for name in ("apply_model", "decode_first_stage", "mel_replace_ops", "mel_spectrogram_to_waveform", "postprocessing"):
                    if name in model.__dict__:
                        del model.__dict__[name]


def fresh(model) -> None:
    """Make a reused instance draw like a fresh one (a second generate_batch
    would first draw torch.rand(1) in make_decision)."""
    model.conditional_dry_run_finished = False


def super_resolution(model, path: str, seed: int, steps: int, guidance: float):
    fresh(model)
    with torch.no_grad():
        return pipeline_mod.super_resolution(model, path, seed=seed, ddim_steps=steps, guidance_scale=guidance)


def chain_stages(model, path: str, request: dict, dsp_meta: dict, store: Store, level: str) -> dict:
    """The real super_resolution path, instrumented; stores the chain's intermediates.

    level "chain": condition posterior, DDIM trajectory (pred_x0, x_prev per
    step), decoded mel, vocoder / post-processed / final waveforms.
    level "full": also the raw random draws (identical for every input of the
    same latent shape; other inputs record their sha256), the UNet at fixed
    timesteps, the step-0 model outputs and the replaced mel.
    """
    seed = int(request.get("seed", 42))
    steps = int(request.get("ddim_steps", 2))
    guidance = float(request.get("guidance_scale", 3.5))
    n48 = dsp_meta["length_48k"]
    full = level == "full"
    meta: dict = {"seed": seed, "ddim_steps": steps, "guidance_scale": guidance, "level": level}
    cap = Capture(model)
    with cap.active():
        waveform = super_resolution(model, path, seed, steps, guidance)
    ev = cap.events
    meta["filter_types_used"] = cap.filter_types
    meta["ddim_timesteps"] = ev.get("ddim_timesteps")
    meta["random_draws"] = [
        {"kind": kind, "role": role, **checksum(t)}
        for (kind, t), role in zip(cap.draws, draw_roles(len(cap.draws), steps))
    ]

    # The batch of the real path equals the stage-by-stage DSP.
    batch = ev["batch"]
    views = {
        "waveform": batch["waveform"][0, 0],
        "log_mel_spec": batch["log_mel_spec"][0],
        "lowpass_mel": batch["lowpass_mel"][0],
        "waveform_lowpass": batch["waveform_lowpass"][0, 0],
    }
    for key, stored_name in (
        ("waveform", "normalize.waveform"),
        ("log_mel_spec", "features.log_mel"),
        ("lowpass_mel", "lowpass.log_mel"),
        ("waveform_lowpass", f"lowpass.{cap.filter_types[0]}"),
    ):
        stored = store.tensors[stored_name]
        assert torch.equal(views[key][: stored.shape[0]], stored), f"real path differs from stages: {stored_name}"

    assert len(cap.posteriors) == 2, len(cap.posteriors)
    assert len(cap.draws) == 3 + steps and all(kind == "randn" for kind, _ in cap.draws), meta["random_draws"]
    assert torch.equal(cap.steps[0]["x"], cap.draws[2][1])
    _target, cond = cap.posteriors
    store.add("cond.posterior_mean", cond["mean"], "cond_stage_models[0].vae.encode(lowpass_mel.unsqueeze(1)).mean [1, 16, T/8, 32]")
    store.add("cond.posterior_std", cond["std"], "DiagonalGaussianDistribution.std = exp(0.5 * clamp(logvar, -30, 20))")
    meta["cond_latent"] = checksum(cond["sample"])
    meta["cond_latent_rule"] = "cond.latent = cond.posterior_mean + cond.posterior_std * draw #2 (VAEFeatureExtract output, unscaled)"

    if full:
        store.add("noise.cond_posterior", cond["noise"], "draw #2: torch.randn in DiagonalGaussianDistribution.sample of the condition")
        store.add("ddim.x_T", cap.draws[2][1], "draw #3: torch.randn in DDIMSampler.ddim_sampling")
        store.add("cond.latent", cond["sample"], "VAEFeatureExtract.forward output = mean + std * noise (unscaled)")
    for i, st in enumerate(cap.steps):
        p = f"ddim.step{i}"
        store.add(f"{p}.pred_x0", st["pred_x0"], f"DDIMSampler.p_sample_ddim pred_x0 at t={st['t']}")
        store.add(f"{p}.x_prev", st["x_prev"], f"DDIMSampler.p_sample_ddim x_prev at t={st['t']}")
        if full and st["noise"] is not None:
            store.add(f"noise.ddim_step{i}", st["noise"], f"draw #{4 + i}: torch.randn of noise_like at step {i} (before * sigma_t)")
        if full and i == 0:
            outs = st["model_outputs"]
            store.add(f"{p}.model_cond", outs[0], "apply_model(x_T, t, cond) (v prediction)")
            if len(outs) > 1:
                store.add(f"{p}.model_uncond", outs[1], "apply_model(x_T, t, unconditional_conditioning)")
    meta["ddim_steps_detail"] = [
        {k: st[k] for k in ("t", "index", "a_t", "a_prev", "sigma_t")} | {"model_calls": len(st["model_outputs"])}
        for st in cap.steps
    ]
    assert torch.equal(cap.steps[-1]["x_prev"], ev["decode_in"])

    store.add("mel.decoded", ev["decoded"], "decode_first_stage(samples) = first_stage_model.decode(samples / scale_factor) [1, 1, T, 256]")
    cutoff_melbin = int(model._locate_cutoff_freq(torch.exp(batch["lowpass_mel"][0])))
    meta["mel_replace_cutoff_bin"] = cutoff_melbin
    meta["mel_replace_rule"] = "mel.replaced = mel.decoded with [..., :mel_replace_cutoff_bin] taken from lowpass.log_mel (padded to T rows)"
    expected = ev["decoded"].clone()
    expected[0][..., :cutoff_melbin] = batch["lowpass_mel"][0][..., :cutoff_melbin]
    assert torch.equal(expected, ev["replaced"])
    if full:
        store.add("mel.replaced", ev["replaced"], "mel_replace_ops(decoded, lowpass_mel) [1, 1, T, 256]")

    voc = ev["vocoder"]
    meta["vocoder_length"] = int(voc.shape[-1])
    store.add_trimmed("vocoder.waveform", voc[0, 0], "mel_spectrogram_to_waveform(replaced) = first_stage_model.vocoder(mel.squeeze(1).permute(0, 2, 1))[0, 0]", n48)
    post = ev["post"]
    store.add_trimmed("post.waveform", post[0, 0], "LatentDiffusion.postprocessing(vocoder waveform, waveform_lowpass)[0, 0]", n48)
    x_low = ev["post_lowpass_in"][0, 0].numpy()
    cutoff_ratio = int(model._get_cutoff_index_np(x_low))
    import librosa

    stft_gt = librosa.stft(x_low)
    stft_out = librosa.stft(voc[0, 0])
    ratio = float(np.mean(np.sum(np.abs(stft_gt[cutoff_ratio])) / np.sum(np.abs(stft_out[cutoff_ratio, ...]))))
    meta["post_cutoff_index"] = cutoff_ratio
    meta["post_energy_ratio_raw"] = ratio
    meta["post_energy_ratio"] = min(max(ratio, 0.8), 1.2)
    meta["post_full"] = checksum(torch.from_numpy(np.ascontiguousarray(post)))
    store.add_trimmed("final.waveform", waveform[0, 0], "generate_batch output: 0.5 * post / max|post|, minus its mean (over the full padded length) [0, 0]", n48)
    meta["final_length"] = int(waveform.shape[-1])
    meta["final"] = checksum(torch.from_numpy(np.ascontiguousarray(waveform)))

    if full:
        unet_fixed(model, cap.draws[2][1], cond["sample"], request.get("unet_timesteps", [1, 501, 996]), store, meta)
    return meta


def draw_roles(n: int, steps: int) -> list[str]:
    roles = ["first_stage posterior sample (target; only its shape is used)", "cond_stage posterior sample", "x_T"]
    roles += [f"ddim step {i} noise" for i in range(steps)]
    return (roles + ["unexpected"] * n)[:n]


def unet_fixed(model, x, cond, timesteps, store: Store, meta: dict) -> None:
    """UNet on fixed inputs: x = x_T, condition = the condition latent."""
    seen = {}

    def grab(module, args, kwargs):
        seen["xc"] = args[0].clone()

    handle = model.model.diffusion_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            for t in timesteps:
                ts = torch.full((x.shape[0],), int(t), dtype=torch.long)
                out = model.apply_model(x, ts, {COND_KEY: cond})
                store.add(f"unet.out.t{t}", out, f"apply_model(ddim.x_T, t={t}, {{'{COND_KEY}': cond.latent}})")
            unc = model.cond_stage_models[0].get_unconditional_condition(x.shape[0])
            out = model.apply_model(x, torch.full((x.shape[0],), int(timesteps[len(timesteps) // 2]), dtype=torch.long), {COND_KEY: unc})
            store.add(f"unet.out_uncond.t{timesteps[len(timesteps) // 2]}", out, "apply_model(x_T, t, unconditional condition: -11.4981 constant)")
    finally:
        handle.remove()
    store.add("unet.input", seen["xc"], "cat([x_T, scale_factor * cond], dim=1): what diffusion_model sees [1, 32, T, F]")
    meta["unet_timesteps"] = [int(t) for t in timesteps]


def cmd_stages(request: dict) -> dict:
    model, wreport = build_loaded(request)
    out_dir = Path(request["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(request.get("seed", 42))
    steps, guidance = int(request.get("ddim_steps", 2)), float(request.get("guidance_scale", 3.5))
    plain = set(request.get("plain", ()))  # inputs whose plain super_resolution runs here too
    if plain:
        (out_dir / "plain").mkdir(exist_ok=True)
    results = {}
    for item in request["inputs"]:
        name, path, level = item["name"], item["path"], item.get("level", "dsp")
        log(f"stages: {name} ({level})")
        start = time.monotonic()
        store = Store()
        meta = dsp_stages(path, seed, store, item.get("max_samples"), item.get("filters", "all"),
                          item.get("max_lowpass_mel_rows"), item.get("max_mel_rows"))
        meta["file"] = os.path.basename(path)
        meta["level"] = level
        if level in ("chain", "full"):
            try:
                meta["chain"] = chain_stages(model, path, request, meta, store, level)
            except AssertionError:
                raise  # the instrumentation disagrees with itself: not the original's behaviour
            except Exception as exc:
                meta["chain"] = {"error": error_record(exc)}
        meta["tensors"] = store.info
        meta["bytes"] = store.save(out_dir / f"{name}.safetensors")
        meta["seconds"] = round(time.monotonic() - start, 2)
        if name in plain:  # the plain run in this process: no second load of a 6 GB model (end2end does one)
            log(f"stages: {name}: plain super_resolution")
            meta["plain"] = plain_run(model, name, path, seed, steps, guidance, out_dir / "plain")
        results[name] = meta
    return {"inputs": results, "weights": wreport, "versions": versions()}


# --------------------------------------------------------------------------- end2end


def cmd_end2end(request: dict) -> dict:
    model, wreport = build_loaded(request)
    out_dir = Path(request["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(request.get("seed", 42))
    steps = int(request.get("ddim_steps", 2))
    guidance = float(request.get("guidance_scale", 3.5))
    results = {item["name"]: plain_run(model, item["name"], item["path"], seed, steps, guidance, out_dir)
               for item in request["inputs"]}
    return {"inputs": results, "weights": wreport, "versions": versions()}


def plain_run(model, name: str, path: str, seed: int, steps: int, guidance: float, out_dir: Path) -> dict:
    """``super_resolution`` as is, only its low-pass choice recorded: the run the instrumented chain must equal."""
    chosen: list[str] = []
    real_lowpass = utils_mod.lowpass

    def lowpass(data, highcut, fs, order=5, _type="butter"):
        chosen.append(str(_type))
        return real_lowpass(data, highcut, fs, order=order, _type=_type)

    entry: dict = {"file": os.path.basename(path), "seed": seed, "ddim_steps": steps, "guidance_scale": guidance}
    start = time.monotonic()
    try:
        with patched(utils_mod, "lowpass", lowpass):
            waveform = super_resolution(model, path, seed, steps, guidance)
    except Exception as exc:
        entry["error"] = error_record(exc)
        entry["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
    else:
        out = out_dir / f"{name}.safetensors"
        save_file({"waveform": torch.from_numpy(np.ascontiguousarray(waveform)).float()}, str(out))
        entry.update(output=str(out), shape=list(waveform.shape), checksum=checksum(torch.from_numpy(np.ascontiguousarray(waveform))))
    entry["filter_type"] = chosen[0] if chosen else None
    entry["seconds"] = round(time.monotonic() - start, 2)
    return entry


# --------------------------------------------------------------------------- modules


def _stage_call(model, stage: str, inputs: dict):
    """(module prefix to hook, thunk running the stage) for one stage."""
    if stage == "unet":
        x, t, cond = inputs["x"], inputs["t"].long(), inputs["cond"]
        return "model.diffusion_model", lambda: model.apply_model(x, t, {COND_KEY: cond})
    if stage == "first_stage_encode":
        mel = inputs["mel"]  # [B, 1, T, 256]
        return "first_stage_model", lambda: model.first_stage_model.encode(mel).parameters
    if stage == "cond_stage_encode":
        mel = inputs["mel"]  # [B, T, 256], as VAEFeatureExtract receives it
        vae = model.cond_stage_models[0].vae
        return "cond_stage_models.0.vae", lambda: vae.encode(mel.unsqueeze(1)).parameters
    if stage == "decode_first_stage":
        z = inputs["z"]  # scaled latent, as the sampler returns it
        return "first_stage_model", lambda: model.decode_first_stage(z)
    if stage == "vocoder":
        mel = inputs["mel"]  # [B, 256, T]
        return "first_stage_model.vocoder", lambda: model.first_stage_model.vocoder(mel)
    raise ValueError(f"unknown stage {stage!r}")


def cmd_modules(request: dict) -> dict:
    model, wreport = build_loaded(request)
    inputs = load_file(request["inputs"])
    prefix, run = _stage_call(model, request["stage"], inputs)
    outputs, order, result = record_module_outputs(model, prefix, run)
    outputs["__output__"] = to_tensor(result)
    save_file(outputs, request["out"], metadata={"order": json.dumps([o["key"] for o in order])})
    return {"stage": request["stage"], "prefix": prefix, "order": order, "out": request["out"], "weights": wreport}


# --------------------------------------------------------------------------- serve: stage calls, one at a time


class _Stages:
    """The schema's stages, each one call into the original's own code (the `original` subject).

    Where the original has no function of its own for a stage, the lines that
    compute it are quoted from the original and marked so.
    """

    def __init__(self, model):
        self.model = model
        self.sampler = DDIMSampler(model, device=model.device)  # as sample_log builds it
        self.steps = None

    def _schedule(self, steps: int) -> None:
        if self.steps != steps:
            self.sampler.make_schedule(ddim_num_steps=steps, ddim_eta=1.0, verbose=False)
            self.steps = steps

    def resample(self, waveform, rate):
        import torchaudio

        w = waveform if waveform.dim() == 2 else waveform[None]
        return {"waveform": torchaudio.functional.resample(w, int(rate), 48000)}

    def normalize(self, waveform):
        return {"waveform": utils_mod.normalize_wav(waveform.numpy())}

    def features(self, waveform):
        log_mel, stft = utils_mod.wav_feature_extraction(waveform.numpy()[None], waveform.shape[-1] // 480)
        return {"log_mel": log_mel, "stft": stft}

    def cutoff(self, stft):
        return {"bin": int(utils_mod._locate_cutoff_freq(stft, percentile=0.985))}

    def lowpass(self, waveform, cutoff_hz, filter_type):
        # lowpass_filtering_prepare_inference after its cutoff search, with the type it would draw given
        # (the original's lines: order 8, FloatTensor, cut or pad to the input length)
        filtered = utils_mod.lowpass(waveform.numpy(), highcut=float(cutoff_hz), fs=48000, order=8, _type=str(filter_type))
        filtered = torch.FloatTensor(filtered.copy())
        n = waveform.shape[-1]
        filtered = filtered[:n] if filtered.shape[-1] >= n else torch.nn.functional.pad(filtered, (0, n - filtered.shape[-1]))
        return {"waveform": filtered}

    def randomness(self, seed, latent_shape, count):
        # seed_everything, then the draws in the order generate_batch consumes them (ORACLE.md)
        pipeline_mod.seed_everything(int(seed))
        ftype = str(np.random.choice(["butter", "cheby1", "ellip", "bessel"]))
        draws = {f"draws.{i}": torch.randn(tuple(int(n) for n in latent_shape)) for i in range(int(count))}
        return {"filter_type": ftype, **draws}

    def condition_encode(self, log_mel):
        posterior = self.model.cond_stage_models[0].vae.encode(log_mel[None].unsqueeze(1))
        return {"mean": posterior.mean, "std": posterior.std}

    def unet(self, x, t, cond):
        return {"v": self.model.apply_model(x, t.long(), {COND_KEY: cond})}

    def ddim_schedule(self, steps):
        self._schedule(int(steps))
        s = self.sampler
        return {"timesteps": torch.as_tensor(np.asarray(s.ddim_timesteps, dtype=np.int64)),
                "alphas": torch.as_tensor(s.ddim_alphas).double(),
                "alphas_prev": torch.as_tensor(np.asarray(s.ddim_alphas_prev, dtype=np.float64)),
                "sigmas": torch.as_tensor(s.ddim_sigmas).double()}

    def ddim_step(self, x, cond, index, steps, guidance, noise):
        self._schedule(int(steps))
        model, index = self.model, int(index)
        t = torch.full((x.shape[0],), int(self.sampler.ddim_timesteps[index]), dtype=torch.long)
        # VAEFeatureExtract.forward leaves the unconditional condition behind as a side effect; its line:
        model.cond_stage_models[0].unconditional_cond = -11.4981 + cond[0].clone() * 0.0
        uncond = {COND_KEY: model.cond_stage_models[0].get_unconditional_condition(x.shape[0])}
        outputs = []
        real_apply = model.apply_model

        def apply_model(*a, **k):
            out = real_apply(*a, **k)
            outputs.append(out.clone())
            return out

        with patched(model, "apply_model", apply_model), patched(torch, "randn", lambda *a, **k: noise.clone()):
            x_prev, pred_x0 = self.sampler.p_sample_ddim(x, {COND_KEY: cond}, t, index,
                                                         unconditional_guidance_scale=float(guidance),
                                                         unconditional_conditioning=uncond)
        out = {"x_prev": x_prev, "pred_x0": pred_x0}
        if len(outputs) == 2:
            out["model_cond"], out["model_uncond"] = outputs
        return out

    def vae_decode(self, z):
        return {"mel": self.model.decode_first_stage(z)}

    def mel_replace(self, mel, lowpass_mel):
        return {"mel": self.model.mel_replace_ops(mel.clone(), lowpass_mel[:, 0])}

    def vocoder(self, mel):
        return {"waveform": torch.from_numpy(self.model.mel_spectrogram_to_waveform(mel, save=False))[0, 0]}

    def postprocess(self, waveform, lowpass_waveform):
        import librosa

        model = self.model
        out = model.postprocessing(waveform.numpy()[None, None].copy(), lowpass_waveform[None, None])
        x, voc = lowpass_waveform.numpy(), waveform.numpy()
        k = int(model._get_cutoff_index_np(x))
        # the energy ratio postprocessing computes, before its clamp (the original's expression)
        ratio = float(np.mean(np.sum(np.abs(librosa.stft(x)[k])) / np.sum(np.abs(librosa.stft(voc)[k, ...]))))
        return {"waveform": torch.from_numpy(np.ascontiguousarray(out[0, 0])), "cutoff_index": k, "energy_ratio": ratio}

    def output_level(self, waveform):
        # generate_batch has no function for its output level; these are its lines, verbatim
        waveform = waveform.numpy()[None, None]
        max_amp = np.max(np.abs(waveform), axis=-1)
        waveform = 0.5 * waveform / max_amp[..., None]
        mean_amp = np.mean(waveform, axis=-1)[..., None]
        waveform = waveform - mean_amp
        return {"waveform": torch.from_numpy(np.ascontiguousarray(waveform[0, 0]))}

    def enhance(self, waveform, rate, seed, steps, guidance, _workdir=None):
        import soundfile as sf

        path = Path(_workdir) / "enhance_input.wav"
        data = waveform.numpy()
        sf.write(str(path), data.T if data.ndim == 2 else data, int(rate), subtype="FLOAT")
        out = super_resolution(self.model, str(path), int(seed), int(steps), float(guidance))
        n = schema.enhance_length(data.shape[-1], int(rate))  # the length the harness compares over
        return {"waveform": torch.from_numpy(np.ascontiguousarray(out[0, 0]))[:n]}


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def cmd_serve(request: dict) -> dict:
    """Answer stage calls from stdin until EOF: one JSON line in, one JSON line out.

    In: {"stage", "inputs": safetensors path (tensor arguments), "args": {scalar arguments},
    "order": [argument names], "out": safetensors path}. Out: {"ok": true, "scalars": {...}} with
    the tensors in "out", or {"ok": false, "error": {"type", "message"}} when the original raised.
    """
    model, wreport = build_loaded(request)
    stages = _Stages(model)
    torch.set_grad_enabled(False)
    _REAL_STDOUT.write(json.dumps({"ok": True, "ready": True, "weights": wreport, "versions": versions()}) + "\n")
    _REAL_STDOUT.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        call = json.loads(line)
        if call.get("stage") == "quit":
            break
        try:
            tensors = load_file(call["inputs"]) if call.get("inputs") else {}
            args = dict(call.get("args") or {})
            kwargs = {name: tensors[name] if name in tensors else args[name] for name in call["order"]}
            if call["stage"] == "enhance":
                kwargs["_workdir"] = str(Path(call["out"]).parent)
            fresh(model)
            result = getattr(stages, call["stage"])(**kwargs)
            out_t = {k: to_tensor(v) for k, v in result.items() if isinstance(v, (torch.Tensor, np.ndarray))}
            out_t = {k: (v.float() if v.dtype == torch.float64 and k not in ("alphas", "alphas_prev", "sigmas") else v)
                     for k, v in out_t.items()}
            save_file({k: v.contiguous() for k, v in out_t.items()}, call["out"])
            scalars = {k: _jsonable(v) for k, v in result.items() if k not in out_t}
            reply = {"ok": True, "scalars": scalars, "tensors": sorted(out_t)}
        except Exception as exc:  # the original's behaviour is data
            traceback.print_exc(file=sys.stderr)
            reply = {"ok": False, "error": error_record(exc)}
        _REAL_STDOUT.write(json.dumps(reply) + "\n")
        _REAL_STDOUT.flush()
    return {"served": True}


# --------------------------------------------------------------------------- manifest


def cmd_manifest(request: dict) -> dict:
    preset = request["preset"]
    model = build(preset, request.get("overrides"))
    state = model.state_dict()
    keys = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in state.items()}
    groups: dict[str, int] = {}
    for k in state:
        g = group_of(k)
        groups[g] = groups.get(g, 0) + 1
    manifest = {
        "schema_version": 1,
        "source": {
            **versions(),
            "constructed_with": "audiosr.latent_diffusion.models.ddpm.LatentDiffusion(**config['model']['params'])",
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "state_dict_elements": int(sum(v.numel() for v in state.values())),
            "n_keys": len(keys),
            "groups": groups,
        },
        "preset": preset,
        "keys": keys,
    }
    if preset == "tiny":
        manifest["source"]["tiny_overrides"] = {"vae_ddconfig": TINY_VAE, "unet": TINY_UNET, "vocoder": TINY_VOCODER, "clap": "empty nn.Module"}
    elif request.get("overrides"):
        manifest["source"]["config_overrides"] = {**request["overrides"], "clap": "empty nn.Module"}
    out = request.get("out")
    if out:
        Path(out).write_text(json.dumps(manifest, indent=1) + "\n")
    return {"out": out, "n_keys": len(keys), "parameters": manifest["source"]["parameters"], "groups": groups, "versions": versions()}


def group_of(key: str) -> str:
    for prefix in (
        "model.diffusion_model.",
        "model_ema.",
        "clap.",
        "first_stage_model.encoder.",
        "first_stage_model.decoder.",
        "first_stage_model.quant_conv.",
        "first_stage_model.post_quant_conv.",
        "first_stage_model.vocoder.",
        "cond_stage_models.0.vae.encoder.",
        "cond_stage_models.0.vae.decoder.",
        "cond_stage_models.0.vae.quant_conv.",
        "cond_stage_models.0.vae.post_quant_conv.",
        "cond_stage_models.0.vae.vocoder.",
    ):
        if key.startswith(prefix):
            return prefix.rstrip(".")
    if key in SCHEDULE_BUFFERS:
        return "schedule"
    return key  # scale_factor, logvar


COMMANDS = {"manifest": cmd_manifest, "stages": cmd_stages, "end2end": cmd_end2end, "modules": cmd_modules,
            "serve": cmd_serve}


def main(argv: list[str]) -> int:
    if argv == ["selftest"]:  # importing this module already applied the shims and imported audiosr
        _REAL_STDOUT.write(json.dumps({"ok": True, "command": "selftest", "versions": versions()}) + "\n")
        return 0
    if len(argv) != 2 or argv[0] not in COMMANDS:
        result = {"ok": False, "error": {"type": "UsageError", "message": f"usage: runner.py {{{','.join(COMMANDS)}}} REQUEST.json"}}
        code = 2
    else:
        try:
            request = json.loads(Path(argv[1]).read_text())
            torch.set_grad_enabled(False)
            result = {"ok": True, "command": argv[0], **COMMANDS[argv[0]](request)}
            code = 0
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            result = {"ok": False, "command": argv[0], "error": error_record(exc)}
            code = 1
    _REAL_STDOUT.write(json.dumps(result) + "\n")
    _REAL_STDOUT.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
