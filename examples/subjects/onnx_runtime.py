"""An ONNX Runtime port: our networks exported with torch.onnx, run by onnxruntime (CPU), as a subject.

    pip install "audiosr-verify[onnx]"
    python -m audiosr_verify check examples/subjects/onnx_runtime.py:make_subject --json onnx.json

The workflow of everyone who exports AudioSR to ONNX, OpenVINO or TensorRT:
the four networks leave PyTorch, the glue around them stays in Python.

* In ONNX Runtime (CPUExecutionProvider): the condition encoder (VAE encoder +
  quant_conv -> posterior mean and std), the UNet, the VAE decoder
  (post_quant_conv + decoder) and the HiFi-GAN vocoder. Each is exported once
  per checkpoint with ``torch.onnx.export(dynamo=True)`` and a dynamic time
  axis (and batch axis for the UNet), so the chunk length is not baked in;
  the files are cached (``--option onnx_dir=DIR``, default
  ``~/.cache/audiosr-verify/onnx/<checkpoint digest>``).
* GroupNorm is exported with its statistics accumulated in float64
  (`GroupNormFloat64Stats`, the same arithmetic). Exported as torch.onnx does by
  default (``--option groupnorm=onnx``: InstanceNormalization), ONNX Runtime
  accumulates the mean of each group's 131,072 values (512 frames x 256 bins)
  in float32, and `check` fails the condition encoder: its posterior is off by
  3.1e-4 against a bound of 1.2e-5 (the log-mel floor of -11.5 gives the
  groups of its first GroupNorm a large mean).
* Glue in Python, from `audiosr_model`: ``unet`` scales the condition by
  ``scale_factor`` and concatenates it to x; ``ddim_step`` is our DDIM and
  guidance math (`audiosr_model.diffusion`) around the ONNX UNet;
  ``vae_decode`` divides by ``scale_factor``.
* Delegated to `audiosr_model` (no network in them, an export would keep them
  in Python too): resample, normalize, features, cutoff, lowpass, randomness,
  ddim_schedule, mel_replace, postprocess, output_level. They make the
  chained view run the ONNX networks end to end from the audio file.
* Not provided: ``enhance``, the state-dict layout and named modules (an ONNX
  graph has initialisers, not torch modules).

Tolerances: the schema's (one fp32 forward within 1e-5 .. 2e-5); ONNX Runtime
stays well inside them (`python benchmarks/bench_onnx_runtime.py` measures the
minimal passing tolerance of every stage and the speed beside PyTorch).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from audiosr_verify.subjects.reference import ReferenceSubject

EXPORT_VERSION = "1"  # bump when the exported graphs change
NETWORKS = ("condition_encoder", "unet", "vae_decoder", "vocoder")
DSP_STAGES = ("resample", "normalize", "features", "cutoff", "lowpass", "randomness", "ddim_schedule",
              "mel_replace", "postprocess", "output_level")
ONNX_STAGES = ("condition_encode", "unet", "ddim_step", "vae_decode", "vocoder")


def _f32(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------- what is exported


class GroupNormFloat64Stats(torch.nn.Module):
    """``nn.GroupNorm`` with its mean and variance computed in float64 (output float32).

    What torch computes (one-pass Welford in float32 is accurate; ONNX Runtime's
    float32 ReduceMean over 131,072 values is not), in ops every runtime has.
    """

    def __init__(self, norm: torch.nn.GroupNorm):
        super().__init__()
        self.num_groups, self.eps = norm.num_groups, norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x):
        g = x.reshape(x.shape[0], self.num_groups, -1).double()
        mean = g.mean(-1, keepdim=True)
        centred = g - mean
        y = (centred / torch.sqrt((centred * centred).mean(-1, keepdim=True) + self.eps)).float().reshape(x.shape)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)


def with_float64_groupnorm(module: torch.nn.Module) -> int:
    """Replace every GroupNorm inside ``module`` (in place) by `GroupNormFloat64Stats`; the count."""
    n = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.GroupNorm):
                setattr(parent, name, GroupNormFloat64Stats(child))
                n += 1
    return n


class ConditionEncoder(torch.nn.Module):
    """log-mel [1, 1, T, 256] -> (mean, std) of the condition posterior [1, 16, T/8, 32]."""

    def __init__(self, net):
        super().__init__()
        self.vae = net.condition_vae

    def forward(self, mel):
        post = self.vae.encode(mel)
        return post.mean, post.std


class UNet(torch.nn.Module):
    """x_in [B, 32, L, 32] (x and the scaled condition), t [B] int64 -> v [B, 16, L, 32]."""

    def __init__(self, net):
        super().__init__()
        self.unet = net.unet

    def forward(self, x_in, t):
        return self.unet(x_in, t)


class VAEDecoder(torch.nn.Module):
    """latent / scale_factor [1, 16, L, 32] -> mel [1, 1, 8 L, 256]."""

    def __init__(self, net):
        super().__init__()
        self.vae = net.first_stage_model

    def forward(self, z):
        return self.vae.decode(z)


class Vocoder(torch.nn.Module):
    """mel [1, 256, T] -> waveform [1, 1, 480 T + 16]."""

    def __init__(self, net):
        super().__init__()
        self.generator = net.first_stage_model.vocoder

    def forward(self, mel):
        return self.generator(mel)


def _export_specs(net):
    """name -> (module, example inputs, input names, output names, dynamic shapes)."""
    from torch.export import Dim

    down = net.config.latent_downsample  # mel frames per latent frame (8)
    unet_factor = 2 ** (len(net.config.unet.channel_mult) - 1)  # the UNet halves L this often
    frames, bins = 512, net.config.audio.n_mel_channels
    latent = net.latent_shape((1, 1, frames, bins))
    unet_in = (2, latent[1] * 2, latent[2], latent[3])
    L = Dim("L", min=1, max=4096)
    B = Dim("B", min=1, max=64)
    T = Dim("T", min=16, max=262144)
    return {
        "condition_encoder": (ConditionEncoder(net), (torch.zeros(1, 1, frames, bins),), ["mel"],
                              ["posterior_mean", "posterior_std"], {"mel": {2: down * L}}),
        "unet": (UNet(net), (torch.zeros(unet_in), torch.full((2,), 501, dtype=torch.long)), ["x_in", "t"],
                 ["v_prediction"], {"x_in": {0: B, 2: unet_factor * L}, "t": {0: B}}),
        "vae_decoder": (VAEDecoder(net), (torch.zeros(latent),), ["z"], ["decoded_mel"], {"z": {2: L}}),
        "vocoder": (Vocoder(net), (torch.zeros(1, bins, frames),), ["mel"], ["waveform_48k"], {"mel": {2: T}}),
    }


def export_networks(net, directory: Path, groupnorm: str = "float64", key: str = "") -> dict[str, Path]:
    """Export the four networks of ``net`` to ``directory`` (atomically, one file each); their paths.

    ``groupnorm``: ``float64`` (GroupNorm statistics in float64, on a copy of ``net``) or ``onnx``
    (torch.onnx's own GroupNorm export). Files already there are reused when ``directory/export.key``
    holds ``key``; otherwise they are exported again.
    """
    import copy

    if groupnorm not in ("float64", "onnx"):
        raise ValueError(f"groupnorm={groupnorm!r}: use float64 or onnx")
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / "export.key"
    if not marker.exists() or marker.read_text() != key:
        for old in directory.glob("*.onnx"):
            old.unlink()
        marker.unlink(missing_ok=True)
    if groupnorm == "float64":
        net = copy.deepcopy(net)
        with_float64_groupnorm(net)
    paths = {}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    for name, (module, args, ins, outs, dynamic) in _export_specs(net).items():
        path = directory / f"{name}.onnx"
        paths[name] = path
        if path.exists():
            continue
        tmp = directory / f".{name}.{os.getpid()}.onnx"
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's progress lines would mix into check's report
            torch.onnx.export(module.eval(), args, str(tmp), dynamo=True, input_names=ins, output_names=outs,
                              dynamic_shapes=dynamic, external_data=False, verbose=False)
        tmp.replace(path)
    marker.write_text(key)
    return paths


def export_key(checkpoint: str, preset: str, groupnorm: str) -> str:
    """What the exported files depend on: the weights, the preset, the GroupNorm export, the versions."""
    import onnx

    h = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return (f"{preset}-{h.hexdigest()[:16]}-gn_{groupnorm}-torch{torch.__version__}-onnx{onnx.__version__}"
            f"-v{EXPORT_VERSION}")


def cache_dir(key: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiosr-verify" / "onnx" / key


# --------------------------------------------------------------------------- the subject


class OnnxRuntimePort(ReferenceSubject):
    name = "onnx-runtime"
    description = ("condition encoder, UNet, VAE decoder and vocoder exported with torch.onnx (dynamic time axis) "
                   "and run by onnxruntime (CPU); DSP stages delegated to audiosr_model")

    def __init__(self, context):
        super().__init__(context)
        self.sessions: dict = {}
        self.onnx_dir = context.options.get("onnx_dir")
        self.groupnorm = context.options.get("groupnorm", "float64")
        self.threads = int(context.options.get("threads", torch.get_num_threads()))

    def provided(self) -> frozenset[str]:
        return frozenset(DSP_STAGES + ONNX_STAGES)

    def state_dict_layout(self):
        return None  # the port has ONNX initialisers, not the original's state dict

    def module_root(self):
        return None  # no torch modules to name

    def activate(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("onnxruntime is not installed (pip install 'audiosr-verify[onnx]')") from None
        super().activate()  # our network with the checkpoint: exported, then used only for its constants
        key = export_key(self.context.checkpoint, self.preset, self.groupnorm)
        directory = Path(self.onnx_dir) if self.onnx_dir else cache_dir(key)
        paths = export_networks(self.net, directory, self.groupnorm, key)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        # ORT's idle threads spin by default, taking the CPU from the torch code that runs between calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {name: ort.InferenceSession(str(paths[name]), options, providers=["CPUExecutionProvider"])
                         for name in NETWORKS}
        self.scale_factor = np.float32(self.net.scale_factor.item())

    def deactivate(self) -> None:
        self.sessions = {}

    def _run(self, network: str, **inputs) -> list[np.ndarray]:
        return self.sessions[network].run(None, inputs)

    def _unet(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        (v,) = self._run("unet", x_in=_f32(x_in), t=np.ascontiguousarray(torch.as_tensor(t).numpy(), np.int64))
        return torch.from_numpy(v)

    # ------------------------------------------------------------------ the networks, in ONNX Runtime

    def condition_encode(self, log_mel):
        mean, std = self._run("condition_encoder", mel=_f32(log_mel)[None, None])
        return mean, std

    def unet(self, x, t, cond):
        x_in = np.concatenate([_f32(x), _f32(cond) * self.scale_factor], axis=1)
        return self._unet(torch.from_numpy(x_in), torch.as_tensor(t).long())

    def ddim_step(self, x, cond, index, steps, guidance, noise):
        from audiosr_model.sampling.ddim import ddim_step, guided_denoiser
        from audiosr_model.sampling.schedule import make_ddim_schedule

        net, cond = self.net, torch.from_numpy(_f32(cond))
        outputs: list[torch.Tensor] = []

        def unet(x_in, t):
            outputs.append(self._unet(x_in, t))
            return outputs[-1]

        sf = torch.tensor(self.scale_factor)
        denoise = guided_denoiser(unet, cond * sf, net.unconditional_latent(cond) * sf, float(guidance))
        schedule = make_ddim_schedule(net.alphas_cumprod, int(steps), net.config.diffusion.ddim_eta)
        step = ddim_step(denoise, torch.from_numpy(_f32(x)), schedule, int(index), net.vprediction(),
                         torch.from_numpy(_f32(noise)))
        result = {"x_prev": step.x, "pred_x0": step.pred_x0}
        if outputs[0].shape[0] == 2 * step.x.shape[0]:
            result["model_cond"], result["model_uncond"] = outputs[0].chunk(2)
        return result

    def vae_decode(self, z):
        (mel,) = self._run("vae_decoder", z=_f32(z) / self.scale_factor)
        return mel

    def vocoder(self, mel):
        m = _f32(mel)[:, 0].transpose(0, 2, 1)  # [1, 1, T, 256] -> [1, 256, T]
        (wave,) = self._run("vocoder", mel=np.ascontiguousarray(m))
        return wave[0, 0]


def make_subject(context):
    return OnnxRuntimePort(context)
