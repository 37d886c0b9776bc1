"""MAD-X TRACK (cpymad) on the same deck and the same particles, slits closed in MAD-X:
the transmitted set equals the one the spread engine gets by applying the slits afterwards."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import spread
from beamline.apertures import SLITS, Jaws
from beamline.madx import madx_for
from beamline.source import draw_deviates, initial_coordinates, load_source

cpymad = pytest.importorskip("cpymad.madx")

ENERGY_MEV = 282.5
N = 2000


def madx_survivors(bl, coords, setting: dict[str, Jaws]) -> np.ndarray:
    """Indices of the particles that reach the end of the line in MAD-X TRACK."""
    slits: dict[str, float] = {}
    for slit in SLITS:
        j = setting.get(slit) or Jaws.centred(float(bl.spec.slits[slit.lower()]["max_gap_mm"]))
        slits[f"{slit.lower()}_gap_mm"] = j.gap_mm
        slits[f"{slit.lower()}_center_mm"] = j.center_mm
    madx = madx_for(bl, overrides=slits)
    beta0 = float(bl.line.particle_ref.beta0[0])
    d = coords["delta"]
    pt = np.sqrt(d * d + 2 * d + 1 / beta0**2) - 1 / beta0  # MAD-X PT = xtrack ptau
    cmds = ["track, onepass, aperture, recloss;"]
    for i in range(d.size):
        cmds.append(
            f"start, x={coords['x'][i]:.17g}, px={coords['px'][i]:.17g}, "
            f"y={coords['y'][i]:.17g}, py={coords['py'][i]:.17g}, t=0, pt={pt[i]:.17g};"
        )
    # maxaper: RUN otherwise drops |px| > 0.01 (its default), which is no aperture of the line
    cmds += ["run, turns=1, maxaper={1, 1, 1, 1, 10, 1};", "endtrack;"]
    madx.input("\n".join(cmds))
    lost = set()
    if "trackloss" in madx.table:
        lost = {int(v) - 1 for v in madx.table.trackloss.number}
    madx.quit()
    return np.array(sorted(set(range(d.size)) - lost), dtype=int)


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting",
    [
        {},  # slits open: only the fixed apertures
        {"SLTB2": Jaws.centred(1.74), "SLTB3": Jaws.centred(4.2), "SLTB4": Jaws.centred(1.9),
         "SLTB5": Jaws.centred(5.0)},
        {"SLTB4": Jaws(-1.5, 0.5)},
        {"SLTB2": Jaws.centred(1.0), "SLTB4": Jaws.centred(4.0), "SLTB5": Jaws.centred(2.0)},
    ],
)  # fmt: skip
def test_transmitted_set_equals_madx_track(setting, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MAD-X TRACK writes checkpoint_restart.dat in the cwd
    bl = spread.line_for(None)
    spread.configure_point(bl, spread.ScanPoint(ENERGY_MEV))
    src = load_source(scattering=False)
    # a beam narrowed in delta so that a good share of the particles reaches the slits' edges
    c = initial_coordinates(src.beam.replace(sigma_delta=0.003), draw_deviates(21, 0, N, 0))
    rec = spread.track_particles(bl, c)
    ours = np.flatnonzero(spread.transmitted(rec, setting))
    madx = madx_survivors(bl, c, setting)
    assert ours.size > 20
    differ = np.setxor1d(ours, madx)
    # same set up to particles sitting on a jaw edge (different integrators)
    assert differ.size <= max(2, math.ceil(0.01 * ours.size)), (ours.size, madx.size, differ)
