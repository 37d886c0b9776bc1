"""Typed parameters of the published likelihood (``lattices/physics/padme_run3_likelihood.toml``)."""

from __future__ import annotations

import functools
import math

from pydantic import Field, model_validator

from beamline.datafiles import DataModel, load_toml_model, named_data_file

from ..errors import ScanplanError

DEFAULT_LIKELIHOOD = "padme_run3_likelihood"


class Nuisance(DataModel):
    """A Gaussian-constrained parameter: central ``value``, ``sigma``, and its ``source``."""

    value: float = Field(allow_inf_nan=False)
    sigma: float = Field(ge=0, allow_inf_nan=False)
    source: str


class Nuisances(DataModel):
    pot_scale: Nuisance
    yield_mev: Nuisance
    lorentz_width_mev: Nuisance
    bes: Nuisance


class BiasCurve(DataModel):
    """bias(sqrt s) = p0 + p1 (sqrt s - pivot); (p0, p1) bivariate Gaussian."""

    p0: float = Field(allow_inf_nan=False)
    p0_sigma: float = Field(ge=0, allow_inf_nan=False)
    p1_per_mev: float = Field(allow_inf_nan=False)
    p1_sigma_per_mev: float = Field(ge=0, allow_inf_nan=False)
    correlation: float = Field(gt=-1, lt=1)
    pivot_sqrt_s_mev: float = Field(gt=0)
    source: str


class Background(DataModel):
    pivot_sqrt_s_mev: float = Field(gt=0)
    source: str


class Statistics(DataModel):
    mass_min_mev: float = Field(gt=1.03)
    mass_max_mev: float = Field(gt=1.03)
    mass_step_mev: float = Field(gt=0)
    g2_unit: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> Statistics:
        if self.mass_max_mev < self.mass_min_mev:
            raise ValueError("mass_max_mev must be >= mass_min_mev")
        return self


class Fit(DataModel):
    max_iterations: int = Field(ge=1, le=1000)
    nll_tolerance: float = Field(gt=0)


class LikelihoodConfig(DataModel):
    """The whole data file (see its comments for the model and every source)."""

    schema_version: int = Field(ge=1, le=1)
    version: str
    source: str
    nuisances: Nuisances
    bias: BiasCurve
    background: Background
    statistics: Statistics
    fit: Fit

    @property
    def label(self) -> str:
        return self.version

    def bias_cholesky(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Lower Cholesky factor L of the (P0, P1) covariance: (P0, P1) = centre + L u."""
        b = self.bias
        l11 = b.p0_sigma
        l21 = b.correlation * b.p1_sigma_per_mev
        l22 = b.p1_sigma_per_mev * math.sqrt(1.0 - b.correlation**2)
        return ((l11, 0.0), (l21, l22))


@functools.cache
def load_likelihood_config(name: str = DEFAULT_LIKELIHOOD) -> LikelihoodConfig:
    """``lattices/physics/<name>.toml`` validated (errors name the file and key)."""
    try:
        path = named_data_file("likelihood", name, "physics")
    except ValueError as exc:
        raise ScanplanError(str(exc)) from None
    return load_toml_model(path, LikelihoodConfig, ScanplanError)
