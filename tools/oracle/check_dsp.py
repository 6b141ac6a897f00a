"""Compare the project's DSP (``model/``) with the original audiosr 0.0.7 code.

Development check, not a unit test. Run it with the project venv::

    /work/venv/bin/python tools/oracle/check_dsp.py [--keep DIR]

It writes deterministic inputs to a temporary directory, runs *this file*
again under the oracle venv (``AUDIOSR_ORACLE_PYTHON``, default
``/work/oracle-venv/bin/python``; librosa 0.9.2, torchaudio 2.11, numpy 1.23)
with ``--oracle-side``, which executes the original functions taken verbatim
from the unpacked source (``AUDIOSR_ORIG_SRC``, default
``/tmp/orig/src/audiosr``) and saves their outputs; then it computes the same
things with ``model/`` and prints max |diff| and whether each result is
bit-identical. Exit status 1 if any check exceeds its tolerance.

The oracle side imports only numpy/torch/torchaudio/librosa/scipy (no
``model``): the original functions are extracted from the source files with
``ast`` because importing the ``audiosr`` package pulls in unrelated heavy
dependencies. ``torchaudio._extension`` is stubbed (the compiled extension
does not load against this torch; ``functional.resample`` is pure Python).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ORACLE_PYTHON = os.environ.get("AUDIOSR_ORACLE_PYTHON", "/work/oracle-venv/bin/python")
ORIG_SRC = Path(os.environ.get("AUDIOSR_ORIG_SRC", "/tmp/orig/src/audiosr"))

RESAMPLE_RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000,
                  1000, 12000, 24000, 32000, 88200, 176400, 192000, 384000, 7919]
FILTER_TYPES = ["butter", "cheby1", "ellip", "bessel"]
# round numbers, and cut-offs as the pipeline derives them (bin / 1024 * 24000);
# the latter give awkward resample_poly ratios (e.g. 23601 Hz -> 47202/48000)
LOWPASS_CUTOFFS = [2000.0, 4000.0, 8000.0, 11025.7, 16000.0, 22000.0, 24000.0] + [
    k / 1024 * 24000 for k in (171, 341, 511, 767, 1007, 1023)]


# =============================================================== shared inputs


def make_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Deterministic float32 test signals (written once, read by both sides)."""
    from scipy.signal import butter, sosfilt

    n = 245760  # 5.12 s at 48 kHz
    t = np.arange(n) / 48000.0
    noise = rng.standard_normal(n)
    band8k = sosfilt(butter(10, 8000 / 24000, output="sos"), noise)
    band4k = sosfilt(butter(10, 4000 / 24000, output="sos"), rng.standard_normal(n))
    tones = sum(np.sin(2 * np.pi * f * t + i) / (i + 1) for i, f in enumerate([220, 1330, 3100, 6200, 9900]))
    speechy = band4k * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    sig = {
        "noise": 0.3 * noise,
        "band8k": 0.5 * band8k / np.max(np.abs(band8k)),
        "band4k": 0.5 * band4k / np.max(np.abs(band4k)),
        "tones": 0.4 * tones / np.max(np.abs(tones)),
        "speechy": 0.5 * speechy / np.max(np.abs(speechy)),
        "quiet": 1e-4 * noise,
    }
    sig = {k: v.astype(np.float32) for k, v in sig.items()}
    # a "vocoder output" unrelated to the low-pass input, for postprocessing
    sig["gen_out"] = (0.3 * rng.standard_normal(n)).astype(np.float32)
    # a more vocoder-like output: 1/f-ish spectrum rolling off towards 24 kHz
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / 48000)
    spec *= 1 / np.sqrt(1 + f / 200) / (1 + (f / 20000) ** 8)
    pink = np.fft.irfft(spec, n)
    sig["gen_pink"] = (0.5 * pink / np.max(np.abs(pink))).astype(np.float32)
    # native-rate signals for resampling (2 channels, odd lengths)
    for sr in RESAMPLE_RATES:
        m = int(sr * 1.37) + 3
        sig[f"rs_{sr}"] = (0.5 * rng.standard_normal((2, m))).astype(np.float32)
    # a generated mel batch [2, 1, 512, 256] for mel_replace
    sig["mel_out"] = rng.normal(-6, 2, size=(2, 1, 512, 256)).astype(np.float32)
    return sig


