"""PADME Monte Carlo (PadmeMC, Geant4) macro blocks, one per scan point, in PadmeMC's own
conventions (``lattices/btf_padme/padmemc.toml``, taken from PadmeMC's ``RunIII.mac``,
``BeamLineStructure.cc`` and ``BeamMessenger.cc`` in PADME-Experiment/padme-fw).

Each block starts with ``# ---- scanplan period <N> ...`` and sets::

    /Detector/BeamLine/DHSTB001_FieldY <T> tesla   -p/(c rho): arc-equivalent, negative
    /Detector/BeamLine/DHSTB002_FieldY <T> tesla   same for DHSTB02's own setting
    /Detector/BeamLine/SLTB2Aperture <mm> mm       (SLTB3, SLTB4, SLTB5 likewise)
    /Detector/BeamLine/Q1_FieldGrad <T/m>          (Q2..Q4; PadmeMC negates Q2 and Q4 itself)
    /beam/momentum <MeV> MeV                       beam momentum p of the point
    /beam/momentum_spread <MeV> MeV                sigma_p = BES * p (BeamMessenger: "sigma of
                                                   gaussian spread on momentum")
    /beam/position_x|y|z, /beam/direction          the injection point of RunIII.mac

Field: PadmeMC's dipoles are hard-edge arcs of the geometric radius ``rho`` (the sequence's
``rho_dip_m``, 1.723 m), so the field that bends momentum ``p`` onto the arc is
``p / (c rho)`` (``beamline.constants.MEV_PER_TESLA_METRE``), with PadmeMC's sign (-1).
DHSTB01 bends the point's beam momentum; DHSTB02 the momentum its own set current bends
onto the design arc (its default calibration), so a steering mismatch is kept.

Quadrupoles: the point's gradient magnitudes ``|G(I)|``, times ``polarity * builtin``: with
the default polarity (+1, -1, +1, -1) and PadmeMC's built-in signs (+1, -1, +1, -1) every
command is positive, as in RunIII.mac.

Injection: PadmeMC starts the beam at the Mylar window after the energy selection (RunIII.mac
"STARTING AT THE MYLAR WINDOW POSTION"), downstream of DHSTB01 and SLTB4, with the spreads of
the selected beam; the macro repeats that start point, direction and spreads.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from beamline.datafiles import DataModel, load_toml_model

from ..errors import ScanplanError
from ..records import Plan, Point
from .common import finite, plan_sha256, select_points

#: default polarity of Q1..Q4 in the PADME simulation (facts 1, sign convention unverified)
DEFAULT_QUAD_POLARITY: tuple[int, int, int, int] = (1, -1, 1, -1)
BLOCK_MARK = "# ---- scanplan period"


class Injection(DataModel):
    """Where and how PadmeMC starts the beam (RunIII.mac)."""

    element: str
    position_mm: tuple[float, float, float]
    direction: tuple[float, float, float]
    position_spread_mm: tuple[float, float] = Field(description="x, y Gaussian sigma [mm]")
    emittance_mrad: tuple[float, float] = Field(description="x', y' Gaussian sigma [mrad]")


class PadmeMcConventions(DataModel):
    """``lattices/btf_padme/padmemc.toml``."""

    schema_version: int = Field(ge=1, le=1)
    version: str
    dipole_field_sign: int = Field(ge=-1, le=1)
    quad_builtin_signs: tuple[int, int, int, int]
    injection: Injection


@functools.cache
def padmemc_conventions() -> PadmeMcConventions:
    """PadmeMC's conventions, validated (errors name the file and key)."""
    from beamline.errors import LatticeDataError
    from beamline.paths import data_file

    try:
        return load_toml_model(data_file("btf_padme", "padmemc.toml"), PadmeMcConventions)
    except LatticeDataError as exc:
        raise ScanplanError(str(exc)) from None


@dataclass(frozen=True)
class McMacroOptions:
    """Named choices of the MC export: the quadrupole polarity (+1/-1 per Q1..Q4, +1
    meaning what PadmeMC does with a positive Q1 gradient) and the bend radius [m] of the MC
    dipoles (default: the sequence's ``rho_dip_m``)."""

    quad_polarity: tuple[int, int, int, int] = DEFAULT_QUAD_POLARITY
    mc_bend_radius_m: float | None = None

    def __post_init__(self) -> None:
        if len(self.quad_polarity) != 4 or any(s not in (1, -1) for s in self.quad_polarity):
            raise ScanplanError(
                f"quad polarity needs four signs +1/-1 (Q1..Q4), got {self.quad_polarity!r}"
            )
        if self.mc_bend_radius_m is not None and not self.mc_bend_radius_m > 0:
            raise ScanplanError(f"MC bend radius must be > 0 m, got {self.mc_bend_radius_m!r}")

    def bend_radius_m(self) -> float:
        from beamline.lattice import bend_radius_m

        return self.mc_bend_radius_m if self.mc_bend_radius_m is not None else bend_radius_m()


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


