"""The stage schema of AudioSR inference: ONE definition for both sides of the parity check.

Stdlib only. Imported by the harness (our side) and, by file path, by the
oracle runner inside the original's venv, so stage names, fixture tensor
names, tolerances and the constants that describe the original cannot drift
apart (no constant is copied by hand between the two sides). Constants the
reference implementation (`audiosr_model`, which must not import the harness)
also holds are checked against this file by tests/test_schema.py.

A *stage* is one arrow of the data flow, a function with arrays in and arrays
out that an implementation under test (a *subject*) may provide::

    resample -> normalize -> features -> cutoff -> lowpass -> (features of the
    low-passed copy) -> condition_encode -> [ddim_step with unet] x steps
    -> vae_decode -> mel_replace -> vocoder -> postprocess -> output_level

plus ``ddim_schedule``, ``randomness`` (the original's draws from a seed),
``unet`` alone, and ``enhance`` (end to end). Each stage is compared with the
original's stored outputs (golden/oracle/<preset>) through the fixture tensors
listed in `STAGES`; each tensor has a tolerance and the reason for it.

Versioned: `SCHEMA_VERSION` changes whenever a stage's signature, a tensor's
meaning or a tolerance changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEMA_VERSION = "1"

# --------------------------------------------------------------------------- facts about the original

SAMPLE_RATE = 48000
HOP = 480  # mel hop at 48 kHz: T frames <-> 480 * T samples
N_MELS = 256
N_STFT_BINS = 1024  # wav_feature_extraction drops the last of the 1025 STFT bins (pad_spec)
FILTER_TYPES = ("butter", "cheby1", "ellip", "bessel")  # np.random.choice order of the original
COND_KEY = "concat_lowpass_cond"  # the original's conditioning key
UNCONDITIONAL_CONSTANT = -11.4981  # VAEFeatureExtract's unconditional condition (times scale_factor in the wrapper)
LOG_MEL_FLOOR = -11.512925  # log(1e-5): mel rows of zero padding

# Key groups of the original's state_dict that inference never uses (loaded by nobody).
IGNORED_PREFIXES = (
    "model_ema.",
    "clap.",
    "cond_stage_models.0.vae.decoder.",
    "cond_stage_models.0.vae.post_quant_conv.",
    "cond_stage_models.0.vae.vocoder.",
)
IGNORED_KEYS = ("logvar",)
# Buffers the original's register_schedule() computes from the config.
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
# The tiny preset, as overrides of the original's get_basic_config() (ORACLE.md).
TINY_OVERRIDES = {
    "vae_ddconfig": {"ch": 32, "ch_mult": [1, 2, 2, 4], "num_res_blocks": 1},
    "unet": {"model_channels": 32, "channel_mult": [1, 2], "attention_resolutions": [2], "num_res_blocks": 1,
             "num_head_channels": 16},
    "vocoder": {"upsample_initial_channel": 128, "resblock_kernel_sizes": [3, 7],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]]},
}

# --------------------------------------------------------------------------- tolerances

MODULE_ATOL = 1e-5  # one network forward in fp32 (reassociation across kernels and thread counts)
# Measured (AMD EPYC, 1 and 2 threads, against the Intel-made fixtures): float noise of the condition
# encoder up to 5.8e-6, of the UNet up to 9.8e-6 (the unconditional branch, whose constant input makes
# the largest activations). The subtlest real faults: GroupNorm eps 1e-5 for 1e-6 in the condition VAE
# moves the posterior mean by 2.5e-5; eps 1e-6 for 1e-5 in the UNet moves its output by 4.5e-5. Each
# bound sits near the geometric mean, about 2x from both sides.
COND_ATOL = 1.2e-5
UNET_ATOL = 2e-5
DDIM_ATOL = 1e-4  # guidance 3.5 amplifies module error over the steps
END2END_ATOL = 1e-4  # the whole chain from the audio file
# In the chained view every stage is fed the subject's own upstream outputs, so errors accumulate:
# a float tensor there is held to max(its own tolerance, CHAINED_ATOL), the end-to-end bound.
CHAINED_ATOL = END2END_ATOL
# Stages that sit on the chain from the audio file to the output (the others are checked alone).
CHAIN_STAGES = ("resample", "normalize", "features", "cutoff", "lowpass", "condition_encode", "ddim_step",
                "vae_decode", "mel_replace", "vocoder", "postprocess", "output_level")


@dataclass(frozen=True)
class Tolerance:
    """How far a subject's tensor may be from the original's: passes when every element has
    ``|subject - original| <= atol + rtol * |original|`` (both 0: bit for bit).

    Attributes:
        atol: absolute bound (for a set exported from a checkpoint, its calibrated bound replaces it
            where larger: `audiosr_verify.checks.calibration`).
        rtol: relative bound.
        why: what the bound was measured on, printed with the verdict.
    """

    atol: float
    rtol: float
    why: str

    @property
    def exact(self) -> bool:
        """True when nothing but the original's exact values pass."""
        return self.atol == 0 and self.rtol == 0


