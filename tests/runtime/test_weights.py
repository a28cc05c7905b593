"""Runtime-writeable weights: the weight-stream codec (``winoforge.runtime.weights``), the weight
DMAs of the driver and of the simulated device, and ``Accelerator.load_weights`` on a package
with runtime weights (sim backend; the pynq backend in ``test_pynq_backend.py``).  numpy only:
runs in both environments.  That the build's streams equal :func:`encode` and that the RTL
computes with what the DMAs deliver: ``tests/hw/test_runtime_weights.py``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from winoforge.runtime import Accelerator, DeviceError, DeviceTimeoutError
from winoforge.runtime.device import ADDR_HI, ADDR_LO, AP_CTRL, AP_START, NUM_REPS, DataflowDriver, SimulatedOverlay
from winoforge.runtime.package import load_package, write_manifest
from winoforge.runtime.program import Program
from winoforge.runtime.weights import WeightLayout, WeightStreamError, decode, encode

pytestmark = pytest.mark.portable

PACKAGE = Path(__file__).resolve().parents[2] / "notebooks" / "packages" / "fmnist-tiny"

LAYOUTS = [
    WeightLayout(cout=8, cin=4, t=4, pos=4, pe=2, simd=4, sub_row=4, keep=2, w_bits=4, w_signed=True, idx_bits=2),
    WeightLayout(cout=4, cin=8, t=4, pos=2, pe=2, simd=2, sub_row=0, keep=0, w_bits=3, w_signed=True, idx_bits=0),
    WeightLayout(cout=8, cin=16, t=6, pos=9, pe=4, simd=16, sub_row=8, keep=2, w_bits=3, w_signed=False, idx_bits=3),
    WeightLayout(cout=6, cin=12, t=4, pos=16, pe=3, simd=6, sub_row=3, keep=1, w_bits=5, w_signed=True, idx_bits=2),
    # pe not dividing cout: three output folds, the last with one padding channel
    WeightLayout(cout=8, cin=8, t=4, pos=2, pe=3, simd=8, sub_row=4, keep=1, w_bits=4, w_signed=True, idx_bits=2),
    # pos not dividing t^2: three position groups (6 + 6 + 4), the last with two idle (zero) lanes
    WeightLayout(cout=8, cin=8, t=4, pos=6, pe=2, simd=8, sub_row=4, keep=1, w_bits=4, w_signed=True, idx_bits=2),
]


def srbs_weights(layout: WeightLayout, rng: np.random.Generator, dense: bool = False) -> np.ndarray:
    """Random integer U in the layout's range obeying its SRBS pattern (some kept entries zero)."""
    lo, hi = layout.value_range()
    U = rng.integers(lo, hi + 1, size=layout.shape)
    if layout.sparse and not dense:
        L, K = layout.sub_row, layout.keep
        g = U.transpose(0, 2, 3, 1).reshape(-1, L)
        mask = np.zeros(g.shape, bool)
        np.put_along_axis(mask, np.argsort(rng.random(g.shape), axis=1)[:, :K], True, axis=1)
        U = np.where(mask, g, 0).reshape(layout.cout, layout.t, layout.t, layout.cin).transpose(0, 3, 1, 2)
    return U.astype(np.int64)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"{lay.sub_row}of{lay.keep}_pos{lay.pos}_pe{lay.pe}")
