"""``step_weights_to_uram``: where a board has UltraRAM and the BRAM estimate does not fit, the
largest weight memories move to URAM (written at run time), while the URAM lasts;
``step_winograd_weights_to_uram`` (the default Winograd steps) only those the runtime writes, and a
ZCU104 build so moved runs bit-exact on the simulated device; and
``step_weight_roms_to_bram``: small weight ROMs (logic) move to block RAM while the BRAM has room."""

from __future__ import annotations

import dataclasses
import json

from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

import winoforge.hw.winograd_op as wo
from winoforge.hw import boards
from winoforge.hw.build import _weight_bram18, resource_totals, step_weights_to_uram, step_winograd_weights_to_uram

PART = "xczu7ev-ffvc1156-2-e"


def _chain(channels):
    """WinogradSRBS_rtl layers in a chain (16x16, SRBS 2/8, W4A4), weights in BRAM."""
    nodes, tensors = [], ["x"]
    for i, (cin, cout) in enumerate(channels):
        tensors.append(f"y{i}")
        nodes.append(wo.make_winograd_srbs_node(
            tensors[-2], f"U{i}", tensors[-1], m=2, ifm_channels=cin, ofm_channels=cout, ifm_dim=(16, 16),
            input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT16", sub_row=8, keep=2, simd=8,
            res_type="lut", rtl=True, name=f"w{i}"))
    io = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 16, 16, c])
          for t, c in (("x", channels[0][0]), (tensors[-1], channels[-1][1]))]
    return ModelWrapper(qonnx_make_model(helper.make_graph(nodes, "chain", io[:1], io[1:])))


class _Cfg:
    board = "ZCU104"

    def _resolve_fpga_part(self):
        return PART


def _moved(model):
    out = []
    for n in model.graph.node:
        inst = getCustomOp(n)
        style, rtw = inst.get_nodeattr("ram_style"), inst.get_nodeattr("runtime_writeable_weights")
        assert (style == "ultra") == (rtw == 1), n.name  # URAM only with weights written at run time
        out.append(style == "ultra")
    return out


def test_weights_move_to_uram_largest_first_while_it_lasts(monkeypatch):
    sizes = [_weight_bram18(getCustomOp(n), PART) for n in _chain([(64, 256), (256, 256), (256, 64)]).graph.node]
    assert sizes[1] > sizes[0] > 0 and sizes[1] > sizes[2] > 0
    total = resource_totals(_chain([(64, 256), (256, 256), (256, 64)]), _Cfg())["BRAM_18K"]
    zcu = boards.get_board("ZCU104")

    def run(**board):
        monkeypatch.setattr(boards, "get_board", lambda name: dataclasses.replace(zcu, **board))
        model = step_weights_to_uram(_chain([(64, 256), (256, 256), (256, 64)]), _Cfg())
        return _moved(model), resource_totals(model, _Cfg())

    assert run() == ([False] * 3, resource_totals(_chain([(64, 256), (256, 256), (256, 64)]), _Cfg()))  # fits
    # BRAM for all but the largest weights: that one moves, and the design fits
    bram36 = int(total - sizes[1]) // 2 + 1
    moved, totals = run(bram36=bram36)
    assert moved == [False, True, False]
    assert totals["BRAM_18K"] == total - sizes[1] <= 2 * bram36 and 0 < totals["URAM"] <= zcu.uram
    # too little URAM for the largest: it stays, the smaller ones move instead
    largest = totals["URAM"]
    moved, totals = run(bram36=bram36, uram=largest - 1)
    assert moved == [True, False, True] and 0 < totals["URAM"] <= largest - 1
    # no URAM on the board: nothing moves, whatever the BRAM
    assert run(bram36=1, uram=0)[0] == [False] * 3


