"""The fuzz suite: Hypothesis profiles, and the figures each property writes.

Profiles (RAMPART_HYPOTHESIS_PROFILE): `ci` (the default: a bounded number of examples, derandomized so a
run is reproducible, no example database, no deadline on a shared 2-core machine) and `deep` (many more
examples, random, for a run by hand). A property counts the examples it tried into its figures.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

from tests.reliability.figures import figures, pytest_runtest_makereport  # noqa: F401 - fixture and hook

COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    # the figures fixture is function-scoped on purpose: it counts every example of the property
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=100, derandomize=True, **COMMON)
settings.register_profile("deep", max_examples=3000, **COMMON)
settings.load_profile(os.environ.get("RAMPART_HYPOTHESIS_PROFILE", "ci"))
