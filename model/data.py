"""Datasets and data loaders: Fashion-MNIST, CIFAR-10 and a synthetic set.

Normalisation (one rule for every dataset): images stay ``uint8`` in memory,
shape ``(N, C, H, W)``, and are returned on access as ``float32`` in ``[0, 1]``:
``x = byte / 255``.  There is **no** mean/std normalisation: the students' first
quantizer is an unsigned 8-bit input quantizer with scale ``INPUT_SCALE = 1/255``,
so its integer codes ``round(x / INPUT_SCALE)`` are exactly the raw pixel bytes,
which is what the accelerator receives.

Sources (nothing is ever downloaded):

* Fashion-MNIST: the idx files of Debian's ``dataset-fashion-mnist`` package in
  :data:`FASHION_MNIST_DIR`, or any folder holding the same four files,
  gzip-compressed (``.gz``) or not.
* CIFAR-10: the *binary* distribution (folder ``cifar-10-batches-bin``:
  ``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``; each record
  is one label byte followed by 3072 pixel bytes in CHW order).  The Python
  (pickle) distribution is not supported: nothing is unpickled.
* ``synthetic``: class patterns plus noise, deterministic from a seed, for
  fast tests (:func:`synthetic_dataset`).

Augmentation (:class:`Augment`: random crop with zero padding, horizontal flip)
is drawn in the main process by :class:`SeededSampler`, which hands each sample
index together with an augmentation code to the dataset.  Shuffling and
augmentation therefore depend only on the seed, whatever the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from winoforge.runtime.idx import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashion_mnist_arrays, read_idx

__all__ = [
    "DATASETS",
    "SPLITS",
    "INPUT_SCALE",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "SYNTHETIC_SIZES",
    "ImageDataset",
    "Augment",
    "SeededSampler",
    "read_idx",
    "load_fashion_mnist",
    "load_cifar10",
    "synthetic_dataset",
    "load_dataset",
    "default_augment",
    "make_loader",
    "make_loaders",
    "DeviceLoader",
]

#: Dataset names accepted by :func:`load_dataset` and :func:`make_loaders`.
DATASETS: tuple[str, ...] = ("fashion-mnist", "cifar10", "synthetic")
#: Split names.
SPLITS: tuple[str, ...] = ("train", "test")
#: Step of the unsigned 8-bit input quantizer: ``x = byte * INPUT_SCALE``.
INPUT_SCALE: float = 1.0 / 255.0

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: Sample counts of the ``synthetic`` dataset when loaded by name.
SYNTHETIC_SIZES: dict[str, int] = {"train": 2048, "test": 512}

_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
_CIFAR_RECORD = 1 + 3 * 32 * 32
_CIFAR_HINT = (
    "pass --data-dir pointing at the extracted binary CIFAR-10 distribution "
    "(folder cifar-10-batches-bin from cifar-10-binary.tar.gz)"
)



# --------------------------------------------------------------------- checks


def _check_choice(field: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{field}={value!r} is not allowed; allowed: {options}")
    return value


def _check_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{field}={int(value)} is out of range; allowed: >= {minimum}")
    return int(value)


# -------------------------------------------------------------------- dataset


class ImageDataset(Dataset):
    """Labelled uint8 images; item ``i`` is ``(x, label)``, ``x`` float32 CHW in ``[0, 1]``.

    ``images`` is ``(N, C, H, W) uint8``, ``labels`` ``(N,) int64`` in
    ``0 .. num_classes - 1``.  With an :class:`Augment`, an item may also be
    requested as ``dataset[(i, code)]`` (what :class:`SeededSampler` yields);
    ``dataset[i]`` is always the unaugmented image.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        classes: Sequence[str],
        name: str = "custom",
        augment: Augment | None = None,
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a (N, C, H, W) uint8 array, got {images.dtype} shape {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array of {images.shape[0]} entries, got {labels.dtype} shape {labels.shape}")
        classes = tuple(str(c) for c in classes)
        if not classes:
            raise ValueError("classes must name at least one class")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"labels must lie in 0..{len(classes) - 1}, got {labels.min()}..{labels.max()}")
        if augment is not None and not isinstance(augment, Augment):
            raise ValueError(f"augment must be an Augment or None, got {augment!r}")
        # Own, writable, contiguous copies only where needed (torch.from_numpy wants writable).
        self.images: np.ndarray = np.require(images, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])
        self.labels: np.ndarray = np.require(labels, np.int64, ["C_CONTIGUOUS"])
        self.classes: tuple[str, ...] = classes
        self.name: str = name
        self.augment: Augment | None = augment

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if isinstance(key, tuple):
            index, code = key
            if self.augment is None:
                raise ValueError(f"augmentation code {code} requested from dataset {self.name!r}, which has no augment")
            image = self.augment(torch.from_numpy(self.images[index]), int(code))
        else:
            index = key
            image = torch.from_numpy(self.images[index])
        return image.to(torch.float32).div_(255.0), int(self.labels[index])

    def with_augment(self, augment: Augment | None) -> ImageDataset:
        """The same images (shared, not copied) with another augmentation."""
        return ImageDataset(self.images, self.labels, self.classes, self.name, augment)

    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> ImageDataset:
        """A dataset of the selected samples (copied), e.g. ``ds.subset(slice(0, 1000))``."""
        images = self.images[indices]
        labels = self.labels[indices]
        return ImageDataset(np.array(images, ndmin=4), np.array(labels, ndmin=1), self.classes, self.name, self.augment)

    def class_counts(self) -> np.ndarray:
        """Number of samples of each class, ``(num_classes,) int64``."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}, n={len(self)}, shape={self.image_shape}, classes={self.num_classes}, augment={self.augment})"


# --------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class Augment:
    """Random crop with ``pad`` pixels of zero padding and optional horizontal flip.

    An integer *code* in ``0 .. num_codes - 1`` selects one augmentation:
    with ``flip``, ``code % 2`` says whether to flip and ``code // 2`` is
    the crop index ``r``, else ``r = code``; the crop window starts at row
    ``r // (2 pad + 1)`` and column ``r % (2 pad + 1)`` of the padded image.
    :meth:`identity_code` gives the code of the unchanged image.
    """

    pad: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        _check_int("pad", self.pad, 0)
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be a bool, got {self.flip!r}")

    @property
    def num_codes(self) -> int:
        """Number of distinct augmentations (crop offsets x flips)."""
        return (2 * self.pad + 1) ** 2 * (2 if self.flip else 1)

    def identity_code(self) -> int:
        """The code of the centre crop without flip (the original image)."""
        side = 2 * self.pad + 1
        rest = self.pad * side + self.pad
        return rest * 2 if self.flip else rest

    def decode(self, code: int) -> tuple[int, int, bool]:
        """``(row offset, column offset, flipped)`` of ``code``; offsets into the padded image."""
        if not 0 <= code < self.num_codes:
            raise ValueError(f"code={code} is out of range; allowed: 0..{self.num_codes - 1}")
        flipped = False
        if self.flip:
            flipped, code = bool(code % 2), code // 2
        side = 2 * self.pad + 1
        return code // side, code % side, flipped

    def __call__(self, image: torch.Tensor, code: int) -> torch.Tensor:
        """Augment one ``(C, H, W)`` image tensor (any dtype); same shape out."""
        if image.ndim != 3:
            raise ValueError(f"image must have 3 dimensions (C, H, W), got shape {tuple(image.shape)}")
        dy, dx, flipped = self.decode(code)
        _, h, w = image.shape
        if self.pad:
            p = self.pad
            image = F.pad(image, (p, p, p, p))[:, dy : dy + h, dx : dx + w]
        if flipped:
            image = torch.flip(image, dims=(2,))
        return image.contiguous()


def default_augment(dataset: ImageDataset) -> Augment:
    """The standard augmentation for ``dataset``: crop with padding 4 (32x32) / 2 (28x28), flip for real images.

    Horizontal flips are used for CIFAR-10 and Fashion-MNIST (both
    left-right symmetric classes), not for the synthetic set, whose class
    patterns are not flip-invariant.
    """
    _, h, w = dataset.image_shape
    side = min(h, w)
    pad = 4 if side >= 32 else 2 if side >= 16 else 1
    return Augment(pad=pad, flip=dataset.name in ("cifar10", "fashion-mnist"))


class SeededSampler(Sampler):
    """Indices ``0 .. n-1`` (shuffled or in order), each with an augmentation code.

    All randomness comes from one ``torch.Generator`` seeded with ``seed``:
    every pass draws a new permutation, then one code per sample in
    ``0 .. num_codes - 1``.  Two samplers with the same arguments yield the
    same sequence, epoch after epoch.  With ``num_codes == 1`` plain ``int``
    indices are yielded, otherwise ``(index, code)`` tuples.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0, num_codes: int = 1) -> None:
        self.n = _check_int("n", n, 0)
        self.shuffle = bool(shuffle)
        self.seed = _check_int("seed", seed, 0)
        self.num_codes = _check_int("num_codes", num_codes, 1)
        self.generator = torch.Generator().manual_seed(self.seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int | tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator).tolist()
        else:
            order = list(range(self.n))
        if self.num_codes == 1:
            yield from order
            return
        codes = torch.randint(self.num_codes, (self.n,), generator=self.generator).tolist()
        yield from zip(order, codes)


