"""Dask maps against a real scheduler and worker started on 127.0.0.1 (subprocesses): no
worker is a bounded clear error, host:port and DASK_SCHEDULER_ADDRESS work, toy CLs
probabilities are clipped to [0, 1] and counted."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from fixtures.dask_cluster import dask_scheduler, dask_worker
from fixtures.plans import make_plan

from beamline.errors import BeamlineInputError
from beamline.parallel import map_ordered, resolve_scheduler
from scanplan.sensitivity import clip_probabilities, toy_cells, toy_cls_cell, toy_cls_grid

MARK = "SCANPLAN_TEST_WORKER_MARK"


@pytest.fixture()
def scheduler_only():
    """A real ``dask scheduler`` with no worker; its ``host:port``."""
    with dask_scheduler() as (address, _):
        yield address


@pytest.fixture()
def scheduler_with_worker():
    """A real ``dask scheduler`` and one ``dask worker`` whose environment has MARK set."""
    with dask_scheduler() as (address, _), dask_worker(address, env={MARK: "remote"}):
        yield address


def test_scheduler_names():
    assert resolve_scheduler("10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert resolve_scheduler("tcp://h:1") == "tcp://h:1"
    assert resolve_scheduler(None) == "sync"
    with pytest.raises(BeamlineInputError, match="not understood"):
        resolve_scheduler("my cluster")


def test_scheduler_without_workers_fails_clearly_within_the_bound(monkeypatch, scheduler_only):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    address = scheduler_only
    t0 = time.monotonic()
    with pytest.raises(BeamlineInputError, match="has no worker") as info:
        map_ordered(abs, [-1, -2], scheduler=address, worker_timeout_s=2.0)
    assert time.monotonic() - t0 < 20
    assert f"dask worker tcp://{address}" in str(info.value)


def test_host_port_and_environment_address_run_on_the_remote_worker(
    monkeypatch, scheduler_with_worker
):
    address = scheduler_with_worker
    monkeypatch.delenv(MARK, raising=False)
    assert os.environ.get(MARK) is None
    # host:port without tcp://; os.getenv runs where the task runs
    assert map_ordered(os.getenv, [MARK, MARK], scheduler=address) == ["remote", "remote"]
    # the default ("local") honours DASK_SCHEDULER_ADDRESS
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", f"tcp://{address}")
    assert map_ordered(os.getenv, [MARK, MARK, MARK]) == ["remote"] * 3
    # the toy CLs grid on the remote worker equals the in-process one, bit for bit
    plan = make_plan(5)
    args = (plan, [16.9, 17.0], [1e-4, 3e-4])
    remote = toy_cls_grid(*args, n_toys=60, seed=3)
    local = toy_cls_grid(*args, n_toys=60, seed=3, scheduler="sync")
    np.testing.assert_array_equal(remote.cls, local.cls)


def test_toy_cls_clipped_to_unit_interval_and_counted():
    plan = make_plan(5)
    # a negligible signal: P_sb and P_b are equal up to toy fluctuations, the ratio
    # scatters about 1 and part of it exceeds 1
    masses, couplings = [16.9, 17.0, 17.1], [1e-7, 2e-7, 3e-7, 4e-7]
    raw = np.array([toy_cls_cell(c) for c in toy_cells(plan, masses, couplings, 40, 11)])
    above = int(np.count_nonzero(raw > 1.0))
    assert above > 0
    grid = toy_cls_grid(plan, masses, couplings, n_toys=40, seed=11, scheduler="sync")
    assert grid.n_clipped == above
    assert float(grid.cls.max()) <= 1.0 and float(grid.cls.min()) >= 0.0
    np.testing.assert_array_equal(grid.cls.ravel(), np.minimum(raw, 1.0))
    values, n = clip_probabilities(np.array([-0.1, 0.5, 1.3, np.nan]))
    assert n == 2 and values[0] == 0.0 and values[2] == 1.0 and np.isnan(values[3])
