"""Column metadata and scalar values exactly as astropy's VOTable reader makes them.

Both decoders (TABLEDATA and BINARY) must hand back what
``astropy.io.votable``'s ``Field.to_table_column`` and its converters would: the
metadata keys in the same order, VALUES/@null parsed the way astropy parses it (an
unreadable integer null silently becomes 0, a float one is dropped), a display format
only for scalar floats. The scalar parsers here follow astropy's ``converters.py`` with
``verify="ignore"``; they are used for PARAM values, VALUES/@null and the cells that the
vectorised TABLEDATA paths cannot take.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import numpy as np

from vosweep.protocols.fastvot._model import ColumnData, FieldMeta, parse_unit

__all__ = [
    "FLOAT_TYPES",
    "INT_RANGES",
    "NUMPY_TYPES",
    "build_column",
    "column_meta",
    "limit_value",
    "null_value",
    "parse_bool_text",
    "parse_float_text",
    "parse_int_text",
    "values_meta",
]

#: Scalar numpy dtypes astropy gives each numeric VOTable datatype (native byte order).
NUMPY_TYPES: dict[str, str] = {
    "boolean": "bool",
    "unsignedByte": "u1",
    "short": "i2",
    "int": "i4",
    "long": "i8",
    "float": "f4",
    "double": "f8",
}
FLOAT_TYPES = frozenset({"float", "double"})
#: The range astropy clips each integer datatype's values to (warning W51, no error).
INT_RANGES: dict[str, tuple[int, int]] = {
    "unsignedByte": (0, 255),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_STRING_TYPES = frozenset({"char", "unicodeChar"})
#: astropy's boolean spellings (looked up after ``str.upper``); anything else raises E05.
_BOOLEANS: dict[str, tuple[bool, bool]] = {
    "TRUE": (True, False),
    "FALSE": (False, False),
    "1": (True, False),
    "0": (False, False),
    "T": (True, False),
    "F": (False, False),
    "\0": (False, True),
    " ": (False, True),
    "?": (False, True),
    "": (False, True),
}


def parse_int_text(
    text: str, datatype: str, *, empty_is_null: bool, null: int | None = None
) -> tuple[int, bool]:
    """One integer cell as astropy's ``Integer.parse`` reads it: (value, masked).

    Empty and ``nan`` give the null (or 0); hexadecimal needs ``0x``; values outside the
    datatype's range are clipped (astropy only warns). Whether an empty cell is masked
    depends on the VOTable version (*empty_is_null*: 1.3 or later).

    Raises:
        ValueError: What astropy raises too (then the whole document is unreadable).
    """
    value = text.lower()
    masked = False
    if value == "":
        masked = empty_is_null
        number = 0 if null is None else null
    elif value == "nan":
        masked = True
        number = 0 if null is None else null
    elif value.startswith("0x"):
        number = int(value[2:], 16)  # noqa: FURB166 - base 0 refuses "0x-5", astropy not
    else:
        number = int(value, 10)
    if null is not None and number == null:
        masked = True
    low, high = INT_RANGES[datatype]
    return min(max(number, low), high), masked


def parse_float_text(text: str) -> float | None:
    """One float cell as astropy's permissive parser reads it; None if unreadable.

    astropy (with ``verify="ignore"``) masks a cell it cannot read as a number instead
    of failing: IRSA, for one, writes ``null`` in float cells.
    """
    try:
        return float(text)
    except ValueError:
        return None


def parse_bool_text(text: str) -> tuple[bool, bool]:
    """One boolean cell as astropy's ``Boolean.parse`` reads it: (value, masked).

    Raises:
        ValueError: For anything but astropy's spellings (astropy raises E05).
    """
    try:
        return _BOOLEANS[text.upper()]
    except KeyError:
        raise ValueError(f"invalid boolean value {text!r}") from None


def null_value(field: FieldMeta) -> Any:
    """VALUES/@null parsed as astropy parses it, or None when astropy keeps no null.

    astropy parses the attribute with the field's own scalar converter: strings stay as
    they are, booleans and integers that do not parse become ``False``/``0`` (warning
    W36), clipped integers stay clipped, and an unreadable float null is dropped.
    """
    text = field.null
    if text is None:
        return None
    datatype = field.datatype
    if datatype in _STRING_TYPES or datatype not in NUMPY_TYPES:
        return text
    if datatype in FLOAT_TYPES:
        return parse_float_text(text)
    if datatype == "boolean":
        try:
            return parse_bool_text(text)[0]
        except ValueError:
            return False
    try:
        return parse_int_text(text, datatype, empty_is_null=True)[0]
    except ValueError:
        return 0


def limit_value(datatype: str, arraysize: str | None, text: str) -> Any:
    """A VALUES/MIN or MAX value as astropy parses it (scalar fields and strings only).

    astropy parses it with the field's converter before VALUES/@null is known: an
    unreadable float limit is dropped (None), an unreadable integer or boolean raises.

    Raises:
        ValueError: What astropy raises too.
    """
    if datatype in _STRING_TYPES:
        return text
    if arraysize is not None:
        raise ValueError("limits of array fields are not reproduced")
    if datatype in FLOAT_TYPES:
        return parse_float_text(text)
    if datatype == "boolean":
        return parse_bool_text(text)[0]
    return parse_int_text(text, datatype, empty_is_null=True)[0]


def _inclusive(text: str) -> bool:
    # astropy's Values.min_inclusive setter
    if text == "yes":
        return True
    if text == "no":
        return False
    return bool(text)


def values_meta(field: FieldMeta) -> dict[str, Any]:
    """What astropy's ``Values.to_table_column`` puts in ``meta["values"]`` (may be empty)."""
    values: dict[str, Any] = {}
    if field.values_id is not None:
        values["ID"] = field.values_id
    null = null_value(field)
    if null is not None:
        values["null"] = null
    for key, limit in (("min", field.minimum), ("max", field.maximum)):
        if limit is not None:
            value = limit_value(field.datatype, field.arraysize, limit[0])
            if value is not None:
                values[key] = {"value": value, "inclusive": _inclusive(limit[1])}
    if field.options:
        values["options"] = dict(field.options)
    return values


