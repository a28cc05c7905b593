"""Steady-state cycles per frame of FINN's ``ConvolutionInputGenerator_rtl`` (default style).

FINN's ``get_exp_cycles`` for the default-style sliding window generator is a closed form
that over-counts the depthwise case by 10-20 % (measured under Verilator: 13,787 cycles
where it says 16,412 on a 28x28x32 2x2-pool window at SIMD 2).  On the benchmark network
that window generator then looks like the slowest layer, and the network's estimated
cycles per frame sit 7 % above what the stitched accelerator runs at.

This module replays, cycle by cycle, the controller of ``finn-rtllib/swg/
swg_template_default.sv`` at full rate (input always valid, output always ready):

* the generator reads input element ``Newest + 1`` when the buffer slot it overwrites is
  no longer needed (``Newest - (BUF - 1)`` below both ``First_elem_next_window`` and
  ``Current_elem``), or freely once every window element is fetched;
* it fetches output element ``Current_elem`` (an input element index, in FINN's window
  order: ``(kh, kw, fold)`` or, depthwise, ``(fold, kh, kw)``) once it is buffered;
* ``First_elem_next_window`` advances by the controller's ``tail_incr`` at the first fetch of
  every window (of every fold, depthwise);
* frames do not overlap: the next frame's first read waits for the last output write.

The element index sequence, buffer depth, ``LAST_*`` indices and tail increments follow
``ConvolutionInputGenerator_rtl.prepare_codegen_default`` of the installed finn-plus; the
model is checked against Verilator on window generators of real builds
(``tests/hw/test_swg_cycles.py``).  The period between two frame resets is the layer's
cycles per frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["exp_cycles", "swg_cycles_per_frame", "steady_state_cycles", "window_order"]


def window_order(h: int, w: int, cf: int, k: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], depthwise: bool) -> np.ndarray:
    """Input element indices (``(row * w + col) * cf + fold``) in the order the generator emits
    them: windows row-major, inside a window ``(kh, kw, fold)``, or ``(fold, kh, kw)`` depthwise."""
    (kh, kw), (sh, sw), (dh, dw) = k, stride, dilation
    oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
    r = (np.arange(oh)[:, None, None, None, None] * sh + np.arange(kh)[None, None, :, None, None] * dh)
    c = (np.arange(ow)[None, :, None, None, None] * sw + np.arange(kw)[None, None, None, :, None] * dw)
    f = np.arange(cf)[None, None, None, None, :]
    idx = (r * w + c) * cf + f                      # (oh, ow, kh, kw, cf)
    if depthwise:
        idx = idx.transpose(0, 1, 4, 2, 3)           # (oh, ow, cf, kh, kw)
    return np.ascontiguousarray(idx).reshape(-1)


def steady_state_cycles(h: int, w: int, cf: int, k: tuple[int, int], stride: tuple[int, int],
                        dilation: tuple[int, int], depthwise: bool, buffer_depth: int, frames: int = 3) -> int:
    """Cycles between two frame starts of the default-style generator at full rate.

    ``h, w``: input image; ``cf``: channel folds (``IFMChannels / SIMD``); ``buffer_depth``: the
    generator's ``BUF_ELEM_TOTAL`` (FINN's ``get_buffer_depth()``)."""
    (kh, kw), (sh, sw), (dh, dw) = k, stride, dilation
    width_k, height_k = (kw - 1) * dw + 1, (kh - 1) * dh + 1
    oh, ow = (h - height_k) // sh + 1, (w - width_k) // sw + 1
    min_size = ((kh - 1) * dh * w + (kw - 1) * dw + 1) * cf
    seq = window_order(h, w, cf, k, stride, dilation, depthwise).tolist()
    last_read = h * w * cf - 1
    # First_elem_next_window: + tail at the first fetch of every window (every fold, depthwise)
    starts = [(o_r * sh * w + o_c * sw) * cf for o_r in range(oh) for o_c in range(ow)]
    group = kh * kw if (depthwise and cf > 1) else kh * kw * cf
    tails = {}  # fetch index -> tail_incr; the last window's last one is TAIL_INCR_LAST
    for i, s in enumerate(starts):
        nxt = starts[i + 1] - s if i + 1 < len(starts) else None
        if depthwise and cf > 1:  # + 1 at every fold but the last, whose tail reaches the next window
            base = i * kh * kw * cf
            for f in range(cf - 1):
                tails[base + f * group] = 1
            tails[base + (cf - 1) * group] = min_size - 1 if nxt is None else nxt - (cf - 1)
        else:
            tails[i * group] = min_size - 1 if nxt is None else nxt
    n_seq = len(seq)
    resets = []
    newest, cur_i, fenw = -1, 0, 0
    fetching_done = write_cmd = writing_done = reading_done = False
    reading_last = last_read == 0
    cycle = 0
    limit = (frames + 1) * (n_seq + last_read + 1) * 4 + 1000
    while len(resets) < frames and cycle < limit:
        cur = seq[cur_i]
        fetch = cur <= newest and not fetching_done
        oldest = newest - (buffer_depth - 1)
        read = not reading_done and (fetching_done or (oldest < fenw and oldest < cur))
        write_ok = write_cmd
        reset = False
        # --- next state (the always_ff block, in its order) ---
        n_cur_i, n_fenw, n_fetching_done, n_writing_done = cur_i, fenw, fetching_done, writing_done
        if read and reading_last and writing_done:
            reset = True
            n_cur_i, n_fenw, n_writing_done, n_fetching_done = 0, 0, False, False
        n_write_cmd = write_cmd
        if fetch:
            n_fenw = fenw + tails.get(cur_i, 0)
            if cur_i == n_seq - 1:
                n_fetching_done = True
            else:
                n_cur_i = cur_i + 1
            n_write_cmd = True
        if write_ok:
            n_write_cmd = fetch
            if fetching_done:
                if reading_done or (read and reading_last):
                    reset = True
                    n_cur_i, n_fenw, n_fetching_done = 0, 0, False
                else:
                    n_writing_done = True
        if reset:
            n_newest, n_reading_last, n_reading_done = -1, last_read == 0, False
            resets.append(cycle)
        else:
            n_newest = newest + int(read)
            n_reading_last = (not reading_last and newest == last_read - 2) if read else reading_last
            n_reading_done = reading_done if not read else reading_last
        newest, cur_i, fenw = n_newest, n_cur_i, n_fenw
        fetching_done, write_cmd, writing_done = n_fetching_done, n_write_cmd, n_writing_done
        reading_last, reading_done = n_reading_last, n_reading_done
        cycle += 1
    if len(resets) < frames:
        raise RuntimeError(f"the window generator model did not finish {frames} frames in {limit} cycles "
                           f"(h={h}, w={w}, cf={cf}, k={k}, stride={stride}, depthwise={depthwise})")
    return int(resets[-1] - resets[-2])


_cached = lru_cache(maxsize=256)(steady_state_cycles)


def swg_cycles_per_frame(inst) -> int:
    """Steady-state cycles per frame of a ``ConvolutionInputGenerator_rtl`` node instance:
    the replayed controller for the default style; FINN's ``get_exp_cycles`` for the parallel
    style (one input beat per cycle, which it counts exactly)."""
    if inst.select_impl_style() != "default":
        return int(inst.get_exp_cycles())
    h, w = (int(v) for v in inst.get_nodeattr("IFMDim"))
    cf = int(inst.get_nodeattr("IFMChannels")) // int(inst.get_nodeattr("SIMD"))
    k = tuple(int(v) for v in inst.get_nodeattr("ConvKernelDim"))
    stride = tuple(int(v) for v in inst.get_nodeattr("Stride"))
    dilation = tuple(int(v) for v in inst.get_nodeattr("Dilation"))
    return _cached(h, w, cf, k, stride, dilation, bool(inst.get_nodeattr("depthwise")),
                   int(inst.get_buffer_depth()))


def exp_cycles(inst) -> int:
    """A dataflow node's estimated cycles per frame: FINN's ``get_exp_cycles``, except for the
    default-style ``ConvolutionInputGenerator_rtl``, whose controller is replayed here."""
    if inst.onnx_node.op_type == "ConvolutionInputGenerator_rtl":
        return swg_cycles_per_frame(inst)
    return int(inst.get_exp_cycles())
