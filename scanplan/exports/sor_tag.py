"""Start-of-run tag: a compact, machine-readable scan-point tag for the RunControl
start-of-run comment (the only free per-run field that reaches PadmeDAQ, facts 6).

Format (version 1), tokens separated by single spaces::

    scanplan:v1 plan=<sha12> period=<int> pass=<int> E=<MeV, 3 dp>MeV I1=<A, 3 dp>A I2=<A, 3 dp>A

:func:`parse_sor_tag` finds the tag inside free text typed around it by the crew and
returns its fields; exactly one tag must be present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..errors import ScanplanError
from ..records import Plan, Point
from .common import finite, plan_sha256, select_points

SOR_TAG_VERSION = 1
SOR_TAG_PREFIX = "scanplan:v"
#: characters of the plan hash in the tag
PLAN_SHA_CHARS = 12

_NUM = r"[+-]?\d+(?:\.\d+)?"
_FIELDS: tuple[tuple[str, str, str, Any], ...] = (
    # (tag key, field name in the result, value regex, converter)
    ("plan", "plan_sha12", rf"[0-9a-f]{{{PLAN_SHA_CHARS}}}", str),
    ("period", "period", r"\d+", int),
    ("pass", "pass_index", r"\d+", int),
    ("E", "e_beam_mev", _NUM + "(?=MeV)", float),
    ("I1", "dhstb01_current_a", _NUM + "(?=A)", float),
    ("I2", "dhstb02_current_a", _NUM + "(?=A)", float),
)
_UNITS = {"E": "MeV", "I1": "A", "I2": "A"}
_TAG_RE = re.compile(
    r"(?<![\w:])scanplan:v(?P<version>\d+)"
    + "".join(rf"\s+{key}=(?P<{name}>{rx}){_UNITS.get(key, '')}" for key, name, rx, _ in _FIELDS)
    + r"(?![\w=])"
)
_ANY_TAG_RE = re.compile(r"(?<![\w:])scanplan:v\d+")


def format_sor_tag(plan_sha: str, point: Point) -> str:
    """The tag of ``point`` of the plan with hash ``plan_sha`` (values rounded to 3 dp)."""
    sha = plan_sha.lower()
    if not re.fullmatch(r"[0-9a-f]{12,64}", sha):
        raise ScanplanError(f"plan hash must be hexadecimal (>= 12 digits), got {plan_sha!r}")
    e = finite(point.e_beam_mev, "e_beam_mev")
    i1 = finite(point.dhstb01_current_a, "dhstb01_current_a")
    i2 = finite(point.dhstb02_current_a, "dhstb02_current_a")
    return (
        f"{SOR_TAG_PREFIX}{SOR_TAG_VERSION} plan={sha[:PLAN_SHA_CHARS]} period={point.period} "
        f"pass={point.pass_index} E={e:.3f}MeV I1={i1:.3f}A I2={i2:.3f}A"
    ).replace("=-0.000", "=0.000")


def write_sor_tags(plan: Plan, *, periods: Iterable[int] | None = None) -> str:
    """One tag line per selected point (ordered by period)."""
    sha = plan_sha256(plan)
    return "".join(format_sor_tag(sha, p) + "\n" for p in select_points(plan, periods))


def parse_sor_tag(text: str) -> dict[str, Any]:
    """Fields of the one scanplan tag inside ``text`` (free text around it is ignored).

    Returns ``version``, ``plan_sha12``, ``period``, ``pass_index``, ``e_beam_mev``,
    ``dhstb01_current_a``, ``dhstb02_current_a``. No tag, a malformed tag, an unsupported
    version or more than one tag raise :class:`ScanplanError`.
    """
    starts = _ANY_TAG_RE.findall(text)
    if not starts:
        raise ScanplanError("no scanplan start-of-run tag (scanplan:v1 ...) in the text")
    if len(starts) > 1:
        raise ScanplanError(f"{len(starts)} scanplan tags in the text; expected exactly one")
    match = _TAG_RE.search(text)
    if match is None or int(match.group("version")) != SOR_TAG_VERSION:
        snippet = text[text.find(starts[0]) :][:120]
        raise ScanplanError(
            f"malformed or unsupported scanplan tag {snippet!r}; expected "
            f"'scanplan:v{SOR_TAG_VERSION} plan=<12 hex> period=<n> pass=<n> E=<x>MeV "
            "I1=<x>A I2=<x>A'"
        )
    out: dict[str, Any] = {"version": SOR_TAG_VERSION}
    for _, name, _, conv in _FIELDS:
        out[name] = conv(match.group(name))
    return out
