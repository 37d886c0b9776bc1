"""Bounded soak: the step checker polls the model-driven simulator (real memcached, HTTP
TimePix) while faults are injected and cleared in turn. Memory stays flat, no socket or
thread leaks, every fault ends in a clear verdict, and the store holds exactly 4 events per
check (recorded by the one recorder).

Bounded by count, not by time: each phase takes at least ``SCANPLAN_SOAK_CHECKS`` checks
(default 6) and, for faults that need time to show (a frozen record ages), at most
``MAX_CHECKS_PER_PHASE``. The checks are paced at ``POLL_HZ`` so that the simulator's
publishers run between them; nothing here asserts on a duration. The sustained polling rate
is measured in ``benchmarks/bench_check.py``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import uuid

from fixtures import facility as fx

from scanplan.check import FAIL, OK, WARN, Checker, CheckRecorder, connect
from scanplan.sim import SimFacility
from scanplan.store import SQLiteStore

plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
tolerances = fx.tolerances  # fixture

CHECKS_PER_PHASE = int(os.environ.get("SCANPLAN_SOAK_CHECKS", "6"))
#: a phase whose verdict is not reached within this many checks fails the test
MAX_CHECKS_PER_PHASE = 60
POLL_HZ = 10.0
#: (fault, level expected at the end of its phase, text expected in a reason)
FAULTS = [
    ("trip:DHSTB001", FAIL, "INTERLOCK_FAULT"),
    ("stale:DHSTB002", FAIL, "DHSTB002"),
    ("nan:DHSTB001", FAIL, "not a finite number"),
    ("dropped-frames", WARN, "dropped"),
    ("no-beam", FAIL, "hits"),
    ("missing:DHSTB002", FAIL, "not found"),
    ("dead:serval", FAIL, "TimePix"),
    ("offset:DHSTB002=0.4", FAIL, "TimePix x"),
    ("comm-error:DHSTB001", FAIL, "COMMUNICATION_ERROR"),
    ("corrupt:DHSTB002", FAIL, "DHSTB002"),
]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def test_soak_checker_with_faults(memcached_server, predictor, tolerances, plan, tmp_path):
    tol = tolerances.updated(
        {"spot": {"n_frames": 2, "frames_timeout_s": 0.5}, "power_supply": {"max_age_s": 1.0}}
    )
    p0 = plan.point(0)
    sim = SimFacility(
        (memcached_server.host, memcached_server.port),
        key_prefix=f"soak{uuid.uuid4().hex[:8]}_",
        currents_a={"DHSTB001": p0.dhstb01_current_a, "DHSTB002": p0.dhstb02_current_a},
        tolerances=tol,
        predictor=predictor,
        psu_options={"update_hz": 20.0, "slew_rate_a_per_s": 400.0},
        serval_options={"slow_delay_s": 1.0},
    ).start()
    store = SQLiteStore(tmp_path / "soak.sqlite")
    recorder = CheckRecorder(store)
    a = sim.addresses()
    conn = connect(
        a.memcached, a.timepix_url, key_prefix=a.key_prefix, tolerances=tol, timeout_s=0.3
    )
    checker = Checker(psu=conn.psu, spot=conn.spot, predictor=predictor, tolerances=tol)
    phases: list[tuple[str | None, str, str]] = []
    for f in FAULTS:
        phases += [(None, OK, ""), f]
    phases.append((None, OK, ""))
    seen: dict[int, list] = {}
    checks = 0
    rss: list[float] = []

    def check():
        nonlocal checks
        v = checker.check(plan, 0)
        recorder.record(plan, v)
        checks += 1
        time.sleep(1.0 / POLL_HZ)  # pacing: let the publishers tick (not a measurement)
        return v

    try:
        check()  # warm up (model cache, first reads)
        sockets0, threads0 = open_sockets(), threading.active_count()
        for i, (fault, level, _) in enumerate(phases):
            if fault:
                sim.inject(fault)
            verdicts = seen.setdefault(i, [])
            while len(verdicts) < MAX_CHECKS_PER_PHASE:
                verdicts.append(check())
                reached = (
                    any(v.level == level for v in verdicts)
                    if level == WARN
                    else (verdicts[-1].level == level)
                )
                if len(verdicts) >= CHECKS_PER_PHASE and reached:
                    break
            gc.collect()  # a leak is memory that survives collection, not pending cycles
            rss.append(rss_mb())
            if fault:
                sim.clear()
        time.sleep(0.3)  # let server-side handler sockets close
        sockets1, threads1 = open_sockets(), threading.active_count()
    finally:
        conn.close()
        sim.stop()
    # every phase ends in the verdict its fault calls for, with a reason naming it
    for i, (fault, level, text) in enumerate(phases):
        if level == WARN:  # random frame drops: some checks see none, none may FAIL
            hits = [v for v in seen[i] if v.level == WARN]
            assert hits and all(v.level != FAIL for v in seen[i]), (fault, seen[i])
            v = hits[-1]
        else:
            v = seen[i][-1]
            assert v.level == level, (fault, v.level, v.reasons)
        if text:
            assert any(text in r for r in v.reasons), (fault, v.reasons)
    # memory flat after the first quarter of the phases, no leaked sockets or threads
    later = rss[len(rss) // 4 :]
    assert max(later) - min(later) < 15.0, [round(m) for m in rss]
    assert sockets1 <= sockets0 + 2, (sockets0, sockets1)
    assert threads1 <= threads0 + 2, (threads0, threads1)
    # nothing lost or duplicated: 6 PSU readings (2 dipoles, 4 quadrupoles) + 1 TimePix
    # reading + 1 verdict per check
    events = store.history()
    verdicts = [e for e in events if e.kind == "verdict"]
    assert len(verdicts) == checks
    assert len(events) == 8 * checks + len(plan.points)  # + the plan's "planned" events
    assert len({e.idempotency_key for e in events}) == len(events)
    print(
        f"soak: {checks} checks in {len(phases)} phases, RSS {rss[0]:.0f}->{rss[-1]:.0f} MB, "
        f"sockets {sockets0}->{sockets1}, threads {threads0}->{threads1}"
    )
