"""The ranges of a corpus evaluation's own options, and their check (torch- and numpy-free: the CLI imports it).

The sampling options (steps, guidance, seed, weights seed) are those of
enhancing one file, defined once in ``audiosr_model.audio_options``; this
module adds what only an evaluation has (workers, threads, the number of
worst files kept, the golden mode's input rate). `check_evaluation` judges a
whole `EvaluationSettings` with those validators, so a library caller gets
the same one-line refusals, before anything is written, as the CLI's
argparse types (``audiosr_verify.cli.evaluate``, built from these ranges).
"""

from __future__ import annotations

from audiosr_model.audio_options import check_guidance, check_seed, check_steps, whole_number_in

WORKERS_RANGE = (1, 1024)  # processes or Ray actors, one model each
THREADS_RANGE = (1, 1024)  # torch threads per worker
WORST_RANGE = (0, None)  # files kept with spectrograms for the report
INPUT_RATE_RANGE = (1000, 47999)  # --golden: below the 48 kHz output (as EvaluationSettings requires)


def check_evaluation(settings, workers: int, worst: int) -> None:
    """Refuse settings a run cannot use, naming the option, before any file is read or written."""
    check_steps(settings.steps, "--steps")
    check_guidance(settings.guidance, "--guidance")
    check_seed(settings.seed, "--seed")
    check_seed(settings.weights_seed, "--weights-seed")
    whole_number_in(settings.threads, *THREADS_RANGE, "--threads")
    whole_number_in(workers, *WORKERS_RANGE, "--workers")
    whole_number_in(worst, *WORST_RANGE, "--worst")
    if settings.mode == "golden":
        whole_number_in(settings.input_rate, *INPUT_RATE_RANGE, "--input-rate")


__all__ = ["INPUT_RATE_RANGE", "THREADS_RANGE", "WORKERS_RANGE", "WORST_RANGE", "check_evaluation"]
