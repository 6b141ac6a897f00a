"""Per-file stage errors between two subjects, teacher-forced from the second (the reference side).

What is affordable per file, for every file of a corpus: the front end
(resample, normalize, features, cutoff, the seed's filter type, low-pass,
features of the low-passed copy) and one call of each network (the condition
encoder on the low-passed mel, the VAE decoder on the condition's mean, the
vocoder on the low-passed mel). Each stage that BOTH subjects provide is fed
the reference's inputs and compared with the reference's outputs under the
schema's tolerance; a stage only one side provides still bridges to the next
(the reference's output when it has one). The DDIM loop is covered by the
end-to-end comparison of the two outputs (the row's metrics), not repeated here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audiosr_verify import schema


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _num(x: float) -> float | str:
    """JSON has no infinities: a shape mismatch's infinite error is written "inf"."""
    x = float(x)
    return x if math.isfinite(x) else str(x)




def _cutoff_hz(bin_: int) -> float:
    """The original's rule (lowpass_filtering_prepare_inference): bin / 1024 * 24 kHz; below 1 kHz, 24 kHz."""
    hz = int(bin_) / 1024 * 24000
    return 24000.0 if hz < 1000 else hz


class _Pair:
    def __init__(self, subject, reference):
        self.subject, self.reference = subject, reference
        self.ours, self.theirs = subject.provided(), reference.provided()
        self.rows: dict[str, dict[str, Any]] = {}
        self.stopped: str | None = None

    def run(self, stage: str, *args) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(subject's outputs or None, bridge outputs or None) of ``stage`` on ``args``."""
        ours = theirs = None
        if stage in self.theirs:
            theirs = schema.named_outputs(stage, getattr(self.reference, stage)(*args))
        if stage in self.ours:
            try:
                ours = schema.named_outputs(stage, getattr(self.subject, stage)(*args))
            except Exception as exc:  # the subject's failure is this stage's result, not the file's
                self.rows[stage] = {"passed": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
        return ours, (theirs if theirs is not None else ours)

    def tensor(self, name: str, ours: Any, ref: Any) -> None:
        from audiosr_verify.compare.tensors import compare_tensors

        t = schema.tolerance(name)
        c = compare_tensors(name, _np(ours), _np(ref), t.atol, t.rtol)
        self.rows[name] = {"max_abs": _num(c.max_abs), "min_passing_atol": _num(c.min_passing_atol),
                           "atol": t.atol, "rtol": t.rtol, "passed": bool(c.passed)}

    def value(self, name: str, ours: Any, ref: Any) -> None:
        self.rows[name] = {"ours": ours, "reference": ref, "passed": ours == ref}

    def compare(self, stage: str, ours: dict | None, ref: dict | None, names: dict[str, str]) -> None:
        """Compare each output ``key`` under the fixture tensor name ``names[key]`` (both sides present)."""
        if ours is None or ref is None or stage not in self.ours or stage not in self.theirs:
            return
        for key, name in names.items():
            self.tensor(name, ours[key], ref[key])


def stage_errors(subject, reference, wave: np.ndarray, rate: int, seed: int) -> dict[str, Any]:
    """``{"compared": {fixture tensor: error row}, "stopped": why the chain ended early or None}``."""
    from audiosr_model.dsp import waveform as audio

    p = _Pair(subject, reference)
    wave = np.ascontiguousarray(wave, dtype=np.float32)

    def stop(why: str) -> dict[str, Any]:
        p.stopped = why
        return {"compared": p.rows, "stopped": p.stopped}

    if rate != 48000:
        ours, res = p.run("resample", wave, rate)
        if res is None:
            return stop("resample: neither subject provides it")
        p.compare("resample", ours and {"w": _np(ours["waveform"])[0]}, {"w": _np(res["waveform"])[0]},
                  {"w": "resample.waveform"})
        mono = np.ascontiguousarray(_np(res["waveform"])[0], dtype=np.float32)
    else:
        mono = wave[0]
    ours, norm = p.run("normalize", mono)
    if norm is None:
        return stop("normalize: neither subject provides it")
    p.compare("normalize", ours, norm, {"waveform": "normalize.waveform"})
    n = audio.target_samples(audio.padded_duration(wave.shape[1] / rate))
    padded = np.zeros(n, dtype=np.float32)
    w = _np(norm["waveform"]).astype(np.float32).reshape(-1)[:n]
    padded[: w.size] = w
    ours, feats = p.run("features", padded)
    if feats is None:
        return stop("features: neither subject provides it")
    p.compare("features", ours, feats, {"log_mel": "features.log_mel", "stft": "features.stft_frames"})
    stft = np.ascontiguousarray(_np(feats["stft"]), dtype=np.float32)
    ours, cut = p.run("cutoff", stft)
    if cut is None:
        return stop("cutoff: neither subject provides it")
    bin_ = int(_np(cut["bin"]))
    if ours is not None and "cutoff" in p.theirs:
        p.value("features.cutoff_bin", int(_np(ours["bin"])), bin_)
    frames = int(_np(feats["log_mel"]).shape[0])
    latent = (1, 16, frames // 8, 32)
    ours, rnd = p.run("randomness", seed, latent, 0)
    if rnd is None:
        from audiosr_model.pipeline import Randomness

        ftype = Randomness(int(seed)).choose_filter()  # the original's draw, as our model makes it
    else:
        ftype = str(rnd["filter_type"])
        if ours is not None and "randomness" in p.theirs:
            p.value("randomness.filter_type", str(ours["filter_type"]), ftype)
    ours, low = p.run("lowpass", padded, _cutoff_hz(bin_), ftype)
    if low is None:
        return stop("lowpass: neither subject provides it")
    p.compare("lowpass", ours, low, {"waveform": f"lowpass.{ftype}"})
    low_wave = np.ascontiguousarray(_np(low["waveform"]), dtype=np.float32).reshape(-1)
    ours, low_feats = p.run("features", low_wave)
    p.compare("features", ours, low_feats, {"log_mel": "lowpass.log_mel"})
    low_mel = np.ascontiguousarray(_np(low_feats["log_mel"]), dtype=np.float32)
    ours, post = p.run("condition_encode", low_mel)
    p.compare("condition_encode", ours, post, {"mean": "cond.posterior_mean", "std": "cond.posterior_std"})
    if post is not None:
        mean = np.ascontiguousarray(_np(post["mean"]), dtype=np.float32)
        ours, mel = p.run("vae_decode", mean)
        p.compare("vae_decode", ours, mel, {"mel": "mel.decoded"})
    ours, voc = p.run("vocoder", low_mel[None, None])
    p.compare("vocoder", ours, voc, {"waveform": "vocoder.waveform"})
    return {"compared": p.rows, "stopped": None}


__all__ = ["stage_errors"]
