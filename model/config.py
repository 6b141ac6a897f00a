"""Configuration of an AudioSR model as frozen dataclasses.

The fields mirror the original `audiosr.utils.get_basic_config()` (and the
48 kHz vocoder config of `audiosr/utilities/model.py`) so that a preset can be
checked field by field against the original. Presets:

- ``basic``: the released ``audiosr_basic`` and ``audiosr_speech`` layout;
- ``tiny``: same classes, small widths (ORACLE.md), for tests and the bundled
  default.

YAML round-trip: ``save_yaml(config, path)`` / ``load_yaml(path)``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiosr_model.errors import AudioSRError


@dataclass(frozen=True)
class AudioConfig:
    """Front end: the STFT/mel of `mel_spectrogram_train`."""

    sampling_rate: int = 48000
    filter_length: int = 2048  # n_fft
    hop_length: int = 480
    win_length: int = 2048
    n_mel_channels: int = 256
    mel_fmin: float = 20.0
    mel_fmax: float = 24000.0
    segment_seconds: float = 5.12  # inputs are padded to a multiple of this


@dataclass(frozen=True)
class VAEConfig:
    """AutoencoderKL `ddconfig` plus `embed_dim`."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()
    z_channels: int = 16
    embed_dim: int = 16
    in_channels: int = 1
    out_ch: int = 1
    resolution: int = 256
    mel_bins: int = 256
    double_z: bool = True
    downsample_time: bool = False
    dropout: float = 0.1  # inference ignores it; kept so the config mirrors the original


@dataclass(frozen=True)
class UNetConfig:
    """openaimodel `UNetModel` parameters as the original config sets them."""

    image_size: int = 64
    in_channels: int = 32  # latent (16) + low-pass condition latent (16)
    out_channels: int = 16
    model_channels: int = 128
    attention_resolutions: tuple[int, ...] = (8, 4, 2)
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 2, 3, 5)
    num_head_channels: int = 32
    extra_sa_layer: bool = True
    use_spatial_transformer: bool = True
    transformer_depth: int = 1


