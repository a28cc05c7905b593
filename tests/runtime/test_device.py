"""The zynq-iodma protocol against the register-level simulated device, the Accelerator's
backends, input refusals and corrupt packages.  Stand-in computes only: no FINN, no Program."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from winoforge.runtime import (Accelerator, BackendError, CorruptPackageError, DataflowDriver, DeviceError,
                               DeviceTimeoutError, IOSpec, SimulatedBusError, SimulatedMemory, SimulatedOverlay,
                               load_package, verify_package)
from winoforge.runtime.accelerator import to_accelerator_layout
from winoforge.runtime.device import ADDR_HI, ADDR_LO, AP_CTRL, AP_DONE, AP_IDLE, NUM_REPS

pytestmark = pytest.mark.portable

# UINT8 NHWC image 4x4x2, folded with SIMD 2; UINT10 output of 5 values in one 50-bit word
IO_A = {"idt": "DataType['UINT8']", "odt": "DataType['UINT10']",
        "ishape_normal": [1, 4, 4, 2], "ishape_folded": [1, 4, 4, 1, 2],
        "oshape_normal": [1, 5], "oshape_folded": [1, 1, 5]}
# signed sub-byte input, SIMD 2 of 4 channels; signed 16-bit output folded by PE 2
IO_B = {"idt": "INT4", "odt": "INT16",
        "ishape_normal": [1, 3, 3, 4], "ishape_folded": [1, 3, 3, 2, 2],
        "oshape_normal": [1, 4], "oshape_folded": [1, 2, 2]}


def compute_a(x: np.ndarray) -> np.ndarray:
    assert x.dtype == np.uint8 and x.shape[1:] == (4, 4, 2)
    flat = x.reshape(x.shape[0], -1).astype(np.int64)
    return flat[:, :5] * 3 + np.arange(5)


def compute_b(x: np.ndarray) -> np.ndarray:
    assert x.dtype == np.int8 and x.shape[1:] == (3, 3, 4)
    return x.astype(np.int64).sum(axis=(1, 2)) * 100


SPECS = {"a": (IO_A, compute_a), "b": (IO_B, compute_b)}


def inputs(io: dict, n: int, seed: int = 0) -> np.ndarray:
    spec = IOSpec.from_dict(io)
    rng = np.random.default_rng(seed)
    return rng.integers(int(spec.idt.min), int(spec.idt.max), (n, *spec.ishape_normal[1:]), endpoint=True,
                        dtype=spec.idt.numpy_dtype)


def make_driver(key: str = "a", batch_size: int = 1, timeout_s: float = 5.0, **faults):
    io, compute = SPECS[key]
    overlay = SimulatedOverlay(compute, io, **faults)
    return DataflowDriver(overlay, overlay.allocate, io, batch_size=batch_size, timeout_s=timeout_s), overlay


# ---------------------------------------------------------------------- io spec

def test_io_spec_forms():
    spec = IOSpec.from_dict(IO_A)
    assert spec.idt.name == "UINT8" and spec.odt.name == "UINT10"
    assert spec.ishape_packed(3) == (3, 4, 4, 1, 2) and spec.oshape_packed(3) == (3, 1, 7)
    finn_form = {k: [tuple(v)] if isinstance(v, list) else [v] for k, v in IO_A.items()}  # io_shape_dict lists
    assert IOSpec.from_dict(finn_form) == spec
    assert IOSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="io spec lacks odt, oshape_folded; required keys"):
        IOSpec.from_dict({k: v for k, v in IO_A.items() if k not in ("odt", "oshape_folded")})
    with pytest.raises(ValueError, match=r"ishape_normal \(1, 4, 4, 2\) and ishape_folded \(1, 4, 4, 2, 2\) do not"):
        IOSpec.from_dict({**IO_A, "ishape_folded": [1, 4, 4, 2, 2]})
    with pytest.raises(ValueError, match="io spec 'idt': datatype 'UINT99'"):
        IOSpec.from_dict({**IO_A, "idt": "UINT99"})
    with pytest.raises(ValueError, match="io spec 'oshape_normal'"):
        IOSpec.from_dict({**IO_A, "oshape_normal": [1, 0]})
    with pytest.raises(ValueError, match="one input and one output"):
        IOSpec.from_dict({**IO_A, "idt": ["UINT8", "UINT8"]})


# ---------------------------------------------------------------------- protocol

@pytest.mark.parametrize("key", ["a", "b"])
@pytest.mark.parametrize("batch_size,n", [(1, 1), (1, 3), (3, 3), (3, 7), (4, 2)])
def test_execute_matches_compute(key, batch_size, n):
    driver, overlay = make_driver(key, batch_size)
    x = inputs(SPECS[key][0], n, seed=n)
    y = driver.execute(x)
    want = SPECS[key][1](x)
    assert y.dtype == driver.io.odt.numpy_dtype and np.array_equal(y, want)
    assert overlay.batches == math.ceil(n / batch_size) and overlay.images == n


def test_register_sequence_is_finns():
    """Per batch: idle check on odma0; odma0 then idma0: address low/high, count, start;
    then odma0 0x00 polled until done."""
    driver, overlay = make_driver("a", batch_size=2, latency_polls=3)
    driver.execute(inputs(IO_A, 3))
    ibuf, obuf = driver.ibuf, driver.obuf
    assert ibuf.device_address >> 32 and obuf.device_address >> 32  # the high word matters

    def programming(buf, n):
        a = buf.device_address
        return [("write", ADDR_LO, a & 0xFFFFFFFF), ("write", ADDR_HI, a >> 32), ("write", NUM_REPS, n),
                ("write", AP_CTRL, 1)]

    idle = ("read", AP_CTRL, AP_IDLE)
    polls = [("read", AP_CTRL, 1)] * 3 + [("read", AP_CTRL, AP_DONE | AP_IDLE)]
    assert overlay.odma0.log == [idle, *programming(obuf, 2), *polls, idle, *programming(obuf, 1), *polls]
    assert overlay.idma0.log == [*programming(ibuf, 2), *programming(ibuf, 1)]


def test_done_bit_clears_on_read_and_device_stays_usable():
    driver, overlay = make_driver("b", batch_size=2)
    x = inputs(IO_B, 2)
    first = driver.execute(x)
    assert overlay.odma0.read(AP_CTRL) == AP_IDLE  # done was consumed by the driver's poll
    assert np.array_equal(driver.execute(x), first)


def test_timeout_when_done_never_comes():
    driver, overlay = make_driver("a", timeout_s=0.05, hang=True)
    with pytest.raises(DeviceTimeoutError, match=r"did not finish within 0.05 s: output DMA odma0 0x00 = 0x1 "
                                                 r"\(bit 1 'done' never set"):
        driver.execute(inputs(IO_A, 1))
    assert isinstance(DeviceTimeoutError("x"), TimeoutError) and overlay.batches == 0
    # the hung pipeline is still running: the next batch is refused by the idle check
    with pytest.raises(DeviceError, match="not idle"):
        driver.execute(inputs(IO_A, 1))


def test_idle_check():
    driver, overlay = make_driver("a", busy=True)
    with pytest.raises(DeviceError, match=r"output DMA is not idle \(odma0 0x00 = 0x1, bit 2 clear\)"):
        driver.execute(inputs(IO_A, 1))
    assert overlay.odma0.log == [("read", AP_CTRL, 1)]  # nothing programmed


def test_driver_refuses_bad_inputs_and_settings():
    driver, _ = make_driver("a")
    with pytest.raises(ValueError, match=r"input: shape \(4, 4, 2\); expected \(N, 4, 4, 2\)"):
        driver.execute(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="out of range for UINT8"):
        driver.execute(np.full((1, 4, 4, 2), 256, np.int32))
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer"):
        driver.batch_size = 0
    with pytest.raises(ValueError, match=r"n=2 images: must be 1..batch_size \(1\)"):
        driver.execute_on_buffers(2)
    with pytest.raises(ValueError, match="timeout_s"):
        make_driver("a", timeout_s=0)
    with pytest.raises(DeviceError, match="has no 'odma0'"):
        DataflowDriver(types.SimpleNamespace(idma0=None), SimulatedMemory().allocate, IO_A)
    assert driver.execute(np.zeros((0, 4, 4, 2), np.uint8)).shape == (0, 5)


def test_batch_size_reallocates():
    driver, overlay = make_driver("a", batch_size=1)
    old = driver.ibuf.device_address
    driver.batch_size = 5
    assert driver.ibuf.shape == (5, 4, 4, 1, 2) and driver.obuf.shape == (5, 1, 7)
    assert driver.ibuf.device_address != old
    x = inputs(IO_A, 6)
    assert np.array_equal(driver.execute(x), compute_a(x)) and overlay.batches == 2


# ---------------------------------------------------------------------- simulated memory and device faults

def test_buffers_need_flush_and_invalidate():
    mem = SimulatedMemory(base=0x1000)
    buf = mem.allocate(shape=(2, 3), dtype=np.uint8)
    buf[:] = 7
    assert mem.read(buf.device_address, 6).tolist() == [0] * 6  # still in the CPU cache
    buf.flush()
    assert mem.read(buf.device_address, 6).tolist() == [7] * 6
    mem.write(buf.device_address + 2, np.array([9], np.uint8))
    assert buf[0, 2] == 7
    buf.invalidate()
    assert buf[0, 2] == 9
    part = buf[1:]  # a view: its own address, flushes only its bytes
    assert part.device_address == buf.device_address + 3
    part[:] = 5
    part.flush()
    assert mem.read(buf.device_address, 6).tolist() == [7, 7, 9, 5, 5, 5]
    with pytest.raises(DeviceError, match="non-contiguous view"):
        buf[:, ::2].flush()
    with pytest.raises(DeviceError, match="not \\(a view of\\) an allocated DMA buffer"):
        buf.copy().flush()
    buf.freebuffer()
    with pytest.raises(SimulatedBusError, match="no buffer allocated there"):
        mem.read(0x1000, 1)


def test_driver_that_skips_flush_reads_stale_memory():
    class NoFlush(DataflowDriver):
        def execute(self, x):
            self.ibuf.flush = lambda: None  # a driver bug: the device never sees the input
            return super().execute(x)

    overlay = SimulatedOverlay(compute_a, IO_A)
    driver = NoFlush(overlay, overlay.allocate, IO_A)
    x = np.full((1, 4, 4, 2), 9, np.uint8)
    assert not np.array_equal(driver.execute(x), compute_a(x))
    assert np.array_equal(driver.execute(x), compute_a(np.zeros_like(x)))


def _program(dma, address, n):
    dma.write(ADDR_LO, address & 0xFFFFFFFF)
    dma.write(ADDR_HI, address >> 32)
    dma.write(NUM_REPS, n)
    dma.write(AP_CTRL, 1)


def test_wrong_address_or_small_buffer_is_a_bus_error():
    overlay = SimulatedOverlay(compute_a, IO_A)
    spec = IOSpec.from_dict(IO_A)
    ibuf = overlay.allocate(shape=spec.ishape_packed(1), dtype=np.uint8)
    obuf = overlay.allocate(shape=spec.oshape_packed(1), dtype=np.uint8)
    _program(overlay.odma0, obuf.device_address, 1)
    with pytest.raises(SimulatedBusError, match=r"DMA access of 32 bytes at 0x1234: no buffer allocated there"):
        _program(overlay.idma0, 0x1234, 1)

    overlay = SimulatedOverlay(compute_a, IO_A)
    ibuf = overlay.allocate(shape=spec.ishape_packed(2), dtype=np.uint8)
    obuf = overlay.allocate(shape=spec.oshape_packed(1), dtype=np.uint8)  # room for one image only
    _program(overlay.odma0, obuf.device_address, 2)
    with pytest.raises(SimulatedBusError, match=r"14 bytes at 0x[0-9a-f]+ runs past the end of the buffer .* "
                                                r"\(7 bytes\): buffer too small"):
        _program(overlay.idma0, ibuf.device_address, 2)


def test_count_mismatch_and_bad_pipeline_output():
    overlay = SimulatedOverlay(compute_a, IO_A)
    spec = IOSpec.from_dict(IO_A)
    ibuf = overlay.allocate(shape=spec.ishape_packed(2), dtype=np.uint8)
    obuf = overlay.allocate(shape=spec.oshape_packed(2), dtype=np.uint8)
    _program(overlay.odma0, obuf.device_address, 2)
    with pytest.raises(DeviceError, match=r"batch counts differ or are zero: idma0 0x1C = 1, odma0 0x1C = 2"):
        _program(overlay.idma0, ibuf.device_address, 1)

    for compute, match in [(lambda x: np.zeros((x.shape[0], 4)), r"returned shape \(1, 4\); the io spec says \(1, 5\)"),
                           (lambda x: np.full((x.shape[0], 5), 1024), r"out of range for UINT10")]:
        driver, _ = make_driver("a")
        driver.overlay.compute = compute
        with pytest.raises(DeviceError, match=match):
            driver.execute(inputs(IO_A, 1))


def test_register_file_refusals():
    overlay = SimulatedOverlay(compute_a, IO_A)
    with pytest.raises(DeviceError, match="unmapped register 0x20"):
        overlay.idma0.write(0x20, 1)
    with pytest.raises(DeviceError, match="unmapped register 0x8"):
        overlay.idma0.read(0x8)
    with pytest.raises(DeviceError, match="does not fit 32 bits"):
        overlay.idma0.write(ADDR_LO, 1 << 32)
    assert overlay.idma0.read(AP_CTRL) == AP_IDLE


# ---------------------------------------------------------------------- packages and the Accelerator

class StandIn:
    """What Accelerator needs of a Program: ``io`` and ``run``."""

    def __init__(self, folder: Path):
        spec = json.loads((folder / "program.json").read_text())
        self.io = spec["io"]
        self.run = SPECS[spec["compute"]][1]


def write_package(root: Path, key: str = "a", bitfile: bool = False, hwh: bool = True) -> Path:
    """A small deployment package: manifest with the sha256 of every file, a stand-in program."""
    root.mkdir(parents=True)
    (root / "runtime").mkdir()
    (root / "runtime" / "program.json").write_text(json.dumps({"io": SPECS[key][0], "compute": key}))
    (root / "reports").mkdir()
    (root / "reports" / "estimates.json").write_text('{"fps": 1000}\n')
    (root / "model.onnx").write_bytes(bytes(range(256)) * 4)
    if bitfile:
        (root / "acc.bit").write_bytes(b"\x00\x09\x0f\xf0" * 64)
        if hwh:
            (root / "acc.hwh").write_text("<hwh/>")
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files[path.relative_to(root).as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest = {"format_version": 1, "name": root.name, "bitfile": "acc.bit" if bitfile else None,
                "input": {"name": "x", "shape": [1, 2, 4, 4], "dtype": "uint8"}, "files": files}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def load(path: Path, **kwargs) -> Accelerator:
    return Accelerator.load(path, program_loader=StandIn, **kwargs)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_accelerator_sim(tmp_path, batch_size):
    acc = load(write_package(tmp_path / "pkg"), backend="sim", batch_size=batch_size)
    assert acc.backend == "sim" and acc.batch_size == batch_size and acc.input_shape == (4, 4, 2)
    x = inputs(IO_A, 6)
    y = acc.execute(x)
    assert np.array_equal(y, compute_a(x)) and y.shape == (6, 5)
    assert np.array_equal(acc.predict(x), np.argmax(compute_a(x), axis=-1))
    stats = acc.throughput(x, repeats=2)
    assert stats["images"] == 12 and stats["images_per_s"] > 0
    acc.batch_size = 2
    assert np.array_equal(acc.execute(x), y)
    assert "UINT8[4, 4, 2] -> output UINT10[5]" in repr(acc)
    with acc:
        pass
    assert acc.driver.ibuf is None


def test_accelerator_signed_and_overlay_options(tmp_path):
    acc = load(write_package(tmp_path / "pkg", key="b"), backend="sim", batch_size=2, latency_polls=5)
    x = inputs(IO_B, 3)
    assert np.array_equal(acc.execute(x.astype(np.int64)), compute_b(x))  # any integer container that fits
    hung = load(tmp_path / "pkg", backend="sim", timeout_s=0.02, hang=True)
    with pytest.raises(DeviceTimeoutError, match="0.02 s"):
        hung.execute(x)


def test_accelerator_refuses_bad_inputs(tmp_path):
    acc = load(write_package(tmp_path / "pkg"), backend="sim")
    expected = r"expected an \(N, 4, 4, 2\) uint8 array of integers 0..255"
    with pytest.raises(ValueError, match=rf"input: shape \(4, 4, 2\); {expected} \(one image\? add the batch"):
        acc.execute(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=rf"input: shape \(1, 4, 2, 4\); {expected}$"):
        acc.execute(np.zeros((1, 4, 2, 4), np.uint8))  # neither NHWC nor NCHW
    with pytest.raises(ValueError, match=rf"input: dtype float32; {expected} -- the accelerator takes the raw"):
        acc.execute(np.zeros((1, 4, 4, 2), np.float32))
    for value, dtype in [(300, np.int16), (-1, np.int8)]:
        x = np.zeros((1, 4, 4, 2), dtype)
        x[0, 1, 2, 1] = value
        with pytest.raises(ValueError, match=rf"input: 1 value\(s\) are out of range for UINT8, first {value} "
                                             r"at index \(0, 1, 2, 1\); allowed: integers 0..255"):
            acc.execute(x)
    with pytest.raises(ValueError, match="input: dtype <U1"):
        acc.execute(np.full((1, 4, 4, 2), "a"))


def test_accelerator_takes_torchs_nchw_when_the_shape_leaves_no_doubt(tmp_path):
    acc = load(write_package(tmp_path / "pkg"), backend="sim")
    x = inputs(IO_A, 3)  # NHWC (3, 4, 4, 2)
    nhwc = acc.execute(x)
    assert acc.last_layout == "NHWC"
    assert np.array_equal(acc.execute(x.transpose(0, 3, 1, 2)), nhwc) and acc.last_layout == "NCHW"
    square = np.zeros((1, 3, 3, 3), np.uint8)  # C == H == W: NHWC, the accelerator's own layout
    same, layout = to_accelerator_layout(square, (3, 3, 3))
    assert same is square and layout == "NHWC"


def test_backend_selection_without_a_board(tmp_path, monkeypatch):
    plain = write_package(tmp_path / "plain")
    monkeypatch.setitem(sys.modules, "pynq", None)  # `import pynq` fails, as on the host
    assert load(plain).backend == "sim"  # auto, no bitfile: pynq not even tried
    with pytest.raises(BackendError, match=r"has no bitfile \(manifest 'bitfile' is null.*use backend='sim'"):
        load(plain, backend="pynq")
    with_bit = write_package(tmp_path / "bit", bitfile=True)
    assert load(with_bit).backend == "sim"  # auto: bitfile, but no pynq
    with pytest.raises(BackendError, match=r"backend='pynq' needs the pynq package"):
        load(with_bit, backend="pynq")
    no_hwh = write_package(tmp_path / "nohwh", bitfile=True, hwh=False)
    with pytest.raises(BackendError, match=r"acc.bit has no acc.hwh next to it"):
        load(no_hwh, backend="pynq")
    with pytest.raises(ValueError, match=r"backend='fpga'; allowed: auto, pynq, sim"):
        load(plain, backend="fpga")
    with pytest.raises(ValueError, match="apply to the sim backend only"):
        load(with_bit, backend="pynq", hang=True)


def test_auto_with_the_real_pynq_and_no_device(tmp_path):
    """Board environment: pynq imports but finds no device here, so auto runs the simulation."""
    pytest.importorskip("pynq", reason="pynq is installed in the board environment only")
    acc = load(write_package(tmp_path / "bit", bitfile=True))
    assert acc.backend == "sim"
    x = inputs(IO_A, 2)
    assert np.array_equal(acc.execute(x), compute_a(x))


def fake_pynq(devices: list, memory: SimulatedMemory, loaded: list) -> types.ModuleType:
    """A stand-in ``pynq`` module: Overlay(bitfile) gives a SimulatedOverlay, allocate its memory."""
    module = types.ModuleType("pynq")

    def overlay(bitfile: str, download: bool = True):
        ov = SimulatedOverlay(compute_a, IO_A, memory=memory)
        ov.download = lambda: loaded.append(bitfile)
        if download:
            ov.download()
        return ov

    module.Overlay = overlay
    module.allocate = memory.allocate
    module.Device = types.SimpleNamespace(devices=devices)
    return module


def test_pynq_backend_drives_the_overlay(tmp_path, monkeypatch):
    pkg = write_package(tmp_path / "bit", bitfile=True)
    memory, loaded = SimulatedMemory(base=0x3000_0000), []
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq([], memory, loaded))
    assert load(pkg).backend == "sim" and loaded == []  # pynq imports, but finds no device
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(["board"], memory, loaded))
    for backend in ("auto", "pynq"):
        acc = load(pkg, backend=backend, batch_size=2)
        assert acc.backend == "pynq" and loaded[-1] == str(pkg / "acc.bit")
        x = inputs(IO_A, 3)
        assert np.array_equal(acc.execute(x), compute_a(x)) and acc.overlay.images == 3
        assert acc.driver.ibuf.device_address < 1 << 32


def test_missing_program(tmp_path):
    pkg = write_package(tmp_path / "pkg")
    (pkg / "runtime" / "program.json").unlink()
    manifest = json.loads((pkg / "manifest.json").read_text())
    del manifest["files"]["runtime/program.json"]
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackendError, match=r"has no runtime/program.json"):
        load(pkg, backend="sim")


# ---------------------------------------------------------------------- corrupt packages

def test_package_loads(tmp_path):
    pkg = write_package(tmp_path / "pkg", bitfile=True)
    loaded = load_package(pkg)
    assert loaded.path == pkg and loaded.name == "pkg" and loaded.unlisted == ()
    assert loaded.bitfile == pkg / "acc.bit" and loaded.file("model.onnx") == pkg / "model.onnx"
    assert verify_package(pkg) == loaded.manifest
    with pytest.raises(KeyError, match="not listed"):
        loaded.file("other.txt")


def test_corrupt_package_refused(tmp_path):
    pkg = write_package(tmp_path / "pkg")
    target = pkg / "reports" / "estimates.json"
    expected = hashlib.sha256(target.read_bytes()).hexdigest()
    target.write_text('{"fps": 9999}\n')  # same size, other content
    found = hashlib.sha256(target.read_bytes()).hexdigest()
    message = (rf"{pkg}: reports/estimates.json does not match its sha256 in manifest.json "
               rf"\(expected {expected}, found {found}\)")
    with pytest.raises(CorruptPackageError, match=message):
        load(pkg, backend="sim")
    assert issubclass(CorruptPackageError, ValueError)
    target.write_text('{"fps": 99999}\n')
    with pytest.raises(CorruptPackageError, match=r"does not match its size in manifest.json \(expected 14 bytes, "
                                                  r"found 15\)"):
        load_package(pkg)


def _edit_manifest(pkg: Path, **changes) -> None:
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest.update(changes)
    (pkg / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change,match", [
    (lambda pkg: (pkg / "model.onnx").unlink(), r"model.onnx is listed in the manifest but missing"),
    (lambda pkg: (pkg / "manifest.json").unlink(), r"has no manifest.json"),
    (lambda pkg: (pkg / "manifest.json").write_text("{not json"), r"manifest.json is not valid JSON"),
    (lambda pkg: (pkg / "manifest.json").write_text("[]"), r"holds list, not a JSON object"),
    (lambda pkg: _edit_manifest(pkg, format_version=2), r"format_version 2; allowed: 1"),
    (lambda pkg: _edit_manifest(pkg, files=None), r"'files' must map each file"),
    (lambda pkg: _edit_manifest(pkg, files={"../outside": {"sha256": "0" * 64}}), r"not a plain path inside"),
    (lambda pkg: _edit_manifest(pkg, files={"/etc/passwd": {"sha256": "0" * 64}}), r"not a plain path inside"),
    (lambda pkg: _edit_manifest(pkg, files={"model.onnx": {"bytes": 1024}}), r"model.onnx has no sha256"),
])
def test_package_refusals(tmp_path, change, match):
    pkg = write_package(tmp_path / "pkg")
    change(pkg)
    with pytest.raises(CorruptPackageError, match=match):
        load_package(pkg)


def test_unlisted_files(tmp_path):
    pkg = write_package(tmp_path / "pkg")
    (pkg / "extra.bin").write_bytes(b"x")
    assert load_package(pkg).unlisted == ("extra.bin",)
    with pytest.raises(CorruptPackageError, match=r"1 file\(s\) not listed in manifest.json: extra.bin"):
        load_package(pkg, strict=True)
    with pytest.raises(CorruptPackageError, match="not listed"):
        load(pkg, backend="sim", strict=True)
