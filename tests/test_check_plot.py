"""``check --plot`` (issue 15, item 10): the measured and predicted spot on the TimePix."""

from __future__ import annotations

import pytest
from test_run_guards import one_pass_plan

pytestmark = pytest.mark.timeout(120)


def test_spot_plot_shows_the_measured_and_predicted_spots_on_the_detector(tmp_path):
    from fixtures.fake_btf import FakeBTF

    from hw_interfaces.timepix import TimepixGeometry
    from scanplan.check import CheckTolerances, SpotPredictor
    from scanplan.check.plot import spot_figure, write_spot_plot

    plan = one_pass_plan()
    tol = CheckTolerances.load()
    pt = plan.point(0)
    btf = FakeBTF(
        SpotPredictor("run3_2022", rel_spread=tol.spot.rel_spread),
        tol,
        {"DHSTB001": pt.dhstb01_current_a, "DHSTB002": pt.dhstb02_current_a},
    )
    v = btf.checker().check(plan, 0)
    fig = spot_figure(v, tol)
    ax = fig.axes[0]
    marks = {ln.get_label(): (ln.get_xdata()[0], ln.get_ydata()[0]) for ln in ax.lines}
    assert marks["measured"] == pytest.approx((v.spot.x_mm, v.spot.y_mm))
    p = v.prediction.measured_currents
    assert marks["model, measured currents"] == pytest.approx(
        (p.x_timepix_mm + v.prediction.reference_x_mm, p.y_timepix_mm + v.prediction.reference_y_mm)
    )
    g = TimepixGeometry()
    outline = next(pa for pa in ax.patches if pa.get_label().startswith("TimePix"))
    assert (outline.get_width(), outline.get_height()) == pytest.approx((g.width_mm, g.height_mm))
    out = write_spot_plot(v, tol, tmp_path / "spot.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
