"""Messages a crew can act on (issue 15, item 8), on the deterministic fake BTF unless the
message comes from an adapter (then against a real server on 127.0.0.1).

References: the injected hidden DHSTB02 field error (the implied current must give it back),
the plan's own set points (printed in full), the data file's hysteresis overshoot."""

from __future__ import annotations

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures import facility as fx
from fixtures import fake_btf as fb
from fixtures.fake_btf import currents_of
from rich.console import Console

from beamline.datafiles import read_toml
from beamline.paths import data_file
from hw_interfaces.btf_controls import BtfControls
from hw_interfaces.errors import ConnectionFailed
from scanplan.check import FAIL, OK, WARN, Checker
from scanplan.check.comparisons import graded
from scanplan.check.verdict import decimals_for
from scanplan.cli.check import verdict_table
from scanplan.run import GuidedRun, QuietUI, RunOptions

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
store = fx.store  # fixture
tolerances = fx.tolerances  # fixture


def render(renderable, width: int) -> str:
    out = io.StringIO()
    Console(width=width, file=out, force_terminal=False, color_system=None).print(renderable)
    return out.getvalue()


# -- offsets in amperes -------------------------------------------------------------------
def test_timepix_x_offset_is_given_as_the_dhstb02_current_it_implies(fake_btf, plan):
    hidden_a = 0.40
    fake_btf.offsets_a["DHSTB002"] = hidden_a
    v = fake_btf.checker().check(plan, 0)
    c = v.comparison("TimePix x vs model (measured currents)")
    assert c.level == FAIL
    assert c.implied_magnet == "DHSTB02"
    # the hidden error comes back through the model's dx/dI (linear to a few %; statistics)
    assert c.implied_current_a == pytest.approx(hidden_a, rel=0.05)
    assert "\u2248 0.4" in c.reason and "A on DHSTB02" in c.reason, c.reason
    assert v.as_dict()["comparisons"][[x.name for x in v.comparisons].index(c.name)][
        "implied_current_a"
    ] == pytest.approx(c.implied_current_a)


# -- no beam ------------------------------------------------------------------------------
def test_no_beam_is_said_as_such(fake_btf, plan):
    fake_btf.timepix.no_beam()
    v = fake_btf.checker().check(plan, 0)
    assert v.level == FAIL
    assert any(r.startswith("no beam on the TimePix") for r in v.reasons), v.reasons


# -- no advice about options the command does not have ------------------------------------
def test_check_never_advises_extrapolate(fake_btf, plan):
    # DHSTB001 far above the calibrated range of the energy scale
    fake_btf.psu.set_currents({"DHSTB001": 230.0})
    fake_btf.clock.advance(5.0)
    v = fake_btf.checker().check(plan, 0)
    c = v.comparison("energy from DHSTB001 readback")
    assert c.level == FAIL
    assert "--extrapolate" not in " ".join(v.reasons)
    assert "outside the calibrated range" in c.reason


# -- an HTTP server where memcached should be ---------------------------------------------
class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_memcached_address_of_an_http_server_gives_a_reason(plan, tolerances):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    psu = BtfControls("127.0.0.1", server.server_address[1], retries=0, max_age_s=2.0)
    try:
        with pytest.raises(ConnectionFailed) as err:
            psu.read_power_supply("DHSTB001")
        assert "memcached" in str(err.value) and "HTTP" in str(err.value)
        assert not str(err.value).rstrip().endswith(":")
        v = Checker(psu=psu, tolerances=tolerances).check(plan, 0)
        assert v.level == FAIL
        assert all("HTTP" in r for r in v.reasons), v.reasons
    finally:
        psu.close()
        server.shutdown()
        server.server_close()


# -- tables at 80 and 120 columns ---------------------------------------------------------
@pytest.mark.parametrize("width", [80, 120])
def test_check_table_is_readable(fake_btf, plan, width):
    fake_btf.offsets_a["DHSTB002"] = 0.4
    v = fake_btf.checker().check(plan, 0)
    text = render(verdict_table(v), width)
    assert "\u2026" not in text  # nothing truncated
    assert max(len(line) for line in text.splitlines()) <= width
    levels = re.findall(r"\b(OK|WARN|FAIL)\s*$", text, flags=re.M)
    assert len(levels) == len(v.comparisons)  # every row ends with its full level
    assert levels.count("FAIL") == sum(c.level == FAIL for c in v.comparisons)


