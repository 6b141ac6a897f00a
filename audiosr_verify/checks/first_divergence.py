"""First diverging module: ours and the original on one stage input, module by module.

Both models get the same weights (the oracle's shared random weights) and
the same stage input (from the oracle fixtures). Forward hooks record the
output of every module under the stage's prefix, keyed by module name (the
names are the original's), ``name@n`` for the n-th repeated call and
``name#j`` for the j-th tensor of a tuple output, exactly as the oracle
runner's ``modules`` command keys them. The rows come in the original's
execution order (a module's row follows its children's: hooks fire when a
forward returns); the first row past the tolerance is the first divergence.

The original runs in its own venv via the runner (`driver.run("modules")`);
ours runs in-process. `FAULTS` are demonstration bugs applied to OUR model
only, e.g. ``output_padding`` (the vocoder's rate-5 transposed conv given
``output_padding=1``), which must be named at ``first_stage_model.vocoder.ups.1``.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from audiosr_verify.compare.tensors import StageComparison, compare_tensors
from audiosr_verify.oracle.module_hooks import record_module_outputs
from audiosr_model.errors import AudioSRError
from audiosr_verify.util.paths import data_path

# stage -> (module prefix, what the input tensors are)
STAGES: dict[str, tuple[str, str]] = {
    "unet": ("model.diffusion_model", "x = ddim.x_T, t, cond = cond.latent (unscaled; the wrapper scales it)"),
    "cond_stage_encode": ("cond_stage_models.0.vae", "mel = lowpass.log_mel [1, T, 256]"),
    "decode_first_stage": ("first_stage_model", "z = ddim.step1.x_prev (scaled latent)"),
    "vocoder": ("first_stage_model.vocoder", "mel = mel.replaced as [1, 256, T]"),
}
NOOP_TYPES = ("Dropout", "Identity")  # modules of the original that do nothing in eval mode
FIXTURE_INPUT = "tone_mix_16k"  # the `full` fixture input: stores every stage's input


def _fault_output_padding(net) -> str:
    ups1 = net.first_stage_model.vocoder.ups[1]
    ups1.output_padding = (1,)
    return "first_stage_model.vocoder.ups.1: ConvTranspose1d output_padding=1 (rate-5 layer)"


def _fault_groupnorm_eps(net) -> str:
    n = 0
    for _, m in net.named_modules():
        if isinstance(m, torch.nn.GroupNorm) and m.eps == 1e-6:
            m.eps, n = 1e-5, n + 1
    return f"{n} GroupNorm layers with eps 1e-5 instead of 1e-6 (VAE and transformer Normalize)"


FAULTS: dict[str, Callable[[Any], str]] = {
    "output_padding": _fault_output_padding,
    "groupnorm_eps": _fault_groupnorm_eps,
}


@dataclass
class ModuleRow:
    key: str
    module: str
    type: str
    status: str  # match | diverges | only_original | only_ours
    comparison: StageComparison | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        d = {"key": self.key, "module": self.module, "type": self.type, "status": self.status}
        if c is not None:
            d.update({k: v for k, v in c.to_dict().items()
                      if k in ("shape", "ours_shape", "max_abs", "mean_abs", "max_rel", "cosine", "passed", "note")})
        return d


@dataclass
class DivergenceResult:
    stage: str
    preset: str
    prefix: str
    atol: float
    rtol: float
    fault: str | None
    fault_description: str = ""
    rows: list[ModuleRow] = field(default_factory=list)
    output: StageComparison | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    input_source: str = ""

    @property
    def first_divergence(self) -> ModuleRow | None:
        return next((r for r in self.rows if r.status == "diverges"), None)

    @property
    def ok(self) -> bool:
        return self.first_divergence is None and (self.output is None or self.output.passed)

    def summary_line(self) -> str:
        first = self.first_divergence
        n = sum(r.comparison is not None for r in self.rows)
        if first is None:
            return f"{self.stage}: all {n} module outputs within {self.atol:g} of the original"
        c = first.comparison
        what = c.note if c.note else f"max |diff| {c.max_abs:.3g}"
        return f"{self.stage}: first divergence at {first.key} ({first.type}): {what}"

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "stage": self.stage, "preset": self.preset, "prefix": self.prefix, "atol": self.atol, "rtol": self.rtol,
            "fault": self.fault, "fault_description": self.fault_description, "input_source": self.input_source,
            "ok": self.ok, "summary": self.summary_line(),
            "first_divergence": None if first is None else first.key,
            "output": None if self.output is None else self.output.to_dict(),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "modules": [r.to_dict() for r in self.rows],
        }


# --------------------------------------------------------------------------- inputs and weights


def stage_inputs(stage: str, fixture_dir: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The original's input of ``stage`` from the `full` fixture input (as the runner expects them)."""
    from audiosr_verify.checks import stages as F

    fdir = fixture_dir or F.DEFAULT_FIXTURES
    try:
        _, items = F.load_fixture_set(F._resolve(fdir), F._resolve(F.DEFAULT_INPUTS), [FIXTURE_INPUT])
    except (FileNotFoundError, KeyError) as exc:
        raise AudioSRError(f"no oracle fixtures to take the {stage} input from ({exc}); "
                           "run `audiosr-verify oracle export`") from None
    inp = items[0]
    if stage == "unet":
        x = inp.ref("ddim.x_T")
        data = {"x": x, "t": torch.full((x.shape[0],), 501, dtype=torch.long), "cond": inp.ref("cond.latent")}
    elif stage == "cond_stage_encode":
        data = {"mel": inp.ref("lowpass.log_mel")[None]}
    elif stage == "decode_first_stage":
        data = {"z": inp.ref("ddim.step1.x_prev")}
    elif stage == "vocoder":
        data = {"mel": inp.ref("mel.replaced")[:, 0].transpose(1, 2).contiguous()}
    else:
        raise AudioSRError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    return {k: v.contiguous() for k, v in data.items()}, f"{fdir}/{FIXTURE_INPUT}: {STAGES[stage][1]}"


