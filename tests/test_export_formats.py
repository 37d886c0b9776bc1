"""Export writers, read back with independent readers implementing PADME's positional
semantics (whitespace split, column by index, a run that is not listed reads as 0)."""

from __future__ import annotations

import csv
import io
import math

import pytest
from fixtures.plans import make_plan, make_point
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from beamline import calibration
from beamline.constants import ELECTRON_MASS_MEV
from scanplan.errors import ScanplanError
from scanplan.exports import (
    FORMATS,
    ExportOptions,
    McMacroOptions,
    export_text,
    parse_runs_text,
    write_csv,
    write_mc_macro,
    write_offline_db,
    write_runenergy,
)

# Column order copied from the facts file (section 6), independently of the exporter.
FACTS_COLUMNS = (
    "RunID runStartTime runStopTime DHSTB01Energy DHSTB02Energy nFiles runPOT bunchLength "
    "beamStart tgx tgy cogx cogy calibEnergyFactor calibTimeEnergyFactor tempQuadTL corrQuadTL "
    "tempQuadTR corrQuadTR tempQuadBR corrQuadBR tempQuadBL corrQuadBL errCOGX errCOGY newTargX "
    "newTargY errnewTargX errnewTargY sigmaDPhi errsigmaDPhi sigmaDTheta errsigmaDTheta sigmaCOGX "
    "errsigmaCOGX sigmaCOGY errsigmaCOGY E1E2 errE1E2 dt errdt sigmaE1E2 errsigmaE1E2 dsigmadt "
    "errsigmadt period LGCorr"
).split()
RUNS = {0: [50284, 50285], 2: [50290], 4: [50301, 50299]}


# ---- independent PADME-style readers ---------------------------------------------------------
def read_runenergy(text: str) -> dict[int, float]:
    out = {}
    for line in text.splitlines():
        cols = line.split()
        if cols:
            out[int(cols[0])] = float(cols[1])
    return out


def energy_of(table: dict[int, float], run: int) -> float:
    return table.get(run, 0.0)  # PADME: missing runs read as 0


def read_table(text: str, ncols: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split()
        assert len(cols) == ncols, (len(cols), line)
        rows.append(cols)
    return rows


def col(name: str) -> int:
    return FACTS_COLUMNS.index(name)


def label_energy_mev(current_a: float) -> float:
    p = calibration.momentum_mev_from_field(calibration.dipole_field_g("DHSTB02", current_a))
    return math.sqrt(p * p + ELECTRON_MASS_MEV**2)


# ---- RunEnergy ---------------------------------------------------------------------------------
def test_runenergy_round_trip():
    plan = make_plan(5)
    text = write_runenergy(plan, RUNS)
    table = read_runenergy(text)
    assert sorted(table) == sorted(r for rs in RUNS.values() for r in rs)
    for period, runs in RUNS.items():
        for run in runs:
            assert energy_of(table, run) == pytest.approx(plan.point(period).e_beam_mev, abs=5e-4)
    assert energy_of(table, 50286) == 0.0
    # 3 decimals, sorted by run number
    lines = text.splitlines()
    assert all(len(ln.split()[1].split(".")[1]) == 3 for ln in lines)
    assert [int(ln.split()[0]) for ln in lines] == sorted(table)


def test_runenergy_applied_energy_overrides_and_needs_runs():
    plan = make_plan(3)
    table = read_runenergy(write_runenergy(plan, {1: [7]}, energies_mev={7: 288.4567}))
    assert table == {7: pytest.approx(288.457, abs=1e-9)}
    with pytest.raises(ScanplanError, match="no run numbers known"):
        write_runenergy(plan, None)
    with pytest.raises(ScanplanError, match="needs runs"):
        export_text(plan, "runenergy")


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ({9: [1]}, "not a point of the plan"),
        ({0: [5], 1: [5]}, "assigned to periods 0 and 1"),
        ({0: [-3]}, "must be positive"),
    ],
)
def test_bad_run_maps(runs, message):
    with pytest.raises(ScanplanError, match=message):
        write_runenergy(make_plan(3), runs)


