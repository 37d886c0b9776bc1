"""``scanplan sim`` as the crew runs it: a subprocess serving memcached records, TimePix HTTP
and RunControl TCP on 127.0.0.1, with faults from the command line and a clean shutdown."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from cli_helpers import assert_user_error, run_cli

from hw_interfaces.btf_controls import BtfControls, PsuState, parse_hostport
from hw_interfaces.errors import RunInitFailed, StaleReading
from hw_interfaces.polling import wait_until
from hw_interfaces.runcontrol import RunControlClient
from hw_interfaces.timepix import ServalBeamMonitor, ServalClient

# facts 3: B[G] = 27.16 + 28.446 I[A]; 0.1 % DHSTB02 mismatch -> ~3.8 mm at the TimePix
B0_G, DB_DI_G_PER_A, TIMEPIX_MM_PER_PERMIL = 27.16, 28.446, 3.8
REF_X_MM = -0.46  # tolerances.toml [spot] reference_x_mm (2022 mean target centroid, facts 4)


def start_sim(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanplan.cli.main", "sim", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError("scanplan sim printed no address line within 60 s") from None
    assert line, proc.stderr.read()
    return proc, json.loads(line)


def stop_sim(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    return rc


def port_open(hostport: str) -> bool:
    host, port = parse_hostport(hostport)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_sim_serves_all_protocols_with_faults_and_stops_cleanly():
    i1, i2 = 184.0, 183.5
    proc, doc = start_sim(
        "--current",
        f"DHSTB001={i1}",
        "--current",
        f"DHSTB002={i2}",
        "--fault",
        "stale:QUATB001",
        "--fault",
        "dropped-frames",
        "--fault",
        "init-fail",
        "--hysteresis",
        "DHSTB002=0.04:-0.04",
        "--noise-a",
        "0.001",
    )
    try:
        assert set(doc) >= {"memcached", "timepix", "runcontrol", "key_prefix", "faults"}
        assert doc["faults"] == ["stale:QUATB001", "drop_frames:timepix", "init_fail:runcontrol"]
        host, port = parse_hostport(doc["memcached"])
        with BtfControls(host, port, key_prefix=doc["key_prefix"], max_age_s=2.0) as btf:
            r2 = btf.read_power_supply("DHSTB002", wait_change_s=1.0)
            assert r2.status is PsuState.OPERATIONAL
            assert r2.current_setting_a == pytest.approx(i2)
            # the published readback carries the branch's hysteresis offset ("up": no move yet)
            assert r2.output_current_a == pytest.approx(i2 + 0.04, abs=0.005)
            with pytest.raises(StaleReading, match="did not change"):
                btf.read_power_supply("QUATB001", wait_change_s=0.5)
        client = ServalClient(doc["timepix"], timeout_s=2.0)
        spot = ServalBeamMonitor(client, n_frames=20, timeout_s=5.0).read_beam_spot()
        assert spot.frames_dropped > 0  # the injected fault
        # the beam sits where first-order optics puts it for the DHSTB02 mismatch
        eps = DB_DI_G_PER_A * (i2 + 0.04 - i1) / (B0_G + DB_DI_G_PER_A * i1)
        assert abs(spot.x_mm - REF_X_MM) == pytest.approx(
            TIMEPIX_MM_PER_PERMIL * abs(eps) / 1e-3, rel=0.12
        )
        rc_host, rc_port = parse_hostport(doc["runcontrol"])
        with RunControlClient(rc_host, rc_port, timeout_s=2.0, init_timeout_s=5.0) as rc:
            with pytest.raises(RunInitFailed, match="init_fail"):
                rc.new_run("DAQ", "crew", "test")
    finally:
        rc = stop_sim(proc)
    assert rc == 0
    # everything it started is gone: its own memcached and both servers
    for address in (doc["memcached"], doc["runcontrol"], doc["timepix"].split("//")[1]):
        assert not port_open(address), address


def test_sim_on_given_memcached_with_duration(memcached_server):
    t0 = time.monotonic()
    proc, doc = start_sim(
        "--memcached", memcached_server.hostport, "--key-prefix", "clitest_", "--duration", "2"
    )
    try:
        assert doc["memcached"] == memcached_server.hostport
        assert doc["key_prefix"] == "clitest_"
        assert proc.wait(timeout=30) == 0
    finally:
        stop_sim(proc)
    assert time.monotonic() - t0 < 30
    assert port_open(memcached_server.hostport)  # not ours: left running


def test_sim_bad_input_is_one_line():
    assert_user_error(run_cli("sim", "--fault", "explode:DHSTB001"), "unknown fault")
    assert_user_error(run_cli("sim", "--fault", "dead"), "needs a target")
    assert_user_error(run_cli("sim", "--fault", "init-fail:DHSTB001"), "does not apply")
    assert_user_error(run_cli("sim", "--http-port", "70000"), "--http-port")
    assert_user_error(run_cli("sim", "--current", "DHSTB001=abc"), "--current")
    assert_user_error(run_cli("sim", "--hysteresis", "DHSTB001=0.1"), "--hysteresis")
    assert_user_error(run_cli("sim", "--memcached", "x:y"), "--memcached")
    dead = run_cli("sim", "--memcached", "127.0.0.1:1", "--duration", "1")
    assert_user_error(dead, "memcached 127.0.0.1:1")


def test_runtime_fault_control_from_another_terminal():
    proc, doc = start_sim("--slew-rate-a-per-s", "500")
    try:
        ctl = doc["control"]
        assert ctl.startswith("http://127.0.0.1:")
        host, port = parse_hostport(doc["memcached"])

        def cli(*args):
            return run_cli("sim", *args, "--control", ctl)

        out = cli("inject", "trip:DHSTB001", "dead:serval", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["faults"]["DHSTB001"] == ["trip"]
        # the simulator republishes its records at 10 Hz: the new state shows within 2 s
        with BtfControls(host, port, max_age_s=None) as btf:
            assert wait_until(
                lambda: btf.read_power_supply("DHSTB001").status is PsuState.INTERLOCK_FAULT, 2.0
            )
        assert not port_open(doc["timepix"].split("//")[1])
        assert_user_error(cli("inject", "trip:NOSUCH"), "NOSUCH")
        assert_user_error(run_cli("sim", "inject", "trip:DHSTB001", "--control", ""), "--control")
        out = cli("clear", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["faults"] == {}
        # the trip is reset (operational again) and the TimePix is back on its port
        with BtfControls(host, port, max_age_s=None) as btf:
            assert wait_until(
                lambda: btf.read_power_supply("DHSTB001").status is PsuState.OPERATIONAL, 2.0
            )
        assert port_open(doc["timepix"].split("//")[1])
        out = cli("set-current", "DHSTB002=180.5")
        assert out.returncode == 0, out.stderr
        st = json.loads(cli("status", "--json").stdout)
        assert st["supplies"]["DHSTB002"]["set_point_a"] == 180.5
    finally:
        assert stop_sim(proc) == 0
