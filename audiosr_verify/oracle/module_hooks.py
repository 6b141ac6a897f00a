"""Record every module's output in execution order, keyed the same way on both sides.

Used by the oracle runner (inside the original's venv, imported through the
runner's own directory on sys.path) and by `first_divergence` (our venv), so
the keys of the two recordings can only agree: a module called n times gets
`name`, `name@1`, ...; a tuple output adds `#j`. Torch only.
"""

from __future__ import annotations

from typing import Callable

import torch


def record_module_outputs(
    model: torch.nn.Module, prefix: str, run: Callable[[], object]
) -> tuple[dict[str, torch.Tensor], list[dict], object]:
    """Run ``run()`` with forward hooks on ``prefix`` and its submodules.

    Returns (outputs by key, execution order as dicts with key/module/type/shape,
    the result of ``run``). Outputs are detached contiguous copies (safetensors
    needs contiguous tensors).
    """
    outputs: dict[str, torch.Tensor] = {}
    order: list[dict] = []
    counts: dict[str, int] = {}

    def hook_for(name):
        def hook(module, args, output):
            n = counts.get(name, 0)
            counts[name] = n + 1
            key = name if n == 0 else f"{name}@{n}"
            tensors = output if isinstance(output, (tuple, list)) else (output,)
            for j, t in enumerate(tensors):
                if not isinstance(t, torch.Tensor):
                    continue
                k = key if len(tensors) == 1 else f"{key}#{j}"
                outputs[k] = t.detach().clone().contiguous()
                order.append({"key": k, "module": name, "type": type(module).__name__, "shape": list(t.shape)})

        return hook

    handles = [
        module.register_forward_hook(hook_for(name))
        for name, module in model.named_modules()
        if name == prefix or name.startswith(prefix + ".")
    ]
    try:
        with torch.no_grad():
            result = run()
    finally:
        for h in handles:
            h.remove()
    return outputs, order, result
