"""Knobs of the guided run: the one home of their defaults (``scanplan run`` reads its help
defaults from :data:`DEFAULT_OPTIONS`). No heavy imports: the CLI imports this at start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    """Knobs of the guided run (units in names).

    ``dwell_s``: how long each PADME run takes data before the tool stops it (None: until
    the crew confirms). ``approach``: go to each set point from the plan's branch side
    (overshoot by ``beamline.hysteresis`` ``overshoot_a`` when needed) when writing.
    """

    run_type: str = "DAQ"
    shift_crew: str = "scanplan"
    comment: str = ""
    dwell_s: float | None = None
    max_attempts: int = 3
    retry_wait_s: float = 5.0
    settle_timeout_s: float | None = None
    enable_writes: bool = False
    approach: bool = True
    periods: tuple[int, ...] | None = None


#: the defaults, for CLI help texts
DEFAULT_OPTIONS = RunOptions()
