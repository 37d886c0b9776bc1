"""Start-of-run tag: format -> parse round trip (hypothesis), tolerant of free text."""

from __future__ import annotations

import re

import pytest
from fixtures.plans import make_plan, make_point
from hypothesis import given, settings
from hypothesis import strategies as st

from scanplan.errors import ScanplanError
from scanplan.exports import format_sor_tag, parse_sor_tag, write_sor_tags

SHA = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
# free text the crew might type around the tag (must not itself contain a tag)
FREE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60
).filter(lambda s: "scanplan:v" not in s)


def _independent_parse(tag: str) -> dict[str, str]:
    """key=value tokens of a bare tag, split on whitespace (no regex of the code under test)."""
    head, *tokens = tag.split()
    assert head == "scanplan:v1"
    return dict(t.split("=", 1) for t in tokens)


@settings(max_examples=200, deadline=None)
@given(
    sha=SHA,
    period=st.integers(0, 10_000),
    pass_index=st.integers(0, 20),
    e=st.floats(0.001, 1e4, allow_nan=False),
    i1=st.floats(-500, 500, allow_nan=False),
    i2=st.floats(-500, 500, allow_nan=False),
    before=FREE,
    after=FREE,
)
def test_round_trip_with_free_text(sha, period, pass_index, e, i1, i2, before, after):
    point = make_point(period, e, pass_index=pass_index, dhstb01_current_a=i1, dhstb02_current_a=i2)
    tag = format_sor_tag(sha, point)
    sep_before = " " if before and not before[-1].isspace() else ""
    sep_after = " " if after and not after[0].isspace() else ""
    parsed = parse_sor_tag(before + sep_before + tag + sep_after + after)
    assert parsed["version"] == 1
    assert parsed["plan_sha12"] == sha[:12]
    assert parsed["period"] == period and parsed["pass_index"] == pass_index
    assert parsed["e_beam_mev"] == pytest.approx(e, abs=5e-4 + 1e-12 * e)
    assert parsed["dhstb01_current_a"] == pytest.approx(i1, abs=5e-4 + 1e-12)
    assert parsed["dhstb02_current_a"] == pytest.approx(i2, abs=5e-4 + 1e-12)
    fields = _independent_parse(tag)
    assert fields["E"].endswith("MeV") and fields["I1"].endswith("A")
    assert float(fields["E"][:-3]) == parsed["e_beam_mev"]


def test_example_and_plan_lines():
    plan = make_plan(3)
    lines = write_sor_tags(plan).splitlines()
    assert len(lines) == 3
    for line in lines:
        fields = _independent_parse(line)
        point = plan.point(int(fields["period"]))
        assert fields["plan"] == plan.content_sha256[:12]
        assert re.fullmatch(r"\d+\.\d{3}MeV", fields["E"])
        assert float(fields["E"][:-3]) == round(point.e_beam_mev, 3)
    text = f"Run III X17 scan, point 1. {lines[1]}. Beam OK, crew: A.B."
    assert parse_sor_tag(text)["period"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no tag here", "no scanplan start-of-run tag"),
        ("scanplan:v1 plan=zzz period=1", "malformed"),
        (
            "scanplan:v2 plan=0123456789ab period=1 pass=0 E=1.000MeV I1=1.000A I2=1.000A",
            "unsupported",
        ),
        (
            "scanplan:v1 plan=0123456789ab period=1 pass=0 E=1.000MeV I1=1.000A I2=1.000A "
            "scanplan:v1 plan=0123456789ab period=2 pass=0 E=1.000MeV I1=1.000A I2=1.000A",
            "2 scanplan tags",
        ),
    ],
)
def test_bad_tags(text, message):
    with pytest.raises(ScanplanError, match=message):
        parse_sor_tag(text)


def test_bad_hash():
    with pytest.raises(ScanplanError, match="hexadecimal"):
        format_sor_tag("not-a-hash", make_point(0, 282.0))
