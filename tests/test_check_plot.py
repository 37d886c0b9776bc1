"""``check --plot`` (issue 15, item 10): the measured and predicted spot on the TimePix."""

from __future__ import annotations

import pytest
from test_run_guards import fake_btf_at, one_pass_plan

pytestmark = pytest.mark.timeout(120)


def test_spot_plot_shows_the_measured_and_predicted_spots_on_the_detector(tmp_path):
    from hw_interfaces.timepix import TimepixGeometry
    from scanplan.check.plot import spot_figure, write_spot_plot

    plan = one_pass_plan()
    btf, tol = fake_btf_at(plan)
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
