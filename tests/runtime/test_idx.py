"""The numpy-only Fashion-MNIST reader of the runtime (it also runs on the board's numpy 1.x)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from winoforge.runtime.idx import FASHION_MNIST_DIR, fashion_mnist_arrays, read_idx

pytestmark = pytest.mark.portable


def _write_idx(path: Path, array: np.ndarray) -> Path:
    raw = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.astype(">u1").tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_test_split_round_trips(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    labels = (np.arange(10000) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels)
    got_images, got_labels = fashion_mnist_arrays(tmp_path, "test")
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)


def test_bad_files_are_named(tmp_path):
    path = _write_idx(tmp_path / "x", np.zeros((3, 2), np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"x: idx file truncated"):
        read_idx(path)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fashion_mnist_arrays(tmp_path, "test")
    with pytest.raises(ValueError, match="split='val' is not allowed"):
        fashion_mnist_arrays(tmp_path, "val")


def test_labels_out_of_range_are_refused(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8))
    labels = np.zeros(10000, np.uint8)
    labels[5] = 10
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match="label 5 is 10"):
        fashion_mnist_arrays(tmp_path, "test")


def test_the_debian_files_read():
    if not FASHION_MNIST_DIR.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI installs dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    images, labels = fashion_mnist_arrays(split="test")
    assert images.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
