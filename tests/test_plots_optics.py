"""Optics a physicist reads: finely sampled beta/D against MAD-X inside the elements, the beam
envelope against the closed form of the linear map, and figures that are readable (labelled
axes, layout labels that do not overlap), written by the CLI as PNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli
from test_optics_vs_madx import _configurations, configure

from beamline import optics
from beamline.errors import BeamlineInputError
from beamline.madx import madx_for, madx_twiss
from beamline.model import BeamLine
from beamline.plots import apertures, optics_figure

REL_TOL = 1e-6
FLOOR = {"betx": 1e-3, "bety": 1e-3, "alfx": 1e-3, "alfy": 1e-3, "dx": 1e-4, "dpx": 1e-4}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", params=list(_configurations()), ids=lambda c: c[0])
def model_and_madx(request):
    """A configured model (the configurations of the marker comparison) and MAD-X's twiss
    on the same deck, interpolated every 5 cm inside every element (``flag=interpolate``)."""
    bl = configure(request.param[1])
    madx = madx_for(bl)
    madx.command.select(flag="interpolate", step=0.05)
    tw = madx_twiss(madx, bl)
    yield bl, tw
    madx.quit()


def _interior_rows(tw, keyword: str) -> np.ndarray:
    """Rows of MAD-X's interpolated table strictly inside elements of ``keyword``: MAD-X
    names every interpolation row after its element; the element's own row is its exit."""
    names = [str(n) for n in tw.name]
    keywords = [str(k) for k in tw.keyword]
    s = np.asarray(tw.s)
    lengths = np.asarray(tw.l)
    exit_s = {}
    for n, k, si in zip(names, keywords, s, strict=True):
        if k == keyword:
            exit_s[n] = max(exit_s.get(n, -math.inf), si)
    rows = [
        i
        for i, (n, k) in enumerate(zip(names, keywords, strict=True))
        if k == keyword
        and exit_s[n] - lengths[i] + 1e-4 < s[i] < exit_s[n] - 1e-4  # strictly inside
    ]
    return np.array(rows, dtype=int)


@pytest.mark.parametrize("keyword, min_points", [("drift", 200), ("quadrupole", 8)])
def test_sampled_optics_inside_drifts_and_quads_agree_with_madx(
    model_and_madx, keyword, min_points
):
    bl, tw = model_and_madx
    rows = _interior_rows(tw, keyword)
    assert rows.size >= min_points
    beta0 = float(bl.line.particle_ref.beta0[0])
    s_m = np.asarray(tw.s)[rows] - bl.s_frame_m
    got = optics.twiss_at_s(bl, s_m)
    assert np.allclose(got["s_m"], s_m, atol=1e-9, rtol=0)
    # MAD-X dispersion is d/dPT, xtrack's d/d(delta): D_delta = beta0 * D_PT
    for key, col, factor in (
        ("betx", "betx_m", 1.0),
        ("bety", "bety_m", 1.0),
        ("alfx", "alfx", 1.0),
        ("alfy", "alfy", 1.0),
        ("dx", "dx_m", beta0),
        ("dpx", "dpx", beta0),
    ):
        ref = factor * np.asarray(getattr(tw, key))[rows]
        scale = np.maximum(np.abs(ref), FLOOR[key])
        err = np.abs(got[col].to_numpy() - ref) / scale
        assert err.max() <= REL_TOL, (keyword, key, float(err.max()))


def test_sampling_is_fine_and_leaves_the_model_line_unchanged():
    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    before = optics.twiss(bl)
    n_elements = len(bl.line.element_names)
    table = optics.sampled_twiss(bl, step_m=0.02)
    length = bl.line.get_length()
    assert len(table) >= length / 0.02
    assert np.all(np.diff(table["s_m"]) <= 0.02 + 1e-9)
    after = optics.twiss(bl)
    assert len(bl.line.element_names) == n_elements
    assert np.array_equal(before["betx_m"].to_numpy(), after["betx_m"].to_numpy())


@pytest.mark.parametrize("bad", [[-3.0], [25.0], [math.nan]])
def test_positions_off_the_line_are_refused(bad):
    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    with pytest.raises(BeamlineInputError, match="sample positions"):
        optics.twiss_at_s(bl, bad)


def test_envelope_at_the_slits_is_the_closed_form_of_the_linear_map():
    """sigma^2 = emit * (R11^2 beta0 - 2 R11 R12 alpha0 + R12^2 gamma0) + (R16 sigma_delta)^2
    with the 6x6 map from the line start (initial D = 0) and the settings' beam."""
    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    b = bl.beam
    assert b.dx_m == 0 and b.dpx == 0
    env = optics.beam_envelope(bl)
    start = bl.line.element_names[0]
    tab = bl.line.get_table()
    s_of = dict(zip(tab.name, tab.s, strict=False))
    for slit in ("sltb2", "sltb3", "sltb4", "sltb5"):
        r = optics.r_matrix(bl, start, slit).to_numpy()
        gx, gy = (1 + b.alfx**2) / b.betx_m, (1 + b.alfy**2) / b.bety_m
        sx2 = b.emit_x_m * (
            r[0, 0] ** 2 * b.betx_m - 2 * r[0, 0] * r[0, 1] * b.alfx + r[0, 1] ** 2 * gx
        )
        sy2 = b.emit_y_m * (
            r[2, 2] ** 2 * b.bety_m - 2 * r[2, 2] * r[2, 3] * b.alfy + r[2, 3] ** 2 * gy
        )
        sx2 += (r[0, 5] * b.sigma_delta) ** 2
        sy2 += (r[2, 5] * b.sigma_delta) ** 2
        row = env.iloc[int(np.argmin(np.abs(env["s_line_m"].to_numpy() - s_of[slit])))]
        assert row["s_line_m"] == pytest.approx(s_of[slit], abs=1e-9)
        assert row["sigma_x_m"] == pytest.approx(math.sqrt(sx2), rel=1e-8), slit
        assert row["sigma_y_m"] == pytest.approx(math.sqrt(sy2), rel=1e-8), slit