@pytest.mark.parametrize("width", [80, 120])
def test_show_prints_every_set_point_in_full(plan, width, monkeypatch):
    import scanplan.cli.plan as cli_plan
    import scanplan.cli.tables as cli_tables

    out = io.StringIO()
    narrow = Console(width=width, file=out, color_system=None)
    monkeypatch.setattr(cli_plan, "console", narrow)
    monkeypatch.setattr(cli_tables, "console", narrow)
    cli_plan._print_plan(plan)
    text = out.getvalue()
    assert "\u2026" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for p in plan.points:
        for value in (p.dhstb01_current_a, p.dhstb02_current_a):
            assert f"{value:.3f}" in text
        for value in (p.q1_current_a, p.q2_current_a, p.q3_current_a, p.q4_current_a):
            assert f"{value:.2f}" in text


# -- enough digits ------------------------------------------------------------------------
@pytest.mark.parametrize("warn", [0.011, 0.05, 0.12, 0.25, 1.0, 3.7, 40.0])
def test_a_fail_never_shows_equal_numbers(warn):
    expected = 179.1
    for k in (1.0001, 1.3, 2.0, 3.0):
        measured = expected + k * warn * 1.0000001
        c = graded("x", measured, expected, warn, warn * 1.0000001, "A", "x")
        assert c.level == FAIL
        assert c.shown(c.measured) != c.shown(c.expected)
        m_text, e_text = re.findall(r"([-\d.]+) A vs ([-\d.]+) A", c.reason)[0]
        assert m_text != e_text, c.reason
    assert decimals_for(0.011) == 3 and decimals_for(1.0) == 1


def test_the_reported_179_1_vs_179_1_fail_now_differs(fake_btf, plan, tolerances):
    # 179.1 vs 179.1 ... FAIL came from 4-digit rounding of a 0.06 A set-point error
    want = plan.point(0).dhstb01_current_a
    fake_btf.psu.set_currents({"DHSTB001": want + 0.06})
    fake_btf.clock.advance(1.0)
    v = fake_btf.checker().check(plan, 0)
    c = v.comparison("DHSTB001 set point vs plan")
    assert c.level == FAIL
    row = next(
        line for line in render(verdict_table(v), 120).splitlines() if "DHSTB001 set" in line
    )
    assert f"{want + 0.06:.3f}" in row and f"{want:.3f}" in row


# -- overshoot steps in crew-sets mode ----------------------------------------------------
def test_crew_sets_mode_shows_the_overshoot_steps(fake_btf, plan, store):
    overshoot_a = read_toml(data_file("calibrations", "dipoles.toml"))["hysteresis"]["overshoot_a"]
    # coming from below on a descending plan: the recipe overshoots
    below = {e: i - 2.0 for e, i in currents_of(plan, 0).items() if e.startswith("DHSTB")}
    fake_btf.psu.set_currents(below)
    fake_btf.clock.advance(1.0)
    shown: list[list[dict[str, float]]] = []
    prompts: list[str] = []
    ui = QuietUI(fake_btf.clock)
    ui.show_point = lambda point, steps, writes: shown.append(steps)  # type: ignore[method-assign]

    def confirm(prompt: str) -> bool:
        prompts.append(prompt)
        fake_btf.psu.set_currents(currents_of(plan, 0))
        return True

    ui.confirm = confirm  # type: ignore[method-assign]
    GuidedRun(
        plan,
        checker=fake_btf.checker(),
        store=store,
        runcontrol=fake_btf.runcontrol,
        options=RunOptions(dwell_s=0.1, settle_timeout_s=5.0, periods=(0,)),
        ui=ui,
        clock=fake_btf.clock,
    ).run()
    p = plan.point(0)
    steps = shown[0]
    assert steps[0]["DHSTB001"] == pytest.approx(p.dhstb01_current_a + overshoot_a)
    assert steps[-1]["DHSTB001"] == pytest.approx(p.dhstb01_current_a)
    assert f"{p.dhstb01_current_a + overshoot_a:.3f} -> {p.dhstb01_current_a:.3f}" in prompts[0]
    assert f"QUATB003 {p.q3_current_a:.3f} A" in prompts[0]  # the quads too
    assert fake_btf.psu.writes == []  # the crew set them; the tool wrote nothing


