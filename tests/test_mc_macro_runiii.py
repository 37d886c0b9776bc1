"""The MC macro reproduces PadmeMC's own RunIII.mac for the 2022 setting at 282.5 MeV/c.

Reference numbers copied from PADME-Experiment/padme-fw ``PadmeMC/RunIII.mac`` (commit
00bec2a83e), only the commands compared here; tolerances are half the last digit written in
that file. The point is built from independent inputs: the BTF nominal excitation and the
DAΦNE type-A quadrupole curve of facts 3, BES 0.25 % (facts 2).
"""

from __future__ import annotations

import math

import pytest
from fixtures.plans import make_plan, make_point

from scanplan.exports import write_mc_macro

# command -> (value as written in RunIII.mac, half of its last digit, unit or "")
RUNIII_MAC = {
    "/Detector/BeamLine/DHSTB001_FieldY": (-0.5469, 0.5e-4, "tesla"),
    "/Detector/BeamLine/DHSTB002_FieldY": (-0.5469, 0.5e-4, "tesla"),
    "/Detector/BeamLine/Q1_FieldGrad": (1.8354, 0.5e-4, ""),
    "/Detector/BeamLine/Q2_FieldGrad": (1.6395, 0.5e-4, ""),
    "/Detector/BeamLine/Q3_FieldGrad": (2.3945, 0.5e-4, ""),
    "/Detector/BeamLine/Q4_FieldGrad": (2.5637, 0.5e-4, ""),
    "/beam/momentum": (282.5, 0.05, "MeV"),
    "/beam/momentum_spread": (0.7, 0.05, "MeV"),
    "/beam/position_x_spread": (1.0, 0.5, "mm"),
    "/beam/position_y_spread": (1.0, 0.5, "mm"),
    "/beam/emittance_x": (1.0, 0.5, "mrad"),
    "/beam/emittance_y": (1.0, 0.5, "mrad"),
    "/beam/position_x": (7233.0, 0.5, "mm"),
    "/beam/position_y": (0.0, 0.0, "mm"),  # "0. cm" in the file
    "/beam/position_z": (-9581.0, 0.5, "mm"),
}
RUNIII_DIRECTION = (-1.0, 0.0, 1.0)
RUNIII_SWITCHES = (
    "/Detector/BeamLine/EnableQuadrupoles true",
    "/beam/momentum_spread_on true",
    "/beam/position_spread_on true",
    "/beam/emittance_on true",
)
M_E = 0.51099895  # MeV


def quad_current_a(gradient_tpm: float) -> float:
    return (gradient_tpm - 0.023767) / 0.08372  # facts 3, inverted


def runiii_point():
    p = 282.5  # RunIII.mac's /beam/momentum
    i_dip = (p - 1.49737969) / 1.56827918  # BTF nominal excitation, facts 3
    return make_point(
        0,
        math.sqrt(p * p + M_E * M_E),
        dhstb01_current_a=i_dip,
        dhstb02_current_a=i_dip,
        rel_spread=0.0025,
        q1_current_a=quad_current_a(1.8354),
        q2_current_a=quad_current_a(1.6395),
        q3_current_a=quad_current_a(2.3945),
        q4_current_a=quad_current_a(2.5637),
    )


def test_macro_reproduces_runiii_mac():
    plan = make_plan(1).model_copy(update={"points": [runiii_point()]}).sealed()
    lines = [ln.strip() for ln in write_mc_macro(plan).splitlines()]
    commands = {ln.split()[0]: ln.split()[1:] for ln in lines if ln.startswith("/")}
    for cmd, (value, tol, unit) in RUNIII_MAC.items():
        args = commands[cmd]
        assert float(args[0]) == pytest.approx(value, abs=tol + 1e-12), cmd
        assert (args[1] if len(args) > 1 else "") == unit, cmd
    assert tuple(float(x) for x in commands["/beam/direction"]) == RUNIII_DIRECTION
    for switch in RUNIII_SWITCHES:
        assert switch in lines
    # every RunIII.mac gradient is positive: PadmeMC negates Q2 and Q4 itself
    assert all(float(commands[f"/Detector/BeamLine/Q{n}_FieldGrad"][0]) > 0 for n in range(1, 5))
