"""RunControl framing and dialogues against the simulated RunControl server."""

from __future__ import annotations

import re
import socket
import time

import pytest
from fixtures import hw as hw_fixtures
from fixtures.net import free_port

from hw_interfaces.errors import (
    ConnectionFailed,
    DeviceTimeout,
    ProtocolError,
    RunInitFailed,
    RunInitTimeout,
    RunTerminateError,
)
from hw_interfaces.runcontrol import RunControlClient, encode_frame, read_frame
from hw_interfaces.sim import Fault, RunControlSimulator

pytestmark = pytest.mark.timeout(60)
runcontrol_sim = hw_fixtures.runcontrol_sim  # fixture
SOR_TAG = "scanplan period=12 pass=1 E=282.27MeV plan=abc123"


def client(sim, **kw) -> RunControlClient:
    return RunControlClient("127.0.0.1", sim.port, timeout_s=kw.pop("timeout_s", 2.0), **kw)


def test_frame_codec():
    assert encode_frame("new_run") == b"00007new_run"
    assert encode_frame("") == b"00000"
    assert encode_frame("é") == b"00002\xc3\xa9"  # length in bytes
    with pytest.raises(ValueError, match="exceeds"):
        encode_frame("x" * 100000)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(encode_frame("run_number 50284") + encode_frame("shift_crew"))
        assert read_frame(b) == "run_number 50284"
        assert read_frame(b) == "shift_crew"
        a.sendall(b"12a45hello")
        with pytest.raises(ProtocolError, match="broken frame header"):
            read_frame(b)
    c, d = socket.socketpair()
    with c, d:
        c.sendall(b"00010abc")
        c.close()
        with pytest.raises(ConnectionFailed, match="3 of 10"):
            read_frame(d)


def test_full_run_dialogue(runcontrol_sim):
    with client(runcontrol_sim) as rc:
        res = rc.new_run("DAQ", "Alice, Bob", SOR_TAG)
        assert res.run_number == 50284
        assert res.setup == "PADME_SIM"
        assert "DAQ" in res.run_types and "TESTBEAM" in res.run_types
        assert len(res.progress) == runcontrol_sim.progress_steps
        rc.start_run()
        stop = rc.stop_run("end of point 12")
        assert len(stop.progress) == runcontrol_sim.progress_steps
        res2 = rc.new_run("TEST", "Alice", "second")
        rc.start_run()
        rc.stop_run("done")
    assert res2.run_number == 50285
    runs = runcontrol_sim.runs
    assert [r.number for r in runs] == [50284, 50285]  # no lost, no duplicated run
    r = runs[0]
    assert re.fullmatch(r"run_0050284_\d{8}_\d{6}", r.name)
    assert (r.run_type, r.shift_crew, r.comment_start, r.comment_end) == (
        "DAQ",
        "Alice, Bob",
        SOR_TAG,
        "end of point 12",
    )
    assert r.status == "END_OK" and r.time_start_utc and r.time_stop_utc


def test_init_fail(runcontrol_sim):
    runcontrol_sim.inject(Fault.INIT_FAIL)
    with client(runcontrol_sim) as rc, pytest.raises(RunInitFailed, match="run 50284 init_fail"):
        rc.new_run("DAQ", "crew", "c")
    assert runcontrol_sim.runs[-1].status == "INIT_ERROR"


def test_init_timeout(runcontrol_sim):
    runcontrol_sim.inject("init_timeout")
    with client(runcontrol_sim) as rc, pytest.raises(RunInitTimeout, match="init_timeout"):
        rc.new_run("DAQ", "crew", "c")
    assert runcontrol_sim.runs[-1].status == "INIT_ERROR"


def test_terminate_error(runcontrol_sim):
    with client(runcontrol_sim) as rc:
        rc.new_run("DAQ", "crew", "c")
        rc.start_run()
        runcontrol_sim.inject(Fault.TERMINATE_ERROR)
        with pytest.raises(RunTerminateError):
            rc.stop_run("end")
    assert runcontrol_sim.runs[-1].status == "END_ERROR"


def test_unknown_run_type_creates_no_run(runcontrol_sim):
    with client(runcontrol_sim) as rc, pytest.raises(ProtocolError, match="not offered"):
        rc.new_run("PHYSICS", "crew", "c")
    time.sleep(0.1)
    assert runcontrol_sim.runs == []


def test_start_without_init_is_a_protocol_error(runcontrol_sim):
    with client(runcontrol_sim) as rc, pytest.raises(ProtocolError, match="run_started"):
        rc.start_run()


def test_broken_frame(runcontrol_sim):
    runcontrol_sim.inject(Fault.BROKEN_FRAME)
    with client(runcontrol_sim) as rc, pytest.raises(ProtocolError, match="broken frame"):
        rc.new_run("DAQ", "crew", "c")


def test_hung_server_times_out(runcontrol_sim):
    runcontrol_sim.inject(Fault.HANG)
    t0 = time.monotonic()
    with client(runcontrol_sim, timeout_s=0.3) as rc, pytest.raises(DeviceTimeout, match="new_run"):
        rc.new_run("DAQ", "crew", "c")
    assert time.monotonic() - t0 < 2.0


def test_dead_server(runcontrol_sim):
    port = runcontrol_sim.port
    runcontrol_sim.inject(Fault.DEAD)
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        RunControlClient("127.0.0.1", port, timeout_s=0.5).connect()
    with pytest.raises(ConnectionFailed):
        with RunControlClient("127.0.0.1", free_port(), timeout_s=0.5) as rc:
            rc.start_run()


def test_server_dying_mid_dialogue(runcontrol_sim):
    runcontrol_sim.inject(Fault.HANG)
    with client(runcontrol_sim, timeout_s=3.0) as rc:
        rc.send("new_run")
        runcontrol_sim.stop()
        with pytest.raises(ConnectionFailed, match=r"(closed|reset) by peer"):
            rc.receive("new_run")


def test_simulator_stamps_runs_with_its_clock():
    from hw_interfaces.clock import ManualClock

    clock = ManualClock()
    with RunControlSimulator(clock=clock, step_delay_s=0.0) as sim:
        with RunControlClient("127.0.0.1", sim.port, timeout_s=5.0) as rc:
            res = rc.new_run("TEST", "crew", "c")
            clock.advance(3600)
            rc.start_run()
    rec = sim.runs[-1]
    # name and stamps follow the injected clock (ManualClock starts 2022-10-14T18:30:12Z)
    assert rec.number == res.run_number
    assert rec.name == f"run_{res.run_number:07d}_20221014_183012"
    assert rec.time_create_utc == "2022-10-14T18:30:12+00:00"
    assert rec.time_start_utc == "2022-10-14T19:30:12+00:00"