@dataclass(frozen=True)
class TensorSpec:
    """One array of a stage's signature: its name, shape (symbolic) and dtype.

    Attributes:
        name: the argument or output name (``log_mel``, ``x_prev``).
        shape: the shape in symbols (``[T, 256]``; ``T`` mel frames).
        dtype: ``float32``, ``float64``, ``int64``, or ``str``/``int`` for scalars.
        doc: one line on what it holds.
    """

    name: str
    shape: str
    dtype: str = "float32"
    doc: str = ""


@dataclass(frozen=True)
class Stage:
    """One function a subject may provide, and the original's tensors it is compared with.

    Attributes:
        name: the method name a subject implements (``vocoder``).
        doc: what the stage computes, as the original computes it.
        inputs: the arguments, in order.
        outputs: what it returns (a tuple in this order, a dict by these names, or the single output).
        fixtures: fixture tensor name (or pattern with ``*``: ``ddim.step*.x_prev``) -> its tolerance;
            each is one comparison row of this stage in a verdict.
        module_prefix: the stage's modules in the original's naming (``first_stage_model.vocoder``), for
            naming the first diverging module; None when the stage has no modules.
        optional_outputs: outputs a subject may leave out (compared when given).
    """

    name: str
    doc: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    fixtures: dict[str, Tolerance] = field(default_factory=dict)
    module_prefix: str | None = None
    optional_outputs: tuple[str, ...] = ()

    def signature(self) -> str:
        """``name(arg shape dtype, ...) -> out shape dtype, ...``: the line a subject's author implements."""
        def spec(t: TensorSpec) -> str:
            return f"{t.name} {t.shape} {t.dtype}".rstrip()

        ins = ", ".join(spec(t) for t in self.inputs)
        outs = ", ".join(spec(t) for t in self.outputs)
        return f"{self.name}({ins}) -> {outs}"


def _t(atol: float, rtol: float, why: str) -> Tolerance:
    return Tolerance(float(atol), float(rtol), why)


EXACT = 0.0

