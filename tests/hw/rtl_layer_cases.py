"""Random WinogradSRBS layer configurations and their simulation in RTL (helpers
for tests/hw/test_rtl_layer*.py; not a test module).

A *shape* (the compiled parameters) is simulated for several weight sets and
input batches from one compiled model: the weights are ``$readmemh`` files read
from the simulation's working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from winoforge.hw.rtl.verilator import VerilatedDesign, build, pack_beats, steady_state_interval, unpack_beats
from winoforge.hw.rtl.winograd_layer import write_layer, write_weights
from winoforge.hw.srbs_codegen import weight_stream_words
from winoforge.hw.srbs_params import WinogradSRBSParams, winograd_srbs_reference
from winoforge.hw.srbs_ranges import datatype_output_range, smallest_datatype


def random_weights(params: WinogradSRBSParams, rng: np.random.Generator) -> np.ndarray:
    """Integer U within weightDataType obeying SRBS(SubRow, Keep) (a random subset
    of the budget may be zero too)."""
    wdt = params.weight_datatype
    t = params.t
    U = rng.integers(int(wdt.min()), int(wdt.max()) + 1, size=(params.ofm_channels, params.ifm_channels, t, t))
    if params.sparse:
        L, K = params.sub_row, params.keep
        g = U.transpose(0, 2, 3, 1).reshape(-1, L)
        keep = np.argsort(rng.random(g.shape), axis=1)[:, :K]
        mask = np.zeros_like(g, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        g = np.where(mask, g, 0)
        U = g.reshape(params.ofm_channels, t, t, params.ifm_channels).transpose(0, 3, 1, 2)
    return U.astype(np.int64)


def random_inputs(params: WinogradSRBSParams, n: int, rng: np.random.Generator, extreme: bool = False) -> np.ndarray:
    idt = params.input_datatype
    lo, hi = int(idt.min()), int(idt.max())
    shape = (n, *params.ifm_dim, params.ifm_channels)
    if extreme:  # only the range ends: the widest intermediate values
        return np.where(rng.random(shape) < 0.5, lo, hi).astype(np.int64)
    return rng.integers(lo, hi + 1, size=shape).astype(np.int64)


def with_sound_output(params: WinogradSRBSParams) -> WinogradSRBSParams:
    """outputDataType = the smallest type holding the output for any weights."""
    return params.replace(output_datatype=smallest_datatype(*datatype_output_range(params)))


@dataclass
class CompiledLayer:
    params: WinogradSRBSParams
    design: VerilatedDesign
    folder: Path

    def run(self, U: np.ndarray, x: np.ndarray, case_dir: Path, *, seed: int = 0, in_bubble: float = 0.0,
            out_stall: float = 0.0, weights_first: bool = False, weights_at: int = 0,
            preload: np.ndarray | None = None):
        """``(y (N, Ho, Wo, Cout) int64, SimResult)``: ``x`` through the layer with
        weights ``U`` -- ``$readmemh`` files, or for runtime-writeable weights the
        weight stream (after the stream of the weights ``preload``, if given: a
        second complete set overwrites the first), from cycle ``weights_at`` on or
        (``weights_first``) before the first input word."""
        p = self.params
        stream = None
        if p.runtime_weights:
            stream = [int(w) for w in weight_stream_words(U, p)]
            if preload is not None:
                stream = [int(w) for w in weight_stream_words(preload, p)] + stream
        else:
            write_weights(p, U, case_dir, "layer_top")
        folded = x.reshape(x.shape[0], *p.ifm_dim, p.in_folds, p.in_simd)  # ISIMD channels a beat
        words = pack_beats(folded, p.input_datatype.bitwidth())
        oe = p.out_stream_elems
        ho, wo = p.out_dim
        n_out = x.shape[0] * ho * wo * p.ofm_channels // oe
        case_dir.mkdir(parents=True, exist_ok=True)
        res = self.design.run(words, n_out, seed=seed, in_bubble=in_bubble, out_stall=out_stall, cwd=case_dir,
                              weights=stream, weights_first=weights_first, weights_at=weights_at)
        odt = p.output_datatype
        y = unpack_beats(res.outputs, odt.bitwidth(), bool(odt.signed()), oe)
        return y.reshape(x.shape[0], ho, wo, p.ofm_channels), res


def compile_layer(params: WinogradSRBSParams, folder: Path, U: np.ndarray | None = None, *,
                  cache_dir: Path | None = None) -> CompiledLayer:
    """Build the harness for ``params`` (weights are read at run time from the
    working directory; ``U`` only seeds the wrapper folder)."""
    rng = np.random.default_rng(0)
    U = random_weights(params, rng) if U is None else U
    files = write_layer(params, U, folder, "layer_top")
    design = build("layer_top", files.sources, cache_dir=cache_dir or folder.parent / "verilator_cache",
                   weight_stream=bool(params.runtime_weights))
    return CompiledLayer(params, design, folder)


def check_case(layer: CompiledLayer, U, x, case_dir: Path, **run) -> dict:
    """Simulate and compare with the Python model; returns figures."""
    y, res = layer.run(U, x, case_dir, **run)
    ref = winograd_srbs_reference(x, U, layer.params)
    assert np.array_equal(y, ref), f"RTL differs from the model at {np.argwhere(y != ref)[:5].tolist()}"
    beats = y.shape[1] * y.shape[2] * layer.params.ofm_channels // layer.params.out_stream_elems
    interval = steady_state_interval(res.out_cycles, beats) if x.shape[0] >= 2 else None
    return {"interval": interval, "cycles": res.cycles, "latency": int(res.out_cycles[beats - 1]) + 1,
            "first_out": int(res.out_cycles[0]),
            "cycles_per_s": res.cycles_per_s}
