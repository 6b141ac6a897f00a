"""How a run executes, not what it computes: measurement, memory, precision and compilation.

- `stages`: the stage hook the product gives the pipeline (timings + memory policy);
- `timings`: per-stage wall times (``enhance --timings``);
- `memory`: glibc allocator thresholds scoped to network stages; `resident`: weight pages handed back;
- `precision`: the networks under ``torch.autocast``; `compiled`: the UNet through ``torch.compile``;
- `speed`: ``--precision``, ``--attention`` and ``--compile`` applied to a network in one place;
- `host`: facts about the CPU.

The maths (`nets`, `sampling`, `dsp`) and the pipeline import nothing of this
package; the product layer (`long_audio`, the CLI) passes it in.
"""
