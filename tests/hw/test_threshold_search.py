"""The binary search of ``winoforge_thresholds`` (the projection shortcuts' activation in
``MVAU_lut_rtl``), without a simulator: the stage ROMs ``threshold_stage_words`` writes, walked as
the RTL walks them (address ``{lane, fold, count prefix}``), give FINN's MultiThreshold count
``#{k : x >= T[k]}`` exactly; bad thresholds are refused by name; the estimate holds the Yosys
counts of the thresholded calibration points closely.  (The RTL itself: ``test_rtl_layers.py``,
thresholded MVAUs under Verilator.)"""

from __future__ import annotations

import numpy as np
import pytest


def walk(stages: list[np.ndarray], x: int, fold: int, lane: int, folds: int) -> int:
    """The count the RTL's stages reach for input ``x`` of channel ``fold * PE + lane``."""
    k = len(stages)
    fb = (folds - 1).bit_length() if folds > 1 else 0
    count = 0
    for s in range(k):
        t = stages[s][(lane << (fb + s)) | (fold << s) | (count >> (k - s))]
        if x >= t:
            count |= 1 << (k - 1 - s)
    return count


@pytest.mark.parametrize("seed", range(6))
def test_the_stages_count_as_multithreshold(seed):
    from winoforge.hw.rtl_ops import threshold_stage_words

    rng = np.random.default_rng(seed)
    pe, folds = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    steps = int(rng.choice([1, 2, 3, 5, 7, 15, 20, 31, 63]))
    T = rng.integers(-500, 500, (pe * folds, steps))
    T[:, : steps // 2] = T[:, :1]  # ties
    stages = threshold_stage_words(T, pe, 12)
    assert len(stages) == max(steps, 1).bit_length()
    fb = (folds - 1).bit_length() if folds > 1 else 0  # folds padded to a power of two in the ROM address
    assert [s.size for s in stages] == [pe * 2 ** (fb + s) for s in range(len(stages))]
    xs = np.concatenate([rng.integers(-600, 600, 64), T.ravel(), T.ravel() - 1])
    for c in range(pe * folds):
        fold, lane = divmod(c, pe)
        got = [walk(stages, int(x), fold, lane, folds) for x in xs]
        assert np.array_equal(got, (xs[:, None] >= T[c][None, :]).sum(axis=1)), c


def test_bad_thresholds_are_refused_by_name():
    from winoforge.hw.rtl_ops import threshold_stage_words

    with pytest.raises(ValueError, match=r"256 steps per channel; allowed: 1..255"):
        threshold_stage_words(np.zeros((2, 256), dtype=int), 1, 12)
    with pytest.raises(ValueError, match=r"PE=3 must divide the 4 channels"):
        threshold_stage_words(np.zeros((4, 3), dtype=int), 3, 12)
    with pytest.raises(ValueError, match=r"do not fit 8-bit signed"):
        threshold_stage_words(np.full((2, 3), 200), 1, 8)


def test_the_estimate_holds_the_thresholded_projections(calibration):
    """The binary search's estimate, fitted on these points: within 7 % LUT of Yosys (the
    calibration's general tolerance is 25 %); the deepest stages in block RAM as Yosys maps them."""
    bench, record = calibration
    points = [p for p in record["points"] if p["kind"] == "mvau" and "steps" in p["config"]]
    assert len(points) >= 5
    for p in points:
        est = bench.estimate("mvau", p["config"])
        assert abs(est["lut"] / p["yosys"]["lut"] - 1) <= 0.07, (p["config"], est, p["yosys"])
        assert est["bram"] == p["yosys"]["bram"], (p["config"], est, p["yosys"])
