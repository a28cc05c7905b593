"""``step_weights_to_uram``: where a board has UltraRAM and the BRAM estimate does not fit, the
largest weight memories move to URAM (written at run time), while the URAM lasts; and
``step_weight_roms_to_bram``: small weight ROMs (logic) move to block RAM while the BRAM has room."""

from __future__ import annotations

import dataclasses

from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

import winoforge.hw.winograd_op as wo
from winoforge.hw import boards
from winoforge.hw.build import _weight_bram18, resource_totals, step_weights_to_uram

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
