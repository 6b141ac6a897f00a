"""One corpus file through a subject (and optionally a second, or against itself as ground truth).

`EvaluationSettings` says what decides a file's result; `FileEvaluator` is
what one worker holds (its activated subjects) and `evaluate(job)` is the
whole per-file computation: read, enhance, compare, return one JSON-ready row.
Engines (``audiosr_verify.corpus``) only decide where it runs, so a file's
row is the same whichever engine or worker computes it:

- each worker fixes its torch thread count (``threads``, default 1): the
  number of threads changes float reduction order, the engine must not;
- the subject gets the same seed for every file, and the global torch and
  numpy generators are reseeded before each file, so nothing carries over
  from the file a worker computed before;
- timings are kept apart, under ``timing``: they are the one field that may
  differ between two runs.

Reference of the metrics, by mode:

``against``  the second subject's output on the same input and seed (parity);
``golden``   the file itself is the ground truth: the subject gets it band-limited
             to ``input_rate`` and its output is compared with the original file
             (quality, the protocol of AudioSR's evaluation);
``input``    the input itself at 48 kHz (no second opinion: the band below the
             cutoff should survive, the level should hold).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from audiosr_model.errors import AudioSRError
from audiosr_verify import schema

MODES = ("input", "against", "golden")
RATE = 48000
# Spectrogram data kept for the report's worst files: the report's own spectrogram (compare.spectrogram),
# pooled to 128 frequency rows (187.5 Hz) and at most 400 time columns, in dB as float16 (~100 kB per signal).
SPEC_ROWS, SPEC_COLUMNS = 128, 400
# Detected band limits outside this range mean "no band limit found": the band metrics are left out.
MIN_CUTOFF_HZ, MAX_CUTOFF_HZ = 1000.0, 23900.0
ROW_VERSION = 1  # the layout of a results row; part of a run's identity


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything a file's result depends on (the engine and the worker count are not among it)."""

    subject: str
    against: str | None = None
    mode: str = "input"  # input | against | golden
    preset: str = "tiny"
    checkpoint: str | None = None  # None: the bundled seeded random weights
    weights_seed: int = 0
    steps: int = 50
    guidance: float = 3.5
    seed: int = 42
    input_rate: int = 16000  # golden mode: the rate the ground truth is band-limited to
    threads: int = 1  # torch threads per worker
    device: str = "cpu"
    stages: bool = True  # against mode: per-file stage errors where both subjects expose the stages
    options: dict[str, str] = field(default_factory=dict)  # given to the subjects' factories

    def __post_init__(self):
        if self.mode not in MODES:
            raise AudioSRError(f"unknown evaluation mode {self.mode!r} (one of {', '.join(MODES)})")
        if (self.mode == "against") != (self.against is not None):
            raise AudioSRError("the against mode needs a second subject, and only it")
        if self.steps < 1:
            raise AudioSRError(f"--steps must be at least 1, got {self.steps}")
        if self.threads < 1:
            raise AudioSRError(f"--threads must be at least 1, got {self.threads}")
        if self.mode == "golden" and not 1000 <= self.input_rate < RATE:
            raise AudioSRError(f"--input-rate must lie in 1000..47999 Hz, got {self.input_rate}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvaluationSettings":
        return cls(**data)

    def identity(self) -> dict[str, Any]:
        """What must match for two runs' rows to belong in one results file."""
        from audiosr_verify.compare.metrics import METRICS_VERSION

        ident = {k: v for k, v in self.to_dict().items() if k != "device"}
        if self.mode != "golden":
            ident.pop("input_rate")
        ident["metrics_version"] = METRICS_VERSION
        ident["row_version"] = ROW_VERSION
        return ident


# --------------------------------------------------------------------------- numbers as JSON


def num(x: float) -> float | str:
    """A float for JSON: finite as is; ``inf``, ``-inf``, ``nan`` as strings (JSON has no such numbers)."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def dbfs(x: np.ndarray) -> float:
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * math.log10(r) if r > 0 else -math.inf


# --------------------------------------------------------------------------- pieces of the computation


def _to_mono48(wave: np.ndarray, rate: int) -> np.ndarray:
    """Channel 0 at 48 kHz (the schema's enhance keeps channel 0), with the model's own resampler."""
    import torch

    from audiosr_model.dsp.resample import resample

    x = np.ascontiguousarray(wave[:1], dtype=np.float32)
    if rate != RATE:
        x = resample(torch.from_numpy(x), int(rate), RATE).numpy()
    return x[0]


def _band_limit(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """All channels resampled to ``target`` Hz (the sinc resampler's anti-aliasing is the band limit)."""
    import torch

    from audiosr_model.dsp.resample import resample

    return resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), int(rate), int(target)).numpy()


def detected_cutoff_hz(x48: np.ndarray) -> float | None:
    """The band limit the model's own detector finds in a 48 kHz signal, or None when there is none."""
    from audiosr_model.dsp.lowpass import cutoff_index_np

    hz = cutoff_index_np(np.ascontiguousarray(x48, dtype=np.float32)) * (RATE / 2) / 1024
    return float(hz) if MIN_CUTOFF_HZ <= hz <= MAX_CUTOFF_HZ else None


def _waveform(out: Any, who: str) -> np.ndarray:
    if isinstance(out, dict):
        out = out["waveform"]
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    y = np.asarray(out, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise AudioSRError(f"{who} returned NaN or Inf samples")
    return y


def spectrum_db(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The report's spectrogram of ``x`` (shown at 48 kHz, dB re a full-scale sine), pooled for keeping:
    ``[SPEC_ROWS, <= SPEC_COLUMNS]`` float16, row 0 = 0 Hz, the last row 24 kHz, columns spanning the file."""
    from audiosr_verify.compare.spectrogram import spectrogram

    db = spectrogram(np.asarray(x, dtype=np.float64).reshape(-1), int(rate)).db
    power = 10.0 ** (db[: SPEC_ROWS * ((db.shape[0] - 1) // SPEC_ROWS)] / 10)  # drop the Nyquist bin
    power = power.reshape(SPEC_ROWS, -1, power.shape[1]).mean(axis=1)
    group = max(1, math.ceil(power.shape[1] / SPEC_COLUMNS))
    cols = power.shape[1] // group * group
    head = power[:, :cols].reshape(SPEC_ROWS, -1, group).mean(axis=2)
    tail = power[:, cols:].mean(axis=1, keepdims=True) if cols < power.shape[1] else head[:, :0]
    return (10 * np.log10(np.concatenate([head, tail], axis=1) + 1e-30)).astype(np.float16)


def file_metrics(reference: np.ndarray, output: np.ndarray, cutoff_hz: float | None) -> dict[str, Any]:
    """The per-file metrics of ``output`` against ``reference`` (both 48 kHz mono)."""
    from audiosr_verify.compare import metrics as M

    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    n = min(ref.size, out.size)
    ref, out = ref[:n], out[:n]
    distance = M.spectral_distance(ref, out, RATE, cutoff_hz)
    m: dict[str, Any] = {
        "lsd": M.lsd(ref, out, RATE),
        "lsd_hf": M.lsd_hf(ref, out, RATE, cutoff_hz) if cutoff_hz else None,
        "lsd_lf": M.lsd_lf(ref, out, RATE, cutoff_hz) if cutoff_hz else None,
        "si_sdr": M.si_sdr(ref, out),
        "log_mel_l1": M.log_mel_l1(ref, out, RATE),
        "spectral_distance": distance.mean_db,
        "spectral_distance_hf": distance.hf_db,
        "peak_relative_diff": M.peak_relative_diff(ref, out),
        "max_abs_diff": float(np.max(np.abs(out - ref))) if n else 0.0,
        "output_dbfs": dbfs(out),
        "reference_dbfs": dbfs(ref),
    }
    m["level_difference_db"] = m["output_dbfs"] - m["reference_dbfs"] if math.isfinite(m["reference_dbfs"]) \
        and math.isfinite(m["output_dbfs"]) else (0.0 if m["output_dbfs"] == m["reference_dbfs"] else math.inf)
    return {k: (None if v is None else num(v)) for k, v in m.items()}


# Metrics shown in the summary (name, label, lower is better).
SUMMARY_METRICS = (
    ("lsd", "LSD", True),
    ("lsd_hf", "LSD above the cutoff", True),
    ("lsd_lf", "LSD below the cutoff", True),
    ("si_sdr", "SI-SDR (dB)", False),
    ("log_mel_l1", "log-mel L1", True),
    ("spectral_distance", "spectral distance (dB)", True),
    ("level_difference_db", "level: output - reference (dB)", None),
)


# --------------------------------------------------------------------------- the worker


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _without_path(exc: AudioSRError, rel: str) -> str:
    """The error line with the worker's absolute path replaced by the corpus-relative one."""
    msg = str(exc)
    if exc.path and msg.startswith(exc.path + ": "):
        return f"{rel}: {msg[len(exc.path) + 2:]}"
    return msg


class FileEvaluator:
    """One worker's state: the activated subject(s). ``evaluate(job)`` is one file; ``close()`` releases."""

    def __init__(self, settings: EvaluationSettings | dict[str, Any]):
        import torch
        from threadpoolctl import threadpool_limits

        from audiosr_verify.checks.subject_check import write_random_checkpoint

        self.settings = s = settings if isinstance(settings, EvaluationSettings) else \
            EvaluationSettings.from_dict(settings)
        # Results must not depend on how many cores a worker sees: torch's and BLAS's (numpy's matrix
        # products in the metrics) reductions are split by thread count, so both are pinned.
        torch.set_num_threads(s.threads)
        self._blas_limit = threadpool_limits(limits=s.threads)
        self._active: list = []
        self._tmp = None
        try:
            checkpoint = s.checkpoint
            if checkpoint is None:  # a cluster worker: the driver's copy of the bundled weights is not here
                self._tmp = tempfile.mkdtemp(prefix="audiosr-evaluate-")
                checkpoint = str(write_random_checkpoint(self._tmp, s.preset, s.weights_seed))
            self.subject = self._open(s.subject, checkpoint)
            self.against = None if s.against is None else self._open(s.against, checkpoint)
        except BaseException:
            self.close()
            raise

    def _open(self, spec: str, checkpoint: str):
        """The activated subject (as `subject_check.opened_subject`, without a temporary folder of its own:
        a worker stopped mid-run leaves nothing behind)."""
        from audiosr_verify.subject import SubjectContext
        from audiosr_verify.subjects.loader import load_subject

        s = self.settings
        subject = load_subject(spec, SubjectContext(checkpoint, s.preset, s.device, dict(s.options)))
        try:
            subject.activate()
        except AudioSRError:
            raise
        except Exception as exc:
            raise AudioSRError(f"subject {subject.name}: activate() raised {type(exc).__name__}: "
                               f"{_one_line(exc)}") from None
        self._active.append(subject)
        return subject

    def close(self) -> None:
        while getattr(self, "_active", None):
            self._active.pop().deactivate()
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _enhance(self, subject, wave: np.ndarray, rate: int) -> np.ndarray:
        import torch

        s = self.settings
        torch.manual_seed(s.seed)  # for subjects that draw from the global generators
        np.random.seed(s.seed)
        try:
            with torch.no_grad():
                out = subject.enhance(np.ascontiguousarray(wave, dtype=np.float32), int(rate), s.seed, s.steps,
                                      s.guidance)
        except AudioSRError:
            raise
        except Exception as exc:  # whatever a subject raises: this file errs, the run goes on
            raise AudioSRError(f"{subject.name}.enhance raised {type(exc).__name__}: {_one_line(exc)}") from None
        return _waveform(out, f"{subject.name}.enhance")

    def evaluate(self, job: dict[str, str]) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
        """``(row, spectra)`` for one file; ``spectra`` (for the report's worst files) is None on error."""
        from audiosr_model.io import audio_file as audio
        from audiosr_model.io.audio_stream import check_audio_file
        from audiosr_verify.util.hashing import sha256_file

        s = self.settings
        rel, path = job["file"], job["path"]
        start = time.perf_counter()
        timing: dict[str, float] = {}
        row: dict[str, Any] = {"file": rel, "status": "ok", "error": None}
        try:
            check_audio_file(path)  # header, truncation, NaN/Inf, length: one line for each problem
            wave, rate = audio.read_audio(path)
        except AudioSRError as exc:
            row.update(status="unreadable", error=_without_path(exc, rel))
            row["timing"] = {"total_s": time.perf_counter() - start}
            return row, None
        row.update(sha256=sha256_file(path), rate=int(rate), channels=int(wave.shape[0]),
                   frames=int(wave.shape[1]), duration_s=wave.shape[1] / rate)
        spectra = None
        try:
            if s.mode == "golden":
                if rate <= s.input_rate:
                    raise AudioSRError(f"its rate {rate} Hz is not above --input-rate {s.input_rate} Hz, so it "
                                       "cannot be the ground truth of a band-limited input")
                reference = _to_mono48(wave, rate)
                wave, rate = _band_limit(wave, rate, s.input_rate), s.input_rate
                cutoff = s.input_rate / 2
            else:
                reference = None
                cutoff = None
            t0 = time.perf_counter()
            output = self._enhance(self.subject, wave, rate)
            timing["subject_s"] = time.perf_counter() - t0
            expected = schema.enhance_length(wave.shape[1], rate)
            if output.size != expected:
                raise AudioSRError(f"{self.subject.name}.enhance returned {output.size} samples, "
                                   f"expected ceil(N * 48000 / rate) = {expected}")
            if s.mode == "against":
                t0 = time.perf_counter()
                reference = self._enhance(self.against, wave, rate)
                timing["against_s"] = time.perf_counter() - t0
            elif s.mode == "input":
                reference = _to_mono48(wave, rate)
            if cutoff is None:
                cutoff = rate / 2 if rate < RATE else detected_cutoff_hz(_to_mono48(wave, rate))
            row["cutoff_hz"] = None if cutoff is None else float(cutoff)
            row["output_samples"] = int(output.size)
            row["metrics"] = file_metrics(reference, output, cutoff)
            if s.mode == "against" and s.stages:
                from audiosr_verify.checks.corpus_stages import stage_errors

                t0 = time.perf_counter()
                try:
                    row["stages"] = stage_errors(self.subject, self.against, wave, rate, s.seed)
                except Exception as exc:  # the reference side raised: no stage errors, the metrics still count
                    row["stages"] = {"compared": {}, "stopped": f"{type(exc).__name__}: {_one_line(exc)}"}
                timing["stages_s"] = time.perf_counter() - t0
            spectra = {"input": spectrum_db(wave[0], rate), "output": spectrum_db(output),
                       "reference": spectrum_db(reference)}
        except AudioSRError as exc:
            row.update(status="error", error=_without_path(exc, rel))
            row.pop("metrics", None)
            spectra = None
        timing["total_s"] = time.perf_counter() - start
        row["timing"] = timing
        return row, spectra


__all__ = ["EvaluationSettings", "FileEvaluator", "MODES", "SUMMARY_METRICS", "detected_cutoff_hz",
           "file_metrics", "num", "spectrum_db"]
