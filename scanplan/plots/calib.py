"""Calibration figures of ``scanplan calib ... --plot``: E(I) of the dipole calibrations and
the hysteresis of a scan's set currents. Functions return matplotlib figures; the CLI
writes them with :func:`scanplan.figures.write_figure`.

The E(I) curves are straight lines 1.56 MeV/A steep that differ by 1-3 MeV: on an E(I)
axis they lie on top of each other. The figure therefore has a second panel with what
tells them apart, the field of each curve minus the BTF nominal excitation [G] (the
"29-48 G above the nominal formula" of facts 3), with the energy equivalent on the right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .plan import figure

if TYPE_CHECKING:  # pragma: no cover
    from beamline.calibration import LinearExcitation
    from beamline.energy import EnergyEstimate
    from beamline.hysteresis import HysteresisHistory, HysteresisModel

#: Provenance of the 2022 per-pass Hall-probe fits in dipoles.toml (facts 3, measured).
PASS_FIT_SOURCE = "facts 3 [M]"
#: Nominal BTF curve and the scale it is read on (BTF's own E_BTF(I), facts 3).
NOMINAL = ("btf_nominal_v1", "none")
BRANCH_COLOURS = {"descending": "tab:blue", "ascending": "tab:orange", None: "0.45"}
_PASS_STYLES = ("-", "--", "-.", ":")


def _pass_fits(magnet: str) -> list[LinearExcitation]:
    """The 2022 per-pass Hall-probe fits of ``magnet`` (empty for DHSTB02: no data)."""
    from beamline import calibration as cal

    if cal.branch_calibration(magnet, None) is None:
        return []
    return [
        c
        for c in cal.dipole_calibrations().calibrations.values()
        if c.source == PASS_FIT_SOURCE and c.field_reference == "hall_probe"
    ]


def _model(magnet: str) -> HysteresisModel | None:
    """The branch and drift model fitted to the 2022 passes, if it is ``magnet``'s."""
    from beamline import hysteresis

    model = hysteresis.hysteresis_model()
    return model if model.magnet == magnet else None


def _energies(magnet: str, fields_g: Any, calibration: str, scale: str | None) -> list[float]:
    """Beam energies [MeV] of Hall-probe/design fields [G] on ``scale`` (beamline.energy)."""
    from beamline.energy import energy_from_field

    return [
        energy_from_field(
            float(b), magnet, calibration=calibration, scale=scale, extrapolate=True
        ).energy_mev
        for b in fields_g
    ]