def float_format(field: FieldMeta) -> str | None:
    """Astropy's ``FloatingPoint.output_format`` for *field*; None when it has none.

    ``{!s:>}`` (no width, no precision) is what astropy leaves out of ``Column.format``.
    """
    precision, width = field.precision, field.width
    parts = ["{!s:>" if precision is None else "{:"]
    if width is not None:
        parts.append(str(int(width)))
    if precision is not None:
        if precision.startswith("E"):
            parts.append(f".{int(precision[1:]):d}g")
        elif precision.startswith("F"):
            parts.append(f".{int(precision[1:]):d}f")
        else:
            parts.append(f".{int(precision):d}f")
    parts.append("}")
    fmt = "".join(parts)
    return None if fmt == "{!s:>}" else fmt


def column_meta(
    field: FieldMeta, version: str = "1.4"
) -> tuple[Any, str | None, dict[str, Any], str | None]:
    """(unit, description, meta, format) of the astropy column for *field*.

    Only a scalar float field has astropy's ``FloatingPoint`` converter, hence a
    format: arrays of floats get none. The meta dict is the caller's own.
    """
    unit, description, meta, fmt = _cached_meta(field, version)
    return unit, description, _own(meta), fmt


def _own(meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cached meta dict that its new owner may change freely."""
    if "values" in meta or "links" in meta:
        return copy.deepcopy(meta)
    return dict(meta)


@lru_cache(maxsize=8192)
def _column_meta(
    field: FieldMeta, version: str
) -> tuple[Any, str | None, dict[str, Any], str | None]:
    """`column_meta`, cached: a sweep meets the same FIELDs (immutable) again and again.

    The dict returned is shared by every caller: `column_meta` hands out copies.
    """
    meta: dict[str, Any] = {}
    for key in ("ucd", "width", "precision", "utype", "xtype"):
        value = getattr(field, key)
        if value is not None:
            meta[key] = int(value) if key == "width" else value
    values = values_meta(field)
    if values:
        meta["values"] = values
    if field.links:
        meta["links"] = [dict(link) for link in field.links]
    fmt = None
    if field.datatype in FLOAT_TYPES:
        if field.arraysize is None:
            fmt = float_format(field)
    elif field.datatype in _STRING_TYPES:
        meta["_votable_string_dtype"] = field.datatype
        if field.arraysize is not None and field.arraysize.endswith("*"):
            meta["_votable_arraysize"] = field.arraysize
    unit = parse_unit(field.unit, version) if field.unit is not None else None
    return unit, field.description, meta, fmt


#: `_column_meta` by FIELD object: the skeleton reader hands out one shared FieldMeta per
#: distinct FIELD, so an identity lookup finds it before the LRU cache hashes its eighteen
#: attributes (a few per cent of a wide answer). Each entry holds its FieldMeta, so that
#: no other object can take its id meanwhile.
_META_BY_ID: dict[int, tuple[FieldMeta, str, tuple[Any, str | None, dict[str, Any], str | None]]]
_META_BY_ID = {}
_META_BY_ID_SIZE = 8192


def _cached_meta(
    field: FieldMeta, version: str
) -> tuple[Any, str | None, dict[str, Any], str | None]:
    """`_column_meta` through the identity lookup (the dict returned is shared)."""
    known = _META_BY_ID.get(id(field))
    if known is not None and known[0] is field and known[1] == version:
        return known[2]
    found = _column_meta(field, version)
    if len(_META_BY_ID) >= _META_BY_ID_SIZE:
        _META_BY_ID.clear()
    _META_BY_ID[id(field)] = (field, version, found)
    return found


def build_column(
    field: FieldMeta, data: np.ndarray[Any, Any], mask: np.ndarray[Any, Any], version: str
) -> ColumnData:
    """A decoded column with astropy's metadata for *field* (one place for both decoders)."""
    unit, description, meta, fmt = _cached_meta(field, version)  # `column_meta`, inlined
    return ColumnData(field.name, data, mask, unit, description, _own(meta), fmt)
