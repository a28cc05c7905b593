"""cocotb tests of the RTL arithmetic units (run by tests/hw/test_rtl_units.py).

The top level is a wrapper that test_rtl_units.py generates: every instance of
the configuration (``WINOFORGE_RTL_UNITS``, a JSON file) with ports
``<name>_<port>``.  All instances of a kind run at once, each with its own
random valid/ready pattern, and every output is compared exactly (Python ints)
with the references of :mod:`winoforge.winograd` / numpy:

* ``role == "exact"``: outputs equal the exact reference;
* ``role == "short"``: one width is one bit short; the outputs must differ from
  the exact reference on the extreme (witness) inputs and equal the model of
  that truncation (the reference wrapped to the short width) -- so the checks
  do catch a too-narrow width, and the failure is exactly the width.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from winoforge.hw.rtl import srbs_dot_latency
from winoforge.winograd import WinogradSpec, bit_growth, input_transform, output_transform, pack_srbs, srbs_mask, value_range
from winoforge.winograd.bits import output_extreme

CONFIG = json.loads(open(os.environ["WINOFORGE_RTL_UNITS"]).read())
N_RANDOM = int(os.environ.get("WINOFORGE_RTL_RANDOM", "120"))


# --------------------------------------------------------------------------- helpers


def wrap(value: int, bits: int) -> int:
    """``value`` as a ``bits``-wide two's-complement word reads back."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def pack(values, bits: int) -> int:
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (k * bits)
    return word


def unpack(word: int, n: int, bits: int) -> list[int]:
    return [wrap(word >> (k * bits), bits) for k in range(n)]


def instances(kind: str, role: str | None = None) -> list[dict]:
    return [i for i in CONFIG["instances"] if i["kind"] == kind and (role is None or i["role"] == role)]


class Channel:
    """One instance: a source of input beats and a sink of outputs with random
    valid/ready (a beat, once valid, stays valid until accepted)."""

    def __init__(self, dut, name: str, beats: list[dict], out_port: str, decode, n_out: int):
        self.name, self.beats, self.decode, self.n_out = name, beats, decode, n_out
        self.sig = {port: getattr(dut, f"{name}_{port}") for port in beats[0]}
        self.in_valid, self.in_ready = getattr(dut, f"{name}_in_valid"), getattr(dut, f"{name}_in_ready")
        self.out_valid, self.out_ready = getattr(dut, f"{name}_out_valid"), getattr(dut, f"{name}_out_ready")
        self.out_data = getattr(dut, f"{name}_{out_port}")
        self.pos, self.valid, self.ready = 0, False, False
        self.outputs: list = []
        self.accept_cycles: list[int] = []
        self.output_cycles: list[int] = []

    def done(self) -> bool:
        return self.pos == len(self.beats) and len(self.outputs) == self.n_out

    def drive(self, rng: random.Random, p_valid: float, p_ready: float) -> None:
        if self.pos < len(self.beats):
            if not self.valid and rng.random() < p_valid:
                self.valid = True
                for port, value in self.beats[self.pos].items():
                    self.sig[port].value = value
        self.in_valid.value = int(self.valid)
        self.ready = rng.random() < p_ready
        self.out_ready.value = int(self.ready)

    def sample(self, cycle: int) -> None:
        if self.valid and int(self.in_ready.value):
            self.pos += 1
            self.valid = False
            self.accept_cycles.append(cycle)
        if self.ready and int(self.out_valid.value):
            self.outputs.append(self.decode(self.out_data.value.to_unsigned()))
            self.output_cycles.append(cycle)


def start_clock(dut) -> None:
    Clock(dut.ap_clk, 10, unit="ns").start()


async def reset(dut) -> None:
    dut.ap_rst_n.value = 0
    for inst in CONFIG["instances"]:
        getattr(dut, f"{inst['name']}_in_valid").value = 0
        getattr(dut, f"{inst['name']}_out_ready").value = 0
    for _ in range(3):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1


async def run(dut, channels: list[Channel], seed: int, p_valid: float, p_ready: float) -> None:
    rng = random.Random(seed)
    limit = 50 * max(len(ch.beats) for ch in channels) + 100
    for cycle in range(limit):
        await FallingEdge(dut.ap_clk)
        for ch in channels:
            ch.drive(rng, p_valid, p_ready)
        await ReadOnly()
        for ch in channels:
            ch.sample(cycle)
        if all(ch.done() for ch in channels):
            break
    await FallingEdge(dut.ap_clk)
    for ch in channels:
        ch.in_valid.value = 0
        assert ch.done(), f"{ch.name}: {ch.pos}/{len(ch.beats)} beats accepted, {len(ch.outputs)}/{ch.n_out} outputs"