def calibration_figure(
    magnet: str = "DHSTB01",
    estimates: Sequence[EnergyEstimate] = (),
    *,
    current_range_a: tuple[float, float] | None = None,
) -> Any:
    """E(I) [MeV vs A] of the nominal BTF excitation, the 2022 per-pass Hall-probe fits and
    the hysteresis branches (unknown-branch curve plus :func:`beamline.hysteresis.
    branch_field_offset_g`), over the 2022 scan currents (shaded), with ``estimates`` (the
    command's rows) as points with their sigma; below, field minus nominal [G]."""
    import numpy as np

    from beamline import calibration as cal
    from beamline import hysteresis

    spec = cal.dipole_spec(magnet)
    passes = _pass_fits(spec.name)
    nominal = cal.dipole_calibration(spec.name, NOMINAL[0])
    scan = (
        (min(c.valid_current_a[0] for c in passes), max(c.valid_current_a[1] for c in passes))
        if passes
        else None
    )
    points_a = [e.current_a for e in estimates]
    lo, hi = current_range_a or (
        min([*(scan or (150.0, 190.0)), *points_a]) - 5.0,
        max([*(scan or (150.0, 190.0)), *points_a]) + 5.0,
    )
    currents = np.linspace(lo, hi, 61)
    fig, (ax_e, ax_b) = figure(2, height_in=3.6)
    fig.set_size_inches(10.5, 8.0)
    fig.subplots_adjust(left=0.09, right=0.70, top=0.92, bottom=0.08, hspace=0.12)
    b_nom = np.array([nominal.value(c) for c in currents])
    ax_e.plot(
        currents,
        _energies(spec.name, b_nom, nominal.name, NOMINAL[1]),
        color="k",
        lw=1.2,
        label="BTF nominal E_BTF(I) (scale none)",
    )
    ax_b.axhline(0, color="k", lw=1.2)
    scale_name = cal.energy_scale(None).name if passes else NOMINAL[1]
    model = _model(spec.name)
    own = {} if model is None else {p.calibration: p for p in model.passes}
    for k, c in enumerate(passes):
        b = np.array([c.value(x) for x in currents])
        style = {"color": BRANCH_COLOURS[c.branch], "ls": _PASS_STYLES[k % 4], "lw": 0.9}
        label = f"2022 fit {c.name} ({c.branch})"
        ax_e.plot(currents, _energies(spec.name, b, c.name, scale_name), label=label, **style)
        ax_b.plot(currents, b - b_nom, **style)
        if c.name in own:  # the currents this pass measured: thick
            p = own[c.name]
            i_own = np.linspace(*p.current_range_a, 9)
            b_own = np.array([c.value(x) - nominal.value(x) for x in i_own])
            ax_b.plot(i_own, b_own, color=style["color"], lw=3.5, solid_capstyle="butt")
    if own:
        ax_b.plot([], [], color="0.3", lw=3.5, label="pass fit over its own 2022 currents")
    unknown = cal.branch_calibration(spec.name, None)
    sigma_known = hysteresis.parameters().sigma_known_branch_g
    if unknown is not None:
        for branch in ("descending", "ascending"):
            b = np.array(
                [
                    unknown.value(x) + hysteresis.branch_field_offset_g(spec.name, x, branch)
                    for x in currents
                ]
            )
            style = {"color": BRANCH_COLOURS[branch], "lw": 3.0, "alpha": 0.55}
            label = f"hysteresis branch: {branch}"
            ax_e.plot(
                currents, _energies(spec.name, b, unknown.name, scale_name), label=label, **style
            )
            ax_b.plot(currents, b - b_nom, **style)
            ax_b.fill_between(
                currents,
                b - b_nom - sigma_known,
                b - b_nom + sigma_known,
                color=BRANCH_COLOURS[branch],
                alpha=0.12,
                lw=0,
            )
        if unknown.valid_field is not None:  # lowest and highest 2022 scan points (I, B_Hall)
            ends_a, ends_g = unknown.valid_current_a, unknown.valid_field
            ax_e.plot(
                ends_a,
                [_energies(spec.name, [g], unknown.name, scale_name)[0] for g in ends_g],
                "ks",
                ms=6,
                label="2022 scan ends (I, B_Hall)",
            )
            ax_b.plot(
                ends_a,
                [g - nominal.value(a) for a, g in zip(ends_a, ends_g, strict=True)],
                "ks",
                ms=6,
            )
    if estimates:
        de_db = [_de_db(e) for e in estimates]
        ax_e.errorbar(
            points_a,
            [e.energy_mev for e in estimates],
            yerr=[e.sigma_energy_mev for e in estimates],
            fmt="o",
            ms=4,
            color="tab:red",
            capsize=2,
            label="this command (±σE)",
        )
        ax_b.errorbar(
            points_a,
            [e.field_g - nominal.value(e.current_a) for e in estimates],
            yerr=[_sigma_field_mev(e) / d for e, d in zip(estimates, de_db, strict=True)],
            fmt="o",
            ms=4,
            color="tab:red",
            capsize=2,
        )
    if scan is not None:
        ax_e.axvspan(*scan, color="0.9", zorder=0, label=f"2022 scan {scan[0]:g}-{scan[1]:g} A")
        ax_b.axvspan(*scan, color="0.9", zorder=0)
    ax_e.set_ylabel("beam energy E [MeV]")
    ax_b.set_ylabel("field − nominal excitation [G]")
    ax_b.set_xlabel(f"{spec.name} set current I [A]")
    ax_e.set_xlim(lo, hi)
    ax_b.set_xlim(lo, hi)
    ax_e.tick_params(labelbottom=False)
    power = cal.dipole_calibrations().bending_power_mev_per_g
    sec = ax_b.secondary_yaxis("right", functions=(lambda g: g * power, lambda m: m / power))
    sec.set_ylabel("≈ ΔE [MeV]")
    for ax in (ax_e, ax_b):
        ax.grid(alpha=0.3)
    ax_e.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    title = (
        f"{spec.name} calibration: current → field → beam energy (scale {scale_name}); "
        "points ±σ (field part below)"
    )
    if model is not None:
        title += (
            f"\nhysteresis model {model.version}: branch {model.branch_g:+.1f} ± "
            f"{model.branch_sigma_g:.1f} G (descending − ascending), drift "
            f"{model.drift_g_per_cycle:+.1f} ± {model.drift_sigma_g_per_cycle:.1f} G per pass; "
            f"bands ±{sigma_known:g} G (known branch)"
        )
    fig.suptitle(title, fontsize=10)
    return fig


