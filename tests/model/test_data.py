"""Tests of winoforge.model.data: idx / CIFAR-10 binary parsing, synthetic set, loaders, augmentation."""

from __future__ import annotations
import os

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from winoforge.model import data

# ---------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, *, dtype_code: int = 0x08, gz: bool | None = None) -> Path:
    """Write ``array`` as an idx file (gzip-compressed when the name ends in .gz)."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[dtype_code]
    header = bytes([0, 0, dtype_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = header + np.asarray(array).astype(big).tobytes()
    if gz if gz is not None else path.suffix == ".gz":
        raw = gzip.compress(raw, compresslevel=1)
    path.write_bytes(raw)
    return path


def fake_fashion_test_split(root: Path, *, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A valid Fashion-MNIST-shaped test split (10000 images) in ``root``."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    labels = (np.arange(10000) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(root / f"t10k-images-idx3-ubyte{suffix}", images)
    write_idx(root / f"t10k-labels-idx1-ubyte{suffix}", labels)
    return images, labels


def cifar_records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    """``n`` random CIFAR-10 binary records: (labels, pixel bytes (n, 3072), file bytes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    raw = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
    return labels, pixels, raw


def write_cifar(folder: Path, counts: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, (name, n) in enumerate(counts.items()):
        labels, pixels, raw = cifar_records(n, seed=i)
        (folder / name).write_bytes(raw)
        written[name] = (labels, pixels)
    return written


CIFAR_SMALL = {**{f"data_batch_{i}.bin": i + 1 for i in range(1, 6)}, "test_batch.bin": 2}

FASHION_AVAILABLE = all(
    (data.FASHION_MNIST_DIR / f).is_file()
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
)
# CI installs the package: there the tests run (and fail loudly) instead of skipping
_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
needs_fashion = pytest.mark.skipif(
    not FASHION_AVAILABLE and not _IN_CI, reason=f"Fashion-MNIST not in {data.FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(scope="module")
def fashion_train() -> data.ImageDataset:
    return data.load_fashion_mnist(split="train")


# ----------------------------------------------------------- Fashion-MNIST


@needs_fashion
def test_real_fashion_mnist_train(fashion_train):
    ds = fashion_train
    assert ds.name == "fashion-mnist" and len(ds) == 60000
    assert ds.images.shape == (60000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60000,) and ds.labels.dtype == np.int64
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    assert ds.class_counts().tolist() == [6000] * 10
    assert ds.num_classes == 10 and ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.images.max() == 255 and ds.images.min() == 0
    x, y = ds[123]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
    assert y == int(ds.labels[123])
    # x = byte / 255: the 8-bit input quantizer (scale 1/255) recovers the raw bytes exactly.
    assert torch.equal(x, torch.from_numpy(ds.images[123]).float() / 255)
    codes = torch.round(x / torch.tensor(data.INPUT_SCALE, dtype=torch.float32))
    assert torch.equal(codes.to(torch.uint8), torch.from_numpy(ds.images[123]))


@needs_fashion
def test_real_fashion_mnist_test_split_and_uncompressed_copy(tmp_path):
    ds = data.load_fashion_mnist(data.FASHION_MNIST_DIR, "test")
    assert ds.images.shape == (10000, 1, 28, 28)
    assert ds.class_counts().tolist() == [1000] * 10
    # The same files uncompressed load to the same arrays.
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(data.FASHION_MNIST_DIR / f"{stem}.gz", "rb") as f:
            (tmp_path / stem).write_bytes(f.read())
    raw = data.load_fashion_mnist(tmp_path, "test")
    assert np.array_equal(raw.images, ds.images) and np.array_equal(raw.labels, ds.labels)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_other_folder(tmp_path, gz):
    images, labels = fake_fashion_test_split(tmp_path, gz=gz)
    ds = data.load_fashion_mnist(str(tmp_path), split="test")
    assert np.array_equal(ds.images[:, 0], images)
    assert np.array_equal(ds.labels, labels.astype(np.int64))


def test_missing_fashion_file_names_file_and_package(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist(tmp_path, "train")
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    # Images present, labels missing: the labels file is named.
    fake_fashion_test_split(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path / "nowhere", "test")


def _corrupt(kind: str, root: Path) -> str:
    """Make the fake test split in ``root`` bad in one way; return the bad file's name."""
    images, labels = fake_fashion_test_split(root)
    img, lab = root / "t10k-images-idx3-ubyte", root / "t10k-labels-idx1-ubyte"
    if kind == "truncated-data":
        img.write_bytes(img.read_bytes()[:-100])
        return img.name
    if kind == "trailing-bytes":
        img.write_bytes(img.read_bytes() + b"\0")
        return img.name
    if kind == "truncated-header":
        img.write_bytes(img.read_bytes()[:10])
        return img.name
    if kind == "empty":
        lab.write_bytes(b"")
        return lab.name
    if kind == "bad-magic":
        raw = bytearray(img.read_bytes())
        raw[0] = 0x1F
        img.write_bytes(bytes(raw))
        return img.name
    if kind == "unknown-dtype-code":
        raw = bytearray(lab.read_bytes())
        raw[2] = 0x07
        lab.write_bytes(bytes(raw))
        return lab.name
    if kind == "wrong-dtype":
        write_idx(lab, labels.astype(np.int32), dtype_code=0x0C)
        return lab.name
    if kind == "wrong-count":
        write_idx(img, images[:9999])
        return img.name
    if kind == "wrong-image-size":
        write_idx(img, np.zeros((10000, 28, 27), np.uint8))
        return img.name
    if kind == "label-count-mismatch":
        write_idx(lab, labels[:9990])
        return lab.name
    if kind == "label-out-of-range":
        bad = labels.copy()
        bad[77] = 10
        write_idx(lab, bad)
        return lab.name
    if kind in ("truncated-gzip", "garbage-gzip"):
        img.unlink()
        gz_path = root / "t10k-images-idx3-ubyte.gz"
        if kind == "truncated-gzip":
            payload = gzip.compress(bytes(4 + 12) + images.tobytes(), compresslevel=1)
            gz_path.write_bytes(payload[: len(payload) // 2])
        else:
            gz_path.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
        return gz_path.name
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "truncated-data",
        "trailing-bytes",
        "truncated-header",
        "empty",
        "bad-magic",
        "unknown-dtype-code",
        "wrong-dtype",
        "wrong-count",
        "wrong-image-size",
        "label-count-mismatch",
        "label-out-of-range",
        "truncated-gzip",
        "garbage-gzip",
    ],
)
def test_corrupt_fashion_file_raises_value_error_naming_it(tmp_path, kind):
    bad_name = _corrupt(kind, tmp_path)
    with pytest.raises(ValueError) as info:
        data.load_fashion_mnist(tmp_path, "test")
    assert bad_name in str(info.value)


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_dtypes_round_trip(tmp_path, code, dtype):
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * (1 if code == 0x08 else -3)).astype(dtype)
    if code == 0x08:
        array = array.astype(np.uint8)
    for name in ("a.idx", "a.idx.gz"):
        out = data.read_idx(write_idx(tmp_path / name, array, dtype_code=code))
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        assert np.array_equal(out, array)
        out[0, 0, 0] = 1  # writable


def test_read_idx_refuses_absurd_dimensions(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + np.array([2**32 - 1] * 3, ">u4").tobytes() + b"\0" * 10)
    with pytest.raises(ValueError, match="huge-idx3-ubyte.*truncated"):
        data.read_idx(path)


# ------------------------------------------------------------------ CIFAR-10


def test_cifar10_binary_round_trip(tmp_path):
    written = write_cifar(tmp_path, CIFAR_SMALL)
    train = data.load_cifar10(tmp_path, "train")
    test = data.load_cifar10(tmp_path, split="test")
    assert train.name == "cifar10" and train.classes == data.CIFAR10_CLASSES
    assert train.images.shape == (2 + 3 + 4 + 5 + 6, 3, 32, 32) and train.images.dtype == np.uint8
    assert test.images.shape == (2, 3, 32, 32)
    labels = np.concatenate([written[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    pixels = np.concatenate([written[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    assert np.array_equal(train.labels, labels.astype(np.int64)) and train.labels.dtype == np.int64
    assert np.array_equal(train.images.reshape(len(train), -1), pixels)
    assert np.array_equal(test.labels, written["test_batch.bin"][0])
    # CHW order: byte 1 + c*1024 + y*32 + x of a record is pixel (c, y, x).
    record = written["test_batch.bin"][1][1]
    for c, y, x in [(0, 0, 0), (0, 1, 2), (1, 0, 0), (2, 31, 30), (2, 5, 17)]:
        assert test.images[1, c, y, x] == record[c * 1024 + y * 32 + x]
    x, label = test[1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and label == written["test_batch.bin"][0][1]
    assert torch.equal(x, torch.from_numpy(record.reshape(3, 32, 32)).float() / 255)


def test_cifar10_channel_planes(tmp_path):
    """A record of constant R, G, B planes keeps the planes apart."""
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar(folder, CIFAR_SMALL)
    record = np.concatenate([[7], np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)
    (folder / "test_batch.bin").write_bytes(record.tobytes())
    test = data.load_cifar10(tmp_path, "test")  # the parent folder is accepted too
    assert test.labels.tolist() == [7]
    assert [np.unique(test.images[0, c]).tolist() for c in range(3)] == [[10], [20], [30]]


def test_cifar10_errors(tmp_path):
    written = write_cifar(tmp_path, CIFAR_SMALL)
    bad = tmp_path / "data_batch_3.bin"
    good = bad.read_bytes()
    bad.write_bytes(good + b"\0" * 5)
    with pytest.raises(ValueError, match="data_batch_3.bin.*3073"):
        data.load_cifar10(tmp_path, "train")
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="data_batch_3.bin"):
        data.load_cifar10(tmp_path, "train")
    raw = bytearray(good)
    raw[3073] = 10  # label of the second record
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"data_batch_3.bin.*0\.\.9"):
        data.load_cifar10(tmp_path, "train")
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3.bin"):
        data.load_cifar10(tmp_path, "train")
    assert data.load_cifar10(tmp_path, "test").labels.tolist() == written["test_batch.bin"][0].tolist()
    with pytest.raises(ValueError, match="root"):
        data.load_cifar10(None, "test")  # type: ignore[arg-type]


# ----------------------------------------------------------------- synthetic


def test_synthetic_deterministic_and_configurable():
    a = data.synthetic_dataset(100, num_classes=4, channels=3, size=32, seed=5)
    b = data.synthetic_dataset(100, num_classes=4, channels=3, size=32, seed=5)
    c = data.synthetic_dataset(100, num_classes=4, channels=3, size=32, seed=6)
    assert a.images.shape == (100, 3, 32, 32) and a.images.dtype == np.uint8 and a.labels.dtype == np.int64
    assert a.num_classes == 4 and len(a.classes) == 4 and a.class_counts().tolist() == [25] * 4
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    test = data.synthetic_dataset(100, num_classes=4, channels=3, size=32, seed=5, split="test")
    assert not np.array_equal(a.images, test.images)
    # Train and test share the class patterns: class means agree closely.
    for k in range(4):
        m_train = a.images[a.labels == k].astype(float).mean(0)
        m_test = test.images[test.labels == k].astype(float).mean(0)
        m_other = test.images[test.labels == (k + 1) % 4].astype(float).mean(0)
        assert np.abs(m_train - m_test).mean() < 0.5 * np.abs(m_train - m_other).mean()
    odd = data.synthetic_dataset(7, num_classes=3, channels=1, size=9)
    assert odd.images.shape == (7, 1, 9, 9)


def test_synthetic_is_learnable_by_a_small_cnn():
    torch.manual_seed(0)
    train = data.synthetic_dataset(512, seed=1)
    test = data.synthetic_dataset(256, seed=1, split="test")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 7 * 7, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loader = data.make_loader(train, batch_size=64, shuffle=True, augment=data.default_augment(train), seed=0)
    for _ in range(3):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    x, y = next(iter(data.make_loader(test, batch_size=len(test))))
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9


# ------------------------------------------------------------------- loaders


def _batches(loader, epochs: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for _ in range(epochs) for x, y in loader]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_make_loaders_deterministic_from_seed():
    kwargs = dict(batch_size=64, augment=True)
    train1, test1 = data.make_loaders("synthetic", seed=3, **kwargs)
    train2, _ = data.make_loaders("synthetic", seed=3, **kwargs)
    train3, _ = data.make_loaders("synthetic", seed=4, **kwargs)
    b1, b2, b3 = _batches(train1, 2), _batches(train2, 2), _batches(train3, 2)
    n = data.SYNTHETIC_SIZES["train"]
    assert len(b1) == 2 * (n // 64)
    assert _same(b1, b2)  # same seed: same batches, epoch after epoch
    half = len(b1) // 2
    assert not _same(b1[:half], b1[half:])  # a new order every epoch
    assert not torch.equal(torch.cat([y for _, y in b1]), torch.cat([y for _, y in b3]))  # another seed, another order
    x, y = b1[0]
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    # The test loader keeps file order and never augments.
    test_ds = test1.dataset
    xt, yt = next(iter(test1))
    assert torch.equal(xt, torch.from_numpy(test_ds.images[:64]).float() / 255)
    assert torch.equal(yt, torch.from_numpy(test_ds.labels[:64]))


def test_loader_without_augment_is_a_permutation():
    ds = data.synthetic_dataset(50, seed=2)
    loader = data.make_loader(ds, batch_size=16, shuffle=True, seed=9)
    xs, ys = zip(*_batches(loader))
    x, y = torch.cat(xs), torch.cat(ys)
    assert len(x) == 50
    # Every sample once; x is exactly its bytes / 255.
    bytes_ = torch.round(x * 255).to(torch.uint8).numpy()
    order = [int(np.flatnonzero((ds.images == img).all(axis=(1, 2, 3)))[0]) for img in bytes_]
    assert sorted(order) == list(range(50))
    assert np.array_equal(y.numpy(), ds.labels[order])
    assert order != list(range(50))


def test_loader_same_batches_with_workers():
    ds = data.synthetic_dataset(96, channels=3, size=32, seed=1)
    aug = data.Augment(pad=4, flip=True)
    serial = _batches(data.make_loader(ds, batch_size=32, shuffle=True, augment=aug, seed=11))
    parallel = _batches(data.make_loader(ds, batch_size=32, shuffle=True, augment=aug, seed=11, num_workers=2))
    assert _same(serial, parallel)


# -------------------------------------------------------------- augmentation


def test_default_augment():
    assert data.default_augment(data.synthetic_dataset(2, channels=3, size=32)) == data.Augment(pad=4, flip=False)
    assert data.default_augment(data.synthetic_dataset(2, size=28)) == data.Augment(pad=2, flip=False)
    cifar_like = data.ImageDataset(np.zeros((1, 3, 32, 32), np.uint8), np.zeros(1, np.int64), data.CIFAR10_CLASSES, "cifar10")
    assert data.default_augment(cifar_like) == data.Augment(pad=4, flip=True)


@given(
    pad=st.integers(0, 4),
    flip=st.booleans(),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    code_frac=st.floats(0, 1, exclude_max=True),
)
def test_augment_is_a_shifted_flipped_copy(pad, flip, h, w, code_frac):
    aug = data.Augment(pad=pad, flip=flip)
    code = int(code_frac * aug.num_codes)
    image = torch.arange(2 * h * w, dtype=torch.int64).reshape(2, h, w) + 1
    out = aug(image, code)
    assert out.shape == image.shape and out.dtype == image.dtype
    dy, dx, flipped = aug.decode(code)
    assert 0 <= dy <= 2 * pad and 0 <= dx <= 2 * pad and (flipped is False or flip)
    padded = torch.zeros(2, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    expected = padded[:, dy : dy + h, dx : dx + w]
    if flipped:
        expected = expected.flip(2)
    assert torch.equal(out, expected)
    assert torch.equal(aug(image, aug.identity_code()), image)


def test_augment_codes_cover_all_crops_and_flips():
    aug = data.Augment(pad=2, flip=True)
    decoded = {aug.decode(c) for c in range(aug.num_codes)}
    assert aug.num_codes == 50 and len(decoded) == 50
    with pytest.raises(ValueError, match="code"):
        aug.decode(50)
    with pytest.raises(ValueError, match="pad"):
        data.Augment(pad=-1)


def test_augmented_batches_reproducible_and_shape_preserving():
    ds = data.synthetic_dataset(64, channels=3, size=32, seed=4)
    aug = data.Augment(pad=4, flip=True)
    a = _batches(data.make_loader(ds, batch_size=16, shuffle=True, augment=aug, seed=5), 2)
    b = _batches(data.make_loader(ds, batch_size=16, shuffle=True, augment=aug, seed=5), 2)
    plain = _batches(data.make_loader(ds, batch_size=16, shuffle=True, seed=5), 1)
    assert _same(a, b)
    assert all(x.shape == (16, 3, 32, 32) for x, _ in a)
    # Same order as without augmentation (the order is drawn first), but other pixels.
    assert all(torch.equal(ya, yp) for (_, ya), (_, yp) in zip(a, plain))
    assert not all(torch.equal(xa, xp) for (xa, _), (xp, _) in zip(a, plain))
    # Augmented pixels are still bytes / 255 (zero padding adds byte 0).
    x = torch.cat([x for x, _ in a])
    assert torch.equal(x * 255, torch.round(x * 255))
    # Indexing: an int is the original image; (index, code) the augmented one.
    aug_ds = ds.with_augment(aug)
    assert torch.equal(aug_ds[3][0], ds[3][0])
    assert torch.equal(aug_ds[(3, aug.identity_code())][0], ds[3][0])
    with pytest.raises(ValueError, match="augment"):
        ds[(3, 0)]


# ----------------------------------------------------------- bad arguments


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match=r"name='mnist'.*'fashion-mnist', 'cifar10', 'synthetic'"):
        data.make_loaders("mnist")
    with pytest.raises(ValueError, match=r"name='imagenet'.*allowed"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"split='val'.*'train', 'test'"):
        data.load_fashion_mnist(split="val")
    with pytest.raises(ValueError, match=r"split='valid'.*'train', 'test'"):
        data.load_cifar10("/nonexistent", split="valid")
    with pytest.raises(ValueError, match="split"):
        data.synthetic_dataset(4, split="dev")
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loaders("synthetic", batch_size=0)
    with pytest.raises(ValueError, match="num_classes"):
        data.synthetic_dataset(4, num_classes=0)
    with pytest.raises(ValueError, match="root"):
        data.make_loaders("cifar10")
    with pytest.raises(ValueError, match="labels"):
        data.ImageDataset(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 3]), ["a", "b"])
    with pytest.raises(ValueError, match="uint8"):
        data.ImageDataset(np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]), ["a", "b"])


def test_subset_and_repr():
    ds = data.synthetic_dataset(20, seed=0)
    sub = ds.subset(slice(5, 10))
    assert len(sub) == 5 and np.array_equal(sub.images, ds.images[5:10]) and sub.classes == ds.classes
    one = ds.subset([3])
    assert one.images.shape == (1, 1, 28, 28)
    assert "synthetic" in repr(ds)
    sub.images[0] = 0
    assert ds.images[5].any()  # a copy, not a view


# ------------------------------------------------------------- device-resident


@pytest.mark.parametrize("augment", [None, data.Augment(pad=2, flip=True), data.Augment(pad=1, flip=False)],
                         ids=["plain", "crop2-flip", "crop1"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_device_loader_gives_the_dataloaders_batches(augment, shuffle):
    from winoforge.model.data import Augment, DeviceLoader, make_loader, synthetic_dataset

    ds = synthetic_dataset(300, seed=4)
    a = make_loader(ds, batch_size=64, shuffle=shuffle, augment=augment, seed=3)
    b = DeviceLoader(ds, batch_size=64, shuffle=shuffle, augment=augment, seed=3)
    assert len(a) == len(b) == 5
    for _ in range(2):  # a second pass draws a new permutation and new codes, in both
        pairs = list(zip(a, b, strict=True))
        for (xa, ya), (xb, yb) in pairs:
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # the generator advanced identically: resume state is the same object semantics
    assert torch.equal(a.sampler.generator.get_state(), b.sampler.generator.get_state())


def test_device_loader_drop_last_and_bad_input():
    from winoforge.model.data import Augment, DeviceLoader, make_loader, synthetic_dataset

    ds = synthetic_dataset(100, seed=1)
    assert len(DeviceLoader(ds, batch_size=32, drop_last=True)) == 3
    assert sum(len(y) for _, y in DeviceLoader(ds, batch_size=32, drop_last=True)) == 96
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="ImageDataset"):
        DeviceLoader([1, 2, 3])