def test_the_default_steps_move_only_the_weights_the_runtime_writes(monkeypatch):
    """A FINN MVAU with the largest weights beside two Winograd layers: step_weights_to_uram (the
    networks benchmark's estimates) moves the MVAU; step_winograd_weights_to_uram, in the default
    Winograd steps, a Winograd layer (its weight stream the runtime writes; FINN's AXI-lite MVAU
    weights it does not)."""
    from winoforge.hw.build import winograd_steps

    def model():
        m = _chain([(64, 256), (256, 64)])
        m.graph.node.append(helper.make_node(
            "MVAU_hls", ["y1", "Wm"], ["z"], domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
            MW=64, MH=4096, SIMD=8, PE=8, inputDataType="UINT4", weightDataType="INT4", outputDataType="INT16",
            noActivation=1, mem_mode="internal_decoupled", numInputVectors=[1, 16, 16], ram_style="block", name="mv"))
        return m

    sizes = [_weight_bram18(getCustomOp(n), PART) for n in model().graph.node]
    assert sizes[2] > sizes[0] == sizes[1] > 0
    total = resource_totals(model(), _Cfg())["BRAM_18K"]
    zcu = boards.get_board("ZCU104")
    monkeypatch.setattr(boards, "get_board", lambda name: dataclasses.replace(zcu, bram36=int(total - sizes[0]) // 2))
    assert _moved(step_weights_to_uram(model(), _Cfg())) == [False, False, True]
    moved = _moved(step_winograd_weights_to_uram(model(), _Cfg()))
    assert moved.count(True) == 1 and moved[2] is False
    assert step_winograd_weights_to_uram in winograd_steps() and step_weights_to_uram not in winograd_steps()


def test_a_zcu104_build_with_winograd_weights_in_uram_runs_bit_exact(tmp_path, monkeypatch, fmnist, capsys):
    """The shipped VGG student on a ZCU104 with 80 RAMB18 (it needs 131), through `winoforge build`:
    the default steps move the largest Winograd layer's weights (128 -> 128, 32,768 words) to URAM,
    before minimizing the widths, so that its output type is the sound one for any weights of its
    types; the package lists that layer (alone) under runtime_weights with its stream, and the build
    says so; the simulated device, which computes with the weights its DMAs deliver, equals the
    build's golden outputs, and new weights written at run time change them."""
    from pathlib import Path

    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper

    from winoforge.cli import main as cli_main
    from winoforge.hw.srbs_ranges import datatype_output_range, smallest_datatype
    from winoforge.runtime import Accelerator
    from winoforge.runtime.weights import WeightLayout, decode

    zcu = boards.get_board("ZCU104")
    monkeypatch.setattr(boards, "get_board", lambda name: dataclasses.replace(zcu, bram36=40))
    _, raw, _ = fmnist
    vgg = Path(__file__).resolve().parents[2] / "notebooks" / "packages" / "fmnist-vgg-pynqz2-srbs75" / "model.onnx"
    assert cli_main(["build", "--onnx", str(vgg), "--name", "z", "--board", "zcu104", "--verify-images", "2",
                     "--out-root", str(tmp_path / "pkgs"), "--work-root", str(tmp_path / "finn")]) == 0
    pkg = tmp_path / "pkgs" / "z"
    manifest = json.loads((pkg / "manifest.json").read_text())
    model = ModelWrapper(str(pkg / "dataflow_model.onnx"))
    layers = [n for n in model.graph.node if n.op_type == "WinogradSRBS_rtl"]
    moved = [n.name for n in layers if getCustomOp(n).get_nodeattr("ram_style") == "ultra"]
    sizes = {n.name: getCustomOp(n).params().weight_memory_depth for n in layers}
    assert len(moved) == 1 and sizes[moved[0]] == max(sizes.values()), sizes
    assert [e["node"] for e in manifest["runtime_weights"]] == moved and manifest["all_runtime_weights"] is False
    said = capsys.readouterr().out
    assert f"moved to UltraRAM: the BRAM does not hold them): {moved[0]}\n" in said and ", URAM " in said
    inst = getCustomOp(model.get_node_from_name(moved[0]))
    params = inst.params()
    assert params.runtime_weights == 1 and params.output_datatype == smallest_datatype(*datatype_output_range(params))
    totals = json.loads((pkg / "reports" / "estimates.json").read_text())["totals"]
    assert totals["BRAM_18K"] <= 80 and totals["URAM"] > 0
    entry = manifest["runtime_weights"][0]
    assert np.array_equal(decode(np.load(pkg / entry["file"]), WeightLayout.from_dict(entry["layout"])),
                          inst.weights(model))
    x = raw[:3].transpose(0, 2, 3, 1).astype(np.uint8)
    with Accelerator.load(pkg, backend="sim", batch_size=3) as sim:
        assert sim.self_test()["equal"]
        old = sim.execute(x)
        sim.load_weights({moved[0]: inst.weights(model)[::-1]})  # output channels reversed
        assert not np.array_equal(sim.execute(x), old)


# --------------------------------------------------------------------------- weight ROMs to BRAM


def _rom_chain(foldings, runtime=()):
    """32 -> 32 WinogradSRBS_rtl layers (16x16, SRBS 1/4, W4A4) at the given (POS, PE, SIMD): shallow,
    wide weight ROMs that synthesis would build from LUTs; ``runtime``: the layers with runtime weights."""
    nodes, tensors = [], ["x"]
    for i, (pos, pe, simd) in enumerate(foldings):
        tensors.append(f"y{i}")
        nodes.append(wo.make_winograd_srbs_node(
            tensors[-2], f"U{i}", tensors[-1], m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(16, 16),
            input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT16", sub_row=4, keep=1, simd=simd,
            pe=pe, pos=pos, res_type="lut", rtl=True, name=f"w{i}", runtime_weights=int(i in runtime)))
    io = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 16, 16, 32]) for t in ("x", tensors[-1])]
    return ModelWrapper(qonnx_make_model(helper.make_graph(nodes, "chain", io[:1], io[1:])))


