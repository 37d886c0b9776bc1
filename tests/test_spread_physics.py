"""Spread engine against independent references: one full xtrack pass, direct per-particle
evaluation, closed-form hard-edge optics (pencil beam and first-order thick beam), the
calibration (mis-set current) and the published 2022 spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from beamline import spread
from beamline.apertures import SLITS, Jaws
from beamline.constants import ELECTRON_MASS_MEV
from beamline.source import draw_deviates, initial_coordinates, load_source

# Closed-form geometry (facts 1): hard-edge 45 deg sector dipole, rho 1.723 m; facts s
# (0 at the DHSTB01 entrance); slits 35 mm long, centred at the listed s.
RHO_M = 1.723
THETA = math.pi / 4
ARC_M = RHO_M * THETA
S_SLTB4_M = 2.945
SLIT_L_M = 0.035
S_LINE_START_M = -2.712


def hard_edge_row(s_m: float) -> tuple[float, float, float]:
    """(R11, R12, R16) from the line start to facts position ``s_m`` downstream of the bend:
    drift, sector bend, drift (R16 = rho(1-cos th) + L sin th)."""
    l1 = 0.0 - S_LINE_START_M
    l2 = s_m - ARC_M
    c, s = math.cos(THETA), math.sin(THETA)
    m_bend = np.array([[c, RHO_M * s, RHO_M * (1 - c)], [-s / RHO_M, c, s], [0, 0, 1]])
    drift = lambda length: np.array([[1, length, 0], [0, 1, 0], [0, 0, 1]])  # noqa: E731
    m = drift(l2) @ m_bend @ drift(l1)
    return m[0, 0], m[0, 1], m[0, 2]


@pytest.fixture(scope="module")
def line():
    bl = spread.line_for(None)
    spread.configure_point(bl, spread.ScanPoint(282.5))
    return bl


@pytest.fixture(scope="module")
def planes(line):
    return {s: str(line.spec.slits[s.lower()]["plane"]) for s in SLITS}


def test_segmented_pass_equals_one_full_track(line):
    src = load_source(scattering=False)
    n = 4000
    c = initial_coordinates(src.beam, draw_deviates(5, 0, n, 0))
    rec = spread.track_particles(line, c)
    for slit in SLITS:
        line.set_gap(slit, float(line.spec.slits[slit.lower()]["max_gap_mm"]), 0.0)
    p = line.build_particles(**c)
    line.track(p)
    p.sort(interleave_lost_particles=True)
    alive = p.state > 0
    assert np.array_equal(alive, rec["alive"])
    assert alive.sum() > 100
    np.testing.assert_allclose(rec["x_timepix_m"][alive], p.x[alive], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["y_timepix_m"][alive], p.y[alive], rtol=0, atol=1e-12)


def test_engine_equals_direct_evaluation_of_the_records(line):
    """Pruning, chunking, the reused particle buffer and the class contraction change
    nothing: every row equals the direct per-particle evaluation (scattering on; energy loss
    off, which track_particles does not apply)."""
    src = load_source().with_energy_loss("off")
    n, seed = 30_000, 11
    grid = spread.make_grid(
        gaps_mm={"SLTB2": [1.74, 3.0], "SLTB4": [1.0, 1.9, 4.0]},
        jaws_mm={"SLTB5": [(-2.5, 2.5), (-1.0, 3.0)]},
    )
    res = spread.compute_spread(
        [282.5], grid=grid, source=src, n_particles=n, chunk_particles=7000, seed=seed,
        scheduler="sync",
    )  # fmt: skip
    spread.configure_point(line, spread.ScanPoint(282.5))
    dev = draw_deviates(seed, 0, n, len(src.layers))
    c = initial_coordinates(src.beam, dev)
    rec = spread.track_particles(line, c, source=src, kick_deviates=dev[5:])
    p0 = line.line.particle_ref.p0c[0] * 1e-6
    energy = np.sqrt((p0 * (1 + c["delta"])) ** 2 + ELECTRON_MASS_MEV**2)
    for _, row in res.table.iterrows():
        setting = {
            s: Jaws(row[f"{s.lower()}_negative_mm"], row[f"{s.lower()}_positive_mm"]) for s in SLITS
        }
        ok = spread.transmitted(rec, setting)
        assert row["n_transmitted"] == ok.sum() > 0
        e = energy[ok]
        assert row["mean_energy_mev"] == pytest.approx(e.mean(), rel=1e-12)
        assert row["rel_spread_rms"] == pytest.approx(e.std() / e.mean(), rel=1e-6)
        assert row["x_timepix_mm"] == pytest.approx(1e3 * rec["x_timepix_m"][ok].mean(), abs=1e-9)
        assert row["sigma_y_target_mm"] == pytest.approx(
            1e3 * rec["y_target_m"][ok].std(), rel=1e-6
        )


@pytest.mark.parametrize("gap_mm", [0.5, 1.9, 4.0])
def test_pencil_beam_pass_band_matches_hard_edge_dispersion(line, planes, gap_mm):
    delta = np.linspace(-0.01, 0.01, 20001)
    zero = np.zeros_like(delta)
    rec = spread.track_particles(
        line, {"x": zero, "px": zero, "y": zero, "py": zero, "delta": delta}
    )
    ok = spread.transmitted(rec, {"SLTB4": Jaws.centred(gap_mm)})
    lo, hi = delta[ok].min(), delta[ok].max()
    # both slit ends must hold the particle: the larger |R16| (exit) sets the window
    r16 = max(
        abs(hard_edge_row(S_SLTB4_M - SLIT_L_M / 2)[2]),
        abs(hard_edge_row(S_SLTB4_M + SLIT_L_M / 2)[2]),
    )
    edge = 0.5 * gap_mm * 1e-3 / r16
    assert lo == pytest.approx(-edge, abs=1e-4)
    assert hi == pytest.approx(edge, abs=1e-4)
    # one band, no holes (grid step 1e-6)
    assert ok.sum() == np.count_nonzero((delta >= lo) & (delta <= hi))


def first_order_sltb4(beam, gap_mm: float) -> tuple[float, float]:
    """First-order transmission through SLTB4 (entry and exit) and rms delta of the
    transmitted beam, by quadrature over delta and x0 with the x0' integral in closed form."""
    half = 0.5e-3 * gap_mm
    rows = [hard_edge_row(S_SLTB4_M - SLIT_L_M / 2), hard_edge_row(S_SLTB4_M + SLIT_L_M / 2)]
    sd, sx = beam.sigma_delta, math.sqrt(beam.emit_x_m * beam.betx_m)
    d = np.linspace(-6 * sd, 6 * sd, 1201)[:, None] + beam.delta_offset
    x0 = np.linspace(-6 * sx, 6 * sx, 401)[None, :]
    # x0' | x0 ~ N(-alpha/beta x0, eps/beta); the beam file has px = (1+d) x'
    mu = -beam.alfx / beam.betx_m * x0
    s = math.sqrt(beam.emit_x_m / beam.betx_m)
    lo = np.full(np.broadcast(d, x0).shape, -np.inf)
    hi = np.full_like(lo, np.inf)
    for r11, r12, r16 in rows:
        # |r11 x0 + r12 x0'(1+d)/(1+d) + r16 d| <= half, first order: x = r11 x0 + r12 x0' + r16 d
        a = (-half - r11 * x0 - r16 * d) / r12
        b = (half - r11 * x0 - r16 * d) / r12
        lo, hi = np.maximum(lo, np.minimum(a, b)), np.minimum(hi, np.maximum(a, b))
    p = np.clip(ndtr((hi - mu) / s) - ndtr((lo - mu) / s), 0, None)
    w = np.exp(-0.5 * ((d - beam.delta_offset) / sd) ** 2) * np.exp(-0.5 * (x0 / sx) ** 2)
    w = w / w.sum()
    t = (w * p).sum()
    md = (w * p * d).sum() / t
    var = (w * p * (d - md) ** 2).sum() / t
    return float(t), math.sqrt(var)