def compare(name: str, role: str, got: list, exact: list, truncated: list | None = None) -> None:
    assert len(got) == len(exact), f"{name}: {len(got)} outputs, expected {len(exact)}"
    if role == "exact":
        bad = [k for k, (g, e) in enumerate(zip(got, exact)) if g != e]
        assert not bad, f"{name}: {len(bad)} of {len(got)} outputs differ, first #{bad[0]}: {got[bad[0]]} != {exact[bad[0]]}"
    else:
        assert got != exact, f"{name}: a width one bit short still matched the exact reference"
        bad = [k for k, (g, e) in enumerate(zip(got, truncated)) if g != e]
        assert not bad, f"{name}: outputs differ from the truncation model at #{bad[0]}: {got[bad[0]]} != {truncated[bad[0]]}"


# --------------------------------------------------------------------------- input transform


def check_transform_results(channels: list, expected: dict, role: str, phase: int) -> None:
    """Each transform channel's outputs against its exact values (or, for a one-bit-short
    instance, their truncation); in phase 0 (no back-pressure) every result exactly LATENCY
    cycles after its tile."""
    for ch in channels:
        inst = next(i for i in CONFIG["instances"] if i["name"] == ch.name)
        exact, bits = expected[ch.name]
        compare(ch.name, role, ch.outputs, exact, [[wrap(v, bits) for v in row] for row in exact])
        if phase == 0:
            lat = {c - a for a, c in zip(ch.accept_cycles, ch.output_cycles)}
            assert lat == {inst["params"]["LATENCY"]}, f"{ch.name}: latencies {lat}"


def input_transform_vectors(inst: dict, rng: np.random.Generator) -> np.ndarray:
    """Witness tiles (each position's extremes) first, then all-min/all-max and random tiles."""
    ctx = inst["ctx"]
    spec = WinogradSpec(ctx["m"])
    lo, hi = value_range(ctx["in_bits"], ctx["in_signed"])
    K = np.einsum("ak,bl->abkl", spec.BT, spec.BT)
    tiles = []
    for a in range(spec.t):
        for b in range(spec.t):
            tiles.append(np.where(K[a, b] > 0, hi, lo))
            tiles.append(np.where(K[a, b] > 0, lo, hi))
    tiles += [np.full((spec.t, spec.t), lo), np.full((spec.t, spec.t), hi)]
    tiles = np.stack(tiles + list(rng.integers(lo, hi + 1, (N_RANDOM, spec.t, spec.t))))
    return tiles.astype(np.int64)


async def check_input_transforms(dut, role: str) -> None:
    await reset(dut)
    rng = np.random.default_rng(1)
    for phase, (p_valid, p_ready) in enumerate([(1.0, 1.0), (0.7, 0.6)]):
        channels, expected = [], {}
        for inst in instances("winograd_input_transform", role):
            p, ctx = inst["params"], inst["ctx"]
            tiles = input_transform_vectors(inst, rng)
            V = input_transform(tiles, ctx["m"])
            growth = bit_growth(ctx["in_bits"], 2, 1, ctx["m"], in_signed=ctx["in_signed"])
            # the witnesses reach the exact range: a narrower OUT_W cannot hold them
            assert (int(V.min()), int(V.max())) == growth.input_transform, inst["name"]
            t2 = V.shape[-1] ** 2
            beats = [{"in_data": pack(d.ravel(), p["IN_W"])} for d in tiles]
            expected[inst["name"]] = ([list(map(int, v.ravel())) for v in V], p["OUT_W"])
            channels.append(Channel(dut, inst["name"], beats, "out_data",
                                    lambda w, n=t2, b=p["OUT_W"]: unpack(w, n, b), len(beats)))
        await run(dut, channels, seed=10 + phase, p_valid=p_valid, p_ready=p_ready)
        check_transform_results(channels, expected, role, phase)


@cocotb.test()
async def input_transform_exact(dut):
    """V = B^T d B exactly, m = 2 and 4, signed and unsigned inputs, LATENCY 0..2."""
    start_clock(dut)
    await check_input_transforms(dut, "exact")


# --------------------------------------------------------------------------- output transform


