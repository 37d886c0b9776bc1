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
# # 01 · Optics of the BTF → PADME line: xtrack vs MAD-X vs closed form
#
# **Claim.** The current-driven xtrack model of the line (`beamline.model.BeamLine`,
# Run III settings, dipoles matched to 282.5 MeV) reproduces
#
# 1. the Twiss functions and dispersion of **MAD-X** (cpymad) run on the very same
#    deck at every marker of the line, to 1e-6 relative, for every quadrupole
#    polarity pattern (the polarity of Q1–Q4 is not established, facts §1);
# 2. the first-order 6×6 maps of MAD-X from the line start to every marker;
# 3. the **closed-form** hard-edge sector-bend maps: DHSTB01 → SLTB3/SLTB4
#    (R11 = cos θ + L R21, R12 = ρ sin θ + L cos θ, R16 = ρ(1 − cos θ) + L sin θ,
#    R26 = sin θ) and DHSTB02 → PADME target / TimePix (R16), with ρ = 1.723 m,
#    θ = 45°;
# 4. the facts-file statements: R11 from SLTB2 to SLTB4 is small and R16 there large
#    (facts §2); a 0.1 % DHSTB02/beam mismatch moves the spot by ≈ 3.8 mm at the
#    TimePix (facts §3, [D]).
#
# **References.** MAD-X (independent tracking/optics code, same lattice text),
# textbook hard-edge sector-bend matrices, facts file §§1–3.
#
# **Falsified if** any marker differs from MAD-X by more than 1e-6 (relative, with
# small absolute floors), any closed-form element differs by more than 1e-8, or the
# TimePix displacement per 0.1 % mismatch is not 3.8 ± 0.1 mm.

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from scanplan.notebook import NotebookRun

# figures go to $SCANPLAN_NB_OUT (the tests) or _out/ in the working folder (gitignored)
NB = NotebookRun()


# %%
from beamline import optics
from beamline.madx import madx_for, madx_r_matrix, madx_to_xtrack_similarity, madx_twiss
from beamline.model import BeamLine

# MAD-X (cpymad) is given the very text xtrack loads (beamline.lattice.madx_deck) and the
# model's present knob values (currents, polarities, gaps): beamline.madx.madx_for
bl = BeamLine("run3_2022", match_dipoles=True)
print(f"settings {bl.settings.name} ({bl.settings.version}), E = {bl.energy_mev} MeV")
print({k: round(v, 4) for k, v in bl.currents_a().items()})

# %% [markdown]
# ## 1. Twiss at every marker, four polarity patterns
#
# MAD-X gives values at element exits and xtrack at entrances, so both are compared at
# zero-length markers. MAD-X dispersion is d/dPT, xtrack's d/dδ: D_δ = β₀ · D_PT.

# %%
FLOOR = {"betx_m": 1e-3, "bety_m": 1e-3, "alfx": 1e-3, "alfy": 1e-3, "dx_m": 1e-4, "dpx": 1e-4}
REL_TOL = 1e-6
PATTERNS = {
    "+-+- (settings)": (1, -1, 1, -1),
    "-+-+": (-1, 1, -1, 1),
    "++++": (1, 1, 1, 1),
    "----": (-1, -1, -1, -1),
}


def compare_twiss(bl):
    madx = madx_for(bl)
    tw_m = madx_twiss(madx, bl)
    beta0 = float(bl.line.particle_ref.beta0[0])
    tw_x = optics.twiss(bl).drop_duplicates("name", keep="last").set_index("name")
    rows_m = {n.split(":")[0]: i for i, n in enumerate(tw_m.name)}
    rows = []
    for name in tw_x.index[tw_x.element_type == "Marker"]:
        i = rows_m[name]
        ref = {
            "betx_m": tw_m.betx[i],
            "bety_m": tw_m.bety[i],
            "alfx": tw_m.alfx[i],
            "alfy": tw_m.alfy[i],
            "dx_m": beta0 * tw_m.dx[i],
            "dpx": beta0 * tw_m.dpx[i],
        }
        row = {"name": name, "s_m": tw_x.loc[name, "s_m"]}
        for key, expected in ref.items():
            got = tw_x.loc[name, key]
            row[key] = got
            row[key + "_madx"] = expected
            row["dev_" + key] = abs(got - expected) / max(abs(expected), FLOOR[key])
        rows.append(row)
    madx.quit()
    return pd.DataFrame(rows)


results = {}
for label, signs in PATTERNS.items():
    for quad, sign in zip(("Q1", "Q2", "Q3", "Q4"), signs, strict=True):
        bl.set_polarity(quad, sign)
    results[label] = compare_twiss(bl)