# =============================================================== oracle side


def _stub_torchaudio_extension() -> None:
    """torchaudio 2.11's compiled extension does not load here; stub what its Python imports."""
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False
    stub._IS_RIR_AVAILABLE = False
    stub.fail_if_no_align = lambda f: f
    stub.fail_if_no_rir = lambda f: f
    stub._load_lib = lambda lib: False
    stub._check_cuda_version = lambda: None
    stub._init_dll_path = lambda: None
    sys.modules["torchaudio._extension"] = stub


def _extract(source: Path, names: list[str], class_name: str | None = None) -> list[ast.stmt]:
    """Function definitions ``names`` from ``source`` (module level or inside ``class_name``)."""
    tree = ast.parse(source.read_text())
    body = tree.body
    if class_name:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name).body
    found = {n.name: n for n in body if isinstance(n, ast.FunctionDef) and n.name in names}
    missing = set(names) - set(found)
    if missing:
        raise SystemExit(f"{source}: cannot find {sorted(missing)}")
    return [found[n] for n in names]


def _oracle_side(workdir: Path) -> None:
    import importlib.util
    import warnings

    warnings.filterwarnings("ignore")
    _stub_torchaudio_extension()
    import librosa
    import torch
    import torchaudio
    from librosa.filters import mel as librosa_mel_fn

    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("orig_lowpass", ORIG_SRC / "lowpass.py")
    orig_lowpass = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(orig_lowpass)

    # utils.py functions, executed verbatim; torchaudio.load is shimmed to return our arrays
    loads: dict[str, tuple] = {}
    ta_shim = types.SimpleNamespace(
        load=lambda name: loads[name], functional=torchaudio.functional
    )
    ns_utils = {"np": np, "torch": torch, "torchaudio": ta_shim, "librosa_mel_fn": librosa_mel_fn,
                "lowpass": orig_lowpass.lowpass, "hann_window": {}, "mel_basis": {}}
    util_names = ["dynamic_range_compression_torch", "spectral_normalize_torch", "_locate_cutoff_freq",
                  "pad_wav", "lowpass_filtering_prepare_inference", "mel_spectrogram_train", "pad_spec",
                  "wav_feature_extraction", "normalize_wav", "read_wav_file"]
    mod = ast.Module(body=_extract(ORIG_SRC / "utils.py", util_names), type_ignores=[])
    exec(compile(mod, str(ORIG_SRC / "utils.py"), "exec"), ns_utils)

    # LatentDiffusion methods, executed verbatim inside a bare class
    ddpm = ORIG_SRC / "latent_diffusion" / "models" / "ddpm.py"
    methods = _extract(ddpm, ["_locate_cutoff_freq", "mel_replace_ops", "postprocessing",
                              "_find_cutoff_np", "_get_cutoff_index_np"], "LatentDiffusion")
    cls = ast.ClassDef(name="Orig", bases=[], keywords=[], body=methods, decorator_list=[])
    ns_ddpm = {"np": np, "torch": torch, "librosa": librosa}
    exec(compile(ast.fix_missing_locations(ast.Module(body=[cls], type_ignores=[])), str(ddpm), "exec"), ns_ddpm)
    orig = ns_ddpm["Orig"]()

    sig = dict(np.load(workdir / "inputs.npz"))
    res: dict[str, object] = {}
    errors: dict[str, str] = {}

    # 1. resample (torchaudio)
    for sr in RESAMPLE_RATES:
        x = torch.from_numpy(sig[f"rs_{sr}"])
        res[f"resample_{sr}"] = torchaudio.functional.resample(x, sr, 48000).numpy()
        res[f"resample_{sr}_to_16000"] = torchaudio.functional.resample(x, sr, 16000).numpy()

    # 2. mel filterbank
    res["melfb"] = librosa_mel_fn(sr=48000, n_fft=2048, n_mels=256, fmin=20, fmax=24000)
    res["hann_scipy"] = librosa.filters.get_window("hann", 2048, fftbins=True)

    names = ["noise", "band8k", "band4k", "tones", "speechy", "quiet"]
    for k in names:
        x = sig[k]
        # 3. features
        mel, stft = ns_utils["wav_feature_extraction"](x[None], 512)
        res[f"feat_mel_{k}"], res[f"feat_stft_{k}"] = mel.numpy(), stft.numpy()
        m2, s2 = ns_utils["mel_spectrogram_train"](torch.from_numpy(x[None, :100000]))
        res[f"melspec_mel_{k}"], res[f"melspec_stft_{k}"] = m2.numpy(), s2.numpy()
        # 4. librosa stft / istft
        S = librosa.stft(x)
        res[f"stft_{k}"] = S
        res[f"istft_{k}"] = librosa.istft(S, length=len(x))
        res[f"istft_short_{k}"] = librosa.istft(S[:, :200], length=90000)
        res[f"istft_nolen_{k}"] = librosa.istft(S)
        res[f"stft64_{k}"] = librosa.stft(x.astype(np.float64)[:50000])
        # 5. cut-offs
        res[f"cutoff_np_{k}"] = np.int64(orig._get_cutoff_index_np(x))
        res[f"cutoff_utils_{k}"] = np.int64(ns_utils["_locate_cutoff_freq"](stft, percentile=0.985))
        res[f"cutoff_ddpm_{k}"] = np.int64(orig._locate_cutoff_freq(torch.exp(mel)))
        # 6. normalize_wav
        res[f"normalize_{k}"] = ns_utils["normalize_wav"](x * np.float32(0.37) + np.float32(0.01))

    # 7. lowpass, per type and cut-off
    for k in ["noise", "tones"]:
        for ftype in FILTER_TYPES:
            for hc in LOWPASS_CUTOFFS:
                key = f"lowpass_{k}_{ftype}_{hc}"
                try:
                    res[key] = orig_lowpass.lowpass(sig[k], highcut=hc, fs=48000, order=8, _type=ftype)
                except Exception as exc:  # parity: record what the original raises
                    errors[key] = f"{type(exc).__name__}: {exc}"

    # 8. postprocessing (one item) and the output level
    for k in ["band8k", "band4k", "speechy"]:
        xl = torch.from_numpy(sig[k])[None, None]
        out = sig["gen_out"][None, None].copy()
        res[f"post_{k}"] = orig.postprocessing(out, xl)[0, 0]
        res[f"post_pink_{k}"] = orig.postprocessing(sig["gen_pink"][None, None].copy(), xl)[0, 0]
        res["stft_pink"] = librosa.stft(sig["gen_pink"])
        w = res[f"post_{k}"][None].copy()
        max_amp = np.max(np.abs(w), axis=-1)
        w = 0.5 * w / max_amp[..., None]
        mean_amp = np.mean(w, axis=-1)[..., None]
        res[f"level_{k}"] = (w - mean_amp)[0]

    # 9. mel_replace_ops: the batch holds lowpass_mel as [B, T, F]
    lp_mel = torch.stack([torch.from_numpy(res["feat_mel_band8k"]), torch.from_numpy(res["feat_mel_band4k"])])
    res["mel_replace"] = orig.mel_replace_ops(torch.from_numpy(sig["mel_out"].copy()), lp_mel).numpy()

    # 10. read_wav_file + the inference preparation, end to end (torchaudio.load shimmed)
    for sr, ftype in [(16000, "butter"), (44100, "cheby1"), (8000, "ellip"), (22050, "bessel"), (48000, "butter")]:
        name = f"in_{sr}"
        loads[name] = (torch.from_numpy(sig[f"rs_{sr}"]), sr)
        wav, target_frame, pad_duration = ns_utils["read_wav_file"](name)
        res[f"read_{sr}"] = wav
        res[f"read_{sr}_meta"] = np.array([target_frame, pad_duration])
        log_mel, stft = ns_utils["wav_feature_extraction"](wav, target_frame)
        batch = {"waveform": torch.FloatTensor(wav), "stft": torch.FloatTensor(stft), "sampling_rate": 48000}
        np.random.choice = lambda _choices, _f=ftype: _f  # the original draws the filter type at random
        try:
            lp = ns_utils["lowpass_filtering_prepare_inference"](batch)["waveform_lowpass"]
            res[f"prep_{sr}_lowpass"] = lp.numpy()
            res[f"prep_{sr}_lowpass_mel"] = ns_utils["wav_feature_extraction"](lp, target_frame)[0].numpy()
        except Exception as exc:
            errors[f"prep_{sr}_lowpass"] = f"{type(exc).__name__}: {exc}"

    # 11. padded duration arithmetic over many lengths (Python floats; no torch)
    meta = []
    for sr in [8000, 11025, 16000, 22050, 44100, 48000, 96000]:
        for n in list(range(101, 3000, 7)) + [245760 * sr // 48000 + d for d in (-1, 0, 1)] + [sr * 15 // 2]:
            duration = n / sr
            if duration % 5.12 != 0:
                pad_duration = duration + (5.12 - duration % 5.12)
            else:
                pad_duration = duration
            meta.append((sr, n, int(pad_duration * 100), int(48000 * pad_duration)))
    res["pad_meta"] = np.array(meta, dtype=np.int64)

    np.savez(workdir / "oracle.npz", **{k: np.asarray(v) for k, v in res.items()})
    (workdir / "oracle_errors.json").write_text(json.dumps(errors, indent=1))


# =============================================================== project side


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, bool, float]] = []

    def add(self, name: str, ours, ref, tol: float = 0.0) -> None:
        ours = np.asarray(ours)
        ref = np.asarray(ref)
        if ours.shape != ref.shape:
            self.rows.append((f"{name} SHAPE {ours.shape} vs {ref.shape}", math.inf, False, tol))
            return
        if ours.size == 0:
            self.rows.append((name, 0.0, True, tol))
            return
        a = ours.astype(np.complex128 if np.iscomplexobj(ours) or np.iscomplexobj(ref) else np.float64)
        b = ref.astype(a.dtype)
        diff = float(np.max(np.abs(a - b)))
        same = ours.dtype == ref.dtype and np.array_equal(ours, ref, equal_nan=True)
        self.rows.append((name, diff, same, tol))

    def failed(self) -> list[str]:
        return [r[0] for r in self.rows if not (r[2] or r[1] <= r[3])]

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows)
        for name, diff, same, tol in self.rows:
            status = "bitwise" if same else ("ok" if diff <= tol else "FAIL")
            print(f"{name:<{width}}  max|diff|={diff:.3e}  {status}")


