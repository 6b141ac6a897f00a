"""Strict checkpoint loading: every key is loaded, or ignored for a stated reason.

The original loads its checkpoint with ``strict=False`` and so never says
when a key is missing, unexpected or of the wrong shape. Here each key of the
file is classified against the model's parameters and buffers:

- ``matched``: same name, shape and dtype; it is loaded;
- ``ignored``: in a declared group that inference never uses (with reason);
- ``missing``: the model needs it and the file does not have it;
- ``unexpected``: the file has it, the model has no such name, no group covers it;
- ``shape_mismatch`` / ``dtype_mismatch``.

Anything but matched/ignored makes loading fail with one line naming the keys.
The same classification serves the `parity` report (audiosr_verify), which
runs it on a lazy listing without reading tensor data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from audiosr_model.errors import AudioSRError

if TYPE_CHECKING:  # torch is imported lazily: `parity` on a cached layout never needs it
    import torch


@dataclass(frozen=True)
class IgnoreGroup:
    name: str
    pattern: str  # regular expression matched against the full key
    reason: str

    def matches(self, key: str) -> bool:
        return re.match(self.pattern, key) is not None


IGNORE_GROUPS: tuple[IgnoreGroup, ...] = (
    IgnoreGroup(
        "ema",
        r"^model_ema\.",
        "EMA copy of the UNet kept for training; inference uses model.diffusion_model",
    ),
    IgnoreGroup(
        "clap",
        r"^clap\.",
        "CLAP audio/text encoder: constructed by the original DDPM, never called at inference",
    ),
    IgnoreGroup(
        "cond_vae_decoder",
        r"^cond_stage_models\.0\.vae\.(decoder|post_quant_conv)\.",
        "decoder half of the condition VAE: only its encoder runs",
    ),
    IgnoreGroup(
        "cond_vae_vocoder",
        r"^cond_stage_models\.0\.vae\.vocoder\.",
        "vocoder attached to the condition VAE: never called",
    ),
    IgnoreGroup(
        "logvar",
        r"^logvar$",
        "training loss weighting (learn_logvar=False); unused at inference",
    ),
)

# The first-stage encoder is needed only to learn the latent shape, which we
# compute. A model built without it declares the keys ignored with this group.
FIRST_STAGE_ENCODER_GROUP = IgnoreGroup(
    "first_stage_encoder",
    r"^first_stage_model\.(encoder|quant_conv)\.",
    "first-stage VAE encoder: the original runs it only to learn the latent shape",
)

STATUSES = ("matched", "ignored", "missing", "unexpected", "shape_mismatch", "dtype_mismatch")


@dataclass(frozen=True)
class KeyStatus:
    key: str
    status: str
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None
    dtype: str | None = None  # the checkpoint's dtype (the model's for missing keys)
    expected_dtype: str | None = None
    group: str | None = None
    reason: str | None = None


@dataclass
class KeyReport:
    keys: list[KeyStatus] = field(default_factory=list)

    def by_status(self, status: str) -> list[KeyStatus]:
        return [k for k in self.keys if k.status == status]

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(self.by_status(s)) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return all(k.status in ("matched", "ignored") for k in self.keys)

    def problems(self) -> list[KeyStatus]:
        return [k for k in self.keys if k.status not in ("matched", "ignored")]

    def summary_line(self, limit: int = 6) -> str:
        parts = []
        for status in STATUSES[2:]:
            items = self.by_status(status)
            if items:
                names = ", ".join(k.key for k in items[:limit])
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                parts.append(f"{len(items)} {status.replace('_', ' ')}: {names}{more}")
        return "; ".join(parts) if parts else "all keys accounted for"


Spec = tuple[tuple[int, ...], str]  # (shape, dtype name)


def dtype_name(dtype: "torch.dtype | str") -> str:
    return str(dtype).replace("torch.", "")


def tensor_specs(state: "Mapping[str, torch.Tensor]") -> dict[str, Spec]:
    return {k: (tuple(v.shape), dtype_name(v.dtype)) for k, v in state.items()}


def ignore_group_for(key: str, groups: tuple[IgnoreGroup, ...] = IGNORE_GROUPS) -> IgnoreGroup | None:
    for group in groups:
        if group.matches(key):
            return group
    return None


def classify_keys(
    expected: Mapping[str, Spec],
    actual: Mapping[str, Spec],
    groups: tuple[IgnoreGroup, ...] = IGNORE_GROUPS,
) -> KeyReport:
    """Classify every key of a checkpoint (``actual``) against the model (``expected``).

    Keys are reported in checkpoint order, then the missing ones in model order.
    """
    report = KeyReport()
    for key, (shape, dtype) in actual.items():
        if key in expected:
            exp_shape, exp_dtype = expected[key]
            if tuple(shape) != tuple(exp_shape):
                status = "shape_mismatch"
            elif dtype != exp_dtype:
                status = "dtype_mismatch"
            else:
                status = "matched"
            report.keys.append(
                KeyStatus(key, status, tuple(exp_shape), tuple(shape), dtype, exp_dtype)
            )
            continue
        group = ignore_group_for(key, groups)
        if group is not None:
            report.keys.append(
                KeyStatus(key, "ignored", None, tuple(shape), dtype, None, group.name, group.reason)
            )
        else:
            report.keys.append(KeyStatus(key, "unexpected", None, tuple(shape), dtype))
    for key, (shape, dtype) in expected.items():
        if key not in actual:
            report.keys.append(KeyStatus(key, "missing", tuple(shape), None, None, dtype))
    return report


def model_specs(model: "torch.nn.Module") -> dict[str, Spec]:
    """Names, shapes and dtypes of every persistent parameter and buffer (shared ones too)."""
    return tensor_specs(model.state_dict(keep_vars=True))


def groups_for(model: "torch.nn.Module") -> tuple[IgnoreGroup, ...]:
    first = getattr(model, "first_stage_model", None)
    if first is not None and not hasattr(first, "encoder"):
        return IGNORE_GROUPS + (FIRST_STAGE_ENCODER_GROUP,)
    return IGNORE_GROUPS


def load_into(model: "torch.nn.Module", state: "Mapping[str, torch.Tensor]", source: str = "checkpoint") -> KeyReport:
    """Load ``state`` into ``model`` strictly; raise AudioSRError unless every key is accounted for."""
    from audiosr_model.nets.vocoder import load_weight_norm_state

    state = load_weight_norm_state(dict(state))
    report = classify_keys(model_specs(model), tensor_specs(state), groups_for(model))
    if not report.ok:
        raise AudioSRError(f"checkpoint does not fit the model: {report.summary_line()}", source)
    wanted = {k.key: state[k.key] for k in report.by_status("matched")}
    model.load_state_dict(wanted, strict=True, assign=True)
    return report


def save_checkpoint(state: "Mapping[str, torch.Tensor]", path: str | Path, fmt: str | None = None) -> None:
    """Write ``state`` as the original format (``{"state_dict": ...}`` zip pickle) or safetensors.

    Published by ``audiosr_model.io.publish`` (temporary file, then rename): a
    failure, a full disk or an interruption leaves no partial checkpoint.
    """
    from audiosr_model.io.publish import publish_file, write_error

    path = Path(path)
    fmt = fmt or ("safetensors" if path.suffix == ".safetensors" else "bin")
    if fmt not in ("safetensors", "bin"):
        raise AudioSRError(f"unknown checkpoint format {fmt!r} (use bin or safetensors)", path)

    def write(tmp: Path) -> None:
        try:
            if fmt == "safetensors":
                from safetensors.torch import save_file

                # safetensors refuses aliased storages: give each key its own copy.
                save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(tmp))
            else:
                import torch

                torch.save({"state_dict": dict(state)}, tmp)
        except OSError:
            raise
        except Exception as exc:  # torch and safetensors report a failed write (disk full) as their own errors
            raise AudioSRError(f"cannot write checkpoint: {write_error(exc, path)}", path) from None

    publish_file(path, write, what="checkpoint")
