"""Guided run (``scanplan run``): take a plan point by point on the machine, resumable after
a crash, every transition an event in the run-conditions store.

Modules, one job each:

- :mod:`.options`: :class:`RunOptions`, the knobs and their defaults;
- :mod:`.events`: event kinds, :func:`point_states` (the history read back), helpers;
- :mod:`.ui`: the :class:`RunUI` protocol and :class:`QuietUI`;
- :mod:`.guided`: :class:`GuidedRun`, the per-point state machine (protocol seams only);
- :mod:`.wiring`: :func:`open_guided_run`, the real adapters from addresses.

Names are imported lazily so that the CLI can read :data:`DEFAULT_OPTIONS` cheaply.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the typed public names, loaded lazily)
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, lazy_getattr

if TYPE_CHECKING:
    from .events import (
        KIND_APPLIED,
        KIND_PADME_PUSH,
        KIND_POINT_DONE,
        KIND_RUN_ABANDONED,
        KIND_RUN_CREATED,
        KIND_RUN_FAILED,
        KIND_RUN_REQUESTED,
        KIND_RUN_STARTED,
        KIND_RUN_STOPPED,
        KIND_RUN_UNRESOLVED,
        RUN_KINDS,
        PointState,
        PointStatus,
        RunSummary,
        parse_periods,
        point_states,
        summarize,
    )
    from .guided import (
        EXIT_DONE,
        EXIT_STOPPED,
        GuidedRun,
        RunConditionsPusher,
        RunStopped,
    )
    from .options import DEFAULT_OPTIONS, RunOptions
    from .setpoints import approach_steps, combined_steps
    from .ui import QuietUI, RunUI
    from .wiring import open_guided_run

_NAMES = {
    "events": (
        "KIND_APPLIED KIND_PADME_PUSH KIND_POINT_DONE KIND_RUN_ABANDONED KIND_RUN_CREATED "
        "KIND_RUN_FAILED KIND_RUN_REQUESTED KIND_RUN_STARTED KIND_RUN_STOPPED "
        "KIND_RUN_UNRESOLVED RUN_KINDS PointState PointStatus RunSummary parse_periods "
        "point_states summarize"
    ),
    "guided": "EXIT_DONE EXIT_STOPPED GuidedRun RunConditionsPusher RunStopped",
    "setpoints": "approach_steps combined_steps",
    "options": "DEFAULT_OPTIONS RunOptions",
    "ui": "QuietUI RunUI",
    "wiring": "open_guided_run",
}
_HOME = homes(_NAMES)
__all__ = sorted(_HOME)
__getattr__ = lazy_getattr(__name__, _HOME)
