"""Top-level pytest configuration: hypothesis profiles and the harness's pytest plugin.

Profiles: `ci` (derandomised, bounded examples; the default under CI=true) and
`dev` (more examples). Select with HYPOTHESIS_PROFILE=dev.

The plugin (`audiosr_verify.testing.pytest_plugin`: --golden-update, golden_check, ...)
is registered by its pytest11 entry point when the package is installed; from a
plain source tree (PYTHONPATH=.) this file registers it. Entry-point plugins are
imported before this conftest, so an already imported plugin module means it is
registered: naming it again would make pytest fail ("already registered").
"""

import os
import sys

from hypothesis import HealthCheck, settings

if "audiosr_verify.testing.pytest_plugin" not in sys.modules:
    pytest_plugins = ["audiosr_verify.testing.pytest_plugin"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