def shared_weights(preset: str) -> dict[str, torch.Tensor]:
    from audiosr_verify.oracle import export

    if preset == "tiny":
        return export.shared_tiny_weights()
    manifest = data_path("manifests", f"audiosr_{preset}.json")
    if not manifest.exists():
        raise AudioSRError(f"no manifest for preset {preset}", manifest)
    return export.shared_weights(export.read_manifest(manifest))


# --------------------------------------------------------------------------- our side


def _stage_call(net, stage: str, inputs: dict[str, torch.Tensor]) -> Callable[[], torch.Tensor]:
    if stage == "unet":
        return lambda: net.unet_forward(inputs["x"], inputs["t"].long(), inputs["cond"])
    if stage == "cond_stage_encode":
        return lambda: net.condition_vae.encode(inputs["mel"].unsqueeze(1)).moments
    if stage == "decode_first_stage":
        return lambda: net.decode(inputs["z"])
    if stage == "vocoder":
        return lambda: net.first_stage_model.vocoder(inputs["mel"])
    raise AudioSRError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")


def run_ours(net, stage: str, inputs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[dict], torch.Tensor]:
    """(outputs by key, execution order, stage output) of our model, keyed as the oracle runner keys them."""
    prefix = STAGES[stage][0]
    outputs, order, out = record_module_outputs(net, prefix, _stage_call(net, stage, inputs))
    return outputs, order, out


# --------------------------------------------------------------------------- the original's side


def run_original(preset: str, stage: str, inputs: dict[str, torch.Tensor], weights: dict[str, torch.Tensor],
                 workdir: Path, python=None) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The oracle runner's `modules` command: every module output of the original, in execution order."""
    from safetensors.torch import load_file, save_file

    from audiosr_verify.oracle import driver

    wpath, ipath, out = workdir / "weights.safetensors", workdir / "inputs.safetensors", workdir / "modules.safetensors"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(wpath))
    save_file(inputs, str(ipath))
    result = driver.run("modules", {"preset": preset, "weights": str(wpath), "stage": stage, "inputs": str(ipath),
                                    "out": str(out)}, workdir, python=python)
    return load_file(str(out)), result["order"]


def oracle_python_or_error(python=None):
    """The oracle interpreter, or an AudioSRError telling the user how to get one."""
    from audiosr_verify.oracle import driver, venv

    try:
        return driver.oracle_python(python)
    except driver.OracleUnavailable:
        raise AudioSRError(f"the original audiosr is not set up (no oracle venv at {venv.default_path()}): "
                           "run `audiosr-verify oracle setup`") from None


# --------------------------------------------------------------------------- comparison


def compare_modules(ref_out: dict[str, torch.Tensor], ref_order: list[dict], ours_out: dict[str, torch.Tensor],
                    ours_order: list[dict], atol: float, rtol: float = 0.0) -> list[ModuleRow]:
    """Rows in the original's execution order, then modules only we ran."""
    rows = []
    ours_types = {o["key"]: o["type"] for o in ours_order}
    for o in ref_order:
        k = o["key"]
        if k not in ours_out:
            rows.append(ModuleRow(k, o["module"], o["type"], "only_original"))
            continue
        c = compare_tensors(k, ours_out[k], ref_out[k], atol, rtol)
        rows.append(ModuleRow(k, o["module"], ours_types.get(k, o["type"]), "match" if c.passed else "diverges", c))
    seen = {o["key"] for o in ref_order}
    rows += [ModuleRow(o["key"], o["module"], o["type"], "only_ours") for o in ours_order if o["key"] not in seen]
    return rows


