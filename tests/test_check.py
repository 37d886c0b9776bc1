"""Step checker logic on the deterministic fake BTF (``tests/fixtures/fake_btf.py``: fake
supplies, model-driven fake TimePix, manual clock), the one recorder, the tolerance model,
and the real adapters end to end (dead memcached, the model-driven simulator)."""

from __future__ import annotations

import math

import pytest
from fixtures import facility as fx
from fixtures import fake_btf as fb
from fixtures.fake_btf import currents_of

from beamline.datafiles import load_toml_model
from scanplan.check import (
    FAIL,
    OK,
    WARN,
    Checker,
    CheckRecorder,
    CheckTolerances,
    check_point,
)
from scanplan.errors import ScanplanError

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
store = fx.store  # fixture
tolerances = fx.tolerances  # fixture

# facts 3: BTF nominal excitation B[G] = 27.16 + 28.446 I[A]; a relative DHSTB02 mismatch of
# 0.1 % moves the spot by ~3.8 mm at the TimePix (hard-edge, drift only).
B0_G, DB_DI_G_PER_A = 27.16, 28.446
TIMEPIX_MM_PER_PERMIL = 3.8


def first_order_shift_mm(current_a: float, delta_a: float) -> float:
    """|x shift| at the TimePix for a DHSTB02 field error equivalent to ``delta_a``."""
    eps = DB_DI_G_PER_A * delta_a / (B0_G + DB_DI_G_PER_A * current_a)
    return TIMEPIX_MM_PER_PERMIL * eps / 1e-3


def events_of(store, check_id: str) -> list:
    return [
        e
        for e in store.history()
        if e.payload.get("check_id") == check_id or e.idempotency_key == f"check:{check_id}:verdict"
    ]


def test_check_ok_records_readings_and_verdict(fake_btf, plan, store):
    v = fake_btf.checker().check(plan, 0)
    assert v.level == OK, v.reasons
    assert v.reasons == ()
    p = plan.point(0)
    sp = v.comparison("DHSTB001 set point vs plan")
    assert sp.expected == pytest.approx(p.dhstb01_current_a)
    assert v.comparison("energy from DHSTB001 readback").expected == p.e_beam_mev
    assert not store.path.exists()  # the checker writes nothing
    CheckRecorder(store).record(plan, v)
    # store: 6 PSU readings (2 dipoles, 4 quads) + 1 TimePix reading + 1 verdict, keyed by
    # the check id
    evs = events_of(store, v.check_id)
    assert sorted(e.kind for e in evs) == ["reading"] * 7 + ["verdict"]
    assert {e.payload["element"] for e in evs if e.kind == "reading"} == {
        "DHSTB001",
        "DHSTB002",
        *(f"QUATB00{n}" for n in range(1, 5)),
        "TIMEPIX",
    }
    verdict_ev = next(e for e in evs if e.kind == "verdict")
    assert verdict_ev.payload["level"] == OK
    assert verdict_ev.payload == v.as_dict()
    assert verdict_ev.period == 0 and verdict_ev.plan_sha256 == plan.content_sha256
    # a retried record duplicates nothing
    n = len(store.history())
    CheckRecorder(store).record(plan, v)
    assert len(store.history()) == n
    assert len({e.idempotency_key for e in store.history()}) == len(store.history())


@pytest.mark.parametrize(("delta_a", "level"), [(0.1, WARN), (0.35, FAIL)])
def test_hidden_dhstb02_field_error_moves_spot_by_first_order_amount(
    fake_btf, plan, delta_a, level
):
    checker = fake_btf.checker()
    base = checker.check(plan, 0, n_frames=10)
    assert base.level == OK, base.reasons
    fake_btf.offsets_a["DHSTB002"] = delta_a
    v = checker.check(plan, 0, n_frames=10)
    assert v.beam_spot is not None and base.beam_spot is not None
    shift = v.beam_spot.x_mm - base.beam_spot.x_mm
    expected = first_order_shift_mm(plan.point(0).dhstb02_current_a, delta_a)
    assert abs(shift) == pytest.approx(expected, rel=0.12)
    c = v.comparison("TimePix x vs model (measured currents)")
    # the readbacks did not move, so the prediction did not: the difference is the shift
    assert abs(c.difference) == pytest.approx(abs(shift), abs=0.4)
    assert c.level == level
    assert v.level == level
    assert any("TimePix x" in r for r in v.reasons)
    # readbacks themselves are fine
    assert v.comparison("DHSTB002 readback vs set point").level == OK
    fake_btf.clear()
    assert checker.check(plan, 0).level == OK


