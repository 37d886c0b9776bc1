"""Calibration conversions behind ``scanplan calib`` (callable from notebooks too).

Planner view: beam energy -> set current (:func:`currents_for_energies`). Checker view: set
current or Hall-probe readback -> beam energy (:func:`energies_from_currents`,
:func:`energies_from_fields`). Each returns one :class:`beamline.energy.EnergyEstimate` per
input value, in order. :func:`scan_history` analyses the hysteresis branch of a sequence of
set currents. :func:`dhstb02_settings` solves the model for the DHSTB02 current that puts
the beam on the PADME axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from beamline import energy as _energy
from beamline import hysteresis as _hysteresis
from beamline.energy import EnergyEstimate
from beamline.hysteresis import HysteresisHistory

from .errors import ScanplanError

if TYPE_CHECKING:  # pragma: no cover
    from beamline.steering import SteeringSolution


def _values(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ScanplanError(f"no {what} given")
    return out


def energies_from_currents(
    currents_a: Sequence[float],
    magnet: str = "DHSTB01",
    *,
    branch: str | None = None,
    calibration: str | None = None,
    scale: str | None = None,
    extrapolate: bool = False,
) -> list[EnergyEstimate]:
    """Beam energy [MeV] for each dipole set current [A] (see ``energy_from_current``)."""
    return [
        _energy.energy_from_current(
            c,
            magnet,
            branch=branch,
            calibration=calibration,
            scale=scale,
            extrapolate=extrapolate,
        )
        for c in _values(currents_a, "currents")
    ]


def energies_from_fields(
    fields_g: Sequence[float],
    magnet: str = "DHSTB01",
    *,
    calibration: str | None = None,
    scale: str | None = None,
    extrapolate: bool = False,
) -> list[EnergyEstimate]:
    """Beam energy [MeV] for each Hall-probe field readback [G]."""
    return [
        _energy.energy_from_field(
            b, magnet, calibration=calibration, scale=scale, extrapolate=extrapolate
        )
        for b in _values(fields_g, "fields")
    ]


def currents_for_energies(
    energies_mev: Sequence[float],
    magnet: str = "DHSTB01",
    *,
    branch: str | None = None,
    calibration: str | None = None,
    scale: str | None = None,
    relative_offset: float | None = None,
    extrapolate: bool = False,
) -> list[EnergyEstimate]:
    """Set current [A] for each total beam energy [MeV] (see ``current_for_energy``)."""
    return [
        _energy.current_for_energy(
            e,
            magnet,
            branch=branch,
            calibration=calibration,
            scale=scale,
            relative_offset=relative_offset,
            extrapolate=extrapolate,
        )
        for e in _values(energies_mev, "energies")
    ]


def scan_history(
    currents_a: Sequence[float],
    magnet: str = "DHSTB01",
    *,
    calibration: str | None = None,
    previous_current_a: float | None = None,
    standardised: bool = False,
) -> HysteresisHistory:
    """Hysteresis branch, field offset and sigma of a sequence of set currents [A]."""
    return _hysteresis.hysteresis_history(
        _values(currents_a, "currents"),
        magnet,
        calibration=calibration,
        previous_current_a=previous_current_a,
        standardised=standardised,
    )


def dhstb02_settings(
    energies_mev: Sequence[float],
    *,
    dhstb01_currents_a: Sequence[float] | None = None,
    settings: str | None = None,
    target: str = "padme_target",
) -> list[SteeringSolution]:
    """Model-based DHSTB02 current [A] putting a beam of each total energy [MeV] at x = 0 at
    ``target`` (one xtrack model, built once). DHSTB01 at the given currents [A] (one per
    energy; default: the current that bends that energy onto the design orbit). The beam
    steered is the part of the LINAC beam that the slits transmit at that DHSTB01 current
    (see :mod:`beamline.steering`)."""
    from beamline.model import BeamLine
    from beamline.steering import dhstb02_setting_for_energy

    energies = _values(energies_mev, "energies")
    if dhstb01_currents_a is not None and len(dhstb01_currents_a) != len(energies):
        raise ScanplanError(
            f"{len(dhstb01_currents_a)} DHSTB01 currents for {len(energies)} energies: give one each"
        )
    bl = BeamLine(settings, energies[0])
    out = []
    for k, energy in enumerate(energies):
        i1 = None if dhstb01_currents_a is None else float(dhstb01_currents_a[k])
        out.append(dhstb02_setting_for_energy(bl, energy, dhstb01_current_a=i1, target=target))
    return out
