"""scanplan.model_cache: results keyed by the lattice data, the model code and the arguments."""

from __future__ import annotations

import shutil

import pytest

from scanplan import model_cache as mc


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(mc.CACHE_ENV, str(tmp_path / "cache"))
    mc.model_inputs_hash.cache_clear()
    yield tmp_path / "cache"
    mc.model_inputs_hash.cache_clear()


def test_a_result_is_computed_once_then_read_back(cache):
    calls = []

    def compute():
        calls.append(1)
        return {"rows": [1.5, float("nan")], "name": "x"}

    first = mc.cached_json("k", {"a": 1}, compute)
    second = mc.cached_json("k", {"a": 1}, compute)
    other = mc.cached_json("k", {"a": 2}, compute)
    assert len(calls) == 2  # {"a": 1} once, {"a": 2} once
    assert second["rows"][0] == first["rows"][0] == 1.5 and other["name"] == "x"


def test_a_corrupt_entry_is_recomputed_and_an_unwritable_cache_costs_nothing(cache, monkeypatch):
    mc.cached_json("k", {}, lambda: 1)
    (entry,) = cache.glob("k-*.json")
    entry.write_text("{not json")
    assert mc.cached_json("k", {}, lambda: 2) == 2
    monkeypatch.setenv(mc.CACHE_ENV, "/proc/scanplan-cache")  # cannot be created
    assert mc.cached_json("k", {}, lambda: 3) == 3
    monkeypatch.setenv(mc.CACHE_ENV, "off")
    assert mc.cache_dir() is None and mc.cached_json("k", {}, lambda: 4) == 4


def test_the_key_changes_with_the_lattice_data(cache, tmp_path, monkeypatch):
    from beamline.paths import ENV_VAR, lattices_dir

    before = mc.cache_key("optics", {"settings": None})
    copy = tmp_path / "lattices"
    shutil.copytree(lattices_dir(), copy)
    monkeypatch.setenv(ENV_VAR, str(copy))
    mc.model_inputs_hash.cache_clear()
    assert mc.cache_key("optics", {"settings": None}) == before  # same bytes, same key
    cal = copy / "calibrations" / "dipoles.toml"
    cal.write_text(cal.read_text() + "\n# edited\n")
    mc.model_inputs_hash.cache_clear()
    assert mc.cache_key("optics", {"settings": None}) != before


def test_the_cached_optics_report_is_the_computed_one(cache):
    from scanplan.optics import optics_report

    fresh = optics_report(energy_mev=282.5, plot_path=None)  # computed and stored
    (entry,) = cache.glob("optics-*.json")
    again = optics_report(energy_mev=282.5, plot_path=None)  # read back
    assert again.rows == fresh.rows and again.currents_a == fresh.currents_a
    assert entry.exists()
