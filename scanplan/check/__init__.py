"""Step checker: is the machine where the plan says, and does the beam land where the model
says for the currents actually measured?

For one plan point the checker reads the DHSTB001/DHSTB002 and QUATB001..4 power supplies
(status, set point, readback, age) and the TimePix beam spot, predicts the spot from the
beam-line model (:func:`beamline.spot.predict_spot`) for the measured and the plan's
currents, and returns a
:class:`Verdict` (OK / WARN / FAIL, every comparison with measured, expected, tolerances,
unit, level and reason). Hardware problems are FAIL comparisons carrying the adapter's
message, not exceptions; bad input (unknown period, malformed tolerances) raises
:class:`scanplan.errors.ScanplanError`.

Modules, one job each:

- :mod:`.tolerances`: :class:`CheckTolerances`, the typed ``lattices/checks/tolerances.toml``;
- :mod:`.verdict`: the records (:class:`Verdict`, :class:`Comparison`, readings, spot, prediction);
- :mod:`.predictor`: :class:`SpotPredictor`, the cached model prediction;
- :mod:`.dipoles`: the magnets read (dipoles, quadrupoles Q1..Q4 on QUATB001..4), named
  from the calibrations, and the plan's currents per supply;
- :mod:`.comparisons`: the judgement (pure functions);
- :mod:`.settle`: the settle loop's judgement (settled, steady outside tolerance, trips);
- :mod:`.checker`: :class:`Checker`, reads through protocols and returns the verdict;
- :mod:`.recorder`: :class:`CheckRecorder`, the one writer of readings and verdicts;
- :mod:`.connections`: :func:`connect`, the real adapters from addresses;
- :mod:`.session`: :func:`check_point` and :func:`run_check` (check and record).

Names are imported lazily so that ``import scanplan.check.tolerances`` (CLI help) stays light.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the typed public names, loaded lazily)
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, lazy_getattr

if TYPE_CHECKING:
    from .checker import Checker, PollCallback
    from .comparisons import graded
    from .connections import Connections, connect
    from .dipoles import Dipole, dipoles
    from .predictor import SpotPredictor, default_rel_spread
    from .recorder import CheckRecorder
    from .session import check_point, open_checker, predictor_for, run_check
    from .tolerances import CheckTolerances
    from .verdict import (
        FAIL,
        LEVELS,
        OK,
        TIMEPIX,
        WARN,
        Comparison,
        Level,
        PredictedSpot,
        Prediction,
        ReadError,
        SettlePoll,
        SettleSummary,
        SpotRecord,
        Verdict,
        finite_or_none,
        worst,
    )

_NAMES = {
    "checker": "Checker PollCallback",
    "comparisons": "graded",
    "connections": "Connections connect",
    "dipoles": "Dipole dipoles",
    "predictor": "SpotPredictor default_rel_spread",
    "recorder": "CheckRecorder",
    "session": "check_point open_checker predictor_for run_check",
    "tolerances": "CheckTolerances",
    "verdict": (
        "FAIL LEVELS OK TIMEPIX WARN Comparison Level PredictedSpot Prediction "
        "ReadError SettlePoll SettleSummary SpotRecord Verdict finite_or_none worst"
    ),
}
_HOME = homes(_NAMES)
__all__ = sorted(_HOME)
__getattr__ = lazy_getattr(__name__, _HOME)
