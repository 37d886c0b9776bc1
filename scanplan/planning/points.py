"""Per point: magnet currents from the calibrations, slits and quadrupoles from the settings,
efficiency, background and on-peak yield from the physics model."""

from __future__ import annotations

from typing import Any

from beamline import calibration as cal
from beamline import energy as beam_energy
from beamline.constants import momentum_mev_from_energy
from beamline.kinematics import sqrt_s_mev
from beamline.lattice import Settings, load_settings, read_strength_values
from beamline.names import QUADRUPOLES, SLITS

from ..errors import ScanplanError
from ..physics.params import PhysicsModel
from ..physics.yields import background_per_pot, in_table_range, signal_efficiency
from ..physics.yields import signal_yield_per_pot_g2 as on_peak_yield
from ..records import Point, current_field, gap_field
from .beamtime import BeamTime
from .grid import BesOf, Block
from .request import PlanRequest


def gap_key(slit: str) -> str:
    """The strength-file value of the gap [mm] of ``slit`` in the settings."""
    return f"{slit.lower()}_gap_mm"


def settings_values(settings_name: str | None) -> tuple[Settings, dict[str, float]]:
    """The settings and their strength values; every slit gap and quad current must be set."""
    s = load_settings(settings_name)
    values = read_strength_values(s.strength_file)
    need = [gap_key(x) for x in SLITS] + [cal.magnet_spec(q).knob for q in QUADRUPOLES]
    missing = [k for k in need if k not in values]
    if missing:
        raise ScanplanError(f"settings {s.name} lacks {', '.join(missing)}")
    return s, values


def quad_currents(
    e_beam_mev: float, settings: Settings, values: dict[str, float], scaling: str
) -> dict[str, float]:
    """Quadrupole currents [A] at ``e_beam_mev`` [MeV]: the settings' gradients scaled with the
    beam momentum from the settings' reference energy ("momentum"), or its currents ("fixed")."""
    out = {}
    ratio = momentum_mev_from_energy(e_beam_mev) / momentum_mev_from_energy(
        settings.reference_energy_mev
    )
    for q in QUADRUPOLES:
        i_ref = values[cal.magnet_spec(q).knob]
        if scaling == "fixed":
            current = i_ref
        else:
            g = cal.quad_gradient_tpm(q, i_ref, settings.quadrupole_calibration) * ratio
            current = cal.quad_current_for_gradient(q, g, settings.quadrupole_calibration)
        cal.magnet_spec(q).check_current(current)
        out[q] = current
    return out


class PointsBuilt:
    """The points of a plan and what building them found: periods with extrapolated
    currents, periods outside the efficiency/background table, the DHSTB02 calibration."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.extrapolated: list[int] = []
        self.outside_table: list[int] = []
        self.dhstb02_calibration = ""


def build_points(
    req: PlanRequest,
    blocks: list[Block],
    bes_of: BesOf,
    model: PhysicsModel,
    time: BeamTime,
    settings: Settings,
    values: dict[str, float],
) -> PointsBuilt:
    """One :class:`Point` per energy of ``blocks``, periods in block order."""
    out = PointsBuilt()
    g_ref = model.signal.reference_coupling
    for block in blocks:
        for e in block.energies_mev:
            period = len(out.points)
            est01 = beam_energy.current_for_energy(
                e,
                "DHSTB01",
                branch=req.direction,
                scale=req.energy_scale,
                extrapolate=req.extrapolate,
            )
            est02 = beam_energy.current_for_energy(
                e,
                "DHSTB02",
                relative_offset=req.dhstb02_relative_offset,
                extrapolate=req.extrapolate,
            )
            out.dhstb02_calibration = f"{est02.calibration} on {est02.scale}"
            if est01.extrapolated or est02.extrapolated:
                out.extrapolated.append(period)
            if not in_table_range(e, model):
                out.outside_table.append(period)
            quads = quad_currents(e, settings, values, req.quad_scaling)
            eff = float(signal_efficiency(e, model))
            bes_e = bes_of(e)
            rs = sqrt_s_mev(e)
            y = float(on_peak_yield(rs, e, bes_e, model))
            machine: dict[str, Any] = {gap_field(x): values[gap_key(x)] for x in SLITS}
            machine |= {current_field(q): quads[q] for q in QUADRUPOLES}
            out.points.append(
                Point(
                    period=period,
                    pass_index=block.pass_index,
                    kind=block.kind,
                    e_beam_mev=e,
                    sigma_e_beam_mev=est01.sigma_energy_mev,
                    sqrt_s_mev=rs,
                    sigma_sqrt_s_mev=est01.sigma_sqrt_s_mev,
                    dhstb01_current_a=est01.current_a,
                    dhstb02_current_a=est02.current_a,
                    calibration=est01.calibration,
                    energy_scale=est01.scale,
                    branch=req.direction,
                    rel_spread=bes_e,
                    target_pot=time.pot_per_point,
                    hours=time.beam_hours,
                    background_per_pot=float(background_per_pot(e, model)),
                    signal_efficiency=eff,
                    signal_yield_per_pot_g2=y,
                    expected_signal_ref=g_ref**2 * time.pot_per_point * eff * y,
                    **machine,
                )
            )
    return out
