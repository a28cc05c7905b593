"""The board table, its lookup and the fit check."""

from __future__ import annotations

import pytest

from winoforge.hw.boards import BOARDS, Board, board_names, fits, get_board


def test_pynq_z2_figures():
    b = get_board("PYNQ-Z2")
    assert (b.part, b.lut, b.ff, b.bram36, b.bram18, b.uram, b.dsp) == (
        "xc7z020clg400-1", 53_200, 106_400, 140, 280, 0, 220)
    assert (b.finn_board, b.clock_mhz) == ("Pynq-Z2", 100.0)


def test_table_agrees_with_finn(module):
    basic = module("finn.util.basic")  # skipped without finn-plus, failed under CI
    platforms = module("finn.util.platforms")
    platform_of = {"Pynq-Z2": platforms.Zynq7020_Platform, "ZCU104": platforms.ZU7EV_Platform,
                   "Ultra96-V2": platforms.ZU3EG_Platform}
    assert {b.finn_board for b in BOARDS} == set(platform_of)
    for b in BOARDS:
        assert basic.pynq_part_map[b.finn_board] == b.part
        lut, ff, bram18, uram, dsp = platform_of[b.finn_board]().compute_resources[0]
        assert (b.lut, b.ff, b.bram18, b.uram, b.dsp) == (lut, ff, bram18, uram, dsp)


@pytest.mark.parametrize("name", ["PYNQ-Z2", "pynq-z2", "Pynq-Z2", "pynq_z2", "PYNQZ2", " pynq z2"])
def test_lookup_is_case_and_punctuation_insensitive(name):
    assert get_board(name).name == "PYNQ-Z2"


def test_other_boards_and_finn_names():
    assert get_board("zcu104").part.startswith("xczu7ev")
    assert get_board("ultra96-v2").part.startswith("xczu3eg")
    assert get_board("Ultra96-V2") is get_board("ULTRA96V2")
    board = get_board("ZCU104")
    assert get_board(board) is board
    assert board_names() == ("PYNQ-Z2", "ZCU104", "Ultra96-V2")


@pytest.mark.parametrize("name", ["zcu102", "Ultra96", "", 104])
def test_unknown_board_lists_the_allowed_ones(name):
    with pytest.raises(ValueError, match="allowed: PYNQ-Z2, ZCU104, Ultra96-V2"):
        get_board(name)


def test_fits_names_each_resource_that_does_not_fit():
    result = fits({"LUT": 60_000, "FF": 1_000, "BRAM_18K": 300, "DSP": 10}, "pynq-z2")
    assert not result and not result.ok
    assert len(result.problems) == 2
    assert result.problems[0].startswith("LUT: needs 60000 > 53200 allowed")
    assert result.problems[1].startswith("BRAM36: needs 150 > 140 allowed")
    assert "LUT" in str(result) and "PYNQ-Z2" in str(result)


def test_fits_with_utilisation_limits():
    need = {"LUT": 40_000, "DSP": 200}
    assert fits(need, "PYNQ-Z2")
    tight = fits(need, "PYNQ-Z2", utilisation=0.7)
    assert [p.split(":")[0] for p in tight.problems] == ["LUT", "DSP"]
    assert "70% of 53200" in tight.problems[0]
    assert fits(need, "PYNQ-Z2", utilisation={"LUT": 0.8, "dsp": 0.95})
    assert not fits(need, "PYNQ-Z2", utilisation={"LUT": 0.7})


def test_fits_accepts_finn_estimate_dictionaries():
    finn_estimate = {"BRAM_18K": 10, "BRAM_efficiency": 0.5, "LUT": 1000, "URAM": 0, "URAM_efficiency": 1, "DSP": 4}
    assert fits(finn_estimate, get_board("Ultra96-V2"))
    assert not fits({"URAM": 1}, "Ultra96-V2")
    assert fits({"URAM": 92, "BRAM36": 300, "BRAM_18K": 10}, "ZCU104")
    assert not fits({"BRAM36": 300, "BRAM_18K": 12}, "ZCU104")


@pytest.mark.parametrize(
    "resources, utilisation, match",
    [
        ({"LUTS": 1}, 1.0, "unknown resource 'LUTS'"),
        ({"LUT": -1}, 1.0, "finite number >= 0"),
        ({"LUT": 1}, 0.0, r"in \(0, 1\]"),
        ({"LUT": 1}, 1.5, r"in \(0, 1\]"),
        ({"LUT": 1}, {"CLB": 0.5}, "unknown resource"),
    ],
)
def test_fits_rejects_bad_arguments(resources, utilisation, match):
    with pytest.raises(ValueError, match=match):
        fits(resources, "PYNQ-Z2", utilisation=utilisation)


def test_board_is_a_frozen_record():
    b = get_board("PYNQ-Z2")
    assert isinstance(b, Board)
    with pytest.raises(AttributeError):
        b.lut = 1
    assert b.resources() == {"LUT": 53_200, "FF": 106_400, "BRAM36": 140, "URAM": 0, "DSP": 220}
