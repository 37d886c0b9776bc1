"""xtrack model vs MAD-X (cpymad) on the same deck: twiss and 6x6 maps at every marker.

MAD-X twiss values are at element exits and xtrack's at entrances: markers have zero length,
so both codes are compared at markers only. MAD-X dispersion is d/dPT, xtrack's d/d(delta):
D_delta = beta0 * D_PT.
"""

from __future__ import annotations

import numpy as np
import pytest

from beamline import optics
from beamline.madx import madx_for, madx_r_matrix, madx_to_xtrack_similarity, madx_twiss
from beamline.model import BeamLine

REL_TOL = 1e-6
#: absolute floor for the relative comparison: values smaller than this are compared absolutely
FLOOR = {"betx_m": 1e-3, "bety_m": 1e-3, "alfx": 1e-3, "alfy": 1e-3, "dx_m": 1e-4, "dpx": 1e-4}


def _configurations():
    yield "run3 matched", {}
    yield "polarity -+-+", {"polarity": {"Q1": -1, "Q2": 1, "Q3": -1, "Q4": 1}}
    yield "polarity ++++", {"polarity": {"Q1": 1, "Q2": 1, "Q3": 1, "Q4": 1}}
    yield (
        "265 MeV, quads changed",
        {
            "energy_mev": 265.0,
            "currents": {"Q1": 15.0, "Q2": 12.0, "Q3": 18.0, "Q4": 20.0},
        },
    )


def configure(cfg: dict) -> BeamLine:
    """The run3_2022 model with matched dipoles and a configuration of ``_configurations``."""
    bl = BeamLine("run3_2022", cfg.get("energy_mev"), match_dipoles=True)
    for quad, sign in cfg.get("polarity", {}).items():
        bl.set_polarity(quad, sign)
    bl.set_currents(cfg.get("currents", {}))
    return bl


@pytest.fixture(scope="module", params=list(_configurations()), ids=lambda c: c[0])
def configured(request):
    bl = configure(request.param[1])
    madx = madx_for(bl)
    yield bl, madx_twiss(madx, bl)
    madx.quit()


def test_twiss_at_every_marker_agrees_with_madx(configured):
    bl, tw_m = configured
    beta0 = float(bl.line.particle_ref.beta0[0])
    tw_x = optics.twiss(bl).drop_duplicates("name", keep="last").set_index("name")
    markers = [n for n in tw_x.index if tw_x.loc[n, "element_type"] == "Marker"]
    assert len(markers) >= 20
    madx_rows = {n.split(":")[0]: i for i, n in enumerate(tw_m.name)}
    for name in markers:
        i = madx_rows[name]
        ref = {
            "betx_m": tw_m.betx[i],
            "bety_m": tw_m.bety[i],
            "alfx": tw_m.alfx[i],
            "alfy": tw_m.alfy[i],
            "dx_m": beta0 * tw_m.dx[i],
            "dpx": beta0 * tw_m.dpx[i],
        }
        for key, expected in ref.items():
            got = tw_x.loc[name, key]
            scale = max(abs(expected), FLOOR[key])
            assert abs(got - expected) <= REL_TOL * scale, (name, key, got, expected)


def test_r_matrix_at_every_marker_agrees_with_madx(configured):
    bl, tw_m = configured
    beta0 = float(bl.line.particle_ref.beta0[0])
    s = madx_to_xtrack_similarity(beta0)
    start = bl.line.element_names[0]
    madx_rows = {n.split(":")[0]: i for i, n in enumerate(tw_m.name)}
    tw_x = optics.twiss(bl)
    markers = sorted(set(tw_x.name[tw_x.element_type == "Marker"]))
    for name in markers:
        r_x = optics.r_matrix(bl, start, name).to_numpy()
        r_m = s @ madx_r_matrix(tw_m, madx_rows[name]) @ np.linalg.inv(s)
        np.testing.assert_allclose(r_x, r_m, rtol=REL_TOL, atol=REL_TOL * 1e-3, err_msg=name)
