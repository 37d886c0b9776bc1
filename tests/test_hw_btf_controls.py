"""BtfControls against the PSU simulator publishing into a real memcached: decoding, ramps,
faults (trip, communication error, NaN, stale, missing, corrupt, dead/silent server), writes."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fixtures import hw as hw_fixtures
from fixtures.net import free_port

from hw_interfaces.btf_controls import (
    BeamMode,
    BtfControls,
    BtfStatus,
    PsuState,
    parse_hostport,
)
from hw_interfaces.clock import ManualClock, SystemClock
from hw_interfaces.errors import (
    BadRequest,
    ConnectionFailed,
    DecodeError,
    DeviceTimeout,
    HardwareError,
    InvalidValue,
    MissingKey,
    StaleReading,
    WriteNotConfirmed,
    WriteNotEnabled,
)
from hw_interfaces.protocols import (
    MachineStateSource,
    PowerSupplySource,
    SharedLivenessWait,
)
from hw_interfaces.sim import Fault

pytestmark = pytest.mark.timeout(60)
btf = hw_fixtures.btf  # fixture
psu_sim = hw_fixtures.psu_sim  # fixture


def wait_for(predicate, timeout_s: float = 5.0, interval_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except HardwareError:  # a record still in its previous state
            value = None
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def wait_for_error(call, error: type[Exception], timeout_s: float = 5.0):
    """The ``error`` that ``call()`` raises once an injected fault has taken effect."""

    def raised():
        try:
            call()
        except error as exc:
            return exc
        return None

    return wait_for(raised, timeout_s)


def test_implements_the_source_protocols(btf):
    assert isinstance(btf, PowerSupplySource)
    assert isinstance(btf, MachineStateSource)


def test_reads_every_simulated_supply(btf, psu_sim):
    states = psu_sim.states()
    for element, st in states.items():
        r = btf.read_power_supply(element.lower())
        assert r.element == element
        assert r.status is PsuState.OPERATIONAL and r.ok
        assert r.current_setting_a == pytest.approx(st.set_point_a)
        assert r.output_current_a == pytest.approx(st.set_point_a, abs=10 * st.noise_a)
        assert r.faults == (0, 0, 0, 0)
        assert r.source.endswith(f"{psu_sim.key_prefix}{element}_DYN")
        assert r.time_utc.tzinfo is not None
        d = r.as_dict()
        assert d["status"] == "OPERATIONAL" and json.dumps(d)


def test_set_point_ramps_at_the_slew_rate(btf, psu_sim):
    psu_sim.configure("DHSTB001", slew_rate_a_per_s=20.0)
    start = btf.read_power_supply("DHSTB001").output_current_a
    target = start - 10.0
    psu_sim.set_current("DHSTB001", target)
    r = wait_for(lambda: (x := btf.read_power_supply("DHSTB001")).ramp_on and x)
    assert r.current_setting_a == pytest.approx(target)
    assert r.busy and r.slew_rate_setting_a_per_s == pytest.approx(20.0)
    # the output passes through intermediate values (a ramp, not a step) to the target
    outputs = [r.output_current_a]
    wait_for(
        lambda: (
            outputs.append(btf.read_power_supply("DHSTB001").output_current_a) is None
            and abs(outputs[-1] - target) < 0.05
        )
    )
    assert any(target + 0.5 < x < start - 0.5 for x in outputs), outputs
    assert psu_sim.states()["DHSTB001"].branch == "down"


def test_hysteresis_offset_depends_on_branch(btf, psu_sim):
    psu_sim.configure("QUATB001", noise_a=0.0, hysteresis_offset_a={"up": 0.2, "down": -0.3})
    psu_sim.set_current("QUATB001", 21.0)  # up
    wait_for(lambda: btf.read_power_supply("QUATB001").output_current_a == pytest.approx(21.2))
    psu_sim.set_current("QUATB001", 20.0)  # down
    wait_for(lambda: btf.read_power_supply("QUATB001").output_current_a == pytest.approx(19.7))


def test_trip_is_an_interlock_state_then_standby_after_clear(btf, psu_sim):
    psu_sim.inject(Fault.TRIP, "DHSTB002")
    r = wait_for(
        lambda: (x := btf.read_power_supply("DHSTB002")).status is PsuState.INTERLOCK_FAULT and x
    )
    assert abs(r.output_current_a) < 0.1 and any(r.faults) and not r.ok
    psu_sim.clear(Fault.TRIP, "DHSTB002")
    r = wait_for(lambda: (x := btf.read_power_supply("DHSTB002")).status is PsuState.STANDBY and x)
    assert not any(r.faults)


def test_communication_error_is_an_explicit_state(btf, psu_sim):
    psu_sim.inject("comm_error", "QUATB003")
    r = wait_for(
        lambda: (
            (x := btf.read_power_supply("QUATB003")).status is PsuState.COMMUNICATION_ERROR and x
        )
    )
    assert r.status_code == 4 and not r.ok


def test_nan_values_raise_invalid_value_naming_element_and_field(btf, psu_sim):
    psu_sim.inject(Fault.NAN, "QUATB002")

    exc = wait_for_error(lambda: btf.read_power_supply("QUATB002"), InvalidValue)
    assert "QUATB002" in str(exc) and "QUATB002_DYN" in str(exc)
    assert "currentSetting" in str(exc) or "outputCurr" in str(exc)
    psu_sim.clear()
    wait_for(lambda: math.isfinite(btf.read_power_supply("QUATB002").output_current_a))


def test_frozen_record_becomes_stale(btf, psu_sim):
    assert btf.read_power_supply("DHSTB001", wait_change_s=1.0).age_s < 0.5
    psu_sim.inject(Fault.STALE, "DHSTB001")
    ages: list[float] = []
    with pytest.raises(StaleReading, match="DHSTB001_DYN") as exc:
        for _ in range(200):  # bounded: 200 polls of 50 ms, far beyond max_age_s 1 s
            ages.append(btf.read_power_supply("DHSTB001").age_s)
            time.sleep(0.05)
    # served while younger than max_age_s, refused once older (the client's own clock)
    assert ages and max(ages) <= btf.max_age_s
    age = float(str(exc.value).split("unchanged for ")[1].split(" s")[0])
    assert age >= btf.max_age_s  # (the message rounds to 0.1 s)
    assert exc.value.device == "DHSTB001"
    # a fresh client proves staleness on its first read by waiting for a change
    with BtfControls(btf.host, btf.port, key_prefix=btf.key_prefix) as other:
        with pytest.raises(StaleReading, match="did not change"):
            other.read_power_supply("DHSTB001", wait_change_s=0.4)
    psu_sim.clear(Fault.STALE)
    wait_for(lambda: btf.read_power_supply("DHSTB001").age_s < 0.5)


def test_first_read_proves_liveness_and_frozen_invalid_record_says_why(btf, psu_sim):
    """``first_read_wait_s``: the first read of each record waits for its bytes to change; a
    record both frozen and invalid raises the invalid-value error, not StaleReading."""
    with BtfControls(
        btf.host, btf.port, key_prefix=btf.key_prefix, first_read_wait_s=0.4, max_age_s=1.0
    ) as fresh:
        assert fresh.read_power_supply("DHSTB002").age_s < 0.2  # proven by a change
        psu_sim.inject(Fault.NAN, "DHSTB002")
        wait_for_error(lambda: fresh.read_power_supply("DHSTB002"), InvalidValue)
        psu_sim.inject(Fault.STALE, "DHSTB002")

        def frozen_nan():
            fresh.reset_liveness()  # a fresh session must prove liveness again
            try:
                fresh.read_power_supply("DHSTB002")
            except InvalidValue as exc:
                return "record also frozen" in str(exc) and exc
            return None

        exc = wait_for(frozen_nan)
        assert "not a finite number" in str(exc) and exc.key.endswith("DHSTB002_DYN")
        psu_sim.clear()
        wait_for(lambda: fresh.read_power_supply("DHSTB002").ok)
        psu_sim.inject(Fault.CORRUPT, "DHSTB001")
        wait_for_error(lambda: fresh.read_power_supply("DHSTB001"), DecodeError)
        psu_sim.inject(Fault.STALE, "DHSTB001")

        def frozen_corrupt():
            fresh.reset_liveness()
            try:
                fresh.read_power_supply("DHSTB001")
            except DecodeError as exc:
                return "record also frozen" in str(exc) and exc
            return None

        assert "DHSTB001" in str(wait_for(frozen_corrupt))


class SleepCountingClock(SystemClock):
    """The system clock, counting the time slept through it."""

    def __init__(self) -> None:
        self.slept_s = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept_s += seconds
        super().sleep(seconds)


def test_one_shared_wait_proves_several_publishers(btf, psu_sim):
    """``await_publishers``: the first reads of several supplies share one wait; a frozen
    record then reads as stale and a missing one as missing, neither waiting again."""
    clock = SleepCountingClock()
    psu_sim.inject(Fault.STALE, "QUATB002")
    psu_sim.inject(Fault.MISSING, "QUATB004")
    elements = ["DHSTB001", "DHSTB002", "QUATB001", "QUATB002", "QUATB003", "QUATB004"]
    with BtfControls(
        btf.host, btf.port, key_prefix=btf.key_prefix, first_read_wait_s=1.0, clock=clock
    ) as fresh:
        assert isinstance(fresh, SharedLivenessWait)
        wait_for(lambda: _missing(fresh, "QUATB004"))  # the fault has been published
        fresh.reset_liveness()
        clock.slept_s = 0.0
        fresh.await_publishers(elements)
        # the frozen record holds the wait to its end: one wait of first_read_wait_s in all
        assert 1.0 <= clock.slept_s < 1.2
        clock.slept_s = 0.0
        for element in ("DHSTB001", "DHSTB002", "QUATB001", "QUATB003"):
            assert fresh.read_power_supply(element).element == element
        with pytest.raises(StaleReading, match=r"QUATB002_DYN.*did not change within 1 s"):
            fresh.read_power_supply("QUATB002")
        with pytest.raises(MissingKey, match="QUATB004_DYN"):
            fresh.read_power_supply("QUATB004")
        assert clock.slept_s == 0.0  # none of the reads waited again
        psu_sim.clear()
        fresh.await_publishers(["QUATB002"])  # live again: proven within a few periods
        assert fresh.read_power_supply("QUATB002").element == "QUATB002"
        assert clock.slept_s < 0.5


def _missing(client: BtfControls, element: str) -> bool:
    try:
        client.read_power_supply(element, wait_change_s=0.0)
    except MissingKey:
        return True
    except HardwareError:
        return False
    return False


def test_missing_key_names_the_key(btf, psu_sim):
    psu_sim.inject(Fault.MISSING, "QUATB004")

    exc = wait_for_error(lambda: btf.read_power_supply("QUATB004"), MissingKey)
    assert f"{psu_sim.key_prefix}QUATB004_DYN" in str(exc)
    with pytest.raises(MissingKey, match="DHPTB101_DYN"):
        btf.read_power_supply("DHPTB101")  # not simulated


def test_corrupt_record_is_a_decode_error(btf, psu_sim):
    psu_sim.inject(Fault.CORRUPT, "DHSTB001")

    exc = wait_for_error(lambda: btf.read_power_supply("DHSTB001"), DecodeError)
    assert "DHSTB001" in str(exc) and "truncated" in str(exc)


def test_machine_state(btf, psu_sim):
    m = btf.read_machine_state()
    assert m.btf_status is BtfStatus.ON
    assert m.mode is BeamMode.POSITRON
    assert m.linac_freq_hz == 49.0
    assert m.dafne_status == 0
    assert json.dumps(m.as_dict())


@pytest.mark.parametrize(
    ("target", "fault", "error", "fragment"),
    [
        ("DAFNESTATE", Fault.MISSING, MissingKey, "DAFNESTATE_JDAT"),
        ("DAFNESTATELAB", Fault.CORRUPT, DecodeError, "DAFNESTATELAB_JDAT"),
        ("DAFNESTATELAB", Fault.STALE, StaleReading, "DAFNESTATELAB_JDAT"),
    ],
)
def test_machine_state_faults(btf, psu_sim, target, fault, error, fragment):
    psu_sim.inject(fault, target)

    exc = wait_for_error(btf.read_machine_state, error, timeout_s=4.0)
    assert fragment in str(exc)


def test_dead_server_fails_fast_with_a_clear_error():
    port = free_port()  # nothing listens here
    clock = ManualClock()
    with BtfControls("127.0.0.1", port, connect_timeout_s=0.3, retries=2, clock=clock) as c:
        with pytest.raises(ConnectionFailed) as exc:
            c.read_power_supply("DHSTB001")
    # bounded: 3 attempts with backoffs of 1 and 2 x retry_backoff_s in between, no more
    assert clock.monotonic() == pytest.approx(3 * c.retry_backoff_s)
    assert f"127.0.0.1:{port}" in str(exc.value) and "DHSTB001_DYN" in str(exc.value)
    assert "3 attempts" in str(exc.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and never answers (a hung memcached)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(timeout=5)
        for c in conns:
            c.close()
        srv.close()


def test_silent_server_times_out(silent_server):
    with BtfControls("127.0.0.1", silent_server, read_timeout_s=0.2, retries=1) as c:
        with pytest.raises(DeviceTimeout, match="DHSTB002_DYN") as exc:
            c.read_power_supply("DHSTB002")
        assert "within 0.2 s (2 attempts)" in str(exc.value)  # bounded by the read timeout
        with pytest.raises(DeviceTimeout, match="DAFNESTATELAB_JDAT"):
            c.read_machine_state()


def test_writes_are_refused_unless_enabled_and_confirmed(btf, psu_sim, tmp_path):
    audit = tmp_path / "audit.jsonl"
    ro = BtfControls(btf.host, btf.port, key_prefix=btf.key_prefix, audit_path=audit)
    asked: list[str] = []
    with ro, pytest.raises(WriteNotEnabled, match="DHSTB001"):
        ro.write_current_setting("DHSTB001", 170.0, confirm=lambda p: asked.append(p) or True)
    assert asked == []  # never even asks
    rw = BtfControls(
        btf.host,
        btf.port,
        key_prefix=btf.key_prefix,
        writes_enabled=True,
        audit_path=audit,
        current_limits_a=(0.0, 200.0),
    )
    with rw:
        with pytest.raises(WriteNotConfirmed):
            rw.write_current_setting("DHSTB001", 170.0, confirm=lambda p: False)
        with pytest.raises(InvalidValue, match="outside limits"):
            rw.write_current_setting("DHSTB001", 250.0, confirm=lambda p: True)
        with pytest.raises(InvalidValue, match="not finite"):
            rw.write_current_setting("DHSTB001", math.nan, confirm=lambda p: True)
        assert psu_sim.states()["DHSTB001"].commands_applied == 0
        cmd_id = rw.write_current_setting(
            "DHSTB001", 170.0, confirm=lambda p: asked.append(p) or True
        )
    assert "DHSTB001" in asked[0] and "170.000 A" in asked[0]
    wait_for(lambda: psu_sim.states()["DHSTB001"].set_point_a == 170.0)
    time.sleep(0.3)  # several more ticks: the same command must not be applied twice
    assert psu_sim.states()["DHSTB001"].commands_applied == 1
    assert btf.read_power_supply("DHSTB001").current_setting_a == 170.0
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [e["outcome"] for e in lines] == ["refused"] * 4 + ["written"]
    assert lines[-1]["id"] == cmd_id and lines[-1]["element"] == "DHSTB001"
    assert all(e["time_utc"] and e["key"].endswith("DHSTB001_CMD") for e in lines)


@pytest.mark.parametrize("element", ["", "DH STB001", "DHSTB001\r\nflush_all", "1ABC"])
def test_bad_element_names_are_refused_before_any_call(btf, element):
    with pytest.raises(BadRequest, match="not an element name"):
        btf.read_power_supply(element)


def test_illegal_key_prefix_is_a_bad_request(memcached_server):
    with BtfControls(memcached_server.host, memcached_server.port, key_prefix="a b ") as c:
        with pytest.raises(BadRequest, match="illegal"):
            c.read_power_supply("DHSTB001")


def test_errors_share_one_base_class():
    for exc in (ConnectionFailed, DeviceTimeout, MissingKey, DecodeError, StaleReading):
        assert issubclass(exc, HardwareError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:11211", ("127.0.0.1", 11211)), ("localhost", ("localhost", 11211))],
)
def test_parse_hostport(text, expected):
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", [":11211", "host:abc", "host:0", "host:70000"])
def test_parse_hostport_rejects(text):
    with pytest.raises(ValueError):
        parse_hostport(text)