@pytest.mark.parametrize("gap_mm", [1.0, 1.9, 4.0])
def test_thick_beam_matches_first_order_estimate(line, gap_mm):
    """Betatron (divergence) widened window: transmission and rms delta at SLTB4."""
    src = load_source(scattering=False)
    n = 200_000
    c = initial_coordinates(src.beam, draw_deviates(9, 0, n, 0))
    rec = spread.track_particles(line, c)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(rec["sltb4_exit_m"]) & (
            (np.abs(rec["sltb4_entry_m"]) <= 0.5e-3 * gap_mm)
            & (np.abs(rec["sltb4_exit_m"]) <= 0.5e-3 * gap_mm)
        )
    t_exp, sd_exp = first_order_sltb4(src.beam, gap_mm)
    k = ok.sum()
    assert k / n == pytest.approx(t_exp, rel=0.03 + 3 / math.sqrt(k))
    assert c["delta"][ok].std() == pytest.approx(sd_exp, rel=0.03 + 3 / math.sqrt(2 * k))
    # the flat-top estimate gap/(sqrt(12) R16) alone is far too small: divergence dominates
    r16 = abs(hard_edge_row(S_SLTB4_M)[2])
    assert c["delta"][ok].std() > 1.5 * gap_mm * 1e-3 / (math.sqrt(12) * r16)


