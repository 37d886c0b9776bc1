"""Generate the validation notebooks under ``notebooks/`` (outputs stripped).

    python scripts/make_notebooks.py            # (re)write every notebook
    python scripts/make_notebooks.py 01 04      # only the notebooks whose name starts so

Each notebook states a claim, computes it with btf-scanplan, compares it with an
independent reference (MAD-X via cpymad on the same deck, closed-form optics, numbers
published in the facts file) and asserts the agreement in a cell, so a failing check fails
CI (``tests/test_notebooks.py`` executes every notebook). Figures are shown inline and
written to ``$SCANPLAN_NB_OUT`` (default ``_out`` next to the notebook).

The notebooks are the source of truth once written; this script is kept so that they can
be regenerated consistently. Edit the cell texts here, then run it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"

SETUP = '''\
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
T0 = time.perf_counter()
# figures go to $SCANPLAN_NB_OUT (CI) or _out/ next to the notebook (gitignored)
OUT = Path(os.environ.get("SCANPLAN_NB_OUT", "_out")).resolve()
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Write a figure to OUT and say where (it is also shown inline)."""
    path = OUT / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"figure written to {path}")
    return path
'''

FOOTER = """\
print(f"notebook executed in {time.perf_counter() - T0:.1f} s; all checks passed")
"""


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip("\n"))


# --------------------------------------------------------------------------------------
# 01 optics validation
# --------------------------------------------------------------------------------------
NB01 = [
    md(
        r"""
        # 01 · Optics of the BTF → PADME line: xtrack vs MAD-X vs closed form

        **Claim.** The current-driven xtrack model of the line (`beamline.model.BeamLine`,
        Run III settings, dipoles matched to 282.5 MeV) reproduces

        1. the Twiss functions and dispersion of **MAD-X** (cpymad) run on the very same
           deck at every marker of the line, to 1e-6 relative, for every quadrupole
           polarity pattern (the polarity of Q1–Q4 is not established, facts §1);
        2. the first-order 6×6 maps of MAD-X from the line start to every marker;
        3. the **closed-form** hard-edge sector-bend maps: DHSTB01 → SLTB3/SLTB4
           (R11 = cos θ + L R21, R12 = ρ sin θ + L cos θ, R16 = ρ(1 − cos θ) + L sin θ,
           R26 = sin θ) and DHSTB02 → PADME target / TimePix (R16), with ρ = 1.723 m,
           θ = 45°;
        4. the facts-file statements: R11 from SLTB2 to SLTB4 is small and R16 there large
           (facts §2); a 0.1 % DHSTB02/beam mismatch moves the spot by ≈ 3.8 mm at the
           TimePix (facts §3, [D]).

        **References.** MAD-X (independent tracking/optics code, same lattice text),
        textbook hard-edge sector-bend matrices, facts file §§1–3.

        **Falsified if** any marker differs from MAD-X by more than 1e-6 (relative, with
        small absolute floors), any closed-form element differs by more than 1e-8, or the
        TimePix displacement per 0.1 % mismatch is not 3.8 ± 0.1 mm.
        """
    ),
    code(SETUP),
    code(
        """
        from beamline import optics
        from beamline.madx import madx_for, madx_r_matrix, madx_to_xtrack_similarity, madx_twiss
        from beamline.model import BeamLine

        # MAD-X (cpymad) is given the very text xtrack loads (beamline.lattice.madx_deck) and the
        # model's present knob values (currents, polarities, gaps): beamline.madx.madx_for
        bl = BeamLine("run3_2022", match_dipoles=True)
        print(f"settings {bl.settings.name} ({bl.settings.version}), E = {bl.energy_mev} MeV")
        print({k: round(v, 4) for k, v in bl.currents_a().items()})
        """
    ),
    md(
        """
        ## 1. Twiss at every marker, four polarity patterns

        MAD-X gives values at element exits and xtrack at entrances, so both are compared at
        zero-length markers. MAD-X dispersion is d/dPT, xtrack's d/dδ: D_δ = β₀ · D_PT.
        """
    ),
    code(
        """
        FLOOR = {"betx_m": 1e-3, "bety_m": 1e-3, "alfx": 1e-3, "alfy": 1e-3, "dx_m": 1e-4, "dpx": 1e-4}
        REL_TOL = 1e-6
        PATTERNS = {"+-+- (settings)": (1, -1, 1, -1), "-+-+": (-1, 1, -1, 1),
                    "++++": (1, 1, 1, 1), "----": (-1, -1, -1, -1)}


        def compare_twiss(bl):
            madx = madx_for(bl)
            tw_m = madx_twiss(madx, bl)
            beta0 = float(bl.line.particle_ref.beta0[0])
            tw_x = optics.twiss(bl).drop_duplicates("name", keep="last").set_index("name")
            rows_m = {n.split(":")[0]: i for i, n in enumerate(tw_m.name)}
            rows = []
            for name in tw_x.index[tw_x.element_type == "Marker"]:
                i = rows_m[name]
                ref = {"betx_m": tw_m.betx[i], "bety_m": tw_m.bety[i], "alfx": tw_m.alfx[i],
                       "alfy": tw_m.alfy[i], "dx_m": beta0 * tw_m.dx[i], "dpx": beta0 * tw_m.dpx[i]}
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
            for quad, sign in zip(("Q1", "Q2", "Q3", "Q4"), signs):
                bl.set_polarity(quad, sign)
            results[label] = compare_twiss(bl)
        for quad, sign in zip(("Q1", "Q2", "Q3", "Q4"), PATTERNS["+-+- (settings)"]):
            bl.set_polarity(quad, sign)

        dev_cols = [c for c in results["+-+- (settings)"].columns if c.startswith("dev_")]
        summary = pd.DataFrame({label: df[dev_cols].max() for label, df in results.items()}).T
        summary.insert(0, "markers", [len(df) for df in results.values()])
        summary
        """
    ),
    code(
        """
        worst = float(summary[dev_cols].to_numpy().max())
        print(f"largest relative deviation from MAD-X over all markers and patterns: {worst:.2e}")
        assert all(len(df) >= 20 for df in results.values()), "too few markers compared"
        assert worst < REL_TOL, f"xtrack deviates from MAD-X by {worst:.2e} > {REL_TOL}"
        """
    ),
    code(
        """
        tw_line = optics.twiss(bl)
        ref = results["+-+- (settings)"]
        fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
        ax = axes[0]
        ax.plot(tw_line.s_m, tw_line.betx_m, label=r"$\\beta_x$ xtrack")
        ax.plot(tw_line.s_m, tw_line.bety_m, label=r"$\\beta_y$ xtrack")
        ax.plot(ref.s_m, ref.betx_m_madx, "k+", ms=8, label=r"$\\beta_x$ MAD-X (markers)")
        ax.plot(ref.s_m, ref.bety_m_madx, "kx", ms=6, label=r"$\\beta_y$ MAD-X (markers)")
        ax.set_ylabel(r"$\\beta$ [m]")
        ax.legend(ncol=2, fontsize=8)
        ax = axes[1]
        ax.plot(tw_line.s_m, tw_line.dx_m, color="C2", label=r"$D_x$ xtrack")
        ax.plot(ref.s_m, ref.dx_m_madx, "k+", ms=8, label=r"$\\beta_0 D_{x,PT}$ MAD-X")
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
            for name, s in (("SLTB4", 2.945), ("Q1", 3.859), ("Q2", 4.959), ("Q3", 10.294),
                            ("Q4", 11.194), ("target", 13.885)):
                a.axvline(s, color="0.85", lw=0.8, zorder=0)
        axes[0].set_title("Run III optics: xtrack (lines) vs MAD-X (markers), same deck")
        save(fig, "01_optics_vs_madx.png")
        plt.show()
        """
    ),
    md(
        """
        ## 2. 6×6 maps from the line start to every marker

        S = diag(1, 1, 1, 1, β₀, 1/β₀) converts MAD-X (T, PT) to xtrack (ζ, p_ζ):
        R_xtrack = S R_madx S⁻¹.
        """
    ),
    code(
        """
        madx = madx_for(bl)
        tw_m = madx_twiss(madx, bl)
        beta0 = float(bl.line.particle_ref.beta0[0])
        S = madx_to_xtrack_similarity(beta0)          # diag(1, 1, 1, 1, beta0, 1/beta0)
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
        """
    ),
    md(
        """
        ## 3. Closed-form hard-edge sector bends

        DHSTB01 (ρ = 1.723 m, θ = 45°) followed by a drift L to the slit entrance
        (slit centres at s = 2.735 m and 2.945 m, jaws 35 mm long). DHSTB02 followed by the
        drift to the PADME target (s = 13.885 m) and the TimePix (s = 17.89 m); the
        DHSTB02 arc ends at s = 11.925 + ρθ.
        """
    ),
    code(
        """
        RHO, TH, SLIT_L = 1.723, np.pi / 4, 0.035


        def bend_then_drift(L):
            return {"R11": np.cos(TH) - L * np.sin(TH) / RHO,
                    "R12": RHO * np.sin(TH) + L * np.cos(TH),
                    "R16": RHO * (1 - np.cos(TH)) + L * np.sin(TH),
                    "R26": np.sin(TH)}


        cases = [("dhstb01", "sltb3", 2.735 - SLIT_L / 2 - RHO * TH),
                 ("dhstb01", "sltb4", 2.945 - SLIT_L / 2 - RHO * TH),
                 ("dhstb02", "dhstb02_exit", 0.0),
                 ("dhstb02", "padme_target", 13.885 - (11.925 + RHO * TH)),
                 ("dhstb02", "timepix", 17.89 - (11.925 + RHO * TH))]
        rows = []
        for a, b, L in cases:
            r = optics.r_matrix(bl, a, b)
            model = {"R11": r.loc["x", "x"], "R12": r.loc["x", "px"],
                     "R16": r.loc["x", "pzeta"], "R26": r.loc["px", "pzeta"]}
            for key, exact in bend_then_drift(L).items():
                rows.append({"from": a, "to": b, "drift_m": L, "element": key,
                             "closed_form": exact, "model": model[key], "diff": model[key] - exact})
        closed = pd.DataFrame(rows)
        closed
        """
    ),
    code(
        """
        print(f"largest |model - closed form| = {closed['diff'].abs().max():.2e}")
        assert (closed["diff"].abs() <= 1e-8 * np.maximum(closed["closed_form"].abs(), 1)).all()
        """
    ),
    md(
        """
        ## 4. Facts-file statements

        * facts §2: R11 from SLTB2 to SLTB4 is small, R16 large — the position at SLTB2
          hardly matters at SLTB4, its angle and momentum do.
        * facts §3 [D]: a 0.1 % DHSTB02/beam mismatch moves the spot by ≈ 3.8 mm at the
          TimePix and "≈ 0.5 mm" at the target (hard-edge, drift only).
        """
    ),
    code(
        """
        r24 = optics.r_matrix(bl, "sltb2_exit", "sltb4")
        eps = 1e-3
        shift = {b: 1e3 * closed.query("to == @b and element == 'R16'")["model"].iloc[0] * eps
                 for b in ("dhstb02_exit", "padme_target", "timepix")}
        facts = pd.DataFrame([
            {"quantity": "R11 SLTB2 exit -> SLTB4", "model": r24.loc["x", "x"], "facts": "small"},
            {"quantity": "R16 SLTB2 exit -> SLTB4 [m]", "model": r24.loc["x", "pzeta"], "facts": "large"},
            {"quantity": "spot shift at TimePix per 0.1 % [mm]", "model": shift["timepix"], "facts": "≈3.8"},
            {"quantity": "spot shift at target per 0.1 % [mm]", "model": shift["padme_target"], "facts": "≈0.5"},
            {"quantity": "spot shift at DHSTB02 exit per 0.1 % [mm]", "model": shift["dhstb02_exit"], "facts": "-"},
        ])
        facts
        """
    ),
    code(
        """
        assert abs(r24.loc["x", "x"]) < 0.1 and r24.loc["x", "pzeta"] > 1.5
        assert abs(shift["timepix"] - 3.8) < 0.1, shift
        # The facts' "≈0.5 mm at the target" is R16 of DHSTB02 alone (its exit); with the
        # 0.607 m drift to the target the closed form gives 0.93 mm and so does the model.
        # Reported, not asserted against: the closed form above is the reference.
        print(f"target: model {shift['padme_target']:.3f} mm vs facts ≈0.5 mm "
              f"(= DHSTB02 exit {shift['dhstb02_exit']:.3f} mm)")
        """
    ),
    md(
        """
        **Result.** xtrack and MAD-X agree on the whole line to machine precision for all
        four polarity patterns; the dipole maps match the hard-edge closed form; the TimePix
        sensitivity to the DHSTB02 mismatch is the facts' 3.8 mm per 0.1 %. The facts'
        "≈ 0.5 mm at the target" matches R16 at the DHSTB02 exit, not at the target
        (0.93 mm by the closed form): a wording slip in the facts, worth correcting there.
        """
    ),
    code(FOOTER),
]
# --------------------------------------------------------------------------------------
# 02 energy spread vs aperture
# --------------------------------------------------------------------------------------
NB02 = [
    md(
        r"""
        # 02 · Energy spread and transmission versus the SLTB4 gap

        **Claim.** The spread engine (`beamline.spread.compute_spread`: xtrack tracking of the
        LINAC beam through the line with slits open, every slit setting applied afterwards,
        Highland scattering in the Mylar window) gives the relative energy spread and the
        transmission of the momentum selection DHSTB01 + SLTB2 + SLTB4:

        1. equal, within statistics and 1 %, to an **independent linear Monte Carlo** built here
           from **MAD-X** 6×6 maps of the same deck (NumPy particles, the same beam parameters,
           the PDG/Highland kick at the Mylar window, black-absorber jaws at slit entry and exit);
        2. within 15 % of the **closed form** for a flat momentum window of width w/D smeared by
           the betatron size at SLTB4: σ_δ ≈ √(w²/12 + σ_β²)/D, where σ_β comes from the SLTB2
           cut, the beam divergence and the window scattering; the naive flat-top w/(√12·D) is
           wrong by ~90 % for narrow gaps (xsuite notes, facts §2);
        3. at the Run III slit settings (SLTB2 1.74, SLTB3 4.2, SLTB4 1.9, SLTB5 5.0 mm) the rms
           spread is **≤ 0.25 %**, the published bound (facts §2: BES ≤ 0.25 %);
        4. the Highland angle of the 125 µm Mylar window at 282.5 MeV is **≈ 0.7 mrad** (facts §2);
        5. when the assumed beam divergence (×0.5…×2) or window thickness (0…250 µm) is varied,
           the engine still follows the closed form within 10 %: the narrow-gap spread is set by
           the divergence at SLTB2, not by the gap (facts §2: "the betatron size at the slits
           dominates").

        **Assumptions carried by both the engine and the references** (from
        `lattices/btf_padme/beams/linac_positron_run3.toml`, not measured): waist 1 mm × 1 mrad at
        SLTB2, 1 % rms momentum spread, Mylar X₀ = 0.287 m. Jaws are black absorbers; no energy
        loss. These change the absolute numbers, not the agreement tested here.

        **Falsified if** any of the five checks fails.
        """
    ),
    code(SETUP),
    code(
        """
        from beamline import spread
        from beamline.madx import madx_for, madx_r_matrix, madx_twiss
        from beamline.model import BeamLine

        E0 = 282.5
        GAPS4 = [0.5, 1.0, 1.9, 3.0, 5.0, 8.0, 12.0, 20.0]
        GAPS5 = [5.0, 53.0]                      # Run III and fully open
        N_ENGINE = 1_000_000
        bl = BeamLine("run3_2022", E0, match_dipoles=True)
        beam = bl.beam
        print(f"beam {beam.name}: eps {beam.emit_x_m:g} m, beta0 {beam.betx_m} m, alpha0 {beam.alfx}, "
              f"sigma_delta {beam.sigma_delta}")

        t = time.perf_counter()
        grid = spread.make_grid("run3_2022", gaps_mm={"SLTB4": GAPS4, "SLTB5": GAPS5})
        res = spread.compute_spread([E0], grid=grid, n_particles=N_ENGINE, seed=1, scheduler="sync")
        print(f"engine: {N_ENGINE:.0e} particles, {len(res.table)} slit settings, "
              f"{time.perf_counter() - t:.1f} s; scattering: {res.metadata['scattering_model']}")
        eng = res.table[["sltb2_mm", "sltb3_mm", "sltb4_mm", "sltb5_mm", "n_transmitted",
                         "transmission", "rel_spread_rms", "rel_spread_fwhm"]].copy()
        eng
        """
    ),
    md(
        """
        ## Independent reference 1: linear Monte Carlo on MAD-X maps

        MAD-X gives the cumulative map R(start → k) at every element exit; a slit's entry is the
        exit of the drift before it. Particles are drawn from the same Twiss/emittance/δ
        definition; after the Mylar window each particle gets Highland kicks (θ₀ from the PDG
        formula, written out here), propagated with R(window → k) = R(start → k) R(start → window)⁻¹.
        """
    ),
    code(
        """
        madx = madx_for(bl)                    # the same deck and knobs as the xtrack model
        tw = madx_twiss(madx, bl)
        names = [n.split(":")[0] for n in tw.name]
        row = {n: i for i, n in enumerate(names)}


        def rmat(i):
            return madx_r_matrix(tw, i)


        # PDG / Highland multiple-scattering angle of the Mylar window (facts: ~0.7 mrad)
        beta = np.sqrt(1 - (0.51099895 / E0) ** 2)
        p_mev = beta * E0
        x_x0 = 125e-6 / 0.287
        theta0 = 13.6 / (beta * p_mev) * np.sqrt(x_x0) * (1 + 0.088 * np.log10(x_x0 / beta**2))
        print(f"Highland theta0 of the Mylar window at {E0} MeV: {theta0 * 1e3:.3f} mrad")
        assert 0.65e-3 < theta0 < 0.75e-3

        rng = np.random.default_rng(2024)
        N_MC = 4_000_000
        z = rng.standard_normal((7, N_MC))
        ex, ey = beam.emit_x_m, beam.emit_y_m
        X0 = np.zeros((6, N_MC))
        X0[0] = np.sqrt(ex * beam.betx_m) * z[0]
        X0[1] = np.sqrt(ex / beam.betx_m) * (z[1] - beam.alfx * z[0])
        X0[2] = np.sqrt(ey * beam.bety_m) * z[2]
        X0[3] = np.sqrt(ey / beam.bety_m) * (z[3] - beam.alfy * z[2])
        delta = beam.sigma_delta * z[4]
        X0[5] = beta * delta                     # MAD-X PT = beta0 * delta to first order
        kick_x, kick_y = theta0 * z[5], theta0 * z[6]
        R_win_inv = np.linalg.inv(rmat(row["mylar_window"]))


        def coordinate(i, plane, after_window):
            r = rmat(i)
            u = r[plane] @ X0
            if after_window:
                r_wk = r @ R_win_inv
                u = u + r_wk[plane, 1] * kick_x + r_wk[plane, 3] * kick_y
            return u


        PLANE = {"sltb2": 0, "sltb3": 2, "sltb4": 0, "sltb5": 0}
        ends = {}
        for slit, plane in PLANE.items():
            after = slit != "sltb2"
            ends[slit] = (coordinate(row[slit] - 1, plane, after), coordinate(row[slit + "_exit"], plane, after))


        def passes(slit, gap_mm):
            half = 0.5e-3 * gap_mm
            a, b = ends[slit]
            return (np.abs(a) <= half) & (np.abs(b) <= half)


        base = passes("sltb2", 1.74) & passes("sltb3", 4.2)
        mc = []
        for g4 in GAPS4:
            for g5 in GAPS5:
                keep = base & passes("sltb4", g4) & passes("sltb5", g5)
                mc.append({"sltb4_mm": g4, "sltb5_mm": g5, "mc_n": int(keep.sum()),
                           "mc_transmission": keep.mean(), "mc_rel_spread_rms": delta[keep].std()})
        mc = pd.DataFrame(mc)
        madx.quit()
        """
    ),
    md(
        """
        ## Independent reference 2: closed form

        For SLTB4 much narrower than the 1 % momentum spread times D, the selected δ is a flat
        window of width w/D convolved with the Gaussian betatron blur σ_β/D at SLTB4:
        σ_δ² ≈ (w²/12 + σ_β²)/D², with σ_β² = R11² σ²(x₂ | SLTB2 cut) + R12² σ²_x′ + L² θ₀²
        (R from the SLTB2 exit to the SLTB4 centre, the waist at SLTB2 has no x–x′ correlation,
        L = window → SLTB4). Only valid with SLTB5 open.
        """
    ),
    code(
        """
        from scipy.stats import truncnorm

        r24 = rmat(row["sltb4"] - 1) @ np.linalg.inv(rmat(row["sltb2_exit"]))
        r24 = 0.5 * (r24 + rmat(row["sltb4_exit"]) @ np.linalg.inv(rmat(row["sltb2_exit"])))  # slit centre
        R11, R12, D = r24[0, 0], r24[0, 1], r24[0, 5] / beta
        beta_star = beam.betx_m / (1 + beam.alfx**2)       # waist of the incoming beam ...
        s_waist = beam.alfx * beta_star                    # ... this far from the line start
        sig_x, sig_xp = np.sqrt(ex * beta_star), np.sqrt(ex / beta_star)
        print(f"waist {s_waist:.3f} m from the start (SLTB2 centre at 2.370 m): "
              f"{sig_x * 1e3:.2f} mm x {sig_xp * 1e3:.2f} mrad")
        sig_x2_cut = sig_x * truncnorm(-0.87e-3 / sig_x, 0.87e-3 / sig_x).std()
        L_win = 2.945 - 2.411
        sig_beta = np.sqrt((R11 * sig_x2_cut) ** 2 + (R12 * sig_xp) ** 2 + (L_win * theta0) ** 2)
        print(f"SLTB2 -> SLTB4: R11 = {R11:.4f}, R12 = {R12:.3f} m, D = {D:.4f} m; "
              f"sigma_beta at SLTB4 = {sig_beta * 1e3:.2f} mm")
        w = np.array(GAPS4) * 1e-3
        closed = pd.DataFrame({"sltb4_mm": GAPS4,
                               "closed_form": np.sqrt(w**2 / 12 + sig_beta**2) / D,
                               "flat_top": w / (np.sqrt(12) * D)})
        """
    ),
    code(
        """
        cmp = eng.merge(mc, on=["sltb4_mm", "sltb5_mm"]).merge(closed, on="sltb4_mm")
        cmp["ratio_mc"] = cmp.rel_spread_rms / cmp.mc_rel_spread_rms
        cmp["stat_rel"] = np.sqrt(1 / (2 * cmp.n_transmitted) + 1 / (2 * cmp.mc_n))
        cmp["ratio_closed"] = cmp.rel_spread_rms / cmp.closed_form
        cmp["ratio_flat_top"] = cmp.rel_spread_rms / cmp.flat_top
        cmp["ratio_transmission"] = cmp.transmission / cmp.mc_transmission
        show = ["sltb4_mm", "sltb5_mm", "n_transmitted", "transmission", "mc_transmission",
                "rel_spread_rms", "mc_rel_spread_rms", "ratio_mc", "stat_rel", "closed_form",
                "ratio_closed", "flat_top"]
        cmp[show].round(5)
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
        ax = axes[0]
        for g5, col in zip(GAPS5, ("C0", "C1")):
            c = cmp[cmp.sltb5_mm == g5]
            err = c.rel_spread_rms * np.sqrt(1 / (2 * c.n_transmitted))
            ax.errorbar(c.sltb4_mm, 100 * c.rel_spread_rms, 100 * err, fmt="o", color=col,
                        label=f"engine (xtrack), SLTB5 {g5:g} mm")
            ax.plot(c.sltb4_mm, 100 * c.mc_rel_spread_rms, "-", color=col,
                    label=f"linear MC on MAD-X maps, SLTB5 {g5:g} mm")
        ax.plot(closed.sltb4_mm, 100 * closed.closed_form, "k--", label="closed form (SLTB5 open)")
        ax.plot(closed.sltb4_mm, 100 * closed.flat_top, "k:", label="flat top w/(√12 D)")
        ax.axhline(0.25, color="r", lw=1)
        ax.axhspan(0.20, 0.30, color="r", alpha=0.1, label="published BES 0.25 ± 0.05 % (≤ 0.25 %)")
        ax.axvline(1.9, color="0.5", ls=":", lw=1)
        ax.text(1.95, 0.02, "Run III SLTB4", fontsize=8, color="0.4")
        ax.set_xscale("log")
        ax.set_xlabel("SLTB4 full gap [mm] (SLTB2 1.74, SLTB3 4.2 mm)")
        ax.set_ylabel("rms relative energy spread [%]")
        ax.set_title(f"selected spread at {E0} MeV")
        ax.legend(fontsize=7)
        ax = axes[1]
        for g5, col in zip(GAPS5, ("C0", "C1")):
            c = cmp[cmp.sltb5_mm == g5]
            ax.plot(c.sltb4_mm, c.transmission, "o", color=col, label=f"engine, SLTB5 {g5:g} mm")
            ax.plot(c.sltb4_mm, c.mc_transmission, "-", color=col, label=f"linear MC, SLTB5 {g5:g} mm")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("SLTB4 full gap [mm]")
        ax.set_ylabel("transmission (of the LINAC beam)")
        ax.set_title("transmission")
        ax.legend(fontsize=7)
        save(fig, "02_spread_vs_sltb4.png")
        plt.show()
        """
    ),
    code(
        """
        # 1. engine vs linear MC on MAD-X maps: 3 sigma statistics + 1 % (first order, fixed apertures)
        bad = cmp[np.abs(cmp.ratio_mc - 1) > 3 * cmp.stat_rel + 0.01]
        assert bad.empty, bad[show]
        # transmission: the MC ignores the fixed apertures (pipes, splitter): engine <= MC, within 5 %
        assert (np.abs(cmp.ratio_transmission - 1) < 0.05).all(), cmp.ratio_transmission
        # 2. closed form (SLTB5 open) within 15 %; the flat-top estimate fails for narrow gaps
        open5 = cmp[cmp.sltb5_mm == 53.0]
        assert (np.abs(open5.ratio_closed - 1) < 0.15).all(), open5.ratio_closed
        narrow = open5[open5.sltb4_mm <= 1.0]
        assert (narrow.flat_top < 0.25 * narrow.rel_spread_rms).all()
        # 3. Run III settings against the published bound
        run3 = cmp[(cmp.sltb4_mm == 1.9) & (cmp.sltb5_mm == 5.0)].iloc[0]
        err = run3.rel_spread_rms * run3.stat_rel
        print(f"Run III slits: rms spread {100 * run3.rel_spread_rms:.3f} ± {100 * err:.3f} % "
              f"(FWHM/2.355 = {100 * run3.rel_spread_fwhm / 2.355:.3f} %), transmission "
              f"{run3.transmission:.4f} -> {run3.transmission * beam.positrons_per_bunch:.0f} e+/bunch "
              f"of {beam.positrons_per_bunch:.1e}; published BES <= 0.25 %")
        assert run3.rel_spread_rms <= 0.0025
        print("largest |engine/MC - 1| =", round(float(np.abs(cmp.ratio_mc - 1).max()), 4),
              "| closed form:", round(float(np.abs(open5.ratio_closed - 1).max()), 4))
        """
    ),
    md(
        """
        ## What the narrow-gap spread depends on: the assumed beam divergence and the window

        `spread.spread_sensitivity` re-runs the engine at the Run III gaps (SLTB5 open) with the
        waist divergence scaled (size kept) and the Mylar thickness scaled (0 = no window
        scattering). The closed form above, with σ_x′ and θ₀ rescaled the same way, must follow.
        """
    ),
    code(
        """
        from beamline.apertures import Jaws

        setting = {"SLTB2": Jaws.centred(1.74), "SLTB3": Jaws.centred(4.2),
                   "SLTB4": Jaws.centred(1.9), "SLTB5": Jaws.centred(53.0)}
        sens = spread.spread_sensitivity(E0, setting, settings="run3_2022",
                                         divergence_scales=(0.5, 1.0, 1.5, 2.0),
                                         window_thickness_scales=(0.0, 1.0, 2.0),
                                         n_particles=400_000, seed=3)


        def highland(thickness_m):
            if thickness_m == 0:
                return 0.0
            xx = thickness_m / 0.287
            return 13.6 / (beta * p_mev) * np.sqrt(xx) * (1 + 0.088 * np.log10(xx / beta**2))


        def closed_sigma(div_scale, win_scale, gap_mm=1.9):
            sb2 = ((R11 * sig_x2_cut) ** 2 + (R12 * div_scale * sig_xp) ** 2
                   + (L_win * highland(win_scale * 125e-6)) ** 2)
            return np.sqrt((gap_mm * 1e-3) ** 2 / 12 + sb2) / D


        sens["closed_form"] = [closed_sigma(f, w) for f, w in
                               zip(sens.divergence_scale, sens.window_thickness_scale)]
        sens["ratio"] = sens.rel_spread_rms / sens.closed_form
        display(sens.round(5))
        assert (np.abs(sens.ratio - 1) < 0.10).all(), sens.ratio
        # divergence at which the selected spread would reach the published 0.25 % (closed form)
        from scipy.optimize import brentq

        f_025 = brentq(lambda f: closed_sigma(f, 1.0) - 0.0025, 0.5, 5.0)
        print(f"0.25 % rms would need a divergence of {f_025 * sig_xp * 1e3:.2f} mrad at SLTB2 "
              f"(assumed {sig_xp * 1e3:.2f} mrad); the window adds only "
              f"{100 * (closed_sigma(1, 1) - closed_sigma(1, 0)):.4f} % (absolute)")

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        d = sens[sens.variant == "divergence"]
        f_grid = np.linspace(0.3, 2.5, 50)
        axes[0].plot(d.divergence_scale * sig_xp * 1e3, 100 * d.rel_spread_rms, "o", label="engine")
        axes[0].plot(f_grid * sig_xp * 1e3, [100 * closed_sigma(f, 1.0) for f in f_grid], "k--",
                     label="closed form")
        axes[0].axhline(0.25, color="r", lw=1, label="published BES 0.25 %")
        axes[0].set_xlabel("rms divergence at the SLTB2 waist [mrad]")
        axes[0].set_ylabel("rms relative spread [%]")
        axes[0].legend(fontsize=8)
        w = sens[sens.variant == "window"]
        axes[1].plot(w.window_thickness_scale * 125, 100 * w.rel_spread_rms, "o", label="engine")
        axes[1].plot(w.window_thickness_scale * 125, 100 * w.closed_form, "k--", label="closed form")
        axes[1].set_xlabel("Mylar window thickness [µm]")
        axes[1].set_ylabel("rms relative spread [%]")
        axes[1].legend(fontsize=8)
        fig.suptitle("SLTB2 1.74 / SLTB3 4.2 / SLTB4 1.9 mm, SLTB5 open")
        save(fig, "02_spread_assumptions.png")
        plt.show()
        """
    ),
    md(
        """
        **Result.** The engine agrees with an independent first-order Monte Carlo on MAD-X maps
        within statistics for every SLTB4 gap and both SLTB5 settings, and with the closed form
        within 15 %. For gaps below ~3 mm the spread no longer shrinks with the gap: it is set by
        the betatron blur at SLTB4 (σ_β ≈ 2.4 mm from the 1 mrad divergence at SLTB2 and the
        window scattering), which is why the flat-top estimate fails there; it scales with the
        assumed divergence (the published 0.25 % would correspond to ≈ 1.7 mrad instead of the
        assumed 1 mrad) and hardly with the window. At the Run III
        settings the model gives ≈ 0.13 % rms, inside the published bound BES ≤ 0.25 % (the
        analysis used 0.25 ± 0.05 % as a conservative Gaussian σ). Transmission ~0.6 % of the
        LINAC beam; the absolute value depends on the assumed upstream beam.
        """
    ),
    code(FOOTER),
]


# --------------------------------------------------------------------------------------
# 03 energy scale
# --------------------------------------------------------------------------------------
NB03 = [
    md(
        r"""
        # 03 · Energy scale: DHSTB01 current and Hall field → beam energy, uncertainties, hysteresis

        **Claim.** `beamline.energy` / `scanplan.calib` turn a DHSTB01 set current or Hall-probe
        readback into the total beam energy (and √s) exactly as the published relations do,
        carry a sensible uncertainty, and handle the history dependence of the field:

        1. design chain, scale `none`: E(I) equals the BTF spreadsheet fit
           **E_BTF = 1.56827918 · I + 1.49737969 MeV** (facts §3 [C]);
        2. Hall-probe chain, scale `padme_run3_v1`: E(B) equals the 2022 analysis relation
           **E = 0.0551318 · B_Hall − 2.00 MeV** (facts §3 [M]);
        3. the per-pass Hall fits stored in `lattices/calibrations` are the published ones; they
           read **29–48 G above** the nominal curve over the on-resonance currents and differ by
           **≈ 10 G ≈ 0.55 MeV (0.2 %)** between passes at equal current;
        4. the 2022 current range **130.7–190.1 A** maps onto **206–300 MeV** (slope ≈ 1.565 MeV/A),
           and a **0.75 MeV** step is **≈ 13.6 G ≈ 0.48 A**;
        5. from a current alone the energy is uncertain at the 0.1–0.2 % level (hysteresis),
           from a field readback it is not (facts §3: "the field readback is" the reference);
        6. the hysteresis history of a 2022-like pass sequence is classified per step, and the
           recommended set-current sequence approaches **every** set point from the same side.

        **References.** Numbers typed from the facts file (§3, §4), the definition
        √s = √(2m_e² + 2m_e E); nothing is compared with earlier output of the tool.

        **Falsified if** (1) or (2) differ by more than 1 keV (the tool uses E = √(p² + m²),
        the published relations take p for E: m²/(2p) < 1 keV), a stored fit differs from the
        facts, the mean Hall curves leave the 29–48 G band, the typical pass-to-pass difference
        leaves 5–15 G, the 2022 range end points move by more than the 1.5 MeV absolute-scale
        sigma, the slope by more than 1 %, the step size by more than 0.01 A, or the recommended
        sequence approaches a set point from below.
        """
    ),
    code(SETUP),
    code(
        """
        from beamline import calibration as cal
        from beamline import energy as be
        from beamline.constants import ELECTRON_MASS_MEV
        from scanplan import calib

        currents = np.linspace(130.7, 190.1, 61)
        nominal = calib.energies_from_currents(currents, calibration="btf_nominal_v1", scale="none")
        e_tool = np.array([e.energy_mev for e in nominal])
        e_facts = 1.56827918 * currents + 1.49737969          # facts §3, BTF spreadsheet
        dev1 = e_tool - e_facts
        print(f"design chain: max |E_tool - E_BTF| = {np.abs(dev1).max() * 1e3:.3f} keV; "
              f"m_e^2/(2p) at 206 MeV = {ELECTRON_MASS_MEV**2 / (2 * 206) * 1e3:.3f} keV")
        assert np.abs(dev1).max() < 1e-3

        fields = np.linspace(3800.0, 5450.0, 61)               # Hall readbacks [G], 2022 range
        from_field = calib.energies_from_fields(fields, scale="padme_run3_v1")
        e_field = np.array([e.energy_mev for e in from_field])
        dev2 = e_field - (0.0551318 * fields - 2.00)            # facts §3, 2022 analysis
        print(f"Hall chain:   max |E_tool - (0.0551318 B - 2.00)| = {np.abs(dev2).max() * 1e3:.3f} keV")
        assert np.abs(dev2).max() < 1e-3
        print("scale used:", from_field[0].scale, "| calibration:", from_field[0].calibration)
        """
    ),
    md(
        """
        ## Per-pass Hall-probe fits (facts §3) and the history dependence
        """
    ),
    code(
        """
        FACTS_FITS = {  # B[G] = offset + slope * I[A], facts §3 [M]
            "run3_pass1_desc": (72.0, 28.384),
            "run3_offres_block": (90.6, 28.260),
            "run3_pass2_desc": (192.6, 27.762),
            "run3_pass3_asc": (58.8, 28.519),
        }
        stored = cal.dipole_calibrations().calibrations
        for name, (off, slope) in FACTS_FITS.items():
            c = stored[name]
            assert (c.offset, c.slope) == (off, slope), (name, c.offset, c.slope)
            print(f"{name:18s} B = {c.offset:6.1f} + {c.slope:.3f} I   branch {c.branch}, "
                  f"valid {c.valid_current_a} A")

        nominal_g = 27.16 + 28.446 * currents                  # facts §3 [C]
        # on-resonance currents of 2022 (262.2-300.1 MeV on the descending Hall calibration)
        lo_a = be.current_for_energy(262.2, branch="descending").current_a
        hi_a = be.current_for_energy(300.1, branch="descending", extrapolate=True).current_a
        on = (currents >= lo_a) & (currents <= hi_a)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
        ax = axes[0]
        for name in (*FACTS_FITS, "run3_desc_mean_v1", "run3_all_mean_v1"):
            c = stored[name]
            style = "--" if "mean" in name else "-"
            ax.plot(currents, c.value(currents) - nominal_g, style, label=name)
        ax.axhspan(29, 48, color="0.9", label="facts: 29-48 G above nominal")
        ax.set_xlabel("DHSTB01 current [A]")
        ax.set_ylabel("B_Hall - B_nominal [G]")
        ax.set_title("Hall probe vs BTF nominal excitation")
        ax.legend(fontsize=7)

        fits = np.array([stored[n].value(currents) for n in FACTS_FITS])
        spread_g = fits.max(axis=0) - fits.min(axis=0)
        # typical difference between two passes at equal current: mean |B_i - B_j| over pairs
        pairs = [(i, j) for i in range(len(fits)) for j in range(i + 1, len(fits))]
        pair_g = np.mean([np.abs(fits[i] - fits[j]) for i, j in pairs], axis=0)
        ax = axes[1]
        ax.plot(currents, spread_g, label="max - min of the 4 pass fits")
        ax.plot(currents, pair_g, label="mean |difference| between two passes")
        ax.axhline(10.0, color="k", ls=":", label="facts: about 10 G")
        ax.set_xlabel("DHSTB01 current [A]")
        ax.set_ylabel("field spread at equal current [G]")
        ax2 = ax.secondary_yaxis("right", functions=(lambda g: 0.0551318 * g, lambda e: e / 0.0551318))
        ax2.set_ylabel("[MeV]")
        ax.legend(fontsize=8)
        for a in axes:
            a.axvspan(lo_a, hi_a, color="C2", alpha=0.08, lw=0)
            a.text(lo_a + 0.5, a.get_ylim()[1], " on-resonance 262-300 MeV", va="top", fontsize=7)
        save(fig, "03_hall_fits.png")
        plt.show()
        """
    ),
    code(
        """
        for name in ("run3_desc_mean_v1", "run3_all_mean_v1"):
            diff = stored[name].value(currents[on]) - nominal_g[on]
            print(f"{name}: {diff.min():.1f} .. {diff.max():.1f} G above nominal over {lo_a:.1f}-{hi_a:.1f} A")
            assert 29 <= diff.min() and diff.max() <= 48
        p_on = pair_g[on]
        print(f"pass-to-pass difference {p_on.min():.1f} .. {p_on.max():.1f} G "
              f"= {0.0551318 * p_on.min():.2f} .. {0.0551318 * p_on.max():.2f} MeV "
              f"({0.0551318 * p_on.mean() / 282 * 100:.2f} % at 282 MeV); "
              f"extreme passes {spread_g[on].max():.1f} G apart")
        assert 5 <= p_on.min() and p_on.max() <= 15, "not 'about 10 G'"
        """
    ),
    md(
        """
        ## The 2022 current range, slope and step size (facts §3, §4)
        """
    ),
    code(
        """
        e_lo = be.energy_from_current(130.7, branch="descending")
        e_hi = be.energy_from_current(190.1, branch="descending")
        slope = (e_hi.energy_mev - e_lo.energy_mev) / (190.1 - 130.7)
        a = be.current_for_energy(282.0, branch="descending")
        b = be.current_for_energy(282.75, branch="descending")
        table = pd.DataFrame([
            {"quantity": "E at 130.7 A [MeV]", "tool": e_lo.energy_mev, "facts": 206.6, "tolerance": 1.5},
            {"quantity": "E at 190.1 A [MeV]", "tool": e_hi.energy_mev, "facts": 300.1, "tolerance": 1.5},
            {"quantity": "slope [MeV/A]", "tool": slope, "facts": 1.565, "tolerance": 0.01 * 1.565},
            {"quantity": "0.75 MeV step [G]", "tool": b.field_g - a.field_g, "facts": 13.6, "tolerance": 0.1},
            {"quantity": "0.75 MeV step [A]", "tool": b.current_a - a.current_a, "facts": 0.48, "tolerance": 0.01},
        ])
        table["diff"] = table.tool - table.facts
        print(table.to_string(index=False))
        print("sigma of E at 130.7 A:", round(e_lo.sigma_energy_mev, 3), "MeV, calibration", e_lo.calibration)
        assert (table["diff"].abs() <= table.tolerance).all()
        """
    ),
    md(
        """
        ## Uncertainty budget at the M = 17 MeV resonance (E_res = 282.27 MeV)

        From a **set current** the field is known only up to the hysteresis of the branch
        (σ 5 G on a known branch, 10 G when the approach side is unknown); from a **Hall
        readback** only the probe resolution remains. The absolute scale (−2.00 MeV of
        unknown origin, facts: energy known to 1–2 MeV) is common to all points of a scan.
        """
    ),
    code(
        """
        from beamline.kinematics import resonance_energy_mev

        e_res = resonance_energy_mev(17.0)
        i_res = be.current_for_energy(e_res, branch="descending").current_a
        b_res = be.current_for_energy(e_res, branch="descending").field_g
        cases = {
            "current, known branch": be.energy_from_current(i_res, branch="descending"),
            "current, branch unknown": be.energy_from_current(i_res, branch=None),
            "Hall readback": be.energy_from_field(b_res),
        }
        budget = pd.DataFrame({k: v.sigma_contributions_mev for k, v in cases.items()}).T
        budget["total"] = [v.sigma_energy_mev for v in cases.values()]
        budget["point_to_point"] = np.sqrt(budget.total**2 - budget.absolute_scale**2)
        budget["point_to_point_%"] = 100 * budget.point_to_point / e_res
        budget["sigma_sqrt_s_keV"] = [1e3 * v.sigma_sqrt_s_mev for v in cases.values()]
        print(f"E_res(17 MeV) = {e_res:.2f} MeV at {i_res:.2f} A / {b_res:.1f} G (descending)")
        display(budget.round(4))

        fig, ax = plt.subplots(figsize=(8, 3))
        left = np.zeros(len(budget))
        for key in ("hysteresis", "calibration_scatter", "readback_resolution", "scale_fit_rms"):
            ax.barh(budget.index, budget[key] ** 2, left=left, label=key)
            left += budget[key] ** 2
        ax.set_xlabel("variance contribution [MeV$^2$] (absolute scale 1.5 MeV not shown)")
        ax.set_title(f"point-to-point energy uncertainty at {e_res:.1f} MeV")
        ax.legend(fontsize=8)
        save(fig, "03_sigma_budget.png")
        plt.show()
        """
    ),
    code(
        """
        hyst_unknown = budget.loc["current, branch unknown", "hysteresis"]
        # facts: 10 G between passes ~ 0.55 MeV ~ 0.2 %
        assert abs(hyst_unknown - 0.0551318 * 10.0) < 0.02, hyst_unknown
        assert budget.loc["Hall readback", "point_to_point_%"] < 0.05
        assert budget.loc["current, branch unknown", "point_to_point_%"] >= 0.19
        assert (budget.loc["Hall readback", "point_to_point"]
                < budget.loc["current, known branch", "point_to_point"]
                < budget.loc["current, branch unknown", "point_to_point"])
        """
    ),
    md(
        """
        ## Hysteresis history of a 2022-like scan

        Pass 1 descending in 1.5 MeV steps, pass 2 descending interleaved half-way (the magnet
        must go **up** to start it), pass 3 an ascending extension below the range. The tool
        classifies every step and recommends standardisation plus overshoots. Independent
        check (facts §3: "approach each set point from the same side"): in the recommended
        sequence every scan set point is reached from above.
        """
    ),
    code(
        """
        pass1 = np.arange(300.0, 269.9, -1.5)
        pass2 = np.arange(299.25, 270.0, -1.5)
        pass3 = np.arange(262.5, 269.0, 1.5)
        energies = np.concatenate([pass1, pass2, pass3])
        labels = ["pass 1"] * len(pass1) + ["pass 2"] * len(pass2) + ["pass 3 (asc)"] * len(pass3)
        set_a = [be.current_for_energy(e, branch="descending", extrapolate=True).current_a
                 for e in energies]
        hist = calib.scan_history(set_a, standardised=True)
        steps = pd.DataFrame([{"pass": lab, "E_mev": e, "current_a": s.current_a,
                               "branch": s.branch or "unknown", "field_offset_g": s.field_offset_g,
                               "sigma_field_g": s.sigma_field_g,
                               "overshoot_a": s.approach_currents_a[0] if len(s.approach_currents_a) > 1 else np.nan}
                              for lab, e, s in zip(labels, energies, hist.steps)])
        print(hist.recommendation)
        print(steps.groupby(["pass", "branch"]).size().rename("steps"))
        print(f"{len(hist.warnings)} warnings, e.g. {hist.warnings[:1]}")
        """
    ),
    code(
        """
        seq = np.array(hist.recommended_sequence_a)
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.plot(np.arange(len(seq)), seq, "-", color="0.6", lw=0.8, label="recommended set-current sequence")
        idx = 0
        xs, colours = [], []
        for s in hist.steps:
            idx += len(s.approach_currents_a)
            xs.append(idx - 1)
        xs = np.array(xs)
        for br, col in (("descending", "C0"), ("ascending", "C3")):
            m = steps.branch.to_numpy() == br
            ax.plot(xs[m], steps.current_a[m], "o", color=col, ms=4, label=f"scan point, naive order: {br}")
        over = [i for i, s in zip(xs, hist.steps) if len(s.approach_currents_a) > 1]
        ax.plot(np.array(over) - 1, seq[np.array(over) - 1], "v", color="k", label="overshoot")
        ax.set_xlabel("set-current command #")
        ax.set_ylabel("DHSTB01 current [A]")
        ax.set_title("2022-like pass sequence: branch per step and approach recipe")
        ax.legend(fontsize=8)
        save(fig, "03_hysteresis_history.png")
        plt.show()
        """
    ),
    code(
        """
        # independent check: in the recommended sequence every scan point is approached from above
        prev = hist.standardisation_current_a
        approached_from = []
        for s in hist.steps:
            for c in s.approach_currents_a:
                if c == s.current_a:
                    approached_from.append("above" if prev > c else "below")
                prev = c
        assert set(approached_from) == {"above"}, approached_from
        naive_up = steps.index[steps.branch == "ascending"].tolist()
        print(f"naive order approaches {len(naive_up)} points from below (start of pass 2 and all of "
              f"pass 3); the recommendation overshoots at each of them: "
              f"{steps.overshoot_a.notna().sum()} overshoots")
        assert steps.overshoot_a.notna().sum() == len(naive_up)
        assert steps.loc[len(pass1), "branch"] == "ascending"          # start of pass 2
        assert (steps.loc[: len(pass1) - 1, "branch"] == "descending").all()
        """
    ),
    md(
        """
        **Result.** Both published energy relations are reproduced to < 1 keV; the stored Hall
        fits are the published ones; the 2022 current range, slope and step size agree with
        the facts within the stated tolerances; the hysteresis sigma of an unknown branch is
        the facts' 0.55 MeV (0.2 %), which is why the checker uses the Hall readback and the
        planner approaches every point from above.
        """
    ),
    code(FOOTER),
]

# --------------------------------------------------------------------------------------
# 04 plan around M = 16.88 MeV
# --------------------------------------------------------------------------------------
NB04 = [
    md(
        r"""
        # 04 · Planning a new scan around M = 16.88 MeV, compared with a 2022-like plan

        **Claim.** The planner (`scanplan.planner.plan_scan`) turns a mass window into a scan
        that obeys the physics and the facts, and the sensitivity module
        (`scanplan.sensitivity`) gives the expected reach of each plan:

        1. kinematics: E_res = (M² − 2m_e²)/(2m_e) — M = 17.0 MeV ↔ **282.27 MeV** (facts §5);
           the new plan spans exactly E_res(16.73) … E_res(17.03) (M = 16.88 ± 3 × 0.05 MeV);
        2. spacing: the combined spacing is **below half the FWHM** of the expected line shape
           (Voigt of σ = BES · E_res, BES = 0.25 %, and the Lorentzian w_L = 1.72 MeV; facts §4–5),
           the FWHM computed here independently with `scipy.special.voigt_profile`;
        3. a 2022-like request reproduces the published scan: **52 points** (47 on resonance over
           262.2–300.1 MeV, 5 controls at 206.6–212.7 MeV), 7.6·10⁹ POT and **20–25 h** per point;
        4. the expected 90 % CL CLs limit on g agrees within 2 % with an independent
           Gaussian (Fisher) estimate built here from the facts-file numbers (Y = 13.56 MeV,
           w_L, BES, ε(E), background/POT, 0.3 % ⊕ 0.3 % per point), and the 2022-like limit lies
           inside the 2022 analysis coupling grid 1–8·10⁻⁴.

        **Result to look at:** points, beam time and expected limit at 16.88 MeV of the new plan
        versus the 2022-like one, at equal POT per point and at equal total beam time.

        **Falsified if** any of the numbered checks fails (assert cells below).
        """
    ),
    code(SETUP),
    code(
        """
        from scipy import constants
        from scipy.optimize import brentq
        from scipy.special import ndtri, voigt_profile

        from scanplan import sensitivity as sens
        from scanplan.planner import PlanRequest, plan_calendar, plan_scan, validate_plan

        # independent kinematics (CODATA electron mass straight from scipy)
        ME = constants.physical_constants["electron mass energy equivalent in MeV"][0]


        def e_res(mass_mev):
            return (mass_mev**2 - 2 * ME**2) / (2 * ME)


        M0, DM = 16.88, 0.05                       # facts §5: M = 16.88 +- 0.05 MeV
        window = (round(M0 - 3 * DM, 6), round(M0 + 3 * DM, 6))
        print(f"E_res(17.00) = {e_res(17.0):.2f} MeV (facts: 282.27); "
              f"E_res(16.88) = {e_res(M0):.2f} MeV; window {window} MeV -> "
              f"{e_res(window[0]):.2f}..{e_res(window[1]):.2f} MeV")
        assert abs(e_res(17.0) - 282.27) < 0.01
        """
    ),
    md(
        """
        ## The plans

        * **2022-like**: 262.2–300.1 MeV, 47 on-resonance points (combined step 37.9/46 MeV), two
          interleaved descending passes, the 5 published control energies 206.6–212.7 MeV,
          default 7.6·10⁹ POT per point (the 2022 mean). The top point needs 190.55 A, just
          above the 190.1 A covered by the 2022 Hall data: extrapolation is allowed explicitly.
        * **new, same POT/point**: M = 16.73–17.03 MeV, 0.75 MeV combined step (the 2022 spacing),
          two descending passes, default control block below.
        * **new, same budget**: the same points sharing the total beam time of the 2022-like plan.
        """
    ),
    code(
        """
        CONTROL_2022 = tuple(np.linspace(206.6, 212.7, 5))
        p22 = plan_scan(PlanRequest(energy_range_mev=(262.2, 300.1), step_mev=37.9 / 46,
                                    control_energies_mev=CONTROL_2022, extrapolate=True,
                                    name="2022-like"))
        p_new = plan_scan(PlanRequest(mass_range_mev=window, step_mev=0.75, name="new, same POT/point"))
        p_budget = plan_scan(PlanRequest(mass_range_mev=window, step_mev=0.75,
                                         budget_hours=p22.inputs["total_hours"],
                                         name="new, same budget"))
        plans = [p22, p_new, p_budget]


        def summary(plan):
            on = [p for p in plan.points if p.kind == "on_resonance"]
            ctl = [p for p in plan.points if p.kind == "control"]
            return {"plan": plan.name, "points": len(plan.points), "on_resonance": len(on),
                    "control": len(ctl),
                    "E_on_min": min(p.e_beam_mev for p in on), "E_on_max": max(p.e_beam_mev for p in on),
                    "sqrt_s_min": min(p.sqrt_s_mev for p in on), "sqrt_s_max": max(p.sqrt_s_mev for p in on),
                    "combined_step_mev": plan.inputs["combined_step_mev"],
                    "rule_max_step_mev": 0.5 * plan.inputs["rule_width_mev"],
                    "POT_per_point": np.mean([p.target_pot for p in plan.points]),
                    "h_per_point": np.mean([p.hours for p in plan.points]),
                    "total_h": plan.inputs["total_hours"],
                    "total_days": plan.inputs["total_hours"] / 24}


        table = pd.DataFrame([summary(p) for p in plans]).set_index("plan")
        display(table.T.round(3))
        for p in plans:
            errors = [q for q in validate_plan(p) if q.level == "error"]
            warnings = [q.message for q in validate_plan(p) if q.level == "warning"]
            print(f"{p.name}: {len(errors)} errors, warnings: {warnings}")
            assert not errors, errors
        """
    ),
    code(
        """
        # what the crew dials for the new plan (first rows), period order
        cols = ["period", "pass_index", "kind", "e_beam_mev", "sqrt_s_mev", "sigma_e_beam_mev",
                "dhstb01_current_a", "dhstb02_current_a", "target_pot", "expected_signal_ref"]
        new_rows = pd.DataFrame([p.model_dump() for p in p_new.points])[cols]
        cal_rows = pd.DataFrame([c.__dict__ for c in plan_calendar(p_new)])
        new_rows.merge(cal_rows[["period", "beam_start_h", "beam_end_h"]], on="period").round(3)
        """
    ),
    md(
        """
        ## Check 1–3: kinematics, spacing rule and the 2022 numbers
        """
    ),
    code(
        """
        # 1. kinematics: the new plan's range and every point's sqrt(s)
        lo, hi = p_new.inputs["e_beam_range_mev"]
        assert abs(lo - e_res(window[0])) < 1e-6 and abs(hi - e_res(window[1])) < 1e-6
        for p in p_new.points + p22.points:
            assert abs(p.sqrt_s_mev - np.sqrt(2 * ME**2 + 2 * ME * p.e_beam_mev)) < 1e-9


        # 2. spacing rule with an independent Voigt FWHM
        def voigt_fwhm(sigma, gamma):
            peak = voigt_profile(0.0, sigma, gamma)
            return 2 * brentq(lambda x: voigt_profile(x, sigma, gamma) - peak / 2, 0, 100)


        for plan, (e_lo, e_hi) in ((p_new, (lo, hi)), (p22, (262.2, 300.1))):
            fwhm = min(voigt_fwhm(0.0025 * e_lo, 1.72), voigt_fwhm(0.0025 * e_hi, 1.72))
            on_e = np.sort([p.e_beam_mev for p in plan.points if p.kind == "on_resonance"])
            max_gap = np.diff(on_e).max()
            print(f"{plan.name}: line FWHM {fwhm:.3f} MeV (planner {plan.inputs['rule_width_mev']:.3f}), "
                  f"largest gap {max_gap:.3f} MeV <= FWHM/2 = {fwhm / 2:.3f}")
            assert abs(plan.inputs["rule_width_mev"] - fwhm) < 1e-3 * fwhm
            assert max_gap <= 0.5 * fwhm + 1e-9

        # the 2022 spacing (~0.75 MeV combined) is half the FWHM of the Gaussian beam-spread line
        # alone (w_L = 0): the rule of facts §4 read without the electron-motion broadening
        half_gauss = 0.5 * 2 * np.sqrt(2 * np.log(2)) * 0.0025 * 262.2
        print(f"half the Gaussian-only FWHM at 262.2 MeV = {half_gauss:.3f} MeV (2022: ≈ 0.75 MeV)")
        assert abs(half_gauss - 0.75) < 0.05

        # 3. the 2022-like plan against the published scan (facts §4)
        r = table.loc["2022-like"]
        assert (r.points, r.on_resonance, r.control) == (52, 47, 5)
        assert abs(r.E_on_min - 262.2) < 1e-9 and abs(r.E_on_max - 300.1) < 1e-9
        assert abs(r.POT_per_point - 7.6e9) < 1e3 and 20 <= r.h_per_point <= 25
        ctl = sorted(p.e_beam_mev for p in p22.points if p.kind == "control")
        assert np.allclose(ctl, CONTROL_2022)
        print("2022-like plan:", int(r.points), "points,", round(r.h_per_point, 1), "h per point,",
              round(r.total_days, 1), "days of beam time (2022 scan: Oct 11 - Dec 21 = 71 days)")
        """
    ),
    md(
        """
        ## Check 4: expected sensitivity, tool vs an independent Gaussian estimate

        Independent estimate per mass M: s_i = POT_i ε(E_i) Y V(E_i − E_res; BES · E_res, w_L),
        b_i = POT_i · bkg(E_i), with ε and bkg interpolated linearly in the facts' nodes;
        Fisher information I = Σ s_i² / (b_i + (0.0042 b_i)²) and the median expected CLs limit
        μ_up ≈ Φ⁻¹(0.95)/√I (small-signal limit of the Asimov formula), g_up = √μ_up.
        """
    ),
    code(
        """
        NODES = [206.0, 213.0, 262.0, 300.0]                      # facts §5, as read in the data file
        EFF = [0.041, 0.045, 0.079, 0.100]
        BKG = [2.30e-6, 2.45e-6, 3.35e-6, 3.83e-6]


        def g_fisher(plan, masses):
            e = np.array([p.e_beam_mev for p in plan.points])
            pot = np.array([p.target_pot for p in plan.points])
            eff, bkg = np.interp(e, NODES, EFF), np.interp(e, NODES, BKG)
            out = []
            for m in masses:
                er = e_res(m)
                s = pot * eff * 13.56 * voigt_profile(e - er, 0.0025 * er, 1.72)
                b = pot * bkg
                info = np.sum(s**2 / (b + (np.hypot(0.003, 0.003) * b) ** 2))
                out.append(np.sqrt(ndtri(0.95) / np.sqrt(info)))
            return np.array(out)


        masses = np.linspace(16.2, 17.6, 141)
        limits = {p.name: sens.expected_limits(p, masses) for p in plans}
        check_m = np.linspace(16.5, 17.3, 9)
        ratios = {}
        for p in plans:
            tool = np.interp(check_m, masses, limits[p.name].g_median)
            ratios[p.name] = tool / g_fisher(p, check_m)
        ratio_table = pd.DataFrame(ratios, index=pd.Index(check_m, name="M [MeV]"))
        display(ratio_table.round(4))
        assert np.all(np.abs(ratio_table.to_numpy() - 1) < 0.02)

        at = {name: float(np.interp(M0, masses, lim.g_median)) for name, lim in limits.items()}
        g22_169 = float(np.interp(16.90, masses, limits["2022-like"].g_median))
        print(f"2022-like expected limit at 16.90 MeV: g < {g22_169:.2e} (coupling grid 1-8e-4)")
        assert 1e-4 <= g22_169 <= 8e-4
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        ax = axes[0]
        for plan, mk in ((p22, "o"), (p_new, "s")):
            pts = plan.points
            ax.scatter([p.period for p in pts], [p.e_beam_mev for p in pts], marker=mk, s=16,
                       c=[p.pass_index for p in pts], cmap="viridis", label=plan.name)
        ax.axhspan(e_res(M0 - DM), e_res(M0 + DM), color="C3", alpha=0.2, label="M = 16.88 ± 0.05 MeV")
        ax.set_xlabel("period (order taken)")
        ax.set_ylabel("E_beam [MeV] (colour: pass)")
        ax.legend(fontsize=8)
        ax.set_title("scan points")
        ax = axes[1]
        for (name, lim), col in zip(limits.items(), ("C0", "C1", "C2")):
            ax.plot(lim.masses_mev, lim.g_median * 1e4, color=col, label=f"{name}: g < {at[name]:.2e} at 16.88")
            ax.fill_between(lim.masses_mev, lim.g_minus1 * 1e4, lim.g_plus1 * 1e4, color=col, alpha=0.15)
        for p, col in zip(plans, ("C0", "C1", "C2")):
            ax.plot(check_m, g_fisher(p, check_m) * 1e4, "x", color=col)
        ax.axvspan(M0 - DM, M0 + DM, color="C3", alpha=0.15)
        ax.set_xlabel("M [MeV]")
        ax.set_ylabel("expected 90 % CL limit on g [1e-4]")
        ax.set_ylim(0, 12)
        ax.set_title("expected limits (bands ±1σ; × independent Fisher estimate)")
        ax.legend(fontsize=8)
        save(fig, "04_plans_and_limits.png")
        plt.show()
        """
    ),
    code(
        """
        result = table[["points", "on_resonance", "total_h", "total_days", "POT_per_point"]].copy()
        result["g_limit_at_16.88_1e-4"] = [1e4 * at[n] for n in result.index]
        result["g_limit_rel_2022"] = [at[n] / at["2022-like"] for n in result.index]
        result["beam_time_rel_2022"] = result.total_h / result.loc["2022-like", "total_h"]
        display(result.round(4))
        # the concentrated scan reaches further at 16.88 MeV with the same beam time ...
        assert at["new, same budget"] < at["2022-like"]
        # ... and matches the 2022 reach there with a fraction of the beam time
        assert at["new, same POT/point"] <= 1.05 * at["2022-like"]
        assert table.loc["new, same POT/point", "total_h"] < 0.5 * table.loc["2022-like", "total_h"]
        """
    ),
    md(
        """
        **Result.** The planner reproduces the 2022 scan shape from the facts (52 points,
        ≈ 21.5 h per point) and its spacing obeys the half-FWHM rule computed independently. A
        scan of M = 16.73–17.03 MeV at the 2022 spacing needs 20 points (15 on resonance + 5
        controls) and ≈ 38 % of the 2022 beam time for the same (3 % better) expected reach at
        16.88 MeV; with the full 2022 budget it lowers the expected limit on g there by ≈ 16 %
        (g < 2.8·10⁻⁴ instead of 3.35·10⁻⁴, 90 % CL, median expected). The tool's expected limits agree with the
        independent Fisher estimate to better than 2 %.
        """
    ),
    code(FOOTER),
]

# --------------------------------------------------------------------------------------
# 05 step check on the facility simulator
# --------------------------------------------------------------------------------------
NB05 = [
    md(
        r"""
        # 05 · Step check on the facility simulator, with injected faults

        A walkthrough of what the shift crew runs at every scan point
        (`scanplan check --plan plan.json --point N --watch`), on the virtual BTF
        (`scanplan.sim.SimFacility`: simulated power supplies publishing MG1 records into a real
        memcached, a Serval-style TimePix HTTP server whose beam position comes from the
        beam-line model, a PADME RunControl server), through the real adapters and the store.

        **Claim.**

        1. with the supplies at the plan's set points the verdict is **OK**, and the TimePix
           centroid agrees with the model prediction for the measured currents;
        2. a hidden DHSTB02 **field error** (as from hysteresis or a wrong calibration:
           `offset:DHSTB002=+0.5` A, readbacks unchanged) moves the spot at the TimePix by
           **−R16 · ε**, with R16(DHSTB02 → TimePix) = ρ(1 − cos θ) + L sin θ = 3.766 m
           (closed form, notebook 01) and ε = 28.446 G/A · ΔI / B(I) from the facts-file
           excitation — about 10.6 mm; the checker turns it into **FAIL**, because it exceeds
           3 × the x tolerance √(1² + (dx/dI · 0.05 A)² + stat²) mm computed here by hand;
        3. a supply **trip** (interlock) gives **FAIL** with the status reason and no beam on the
           TimePix; after the reset and a re-check the verdict is OK again;
        4. every reading and verdict is in the run-conditions store (SQLite), and the CLI prints
           the same verdict table with exit code 0 (OK/WARN) or 3 (FAIL);
        5. the guided run (`scanplan run`) starts the PADME run with a start-of-run tag that
           parses back to the plan hash, period and energy, and the run conditions export to
           `RunEnergy.txt` in the facts-file format `<run> <E_beam MeV>`.

        **References.** Closed-form sector-bend dispersion, the facts-file DHSTB excitation
        slope, the tolerance formula of `lattices/checks/tolerances.toml` evaluated here.

        **Falsified if** the spot shift differs from −R16 · ε by more than 3σ (statistical) + 3 %,
        or any verdict level differs from the expected one. The simulator's slew rate is raised
        to 50 A/s (the real supplies: ≈ 5 A/s) to keep the notebook fast.
        """
    ),
    code(SETUP),
    code(
        """
        import subprocess
        import sys

        from scanplan.check import Checker, CheckTolerances, connect
        from scanplan.planner import PlanRequest, plan_scan
        from scanplan.records import load_plan, save_plan
        from scanplan.sim import SimFacility
        from scanplan.store import SQLiteStore

        WORK = OUT / "05_work"
        WORK.mkdir(exist_ok=True)
        plan_path = WORK / "plan.json"
        store_path = WORK / "runs.sqlite"
        store_path.unlink(missing_ok=True)
        save_plan(plan_scan(PlanRequest(mass_range_mev=(16.73, 17.03), step_mev=0.75,
                                        name="X17 16.88 walkthrough")), plan_path)
        plan = load_plan(plan_path)            # hash-verified, as the crew's command does
        PERIOD = 3
        pt = plan.point(PERIOD)
        print(f"plan {plan.content_sha256[:12]}: point {PERIOD}: E = {pt.e_beam_mev:.3f} MeV, "
              f"sqrt(s) = {pt.sqrt_s_mev:.3f} MeV, DHSTB01 {pt.dhstb01_current_a:.3f} A, "
              f"DHSTB02 {pt.dhstb02_current_a:.3f} A")

        sim = SimFacility(psu_options={"slew_rate_a_per_s": 50.0}).start()
        addr = sim.addresses()
        print("virtual BTF:", addr.as_dict())
        tol = CheckTolerances.load()
        conn = connect(addr.memcached, addr.timepix_url, key_prefix=addr.key_prefix, tolerances=tol)
        store = SQLiteStore(store_path)
        checker = Checker(psu=conn.psu, spot=conn.spot, predictor=sim.predictor, store=store,
                          tolerances=tol)


        def ramp_to(element, current_a, timeout_s=20.0):
            # set a simulated supply and wait until its output reaches the set point
            sim.set_currents({element: current_a})
            t_end = time.monotonic() + timeout_s
            while time.monotonic() < t_end:
                out = sim.status()["supplies"][element]["output_current_a"]
                if abs(out - current_a) < 0.02:
                    return out
                time.sleep(0.05)
            raise TimeoutError(f"{element} did not reach {current_a} A")


        def table(verdict):
            rows = [{"quantity": c.name, "measured": c.measured, "expected": c.expected,
                     "diff": c.difference, "warn": c.warn, "fail": c.fail, "unit": c.unit,
                     "level": c.level} for c in verdict.comparisons]
            print(f"verdict {verdict.level} for point {verdict.period} in {verdict.elapsed_s:.2f} s")
            for r in verdict.reasons:
                print("  -", r)
            return pd.DataFrame(rows)
        """
    ),
    md(
        """
        ## Step 1: set the point and check (expected OK)

        The crew sets DHSTB001/DHSTB002 to the plan's currents (here: the simulator's own knob)
        and runs the check with `--watch`: it waits for the readbacks to settle, then compares
        status, set points, readbacks, record age, the energy from the DHSTB01 readback and the
        TimePix spot with the model.
        """
    ),
    code(
        """
        sim.set_currents({"DHSTB001": pt.dhstb01_current_a, "DHSTB002": pt.dhstb02_current_a})
        v_ok = checker.check(plan, PERIOD, watch=True)
        print("settle:", v_ok.settle)
        table(v_ok)
        """
    ),
    code(
        """
        assert v_ok.level == "OK", v_ok.reasons
        """
    ),
    md(
        """
        ## Step 2: hidden DHSTB02 field error of +0.5 A (expected FAIL on the TimePix x)

        Independent expectation: ε = ΔB/B with the facts-file excitation B = 27.16 + 28.446 I [G]
        of DHSTB02 and Δx = −R16 ε with the closed-form R16 of a 45° hard-edge sector bend
        followed by the 4.612 m drift to the TimePix.
        """
    ),
    code(
        """
        DI = 0.5
        sim.inject(f"offset:DHSTB002={DI}")
        time.sleep(0.3)                        # frames taken after the change
        v_off = checker.check(plan, PERIOD, watch=True)
        off_table = table(v_off)

        rho, th = 1.723, np.pi / 4
        L = 17.89 - (11.925 + rho * th)
        r16 = rho * (1 - np.cos(th)) + L * np.sin(th)
        i2 = v_ok.readings["DHSTB002"]["output_current_a"]
        eps = 28.446 * DI / (27.16 + 28.446 * i2)
        dx_expected = -1e3 * r16 * eps
        dx_measured = v_off.spot["x_mm"] - v_ok.spot["x_mm"]
        stat = np.hypot(v_ok.spot["sigma_x_mm"] / np.sqrt(v_ok.spot["hits_used"]),
                        v_off.spot["sigma_x_mm"] / np.sqrt(v_off.spot["hits_used"]))
        print(f"R16 = {r16:.4f} m, eps = {eps:.3e}: expected dx = {dx_expected:.2f} mm; "
              f"measured {dx_measured:.2f} ± {stat:.2f} mm")

        # the tolerance the checker should apply, by hand (tolerances.toml [spot])
        dxdi = 1e3 * r16 * 28.446 / (27.16 + 28.446 * i2)            # mm per A of DHSTB02
        tol_x = np.sqrt(tol.spot_alignment_mm**2 + (dxdi * tol.spot_current_sigma_a) ** 2
                        + (v_off.spot["sigma_x_mm"] / np.sqrt(v_off.spot["hits_used"])) ** 2)
        cx = v_off.comparison("TimePix x vs model (measured currents)")
        print(f"x tolerance by hand {tol_x:.3f} mm (checker {cx.warn:.3f}), FAIL beyond "
              f"{tol.spot_fail_factor * tol_x:.2f} mm; the smallest DHSTB02 error flagged: WARN "
              f"{tol_x / dxdi:.3f} A ({28.446 * tol_x / dxdi:.1f} G), FAIL "
              f"{tol.spot_fail_factor * tol_x / dxdi:.3f} A ({28.446 * tol.spot_fail_factor * tol_x / dxdi:.1f} G)")
        off_table
        """
    ),
    code(
        """
        assert abs(dx_measured - dx_expected) < 3 * stat + 0.03 * abs(dx_expected)
        assert abs(cx.warn - tol_x) < 0.01
        assert v_off.level == "FAIL" and cx.level == "FAIL"
        # the supplies themselves look perfect: only the beam tells
        assert all(c.level == "OK" for c in v_off.comparisons if c.name.startswith("DHSTB"))
        sim.clear()
        """
    ),
    md(
        """
        ## Step 3: DHSTB001 trips (expected FAIL: status and no beam), reset, re-check (OK)
        """
    ),
    code(
        """
        sim.inject("trip:DHSTB001")
        time.sleep(0.5)                        # the publisher runs at 10 Hz
        v_trip = checker.check(plan, PERIOD, watch=False)
        trip_table = table(v_trip)
        assert v_trip.level == "FAIL"
        status = v_trip.comparison("DHSTB001 status")
        assert status.level == "FAIL" and "INTERLOCK" in str(status.measured).upper()
        beam = [c for c in v_trip.comparisons if c.name.startswith("TimePix beam")]
        assert beam and all(c.level == "FAIL" for c in beam), beam

        sim.clear()                            # the crew's reset of the supply, then the
        ramp_to("DHSTB001", pt.dhstb01_current_a + 5.0)   # hysteresis recipe: 5 A above ...
        ramp_to("DHSTB001", pt.dhstb01_current_a)         # ... and approach from above
        v_back = checker.check(plan, PERIOD, watch=True)
        table(v_back)
        assert v_back.level == "OK", v_back.reasons
        trip_table
        """
    ),
    code(
        """
        spots = pd.DataFrame([
            {"check": name, "level": v.level, "x_mm": (v.spot or {}).get("x_mm"),
             "y_mm": (v.spot or {}).get("y_mm"), "hits": (v.spot or {}).get("hits_used")}
            for name, v in (("OK", v_ok), ("offset +0.5 A", v_off), ("trip", v_trip), ("after reset", v_back))
        ])
        pred = v_ok.comparison("TimePix x vs model (measured currents)").expected
        pred_y = v_ok.comparison("TimePix y vs model (measured currents)").expected
        tol_y = v_ok.comparison("TimePix y vs model (measured currents)").warn
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for k, (style, lab) in enumerate(((":", "WARN"), ("--", "FAIL"))):
            f = 1 if k == 0 else tol.spot_fail_factor
            ax.add_patch(plt.Rectangle((pred - f * tol_x, pred_y - f * tol_y), 2 * f * tol_x, 2 * f * tol_y,
                                       fill=False, ls=style, color="k", label=f"{lab} tolerance"))
        colours = {"OK": "C2", "WARN": "C1", "FAIL": "C3"}
        for _, r in spots.dropna(subset=["x_mm"]).iterrows():
            if r.hits < tol.spot_min_hits:
                continue
            ax.plot(r.x_mm, r.y_mm, "o", ms=9, color=colours[r.level], label=f"{r.check}: {r.level}")
        ax.plot(v_ok.spot["x_mm"] + dx_expected, v_ok.spot["y_mm"], "kx", ms=10,
                label="closed form: OK spot - R16 eps")
        ax.set_xlabel("TimePix x [mm]")
        ax.set_ylabel("TimePix y [mm]")
        ax.set_title(f"TimePix centroid per check, point {PERIOD} ({pt.e_beam_mev:.2f} MeV)")
        ax.set_aspect("equal")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        save(fig, "05_timepix_checks.png")
        plt.show()
        spots
        """
    ),
    md(
        """
        ## Step 4: the store and the command the crew types

        Every settle poll, reading and verdict was appended to the SQLite run-conditions store.
        The same check from the command line (addresses from the environment variables that
        `scanplan sim` prints) gives the table below and exit code 0 (OK/WARN) or 3 (FAIL).
        """
    ),
    code(
        """
        sha = plan.content_sha256
        events = pd.DataFrame([e.as_row() for e in store.history(plan_sha256=sha)])
        print(events.groupby("kind").size().rename("events").to_string())
        verdicts = store.history(plan_sha256=sha, kinds=["verdict"])
        levels = [e.payload["level"] for e in verdicts]
        print("verdict levels in the store:", levels)
        assert levels == ["OK", "FAIL", "FAIL", "OK"]

        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TERM")}
        env.update(addr.env(), COLUMNS="140", NO_COLOR="1")
        cmd = [sys.executable, "-m", "scanplan.cli.main", "check", "--plan", str(plan_path),
               "--point", str(PERIOD), "--watch", "--store", str(store_path)]
        print("$ scanplan check --plan plan.json --point", PERIOD, "--watch")
        cli = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        print(cli.stdout, cli.stderr)
        assert cli.returncode == 0
        """
    ),
    md(
        """
        ## Step 5: the guided run and the export of the run conditions

        `scanplan run --plan plan.json` does steps 1–4 for every open point and starts the PADME
        run through RunControl with the start-of-run tag; `--yes` confirms the prompts (only for
        the simulator), `--dwell-s 1` stops the run after one second. The tag that reached
        RunControl (and so the PadmeDAQ start-of-run comment) is parsed back here, and the
        `RunEnergy.txt` line of the run is exported from the store (facts §6:
        `<run> <E_beam MeV>`).
        """
    ),
    code(
        """
        import re

        from scanplan.exports.sor_tag import parse_sor_tag

        cmd = [sys.executable, "-m", "scanplan.cli.main", "run", "--plan", str(plan_path),
               "--periods", str(PERIOD), "--yes", "--dwell-s", "1", "--store", str(store_path),
               "--shift-crew", "notebook 05"]
        print("$ scanplan run --plan plan.json --periods", PERIOD, "--yes --dwell-s 1")
        guided = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        print("\\n".join(guided.stdout.splitlines()[-9:]), guided.stderr)
        assert guided.returncode == 0

        run = sim.facility.runcontrol.runs[-1]
        tag = parse_sor_tag(run.comment_start)
        print(f"RunControl run {run.number} ({run.status}): start-of-run comment {run.comment_start!r}")
        assert run.status == "END_OK"
        assert tag["period"] == PERIOD and plan.content_sha256.startswith(tag["plan_sha12"])
        assert abs(tag["e_beam_mev"] - pt.e_beam_mev) < 1e-3

        cmd = [sys.executable, "-m", "scanplan.cli.main", "export", str(plan_path), "-f", "runenergy",
               "--store", str(store_path), "--period", str(PERIOD)]
        exported = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        print("$ scanplan export plan.json -f runenergy --period", PERIOD)
        print(exported.stdout, exported.stderr)
        line = exported.stdout.strip().splitlines()[-1]
        m = re.fullmatch(r"(\\d+)\\s+(\\d+\\.\\d+)", line.strip())
        assert m and int(m.group(1)) == run.number and abs(float(m.group(2)) - pt.e_beam_mev) < 1e-3
        """
    ),
    code(
        """
        conn.close()
        sim.stop()
        """
    ),
    md(
        """
        **Result.** Through the real adapters (memcached MG1 records, Serval HTTP, SQLite store)
        the checker passes a correctly set point, and fails a hidden DHSTB02 field error of
        0.5 A (≈ 14 G): the spot moved by the closed-form −R16 ε ≈ −10.6 mm while every supply
        reading was perfect. By the tolerance formula a field error of ≈ 0.07 A (2 G) gives WARN
        and ≈ 0.21 A (6 G) FAIL — finer than the 10 G pass-to-pass hysteresis, so a magnet on
        the wrong branch is caught at the check. A trip fails on the status and the missing
        beam, and the point is OK again after the reset and the overshoot approach.
        """
    ),
    code(FOOTER),
]


NOTEBOOKS = {
    "01_optics_validation": NB01,
    "02_energy_spread": NB02,
    "03_energy_scale": NB03,
    "04_plan_x17_1688": NB04,
    "05_step_check_simulator": NB05,
}


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def main(argv: list[str]) -> int:
    NB_DIR.mkdir(exist_ok=True)
    wanted = [n for n in NOTEBOOKS if not argv or any(n.startswith(a) for a in argv)]
    for name in wanted:
        nb = build(NOTEBOOKS[name])
        nbformat.validate(nb)
        path = NB_DIR / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
