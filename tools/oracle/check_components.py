"""Numerical parity of model.vae / model.vocoder with the ORIGINAL classes.

Run from the project venv:

    /work/venv/bin/python tools/oracle/check_components.py \
        [--oracle-python /work/oracle-venv/bin/python] [--workdir /tmp/audiosr_components] [--tol 1e-5]

It runs itself a second time inside the oracle venv (``--oracle-side``),
where it builds the original ``AutoencoderKL`` (which owns a HiFi-GAN) and
``hifigan.models.Generator`` with tiny configs, fills every parameter from a
seeded generator, runs them, and saves state_dict + inputs + outputs as one
safetensors file per case. Back in the project venv, each state_dict is
loaded STRICTLY into our modules, which are run on the same inputs; the
maximum absolute error of every output is printed (and written to
``WORKDIR/results.json``). Exit status 1 if any exceeds ``--tol``.

Cases:

- ``vae_tiny``: ORACLE.md tiny VAE, no attention outside the middle,
  mel [1,1,512,256] (5.12 s) and latent [1,16,64,32];
- ``vae_tiny_attn``: the same with ``attn_resolutions=[64, 32]`` (AttnBlocks
  in two encoder and two decoder levels), batch 2, smaller mel;
- ``vocoder_tiny``: tiny HiFi-GAN on mel [1,256,512]; also checks that
  ``load_weight_norm_state`` of the weight-normed state equals the state after
  the original's ``remove_weight_norm()``.

The posterior sample is compared too: the original draws from the global RNG
after ``torch.manual_seed(SAMPLE_SEED)``; ours gets a generator with that seed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WEIGHT_SEED = 1234
INPUT_SEED = 99
SAMPLE_SEED = 42
DEFAULT_ORACLE_PYTHON = "/work/oracle-venv/bin/python"


# --------------------------------------------------------------------------
# oracle side (runs in the oracle venv; imports only the original code)


def randomize_(module: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded values that keep activations O(1).

    Default inits leave GroupNorm at (1, 0) and the HiFi-GAN convs at
    N(0, 0.01), which would hide errors in the affine terms and drown the
    vocoder's signal; scale weights by 1/sqrt(fan_in) instead.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "weight_g":
                p.copy_(1.0 + 0.2 * noise)  # per-row norm of the weight
            elif p.ndim == 1 and leaf == "weight":  # GroupNorm scale
                p.copy_(1.0 + 0.2 * noise)
            elif p.ndim == 1:  # biases, GroupNorm shift
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / math.sqrt(p[0].numel()))


def _oracle_vae_case(name: str, ddconfig_overrides: dict, mel_shape, outdir: Path) -> None:
    import dump_component_manifests as dcm

    ddconfig, embed_dim, vocoder_h = dcm.original_configs("tiny")
    ddconfig.update(ddconfig_overrides)
    vae = dcm.build_original_vae(ddconfig, embed_dim, vocoder_h)
    randomize_(vae, WEIGHT_SEED)
    vae.eval()

    gen = torch.Generator().manual_seed(INPUT_SEED)
    mel = torch.randn(mel_shape, generator=gen) * 2.0 - 5.0  # log-mel-like range
    down = 2 ** (len(ddconfig["ch_mult"]) - 1)
    z = torch.randn((mel_shape[0], embed_dim, mel_shape[2] // down, mel_shape[3] // down), generator=gen)
    with torch.no_grad():
        posterior = vae.encode(mel)
        torch.manual_seed(SAMPLE_SEED)
        sample = posterior.sample()
        decoded = vae.decode(z)
    tensors = {f"state.{k}": v.contiguous().clone() for k, v in vae.state_dict().items()}
    tensors.update({
        "in.mel": mel, "in.z": z,
        "out.moments": posterior.parameters, "out.mean": posterior.mean, "out.std": posterior.std,
        "out.sample": sample, "out.decoded": decoded,
    })
    meta = {"kind": "vae", "ddconfig": ddconfig, "embed_dim": embed_dim, "vocoder_h": vocoder_h}
    save_file({k: v.contiguous().clone() for k, v in tensors.items()}, outdir / f"{name}.safetensors",
              metadata={"config": json.dumps(meta)})


def _oracle_vocoder_case(name: str, frames: int, outdir: Path) -> None:
    import dump_component_manifests as dcm

    _, _, vocoder_h = dcm.original_configs("tiny")
    vocoder = dcm.build_original_vocoder(vocoder_h, remove_weight_norm=False)
    randomize_(vocoder, WEIGHT_SEED)  # randomizes weight_g / weight_v / bias
    wn_state = {k: v.detach().clone() for k, v in vocoder.state_dict().items()}
    vocoder.remove_weight_norm()  # what get_vocoder does
    mel = torch.randn((1, vocoder_h["num_mels"], frames), generator=torch.Generator().manual_seed(INPUT_SEED))
    with torch.no_grad():
        wav = vocoder(mel)
    tensors = {f"state.{k}": v.contiguous().clone() for k, v in vocoder.state_dict().items()}
    tensors.update({f"wnstate.{k}": v.contiguous() for k, v in wn_state.items()})
    tensors.update({"in.mel": mel, "out.wav": wav})
    meta = {"kind": "vocoder", "vocoder_h": vocoder_h}
    save_file(tensors, outdir / f"{name}.safetensors", metadata={"config": json.dumps(meta)})


def oracle_side(outdir: Path) -> None:
    sys.path.insert(0, str(HERE))
    outdir.mkdir(parents=True, exist_ok=True)
    _oracle_vae_case("vae_tiny", {"attn_resolutions": []}, (1, 1, 512, 256), outdir)
    _oracle_vae_case("vae_tiny_attn", {"attn_resolutions": [64, 32]}, (2, 1, 128, 64), outdir)
    _oracle_vocoder_case("vocoder_tiny", 512, outdir)


# --------------------------------------------------------------------------
# project side (runs in the project venv; imports only model/)


def _split(path: Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["config"])
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path)).items():
        group, _, rest = key.partition(".")
        groups.setdefault(group, {})[rest] = value
    return meta, groups


def _vae_config(ddconfig: dict, embed_dim: int):
    from audiosr_model.config import VAEConfig

    return VAEConfig(
        ch=ddconfig["ch"], ch_mult=tuple(ddconfig["ch_mult"]), num_res_blocks=ddconfig["num_res_blocks"],
        attn_resolutions=tuple(ddconfig["attn_resolutions"]), z_channels=ddconfig["z_channels"],
        embed_dim=embed_dim, in_channels=ddconfig["in_channels"], out_ch=ddconfig["out_ch"],
        resolution=ddconfig["resolution"], mel_bins=ddconfig["mel_bins"], double_z=ddconfig["double_z"],
        downsample_time=ddconfig["downsample_time"], dropout=ddconfig["dropout"],
    )


def _vocoder_config(h: dict):
    from audiosr_model.config import VocoderConfig

    return VocoderConfig(
        num_mels=h["num_mels"], upsample_rates=tuple(h["upsample_rates"]),
        upsample_kernel_sizes=tuple(h["upsample_kernel_sizes"]),
        upsample_initial_channel=h["upsample_initial_channel"], resblock=h["resblock"],
        resblock_kernel_sizes=tuple(h["resblock_kernel_sizes"]),
        resblock_dilation_sizes=tuple(tuple(d) for d in h["resblock_dilation_sizes"]),
    )


def _error(name: str, ours: torch.Tensor, ref: torch.Tensor) -> dict:
    if ours.shape != ref.shape:
        return {"output": name, "shape": list(ref.shape), "max_abs_err": math.inf, "note": f"shape {list(ours.shape)}"}
    return {
        "output": name,
        "shape": list(ref.shape),
        "max_abs_err": float((ours.double() - ref.double()).abs().max()),
        "max_abs_ref": float(ref.abs().max()),
    }


def _check_vae(meta: dict, groups: dict) -> list[dict]:
    from audiosr_model.config import tiny
    from audiosr_model.nets.vae import AutoencoderKL
    from audiosr_model.nets.vocoder import Generator

    cfg = _vae_config(meta["ddconfig"], meta["embed_dim"])
    voc_cfg = _vocoder_config(meta["vocoder_h"])
    preset_ok = []
    if not cfg.attn_resolutions:  # the plain case must be exactly our tiny preset
        preset_ok = [{"output": "tiny preset == original tiny config",
                      "max_abs_err": 0.0 if (cfg, voc_cfg) == (tiny().vae, tiny().vocoder) else math.inf}]
    vae = AutoencoderKL(cfg, vocoder=Generator(voc_cfg)).eval()
    vae.load_state_dict(groups["state"], strict=True)
    ref = groups["out"]
    with torch.no_grad():
        posterior = vae.encode(groups["in"]["mel"])
        sample = posterior.sample(generator=torch.Generator().manual_seed(SAMPLE_SEED))
        decoded = vae.decode(groups["in"]["z"])
    return preset_ok + [
        _error("encode moments", posterior.moments, ref["moments"]),
        _error("posterior mean", posterior.mean, ref["mean"]),
        _error("posterior std", posterior.std, ref["std"]),
        _error("posterior sample (seeded)", sample, ref["sample"]),
        _error("decode", decoded, ref["decoded"]),
    ]


def _check_vocoder(meta: dict, groups: dict) -> list[dict]:
    from audiosr_model.nets.vocoder import Generator, load_weight_norm_state

    gen = Generator(_vocoder_config(meta["vocoder_h"])).eval()
    gen.load_state_dict(groups["state"], strict=True)
    folded = load_weight_norm_state(groups["wnstate"])
    fold_err = max(float((folded[k] - v).abs().max()) for k, v in groups["state"].items())
    same_keys = set(folded) == set(groups["state"])
    with torch.no_grad():
        wav = gen(groups["in"]["mel"])
    ref = groups["out"]["wav"]
    return [
        {"output": "load_weight_norm_state vs remove_weight_norm", "max_abs_err": fold_err if same_keys else math.inf},
        _error("waveform", wav, ref),
        {"output": "waveform: fraction |ref| > 0.99 (tanh saturation)", "max_abs_err": 0.0,
         "max_abs_ref": float((ref.abs() > 0.99).double().mean())},
    ]


def compare(workdir: Path) -> list[dict]:
    """Results of every case in ``workdir`` (as written by the oracle side)."""
    results = []
    for path in sorted(workdir.glob("*.safetensors")):
        meta, groups = _split(path)
        check = _check_vae if meta["kind"] == "vae" else _check_vocoder
        for row in check(meta, groups):
            results.append({"case": path.stem, **row})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracle-python", default=DEFAULT_ORACLE_PYTHON)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiosr_components"))
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--oracle-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-oracle", action="store_true", help="reuse the files already in --workdir")
    args = parser.parse_args(argv)

    if args.oracle_side:
        oracle_side(args.workdir)
        return 0
    if not args.skip_oracle:
        subprocess.run(
            [args.oracle_python, str(Path(__file__).resolve()), "--oracle-side", "--workdir", str(args.workdir)],
            check=True,
        )
    sys.path.insert(0, str(REPO))
    results = compare(args.workdir)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1))
    failed = [r for r in results if not r["max_abs_err"] <= args.tol]
    for r in results:
        flag = "FAIL" if r in failed else "ok  "
        ref = f"  (max|ref| {r['max_abs_ref']:.3g})" if "max_abs_ref" in r else ""
        print(f"{flag} {r['case']:<14} {r['output']:<52} {r['max_abs_err']:.3e}{ref}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
