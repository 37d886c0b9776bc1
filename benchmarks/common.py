"""Shared pieces of the benchmarks: the result record and a wall-clock timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    """One measurement against a baseline measured in the same run.

    ``ratio`` = baseline / measured (> 1 means faster than the baseline) unless
    ``higher_is_better`` is False for both, e.g. memory, where it is measured / limit.
    """

    name: str
    measured: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    target_ratio: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.measured == 0:
            return None
        return self.baseline / self.measured

    @property
    def meets_target(self) -> bool | None:
        if self.target_ratio is None or self.ratio is None:
            return None
        return self.ratio >= self.target_ratio

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["meets_target"] = self.meets_target
        return d


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time [s] of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
