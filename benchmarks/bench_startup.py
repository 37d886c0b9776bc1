"""Start-up of the command line as whole processes, against a bare ``python -c pass`` measured
in the same run (best of N wall times; the machine's load shows in the baseline too).

Targets (issue 15, item 9): ``scanplan --help`` within 5x the bare interpreter;
``scanplan optics --json`` under 2 s with the model cache warm (:mod:`scanplan.model_cache`).
The cold run (cache off: import xtrack, build the line, twiss) is reported beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import Result

OPTICS_LIMIT_S = 2.0


def _wall(args: list[str], env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
        best = min(best, time.perf_counter() - t0)
    return best


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
    return results