for quad, sign in zip(("Q1", "Q2", "Q3", "Q4"), PATTERNS["+-+- (settings)"], strict=True):
    bl.set_polarity(quad, sign)

dev_cols = [c for c in results["+-+- (settings)"].columns if c.startswith("dev_")]
summary = pd.DataFrame({label: df[dev_cols].max() for label, df in results.items()}).T
summary.insert(0, "markers", [len(df) for df in results.values()])
display(summary)

# %%
worst = float(summary[dev_cols].to_numpy().max())
print(f"largest relative deviation from MAD-X over all markers and patterns: {worst:.2e}")
assert all(len(df) >= 20 for df in results.values()), "too few markers compared"
assert worst < REL_TOL, f"xtrack deviates from MAD-X by {worst:.2e} > {REL_TOL}"

# %%
tw_line = optics.twiss(bl)
ref = results["+-+- (settings)"]
fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
ax = axes[0]
ax.plot(tw_line.s_m, tw_line.betx_m, label=r"$\beta_x$ xtrack")
ax.plot(tw_line.s_m, tw_line.bety_m, label=r"$\beta_y$ xtrack")
ax.plot(ref.s_m, ref.betx_m_madx, "k+", ms=8, label=r"$\beta_x$ MAD-X (markers)")
ax.plot(ref.s_m, ref.bety_m_madx, "kx", ms=6, label=r"$\beta_y$ MAD-X (markers)")
ax.set_ylabel(r"$\beta$ [m]")
ax.legend(ncol=2, fontsize=8)
ax = axes[1]
ax.plot(tw_line.s_m, tw_line.dx_m, color="C2", label=r"$D_x$ xtrack")
ax.plot(ref.s_m, ref.dx_m_madx, "k+", ms=8, label=r"$\beta_0 D_{x,PT}$ MAD-X")
ax.set_ylabel(r"$D_x$ [m]")
ax.legend(fontsize=8)
ax = axes[2]
for label, df in results.items():
    ax.semilogy(df.s_m, df[dev_cols].max(axis=1).clip(lower=1e-17), "o-", ms=3, label=label)
ax.axhline(REL_TOL, color="r", ls="--", label="tolerance 1e-6")
ax.set_ylabel("max rel. deviation")
ax.set_xlabel("s from DHSTB01 entrance [m] (facts-file frame)")
ax.legend(fontsize=8, ncol=3)
for a in axes:
    for _name, s in (
        ("SLTB4", 2.945),
        ("Q1", 3.859),
        ("Q2", 4.959),
        ("Q3", 10.294),
        ("Q4", 11.194),
        ("target", 13.885),
    ):
        a.axvline(s, color="0.85", lw=0.8, zorder=0)
axes[0].set_title("Run III optics: xtrack (lines) vs MAD-X (markers), same deck")
NB.save(fig, "01_optics_vs_madx.png")
plt.show()

# %% [markdown]
# ## 2. 6×6 maps from the line start to every marker
#
# S = diag(1, 1, 1, 1, β₀, 1/β₀) converts MAD-X (T, PT) to xtrack (ζ, p_ζ):
# R_xtrack = S R_madx S⁻¹.

# %%
madx = madx_for(bl)
tw_m = madx_twiss(madx, bl)
beta0 = float(bl.line.particle_ref.beta0[0])
S = madx_to_xtrack_similarity(beta0)  # diag(1, 1, 1, 1, beta0, 1/beta0)
rows_m = {n.split(":")[0]: i for i, n in enumerate(tw_m.name)}
start = bl.line.element_names[0]
markers = list(tw_line.name[tw_line.element_type == "Marker"].drop_duplicates())
map_dev = {}
for name in markers:
    r_x = optics.r_matrix(bl, start, name).to_numpy()
    r_m = S @ madx_r_matrix(tw_m, rows_m[name]) @ np.linalg.inv(S)
    map_dev[name] = float(np.max(np.abs(r_x - r_m) / np.maximum(np.abs(r_m), 1e-3)))
madx.quit()
map_dev = pd.Series(map_dev, name="max |R_xt - R_madx| / max(|R_madx|, 1e-3)")
print(map_dev.describe()[["count", "max"]])
assert map_dev.max() < REL_TOL, map_dev.idxmax()

# %% [markdown]
# ## 3. Closed-form hard-edge sector bends
#
# DHSTB01 (ρ = 1.723 m, θ = 45°) followed by a drift L to the slit entrance
# (slit centres at s = 2.735 m and 2.945 m, jaws 35 mm long). DHSTB02 followed by the
# drift to the PADME target (s = 13.885 m) and the TimePix (s = 17.89 m); the
# DHSTB02 arc ends at s = 11.925 + ρθ.