# -- hysteresis after a trip --------------------------------------------------------------
def test_trip_reason_and_recovery_warn_about_hysteresis(fake_btf, plan, tolerances):
    fake_btf.psu.inject("trip", "DHSTB001")
    v = fake_btf.checker().check(plan, 0)
    assert "hysteresis" in v.comparison("DHSTB001 status").reason
    assert "from above" in v.comparison("DHSTB001 status").reason  # a descending plan

    def reset() -> None:
        fake_btf.psu.clear()
        fake_btf.psu.set_currents(currents_of(plan, 0))

    fake_btf.psu.schedule(0.3, reset)
    v = fake_btf.checker().check(plan, 0, watch=True, settle_timeout_s=5.0)
    c = v.comparison("DHSTB001 hysteresis after trip")
    assert c.level == WARN and "re-approach DHSTB01" in c.reason
    assert v.level == WARN


# -- --watch ends when settled outside tolerance ------------------------------------------
def checker_with(btf, tol) -> Checker:
    """A checker on the fake BTF with other tolerances."""
    return Checker(
        psu=btf.psu, spot=btf.timepix, predictor=btf.predictor, tolerances=tol, clock=btf.clock
    )


def test_watch_fails_as_soon_as_a_wrong_set_point_has_settled(fake_btf, plan, tolerances):
    tol = tolerances.updated({"settle": {"timeout_s": 60.0, "wrong_setpoint_wait_s": 2.0}})
    fake_btf.psu.set_currents({"DHSTB002": plan.point(0).dhstb02_current_a + 0.3})
    fake_btf.clock.advance(1.0)
    checker = checker_with(fake_btf, tol)
    t0 = fake_btf.clock.monotonic()
    v = checker.check(plan, 0, watch=True)
    waited = fake_btf.clock.monotonic() - t0
    assert v.settle is not None and v.settle.outside_tolerance and not v.settle.settled
    assert waited < 2.0 + 2 * tol.settle.poll_interval_s + tol.spot.frames_timeout_s
    assert v.level == FAIL
    assert v.comparison("DHSTB002 set point vs plan").level == FAIL
    assert "not waiting for the timeout" in v.comparison("settled").reason


def test_watch_still_waits_for_a_crew_that_is_dialling(fake_btf, plan, tolerances):
    tol = tolerances.updated({"settle": {"timeout_s": 60.0, "wrong_setpoint_wait_s": 2.0}})
    far = {e: i + 3.0 for e, i in currents_of(plan, 0).items() if e.startswith("DHSTB")}
    fake_btf.psu.set_currents(far)
    fake_btf.clock.advance(1.0)
    # the crew turns the knob in three steps, each within the wait
    for k, t in enumerate((1.5, 3.0, 4.5), start=1):
        step = {e: i - k * 1.0 for e, i in far.items()}
        fake_btf.psu.schedule(t, lambda s=step: fake_btf.psu.set_currents(s))
    checker = checker_with(fake_btf, tol)
    v = checker.check(plan, 0, watch=True)
    assert v.settle is not None and v.settle.settled, v.settle
    assert v.level == OK, v.reasons


def test_watch_fails_soon_when_a_readback_settles_off_its_set_point(facility, plan, tolerances):
    """On the simulator (real memcached): the set points are on the plan, DHSTB002's readback
    sits 0.3 A off (beyond readback_fail_a); the watch ends after steady_outside_s, not
    after the 60 s timeout."""
    from scanplan.check import connect

    tol = tolerances.updated({"settle": {"timeout_s": 60.0, "steady_outside_s": 1.0}})
    assert tol.power_supply.readback_fail_a < 0.3
    facility.facility.psu.configure("DHSTB002", hysteresis_offset_a={"up": 0.3, "down": 0.3})
    a = facility.addresses()
    with connect(a.memcached, a.timepix_url, key_prefix=a.key_prefix, tolerances=tol) as c:
        checker = Checker(psu=c.psu, spot=c.spot, predictor=facility.predictor, tolerances=tol)
        v = checker.check(plan, 0, watch=True)
    assert v.settle is not None and v.settle.outside_tolerance
    assert 1.0 <= v.settle.elapsed_s < 10.0
    assert v.comparison("DHSTB002 readback vs set point").level == FAIL
    assert v.comparison("DHSTB002 set point vs plan").level == OK