STAGES: tuple[Stage, ...] = (
    Stage(
        "resample",
        "any rate -> 48 kHz: torchaudio.functional.resample (windowed sinc) of every channel at once, as the "
        "original reads a file (it keeps channel 0 afterwards; a batch of one channel can round differently)",
        (TensorSpec("waveform", "[C, N]"), TensorSpec("rate", "int", "int")),
        (TensorSpec("waveform", "[C, M]", doc="M = ceil(N * 48000 / rate)"),),
        {"resample.waveform": _t(1e-6, 0, "float rounding only (another convolution order: a few ulps of full "
                                          "scale); a different kernel, window or width moves samples by 1e-3 and more")},
    ),
    Stage(
        "normalize",
        "audiosr.utils.normalize_wav: 0.5 * (x - mean) / (max|x - mean| + 1e-8)",
        (TensorSpec("waveform", "[N]"),),
        (TensorSpec("waveform", "[N]"),),
        {"normalize.waveform": _t(1e-7, 2.5e-7, "float rounding only (~2 ulps; numpy 2's pairwise mean differs "
                                              "from numpy 1's by 5e-10); eps 1e-6 for 1e-8 moves the peak by 6e-7")},
    ),
    Stage(
        "features",
        "wav_feature_extraction: log-mel and STFT magnitude of a padded waveform (T = N / 480 frames)",
        (TensorSpec("waveform", "[480*T]"),),
        (TensorSpec("log_mel", "[T, 256]"), TensorSpec("stft", "[T, 1024]")),
        {
            "features.log_mel": _t(1e-4, 0, "float rounding of another FFT (log domain); a window, padding or "
                                   "mel-scale change moves it by 1e-2 and more"),
            "features.stft_bin_sum": _t(0, 1e-5, "sums of ~500 magnitudes: float rounding only"),
            "features.stft_frames": _t(1e-5, 1e-5, "float rounding of another FFT"),
            "lowpass.log_mel": _t(1e-4, 0, "the same features of the low-passed copy (the condition's input)"),
        },
    ),
    Stage(
        "cutoff",
        "_locate_cutoff_freq(stft, 0.985): the STFT bin below which 98.5 % of the energy lies",
        (TensorSpec("stft", "[T, 1024]"),),
        (TensorSpec("bin", "int", "int"),),
        {"features.cutoff_bin": _t(EXACT, 0, "an integer")},
    ),
    Stage(
        "lowpass",
        "lowpass_filtering_prepare_inference with a given filter type: order-8 filter at the cutoff",
        (TensorSpec("waveform", "[N]"), TensorSpec("cutoff_hz", "float", "float64"),
         TensorSpec("filter_type", "str", "str")),
        (TensorSpec("waveform", "[N]"),),
        {"lowpass.*": _t(1e-6, 0, "float rounding of the filter (sosfiltfilt, second-order sections); another "
                                  "order, type or cutoff moves it by 1e-3 and more")},
    ),
    Stage(
        "randomness",
        "the original's random draws for a seed: np.random.choice of the filter type, then torch.randn "
        "[1, 16, T/8, 32] for #1 target posterior, #2 condition posterior, #3 x_T, #4.. DDIM steps",
        (TensorSpec("seed", "int", "int"), TensorSpec("latent_shape", "[4]", "int"), TensorSpec("count", "int", "int")),
        (TensorSpec("filter_type", "str", "str"), TensorSpec("draws", "count x [1, 16, T/8, 32]")),
        {
            "random.filter_type": _t(EXACT, 0, "np.random.choice after seeding"),
            "random.draws": _t(EXACT, 0, "torch CPU generator, same order (sha256 of the raw draws)"),
        },
    ),
    Stage(
        "condition_encode",
        "the condition VAE's encoder on the low-pass log-mel: the posterior's mean and std",
        (TensorSpec("log_mel", "[T, 256]"),),
        (TensorSpec("mean", "[1, 16, T/8, 32]"), TensorSpec("std", "[1, 16, T/8, 32]")),
        {
            "cond.posterior_mean": _t(COND_ATOL, 0, "one VAE encoder forward in fp32: noise <= 5.8e-6, "
                                      "GroupNorm eps fault 2.5e-5"),
            "cond.posterior_std": _t(COND_ATOL, 0, "one VAE encoder forward in fp32"),
            "cond.latent": _t(COND_ATOL, 0, "mean + std * the original's draw #2 (computed by the harness)"),
        },
        module_prefix="cond_stage_models.0.vae",
    ),
    Stage(
        "unet",
        "apply_model: the UNet's v-prediction for x at timestep t with the UNSCALED condition latent "
        "(the subject multiplies it by scale_factor and concatenates, as the original's wrapper does)",
        (TensorSpec("x", "[B, 16, T/8, 32]"), TensorSpec("t", "[B]", "int64"), TensorSpec("cond", "[B, 16, T/8, 32]")),
        (TensorSpec("v", "[B, 16, T/8, 32]"),),
        {
            "unet.out.t*": _t(UNET_ATOL, 0, "one UNet forward in fp32: noise <= 9.8e-6, GroupNorm eps fault 4.5e-5"),
            "unet.out_uncond.t*": _t(UNET_ATOL, 0, "one UNet forward in fp32 on the constant condition"),
        },
        module_prefix="model.diffusion_model",
    ),
    Stage(
        "ddim_schedule",
        "DDIMSampler.make_schedule for a number of steps: timesteps (ascending) and a_t, a_prev, sigma_t",
        (TensorSpec("steps", "int", "int"),),
        (TensorSpec("timesteps", "[S]", "int64"), TensorSpec("alphas", "[S]"), TensorSpec("alphas_prev", "[S]"),
         TensorSpec("sigmas", "[S]")),
        {
            "ddim.timesteps": _t(EXACT, 0, "integers"),
            "ddim.schedule": _t(0, 1e-6, "a_t, a_prev, sigma_t as the step uses them (float32): rounding only"),
        },
    ),
    Stage(
        "ddim_step",
        "DDIMSampler.p_sample_ddim: both UNet branches (the unconditional one on the constant "
        "condition), classifier-free guidance, the DDIM update with the given noise (eta 1)",
        (TensorSpec("x", "[1, 16, T/8, 32]"), TensorSpec("cond", "[1, 16, T/8, 32]", doc="unscaled"),
         TensorSpec("index", "int", "int", "position in the schedule, counting down"),
         TensorSpec("steps", "int", "int"), TensorSpec("guidance", "float", "float64"),
         TensorSpec("noise", "[1, 16, T/8, 32]", doc="raw randn, before * sigma_t")),
        (TensorSpec("x_prev", "[1, 16, T/8, 32]"), TensorSpec("pred_x0", "[1, 16, T/8, 32]"),
         TensorSpec("model_cond", "[1, 16, T/8, 32]"), TensorSpec("model_uncond", "[1, 16, T/8, 32]")),
        {
            "ddim.step*.model_cond": _t(UNET_ATOL, 0, "UNet forward (may be batched with the other branch)"),
            "ddim.step*.model_uncond": _t(UNET_ATOL, 0, "UNet forward (may be batched with the other branch)"),
            "ddim.step*.pred_x0": _t(DDIM_ATOL, 0, "guidance 3.5 amplifies module error"),
            "ddim.step*.x_prev": _t(DDIM_ATOL, 0, "guidance 3.5 amplifies module error"),
        },
        module_prefix="model.diffusion_model",
        optional_outputs=("model_cond", "model_uncond"),
    ),
    Stage(
        "vae_decode",
        "decode_first_stage: the first-stage VAE decoder on latent / scale_factor",
        (TensorSpec("z", "[1, 16, T/8, 32]", doc="scaled latent, as the sampler returns it"),),
        (TensorSpec("mel", "[1, 1, T, 256]"),),
        {"mel.decoded": _t(MODULE_ATOL, 0, "one VAE decoder forward in fp32")},
        module_prefix="first_stage_model",
    ),
    Stage(
        "mel_replace",
        "mel_replace_ops: the decoded mel's bins below the low-pass mel's cutoff taken from the low-pass mel",
        (TensorSpec("mel", "[1, 1, T, 256]"), TensorSpec("lowpass_mel", "[1, 1, T, 256]")),
        (TensorSpec("mel", "[1, 1, T, 256]"),),
        {"mel.replaced": _t(EXACT, 0, "a copy of columns")},
    ),
    Stage(
        "vocoder",
        "HiFi-GAN (48 kHz configuration): mel -> waveform of 480 * T + 16 samples",
        (TensorSpec("mel", "[1, 1, T, 256]"),),
        (TensorSpec("waveform", "[480*T+16]"),),
        {"vocoder.waveform": _t(MODULE_ATOL, 0, "one HiFi-GAN forward in fp32")},
        module_prefix="first_stage_model.vocoder",
    ),
    Stage(
        "postprocess",
        "LatentDiffusion.postprocessing: librosa STFT of the vocoder output, bins below the input's "
        "cutoff replaced by the low-passed input's (energy ratio clamped to [0.8, 1.2])",
        (TensorSpec("waveform", "[M]"), TensorSpec("lowpass_waveform", "[N]")),
        (TensorSpec("waveform", "[M]"), TensorSpec("cutoff_index", "int", "int"),
         TensorSpec("energy_ratio", "float", "float64", "unclamped")),
        {
            "post.cutoff_index": _t(EXACT, 0, "an integer"),
            "post.energy_ratio": _t(0, 1e-6, "float32 sums of librosa-STFT magnitudes"),
            "post.waveform": _t(MODULE_ATOL, 0, "librosa STFT/ISTFT arithmetic (~1e-6)"),
        },
        optional_outputs=("cutoff_index", "energy_ratio"),
    ),
    Stage(
        "output_level",
        "generate_batch's output level: 0.5 * x / max|x|, then minus its mean (over the full length)",
        (TensorSpec("waveform", "[M]"),),
        (TensorSpec("waveform", "[M]"),),
        {"final.waveform": _t(MODULE_ATOL, 0, "peak and mean of the post-processed waveform")},
    ),
    Stage(
        "enhance",
        "super_resolution end to end from the audio at its own rate (channel 0, faithful level), seeded; "
        "where the original raises, a finite output of the input's length is required instead",
        (TensorSpec("waveform", "[N] or [C, N]"), TensorSpec("rate", "int", "int"), TensorSpec("seed", "int", "int"),
         TensorSpec("steps", "int", "int"), TensorSpec("guidance", "float", "float64")),
        (TensorSpec("waveform", "[ceil(N * 48000 / rate)]", doc="the resampled input's length, as the original"),),
        {
            "end2end.waveform": _t(END2END_ATOL, 0, "the whole chain from the audio file, faithful level, seed 42"),
            "end2end.behaviour": _t(EXACT, 0, "the original raises; a subject must return finite audio instead"),
        },
    ),
)

