"""LabVIEW cluster decoder/encoder: hand-built bytes, round trip, bad bytes, layout as data."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_interfaces.errors import DecodeError
from hw_interfaces.labview import decode, encode, layout_from_mapping, load_layout

MG1 = load_layout("mg1_dyn")


def _lv_string(text: str) -> bytes:
    raw = text.encode("latin-1")
    return struct.pack(">i", len(raw)) + raw


def hand_built_mg1() -> bytes:
    """An MG1 record written field by field with struct, in facts-file order."""
    return b"".join(
        [
            _lv_string("DHSTB001"),
            struct.pack(">i", 2),  # status operational
            _lv_string("BTF-CONSOLE"),
            struct.pack(">iiii", 7, 1700000000, 30, 0),  # errorMask .. cmdExecution
            bytes([1, 0, 1, 0]),  # onLine byPass remote busy
            bytes([0, 1]),  # triggerArmed rampOn
            struct.pack(">d", 180.5),  # currentPreSetting
            struct.pack(">ii", 2, -1),  # statusSetting polaritySetting
            struct.pack(">dd", 179.25, 2.5),  # currentSetting slewRateSetting
            struct.pack(">ii", 0, -1),  # cycleMode outputPolarity
            struct.pack(">ddd", 179.123, 0.75, 9.5),  # outputCurr slewRateReadout outputVolt
            struct.pack(">i4I", 4, 1, 0, 0xFFFFFFFF, 3),  # faults U32[4]
        ]
    )


def test_layout_has_the_facts_file_fields_in_order():
    assert MG1.names[:3] == ("elemName", "status", "consoleName")
    assert MG1.names[-1] == "faults"
    assert len(MG1.fields) == 24
    assert MG1.byte_order == "big"


def test_decodes_hand_built_record_independently_of_encoder():
    rec = decode(hand_built_mg1(), MG1, device="DHSTB001", key="DHSTB001_DYN")
    assert rec["elemName"] == "DHSTB001"
    assert rec["status"] == 2
    assert rec["consoleName"] == "BTF-CONSOLE"
    assert (rec["errorMask"], rec["cmdExeStartTime"], rec["maxCmdExeTime"]) == (7, 1700000000, 30)
    assert (rec["onLine"], rec["byPass"], rec["remote"], rec["busy"]) == (True, False, True, False)
    assert (rec["triggerArmed"], rec["rampOn"]) == (False, True)
    assert rec["currentPreSetting"] == 180.5
    assert rec["polaritySetting"] == -1
    assert rec["currentSetting"] == 179.25
    assert rec["slewRateSetting"] == 2.5
    assert rec["outputPolarity"] == -1
    assert rec["outputCurr"] == 179.123
    assert rec["slewRateReadout"] == 0.75
    assert rec["outputVolt"] == 9.5
    assert rec["faults"] == [1, 0, 0xFFFFFFFF, 3]


def test_encoder_reproduces_hand_built_bytes():
    raw = hand_built_mg1()
    assert encode(decode(raw, MG1), MG1) == raw


_i32 = st.integers(-(2**31), 2**31 - 1)
_u32 = st.integers(0, 2**32 - 1)
_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
_dbl = st.floats(allow_nan=False)


def _value(ftype: str):
    return {
        "string": _text,
        "i32": _i32,
        "u32": _u32,
        "bool": st.booleans(),
        "dbl": _dbl,
        "array_u32": st.lists(_u32, min_size=4, max_size=4),
    }[ftype]


records = st.fixed_dictionaries({f.name: _value(f.type) for f in MG1.fields})


@settings(max_examples=150, deadline=None)
@given(records)
def test_round_trip(values):
    assert decode(encode(values, MG1), MG1) == values


def test_nan_survives_round_trip():
    values = decode(hand_built_mg1(), MG1)
    values["outputCurr"] = math.nan
    assert math.isnan(decode(encode(values, MG1), MG1)["outputCurr"])


def test_every_truncation_is_a_decode_error_naming_device_and_key():
    raw = hand_built_mg1()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError) as exc:
            decode(raw[:cut], MG1, device="DHSTB001", key="DHSTB001_DYN")
        assert "DHSTB001" in str(exc.value) and "DHSTB001_DYN" in str(exc.value)


def test_trailing_bytes_are_an_error():
    with pytest.raises(DecodeError, match="trailing"):
        decode(hand_built_mg1() + b"\x00", MG1, device="X", key="X_DYN")


def test_garbage_length_prefix_is_an_error():
    with pytest.raises(DecodeError, match="declares size"):
        decode(b"\xff\xff\xff\xff" + b"\x00" * 200, MG1, device="X", key="X_DYN")
    with pytest.raises(DecodeError):
        decode(b"\x7f\x00\x00\x00" + b"junk", MG1)


def test_wrong_array_size_is_an_error():
    raw = hand_built_mg1()
    bad = raw[:-20] + struct.pack(">i3I", 3, 1, 2, 3)
    with pytest.raises(DecodeError, match="expects 4"):
        decode(bad, MG1, device="X", key="X_DYN")


def test_non_bytes_input_is_an_error():
    with pytest.raises(DecodeError, match="expected bytes"):
        decode("not bytes", MG1, device="X", key="X_DYN")  # type: ignore[arg-type]


def test_corrected_layout_is_a_data_change(tmp_path):
    """A layout file with another order decodes accordingly, no code change."""
    path = tmp_path / "alt.toml"
    path.write_text(
        'name = "ALT"\nfields = [\n  { name = "outputCurr", type = "dbl" },\n'
        '  { name = "status", type = "i32" },\n  { name = "ok", type = "bool" },\n]\n'
    )
    alt = load_layout(path)
    raw = struct.pack(">di", 12.5, 3) + b"\x01"
    assert decode(raw, alt) == {"outputCurr": 12.5, "status": 3, "ok": True}
    little = layout_from_mapping({"byte_order": "little", "fields": [{"name": "a", "type": "i32"}]})
    assert decode(struct.pack("<i", 5), little) == {"a": 5}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"fields": [{"name": "a", "type": "float"}]},
        {"fields": [{"name": "a", "type": "i32"}, {"name": "a", "type": "i32"}]},
        {"fields": [], "byte_order": "middle"},
    ],
)
def test_invalid_layouts_are_rejected(bad):
    with pytest.raises(ValueError, match="layout"):
        layout_from_mapping(bad)


def test_unknown_layout_name():
    with pytest.raises(ValueError, match="no layout"):
        load_layout("does_not_exist")


def test_encoder_names_the_bad_field():
    values = decode(hand_built_mg1(), MG1)
    del values["status"]
    with pytest.raises(ValueError, match="status"):
        encode(values, MG1)
    values = decode(hand_built_mg1(), MG1)
    values["faults"] = [1, 2]
    with pytest.raises(ValueError, match="faults"):
        encode(values, MG1)
