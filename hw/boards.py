"""The boards winoforge targets: one table, a lookup and a fit check.

Sources of the figures (DESIGN.md, "Boards"):

* ``finn_board`` and ``part``: FINN's own map, ``finn.util.basic.pynq_part_map``
  (finn-plus 1.6.1) -- the name ``DataflowBuildConfig(board=...)`` takes and the
  part FINN synthesizes for.
* LUT, FF, BRAM, URAM, DSP: FINN's floorplanning tables,
  ``finn.util.platforms.<Part>_Platform.compute_resources`` (finn-plus 1.6.1),
  which list ``[LUT, FF, BRAM_18K, URAM, DSP]``; BRAM36 here is FINN's
  BRAM_18K / 2.  FINN's figures for the UltraScale+ parts are rounded: AMD's
  product selection guide DS891 lists XCZU7EV with 230,400 LUT, 460,800 FF,
  312 BRAM36, 96 URAM, 1,728 DSP and XCZU3EG with 70,560 LUT, 141,120 FF,
  216 BRAM36, 360 DSP (our reading of DS891; not re-checked against the PDF in
  this repository).  We keep FINN's numbers so that our fit checks agree with
  FINN's own floorplanner; the differences are below 3 %.
* ``clock_mhz``: FINN's default ``synth_clk_period_ns = 10.0`` (100 MHz), the PL
  clock the PYNQ images provide on all three boards.

``tests/hw/test_boards.py`` checks the table against FINN's tables, so a FINN
upgrade that changes them fails loudly instead of drifting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "FitResult", "board_names", "get_board", "fits"]


@dataclass(frozen=True)
class Board:
    """One FPGA board: its part and the programmable-logic resources of that part."""

    name: str
    finn_board: str  # key of finn.util.basic.pynq_part_map
    part: str
    lut: int
    ff: int
    bram36: int
    uram: int
    dsp: int
    clock_mhz: float

    @property
    def bram18(self) -> int:
        """RAMB18 tiles (two per RAMB36), the unit FINN's estimates count in."""
        return 2 * self.bram36

    def resources(self) -> dict[str, int]:
        """Resource counts under the keys :func:`fits` accepts."""
        return {"LUT": self.lut, "FF": self.ff, "BRAM36": self.bram36, "URAM": self.uram, "DSP": self.dsp}


BOARDS: tuple[Board, ...] = (
    # finn.util.platforms.Zynq7020_Platform: [53200, 2*53200, 280, 0, 220]
    Board("PYNQ-Z2", "Pynq-Z2", "xc7z020clg400-1", 53_200, 106_400, 140, 0, 220, 100.0),
    # finn.util.platforms.ZU7EV_Platform: [230000, 2*230000, 610, 92, 1728]
    Board("ZCU104", "ZCU104", "xczu7ev-ffvc1156-2-e", 230_000, 460_000, 305, 92, 1_728, 100.0),
    # finn.util.platforms.ZU3EG_Platform: [71000, 2*71000, 412, 0, 360]
    Board("Ultra96-V2", "Ultra96-V2", "xczu3eg-sbva484-1-i", 71_000, 142_000, 206, 0, 360, 100.0),
)


def _key(name: str) -> str:
    """Case- and punctuation-insensitive form: "Pynq-Z2", "pynq_z2", "PYNQZ2" -> "pynqz2"."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY: dict[str, Board] = {}
for _board in BOARDS:
    _BY_KEY[_key(_board.name)] = _board
    _BY_KEY[_key(_board.finn_board)] = _board


def board_names() -> tuple[str, ...]:
    return tuple(b.name for b in BOARDS)


def get_board(name: str | Board) -> Board:
    """The board called ``name`` (case-insensitive; "-", "_" and spaces ignored)."""
    if isinstance(name, Board):
        return name
    if not isinstance(name, str) or _key(name) not in _BY_KEY:
        raise ValueError(f"unknown board {name!r}; allowed: {', '.join(board_names())}")
    return _BY_KEY[_key(name)]


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fits`; true when everything fits.  ``problems`` names each
    resource that does not, e.g. ``"LUT: needs 60000 > 53200 allowed (100% of 53200)"``."""

    board: Board
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"fits {self.board.name}"
        return f"does not fit {self.board.name}: " + "; ".join(self.problems)


# Resource names fits() understands, mapped to (Board attribute, factor to Board units).
_RESOURCE_KEYS: dict[str, tuple[str, float]] = {
    "LUT": ("lut", 1.0),
    "FF": ("ff", 1.0),
    "BRAM36": ("bram36", 1.0),
    "BRAM_18K": ("bram36", 0.5),  # FINN's unit
    "URAM": ("uram", 1.0),
    "DSP": ("dsp", 1.0),
}
# Keys FINN's res_estimate dictionaries carry that are ratios, not resources.
_NON_RESOURCE_KEYS = {"BRAM_EFFICIENCY", "URAM_EFFICIENCY"}
_RESOURCE_ORDER = ("lut", "ff", "bram36", "uram", "dsp")
_RESOURCE_LABEL = {"lut": "LUT", "ff": "FF", "bram36": "BRAM36", "uram": "URAM", "dsp": "DSP"}


def _utilisation_limits(utilisation) -> dict[str, float]:
    def check(label: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"utilisation for {label} must be a number in (0, 1], got {value!r}")
        return float(value)

    if isinstance(utilisation, Mapping):
        limits = dict.fromkeys(_RESOURCE_ORDER, 1.0)
        for key, value in utilisation.items():
            upper = str(key).upper()
            if upper not in _RESOURCE_KEYS:
                raise ValueError(f"unknown resource {key!r} in utilisation; allowed: {', '.join(_RESOURCE_KEYS)}")
            limits[_RESOURCE_KEYS[upper][0]] = check(upper, value)
        return limits
    value = check("all resources", utilisation)
    return dict.fromkeys(_RESOURCE_ORDER, value)


def fits(resources: Mapping[str, float], board: str | Board, utilisation=1.0) -> FitResult:
    """Check ``resources`` (keys LUT, FF, BRAM36, BRAM_18K, URAM, DSP; case-insensitive;
    FINN's ``res_estimate`` dictionaries work as they are) against ``board``.

    ``utilisation`` is the fraction of each resource that may be used: one number for
    all, or a mapping per resource (missing ones default to 1.0).  BRAM_18K and BRAM36
    are added up in BRAM36 units.
    """
    board = get_board(board)
    limits = _utilisation_limits(utilisation)
    need = dict.fromkeys(_RESOURCE_ORDER, 0.0)
    for key, value in resources.items():
        upper = str(key).upper()
        if upper in _NON_RESOURCE_KEYS:
            continue
        if upper not in _RESOURCE_KEYS:
            raise ValueError(f"unknown resource {key!r}; allowed: {', '.join(_RESOURCE_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"resource {key} must be a finite number >= 0, got {value!r}")
        attr, factor = _RESOURCE_KEYS[upper]
        need[attr] += float(value) * factor
    problems = []
    for attr in _RESOURCE_ORDER:
        available = getattr(board, attr)
        allowed = available * limits[attr]
        if need[attr] > allowed:
            amount = f"{need[attr]:g}"
            problems.append(
                f"{_RESOURCE_LABEL[attr]}: needs {amount} > {allowed:g} allowed "
                f"({limits[attr]:.0%} of {available})"
            )
    return FitResult(board, tuple(problems))
