"""Records of a re-planned plan (kept apart from :mod:`.replan` so that
:mod:`scanplan.records` can hold them without importing the re-planner)."""

from __future__ import annotations

from beamline.datafiles import DataModel


class PointChange(DataModel):
    """What happened to one point: ``action`` taken/kept/stopped/added, its old and new
    period (None when it did not exist / no longer exists), energy [MeV], hours [h]."""

    action: str
    old_period: int | None
    new_period: int | None
    e_beam_mev: float
    hours_before: float
    hours_after: float
    reason: str


class ReplanInfo(DataModel):
    """Provenance of a re-planned plan: the hash chain (``parent_sha256`` and the parent's
    own chain), the observed table and its SHA-256, the budget [h] and every change."""

    parent_sha256: str
    chain: list[str]
    observed_source: str
    observed_sha256: str
    config_version: str
    budget_hours: float
    used_hours: float
    remaining_hours: float
    best_mass_mev: float
    max_local_significance: float
    open_masses: int
    masses: int
    power_before: float
    power_after: float
    changes: list[PointChange]