def test_runs_file_formats():
    assert parse_runs_text("# period runs\n0 50284 50285\n2 50290  # night\n") == {
        0: [50284, 50285],
        2: [50290],
    }
    assert parse_runs_text('{"0": [50284, 50285], "2": 50290}') == {0: [50284, 50285], 2: [50290]}
    with pytest.raises(ScanplanError, match="line 1"):
        parse_runs_text("0 fifty\n")
    with pytest.raises(ScanplanError, match="not valid JSON"):
        parse_runs_text("{0: [1]")


# ---- run-level offline table (column-by-column checks with PADME's C++ types: test_offline_cxx)
def test_offline_table_set_points_win_over_measurements_and_applied_energy():
    plan = make_plan(5)
    measured = {50290: {"runPOT": 7.6e9, "tgx": -0.46, "DHSTB01Energy": 1.0, "period": 99}}
    rows = {
        int(r[0]): r
        for r in read_table(
            write_offline_db(plan, RUNS, measured=measured, energies_mev={50285: 288.751}), 47
        )
    }
    r = rows[50290]
    # set points come from the plan only (a "measured" DHSTB01Energy/period is ignored)
    assert float(r[col("DHSTB01Energy")]) == round(plan.point(2).e_beam_mev, 2)
    assert int(r[col("period")]) == 2
    assert float(r[col("runPOT")]) == 7.6e9 and float(r[col("tgx")]) == -0.46
    assert r[col("DHSTB01Energy")] == f"{plan.point(2).e_beam_mev:.2f}"
    assert float(rows[50285][col("DHSTB01Energy")]) == 288.75  # applied, 2 decimals
    assert float(rows[50284][col("DHSTB01Energy")]) == round(plan.point(0).e_beam_mev, 2)


def test_offline_table_errors():
    plan = make_plan(3)
    with pytest.raises(ScanplanError, match="unknown offline table format"):
        write_offline_db(plan, {0: [1]}, table_format="2019")
    with pytest.raises(ScanplanError, match="no point 7"):
        write_offline_db(plan, {0: [1]}, periods=[7])
    with pytest.raises(ScanplanError, match="unknown DHSTB02 label convention"):
        write_offline_db(plan, {0: [1]}, dhstb02_label="run9")
    with pytest.raises(ScanplanError, match="runPOT source"):
        write_offline_db(plan, {0: [1]}, pot="guess")


# ---- MC macro ------------------------------------------------------------------------------------
def read_macro(text: str) -> dict[int, dict[str, tuple[float, str]]]:
    blocks: dict[int, dict[str, tuple[float, str]]] = {}
    current = None
    for line in text.splitlines():
        toks = line.split()
        if toks[:4] == ["#", "----", "scanplan", "period"]:
            current = blocks.setdefault(int(toks[4]), {})
        elif toks and toks[0].startswith("/") and toks[1] not in ("true", "false"):
            assert current is not None
            current[toks[0]] = (float(toks[1]), toks[2] if len(toks) > 2 else "")
    return blocks


def test_mc_macro_per_point_in_padmemc_conventions():
    plan = make_plan(4)
    blocks = read_macro(write_mc_macro(plan))
    assert sorted(blocks) == [0, 1, 2, 3]
    for period, cmds in blocks.items():
        p = plan.point(period)
        mom = math.sqrt(p.e_beam_mev**2 - ELECTRON_MASS_MEV**2)
        assert cmds["/beam/momentum"] == (pytest.approx(mom, rel=1e-12), "MeV")
        # PadmeMC: -p / (c rho), c = 299.792458 MeV/(T m), rho = 1.723 m (facts 1)
        b1, unit = cmds["/Detector/BeamLine/DHSTB001_FieldY"]
        assert unit == "tesla" and b1 == pytest.approx(-mom / (299.792458 * 1.723), rel=1e-9)
        # DHSTB02: the momentum of its own current on the BTF nominal curve (facts 3)
        p02 = 1.56827918 * p.dhstb02_current_a + 1.49737969
        b2, _ = cmds["/Detector/BeamLine/DHSTB002_FieldY"]
        assert b2 == pytest.approx(-p02 / (299.792458 * 1.723), rel=1e-6)
        for n, gap in ((2, p.sltb2_mm), (3, p.sltb3_mm), (4, p.sltb4_mm), (5, p.sltb5_mm)):
            assert cmds[f"/Detector/BeamLine/SLTB{n}Aperture"] == (gap, "mm")
        currents = (p.q1_current_a, p.q2_current_a, p.q3_current_a, p.q4_current_a)
        for n, current in enumerate(currents, 1):
            g, _ = cmds[f"/Detector/BeamLine/Q{n}_FieldGrad"]
            assert g == pytest.approx(0.08372 * current + 0.023767, rel=1e-9)  # all positive
        # sigma of the momentum spread = BES * p (not the energy uncertainty)
        spread, _ = cmds["/beam/momentum_spread"]
        assert spread == pytest.approx(p.rel_spread * mom, rel=1e-12)


