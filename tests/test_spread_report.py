"""scanplan.spread: the TimePix spot grid comes from the detector geometry, tables are written
atomically by scanplan (beamline writes no files)."""

from __future__ import annotations

import pandas as pd
import pytest

from hw_interfaces.timepix import TimepixGeometry
from scanplan.errors import ScanplanError
from scanplan.spread import timepix_spot_grid, write_table


def test_spot_grid_spans_the_timepix_array() -> None:
    # facts 1: 2 rows x 6 Timepix3 chips of 256 x 256 pixels of 55 um, ~85.4 x 28.5 mm^2
    grid = timepix_spot_grid()
    xe, ye = grid.edges()
    assert xe[-1] - xe[0] == pytest.approx(85.4, abs=0.1)
    assert ye[-1] - ye[0] == pytest.approx(28.5, abs=0.2)
    assert xe[1] - xe[0] == pytest.approx(8 * 0.055, rel=0.02)
    shifted = timepix_spot_grid(TimepixGeometry(offset_x_mm=1.5))
    assert shifted.edges()[0][0] == pytest.approx(xe[0] + 1.5)


def test_write_table_csv_and_parquet(tmp_path) -> None:
    from beamline.spread import SpreadResult

    table = pd.DataFrame({"energy_mev": [282.5], "rel_spread_rms": [0.0013]})
    res = SpreadResult(table=table, metadata={"seed": 1})
    out = write_table(res, tmp_path / "t.csv")
    assert pd.read_csv(out).equals(table)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temp file left
    pq = write_table(res, tmp_path / "t.parquet")
    assert pd.read_parquet(pq)["rel_spread_rms"].iloc[0] == 0.0013
    with pytest.raises(ScanplanError, match="must end in"):
        write_table(res, tmp_path / "t.txt")
    with pytest.raises(ScanplanError, match="does not exist"):
        write_table(res, tmp_path / "nope" / "t.csv")
