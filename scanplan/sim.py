"""The virtual BTF driven by the beam-line model (``scanplan sim``, tests, notebooks, training).

:class:`SimFacility` starts the protocol simulators of :mod:`hw_interfaces.sim` (PSU records in
a real memcached, a Serval-style TimePix HTTP server, a RunControl TCP server) on 127.0.0.1
and plugs the model in: :class:`ModelBeam` is the TimePix beam-position callback. On every
frame it reads the simulated DHSTB001/DHSTB002 output currents, asks
:class:`scanplan.check.SpotPredictor` (one BeamLine, LRU cache keyed by currents rounded to
``cache_resolution_a``) where the beam lands at the TimePix, and adds the reference offset
(``[spot] reference_x_mm/reference_y_mm`` of ``lattices/checks/tolerances.toml``). A
supply that is not operational or below ``min_dipole_current_a`` means no beam on the
detector.

Faults: :func:`scanplan.sim_faults.parse_fault` (the spelling is documented there).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hw_interfaces.sim import (
    FacilitySimulator,
    Fault,
    MemcachedProcess,
    PsuSimState,
    SimControlServer,
)

from .check import CheckTolerances, SpotPredictor
from .errors import ScanplanError
from .sim_faults import OFFSET, TARGET_ALIASES, FaultSpec, parse_fault

#: a beam position far off the detector: no hit lands on it (no beam)
OFF_DETECTOR_MM = 1.0e4
DEFAULT_SEED = 17


def supply_limits_a() -> dict[str, tuple[float, float]]:
    """The current range [A] of every magnet supply (supply element -> (low, high)), from the
    calibrations (``MagnetSpec.current_limits_a``)."""
    from beamline import calibration
    from beamline.names import MAGNETS, supply_element

    return {supply_element(m): calibration.magnet_spec(m).current_limits_a for m in MAGNETS}


def dipole_supplies() -> tuple[str, str]:
    """BTF supply elements of DHSTB01 and DHSTB02 (``supply_element`` of
    ``lattices/calibrations/dipoles.toml``: the names of their memcached records)."""
    from beamline.names import DIPOLES, supply_elements

    first, second = supply_elements(DIPOLES)
    return first, second


def quadrupole_supplies() -> dict[str, str]:
    """Supply element -> magnet of the quadrupoles (QUATB001 -> Q1, ``supply_element`` of
    ``lattices/calibrations/quadrupoles.toml``)."""
    from beamline.names import QUADRUPOLES, supply_element

    return {supply_element(q): q for q in QUADRUPOLES}


class ModelBeam:
    """TimePix beam callback ``(psu states) -> (x_mm, y_mm, sigma_x_mm, sigma_y_mm)``.

    The current of each dipole and quadrupole is the simulated output (plus the published
    hysteresis offset of its branch, as the readback shows it) plus a hidden ``offsets_a``
    field error. The quadrupoles focus: their currents change the spot size (and the
    centroid only of a beam off axis in them). A quad the simulator does not publish keeps
    the model's settings current.
    """

    def __init__(
        self,
        predictor: SpotPredictor,
        *,
        reference_x_mm: float,
        reference_y_mm: float,
        min_dipole_current_a: float,
    ) -> None:
        self.predictor = predictor
        self.reference_x_mm = reference_x_mm
        self.reference_y_mm = reference_y_mm
        self.min_dipole_current_a = min_dipole_current_a
        #: supply elements of DHSTB01 and DHSTB02, whose output currents steer the beam
        self.supplies = dipole_supplies()
        #: supply elements of Q1..Q4 -> magnet names, whose outputs focus the beam
        self.quadrupoles = quadrupole_supplies()
        self._offsets: dict[str, float] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def set_offset(self, element: str, offset_a: float) -> None:
        with self._lock:
            self._offsets[element.upper()] = float(offset_a)

    def clear_offsets(self) -> None:
        with self._lock:
            self._offsets.clear()

    def offsets(self) -> dict[str, float]:
        with self._lock:
            return dict(self._offsets)

    @staticmethod
    def effective_current_a(state: PsuSimState) -> float:
        """Output current as the readback publishes it (without noise)."""
        extra = state.hysteresis_offset_a.get(state.branch, 0.0) if state.status == 2 else 0.0
        return state.output_current_a + extra

    def __call__(self, states: Mapping[str, PsuSimState]) -> tuple[float, float, float, float]:
        self.calls += 1
        off = (OFF_DETECTOR_MM, OFF_DETECTOR_MM, 1.0, 1.0)
        e1, e2 = self.supplies
        try:
            d1, d2 = states[e1], states[e2]
        except KeyError:
            return off
        if d1.status != 2 or d2.status != 2:
            return off
        offsets = self.offsets()
        i1 = self.effective_current_a(d1) + offsets.get(e1, 0.0)
        i2 = self.effective_current_a(d2) + offsets.get(e2, 0.0)
        if min(i1, i2) < self.min_dipole_current_a:
            return off
        quads = {
            magnet: self.effective_current_a(states[element]) + offsets.get(element, 0.0)
            for element, magnet in self.quadrupoles.items()
            if element in states
        }
        try:
            p = self.predictor.predict(i1, i2, quads)
        except ValueError:  # BeamlineInputError: currents outside the magnet's range
            self.failures += 1
            return off
        return (
            p.x_timepix_mm + self.reference_x_mm,
            p.y_timepix_mm + self.reference_y_mm,
            p.sigma_x_timepix_mm,
            p.sigma_y_timepix_mm,
        )


@dataclass(frozen=True)
class SimAddresses:
    """Where the virtual BTF listens (all on 127.0.0.1)."""

    memcached: str
    key_prefix: str
    timepix_url: str
    runcontrol: str
    control_url: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "memcached": self.memcached,
            "key_prefix": self.key_prefix,
            "timepix": self.timepix_url,
            "runcontrol": self.runcontrol,
            "control": self.control_url,
        }

    def env(self) -> dict[str, str]:
        """Environment variables the other scanplan commands read."""
        return {
            "SCANPLAN_MEMCACHED": self.memcached,
            "SCANPLAN_KEY_PREFIX": self.key_prefix,
            "SCANPLAN_TIMEPIX": self.timepix_url,
            "SCANPLAN_RUNCONTROL": self.runcontrol,
            "SCANPLAN_SIM_CONTROL": self.control_url,
        }


class SimFacility:
    """The model-driven virtual BTF (context manager).

    ``memcached``: ``(host, port)`` of a running memcached, or None to start Debian's
    memcached on 127.0.0.1 (any free port). ``http_port``/``runcontrol_port`` 0 = any free.
    ``control_port``: serve the control channel (:class:`ControlFacade` behind
    :class:`hw_interfaces.sim.SimControlServer`; 0 = any free port, None = none).
    ``currents_a`` overrides the start currents (by supply element; default: the magnet
    currents of the settings' strength file, i.e. the beam on the model axis at the settings'
    reference energy). ``settings``: the model's settings (default: the line's,
    ``default_settings`` of ``lattices/btf_padme/line.toml``).
    ``predictor`` lets callers share one model (a BeamLine costs ~1 s to build).
    """

    def __init__(
        self,
        memcached: tuple[str, int] | None = None,
        *,
        http_port: int = 0,
        runcontrol_port: int = 0,
        control_port: int | None = None,
        key_prefix: str = "",
        currents_a: Mapping[str, float] | None = None,
        settings: str | None = None,
        tolerances: CheckTolerances | None = None,
        predictor: SpotPredictor | None = None,
        seed: int | None = DEFAULT_SEED,
        psu_options: Mapping[str, Any] | None = None,
        serval_options: Mapping[str, Any] | None = None,
        runcontrol_options: Mapping[str, Any] | None = None,
    ) -> None:
        from beamline.lattice import settings_currents_a
        from beamline.names import supply_element

        tol = tolerances or CheckTolerances.load()
        self.tolerances = tol
        self.http_port = int(http_port)
        self.runcontrol_port_requested = int(runcontrol_port)
        self.control_port = control_port
        self.control: SimControlServer | None = None
        self._own_memcached: MemcachedProcess | None = None
        self._memcached = memcached
        self.key_prefix = key_prefix
        self.predictor = predictor or SpotPredictor(
            settings,
            resolution_a=tol.simulator.cache_resolution_a,
            cache_size=tol.simulator.cache_size,
        )
        self.beam = ModelBeam(
            self.predictor,
            reference_x_mm=tol.spot.reference_x_mm,
            reference_y_mm=tol.spot.reference_y_mm,
            min_dipole_current_a=tol.simulator.min_dipole_current_a,
        )
        start = {supply_element(m): a for m, a in settings_currents_a(settings).items()}
        start.update({k.upper(): float(v) for k, v in (currents_a or {}).items()})
        self.currents_a = start
        self.seed = seed
        # the simulated supplies refuse what the real ones cannot deliver (the calibrations'
        # supply ranges), on every channel: control HTTP, _CMD commands, set_currents
        self.psu_options = {"current_limits_a": supply_limits_a(), **dict(psu_options or {})}
        self.serval_options = {
            "frame_rate_hz": tol.simulator.frame_rate_hz,
            "hits_per_frame": tol.simulator.hits_per_frame,
            **dict(serval_options or {}),
        }
        self.runcontrol_options = dict(runcontrol_options or {})
        self.sim: FacilitySimulator | None = None
        self.active: list[FaultSpec] = []

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> SimFacility:
        """Start memcached (if owned) and the three servers; build the model first so the
        first frames already carry the beam. Bad ports/addresses raise ScanplanError."""
        try:
            self.predictor.beamline  # noqa: B018  (build the model before serving frames)
            if self._memcached is None:
                self._own_memcached = MemcachedProcess().start()
                self._memcached = (self._own_memcached.host, self._own_memcached.port)
            host, port = self._memcached
            self.sim = FacilitySimulator(
                host,
                port,
                beam_position_fn=self.beam,
                currents_a=self.currents_a,
                key_prefix=self.key_prefix,
                seed=self.seed,
                psu_options=self.psu_options,
                serval_options=self.serval_options,
                runcontrol_options=self.runcontrol_options,
            )
            self.sim.psu.start()
            if self.sim.psu.publish_errors:
                raise ScanplanError(f"memcached {host}:{port} does not accept the PSU records")
            self.sim.serval.start(self.http_port)
            self.sim.runcontrol.start(self.runcontrol_port_requested)
            if self.control_port is not None:
                self.control = SimControlServer(
                    ControlFacade(self),  # type: ignore[arg-type]
                    self.control_port,
                ).start()
        except OSError as exc:
            self.stop()
            raise ScanplanError(f"cannot start the simulator: {exc}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers and the owned memcached (idempotent)."""
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.sim is not None:
            self.sim.stop()
        if self._own_memcached is not None:
            self._own_memcached.stop()
            self._own_memcached = None
            self._memcached = None

    def __enter__(self) -> SimFacility:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def facility(self) -> FacilitySimulator:
        if self.sim is None:
            raise ScanplanError("simulator not started")
        return self.sim

    def addresses(self) -> SimAddresses:
        sim = self.facility
        rc = sim.runcontrol
        return SimAddresses(
            memcached=sim.memcached_address,
            key_prefix=self.key_prefix,
            timepix_url=f"http://127.0.0.1:{self._last_http_port()}",
            runcontrol=f"127.0.0.1:{self._last_rc_port(rc)}",
            control_url=self.control.url if self.control is not None else "",
        )

    def _last_http_port(self) -> int:
        sim = self.facility
        try:
            self.http_port = sim.serval.port
        except RuntimeError:
            pass
        return self.http_port

    def _last_rc_port(self, rc: Any) -> int:
        try:
            self.runcontrol_port_requested = rc.port
        except RuntimeError:
            pass
        return self.runcontrol_port_requested

    # -- faults ---------------------------------------------------------------------------
    def inject(self, fault: FaultSpec | str) -> FaultSpec:
        """Inject a fault (see the module docstring)."""
        spec = parse_fault(fault) if isinstance(fault, str) else fault
        if spec.fault == OFFSET:
            magnets = (*self.beam.supplies, *self.beam.quadrupoles)
            if spec.target not in magnets:
                raise ScanplanError(f"offset applies to {', '.join(magnets)}")
            self.beam.set_offset(spec.target, spec.value_a)
        else:
            if spec.fault is Fault.DEAD:
                self._last_http_port()
                self._last_rc_port(self.facility.runcontrol)
            try:
                self.facility.inject(spec.fault, spec.target)
            except ValueError as exc:
                raise ScanplanError(str(exc)) from None
        self.active.append(spec)
        return spec

    def clear(self, fault: FaultSpec | str | None = None) -> None:
        """Clear one fault (or all): a dead server is restarted on its old port (its other
        faults go with it), a cleared trip is reset to operational (the crew's reset), a
        hidden offset removed. Clearing a fault that is not active is not an error."""
        specs = (
            list(self.active)
            if fault is None
            else [parse_fault(fault) if isinstance(fault, str) else fault]
        )
        sim = self.facility
        for spec in specs:
            if spec.fault == OFFSET:
                self.beam.set_offset(spec.target, 0.0)
                self.active = [
                    a for a in self.active if (a.fault, a.target) != (OFFSET, spec.target)
                ]
                continue
            if spec.fault is Fault.DEAD:
                dead = (sim.serval if spec.target == "timepix" else sim.runcontrol).has_fault(
                    Fault.DEAD
                )
                if dead:
                    sim.revive(spec.target)  # same port, the server's faults cleared
                self.active = [a for a in self.active if a.target != spec.target]
                continue
            sim.clear(spec.fault, spec.target)
            if spec.fault is Fault.TRIP and spec.target in sim.psu.elements:
                sim.psu.configure(spec.target, status=2)
            self.active = [a for a in self.active if a != spec]

    def faults(self) -> dict[str, list[str]]:
        """Active faults per target, hidden offsets included (``offset=<A>``)."""
        out = self.facility.faults()
        for element, amps in self.beam.offsets().items():
            if amps:
                out.setdefault(element, []).append(f"offset={amps:g}")
        return out

    def set_currents(self, currents_a: Mapping[str, float]) -> None:
        """Set simulator set points directly (the simulator's own knob, not the BTF write
        path; used by tests and training scenarios)."""
        for element, value in currents_a.items():
            try:
                self.facility.psu.set_current(element, float(value))
            except ValueError as exc:
                raise ScanplanError(str(exc)) from None

    def status(self) -> dict[str, Any]:
        """Active faults, supply states and model-cache statistics."""
        sim = self.facility
        return {
            "faults": [f.label for f in self.active],
            "supplies": {
                e: {
                    "status": s.status,
                    "set_point_a": s.set_point_a,
                    "output_current_a": s.output_current_a,
                    "commands_applied": s.commands_applied,
                    "commands_refused": s.commands_refused,
                }
                for e, s in sim.psu_states().items()
            },
            "model_cache": {"hits": self.predictor.hits, "misses": self.predictor.misses},
            "frames": sim.serval.frame_count,
            "runs": len(sim.runcontrol.runs),
        }