# ------------------------------------------------------------------ idx files


# ------------------------------------------------------------------- loaders


def load_fashion_mnist(root: str | os.PathLike | None = None, split: str = "train") -> ImageDataset:
    """Fashion-MNIST ``split`` ("train": 60000, "test": 10000 images, 1x28x28) from idx files.

    ``root`` defaults to :data:`FASHION_MNIST_DIR`; files may be ``.gz`` or
    uncompressed.  Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming the file for a corrupt one (bad header, wrong dtype,
    wrong sizes, labels outside 0..9): see :func:`winoforge.runtime.idx.fashion_mnist_arrays`.
    """
    _check_choice("split", split, SPLITS)
    images, labels = fashion_mnist_arrays(root, split)
    return ImageDataset(images[:, None], labels.astype(np.int64), FASHION_MNIST_CLASSES, "fashion-mnist")


def _cifar_dir(root: Path) -> Path:
    """``root`` itself, or its ``cifar-10-batches-bin`` subfolder when ``root`` holds one."""
    sub = root / "cifar-10-batches-bin"
    return sub if sub.is_dir() and not (root / "test_batch.bin").exists() else root


def load_cifar10(root: str | os.PathLike, split: str = "train") -> ImageDataset:
    """CIFAR-10 ``split`` (3x32x32) from the binary distribution in ``root``.

    ``root`` is the ``cifar-10-batches-bin`` folder or its parent.  Each file
    must be a whole number of 3073-byte records (label byte, then 1024 bytes
    each of R, G, B, row-major); labels must lie in 0..9.  The record count is
    not fixed (the official files hold 10000 each).  Raises
    ``FileNotFoundError`` / ``ValueError`` naming the file.
    """
    _check_choice("split", split, SPLITS)
    if root is None:
        raise ValueError(f"root must name the CIFAR-10 folder for cifar10 (no default location): {_CIFAR_HINT}")
    folder = _cifar_dir(Path(root))
    images, labels = [], []
    for name in _CIFAR_FILES[split]:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 file {name} not found in {folder}: {_CIFAR_HINT}")
        data = np.fromfile(path, dtype=np.uint8)
        if data.size == 0 or data.size % _CIFAR_RECORD:
            raise ValueError(
                f"{path}: size {data.size} bytes is not a positive multiple of the {_CIFAR_RECORD}-byte CIFAR-10 record "
                "(is it the binary distribution, not the python one?)"
            )
        records = data.reshape(-1, _CIFAR_RECORD)
        label = records[:, 0]
        if label.max() > 9:
            bad = int(np.argmax(label > 9))
            raise ValueError(f"{path}: labels must lie in 0..9, record {bad} has label {label[bad]}")
        labels.append(label.astype(np.int64))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32))
    return ImageDataset(np.concatenate(images), np.concatenate(labels), CIFAR10_CLASSES, "cifar10")