STAGE_NAMES = tuple(s.name for s in STAGES)
STATE_DICT = "state_dict"  # the layout check, reported as a stage before all others


def stage(name: str) -> Stage:
    """The schema's stage called ``name`` (`KeyError` naming the stages when there is none)."""
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; the schema has {', '.join(STAGE_NAMES)}")



def enhance_length(samples: int, rate: int) -> int:
    """Samples of a subject's `enhance` output: the input resampled to 48 kHz, as torchaudio counts them
    (ceil of samples * 48000 / rate, rates reduced by their gcd); the original's output is compared over it."""
    import math

    g = math.gcd(int(rate), SAMPLE_RATE)
    return math.ceil(SAMPLE_RATE // g * int(samples) / (int(rate) // g))


def named_outputs(stage_name: str, value):
    """A stage's return value as {output name: value}: a dict as is, a tuple or list in the schema's
    output order, anything else as the stage's single output."""
    names = [t.name for t in stage(stage_name).outputs]
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (tuple, list)) and len(names) > 1:
        return dict(zip(names, value))
    return {names[0]: value}


def _pattern(name: str) -> str:
    """``ddim.step1.x_prev`` -> ``ddim.step*.x_prev``; ``unet.out.t501`` -> ``unet.out.t*``."""
    name = re.sub(r"step\d+", "step*", name)
    return re.sub(r"\.t\d+$", ".t*", name)


