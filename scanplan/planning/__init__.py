"""Scan planning: a mass (or sqrt(s), or beam-energy) range in, a :class:`Plan` of points out.

Rules (issue 6; defaults in ``lattices/physics/scan_defaults.toml``):

* **Spacing.** The combined spacing of all passes is at most ``step_fraction`` times the FWHM
  of the expected line shape (Voigt of the beam spread ``BES * E_res`` and the
  electron-motion Lorentzian, :mod:`scanplan.physics.lineshape`). The width is taken where
  the line is narrowest over the range (``width_reference = "min"``) or at its centre. The
  points fill the range evenly: ``n = ceil(span / max_step) + 1`` points, both ends included.
* **Passes.** Points are dealt to ``passes`` interleaved passes (rank from the starting end
  modulo ``passes``): pass 0 is the coarse pass, the others fall half-way (for 2) between its
  points. Every pass is monotone in DHSTB01 current in ``direction``, so each stays on one
  hysteresis branch; the branch recorded for a point is its pass direction, which assumes
  the first point of every pass is approached with the overshoot recipe of
  :mod:`beamline.hysteresis` (done by the crew when the magnet is moved back for a pass).
* **Control points** below (2022) or above (2025) the range, or none; they form their own
  pass, placed after the first pass (2022), at the start or at the end.
* **POT.** Either POT per point, or a total budget [h] shared equally by all points:
  ``hours = POT / (positrons_per_bunch * repetition_rate_hz * uptime_fraction * 3600)``
  plus ``overhead_hours_per_point`` of changeover; a calendar follows from a start time.
* **Currents.** DHSTB01 from its Hall-probe calibration of the pass branch and the energy
  scale (:func:`beamline.energy.current_for_energy`); DHSTB02 from its own (design)
  calibration with the relative offset of the setting; slits from the settings file;
  quadrupole gradients scaled with the beam momentum from the settings' reference energy
  (``quad_scaling = "momentum"``) or kept at the settings' currents (``"fixed"``).

Per point, the yields are for a resonance at the point's own sqrt(s) (on-peak):
``signal_yield_per_pot_g2 = Y * V(0)``; the sensitivity module evaluates any other mass.

Modules, one job each: :mod:`~scanplan.planning.request` (the typed request and its
defaults), :mod:`~scanplan.planning.grid` (spacing rule, passes, control block),
:mod:`~scanplan.planning.bes` (beam-energy spread), :mod:`~scanplan.planning.beamtime`,
:mod:`~scanplan.planning.points` (currents and per-point yields),
:mod:`~scanplan.planning.build` (:func:`plan_scan`), :mod:`~scanplan.planning.calendar` and
:mod:`~scanplan.planning.validation`.
"""

from .beamtime import BeamTime, beam_time, pot_rate_per_hour
from .build import plan_scan, provenance, request_model
from .calendar import CalendarEntry, plan_calendar
from .grid import assign_passes, grid_energies_mev, rule_width_mev
from .request import PlanRequest, parse_request_value, resolve_energy_range, start_time
from .validation import Problem, validate_plan

__all__ = [
    "BeamTime",
    "CalendarEntry",
    "PlanRequest",
    "Problem",
    "assign_passes",
    "beam_time",
    "grid_energies_mev",
    "parse_request_value",
    "plan_calendar",
    "plan_scan",
    "pot_rate_per_hour",
    "provenance",
    "request_model",
    "resolve_energy_range",
    "rule_width_mev",
    "start_time",
    "validate_plan",
]
