"""Cross-check of the likelihood and its CLs limits against pyhf (an independent
HistFactory implementation) for one mass.

The equivalent HistFactory model: per scan point one bin; the free background line of each
scan part as two samples (constant and slope in sqrt(s)) with free normfactors; every
Gaussian nuisance as a ``histosys`` (linear interpolation, code 0): POT scale, Y, w_L, BES,
the decorrelated bias-curve directions, and per point the POT (all samples) and background
(background samples). pyhf sums the additive template shifts where our model multiplies
factors; the difference is second order in the 0.3-1 % shifts.
"""

from __future__ import annotations

import numpy as np
import pytest

pyhf = pytest.importorskip("pyhf")

from scanplan.analysis.likelihood import (  # noqa: E402
    I_BES,
    I_K,
    I_U0,
    I_U1,
    I_W,
    I_Y,
    Likelihood,
    resonance_energy_mev,
    scan_data,
)
from scanplan.analysis.limits import limits  # noqa: E402
from scanplan.analysis.params import load_likelihood_config  # noqa: E402
from scanplan.analysis.simulate import simulate_scan  # noqa: E402
from scanplan.physics.params import load_physics  # noqa: E402

MASS_MEV = 16.90
G_REF = 3.0e-4  # signal template normalisation: pyhf mu = g^2 / G_REF^2


def _templates(lik: Likelihood, which: int | None, shift: float) -> tuple[np.ndarray, ...]:
    """Signal (at G_REF) and the per-part background samples with global nuisance ``which``
    shifted by ``shift`` sigma (everything else at its centre, lines at the MC mean)."""
    th = np.zeros((1, lik.n_global))
    if which is not None:
        th[0, which] = shift
    e_res = resonance_energy_mev(np.array([MASS_MEV]))
    loc = np.zeros((1, lik.data.n_points, 2))
    th_s = th.copy()
    th_s[0, 0] = G_REF**2 / lik.g2_unit
    sig = lik.signal(th_s, loc, e_res)[0]
    bkg = lik.expected(th, loc, e_res)[0]  # mu = 0: background with line 1 + 0 + 0 x
    return sig, bkg


def _pyhf_model(lik: Likelihood):  # type: ignore[no-untyped-def]
    d = lik.data
    sig0, bkg0 = _templates(lik, None, 0.0)
    glob = {"pot_scale": I_K, "yield": I_Y, "wl": I_W, "bes": I_BES, "u0": I_U0, "u1": I_U1}
    shifts = {k: (_templates(lik, i, -1.0), _templates(lik, i, 1.0)) for k, i in glob.items()}
    x = lik.x_bkg

    def mods(nominal: np.ndarray, kind: str, mask: np.ndarray, scale: np.ndarray) -> list:
        out = []
        for name, ((s_lo, b_lo), (s_hi, b_hi)) in shifts.items():
            lo, hi = (s_lo, s_hi) if kind == "s" else (b_lo * scale, b_hi * scale)
            ref = sig0 if kind == "s" else bkg0 * scale
            out.append(
                {
                    "name": name,
                    "type": "histosys",
                    "data": {
                        "lo_data": list((nominal + (lo - ref)) * mask),
                        "hi_data": list((nominal + (hi - ref)) * mask),
                    },
                }
            )
        for i in range(d.n_points):
            for tag, rel, applies in (
                ("pot", d.pot_rel[i], True),
                ("bkg", d.bkg_rel[i], kind == "b"),
            ):
                if not applies:
                    continue
                lo, hi = nominal.copy(), nominal.copy()
                lo[i] *= 1 - rel
                hi[i] *= 1 + rel
                out.append(
                    {
                        "name": f"{tag}_{i}",
                        "type": "histosys",
                        "data": {"lo_data": list(lo * mask), "hi_data": list(hi * mask)},
                    }
                )
        return out

    samples = [
        {
            "name": "signal",
            "data": list(sig0),
            "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                *mods(sig0, "s", 1.0, 1.0),
            ],
        }
    ]
    for p in range(d.n_parts):
        mask = (d.part == p).astype(float)
        for tag, scale in (("c", np.ones_like(x)), ("x", x)):
            nominal = bkg0 * scale * mask
            samples.append(
                {
                    "name": f"bkg{p}{tag}",
                    "data": list(nominal),
                    "modifiers": [
                        {"name": f"f{tag}{p}", "type": "normfactor", "data": None},
                        *mods(nominal, "b", mask, scale),
                    ],
                }
            )
    spec = {"channels": [{"name": "scan", "samples": samples}]}
    params = []
    for p in range(d.n_parts):
        params.append({"name": f"fc{p}", "inits": [1.0], "bounds": [[0.5, 1.5]]})
        params.append({"name": f"fx{p}", "inits": [0.0], "bounds": [[-2.0, 2.0]]})
    params.append({"name": "mu", "inits": [1.0], "bounds": [[0.0, 30.0]]})
    ws = pyhf.Workspace(
        {
            **spec,
            "observations": [{"name": "scan", "data": list(d.n_obs)}],
            "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": params}}],
            "version": "1.0.0",
        }
    )
    return ws.model(modifier_settings={"histosys": {"interpcode": "code0"}})


