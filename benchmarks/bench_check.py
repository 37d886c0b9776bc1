"""Step-checker speed against the model-driven simulator (own memcached, TimePix HTTP on
127.0.0.1): one full check (2 PSU reads, TimePix spot, model prediction for the measured and
the plan currents, 4 store appends) vs the bare reads of the same run (2 PSU reads + spot),
and the model prediction alone (uncached vs cached)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result

#: the issue's requirement: one check well under a second
CHECK_LIMIT_MS = 1000.0


def _median_ms(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times), max(times)


def run(quick: bool = False) -> list[Result]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fixtures.plans import make_plan

    from scanplan.check import Checker, CheckTolerances, SpotPredictor, connect
    from scanplan.sim import SimFacility
    from scanplan.store import SQLiteStore

    n = 5 if quick else 20
    tol = CheckTolerances.load()
    plan = make_plan(3)
    p = plan.point(1)
    currents = {"DHSTB001": p.dhstb01_current_a, "DHSTB002": p.dhstb02_current_a}
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp, SimFacility(currents_a=currents) as sim:
        a = sim.addresses()
        store = SQLiteStore(Path(tmp) / "bench.sqlite")
        for n_frames in (tol.spot.n_frames, 2):
            t = tol.updated({"spot": {"n_frames": n_frames}})
            with connect(a.memcached, a.timepix_url, key_prefix=a.key_prefix, tolerances=t) as c:
                checker = Checker(
                    psu=c.psu, spot=c.spot, predictor=sim.predictor, store=store, tolerances=t
                )
                v = checker.check(plan, 1)  # warm-up: first reads prove liveness
                assert v.level != "FAIL", v.reasons

                def bare(c=c, n_frames=n_frames, t=t):
                    c.psu.read_power_supply("DHSTB001")
                    c.psu.read_power_supply("DHSTB002")
                    c.spot.read_beam_spot(n_frames, t.spot.frames_timeout_s)

                full_ms, full_max = _median_ms(lambda checker=checker: checker.check(plan, 1), n)
                bare_ms, _ = _median_ms(bare, n)
            frame_wait_ms = 1e3 * n_frames / tol.simulator.frame_rate_hz
            results.append(
                Result(
                    f"one check, {n_frames} TimePix frames (reads + model + store)",
                    full_ms,
                    "ms",
                    baseline_name="bare reads (2 PSU + spot)",
                    baseline=bare_ms,
                    notes={
                        "median_of": n,
                        "max_ms": round(full_max, 1),
                        "frame_wait_ms (frames / 50 Hz)": round(frame_wait_ms, 1),
                        "overhead_vs_bare_ms": round(full_ms - bare_ms, 1),
                        "limit_ms": CHECK_LIMIT_MS,
                        "meets_limit": full_ms < CHECK_LIMIT_MS,
                    },
                )
            )
        uncached = SpotPredictor(beamline=sim.predictor.beamline, cache_size=0)
        i = [0]

        def predict_new():
            i[0] += 1
            uncached.predict(p.dhstb01_current_a, p.dhstb02_current_a + 1e-3 * i[0])

        pred_ms, _ = _median_ms(predict_new, n)
        cached_ms, _ = _median_ms(
            lambda: sim.predictor.predict(p.dhstb01_current_a, p.dhstb02_current_a), n
        )
        results.append(
            Result(
                "model prediction, uncached (predict_spot)",
                pred_ms,
                "ms",
                baseline_name="cached prediction",
                baseline=cached_ms,
                notes={"median_of": n},
            )
        )
    return results