@dataclass(frozen=True)
class VocoderConfig:
    """HiFi-GAN `Generator` (hifigan/models.py) with the 48 kHz config."""

    num_mels: int = 256
    upsample_rates: tuple[int, ...] = (6, 5, 4, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (12, 10, 8, 4, 4)
    upsample_initial_channel: int = 1536
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11, 15)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = (
        (1, 3, 5),
        (1, 3, 5),
        (1, 3, 5),
        (1, 3, 5),
    )

    @property
    def hop(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule and sampler defaults of `LatentDiffusion`."""

    timesteps: int = 1000
    beta_schedule: str = "cosine"
    linear_start: float = 0.0015
    linear_end: float = 0.0195
    cosine_s: float = 8e-3
    parameterization: str = "v"
    latent_channels: int = 16
    latent_f_size: int = 32
    scale_factor: float = 1.0  # the checkpoint's `scale_factor` buffer overrides this
    unconditional_constant: float = -11.4981  # VAEFeatureExtract.unconditional_cond
    guidance_scale: float = 3.5
    ddim_steps: int = 200  # the original's default; the CLI defaults to 50
    ddim_eta: float = 1.0


@dataclass(frozen=True)
class ModelConfig:
    name: str = "basic"
    audio: AudioConfig = field(default_factory=AudioConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    @property
    def latent_downsample(self) -> int:
        """Mel frames (and bins) per latent cell: 2 ** (len(ch_mult) - 1)."""
        return 2 ** (len(self.vae.ch_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def basic() -> ModelConfig:
    return ModelConfig(name="basic")


def tiny() -> ModelConfig:
    """The tiny configuration of ORACLE.md: same classes, small widths.

    GroupNorm uses 32 groups, so every width is a multiple of 32; the vocoder's
    upsample rates still multiply to 480 (the mel hop).
    """
    return ModelConfig(
        name="tiny",
        vae=VAEConfig(ch=32, ch_mult=(1, 2, 2, 4), num_res_blocks=1),
        unet=UNetConfig(
            model_channels=32,
            channel_mult=(1, 2),
            attention_resolutions=(2,),
            num_res_blocks=1,
            num_head_channels=16,
        ),
        vocoder=VocoderConfig(
            upsample_initial_channel=128,
            resblock_kernel_sizes=(3, 7),
            resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
        ),
    )


PRESETS = {"basic": basic, "tiny": tiny}


CONFIG_SUFFIXES = (".yaml", ".yml")


def is_config_file(name: str) -> bool:
    """A preset argument that names a configuration file (`preset` reads it) rather than a preset."""
    return str(name).lower().endswith(CONFIG_SUFFIXES)


def preset(name: str) -> ModelConfig:
    """A preset by name (``basic``, ``tiny``), or the configuration in a YAML file (``path/to/model.yaml``).

    The file form lets a configuration that is neither preset travel wherever a preset name does
    (fixture sets made from such a checkpoint record it: ``oracle export --config``).
    """
    if is_config_file(name):
        return load_yaml(name)
    try:
        return PRESETS[name]()
    except KeyError:
        raise AudioSRError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))} or a configuration file "
            f"({' or '.join(CONFIG_SUFFIXES)})"
        ) from None


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


# Allowed values where not every value of the type is meaningful.
_CHOICES = {
    ("diffusion", "beta_schedule"): ("cosine", "linear"),
    ("diffusion", "parameterization"): ("v",),  # the sampler is v-prediction, as AudioSR
    ("vocoder", "resblock"): ("1",),  # the original's HiFi-GAN has ResBlock V1 only
    ("audio", "sampling_rate"): (48000,),  # the pipeline works at 48 kHz
}
# Numbers that may be zero (everything else that counts or sizes something must be >= 1).
_MAY_BE_ZERO = {("vae", "dropout"), ("audio", "mel_fmin"), ("diffusion", "ddim_eta"),
                ("diffusion", "guidance_scale")}
_MAY_BE_NEGATIVE = {("diffusion", "unconditional_constant"), ("diffusion", "scale_factor")}
_MAY_BE_EMPTY = {("vae", "attn_resolutions"), ("unet", "attention_resolutions")}
MAX_SIZE = 1 << 20  # no width, count or length of a real configuration comes near it
_SECTIONS = {"audio": AudioConfig, "vae": VAEConfig, "unet": UNetConfig, "vocoder": VocoderConfig,
             "diffusion": DiffusionConfig}


def _type_name(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def _check_number(where: tuple[str, str], value: Any, kind: type, label: str) -> Any:
    if kind is int:
        if type(value) is not int:
            raise AudioSRError(f"{label} must be a whole number, not {_type_name(value)} {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AudioSRError(f"{label} must be a finite number, not {_type_name(value)} {value!r}")
    if where in _MAY_BE_NEGATIVE:
        pass
    elif where in _MAY_BE_ZERO:
        if value < 0:
            raise AudioSRError(f"{label} must not be negative, got {value!r}")
    elif value <= 0:
        raise AudioSRError(f"{label} must be positive, got {value!r}")
    if kind is int and value > MAX_SIZE:
        raise AudioSRError(f"{label} is {value!r}; at most {MAX_SIZE} is accepted")
    return float(value) if kind is float else value


def _check_value(where: tuple[str, str], value: Any, annotation: Any, label: str) -> Any:
    """``value`` converted to the field's type (lists become tuples), or a one-line error."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise AudioSRError(f"{label} must be a list, not {_type_name(value)} {value!r}")
        if not value and where not in _MAY_BE_EMPTY:
            raise AudioSRError(f"{label} must not be empty")
        if len(value) > 64:
            raise AudioSRError(f"{label} has {len(value)} entries; at most 64 are accepted")
        item = typing.get_args(annotation)[0]
        return tuple(_check_value(where, v, item, f"{label}[{i}]") for i, v in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise AudioSRError(f"{label} must be true or false, not {_type_name(value)} {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise AudioSRError(f"{label} must be a string, not {_type_name(value)} {value!r}")
        return value
    if annotation in (int, float):
        return _check_number(where, value, annotation, label)
    raise TypeError(f"unsupported config field type {annotation!r}")  # pragma: no cover - a bug here


def _check_consistency(config: ModelConfig) -> None:
    """Relations between sections the network and the pipeline rely on."""
    a, vae, unet, voc = config.audio, config.vae, config.unet, config.vocoder
    if voc.hop != a.hop_length:
        raise AudioSRError(f"vocoder.upsample_rates multiply to {voc.hop}, but audio.hop_length is {a.hop_length}")
    if len(voc.upsample_rates) != len(voc.upsample_kernel_sizes):
        raise AudioSRError("vocoder.upsample_rates and vocoder.upsample_kernel_sizes differ in length")
    if len(voc.resblock_kernel_sizes) != len(voc.resblock_dilation_sizes):
        raise AudioSRError("vocoder.resblock_kernel_sizes and vocoder.resblock_dilation_sizes differ in length")
    if not a.n_mel_channels == vae.mel_bins == voc.num_mels:
        raise AudioSRError(f"audio.n_mel_channels ({a.n_mel_channels}), vae.mel_bins ({vae.mel_bins}) and "
                           f"vocoder.num_mels ({voc.num_mels}) must be equal")
    if a.mel_fmax <= a.mel_fmin or a.mel_fmax > a.sampling_rate / 2:
        raise AudioSRError(f"audio.mel_fmin/mel_fmax ({a.mel_fmin}, {a.mel_fmax}) must satisfy "
                           f"0 <= fmin < fmax <= {a.sampling_rate // 2}")
    if not 0 <= vae.dropout < 1:
        raise AudioSRError(f"vae.dropout must be in [0, 1), got {vae.dropout}")
    if config.diffusion.linear_end <= config.diffusion.linear_start:
        raise AudioSRError("diffusion.linear_end must be larger than diffusion.linear_start")
    if unet.in_channels != 2 * vae.embed_dim or unet.out_channels != vae.embed_dim:
        raise AudioSRError(f"unet.in_channels/out_channels ({unet.in_channels}, {unet.out_channels}) must be "
                           f"twice and once vae.embed_dim ({vae.embed_dim})")
    for name, width in (("vae.ch", vae.ch), ("unet.model_channels", unet.model_channels)):
        if width % 32:
            raise AudioSRError(f"{name} is {width}; GroupNorm uses 32 groups, so it must be a multiple of 32")


def from_dict(data: dict[str, Any]) -> ModelConfig:
    """Build a config from nested plain data (YAML/JSON): unknown fields, wrong types, sizes <= 0 refused.

    Every error is one `AudioSRError` line naming the field (``vae.ch must be
    positive, got -3``); the caller adds the file.
    """
    if not isinstance(data, dict):
        raise AudioSRError(f"a configuration must be a mapping, not {_type_name(data)}")
    name = data.get("name", "custom")
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise AudioSRError(f"name must be a string, not {_type_name(name)}")
    kwargs: dict[str, Any] = {"name": str(name)}
    unknown = set(data) - set(_SECTIONS) - {"name"}
    if unknown:
        raise AudioSRError(f"unknown config section(s): {', '.join(sorted(map(str, unknown)))}")
    for section, cls in _SECTIONS.items():
        values = data.get(section, {}) or {}
        if not isinstance(values, dict):
            raise AudioSRError(f"{section} must be a mapping of fields, not {_type_name(values)}")
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - names
        if bad:
            raise AudioSRError(f"unknown field(s) in {section}: {', '.join(sorted(map(str, bad)))}")
        hints = typing.get_type_hints(cls)
        checked = {}
        for key, value in values.items():
            value = _check_value((section, key), value, hints[key], f"{section}.{key}")
            choices = _CHOICES.get((section, key))
            if choices is not None and value not in choices:
                raise AudioSRError(f"{section}.{key} is {value!r}; supported: {', '.join(map(str, choices))}")
            checked[key] = value
        kwargs[section] = cls(**checked)
    config = ModelConfig(**kwargs)
    _check_consistency(config)
    return config


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors and aliases.

    A configuration never needs them, and aliases let a small file expand
    into an enormous structure once converted ("billion laughs").
    """

    def compose_node(self, parent, index):  # noqa: D401 - yaml's hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted in a configuration",
                                              event.start_mark)
        return super().compose_node(parent, index)


def save_yaml(config: ModelConfig, path: str | Path) -> None:
    from audiosr_model.io.publish import publish_file

    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    publish_file(path, lambda tmp: Path(tmp).write_text(text), what="config")


def load_yaml(path: str | Path) -> ModelConfig:
    """A YAML configuration (``--config``): bounded, regular file, safe types, every value checked."""
    from audiosr_model.io.safe_open import MAX_CONFIG_BYTES, read_text

    text = read_text(path, "configuration", max_bytes=MAX_CONFIG_BYTES)
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise AudioSRError("config is nested too deeply", path) from None
    except yaml.YAMLError as exc:
        raise AudioSRError(f"cannot read config: {exc}", path) from None
    if not isinstance(data, dict):
        raise AudioSRError("config must be a mapping", path)
    try:
        return from_dict(data)
    except AudioSRError as exc:
        raise AudioSRError(str(exc), path) from None