def _project_side(workdir: Path) -> int:
    import torch

    from audiosr_model.dsp.waveform import (
        normalize_wav,
        pad_wav,
        padded_duration,
        target_frames,
        target_samples,
        to_mono,
    )
    from audiosr_model.dsp.features import (
        hann_periodic_np,
        librosa_istft,
        librosa_stft,
        mel_filterbank,
        mel_spectrogram,
    )
    from audiosr_model.dsp.features import wav_feature_extraction
    from audiosr_model.dsp.lowpass import cutoff_hz_from_stft, cutoff_index_np, locate_cutoff_bin, lowpass
    from audiosr_model.dsp.lowpass import lowpass_or_passthrough
    from audiosr_model.dsp.postprocess import faithful_output_level, mel_replace, stft_replace_postprocess
    from audiosr_model.dsp.resample import resample

    torch.set_num_threads(1)
    sig = dict(np.load(workdir / "inputs.npz"))
    ref = dict(np.load(workdir / "oracle.npz"))
    errors = json.loads((workdir / "oracle_errors.json").read_text())
    rep = Report()

    for sr in RESAMPLE_RATES:
        x = torch.from_numpy(sig[f"rs_{sr}"])
        rep.add(f"resample {sr}->48000", resample(x, sr, 48000).numpy(), ref[f"resample_{sr}"])
        rep.add(f"resample {sr}->16000", resample(x, sr, 16000).numpy(), ref[f"resample_{sr}_to_16000"])

    rep.add("mel filterbank (librosa.filters.mel)", mel_filterbank(), ref["melfb"])
    rep.add("hann window (scipy get_window)", hann_periodic_np(2048), ref["hann_scipy"])

    names = ["noise", "band8k", "band4k", "tones", "speechy", "quiet"]
    for k in names:
        x = sig[k]
        mel, stft = wav_feature_extraction(x[None], 512)
        rep.add(f"wav_feature_extraction mel {k}", mel.numpy(), ref[f"feat_mel_{k}"])
        rep.add(f"wav_feature_extraction stft {k}", stft.numpy(), ref[f"feat_stft_{k}"])
        m2, s2 = mel_spectrogram(torch.from_numpy(x[None, :100000]))
        rep.add(f"mel_spectrogram mel {k}", m2.numpy(), ref[f"melspec_mel_{k}"])
        rep.add(f"mel_spectrogram mag {k}", s2.numpy(), ref[f"melspec_stft_{k}"])
        S = librosa_stft(x)
        rep.add(f"librosa_stft {k}", S, ref[f"stft_{k}"], tol=1e-6)
        # istft fed with the *oracle's* STFT so the two checks are independent
        rep.add(f"librosa_istft {k}", librosa_istft(ref[f"stft_{k}"], length=len(x)), ref[f"istft_{k}"], tol=1e-6)
        rep.add(f"librosa_istft short {k}", librosa_istft(ref[f"stft_{k}"][:, :200], length=90000),
                ref[f"istft_short_{k}"], tol=1e-6)
        rep.add(f"librosa_istft no length {k}", librosa_istft(ref[f"stft_{k}"]), ref[f"istft_nolen_{k}"], tol=1e-6)
        rep.add(f"librosa_stft float64 {k}", librosa_stft(x.astype(np.float64)[:50000]), ref[f"stft64_{k}"], tol=1e-9)
        rep.add(f"cutoff_index_np {k}", cutoff_index_np(x), ref[f"cutoff_np_{k}"])
        rep.add(f"locate_cutoff_bin(stft) {k}", locate_cutoff_bin(torch.from_numpy(ref[f"feat_stft_{k}"])),
                ref[f"cutoff_utils_{k}"])
        rep.add(f"locate_cutoff_bin(exp mel) {k}", locate_cutoff_bin(torch.exp(torch.from_numpy(ref[f"feat_mel_{k}"]))),
                ref[f"cutoff_ddpm_{k}"])
        rep.add(f"normalize_wav {k}", normalize_wav(x * np.float32(0.37) + np.float32(0.01)), ref[f"normalize_{k}"])

    for k in ["noise", "tones"]:
        for ftype in FILTER_TYPES:
            for hc in LOWPASS_CUTOFFS:
                key = f"lowpass_{k}_{ftype}_{hc}"
                try:
                    ours = lowpass(sig[k], hc, fs=48000, order=8, ftype=ftype)
                except ValueError as exc:
                    same = key in errors and errors[key] == f"ValueError: {exc}"
                    rep.rows.append((f"lowpass {k} {ftype} {hc} raises ValueError (original too: {same})",
                                     0.0 if same else math.inf, same, 0.0))
                    passthrough = lowpass_or_passthrough(sig[k], hc, ftype=ftype)
                    rep.add(f"lowpass_or_passthrough {k} {ftype} {hc} (identity)", passthrough, sig[k])
                    continue
                rep.add(f"lowpass {k} {ftype} {hc}", ours, ref[key], tol=1e-9)

    for k in ["band8k", "band4k", "speechy"]:
        post = stft_replace_postprocess(sig["gen_out"], sig[k])
        rep.add(f"stft_replace_postprocess {k}", post, ref[f"post_{k}"], tol=1e-6)
        rep.add(f"stft_replace_postprocess {k}, vocoder-like output", stft_replace_postprocess(sig["gen_pink"], sig[k]),
                ref[f"post_pink_{k}"], tol=1e-6)
        rep.add(f"faithful_output_level {k} (oracle input)", faithful_output_level(ref[f"post_{k}"]), ref[f"level_{k}"])

    rep.add("librosa_stft vocoder-like output", librosa_stft(sig["gen_pink"]), ref["stft_pink"], tol=1e-6)
    lp_mel = torch.stack([torch.from_numpy(ref["feat_mel_band8k"]), torch.from_numpy(ref["feat_mel_band4k"])])
    mel_out = torch.from_numpy(sig["mel_out"])
    rep.add("mel_replace [B,T,F] cond", mel_replace(mel_out, lp_mel).numpy(), ref["mel_replace"])
    rep.add("mel_replace [B,1,T,F] cond", mel_replace(mel_out, lp_mel[:, None]).numpy(), ref["mel_replace"])

    for sr, ftype in [(16000, "butter"), (44100, "cheby1"), (8000, "ellip"), (22050, "bessel"), (48000, "butter")]:
        x = sig[f"rs_{sr}"]
        n = x.shape[-1]
        pad_duration = padded_duration(n / sr)
        wav48 = resample(torch.from_numpy(x), sr, 48000).numpy()
        wav = pad_wav(normalize_wav(to_mono(wav48, "first"))[None], target_samples(pad_duration))
        rep.add(f"read_wav_file {sr} waveform", wav, ref[f"read_{sr}"])
        rep.add(f"read_wav_file {sr} target_frame, pad_duration",
                np.array([target_frames(pad_duration), pad_duration]), ref[f"read_{sr}_meta"])
        tf = target_frames(pad_duration)
        _, stft = wav_feature_extraction(wav, tf)
        hz = cutoff_hz_from_stft(stft)
        key = f"prep_{sr}_lowpass"
        if key in errors:
            try:
                lowpass(wav.squeeze(), hz, ftype=ftype)
                ok = False
            except ValueError:
                ok = True
            rep.rows.append((f"prepare {sr} {ftype}: cut-off {hz:.0f} Hz, original raises too: {ok}",
                             0.0 if ok else math.inf, ok, 0.0))
            continue
        lp = torch.from_numpy(lowpass(wav.squeeze(), hz, ftype=ftype).astype(np.float32))[None]
        rep.add(f"prepare {sr} {ftype} waveform_lowpass (cut-off {hz:.0f} Hz)", lp.numpy(), ref[key], tol=1e-6)
        rep.add(f"prepare {sr} {ftype} lowpass_mel", wav_feature_extraction(lp, tf)[0].numpy(),
                ref[f"prep_{sr}_lowpass_mel"], tol=1e-4)

    meta = ref["pad_meta"]
    ours = np.array([(sr, n, target_frames(padded_duration(n / sr)), target_samples(padded_duration(n / sr)))
                     for sr, n, _, _ in meta], dtype=np.int64)
    rep.add(f"padded_duration/target_frames/target_samples ({len(meta)} lengths)", ours, meta)

    rep.print()
    failed = rep.failed()
    if failed:
        print(f"\n{len(failed)} check(s) failed", file=sys.stderr)
        return 1
    print(f"\nall {len(rep.rows)} checks within tolerance "
          f"({sum(r[2] for r in rep.rows)} bitwise)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oracle-side", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the arrays")
    args = ap.parse_args(argv)
    if args.oracle_side:
        _oracle_side(Path(args.oracle_side))
        return 0
    tmp = None
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="check_dsp_")
        workdir = Path(tmp.name)
    try:
        np.savez(workdir / "inputs.npz", **make_inputs(np.random.default_rng(20240607)))
        proc = subprocess.run([ORACLE_PYTHON, str(Path(__file__).resolve()), "--oracle-side", str(workdir)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            print("oracle side failed", file=sys.stderr)
            return 2
        return _project_side(workdir)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