def test_decode_inverts_encode(layout):
    rng = np.random.default_rng(layout.cout * layout.cin)
    for _ in range(3):
        U = srbs_weights(layout, rng)
        words = encode(U, layout)
        assert words.dtype == np.uint64 and len(words) == layout.words
        assert np.array_equal(decode(words, layout), U)
    # one bit flipped in the stream changes the weights the layer computes with
    words[len(words) // 2] ^= np.uint64(1 << 5)
    assert not np.array_equal(decode(words, layout), U)


def test_decode_sums_lanes_as_the_hardware_does():
    """Two lanes of one sub-row with the same index add up; an index past the sub-row selects 0."""
    lay = LAYOUTS[3]  # sub_row 3 with 2 index bits: index 3 lies past the sub-row
    U = np.zeros(lay.shape, np.int64)
    words = encode(U, lay)
    # line 0 holds entries (j, pe, r, k) of fold 0: entry 0 is sub-row 0 of output channel 0 at position 0
    ne, wb = lay.entries, lay.w_bits
    bits = np.unpackbits(words.astype("<u8").view(np.uint8).reshape(lay.lines, -1), axis=1, bitorder="little")

    def put(entry: int, value: int, index: int) -> None:
        bits[0, entry * wb:(entry + 1) * wb] = [(value >> b) & 1 for b in range(wb)]
        at = ne * wb + entry * lay.idx_bits
        bits[0, at:at + lay.idx_bits] = [(index >> b) & 1 for b in range(lay.idx_bits)]

    put(0, 5, 1)   # output channel 0, position 0, sub-row 0: channel 1 gets 5
    put(1, -3, 3)  # sub-row 1 (keep 1: entry 1), index 3 >= sub_row: selects 0
    got = decode(np.packbits(bits, axis=1, bitorder="little").view("<u8").ravel(), lay)
    want = np.zeros(lay.shape, np.int64)
    want[0, 1, 0, 0] = 5
    assert np.array_equal(got, want)
    lay2 = LAYOUTS[0]  # keep 2 of 4: both lanes of a sub-row on channel 2 add
    bits = np.zeros((lay2.lines, lay2.columns * 64), np.uint8)
    for entry, value in ((0, 3), (1, -2)):
        bits[0, entry * 4:(entry + 1) * 4] = [(value >> b) & 1 for b in range(4)]
        at = lay2.entries * 4 + entry * 2
        bits[0, at:at + 2] = [0, 1]  # index 2
    got = decode(np.packbits(bits, axis=1, bitorder="little").view("<u8").ravel(), lay2)
    assert got[0, 2, 0, 0] == 1 and np.count_nonzero(got) == 1


def test_bad_weights_and_streams_are_refused_naming_the_field():
    lay = LAYOUTS[0]
    rng = np.random.default_rng(1)
    U = srbs_weights(lay, rng)
    with pytest.raises(WeightStreamError, match=r"shape \(4, 8, 4, 4\); the layer takes \(Cout, Cin, t, t\) = "
                                                r"\(8, 4, 4, 4\)"):
        encode(U.transpose(1, 0, 2, 3), lay)
    with pytest.raises(WeightStreamError, match=r"outside the layer's signed 4-bit range \[-8, 7\]"):
        encode(np.where(U != 0, 9, 0), lay)
    with pytest.raises(WeightStreamError, match="sub-rows hold more than keep=2 non-zeros of sub_row=4"):
        encode(srbs_weights(lay, rng, dense=True) | 1, lay)
    with pytest.raises(WeightStreamError, match="the layer takes integers"):
        encode(U + 0.5, lay)
    with pytest.raises(WeightStreamError, match=f"{lay.words - 1} words; the layer takes {lay.words}"):
        decode(encode(U, lay)[:-1], lay)
    with pytest.raises(WeightStreamError, match=r"pe=9; allowed: 1\.\.cout=8"):
        WeightLayout.from_dict({**lay.to_dict(), "pe": 9})
    assert WeightLayout.from_dict({**lay.to_dict(), "pe": 3}).lines == 4 * 3 and lay.lines == 4 * 4  # G * CF * SF
    with pytest.raises(WeightStreamError, match="simd=3 does not divide cin=4"):
        WeightLayout.from_dict({**lay.to_dict(), "simd": 3})
    with pytest.raises(WeightStreamError, match=r"pos=17; allowed: 1\.\.t\*t=16"):
        WeightLayout.from_dict({**lay.to_dict(), "pos": 17})
    assert WeightLayout.from_dict({**lay.to_dict(), "pos": 6}).lines == 3 * 4  # ceil(16 / 6) groups
    with pytest.raises(WeightStreamError, match="missing keep"):
        WeightLayout.from_dict({k: v for k, v in lay.to_dict().items() if k != "keep"})
    with pytest.raises(WeightStreamError, match="idx_bits=1 cannot index sub_row=4"):
        WeightLayout.from_dict({**lay.to_dict(), "idx_bits": 1})


# --------------------------------------------------------------------------- the weight DMAs

IO = {"idt": "UINT8", "odt": "INT32", "ishape_normal": [1, 4], "ishape_folded": [1, 1, 4],
      "oshape_normal": [1, 1], "oshape_folded": [1, 1, 1]}


class WeightedSum:
    """A compute whose weights come through the weight DMAs: y = x . w (w from idma1's words)."""

    def __init__(self):
        self.received: list[tuple[str, np.ndarray]] = []
        self.w = None

    def load_weights(self, dma, words):
        self.received.append((dma, words.copy()))
        self.w = words.astype(np.int64)

    def __call__(self, x):
        return (x.astype(np.int64) @ self.w[:4]).reshape(-1, 1)


def test_weight_dma_protocol_and_a_new_set_between_batches():
    compute = WeightedSum()
    overlay = SimulatedOverlay(compute, IO, weight_dmas={"idma1": 4})
    driver = DataflowDriver(overlay, overlay.allocate, IO, batch_size=2, weights={"idma1": np.array([1, 2, 3, 4])})
    assert driver.weights_loaded == {"idma1": 4}
    writes = [(off, val) for op, off, val in overlay.idma1.log if op == "write"]
    assert [off for off, _ in writes] == [ADDR_LO, ADDR_HI, NUM_REPS, AP_CTRL]
    assert writes[2][1] == 1 and writes[3][1] == AP_START and writes[1][1] == 8  # address above 4 GiB
    assert [d for d, _ in compute.received] == ["idma1"] and list(compute.received[0][1]) == [1, 2, 3, 4]
    x = np.array([[1, 1, 1, 1], [1, 0, 0, 2]])
    assert driver.execute(x).ravel().tolist() == [10, 9]
    big = np.array([2**63 + 5, 0, 1, 0], dtype=np.uint64)  # all 64 bits travel
    driver.load_weights({"idma1": big})
    assert compute.received[-1][1][0] == np.uint64(2**63 + 5)
    driver.load_weights({"idma1": np.array([0, 0, 0, 7])})
    assert driver.execute(x).ravel().tolist() == [7, 14]
    with pytest.raises(DeviceError, match="no weight DMA 'idma2'"):
        driver.load_weights({"idma2": np.array([1])})
    with pytest.raises(DeviceError, match="no weight DMA 'odma0'"):
        driver.load_weights({"odma0": np.array([1])})
    with pytest.raises(ValueError, match="non-empty 1-D array of uint64 words"):
        driver.load_weights({"idma1": np.zeros((2, 2), np.uint64)})


def test_a_batch_before_the_weights_hangs_as_on_the_board():
    overlay = SimulatedOverlay(WeightedSum(), IO, weight_dmas={"idma1": 4})
    driver = DataflowDriver(overlay, overlay.allocate, IO, timeout_s=0.05)
    with pytest.raises(DeviceTimeoutError, match="no weights were written: a layer with runtime-writeable weights "
                                                 "computes nothing before its weights are written"):
        driver.execute(np.ones((1, 4), np.int64))
    assert overlay.batches == 0


# --------------------------------------------------------------------------- a package with runtime weights

def winograd_nodes(program: Program) -> list[dict]:
    return [n for n in program.nodes if n["op"] == "WinogradSRBS"]


def dense_layout(program: Program, node: dict) -> WeightLayout:
    """A layout every U of the node fits: one position group, every channel at once, 8 signed bits."""
    cout, cin, t, _ = node["_params"]["U"].shape
    return WeightLayout(cout=cout, cin=cin, t=t, pos=t * t, pe=cout, simd=cin, sub_row=0, keep=0, w_bits=8,
                        w_signed=True, idx_bits=0)


def runtime_weight_package(root: Path) -> Path:
    """The committed fmnist-tiny package with its Winograd layers' weights written at run time
    (the manifest's runtime_weights and weights/<node>.npy, as a --runtime-weights build writes
    them), for the simulated devices."""
    pkg = root / "fmnist-tiny-rw"
    shutil.copytree(PACKAGE, pkg)
    program = Program.load(pkg / "runtime")
    entries = []
    (pkg / "weights").mkdir()
    for k, node in enumerate(winograd_nodes(program), start=1):
        layout = dense_layout(program, node)
        words = encode(node["_params"]["U"], layout)
        np.save(pkg / "weights" / f"{node['name']}.npy", words)
        entries.append({"node": node["name"], "dma": f"idma{k}", "file": f"weights/{node['name']}.npy",
                        "words": len(words), "layout": layout.to_dict()})
    manifest = json.loads((pkg / "manifest.json").read_text())
    info = {k: v for k, v in manifest.items() if k not in ("format_version", "files")}
    write_manifest(pkg, {**info, "runtime_weights": entries})
    return pkg


@pytest.fixture(scope="module")
def rw_package(tmp_path_factory):
    return runtime_weight_package(tmp_path_factory.mktemp("rw"))


def new_weights(program: Program, seed: int = 3) -> dict[str, np.ndarray]:
    """Every Winograd layer's U with its output channels permuted: other weights whose outputs
    stay in the range the build sized the committed package's accumulators for (its layers
    were built with their weights fixed; a --runtime-weights build sizes them for any)."""
    rng = np.random.default_rng(seed)
    return {node["name"]: node["_params"]["U"].astype(np.int64)[rng.permutation(node["_params"]["U"].shape[0])]
            for node in winograd_nodes(program)}


def test_sim_backend_writes_the_packages_weights_and_takes_new_ones(rw_package):
    with Accelerator.load(rw_package, backend="sim", batch_size=4) as acc:
        assert [e["dma"] for e in acc.weight_entries] == ["idma1", "idma2"]
        assert acc.driver.weights_loaded == {e["dma"]: e["words"] for e in acc.weight_entries}
        assert acc.self_test()["equal"]
        golden = np.load(rw_package / "runtime" / "golden.npz")
        x = golden["input"]
        before = acc.weights()
        assert set(before) == {"WinogradSRBS_rtl_0", "WinogradSRBS_rtl_1"}
        for node in winograd_nodes(acc.program):
            assert np.array_equal(before[node["name"]], node["_params"]["U"])  # the package's streams decoded
        updates = new_weights(acc.program)
        acc.load_weights(updates)
        assert all(np.array_equal(acc.weights()[k], v) for k, v in updates.items())
        got = acc.execute(x)
    want_program = Program.load(PACKAGE / "runtime")
    for name, U in updates.items():
        want_program.replace_param(name, "U", U)
    assert np.array_equal(got, want_program.run(x))
    assert not np.array_equal(got, golden["output"])  # the new weights did change the outputs


def test_load_weights_names_the_layer_and_a_corrupt_stream_is_refused(rw_package, tmp_path):
    with Accelerator.load(rw_package, backend="sim") as acc:
        node = acc.weight_entries[0]["node"]
        U = new_weights(acc.program)[node]
        with pytest.raises(WeightStreamError, match=f"layer {node}: weights: shape"):
            acc.load_weights({node: U[:, :-1]})
        with pytest.raises(ValueError, match="no layer 'conv9' with runtime-writeable weights; allowed: "):
            acc.load_weights({"conv9": U})
    with Accelerator.load(PACKAGE, backend="sim") as plain:
        with pytest.raises(Exception, match="no layer has runtime-writeable weights"):
            plain.load_weights({node: U})
    bad = tmp_path / "bad"
    shutil.copytree(rw_package, bad)
    path = bad / "weights" / f"{node}.npy"
    words = np.load(path)
    words[0] ^= np.uint64(1)
    np.save(path, words)
    from winoforge.runtime import CorruptPackageError

    with pytest.raises(CorruptPackageError, match="sha256"):
        Accelerator.load(bad, backend="sim")
    assert load_package(rw_package).manifest["runtime_weights"][0]["file"] == f"weights/{node}.npy"
