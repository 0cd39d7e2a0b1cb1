"""Shared test configuration: hypothesis profiles and the shared data location."""

from __future__ import annotations

import os

from _shared_data import shared_data  # noqa: F401 - the fixture, for every test
from hypothesis import HealthCheck, settings

# `ci` is derandomized so a CI run is reproducible; `dev` explores new examples.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Scripts that tests start as subprocesses (writers killed at random moments) are
# not test modules: importing them for doctests would run them.
collect_ignore_glob = ["_*_writer.py"]
