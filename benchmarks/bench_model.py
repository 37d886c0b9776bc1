"""Model speed: tracking cost per particle with the exact fast bends vs xtrack's default
bend settings (same line, same particles, same run), and whole-process CLI wall times."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from benchmarks.common import Result, best_of


def _particles(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """A narrow beam (0.1 mm, 0.1 mrad, 0.1 % momentum spread) that stays inside every
    aperture, so each particle crosses the whole line: the cost measured is per passage."""
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.normal(0, 1e-4, n),
        px=rng.normal(0, 1e-4, n),
        y=rng.normal(0, 1e-4, n),
        py=rng.normal(0, 1e-4, n),
        delta=rng.normal(0, 1e-3, n),
    )


def _track_time(bl, coords, repeat: int) -> float:
    """Best time [s] of the tracking call alone (particles rebuilt outside the timing)."""
    bl.track(bl.build_particles(**coords))  # warm-up
    best = float("inf")
    for _ in range(repeat):
        p = bl.build_particles(**coords)
        t0 = time.perf_counter()
        bl.track(p)
        best = min(best, time.perf_counter() - t0)
    return best


def _process_time(args: list[str], repeat: int) -> float:
    def once():
        subprocess.run(args, check=True, capture_output=True, timeout=300)

    return best_of(once, repeat)


def run(quick: bool = False) -> list[Result]:
    from beamline.model import BeamLine

    n = 5_000 if quick else 50_000
    fast = BeamLine("run3_2022", match_dipoles=True)
    slow = BeamLine("run3_2022", match_dipoles=True, fast_bends=False)
    for bl in (fast, slow):  # slits open: every particle goes the whole way
        for slit in ("SLTB2", "SLTB4", "SLTB5"):
            bl.set_gap(slit, 53.0)
        bl.set_gap("SLTB3", 32.0)
    coords = _particles(n)
    t_fast = _track_time(fast, coords, repeat=3 if quick else 5)
    t_slow = _track_time(slow, coords, repeat=1 if quick else 2)
    p = fast.build_particles(**coords)
    fast.track(p)
    results = [
        Result(
            name="track whole line, fast exact bends",
            measured=t_fast / n * 1e6,
            unit="us/particle",
            baseline_name="default bend settings",
            baseline=t_slow / n * 1e6,
            target_ratio=20.0,
            notes={"particles": n, "surviving_fraction": float(np.mean(p.state == 1))},
        )
    ]
    t0 = time.perf_counter()
    help_s = _process_time([sys.executable, "-m", "scanplan.cli.main", "--help"], 3)
    optics_s = _process_time(
        [sys.executable, "-m", "scanplan.cli.main", "optics"], 1 if quick else 3
    )
    python_s = _process_time([sys.executable, "-c", "pass"], 3)
    results += [
        Result(
            "scanplan --help (whole process)", help_s, "s", notes={"python_startup_s": python_s}
        ),
        Result(
            "scanplan optics (whole process)", optics_s, "s", notes={"python_startup_s": python_s}
        ),
    ]
    results[-1].notes["measured_in_s"] = round(time.perf_counter() - t0, 1)
    return results
