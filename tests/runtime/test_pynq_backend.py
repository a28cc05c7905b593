"""The pynq backend through pynq 4.0's own code -- ``pynq.Overlay`` (hwh parsing, driver binding,
clocks, download), ``pynq.allocate``/``PynqBuffer`` (flush, invalidate, freeing), ``MMIO`` and
``DefaultIP.read/write`` -- with only the device simulated (``winoforge.runtime.pynq_sim``), on
the committed package ``notebooks/packages/fmnist-tiny`` given a simulated ``.bit``/``.hwh``.

Board environment only (pynq needs numpy<2); skipped in the host environment, which has no
pynq, and a failure in CI where the board environment lacks it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("pynq") is None and int(np.__version__.split(".")[0]) < 2 \
        and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    pytest.fail("the board environment (numpy<2) in CI must have pynq installed", pytrace=False)
pynq = pytest.importorskip("pynq", reason="pynq is installed in the board environment only")

import pynq.buffer  # noqa: E402
import pynq.ps  # noqa: E402

from winoforge.runtime import Accelerator, DeviceError, DeviceTimeoutError, SimulatedBusError  # noqa: E402
from winoforge.runtime.accelerator import open_overlay  # noqa: E402
from winoforge.runtime.device import ADDR_HI, ADDR_LO, AP_CTRL, NUM_REPS  # noqa: E402
from winoforge.runtime.package import load_package  # noqa: E402
from winoforge.runtime.pynq_sim import (FAMILIES, SIM_DESIGN, SimulatedPynqDevice, family_for_part,  # noqa: E402
                                        rehearsal_package, simulated_pynq, write_simulated_bitstream)

pytestmark = pytest.mark.portable

PACKAGE = Path(__file__).resolve().parents[2] / "notebooks" / "packages" / "fmnist-tiny"
#: FPGA parts of one board per family (the committed package is a PYNQ-Z2 build)
PARTS = {"zynq_7000": ("Pynq-Z2", "xc7z020clg400-1"), "zynq_ultrascale": ("ZCU104", "xczu7ev-ffvc1156-2-e")}


def make_pynq_package(root: Path, family: str) -> Path:
    """fmnist-tiny with a simulated .bit/.hwh for ``family`` and the manifest rewritten."""
    board, part = PARTS[family]
    assert family_for_part(part) == family
    pkg = rehearsal_package(PACKAGE, root / f"fmnist-tiny-{family}", board=board, fpga_part=part)
    manifest = load_package(pkg).manifest
    assert manifest["bitfile"] == "fmnist-tiny.bit" and manifest["fpga_part"] == part
    return pkg


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def package(request, tmp_path_factory) -> Path:
    return make_pynq_package(tmp_path_factory.mktemp("pkg"), request.param)


@pytest.fixture(scope="module")
def sim_reference():
    """The sim backend on the same package (the bit-exact reference)."""
    with Accelerator.load(PACKAGE, backend="sim", batch_size=8) as acc:
        yield acc


def family_of(pkg: Path) -> str:
    return family_for_part(load_package(pkg).manifest["fpga_part"])


def fmnist_like(n: int, seed: int = 0) -> np.ndarray:
    """Raw uint8 NHWC images: the build's golden Fashion-MNIST images flipped and shifted, and
    noise with an object-like bright blob."""
    with np.load(PACKAGE / "runtime" / "golden.npz") as golden:
        base = golden["input"]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            img = np.roll(base[i % len(base)][:, ::-1], rng.integers(-3, 4), axis=0)
        else:
            img = rng.integers(0, 40, (28, 28, 1))
            r, c = rng.integers(6, 22, 2)
            img[r - 5:r + 5, c - 4:c + 4] = rng.integers(120, 256, (10, 8, 1))
        out.append(img)
    return np.stack(out).astype(np.uint8)


# ---------------------------------------------------------------------- the package under pynq

def test_package_variant_is_valid(package):
    pkg = load_package(package, strict=True)
    assert pkg.bitfile == package / "fmnist-tiny.bit" and pkg.manifest["files"]["fmnist-tiny.hwh"]["bytes"] > 0
    bit = pkg.bitfile.read_bytes()
    assert SIM_DESIGN.encode() in bit[:120] and b"NOT A BITSTREAM" in bit  # never mistaken for a real one


@pytest.mark.parametrize("batch_size", [1, 5])
def test_self_test_is_bit_exact_through_pynq(package, batch_size):
    with simulated_pynq(package, family=family_of(package)) as device:
        with Accelerator.load(package, backend="pynq", batch_size=batch_size) as acc:
            assert acc.backend == "pynq"
            assert isinstance(acc.overlay, pynq.Overlay) and isinstance(acc.overlay.idma0, pynq.DefaultIP)
            assert device.downloads == [str(package / "fmnist-tiny.bit")]
            ibuf, obuf = acc.driver.ibuf, acc.driver.obuf
            assert type(ibuf) is pynq.buffer.PynqBuffer and type(obuf) is pynq.buffer.PynqBuffer
            assert device.bos[ibuf.device_address].cacheable  # as FINN's zynq-iodma driver allocates
            result = acc.self_test()
            assert result["equal"] and result["mismatches"] == 0 and result["images"] >= 16, result
            assert device.pl.images == result["images"]
            assert device.pl.batches == -(-result["images"] // batch_size)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_predictions_equal_the_sim_backend(package, sim_reference, batch_size):
    x = fmnist_like(7, seed=batch_size)
    want = sim_reference.execute(x)
    with simulated_pynq(package, family=family_of(package)):
        with Accelerator.load(package, backend="pynq", batch_size=batch_size) as acc:
            got = acc.execute(x)
            assert got.dtype == want.dtype and np.array_equal(got, want)
            assert np.array_equal(acc.predict(x), sim_reference.predict(x))
            assert np.array_equal(acc.execute(x[3:4]), want[3:4])  # a partial batch


def test_registers_are_written_through_pynq_mmio(package):
    family = family_of(package)
    with simulated_pynq(package, family=family) as device:
        with Accelerator.load(package, backend="pynq", batch_size=2) as acc:
            acc.execute(fmnist_like(2))
            idma = acc.overlay.ip_dict["idma0"]["phys_addr"]
            odma = acc.overlay.ip_dict["odma0"]["phys_addr"]
            assert idma == FAMILIES[family].ip_base and odma == idma + 0x1_0000
            writes = [(a, v) for op, a, v in device.register_log if op == "write"]
            for base, buf in ((odma, acc.driver.obuf), (idma, acc.driver.ibuf)):
                addr = buf.device_address
                assert writes[:4] == [(base + ADDR_LO, addr & 0xFFFFFFFF), (base + ADDR_HI, addr >> 32),
                                      (base + NUM_REPS, 2), (base + AP_CTRL, 1)]
                writes = writes[4:]
            if family == "zynq_ultrascale":
                assert acc.driver.ibuf.device_address >> 32  # the high address word is used
            # pynq's register_map reads the same simulated registers
            assert acc.overlay.odma0.register_map.numReps.numReps == 2
            assert acc.overlay.odma0.register_map.CTRL.AP_IDLE == 1


# ---------------------------------------------------------------------- bugs a board would show

def test_a_missing_flush_gives_stale_results(package, sim_reference, monkeypatch):
    x = fmnist_like(2, seed=3)
    with simulated_pynq(package, family=family_of(package)):
        with Accelerator.load(package, backend="pynq", batch_size=2) as acc:
            monkeypatch.setattr(pynq.buffer.PynqBuffer, "flush", lambda self: None)
            stale = acc.execute(x)  # the device read the buffer's never-flushed zeros
            assert not np.array_equal(stale, sim_reference.execute(x))
            assert np.array_equal(stale, sim_reference.execute(np.zeros_like(x)))
            monkeypatch.undo()
            assert np.array_equal(acc.execute(x), sim_reference.execute(x))


def test_a_missing_invalidate_gives_stale_results(package, sim_reference, monkeypatch):
    x = fmnist_like(4, seed=4)
    with simulated_pynq(package, family=family_of(package)):
        with Accelerator.load(package, backend="pynq", batch_size=2) as acc:
            first = acc.execute(x[:2])
            monkeypatch.setattr(pynq.buffer.PynqBuffer, "invalidate", lambda self: None)
            assert np.array_equal(acc.execute(x[2:]), first)  # the CPU's cached copy of the last output
            assert not np.array_equal(first, sim_reference.execute(x[2:]))


def test_timeout_when_done_never_comes(package):
    with simulated_pynq(package, family=family_of(package), hang=True):
        with Accelerator.load(package, backend="pynq", timeout_s=0.05) as acc:
            with pytest.raises(DeviceTimeoutError, match=r"did not finish within 0.05 s: output DMA odma0 0x00 = 0x1"):
                acc.execute(fmnist_like(1))
            with pytest.raises(DeviceError, match="not idle"):  # the hung pipeline is still running
                acc.execute(fmnist_like(1))
    with simulated_pynq(package, family=family_of(package), busy=True):
        with Accelerator.load(package, backend="pynq") as acc:
            with pytest.raises(DeviceError, match=r"output DMA is not idle \(odma0 0x00 = 0x1"):
                acc.execute(fmnist_like(1))


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_buffers_are_freed_through_pynq(package):
    with simulated_pynq(package, family=family_of(package)) as device:
        acc = Accelerator.load(package, backend="pynq", batch_size=3)
        old = [acc.driver.ibuf.device_address, acc.driver.obuf.device_address]
        acc.batch_size = 2  # reallocates: the old buffers go back through PynqBuffer.freebuffer
        assert all(device.bos[a].freed for a in old) and not device.bos[acc.driver.ibuf.device_address].freed
        with pytest.raises(SimulatedBusError, match="no buffer allocated there"):
            device.memory.read(old[0], 1)
        assert acc.self_test()["equal"]
        acc.close()
        assert all(bo.freed for bo in device.bos.values())
        leaked = pynq.allocate(shape=(8,), dtype=np.uint8, cacheable=True)  # freed when the device goes
    assert device.bos[leaked.device_address].freed
    del leaked  # PynqBuffer.__del__ after the context: nothing left to free, no NameError('libc')


# ---------------------------------------------------------------------- backend selection, globals

def test_auto_picks_pynq_when_the_device_is_present(package):
    with simulated_pynq(package, family=family_of(package)):
        with Accelerator.load(package) as acc:
            assert acc.backend == "pynq" and acc.self_test()["equal"]
    with Accelerator.load(package) as acc:  # pynq imports, but finds no device here
        assert acc.backend == "sim"


def _pynq_globals() -> dict:
    return {"device": {k: pynq.Device.__dict__.get(k, "absent") for k in ("_devices", "_active_device")},
            "clocks": {k: pynq.ps.Clocks.__dict__.get(k, "absent") for k in ("_real_instance", "device")},
            "buffer": {k: getattr(pynq.buffer, k, "absent") for k in ("libc", "ctypes")}}


def test_pynq_globals_are_restored(package):
    before = _pynq_globals()
    with simulated_pynq(package, family=family_of(package)) as device:
        assert pynq.Device.active_device is device and pynq.Device.devices == [device]
        assert isinstance(device, pynq.Device) and isinstance(device, SimulatedPynqDevice)
        Accelerator.load(package, backend="pynq").close()
        assert pynq.ps.Clocks.fclk0_mhz == 100.0  # the package's clock, set by Overlay.download
        assert _pynq_globals() != before
    assert _pynq_globals() == before
    with pytest.raises(RuntimeError, match="boom"):
        with simulated_pynq(package, family=family_of(package)):
            raise RuntimeError("boom")
    assert _pynq_globals() == before


# ---------------------------------------------------------------------- the simulated device itself

def test_zynq_7000_clock_pitfall_is_handled(tmp_path):
    """pynq 4.0 leaves a Zynq-7000 PL clock's frequency None: a plain Overlay(bit) fails in
    Clocks.set_pl_clk -- the backend's open_overlay sets it from the .hwh first."""
    bit = write_simulated_bitstream(tmp_path, "z7", family="zynq_7000", clock_mhz=125.0)
    io = json.loads((PACKAGE / "runtime" / "program.json").read_text())["io"]
    with simulated_pynq(lambda x: x, io, family="zynq_7000") as device:
        with pytest.raises(TypeError):
            pynq.Overlay(str(bit))
        overlay = open_overlay(pynq, bit)
        assert overlay.clock_dict[0]["frequency"] == 125.0 and pynq.ps.Clocks.fclk0_mhz == 125.0
        assert device.downloads == [str(bit)]
    bit = write_simulated_bitstream(tmp_path, "zu", family="zynq_ultrascale", clock_mhz=200.0)
    with simulated_pynq(lambda x: x, io, family="zynq_ultrascale"):
        pynq.Overlay(str(bit))  # UltraScale+: pynq's own path works as it is
        assert pynq.ps.Clocks.fclk0_mhz == 200.0


