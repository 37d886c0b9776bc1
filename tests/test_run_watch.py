"""The dwell watch (issue 15, item 3) on the fake BTF with a manual clock: a trip, a beam
loss and a dead TimePix during a dwell are each suspended, recorded and resumed; the point
gets its planned time with beam; the ``stop`` policy leaves the point open."""

from __future__ import annotations

import pytest
from fixtures import facility as fx
from fixtures import fake_btf as fb
from test_run import guided_on

from scanplan.run import RunOptions, RunStopped, point_states
from scanplan.run.watch import KIND_RESUMED, KIND_SUSPENDED

pytestmark = pytest.mark.timeout(120)

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan_path = fx.plan_path  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
store = fx.store  # fixture
tolerances = fx.tolerances  # fixture

DWELL_S = 60.0


def schedule_on_clock(btf, actions):
    """Run ``actions`` ``[(t_s, fn)]`` when the manual clock passes ``t_s`` after now."""
    clock = btf.clock
    t0 = clock.monotonic()
    pending = sorted(((t0 + t, fn) for t, fn in actions), key=lambda a: a[0])
    original = clock.sleep

    def sleep(seconds: float) -> None:
        original(seconds)
        while pending and clock.monotonic() >= pending[0][0]:
            pending.pop(0)[1]()

    clock.sleep = sleep  # type: ignore[method-assign]
    return pending


def _options(policy: str = "flag") -> RunOptions:
    return RunOptions(
        dwell_s=DWELL_S,
        retry_wait_s=0.1,
        settle_timeout_s=6.0,
        watch_cadence_s=1.0,
        dwell_policy=policy,
        max_suspend_s=300.0,
        periods=(0,),
    )


def test_trip_beam_loss_and_dead_timepix_are_suspended_recorded_and_resumed(fake_btf, plan, store):
    pt = plan.point(0)
    fake_btf.psu.set_currents({"DHSTB001": pt.dhstb01_current_a, "DHSTB002": pt.dhstb02_current_a})
    guided = guided_on(fake_btf, plan, store, _options())
    # the run starts a few seconds in (settle + check); faults come well inside the dwell
    pending = schedule_on_clock(
        fake_btf,
        [
            (15.0, lambda: fake_btf.psu.inject("trip", "DHSTB002")),
            (25.0, fake_btf.psu.clear),
            (40.0, fake_btf.timepix.no_beam),
            (50.0, fake_btf.timepix.clear),
            (65.0, fake_btf.timepix.kill),
            (75.0, fake_btf.timepix.clear),
        ],
    )
    rows = guided.run()
    assert not pending  # every fault happened
    assert rows[0].done
    sha = plan.content_sha256
    suspended = store.history(plan_sha256=sha, period=0, kinds=[KIND_SUSPENDED])
    resumed = store.history(plan_sha256=sha, period=0, kinds=[KIND_RESUMED])
    conditions = [e.payload["condition"] for e in suspended]
    assert conditions == ["supply", "beam", "timepix"], [e.payload["reason"] for e in suspended]
    assert "INTERLOCK_FAULT" in suspended[0].payload["reason"]
    assert "hysteresis" in suspended[0].payload["advice"]
    assert "no beam" in suspended[1].payload["reason"]
    assert len(resumed) == 3
    done = store.history(plan_sha256=sha, period=0, kinds=["point_done"])[0].payload
    assert done["suspensions"] == 3
    assert done["beam_on_s"] >= DWELL_S  # the run got its planned time with beam
    assert done["beam_off_s"] >= 30.0  # three outages of about 10 s each
    assert done["beam_off_s"] == pytest.approx(sum(e.payload["beam_off_s"] for e in resumed))
    assert done["pot_taken"] == pytest.approx(pt.target_pot)
    # PADME's run was not stopped during the suspensions: one run for the point
    assert len(point_states(store, sha)[0].runs) == 1


def test_stop_policy_ends_the_run_and_leaves_the_point_open(fake_btf, plan, store):
    pt = plan.point(0)
    fake_btf.psu.set_currents({"DHSTB001": pt.dhstb01_current_a, "DHSTB002": pt.dhstb02_current_a})
    guided = guided_on(fake_btf, plan, store, _options("stop"))
    schedule_on_clock(fake_btf, [(20.0, fake_btf.timepix.no_beam)])
    with pytest.raises(RunStopped, match="no beam"):
        guided.run()
    st = point_states(store, plan.content_sha256)[0]
    assert not st.done and st.open_run is None  # the run was ended, the point stays open
    assert [r.status for r in fake_btf.runcontrol.runs][-1] != "RUNNING"


def reset(sim, element: str) -> None:
    sim.clear(target=element)
    sim.psu.configure(element, status=2)


@pytest.mark.timeout(300)
def test_a_run_on_the_simulator_survives_a_trip_a_beam_loss_and_a_dead_timepix(
    facility, plan, plan_path, tmp_path
):
    """End to end: ``scanplan run`` against the virtual BTF (memcached PSU records, the Serval
    simulator's jsonimage stream, RunControl over TCP) while faults come and go."""
    import json
    import subprocess
    import sys
    import threading
    import time

    from fixtures.facility import sim_env, wait_for

    from scanplan.store import SQLiteStore

    store_path = tmp_path / "watch.sqlite"
    env = sim_env(facility, store_path)
    st = SQLiteStore(store_path)
    sim = facility.facility
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanplan", "run", "--plan", str(plan_path), "--periods", "0",
         "--yes", "--enable-writes", "--confirm-writes", plan.content_sha256[:12],
         "--dwell-s", "6", "--watch-cadence-s", "0.3", "--settle-timeout-s", "8", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def started() -> bool:
        try:
            return store_path.exists() and bool(st.history(kinds=["run_started"]))
        except Exception:
            return False

    def count(kind: str) -> int:
        try:
            return len(st.history(kinds=[kind]))
        except Exception:
            return 0

    def suspended(n: int) -> bool:
        return count(KIND_SUSPENDED) >= n

    def faults() -> None:
        steps = [
            # the crew resets the tripped supply and switches it on (it ramps back)
            (lambda: sim.inject("trip", "DHSTB002"), lambda: reset(sim, "DHSTB002")),
            (lambda: sim.inject("no_beam", "timepix"), lambda: sim.clear(target="timepix")),
            (lambda: sim.inject("dead", "timepix"), lambda: sim.revive("timepix")),
        ]
        if not wait_for(started, 60.0):
            return
        for n, (inject, clear) in enumerate(steps, start=1):
            wait_for(lambda n=n: count(KIND_RESUMED) >= n - 1, 90.0)  # the last one is over
            time.sleep(1.0)
            inject()
            wait_for(lambda n=n: suspended(n), 60.0)
            time.sleep(1.0)
            clear()

    t = threading.Thread(target=faults, daemon=True)
    t.start()
    try:
        out, err = proc.communicate(timeout=250)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    t.join(timeout=5)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["status"] == "done"
    sus = st.history(kinds=[KIND_SUSPENDED])
    res = st.history(kinds=[KIND_RESUMED])
    conditions = [e.payload["condition"] for e in sus]
    # each injected fault suspended the dwell, in order (a loaded machine may add a
    # transient TimePix timeout; every suspension must still be resumed)
    it = iter(conditions)
    assert all(c in it for c in ("supply", "beam", "timepix")), [e.payload["reason"] for e in sus]
    assert len(res) == len(sus)
    done = st.history(kinds=["point_done"])[0].payload
    assert done["suspensions"] == len(sus) and done["beam_on_s"] >= 6.0
