"""Start-up of the command line as whole processes, against a bare ``python -c pass`` measured
in the same run (best of N wall times; the machine's load shows in the baseline too).

Targets (issue 15, item 9): ``scanplan --help`` within 5x the bare interpreter;
``scanplan optics --json`` under 2 s with the model cache warm (:mod:`scanplan.model_cache`);
``scanplan check`` of one point under 2 s as a process, against the model-driven simulator
(its own memcached, TimePix HTTP and RunControl TCP on 127.0.0.1) with the cache warm.
The cold runs (cache off: import xtrack, build the line, twiss) are reported beside them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result

OPTICS_LIMIT_S = 2.0
CHECK_LIMIT_S = 2.0


def _wall(args: list[str], env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
        best = min(best, time.perf_counter() - t0)
    return best


def _check_process(py: str, env: dict[str, str], repeat: int, t_python: float) -> list[Result]:
    """``scanplan check --plan P --point 1 --json`` as a process against the simulator at the
    point's currents (an OK verdict, so every read and comparison runs), cache warm and off."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fixtures.plans import make_plan

    from scanplan.check.dipoles import plan_currents_a
    from scanplan.records import save_plan
    from scanplan.sim import SimFacility

    plan = make_plan(3)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimFacility(currents_a=plan_currents_a(plan.point(1))) as sim,
    ):
        plan_path = Path(tmp) / "plan.json"
        save_plan(plan, plan_path)
        sim_env = {**env, **sim.addresses().env(), "SCANPLAN_STORE": str(Path(tmp) / "s.sqlite")}
        check = [py, "-m", "scanplan", "check", "--plan", str(plan_path), "--point", "1", "--json"]
        warm_env = {**sim_env, "SCANPLAN_CACHE_DIR": str(Path(tmp) / "cache")}
        t_fill = _wall(check, warm_env, 1)
        t_warm = _wall(check, warm_env, repeat)
        t_cold = _wall(check, {**sim_env, "SCANPLAN_CACHE_DIR": "off"}, 1)
    return [
        Result(
            "scanplan check, one point (model cache warm)",
            t_warm,
            "s",
            baseline_name=f"limit {CHECK_LIMIT_S:g} s",
            baseline=CHECK_LIMIT_S,
            target_ratio=1.0,
            notes={
                "times python": round(t_warm / t_python, 2),
                "first run, filling the cache [s]": round(t_fill, 3),
            },
        ),
        Result(
            "scanplan check, one point (cache off)",
            t_cold,
            "s",
            baseline_name=f"limit {CHECK_LIMIT_S:g} s",
            baseline=CHECK_LIMIT_S,
            notes={"times python": round(t_cold / t_python, 2)},
        ),
    ]


def run(quick: bool = False) -> list[Result]:
    repeat = 3 if quick else 7
    py = sys.executable
    env = dict(os.environ)
    t_python = _wall([py, "-c", "pass"], env, repeat)
    t_help = _wall([py, "-m", "scanplan", "--help"], env, repeat)
    results = [
        Result(
            "scanplan --help",
            t_help,
            "s",
            baseline_name="python -c pass",
            baseline=t_python,
            target_ratio=1 / 5,  # at most 5x the interpreter's own start
            notes={"times python": round(t_help / t_python, 2)},
        )
    ]
    with tempfile.TemporaryDirectory() as cache:
        warm_env = {**env, "SCANPLAN_CACHE_DIR": cache}
        optics = [py, "-m", "scanplan", "optics", "--json"]
        t_fill = _wall(optics, warm_env, 1)  # fills the cache
        t_warm = _wall(optics, warm_env, repeat)
    t_cold = _wall(optics, {**env, "SCANPLAN_CACHE_DIR": "off"}, 1 if quick else 3)
    results.append(
        Result(
            "scanplan optics --json (model cache warm)",
            t_warm,
            "s",
            baseline_name=f"limit {OPTICS_LIMIT_S:g} s",
            baseline=OPTICS_LIMIT_S,
            target_ratio=1.0,
            notes={
                "times python": round(t_warm / t_python, 2),
                "python -c pass [s]": round(t_python, 3),
                "first run, filling the cache [s]": round(t_fill, 3),
            },
        )
    )
    results.append(
        Result(
            "scanplan optics --json (cache off: import xtrack, build, twiss)",
            t_cold,
            "s",
            baseline_name=f"limit {OPTICS_LIMIT_S:g} s",
            baseline=OPTICS_LIMIT_S,
            notes={"times python": round(t_cold / t_python, 2)},
        )
    )
    results.extend(_check_process(py, env, repeat, t_python))
    return results