def test_the_simulated_device_refuses_other_files(tmp_path):
    io = json.loads((PACKAGE / "runtime" / "program.json").read_text())["io"]
    bit = write_simulated_bitstream(tmp_path, "acc")
    data = bit.read_bytes()
    real = tmp_path / "real.bit"
    real.write_bytes(data.replace(SIM_DESIGN.encode(), b"x" * len(SIM_DESIGN)))
    shutil.copy(bit.with_suffix(".hwh"), real.with_suffix(".hwh"))
    broken = tmp_path / "broken.bit"
    broken.write_bytes(data[:-8])
    shutil.copy(bit.with_suffix(".hwh"), broken.with_suffix(".hwh"))
    with simulated_pynq(lambda x: x, io):
        with pytest.raises(RuntimeError, match="Overlay is not downloaded"):
            pynq.allocate(shape=(4,), dtype=np.uint8)  # as EmbeddedDevice before any design
        with pytest.raises(RuntimeError, match="is a real bitstream; the simulated device loads only"):
            pynq.Overlay(str(real))
        with pytest.raises(RuntimeError):
            pynq.Overlay(str(broken))  # pynq's parse_bit_header: invalid length
        overlay = pynq.Overlay(str(bit))
        with pytest.raises(SimulatedBusError, match="no IP of the loaded design is mapped there"):
            pynq.MMIO(0x1000, 4).read(0)
        buf = pynq.allocate(shape=(4,), dtype=np.uint8, cacheable=False, target=overlay.device)
        buf[:] = 7  # non-cacheable: the CPU writes the DDR itself, no flush needed
        assert overlay.device.memory.read(buf.device_address, 4).tolist() == [7] * 4


