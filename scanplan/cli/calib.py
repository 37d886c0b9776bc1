"""``scanplan calib``: dipole current <-> field <-> beam energy <-> sqrt(s), with sigma.

Commands: ``energy`` (from set currents or Hall-probe fields), ``current`` (for beam
energies), ``history`` (hysteresis branch of a sequence of set currents), ``dhstb02``
(model-based DHSTB02 current for the PADME axis).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ScanplanError
from ..figures import check_figure_path
from . import common
from .common import FloatRange, console, err_console, guarded, print_json, range_option

if TYPE_CHECKING:  # pragma: no cover
    from beamline.energy import EnergyEstimate

app = typer.Typer(
    name="calib",
    help="Magnet calibrations: current <-> field <-> beam energy, with branch and sigma.",
    no_args_is_help=True,
    add_completion=False,
)

MagnetOpt = Annotated[str, typer.Option(help="Dipole: DHSTB01 or DHSTB02.")]
BranchOpt = Annotated[
    str | None,
    typer.Option(help="Approach branch: ascending, descending or unknown (default unknown)."),
]
CalibOpt = Annotated[
    str | None,
    typer.Option(
        help="Calibration name in lattices/calibrations/dipoles.toml (default: by branch and scale)."
    ),
]
ScaleOpt = Annotated[
    str | None,
    typer.Option(help="Energy scale in energy_scale.toml (default: padme_run3_v1; 'none')."),
]
ExtrapolateOpt = Annotated[
    bool, typer.Option("--extrapolate", help="Allow values outside the calibrated range.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print rows as JSON.")]
PlotOpt = Annotated[
    Path | None,
    typer.Option(help="Write a figure (PNG, PDF or SVG by the suffix) of the calibration curves."),
]


def _write_plot(fig: Any, path: Path) -> None:
    from ..figures import write_figure

    write_figure(fig, path)
    err_console.print(f"plot written to {path}", highlight=False)


_COLUMNS = [
    ("current_a", "I [A]", ".4f"),
    ("field_g", "B [G]", ".2f"),
    ("energy_mev", "E [MeV]", ".3f"),
    ("sqrt_s_mev", "√s [MeV]", ".4f"),
    ("sigma_energy_mev", "σE [MeV]", ".3f"),
    ("sigma_calibration_scatter_mev", "σcal", ".3f"),
    ("sigma_hysteresis_mev", "σhyst", ".3f"),
    ("sigma_readback_resolution_mev", "σread", ".4f"),
    ("sigma_absolute_scale_mev", "σscale", ".3f"),
    ("branch", "branch", ""),
    ("calibration", "calibration", ""),
    ("extrapolated", "extrap.", ""),
]


def _print_estimates(estimates: list[EnergyEstimate], quantity: str, json_out: bool) -> None:
    """One row per estimate, titled "<magnet> <quantity> — scale <scale>", then its warnings."""
    rows = [e.as_row() for e in estimates]
    if json_out:
        print_json(rows)
        return
    first = estimates[0]
    title = f"{first.magnet} {quantity} — scale {first.scale}"
    console.print(common.rich_table(title, rows, _COLUMNS))
    for warning in dict.fromkeys(w for row in rows for w in row["warnings"]):
        console.print(f"warning: {warning}", style="yellow", highlight=False)


@app.command("energy")
@guarded
def energy(
    current_a: Annotated[FloatRange | None, range_option("Set current(s) [A].")] = None,
    field_g: Annotated[
        FloatRange | None, range_option("Hall-probe field readback(s) [G].")
    ] = None,
    magnet: MagnetOpt = "DHSTB01",
    branch: BranchOpt = None,
    calibration: CalibOpt = None,
    scale: ScaleOpt = None,
    extrapolate: ExtrapolateOpt = False,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Beam energy, √s and σ for dipole set currents or Hall-probe fields (one row each)."""
    from beamline.energy import energy_from_current, energy_from_field

    if plot is not None:
        check_figure_path(plot)  # before any work
    if (current_a is None) == (field_g is None):
        raise ScanplanError("give exactly one of --current-a or --field-g")
    if current_a is not None:
        estimates = [
            energy_from_current(
                c,
                magnet,
                branch=branch,
                calibration=calibration,
                scale=scale,
                extrapolate=extrapolate,
            )
            for c in current_a
        ]
    else:
        if branch is not None:
            raise ScanplanError("--branch applies to --current-a only: a field readback has none")
        estimates = [
            energy_from_field(
                b, magnet, calibration=calibration, scale=scale, extrapolate=extrapolate
            )
            for b in field_g or ()
        ]
    if plot is not None:  # before the output: a refused path leaves no half-done answer
        from scanplan.plots.calib import calibration_figure

        _write_plot(calibration_figure(magnet, estimates), plot)
    _print_estimates(estimates, "beam energy", json_out)


