"""Model-based DHSTB02 setting: the current that puts the beam on the PADME axis.

With one knob only one condition can be met: the solver zeroes the horizontal position
``x`` of the reference particle (on axis at the line start, ``delta = 0``, i.e. the energy
of the model's reference particle) at the PADME target; the angle ``px`` left there is
reported, not corrected. It tracks the particle through the xtrack model
(:class:`beamline.model.BeamLine`, the current knobs follow the calibration module) and
solves ``x_target(I_DHSTB02) = 0`` by the secant method.

At matched dipoles the answer is the calibration-nominal current; with DHSTB01 mis-set or
a beam energy that differs from the DHSTB01 setting, DHSTB02 compensates at the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import calibration as cal
from .errors import BeamlineInputError
from .model import BeamLine
from .names import SLITS

DEFAULT_TARGET = "padme_target"


@dataclass(frozen=True)
class SteeringSolution:
    """DHSTB02 current [A] putting the reference particle at ``x = 0`` at ``target``.

    ``x_target_m`` [m] / ``px_target`` [rad] at the solution, ``nominal_current_a`` [A] the
    calibration current for the beam energy, ``relative_offset`` the equivalent relative
    momentum offset of the DHSTB02 setting (p_DHSTB02 / p_beam - 1), ``energy_mev`` [MeV]
    the reference energy, ``dhstb01_current_a`` [A], ``calibration`` label, ``iterations``.
    """

    current_a: float
    x_target_m: float
    px_target: float
    nominal_current_a: float
    relative_offset: float
    energy_mev: float
    dhstb01_current_a: float
    target: str
    calibration: str
    iterations: int


def reference_orbit_at(bl: BeamLine, element: str) -> tuple[float, float]:
    """``(x [m], px)`` of the on-axis reference particle (delta = 0) at ``element``'s entrance.

    Raises a clear error if the particle is lost on an aperture before it.
    """
    name = bl.check_element(element)
    p = bl.build_particles(x=0.0, px=0.0, y=0.0, py=0.0, zeta=0.0, delta=0.0)
    bl.line.track(p, ele_stop=name)
    if int(p.state[0]) != 1:
        lost_at = bl.line.element_names[int(p.at_element[0])]
        raise BeamlineInputError(f"reference particle lost at {lost_at} before reaching {name}")
    return float(p.x[0]), float(p.px[0])


def dhstb02_current_for_axis(
    bl: BeamLine,
    *,
    target: str = DEFAULT_TARGET,
    tolerance_m: float = 1e-12,
    max_iterations: int = 30,
    apply: bool = False,
    open_slits: bool = False,
) -> SteeringSolution:
    """DHSTB02 current [A] that puts the reference particle at x = 0 at ``target``.

    Uses the model's present reference energy and DHSTB01 current. The model's DHSTB02
    current is restored afterwards unless ``apply``. ``open_slits`` opens SLTB2-5 to the
    chamber while solving (gaps restored after): the orbit of a beam that the slits would
    stop, e.g. with DHSTB01 mis-set.
    """
    dip = "DHSTB02"
    spec = cal.magnet_spec(dip)
    original = bl.current_a(dip)
    nominal = bl.matched_dipole_current_a(dip)
    curve = cal.dipole_calibration(dip, bl.settings.dipole_calibration)
    slits = {k: (bl.gap_mm(k), bl.center_mm(k)) for k in SLITS}
    if open_slits:
        for slit in SLITS:
            bl.set_gap(slit, bl.spec.slit(slit).max_gap_mm, 0.0)

    def x_at(current_a: float) -> float:
        bl.set_current(dip, current_a)
        return reference_orbit_at(bl, target)[0]

    try:
        # start from the calibration-nominal current (the answer for a matched line)
        i0, i1 = nominal + 1.0, nominal
        f0, f1 = x_at(i0), x_at(i1)
        iterations = 0
        while abs(f1) > tolerance_m:
            iterations += 1
            if iterations > max_iterations or f1 == f0:
                raise BeamlineInputError(
                    f"DHSTB02 steering did not converge (x = {f1:.3g} m at {target})"
                )
            i0, i1 = i1, i1 - f1 * (i1 - i0) / (f1 - f0)
            spec.check_current(i1)
            f0, f1 = f1, x_at(i1)
        x, px = reference_orbit_at(bl, target)
    finally:
        if not apply:
            bl.set_current(dip, original)
        for slit, (gap, center) in slits.items():
            bl.set_gap(slit, gap, center)
    if apply:
        bl.set_current(dip, i1)
    p02 = cal.momentum_mev_from_field(curve.value(i1))
    return SteeringSolution(
        current_a=i1,
        x_target_m=x,
        px_target=px,
        nominal_current_a=nominal,
        relative_offset=p02 / bl.momentum_mev - 1.0,
        energy_mev=bl.energy_mev,
        dhstb01_current_a=bl.current_a("DHSTB01"),
        target=bl.check_element(target),
        calibration=curve.label,
        iterations=iterations,
    )


def dhstb02_setting_for_energy(
    bl: BeamLine,
    energy_mev: float,
    *,
    dhstb01_current_a: float | None = None,
    target: str = DEFAULT_TARGET,
    apply: bool = False,
    open_slits: bool = False,
) -> SteeringSolution:
    """DHSTB02 current [A] putting a beam of total energy ``energy_mev`` [MeV] on the PADME
    axis at ``target``, DHSTB01 at ``dhstb01_current_a`` [A] (default: the current that
    bends ``energy_mev`` onto the design orbit, i.e. the DHSTB01 energy).

    Changes the model's reference energy and DHSTB01 current (kept afterwards); DHSTB02 is
    restored unless ``apply``.
    """
    if not math.isfinite(energy_mev):
        raise BeamlineInputError("beam energy must be a finite number of MeV")
    bl.set_energy(energy_mev)
    i1 = bl.matched_dipole_current_a("DHSTB01") if dhstb01_current_a is None else dhstb01_current_a
    bl.set_current("DHSTB01", i1)
    return dhstb02_current_for_axis(bl, target=target, apply=apply, open_slits=open_slits)