def stage_of(fixture: str) -> Stage:
    """The stage a fixture tensor (comparison row) belongs to."""
    if fixture.endswith(".call") and fixture[: -len(".call")] in STAGE_NAMES:
        return stage(fixture[: -len(".call")])  # the row of a stage call that raised
    pat = _pattern(fixture)
    lowpass = fixture.startswith("lowpass.") and fixture.split(".", 1)[1] in FILTER_TYPES
    for s in STAGES:
        if fixture in s.fixtures or pat in s.fixtures or (lowpass and "lowpass.*" in s.fixtures):
            return s
    raise KeyError(f"fixture tensor {fixture!r} belongs to no stage of schema {SCHEMA_VERSION}")


# Chained-view bounds that the end-to-end bound cannot cover. The log-mel of a waveform amplifies
# float noise in bins near its floor (log of 1e-5): the resampler's convolution, run with 1 thread
# instead of 2 (another reduction order), moves tone_mix_8k's resampled waveform by 1.2e-7 (1 ulp)
# and, through it, its log-mel by 2.7e-3 (measured, AMD EPYC; the teacher view, fed the original's
# waveform, stays within 1e-4). 1e-2 leaves 3.7x; every features fault is caught in the teacher view
# first and moves the log-mel by 0.26 and more (docs/faults.md, "Porting faults the harness catches").
CHAINED_OVERRIDES = {
    "features.log_mel": _t(1e-2, 0, "chained: 1 ulp of resampler noise moves near-floor log-mel bins by 2.7e-3"),
    "lowpass.log_mel": _t(1e-2, 0, "chained: 1 ulp of resampler noise moves near-floor log-mel bins by 2.1e-3"),
}


def tolerance(fixture: str, view: str = "teacher") -> Tolerance:
    """The tolerance of a fixture tensor; in the chained view at least `CHAINED_ATOL` (errors accumulate)."""
    t = _stage_tolerance(fixture)
    if view == "chained" and fixture in CHAINED_OVERRIDES:
        return CHAINED_OVERRIDES[fixture]
    if view == "chained" and t.atol < CHAINED_ATOL:
        return Tolerance(CHAINED_ATOL, t.rtol, f"{t.why}; chained: upstream errors accumulate (end-to-end bound)")
    return t


def _stage_tolerance(fixture: str) -> Tolerance:
    s = stage_of(fixture)
    if fixture in s.fixtures:
        return s.fixtures[fixture]
    pat = _pattern(fixture)
    if pat in s.fixtures:
        return s.fixtures[pat]
    return s.fixtures["lowpass.*"]


def rank(fixture: str) -> tuple[int, int, int]:
    """Sort key of a comparison row: stage order, then DDIM step / timestep, then row order in the stage."""
    s = stage_of(fixture)
    names = list(s.fixtures)
    pat = _pattern(fixture)
    key = fixture if fixture in names else (pat if pat in names else "lowpass.*")
    step = re.search(r"step(\d+)", fixture)
    t = re.search(r"\.t(\d+)$", fixture)
    sub = int(step.group(1)) if step else (int(t.group(1)) if t else 0)
    return (STAGE_NAMES.index(s.name), sub, names.index(key) if key in names else -1)


__all__ = [
    "CHAIN_STAGES", "CHAINED_ATOL", "COND_KEY", "FILTER_TYPES", "IGNORED_KEYS", "IGNORED_PREFIXES", "SCHEDULE_BUFFERS", "SCHEMA_VERSION",
    "STAGES", "STAGE_NAMES", "STATE_DICT", "Stage", "TINY_OVERRIDES", "TensorSpec", "Tolerance",
    "UNCONDITIONAL_CONSTANT", "rank", "stage", "stage_of", "tolerance",
]