def beam_momentum_mev(point: Point) -> float:
    """Beam momentum [MeV/c] of the point's total energy."""
    from beamline.constants import momentum_mev_from_energy

    return momentum_mev_from_energy(finite(point.e_beam_mev, f"e_beam_mev of {point.period}"))


def dipole_fields_t(point: Point, options: McMacroOptions) -> tuple[float, float]:
    """DHSTB001/DHSTB002 ``FieldY`` [T] for PadmeMC: sign * p / (c rho) (module docstring)."""
    from beamline import calibration
    from beamline.constants import MEV_PER_TESLA_METRE

    sign = padmemc_conventions().dipole_field_sign
    rho = options.bend_radius_m()
    p01 = beam_momentum_mev(point)
    p02 = calibration.dipole_momentum_mev("DHSTB02", point.dhstb02_current_a)
    return (
        sign * p01 / (MEV_PER_TESLA_METRE * rho),
        sign * p02 / (MEV_PER_TESLA_METRE * rho),
    )


def quad_commands(point: Point, options: McMacroOptions) -> tuple[float, float, float, float]:
    """``Q1..Q4_FieldGrad`` values [T/m]: |G| * polarity * PadmeMC's built-in sign."""
    from beamline import calibration

    builtin = padmemc_conventions().quad_builtin_signs
    currents = (point.q1_current_a, point.q2_current_a, point.q3_current_a, point.q4_current_a)
    out = []
    for n, (current, pol, own) in enumerate(
        zip(currents, options.quad_polarity, builtin, strict=True), 1
    ):
        g = abs(calibration.quad_gradient_tpm(f"Q{n}", current))
        out.append(finite(g, f"Q{n} gradient") * pol * own)
    return out[0], out[1], out[2], out[3]


def momentum_spread_mev(point: Point) -> float:
    """sigma_p [MeV/c] = BES * p (PadmeMC's ``/beam/momentum_spread``)."""
    return finite(point.rel_spread, f"rel_spread of {point.period}") * beam_momentum_mev(point)


def _vec(values: Iterable[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


def point_block(plan_sha: str, point: Point, options: McMacroOptions) -> str:
    """The macro block of one point."""
    inj = padmemc_conventions().injection
    b1, b2 = dipole_fields_t(point, options)
    p = beam_momentum_mev(point)
    lines = [
        f"{BLOCK_MARK} {point.period} pass {point.pass_index} plan {plan_sha[:12]} "
        f"E_beam {point.e_beam_mev:.3f} MeV",
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
    lines.append("/Detector/BeamLine/EnableQuadrupoles true")
    for n, g in enumerate(quad_commands(point, options), 1):
        lines.append(f"/Detector/BeamLine/Q{n}_FieldGrad {g!r}")
    lines += [
        f"/beam/momentum {p!r} MeV",
        "/beam/momentum_spread_on true",
        f"/beam/momentum_spread {momentum_spread_mev(point)!r} MeV",
        "/beam/position_spread_on true",
        f"/beam/position_x_spread {inj.position_spread_mm[0]!r} mm",
        f"/beam/position_y_spread {inj.position_spread_mm[1]!r} mm",
        "/beam/emittance_on true",
        f"/beam/emittance_x {inj.emittance_mrad[0]!r} mrad",
        f"/beam/emittance_y {inj.emittance_mrad[1]!r} mrad",
        f"# injection at the {inj.element} (PadmeMC global frame, RunIII.mac)",
        f"/beam/position_x {inj.position_mm[0]!r} mm",
        f"/beam/position_y {inj.position_mm[1]!r} mm",
        f"/beam/position_z {inj.position_mm[2]!r} mm",
        f"/beam/direction {_vec(inj.direction)}",
    ]
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
    conv = padmemc_conventions()
    head = (
        f"# scanplan MC macro: plan {sha} ({plan.name or 'unnamed'}); PadmeMC conventions "
        f"{conv.version}; bend radius {opts.bend_radius_m()!r} m; quad polarity "
        f"{','.join(f'{s:+d}' for s in opts.quad_polarity)}\n"
    )
    blocks = [point_block(sha, p, opts) for p in select_points(plan, periods)]
    return head + "\n".join(blocks)