def _scan() -> Likelihood:
    # a 2022-like scan around the mass (two interleaved descending passes, facts 4), kept
    # short so that pyhf's numpy minimiser (no gradients) stays fast; an excess of
    # g = 3e-4 at 16.92 MeV and a 1 % data/MC background offset
    e1 = np.arange(290.0, 268.0, -1.5)
    e = np.concatenate([e1, e1 - 0.75])
    parts = [0] * e1.size + [1] * e1.size
    scan = simulate_scan(
        e, parts, 7.6e9, np.random.default_rng(11), g=3e-4, mass_mev=16.92, bias=(1.01, 0.0, 16.92)
    )
    return Likelihood(scan_data(scan), load_likelihood_config(), load_physics())


@pytest.mark.slow
def test_limit_agrees_with_pyhf() -> None:
    """pyhf's CLs (qtilde, asymptotic) at our observed and expected limits +- 3 %: the
    crossing of 0.10 lies inside, i.e. the limits agree within 3 %."""
    lik = _scan()
    ours = limits(lik, np.array([MASS_MEV]), 0.9)
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    model = _pyhf_model(lik)
    data = list(lik.data.n_obs) + model.config.auxdata
    to_pyhf = lik.g2_unit / G_REF**2

    def cls(mu: float) -> tuple[float, list[float]]:
        obs, exp = pyhf.infer.hypotest(
            mu * to_pyhf, data, model, test_stat="qtilde", return_expected_set=True
        )
        return float(obs), [float(x) for x in exp]

    mu_obs, mu_exp = float(ours.observed_limit_mu[0]), float(ours.expected_limit_mu[0])
    lo_obs, _ = cls(mu_obs * 0.97**2)  # g 3 % lower
    hi_obs, _ = cls(mu_obs * 1.03**2)
    assert lo_obs > 0.10 > hi_obs
    _, lo_exp = cls(mu_exp * 0.97**2)
    _, hi_exp = cls(mu_exp * 1.03**2)
    assert lo_exp[2] > 0.10 > hi_exp[2]
    # where pyhf's CLs crosses 0.10, as a ratio to our g limit (linear between +-3 %)
    r_obs = 0.97 + 0.06 * (lo_obs - 0.10) / (lo_obs - hi_obs)
    r_exp = 0.97 + 0.06 * (lo_exp[2] - 0.10) / (lo_exp[2] - hi_exp[2])
    print(f"pyhf/ours g limit: observed {r_obs:.4f}, expected {r_exp:.4f}")
    print(
        f"pyhf CLs obs at g_obs*0.97/1.03: {lo_obs:.4f}/{hi_obs:.4f}; "
        f"exp median: {lo_exp[2]:.4f}/{hi_exp[2]:.4f}"
    )
