"""The folding search of a WinogradSRBS layer: the cheapest (POS, PE, SIMD) that
meets a cycle target, by the estimates of :mod:`winoforge.hw.srbs_estimates`."""

from __future__ import annotations

import numpy as np

from .srbs_params import OP_TYPE, WinogradSRBSParams, allowed_simd, divisors

__all__ = ["choose_folding"]


def choose_folding(params: WinogradSRBSParams, target_cycles: int, fpgapart: str = "") -> WinogradSRBSParams:
    """The folding (POS, PE, SIMD) with the fewest multipliers ``POS * PE * lanes``
    whose expected cycles are at most ``target_cycles``.

    Ties (same number of multipliers) go to fewer expected cycles (at equal
    multipliers only the stall and refill terms differ), then to fewer estimated
    LUTs, then fewer RAMB18s, and only then (exact ties) to the larger SIMD, then
    the larger PE, i.e. the smaller POS.

    The LUT estimate rather than a fixed order of the dimensions decides, because
    at equal multipliers the multipliers, index muxes and weight bits are the same
    and what differs goes either way: larger SIMD means fewer adder trees,
    accumulators and M-buffer banks per multiplier but more input-transform units
    and a wider, shallower line buffer (BRAM -> LUTRAM); larger PE more
    output-transform units and a wider output buffer; larger POS better-used serial
    transform units (``u_in`` and ``u_out`` stay 1 until POS exceeds ``t/2 * Cout/PE``
    resp. ``t^2/(t+m) * Cin/SIMD``) but a banked V buffer.  E.g. 32x32x64 -> 64,
    F(2,3), SubRow 8, Keep 2, UINT4 x INT4 at 128 multipliers: (POS, PE, SIMD) =
    (8, 8, 8) has the fewest LUTs (11088), (1, 8, 64) 23014, (1, 64, 8) 41309.  The
    final static order follows FINN's SetFolding (SIMD before PE) and prefers the
    plain, unbanked design (small POS).

    ``ValueError`` if even full parallelism ``POS = t^2, PE = OFMChannels,
    SIMD = IFMChannels`` needs more cycles (the cycles are non-increasing in each).
    """
    if isinstance(target_cycles, bool) or not isinstance(target_cycles, (int, np.integer)) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, got {target_cycles!r}")
    fits = []
    for pos in divisors(params.t**2):
        for pe in divisors(params.ofm_channels):
            for simd in allowed_simd(params.ifm_channels, params.sub_row):
                cand = params.replace(pos=pos, pe=pe, simd=simd)
                cycles = cand.exp_cycles()
                if cycles <= target_cycles:
                    fits.append((cand.multipliers, cycles, cand))
    if not fits:
        full = params.replace(pos=params.t**2, pe=params.ofm_channels, simd=params.ifm_channels)
        raise ValueError(
            f"{OP_TYPE}: no folding reaches target_cycles={int(target_cycles)}; even full parallelism "
            f"(POS={full.pos}, PE={full.pe}, SIMD={full.simd}) needs {full.exp_cycles()} cycles"
        )
    fewest = min(key[:2] for key in fits)
    best, best_key = None, None
    for nm, cycles, cand in fits:  # resources only for the cheapest candidates
        if (nm, cycles) != fewest:
            continue
        res = cand.estimate_resources(fpgapart)
        key = (res.lut, res.bram18, -cand.simd, -cand.pe, cand.pos)
        if best_key is None or key < best_key:
            best, best_key = cand, key
    return best
