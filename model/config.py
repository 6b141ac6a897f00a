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


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise AudioSRError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}"
        ) from None


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value


def from_dict(data: dict[str, Any]) -> ModelConfig:
    """Build a config from nested plain data (YAML/JSON), rejecting unknown fields."""
    sections = {
        "audio": AudioConfig,
        "vae": VAEConfig,
        "unet": UNetConfig,
        "vocoder": VocoderConfig,
        "diffusion": DiffusionConfig,
    }
    kwargs: dict[str, Any] = {"name": str(data.get("name", "custom"))}
    unknown = set(data) - set(sections) - {"name"}
    if unknown:
        raise AudioSRError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    for section, cls in sections.items():
        values = data.get(section, {}) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - names
        if bad:
            raise AudioSRError(f"unknown field(s) in {section}: {', '.join(sorted(bad))}")
        kwargs[section] = cls(**{k: _to_tuples(v) for k, v in values.items()})
    return ModelConfig(**kwargs)


def save_yaml(config: ModelConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_yaml(path: str | Path) -> ModelConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AudioSRError(f"cannot read config: {exc}", path) from None
    if not isinstance(data, dict):
        raise AudioSRError("config must be a mapping", path)
    return from_dict(data)