def test_envelope_of_the_beam_after_selection_starts_at_its_injection_point():
    """PadmeMC's beam (after the selection, injected at the Mylar window): at SLTB5 the
    envelope is the closed form of the map from the window with that beam's Twiss."""
    from beamline.beam import load_beam

    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    b = load_beam("padme_mc_run3")
    env = optics.beam_envelope(bl, beam=b, start="mylar_window")
    tab = bl.line.get_table()
    s_of = dict(zip(tab.name, tab.s, strict=False))
    assert env["s_line_m"].min() == pytest.approx(s_of["mylar_window"], abs=1e-12)
    r = optics.r_matrix(bl, "mylar_window", "sltb5").to_numpy()
    gx = (1 + b.alfx**2) / b.betx_m
    sx2 = b.emit_x_m * (
        r[0, 0] ** 2 * b.betx_m - 2 * r[0, 0] * r[0, 1] * b.alfx + r[0, 1] ** 2 * gx
    )
    sx2 += (r[0, 5] * b.sigma_delta) ** 2
    row = env.iloc[int(np.argmin(np.abs(env["s_line_m"].to_numpy() - s_of["sltb5"])))]
    assert row["sigma_x_m"] == pytest.approx(math.sqrt(sx2), rel=1e-8)
    with pytest.raises(BeamlineInputError, match="marker"):
        optics.beam_envelope(bl, beam=b, start="q1")  # a thick element: not a start


def test_apertures_are_read_from_the_lattice_elements():
    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    bl.set_gap("SLTB4", 2.0, 0.5)  # jaws at -0.5 .. +1.5 mm
    aps = {a.name: a for a in apertures(bl)}
    sl4 = aps["sltb4_aper"]
    assert (sl4.x_lo_mm, sl4.x_hi_mm) == pytest.approx((-0.5, 1.5))
    assert math.isnan(sl4.y_lo_mm)  # the open plane of a horizontal slit
    sl3 = aps["sltb3_exit_aper"]
    assert sl3.y_hi_mm - sl3.y_lo_mm == pytest.approx(bl.gap_mm("SLTB3"))
    # lattice file: splitter 57 x 18 mm, dipole chamber 53 x 32 mm, quad pipe radius 33 mm
    assert aps["btf2_splitter_start_aper"].limits_mm("y") == pytest.approx((-9.0, 9.0))
    assert aps["dhstb01_aper"].limits_mm("x") == pytest.approx((-26.5, 26.5))
    assert aps["q3_aper"].limits_mm("x") == pytest.approx((-33.0, 33.0))


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_optics_figure_is_labelled_and_its_labels_do_not_overlap():
    bl = BeamLine("run3_2022", 282.5, match_dipoles=True)
    fig = optics_figure(bl, step_m=0.1)
    ax_el, ax_b, ax_d, ax_x, ax_y = fig.axes
    assert ax_b.get_ylabel() == r"$\beta$ [m]"
    assert ax_d.get_ylabel() == "$D$ [m]"
    assert (ax_x.get_ylabel(), ax_y.get_ylabel()) == ("x [mm]", "y [mm]")
    assert "s from the DHSTB01 entrance [m]" == ax_y.get_xlabel()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax_el.texts]
    names = {t.get_text() for t in labels}
    assert {"DHSTB01", "DHSTB02", "Q1", "Q2", "Q3", "Q4", "target", "ECAL", "TimePix"} <= names
    assert {n.split()[0] for n in names if n.startswith("SLTB")} == {
        "SLTB2",
        "SLTB3",
        "SLTB4",
        "SLTB5",
    }
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _overlap(boxes[i], boxes[j]), (labels[i].get_text(), labels[j].get_text())
    fig_box = fig.bbox
    for box in boxes:  # inside the figure
        assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1
    for ax in (ax_b, ax_d, ax_x, ax_y):  # legends beside the data, not over them
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    # slit labels give the full gap of the settings
    assert f"SLTB4 {bl.gap_mm('SLTB4'):.3g} mm" in names
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_optics_plot_writes_a_png(tmp_path):
    png = tmp_path / "optics.png"
    run_cli("optics", "--energy-mev", "282.5", "--plot", str(png), check=True)
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1000 and height >= 1000  # 11 x 11 in at 120 dpi


@pytest.mark.parametrize("bad", ["folder", "optics.txt"])
def test_cli_optics_plot_refuses_a_bad_path(tmp_path, bad):
    target = tmp_path if bad == "folder" else tmp_path / bad
    assert_user_error(run_cli("optics", "--plot", str(target)), str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