class ControlFacade:
    """What :class:`hw_interfaces.sim.SimControlServer` drives, with this module's fault
    semantics (``offset``, trip reset, revive on clear): ``POST /inject {"fault": "offset",
    "target": "DHSTB002=0.4"}`` works like ``--fault offset:DHSTB002=0.4``. Everything
    else is delegated to the :class:`FacilitySimulator`."""

    def __init__(self, facility: SimFacility) -> None:
        self._facility = facility

    @staticmethod
    def _spec(fault: Any, target: Any) -> FaultSpec:
        text = str(fault) if target in (None, "") else f"{fault}:{target}"
        return parse_fault(text)  # ScanplanError is a ValueError: HTTP 400

    def inject(self, fault: Any, target: Any) -> None:
        self._facility.inject(self._spec(fault, target))

    def clear(self, fault: Any = None, target: Any = None) -> None:
        if fault is None and target is None:
            self._facility.clear()
        elif fault is None:
            t = TARGET_ALIASES.get(str(target).lower(), str(target).upper())
            for spec in [a for a in self._facility.active if a.target == t]:
                self._facility.clear(spec)
            self._facility.facility.clear(None, t)
        else:
            self._facility.clear(self._spec(fault, target))

    def revive(self, target: Any) -> None:
        t = TARGET_ALIASES.get(str(target).lower())
        if t is None:
            raise ScanplanError(
                f"only serval/timepix and runcontrol can be revived, not {target!r}"
            )
        self._facility.clear(FaultSpec(Fault.DEAD, t))

    def faults(self) -> dict[str, list[str]]:
        return self._facility.faults()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facility.facility, name)
