"""Parallel map: order, seeds, errors; a local Dask cluster gives bit-identical spread tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beamline import spread
from beamline.errors import BeamlineInputError
from beamline.parallel import map_ordered, spawn_seeds


def _square(x: int) -> int:
    return x * x


def test_sync_map_keeps_order_and_reports_progress():
    done: list[int] = []
    assert map_ordered(_square, [3, 1, 2], scheduler="sync", on_done=done.append) == [9, 1, 4]
    assert done == [0, 1, 2]
    assert map_ordered(_square, [], scheduler="sync") == []


def test_seeds_are_deterministic_and_distinct():
    a, b = spawn_seeds(42, 5), spawn_seeds(42, 5)
    assert a == b and len(set(a)) == 5
    assert spawn_seeds(43, 5) != a
    assert all(0 <= s < 2**63 for s in a)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"scheduler": "threads"}, "not understood"), ({"n_workers": 0}, "n_workers")],
)
def test_bad_scheduler_arguments(kwargs, fragment):
    with pytest.raises(BeamlineInputError, match=fragment):
        map_ordered(_square, [1, 2], **kwargs)


@pytest.mark.slow
def test_local_cluster_gives_the_sync_result_bit_for_bit():
    grid = spread.make_grid(gaps_mm={"SLTB4": [1.0, 1.9, 3.0]})
    kw = {
        "grid": grid,
        "n_particles": 20_000,
        "chunk_particles": 6000,
        "seed": 5,
        "spot_grid": spread.SpotGrid.uniform(40.0, 15.0, 0.5),
    }
    energies = [262.0, 282.0, 300.0]
    done: list[tuple[int, int]] = []
    local = spread.compute_spread(
        energies, scheduler="local", n_workers=2, progress=lambda d, t: done.append((d, t)), **kw
    )
    sync = spread.compute_spread(energies, scheduler="sync", **kw)
    pd.testing.assert_frame_equal(local.table, sync.table, check_exact=True)
    assert local.table["n_transmitted"].sum() > 0
    assert sorted(sync.spots) == [0, 1, 2]
    for i in sync.spots:
        assert np.array_equal(local.spots[i], sync.spots[i])
    jobs = done[0][1]  # one job per particle chunk (shared engine): 20000 / 6000 -> 4
    assert jobs == 4 and sorted(done) == [(k, jobs) for k in range(1, jobs + 1)]
