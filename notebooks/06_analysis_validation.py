# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The published likelihood recovers an injected X17 and covers
#
# **Claim.** `scanplan analyse` (PADME's published Run III likelihood: Voigt signal, a free
# background line per scan part, the bias curve, POT-scale, Y, w_L and BES nuisances, 0.3 %
# per point on POT and background; `lattices/physics/padme_run3_likelihood.toml`) applied to
# pseudo-data **generated from the physics model** (`scanplan.analysis.simulate`, which does
# not use the likelihood code):
#
# 1. recovers an injected (M = 16.90 MeV, g = 5·10⁻⁴) within its 2σ profile-likelihood
#    errors on a 2022-like scan (two interleaved descending passes, 7.6·10⁹ POT per point);
# 2. over 100 such pseudo-experiments, the 1σ profile interval on g² at the true mass
#    contains the truth in 68 % of them (within 3 binomial σ), and the 90 % CL CLs limit at
#    the true mass lies above the true g in at least 90 % − 3σ of them (CLs is conservative).
#
# **Falsified if** either numbered check fails (assert cells below).

# %%
import matplotlib.pyplot as plt
import numpy as np

from scanplan.notebook import NotebookRun

NB = NotebookRun()

# %%
from scanplan.analysis.analyse import analyse_scan
from scanplan.analysis.likelihood import I_MU, Likelihood, resonance_energy_mev, scan_data
from scanplan.analysis.limits import cls_at
from scanplan.analysis.params import load_likelihood_config
from scanplan.analysis.simulate import run3_like_points, simulate_scan
from scanplan.physics.params import load_physics

M_TRUE, G_TRUE = 16.90, 5.0e-4
E, PARTS = run3_like_points()
CFG, PHYS = load_likelihood_config(), load_physics()
masses = np.round(np.arange(16.50, 17.30001, 0.01), 4)
scan = simulate_scan(
    E,
    PARTS,
    7.6e9,
    np.random.default_rng(2026),
    g=G_TRUE,
    mass_mev=M_TRUE,
    bias=(1.01, -0.01, 16.92),
)
a = analyse_scan(scan, masses)
best = a.best_fit()
print({k: best[k] for k in ("mass_mev", "g", "local_significance")})


# %% [markdown]
# Profile-likelihood errors: on g² at the best mass (2ΔNLL = 1 on a grid of fixed g²) and on
# M (where the free-fit NLL rises by 1/2 from its minimum over the mass grid).


# %%
def profile_interval(lik, mass, n, mu_grid):
    er = np.repeat(resonance_energy_mev(np.array([mass])), mu_grid.size)
    fits = lik.fit(er, n, mu_fixed=mu_grid)
    d = 2 * (fits.nll - fits.nll.min())
    inside = mu_grid[d <= 1.0]
    return inside.min(), inside.max()


lik = a.lik
mu_hat = best["g2"] / lik.g2_unit
mu_grid = np.linspace(0.0, 3.0 * mu_hat, 301)
mu_lo, mu_hi = profile_interval(lik, best["mass_mev"], lik.data.n_obs, mu_grid)
nll_m = a.scan.free.nll
inside_m = masses[nll_m - nll_m.min() <= 0.5]
m_lo, m_hi = inside_m.min(), inside_m.max()
g_lo, g_hi = np.sqrt(mu_lo * lik.g2_unit), np.sqrt(mu_hi * lik.g2_unit)
print(f"M = {best['mass_mev']:.3f} MeV, 1 sigma [{m_lo:.3f}, {m_hi:.3f}]")
print(f"g = {best['g']:.3e}, 1 sigma [{g_lo:.3e}, {g_hi:.3e}]  (true {G_TRUE:.1e} at {M_TRUE})")
sig_m = max(best["mass_mev"] - m_lo, m_hi - best["mass_mev"], 0.01)
sig_g = max(best["g"] - g_lo, g_hi - best["g"])
assert abs(best["mass_mev"] - M_TRUE) <= 2 * sig_m
assert abs(best["g"] - G_TRUE) <= 2 * sig_g

# %% [markdown]
# Coverage over 100 pseudo-experiments, fitted in one batch at the true mass.

# %%
N = 100
rng = np.random.default_rng(7)
toys = [simulate_scan(E, PARTS, 7.6e9, rng, g=G_TRUE, mass_mev=M_TRUE) for _ in range(N)]
n = np.array([scan_data(t).n_obs for t in toys])
lik_t = Likelihood(scan_data(toys[0]), CFG, PHYS)
mu_true = G_TRUE**2 / lik_t.g2_unit
er = np.repeat(resonance_energy_mev(np.array([M_TRUE])), N)
free = lik_t.fit(er, n)
at_true = lik_t.fit(er, n, mu_fixed=np.full(N, mu_true), start=(free.theta, free.local))
covered_1s = int(np.sum(2 * (at_true.nll - free.nll) <= 1.0))
zero_g, zero_l = np.zeros((N, 6)), np.zeros((N, lik_t.data.n_points, 2))
cls_true = cls_at(lik_t, M_TRUE, mu_true, n, zero_g, zero_l)
limit_above_truth = int(np.sum(cls_true >= 0.10))
bin1 = 3 * np.sqrt(0.68 * 0.32 / N)
bin90 = 3 * np.sqrt(0.9 * 0.1 / N)
print(
    f"1 sigma interval on g^2 covers the truth in {covered_1s}/{N} (expected 68 +- {100 * bin1:.0f})"
)
print(
    f"90 % CL limit above the true g in {limit_above_truth}/{N} (expected >= 90 - {100 * bin90:.0f})"
)
assert abs(covered_1s / N - 0.68) <= bin1
assert limit_above_truth / N >= 0.90 - bin90

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
axes[0].plot(masses, a.scan.local_significance, "k-")
axes[0].axvline(M_TRUE, color="tab:red", ls="--", label="injected M")
axes[0].set_xlabel("X17 mass [MeV]")
axes[0].set_ylabel("local significance [σ]")
axes[0].legend()
g_hat_t = np.sign(free.theta[:, I_MU]) * np.sqrt(np.abs(free.theta[:, I_MU]) * lik_t.g2_unit)
axes[1].hist(g_hat_t * 1e4, bins=20, color="tab:blue")
axes[1].axvline(G_TRUE * 1e4, color="tab:red", ls="--")
axes[1].set_xlabel("fitted g at the true mass [1e-4]")
axes[2].hist(cls_true, bins=20, range=(0, 1), color="tab:green")
axes[2].axvline(0.10, color="k", ls=":")
axes[2].set_xlabel("CLs of the true g (excluded if < 0.10)")
fig.suptitle("06: injected g = 5e-4 at 16.90 MeV, 2022-like scan")
NB.save(fig, "06_analysis_validation.png")
plt.show()

# %%
NB.done()
