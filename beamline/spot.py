"""Where the beam lands: predicted centroid and size at the PADME target and the TimePix
for given dipole currents. Used by the step checker and the facility simulator.

The momentum selected by DHSTB01 and SLTB4 is the one DHSTB01 bends onto the design arc
(calibration of the model's settings): the orbit of that momentum is where the centroid of
the transmitted beam goes (tested against tracking the transmitted LINAC beam to the target,
< 0.1 mm; :mod:`beamline.steering` steers the same beam). DHSTB02 with its own current then steers that beam;
a relative mismatch eps between DHSTB02 and the beam moves the spot downstream by about
-R16(DHSTB02 -> point) * eps. The prediction tracks the orbit through the model (one twiss
from the line start, ~10 ms) and takes sizes from the Twiss functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import calibration
from .constants import energy_mev_from_momentum
from .datafiles import DataModel

if TYPE_CHECKING:  # xtrack: imported by predict_spot only, so the record stays light
    from .model import BeamLine

POINTS = {"target": "padme_target", "timepix": "timepix"}


class SpotPrediction(DataModel):
    """Predicted beam at the PADME target and the TimePix (PADME frame, mm); a typed, frozen
    record (the step checker stores it as it is).

    ``x``/``y`` are the orbit of the selected momentum, ``sigma_*`` rms sizes for the
    selected relative spread ``rel_spread``; ``dx_dcurrent_dhstb02_mm_per_a`` the model's
    sensitivity of the TimePix x to the DHSTB02 current.
    """

    beam_energy_mev: float
    dhstb01_current_a: float
    dhstb02_current_a: float
    rel_spread: float
    x_target_mm: float
    y_target_mm: float
    sigma_x_target_mm: float
    sigma_y_target_mm: float
    x_timepix_mm: float
    y_timepix_mm: float
    sigma_x_timepix_mm: float
    sigma_y_timepix_mm: float
    r16_dhstb02_timepix_m: float
    dx_dcurrent_dhstb02_mm_per_a: float

    def as_dict(self) -> dict[str, float]:
        return self.model_dump()


def selected_energy_mev(bl: BeamLine, dhstb01_current_a: float) -> float:
    """Total energy [MeV] that DHSTB01 at ``dhstb01_current_a`` bends onto the design arc."""
    p = calibration.dipole_momentum_mev(
        "DHSTB01", dhstb01_current_a, bl.settings.dipole_calibration
    )
    return energy_mev_from_momentum(p)


def predict_spot(
    bl: BeamLine,
    dhstb01_current_a: float,
    dhstb02_current_a: float,
    *,
    rel_spread: float,
) -> SpotPrediction:
    """Predicted spot for the given dipole currents [A] (other knobs as set in ``bl``).

    ``rel_spread`` is the relative rms momentum spread of the selected beam (no default
    here: the callers' data files hold it, e.g. ``lattices/checks/tolerances.toml``). The model's
    reference energy and DHSTB01/DHSTB02 currents are changed to the given state (the
    caller owns ``bl``; the quadrupoles and slits are left as they are).
    """
    from .optics import r_between, rms_size_m, twiss_table

    bl.set_energy(selected_energy_mev(bl, dhstb01_current_a))
    bl.set_currents({"DHSTB01": dhstb01_current_a, "DHSTB02": dhstb02_current_a})
    tw = twiss_table(bl)
    b = bl.beam
    values: dict[str, float] = {}
    for key, element in POINTS.items():
        row = tw.rows[element]
        values[f"x_{key}_mm"] = 1e3 * float(row.x[0])
        values[f"y_{key}_mm"] = 1e3 * float(row.y[0])
        values[f"sigma_x_{key}_mm"] = 1e3 * rms_size_m(
            float(row.betx[0]), b.emit_x_m, float(row.dx[0]), rel_spread
        )
        values[f"sigma_y_{key}_mm"] = 1e3 * rms_size_m(
            float(row.bety[0]), b.emit_y_m, float(row.dy[0]), rel_spread
        )
    r16 = float(r_between(tw, "dhstb02", "timepix")[0, 5])
    # d(eps)/dI for DHSTB02: eps = p_D2(I)/p_beam - 1
    cal = calibration.dipole_calibration("DHSTB02", bl.settings.dipole_calibration)
    p_d2 = calibration.dipole_momentum_mev(
        "DHSTB02", dhstb02_current_a, bl.settings.dipole_calibration
    )
    deps_di = cal.slope / (cal.offset + cal.slope * dhstb02_current_a) * p_d2 / bl.momentum_mev
    return SpotPrediction(
        beam_energy_mev=bl.energy_mev,
        dhstb01_current_a=dhstb01_current_a,
        dhstb02_current_a=dhstb02_current_a,
        rel_spread=rel_spread,
        r16_dhstb02_timepix_m=r16,
        dx_dcurrent_dhstb02_mm_per_a=-1e3 * r16 * deps_di,
        **values,
    )
