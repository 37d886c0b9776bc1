"""Model-based DHSTB02 setting: the current that puts the *transmitted* beam on the PADME axis.

The beam that reaches DHSTB02 is the part of the LINAC beam that the energy selection
(SLTB2, DHSTB01, SLTB3, SLTB4, and SLTB5) transmits. Its momentum is the one DHSTB01 at its
actual current bends through the slits, not the reference energy of the model: with DHSTB01
at 180.0 A and a 282.5 MeV LINAC beam the slits pass ~283.8 MeV, and steering a 282.5 MeV
particle (which the slits stop) would put the real beam ~8 mm off axis at the target.

Method (:func:`dhstb02_current_for_axis`):

1. a seeded sample of the beam source (:mod:`beamline.source`, the LINAC beam of the
   settings by default) is tracked with the xtrack model from the line start to the exit of
   SLTB5 with the slits and apertures as set in the model (:func:`transmitted_beam`);
2. the survivors are tracked from there to ``target`` for trial DHSTB02 currents and the
   current that zeroes their mean ``x`` is found by the secant method (the map is nearly
   linear in the current: 3-4 iterations).

Window scattering is not applied in step 1: it changes which particles pass SLTB3/SLTB4 but
not, to first order, their mean momentum. The statistical uncertainty of the centroid
(``centroid_sigma_m``) is reported; with the default 2e5 particles it is ~0.03 mm.

``beam="reference"`` keeps the old behaviour for comparison: the on-axis particle at the
model's reference energy (``delta = 0``) with the slits opened to the chamber.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import calibration as cal
from .constants import energy_mev_from_momentum
from .errors import BeamlineInputError
from .model import BeamLine
from .names import SLITS
from .source import BeamSource, draw_deviates, initial_coordinates, load_source

DEFAULT_TARGET = "padme_target"
#: Element after the last selection slit and before DHSTB02: the survivors are kept here.
SELECTION_END = "sltb5_exit"
#: Default size of the beam sample tracked through the selection.
DEFAULT_STEERING_PARTICLES = 200_000
BEAMS = ("transmitted", "reference")


@dataclass(frozen=True)
class SteeringSolution:
    """DHSTB02 current [A] putting the beam centroid at ``x = 0`` at ``target``.

    ``x_target_m`` [m] / ``px_target`` [rad]: mean of the steered beam at the solution;
    ``nominal_current_a`` [A]: the calibration current for the model's reference energy;
    ``relative_offset``: p_DHSTB02 / p_beam - 1 with p_beam the mean momentum of the
    steered beam; ``energy_mev`` [MeV]: reference (LINAC) energy; ``beam_energy_mev`` [MeV]:
    mean total energy of the steered beam; ``n_transmitted``: particles in the centroid
    (1 for the reference particle); ``centroid_sigma_m`` [m]: statistical sigma of the mean
    x at the target; ``beam``: "transmitted" or "reference".
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
    beam: str = "transmitted"
    beam_energy_mev: float = math.nan
    n_transmitted: int = 1
    centroid_sigma_m: float = 0.0


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


def transmitted_beam(
    bl: BeamLine,
    *,
    source: BeamSource | None = None,
    n_particles: int = DEFAULT_STEERING_PARTICLES,
    seed: int = 0,
    stop: str = SELECTION_END,
) -> dict[str, np.ndarray]:
    """Coordinates (``x, px, y, py, delta`` at ``stop``'s entrance, xtrack convention) of the
    particles of ``source`` (default: the settings' beam) that the model's slits and
    apertures transmit up to ``stop``. Raises a clear error when none survives."""
    src = source or load_source(settings=bl.settings.name)
    if int(n_particles) < 1:
        raise BeamlineInputError("steering needs at least one particle")
    coords = initial_coordinates(src.beam, draw_deviates(seed, 0, int(n_particles), 0))
    p = bl.build_particles(**coords, zeta=0.0)
    bl.line.track(p, ele_stop=bl.check_element(stop))
    ok = p.state > 0
    if not ok.any():
        raise BeamlineInputError(
            f"no particle of the beam {src.name} passes the slits up to {stop} with DHSTB01 at "
            f"{bl.current_a('DHSTB01'):g} A: the selected momentum is outside the beam"
        )
    return {k: np.array(getattr(p, k)[ok]) for k in ("x", "px", "y", "py", "delta")}


def _centroid_tracker(
    bl: BeamLine, beam: Mapping[str, np.ndarray], start: str, target: str
) -> Callable[[], tuple[float, float, float, int]]:
    """Function tracking ``beam`` from ``start`` to ``target``: mean x [m], mean px, sigma
    of the mean x [m], survivors."""
    t = bl.check_element(target)

    def run() -> tuple[float, float, float, int]:
        p = bl.build_particles(**beam, zeta=0.0)
        bl.line.track(p, ele_start=start, ele_stop=t)
        ok = p.state > 0
        n = int(ok.sum())
        if n == 0:
            raise BeamlineInputError(f"the steered beam is lost before {t}")
        x = np.asarray(p.x[ok])
        return float(x.mean()), float(np.mean(p.px[ok])), float(x.std() / math.sqrt(n)), n

    return run


