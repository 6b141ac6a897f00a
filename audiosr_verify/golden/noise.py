"""The float noise of a checkpoint's goldens, measured as they are written, and the bounds derived from it.

The bundled bounds (`policy.DEFAULT_TOLERANCES`) were measured on the tiny
random-weights goldens (``random-tiny-seed0``) by benchmarks/bench_golden_noise.py.
Any other weights (a user's ``--checkpoint``, another preset or seed) have their
own float noise. ``golden update`` (and ``pytest --golden-update``) therefore
measures it on every case it writes, with the recomputation the benchmark uses:

  * the output recomputed with another torch thread count (1, or 2 where the
    golden was made with 1) and oneDNN's convolutions off (ATen's own
    kernels): another reduction order, as another CPU or BLAS kernel gives.
    A recomputation that is bit-identical is said so (recorded and printed):
    then only the two perturbations below measured anything;
  * the golden perturbed by relative noise of 1e-6 and by +-1 ulp
    (`perturbations.NOISE`).

Each of these is compared with the golden (`policy.compare_outputs`, every
checked metric); the worst value per metric is the case's noise, and the
bound is derived from it by `derive_bounds` (rule in `RULE`): never tighter than
the case's default, looser only where the measured noise needs it, and every
such bound is printed with the noise that set it. The real changes of
`perturbations.CHANGES` are then judged under the derived bounds: a change the
defaults catch and the derived bounds miss is recorded and printed, never
hidden.

Stored in ``<store>/<key>/tolerances.json`` under ``"measured"`` (beside the
user's own ``"default"`` / ``"cases"`` layers, which still override it)::

    "measured": {"rule": "...", "factor": 4.0,
                 "cases": {"<case>": {"golden_sha256": ..., "date": ..., "host_cpu": ..., "torch": ...,
                                      "threads": {"golden": 2, "recomputed": 1},
                                      "recomputation_identical": false,
                                      "noise": {"<variant>": {"<metric>": value}},
                                      "worst_noise": {"<metric>": value},
                                      "defaults": {...}, "bounds": {...}, "raised": {...},
                                      "changes": {...}}}}

A measured entry applies only to the golden it measured (``golden_sha256``):
a golden rewritten since (``--no-measure-noise`` with another output) is
judged by the defaults again, with a notice.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from audiosr_model.errors import AudioSRError
from audiosr_verify.golden.policy import (
    DEFAULT_TOLERANCES,
    MetricCheck,
    _check,
    _fmt,
    _json_float,
    compare_outputs,
    merge_tolerances,
)
from audiosr_verify.util.safe_open import (
    Anything,
    MapOf,
    Nullable,
    Number,
    Obj,
    TOLERANCE_LAYER,
    Text,
    check_shape,
)

# The rule. A bound derived from measured noise is FACTOR times the worst noise of the case (for the dB bound
# that must stay above a floor, SI-SDR: the worst noise minus 20*log10(FACTOR) dB, the same factor in amplitude),
# and never tighter than the default.
#
# Why 4, and why oneDNN off: `python benchmarks/bench_golden_noise.py --spread --checkpoint CKPT --preset tiny`
# (notes/golden-bounds.md) compares the noise measured here with that of other CPUs, simulated on this one
# (AVX2 kernels; SSE4 without vector kernels). A thread count alone underestimates them up to 37x (the full-window
# case: the SSE4 CPU's convolutions give peak 7.6e-5, spectral distance above the cutoff 1.5e-3, against 2.7e-6
# and 4.0e-5 measured with 1 thread): a convolution kernel of another ISA is another algorithm, not another
# partition of one sum. With oneDNN off as well, the other CPUs' noise is at most 2.06x the measured worst (seeded
# tiny checkpoint, 4 fast cases, 2 and 50 DDIM steps: 2.02x), so 4x covers a CPU not seen with a margin of 2.
# It is not more because the smallest real changes sit 20-60x above the tiny model's noise (0.5 dB of gain:
# peak 5.9e-2 against noise <= 3e-5; spectral distance 0.24 dB against <= 6.6e-4): a bound of 4x the noise stays
# below them as long as the noise is within 1/4 of them, and `derive_bounds` never lets a bound drop below the
# default, which was shown to catch every one of them. Where the measured noise is so large that 4x of it lets a
# real change through, the update says so (`Measurement.missed`): the checkpoint's goldens cannot tell that
# change from its noise.
FACTOR = 4.0
SI_SDR_MARGIN_DB = 20 * math.log10(FACTOR)  # 12.04 dB: FACTOR in amplitude
RULE = (f"upper bound = max(default, {FACTOR:g} x worst measured noise); lower bound in dB (SI-SDR) = "
        f"min(default, worst measured noise - {SI_SDR_MARGIN_DB:.2f} dB); never tighter than the default. "
        "Noise: the output recomputed with another torch thread count and oneDNN off, and the golden perturbed "
        "by 1e-6 relative noise and by +-1 ulp (benchmarks/bench_golden_noise.py)")
# Flags, not distances: a measured value is recorded but sets no bound (a flag raised by noise is reported).
NOT_SCALED = ("new_line_artifact",)
RECOMPUTED = "recomputed, {threads} thread(s), oneDNN off"
MEASURED = "measured"

SOURCE_LABELS = {
    "default": "default",
    "measured": "measured for this checkpoint",
    "store": "store override (tolerances.json)",
    "case override": "case override",
}

MEASURED_SHAPE = Obj({
    "cases": Nullable(MapOf(Obj({
        "golden_sha256": Text,
        "bounds": TOLERANCE_LAYER,
        "worst_noise": MapOf(Nullable(Number)),
        "defaults": Nullable(TOLERANCE_LAYER),
        "threads": Nullable(MapOf(Number)),
        "noise": Nullable(MapOf(Anything)),
    }))),
})


def bounds_measured_for(settings) -> bool:
    """Whether the default bounds were measured on these weights: the bundled random tiny weights, seed 0
    (``random-tiny-seed0``, with any level and mix), by benchmarks/bench_golden_noise.py."""
    return settings.checkpoint_sha256 is None and settings.preset == "tiny" and settings.weights_seed == 0


def other_threads(current: int) -> int:
    """The thread count of the recomputation: 1, or 2 where the golden was made with 1."""
    return 1 if current > 1 else 2


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def other_reduction_order(threads: int):
    """``threads`` torch threads and oneDNN's convolutions off (ATen's own kernels): another partition of every
    parallel reduction and another convolution kernel, as another CPU gives (see `FACTOR`)."""
    import warnings

    import torch

    with torch_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oneDNN's flag setter warns about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def current_threads() -> int:
    import torch

    return torch.get_num_threads()


# --------------------------------------------------------------------------- the rule


def derive_bounds(defaults: Mapping[str, Mapping[str, float]], worst: Mapping[str, float | None]
                  ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """(bounds, raised) from a case's default bounds and its worst measured noise per metric (`RULE`).

    ``raised``: metric -> {"default", "bound", "noise"} for every bound looser than its default.
    A bound is never tighter than its default.
    """
    bounds: dict[str, dict[str, float]] = {}
    raised: dict[str, dict[str, Any]] = {}
    for name, default in defaults.items():
        bound = dict(default)
        noise = worst.get(name)
        if name not in NOT_SCALED and noise is not None and math.isfinite(noise):
            if "max" in default:
                bound["max"] = max(float(default["max"]), FACTOR * float(noise))
            elif "min" in default:
                bound["min"] = min(float(default["min"]), float(noise) - SI_SDR_MARGIN_DB)
        bounds[name] = bound
        if bound != dict(default):
            raised[name] = {"default": dict(default), "bound": bound, "noise": float(noise)}
    return bounds, raised


def _worse(bound: Mapping[str, float], a: float | None, b: float | None) -> float | None:
    """The value nearer to failing ``bound`` (NaN counts as worst)."""
    if a is None or (b is not None and math.isnan(b)):
        return b
    if b is None or math.isnan(a):
        return a
    return min(a, b) if "min" in bound and "max" not in bound else max(a, b)


def _passes(name: str, value: float | None, bound: Mapping[str, float]) -> bool:
    if value is None:
        return True  # not applicable (no cutoff)
    return bool(_check(name, value, bound).passed)


# --------------------------------------------------------------------------- measuring


class MeasurementError(Exception):
    """The recomputation raised something other than an `AudioSRError` (the cause is ``__cause__``)."""


@dataclass
class Measurement:
    """The float noise of one golden case, the bounds derived from it, and the real changes under them."""

    case: str
    golden_sha256: str
    threads: dict[str, int]
    identical: bool  # the recomputation (another thread count, oneDNN off) was bit-identical to the golden
    noise: dict[str, dict[str, float | None]]  # variant -> metric -> value
    worst: dict[str, float | None]
    defaults: dict[str, dict[str, float]]
    bounds: dict[str, dict[str, float]]
    raised: dict[str, dict[str, Any]]
    changes: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # change -> caught by, per bound set
    date: str = ""
    host_cpu: str = ""
    torch: str = ""
    seconds: float | None = None  # the recomputation's

    @property
    def missed(self) -> list[str]:
        """Real changes the defaults catch and the derived bounds do not."""
        return [name for name, c in self.changes.items() if c["default"] and not c["measured"]]

    def to_json(self) -> dict[str, Any]:
        def values(d: Mapping[str, float | None]) -> dict[str, Any]:
            return {k: _json_float(v) for k, v in d.items()}

        return {
            "golden_sha256": self.golden_sha256, "date": self.date, "host_cpu": self.host_cpu,
            "torch": self.torch, "threads": dict(self.threads), "recomputation_identical": self.identical,
            "recomputation_seconds": None if self.seconds is None else round(self.seconds, 3),
            "noise": {k: values(v) for k, v in self.noise.items()},
            "worst_noise": {k: (None if v is None or not math.isfinite(v) else float(v))
                            for k, v in self.worst.items()},
            "defaults": self.defaults, "bounds": self.bounds,
            "raised": {k: {"default": v["default"], "bound": v["bound"], "noise": float(v["noise"])}
                       for k, v in self.raised.items()},
            "changes": self.changes, "missed_changes": self.missed,
        }

    def lines(self) -> list[str]:
        """What the update prints of this case: the noise, every raised bound with its noise, what is missed."""
        t = self.threads
        recomputed = (f"{t['recomputed']} vs {t['golden']} thread(s), oneDNN off: "
                      + ("BIT-IDENTICAL (no reduction-order noise seen; the bounds rest on the 1e-6 and +-1 ulp "
                         "perturbations)" if self.identical else "differs"))
        worst = ", ".join(f"{k} {_fmt(v)}" for k, v in self.worst.items() if k not in NOT_SCALED and v is not None)
        out = [f"float noise measured ({recomputed}; 1e-6 relative; +-1 ulp): worst {worst}"]
        if not self.raised:
            out.append(f"bounds: the defaults (every measured noise is within 1/{FACTOR:g} of them)")
        for name, r in self.raised.items():
            out.append(f"bound RAISED above the default: {name} {_bound_text(r['bound'])} (default "
                       f"{_bound_text(r['default'])}), set by measured noise {_fmt(r['noise'])}")
        for name, v in self.worst.items():
            if name in NOT_SCALED and v:
                out.append(f"float noise raises {name} on this case: that check will fail on noise alone")
        for name in self.missed:
            out.append(f"NOT CAUGHT under the measured bounds: {name} (the defaults catch it; this checkpoint's "
                       "noise is too close to it)")
        return out


def _bound_text(b: Mapping[str, float]) -> str:
    return " and ".join(f"{'<=' if k == 'max' else '>='} {_fmt(v)}" for k, v in b.items())


def measure(store, case, golden: np.ndarray, settings, recompute: Callable[[int], np.ndarray],
            golden_threads: int | None = None) -> Measurement:
    """Measure the float noise of ``golden`` (the case's new golden, float32 ``[N]`` or ``[N, C]``):
    ``recompute(threads)`` produces the case's output again with ``threads`` torch threads."""
    import time

    import torch

    from audiosr_model.runtime.host import cpu_model
    from audiosr_verify.golden.perturbations import CHANGES, NOISE
    from audiosr_verify.golden.frames import _frames, waveform_sha256
    from audiosr_verify.golden.policy import case_tolerances

    golden = _frames(golden)
    threads = current_threads() if golden_threads is None else golden_threads
    other = other_threads(threads)
    defaults = merge_tolerances(DEFAULT_TOLERANCES, case_tolerances(case))
    t0 = time.perf_counter()
    try:
        with other_reduction_order(other):
            again = _frames(recompute(other))
    except AudioSRError:
        raise  # one line, as the first computation's would be
    except Exception as exc:  # a subject's own error: `run_golden` reports the case, ours re-raises it
        raise MeasurementError(f"{type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - t0
    if again.shape != golden.shape:
        raise AudioSRError(f"case {case.name}: the recomputation ({other} thread(s), oneDNN off) has shape "
                           f"{again.shape}, "
                           f"the golden {golden.shape}: the output does not depend on float noise alone")
    identical = again.tobytes() == golden.tobytes()
    variants = {RECOMPUTED.format(threads=other): again}
    variants.update({name: f(golden, case.cutoff_hz) for name, f in NOISE.items()})

    def values(obtained: np.ndarray) -> dict[str, float | None]:
        rows: list[MetricCheck] = compare_outputs(golden, obtained, defaults, case.cutoff_hz,
                                                  store._references(case, obtained))
        return {c.name: c.value for c in rows if c.name in defaults}

    noise = {name: values(x) for name, x in variants.items()}
    worst: dict[str, float | None] = {}
    for name, bound in defaults.items():
        for v in noise.values():
            worst[name] = _worse(bound, worst.get(name), v.get(name))
    bounds, raised = derive_bounds(defaults, worst)
    changes = {}
    for name, f in CHANGES.items():
        v = values(f(golden, case.cutoff_hz))
        changes[name] = {"default": sorted(m for m in defaults if not _passes(m, v.get(m), defaults[m])),
                         "measured": sorted(m for m in bounds if not _passes(m, v.get(m), bounds[m]))}
    return Measurement(case.name, waveform_sha256(golden), {"golden": threads, "recomputed": other}, identical,
                       noise, worst, defaults, bounds, raised, changes,
                       date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       host_cpu=cpu_model(), torch=torch.__version__, seconds=seconds)


# --------------------------------------------------------------------------- the store's record


def _tolerances_path(store, key: str):
    from audiosr_verify.golden.policy import TOLERANCES_FILE

    return store.key_dir(key) / TOLERANCES_FILE


def _read_document(store, key: str) -> dict[str, Any]:
    from audiosr_verify.util.safe_open import TOLERANCES_SHAPE, read_json_as

    path = _tolerances_path(store, key)
    if not os.path.lexists(path):
        return {}
    return read_json_as(path, "tolerances", TOLERANCES_SHAPE)


def measured_entries(store, key: str, document: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """case -> its measured entry, from ``<key>/tolerances.json`` (shape checked: one line if malformed)."""
    doc = _read_document(store, key) if document is None else document
    section = doc.get(MEASURED)
    if section is None:
        return {}
    problem = check_shape(section, MEASURED_SHAPE, MEASURED)
    if problem:
        raise AudioSRError(f"malformed tolerances: {problem}", _tolerances_path(store, key))
    return dict(section.get("cases") or {})


def applicable_entry(entries: Mapping[str, Any], case: str, golden_sha256: str | None) -> dict[str, Any] | None:
    """The case's measured entry when it measured this golden (by its float32 sha256), else None."""
    entry = entries.get(case)
    if entry is None or golden_sha256 is None or entry.get("golden_sha256") != golden_sha256:
        return None
    return entry


def record(store, key: str, case: str, measurement: Measurement | None, golden_sha256: str | None = None) -> None:
    """Write ``measurement`` as the case's measured entry of ``<key>/tolerances.json`` (read, change, publish
    under the file's lock; the user's own layers are kept as they are). With None, drop the case's entry when
    it measured another golden than ``golden_sha256`` (a golden rewritten without measuring)."""
    def change(entries: dict[str, Any]) -> None:
        if measurement is not None:
            entries[case] = measurement.to_json()
        elif (entries.get(case) or {}).get("golden_sha256") != golden_sha256:
            entries.pop(case, None)

    if measurement is None and not os.path.lexists(_tolerances_path(store, key)):
        return  # nothing to drop; and no directory is made before the golden is published
    _rewrite(store, key, change)


def _rewrite(store, key: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the measured entries of ``<key>/tolerances.json`` in place: read, change, publish, under its lock."""
    import json

    from audiosr_verify.util.atomic import TargetLock, atomic_write

    path = _tolerances_path(store, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with TargetLock(path, "tolerances"):
        doc = dict(_read_document(store, key))
        entries = measured_entries(store, key, doc)
        before = dict(entries)
        change(entries)
        if entries == before and (MEASURED in doc or not entries):
            return
        if entries:
            doc[MEASURED] = {"what": "float noise of these goldens' checkpoint, measured by golden update "
                             "(audiosr_verify/golden/noise.py); the bounds derived from it apply to the golden "
                             "each entry measured (golden_sha256)",
                             "rule": RULE, "factor": FACTOR, "cases": dict(sorted(entries.items()))}
        else:
            doc.pop(MEASURED, None)
        if not doc:
            path.unlink(missing_ok=True)
            return
        atomic_write(path, json.dumps(doc, indent=2, allow_nan=False) + "\n", what="tolerances", lock=False)


# --------------------------------------------------------------------------- update, as every path runs it


def update_case(store, case, obtained: np.ndarray, settings, recompute: Callable[[int], np.ndarray] | None,
                measure_noise: bool | None = None, golden_threads: int | None = None):
    """`GoldenStore.update` of one case, measuring its float noise first where the bounds were not measured for
    these weights (`bounds_measured_for`; ``measure_noise`` False skips it, True forces it): the one function
    behind ``golden update`` and ``pytest --golden-update``. ``recompute(threads)``: the case's output again.
    A fast path (no golden of its own) is compared, as `GoldenStore.update` does, and measures nothing."""
    from audiosr_verify.golden.frames import _frames, waveform_sha256

    if case.golden:
        return store.update(case, obtained, settings)
    key = settings.key
    obtained = _frames(obtained)
    if measure_noise is None:
        measure_noise = not bounds_measured_for(settings)
    m = measure(store, case, obtained, settings, recompute, golden_threads) if measure_noise and recompute else None
    before = measured_entries(store, key).get(case.name)
    record(store, key, case.name, m, waveform_sha256(obtained))
    try:
        result = store.update(case, obtained, settings)
    except BaseException:
        if m is not None:  # the golden it measured was not written: the previous entry stands
            _restore(store, key, case.name, before)
        raise
    if m is not None:
        result.notes.extend(m.lines())
        result.noise = m.to_json()
    elif not bounds_measured_for(settings):
        result.notes.append(UNMEASURED_CASE)
    return result


def _restore(store, key: str, case: str, entry: Mapping[str, Any] | None) -> None:
    def change(entries: dict[str, Any]) -> None:
        if entry is None:
            entries.pop(case, None)
        else:
            entries[case] = dict(entry)

    _rewrite(store, key, change)


UNMEASURED_CASE = "float noise not measured (--no-measure-noise): judged by the tiny-model default bounds"


def unmeasured_notice(settings, results: Iterable[Any]) -> str | None:
    """The one line `golden check` prints when cases of weights other than the bundled ones are judged by the
    default bounds, unmeasured for them; None when there are none."""
    if bounds_measured_for(settings):
        return None
    compared = [r for r in results if r.status in ("identical", "within_tolerance", "failed")]
    plain = [r.case for r in compared if not any(b.get("source") == "measured" for b in (r.bounds or {}).values())]
    if not plain:
        return None
    which = "its bounds" if len(plain) == len(compared) else f"the bounds of {', '.join(plain)}"
    return (f"notice: {which} are the tiny-model defaults, unmeasured for this checkpoint ({settings.key}); "
            "measure them: golden update without --no-measure-noise")


def run_notices(settings, results: list[Any], update: bool) -> list[str]:
    """The lines about the bounds a whole run prints: for a check, `unmeasured_notice`; for an update, whether
    the thread-count recomputation differed at all, and how many bounds were raised."""
    if not update:
        notice = unmeasured_notice(settings, results)
        return [notice] if notice else []
    measured = [r for r in results if r.noise]
    if not measured:
        if not bounds_measured_for(settings) and any(r.status == "updated" for r in results):
            return [f"notice: float noise not measured (--no-measure-noise): the goldens of {settings.key} are "
                    "judged by the tiny-model default bounds, unmeasured for this checkpoint"]
        return []
    identical = [r.case for r in measured if r.noise.get("recomputation_identical")]
    t = measured[0].noise["threads"]
    out = []
    if len(identical) == len(measured):
        out.append(f"the recomputation ({t['recomputed']} thread(s), oneDNN off) was BIT-IDENTICAL to the golden "
                   "on every measured case: no reduction-order noise was observed; the bounds rest on the 1e-6 "
                   "relative and +-1 ulp perturbations only")
    else:
        out.append(f"the recomputation ({t['recomputed']} thread(s), oneDNN off; golden: {t['golden']}) differed on "
                   f"{len(measured) - len(identical)} of {len(measured)} measured case(s)"
                   + (f"; bit-identical on {', '.join(identical)}" if identical else ""))
    raised = sum(len(r.noise.get("raised") or {}) for r in measured)
    missed = [f"{r.case}: {name}" for r in measured for name in r.noise.get("missed_changes") or []]
    out.append(f"bounds derived from the measured noise ({RULE.split('; never')[0]}): {raised} raised above the "
               f"default over {len(measured)} case(s); stored in tolerances.json")
    if missed:
        out.append("real changes NOT CAUGHT under the measured bounds: " + "; ".join(missed))
    return out


def bounds_report(layers: list[tuple[str, Mapping[str, Any] | None]], measured: Mapping[str, Any] | None
                  ) -> dict[str, dict[str, Any]]:
    """metric -> {"source", "bound", "default", "measured_noise"} from the tolerance layers in the order they
    apply (`GoldenStore.tolerance_layers`) and the case's measured entry (None when unmeasured)."""
    final = merge_tolerances(*(layer for _, layer in layers))
    default = merge_tolerances(*(layer for source, layer in layers if source == "default"))
    out: dict[str, dict[str, Any]] = {}
    worst = (measured or {}).get("worst_noise") or {}
    for name, bound in final.items():
        source = "default"
        for src, layer in layers:
            if layer and name in layer:
                source = src
        out[name] = {"source": source, "bound": bound, "default": default.get(name),
                     "measured_noise": worst.get(name)}
    return out


__all__ = [
    "FACTOR", "MEASURED", "Measurement", "MeasurementError", "RULE", "SI_SDR_MARGIN_DB", "SOURCE_LABELS", "UNMEASURED_CASE",
    "applicable_entry", "bounds_measured_for", "bounds_report", "derive_bounds", "measure", "measured_entries",
    "other_threads", "record", "torch_threads", "unmeasured_notice", "update_case",
]
