"""Optics and calibration plots: fine sampling against xtrack's twiss at element exits
(an independent computation: xtrack's thick maps), labels that do not overlap, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest

from beamline import plots


@pytest.fixture(scope="module")
def line():
    from beamline.model import BeamLine

    return BeamLine("run3_2022")


def test_transport_inside_magnets_ends_on_xtrack_twiss(line) -> None:
    from beamline.optics import twiss

    tw = twiss(line).reset_index(drop=True)
    checked = 0
    for i, row in enumerate(tw.itertuples()):
        el = line.line.element_dict.get(row.name)
        if type(el).__name__ not in ("Quadrupole", "Bend"):
            continue
        nxt = tw.iloc[i + 1]
        end = plots.transport_twiss(el, row, np.array([float(el.length)]))
        for key in ("betx_m", "bety_m", "dx_m"):
            assert end[key][0] == pytest.approx(nxt[key], rel=1e-6, abs=1e-9), (row.name, key)
        checked += 1
    assert checked == 6  # two dipoles, four quadrupoles


def test_fine_sampling_has_points_inside_every_magnet(line) -> None:
    from beamline.optics import twiss

    tw = twiss(line)
    fine = plots.fine_twiss(line, tw)
    s_q1 = tw.set_index("name").loc["q1", "s_m"]
    inside = fine[(fine.s_m > s_q1) & (fine.s_m < s_q1 + 0.263)]
    assert len(inside) >= plots.SAMPLES_PER_ELEMENT - 2
    assert fine.s_m.is_monotonic_increasing


def test_label_rows_do_not_overlap() -> None:
    xs = [0.0, 0.2, 0.3, 0.35, 1.0, 5.0]
    rows = plots.label_rows(xs, min_gap=0.5, n_rows=4)
    for r in set(rows):
        on_row = sorted(x for x, q in zip(xs, rows, strict=True) if q == r)
        assert all(b - a >= 0.5 for a, b in pairwise(on_row))


def test_figures_and_cli_plot(line, tmp_path) -> None:
    fig = plots.optics_figure(line)
    assert len(fig.axes) == 4
    assert plots.calibration_figure().axes[0].get_legend() is not None
    out = tmp_path / "cal.png"
    proc = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "calib", "history", "--current-a",
         "180,179,180", "--plot", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