def dhstb02_current_for_axis(
    bl: BeamLine,
    *,
    target: str = DEFAULT_TARGET,
    tolerance_m: float = 1e-8,
    max_iterations: int = 30,
    apply: bool = False,
    beam: str = "transmitted",
    source: BeamSource | None = None,
    n_particles: int = DEFAULT_STEERING_PARTICLES,
    seed: int = 0,
) -> SteeringSolution:
    """DHSTB02 current [A] that puts the beam centroid at x = 0 at ``target``.

    ``beam="transmitted"`` (default): the part of ``source`` that the slits transmit with
    the model's present DHSTB01 current and gaps (see module doc); ``"reference"``: the
    on-axis particle at the reference energy with the slits opened to the chamber. The
    model's DHSTB02 current (and gaps) are restored afterwards unless ``apply``.
    """
    if beam not in BEAMS:
        raise BeamlineInputError(f"beam must be one of {BEAMS}, got {beam!r}")
    dip = "DHSTB02"
    spec = cal.magnet_spec(dip)
    original = bl.current_a(dip)
    nominal = bl.matched_dipole_current_a(dip)
    curve = cal.dipole_calibration(dip, bl.settings.dipole_calibration)
    slits = {k: (bl.gap_mm(k), bl.center_mm(k)) for k in SLITS}
    p_ref = bl.momentum_mev
    try:
        if beam == "transmitted":
            sample = transmitted_beam(bl, source=source, n_particles=n_particles, seed=seed)
            mean_delta = float(np.mean(sample["delta"]))
            run = _centroid_tracker(bl, sample, SELECTION_END, target)
        else:
            for slit in SLITS:
                bl.set_gap(slit, bl.spec.slit(slit).max_gap_mm, 0.0)
            mean_delta = 0.0
            sample = {k: np.zeros(1) for k in ("x", "px", "y", "py", "delta")}
            run = _centroid_tracker(bl, sample, bl.line.element_names[0], target)
        p_beam = p_ref * (1.0 + mean_delta)

        def x_at(current_a: float) -> float:
            spec.check_current(current_a)
            bl.set_current(dip, current_a)
            return run()[0]

        # start from the current matched to the beam's mean momentum (the first-order answer)
        i1 = cal.dipole_current_for_momentum(dip, p_beam, bl.settings.dipole_calibration)
        i0 = i1 + 1.0
        f0, f1 = x_at(i0), x_at(i1)
        iterations = 0
        while abs(f1) > tolerance_m:
            iterations += 1
            if iterations > max_iterations or f1 == f0:
                raise BeamlineInputError(
                    f"DHSTB02 steering did not converge (x = {f1:.3g} m at {target})"
                )
            i0, i1 = i1, i1 - f1 * (i1 - i0) / (f1 - f0)
            f0, f1 = f1, x_at(i1)
        x, px, sigma, n = run()
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
        relative_offset=p02 / p_beam - 1.0,
        energy_mev=bl.energy_mev,
        dhstb01_current_a=bl.current_a("DHSTB01"),
        target=bl.check_element(target),
        calibration=curve.label,
        iterations=iterations,
        beam=beam,
        beam_energy_mev=energy_mev_from_momentum(p_beam),
        n_transmitted=n,
        centroid_sigma_m=0.0 if beam == "reference" else sigma,
    )


def dhstb02_setting_for_energy(
    bl: BeamLine,
    energy_mev: float,
    *,
    dhstb01_current_a: float | None = None,
    target: str = DEFAULT_TARGET,
    apply: bool = False,
    beam: str = "transmitted",
    source: BeamSource | None = None,
    n_particles: int = DEFAULT_STEERING_PARTICLES,
    seed: int = 0,
) -> SteeringSolution:
    """DHSTB02 current [A] putting the beam on the PADME axis at ``target``: a LINAC beam
    centred on total energy ``energy_mev`` [MeV], DHSTB01 at ``dhstb01_current_a`` [A]
    (default: matched to ``energy_mev``). With DHSTB01 mis-set the slits transmit another
    momentum; that beam is the one steered.

    Changes the model's reference energy and DHSTB01 current (kept afterwards); DHSTB02 is
    restored unless ``apply``.
    """
    if not math.isfinite(energy_mev):
        raise BeamlineInputError("beam energy must be a finite number of MeV")
    bl.set_energy(energy_mev)
    i1 = bl.matched_dipole_current_a("DHSTB01") if dhstb01_current_a is None else dhstb01_current_a
    bl.set_current("DHSTB01", i1)
    return dhstb02_current_for_axis(
        bl,
        target=target,
        apply=apply,
        beam=beam,
        source=source,
        n_particles=n_particles,
        seed=seed,
    )