FOLDINGS = [(4, 2, 32), (16, 4, 32), (6, 2, 16), (4, 3, 32)]


def test_small_weight_roms_move_to_bram_most_luts_per_ramb18_first(monkeypatch):
    from winoforge.hw.build import ROM_BRAM_SHARE, step_weight_roms_to_bram

    params = [getCustomOp(n).params() for n in _rom_chain(FOLDINGS).graph.node]
    auto = [p.estimate_resources(PART) for p in params]
    block = [p.replace(ram_style="block").estimate_resources(PART) for p in params]
    saved = [a.lut - b.lut for a, b in zip(auto, block)]
    cost = [b.bram18 - a.bram18 for a, b in zip(auto, block)]
    assert all(s > 0 for s in saved) and all(c > 0 for c in cost)  # logic ROMs under auto
    order = sorted(range(len(params)), key=lambda i: -saved[i] / cost[i])
    before = resource_totals(_rom_chain(FOLDINGS), _Cfg())
    zcu = boards.get_board("ZCU104")

    def run(bram18, runtime=()):
        monkeypatch.setattr(boards, "get_board", lambda name: dataclasses.replace(zcu, bram36=bram18 // 2))
        model = step_weight_roms_to_bram(_rom_chain(FOLDINGS, runtime), _Cfg())
        return [getCustomOp(n).get_nodeattr("ram_style") == "block" for n in model.graph.node], \
            resource_totals(model, _Cfg())

    def room(n):  # RAMB18s for the first n moves of the order, at ROM_BRAM_SHARE of the board
        return int(-(-(before["BRAM_18K"] + sum(cost[i] for i in order[:n])) // ROM_BRAM_SHARE)) + 2

    moved, after = run(room(len(params)))  # room for all: every ROM moves, the LUTs saved as estimated
    assert moved == [True] * len(params)
    assert after["LUT"] == before["LUT"] - sum(saved) and after["BRAM_18K"] == before["BRAM_18K"] + sum(cost)
    moved, after = run(room(1))  # room for one: the most LUTs per RAMB18
    assert moved == [i == order[0] for i in range(len(params))], (saved, cost)
    assert after["BRAM_18K"] <= ROM_BRAM_SHARE * 2 * (room(1) // 2)
    moved, _ = run(int(before["BRAM_18K"] / ROM_BRAM_SHARE))  # no room: nothing moves
    assert moved == [False] * len(params)
    moved, _ = run(room(len(params)), runtime=(order[0],))  # a RAM written at run time keeps its style
    assert moved == [i != order[0] for i in range(len(params))]
