"""Vectorised slit evaluation against direct per-particle tests; FWHM estimator; grid errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from beamline.apertures import (
    MOMENTS,
    SLITS,
    CellAccumulator,
    Jaws,
    SlitClasses,
    SlitGrid,
    fwhm_from_histogram,
    passes,
)
from beamline.errors import BeamlineInputError
from beamline.lattice import line_spec

RNG = np.random.default_rng(12345)


def _spans(n: int) -> tuple[np.ndarray, np.ndarray]:
    entry = RNG.normal(0, 1.5e-3, n)
    return entry, entry + RNG.normal(0, 0.3e-3, n)


@pytest.mark.parametrize(
    "jaws",
    [
        [Jaws.centred(g) for g in (0.5, 1.0, 1.9, 3.0, 5.0)],  # nested, centred
        [Jaws(-1.2, 0.8), Jaws(-0.5, 2.0), Jaws(-3.0, -1.0), Jaws(0.0, 0.1), Jaws(-1.2, 2.0)],
        [Jaws.centred(2.0, c) for c in (-1.0, 0.0, 1.0)],  # same gap, moved centre
    ],
)
def test_classes_reproduce_direct_test(jaws):
    entry, exit_ = _spans(20000)
    cl = SlitClasses(jaws)
    c = cl.classify(entry, exit_)
    for k, j in enumerate(jaws):
        direct = passes(entry, exit_, j)
        via_class = np.where(c >= 0, cl.table[np.maximum(c, 0), k] > 0, False)
        assert np.array_equal(direct, via_class)
    # class -1 means: passes no setting at all
    none = ~np.any([passes(entry, exit_, j) for j in jaws], axis=0)
    assert np.array_equal(none, c < 0)


def test_nested_settings_have_one_class_per_setting():
    cl = SlitClasses([Jaws.centred(g) for g in (0.5, 1.0, 2.0, 4.0)])
    assert cl.n_classes == 4
    # triangular: a class passing a gap passes every wider gap
    assert np.all(np.diff(cl.table, axis=1) >= 0)


def test_cell_sums_equal_direct_sums_for_every_combination():
    n = 30000
    jaws = {
        "SLTB2": [Jaws.centred(g) for g in (1.0, 2.0, 3.0)],
        "SLTB3": [Jaws.centred(4.2), Jaws(-1.0, 3.0)],
        "SLTB4": [Jaws.centred(g) for g in (0.5, 1.9, 3.0, 5.0)],
        "SLTB5": [Jaws.centred(5.0)],
    }
    spans = {s: _spans(n) for s in SLITS}
    classes = [SlitClasses(jaws[s]) for s in SLITS]
    eps = RNG.normal(0, 2e-3, n)
    pos = [RNG.normal(0, 1e-3, n) for _ in range(4)]
    acc = CellAccumulator(classes, 0.0, 0.02, 1e-4)
    cls = [c.classify(*spans[s]) for c, s in zip(classes, SLITS, strict=True)]
    ok = np.all([c >= 0 for c in cls], axis=0)
    half = n // 2  # two chunks
    for sl in (slice(0, half), slice(half, n)):
        m = ok.copy()
        m[: sl.start] = False
        m[sl.stop :] = False
        acc.add(
            acc.cell_index([c[m] for c in cls]),
            eps[m],
            (pos[0][m], pos[1][m]),
            (pos[2][m], pos[3][m]),
        )
    sums, hist = acc.combinations()
    assert sums.shape == (len(MOMENTS), 3, 2, 4, 1)
    for combo in itertools.product(*(range(len(jaws[s])) for s in SLITS)):
        sel = np.ones(n, dtype=bool)
        for s, k in zip(SLITS, combo, strict=True):
            sel &= passes(*spans[s], jaws[s][k])
        got = sums[(slice(None), *combo)]
        assert got[0] == sel.sum()
        assert got[1] == pytest.approx(eps[sel].sum(), rel=1e-9, abs=1e-15)
        assert got[2] == pytest.approx((eps[sel] ** 2).sum(), rel=1e-9)
        assert got[9] == pytest.approx(1e3 * pos[3][sel].sum(), rel=1e-9, abs=1e-12)
        direct_hist = np.histogram(eps[sel], bins=acc.n_bins, range=(-0.02, 0.02))[0]
        assert np.array_equal(hist[(*combo, slice(1, -1))], direct_hist)


def test_fwhm_of_gaussian_and_flat_samples():
    sigma = 1.3e-3
    g = RNG.normal(0.0, sigma, 200_000)
    bins = np.arange(-0.01, 0.01 + 1e-12, 2e-5)
    counts = np.histogram(g, bins=bins)[0].astype(float)
    assert fwhm_from_histogram(counts, 2e-5, g.std()) == pytest.approx(
        2 * math.sqrt(2 * math.log(2)) * sigma, rel=0.03
    )
    width = 4e-3
    u = RNG.uniform(-width / 2, width / 2, 200_000)
    counts = np.histogram(u, bins=bins)[0].astype(float)
    rebinned_width = 2e-5 * int(u.std() / (5 * 2e-5))
    assert abs(fwhm_from_histogram(counts, 2e-5, u.std()) - width) <= rebinned_width
    assert math.isnan(fwhm_from_histogram(np.zeros(10), 1e-5, 0.0))


def _defaults():
    return {s: Jaws.centred(2.0) for s in SLITS}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"gaps_mm": {"SLTB4": [0.0]}}, "must be > 0"),
        ({"gaps_mm": {"SLTB4": [-1.0]}}, "must be > 0"),
        ({"gaps_mm": {"SLTB4": [60.0]}}, "wider than the chamber"),
        ({"gaps_mm": {"SLTB3": [33.0]}}, "wider than the chamber"),
        ({"jaws_mm": {"SLTB4": [(1.0, 0.5)]}}, "must be above"),
        ({"jaws_mm": {"SLTB4": [(-30.0, 0.5)]}}, "outside the chamber"),
        ({"gaps_mm": {"SLTB4": []}}, "no settings"),
        ({"gaps_mm": {"SLTB9": [1.0]}}, "unknown slit"),
        ({"gaps_mm": {"SLTB4": [1.0]}, "jaws_mm": {"SLTB4": [(-1, 1)]}}, "not both"),
    ],
)
def test_grid_rejects_bad_settings(kwargs, fragment):
    with pytest.raises(BeamlineInputError, match=fragment):
        SlitGrid.build(line_spec(), _defaults(), **kwargs)


def test_grid_combinations_in_c_order():
    grid = SlitGrid.build(
        line_spec(), _defaults(), gaps_mm={"SLTB4": [1.0, 2.0], "SLTB2": [1.5, 2.5, 3.5]}
    )
    assert grid.shape == (3, 1, 2, 1)
    rows = grid.combinations()
    assert [(r["sltb2_mm"], r["sltb4_mm"]) for r in rows] == [
        (1.5, 1.0),
        (1.5, 2.0),
        (2.5, 1.0),
        (2.5, 2.0),
        (3.5, 1.0),
        (3.5, 2.0),
    ]
    assert grid.planes["SLTB3"] == "y" and grid.planes["SLTB4"] == "x"


def test_advisor_and_tradeoff_front_on_a_hand_made_table():
    import pandas as pd

    from beamline.spread import advise, tradeoff_curve

    base = {"dhstb01_current_a": 179.0, "dhstb02_current_a": 179.0}
    rows = [  # (E, gap, transmission, rms spread, n)
        (280.0, 1.0, 0.010, 0.0010, 1000),
        (280.0, 2.0, 0.020, 0.0020, 2000),
        (280.0, 3.0, 0.015, 0.0024, 1500),  # dominated by the 2 mm row
        (280.0, 4.0, 0.030, 0.0030, 3000),
        (281.0, 1.0, 0.000, float("nan"), 0),
        (281.0, 2.0, 0.005, 0.0026, 50),
    ]
    table = pd.DataFrame(
        [
            {**base, "energy_mev": e, "sltb4_mm": g, "transmission": t, "rel_spread_rms": s,
             "rel_spread_fwhm": 2.35 * s, "n_transmitted": n}
            for e, g, t, s, n in rows
        ]
    )  # fmt: skip
    best = advise(table, 0.0025)
    assert list(best["energy_mev"]) == [280.0]  # 281 MeV: nothing trusted under the target
    assert best.iloc[0]["sltb4_mm"] == 2.0
    assert advise(table, 0.0025, min_transmitted=10_000).empty
    front = tradeoff_curve(table)
    assert list(front[front["energy_mev"] == 280.0]["sltb4_mm"]) == [1.0, 2.0, 4.0]
    with pytest.raises(BeamlineInputError):
        advise(table, 0.0)
    with pytest.raises(BeamlineInputError):
        tradeoff_curve(table, "median")
