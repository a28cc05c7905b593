"""Fashion-MNIST from idx files, with numpy only (the board image has no torch).

:func:`read_idx` parses one idx file (gzip or not) with every size checked;
:func:`fashion_mnist_arrays` returns the raw ``uint8`` images and labels of a split.
``winoforge.model.data`` builds its training datasets on these two functions.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES", "FASHION_HINT", "read_idx", "find_idx",
           "fashion_mnist_arrays"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the idx files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_HINT = "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass --data-dir"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
# idx dtype codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one idx file (``.gz`` or uncompressed) into a native-endian numpy array.

    Checks the magic (two zero bytes, a known dtype code, the number of
    dimensions) and that the data size matches the dimensions exactly.
    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` naming the
    file for a corrupt, truncated or oversized one.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: not a readable idx file ({type(exc).__name__}: {exc})") from exc
    if len(data) < 4:
        raise ValueError(f"{path}: truncated idx file ({len(data)} bytes, no complete header)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad idx magic number 0x{data[:4].hex()} (expected 0x0000, dtype code, ndim)")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated or invalid idx header (ndim={ndim}, {len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(f"{path}: idx file {what}: {len(data)} bytes, dimensions {dims} need {expected}")
    array = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native order, writable copy


def find_idx(root: Path, stem: str) -> Path:
    """``root/stem.gz`` or ``root/stem``; ``FileNotFoundError`` saying how to get the files."""
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"Fashion-MNIST file {stem}.gz (or {stem}) not found in {root}: {FASHION_HINT}")


def fashion_mnist_arrays(root: str | os.PathLike | None = None, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` of ``split`` ("train": 60000, "test": 10000).

    ``root`` defaults to :data:`FASHION_MNIST_DIR`.  Raises ``FileNotFoundError`` for a missing
    file and ``ValueError`` naming the file for a corrupt one (bad header, wrong dtype, wrong
    sizes, labels outside 0..9)."""
    if split not in FASHION_FILES:
        raise ValueError(f"split={split!r} is not allowed; allowed: {', '.join(map(repr, FASHION_FILES))}")
    root = FASHION_MNIST_DIR if root is None else Path(root)
    image_stem, label_stem, count = FASHION_FILES[split]
    image_path, label_path = find_idx(root, image_stem), find_idx(root, label_stem)
    images = read_idx(image_path)
    if images.dtype != np.uint8 or images.shape != (count, 28, 28):
        raise ValueError(f"{image_path}: expected {count} uint8 images of 28x28, got {images.dtype} array of shape "
                         f"{images.shape}")
    labels = read_idx(label_path)
    if labels.dtype != np.uint8 or labels.shape != (count,):
        raise ValueError(f"{label_path}: expected {count} uint8 labels (as many as images), got {labels.dtype} array "
                         f"of shape {labels.shape}")
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{label_path}: labels must lie in 0..9, label {bad} is {labels[bad]}")
    return images, labels
