"""Table-driven decoder and encoder of flattened LabVIEW clusters (big-endian).

The layout of a record is data (``hw_interfaces/layouts/*.toml``): an ordered list of fields
with a type each. Correcting a layout is an edit of that file, never of this module.

Supported field types (LabVIEW flattening rules, facts file section 7):

=============  ==========================================================
``string``     I32 byte count, then the bytes (decoded as Latin-1)
``i32``        signed 32-bit integer
``u32``        unsigned 32-bit integer
``bool``       one byte (0 false, anything else true)
``dbl``        IEEE 754 double
``array_u32``  I32 dimension size, then that many U32 (``length``: expected size)
=============  ==========================================================
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import DecodeError

FIELD_TYPES = ("string", "i32", "u32", "bool", "dbl", "array_u32")

#: Longest string / array a record may declare: guards against garbage length prefixes.
MAX_STRING_BYTES = 4096
MAX_ARRAY_LEN = 4096

_FMT = {"i32": "i", "u32": "I", "dbl": "d", "bool": "B"}
_SIZE = {"i32": 4, "u32": 4, "dbl": 8, "bool": 1}


@dataclass(frozen=True)
class FieldSpec:
    """One field of a cluster: its name, type and (arrays) expected length."""

    name: str
    type: str
    length: int | None = None


@dataclass(frozen=True)
class Layout:
    """An ordered record layout; ``byte_order`` is ``big`` (LabVIEW) or ``little``."""

    name: str
    fields: tuple[FieldSpec, ...]
    byte_order: str = "big"
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def _endian(self) -> str:
        return ">" if self.byte_order == "big" else "<"


def layout_from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> Layout:
    """Build and validate a :class:`Layout` from parsed TOML/JSON data."""
    try:
        raw_fields = data["fields"]
        name = str(data.get("name", source))
    except (KeyError, TypeError):
        raise ValueError(f"layout {source}: needs a 'fields' list") from None
    fields = []
    seen: set[str] = set()
    for i, f in enumerate(raw_fields):
        fname, ftype = f.get("name"), f.get("type")
        if not fname or ftype not in FIELD_TYPES:
            raise ValueError(
                f"layout {source}: field #{i} {f!r} needs a name and a type among {FIELD_TYPES}"
            )
        if fname in seen:
            raise ValueError(f"layout {source}: field '{fname}' appears twice")
        seen.add(fname)
        length = f.get("length")
        fields.append(FieldSpec(fname, ftype, int(length) if length is not None else None))
    order = data.get("byte_order", "big")
    if order not in ("big", "little"):
        raise ValueError(f"layout {source}: byte_order must be 'big' or 'little', not {order!r}")
    return Layout(name, tuple(fields), order, str(data.get("description", "")))


def load_layout(name_or_path: str | Path = "mg1_dyn") -> Layout:
    """Load a layout shipped in ``hw_interfaces/layouts`` (by stem) or from a TOML path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return layout_from_mapping(tomllib.loads(path.read_text()), str(path))
    res = resources.files("hw_interfaces") / "layouts" / f"{name_or_path}.toml"
    if not res.is_file():
        raise ValueError(f"no layout '{name_or_path}' in hw_interfaces/layouts or as a file")
    return layout_from_mapping(tomllib.loads(res.read_text()), f"layouts/{name_or_path}.toml")


def decode(data: bytes, layout: Layout, *, device: str = "", key: str = "") -> dict[str, Any]:
    """Decode one flattened cluster into ``{field: value}``.

    Raises :class:`DecodeError` naming device, key, field and byte offset when the bytes are
    truncated, carry an implausible length prefix or leave trailing bytes (wrong layout).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(
            f"{device} {key}: expected bytes, got {type(data).__name__}", device=device, key=key
        )
    buf = bytes(data)
    end = layout._endian
    pos = 0
    out: dict[str, Any] = {}

    def need(n: int, field: FieldSpec) -> None:
        if pos + n > len(buf):
            raise DecodeError(
                f"{device} {key}: record truncated at field '{field.name}' ({field.type}): "
                f"needs {n} bytes at offset {pos}, record has {len(buf)} (layout {layout.name})",
                device=device,
                key=key,
            )

    def count(field: FieldSpec, limit: int) -> int:
        nonlocal pos
        need(4, field)
        (n,) = struct.unpack_from(end + "i", buf, pos)
        pos += 4
        if n < 0 or n > limit:
            raise DecodeError(
                f"{device} {key}: field '{field.name}' declares size {n} at offset {pos - 4} "
                f"(allowed 0..{limit}; garbage or wrong layout {layout.name})",
                device=device,
                key=key,
            )
        return n

    for field in layout.fields:
        if field.type == "string":
            n = count(field, MAX_STRING_BYTES)
            need(n, field)
            out[field.name] = buf[pos : pos + n].decode("latin-1")
            pos += n
        elif field.type == "array_u32":
            n = count(field, MAX_ARRAY_LEN)
            if field.length is not None and n != field.length:
                raise DecodeError(
                    f"{device} {key}: array '{field.name}' has {n} elements, layout "
                    f"{layout.name} expects {field.length}",
                    device=device,
                    key=key,
                )
            need(4 * n, field)
            out[field.name] = list(struct.unpack_from(f"{end}{n}I", buf, pos))
            pos += 4 * n
        else:
            size = _SIZE[field.type]
            need(size, field)
            (value,) = struct.unpack_from(end + _FMT[field.type], buf, pos)
            pos += size
            out[field.name] = bool(value) if field.type == "bool" else value
    if pos != len(buf):
        raise DecodeError(
            f"{device} {key}: {len(buf) - pos} trailing bytes after the last field of layout "
            f"{layout.name} (record {len(buf)} bytes): wrong layout or garbage",
            device=device,
            key=key,
        )
    return out


def encode(values: Mapping[str, Any], layout: Layout) -> bytes:
    """Flatten ``values`` with ``layout`` (used by the simulator). Every field is required."""
    end = layout._endian
    parts: list[bytes] = []
    for field in layout.fields:
        if field.name not in values:
            raise ValueError(f"encode {layout.name}: missing field '{field.name}'")
        v = values[field.name]
        try:
            if field.type == "string":
                raw = str(v).encode("latin-1")
                parts.append(struct.pack(end + "i", len(raw)) + raw)
            elif field.type == "array_u32":
                items = [int(x) for x in v]
                if field.length is not None and len(items) != field.length:
                    raise ValueError(f"needs {field.length} elements, got {len(items)}")
                parts.append(struct.pack(f"{end}i{len(items)}I", len(items), *items))
            elif field.type == "bool":
                parts.append(struct.pack("B", 1 if v else 0))
            elif field.type == "dbl":
                parts.append(struct.pack(end + "d", float(v)))
            else:
                parts.append(struct.pack(end + _FMT[field.type], int(v)))
        except (struct.error, ValueError, TypeError, UnicodeEncodeError) as exc:
            raise ValueError(f"encode {layout.name}: field '{field.name}' = {v!r}: {exc}") from None
    return b"".join(parts)


def is_finite_number(value: Any) -> bool:
    """True for a finite int/float (helper for range checks on decoded values)."""
    return isinstance(value, (int, float)) and math.isfinite(value)
