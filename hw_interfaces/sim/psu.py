"""Simulated BTF power supplies publishing MG1 records into a real memcached.

A background thread (``update_hz``, default 10 Hz) ramps each supply's output towards its set
point at the slew rate, adds Gaussian readback noise and a per-branch hysteresis offset
(``hysteresis_offset_a = {"up": .., "down": ..}``; the branch is the direction of the last
set-point change), encodes the record with the shipped layout and stores all keys in one
``set_many``. The machine-state JSON keys are published too.

Set points change through :meth:`PsuSimulator.set_current` or through a command document in
``<ELEMENT>_CMD`` (what :meth:`BtfControls.write_current_setting` writes); each command id is
executed once. Like a real supply, the simulator refuses a set point outside its range
(``current_limits_a``, per element; ``scanplan sim`` passes the calibrations' supply ranges):
``set_current`` raises ValueError (the control channel answers HTTP 400) and a refused
command is logged and counted in ``commands_refused``, the set point unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

from ..btf_controls import MACHINE_LAB_KEY, MACHINE_STATE_KEY, PSU_ELEMENTS
from ..btf_setpoint import setpoint_problem
from ..errors import ConnectionFailed
from ..labview import Layout, encode, load_layout
from .faults import PSU_FAULTS, Fault

log = logging.getLogger(__name__)

#: Default set points [A] (Run III-like, facts file sections 1 and 3).
DEFAULT_CURRENTS_A = {
    "DHSTB001": 179.1,
    "DHSTB002": 178.0,
    "QUATB001": 20.87,
    "QUATB002": 17.51,
    "QUATB003": 22.18,
    "QUATB004": 24.94,
}
DEFAULT_SLEW_RATE_A_PER_S = 5.0
DEFAULT_NOISE_A = 0.005
MACHINE_KEYS = ("DAFNESTATELAB", "DAFNESTATE")


@dataclass
class PsuSimState:
    """State of one simulated supply (what the model reads)."""

    element: str
    set_point_a: float
    output_current_a: float
    slew_rate_a_per_s: float = DEFAULT_SLEW_RATE_A_PER_S
    noise_a: float = DEFAULT_NOISE_A
    hysteresis_offset_a: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    branch: str = "up"
    status: int = 2
    polarity: int = 1
    faults: tuple[int, int, int, int] = (0, 0, 0, 0)
    commands_applied: int = 0
    commands_refused: int = 0

    @property
    def ramping(self) -> bool:
        return not math.isclose(self.output_current_a, self.set_point_a, abs_tol=1e-9)


class PsuSimulator:
    """Publishes ``<ELEMENT>_DYN`` records and machine state into memcached."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        elements: Iterable[str] = PSU_ELEMENTS,
        currents_a: Mapping[str, float] | None = None,
        slew_rate_a_per_s: float = DEFAULT_SLEW_RATE_A_PER_S,
        noise_a: float = DEFAULT_NOISE_A,
        update_hz: float = 10.0,
        key_prefix: str = "",
        seed: int | None = None,
        layout: Layout | None = None,
        machine_lab: Mapping[str, object] | None = None,
        machine_state: Mapping[str, object] | None = None,
        current_limits_a: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.host, self.port = host, int(port)
        #: the range [A] each supply accepts (an element not listed: any finite value)
        self.current_limits_a = {
            k.upper(): (float(lo), float(hi)) for k, (lo, hi) in (current_limits_a or {}).items()
        }
        self.key_prefix = key_prefix
        self.update_hz = update_hz
        self.layout = layout or load_layout("mg1_dyn")
        currents = {**DEFAULT_CURRENTS_A, **(currents_a or {})}
        self._states = {
            e: PsuSimState(
                e, currents.get(e, 0.0), currents.get(e, 0.0), slew_rate_a_per_s, noise_a
            )
            for e in (x.upper() for x in elements)
        }
        self.machine_lab = dict(
            machine_lab or {"e": 0.0, "p": 0.0, "dafne_status": 0, "btf_status": 2}
        )
        self.machine_state = dict(machine_state or {"linac_freq": 49, "mode": 1})
        self._faults: dict[str, set[Fault]] = {}
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._client = Client(
            (self.host, self.port), connect_timeout=1.0, timeout=1.0, no_delay=True
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_cmd: dict[str, str] = {}
        self._last_tick = time.monotonic()
        self.ticks = 0
        self.publish_errors = 0

    # -- API ------------------------------------------------------------------------------
    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(self._states)

    def _state(self, element: str) -> PsuSimState:
        try:
            return self._states[element.upper()]
        except KeyError:
            raise ValueError(
                f"simulator has no power supply '{element}' (has {', '.join(self._states)})"
            ) from None

    def set_current(self, element: str, current_a: float) -> None:
        """New set point; the output ramps to it at the slew rate."""
        problem = setpoint_problem(element, current_a, self.current_limits_a.get(element.upper()))
        if problem is not None:
            raise ValueError(f"{problem} (the supply's range; refused, set point unchanged)")
        with self._lock:
            st = self._state(element)
            if current_a != st.set_point_a:
                st.branch = "up" if current_a > st.set_point_a else "down"
            st.set_point_a = float(current_a)

    def configure(self, element: str, **kwargs: object) -> None:
        """Change ``slew_rate_a_per_s``, ``noise_a``, ``hysteresis_offset_a``, ``polarity``..."""
        with self._lock:
            st = self._state(element)
            for k, v in kwargs.items():
                if not hasattr(st, k) or k in ("element",):
                    raise ValueError(f"{element}: unknown simulator parameter '{k}'")
                setattr(st, k, v)

    def states(self) -> dict[str, PsuSimState]:
        """Snapshot of all supplies (copies; safe to read from another thread)."""
        with self._lock:
            return {
                e: replace(s, hysteresis_offset_a=dict(s.hysteresis_offset_a))
                for e, s in self._states.items()
            }

    def inject(self, fault: Fault | str, target: str) -> None:
        fault = Fault.parse(fault)
        if fault not in PSU_FAULTS:
            raise ValueError(f"fault '{fault.value}' does not apply to power supplies")
        target = target.upper()
        if target not in self._states and target not in MACHINE_KEYS:
            raise ValueError(
                f"unknown target '{target}' (elements {', '.join(self._states)}, "
                f"or {', '.join(MACHINE_KEYS)})"
            )
        with self._lock:
            self._faults.setdefault(target, set()).add(fault)
            if fault is Fault.TRIP and target in self._states:
                st = self._states[target]
                st.status, st.output_current_a, st.faults = 3, 0.0, (1, 0, 0, 0)

    def clear(self, fault: Fault | str | None = None, target: str | None = None) -> None:
        """Clear one fault, all faults of a target, or everything. A cleared trip leaves the
        supply in standby at 0 A (as after a reset); set it operational with ``configure``."""
        with self._lock:
            targets = [target.upper()] if target else list(self._faults)
            for t in targets:
                faults = self._faults.get(t, set())
                removed = set(faults) if fault is None else {Fault.parse(fault)} & faults
                faults -= removed
                st = self._states.get(t)
                if st is not None and Fault.TRIP in removed:
                    st.status, st.faults = 1, (0, 0, 0, 0)

    def faults(self) -> dict[str, set[Fault]]:
        with self._lock:
            return {k: set(v) for k, v in self._faults.items() if v}

    # -- publishing -----------------------------------------------------------------------
    def key(self, name: str) -> str:
        return self.key_prefix + name

    def _record(self, st: PsuSimState, faults: set[Fault]) -> dict[str, object]:
        out = st.output_current_a
        status = st.status
        if status == 2:
            out += st.hysteresis_offset_a.get(st.branch, 0.0)
        out += float(self._rng.normal(0.0, st.noise_a)) if st.noise_a > 0 else 0.0
        setting = st.set_point_a
        if Fault.COMM_ERROR in faults:
            status = 4  # the record keeps its last values, only the status says it
        if Fault.NAN in faults:
            out, setting = math.nan, math.nan
        return {
            "elemName": st.element,
            "status": status,
            "consoleName": "SIM",
            "errorMask": 0,
            "cmdExeStartTime": 0,
            "maxCmdExeTime": 10,
            "cmdExecution": 0,
            "onLine": True,
            "byPass": False,
            "remote": True,
            "busy": st.ramping,
            "triggerArmed": False,
            "rampOn": st.ramping,
            "currentPreSetting": st.set_point_a,
            "statusSetting": 2,
            "polaritySetting": st.polarity,
            "currentSetting": setting,
            "slewRateSetting": st.slew_rate_a_per_s,
            "cycleMode": 0,
            "outputPolarity": st.polarity,
            "outputCurr": out,
            "slewRateReadout": st.slew_rate_a_per_s if st.ramping else 0.0,
            "outputVolt": 0.05 * out if math.isfinite(out) else math.nan,
            "faults": list(st.faults),
        }

    def _apply_commands(self) -> None:
        keys = [self.key(e + "_CMD") for e in self._states]
        try:
            docs = self._client.get_many(keys)
        except (OSError, MemcacheError) as exc:
            self.publish_errors += 1
            log.debug("PSU simulator: command poll failed: %s", exc)
            self._client.close()
            return
        for e in self._states:
            raw = docs.get(self.key(e + "_CMD"))
            if raw is None:
                continue
            try:
                cmd = json.loads(raw)
                cmd_id, value = str(cmd["id"]), float(cmd["current_a"])
            except (ValueError, KeyError, TypeError):
                log.warning("PSU simulator: unreadable command for %s: %r", e, raw[:80])
                continue
            if self._last_cmd.get(e) == cmd_id or cmd.get("command") != "set_current":
                continue
            self._last_cmd[e] = cmd_id
            try:
                self.set_current(e, value)
            except ValueError as exc:
                log.warning("PSU simulator: command %s refused: %s", cmd_id, exc)
                with self._lock:
                    self._states[e].commands_refused += 1
                continue
            with self._lock:
                self._states[e].commands_applied += 1

    def step(self, dt_s: float) -> bool:
        """Advance the model by ``dt_s`` and publish once (the thread calls this); False if
        memcached could not be written (logged, counted in ``publish_errors``)."""
        self._apply_commands()
        to_set: dict[str, bytes] = {}
        to_delete: list[str] = []
        with self._lock:
            for e, st in self._states.items():
                if st.status == 2:
                    delta = st.set_point_a - st.output_current_a
                    max_step = st.slew_rate_a_per_s * dt_s
                    st.output_current_a += max(-max_step, min(max_step, delta))
                faults = self._faults.get(e, set())
                if Fault.STALE in faults:
                    continue
                if Fault.MISSING in faults:
                    to_delete.append(self.key(e + "_DYN"))
                    continue
                raw = encode(self._record(st, faults), self.layout)
                to_set[self.key(e + "_DYN")] = (
                    raw[: len(raw) // 2] if Fault.CORRUPT in faults else raw
                )
            for name, doc, key in (
                ("DAFNESTATELAB", self.machine_lab, MACHINE_LAB_KEY),
                ("DAFNESTATE", self.machine_state, MACHINE_STATE_KEY),
            ):
                faults = self._faults.get(name, set())
                if Fault.STALE in faults:
                    continue
                if Fault.MISSING in faults:
                    to_delete.append(self.key(key))
                    continue
                body = dict(doc, sim_tick=self.ticks)  # changes every tick: liveness
                text = json.dumps(body).encode()
                to_set[self.key(key)] = text[:-3] if Fault.CORRUPT in faults else text
        try:
            if to_set:
                self._client.set_many(to_set, noreply=False)
            if to_delete:
                self._client.delete_many(to_delete, noreply=False)
        except (OSError, MemcacheError) as exc:
            self.publish_errors += 1
            log.warning("PSU simulator: publish to %s:%d failed: %s", self.host, self.port, exc)
            self._client.close()
            self.ticks += 1
            return False
        self.ticks += 1
        return True

    def _run(self) -> None:
        period = 1.0 / self.update_hz
        while not self._stop.is_set():
            now = time.monotonic()
            self.step(now - self._last_tick)
            self._last_tick = now
            self._stop.wait(max(0.0, period - (time.monotonic() - now)))

    def start(self) -> None:
        """Publish once synchronously (keys exist on return), then start the thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._last_tick = time.monotonic()
        if not self.step(0.0):
            self._client.close()
            raise ConnectionFailed(
                f"PSU simulator: cannot publish to memcached {self.host}:{self.port}",
                device="memcached",
            )
        self._thread = threading.Thread(target=self._run, name="psu-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._client.close()

    def __enter__(self) -> PsuSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