def find_first_divergence(
    stage: str = "vocoder",
    preset: str = "tiny",
    fault: str | None = None,
    atol: float = 1e-5,
    rtol: float = 0.0,
    python=None,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    oracle: Callable[..., tuple[dict, list]] | None = None,
) -> DivergenceResult:
    """Run ``stage`` in both models with hooks on every module; compare module by module.

    ``oracle`` replaces `run_original` (tests inject a recorded run).
    """
    from audiosr_verify.checks import stages as F

    if stage not in STAGES:
        raise AudioSRError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    if fault is not None and fault not in FAULTS:
        raise AudioSRError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
    say = progress or (lambda m: None)
    if oracle is None:
        python = oracle_python_or_error(python)
    result = DivergenceResult(stage, preset, STAGES[stage][0], atol, rtol, fault)
    inputs, result.input_source = stage_inputs(stage)
    weights = shared_weights(preset)
    with tempfile.TemporaryDirectory(prefix="audiosr-compare-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        say(f"original ({preset}): {stage} with hooks on every module")
        start = time.monotonic()
        ref_out, ref_order = (oracle or run_original)(preset, stage, inputs, weights, work, python=python)
        result.seconds["original"] = time.monotonic() - start
    say(f"ours ({preset}): {stage}")
    start = time.monotonic()
    net = F.shared_network(preset, weights)
    del weights
    if fault:
        result.fault_description = FAULTS[fault](net)
    ours_out, ours_order, out = run_ours(net, stage, inputs)
    result.seconds["ours"] = time.monotonic() - start
    result.rows = compare_modules(ref_out, ref_order, ours_out, ours_order, atol, rtol)
    if "__output__" in ref_out:
        result.output = compare_tensors(f"{stage} output", out, ref_out["__output__"], atol, rtol)
    return result


# --------------------------------------------------------------------------- rendering


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    return "0" if x == 0 else f"{x:.2e}"


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) if shape else "scalar"


def render_table(result: DivergenceResult, max_rows: int = 60, after: int = 5):
    """A rich table of the modules in execution order; the first divergence is marked.

    With more than ``max_rows`` rows, shows the rows leading up to the first
    divergence and ``after`` rows past it (0: every row).
    """
    from rich.table import Table

    first = result.first_divergence
    rows = result.rows
    at = rows.index(first) if first is not None else len(rows) - 1
    shown = list(range(len(rows)))
    caption = ""
    if max_rows and len(rows) > max_rows:
        stop = min(len(rows), at + 1 + (after if first is not None else 0))
        begin = max(0, stop - max_rows)
        shown = list(range(begin, stop))
        caption = f"rows {begin + 1}-{stop} of {len(rows)} (--max-rows 0 shows all; --json has all)"
    title = f"{result.stage}: module outputs of {result.prefix}.* vs the original ({result.preset}" + (
        f", fault {result.fault}" if result.fault else "") + ")"
    t = Table(title=title, caption=caption or None)
    for col, just in (("#", "right"), ("module", "left"), ("type", "left"), ("shape", "left"),
                      ("max |diff|", "right"), ("mean |diff|", "right"), ("cosine", "right"), ("", "left")):
        t.add_column(col, justify=just, no_wrap=col in ("module", "type", "shape", ""))
    cut = len(result.prefix) + 1
    for i in shown:
        r = rows[i]
        c = r.comparison
        if c is None:
            shape = "-"
        elif c.ours_shape is None:
            shape = _shape(c.shape)
        else:
            shape = f"{_shape(c.ours_shape)} ≠ {_shape(c.shape)}"
        mark = {"match": "[green]ok[/green]", "diverges": "[red]diverges[/red]",
                "only_original": "[dim]not in ours (no-op at inference)[/dim]" if r.type in NOOP_TYPES
                else "[yellow]not run by ours[/yellow]", "only_ours": "[yellow]only ours[/yellow]"}[r.status]
        if r is first:
            mark = "[bold red]<- FIRST DIVERGENCE[/bold red]"
        name = r.key[cut:] if r.key.startswith(result.prefix + ".") else r.key
        cos = "-" if c is None or math.isnan(c.cosine) else f"{c.cosine:.6f}"
        t.add_row(str(i + 1), name, r.type, shape, "-" if c is None else _fmt(c.max_abs),
                  "-" if c is None else _fmt(c.mean_abs), cos, mark, style="bold" if r is first else None)
    return t