def output_transform_vectors(inst: dict, rng: np.random.Generator):
    """``(M tiles, exact Y, realizable)``: the layer's witnesses ``M = n (u . B^T d B)``
    (``n`` = cin for a dense layer: Y reaches the exact output range), then
    random ``M`` over the whole IN_W box (the modular semantics)."""
    ctx, p = inst["ctx"], inst["params"]
    spec = WinogradSpec(ctx["m"])
    x_range = value_range(ctx["in_bits"], ctx["in_signed"])
    w_range = value_range(ctx["w_bits"], ctx["w_signed"])
    n = ctx["cin"] * ctx["keep"] // ctx["sub_row"]
    Ms = []
    for i in range(spec.m):
        for j in range(spec.m):
            for maximize in (True, False):
                _, d, u = output_extreme(spec, x_range, w_range, i, j, maximize)
                Ms.append(n * u * input_transform(d, spec))
    lo, hi = value_range(p["IN_W"], True)
    witnesses = len(Ms)
    Ms = np.stack(Ms + [np.full((spec.t, spec.t), lo), np.full((spec.t, spec.t), hi)]
                  + list(rng.integers(lo, hi + 1, (N_RANDOM, spec.t, spec.t))))
    return Ms.astype(np.int64), output_transform(Ms.astype(np.int64), spec), witnesses


async def check_output_transforms(dut, role: str) -> None:
    await reset(dut)
    rng = np.random.default_rng(2)
    for phase, (p_valid, p_ready) in enumerate([(1.0, 1.0), (0.6, 0.7)]):
        channels, expected = [], {}
        for inst in instances("winograd_output_transform", role):
            p, ctx = inst["params"], inst["ctx"]
            Ms, Y, witnesses = output_transform_vectors(inst, rng)
            layer = bit_growth(ctx["in_bits"], ctx["w_bits"], ctx["cin"], ctx["m"],
                               in_signed=ctx["in_signed"], weight_signed=ctx["w_signed"])
            W = Y[:witnesses]
            assert layer.output[0] <= W.min() and W.max() <= layer.output[1], inst["name"]
            if ctx["keep"] == ctx["sub_row"]:  # dense: the witnesses reach the exact output range
                assert (int(W.min()), int(W.max())) == layer.output, inst["name"]
            bits = inst["exact_params"]["OUT_W"]
            # exact reference: Y where the layer can produce it, else Y modulo 2^OUT_W
            exact = [[wrap(int(v), bits) for v in y.ravel()] for y in Y]
            assert exact[:witnesses] == [list(map(int, y.ravel())) for y in W]
            m2 = ctx["m"] ** 2
            beats = [{"in_data": pack(M.ravel(), p["IN_W"])} for M in Ms]
            expected[inst["name"]] = (exact, p["OUT_W"])
            channels.append(Channel(dut, inst["name"], beats, "out_data",
                                    lambda w, n=m2, b=p["OUT_W"]: unpack(w, n, b), len(beats)))
        await run(dut, channels, seed=20 + phase, p_valid=p_valid, p_ready=p_ready)
        check_transform_results(channels, expected, role, phase)


@cocotb.test()
async def output_transform_exact(dut):
    """Y = A^T M A exactly, m = 2 and 4: the layer's extreme outputs and random M (mod 2^OUT_W)."""
    start_clock(dut)
    await check_output_transforms(dut, "exact")


# --------------------------------------------------------------------------- SRBS dot product


