"""The faults and start values of ``scanplan sim``, parsed from their command-line spelling.

Faults (:func:`parse_fault`), spelled ``NAME[:TARGET][=VALUE]``:

* power supplies ``trip|comm-error|nan|stale|missing|corrupt:<ELEMENT>`` (DHSTB001...),
  also ``stale|missing|corrupt:DAFNESTATELAB``;
* TimePix ``dropped-frames``, ``no-beam``, ``slow``, ``dead:serval`` (alias ``timepix``);
* RunControl ``init-fail``, ``init-timeout``, ``terminate-error``, ``broken-frame``, ``hang``,
  ``dead:runcontrol``;
* ``offset:<ELEMENT>=<A>``: a hidden field error of a dipole or quadrupole (DHSTB00n,
  QUATB00n), as if its current were off by ``A`` amperes (hysteresis, wrong calibration):
  the readback is unchanged, the beam moves (dipoles) or changes size (quadrupoles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hw_interfaces.sim import Fault
from hw_interfaces.sim.faults import PSU_FAULTS, RUNCONTROL_FAULTS, TIMEPIX_FAULTS

from .errors import ScanplanError

TARGET_ALIASES = {"serval": "timepix", "timepix": "timepix", "runcontrol": "runcontrol"}
#: the fault that is no hardware fault: a hidden field error of a dipole (model side)
OFFSET = "offset"


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``--fault``: ``fault`` (a :class:`Fault` or ``"offset"``), ``target``
    (element, machine key, ``timepix`` or ``runcontrol``) and ``value_a`` (offset only)."""

    fault: Fault | str
    target: str
    value_a: float = 0.0

    @property
    def label(self) -> str:
        name = self.fault.value if isinstance(self.fault, Fault) else self.fault
        if name == OFFSET:
            return f"{name}:{self.target}={self.value_a:g}"
        return f"{name}:{self.target}"


def parse_fault(text: str) -> FaultSpec:
    """``NAME[:TARGET][=VALUE]`` -> :class:`FaultSpec` (ScanplanError with the choices)."""
    raw = text.strip()
    name, _, rest = raw.partition(":")
    target, _, value = rest.partition("=")
    name = name.strip().lower().replace("-", "_")
    if name == "dropped_frames":
        name = "drop_frames"
    target = target.strip()
    if name == OFFSET:
        if not target or not value:
            raise ScanplanError(f"fault '{text}': write offset:<ELEMENT>=<amperes>")
        try:
            amps = float(value)
        except ValueError:
            raise ScanplanError(f"fault '{text}': offset '{value}' is not a number") from None
        if not math.isfinite(amps):
            raise ScanplanError(f"fault '{text}': offset must be finite")
        return FaultSpec(OFFSET, target.upper(), amps)
    if value:
        raise ScanplanError(f"fault '{text}': only offset:<ELEMENT>=<A> takes a value")
    try:
        fault = Fault.parse(name)
    except ValueError as exc:
        raise ScanplanError(f"fault '{text}': {exc}, or offset") from None
    if not target:
        if fault in TIMEPIX_FAULTS and fault is not Fault.DEAD:
            target = "timepix"
        elif fault in RUNCONTROL_FAULTS and fault is not Fault.DEAD:
            target = "runcontrol"
        else:
            raise ScanplanError(
                f"fault '{text}' needs a target: {fault.value}:<ELEMENT>"
                + (" or dead:serval / dead:runcontrol" if fault is Fault.DEAD else "")
            )
    t = TARGET_ALIASES.get(target.lower(), target.upper())
    allowed = (
        TIMEPIX_FAULTS if t == "timepix" else RUNCONTROL_FAULTS if t == "runcontrol" else PSU_FAULTS
    )
    if fault not in allowed:
        raise ScanplanError(
            f"fault '{text}': {fault.value} does not apply to {t} "
            f"(choose among {', '.join(sorted(f.value for f in allowed))})"
        )
    return FaultSpec(fault, t)


def parse_currents(items: Iterable[str]) -> dict[str, float]:
    """``ELEMENT=AMPS`` items -> dict (ScanplanError on nonsense)."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            amps = float(value)
        except ValueError:
            amps = math.nan
        if not sep or not name.strip() or not math.isfinite(amps):
            raise ScanplanError(f"--current '{item}': write ELEMENT=AMPS, e.g. DHSTB001=179.1")
        out[name.strip().upper()] = amps
    return out


def parse_hysteresis(items: Iterable[str]) -> dict[str, dict[str, float]]:
    """``ELEMENT=UP_A:DOWN_A`` items -> ``{element: {"up": .., "down": ..}}`` (the
    simulator's per-branch readback offsets; ScanplanError on nonsense)."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        up, sep2, down = value.partition(":")
        try:
            pair = {"up": float(up), "down": float(down)}
        except ValueError:
            pair = {}
        if not (sep and sep2 and name.strip() and pair) or not all(
            math.isfinite(v) for v in pair.values()
        ):
            raise ScanplanError(
                f"--hysteresis '{item}': write ELEMENT=UP_A:DOWN_A, e.g. DHSTB001=0.02:-0.02"
            )
        out[name.strip().upper()] = pair
    return out
