"""The likelihood of PADME's published Run III treatment and its profile fits.

Model (one Poisson count per on-resonance scan point i, see
``lattices/physics/padme_run3_likelihood.toml`` for every value and its source)::

    lambda_i = POT_i k nu_i ( beta_i bias(x_i) B_p(x_i) + g^2 eff_i Y V(E_i - E_res; BES E_res, w_L) )
    bias(x)  = P0 + P1 (x - x_b),     B_p(x) = A_p (1 + c0_p + c1_p (x - x_B)),   x = sqrt(s) [MeV]

Parameters, all fitted together (``theta``, "global", one vector per fit):

* ``mu = g^2 / g2_unit`` (the parameter of interest, may be fixed);
* ``k`` (POT scale), ``Y``, ``w_L``, ``BES`` and (P0, P1): Gaussian constraints, stored as
  standardised shifts ``t = (value - centre) / sigma`` (for P0, P1 through the Cholesky
  factor of their covariance), each with an auxiliary measurement (0 for the real data,
  random in toys);
* ``c0_p, c1_p`` per scan part: free (``A_p`` is the mean MC background per POT of part p,
  a fixed scale so that the ``c`` are small numbers);
* per point (``local``): ``nu_i = 1 + (pot_err/pot)_i t``, ``beta_i = 1 + (bkg_err/bkg)_i t``.

The fit minimises ``sum_i [lambda_i - n_i + n_i ln(n_i/lambda_i)] + 1/2 sum (t - aux)^2`` by
damped Gauss-Newton with the expected (Fisher) information and analytic derivatives (the Voigt
derivatives through the Faddeeva function). The per-point nuisances enter the Hessian as a
rank-one term per point and are eliminated exactly (Sherman-Morrison): the global step solves
a ``(7 + 2 parts)``-square system whatever the number of points. Fits are vectorised over a
batch axis (masses, toys, fixed values of mu).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.special import wofz, xlogy

from ..errors import ScanplanError
from ..physics.params import PhysicsModel
from .observed import ObservedScan
from .params import LikelihoodConfig

# indices of the global parameters
I_MU, I_K, I_Y, I_W, I_BES, I_U0, I_U1 = range(7)
N_FIXED = 7
CONSTRAINED = (I_K, I_Y, I_W, I_BES, I_U0, I_U1)
GLOBAL_NAMES = ("mu", "pot_scale", "yield_mev", "lorentz_width_mev", "bes", "bias_u0", "bias_u1")
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_PI = math.sqrt(math.pi)
#: A BES below this (relative) is outside the model: the fit step is refused.
MIN_BES = 1e-5


@dataclass(frozen=True)
class ScanData:
    """Per-point inputs of the likelihood (on-resonance points only, period order).

    ``sqrt_s_mev``, ``e_beam_mev`` [MeV]; ``pot``; ``pot_rel`` = pot_err / pot; ``n_obs``;
    ``sig_eff``; ``bkg_per_pot``; ``bkg_rel`` = bkg_per_pot_err / bkg_per_pot; ``part`` the
    index 0..P-1 of the scan part (``part_labels`` the table's scan_part values);
    ``periods``.
    """

    sqrt_s_mev: NDArray
    e_beam_mev: NDArray
    pot: NDArray
    pot_rel: NDArray
    n_obs: NDArray
    sig_eff: NDArray
    bkg_per_pot: NDArray
    bkg_rel: NDArray
    part: NDArray
    part_labels: tuple[int, ...]
    periods: tuple[int, ...]

    @property
    def n_points(self) -> int:
        return int(self.pot.size)

    @property
    def n_parts(self) -> int:
        return len(self.part_labels)

    def with_counts(self, n_obs: NDArray) -> ScanData:
        return replace(self, n_obs=np.asarray(n_obs, dtype=float))


def scan_data(scan: ObservedScan) -> ScanData:
    """The likelihood inputs of an observed scan: control points (scan_part < 0) are left
    out, as in the published treatment (it keeps scan parts 0 and 1 only)."""
    on = scan.subset(~scan.is_control)
    if not on.rows:
        raise ScanplanError(f"{scan.source}: no on-resonance points (all scan_part < 0)")
    labels = tuple(sorted({r.scan_part for r in on.rows}))
    index = {lab: i for i, lab in enumerate(labels)}
    pot = on.column("pot")
    bkg = on.column("bkg_per_pot")
    return ScanData(
        sqrt_s_mev=on.column("sqrt_s_mev"),
        e_beam_mev=on.column("energy_mev"),
        pot=pot,
        pot_rel=on.column("pot_err") / pot,
        n_obs=on.column("n_obs"),
        sig_eff=on.column("sig_eff"),
        bkg_per_pot=bkg,
        bkg_rel=on.column("bkg_per_pot_err") / bkg,
        part=np.array([index[r.scan_part] for r in on.rows]),
        part_labels=labels,
        periods=tuple(on.periods),
    )


def resonance_energy_mev(mass_mev: NDArray) -> NDArray:
    """E_res [MeV] of the beam for an X17 of mass ``mass_mev`` [MeV] (facts 5)."""
    from ..physics.yields import resonance_energy_array_mev

    return resonance_energy_array_mev(mass_mev)


def voigt_with_derivatives(
    x: NDArray, sigma: NDArray, gamma: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """Area-normalised Voigt V(x; sigma, gamma) [1/MeV] and dV/dsigma, dV/dgamma.

    ``V = Re w(z) / (sigma sqrt(2 pi))``, ``z = (x + i gamma) / (sigma sqrt 2)``, with the
    Faddeeva function w and ``w'(z) = -2 z w + 2 i / sqrt(pi)``.
    """
    z = (x + 1j * gamma) / (sigma * math.sqrt(2.0))
    w = wofz(z)
    v = w.real / (sigma * SQRT_2PI)
    wp = -2.0 * z * w + 2j / SQRT_PI
    dv_dgamma = -wp.imag / (2.0 * SQRT_PI * sigma * sigma)
    dv_dsigma = (wp * (-z / sigma)).real / (sigma * SQRT_2PI) - v / sigma
    return v, dv_dsigma, dv_dgamma


class Likelihood:
    """The published likelihood for one scan (``data``), with its parameters (``config``)
    and the physics model's Lorentz-width convention (``physics``). ``centres`` replaces the
    central values of ``yield_mev``, ``lorentz_width_mev`` or ``bes`` (a plan made with
    other values than the published ones is evaluated at its own; the widths stay).

    Batched evaluation: ``theta`` (B, G) global parameters, ``local`` (B, P, 2), ``e_res``
    (B,) resonance energies [MeV], ``n`` (B, P) counts, ``aux_g`` (B, 6) and ``aux_l``
    (B, P, 2) auxiliary measurements.
    """

    def __init__(
        self,
        data: ScanData,
        config: LikelihoodConfig,
        physics: PhysicsModel,
        *,
        centres: dict[str, float] | None = None,
    ) -> None:
        self.data = data
        self.config = config
        nu = config.nuisances
        self.gamma_per_w = 1.0 if physics.signal.lorentz_width_convention == "hwhm" else 0.5
        c = {
            "yield_mev": nu.yield_mev.value,
            "lorentz_width_mev": nu.lorentz_width_mev.value,
            "bes": nu.bes.value,
            **(centres or {}),
        }
        self.centre = np.array(
            [0.0, nu.pot_scale.value, c["yield_mev"], c["lorentz_width_mev"], c["bes"]]
        )
        self.sigma = np.array(
            [1.0, nu.pot_scale.sigma, nu.yield_mev.sigma, nu.lorentz_width_mev.sigma, nu.bes.sigma]
        )
        self.chol = np.array(config.bias_cholesky())
        self.x_bias = data.sqrt_s_mev - config.bias.pivot_sqrt_s_mev
        self.x_bkg = data.sqrt_s_mev - config.background.pivot_sqrt_s_mev
        self.n_global = N_FIXED + 2 * data.n_parts
        self.a_part = np.array(
            [float(np.mean(data.bkg_per_pot[data.part == p])) for p in range(data.n_parts)]
        )
        self.onehot = np.zeros((data.n_points, data.n_parts))
        self.onehot[np.arange(data.n_points), data.part] = 1.0
        self.constrained = np.zeros(self.n_global)
        self.constrained[list(CONSTRAINED)] = 1.0
        self.g2_unit = config.statistics.g2_unit
        self.local_sigma = np.stack([data.pot_rel, data.bkg_rel], axis=-1)  # (P, 2)

    # ------------------------------------------------------------------ model pieces
    def values(self, theta: NDArray) -> dict[str, NDArray]:
        """Physical values of the global parameters (B,) each: mu, k, Y, w_L, BES, P0, P1."""
        t = theta
        u = t[:, [I_U0, I_U1]] @ self.chol.T
        b = self.config.bias
        return {
            "g2": t[:, I_MU] * self.g2_unit,
            "pot_scale": self.centre[1] + self.sigma[1] * t[:, I_K],
            "yield_mev": self.centre[2] + self.sigma[2] * t[:, I_Y],
            "lorentz_width_mev": self.centre[3] + self.sigma[3] * t[:, I_W],
            "bes": self.centre[4] + self.sigma[4] * t[:, I_BES],
            "bias_p0": b.p0 + u[:, 0],
            "bias_p1_per_mev": b.p1_per_mev + u[:, 1],
        }

    def pulls(self, theta: NDArray) -> dict[str, NDArray]:
        """Standardised shifts of the constrained global nuisances (B,) each."""
        return {GLOBAL_NAMES[i]: theta[:, i] for i in CONSTRAINED}

    def _parts(self, theta: NDArray, local: NDArray, e_res: NDArray, derivs: bool) -> dict:
        v = self.values(theta)
        sig = v["bes"][:, None] * e_res[:, None]
        gam = np.broadcast_to((v["lorentz_width_mev"] * self.gamma_per_w)[:, None], sig.shape)
        x = self.data.e_beam_mev[None, :] - e_res[:, None]
        shape, dv_ds, dv_dg = voigt_with_derivatives(x, sig, gam)
        s_unit = self.data.sig_eff * v["yield_mev"][:, None] * shape * self.g2_unit  # per mu
        bias = v["bias_p0"][:, None] + v["bias_p1_per_mev"][:, None] * self.x_bias
        c = theta[:, N_FIXED:].reshape(theta.shape[0], self.data.n_parts, 2)
        line = 1.0 + c[:, :, 0] @ self.onehot.T + (c[:, :, 1] @ self.onehot.T) * self.x_bkg
        bkg_line = (self.onehot @ self.a_part)[None, :] * line
        nu = 1.0 + self.local_sigma[None, :, 0] * local[..., 0]
        beta = 1.0 + self.local_sigma[None, :, 1] * local[..., 1]
        mu = theta[:, I_MU][:, None]
        kpot = v["pot_scale"][:, None] * self.data.pot[None, :] * nu
        b_term = beta * bias * bkg_line
        total = b_term + mu * s_unit
        out = {"lam": kpot * total, "valid": (v["bes"] > MIN_BES) & (gam[:, 0] >= 0)}
        if derivs:
            out.update(
                kpot=kpot, total=total, b_term=b_term, s_unit=s_unit, shape=shape,
                dv_ds=dv_ds, dv_dg=dv_dg, bias=bias, bkg_line=bkg_line, beta=beta, nu=nu,
                mu=mu, v=v, e_res=e_res,
            )  # fmt: skip
        return out

    def expected(self, theta: NDArray, local: NDArray, e_res: NDArray) -> NDArray:
        """Expected counts lambda (B, P)."""
        return self._parts(theta, local, e_res, derivs=False)["lam"]

    def signal(self, theta: NDArray, local: NDArray, e_res: NDArray) -> NDArray:
        """Expected signal counts (B, P) at the fitted g^2."""
        p = self._parts(theta, local, e_res, derivs=True)
        return p["kpot"] * p["mu"] * p["s_unit"]

    def nll(
        self,
        theta: NDArray,
        local: NDArray,
        e_res: NDArray,
        n: NDArray,
        aux_g: NDArray,
        aux_l: NDArray,
    ) -> NDArray:
        """Negative log-likelihood (B,), Poisson part relative to the saturated model."""
        p = self._parts(theta, local, e_res, derivs=False)
        lam = p["lam"]
        ok = p["valid"] & np.all(lam > 0, axis=1)
        lam = np.where(lam > 0, lam, 1.0)
        pois = np.sum(lam - n + xlogy(n, n) - xlogy(n, lam), axis=1)
        cons = 0.5 * np.sum((theta[:, list(CONSTRAINED)] - aux_g) ** 2, axis=1) + 0.5 * np.sum(
            (local - aux_l) ** 2, axis=(1, 2)
        )
        return np.where(ok, pois + cons, np.inf)

    def jacobians(
        self, theta: NDArray, local: NDArray, e_res: NDArray
    ) -> tuple[NDArray, NDArray, NDArray]:
        """lambda (B, P), d lambda / d theta (B, P, G) and d lambda / d local (B, P, 2)."""
        p = self._parts(theta, local, e_res, derivs=True)
        bsz, npt = p["lam"].shape
        jg = np.zeros((bsz, npt, self.n_global))
        kpot, mu = p["kpot"], p["mu"]
        jg[:, :, I_MU] = kpot * p["s_unit"]
        jg[:, :, I_K] = self.sigma[1] * p["lam"] / p["v"]["pot_scale"][:, None]
        jg[:, :, I_Y] = kpot * mu * p["s_unit"] * self.sigma[2] / p["v"]["yield_mev"][:, None]
        sig_factor = kpot * mu * p["s_unit"] / p["shape"]
        jg[:, :, I_W] = sig_factor * p["dv_dg"] * self.sigma[3] * self.gamma_per_w
        jg[:, :, I_BES] = sig_factor * p["dv_ds"] * self.sigma[4] * p["e_res"][:, None]
        db = kpot * p["beta"] * p["bkg_line"]  # d lambda / d bias
        jg[:, :, I_U0] = db * (self.chol[0, 0] + self.chol[1, 0] * self.x_bias)
        jg[:, :, I_U1] = db * (self.chol[1, 1] * self.x_bias)
        dline = (kpot * p["beta"] * p["bias"] * (self.onehot @ self.a_part))[:, :, None]
        jg[:, :, N_FIXED::2] = dline * self.onehot[None]
        jg[:, :, N_FIXED + 1 :: 2] = dline * (self.onehot * self.x_bkg[:, None])[None]
        jl = np.empty((bsz, npt, 2))
        jl[..., 0] = p["lam"] / p["nu"] * self.local_sigma[None, :, 0]
        jl[..., 1] = kpot * p["b_term"] / p["beta"] * self.local_sigma[None, :, 1]
        return p["lam"], jg, jl

    # ------------------------------------------------------------------ fitting
    def start(self, n: NDArray) -> tuple[NDArray, NDArray]:
        """Starting point (B, G), (B, P, 2): nuisances at their centres, mu = 0, and the
        background lines from a weighted straight-line fit of n / (POT bias A_p) per part."""
        bsz = n.shape[0]
        theta = np.zeros((bsz, self.n_global))
        d = self.data
        bias0 = self.config.bias.p0 + self.config.bias.p1_per_mev * self.x_bias
        ratio = n / (d.pot * bias0 * (self.onehot @ self.a_part))[None, :] - 1.0
        w = np.maximum(n, 1.0)
        for p in range(d.n_parts):
            m = d.part == p
            x, y, ww = self.x_bkg[m], ratio[:, m], w[:, m]
            if m.sum() >= 2 and np.ptp(x) > 0:
                sw, sx, sxx = ww.sum(1), (ww * x).sum(1), (ww * x * x).sum(1)
                sy, sxy = (ww * y).sum(1), (ww * x * y).sum(1)
                det = sw * sxx - sx * sx
                theta[:, N_FIXED + 2 * p] = (sxx * sy - sx * sxy) / det
                theta[:, N_FIXED + 2 * p + 1] = (sw * sxy - sx * sy) / det
            else:
                theta[:, N_FIXED + 2 * p] = (ww * y).sum(1) / ww.sum(1)
        return theta, np.zeros((bsz, d.n_points, 2))

    def fit(
        self,
        e_res: NDArray,
        n: NDArray,
        *,
        mu_fixed: NDArray | None = None,
        aux_g: NDArray | None = None,
        aux_l: NDArray | None = None,
        start: tuple[NDArray, NDArray] | None = None,
    ) -> FitResult:
        """Minimise the NLL for every batch row. ``mu_fixed`` (B,) fixes mu = g^2/g2_unit
        (NaN entries stay free); otherwise mu is free (and may go negative, down to where an
        expected count would vanish)."""
        bsz = e_res.shape[0]
        n = np.broadcast_to(n, (bsz, self.data.n_points))
        aux_g = np.zeros((bsz, len(CONSTRAINED))) if aux_g is None else aux_g
        aux_l = np.zeros((bsz, self.data.n_points, 2)) if aux_l is None else aux_l
        theta, local = self.start(n) if start is None else (start[0].copy(), start[1].copy())
        fixed = np.zeros(bsz, dtype=bool)
        if mu_fixed is not None:
            fixed = np.isfinite(mu_fixed)
            theta[fixed, I_MU] = mu_fixed[fixed]
        # a parameter no point constrains (a part with one point has no slope) stays put
        free = np.ones(self.n_global, dtype=bool)
        for p in range(self.data.n_parts):
            m = self.data.part == p
            if m.sum() < 2 or np.ptp(self.x_bkg[m]) == 0:
                free[N_FIXED + 2 * p + 1] = False
        cons = self.constrained
        nll = self.nll(theta, local, e_res, n, aux_g, aux_l)
        converged = np.zeros(bsz, dtype=bool)
        tol = self.config.fit.nll_tolerance
        it = 0
        for it in range(1, self.config.fit.max_iterations + 1):  # noqa: B007
            lam, jg, jl = self.jacobians(theta, local, e_res)
            r = 1.0 - n / lam
            w = 1.0 / lam
            jl2 = np.sum(jl * jl, axis=-1)
            denom = 1.0 + w * jl2
            grad_g = np.einsum("bp,bpi->bi", r, jg)
            grad_g[:, list(CONSTRAINED)] += theta[:, list(CONSTRAINED)] - aux_g
            grad_l = r[..., None] * jl + (local - aux_l)
            w_eff = w / denom
            hess = np.einsum("bp,bpi,bpj->bij", w_eff, jg, jg) + np.diag(cons)[None]
            jl_gl = np.sum(jl * grad_l, axis=-1)
            rhs = -grad_g + np.einsum("bp,bpi->bi", w * jl_gl / denom, jg)
            mask = np.broadcast_to(free, (bsz, self.n_global)).copy()
            mask[fixed, I_MU] = False
            hess = np.where(mask[:, :, None] & mask[:, None, :], hess, 0.0)
            hess[:, np.arange(self.n_global), np.arange(self.n_global)] += ~mask
            rhs = np.where(mask, rhs, 0.0)
            try:
                dg = np.linalg.solve(hess, rhs[..., None])[..., 0]
            except np.linalg.LinAlgError:
                dg = np.linalg.lstsq(hess[0], rhs[0], rcond=None)[0][None]  # pragma: no cover
            vv = -grad_l - (w * np.einsum("bpi,bi->bp", jg, dg))[..., None] * jl
            dl = vv - (w * np.sum(jl * vv, axis=-1) / denom)[..., None] * jl
            step = np.ones(bsz)
            accepted = np.zeros(bsz, dtype=bool)
            new_t, new_l, new_nll = theta, local, nll
            for _ in range(12):
                cand_t = theta + step[:, None] * dg
                cand_l = local + step[:, None, None] * dl
                cand = self.nll(cand_t, cand_l, e_res, n, aux_g, aux_l)
                ok = (cand <= nll + 1e-12 * np.abs(nll)) & ~accepted
                new_t = np.where(ok[:, None], cand_t, new_t)
                new_l = np.where(ok[:, None, None], cand_l, new_l)
                new_nll = np.where(ok, cand, new_nll)
                accepted |= ok
                if accepted.all():
                    break
                step = np.where(accepted, step, 0.5 * step)
            gain = nll - new_nll
            theta, local, nll = new_t, new_l, new_nll
            converged = gain < tol
            if converged.all():
                break
        return FitResult(theta=theta, local=local, nll=nll, converged=converged, iterations=it)


@dataclass(frozen=True)
class FitResult:
    """Fitted ``theta`` (B, G), ``local`` (B, P, 2), minimum ``nll`` (B,), ``converged``."""

    theta: NDArray
    local: NDArray
    nll: NDArray
    converged: NDArray
    iterations: int

    def take(self, idx: NDArray | slice) -> FitResult:
        return FitResult(
            self.theta[idx], self.local[idx], self.nll[idx], self.converged[idx], self.iterations
        )

    def tile(self, n: int) -> tuple[NDArray, NDArray]:
        """A start of batch size ``n`` from the first row."""
        return np.repeat(self.theta[:1], n, axis=0), np.repeat(self.local[:1], n, axis=0)
