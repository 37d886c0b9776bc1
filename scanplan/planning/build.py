"""``plan_scan``: a :class:`PlanRequest` in, a :class:`Plan` of points out (pure: reads only
versioned data files), joining the range, grid, BES, beam-time and point modules."""

from __future__ import annotations

from beamline import calibration as cal
from beamline.lattice import Settings, line_spec
from hw_interfaces.clock import iso_utc

from ..errors import ScanplanError
from ..physics.params import PhysicsModel, load_physics, load_scan_defaults
from ..records import Plan, PlanInputs, Provenance
from .beamtime import beam_time
from .bes import bes_from_spread, constant_bes
from .grid import control_energies_mev, layout
from .points import build_points, settings_values
from .request import PlanRequest, resolve_energy_range, start_time


def request_model(req: PlanRequest) -> PhysicsModel:
    """The physics model ``req.physics`` with the request's w_L and coupling overrides."""
    model = load_physics(req.physics)
    overrides = {
        k: v
        for k, v in (
            ("lorentz_width_mev", req.lorentz_width_mev),
            ("reference_coupling", req.reference_coupling),
        )
        if v is not None
    }
    return model.with_overrides(**overrides) if overrides else model


def plan_scan(req: PlanRequest) -> Plan:
    """Build the plan for ``req``. The result is not sealed; :func:`scanplan.records.save_plan`
    seals and writes it."""
    defaults = load_scan_defaults()
    model = request_model(req)
    if req.bes == 0 and model.lorentz_gamma_mev == 0:
        raise ScanplanError("BES and the Lorentz width are both zero: the line has no width")
    kind, given, e_range = resolve_energy_range(req)
    controls = control_energies_mev(req, e_range)
    spread_info = None
    if req.bes_from_spread:
        bes_of, spread_info = bes_from_spread(req, e_range, controls)
    elif req.bes is not None:
        bes_of = constant_bes(req.bes)
    else:  # PlanRequest sets a BES whenever it does not come from the spread engine
        raise ScanplanError("give a BES or --bes-from-spread")
    grid = layout(
        req,
        e_range,
        controls,
        bes_of,
        model,
        duplicate_tolerance_mev=defaults.validation.duplicate_tolerance_mev,
        control_min_distance_fwhm=defaults.control.min_distance_fwhm,
    )
    time = beam_time(req, grid.n_points)
    start = start_time(req.start_utc) if req.start_utc else None
    settings, values = settings_values(req.settings)
    built = build_points(req, grid.blocks, bes_of, model, time, settings, values)
    notes = list(req.notes)
    if built.extrapolated:
        notes.append(
            f"periods {built.extrapolated} use currents outside the calibrations' trusted ranges "
            "(extrapolated on request)"
        )
    if built.outside_table:
        nodes = model.selection.e_beam_nodes_mev
        notes.append(
            f"periods {built.outside_table} lie outside the efficiency/background table "
            f"{nodes[0]:g}..{nodes[-1]:g} MeV: linear extrapolation"
        )
    overhead = req.overhead_hours_per_point
    inputs = PlanInputs(
        range_kind=kind,
        range_mev=given,
        e_beam_range_mev=grid.e_range_mev,
        step_fraction=req.step_fraction,
        width_reference=req.width_reference,
        rule_width_mev=grid.width_mev,
        max_step_mev=grid.max_step_mev,
        combined_step_mev=grid.combined_step_mev,
        coarse_step_mev=grid.combined_step_mev * req.passes,
        spacing=grid.spacing,
        passes=req.passes,
        direction=req.direction,
        control=req.control,
        control_energies_mev=controls,
        control_position=req.control_position,
        pot_mode=time.pot_mode,
        pot_per_point=time.pot_per_point,
        budget_hours=req.budget_hours,
        positrons_per_bunch=req.positrons_per_bunch,
        repetition_rate_hz=req.repetition_rate_hz,
        uptime_fraction=req.uptime_fraction,
        overhead_hours_per_point=overhead,
        pot_rate_per_hour=time.pot_rate_per_hour,
        start_utc=iso_utc(start) if start else None,
        total_hours=grid.n_points * (time.beam_hours + overhead),
        bes=req.bes if spread_info is None else None,
        bes_source="given" if spread_info is None else "spread_engine",
        spread_engine=spread_info,
        physics=model,
        scan_defaults_version=defaults.version,
        quad_scaling=req.quad_scaling,
        dhstb02_relative_offset=cal.dipole_spec("DHSTB02").default_relative_offset
        if req.dhstb02_relative_offset is None
        else req.dhstb02_relative_offset,
        dhstb02_calibration=built.dhstb02_calibration,
        extrapolate=req.extrapolate,
        duplicate_tolerance_mev=defaults.validation.duplicate_tolerance_mev,
        control_min_distance_fwhm=defaults.control.min_distance_fwhm,
        notes=notes,
    )
    return Plan(
        created_utc=iso_utc(),
        name=req.name,
        provenance=provenance(settings),
        inputs=inputs,
        points=built.points,
    )


def provenance(settings: Settings) -> Provenance:
    """Tool, lattice, settings, calibration and energy-scale versions."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool_version = version("btf-scanplan")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        tool_version = "0+unknown"
    return Provenance(
        tool="btf-scanplan",
        tool_version=tool_version,
        lattice_version=line_spec().version,
        settings=settings.name,
        settings_version=settings.version,
        calibration_version=f"{cal.dipole_calibrations().version}; {cal.quadrupole_calibrations().version}",
        energy_scale_version=cal.energy_scales().version,
        beam=settings.beam,
    )
