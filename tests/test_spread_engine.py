"""The shared spread engine against the per-energy reference path (same particles), and the
engine's guards. The reference tracks every particle from the source through the whole line
with xtrack at each energy, so agreement checks the claim that the energy selection is the
same for every matched energy in normalised coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beamline import spread
from beamline.errors import BeamlineInputError
from beamline.source import load_source

COLUMNS = [
    "n_transmitted",
    "mean_energy_mev",
    "rel_spread_rms",
    "rel_spread_fwhm",
    "x_target_mm",
    "y_target_mm",
    "sigma_x_target_mm",
    "x_timepix_mm",
    "sigma_y_timepix_mm",
]


def _both(points, grid, **kw):
    common = {"grid": grid, "n_particles": 30_000, "chunk_particles": 12_000, "seed": 3}
    common.update(kw)
    shared = spread.compute_spread(points=points, scheduler="sync", **common)
    ref = spread.compute_spread(points=points, scheduler="sync", engine="per_energy", **common)
    return shared, ref


@pytest.mark.slow
def test_shared_engine_equals_per_energy_tracking() -> None:
    """Every slit (off-centre jaws included), mis-set DHSTB01 and DHSTB02, scattering on:
    the transmitted counts are identical and every statistic agrees to round-off."""
    grid = spread.make_grid(
        jaws_mm={"SLTB4": [(-0.95, 0.95), (-0.5, 1.5), (-2.5, 2.5)]},
        gaps_mm={"SLTB2": [1.0, 1.74, 3.0], "SLTB3": [2.0, 4.2], "SLTB5": [2.0, 5.0]},
    )
    points = [
        spread.ScanPoint(262.0),
        spread.ScanPoint(282.5),
        spread.ScanPoint(300.0, dhstb02_relative_offset=-0.004),
        spread.ScanPoint(282.5, dhstb01_offset_a=0.4),  # selects another normalised momentum
    ]
    shared, ref = _both(
        points, grid, source=load_source(), spot_grid=spread.SpotGrid.uniform(40.0, 15.0, 0.5)
    )
    assert shared.metadata["engine"] == "shared" and ref.metadata["engine"] == "per_energy"
    assert (shared.table["n_transmitted"] == ref.table["n_transmitted"]).all()
    assert shared.table["n_transmitted"].sum() > 2000  # not trivially empty
    pd.testing.assert_frame_equal(
        shared.table[COLUMNS], ref.table[COLUMNS], check_exact=False, rtol=1e-11, atol=1e-13
    )
    for i in ref.spots:
        assert np.array_equal(shared.spots[i], ref.spots[i])
    # the shared path tracks downstream of SLTB4 only what passes SLTB2-SLTB4
    assert max(shared.metadata["candidates_after_sltb4"]) < 0.1


def test_shared_engine_equals_per_energy_for_padme_source_with_energy_loss() -> None:
    """The source defined after the selection (at the window), window and target energy
    loss with fluctuations: same candidates on both paths."""
    grid = spread.make_grid(gaps_mm={"SLTB4": [1.0, 1.9], "SLTB3": [4.2]})
    points = [spread.ScanPoint(270.0), spread.ScanPoint(290.0)]
    shared, ref = _both(points, grid, n_particles=20_000)
    assert shared.metadata["energy_loss"].startswith("full")
    assert (shared.table["n_transmitted"] == ref.table["n_transmitted"]).all()
    pd.testing.assert_frame_equal(shared.table[COLUMNS], ref.table[COLUMNS], rtol=1e-11)


def test_shared_engine_without_scattering_and_with_one_energy() -> None:
    grid = spread.make_grid(gaps_mm={"SLTB4": [1.0, 1.9]})
    src = load_source(scattering=False)
    shared, ref = _both([spread.ScanPoint(282.5)], grid, source=src, n_particles=20_000)
    pd.testing.assert_frame_equal(shared.table[COLUMNS], ref.table[COLUMNS], rtol=1e-11)


def test_selection_section_must_be_field_free() -> None:
    from beamline.spread_shared import numpy_section

    bl = spread.line_for(None)
    names = bl.line.element_names
    with pytest.raises(BeamlineInputError, match="field-free"):
        numpy_section(bl, names.index("sltb4_exit"), names.index("q1_exit"))
    ops = numpy_section(bl, names.index("mylar_window"), names.index("sltb4_exit"))
    assert {op.kind for op in ops} <= {"drift", "rect", "ellipse", "none"}
    # the drifts cover the whole section (no element left out)
    total = sum(op.params[0] for op in ops if op.kind == "drift")
    s_of = dict(zip(bl.line.get_table().name, bl.line.get_table().s, strict=False))
    assert total == pytest.approx(s_of["sltb4_exit"] - s_of["mylar_window"], abs=1e-12)


def test_bad_engine_name() -> None:
    with pytest.raises(BeamlineInputError, match="engine must be one of"):
        spread.compute_spread([282.5], engine="fast", n_particles=10, scheduler="sync")
