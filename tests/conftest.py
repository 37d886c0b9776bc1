"""Shared fixtures. Service fixtures (real memcached, real MariaDB) live in tests/fixtures."""

from __future__ import annotations

import pytest
from fixtures.services import mariadb_server, memcached_server  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def run3_line():
    """The Run III line at its reference energy with matched dipoles (built once)."""
    from beamline.model import BeamLine

    return BeamLine("run3_2022", match_dipoles=True)
