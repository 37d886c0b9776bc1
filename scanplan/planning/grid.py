"""Where the points go: the spacing rule's line width, the evenly filled energy grid, its
interleaved passes and the control block (rules in :mod:`scanplan.planning`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..analysis.spacing import SpacingInfo, choose_max_step
from ..errors import ScanplanError
from ..physics.lineshape import line_fwhm_mev
from ..physics.params import PhysicsModel
from ..records import PointKind
from .request import PlanRequest

#: A relative beam-energy spread, or a function of the beam energy [MeV] giving it.
BesOf = Callable[[float], float]


def rule_width_mev(
    e_lo_mev: float,
    e_hi_mev: float,
    bes: float | BesOf,
    model: PhysicsModel,
    reference: str,
) -> float:
    """Line FWHM [MeV] the spacing rule refers to over the beam-energy range (``bes`` a
    relative spread or a function of the beam energy [MeV])."""

    def at(e: float) -> float:
        return line_fwhm_mev(e, bes(e) if callable(bes) else bes, model)

    if reference == "min":  # sampled: the BES may vary along the range (spread engine)
        samples = [e_lo_mev + (e_hi_mev - e_lo_mev) * i / 40 for i in range(41)]
        return min(at(e) for e in samples)
    if reference == "centre":
        return at(0.5 * (e_lo_mev + e_hi_mev))
    raise ScanplanError(f"width reference must be 'min' or 'centre', got {reference!r}")


def grid_energies_mev(e_lo_mev: float, e_hi_mev: float, max_step_mev: float) -> list[float]:
    """Evenly spaced energies [MeV] from low to high, both ends included, spacing <= max."""
    span = e_hi_mev - e_lo_mev
    if span <= 0:
        return [e_lo_mev]
    n = math.ceil(span / max_step_mev - 1e-9) + 1
    step = span / (n - 1)
    return [e_lo_mev + i * step for i in range(n)]


def assign_passes(energies_mev: list[float], passes: int, direction: str) -> list[list[float]]:
    """Deal grid energies to interleaved passes, each sorted in ``direction``.

    The rank is counted from the end the scan starts at (top for descending), so pass 0
    (coarse) starts at the range edge and pass k sits k/passes of a coarse step inside.
    """
    ordered = sorted(energies_mev, reverse=(direction == "descending"))
    return [ordered[k::passes] for k in range(passes)]


def control_energies_mev(req: PlanRequest, e_range_mev: tuple[float, float]) -> list[float]:
    """Control-point beam energies [MeV], sorted in the pass direction: the explicit ones,
    or ``control_count`` points from ``control_offset_mev`` beyond the range edge,
    ``control_step_mev`` apart, on the requested side."""
    if req.control_energies_mev is not None:
        energies = list(req.control_energies_mev)
    elif req.control == "none":
        energies = []
    else:
        count, offset, step = req.control_count, req.control_offset_mev, req.control_step_mev
        if count is None or offset is None or step is None:  # derived from the side: set
            raise ScanplanError("control block needs a count, an offset and a step")
        if req.control == "below":
            energies = [e_range_mev[0] - offset - i * step for i in range(count)]
        else:
            energies = [e_range_mev[1] + offset + i * step for i in range(count)]
    return sorted(energies, reverse=(req.direction == "descending"))


@dataclass(frozen=True)
class Block:
    """Consecutive periods taken as one pass: its index, kind and energies [MeV] in order."""

    pass_index: int
    kind: PointKind
    energies_mev: list[float]


@dataclass(frozen=True)
class Grid:
    """The scan layout: ``blocks`` in period order, the rule ``width_mev`` [MeV] and the
    ``max_step_mev`` / ``combined_step_mev`` [MeV] of the on-resonance grid, and the beam
    energy range [MeV] actually scanned (collapsed to its centre when narrower than two
    distinct points)."""

    blocks: list[Block]
    width_mev: float
    max_step_mev: float
    combined_step_mev: float
    e_range_mev: tuple[float, float]
    spacing: SpacingInfo | None = None

    @property
    def n_points(self) -> int:
        return sum(len(b.energies_mev) for b in self.blocks)


def layout(
    req: PlanRequest,
    e_range_mev: tuple[float, float],
    controls_mev: list[float],
    bes_of: BesOf,
    model: PhysicsModel,
    *,
    duplicate_tolerance_mev: float,
    control_min_distance_fwhm: float,
) -> Grid:
    """The blocks of points for ``req`` over ``e_range_mev`` [MeV] with the spacing rule,
    passes and control block; a step or control point breaking the rules is an error."""
    fraction = req.step_fraction
    width = rule_width_mev(e_range_mev[0], e_range_mev[1], bes_of, model, req.width_reference)
    max_step = fraction * width
    if req.step_mev is not None:
        if req.step_mev > max_step * (1 + 1e-9):
            raise ScanplanError(
                f"step {req.step_mev:g} MeV exceeds the spacing rule: {fraction:g} x line FWHM "
                f"{width:.3f} MeV = {max_step:.3f} MeV (raise --step-fraction to allow it)"
            )
    # issue 13: the robust spacing rule (midway loss under the pessimistic line shape)
    max_step, spacing_info = choose_max_step(
        req.spacing_rule,
        max_step,
        req.step_mev,
        e_range_mev,
        bes_of,
        model,
        min_step_mev=2.0 * duplicate_tolerance_mev,
    )
    if e_range_mev[1] - e_range_mev[0] <= duplicate_tolerance_mev:
        # narrower than two distinct points: one point at the centre
        e_range_mev = (0.5 * (e_range_mev[0] + e_range_mev[1]),) * 2
    grid = grid_energies_mev(e_range_mev[0], e_range_mev[1], max_step)
    combined = (grid[-1] - grid[0]) / (len(grid) - 1) if len(grid) > 1 else 0.0
    blocks = [
        Block(k, "on_resonance", energies)
        for k, energies in enumerate(assign_passes(grid, req.passes, req.direction))
        if energies
    ]
    if controls_mev:
        cblock = Block(len(blocks), "control", controls_mev)
        at = {"start": 0, "after_first_pass": 1, "end": len(blocks)}[req.control_position]
        blocks.insert(at, cblock)
    # a control point must stay clear of the scanned line shapes
    min_dist = control_min_distance_fwhm * width
    for e in controls_mev:
        dist = max(e_range_mev[0] - e, e - e_range_mev[1])
        if dist < min_dist:
            raise ScanplanError(
                f"control point {e:.2f} MeV is {dist:.2f} MeV from the scanned range "
                f"{e_range_mev[0]:.2f}..{e_range_mev[1]:.2f} MeV; needs >= {min_dist:.2f} MeV "
                f"({control_min_distance_fwhm:g} line FWHM)"
            )
    return Grid(blocks, width, max_step, combined, e_range_mev, spacing_info(combined))
