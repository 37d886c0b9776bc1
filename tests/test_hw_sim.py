"""The facility simulator as a whole: clean start/stop, fault routing, beam follows magnets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fixtures import hw as hw_fixtures
from fixtures.hw import unique_prefix
from fixtures.net import free_port

from hw_interfaces.btf_controls import BtfControls, PsuState
from hw_interfaces.errors import BadRequest, ConnectionFailed, MissingKey
from hw_interfaces.runcontrol import RunControlClient
from hw_interfaces.sim import (
    FacilitySimulator,
    Fault,
    MemcachedProcess,
    PsuSimulator,
    SimControlClient,
    SimControlServer,
)
from hw_interfaces.timepix import ServalBeamMonitor, ServalClient

pytestmark = pytest.mark.timeout(60)
facility = hw_fixtures.facility  # fixture


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def test_start_stop_leaves_no_threads_or_listeners(memcached_server):
    before = threading.active_count()
    sim = FacilitySimulator(
        memcached_server.host, memcached_server.port, key_prefix=unique_prefix()
    )
    with sim:
        http_port, rc_port = sim.serval.port, sim.runcontrol_port
        assert threading.active_count() >= before + 4  # psu, http, frames, runcontrol
        with RunControlClient("127.0.0.1", rc_port, timeout_s=2) as rc:  # an open connection too
            rc.new_run("TEST", "crew", "c")
    assert threading.active_count() == before
    assert refused(http_port) and refused(rc_port)
    sim.stop()  # idempotent


def test_beam_follows_the_simulated_magnet(facility):
    btf = BtfControls(*facility.memcached_address.split(":"), key_prefix=facility.psu.key_prefix)
    monitor = ServalBeamMonitor(ServalClient(facility.timepix_url), n_frames=8)
    with btf:
        assert btf.read_power_supply("DHSTB002").current_setting_a == pytest.approx(178.0)
        x0 = monitor.read_beam_spot().x_mm
        assert x0 == pytest.approx(0.0, abs=0.2)
        facility.psu.configure("DHSTB002", slew_rate_a_per_s=50.0)
        facility.psu.set_current("DHSTB002", 181.0)
        deadline = time.monotonic() + 5
        while btf.read_power_supply("DHSTB002").ramp_on or (
            abs(btf.read_power_supply("DHSTB002").output_current_a - 181.0) > 0.05
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        spot = monitor.read_beam_spot()
    assert spot.x_mm == pytest.approx(3.0, abs=0.2)
    assert facility.psu_states()["DHSTB002"].output_current_a == pytest.approx(181.0)


def test_fault_routing_and_listing(facility):
    facility.inject("trip", "dhstb001")
    facility.inject(Fault.DROP_FRAMES, "TimePix")
    facility.inject(Fault.INIT_FAIL, "runcontrol")
    facility.inject(Fault.MISSING, "DAFNESTATE")
    assert facility.faults() == {
        "DHSTB001": ["trip"],
        "DAFNESTATE": ["missing"],
        "timepix": ["drop_frames"],
        "runcontrol": ["init_fail"],
    }
    with BtfControls(
        *facility.memcached_address.split(":"), key_prefix=facility.psu.key_prefix
    ) as b:
        time.sleep(0.2)  # published within one update period (20 Hz here)
        assert b.read_power_supply("DHSTB001").status is PsuState.INTERLOCK_FAULT
        with pytest.raises(MissingKey, match="DAFNESTATE_JDAT"):
            b.read_machine_state()
    facility.clear(target="timepix")
    assert "timepix" not in facility.faults()
    facility.clear()
    assert facility.faults() == {}


@pytest.mark.parametrize(
    ("fault", "target", "fragment"),
    [
        ("meltdown", "DHSTB001", "unknown fault"),
        ("trip", "DHSTB009", "unknown fault target"),
        ("init_fail", "timepix", "does not apply"),
        ("drop_frames", "DHSTB001", "does not apply"),
    ],
)
def test_bad_fault_requests_are_rejected(facility, fault, target, fragment):
    with pytest.raises(ValueError, match=fragment):
        facility.inject(fault, target)


def test_dead_servers(facility):
    url, rc_port = facility.timepix_url, facility.runcontrol_port
    facility.inject(Fault.DEAD, "timepix")
    facility.inject(Fault.DEAD, "runcontrol")
    t0 = time.monotonic()
    with pytest.raises(ConnectionFailed, match="TimePix"):
        ServalClient(url, timeout_s=0.3, retries=1).dashboard()
    with pytest.raises(ConnectionFailed, match="RunControl"):
        RunControlClient("127.0.0.1", rc_port, timeout_s=0.3).connect()
    assert time.monotonic() - t0 < 2.0
    assert facility.faults() == {"timepix": ["dead"], "runcontrol": ["dead"]}
    facility.revive("timepix")
    facility.revive("runcontrol")
    assert facility.timepix_url == url and facility.runcontrol_port == rc_port
    assert ServalClient(url, timeout_s=1.0).measurement_status() == "DA_RECORDING"
    with RunControlClient("127.0.0.1", rc_port, timeout_s=2.0) as rc:
        assert rc.new_run("TEST", "crew", "after revive").run_number == 50284
    assert facility.faults() == {}
    with pytest.raises(ValueError, match="revived"):
        facility.revive("DHSTB001")


def test_psu_simulator_refuses_to_start_without_memcached():
    sim = PsuSimulator("127.0.0.1", free_port())
    with pytest.raises(ConnectionFailed, match="cannot publish"):
        sim.start()


def test_set_point_validation(facility):
    with pytest.raises(ValueError, match="no power supply"):
        facility.psu.set_current("DHSTB009", 1.0)
    with pytest.raises(ValueError, match="finite"):
        facility.psu.set_current("DHSTB001", float("nan"))
    with pytest.raises(ValueError, match="unknown simulator parameter"):
        facility.psu.configure("DHSTB001", colour="red")


def test_memcached_process_helper():
    with MemcachedProcess() as mc:
        port = mc.port
        with FacilitySimulator(mc.host, mc.port, seed=0) as sim, BtfControls(mc.host, mc.port) as b:
            assert b.read_power_supply("QUATB001").element == "QUATB001"
            assert sim.psu.ticks >= 1
    assert refused(port)


def test_control_channel_injects_faults_from_another_client(facility):
    with SimControlServer(facility) as ctl:
        client = SimControlClient(ctl.url, timeout_s=2.0)
        assert client.inject("trip", "DHSTB001")["faults"] == {"DHSTB001": ["trip"]}
        assert client.faults() == {"DHSTB001": ["trip"]}
        client.set_current("QUATB001", 21.5)
        assert facility.psu_states()["QUATB001"].set_point_a == 21.5
        st = client.status()
        assert st["supplies"]["DHSTB001"]["status"] == 3 and st["timepix_url"]
        assert client.clear()["faults"] == {}
        with pytest.raises(BadRequest, match="unknown fault"):
            client.inject("meltdown", "DHSTB001")
        with pytest.raises(BadRequest, match="missing"):
            client._call("/inject", {"fault": "trip"})
        url = ctl.url
    with pytest.raises(ConnectionFailed, match="simulator control"):
        SimControlClient(url, timeout_s=0.5).faults()


def test_wait_until_polls_on_the_injected_clock():
    from hw_interfaces.clock import ManualClock
    from hw_interfaces.polling import wait_until

    clock = ManualClock()
    calls = []

    def third_call_true() -> bool:
        calls.append(clock.monotonic())
        return len(calls) >= 3

    assert wait_until(third_call_true, timeout_s=1.0, interval_s=0.1, clock=clock)
    # asked at t = 0, 0.1, 0.2 s: true at the third poll, no sleep after it
    assert calls == pytest.approx([0.0, 0.1, 0.2])
    assert clock.monotonic() == pytest.approx(0.2)

    start = clock.monotonic()
    assert not wait_until(lambda: False, timeout_s=0.35, interval_s=0.1, clock=clock)
    # gives up at the deadline, not an interval later
    assert clock.monotonic() - start == pytest.approx(0.35)
    with pytest.raises(ValueError):
        wait_until(lambda: True, timeout_s=1.0, interval_s=0.0, clock=clock)
