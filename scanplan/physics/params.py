"""Parameters of the X17 signal/background model and of the scan planner (data, not code).

``lattices/physics/padme_x17_run3.toml`` holds the signal model (Y, w_L, BES, efficiency and
background tables, systematics); ``lattices/physics/scan_defaults.toml`` the planner
defaults (spacing rule, control points, beam-time conversion). Both are versioned; the
version strings go into every plan's inputs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from beamline.datafiles import data_names, read_toml, require
from beamline.paths import lattices_dir

from ..errors import ScanplanError

PHYSICS_DIR = "physics"
DEFAULT_MODEL = "padme_x17_run3"
LORENTZ_CONVENTIONS = ("hwhm", "fwhm")


def _read(name: str) -> tuple[Path, dict[str, Any]]:
    path = lattices_dir() / PHYSICS_DIR / f"{name}.toml"
    if not path.is_file():
        known = data_names(PHYSICS_DIR)
        raise ScanplanError(f"unknown physics data '{name}'; available: {', '.join(known)}")
    return path, read_toml(path, ScanplanError)


def _get(table: dict[str, Any], key: str, where: str) -> Any:
    return require(table, key, where, ScanplanError)


@dataclass(frozen=True)
class PhysicsModel:
    """Signal/background model of the final analysis (facts 5).

    ``yield_mev`` Y [MeV]; ``lorentz_width_mev`` w_L [MeV of beam energy] with
    ``lorentz_width_convention`` "hwhm" (Voigt gamma = w_L) or "fwhm" (gamma = w_L/2);
    ``default_bes`` relative Gaussian beam-energy spread; ``reference_coupling`` g for the
    plan's expected-signal column; ``e_beam_nodes_mev`` [MeV] with ``background_per_pot`` and
    ``signal_efficiency`` at those nodes; ``pot_rel`` / ``background_rel`` per-point relative
    systematics; ``cl`` confidence level of the limits.
    """

    name: str
    version: str
    yield_mev: float
    yield_sigma_mev: float
    lorentz_width_mev: float
    lorentz_width_sigma_mev: float
    lorentz_width_convention: str
    default_bes: float
    bes_sigma: float
    reference_coupling: float
    e_beam_nodes_mev: tuple[float, ...]
    background_per_pot: tuple[float, ...]
    signal_efficiency: tuple[float, ...]
    pot_rel: float
    background_rel: float
    pot_scale_rel: float
    cl: float
    coupling_grid: tuple[float, float]
    mass_grid_mev: tuple[float, float]
    target_thickness_um: float
    electron_density_per_cm3: float

    @property
    def lorentz_gamma_mev(self) -> float:
        """HWHM [MeV] of the Lorentzian (scipy ``voigt_profile`` gamma)."""
        if self.lorentz_width_convention == "hwhm":
            return self.lorentz_width_mev
        return 0.5 * self.lorentz_width_mev

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def with_overrides(self, **changes: Any) -> PhysicsModel:
        """A copy with some parameters replaced (validated)."""
        return _validated(replace(self, **changes))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


def _validated(m: PhysicsModel) -> PhysicsModel:
    where = f"physics model {m.name}"
    if m.lorentz_width_convention not in LORENTZ_CONVENTIONS:
        raise ScanplanError(
            f"{where}: lorentz_width_convention must be one of {LORENTZ_CONVENTIONS}"
        )
    for key in ("yield_mev", "reference_coupling"):
        v = getattr(m, key)
        if not (math.isfinite(v) and v > 0):
            raise ScanplanError(f"{where}: {key} must be > 0, got {v!r}")
    if not (math.isfinite(m.lorentz_width_mev) and m.lorentz_width_mev >= 0):
        raise ScanplanError(f"{where}: lorentz_width_mev must be >= 0, got {m.lorentz_width_mev!r}")
    if not (math.isfinite(m.default_bes) and 0 <= m.default_bes < 0.1):
        raise ScanplanError(f"{where}: default_bes must be a fraction in [0, 0.1)")
    if not (0.5 < m.cl < 1):
        raise ScanplanError(f"{where}: cl must lie in (0.5, 1), got {m.cl!r}")
    n = len(m.e_beam_nodes_mev)
    if n < 2 or len(m.background_per_pot) != n or len(m.signal_efficiency) != n:
        raise ScanplanError(
            f"{where}: node, background and efficiency tables need equal lengths >= 2"
        )
    if any(b <= a for a, b in pairwise(m.e_beam_nodes_mev)):
        raise ScanplanError(f"{where}: e_beam_nodes_mev must increase")
    if min(m.background_per_pot) < 0 or not all(0 <= e <= 1 for e in m.signal_efficiency):
        raise ScanplanError(f"{where}: background must be >= 0 and efficiencies in [0, 1]")
    if m.pot_rel < 0 or m.background_rel < 0:
        raise ScanplanError(f"{where}: systematics must be >= 0")
    return m


@functools.cache
def load_physics(name: str = DEFAULT_MODEL) -> PhysicsModel:
    """The signal/background model ``lattices/physics/<name>.toml``."""
    path, raw = _read(name)
    w = str(path)
    sig = _get(raw, "signal", w)
    sel = _get(raw, "selection", w)
    sysm = _get(raw, "systematics", w)
    stat = _get(raw, "statistics", w)
    tgt = _get(raw, "target", w)
    model = PhysicsModel(
        name=name,
        version=str(_get(raw, "version", w)),
        yield_mev=float(_get(sig, "yield_mev", w)),
        yield_sigma_mev=float(sig.get("yield_sigma_mev", 0.0)),
        lorentz_width_mev=float(_get(sig, "lorentz_width_mev", w)),
        lorentz_width_sigma_mev=float(sig.get("lorentz_width_sigma_mev", 0.0)),
        lorentz_width_convention=str(_get(sig, "lorentz_width_convention", w)),
        default_bes=float(_get(sig, "default_bes", w)),
        bes_sigma=float(sig.get("bes_sigma", 0.0)),
        reference_coupling=float(_get(sig, "reference_coupling", w)),
        e_beam_nodes_mev=tuple(float(x) for x in _get(sel, "e_beam_nodes_mev", w)),
        background_per_pot=tuple(float(x) for x in _get(sel, "background_per_pot", w)),
        signal_efficiency=tuple(float(x) for x in _get(sel, "signal_efficiency", w)),
        pot_rel=float(_get(sysm, "pot_rel", w)),
        background_rel=float(_get(sysm, "background_rel", w)),
        pot_scale_rel=float(sysm.get("pot_scale_rel", 0.0)),
        cl=float(_get(stat, "cl", w)),
        coupling_grid=tuple(float(x) for x in _get(stat, "coupling_grid", w)),  # type: ignore[arg-type]
        mass_grid_mev=tuple(float(x) for x in _get(stat, "mass_grid_mev", w)),  # type: ignore[arg-type]
        target_thickness_um=float(_get(tgt, "thickness_um", w)),
        electron_density_per_cm3=float(_get(tgt, "electron_density_per_cm3", w)),
    )
    return _validated(model)


@dataclass(frozen=True)
class ControlDefaults:
    """Default control block on one side: ``count`` points, the nearest ``offset_mev`` [MeV]
    from the range edge, ``step_mev`` [MeV] apart."""

    count: int
    offset_mev: float
    step_mev: float


@dataclass(frozen=True)
class ScanDefaults:
    """Planner defaults from ``lattices/physics/scan_defaults.toml`` (see that file)."""

    version: str
    step_fraction: float
    width_reference: str
    passes: int
    direction: str
    control_below: ControlDefaults
    control_above: ControlDefaults
    control_position: str
    control_min_distance_fwhm: float
    positrons_per_bunch: float
    repetition_rate_hz: float
    uptime_fraction: float
    overhead_hours_per_point: float
    pot_per_point: float
    duplicate_tolerance_mev: float


@functools.cache
def load_scan_defaults(name: str = "scan_defaults") -> ScanDefaults:
    """Planner defaults ``lattices/physics/<name>.toml``."""
    path, raw = _read(name)
    w = str(path)
    sp = _get(raw, "spacing", w)
    ctl = _get(raw, "control", w)
    bt = _get(raw, "beam_time", w)
    val = _get(raw, "validation", w)

    def side(key: str) -> ControlDefaults:
        t = _get(ctl, key, f"{w} [control]")
        return ControlDefaults(
            count=int(_get(t, "count", w)),
            offset_mev=float(_get(t, "offset_mev", w)),
            step_mev=float(_get(t, "step_mev", w)),
        )

    return ScanDefaults(
        version=str(_get(raw, "version", w)),
        step_fraction=float(_get(sp, "step_fraction", w)),
        width_reference=str(_get(sp, "width_reference", w)),
        passes=int(_get(sp, "passes", w)),
        direction=str(_get(sp, "direction", w)),
        control_below=side("below"),
        control_above=side("above"),
        control_position=str(_get(ctl, "position", w)),
        control_min_distance_fwhm=float(_get(ctl, "min_distance_fwhm", w)),
        positrons_per_bunch=float(_get(bt, "positrons_per_bunch", w)),
        repetition_rate_hz=float(_get(bt, "repetition_rate_hz", w)),
        uptime_fraction=float(_get(bt, "uptime_fraction", w)),
        overhead_hours_per_point=float(_get(bt, "overhead_hours_per_point", w)),
        pot_per_point=float(_get(bt, "pot_per_point", w)),
        duplicate_tolerance_mev=float(_get(val, "duplicate_tolerance_mev", w)),
    )