# ---------------------------------------------------------------------- runtime-writeable weights under pynq

def test_runtime_weights_are_written_through_pynqs_weight_dmas(tmp_path):
    """A package whose Winograd layers take their weights at run time: pynq's Overlay binds the
    weight DMAs idma1/idma2 from the .hwh, the driver writes each layer's set through its DMA
    (one rep, through pynq's MMIO and a pynq buffer) before the first batch, the self-test is
    bit-exact, and a new set written between batches gives the program's outputs for it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_weights import new_weights, runtime_weight_package

    from winoforge.runtime.program import Program

    rw = runtime_weight_package(tmp_path)
    pkg = rehearsal_package(rw, tmp_path / "rw-pynq", board="ZCU104", fpga_part="xczu7ev-ffvc1156-2-e")
    with simulated_pynq(pkg, family="zynq_ultrascale") as device:
        with Accelerator.load(pkg, backend="pynq", batch_size=4) as acc:
            assert isinstance(acc.overlay.idma1, pynq.DefaultIP) and isinstance(acc.overlay.idma2, pynq.DefaultIP)
            entries = load_package(pkg).manifest["runtime_weights"]
            for e in entries:
                base = acc.overlay.ip_dict[e["dma"]]["phys_addr"]
                writes = [(a - base, v) for op, a, v in device.register_log if op == "write" and base <= a < base + 0x20]
                assert [a for a, _ in writes] == [ADDR_LO, ADDR_HI, NUM_REPS, AP_CTRL] and writes[2][1] == 1
                assert np.array_equal(device.pl.weights[e["dma"]], np.load(pkg / e["file"]))
            assert acc.self_test()["equal"]
            updates = new_weights(acc.program)
            acc.load_weights(updates)
            x = fmnist_like(6)
            got = acc.execute(x)
    want = Program.load(PACKAGE / "runtime")
    for name, U in updates.items():
        want.replace_param(name, "U", U)
    assert np.array_equal(got, want.run(x))
