"""``scanplan calib ... --plot``: calibration curves against the facts file, readable figures
(labelled axes, legends beside the data), PNGs written by energy/current/history."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli

from beamline.energy import energy_from_current
from beamline.hysteresis import hysteresis_history
from scanplan.plots.calib import calibration_figure, history_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: facts 3 [M]: the 2022 per-pass Hall-probe fits B = a + b I [G, A], and [C] the nominal
NOMINAL_G = (27.16, 28.446)
PASS_FITS_G = {
    "run3_pass1_desc": (72.0, 28.384),
    "run3_offres_block": (90.6, 28.260),
    "run3_pass2_desc": (192.6, 27.762),
    "run3_pass3_asc": (58.8, 28.519),
}


def _line(ax, label_part: str):
    lines = [ln for ln in ax.get_lines() if label_part in ln.get_label()]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return lines[0]


@pytest.fixture(scope="module")
def cal_fig():
    import matplotlib.pyplot as plt

    estimates = [energy_from_current(c, branch="descending") for c in (150.0, 170.0, 185.0)]
    fig = calibration_figure("DHSTB01", estimates)
    yield fig, estimates
    plt.close(fig)


def test_curves_are_the_facts_file_relations(cal_fig):
    fig, _ = cal_fig
    ax_e, ax_b = fig.axes[:2]
    # E_BTF(I) = 1.56827918 I + 1.49737969 MeV (facts 3, a momentum: E - p < 1e-3 MeV here)
    nominal = _line(ax_e, "BTF nominal")
    i, e = nominal.get_xdata(), nominal.get_ydata()
    assert np.allclose(e, 1.56827918 * i + 1.49737969, atol=2e-3, rtol=0)
    # the field panel: each 2022 pass fit minus the nominal excitation, from the facts numbers
    lines_b = [ln for ln in ax_b.get_lines() if len(ln.get_xdata()) > 2]
    labels_e = [ln.get_label() for ln in ax_e.get_lines()]
    for name, (a, b) in PASS_FITS_G.items():
        k = next(j for j, lab in enumerate(labels_e) if name in lab)
        line_e = ax_e.get_lines()[k]
        x = line_e.get_xdata()
        expected = (a + b * x) - (NOMINAL_G[0] + NOMINAL_G[1] * x)
        assert any(
            len(ln.get_xdata()) == len(x) and np.allclose(ln.get_ydata(), expected, atol=1e-9)
            for ln in lines_b
        ), name
        # on the 2022 scale E = 0.0551318 B - 2.00 MeV (facts 3; E vs p below 1e-3 MeV)
        assert np.allclose(line_e.get_ydata(), 0.0551318 * (a + b * x) - 2.00, atol=2e-3)


def test_pass_fits_are_thick_over_their_own_2022_currents(cal_fig):
    """Each pass fit is drawn thick over the currents of its own sub-range of the 2022 scan,
    and the scan's lowest and highest points are marked."""
    fig, _ = cal_fig
    ax_b = fig.axes[1]
    thick = [ln for ln in ax_b.get_lines() if ln.get_linewidth() >= 3 and len(ln.get_xdata()) == 9]
    assert len(thick) == len(PASS_FITS_G)
    for ln in thick:
        i_lo, i_hi = ln.get_xdata()[0], ln.get_xdata()[-1]
        assert 130.0 <= i_lo < i_hi <= 191.0  # inside the 2022 scan (facts 3: 130.7-190.1 A)
    # facts 3: 130.7-190.1 A covered 206-300 MeV; facts 4: 206.6 and 300.1 MeV
    ends = _line(fig.axes[0], "2022 scan ends")
    assert np.allclose(ends.get_xdata(), [130.7, 190.1], atol=0.1)
    assert np.allclose(ends.get_ydata(), [206.6, 300.1], atol=0.1)


def test_branches_points_and_labels_are_readable(cal_fig):
    fig, estimates = cal_fig
    ax_e, ax_b = fig.axes[:2]
    labels = [t.get_text() for t in ax_e.get_legend().get_texts()]
    assert any("hysteresis branch: descending" in t for t in labels)
    assert any("hysteresis branch: ascending" in t for t in labels)
    assert any("2022 scan" in t for t in labels)
    assert ax_e.get_ylabel() == "beam energy E [MeV]"
    assert ax_b.get_ylabel() == "field − nominal excitation [G]"
    assert ax_b.get_xlabel() == "DHSTB01 set current I [A]"
    # the command's points with their sigma
    points = [c for c in ax_e.containers if "this command" in c.get_label()]
    assert len(points) == 1
    xy = points[0].lines[0].get_xydata()
    assert np.allclose(xy[:, 0], [e.current_a for e in estimates])
    assert np.allclose(xy[:, 1], [e.energy_mev for e in estimates])
    renderer = fig.canvas.get_renderer()
    legend_box = ax_e.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= ax_e.get_window_extent(renderer).x1  # beside the data
    assert legend_box.x1 <= fig.bbox.x1  # and inside the figure


def test_history_figure_colours_steps_by_branch():
    import matplotlib.pyplot as plt

    hist = hysteresis_history([180.0, 179.0, 178.0, 185.0, 184.0], previous_current_a=181.0)
    fig = history_figure(hist)
    ax_i, ax_b = fig.axes[:2]
    names = [t.get_text() for t in ax_i.get_legend().get_texts()]
    assert {"descending", "ascending"} <= set(names)
    assert "recommended overshoot" in names
    assert ax_i.get_ylabel() == "DHSTB01 set current [A]"
    assert ax_b.get_xlabel() == "step"
    plt.close(fig)


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert int.from_bytes(data[16:20], "big") >= 1000  # 10.5 in at 120 dpi


@pytest.mark.parametrize(
    "args",
    [
        ("calib", "energy", "--current-a", "150,170", "--branch", "descending"),
        ("calib", "energy", "--field-g", "4500"),
        ("calib", "current", "--energy-mev", "265,280"),
        ("calib", "history", "--current-a", "180,179,185"),
    ],
    ids=["energy-current", "energy-field", "current", "history"],
)
def test_cli_calib_plot_writes_a_png_and_keeps_json_clean(tmp_path, args):
    png = tmp_path / "calib.png"
    proc = run_cli(*args, "--plot", str(png), "--json", check=True)
    json.loads(proc.stdout)  # the note about the plot goes to stderr
    assert "plot written" in proc.stderr
    _assert_png(png)


@pytest.mark.parametrize("bad", ["folder", "calib.txt"])
def test_cli_calib_plot_refuses_a_bad_path(tmp_path, bad):
    target = tmp_path if bad == "folder" else tmp_path / bad
    proc = run_cli("calib", "energy", "--current-a", "170", "--plot", str(target))
    assert_user_error(proc, str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
