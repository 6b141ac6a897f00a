"""How the keys of a state dict are named and grouped: module groups, weight-norm pairs, their spellings.

Stdlib only. `module_group` is the row a key is reported under (`checks.layout_results`,
`report.parity`); `fold_weight_norm` folds ``X.weight_g`` + ``X.weight_v`` into ``X.weight`` as the
loader does, so state-dict parity predicts what loading accepts.
"""

from __future__ import annotations

from typing import Mapping

SCHEDULE_GROUP = "(schedule & scalars)"  # top-level buffers: betas, alphas_cumprod, ..., scale_factor, logvar
# torch.nn.utils.weight_norm and torch.nn.utils.parametrizations.weight_norm spellings
WEIGHT_NORM_SUFFIXES = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)
POSITION_IDS_SUFFIX = ".embeddings.position_ids"  # clap.model.text_branch.embeddings.position_ids

Spec = tuple[tuple[int, ...], str]  # (shape, dtype name) of one key


def module_group(key: str) -> str:
    """The module prefix a key is reported under.

    ``model.diffusion_model``, ``first_stage_model.decoder``,
    ``cond_stage_models.0.vae.encoder``, ``clap.model.audio_branch`` (other
    CLAP keys: ``clap``),
    ``model_ema`` (its keys have their dots removed), and one group for the
    top-level schedule buffers and scalars.
    """
    parts = key.split(".")
    if len(parts) == 1:
        return SCHEDULE_GROUP
    if parts[0] == "model_ema":
        return "model_ema"
    depth = 2
    if parts[0] == "cond_stage_models":
        depth = 4 if len(parts) > 2 and parts[2] == "vae" else 3
    elif parts[0] == "clap":
        # the two big encoders get their own rows; projections, scales, mel front end share one
        if len(parts) > 3 and parts[1] == "model" and parts[2] in ("audio_branch", "text_branch"):
            return ".".join(parts[:3])
        return "clap"
    return ".".join(parts[: max(1, min(depth, len(parts) - 1))])


def fold_weight_norm(specs: Mapping[str, Spec]) -> tuple[dict[str, Spec], dict[str, tuple[str, str]]]:
    """Specs with each ``X.weight_g`` + ``X.weight_v`` pair replaced by ``X.weight``.

    Mirrors `model.vocoder.load_weight_norm_state`: the folded weight has v's
    shape and dtype. Returns (folded specs in file order, {folded key: (g, v)}).
    Unpaired halves, or pairs whose ``X.weight`` also exists, stay as they are
    (and so classify as unexpected).
    """
    folded: dict[str, Spec] = {}
    origin: dict[str, tuple[str, str]] = {}
    pairs: dict[str, tuple[str, str]] = {}
    for key in specs:
        for g_suffix, v_suffix in WEIGHT_NORM_SUFFIXES:
            for suffix, other in ((g_suffix, v_suffix), (v_suffix, g_suffix)):
                if key.endswith(suffix):
                    base = key[: -len(suffix)]
                    if base + other in specs and base + ".weight" not in specs:
                        g, v = (key, base + other) if suffix == g_suffix else (base + other, key)
                        pairs[key] = (g, v)
    for key, spec in specs.items():
        if key not in pairs:
            folded[key] = spec
            continue
        g, v = pairs[key]
        target = g[: -len(next(s for s, _ in WEIGHT_NORM_SUFFIXES if g.endswith(s)))] + ".weight"
        if target not in folded:  # first half met places the folded key
            folded[target] = specs[v]
            origin[target] = (g, v)
    return folded, origin


__all__ = ["POSITION_IDS_SUFFIX", "SCHEDULE_GROUP", "Spec", "WEIGHT_NORM_SUFFIXES", "fold_weight_norm", "module_group"]
