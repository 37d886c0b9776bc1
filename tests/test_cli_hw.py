"""``scanplan hw read|state|spot`` as the crew runs it (subprocess) against the simulator."""

from __future__ import annotations

import pytest
from cli_helpers import assert_user_error, run_cli, run_cli_json
from fixtures import hw as hw_fixtures
from fixtures.net import free_port

pytestmark = pytest.mark.timeout(120)
psu_sim = hw_fixtures.psu_sim  # fixture
serval_sim = hw_fixtures.serval_sim  # fixture


@pytest.fixture(autouse=True)
def _wide_error_lines(monkeypatch):
    """Under pytest the C-level environment carries COLUMNS=80 (not visible in os.environ),
    and the CLI's stderr console wraps at COLUMNS: our messages (device, key, address) are
    longer than 80 characters, so give the child a wide terminal explicitly."""
    monkeypatch.setenv("COLUMNS", "200")


def test_hw_read_json(memcached_server, psu_sim):
    rec = run_cli_json(
        "hw",
        "read",
        "DHSTB001",
        "--memcached",
        memcached_server.hostport,
        "--key-prefix",
        psu_sim.key_prefix,
    )
    assert rec["element"] == "DHSTB001"
    assert rec["status"] == "OPERATIONAL"
    assert rec["current_setting_a"] == pytest.approx(psu_sim.states()["DHSTB001"].set_point_a)
    assert rec["output_current_a"] == pytest.approx(rec["current_setting_a"], abs=0.05)
    assert rec["faults"] == [0, 0, 0, 0]


def test_hw_read_table(memcached_server, psu_sim):
    proc = run_cli(
        "hw",
        "read",
        "quatb003",
        "--memcached",
        memcached_server.hostport,
        "--key-prefix",
        psu_sim.key_prefix,
        check=True,
    )
    assert "QUATB003" in proc.stdout and "output_current_a" in proc.stdout
    assert "OPERATIONAL" in proc.stdout


def test_hw_state_json(memcached_server, psu_sim):
    rec = run_cli_json(
        "hw", "state", "--memcached", memcached_server.hostport, "--key-prefix", psu_sim.key_prefix
    )
    assert rec["btf_status"] == "ON" and rec["mode"] == "POSITRON"


def test_hw_spot_json_and_table(serval_sim):
    rec = run_cli_json("hw", "spot", "--timepix", serval_sim.url, "--frames", "5")
    assert rec["x_mm"] == pytest.approx(1.5, abs=0.15)
    assert rec["frames_used"] == 5
    proc = run_cli("hw", "spot", "--timepix", serval_sim.url, "--frames", "3", check=True)
    assert "sigma_x_mm" in proc.stdout


def test_missing_element_is_one_error_line(memcached_server, psu_sim):
    proc = run_cli(
        "hw",
        "read",
        "DHPTB101",
        "--memcached",
        memcached_server.hostport,
        "--key-prefix",
        psu_sim.key_prefix,
    )
    assert_user_error(proc, "DHPTB101", "DHPTB101_DYN", "not found")


def test_dead_memcached_is_one_error_line():
    port = free_port()
    proc = run_cli(
        "hw", "read", "DHSTB001", "--memcached", f"127.0.0.1:{port}", "--timeout-s", "0.3", "--json"
    )
    assert_user_error(proc, "DHSTB001", f"127.0.0.1:{port}", "unreachable")
    assert proc.stdout == ""


@pytest.mark.parametrize("address", ["nonsense:port", ":11211", "127.0.0.1:99999"])
def test_bad_address_is_one_error_line(address):
    assert_user_error(run_cli("hw", "read", "DHSTB001", "--memcached", address), "--memcached")


def test_spot_on_dead_server_and_bad_url():
    port = free_port()
    assert_user_error(
        run_cli("hw", "spot", "--timepix", f"http://127.0.0.1:{port}", "--timeout-s", "0.5"),
        "TimePix",
    )
    assert_user_error(run_cli("hw", "spot", "--timepix", "127.0.0.1:8080"), "--timepix")


def test_help_lists_hw_commands():
    proc = run_cli("hw", "--help", check=True)
    for cmd in ("read", "state", "spot"):
        assert cmd in proc.stdout


def test_wait_change_detects_a_frozen_record(memcached_server, psu_sim):
    args = [
        "hw",
        "read",
        "DHSTB002",
        "--memcached",
        memcached_server.hostport,
        "--key-prefix",
        psu_sim.key_prefix,
        "--wait-change-s",
        "0.5",
    ]
    assert run_cli_json(*args)["element"] == "DHSTB002"
    psu_sim.inject("stale", "DHSTB002")
    assert_user_error(run_cli(*args), "DHSTB002", "did not change within 0.5 s")


def test_bad_element_name_is_one_error_line(memcached_server):
    proc = run_cli("hw", "read", "DH STB001", "--memcached", memcached_server.hostport)
    assert_user_error(proc, "not an element name")
