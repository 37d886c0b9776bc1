"""Wiring of the real adapters for the checker: clients of the BTF memcached and of the
TimePix server, built from addresses (the only module of ``scanplan.check`` that names
concrete adapter classes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw_interfaces.btf_controls import BtfControls
from hw_interfaces.clock import SYSTEM_CLOCK, Clock
from hw_interfaces.timepix import ServalBeamMonitor

from ..errors import ScanplanError
from .tolerances import CheckTolerances


@dataclass
class Connections:
    """Clients of the BTF memcached and the TimePix server (close them, or use as a context
    manager). ``psu`` implements PowerSupplySource, ``spot`` BeamSpotSource (None: no
    TimePix)."""

    psu: BtfControls
    spot: ServalBeamMonitor | None

    def close(self) -> None:
        self.psu.close()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_timeout(timeout_s: float, what: str = "the hardware timeout") -> float:
    """``timeout_s`` if finite and > 0, else ScanplanError."""
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ScanplanError(f"{what} must be > 0 s")
    return timeout_s


def connect(
    memcached: str,
    timepix_url: str | None,
    *,
    key_prefix: str = "",
    tolerances: CheckTolerances | None = None,
    timeout_s: float = 1.0,
    clock: Clock = SYSTEM_CLOCK,
) -> Connections:
    """Read-only :class:`BtfControls` on ``memcached`` (``HOST:PORT``; first reads prove the
    publisher alive within ``power_supply.first_read_wait_s``) and a
    :class:`ServalBeamMonitor` on ``timepix_url`` (None: no TimePix). Bad addresses raise
    ScanplanError; nothing is contacted yet."""
    from hw_interfaces.timepix import ServalClient

    tol = tolerances or CheckTolerances.load()
    check_timeout(timeout_s)
    try:
        psu = BtfControls.from_address(
            memcached,
            timeout_s=timeout_s,
            key_prefix=key_prefix,
            max_age_s=tol.power_supply.max_age_s,
            first_read_wait_s=tol.power_supply.first_read_wait_s,
            clock=clock,
        )
    except ValueError as exc:
        raise ScanplanError(f"memcached address: {exc}") from None
    monitor = None
    if timepix_url:
        try:
            client = ServalClient(timepix_url, timeout_s=timeout_s, retries=1)
        except ValueError as exc:
            raise ScanplanError(str(exc)) from None
        monitor = ServalBeamMonitor(
            client,
            n_frames=tol.spot.n_frames,
            timeout_s=tol.spot.frames_timeout_s,
            min_hits=tol.spot.min_hits,
        )
    return Connections(psu, monitor)