def test_setpoint_off_plan_spot_follows_measured_currents(fake_btf, plan):
    delta_a = 0.2
    cur = currents_of(plan, 0)
    fake_btf.psu.set_currents({"DHSTB002": cur["DHSTB002"] + delta_a})
    v = fake_btf.checker().check(plan, 0, watch=True, settle_timeout_s=3.0)
    sp = v.comparison("DHSTB002 set point vs plan")
    assert sp.difference == pytest.approx(delta_a, abs=1e-9)
    assert sp.level == FAIL  # 0.2 A > setpoint_fail_a
    # the beam is where the model says for the measured currents ...
    assert v.comparison("TimePix x vs model (measured currents)").level == OK
    # ... and away from the plan's prediction by the first-order amount
    c = v.comparison("TimePix x vs model (plan)")
    assert abs(c.difference) == pytest.approx(
        first_order_shift_mm(cur["DHSTB002"], delta_a), rel=0.15
    )
    assert v.level == FAIL


PSU_FAULTS = [
    ("trip", "DHSTB001", "DHSTB001 status", "INTERLOCK_FAULT"),
    ("comm_error", "DHSTB002", "DHSTB002 status", "COMMUNICATION_ERROR"),
    ("nan", "DHSTB001", "DHSTB001 read", "not a finite number"),
    ("stale", "DHSTB002", "DHSTB002 read", "frozen"),
    ("missing", "DHSTB001", "DHSTB001 read", "not found"),
    ("corrupt", "DHSTB002", "DHSTB002 read", "DHSTB002"),
]


@pytest.mark.parametrize(("fault", "element", "name", "fragment"), PSU_FAULTS)
def test_psu_fault_gives_fail_with_reason_and_recovers(
    fake_btf, plan, store, fault, element, name, fragment
):
    checker = fake_btf.checker()
    fake_btf.psu.inject(fault, element)
    fake_btf.clock.advance(fake_btf.tol.power_supply.max_age_s + 0.1)  # a frozen record ages
    v = checker.check(plan, 0)
    assert v.level == FAIL
    c = v.comparison(name)
    assert c.level == FAIL
    assert fragment in c.reason, c.reason
    assert any(fragment in r for r in v.reasons)
    CheckRecorder(store).record(plan, v)
    evs = events_of(store, v.check_id)
    assert sorted(e.kind for e in evs) == ["reading"] * 7 + ["verdict"]  # 6 supplies + TimePix
    bad = next(e for e in evs if e.kind == "reading" and e.payload["element"] == element)
    assert ("error" in bad.payload) == name.endswith("read")
    fake_btf.clear()
    v2 = checker.check(plan, 0, watch=True, settle_timeout_s=8.0)
    assert v2.level == OK, v2.reasons


@pytest.mark.parametrize(
    ("fault", "name", "level", "fragment"),
    [
        ("drop_frames", "TimePix dropped frames", WARN, "dropped"),
        ("no_beam", "TimePix beam", FAIL, "hits"),
        ("slow", "TimePix beam", FAIL, "within"),
        ("kill", "TimePix beam", FAIL, "failed after"),
    ],
)
def test_timepix_fault_gives_clear_verdict_and_recovers(
    fake_btf, plan, fault, name, level, fragment
):
    checker = fake_btf.checker()
    if fault == "drop_frames":
        fake_btf.timepix.drop_frames(0.5)
    else:
        getattr(fake_btf.timepix, fault)()
    v = checker.check(plan, 0, n_frames=8)
    assert v.level == level, v.reasons
    c = v.comparison(name)
    assert c.level == level
    assert fragment in c.reason, c.reason
    # the PSU side is untouched
    assert v.comparison("DHSTB001 status").level == OK
    fake_btf.clear()
    assert checker.check(plan, 0).level == OK


