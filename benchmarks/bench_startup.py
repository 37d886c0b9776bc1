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

#: the issue's limit for one ``optics --json`` and one ``check`` process [s]
PROCESS_LIMIT_S = 2.0


def _wall(args: list[str], env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
        best = min(best, time.perf_counter() - t0)
    return best


def _warm_and_cold(
    what: str, cmd: list[str], env: dict[str, str], cache: str, repeat: int, t_python: float
) -> list[Result]:
    """``cmd`` with the model cache warm (``cache``, filled by a first run) against
    :data:`PROCESS_LIMIT_S`, and with the cache off (import xtrack, build the line) beside it."""
    t_fill = _wall(cmd, {**env, "SCANPLAN_CACHE_DIR": cache}, 1)
    t_warm = _wall(cmd, {**env, "SCANPLAN_CACHE_DIR": cache}, repeat)
    t_cold = _wall(cmd, {**env, "SCANPLAN_CACHE_DIR": "off"}, max(1, repeat // 3))
    limit = f"limit {PROCESS_LIMIT_S:g} s"
    return [
        Result(
            f"{what} (model cache warm)",
            t_warm,
            "s",
            target_ratio=1.0,
            notes={
                "times python": round(t_warm / t_python, 2),
                "python -c pass [s]": round(t_python, 3),
                "first run, filling the cache [s]": round(t_fill, 3),
            },
            baseline_name=limit,
            baseline=PROCESS_LIMIT_S,
        ),
        Result(
            f"{what} (cache off: import xtrack, build, twiss)",
            t_cold,
            "s",
            notes={"times python": round(t_cold / t_python, 2)},
            baseline_name=limit,
            baseline=PROCESS_LIMIT_S,
        ),
    ]


def _check_process(py: str, env: dict[str, str], repeat: int, t_python: float) -> list[Result]:
    """``scanplan check --plan P --point 1 --json`` as a process against the simulator at the
    point's currents (an OK verdict, so every read and comparison runs)."""
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
        plan_path = save_plan(plan, Path(tmp) / "plan.json")
        sim_env = {**env, **sim.addresses().env(), "SCANPLAN_STORE": str(Path(tmp) / "s.sqlite")}
        check = [py, "-m", "scanplan", "check", "--plan", str(plan_path), "--point", "1", "--json"]
        return _warm_and_cold(
            "scanplan check, one point", check, sim_env, str(Path(tmp) / "cache"), repeat, t_python
        )


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
        optics = [py, "-m", "scanplan", "optics", "--json"]
        results += _warm_and_cold("scanplan optics --json", optics, env, cache, repeat, t_python)
    results += _check_process(py, env, repeat, t_python)
    return results
