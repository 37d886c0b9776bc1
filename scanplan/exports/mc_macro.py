"""PADME Monte Carlo (Geant4) macro blocks, one per scan point (facts 6 commands).

Each block starts with ``# ---- scanplan period <N> ...`` and sets, in this order::

    /Detector/BeamLine/DHSTB001_FieldY <T> tesla
    /Detector/BeamLine/DHSTB002_FieldY <T> tesla
    /Detector/BeamLine/SLTB2Aperture <mm> mm     (SLTB3, SLTB4, SLTB5 likewise)
    /Detector/BeamLine/Q1_FieldGrad <T/m>        (Q2..Q4 likewise; signed by the polarity)
    /beam/momentum <MeV> MeV
    /beam/momentum_spread <MeV> MeV

Named parameters (:class:`McMacroOptions`):

* ``field_convention``: which dipole field the MC gets.
  ``"calibration"`` (default): the field of the magnet's calibration at the set current,
  ``dipole_field_g(magnet, current_a) * 1e-4`` T (DHSTB01 with the point's calibration,
  DHSTB02 with its default one). ``"arc_equivalent"``: the hard-edge field that bends the
  same momentum on the geometric radius ``mc_bend_radius_m`` of the MC geometry,
  ``p / (c * rho)``; it is ``1.839/1.723`` times larger because the calibration's
  effective B*rho/B is 1.839 m (facts 3). Which one PADME's MC expects is not established.
* ``quad_polarity``: signs of Q1..Q4 gradients; default ``(+1, -1, +1, -1)`` as in the PADME
  simulation (facts 1; its sign convention is unverified).
* ``mc_bend_radius_m``: geometric bending radius of the MC dipoles (facts 1: 1.723 m).

Momentum is the beam momentum of the point's total energy; the momentum spread is
``sigma_e_beam_mev * E / p`` (dp = dE E/p).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import ScanplanError
from ..records import Plan, Point
from .common import finite, plan_sha256, select_points

FieldConvention = Literal["calibration", "arc_equivalent"]
FIELD_CONVENTIONS: tuple[str, ...] = ("calibration", "arc_equivalent")
#: default polarity of Q1..Q4 in the PADME simulation (facts 1, sign convention unverified)
DEFAULT_QUAD_POLARITY: tuple[int, int, int, int] = (1, -1, 1, -1)
#: geometric bending radius of the 45 degree dipoles in the MC geometry [m] (facts 1)
DEFAULT_MC_BEND_RADIUS_M = 1.723
BLOCK_MARK = "# ---- scanplan period"


@dataclass(frozen=True)
class McMacroOptions:
    """Named choices of the MC export (see module docstring)."""

    field_convention: FieldConvention = "calibration"
    quad_polarity: tuple[int, int, int, int] = DEFAULT_QUAD_POLARITY
    mc_bend_radius_m: float = DEFAULT_MC_BEND_RADIUS_M

    def __post_init__(self) -> None:
        if self.field_convention not in FIELD_CONVENTIONS:
            raise ScanplanError(
                f"unknown MC field convention {self.field_convention!r}; "
                f"use one of {', '.join(FIELD_CONVENTIONS)}"
            )
        if len(self.quad_polarity) != 4 or any(s not in (1, -1) for s in self.quad_polarity):
            raise ScanplanError(
                f"quad polarity needs four signs +1/-1 (Q1..Q4), got {self.quad_polarity!r}"
            )
        if not self.mc_bend_radius_m > 0:
            raise ScanplanError(f"MC bend radius must be > 0 m, got {self.mc_bend_radius_m!r}")


def parse_polarity(text: str) -> tuple[int, int, int, int]:
    """``"+,-,+,-"`` or ``"1,-1,1,-1"`` -> (1, -1, 1, -1)."""
    signs = []
    for tok in text.split(","):
        tok = tok.strip()
        if tok in ("+", "+1", "1"):
            signs.append(1)
        elif tok in ("-", "-1"):
            signs.append(-1)
        else:
            raise ScanplanError(f"quad polarity: cannot read {tok!r} in {text!r}; use e.g. +,-,+,-")
    if len(signs) != 4:
        raise ScanplanError(f"quad polarity needs 4 signs (Q1..Q4), got {len(signs)} in {text!r}")
    return signs[0], signs[1], signs[2], signs[3]


def _calibration_name(label: str) -> str:
    return label.split("@", 1)[0]


def dipole_fields_t(point: Point, options: McMacroOptions) -> tuple[float, float]:
    """DHSTB01 and DHSTB02 fields [T] for the MC under ``options.field_convention``."""
    from beamline import calibration
    from beamline.constants import GAUSS_PER_TESLA, MEV_PER_TESLA_METRE

    cal01 = calibration.dipole_calibration("DHSTB01", _calibration_name(point.calibration))
    installed = cal01.label
    if point.calibration != installed and "@" in point.calibration:
        raise ScanplanError(
            f"point {point.period} was planned with calibration {point.calibration}, but the "
            f"installed data are {installed}: re-plan before exporting MC fields"
        )
    fields_g = (
        cal01.value(point.dhstb01_current_a),
        calibration.dipole_field_g("DHSTB02", point.dhstb02_current_a),
    )
    if options.field_convention == "calibration":
        return fields_g[0] / GAUSS_PER_TESLA, fields_g[1] / GAUSS_PER_TESLA
    out = []
    for field_g in fields_g:
        p_mev = calibration.momentum_mev_from_field(field_g)
        out.append(p_mev / (MEV_PER_TESLA_METRE * options.mc_bend_radius_m))
    return out[0], out[1]


def point_block(plan_sha: str, point: Point, options: McMacroOptions) -> str:
    """The macro block of one point."""
    from beamline import calibration
    from beamline.constants import momentum_mev_from_energy

    b1, b2 = dipole_fields_t(point, options)
    e = finite(point.e_beam_mev, f"e_beam_mev of period {point.period}")
    p = momentum_mev_from_energy(e)
    dp = finite(point.sigma_e_beam_mev, f"sigma_e_beam_mev of period {point.period}") * e / p
    lines = [
        f"{BLOCK_MARK} {point.period} pass {point.pass_index} plan {plan_sha[:12]} "
        f"E_beam {e:.3f} MeV field_convention {options.field_convention}",
        f"/Detector/BeamLine/DHSTB001_FieldY {finite(b1, 'DHSTB001 field')!r} tesla",
        f"/Detector/BeamLine/DHSTB002_FieldY {finite(b2, 'DHSTB002 field')!r} tesla",
    ]
    for n, gap in (
        (2, point.sltb2_mm),
        (3, point.sltb3_mm),
        (4, point.sltb4_mm),
        (5, point.sltb5_mm),
    ):
        lines.append(f"/Detector/BeamLine/SLTB{n}Aperture {finite(gap, f'sltb{n}_mm')!r} mm")
    currents = (point.q1_current_a, point.q2_current_a, point.q3_current_a, point.q4_current_a)
    for n, (current, sign) in enumerate(zip(currents, options.quad_polarity, strict=True), 1):
        g = sign * calibration.quad_gradient_tpm(f"Q{n}", current)
        lines.append(f"/Detector/BeamLine/Q{n}_FieldGrad {finite(g, f'Q{n} gradient')!r}")
    lines.append(f"/beam/momentum {p!r} MeV")
    lines.append(f"/beam/momentum_spread {dp!r} MeV")
    return "\n".join(lines) + "\n"


def write_mc_macro(
    plan: Plan,
    *,
    periods: Iterable[int] | None = None,
    options: McMacroOptions | None = None,
) -> str:
    """Macro text: a header comment, then one block per selected point (by period)."""
    opts = options or McMacroOptions()
    sha = plan_sha256(plan)
    head = (
        f"# scanplan MC macro: plan {sha} ({plan.name or 'unnamed'}); field convention "
        f"{opts.field_convention}; quad polarity {','.join(f'{s:+d}' for s in opts.quad_polarity)}\n"
    )
    blocks = [point_block(sha, p, opts) for p in select_points(plan, periods)]
    return head + "\n".join(blocks)
