"""Scan spacing against the line-shape theory: the signal lost midway between points.

For a resonance whose energy lies midway between two adjacent points ``step`` apart, the
nearest point sees ``V(step/2) / V(0)`` of the peak signal; the loss is ``1 - V(step/2) /
V(0)``. Reported for four shapes: the assumed one (the plan's BES and w_L), the Gaussian core
alone (w_L -> 0), BES - 1 sigma, and the pessimistic one of ``spacing_rule.toml`` (both).
The robust rule takes the largest step whose pessimistic loss is at most the data file's
``max_midway_loss`` at every energy of the range (the loss grows as sigma = BES E shrinks:
the low end of the range decides).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from beamline.datafiles import DataModel, load_toml_model, named_data_file

from ..errors import ScanplanError
from ..physics.lineshape import voigt_per_mev
from ..physics.params import PhysicsModel

SpacingRule = Literal["robust", "published"]
RULES = ("robust", "published")


class RuleSection(DataModel):
    default: SpacingRule
    max_midway_loss: float = Field(gt=0, lt=1)


class PessimisticSection(DataModel):
    lorentz_width_mev: float = Field(ge=0)
    bes_shift_sigma: float
    min_bes_fraction: float = Field(gt=0, le=1)


class SpacingRuleConfig(DataModel):
    """``lattices/physics/spacing_rule.toml``."""

    schema_version: int = Field(ge=1, le=1)
    version: str
    rule: RuleSection
    pessimistic: PessimisticSection


@functools.cache
def load_spacing_rule(name: str = "spacing_rule") -> SpacingRuleConfig:
    return load_toml_model(named_data_file("spacing rule", name, "physics"), SpacingRuleConfig)


def midway_loss(step_mev: float, sigma_mev: float, gamma_mev: float) -> float:
    """``1 - V(step/2) / V(0)`` for a Voigt of Gaussian rms ``sigma_mev`` and Lorentzian
    HWHM ``gamma_mev`` [MeV]."""
    if step_mev <= 0:
        return 0.0
    peak = float(voigt_per_mev(0.0, sigma_mev, gamma_mev))
    return 1.0 - float(voigt_per_mev(0.5 * step_mev, sigma_mev, gamma_mev)) / peak


def _gamma(physics: PhysicsModel, lorentz_width_mev: float) -> float:
    conv = physics.signal.lorentz_width_convention
    return lorentz_width_mev if conv == "hwhm" else 0.5 * lorentz_width_mev


def shapes(
    physics: PhysicsModel, bes: float, config: SpacingRuleConfig | None = None
) -> dict[str, tuple[float, float]]:
    """``{name: (relative BES, Lorentz HWHM [MeV])}`` of the four reported shapes."""
    cfg = config or load_spacing_rule()
    shifted = max(
        bes + cfg.pessimistic.bes_shift_sigma * physics.signal.bes_sigma,
        cfg.pessimistic.min_bes_fraction * bes,
    )
    pess_gamma = _gamma(physics, cfg.pessimistic.lorentz_width_mev)
    if shifted <= 0 and pess_gamma <= 0:  # no Gaussian at all: keep the assumed Lorentzian
        pess_gamma = physics.lorentz_gamma_mev
    return {
        "assumed": (bes, physics.lorentz_gamma_mev),
        "gaussian_core": (bes, 0.0),
        "bes_minus_1sigma": (
            max(bes - physics.signal.bes_sigma, cfg.pessimistic.min_bes_fraction * bes),
            physics.lorentz_gamma_mev,
        ),
        "pessimistic": (shifted, pess_gamma),
    }


def loss_report(
    step_mev: float,
    e_beam_mev: float,
    physics: PhysicsModel,
    bes: float,
    config: SpacingRuleConfig | None = None,
) -> dict[str, float]:
    """Midway loss of a ``step_mev`` [MeV] spacing at beam energy ``e_beam_mev`` [MeV] for
    every shape of :func:`shapes` (a shape with no width at all reports a loss of 1)."""
    out = {}
    for name, (b, g) in shapes(physics, bes, config).items():
        sigma = max(b, 0.0) * e_beam_mev
        out[name] = midway_loss(step_mev, sigma, g) if (sigma > 0 or g > 0) else 1.0
    return out


def robust_step_mev(
    e_lo_mev: float,
    e_hi_mev: float,
    bes_of: Callable[[float], float],
    physics: PhysicsModel,
    config: SpacingRuleConfig | None = None,
) -> float:
    """Largest combined step [MeV] whose pessimistic midway loss is at most the rule's
    ``max_midway_loss`` at both ends of the beam-energy range [MeV]."""
    from scipy.optimize import brentq  # 0.5 s: not at import (records import this)

    cfg = config or load_spacing_rule()
    target = cfg.rule.max_midway_loss
    steps = []
    for e in {e_lo_mev, e_hi_mev}:
        b, g = shapes(physics, bes_of(e), cfg)["pessimistic"]
        sigma = b * e
        if sigma <= 0 and g <= 0:
            raise ScanplanError(
                f"the pessimistic line shape at {e:.1f} MeV has no width (BES {bes_of(e):g} "
                f"{cfg.pessimistic.bes_shift_sigma:+g} sigma <= 0 and w_L = 0): use the "
                "published spacing rule (--spacing-rule published)"
            )
        if g == 0:  # Gaussian: closed form
            steps.append(2.0 * sigma * math.sqrt(2.0 * math.log(1.0 / (1.0 - target))))
            continue
        hi = 20.0 * (sigma + g)
        args = (sigma, g)
        steps.append(brentq(lambda s, a=args: midway_loss(s, *a) - target, 1e-9, hi, xtol=1e-10))
    return min(steps)


class SpacingInfo(DataModel):
    """The spacing choice of a plan and its midway losses (stored in the plan's inputs).

    ``rule`` "robust", "published" or "explicit" (a ``--step-mev`` given); ``half_width_step_mev``
    the published rule's step (step_fraction x FWHM) [MeV]; ``robust_step_mev`` the robust
    rule's step [MeV]; ``combined_step_mev`` the plan's actual combined step [MeV];
    ``loss_at_e_beam_mev`` where the losses are evaluated (the low end: the narrowest line)
    [MeV]; ``midway_loss`` of the plan's step and ``midway_loss_half_width`` of the published
    rule's step, per shape (assumed, gaussian_core, bes_minus_1sigma, pessimistic).
    """

    rule: Literal["robust", "published", "explicit"]
    rule_version: str
    max_midway_loss: float
    half_width_step_mev: float
    robust_step_mev: float
    combined_step_mev: float
    loss_at_e_beam_mev: float
    midway_loss: dict[str, float]
    midway_loss_half_width: dict[str, float]


def choose_max_step(
    rule: str | None,
    half_width_step_mev: float,
    explicit_step_mev: float | None,
    e_range_mev: tuple[float, float],
    bes_of: Callable[[float], float],
    physics: PhysicsModel,
    min_step_mev: float = 0.0,
) -> tuple[float, Callable[[float], SpacingInfo]]:
    """The planner hook: ``(max combined step [MeV], info(combined_step) -> SpacingInfo)``.

    ``rule`` None means the data file's default. An explicit step (already checked against
    the published rule by the planner) wins over both rules and is reported as "explicit".
    ``min_step_mev`` [MeV]: the robust step is never smaller (points closer than the
    duplicate tolerance are not distinct points).
    """
    cfg = load_spacing_rule()
    chosen = rule or cfg.rule.default
    if chosen not in RULES:
        raise ScanplanError(f"spacing rule must be one of {RULES}, got {rule!r}")
    lo, hi = e_range_mev
    robust = robust_step_mev(lo, hi, bes_of, physics, cfg) if chosen == "robust" else math.nan
    if explicit_step_mev is not None:
        max_step, label = explicit_step_mev, "explicit"
    elif chosen == "robust":
        # never below the step that still gives distinct points (the rule is then broken,
        # and the reported losses say by how much)
        max_step, label = min(half_width_step_mev, max(robust, min_step_mev)), "robust"
    else:
        max_step, label = half_width_step_mev, "published"
    if math.isnan(robust):
        try:
            robust = robust_step_mev(lo, hi, bes_of, physics, cfg)
        except ScanplanError:
            robust = 0.0  # reported only: the pessimistic shape has no width

    def info(combined_step_mev: float) -> SpacingInfo:
        bes = bes_of(lo)
        return SpacingInfo(
            rule=label,
            rule_version=cfg.version,
            max_midway_loss=cfg.rule.max_midway_loss,
            half_width_step_mev=half_width_step_mev,
            robust_step_mev=robust,
            combined_step_mev=combined_step_mev,
            loss_at_e_beam_mev=lo,
            midway_loss=loss_report(combined_step_mev, lo, physics, bes, cfg),
            midway_loss_half_width=loss_report(half_width_step_mev, lo, physics, bes, cfg),
        )

    return max_step, info
