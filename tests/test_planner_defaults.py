"""The planner's data files are typed: unknown or missing keys name the file and the key;
the request takes its defaults from the data file (their one home); typed plan inputs stay
sealed by the content hash."""

from __future__ import annotations

import json

import pytest
from fixtures.lattices import private_lattices, replace_in_file

from scanplan.errors import ScanplanError
from scanplan.physics.params import load_physics, load_scan_defaults
from scanplan.planning import PlanRequest, plan_scan
from scanplan.records import load_plan, save_plan

CACHES = (load_scan_defaults, load_physics)


@pytest.fixture
def lattices(tmp_path, monkeypatch):
    with private_lattices(tmp_path, monkeypatch, CACHES) as root:
        yield root


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        ("step_fraction = 0.5", "step_fracton = 0.5", "unknown key 'spacing.step_fracton'"),
        ("step_fraction = 0.5", "", "missing key 'spacing.step_fraction'"),
        ('direction = "descending"', 'direction = "down"', "key 'spacing.direction'"),
        ("min_hours = 1.0", "min_hours = -1.0", "key 'optimise.min_hours'"),
    ],
)
def test_scan_defaults_errors_name_file_and_key(lattices, old, new, fragment) -> None:
    path = lattices / "physics" / "scan_defaults.toml"
    replace_in_file(path, old, new)
    with pytest.raises(ScanplanError) as info:
        load_scan_defaults()
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_physics_model_errors_name_file_and_key(lattices) -> None:
    path = lattices / "physics" / "padme_x17_run3.toml"
    replace_in_file(path, "yield_mev = 13.56", "yeild_mev = 13.56")
    with pytest.raises(ScanplanError) as info:
        load_physics()
    msg = str(info.value)
    assert str(path) in msg and "unknown key 'signal.yeild_mev'" in msg
    assert "missing key 'signal.yield_mev'" in msg


def test_request_defaults_come_from_the_data_file(lattices) -> None:
    replace_in_file(lattices / "physics" / "scan_defaults.toml", "passes = 2", "passes = 3")
    replace_in_file(
        lattices / "physics" / "padme_x17_run3.toml", "default_bes = 0.0025", "default_bes = 0.003"
    )
    req = PlanRequest(mass_range_mev=(16.8, 17.0), control="none")
    assert req.passes == 3 and req.bes == 0.003
    assert PlanRequest(mass_range_mev=(16.8, 17.0), budget_hours=100.0).pot_per_point is None
    # the control block defaults follow the side asked for (5 below / 2 above in the file)
    assert PlanRequest(mass_range_mev=(16.8, 17.0), control="above").control_count == 2
    below = PlanRequest(mass_range_mev=(16.8, 17.0))
    assert below.control_count == 5 and below.replaced(control="above").control_count == 2
    plan = plan_scan(req)
    assert {p.pass_index for p in plan.points} == {0, 1, 2}
    assert all(p.rel_spread == 0.003 for p in plan.points)


def test_bad_request_fields_are_named() -> None:
    with pytest.raises(ScanplanError, match="uptime_fraction"):
        PlanRequest(mass_range_mev=(16.8, 17.0), uptime_fraction=1.5)
    with pytest.raises(ScanplanError, match="colour"):
        PlanRequest(mass_range_mev=(16.8, 17.0), colour="red")
    # a bad side is one error, not also one per default derived from it
    with pytest.raises(ScanplanError) as info:
        PlanRequest(mass_range_mev=(16.8, 17.0), control="left")
    assert "key 'control'" in str(info.value) and "control_count" not in str(info.value)


def test_typed_inputs_are_sealed_and_old_schema_refused(tmp_path) -> None:
    plan = plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), control="none"))
    path = save_plan(plan, tmp_path / "p.json")
    back = load_plan(path)
    assert back.inputs == plan.inputs and back.inputs.physics == load_physics()
    doc = json.loads(path.read_text())
    doc["inputs"]["step_fraction"] = 0.9  # a hand edit of one typed input
    path.write_text(json.dumps(doc))
    with pytest.raises(ScanplanError, match="modified"):
        load_plan(path)
    doc["schema_version"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ScanplanError, match="schema_version"):
        load_plan(path)