def test_watch_waits_for_the_crew_to_set_the_point(fake_btf, plan, store):
    fake_btf.psu.schedule(0.4, lambda: fake_btf.psu.set_currents(currents_of(plan, 1)))
    polls: list = []
    checker = fake_btf.checker()
    v = checker.check(plan, 1, watch=True, settle_timeout_s=5.0, on_poll=polls.append)
    assert v.settle is not None and v.settle.settled is True
    assert v.level == OK, v.reasons
    assert len(polls) == v.settle.polls >= checker.tol.settle.stable_polls
    # the point was not set before the crew acted: the first polls were not stable
    assert polls[0].stable == 0
    CheckRecorder(store).record(plan, v)
    settle_readings = [
        e
        for e in store.history(kinds=["reading"])
        if e.payload.get("check_id") == v.check_id and e.payload["phase"] == "settle"
    ]
    assert len(settle_readings) == 2 * v.settle.polls


def test_watch_timeout_on_tripped_supply(fake_btf, plan):
    fake_btf.psu.inject("trip", "DHSTB002")
    v = fake_btf.checker().check(plan, 0, watch=True, settle_timeout_s=0.6)
    assert v.settle is not None and v.settle.settled is False
    assert v.comparison("settled").level == WARN
    assert v.level == FAIL
    assert any("DHSTB002: status INTERLOCK_FAULT" in r for r in v.reasons)


def test_unknown_period_and_dead_memcached(plan, tolerances, predictor, tmp_path):
    """The real memcached adapter on a port nobody listens on."""
    from fixtures.net import free_port

    from scanplan.check import connect
    from scanplan.store import SQLiteStore

    conn = connect(f"127.0.0.1:{free_port()}", None, tolerances=tolerances, timeout_s=0.2)
    try:
        st = SQLiteStore(tmp_path / "s.sqlite")
        c = Checker(psu=conn.psu, predictor=predictor, tolerances=tolerances)
        with pytest.raises(ScanplanError, match="no point 7"):
            c.check(plan, 7)
        v = c.check(plan, 1)
        CheckRecorder(st).record(plan, v)
        assert v.level == FAIL
        assert v.comparison("DHSTB001 read").measured == "ConnectionFailed"
        assert len(st.history(kinds=["verdict"])) == 1
    finally:
        conn.close()


def test_check_point_function_with_beamline(facility, plan, tolerances, predictor, store):
    """End to end on the model-driven simulator (real memcached, HTTP TimePix)."""
    from scanplan.check import connect

    a = facility.addresses()
    with connect(a.memcached, a.timepix_url, key_prefix=a.key_prefix, tolerances=tolerances) as c:
        v = check_point(
            plan,
            0,
            psu=c.psu,
            spot=c.spot,
            model=predictor.beamline,
            tolerances=tolerances,
            store=store,
        )
    assert v.level == OK, v.reasons
    assert v.prediction is not None and v.prediction.measured_currents is not None
    assert math.isfinite(v.prediction.measured_currents.x_timepix_mm)
    assert [e.payload["level"] for e in store.history(kinds=["verdict"])] == [OK]


def test_tolerances_file(tmp_path):
    good = tmp_path / "t.toml"
    good.write_text('version = "mine"\n[spot]\nalignment_mm = 2.5\n')
    tol = CheckTolerances.load(good)
    assert tol.spot.alignment_mm == 2.5 and tol.version == "mine"
    assert tol.power_supply.setpoint_fail_a == CheckTolerances.load().power_supply.setpoint_fail_a
    bad = tmp_path / "b.toml"
    bad.write_text("[spot]\nalignmnt_mm = 2.5\n")
    with pytest.raises(ScanplanError, match=r"b\.toml: unknown key 'spot\.alignmnt_mm'"):
        CheckTolerances.load(bad)
    bad.write_text("[energy]\nwarn_mev = 2.0\nfail_mev = 1.0\n")
    with pytest.raises(ScanplanError, match="must not exceed"):
        CheckTolerances.load(bad)
    with pytest.raises(ScanplanError, match="not found"):
        CheckTolerances.load(tmp_path / "nope.toml")
    assert tol.updated({"spot": {"n_frames": 3}}).spot.n_frames == 3