#: Sigma contributions of an estimate that are not the field's (the absolute energy scale).
_SCALE_TERMS = ("absolute_scale", "scale_fit_rms")


def _sigma_field_mev(e: EnergyEstimate) -> float:
    """Field part of an estimate's sigma, in MeV (calibration scatter, hysteresis, readback):
    the absolute energy scale moves no field."""
    import math

    terms = [v for k, v in e.sigma_contributions_mev.items() if k not in _SCALE_TERMS]
    return math.sqrt(math.fsum(v * v for v in terms))


def _de_db(e: EnergyEstimate) -> float:
    """dE/dB [MeV/G] at an estimate: bending power times p/E (beamline.energy's chain)."""
    from beamline import calibration as cal

    return cal.dipole_calibrations().bending_power_mev_per_g * e.momentum_mev / e.energy_mev


def history_figure(hist: HysteresisHistory) -> Any:
    """The set currents [A] of a scan step by step, coloured by hysteresis branch, with the
    recommended overshoots; below, the expected field offset of each step ±σ [G] and its
    branch and drift parts."""
    steps = hist.steps
    fig, (ax_i, ax_b) = figure(2, height_in=3.2)
    fig.set_size_inches(10.5, 7.0)
    fig.subplots_adjust(left=0.09, right=0.74, top=0.90, bottom=0.09, hspace=0.12)
    idx = [s.index for s in steps]
    ax_i.plot(idx, [s.current_a for s in steps], color="0.6", lw=0.8, zorder=1)
    ax_b.axhline(0, color="0.6", lw=0.8)
    for branch, colour in BRANCH_COLOURS.items():
        sel = [s for s in steps if s.branch == branch]
        if not sel:
            continue
        name = branch or "unknown"
        ax_i.scatter(
            [s.index for s in sel],
            [s.current_a for s in sel],
            color=colour,
            s=22,
            zorder=3,
            label=name,
        )
        ax_b.errorbar(
            [s.index for s in sel],
            [s.field_offset_g for s in sel],
            yerr=[s.sigma_field_g for s in sel],
            fmt="o",
            ms=4,
            color=colour,
            capsize=2,
        )
    # the two parts of the offset (beamline.hysteresis): branch (iron) and drift (cycles)
    ax_b.scatter(
        [s.index + 0.18 for s in steps],
        [s.branch_offset_g for s in steps],
        marker="^",
        facecolors="none",
        edgecolors="k",
        s=26,
        label="branch part",
    )
    ax_b.scatter(
        [s.index + 0.18 for s in steps],
        [s.drift_offset_g for s in steps],
        marker="x",
        color="tab:green",
        s=26,
        label="drift part",
    )
    ax_b.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    over = [(s.index - 0.25, a) for s in steps for a in s.approach_currents_a[:-1]]
    if over:
        ax_i.scatter(
            [o[0] for o in over],
            [o[1] for o in over],
            marker="v",
            color="tab:purple",
            s=24,
            zorder=3,
            label="recommended overshoot",
        )
    ax_i.set_ylabel(f"{hist.magnet} set current [A]")
    ax_b.set_ylabel("expected field offset ±σ [G]")
    ax_b.set_xlabel("step")
    ax_i.tick_params(labelbottom=False)
    for ax in (ax_i, ax_b):
        ax.grid(alpha=0.3)
        ax.set_xlim(min(idx) - 0.6, max(idx) + 0.6)
    if len(idx) <= 25:
        for ax in (ax_i, ax_b):
            ax.set_xticks(idx)
    ax_i.legend(
        title="approached", loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False
    )
    fig.suptitle(
        f"{hist.magnet} hysteresis of the scan — calibration {hist.calibration}, "
        f"preferred branch {hist.preferred_branch}",
        fontsize=10,
    )
    return fig
