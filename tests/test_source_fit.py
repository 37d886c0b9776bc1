"""Source fit: recovers hidden source parameters and energy offset from simulated spot data.

The simulated measurements come from the spread engine (every particle tracked through the
slits and apertures, window and target scattering) with a source whose size, divergence,
momentum spread and energy offset are hidden from the fit; the fit starts from PADME's
nominal source (1 mm, 1 mrad, 0.248 %, no offset) and must find them within its stated
uncertainties. Energy loss is taken at its mean ("mean"): its fluctuations put a sparse
radiative tail on the rms widths that two independent samples do not share (a real fit
wants robust widths, as the TimePix spot estimate uses).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from beamline import source_fit as sf
from beamline import spread
from beamline.source import spread_source

SOURCE = spread_source("run3_2022").with_energy_loss("mean")
TRUTH = {"size_mm": 1.2, "divergence_mrad": 0.8, "sigma_delta": 0.0030, "energy_offset_mev": 0.9}


def simulate(energies, eps_values, n: int, seed: int) -> list[sf.SpotObservation]:
    base = SOURCE
    s0, d0 = TRUTH["size_mm"] * 1e-3, TRUTH["divergence_mrad"] * 1e-3
    obs = []
    for e in energies:
        src = base.with_beam(
            betx_m=s0 / d0, bety_m=s0 / d0, emit_x_m=s0 * d0, emit_y_m=s0 * d0,
            sigma_delta=TRUTH["sigma_delta"], delta_offset=TRUTH["energy_offset_mev"] / e,
        )  # fmt: skip
        # one seed per setting: the engine draws the same deviates for every point of a
        # call, and spots at different settings are different bunches on the machine
        rows = []
        for eps in eps_values:
            seed += 1
            pt = spread.ScanPoint(e, dhstb02_relative_offset=eps)
            table = spread.compute_spread(
                points=[pt], source=src, n_particles=n, scheduler="sync", seed=seed
            ).table
            rows.extend(table.itertuples())
        for r in rows:
            for p in ("target", "timepix"):
                obs.append(
                    sf.SpotObservation(
                        p, e, r.dhstb01_current_a, r.dhstb02_current_a,
                        getattr(r, f"x_{p}_mm"), getattr(r, f"y_{p}_mm"),
                        getattr(r, f"sigma_x_{p}_mm"), getattr(r, f"sigma_y_{p}_mm"),
                        int(r.n_transmitted),
                    )
                )  # fmt: skip
    return obs


@pytest.mark.slow
def test_tracked_fit_recovers_hidden_parameters() -> None:
    """Recovery within 3 stated sigmas. The quoted uncertainties include the tracked
    model's own Monte Carlo noise (shared by every point: re-seeded evaluations) and the
    correlation of a setting's target and TimePix spots (the same particles); before they
    did, pulls reached 2.6 (size) and 4.0 (divergence) on these data. Their coverage is
    tested for the linear model by an ensemble in test_source_fit_coverage; for the tracked
    model it is NOT established: five tracked fits to independent data sets gave size pulls
    +0.2, -3.9, -1.8, -2.5, -1.7 and divergence pulls +0.6, -3.8, -0.1, +0.1, +2.8 (offset
    and spread within 1.1), and this case with restarts along the size found chi2 13.0 at
    1.60 mm against 18.5 here: the local curvature of the noisy model understates the size's
    uncertainty (a profile or bootstrap is the fix, issue 14 item 5)."""
    obs = simulate((265.0, 298.0), (-0.004, 0.004), n=30_000, seed=11)
    fit = sf.fit_source_tracked(obs, SOURCE, n_particles=15_000, seed=5)
    for key, truth in TRUTH.items():
        assert fit.sigmas[key] > 0
        assert fit.values[key] == pytest.approx(truth, abs=3.0 * fit.sigmas[key]), key
    corr = fit.correlation
    assert np.allclose(corr, corr.T) and np.all(np.abs(corr) <= 1.0 + 1e-9)
    # the fit is informative: energy offset to < 0.05 MeV, divergence to < 5 %
    assert fit.sigmas["energy_offset_mev"] < 0.05
    assert fit.sigmas["divergence_mrad"] < 0.05 * TRUTH["divergence_mrad"]
    assert fit.dof == 3 * len(obs) - 4


def test_linear_fit_finds_the_energy_offset() -> None:
    """Centroids depend on the offset through the dispersion alone: the Gaussian model gets
    it right even where slit truncation biases its widths. It has no energy loss: it finds
    the energy at the target, the hidden offset minus the window's mean loss (E x/X0 +
    dE/dx rho x, PDG)."""
    obs = simulate((282.5,), (-0.004, 0.0, 0.004), n=20_000, seed=2)
    fit = sf.fit_source(obs, spread.line_for(None), layers=SOURCE.active_layers)
    window_loss = 282.5 * 125e-6 / 0.287 + 1.85 * 1.39 * 0.0125
    assert fit.values["energy_offset_mev"] == pytest.approx(0.9 - window_loss, abs=0.05)
    with pytest.raises(Exception, match="at least two"):
        sf.fit_source(obs[:1], spread.line_for(None))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "calib", "source", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_cli_from_csv_and_bad_input(tmp_path) -> None:
    obs = simulate((282.5,), (-0.004, 0.004), n=10_000, seed=4)
    path = tmp_path / "spots.csv"
    from scanplan.source_fit import CSV_COLUMNS

    lines = [",".join(CSV_COLUMNS)]
    for o in obs:
        lines.append(
            f"{o.point},{o.energy_mev},{o.dhstb01_current_a},{o.dhstb02_current_a},{o.x_mm},"
            f"{o.y_mm},{o.sigma_x_mm},{o.sigma_y_mm},{o.hits}"
        )
    path.write_text("\n".join(lines) + "\n")
    out = _run("--from-csv", str(path), "--linear", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["values"]) == set(sf.PARAMETERS)
    assert math.isfinite(doc["values"]["energy_offset_mev"])
    # one energy, two settings: these data do not fix the size (the fit runs to its
    # boundary 0); the quoted sigma must say so rather than quote ~0 (pinv of J^T J did)
    size, size_sigma = doc["values"]["size_mm"], doc["sigmas"]["size_mm"]
    assert abs(size - TRUTH["size_mm"]) < 3 * size_sigma or any(
        "not determined" in n and "size_mm" in n for n in doc["notes"]
    )
    bad = _run("--from-csv", str(path), "--from-store", str(tmp_path / "x.sqlite"))
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
    path.write_text("point,energy_mev\ntimepix,282.5\n")
    bad = _run("--from-csv", str(path))
    assert bad.returncode == 2 and "missing column" in bad.stderr


def test_observations_from_store(tmp_path) -> None:
    """Verdicts as the checker writes them (spot + readings) become TimePix observations,
    the TimePix reference offset of the tolerances removed."""
    from scanplan.check import CheckTolerances
    from scanplan.planning import PlanRequest, plan_scan
    from scanplan.source_fit import observations_from_store
    from scanplan.store.sqlite import SQLiteStore

    plan = plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), control="none")).sealed()
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.record_plan(plan)
    tol = CheckTolerances.load()
    for k, pt in enumerate(plan.points[:3]):
        store.append(
            "verdict",
            plan_sha256=plan.content_sha256,
            period=pt.period,
            payload={
                "spot": {
                    "x_mm": 1.0 + k,
                    "y_mm": -1.0,
                    "sigma_x_mm": 3.0,
                    "sigma_y_mm": 2.0,
                    "hits_used": 4000,
                },
                "readings": {
                    "DHSTB001": {"output_current_a": pt.dhstb01_current_a},
                    "DHSTB002": {"output_current_a": pt.dhstb02_current_a},
                },
            },
            idempotency_key=f"test:{k}",
            time_utc="2026-12-01T00:00:00Z",
        )
    obs = observations_from_store(tmp_path / "s.sqlite")
    assert len(obs) == 3
    assert obs[1].x_mm == pytest.approx(2.0 - tol.spot.reference_x_mm)
    assert obs[0].energy_mev == plan.points[0].e_beam_mev and obs[0].hits == 4000
