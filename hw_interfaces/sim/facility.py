"""The virtual BTF: PSU publisher (memcached), Serval-style TimePix server and RunControl.

``FacilitySimulator`` needs a running memcached (the tests' ``memcached_server`` fixture, or
:class:`hw_interfaces.sim.memcached.MemcachedProcess`). The beam seen by the TimePix comes
from ``beam_position_fn(psu_states)``: the scanplan layer passes a function of the simulated
supplies (``{element: PsuSimState}``) that runs the beam-line model; without one the beam
sits at the detector centre.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..btf_controls import PSU_ELEMENTS
from ..timepix import TimepixGeometry
from .faults import PSU_FAULTS, RUNCONTROL_FAULTS, TIMEPIX_FAULTS, Fault
from .psu import MACHINE_KEYS, PsuSimState, PsuSimulator
from .runcontrol import RunControlSimulator
from .serval import ServalSimulator, default_beam

FacilityBeamFn = Callable[[Mapping[str, PsuSimState]], tuple[float, float, float, float]]

TIMEPIX = "timepix"
RUNCONTROL = "runcontrol"


class FacilitySimulator:
    """Starts/stops the three simulated services; faults via :meth:`inject` / :meth:`clear`."""

    def __init__(
        self,
        memcached_host: str,
        memcached_port: int,
        *,
        beam_position_fn: FacilityBeamFn | None = None,
        elements: Iterable[str] = PSU_ELEMENTS,
        currents_a: Mapping[str, float] | None = None,
        key_prefix: str = "",
        geometry: TimepixGeometry | None = None,
        seed: int | None = None,
        psu_options: Mapping[str, Any] | None = None,
        serval_options: Mapping[str, Any] | None = None,
        runcontrol_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._beam_fn = beam_position_fn
        self.psu = PsuSimulator(
            memcached_host,
            memcached_port,
            elements=elements,
            currents_a=currents_a,
            key_prefix=key_prefix,
            seed=seed,
            **dict(psu_options or {}),
        )
        self.serval = ServalSimulator(
            self._beam, geometry=geometry, seed=seed, **dict(serval_options or {})
        )
        self.runcontrol = RunControlSimulator(**dict(runcontrol_options or {}))
        self.memcached_address = f"{memcached_host}:{memcached_port}"

    def _beam(self) -> tuple[float, float, float, float]:
        if self._beam_fn is None:
            return default_beam()
        return self._beam_fn(self.psu.states())

    def psu_states(self) -> dict[str, PsuSimState]:
        """Snapshot of the simulated supplies (the model reads the currents from here)."""
        return self.psu.states()

    @property
    def timepix_url(self) -> str:
        return self.serval.url

    @property
    def runcontrol_port(self) -> int:
        return self.runcontrol.port

    def start(self) -> FacilitySimulator:
        try:
            self.psu.start()
            self.serval.start()
            self.runcontrol.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.runcontrol.stop()
        self.serval.stop()
        self.psu.stop()

    def __enter__(self) -> FacilitySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault | str, target: str) -> None:
        """Inject ``fault`` into ``target``: an element (DHSTB001...), DAFNESTATELAB,
        DAFNESTATE, ``timepix`` or ``runcontrol``."""
        fault = Fault.parse(fault)
        t = target.strip()
        if t.lower() == TIMEPIX:
            self.serval.inject(fault)
        elif t.lower() == RUNCONTROL:
            self.runcontrol.inject(fault)
        elif t.upper() in self.psu.elements or t.upper() in MACHINE_KEYS:
            self.psu.inject(fault, t)
        else:
            raise ValueError(
                f"unknown fault target '{target}': use an element ({', '.join(self.psu.elements)}), "
                f"{', '.join(MACHINE_KEYS)}, {TIMEPIX} or {RUNCONTROL}"
            )

    def clear(self, fault: Fault | str | None = None, target: str | None = None) -> None:
        """Clear one fault / all faults of a target / everything (dead servers stay dead)."""
        f = None if fault is None else Fault.parse(fault)
        t = None if target is None else target.strip()
        if t is None or t.lower() == TIMEPIX:
            if f is None or f in TIMEPIX_FAULTS:
                self.serval.clear(f)
        if t is None or t.lower() == RUNCONTROL:
            if f is None or f in RUNCONTROL_FAULTS:
                self.runcontrol.clear(f)
        if t is None or t.lower() not in (TIMEPIX, RUNCONTROL):
            if f is None or f in PSU_FAULTS:
                self.psu.clear(f, t)

    def revive(self, target: str) -> None:
        """Restart a server killed with the ``dead`` fault (``timepix`` or ``runcontrol``) on
        its previous port."""
        t = target.strip().lower()
        if t == TIMEPIX:
            self.serval.revive()
        elif t == RUNCONTROL:
            self.runcontrol.revive()
        else:
            raise ValueError(f"only {TIMEPIX} and {RUNCONTROL} can be revived, not '{target}'")

    def faults(self) -> dict[str, list[str]]:
        """Active faults per target."""
        out = {k: sorted(f.value for f in v) for k, v in self.psu.faults().items()}
        for name, sim in ((TIMEPIX, self.serval), (RUNCONTROL, self.runcontrol)):
            active = sorted(f.value for f in Fault if sim.has_fault(f))
            if active:
                out[name] = active
        return out