def test_misset_dhstb01_shifts_the_selected_energy_by_the_calibration():
    """+1 A on DHSTB01 selects the momentum the nominal excitation bends onto the axis."""
    src = load_source(scattering=False)
    grid = spread.make_grid(gaps_mm={"SLTB4": [1.0]})
    pts = [spread.ScanPoint(282.5), spread.ScanPoint(282.5, dhstb01_offset_a=1.0)]
    res = spread.compute_spread(
        points=pts, grid=grid, source=src, n_particles=100_000, scheduler="sync"
    )
    i0, i1 = res.table["dhstb01_current_a"]
    assert i1 - i0 == pytest.approx(1.0, abs=1e-9)
    # facts 3: p = 0.0551318 * (27.16 + 28.446 I) MeV/c
    p_sel = 0.0551318 * (27.16 + 28.446 * i1)
    e_sel = math.hypot(p_sel, ELECTRON_MASS_MEV)
    assert res.table["mean_energy_mev"].iloc[1] == pytest.approx(e_sel, abs=0.1)
    assert res.table["mean_energy_mev"].iloc[0] == pytest.approx(282.5, abs=0.05)


def test_empty_beam_gives_zero_transmission_and_no_spread():
    grid = spread.make_grid(gaps_mm={"SLTB4": [1e-4, 1.9]})
    res = spread.compute_spread([282.5], grid=grid, n_particles=2000, scheduler="sync")
    empty = res.table.iloc[0]
    assert empty["transmission"] == 0 and empty["n_transmitted"] == 0
    assert math.isnan(empty["rel_spread_rms"]) and math.isnan(empty["rel_spread_fwhm"])
    assert math.isnan(empty["mean_energy_mev"])


def test_2022_setting_meets_the_published_spread():
    """facts 2: BES <= 0.25 % for the Run III slits (SLTB2 1.74, SLTB3 4.2, SLTB4 1.9,
    SLTB5 5.0 mm) with the LINAC beam the slits select from; sensitivity to the input
    divergence and the window scattering."""
    res = spread.compute_spread(
        [282.5], source=load_source(), n_particles=200_000, scheduler="sync", seed=3
    )
    row = res.table.iloc[0]
    assert (row["sltb2_mm"], row["sltb3_mm"], row["sltb4_mm"], row["sltb5_mm"]) == (
        1.74,
        4.2,
        1.9,
        5.0,
    )
    assert row["n_transmitted"] > 300
    assert 0.0005 < row["rel_spread_rms"] <= 0.0025
    sens = spread.spread_sensitivity(
        282.5,
        source=load_source(),
        divergence_scales=(0.5, 2.0),
        window_thickness_scales=(0.0, 2.0),
        energy_loss_modes=(),
        n_particles=100_000,
    )
    div = sens[sens["variant"] == "divergence"].set_index("divergence_scale")
    assert div.loc[2.0, "rel_spread_rms"] > div.loc[0.5, "rel_spread_rms"]
    win = sens[sens["variant"] == "window"].set_index("window_thickness_scale")
    assert win.loc[2.0, "rel_spread_rms"] >= 0.95 * win.loc[0.0, "rel_spread_rms"]
