"""Shared test setup: hypothesis profiles and a fixture that runs a test on every ISA path."""
import os

import pytest
from hypothesis import HealthCheck, settings

import fakequant

settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_ORDER = ["scalar", "avx2", "avx512", "amx"]
DETECTED = fakequant._C.detected_isa()
ISAS = _ORDER[: _ORDER.index(DETECTED) + 1]


@pytest.fixture(params=_ORDER)
def isa(request, monkeypatch):
    """Caps the kernels at one ISA (FAKEQUANT_ISA); skips levels this CPU lacks."""
    if request.param not in ISAS:
        pytest.skip(f"{request.param} not supported on this CPU (detected {DETECTED})")
    monkeypatch.setenv("FAKEQUANT_ISA", request.param)
    return request.param
