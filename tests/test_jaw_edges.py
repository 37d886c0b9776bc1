"""Jaw-edge model: escape by multiple scattering (PDG lateral displacement l theta0 / sqrt 3)
and the tail it gives, switchable through the downstream acceptance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import spread
from beamline.jaw_edges import downstream_acceptance, escape_length_m, jaw_edge_tail
from beamline.source import draw_deviates, initial_coordinates, load_source


def test_escape_length_solves_the_pdg_displacement() -> None:
    p = 282.0
    depths = np.array([1e-6, 1e-5, 1e-4])
    ell = escape_length_m(depths, p)
    t = ell / 3.50e-3  # tungsten X0 (PDG)
    theta0 = 13.6 / p * np.sqrt(t) * (1 + 0.088 * np.log10(t))
    assert ell * theta0 / math.sqrt(3) == pytest.approx(depths, rel=1e-6)
    assert np.all(np.diff(ell) > 0)


@pytest.fixture(scope="module")
def tracked():
    bl = spread.line_for(None)
    spread.configure_point(bl, spread.ScanPoint(282.5))
    src = load_source().with_energy_loss("off")
    dev = draw_deviates(3, 0, 150_000, len(src.layers))
    rec = spread.track_particles(bl, initial_coordinates(src.beam, dev), source=src,
                                 kick_deviates=dev[5:])  # fmt: skip
    return bl, rec


def test_escaped_particles_lose_energy_and_the_acceptance_switches_them(tracked) -> None:
    bl, rec = tracked
    setting = spread.settings_jaws()
    p0 = float(bl.line.particle_ref.p0c[0]) * 1e-6
    tail = jaw_edge_tail(rec, setting, p0)
    assert tail.n_touching > 0 and 0 < tail.index.size < tail.n_touching
    assert np.all(tail.delta < rec["delta"][tail.index])  # energy only lost
    assert np.all(tail.path_m < 0.035)
    none = jaw_edge_tail(rec, setting, p0, acceptance=0.0)
    assert none.index.size == 0
    for slit, jaws in setting.items():
        bl.set_jaws(slit, jaws.negative_mm, jaws.positive_mm)
    try:
        acc = downstream_acceptance(bl)
    finally:
        spread.configure_point(bl, spread.ScanPoint(282.5))
    assert 0 < acc < 0.01


def test_effect_on_spread_and_line_shape() -> None:
    """At the 2022 slits SLTB5 (5 mm, dispersive) keeps the SLTB4 jaw tail out; with SLTB5
    open some escaped particles reach the target and lengthen the low-energy tail."""
    from beamline.apertures import Jaws
    from beamline.jaw_edges import jaw_edge_effect

    run3 = jaw_edge_effect(282.5, n_particles=150_000)
    assert run3["escaped_in_acceptance"] == 0 and run3["downstream_acceptance"] < 0.002
    setting = spread.settings_jaws()
    setting["SLTB5"] = Jaws.centred(53.0)
    wide = jaw_edge_effect(282.5, setting, n_particles=150_000)
    assert wide["downstream_acceptance"] > run3["downstream_acceptance"]
    assert wide["n_with_edges"] >= wide["n_black"]
    below_black = wide["low_tail_black"] * wide["n_black"]
    below_edges = wide["low_tail_with_edges"] * wide["n_with_edges"]
    assert below_edges >= below_black - 1e-9  # escapes only add to the low-energy side
