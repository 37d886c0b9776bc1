"""Records of the BTF controls (power supplies, machine state) and the names they use.

Plain data, shared by the memcached adapter (:mod:`hw_interfaces.btf_controls`), the
in-memory fakes (:mod:`hw_interfaces.fakes`) and the protocols
(:mod:`hw_interfaces.protocols`). Units are in the field names.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .clock import iso_utc
from .errors import BadRequest, InvalidValue, MissingKey

#: Power-supply elements of the transfer line (facts file section 7).
PSU_ELEMENTS = ("DHSTB001", "DHSTB002", "QUATB001", "QUATB002", "QUATB003", "QUATB004")

_ELEMENT_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def check_element(element: str) -> str:
    """Normalised element name (upper case); BadRequest for anything that is not one."""
    name = element.strip().upper()
    if not _ELEMENT_RE.match(name):
        raise BadRequest(
            f"'{element}' is not an element name (letters, digits, underscore; e.g. DHSTB001)",
            device=element,
        )
    return name


def check_currents(element: str, key: str, rec: dict[str, Any], note: str = "") -> None:
    """InvalidValue unless the set point and output current of the decoded record ``rec`` of
    ``key`` are finite numbers (``note`` is appended to the reason)."""
    for fname in ("currentSetting", "outputCurr"):
        v = rec.get(fname)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidValue(
                f"{element}: field '{fname}' of '{key}' is {v!r} (not a finite number{note})",
                device=element,
                key=key,
            )


class PsuState(Enum):
    """Explicit state of a power supply from the record's ``status`` code."""

    OFF = 0
    STANDBY = 1
    OPERATIONAL = 2
    INTERLOCK_FAULT = 3
    COMMUNICATION_ERROR = 4
    UNKNOWN = -1

    @classmethod
    def from_code(cls, code: int) -> PsuState:
        try:
            return cls(code)
        except ValueError:
            return cls.UNKNOWN


class BtfStatus(Enum):
    """``btf_status`` of ``DAFNESTATELAB_JDAT``: 0 off, 1 configured, 2 on."""

    OFF = 0
    CONFIGURED = 1
    ON = 2
    UNKNOWN = -1

    @classmethod
    def from_code(cls, code: Any) -> BtfStatus:
        try:
            return cls(int(code))
        except (TypeError, ValueError):
            return cls.UNKNOWN


class BeamMode(Enum):
    """``mode`` of ``DAFNESTATE_JDAT``: -1 electrons, +1 positrons."""

    ELECTRON = -1
    POSITRON = 1
    UNKNOWN = 0

    @classmethod
    def from_code(cls, code: Any) -> BeamMode:
        try:
            value = int(code)
            return cls(value) if value in (-1, 1) else cls.UNKNOWN
        except (TypeError, ValueError):
            return cls.UNKNOWN


class PowerSupplyReading(BaseModel):
    """One decoded power-supply record (units in names; polarity codes as published).

    A typed record (pydantic, frozen): the checker stores it as it is. Serialised with the
    status as its name and the time as ISO 8601 UTC (milliseconds, ``Z``); ``raw`` (the
    decoded cluster) is kept for diagnosis and not serialised.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    element: str
    time_utc: datetime
    status: PsuState
    status_code: int
    current_setting_a: float
    output_current_a: float
    output_voltage_v: float
    slew_rate_setting_a_per_s: float
    slew_rate_readout_a_per_s: float
    polarity_setting: int
    output_polarity: int
    faults: tuple[int, ...]
    error_mask: int
    on_line: bool
    remote: bool
    busy: bool
    ramp_on: bool
    age_s: float
    source: str
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @field_serializer("status")
    def _status_name(self, status: PsuState) -> str:
        return status.name

    @field_serializer("time_utc")
    def _time_iso(self, t: datetime) -> str:
        return iso_utc(t, timespec="milliseconds")

    @property
    def ok(self) -> bool:
        """Operational and no fault bits set."""
        return self.status is PsuState.OPERATIONAL and not any(self.faults)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (status as its name, time as ISO 8601 UTC; NaN stays NaN)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_record(
        cls, element: str, rec: dict[str, Any], *, time_utc: datetime, age_s: float, source: str
    ) -> PowerSupplyReading:
        """The reading of a decoded ``<ELEMENT>_DYN`` cluster ``rec`` (fields named as in
        ``layouts/mg1_dyn.toml``; optional ones NaN / 0 / False when the layout lacks them)."""
        code = int(rec.get("status", -1))
        return cls(
            element=element,
            time_utc=time_utc,
            status=PsuState.from_code(code),
            status_code=code,
            current_setting_a=float(rec["currentSetting"]),
            output_current_a=float(rec["outputCurr"]),
            output_voltage_v=float(rec.get("outputVolt", math.nan)),
            slew_rate_setting_a_per_s=float(rec.get("slewRateSetting", math.nan)),
            slew_rate_readout_a_per_s=float(rec.get("slewRateReadout", math.nan)),
            polarity_setting=int(rec.get("polaritySetting", 0)),
            output_polarity=int(rec.get("outputPolarity", 0)),
            faults=tuple(int(x) for x in rec.get("faults", ())),
            error_mask=int(rec.get("errorMask", 0)),
            on_line=bool(rec.get("onLine", False)),
            remote=bool(rec.get("remote", False)),
            busy=bool(rec.get("busy", False)),
            ramp_on=bool(rec.get("rampOn", False)),
            age_s=age_s,
            source=source,
            raw=rec,
        )


@dataclass(frozen=True)
class MachineState:
    """DAFNE/BTF machine state from ``DAFNESTATELAB_JDAT`` and ``DAFNESTATE_JDAT``.

    ``e`` and ``p`` are published as-is (their meaning/units are not documented in the facts
    file); ``linac_freq_hz`` assumes the published ``linac_freq`` is in Hz.
    """

    time_utc: datetime
    btf_status: BtfStatus
    dafne_status: int | None
    e: float | None
    p: float | None
    linac_freq_hz: float | None
    mode: BeamMode
    age_s: float
    source: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        d["btf_status"] = self.btf_status.name
        d["mode"] = self.mode.name
        d["time_utc"] = self.time_utc.isoformat()
        return d

    @classmethod
    def from_documents(
        cls,
        lab: dict[str, Any],
        state: dict[str, Any],
        *,
        lab_key: str,
        time_utc: datetime,
        age_s: float,
        source: str,
    ) -> MachineState:
        """The state of the two decoded JSON documents (``lab`` from ``lab_key`` must hold
        ``btf_status``: MissingKey otherwise)."""
        if "btf_status" not in lab:
            raise MissingKey(
                f"DAFNE/BTF: field 'btf_status' missing from '{lab_key}'",
                device="DAFNE/BTF",
                key=lab_key,
            )
        dafne = lab.get("dafne_status")
        return cls(
            time_utc=time_utc,
            btf_status=BtfStatus.from_code(lab.get("btf_status")),
            dafne_status=int(dafne) if isinstance(dafne, (int, float)) else None,
            e=_num(lab.get("e")),
            p=_num(lab.get("p")),
            linac_freq_hz=_num(state.get("linac_freq")),
            mode=BeamMode.from_code(state.get("mode")),
            age_s=age_s,
            source=source,
            raw={"lab": lab, "state": state},
        )


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
