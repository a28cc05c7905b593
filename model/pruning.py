"""Gradual SRBS pruning: the cubic sparsity schedule of Zhu & Gupta.

Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for
model compression", ICLR workshop 2018: over ``n`` pruning steps starting at
step ``t0`` the density falls from ``d_0 = 1`` to the final ``d_f`` as

    d(t) = d_f + (1 - d_f) * (1 - (t - t0) / n) ** 3,   t0 <= t <= t0 + n

(fast at first, while the network has redundancy, slower near the target).
Under SRBS the density of a sub-row is ``keep / sub_row`` with integer
``keep``, so the schedule is rounded *up* to the next achievable ``keep``: the
network never drops below the scheduled density, and reaches exactly
``keep_final`` at the end of the span.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from winoforge.winograd.srbs import check_srbs_params

__all__ = ["CubicSchedule", "scheduled_keep"]


@dataclass(frozen=True)
class CubicSchedule:
    """Cubic density schedule from 1 to ``final_density`` over ``[start, start + span]`` steps."""

    final_density: float
    start: int
    span: int

    def __post_init__(self) -> None:
        if not 0.0 < float(self.final_density) <= 1.0:
            raise ValueError(f"final_density={self.final_density} is out of range; allowed: 0 < final_density <= 1")
        if int(self.start) != self.start or self.start < 0:
            raise ValueError(f"start={self.start} is out of range; allowed: integer >= 0")
        if int(self.span) != self.span or self.span < 1:
            raise ValueError(f"span={self.span} is out of range; allowed: integer >= 1")

    def density(self, step: int) -> float:
        """Scheduled density at ``step`` (1 before the span, ``final_density`` after it)."""
        progress = min(max((step - self.start) / self.span, 0.0), 1.0)
        return self.final_density + (1.0 - self.final_density) * (1.0 - progress) ** 3


def scheduled_keep(schedule: CubicSchedule, step: int, sub_row: int, keep_final: int) -> int:
    """Non-zeros per sub-row at ``step``: the scheduled density rounded up to a
    whole ``keep``, never below ``keep_final``."""
    sub_row, keep_final = check_srbs_params(sub_row, sub_row, keep_final)
    # a small tolerance keeps float noise (e.g. 0.25 * 8 = 2.0000000001) from rounding up
    keep = ceil(schedule.density(step) * sub_row - 1e-9)
    return max(keep_final, min(sub_row, keep))
