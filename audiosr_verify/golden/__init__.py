"""Golden-output regression: the cases (cases.py) and what they cover (coverage.py), the store (store.py),
the verdict policy (policy.py), perturbations.

``from audiosr_verify import golden as G`` gives the names users and tests
have always used (``G.GoldenStore``, ``G.RunSettings``, ``G.DEFAULT_TOLERANCES``...).
"""

from audiosr_model.errors import AudioSRError
from audiosr_verify.golden.cases import CASE_OPTIONS, FAST_PATH_OPTIONS
from audiosr_verify.golden.policy import (
    CUTOFF_METRICS,
    DEFAULT_TOLERANCES,
    INFORMATIONAL,
    METRIC_LABELS,
    SAMPLE_RATE,
    MetricCheck,
    _fmt,  # noqa: F401  (tests format values as the tables do)
    compare_outputs,
    compare_waveforms,
    fast_path_tolerances,
    merge_tolerances,
)
from audiosr_verify.golden.store import (
    CASES_FILE,
    GOLDEN_FILES,
    OBTAINED_FILES,
    PASSING,
    SCHEMA_VERSION,
    STATUSES,
    TOLERANCES_FILE,
    UPDATE_HINT,
    WAVEFORM_KEY,
    CaseResult,
    Golden,
    GoldenCase,
    GoldenRun,
    GoldenStore,
    ProgressFn,
    RunSettings,
    case_tolerances,
    default_inputs_dir,
    default_root,
    enhance_case,
    in_ci,
    library_versions,
    load_cases,
    not_applicable,
    product_producer,
    read_waveform,
    run_golden,
    select_cases,
    sha256_path,
    subject_producer,
    waveform_sha256,
)

__all__ = [
    "AudioSRError", "CASES_FILE", "CASE_OPTIONS", "CUTOFF_METRICS", "CaseResult", "DEFAULT_TOLERANCES",
    "FAST_PATH_OPTIONS", "GOLDEN_FILES", "Golden",
    "GoldenCase", "GoldenRun", "GoldenStore", "INFORMATIONAL", "METRIC_LABELS", "MetricCheck", "OBTAINED_FILES",
    "PASSING", "ProgressFn", "RunSettings", "SAMPLE_RATE", "SCHEMA_VERSION", "STATUSES", "TOLERANCES_FILE",
    "UPDATE_HINT", "WAVEFORM_KEY", "case_tolerances", "compare_outputs", "compare_waveforms", "fast_path_tolerances",
    "not_applicable", "product_producer", "default_inputs_dir", "default_root", "enhance_case",
    "in_ci", "library_versions", "load_cases", "merge_tolerances", "read_waveform", "run_golden", "select_cases",
    "sha256_path", "subject_producer", "waveform_sha256",
]
