"""The teacher-forced view of stage parity: each stage fed the ORIGINAL's inputs for it.

One loop (`teacher_view`) walks the schema's stages in pipeline order (`schema.STAGE_NAMES`) and runs
the step `TEACHER_STEPS` holds for each: what the stage is fed and which of the original's tensors its
outputs are compared with. A step runs when the subject provides its stage and the input stores what
it needs (``needs``: the condition chain, or the chain and the original's random draws); its
``prepare`` runs before that, also for a stage the subject does not provide, for what later steps take
from the original's tensors. A failing stage therefore points at that stage, not at its inputs. Where
the original's input is not stored whole (a waveform kept only as a prefix) the stage gets the
subject's own upstream output and the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from audiosr_verify import schema
from audiosr_verify.checks.stage_run import (
    FILTER_TYPES, Settings, StageRun, as_tensor, channel0, cond_reference, draws_for, pad_to_original, read_audio,
    tolerance_for,
)
from audiosr_verify.compare.tensors import compare_tensors
from audiosr_verify.oracle.fixtures import Draws
from audiosr_verify.util.hashing import sha256_array


class Teacher:
    """What the teacher view feeds the stages of one input: the original's stored tensors and draws, and
    what an earlier step hands on (the subject's vocoder output, its post-processed waveform)."""

    def __init__(self, run: StageRun, settings: Settings, shared: Draws | None):
        self.run, self.settings, self.shared = run, settings, shared
        self.inp, self.meta = run.inp, run.inp.meta
        self.wave, self.rate = read_audio(self.inp)
        self.padded: np.ndarray | None = None  # the original's normalized waveform, padded (if stored whole)
        self._chain: bool | None = None
        self._draws_ok: bool | None = None
        self.draws: list[torch.Tensor] | None = None
        self.low_mel: torch.Tensor | None = None
        self.cond_ref: torch.Tensor | None = None
        self.cond_how = ""
        self.x_T: torch.Tensor | None = None
        self.decoded_ref: torch.Tensor | None = None
        self.replaced_ref: torch.Tensor | None = None
        self.replaced_note = ""
        self.voc: torch.Tensor | None = None
        self.post: torch.Tensor | None = None

    def ready(self, needs: str) -> bool:
        """Whether the input stores what a step needs: "" (always), "chain" (the condition chain) or
        "draws" (the chain and the original's random draws; noted once when they are not available)."""
        if not needs:
            return True
        if self._chain is None:
            inp = self.inp
            self._chain = inp.level in ("chain", "full") and inp.has("cond.posterior_mean")
            if self._chain:
                self.draws = draws_for(inp, self.shared)
                self.low_mel = inp.ref("lowpass.log_mel")
                self.cond_ref, self.cond_how = cond_reference(inp, self.draws)
        if not self._chain or needs == "chain":
            return self._chain
        if self._draws_ok is None:
            self._draws_ok = self.draws is not None and self.cond_ref is not None
            if not self._draws_ok:
                self.run.result.notes.append(f"{self.inp.name}: the original's random draws are not available; "
                                             "DDIM stages skipped")
            else:
                self.x_T = self.inp.ref("ddim.x_T") if self.inp.has("ddim.x_T") else self.draws[2]
        return self._draws_ok


@dataclass(frozen=True)
class TeacherStep:
    """How the teacher view checks one schema stage."""

    stage: str
    run: Callable[[Teacher], None]  # call the stage on the original's inputs and compare its outputs
    needs: str = ""  # "" | "chain" | "draws" (Teacher.ready)
    when: Callable[[Teacher], bool] = lambda t: True  # and the input stores what the call is fed
    prepare: Callable[[Teacher], None] | None = None  # before the stage, provided or not


def teacher_view(run: StageRun, settings: Settings, shared: Draws | None) -> None:
    """Every stage the subject provides, fed the original's inputs, in the schema's pipeline order."""
    t = Teacher(run, settings, shared)
    for stage in schema.STAGE_NAMES:
        step = TEACHER_STEPS[stage]
        if not t.ready(step.needs):
            continue
        if step.prepare is not None:
            step.prepare(t)
        if run.can(stage) and step.when(t):
            step.run(t)


# --------------------------------------------------------------------------- DSP stages


def _resample(t: Teacher) -> None:
    out = t.run.call("resample", t.wave, t.rate)
    if out is not None:
        t.run.tensor("resample.waveform", channel0(out["waveform"]), "channel 0 of the resampled channels")


def _normalize(t: Teacher) -> None:
    """Its input is the whole resampled channel 0."""
    if t.rate == 48000:
        src, note = t.wave[0], ""
    elif t.inp.complete("resample.waveform"):
        src, note = t.inp.ref("resample.waveform").numpy(), ""
    else:
        return
    out = t.run.call("normalize", src)
    if out is not None:
        t.run.tensor("normalize.waveform", out["waveform"], note)


def _pad_original(t: Teacher) -> None:
    inp = t.inp
    t.padded = pad_to_original(inp.ref("normalize.waveform"), inp) if inp.complete("normalize.waveform") else None


def _features(t: Teacher) -> None:
    """Features of the original's padded waveform."""
    out = t.run.call("features", t.padded)
    if out is not None:
        t.run.tensor("features.log_mel", out["log_mel"])
        stft = as_tensor(out["stft"]).float()
        t.run.tensor("features.stft_bin_sum", stft.abs().sum(dim=0))
        frames = t.inp.info("features.stft_frames").get("frame_index")
        t.run.tensor("features.stft_frames", stft[frames])


def _cutoff(t: Teacher) -> None:
    """Of the original's STFT: its per-bin sums are what the finder accumulates (one frame)."""
    out = t.run.call("cutoff", t.inp.ref("features.stft_bin_sum")[None])
    if out is not None:
        t.run.value("features.cutoff_bin", int(out["bin"]), t.meta["cutoff_bin"],
                    f"input: the original's per-bin STFT sums as one frame; cutoff {t.meta['cutoff_hz']:.0f} Hz")


def _lowpass(t: Teacher) -> None:
    """The four low-pass types on the original's padded waveform."""
    run, meta, padded = t.run, t.meta, t.padded
    errors = meta.get("errors", {})
    for ftype in FILTER_TYPES:
        name = f"lowpass.{ftype}"
        if name in errors:
            run.behaviour("lowpass", name, (padded, meta["cutoff_hz_used"], ftype), errors[name], padded.size)
        elif t.inp.has(name):
            out = run.call("lowpass", padded, meta["cutoff_hz_used"], ftype)
            if out is not None:
                run.tensor(name, out["waveform"])


def _randomness(t: Teacher) -> None:
    """Does the subject reproduce the original's draws from the seed?"""
    run, meta = t.run, t.meta
    recorded = t.inp.chain.get("random_draws") or []
    shape = recorded[0]["shape"] if recorded else [1, 16, int(meta["target_frame"]) // 8, 32]
    out = run.call("randomness", t.settings.seed, tuple(shape), len(recorded))
    if out is not None:
        run.value("random.filter_type", str(out["filter_type"]), meta["filter_type_for_seed"])
        if recorded:
            ours = [sha256_array(as_tensor(d).float()) for d in out["draws"]]
            run.value("random.draws", ours, [d["sha256"] for d in recorded],
                      f"{len(recorded)} torch.randn draws of {list(shape)}: sha256 of the subject's vs the original's")


# --------------------------------------------------------------------------- the condition chain


def _condition_encode(t: Teacher) -> None:
    out = t.run.call("condition_encode", t.low_mel)
    if out is not None:
        t.run.tensor("cond.posterior_mean", out["mean"])
        t.run.tensor("cond.posterior_std", out["std"])
        if t.draws is not None and t.cond_ref is not None:
            latent = as_tensor(out["mean"]).float() + as_tensor(out["std"]).float() * t.draws[1]
            t.run.tensor("cond.latent", latent, ref=t.cond_ref, note=f"reference {t.cond_how}")


def _unet(t: Teacher) -> None:
    """The UNet alone at fixed timesteps (the `full` input)."""
    x_T, cond_ref = t.x_T, t.cond_ref
    for name in sorted(k for k in t.inp.tensors if k.startswith(("unet.out.t", "unet.out_uncond.t"))):
        step = int(name.rsplit(".t", 1)[1])
        cond = cond_ref if name.startswith("unet.out.t") else torch.full_like(cond_ref, schema.UNCONDITIONAL_CONSTANT)
        out = t.run.call("unet", x_T, torch.full((x_T.shape[0],), step, dtype=torch.long), cond)
        if out is not None:
            t.run.tensor(name, out["v"])


def _ddim_schedule(t: Teacher) -> None:
    out = t.run.call("ddim_schedule", t.settings.steps)
    if out is not None:
        _compare_schedule(t.run, out, t.inp.chain)


def _compare_schedule(run: StageRun, out: dict[str, Any], chain: dict[str, Any]) -> None:
    timesteps = [int(x) for x in np.asarray(as_tensor(out["timesteps"]).numpy()).reshape(-1)]
    run.value("ddim.timesteps", timesteps, chain.get("ddim_timesteps"))
    detail = chain.get("ddim_steps_detail") or []
    keys = ("a_t", "a_prev", "sigma_t")
    cols = [np.asarray(as_tensor(out[k]).double().numpy()).reshape(-1) for k in ("alphas", "alphas_prev", "sigmas")]
    ours = np.stack(cols, axis=1)[::-1] if cols[0].size else np.zeros((0, 3))  # sampling order, as recorded
    ref = np.asarray([[float(d[k]) for k in keys] for d in detail], dtype=np.float64)
    if ours.shape != ref.shape:
        run.value("ddim.schedule", len(ours), len(ref), "number of DDIM steps")
        return
    rel = float(np.max(np.abs(ours - ref) / np.abs(ref))) if ref.size else 0.0
    run.tensor("ddim.schedule", torch.tensor(ours.copy(), dtype=torch.float32),
               ref=torch.tensor(ref, dtype=torch.float32),
               note=f"a_t, a_prev, sigma_t per step as the step uses them (float32); float64 max rel diff {rel:.2g}")


def _ddim_step(t: Teacher) -> None:
    inp, steps = t.inp, t.settings.steps
    for i in range(steps):
        # A step is checked where its outputs are stored and so is its input (the previous step's x_prev):
        # a fixture set may keep a subset of a long trajectory (oracle/user_fixtures.py).
        if not inp.has(f"ddim.step{i}.pred_x0") or (i > 0 and not inp.has(f"ddim.step{i - 1}.x_prev")):
            continue
        x = t.x_T if i == 0 else inp.ref(f"ddim.step{i - 1}.x_prev")
        out = t.run.call("ddim_step", x, t.cond_ref, steps - 1 - i, steps, t.settings.guidance, t.draws[3 + i])
        if out is None:
            continue
        for key in ("model_cond", "model_uncond"):
            if inp.has(f"ddim.step{i}.{key}") and out.get(key) is not None:
                t.run.tensor(f"ddim.step{i}.{key}", out[key])
        t.run.tensor(f"ddim.step{i}.pred_x0", out["pred_x0"])
        t.run.tensor(f"ddim.step{i}.x_prev", out["x_prev"])


def _last_x_prev(t: Teacher) -> str:
    return f"ddim.step{t.settings.steps - 1}.x_prev"


def _vae_decode(t: Teacher) -> None:
    out = t.run.call("vae_decode", t.inp.ref(_last_x_prev(t)))
    if out is not None:
        t.run.tensor("mel.decoded", out["mel"])


def _mel_references(t: Teacher) -> None:
    """The original's decoded and replaced mel (the latter rebuilt by the README's rule when not stored)."""
    inp = t.inp
    t.decoded_ref = inp.ref("mel.decoded")
    if inp.has("mel.replaced"):
        t.replaced_ref, t.replaced_note = inp.ref("mel.replaced"), ""
    else:
        t.replaced_ref = t.decoded_ref.clone()
        k = inp.chain["mel_replace_cutoff_bin"]
        t.replaced_ref[..., :k] = t.low_mel[None, None][..., :k]
        t.replaced_note = "reference rebuilt by the README's rule"


def _mel_replace(t: Teacher) -> None:
    out = t.run.call("mel_replace", t.decoded_ref, t.low_mel[None, None])
    if out is not None:
        t.run.tensor("mel.replaced", out["mel"], t.replaced_note, ref=t.replaced_ref)


def _vocoder(t: Teacher) -> None:
    out = t.run.call("vocoder", t.replaced_ref)
    if out is not None:
        t.voc = as_tensor(out["waveform"]).float().reshape(-1)
        t.run.tensor("vocoder.waveform", t.voc)


def _postprocess_fed(t: Teacher) -> bool:
    """Post-processing needs the whole vocoder output and low-passed input, which are stored only as
    prefixes: it gets the subject's own vocoder output (of the original's mel) and low-pass (of the
    original's padded waveform, cutoff and filter type)."""
    return t.voc is not None and t.run.can("lowpass") and t.inp.complete("normalize.waveform")


def _postprocess(t: Teacher) -> None:
    run, inp, chain, voc = t.run, t.inp, t.inp.chain, t.voc
    if voc.shape[-1] != chain.get("vocoder_length", voc.shape[-1]):
        return  # the vocoder's length check failed already; nothing downstream lines up
    low = run.call("lowpass", pad_to_original(inp.ref("normalize.waveform"), inp), inp.meta["cutoff_hz_used"],
                   inp.meta["filter_type_for_seed"])
    if low is None:
        return
    out = run.call("postprocess", voc, low["waveform"])
    if out is None:
        return
    note = "input: the subject's vocoder output (of the original's mel) and its own low-pass"
    if out.get("cutoff_index") is not None:
        run.value("post.cutoff_index", int(out["cutoff_index"]), chain.get("post_cutoff_index"))
    if out.get("energy_ratio") is not None:
        atol, rtol, _ = tolerance_for("post.energy_ratio", run.view)
        run.add(compare_tensors("post.energy_ratio", torch.tensor(float(out["energy_ratio"]), dtype=torch.float64),
                                torch.tensor(chain.get("post_energy_ratio_raw", float("nan")), dtype=torch.float64),
                                atol, rtol, inp.name, f"unclamped; clamped to {chain.get('post_energy_ratio')}"))
    post = as_tensor(out["waveform"]).float().reshape(-1)
    same = sha256_array(post) == chain.get("post_full", {}).get("sha256")
    run.tensor("post.waveform", post, "full length bit-identical" if same else note)
    t.post = post


def _output_level(t: Teacher) -> None:
    """Of the subject's post-processed waveform."""
    final = t.run.call("output_level", t.post)
    if final is not None:
        f = as_tensor(final["waveform"]).float().reshape(-1)
        same = sha256_array(f) == t.inp.chain.get("final", {}).get("sha256")
        t.run.tensor("final.waveform", f, "full length bit-identical" if same else
                     "input: the subject's post-processed waveform")


# --------------------------------------------------------------------------- end to end


def _enhance(t: Teacher) -> None:
    run, inp, settings = t.run, t.inp, t.settings
    e2e = inp.meta.get("end2end") or {}
    if "error" not in e2e and not inp.has("final.waveform"):
        return
    args = (t.wave, t.rate, settings.seed, settings.steps, settings.guidance)
    if "error" in e2e:
        run.behaviour("enhance", "end2end.behaviour", args, e2e["error"], int(inp.meta["length_48k"]))
        return
    out = run.call("enhance", *args)
    if out is None:
        return
    w = as_tensor(out["waveform"]).float().reshape(-1)
    run.tensor("end2end.waveform", w, ref=inp.ref("final.waveform"),
               note=f"{settings.steps} DDIM steps, guidance {settings.guidance}, faithful level, channel 0")


# --------------------------------------------------------------------------- the table


def _has(name: str) -> Callable[[Teacher], bool]:
    return lambda t: t.inp.has(name)


def _padded(t: Teacher) -> bool:
    return t.padded is not None


TEACHER_STEPS: dict[str, TeacherStep] = {s.stage: s for s in (
    TeacherStep("resample", _resample, when=_has("resample.waveform")),
    TeacherStep("normalize", _normalize),
    TeacherStep("features", _features, when=_padded, prepare=_pad_original),
    TeacherStep("cutoff", _cutoff),
    TeacherStep("lowpass", _lowpass, when=_padded),
    TeacherStep("randomness", _randomness, when=lambda t: t.meta.get("filter_type_for_seed") is not None),
    TeacherStep("condition_encode", _condition_encode, needs="chain"),
    TeacherStep("unet", _unet, needs="draws"),
    TeacherStep("ddim_schedule", _ddim_schedule, needs="draws"),
    TeacherStep("ddim_step", _ddim_step, needs="draws"),
    TeacherStep("vae_decode", _vae_decode, needs="draws", when=lambda t: t.inp.has(_last_x_prev(t))),
    TeacherStep("mel_replace", _mel_replace, needs="draws", prepare=_mel_references),
    TeacherStep("vocoder", _vocoder, needs="draws"),
    TeacherStep("postprocess", _postprocess, needs="draws", when=_postprocess_fed),
    TeacherStep("output_level", _output_level, needs="draws", when=lambda t: t.post is not None),
    TeacherStep("enhance", _enhance),
)}

__all__ = ["TEACHER_STEPS", "Teacher", "TeacherStep", "teacher_view"]
