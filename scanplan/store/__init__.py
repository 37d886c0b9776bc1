"""Run-conditions store: append-only history (SQLite by default) and the PadmeDAQ target.

Names load lazily (:mod:`scanplan.lazy`): CLI help needs only :mod:`.location`, and must not
pay for the records, numpy and pydantic that the store modules import.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the typed public names, loaded lazily)
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, lazy_getattr

if TYPE_CHECKING:
    from .base import (
        KIND_APPLIED,
        KIND_MEASURED,
        KIND_PADME_PUSH,
        KIND_PLANNED,
        KIND_READING,
        KIND_RUN_STARTED,
        KIND_RUN_STOPPED,
        KIND_VERDICT,
        KNOWN_KINDS,
        Event,
        RunConditionsStore,
    )
    from .location import DEFAULT_STORE_FILE, default_store_path
    from .sqlite import SQLiteStore

_NAMES = {
    "base": (
        "KIND_APPLIED KIND_MEASURED KIND_PADME_PUSH KIND_PLANNED KIND_READING "
        "KIND_RUN_STARTED KIND_RUN_STOPPED KIND_VERDICT KNOWN_KINDS Event RunConditionsStore"
    ),
    "location": "DEFAULT_STORE_FILE default_store_path",
    "sqlite": "SQLiteStore",
}
_HOME = homes(_NAMES)
__all__ = sorted(_HOME)
__getattr__ = lazy_getattr(__name__, _HOME)
