"""Run-conditions store: append-only history (SQLite by default) and the PadmeDAQ target."""

from __future__ import annotations

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
from .sqlite import DEFAULT_STORE_FILE, SQLiteStore, default_store_path

__all__ = [
    "DEFAULT_STORE_FILE",
    "KIND_APPLIED",
    "KIND_MEASURED",
    "KIND_PADME_PUSH",
    "KIND_PLANNED",
    "KIND_READING",
    "KIND_RUN_STARTED",
    "KIND_RUN_STOPPED",
    "KIND_VERDICT",
    "KNOWN_KINDS",
    "Event",
    "RunConditionsStore",
    "SQLiteStore",
    "default_store_path",
]
