"""BTF controls adapter: power-supply records and machine state read from memcached.

The DAFNE/BTF control system publishes device state in memcached (facts file section 7):
``<ELEMENT>_DYN`` holds the power-supply dynamic record (LabVIEW cluster, layout in
``layouts/mg1_dyn.toml``), ``DAFNESTATELAB_JDAT`` / ``DAFNESTATE_JDAT`` hold machine state as JSON.

Staleness. The records carry no timestamp, so :class:`BtfControls` remembers, per key, the
raw bytes it last saw and when they last *changed* (monotonic clock of this process).
``age_s`` is the time since that change as observed by this client (a lower bound right after
the first read). A record unchanged for longer than ``max_age_s`` raises :class:`StaleReading`;
a client built with ``first_read_wait_s=T`` proves freshness on the first read of each record
(and again after it was missing, unreachable or stale) by polling up to T seconds until the
bytes change (live readbacks carry ADC noise, so a live record changes at its update rate; a
frozen publisher does not); ``read_power_supply(..., wait_change_s=T)`` forces such a wait. A
frozen record whose bytes are also invalid raises DecodeError / InvalidValue ("record also
frozen") rather than StaleReading. Set ``max_age_s=None`` to disable the age check. Time
comes from an injected :class:`hw_interfaces.clock.Clock`.

Writes. Read-only by default. :meth:`BtfControls.write_current_setting` needs a client built
with ``writes_enabled=True`` *and* a ``confirm`` callback returning True; every attempt (refused
or not) is audited (:mod:`hw_interfaces.btf_setpoint`: the rules, the audit file and the JSON
command stored under ``<ELEMENT><command_suffix>``, default ``_CMD``). Adapt
``command_suffix`` / the payload when the real channel is known.

Records, names and enums are in :mod:`hw_interfaces.btf_records` (re-exported here); the
protocols this class implements are in :mod:`hw_interfaces.protocols`.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError, MemcacheIllegalInputError

from .btf_records import (
    PSU_ELEMENTS,
    BeamMode,
    BtfStatus,
    MachineState,
    PowerSupplyReading,
    PsuState,
    check_currents,
    check_element,
)
from .btf_setpoint import append_audit, command_payload, refusal
from .clock import SYSTEM_CLOCK, Clock, iso_utc
from .errors import (
    BadRequest,
    ConnectionFailed,
    DecodeError,
    DeviceTimeout,
    HardwareError,
    MissingKey,
    StaleReading,
    WriteNotConfirmed,
)
from .labview import Layout, decode, load_layout
from .memcached_address import failure_reason, parse_hostport

__all__ = [
    "PSU_ELEMENTS",
    "BeamMode",
    "BtfControls",
    "BtfStatus",
    "MachineState",
    "PowerSupplyReading",
    "PsuState",
    "check_element",
    "parse_hostport",
]

log = logging.getLogger(__name__)

DYN_SUFFIX = "_DYN"
MACHINE_LAB_KEY = "DAFNESTATELAB_JDAT"
MACHINE_STATE_KEY = "DAFNESTATE_JDAT"

# Defaults (named, overridable per client).
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 1.0
RETRIES = 2
RETRY_BACKOFF_S = 0.1
MAX_AGE_S = 5.0
POLL_INTERVAL_S = 0.05


class BtfControls:
    """Read-only (by default) client of the BTF memcached device state.

    Implements :class:`PowerSupplySource` and :class:`MachineStateSource`. Every call is
    bounded: ``connect_timeout_s`` + ``read_timeout_s`` per attempt, ``retries`` extra
    attempts on connection errors/timeouts, ``retry_backoff_s`` between them.
    ``key_prefix`` namespaces the keys (tests, several simulators on one memcached); the
    real BTF uses none.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11211,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retries: int = RETRIES,
        retry_backoff_s: float = RETRY_BACKOFF_S,
        max_age_s: float | None = MAX_AGE_S,
        key_prefix: str = "",
        layout: Layout | None = None,
        writes_enabled: bool = False,
        audit_path: str | Path | None = None,
        command_suffix: str = "_CMD",
        current_limits_a: tuple[float, float] | None = None,
        first_read_wait_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.host, self.port = host, int(port)
        self.read_timeout_s = read_timeout_s
        self.retries = max(0, int(retries))
        self.retry_backoff_s = retry_backoff_s
        self.max_age_s = max_age_s
        self.key_prefix = key_prefix
        self.layout = layout or load_layout("mg1_dyn")
        self.writes_enabled = writes_enabled
        self.audit_path = Path(audit_path) if audit_path else None
        self.command_suffix = command_suffix
        self.current_limits_a = current_limits_a
        self._client = Client(
            (self.host, self.port),
            connect_timeout=connect_timeout_s,
            timeout=read_timeout_s,
            no_delay=True,
        )
        self.first_read_wait_s = first_read_wait_s
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[bytes, float]] = {}
        self._live: set[str] = set()  # PSU records whose publisher was seen alive
        # PSU records a shared wait (await_publishers) saw unchanged: their next read is stale
        self._unchanged: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------
    @classmethod
    def from_address(
        cls, address: str, *, timeout_s: float = READ_TIMEOUT_S, retries: int = 1, **kwargs: Any
    ) -> BtfControls:
        """Client for ``HOST:PORT`` with one timeout [s] for connect and read.

        ValueError (saying what is wrong) for a bad address or a timeout that is not > 0;
        nothing is contacted yet. Other keyword arguments as for the constructor.
        """
        host, port = parse_hostport(address)
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout {timeout_s:g} s must be > 0")
        return cls(
            host,
            port,
            connect_timeout_s=timeout_s,
            read_timeout_s=timeout_s,
            retries=retries,
            **kwargs,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def key(self, name: str) -> str:
        return self.key_prefix + name

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def __enter__(self) -> BtfControls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, key: str, device: str, fn: Callable[[], Any]) -> Any:
        """Run one memcached operation with bounded retries; map errors to HardwareError."""
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.clock.sleep(self.retry_backoff_s * attempt)
            try:
                with self._lock:
                    return fn()
            except MemcacheIllegalInputError as exc:
                raise BadRequest(
                    f"{device}: illegal memcached {what} of '{key}': {exc}", device=device, key=key
                ) from None
            except TimeoutError as exc:
                last = exc
            except (OSError, MemcacheError) as exc:
                last = exc
            with self._lock:
                self._client.close()  # reconnect on the next attempt
        tries = self.retries + 1
        if isinstance(last, (socket.timeout, TimeoutError)):
            raise DeviceTimeout(
                f"{device}: memcached {self.address} did not answer {what} '{key}' within "
                f"{self.read_timeout_s:g} s ({tries} attempts)",
                device=device,
                key=key,
            )
        raise ConnectionFailed(
            f"{device}: memcached {self.address} unreachable for {what} '{key}' after "
            f"{tries} attempts: {failure_reason(last)}",
            device=device,
            key=key,
        )

    def get_raw(self, name: str, device: str = "") -> bytes:
        """Raw bytes of key ``name`` (prefix added); MissingKey if absent."""
        key = self.key(name)
        device = device or name
        value = self._call("get", key, device, lambda: self._client.get(key))
        if value is None:
            raise MissingKey(
                f"{device}: key '{key}' not found on memcached {self.address}",
                device=device,
                key=key,
            )
        return bytes(value)

    def _age(self, key: str, value: bytes) -> float:
        now = self.clock.monotonic()
        prev = self._seen.get(key)
        if prev is None or prev[0] != value:
            self._seen[key] = (value, now)
            return 0.0
        return now - prev[1]

    def _check_age(self, device: str, key: str, age_s: float) -> None:
        if self.max_age_s is not None and age_s > self.max_age_s:
            raise StaleReading(
                f"{device}: record '{key}' on memcached {self.address} unchanged for "
                f"{age_s:.1f} s (max_age_s {self.max_age_s:g}): publisher frozen or dead",
                device=device,
                key=key,
            )

    def _poll_changes(
        self, firsts: dict[str, tuple[str, str, bytes]], wait_s: float
    ) -> tuple[dict[str, bytes], dict[str, MissingKey]]:
        """Poll the records ``firsts`` (key -> name, device, first bytes) until each changed
        or went missing, or ``wait_s`` [s] passed: the new bytes of the changed (change time
        noted for the age), the errors of the missing; other read errors propagate."""
        pending = dict(firsts)
        changed: dict[str, bytes] = {}
        missing: dict[str, MissingKey] = {}
        deadline = self.clock.monotonic() + wait_s
        while pending and self.clock.monotonic() < deadline:
            self.clock.sleep(POLL_INTERVAL_S)
            for key, (name, device, first) in list(pending.items()):
                try:
                    value = self.get_raw(name, device)
                except MissingKey as exc:
                    missing[key] = exc
                    del pending[key]
                    continue
                if value != first:
                    self._age(key, value)
                    changed[key] = value
                    del pending[key]
        return changed, missing

    def _unchanged_error(self, name: str, device: str, wait_s: float) -> StaleReading:
        key = self.key(name)
        return StaleReading(
            f"{device}: record '{key}' on memcached {self.address} did not change within "
            f"{wait_s:g} s: publisher frozen or dead",
            device=device,
            key=key,
        )

    def await_publishers(self, elements: Iterable[str]) -> None:
        """Prove in one shared wait (at most ``first_read_wait_s``) that the records of the
        supplies ``elements`` not yet proven live are being published, so that the first
        reads of several supplies cost one publishing period instead of one each.

        A record seen changing is live (its next read does not wait); one that stays
        unchanged makes its next :meth:`read_power_supply` raise StaleReading without waiting
        again. A missing record is left to its read; an unreachable memcached ends the wait
        at once (the reads report it).
        """
        if self.first_read_wait_s is None:
            return
        pending: dict[str, tuple[str, str, bytes]] = {}
        try:
            for element in map(check_element, elements):
                name = element + DYN_SUFFIX
                key = self.key(name)
                if key in self._live or key in pending:
                    continue
                try:
                    first = self.get_raw(name, element)
                except MissingKey:
                    continue
                self._age(key, first)
                pending[key] = (name, element, first)
            changed, missing = self._poll_changes(pending, self.first_read_wait_s)
        except (ConnectionFailed, DeviceTimeout):
            return
        self._live.update(changed)
        self._unchanged.update(set(pending) - set(changed) - set(missing))

    # -- power supplies -----------------------------------------------------------------
    def read_power_supply(
        self, element: str, *, wait_change_s: float | None = None
    ) -> PowerSupplyReading:
        """Decode ``<ELEMENT>_DYN``.

        Liveness: the first read of a record by this client (and the first after it was
        missing, unreachable or stale) waits up to ``first_read_wait_s`` for the bytes to
        change, since the record carries no timestamp; ``wait_change_s`` forces such a wait.
        A frozen record that is also invalid raises the more telling DecodeError or
        InvalidValue (suffix "record also frozen") instead of StaleReading.

        Raises MissingKey, DecodeError (layout mismatch), InvalidValue (NaN/inf currents),
        StaleReading, ConnectionFailed or DeviceTimeout; each names element and key.
        """
        element = check_element(element)
        key = self.key(element + DYN_SUFFIX)
        wait = wait_change_s
        if wait is None and key not in self._live:
            wait = self.first_read_wait_s
        try:
            if key in self._unchanged:  # a shared wait already saw it frozen
                self._unchanged.discard(key)
                raise self._unchanged_error(element + DYN_SUFFIX, element, self.first_read_wait_s or 0.0)
            reading = self._read_psu(element, wait)
        except StaleReading:
            self._live.discard(key)
            self._diagnose_frozen(element, key)
            raise
        except (ConnectionFailed, DeviceTimeout, MissingKey):
            self._live.discard(key)  # liveness must be proven again
            raise
        self._live.add(key)
        return reading

    def reset_liveness(self) -> None:
        """Forget which publishers were seen alive (the next reads prove it again)."""
        self._live.clear()
        self._unchanged.clear()

    def _read_psu(self, element: str, wait_change_s: float | None) -> PowerSupplyReading:
        name = element + DYN_SUFFIX
        key = self.key(name)
        value = self.get_raw(name, element)
        if wait_change_s is not None:  # prove the publisher alive: wait for a change
            self._age(key, value)
            changed, missing = self._poll_changes({key: (name, element, value)}, wait_change_s)
            if key in missing:
                raise missing[key]
            if key not in changed:
                raise self._unchanged_error(name, element, wait_change_s)
            value = changed[key]
        age_s = self._age(key, value)
        rec = decode(value, self.layout, device=element, key=key)
        self._check_age(element, key, age_s)
        check_currents(element, key, rec)
        return PowerSupplyReading.from_record(
            element,
            rec,
            time_utc=self.clock.now(),
            age_s=age_s,
            source=f"memcached://{self.address}/{key}",
        )

    def _diagnose_frozen(self, element: str, key: str) -> None:
        """A frozen record may also be an invalid one (NaN, garbage): raise that instead, it
        says more to the crew. Returns if the frozen bytes decode to finite currents (the
        caller then raises the StaleReading)."""
        seen = self._seen.get(key)
        if seen is None:
            return
        try:
            rec = decode(seen[0], self.layout, device=element, key=key)
        except DecodeError as exc:
            raise DecodeError(f"{exc} (record also frozen)", device=element, key=key) from None
        check_currents(element, key, rec, "; record also frozen")

    # -- machine state ------------------------------------------------------------------
    def _read_json(self, name: str, device: str) -> tuple[dict[str, Any], float, str]:
        key = self.key(name)
        value = self.get_raw(name, device)
        age_s = self._age(key, value)
        try:
            doc = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(
                f"{device}: '{key}' is not valid JSON: {exc}", device=device, key=key
            ) from None
        if not isinstance(doc, dict):
            raise DecodeError(
                f"{device}: '{key}' holds {type(doc).__name__}, expected a JSON object",
                device=device,
                key=key,
            )
        self._check_age(device, key, age_s)
        return doc, age_s, key

    def read_machine_state(self) -> MachineState:
        """Machine state from both JSON keys (both required)."""
        lab, age_lab, key_lab = self._read_json(MACHINE_LAB_KEY, "DAFNE/BTF")
        state, age_state, key_state = self._read_json(MACHINE_STATE_KEY, "DAFNE")
        return MachineState.from_documents(
            lab,
            state,
            lab_key=key_lab,
            time_utc=self.clock.now(),
            age_s=max(age_lab, age_state),
            source=f"memcached://{self.address}/{key_lab},{key_state}",
        )

    # -- set-point write ----------------------------------------------------------------
    def write_current_setting(
        self, element: str, current_a: float, *, confirm: Callable[[str], bool]
    ) -> str:
        """Request a new current set point; returns the command id.

        Refused (WriteNotEnabled / WriteNotConfirmed / InvalidValue) unless the client was
        built with ``writes_enabled=True``, the value is finite and within
        ``current_limits_a``, and ``confirm(prompt)`` returns True. Every attempt is audited
        (:mod:`hw_interfaces.btf_setpoint`).
        """
        element = check_element(element)
        key = self.key(element + self.command_suffix)
        cmd_id = uuid.uuid4().hex
        entry: dict[str, Any] = {
            "time_utc": iso_utc(self.clock.now(), timespec="microseconds"),
            "id": cmd_id,
            "element": element,
            "key": key,
            "memcached": self.address,
            "current_a": current_a,
        }

        def fail(outcome: str, exc: HardwareError) -> HardwareError:
            entry.update(outcome=outcome, reason=str(exc))
            append_audit(self.audit_path, entry)
            return exc

        refused = refusal(
            element,
            key,
            current_a,
            writes_enabled=self.writes_enabled,
            current_limits_a=self.current_limits_a,
        )
        if refused is not None:
            raise fail("refused", refused)
        prompt = f"Set {element} current to {current_a:.3f} A via {key} on {self.address}?"
        if not confirm(prompt):
            raise fail(
                "refused",
                WriteNotConfirmed(
                    f"{element}: set-point write to '{key}' not confirmed", device=element, key=key
                ),
            )
        payload = command_payload(cmd_id, current_a, entry["time_utc"])
        try:
            ok = self._call(
                "set", key, element, lambda: self._client.set(key, payload, noreply=False)
            )
        except HardwareError as exc:
            raise fail("failed", exc) from None
        if not ok:
            raise fail(
                "failed",
                ConnectionFailed(
                    f"{element}: memcached {self.address} did not store '{key}'",
                    device=element,
                    key=key,
                ),
            )
        entry["outcome"] = "written"
        append_audit(self.audit_path, entry)
        return cmd_id