def test_mc_macro_polarity_and_options():
    plan = make_plan(2)
    opts = McMacroOptions(quad_polarity=(-1, 1, -1, 1), mc_bend_radius_m=2.0)
    blocks = read_macro(write_mc_macro(plan, options=opts, periods=[1]))
    assert list(blocks) == [1]
    cmds = blocks[1]
    assert all(cmds[f"/Detector/BeamLine/Q{n}_FieldGrad"][0] < 0 for n in range(1, 5))
    mom = cmds["/beam/momentum"][0]
    assert cmds["/Detector/BeamLine/DHSTB001_FieldY"][0] == pytest.approx(
        -mom / (299.792458 * 2.0), rel=1e-9
    )
    with pytest.raises(ScanplanError, match="four signs"):
        McMacroOptions(quad_polarity=(1, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ScanplanError, match="bend radius"):
        McMacroOptions(mc_bend_radius_m=0.0)


def test_csv_round_trip_all_point_fields():
    plan = make_plan(4)
    rows = list(csv.DictReader(io.StringIO(write_csv(plan))))
    assert len(rows) == 4
    for row in rows:
        point = plan.point(int(row["period"]))
        assert row.pop("plan_sha256") == plan.content_sha256
        dumped = point.model_dump()
        assert set(row) == set(dumped)
        for key, value in dumped.items():
            if isinstance(value, float):
                assert float(row[key]) == value, key  # exact
            else:
                assert row[key] == str(value), key


def test_registry_and_non_finite_values():
    assert set(FORMATS) == {"runenergy", "offline-db", "mc-macro", "csv", "sor-tag"}
    with pytest.raises(ScanplanError, match="unknown export format"):
        export_text(make_plan(1), "xml")
    # a non-finite value is refused where the record is made (issue 15) ...
    with pytest.raises(ValidationError, match="finite"):
        make_point(0, 282.0, target_pot=math.inf)
    # ... and the exporter still refuses one that bypassed validation (model_copy does not
    # validate), so no export can carry inf/NaN into PADME's files
    point = make_point(0, 282.0).model_copy(update={"target_pot": math.inf})
    bad = make_plan(1).model_copy(update={"points": [point]})
    with pytest.raises(ScanplanError, match="not a finite number"):
        export_text(bad, "csv", ExportOptions())


# ---- property: any plan energies and run assignment read back positionally ---------------------


@settings(max_examples=40, deadline=None)
@given(
    energies=st.lists(st.floats(150.0, 500.0, allow_nan=False), min_size=1, max_size=6),
    runs=st.lists(st.integers(1, 10**7), min_size=1, max_size=12, unique=True),
    data=st.data(),
    table_format=st.sampled_from(["2022", "2025"]),
)
def test_property_runenergy_and_offline_round_trip(energies, runs, data, table_format):
    points = [make_point(i, e) for i, e in enumerate(energies)]
    plan = make_plan(1).model_copy(update={"points": points}).sealed()
    run_map: dict[int, list[int]] = {}
    for run in runs:
        run_map.setdefault(data.draw(st.integers(0, len(points) - 1)), []).append(run)
    table = read_runenergy(write_runenergy(plan, run_map))
    rows = {
        int(r[0]): r
        for r in read_table(
            write_offline_db(plan, run_map, table_format=table_format),
            47 if table_format == "2022" else 49,
        )
    }
    for period, rs in run_map.items():
        for run in rs:
            assert energy_of(table, run) == pytest.approx(energies[period], abs=5e-4)
            assert float(rows[run][col("DHSTB01Energy")]) == round(energies[period], 2)
            assert int(rows[run][col("period")]) == period
    assert set(table) == set(rows) == set(runs)
