"""Fixtures of the hardware-flow tests."""

from __future__ import annotations

import os

import pytest


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