def test_tolerance_model_has_no_defaults_and_rejects_bad_keys(tmp_path):
    """Each default lives in tolerances.toml only; a bad key is an error naming file and key."""
    from scanplan.check.tolerances import CheckTolerances as Model

    def required(model) -> list[bool]:
        out = []
        for name, f in model.model_fields.items():
            out.append(f.is_required())
            sub = getattr(model.model_fields[name].annotation, "model_fields", None)
            if sub is not None:
                out += required(model.model_fields[name].annotation)
        return out

    assert all(required(Model))
    shipped = CheckTolerances.default_path().read_text()
    cases = {
        "misspelt": (shipped.replace("min_hits =", "min_hit ="), "unknown key 'spot.min_hit'"),
        "missing": (shipped.replace("stable_polls = 3\n", ""), "missing key 'settle.stable_polls'"),
        "boolean": (shipped.replace("n_frames = 10", "n_frames = true"), "'spot.n_frames'"),
        "negative": (
            shipped.replace("max_age_s = 2.0", "max_age_s = -1.0"),
            "'power_supply.max_age_s'",
        ),
        "table": (shipped + "\n[sopt]\nx = 1\n", "unknown key 'sopt'"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        with pytest.raises(ScanplanError) as err:
            load_toml_model(path, Model, ScanplanError)
        assert str(path) in str(err.value) and fragment in str(err.value), (name, err.value)
    # an overlay file with a negative offset is fine (offsets are not tolerances)
    over = tmp_path / "o.toml"
    over.write_text("[spot]\nreference_x_mm = -3.0\n")
    assert CheckTolerances.load(over).spot.reference_x_mm == -3.0


def test_fakes_implement_the_seams_and_fail_like_adapters(fake_btf):
    """The fakes are drop-in sources (runtime protocol check) and raise the adapters' errors."""
    from hw_interfaces.btf_records import BtfStatus
    from hw_interfaces.errors import ConnectionFailed, StaleReading
    from hw_interfaces.fakes import FakeMachineState
    from hw_interfaces.protocols import (
        BeamSpotSource,
        MachineStateSource,
        PowerSupplySource,
        SetPointWriter,
    )

    assert isinstance(fake_btf.psu, PowerSupplySource)
    assert isinstance(fake_btf.psu, SetPointWriter)
    assert isinstance(fake_btf.timepix, BeamSpotSource)
    psu, clock = fake_btf.psu, fake_btf.clock
    target = psu.read_power_supply("DHSTB001").current_setting_a + 10.0
    psu.write_current_setting("DHSTB001", target, confirm=lambda prompt: True)
    r = psu.read_power_supply("DHSTB001")
    assert r.current_setting_a == target and r.ramp_on  # the output ramps on the clock
    clock.advance(10.0 / fb.SLEW_A_PER_S)
    assert psu.read_power_supply("DHSTB001").output_current_a == pytest.approx(target)
    psu.inject("stale", "DHSTB002")
    frozen = psu.read_power_supply("DHSTB002")
    clock.advance(fake_btf.tol.power_supply.max_age_s + 0.01)
    with pytest.raises(StaleReading, match="DHSTB002_DYN"):
        psu.read_power_supply("DHSTB002")
    assert frozen.element == "DHSTB002"
    psu.kill()
    with pytest.raises(ConnectionFailed):
        psu.read_power_supply("DHSTB001")
    machine = FakeMachineState(clock=clock)
    assert isinstance(machine, MachineStateSource)
    assert machine.read_machine_state().btf_status is BtfStatus.ON
