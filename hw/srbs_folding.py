"""The folding search of a WinogradSRBS layer: the cheapest (POS, PE, SIMD, ISIMD) that
meets a cycle target, by the estimates of :mod:`winoforge.hw.srbs_estimates`."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .srbs_estimates import ResourceEstimate
from .srbs_params import OP_TYPE, WinogradSRBSParams, allowed_simd, divisors, pe_steps, pos_steps

__all__ = ["choose_folding", "foldings"]


def foldings(params: WinogradSRBSParams) -> list[WinogradSRBSParams]:
    """Every folding the search considers: POS in :func:`pos_steps` (the divisors of t^2 and the
    padded values between them), PE in :func:`pe_steps`
    (the divisors of OFMChannels and the padded values between them), SIMD in
    :func:`allowed_simd`, ISIMD a divisor of SIMD (0 for SIMD itself)."""
    return [params.replace(pos=pos, pe=pe, simd=simd, isimd=isimd if isimd < simd else 0)
            for pos in pos_steps(params.t**2)
            for pe in pe_steps(params.ofm_channels)
            for simd in allowed_simd(params.ifm_channels, params.sub_row)
            for isimd in divisors(simd)]


@lru_cache(maxsize=1 << 16)
def _resources(params: WinogradSRBSParams, fpgapart: str) -> ResourceEstimate:
    """The estimate of one folding (a network's search asks for the same layers at many targets)."""
    return params.estimate_resources(fpgapart)


@lru_cache(maxsize=1 << 16)
def _cycles(params: WinogradSRBSParams) -> int:
    return params.exp_cycles()


def choose_folding(params: WinogradSRBSParams, target_cycles: int, fpgapart: str = "") -> WinogradSRBSParams:
    """The cheapest folding (POS, PE, SIMD, ISIMD) of :func:`foldings` whose expected cycles
    are at most ``target_cycles``: the fewest estimated DSPs, then the fewest estimated LUTs,
    then RAMB18s, then fewer expected cycles, and only then (exact ties) the larger SIMD, the
    larger PE, the smaller POS, the wider input side (FINN's SetFolding raises SIMD before PE;
    the plain, unbanked design has the smaller POS).

    ISIMD narrows the input side where the PE array leaves it idle: a tile's window reads
    take ``t * Cin/ISIMD`` cycles against ``(t^2/POS) * cf * Cin/SIMD`` of PE work.  An SRBS
    layer at Keep/SubRow density has SubRow/Keep times the SIMD of a dense layer with as
    many multipliers, so its input side (line buffer reads, input transforms) is that much
    wider for the same work -- ISIMD takes it back: fmnist-vgg's 128 -> 128 layer on 7x7
    at 1 of 4, 11,008 cycles, is (16, 3, 8) with an 8-channel input side at 11,128
    estimated LUTs, (4, 3, 32) with a 2-channel one at 10,022.

    The estimates rather than the multiplier count decide.  With PE running over the
    padded steps too, the fewest multipliers is often far from the cheapest: 64 -> 64 on
    7x7, F(2,3), SubRow 8, Keep 2, W4A4 with LUT multipliers at 11,048 cycles, (POS, PE,
    SIMD) = (1, 13, 8) has 26 multipliers and 12,202 estimated LUTs (13 output transforms
    and M collectors), (4, 1, 32) with a 2-channel input side 32 multipliers and 4,652.  And at equal multipliers
    what differs goes either way: larger SIMD means fewer adder trees, accumulators and
    M-buffer banks per multiplier but more input-transform units and a wider, shallower
    line buffer (BRAM -> LUTRAM); larger PE more output-transform units and a wider
    output buffer; larger POS better-used serial transform units (``u_in`` and ``u_out``
    stay 1 until POS exceeds ``t/2 * cf`` resp. ``t^2/(t+m) * Cin/SIMD``) but a banked V
    buffer.  DSPs come first so that a layer with DSP multipliers takes the fewest of
    them (with LUT multipliers every folding has none).

    A POS that does not divide t^2 (:func:`~winoforge.hw.srbs_params.pos_steps`) is taken only where it
    beats the best divisor of t^2 without more RAMB18s or DSPs: its idle lanes' zero weights lengthen
    the weight memory by ``G * POS / t^2``.

    ``ValueError`` if even full parallelism ``POS = t^2, PE = OFMChannels,
    SIMD = IFMChannels`` needs more cycles (the cycles are non-increasing in each).
    """
    if isinstance(target_cycles, bool) or not isinstance(target_cycles, (int, np.integer)) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, got {target_cycles!r}")
    best, best_key = {}, {}  # the best of the foldings whose POS divides t^2 (False) and of the padded ones (True)
    t2 = params.t**2
    for cand in foldings(params):
        cycles = _cycles(cand)
        if cycles > target_cycles:
            continue
        res = _resources(cand, fpgapart)
        key = (res.dsp, res.lut, res.bram18, cycles, -cand.simd, -cand.pe, cand.pos, -cand.in_simd)
        padded = t2 % cand.pos != 0
        if padded not in best_key or key < best_key[padded]:
            best[padded], best_key[padded] = cand, key
    if True in best and False in best:
        # a padded POS stores zero weights for its idle lanes (t^2 -> G * POS positions): taken only where
        # it costs no more RAMB18s (nor DSPs) than the best divisor -- left to the LUT-first key alone, it
        # traded BRAM for LUTs at slow targets (cifar-vgg-nagadomi's dense layers at POS 3 instead of 4:
        # 826 RAMB18 where ZCU104 has 610)
        pad, div = best_key[True], best_key[False]
        del best[False if pad < div and pad[0] <= div[0] and pad[2] <= div[2] else True]
    best = best.get(False, best.get(True))
    if best is None:
        full = params.replace(pos=params.t**2, pe=params.ofm_channels, simd=params.ifm_channels, isimd=0)
        raise ValueError(
            f"{OP_TYPE}: no folding reaches target_cycles={int(target_cycles)}; even full parallelism "
            f"(POS={full.pos}, PE={full.pe}, SIMD={full.simd}) needs {full.exp_cycles()} cycles"
        )
    return best
