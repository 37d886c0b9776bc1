"""The simulator validates set points itself, on every channel (issue 15, guarded writes):
its control HTTP channel and the ``_CMD`` command documents refuse a current outside the
supply's range from the calibrations, whatever client sent it, and leave the set point as
it was."""

from __future__ import annotations

import pytest
from fixtures import facility as fx
from fixtures.facility import wait_for

from beamline import calibration
from hw_interfaces.btf_controls import BtfControls
from hw_interfaces.errors import BadRequest
from hw_interfaces.sim import SimControlClient, SimControlServer
from scanplan.sim import ControlFacade

pytestmark = pytest.mark.timeout(60)
facility = fx.facility  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
tolerances = fx.tolerances  # fixture


@pytest.fixture
def control(facility):
    with SimControlServer(ControlFacade(facility)) as server:  # type: ignore[arg-type]
        yield SimControlClient(server.url, timeout_s=2.0)


def test_the_control_channel_refuses_currents_outside_the_supply_range(facility, control):
    lo, hi = calibration.magnet_spec("DHSTB01").current_limits_a
    before = facility.facility.psu_states()["DHSTB001"].set_point_a
    refused = rf"outside limits \[{lo:g}, {hi:g}\] A \(the supply's range"
    for bad in (hi + 55.0, lo - 20.0):
        with pytest.raises(BadRequest, match=refused):
            control.set_current("DHSTB001", bad)
    q_lo, q_hi = calibration.magnet_spec("Q1").current_limits_a
    with pytest.raises(BadRequest, match=rf"\[{q_lo:g}, {q_hi:g}\] A"):
        control.set_current("QUATB001", q_hi + 1.0)
    assert facility.facility.psu_states()["DHSTB001"].set_point_a == before
    control.set_current("DHSTB001", before - 0.5)  # a current in range is applied
    assert facility.facility.psu_states()["DHSTB001"].set_point_a == before - 0.5


def test_a_command_document_outside_the_range_is_refused_and_counted(facility):
    host, port = facility.addresses().memcached.split(":")
    _, hi = calibration.magnet_spec("DHSTB02").current_limits_a
    psu = facility.facility.psu
    before = psu.states()["DHSTB002"]
    # a writer without limits (not scanplan's guarded one) sends what the supply cannot do
    with BtfControls(host, int(port), key_prefix=psu.key_prefix, writes_enabled=True) as btf:
        btf.write_current_setting("DHSTB002", hi + 55.0, confirm=lambda _: True)
        assert wait_for(lambda: psu.states()["DHSTB002"].commands_refused == 1, timeout_s=5)
        after = psu.states()["DHSTB002"]
        assert after.set_point_a == before.set_point_a
        assert after.commands_applied == before.commands_applied
        btf.write_current_setting("DHSTB002", before.set_point_a + 0.3, confirm=lambda _: True)
        assert wait_for(
            lambda: psu.states()["DHSTB002"].set_point_a == pytest.approx(before.set_point_a + 0.3),
            timeout_s=5,
        )
    status = facility.status()["supplies"]["DHSTB002"]
    assert status["commands_refused"] == 1 and status["commands_applied"] == 1
