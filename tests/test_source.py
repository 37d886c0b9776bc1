"""Beam source: seeded particles with the requested moments; Highland widths; divergence scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline.errors import BeamlineInputError
from beamline.scattering import highland_theta0_rad
from beamline.source import (
    BLOCK,
    draw_deviates,
    initial_coordinates,
    load_source,
    scale_divergence,
    waist,
)


def test_highland_matches_facts_and_pdg_formula():
    # facts 2: theta0 ~ 0.7 mrad in the 125 um Mylar window at 282 MeV
    src = load_source()
    window = {la.name: la for la in src.layers}["mylar_window"]
    assert window.theta0_rad(282.0) == pytest.approx(0.7e-3, rel=0.05)
    # PDG eq. written out by hand for 100 um diamond (X0 12.13 cm) at 282.5 MeV/c
    p, m = 282.5, 0.51099895
    beta = p / math.hypot(p, m)
    x = 100e-6 / 0.1213
    expected = 13.6 / (beta * p) * math.sqrt(x) * (1 + 0.088 * math.log10(x / beta**2))
    assert highland_theta0_rad(p, x) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(BeamlineInputError):
        highland_theta0_rad(-1.0, x)


def test_source_defaults_scattering_on_with_two_layers():
    src = load_source()
    assert src.scattering and [la.element for la in src.active_layers] == [
        "mylar_window",
        "padme_target",
    ]
    assert load_source(scattering=False).active_layers == ()
    assert [la.name for la in src.without_layer("mylar_window").active_layers] == ["padme_target"]
    with pytest.raises(BeamlineInputError):
        load_source("no_such_beam")
    with pytest.raises(BeamlineInputError):
        src.with_layer("nope", thickness_m=1.0)


def test_particles_have_the_twiss_moments():
    beam = load_source().beam.replace(delta_offset=0.002)
    n = 200_000
    c = initial_coordinates(beam, draw_deviates(7, 0, n, 2))
    xp = c["px"] / (1 + c["delta"])
    tol = 4 / math.sqrt(n)  # ~4 sigma of a sample variance
    assert np.var(c["x"]) == pytest.approx(beam.emit_x_m * beam.betx_m, rel=3 * tol)
    gamma = (1 + beam.alfx**2) / beam.betx_m
    assert np.var(xp) == pytest.approx(beam.emit_x_m * gamma, rel=3 * tol)
    corr = np.mean(c["x"] * xp) / (beam.emit_x_m * beam.betx_m)
    assert corr == pytest.approx(-beam.alfx / beam.betx_m, rel=3 * tol)
    assert np.mean(c["delta"]) == pytest.approx(0.002, abs=4 * beam.sigma_delta / math.sqrt(n))
    assert np.std(c["delta"]) == pytest.approx(beam.sigma_delta, rel=3 * tol)


def test_particle_numbers_do_not_depend_on_chunking_or_layers():
    n = BLOCK + 1234
    whole = draw_deviates(3, 0, n, 2)
    parts = np.hstack([draw_deviates(3, a, min(n, a + 7777), 2) for a in range(0, n, 7777)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(draw_deviates(3, 0, n, 0), whole[:5])
    assert not np.array_equal(draw_deviates(4, 0, 100, 2), whole[:, :100])


def test_scale_divergence_keeps_the_waist():
    beam = load_source().beam
    dist, beta_star = waist(beam)
    # facts/beam file: waist of 1 mm x 1 mrad at SLTB2, 2.370 m downstream of the start
    assert dist == pytest.approx(2.370, rel=1e-3)
    scaled = scale_divergence(beam, 2.0)
    d2, b2 = waist(scaled)
    assert d2 == pytest.approx(dist, rel=1e-12)
    assert math.sqrt(scaled.emit_x_m * b2) == pytest.approx(
        math.sqrt(beam.emit_x_m * beta_star), rel=1e-12
    )
    assert math.sqrt(scaled.emit_x_m / b2) == pytest.approx(
        2 * math.sqrt(beam.emit_x_m / beta_star), rel=1e-12
    )
    with pytest.raises(BeamlineInputError):
        scale_divergence(beam, 0.0)