def synthetic_dataset(
    n: int,
    num_classes: int = 10,
    channels: int = 1,
    size: int = 28,
    seed: int = 0,
    split: str = "train",
) -> ImageDataset:
    """``n`` synthetic images that a small CNN learns within a few epochs.

    Each class has a fixed random pattern (a coarse grid of blocks, about
    ``size / 4`` pixels each, independently per channel) drawn from ``seed``;
    a sample is its class pattern at a random contrast (0.6..1.0) plus a
    random brightness offset and Gaussian noise (sigma 24), clipped to uint8.
    Labels cycle through the classes, then are shuffled.  Patterns depend
    only on ``seed`` (and the shape); samples also on ``split``, so "train"
    and "test" share patterns but not samples.  Deterministic.
    """
    n = _check_int("n", n, 0)
    num_classes = _check_int("num_classes", num_classes, 1)
    channels = _check_int("channels", channels, 1)
    size = _check_int("size", size, 4)
    seed = _check_int("seed", seed, 0)
    _check_choice("split", split, SPLITS)

    grid = 4
    block = -(-size // grid)  # ceil
    pattern_rng = np.random.default_rng([seed, num_classes, channels, size])
    coarse = pattern_rng.uniform(0.0, 255.0, size=(num_classes, channels, grid, grid))
    patterns = coarse.repeat(block, axis=2).repeat(block, axis=3)[:, :, :size, :size]

    rng = np.random.default_rng([seed, num_classes, channels, size, SPLITS.index(split) + 1])
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    contrast = rng.uniform(0.6, 1.0, size=(n, 1, 1, 1))
    offset = rng.uniform(-20.0, 20.0, size=(n, 1, 1, 1))
    noise = rng.normal(0.0, 24.0, size=(n, channels, size, size))
    images = patterns[labels] * contrast + offset + noise
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    classes = tuple(f"class{i}" for i in range(num_classes))
    return ImageDataset(images, labels, classes, "synthetic")


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> ImageDataset:
    """Dataset ``name`` (one of :data:`DATASETS`), ``split`` "train" or "test".

    ``root``: data folder (Fashion-MNIST: optional, CIFAR-10: required,
    synthetic: ignored).  The synthetic set has :data:`SYNTHETIC_SIZES`
    samples of 1x28x28 in 10 classes, seed 0, shaped like Fashion-MNIST.
    """
    _check_choice("name", name, DATASETS)
    _check_choice("split", split, SPLITS)
    if name == "fashion-mnist":
        return load_fashion_mnist(root, split)
    if name == "cifar10":
        return load_cifar10(root, split)  # type: ignore[arg-type]
    return synthetic_dataset(SYNTHETIC_SIZES[split], split=split)


def make_loader(
    dataset: ImageDataset,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    augment: Augment | None = None,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` whose order and augmentation depend only on ``seed``.

    Batches are ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` in ``[0, 1]``, ``y``
    int64 ``(B,)``.  ``augment`` replaces the dataset's own augmentation
    (``None``: none).  Fresh loaders with the same arguments give identical
    batches epoch after epoch, for any ``num_workers``.
    """
    if not isinstance(dataset, ImageDataset):
        raise ValueError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    batch_size = _check_int("batch_size", batch_size, 1)
    num_workers = _check_int("num_workers", num_workers, 0)
    dataset = dataset.with_augment(augment)
    sampler = SeededSampler(len(dataset), shuffle=shuffle, seed=seed, num_codes=augment.num_codes if augment else 1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,
        # The loader draws its workers' base seed from this generator, not from torch's global RNG.
        generator=torch.Generator().manual_seed(sampler.seed),
    )


def make_loaders(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    batch_size: int = 128,
    test_batch_size: int | None = None,
    augment: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` for dataset ``name`` (see :func:`load_dataset`).

    The train loader shuffles and, with ``augment``, applies
    :func:`default_augment`; both come from ``seed``.  The test loader keeps
    the file order, never augments, and uses ``test_batch_size``
    (default: ``batch_size``).
    """
    _check_choice("name", name, DATASETS)
    if not isinstance(augment, bool):
        raise ValueError(f"augment must be a bool, got {augment!r}")
    train = load_dataset(name, "train", root)
    test = load_dataset(name, "test", root)
    train_loader = make_loader(
        train,
        batch_size=batch_size,
        shuffle=True,
        augment=default_augment(train) if augment else None,
        seed=seed,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
    test_loader = make_loader(
        test,
        batch_size=batch_size if test_batch_size is None else test_batch_size,
        shuffle=False,
        seed=seed,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
    return train_loader, test_loader


# ------------------------------------------------------------- device-resident


class DeviceLoader:
    """The batches of :func:`make_loader`, made on ``device`` from a copy of the dataset kept there.

    A GPU waits on a per-sample ``DataLoader`` (crop, flip and collate in Python for
    every image); this loader holds the ``uint8`` images once on the device and builds
    each batch with a few indexing kernels.  The order and the augmentation codes come
    from the same :class:`SeededSampler` (same seed, same ``torch.Generator``, drawn
    once per pass on the CPU), and crop + flip are pure indexing followed by the same
    ``/ 255``, so every batch is *equal* to the ``DataLoader``'s (tested on CPU).

    It exposes what :class:`~winoforge.model.train.Trainer` uses of a ``DataLoader``:
    ``len()`` (batches), iteration over ``(x, y)`` (already on ``device``),
    ``sampler.generator`` (checkpointed for exact resume), ``dataset`` and
    ``batch_size``.  Not for distributed training (each rank needs its own shard).
    """

    def __init__(self, dataset: ImageDataset, *, batch_size: int = 128, shuffle: bool = False,
                 augment: Augment | None = None, seed: int = 0, drop_last: bool = False,
                 device: str | torch.device = "cpu") -> None:
        if not isinstance(dataset, ImageDataset):
            raise ValueError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.drop_last = bool(drop_last)
        self.dataset = dataset.with_augment(augment)
        self.augment = augment
        self.device = torch.device(device)
        self.sampler = SeededSampler(len(dataset), shuffle=shuffle, seed=seed,
                                     num_codes=augment.num_codes if augment else 1)
        self.num_workers = 0
        images = torch.from_numpy(dataset.images)
        pad = augment.pad if augment else 0
        if pad:
            images = F.pad(images, (pad, pad, pad, pad))
        self._images = images.to(self.device)
        self._labels = torch.from_numpy(dataset.labels).to(self.device)
        _, _, h, w = dataset.images.shape
        self._rows = torch.arange(h, device=self.device)
        self._cols = torch.arange(w, device=self.device)

    def __len__(self) -> int:
        n, b = len(self.sampler), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def _order_and_codes(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One pass of the sampler, drawn exactly as :meth:`SeededSampler.__iter__` draws it."""
        s = self.sampler
        order = torch.randperm(s.n, generator=s.generator) if s.shuffle else torch.arange(s.n)
        codes = torch.randint(s.num_codes, (s.n,), generator=s.generator) if s.num_codes > 1 else None
        return order, codes

    def _batch(self, index: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        if code is None or self.augment is None:
            return self._images[index]
        a = self.augment
        if a.flip:
            flipped, code = (code % 2).bool(), code // 2
        side = 2 * a.pad + 1
        dy, dx = code // side, code % side
        rows = (dy[:, None] + self._rows[None, :])[:, None, :, None]  # (B, 1, H, 1)
        cols = dx[:, None] + self._cols[None, :]  # (B, W)
        if a.flip:
            cols = torch.where(flipped[:, None], cols.flip(1), cols)
        cols = cols[:, None, None, :]  # (B, 1, 1, W)
        b = torch.arange(index.numel(), device=self.device)[:, None, None, None]
        c = torch.arange(self._images.shape[1], device=self.device)[None, :, None, None]
        return self._images[index][b, c, rows, cols]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, codes = self._order_and_codes()
        order = order.to(self.device)
        codes = codes.to(self.device) if codes is not None else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            code = codes[start:start + self.batch_size] if codes is not None else None
            yield self._batch(index, code).to(torch.float32).div_(255.0), self._labels[index]
