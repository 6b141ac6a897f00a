"""Functional parity: OUR model against what the ORIGINAL computed, stage by stage.

`run_fixture_suite()` runs `model/` on every oracle fixture input
(``golden/oracle/tiny``, schema in ``golden/oracle/README.md``) with the
shared tiny random weights, and compares every stored stage with a stated
tolerance (`TOLERANCES`). Each arrow of the data flow is fed the ORIGINAL's
input for that arrow (teacher forcing: the UNet gets the stored x_T and
condition latent, the decoder the stored DDIM sample, the vocoder the stored
replaced mel), so a failing stage points at that stage, not at its inputs;
the end-to-end run then checks the whole chain from the audio file.

Randomness is injected: the DDIM trajectory uses the original's stored
noise draws; where an input stores only their sha256 (every 5.12 s input
shares them) the tensors of the input that stores them are used after the
digests agree.

Inputs on which the original raises (digital silence, energy only below
1 kHz: the low-pass design gets ``Wn = 1``) are recorded as behaviour rows:
the original's exception, and whether our pipeline ran without crashing.

Nothing prints; `functional_report` renders the result. The same comparison
code serves the live oracle tests (`compare_input` on fresh runner output).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from audiosr_verify.compare.tensors import StageComparison, compare_tensors, compare_values

DEFAULT_FIXTURES = "oracle/tiny"  # relative paths are taken inside the harness data (util.paths.data_dir)
DEFAULT_INPUTS = "inputs"
FILTER_TYPES = ("butter", "cheby1", "ellip", "bessel")

MODULE_ATOL = 1e-5
DDIM_ATOL = 1e-4
END2END_ATOL = 1e-4

# stage -> (atol, rtol, why). Patterns: "lowpass.*", "unet.out.t*", "ddim.step*.x".
TOLERANCES: dict[str, tuple[float, float, str]] = {
    "weights.digest": (0, 0, "the shared tiny weights regenerate bit for bit"),
    "resample.waveform": (0, 0, "same windowed-sinc kernel and conv1d as torchaudio"),
    "normalize.waveform": (0, 0, "same float32 arithmetic (numpy 1.x rounding reproduced)"),
    "features.log_mel": (0, 0, "same torch STFT, Slaney mel matrix and log"),
    "features.stft_bin_sum": (0, 0, "same torch STFT"),
    "features.stft_frames": (0, 0, "same torch STFT"),
    "features.cutoff_bin": (0, 0, "integer"),
    "random.filter_type": (0, 0, "np.random.choice after seeding"),
    "lowpass.*": (0, 0, "same scipy filter design and sosfiltfilt"),
    "lowpass.log_mel": (0, 0, "same features of the same low-pass signal"),
    "random.draws": (0, 0, "torch CPU generator, same order (sha256 of the raw draws)"),
    "cond.posterior_mean": (MODULE_ATOL, 0, "one VAE encoder forward in fp32"),
    "cond.posterior_std": (MODULE_ATOL, 0, "one VAE encoder forward in fp32"),
    "cond.latent": (MODULE_ATOL, 0, "mean + std * injected noise"),
    "unet.input": (MODULE_ATOL, 0, "concat of x_T and the scaled condition"),
    "unet.input_uncond": (MODULE_ATOL, 0, "concat of x_T and the scaled unconditional constant"),
    "unet.out.t*": (MODULE_ATOL, 0, "one UNet forward in fp32"),
    "unet.out_uncond.t*": (MODULE_ATOL, 0, "one UNet forward in fp32"),
    "ddim.timesteps": (0, 0, "integers"),
    "ddim.schedule": (0, 0, "a_t, a_prev, sigma_t with the original's dtypes"),
    "ddim.step*.model_cond": (MODULE_ATOL, 0, "UNet forward (batched with the unconditional branch here)"),
    "ddim.step*.model_uncond": (MODULE_ATOL, 0, "UNet forward (batched with the conditional branch here)"),
    "ddim.step*.pred_x0": (DDIM_ATOL, 0, "guidance 3.5 amplifies module error; free-running over the steps"),
    "ddim.step*.x_prev": (DDIM_ATOL, 0, "guidance 3.5 amplifies module error; free-running over the steps"),
    "mel.decoded": (MODULE_ATOL, 0, "one VAE decoder forward in fp32"),
    "mel.replace_cutoff_bin": (0, 0, "integer"),
    "mel.replaced": (0, 0, "a copy of columns"),
    "vocoder.waveform": (MODULE_ATOL, 0, "one HiFi-GAN forward in fp32"),
    "post.cutoff_index": (0, 0, "integer"),
    "post.energy_ratio": (0, 1e-6, "float32 sums of librosa-STFT magnitudes"),
    "post.waveform": (MODULE_ATOL, 0, "librosa STFT/ISTFT re-implemented in numpy (~1e-6) on our vocoder output"),
    "final.waveform": (MODULE_ATOL, 0, "peak and mean of the post-processed waveform"),
    "end2end.filter_type": (0, 0, "the seed picks the low-pass type"),
    "end2end.waveform": (END2END_ATOL, 0, "whole chain from the audio file, faithful level, seed 42"),
    "end2end.behaviour": (0, 0, "the original raises; ours must return finite audio of the input's length"),
}

# Pipeline order; `stage_rank` places names (and numbered DDIM steps) in it.
STAGE_ORDER = (
    "weights.digest",
    "resample.waveform", "normalize.waveform",
    "features.log_mel", "features.stft_bin_sum", "features.stft_frames", "features.cutoff_bin",
    "random.filter_type", "lowpass.butter", "lowpass.cheby1", "lowpass.ellip", "lowpass.bessel", "lowpass.log_mel",
    "random.draws",
    "cond.posterior_mean", "cond.posterior_std", "cond.latent",
    "unet.input", "unet.out.t*", "unet.input_uncond", "unet.out_uncond.t*",
    "ddim.timesteps", "ddim.schedule",
    "ddim.step*.model_cond", "ddim.step*.model_uncond", "ddim.step*.pred_x0", "ddim.step*.x_prev",
    "mel.decoded", "mel.replace_cutoff_bin", "mel.replaced",
    "vocoder.waveform",
    "post.cutoff_index", "post.energy_ratio", "post.waveform", "final.waveform",
    "end2end.filter_type", "end2end.waveform", "end2end.behaviour",
)


def _pattern(stage: str) -> str:
    """A stage name with its numbers replaced by ``*`` (``ddim.step1.x_prev`` -> ``ddim.step*.x_prev``)."""
    s = re.sub(r"step\d+", "step*", stage)
    return re.sub(r"\.t\d+$", ".t*", s)


def tolerance_for(stage: str) -> tuple[float, float, str]:
    if stage in TOLERANCES:
        return TOLERANCES[stage]
    if stage.startswith("lowpass.") and stage.split(".", 1)[1] in FILTER_TYPES:
        return TOLERANCES["lowpass.*"]
    return TOLERANCES[_pattern(stage)]


def stage_rank(stage: str) -> tuple[int, int, int]:
    """Sort key: position in the pipeline; DDIM steps by step number, UNet calls by timestep."""
    pat = "lowpass." + stage.split(".", 1)[1] if stage.startswith("lowpass.") else _pattern(stage)
    try:
        base = STAGE_ORDER.index(pat)
    except ValueError:
        base = len(STAGE_ORDER)
    step = re.search(r"step(\d+)", stage)
    t = re.search(r"\.t(\d+)$", stage)
    if step:  # all stages of step 0 before those of step 1
        first = STAGE_ORDER.index("ddim.step*.model_cond")
        return (first, int(step.group(1)), base)
    return (base, int(t.group(1)) if t else 0, 0)


# --------------------------------------------------------------------------- result


@dataclass
class FunctionalResult:
    comparisons: list[StageComparison] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    fixture_dir: str = ""
    preset: str = "tiny"
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)  # our code raised on a stage
    available: bool = True
    reason: str = ""

    @property
    def ok(self) -> bool | None:
        """True when every stage passes; None when the suite could not run (no fixtures)."""
        if not self.available:
            return None
        return not self.errors and all(c.passed for c in self.comparisons)

    passed = ok

    def failures(self) -> list[StageComparison]:
        return [c for c in self.ordered() if not c.passed]

    def ordered(self) -> list[StageComparison]:
        order = {n: i for i, n in enumerate(self.inputs)}
        return sorted(self.comparisons, key=lambda c: (stage_rank(c.name), order.get(c.input, len(order))))

    def first_failure(self) -> StageComparison | None:
        """The failing comparison earliest in pipeline order (then input order)."""
        bad = self.failures()
        return bad[0] if bad else None

    def get(self, stage: str, input: str) -> StageComparison | None:
        return next((c for c in self.comparisons if c.name == stage and c.input == input), None)

    def summary_line(self) -> str:
        if not self.available:
            return self.reason
        n = len(self.comparisons)
        bad = self.failures()
        exact = sum(1 for c in self.comparisons if c.identical)
        head = (f"{n - len(bad)}/{n} stage comparisons pass on {len(self.inputs)} inputs "
                f"({exact} bit-identical) in {self.seconds:.0f} s")
        if self.errors:
            head += f"; {len(self.errors)} stage(s) raised"
        if bad:
            first = bad[0]
            head += f"; first failure: {first.name} on {first.input} (max |diff| {first.max_abs:.3g})"
        return head

    def stage_rows(self) -> list[dict[str, Any]]:
        """One flat dict per comparison, in pipeline order (the report's table)."""
        rows = []
        for c in self.ordered():
            rows.append({
                "stage": c.name, "input": c.input,
                "shape": "x".join(map(str, c.shape)) if c.ours_shape is None else
                f"{'x'.join(map(str, c.ours_shape))} vs {'x'.join(map(str, c.shape))}",
                "max_abs": c.max_abs, "mean_abs": c.mean_abs, "max_rel": c.max_rel, "cosine": c.cosine,
                "min_passing_atol": c.min_passing_atol, "tolerance": c.tolerance_text(),
                "passed": c.passed, "note": c.note,
            })
        for r in rows:
            for k in ("max_abs", "mean_abs", "max_rel", "cosine", "min_passing_atol"):
                if not np.isfinite(r[k]):
                    r[k] = str(r[k])
        return rows

    def max_by_stage(self) -> list[dict[str, Any]]:
        """Worst case per stage over all inputs."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.ordered():
            key = c.name
            row = out.setdefault(key, {"stage": key, "inputs": 0, "max_abs": 0.0, "max_rel": 0.0,
                                       "tolerance": c.tolerance_text(), "passed": True})
            row["inputs"] += 1
            row["max_abs"] = max(row["max_abs"], c.max_abs)
            row["max_rel"] = max(row["max_rel"], c.max_rel)
            row["passed"] = row["passed"] and c.passed
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        first = self.first_failure()
        return {
            "available": self.available,
            "ok": self.ok,
            "summary": self.summary_line(),
            "preset": self.preset,
            "fixture_dir": self.fixture_dir,
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
            "inputs_checked": list(self.inputs),
            "first_failure": None if first is None else {"stage": first.name, "input": first.input},
            "stages": self.stage_rows(),
            "errors": list(self.errors),
            "tolerances": [{"stage": k, "atol": v[0], "rtol": v[1], "why": v[2]} for k, v in TOLERANCES.items()],
        }


class StopSuite(Exception):
    """Raised internally to stop at the first failure (``stop_at_first_failure``)."""


# --------------------------------------------------------------------------- the fixture side


@dataclass
class FixtureInput:
    """The original's stored tensors and metadata for one input, and the audio file."""

    name: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    audio_path: Path

    def has(self, stage: str) -> bool:
        return stage in self.tensors

    def ref(self, stage: str) -> torch.Tensor:
        from audiosr_verify.oracle import fixtures

        return fixtures.expand(self.tensors[stage], self.meta["tensors"][stage])

    def info(self, stage: str) -> dict[str, Any]:
        return self.meta["tensors"][stage]

    @property
    def level(self) -> str:
        return self.meta.get("level", "dsp")

    @property
    def chain(self) -> dict[str, Any]:
        return self.meta.get("chain") or {}


def _resolve(path: str | Path) -> Path:
    """An absolute path, one that exists from here, or a path inside the harness data."""
    from audiosr_verify.util.paths import data_dir

    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return data_dir() / p


def load_fixture_set(fixture_dir: str | Path, inputs_dir: str | Path,
                     names: Iterable[str] | None = None) -> tuple[dict[str, Any], list[FixtureInput]]:
    """(metadata.json, inputs in metadata order) of a fixture directory."""
    from safetensors.torch import load_file

    fdir, idir = _resolve(fixture_dir), _resolve(inputs_dir)
    meta = json.loads((fdir / "metadata.json").read_text())
    wanted = list(meta["inputs"]) if names is None else list(names)
    unknown = [n for n in wanted if n not in meta["inputs"]]
    if unknown:
        raise KeyError(f"{fdir}: no fixture input(s) {unknown}; have {sorted(meta['inputs'])}")
    out = []
    for name in wanted:
        m = meta["inputs"][name]
        out.append(FixtureInput(name, load_file(str(fdir / f"{name}.safetensors")), m, idir / m["file"]))
    return meta, out


# --------------------------------------------------------------------------- our side


@dataclass
class Settings:
    seed: int = 42
    steps: int = 2
    guidance: float = 3.5
    level: str = "faithful"
    mix: str = "first"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def tiny_network():
    """Our tiny network with the oracle's shared weights (cached; never mutated by the suite)."""
    return _tiny_network()


@functools.lru_cache(maxsize=1)
def _tiny_network():
    return shared_network("tiny")


def shared_network(preset: str = "tiny", weights: dict[str, torch.Tensor] | None = None):
    """A fresh network of ``preset`` loaded with the oracle's shared random weights.

    The weights are `export.shared_tiny_weights()` (or the given dict) plus
    our schedule buffers (the original computes its own; the fixtures compare
    them implicitly through the DDIM stages).
    """
    from audiosr_verify.oracle import export
    from audiosr_model import config as cfg
    from audiosr_model.checkpoint import load_into
    from audiosr_model.diffusion import schedule_buffers
    from audiosr_model.load import skeleton

    config = cfg.preset(preset)
    state = dict(weights if weights is not None else export.shared_tiny_weights())
    state.update(schedule_buffers(config.diffusion))
    net = skeleton(config)
    load_into(net, state, source=f"shared {preset} weights")
    return net.eval().requires_grad_(False)


def _sha256(t: torch.Tensor | np.ndarray) -> str:
    a = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
    return hashlib.sha256(a.tobytes()).hexdigest()


class _Run:
    """Comparisons of one input, collected in pipeline order."""

    def __init__(self, inp: FixtureInput, result: FunctionalResult, stop: bool):
        self.inp, self.result, self.stop = inp, result, stop

    def add(self, c: StageComparison) -> StageComparison:
        self.result.comparisons.append(c)
        if self.stop and not c.passed:
            raise StopSuite
        return c

    def tensor(self, stage: str, ours, note: str = "", ref: torch.Tensor | None = None) -> StageComparison:
        """Compare ours with the stored reference of ``stage`` (the stored prefix when trimmed)."""
        from audiosr_verify.oracle import fixtures

        atol, rtol, _ = tolerance_for(stage)
        ours = torch.as_tensor(ours) if not isinstance(ours, torch.Tensor) else ours
        if ref is None:
            ref = self.inp.ref(stage)
            try:
                ours = fixtures.comparable(ours, self.inp.info(stage))
            except ValueError as exc:  # our full length differs from the original's
                note = f"{note}; {exc}" if note else str(exc)
                return self.add(compare_tensors(stage, ours, ref, atol, rtol, self.inp.name, note))
        return self.add(compare_tensors(stage, ours, ref, atol, rtol, self.inp.name, note))

    def value(self, stage: str, ours, ref, note: str = "") -> StageComparison:
        return self.add(compare_values(stage, ours, ref, self.inp.name, note))

    def guarded(self, stage: str, fn: Callable[[], Any]):
        """Run our code for ``stage``; an exception becomes a failed comparison and an error."""
        try:
            return fn()
        except StopSuite:
            raise
        except Exception as exc:  # our pipeline must not raise where the original did not
            msg = f"{type(exc).__name__}: {exc}"
            self.result.errors.append({"stage": stage, "input": self.inp.name, "error": msg})
            self.add(compare_values(stage, "raised", "ran", self.inp.name, f"ours raised {msg}"))
            return None


def _read_mono48(inp: FixtureInput, run: _Run, mix: str) -> tuple[np.ndarray, float] | None:
    """(our 48 kHz mono waveform, the input's duration); compares the resampling."""
    from audiosr_model import audio, resample

    wave, sr = audio.read_audio(inp.audio_path)
    duration = wave.shape[-1] / sr
    if sr != 48000:
        res = resample.resample(torch.from_numpy(wave), sr, 48000)
        if inp.has("resample.waveform"):
            run.tensor("resample.waveform", res[0])
        wave = res.numpy()
    return audio.to_mono(wave, mix), duration


def dsp_stages(inp: FixtureInput, run: _Run, settings: Settings):
    """Resample, normalise, features, cutoff, the four low-pass types, low-pass mel. Returns our `Prepared`."""
    from audiosr_model import level, lowpass
    from audiosr_model.pipeline import Randomness, prepare

    mono, duration = _read_mono48(inp, run, settings.mix)
    normalised = level.normalize_input(mono)  # what the pipeline uses (the original's bits, plus guards)
    run.tensor("normalize.waveform", normalised)
    rng = Randomness(settings.seed)
    prep = run.guarded("features.log_mel", lambda: prepare(normalised, duration, rng, None))
    if prep is None:
        return None, mono, duration
    meta = inp.meta
    run.tensor("features.log_mel", prep.log_mel)
    run.tensor("features.stft_bin_sum", prep.stft.abs().sum(dim=0))
    frames = inp.info("features.stft_frames").get("frame_index")
    run.tensor("features.stft_frames", prep.stft[frames])
    run.value("features.cutoff_bin", lowpass.locate_cutoff_bin(prep.stft), meta["cutoff_bin"],
              f"cutoff {meta['cutoff_hz']:.0f} Hz, used {meta['cutoff_hz_used']:.0f} Hz")
    run.value("random.filter_type", prep.filter_type, meta["filter_type_for_seed"])
    errors = meta.get("errors", {})
    for ftype in FILTER_TYPES:
        stage = f"lowpass.{ftype}"
        if stage in errors:
            err = errors[stage]
            out = run.guarded(stage, lambda: lowpass.lowpass_or_passthrough(
                prep.waveform[0], prep.cutoff_hz, 48000, order=8, ftype=ftype))
            if out is not None:
                run.value(stage, "ran", "ran", f"original raises {err['type']}: {err['message']}; "
                          f"ours passes the signal through (cutoff {prep.cutoff_hz:.0f} Hz)")
            continue
        if not inp.has(stage):
            continue
        if ftype == prep.filter_type:
            ours = prep.waveform_lowpass
        else:
            ours = run.guarded(stage, lambda: lowpass.lowpass_or_passthrough(
                prep.waveform[0], prep.cutoff_hz, 48000, order=8, ftype=ftype))
            if ours is None:
                continue
        run.tensor(stage, torch.from_numpy(np.ascontiguousarray(ours, dtype=np.float32)))
    if inp.has("lowpass.log_mel"):
        run.tensor("lowpass.log_mel", prep.lowpass_mel)
    return prep, mono, duration


# --------------------------------------------------------------------------- the generative chain


@dataclass
class Draws:
    """The original's random draws after the filter choice: #1..#5 (torch.randn)."""

    tensors: list[torch.Tensor]
    source: str


def find_draws(inputs: list[FixtureInput]) -> Draws | None:
    """The stored draws of a `full` input (x_T, condition noise, per-step noise)."""
    for inp in inputs:
        if inp.has("ddim.x_T") and inp.has("noise.cond_posterior"):
            steps = sorted(int(m.group(1)) for k in inp.tensors if (m := re.fullmatch(r"noise\.ddim_step(\d+)", k)))
            draws = [None, inp.ref("noise.cond_posterior"), inp.ref("ddim.x_T")] + [
                inp.ref(f"noise.ddim_step{i}") for i in steps]
            return Draws(draws, inp.name)
    return None


def _draws_for(inp: FixtureInput, run: _Run, shared: Draws | None, settings: Settings, shape) -> list | None:
    """Injected noise for this input, checked against the sha256 of the original's draws."""
    from audiosr_model.pipeline import Randomness

    recorded = inp.chain.get("random_draws") or []
    rng = Randomness(settings.seed)
    rng.choose_filter()
    ours = [rng.randn(shape) for _ in range(len(recorded) or 3 + settings.steps)]
    if recorded:
        run.value("random.draws", [_sha256(t) for t in ours], [d["sha256"] for d in recorded],
                  f"{len(recorded)} torch.randn draws of {list(shape)}: sha256 of ours vs the original's")
    if shared is not None and recorded and len(shared.tensors) == len(recorded):
        same = all(s is None or _sha256(s) == d["sha256"] for s, d in zip(shared.tensors, recorded))
        if same:
            return [s if s is not None else o for s, o in zip(shared.tensors, ours)]
    if recorded and all(_sha256(o) == d["sha256"] for o, d in zip(ours, recorded)):
        return ours  # our generator reproduces the original's draws bit for bit
    return None


def chain_stages(net, inp: FixtureInput, run: _Run, prep, shared: Draws | None, settings: Settings) -> None:
    """Condition encoder, UNet, DDIM, decoder, mel replacement, vocoder, post-processing."""
    from audiosr_model import lowpass, postprocess
    from audiosr_model.diffusion import ddim_sample, guided_denoiser, make_ddim_schedule

    chain = inp.chain
    low_mel = inp.ref("lowpass.log_mel")[None, None]
    with torch.no_grad():
        post = net.condition_posterior(low_mel)
    run.tensor("cond.posterior_mean", post.mean)
    run.tensor("cond.posterior_std", post.std)
    draws = _draws_for(inp, run, shared, settings, tuple(post.mean.shape))
    if draws is None:
        run.value("random.draws", "unavailable", "stored", "no stored or reproducible noise: DDIM stages skipped")
        return
    ref_mean, ref_std = inp.ref("cond.posterior_mean"), inp.ref("cond.posterior_std")
    if inp.has("cond.latent"):
        cond_ref, how = inp.ref("cond.latent"), "stored"
    else:  # the README's rule; the digest says whether it is the original's tensor bit for bit
        cond_ref = ref_mean + ref_std * draws[1]
        same = _sha256(cond_ref) == chain.get("cond_latent", {}).get("sha256")
        how = "rebuilt as mean + std * draw #2 (" + ("sha256 equals the original's)" if same else "sha256 DIFFERS)")
    run.tensor("cond.latent", post.sample(draws[1]), ref=cond_ref, note=how)
    x_T = draws[2]
    if inp.has("ddim.x_T"):
        x_T = inp.ref("ddim.x_T")
    _unet_fixed(net, inp, run, x_T, cond_ref)

    schedule = make_ddim_schedule(net.alphas_cumprod, settings.steps, net.config.diffusion.ddim_eta)
    detail = chain.get("ddim_steps_detail") or []
    run.value("ddim.timesteps", [int(t) for t in schedule.timesteps], chain.get("ddim_timesteps"))
    keys = ("a_t", "a_prev", "sigma_t")
    ours_detail = [[float(schedule.alphas[i]), float(schedule.alphas_prev[i]), float(schedule.sigmas[i])]
                   for i in reversed(range(len(schedule)))]  # in sampling order, as recorded
    ref_detail = [[float(d[k]) for k in keys] for d in detail]
    if len(ours_detail) == len(ref_detail):
        o64, r64 = np.asarray(ours_detail), np.asarray(ref_detail)
        rel = float(np.max(np.abs(o64 - r64) / np.abs(r64))) if r64.size else 0.0
        # the step uses them as float32: compare what it uses, report the float64 difference
        run.tensor("ddim.schedule", torch.tensor(o64, dtype=torch.float32), ref=torch.tensor(r64, dtype=torch.float32),
                   note=f"a_t, a_prev, sigma_t per step as the step uses them (float32); float64 max rel diff "
                        f"{rel:.2g} (the original's sigma divides ndarray by tensor: a float32 reciprocal)")
    else:
        run.value("ddim.schedule", len(ours_detail), len(ref_detail), "number of DDIM steps")
    sf = net.scale_factor
    branch_outputs: list[torch.Tensor] = []

    def unet(x, t):
        out = net.unet(x, t)
        branch_outputs.append(out)
        return out

    denoise = guided_denoiser(unet, cond_ref * sf, net.unconditional_latent(cond_ref) * sf, settings.guidance)
    noise = iter(draws[3:])
    x = x_T
    with torch.no_grad():
        for i, step in enumerate(ddim_sample(denoise, x_T, schedule, net.vprediction(), lambda shape: next(noise))):
            if i == 0 and inp.has("ddim.step0.model_cond"):
                both = branch_outputs[0]
                cond_out, uncond_out = both.chunk(2) if both.shape[0] == 2 * x_T.shape[0] else (both, None)
                run.tensor("ddim.step0.model_cond", cond_out)
                if uncond_out is not None and inp.has("ddim.step0.model_uncond"):
                    run.tensor("ddim.step0.model_uncond", uncond_out)
            if inp.has(f"ddim.step{i}.pred_x0"):
                run.tensor(f"ddim.step{i}.pred_x0", step.pred_x0)
                run.tensor(f"ddim.step{i}.x_prev", step.x)
            x = step.x
    last = len(schedule) - 1
    sample_ref = inp.ref(f"ddim.step{last}.x_prev") if inp.has(f"ddim.step{last}.x_prev") else x
    with torch.no_grad():
        decoded = net.decode(sample_ref)
    run.tensor("mel.decoded", decoded)

    decoded_ref = inp.ref("mel.decoded")
    run.value("mel.replace_cutoff_bin", int(lowpass.locate_cutoff_bin(torch.exp(low_mel[0, 0]))),
              chain.get("mel_replace_cutoff_bin"))
    replaced = postprocess.mel_replace(decoded_ref, low_mel)
    if inp.has("mel.replaced"):
        replaced_ref = inp.ref("mel.replaced")
        run.tensor("mel.replaced", replaced)
    else:
        replaced_ref = decoded_ref.clone()
        k = chain["mel_replace_cutoff_bin"]
        replaced_ref[..., :k] = low_mel[..., :k]
        run.tensor("mel.replaced", replaced, ref=replaced_ref, note="reference rebuilt by the README's rule")
    with torch.no_grad():
        wave = net.vocode(replaced_ref)[0, 0]
    run.tensor("vocoder.waveform", wave)
    if chain.get("vocoder_length") is not None and wave.shape[-1] != chain["vocoder_length"]:
        return  # the length check above failed already; post-processing would not line up

    low = prep.waveform_lowpass
    voc = wave.numpy()
    run.value("post.cutoff_index", lowpass.cutoff_index_np(low), chain.get("post_cutoff_index"))
    ratio = _raw_energy_ratio(low, voc, lowpass.cutoff_index_np(low))
    atol, rtol, _ = tolerance_for("post.energy_ratio")
    run.add(compare_tensors("post.energy_ratio", torch.tensor(float(ratio), dtype=torch.float64),
                            torch.tensor(chain.get("post_energy_ratio_raw", float("nan")), dtype=torch.float64),
                            atol, rtol, inp.name, f"clamped to {chain.get('post_energy_ratio')}"))
    post_out = postprocess.stft_replace_postprocess(voc, low)
    same = _sha256(np.asarray(post_out, np.float32)) == chain.get("post_full", {}).get("sha256")
    run.tensor("post.waveform", torch.from_numpy(np.asarray(post_out, np.float32)),
               note="full length bit-identical" if same else "on our vocoder output")
    final = postprocess.faithful_output_level(np.asarray(post_out, np.float32)).astype(np.float32)
    same = _sha256(final) == chain.get("final", {}).get("sha256")
    run.tensor("final.waveform", torch.from_numpy(final), note="full length bit-identical" if same else "")


def _raw_energy_ratio(low: np.ndarray, voc: np.ndarray, k: int) -> float:
    """The unclamped energy ratio the original computes (to compare with ``post_energy_ratio_raw``)."""
    from audiosr_model.audio import numpy1_sum
    from audiosr_model.features import librosa_stft

    gt, out = librosa_stft(low), librosa_stft(voc)
    return float(np.mean(numpy1_sum(np.abs(gt[k])) / numpy1_sum(np.abs(out[k, ...]))))


def _unet_fixed(net, inp: FixtureInput, run: _Run, x_T: torch.Tensor, cond_ref: torch.Tensor) -> None:
    """UNet at fixed timesteps on the stored x_T and condition (the `full` input only)."""
    fixed = sorted(int(k.rsplit("t", 1)[1]) for k in inp.tensors if re.fullmatch(r"unet\.out\.t\d+", k))
    uncond = sorted(int(k.rsplit("t", 1)[1]) for k in inp.tensors if re.fullmatch(r"unet\.out_uncond\.t\d+", k))
    if not fixed and not uncond:
        return
    seen: list[torch.Tensor] = []
    handle = net.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            outs = {t: net.unet_forward(x_T, torch.full((x_T.shape[0],), t, dtype=torch.long), cond_ref)
                    for t in fixed}
            unc_latent = net.unconditional_latent(cond_ref)
            outs_unc = {t: net.unet_forward(x_T, torch.full((x_T.shape[0],), t, dtype=torch.long), unc_latent)
                        for t in uncond}
    finally:
        handle.remove()
    cond_input, uncond_input = (seen[0] if fixed else None), (seen[-1] if uncond else None)
    stored_input = inp.ref("unet.input") if inp.has("unet.input") else None
    c = x_T.shape[1]
    is_uncond = stored_input is not None and bool(
        (stored_input[:, c:] == stored_input[:, c:].flatten()[0]).all())
    if stored_input is not None and not is_uncond and cond_input is not None:
        run.tensor("unet.input", cond_input, ref=stored_input)
    for t in fixed:
        run.tensor(f"unet.out.t{t}", outs[t])
    if stored_input is not None and is_uncond and uncond_input is not None:
        run.tensor("unet.input_uncond", uncond_input, ref=stored_input,
                   note="the fixture's unet.input is the input of the last (unconditional) UNet call")
    for t in uncond:
        run.tensor(f"unet.out_uncond.t{t}", outs_unc[t])


def end_to_end(net, inp: FixtureInput, run: _Run, mono: np.ndarray, duration: float, settings: Settings) -> None:
    """Our whole pipeline from the 48 kHz mono signal, seeded as the original."""
    from audiosr_model.pipeline import Randomness, enhance_segment

    e2e = inp.meta.get("end2end") or {}
    chosen: list[str] = []

    def go():
        out = enhance_segment(net, mono, duration, Randomness(settings.seed), settings.steps, settings.guidance,
                              settings.level, None)
        chosen.append(out.filter_type)
        return out

    if "error" in e2e:
        out = run.guarded("end2end.behaviour", go)
        if out is None:
            return
        w = out.waveform
        ok = w.shape[-1] == mono.shape[-1] and bool(np.isfinite(w).all())
        what = "silent input: zeros" if out.silent else (
            f"cutoff {out.cutoff_hz:.0f} Hz, no low-pass" if out.cutoff_hz and out.cutoff_hz >= 24000 else "ran")
        run.value("end2end.behaviour", "finite output of the input's length" if ok else "bad output",
                  "finite output of the input's length",
                  f"original raises {e2e['error']['type']}: {e2e['error']['message']}; ours: {what}, "
                  f"peak {float(np.max(np.abs(w))) if w.size else 0:.3g}")
        return
    if not inp.has("final.waveform"):
        return
    out = run.guarded("end2end.waveform", go)
    if out is None:
        return
    if e2e.get("filter_type") is not None:
        run.value("end2end.filter_type", out.filter_type, e2e["filter_type"])
    run.tensor("end2end.waveform", torch.from_numpy(out.waveform), ref=inp.ref("final.waveform"),
               note=f"{settings.steps} DDIM steps, guidance {settings.guidance}, level {settings.level}")


def compare_input(net, inp: FixtureInput, result: FunctionalResult, settings: Settings,
                  shared: Draws | None = None, end2end: bool = True, stop: bool = False) -> None:
    """Every stage of one input that the oracle stored (DSP; chain and end to end by level)."""
    run = _Run(inp, result, stop)
    result.inputs.append(inp.name)
    prep, mono, duration = dsp_stages(inp, run, settings)
    if prep is None:
        return
    if inp.level in ("chain", "full") and inp.has("cond.posterior_mean"):
        chain_stages(net, inp, run, prep, shared, settings)
    if end2end:
        end_to_end(net, inp, run, mono, duration, settings)


def run_fixture_suite(
    fixture_dir: str | Path = DEFAULT_FIXTURES,
    inputs_dir: str | Path = DEFAULT_INPUTS,
    *,
    inputs: Iterable[str] | None = None,
    net=None,
    end2end: bool = True,
    stop_at_first_failure: bool = False,
    progress: Callable[[str], None] | None = None,
) -> FunctionalResult:
    """Our model against the original's stored stages, every input of ``fixture_dir``.

    ``net``: the network to test (default: ours with the shared tiny weights).
    ``stop_at_first_failure``: stop at the first stage (in each input's
    pipeline order) that fails; used by the injected-fault tests.
    """
    start = time.monotonic()
    fdir = _resolve(fixture_dir)
    result = FunctionalResult(fixture_dir=str(fixture_dir))
    if not (fdir / "metadata.json").exists():
        result.available, result.reason = False, f"no oracle fixtures at {fdir} (audiosr-verify oracle export)"
        return result
    meta, items = load_fixture_set(fdir, inputs_dir, inputs)
    settings = Settings(seed=int(meta.get("seed", 42)), steps=int(meta.get("ddim_steps", 2)),
                        guidance=float(meta.get("guidance_scale", 3.5)))
    result.preset = meta.get("preset", "tiny")
    result.settings = settings.to_dict()
    if net is None:
        net = tiny_network()
    # the weights the fixtures were made with must be the ones we load
    from audiosr_verify.oracle import export

    digest = export.weights_digest(export.shared_tiny_weights())
    result.comparisons.append(compare_values("weights.digest", digest[:16], meta["weights"]["digest"][:16], "*"))
    shared = find_draws(items)
    if shared is None:  # a subset without the input that stores the draws
        full = [n for n, level in meta.get("levels", {}).items() if level == "full"]
        shared = find_draws(load_fixture_set(fdir, inputs_dir, full[:1])[1]) if full else None
    try:
        for inp in items:
            if progress:
                progress(f"{inp.name} ({inp.level})")
            compare_input(net, inp, result, settings, shared, end2end, stop_at_first_failure)
    except StopSuite:
        pass
    result.seconds = time.monotonic() - start
    return result


if __name__ == "__main__":  # pragma: no cover - convenience
    import sys

    from audiosr_verify.report.stages import print_result

    res = run_fixture_suite(progress=lambda m: print(m, file=sys.stderr))
    print_result(res)
    sys.exit(0 if res.ok else 1)