def srbs_groups(inst: dict, rng: np.random.Generator):
    """Groups of beats (one output each) and the exact numpy reference.

    * witnesses: every V and weight at the corner of the largest / smallest
      product, cin/simd folds: the sum and the accumulator reach their exact ranges;
    * an SRBS weight row packed by :func:`pack_srbs` (lane layout of the weight
      memories) against the dense numpy dot product ``U_row . V``;
    * random V, weights and indices (duplicates allowed), 1..cin/simd folds.
    """
    ctx, p = inst["ctx"], inst["params"]
    simd, L, K = p["SIMD"], p["SUBROW"], p["KEEP"]
    lanes, folds = simd // L * K, ctx["cin"] // simd
    growth = bit_growth(ctx["in_bits"], ctx["w_bits"], 1, ctx["m"], in_signed=ctx["in_signed"],
                        weight_signed=ctx["w_signed"])
    vlo, vhi = growth.input_transform
    wlo, whi = value_range(ctx["w_bits"], ctx["w_signed"])
    groups = []  # (list of (v, w, idx), reference)

    def ref(beats):
        return sum(int(w[l]) * int(v[(l // K) * L + int(idx[l])]) for v, w, idx in beats for l in range(lanes))

    for target in (growth.product[1], growth.product[0]):
        v, w = next((v, w) for v in (vlo, vhi) for w in (wlo, whi) if v * w == target)
        beats = [(np.full(simd, v), np.full(lanes, w), rng.integers(0, L, lanes)) for _ in range(folds)]
        groups.append((beats, ref(beats)))
        assert groups[-1][1] == ctx["cin"] * K // L * target
    # SRBS row from pack_srbs vs the dense dot product
    for _ in range(4):
        U = rng.integers(wlo, whi + 1, (1, ctx["cin"], 1, 1))
        U = U * srbs_mask(U, L, K)
        packed = pack_srbs(U, L, K, value_bits=ctx["w_bits"] + (0 if ctx["w_signed"] else 1))
        V = rng.integers(vlo, vhi + 1, ctx["cin"])
        per_fold = simd // L
        beats = [(V[f * simd:(f + 1) * simd],
                  packed.values[0, 0, f * per_fold:(f + 1) * per_fold].ravel(),
                  packed.indices[0, 0, f * per_fold:(f + 1) * per_fold].ravel()) for f in range(folds)]
        dense = int(np.dot(U[0, :, 0, 0].astype(np.int64), V))
        assert ref(beats) == dense
        groups.append((beats, dense))
    for _ in range(N_RANDOM // 2):
        n = int(rng.integers(1, folds + 1))
        beats = [(rng.integers(vlo, vhi + 1, simd), rng.integers(wlo, whi + 1, lanes), rng.integers(0, L, lanes))
                 for _ in range(n)]
        groups.append((beats, ref(beats)))
    return groups


def truncation_model(inst: dict, groups) -> list[int]:
    """What the unit computes with its (possibly short) widths: products at PROD_W,
    the lane sum at SUM_W, the accumulator at ACC_W (all modular)."""
    p = inst["params"]
    L, K = p["SUBROW"], p["KEEP"]
    lanes = p["SIMD"] // L * K
    out = []
    for beats, _ in groups:
        acc = 0
        for v, w, idx in beats:
            prods = [wrap(int(w[l]) * int(v[(l // K) * L + int(idx[l])]), p["PROD_W"]) for l in range(lanes)]
            acc = wrap(acc + wrap(sum(prods), p["SUM_W"]), p["ACC_W"])
        out.append(acc)
    return out


async def check_srbs_dot(dut, role: str) -> None:
    await reset(dut)
    rng = np.random.default_rng(3)
    for phase, (p_valid, p_ready) in enumerate([(1.0, 1.0), (0.7, 0.5)]):
        channels, expected = [], {}
        for inst in instances("srbs_dot", role):
            p = inst["params"]
            groups = srbs_groups(inst, rng)
            beats = []
            for group, _ in groups:
                for k, (v, w, idx) in enumerate(group):
                    beats.append({"in_v": pack(v, p["V_W"]), "in_w": pack(w, p["W_W"]),
                                  "in_idx": pack(idx, p["IDX_W"]),
                                  "in_first": int(k == 0), "in_last": int(k == len(group) - 1)})
            expected[inst["name"]] = ([r for _, r in groups], truncation_model(inst, groups),
                                      [len(g) for g, _ in groups])
            channels.append(Channel(dut, inst["name"], beats, "out_sum",
                                    lambda w, b=p["ACC_W"]: wrap(w, b), len(groups)))
        await run(dut, channels, seed=30 + phase, p_valid=p_valid, p_ready=p_ready)
        for ch in channels:
            inst = next(i for i in CONFIG["instances"] if i["name"] == ch.name)
            exact, truncated, sizes = expected[ch.name]
            if role == "exact":
                assert truncated == exact  # the exact widths hold every value
            compare(ch.name, role, ch.outputs, exact, truncated)
            if phase == 0:  # out_valid exactly LATENCY cycles after each in_last beat
                last = np.cumsum(sizes) - 1
                lat = {c - ch.accept_cycles[k] for k, c in zip(last, ch.output_cycles)}
                assert lat == {srbs_dot_latency(inst["params"])}, f"{ch.name}: latencies {lat}"


@cocotb.test()
async def srbs_dot_exact(dut):
    """Mux by index, signed multiply, adder tree, accumulation over folds: exact."""
    start_clock(dut)
    await check_srbs_dot(dut, "exact")


# --------------------------------------------------------------------------- a width one bit short


@cocotb.test()
async def narrow_widths_fail(dut):
    """One width one bit short (OUT_W of each transform, SUM_W / ACC_W of srbs_dot):
    the extreme inputs give wrong outputs -- exactly the truncated reference."""
    start_clock(dut)
    await check_input_transforms(dut, "short")
    await check_output_transforms(dut, "short")
    await check_srbs_dot(dut, "short")
