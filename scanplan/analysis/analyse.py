"""``scanplan analyse``: an observed scan through the published likelihood (one function a
notebook can call: :func:`analyse_scan`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ScanplanError
from ..physics.params import PhysicsModel, load_physics
from .likelihood import CONSTRAINED, GLOBAL_NAMES, I_MU, N_FIXED, Likelihood, scan_data
from .limits import GlobalSignificance, MassScan, global_significance, limits
from .observed import ObservedScan
from .params import LikelihoodConfig, load_likelihood_config

#: most masses one analysis scans (a 0.001 MeV step over 16.22-17.62 MeV is 1401)
MAX_MASSES = 2001
#: most toys of one look-elsewhere study
MAX_TOYS = 100_000


def default_masses_mev(config: LikelihoodConfig) -> NDArray:
    st = config.statistics
    n = round((st.mass_max_mev - st.mass_min_mev) / st.mass_step_mev) + 1
    return st.mass_min_mev + st.mass_step_mev * np.arange(n)


@dataclass(frozen=True)
class Analysis:
    """Everything ``scanplan analyse`` reports (see :meth:`as_json`)."""

    scan: MassScan
    lik: Likelihood
    cl: float
    points_used: int
    points_skipped: int
    global_sig: GlobalSignificance | None
    source: str

    @property
    def g2_unit(self) -> float:
        return self.lik.g2_unit

    def g(self, mu: NDArray) -> NDArray:
        return np.sqrt(np.maximum(np.asarray(mu), 0.0) * self.g2_unit)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scan.local_significance))

    def best_fit(self) -> dict[str, Any]:
        """Best fit at the mass of the largest local significance: g, nuisances, pulls."""
        i = self.best_index
        th = self.scan.free.theta[i : i + 1]
        values = self.lik.values(th)
        pulls = self.lik.pulls(th)
        nuis = {k: float(v[0]) for k, v in values.items() if k != "g2"}  # physical values
        lines = []
        c = th[0, N_FIXED:].reshape(-1, 2)
        for p, lab in enumerate(self.lik.data.part_labels):
            lines.append(
                {
                    "scan_part": int(lab),
                    "bkg_per_pot_at_pivot": float(self.lik.a_part[p] * (1.0 + c[p, 0])),
                    "relative_slope_per_mev": float(self.lik.a_part[p] * c[p, 1])
                    / float(self.lik.a_part[p] * (1.0 + c[p, 0])),
                }
            )
        local = self.scan.free.local[i]
        mu = float(th[0, I_MU])
        return {
            "mass_mev": float(self.scan.masses_mev[i]),
            "g": math.copysign(math.sqrt(abs(mu) * self.g2_unit), mu),
            "g2": mu * self.g2_unit,
            "local_significance": float(self.scan.local_significance[i]),
            "nuisances": nuis,
            "pulls": {k: float(v[0]) for k, v in pulls.items()},
            "background_lines": lines,
            "max_abs_point_pull": float(np.max(np.abs(local))) if local.size else 0.0,
            "converged": bool(self.scan.free.converged[i]),
        }

    def rows(self) -> list[dict[str, Any]]:
        s = self.scan
        obs, exp = self.g(s.observed_limit_mu), self.g(s.expected_limit_mu)
        band = {k: self.g(v) for k, v in s.band_mu.items()}
        return [
            {
                "mass_mev": float(s.masses_mev[i]),
                "local_significance": float(s.local_significance[i]),
                "g_hat": math.copysign(math.sqrt(abs(s.mu_hat[i]) * self.g2_unit), s.mu_hat[i]),
                "observed_limit_g": float(obs[i]),
                "expected_limit_g": float(exp[i]),
                "expected_band_g": {
                    "minus2": float(band[-2.0][i]),
                    "minus1": float(band[-1.0][i]),
                    "plus1": float(band[1.0][i]),
                    "plus2": float(band[2.0][i]),
                },
            }
            for i in range(s.masses_mev.size)
        ]

    def as_json(self) -> dict[str, Any]:
        gs = self.global_sig
        best = self.best_fit()
        return {
            "source": self.source,
            "likelihood": self.lik.config.version,
            "cl": self.cl,
            "points_used": self.points_used,
            "fits_converged": bool(
                np.all(self.scan.free.converged) and np.all(self.scan.background.converged)
            ),
            "points_skipped_control": self.points_skipped,
            "best_fit": best,
            "max_local_significance": best["local_significance"],
            "global_significance": None if gs is None else gs.significance,
            "global": None
            if gs is None
            else {
                "p_value": gs.p_value,
                "significance_error": gs.significance_error,
                "n_toys": gs.n_toys,
                "seed": gs.seed,
            },
            "scan": self.rows(),
        }


def analyse_scan(
    observed: ObservedScan,
    masses_mev: NDArray | None = None,
    *,
    config: LikelihoodConfig | None = None,
    physics: PhysicsModel | None = None,
    toys: int = 0,
    seed: int = 0,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    on_toy_batch: Callable[[int], None] | None = None,
) -> Analysis:
    """Local significance, best fit and CLs limits over ``masses_mev`` [MeV] (default: the
    likelihood file's grid); with ``toys`` > 0 also the global significance."""
    cfg = config or load_likelihood_config()
    phys = physics or load_physics()
    masses = default_masses_mev(cfg) if masses_mev is None else np.asarray(masses_mev, float)
    if masses.size == 0 or masses.size > MAX_MASSES:
        raise ScanplanError(f"--mass-mev: need 1 to {MAX_MASSES} masses, got {masses.size}")
    if np.any(masses <= 1.03):
        raise ScanplanError("--mass-mev: masses must be above the e+e- threshold (1.022 MeV)")
    if not 0 <= toys <= MAX_TOYS:
        raise ScanplanError(f"--toys must be in 0..{MAX_TOYS}, got {toys}")
    data = scan_data(observed)
    if data.n_points < 3:
        raise ScanplanError(
            f"{observed.source}: {data.n_points} on-resonance point(s); the fit needs at least 3"
        )
    lik = Likelihood(data, cfg, phys)
    result = limits(lik, masses, phys.statistics.cl)
    gs = None
    if toys:
        gs = global_significance(
            lik,
            masses,
            float(np.max(result.local_significance)),
            result.background,
            n_toys=toys,
            seed=seed,
            scheduler=scheduler,
            n_workers=n_workers,
            on_done=on_toy_batch,
        )
    skipped = len(observed.rows) - data.n_points
    return Analysis(result, lik, phys.statistics.cl, data.n_points, skipped, gs, observed.source)


__all__ = ["CONSTRAINED", "GLOBAL_NAMES", "Analysis", "analyse_scan", "default_masses_mev"]