# %%
RHO, TH, SLIT_L = 1.723, np.pi / 4, 0.035


def bend_then_drift(L):
    return {
        "R11": np.cos(TH) - L * np.sin(TH) / RHO,
        "R12": RHO * np.sin(TH) + L * np.cos(TH),
        "R16": RHO * (1 - np.cos(TH)) + L * np.sin(TH),
        "R26": np.sin(TH),
    }


cases = [
    ("dhstb01", "sltb3", 2.735 - SLIT_L / 2 - RHO * TH),
    ("dhstb01", "sltb4", 2.945 - SLIT_L / 2 - RHO * TH),
    ("dhstb02", "dhstb02_exit", 0.0),
    ("dhstb02", "padme_target", 13.885 - (11.925 + RHO * TH)),
    ("dhstb02", "timepix", 17.89 - (11.925 + RHO * TH)),
]
rows = []
for a, b, L in cases:
    r = optics.r_matrix(bl, a, b)
    model = {
        "R11": r.loc["x", "x"],
        "R12": r.loc["x", "px"],
        "R16": r.loc["x", "pzeta"],
        "R26": r.loc["px", "pzeta"],
    }
    for key, exact in bend_then_drift(L).items():
        rows.append(
            {
                "from": a,
                "to": b,
                "drift_m": L,
                "element": key,
                "closed_form": exact,
                "model": model[key],
                "diff": model[key] - exact,
            }
        )
closed = pd.DataFrame(rows)
display(closed)

# %%
print(f"largest |model - closed form| = {closed['diff'].abs().max():.2e}")
assert (closed["diff"].abs() <= 1e-8 * np.maximum(closed["closed_form"].abs(), 1)).all()

# %% [markdown]
# ## 4. Facts-file statements
#
# * facts §2: R11 from SLTB2 to SLTB4 is small, R16 large — the position at SLTB2
#   hardly matters at SLTB4, its angle and momentum do.
# * facts §3 [D]: a 0.1 % DHSTB02/beam mismatch moves the spot by ≈ 3.8 mm at the
#   TimePix and "≈ 0.5 mm" at the target (hard-edge, drift only).

# %%
r24 = optics.r_matrix(bl, "sltb2_exit", "sltb4")
eps = 1e-3
shift = {
    b: 1e3 * closed.query("to == @b and element == 'R16'")["model"].iloc[0] * eps
    for b in ("dhstb02_exit", "padme_target", "timepix")
}
facts = pd.DataFrame(
    [
        {"quantity": "R11 SLTB2 exit -> SLTB4", "model": r24.loc["x", "x"], "facts": "small"},
        {
            "quantity": "R16 SLTB2 exit -> SLTB4 [m]",
            "model": r24.loc["x", "pzeta"],
            "facts": "large",
        },
        {
            "quantity": "spot shift at TimePix per 0.1 % [mm]",
            "model": shift["timepix"],
            "facts": "≈3.8",
        },
        {
            "quantity": "spot shift at target per 0.1 % [mm]",
            "model": shift["padme_target"],
            "facts": "≈0.5",
        },
        {
            "quantity": "spot shift at DHSTB02 exit per 0.1 % [mm]",
            "model": shift["dhstb02_exit"],
            "facts": "-",
        },
    ]
)
display(facts)

# %%
assert abs(r24.loc["x", "x"]) < 0.1 and r24.loc["x", "pzeta"] > 1.5
assert abs(shift["timepix"] - 3.8) < 0.1, shift
# The facts' "≈0.5 mm at the target" is R16 of DHSTB02 alone (its exit); with the
# 0.607 m drift to the target the closed form gives 0.93 mm and so does the model.
# Reported, not asserted against: the closed form above is the reference.
print(
    f"target: model {shift['padme_target']:.3f} mm vs facts ≈0.5 mm "
    f"(= DHSTB02 exit {shift['dhstb02_exit']:.3f} mm)"
)

# %% [markdown]
# **Result.** xtrack and MAD-X agree on the whole line to machine precision for all
# four polarity patterns; the dipole maps match the hard-edge closed form; the TimePix
# sensitivity to the DHSTB02 mismatch is the facts' 3.8 mm per 0.1 %. The facts'
# "≈ 0.5 mm at the target" matches R16 at the DHSTB02 exit, not at the target
# (0.93 mm by the closed form): a wording slip in the facts, worth correcting there.

# %%
NB.done()
