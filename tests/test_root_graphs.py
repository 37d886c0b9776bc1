"""ROOT graphs for PADME's statistical treatment: written with uproot, read back with
uproot's reader member by member (names and classes of facts 6), and imported into the
observed-scan table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import uproot
from fixtures.plans import make_plan, make_point

from scanplan.errors import ScanplanError
from scanplan.exports.root_graphs import (
    OBSERVED_COLUMNS,
    read_observed_scan,
    write_root_graphs,
)

M_E = 0.51099895
FACTS_GRAPHS = {  # facts file section 6
    "N2ClvsSqrsS_data": "TGraphErrors",
    "N2ClvsPer_data": "TGraphErrors",
    "PoTCorr": "TGraphErrors",
    "PoTCorrvsPer": "TGraphErrors",
    "SigEffvsS": "TGraphAsymmErrors",
    "YieldvsSqrsS_bkg": "TGraphErrors",
    "Sqrts": "TGraphErrors",
    "gPeriodIDVsSqrts_Scan0": "TGraph",
    "gPeriodIDVsSqrts_Scan1": "TGraph",
}


def scan_plan():
    pts = [make_point(i, 290.0 - 1.5 * i, pass_index=i % 2, target_pot=(7 + i) * 1e9,
                      background_per_pot=3.4e-6 + 1e-8 * i, signal_efficiency=0.08 + 0.001 * i)
           for i in range(5)]  # fmt: skip
    pts.append(make_point(5, 210.0, kind="control", target_pot=5e9, background_per_pot=2.4e-6,
                          signal_efficiency=0.043))  # fmt: skip
    return make_plan(1).model_copy(update={"points": pts}).sealed()


def test_graph_names_classes_and_values(tmp_path):
    plan = scan_plan()
    path = write_root_graphs(plan, tmp_path / "inputs.root")
    with uproot.open(path) as f:
        assert {k: v for k, v in f.classnames(cycle=False).items()} == FACTS_GRAPHS
        pts = sorted(plan.points, key=lambda p: p.period)
        rs = np.array([math.sqrt(2 * M_E**2 + 2 * M_E * p.e_beam_mev) for p in pts])
        n = np.array([p.background_per_pot * p.target_pot for p in pts])
        g = f["N2ClvsSqrsS_data"]
        np.testing.assert_allclose(g.member("fX"), rs, rtol=1e-12)
        np.testing.assert_allclose(g.member("fY"), n, rtol=1e-12)
        np.testing.assert_allclose(g.member("fEY"), np.sqrt(n), rtol=1e-12)
        np.testing.assert_allclose(g.member("fEX"), [p.sigma_sqrt_s_mev for p in pts])
        pot = f["PoTCorrvsPer"]
        assert list(pot.member("fX")) == [p.period for p in pts]
        np.testing.assert_array_equal(pot.member("fY"), [p.target_pot for p in pts])
        np.testing.assert_allclose(pot.member("fEY"), [0.003 * p.target_pot for p in pts])
        eff = f["SigEffvsS"]
        np.testing.assert_array_equal(eff.member("fY"), [p.signal_efficiency for p in pts])
        assert list(eff.member("fEYlow")) == [0.0] * len(pts)
        # scan parts: pass 0 / pass 1 on-resonance points; the control point in neither
        assert list(f["gPeriodIDVsSqrts_Scan0"].values()[1]) == [0, 2, 4]
        assert list(f["gPeriodIDVsSqrts_Scan1"].values()[1]) == [1, 3]


def test_round_trip_into_the_observed_scan_table(tmp_path):
    plan = scan_plan()
    recorded = {2: {"pot": 8.25e9, "n_obs": 27901.0}}
    path = write_root_graphs(plan, tmp_path / "run.root", recorded=recorded)
    df = read_observed_scan(path)
    assert tuple(df.columns) == OBSERVED_COLUMNS
    assert list(df["period"]) == [0, 1, 2, 3, 4, 5]
    assert list(df["scan_part"]) == [0, 1, 0, 1, 0, -1]
    for row in df.to_dict(orient="records"):
        p = plan.point(int(row["period"]))
        assert row["sqrt_s_mev"] == pytest.approx(p.sqrt_s_mev, rel=1e-12)
        # the fixture rounds m_e to 0.51099895 MeV: agreement to 1e-8 relative
        assert row["energy_mev"] == pytest.approx(p.e_beam_mev, rel=1e-8)
        assert row["sig_eff"] == p.signal_efficiency and row["bkg_per_pot"] == p.background_per_pot
        assert row["bkg_per_pot_err"] == pytest.approx(0.003 * p.background_per_pot, rel=1e-12)
        want_pot = recorded.get(p.period, {}).get("pot", p.target_pot)
        want_n = recorded.get(p.period, {}).get("n_obs", p.background_per_pot * p.target_pot)
        assert row["pot"] == want_pot and row["n_obs"] == pytest.approx(want_n, rel=1e-12)
        assert row["n_obs_err"] == pytest.approx(math.sqrt(want_n), rel=1e-12)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ScanplanError, match="not found"):
        read_observed_scan(tmp_path / "missing.root")
    (tmp_path / "junk.root").write_bytes(b"not root")
    with pytest.raises(ScanplanError, match="not a readable ROOT file"):
        read_observed_scan(tmp_path / "junk.root")
    with uproot.recreate(tmp_path / "partial.root") as f:
        f["Sqrts"] = uproot.as_TGraph({"x": np.array([0.0]), "y": np.array([16.9])})
    with pytest.raises(ScanplanError, match="Sqrts is a TGraph, expected TGraphErrors"):
        read_observed_scan(tmp_path / "partial.root")


def test_cli_export_root_with_store_values_and_import(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from scanplan.records import save_plan
    from scanplan.store.sqlite import SQLiteStore

    plan = scan_plan()
    save_plan(plan, tmp_path / "plan.json")
    st = SQLiteStore(tmp_path / "runs.sqlite")
    st.record_plan(plan)
    for run, pot, n in ((50284, 4e9, 13000.0), (50285, 3.5e9, 12000.0)):
        st.append("measured", plan_sha256=plan.content_sha256, period=1, run_number=run,
                  payload={"runPOT": pot, "n_obs": n})  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "SCANPLAN_STORE"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "scanplan.cli.main", *args],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip

    proc = cli("export", "plan.json", "-f", "root", "--store", "runs.sqlite", "-o", "g.root",
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["recorded_periods"] == [1]
    proc = cli("import-root", "g.root", "-o", "observed.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "observed.csv")
    assert tuple(table.columns) == OBSERVED_COLUMNS
    row = table.set_index("period").loc[1]
    assert row["pot"] == 7.5e9 and row["n_obs"] == 25000.0  # summed over the two runs
    no_out = cli("export", "plan.json", "-f", "root")
    assert no_out.returncode == 2 and no_out.stderr.startswith("error:")