@app.command("current")
@guarded
def current(
    energy_mev: Annotated[FloatRange, range_option("Total beam energy(ies) [MeV].")],
    magnet: MagnetOpt = "DHSTB01",
    branch: BranchOpt = None,
    calibration: CalibOpt = None,
    scale: ScaleOpt = None,
    relative_offset: Annotated[
        float | None,
        typer.Option(
            help="Set the dipole for (1 + offset) x beam momentum (DHSTB02 steering; default "
            "from dipoles.toml)."
        ),
    ] = None,
    extrapolate: ExtrapolateOpt = False,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Dipole set current and field for beam energies (one row each), with σ of the energy."""
    if plot is not None:
        check_figure_path(plot)  # before any work
    from beamline.energy import current_for_energy

    estimates = [
        current_for_energy(
            e,
            magnet,
            branch=branch,
            calibration=calibration,
            scale=scale,
            relative_offset=relative_offset,
            extrapolate=extrapolate,
        )
        for e in energy_mev
    ]
    if plot is not None:  # before the output: a refused path leaves no half-done answer
        from scanplan.plots.calib import calibration_figure

        _write_plot(calibration_figure(magnet, estimates), plot)
    _print_estimates(estimates, "set current", json_out)


@app.command("history")
@guarded
def history(
    current_a: Annotated[FloatRange, range_option("Set currents of the scan in order [A].")],
    magnet: MagnetOpt = "DHSTB01",
    calibration: CalibOpt = None,
    previous_current_a: Annotated[
        float | None, typer.Option(help="Set current before the first step [A].")
    ] = None,
    standardised: Annotated[
        bool, typer.Option("--standardised", help="A standardisation cycle precedes the scan.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a figure (PNG, PDF or SVG) of the steps and their offsets."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Hysteresis branch, expected field offset and σ of each step, and how to approach them."""
    from beamline.hysteresis import hysteresis_history

    if plot is not None:
        check_figure_path(plot)  # before any work
    hist = hysteresis_history(
        list(current_a),
        magnet,
        calibration=calibration,
        previous_current_a=previous_current_a,
        standardised=standardised,
    )
    if plot is not None:
        from scanplan.plots.calib import history_figure

        _write_plot(history_figure(hist), plot)
    rows: list[dict[str, Any]] = [
        {
            "index": s.index,
            "current_a": s.current_a,
            "branch": s.branch or "unknown",
            "field_offset_g": s.field_offset_g,
            "branch_offset_g": s.branch_offset_g,
            "drift_offset_g": s.drift_offset_g,
            "cycle": s.cycle,
            "sigma_field_g": s.sigma_field_g,
            "approach_currents_a": list(s.approach_currents_a),
            "warnings": list(s.warnings),
        }
        for s in hist.steps
    ]
    if json_out:
        print_json(
            {
                "magnet": hist.magnet,
                "calibration": hist.calibration,
                "preferred_branch": hist.preferred_branch,
                "recommendation": hist.recommendation,
                "recommended_sequence_a": list(hist.recommended_sequence_a),
                "model": None
                if hist.model is None
                else {
                    "branch_g": hist.model.branch_g,
                    "branch_sigma_g": hist.model.branch_sigma_g,
                    "branch_fit_g": hist.model.branch_fit_g,
                    "branch_rule": hist.model.branch_rule,
                    "drift_g_per_cycle": hist.model.drift_g_per_cycle,
                    "drift_sigma_g_per_cycle": hist.model.drift_sigma_g_per_cycle,
                    "version": hist.model.version,
                },
                "steps": rows,
            }
        )
        return
    for row, step in zip(rows, hist.steps, strict=True):
        row["approach"] = " → ".join(f"{c:g}" for c in step.approach_currents_a)
    columns = [
        ("index", "step", ""),
        ("current_a", "I [A]", ".4f"),
        ("branch", "branch", ""),
        ("branch_offset_g", "ΔB branch [G]", ".2f"),
        ("cycle", "cycle", "d"),
        ("drift_offset_g", "ΔB drift [G]", ".2f"),
        ("field_offset_g", "ΔB [G]", ".2f"),
        ("sigma_field_g", "σB [G]", ".2f"),
        ("approach", "approach [A]", ""),
    ]
    console.print(common.rich_table(f"{hist.magnet} hysteresis — {hist.calibration}", rows, columns))
    console.print(f"recommended: {hist.recommendation}", highlight=False)
    if hist.model is not None:
        m = hist.model
        console.print(
            f"model ({m.version}): branch {m.branch_g:+.2f} ± {m.branch_sigma_g:.2f} G "
            f"(descending − ascending; {m.branch_rule}), drift {m.drift_g_per_cycle:+.2f} ± "
            f"{m.drift_sigma_g_per_cycle:.2f} G per cycle",
            highlight=False,
        )
    for warning in hist.warnings:
        console.print(f"warning: {warning}", style="yellow", highlight=False)


@app.command("dhstb02")
@guarded
def dhstb02(
    energy_mev: Annotated[FloatRange, range_option("Total beam energy(ies) [MeV].")],
    dhstb01_current_a: Annotated[
        FloatRange | None,
        range_option("DHSTB01 current(s) [A], one per energy (default: matched to it)."),
    ] = None,
    settings: Annotated[
        str | None, typer.Option(help="Settings name (lattices/btf_padme/settings).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Model-based DHSTB02 current that puts the transmitted beam at x = 0 on the PADME target."""
    from beamline.model import BeamLine
    from beamline.steering import dhstb02_setting_for_energy

    energies = list(energy_mev)
    currents: list[float | None] = [None] * len(energies)
    if dhstb01_current_a is not None:
        currents = list(dhstb01_current_a)
        if len(currents) != len(energies):
            raise ScanplanError(
                f"{len(currents)} DHSTB01 currents for {len(energies)} energies: give one each"
            )
    bl = BeamLine(settings, energies[0])  # one xtrack model for every energy
    # the beam steered is the part of the LINAC beam that the slits transmit at each
    # DHSTB01 current (beamline.steering)
    solutions = [
        dhstb02_setting_for_energy(bl, e, dhstb01_current_a=i1)
        for e, i1 in zip(energies, currents, strict=True)
    ]
    rows = [
        {
            "energy_mev": s.energy_mev,
            "dhstb01_current_a": s.dhstb01_current_a,
            "beam_energy_mev": s.beam_energy_mev,
            "n_transmitted": s.n_transmitted,
            "current_a": s.current_a,
            "nominal_current_a": s.nominal_current_a,
            "relative_offset": s.relative_offset,
            "x_target_mm": s.x_target_m * 1e3,
            "centroid_sigma_mm": s.centroid_sigma_m * 1e3,
            "px_target_mrad": s.px_target * 1e3,
            "calibration": s.calibration,
        }
        for s in solutions
    ]
    if json_out:
        print_json(rows)
        return
    columns = [
        ("energy_mev", "E [MeV]", ".3f"),
        ("dhstb01_current_a", "DHSTB01 [A]", ".4f"),
        ("beam_energy_mev", "transmitted E [MeV]", ".3f"),
        ("n_transmitted", "N", "d"),
        ("current_a", "DHSTB02 [A]", ".4f"),
        ("nominal_current_a", "nominal [A]", ".4f"),
        ("relative_offset", "ε", ".5f"),
        ("x_target_mm", "x target [mm]", ".2e"),
        ("centroid_sigma_mm", "σ(x̄) [mm]", ".3f"),
        ("px_target_mrad", "px target [mrad]", ".4f"),
        ("calibration", "calibration", ""),
    ]
    console.print(common.rich_table("DHSTB02 on the PADME axis (model)", rows, columns))


#: Units of the fitted source parameters, for the table.
_SOURCE_UNITS = {
    "size_mm": "mm",
    "divergence_mrad": "mrad",
    "sigma_delta": "",
    "energy_offset_mev": "MeV",
}


@app.command("source")
@guarded
def source(
    from_store: Annotated[
        Path | None, typer.Option(help="Run-conditions store (SQLite) the checker wrote.")
    ] = None,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV of measured spots: point,energy_mev,dhstb01_current_a,"
            "dhstb02_current_a,x_mm,y_mm,sigma_x_mm,sigma_y_mm,hits."
        ),
    ] = None,
    beam: Annotated[
        str | None,
        typer.Option(help="Source to fit (beam file; default: the settings' spread source)."),
    ] = None,
    linear: Annotated[
        bool,
        typer.Option(
            "--linear", help="Gaussian linear-optics model (fast; ignores slit truncation)."
        ),
    ] = False,
    particles: Annotated[
        int, typer.Option(help="Particles per point of the tracked model.")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the tracked model.")] = 0,
    settings: Annotated[
        str | None, typer.Option(help="Settings name (lattices/btf_padme/settings).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit the source size, divergence, momentum spread and the absolute energy offset to
    measured beam spots (the step checks), with uncertainties."""
    from scanplan.source_fit import fit_source, observations_from_csv, observations_from_store

    if (from_store is None) == (from_csv is None):
        raise ScanplanError("give either --from-store STORE or --from-csv FILE")
    obs = (
        observations_from_store(from_store)
        if from_store is not None
        else observations_from_csv(Path(str(from_csv)))
    )
    fit = fit_source(
        obs, settings=settings, source=beam, tracked=not linear, n_particles=particles, seed=seed
    )
    if json_out:
        print_json(fit.as_dict())
        return
    rows = [
        {
            "parameter": k,
            "value": v,
            "sigma": fit.sigmas[k],
            "unit": _SOURCE_UNITS[k],
            "fixed": "fixed" if k in fit.fixed else "",
        }
        for k, v in fit.values.items()
    ]
    columns = [
        ("parameter", "parameter", ""),
        ("value", "value", ".5g"),
        ("sigma", "σ", ".2g"),
        ("unit", "unit", ""),
        ("fixed", "", ""),
    ]
    console.print(common.rich_table(f"Source fit to {fit.n_observations} spots", rows, columns))
    names = list(fit.values)
    corr_rows = [
        {"parameter": a, **{b: float(fit.correlation[i, j]) for j, b in enumerate(names)}}
        for i, a in enumerate(names)
    ]
    corr_columns = [("parameter", "", "")] + [(b, b, "+.2f") for b in names]
    console.print(common.rich_table("Correlation", corr_rows, corr_columns))
    console.print(f"chi2 {fit.chi2:.1f} for {fit.dof} degrees of freedom", highlight=False)
    for note in fit.notes:
        console.print(f"note: {note}", highlight=False)
