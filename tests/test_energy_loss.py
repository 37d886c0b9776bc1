"""beamline.energy_loss against the PDG formulas it implements (independent closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import energy_loss as el
from beamline import spread
from beamline.source import load_source, spread_source


def _layers():
    return {la.name: la for la in load_source().layers}


def test_mean_losses_in_the_window() -> None:
    """Mean bremsstrahlung loss E x/X0 (0.12 MeV at 282 MeV in 125 um Mylar, issue 14) and
    ionisation dE/dx rho x (~0.03 MeV)."""
    win = _layers()["mylar_window"]
    t = 125e-6 / 0.287
    n = 400_000
    frac, ion = el.sample_losses(win, n, np.random.default_rng(1), "full")
    # the mean of a sum of rare hard photons converges slowly: sigma of the mean fraction
    # is sqrt(t <y^2>/n), <y^2> = integral of y (4/3 (1-y) + y^2) = 4/3 (1/2 - 1/3) + 1/4
    sigma = math.sqrt(t * (4 / 3 * (1 / 2 - 1 / 3) + 1 / 4) / n)
    assert frac.mean() == pytest.approx(t, abs=4 * sigma)
    assert 282.5 * t == pytest.approx(0.12, abs=0.01)
    assert ion.mean() == pytest.approx(1.85 * 1.39 * 0.0125, rel=0.02)
    mean_f, mean_i = el.sample_losses(win, 10, np.random.default_rng(1), "mean")
    assert np.all(mean_f == t) and np.allclose(mean_i, 1.85 * 1.39 * 0.0125)
    off_f, off_i = el.sample_losses(win, 10, np.random.default_rng(1), "off")
    assert not off_f.any() and not off_i.any()


def test_photon_spectrum_shape() -> None:
    """Fraction of particles radiating a photon above y: t * integral_y^1 (4/3(1-u)+u^2)/u
    (complete screening), here for y = 0.01 and 0.1."""
    tgt = _layers()["padme_target"]
    t = tgt.x_over_x0
    frac, _ = el.sample_losses(tgt, 1_000_000, np.random.default_rng(3), "full")
    for y in (0.01, 0.1):
        expect = t * (4 / 3 * -math.log(y) - 4 / 3 * (1 - y) + (1 - y * y) / 2)
        got = (frac > y).mean()
        assert got == pytest.approx(expect, rel=4 / math.sqrt(expect * 1e6) + 0.02)


def test_samples_do_not_depend_on_chunking() -> None:
    layers = load_source().layers
    a = el.losses_for(layers, 5, 0, 120_000, "full")
    b = el.losses_for(layers, 5, 70_000, 120_000, "full")
    for name in a:
        assert np.array_equal(a[name][0][70_000:], b[name][0])
        assert np.array_equal(a[name][1][70_000:], b[name][1])


def test_energy_loss_gives_a_low_energy_tail_and_is_switchable() -> None:
    grid = spread.make_grid()
    kw = {"grid": grid, "n_particles": 60_000, "scheduler": "sync", "seed": 2}
    src = spread_source("run3_2022")
    full = spread.compute_spread([282.5], source=src, **kw).table.iloc[0]
    off = spread.compute_spread([282.5], source=src.with_energy_loss("off"), **kw).table.iloc[0]
    mean = spread.compute_spread([282.5], source=src.with_energy_loss("mean"), **kw)
    # mean mode: every particle loses the window's mean (brems + ionisation) before the
    # target; the transmitted mean energy drops by that
    win = _layers()["mylar_window"]
    drop = 282.5 * win.x_over_x0 + 1.85 * 1.39 * 0.0125
    m = mean.table.iloc[0]
    assert off["mean_energy_mev"] - m["mean_energy_mev"] == pytest.approx(drop, rel=0.05)
    assert "mean" in mean.metadata["energy_loss"]
    # fluctuations: a one-sided tail (rms grows, FWHM hardly), more particles below -3 rms
    assert full["rel_spread_rms"] > off["rel_spread_rms"]
    assert full["low_tail_fraction"] > off["low_tail_fraction"]
    assert full["rel_spread_fwhm"] == pytest.approx(off["rel_spread_fwhm"], rel=0.05)
