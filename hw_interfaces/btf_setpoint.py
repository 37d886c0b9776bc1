"""The set-point write path of :class:`hw_interfaces.btf_controls.BtfControls`: the refusal
rules, the audit trail and the command document.

How the real BTF control system accepts set points is not known (facts file section 7): the
command is a JSON document stored under ``<ELEMENT><command_suffix>``, which the simulator
executes. Every attempt, refused or not, is logged and (with an audit path) appended to a
JSON-lines file, flushed and fsynced before the call returns.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from .errors import HardwareError, InvalidValue, WriteNotEnabled

log = logging.getLogger("hw_interfaces.btf_controls")


def append_audit(path: Path | None, entry: dict[str, Any]) -> None:
    """Log one write attempt and append it to ``path`` (JSON lines, fsynced) if given."""
    log.warning("BTF set-point write attempt: %s", json.dumps(entry))
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def setpoint_problem(
    element: str, current_a: float, current_limits_a: tuple[float, float] | None
) -> str | None:
    """Why a supply cannot take the set point ``current_a`` [A] (not a finite number, or
    outside ``current_limits_a``), or None. The one rule of the writer, the fake and the
    simulator."""
    if not isinstance(current_a, (int, float)) or not math.isfinite(current_a):
        return f"{element}: set point {current_a!r} A is not finite"
    if current_limits_a is not None:
        lo, hi = current_limits_a
        if not lo <= current_a <= hi:
            return f"{element}: set point {current_a:g} A outside limits [{lo:g}, {hi:g}] A"
    return None


def refusal(
    element: str,
    key: str,
    current_a: float,
    *,
    writes_enabled: bool,
    current_limits_a: tuple[float, float] | None,
) -> HardwareError | None:
    """Why a write of ``current_a`` [A] must be refused (None: it may be asked for)."""
    if not writes_enabled:
        return WriteNotEnabled(
            f"{element}: set-point write to '{key}' refused: client is read-only "
            "(create it with writes_enabled=True)",
            device=element,
            key=key,
        )
    problem = setpoint_problem(element, current_a, current_limits_a)
    return None if problem is None else InvalidValue(problem, device=element, key=key)


def command_payload(cmd_id: str, current_a: float, time_utc: str) -> bytes:
    """The JSON command document the simulator executes (``set_current``)."""
    return json.dumps(
        {
            "id": cmd_id,
            "command": "set_current",
            "current_a": float(current_a),
            "time_utc": time_utc,
            "origin": "btf-scanplan",
        }
    ).encode()
