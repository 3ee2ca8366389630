"""Column metadata exactly as astropy's ``Field.to_table_column`` sets it."""

from __future__ import annotations

from typing import Any

import numpy as np

from vosweep.protocols.fastvot._model import FieldMeta, parse_unit

__all__ = ["FLOAT_TYPES", "NUMPY_TYPES", "column_meta", "null_value"]

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


def null_value(field: FieldMeta) -> Any:
    """The VALUES/@null of an integer or float field, parsed as astropy parses it."""
    if field.null is None:
        return None
    dtype = NUMPY_TYPES.get(field.datatype)
    if dtype is None or field.datatype == "boolean":
        return field.null
    if field.datatype in FLOAT_TYPES:
        return float(field.null)
    text = field.null.strip()
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _float_format(field: FieldMeta) -> str | None:
    # astropy's FloatingPoint.output_format; "{!s:>}" (no width, no precision) means none.
    precision, width = field.precision, field.width
    parts = ["{!s:>" if precision is None else "{:"]
    if width is not None:
        parts.append(str(width))
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
    """(unit, description, meta, format) of the astropy column for *field*."""
    meta: dict[str, Any] = {}
    for key in ("ucd", "width", "precision", "utype", "xtype"):
        value = getattr(field, key)
        if value is not None:
            meta[key] = int(value) if key == "width" else value
    if field.null is not None:
        meta["values"] = {"null": null_value(field)}
    fmt = None
    if field.datatype in FLOAT_TYPES:
        fmt = _float_format(field)
    elif field.datatype in {"char", "unicodeChar"}:
        meta["_votable_string_dtype"] = field.datatype
        if field.arraysize is not None and field.arraysize.endswith("*"):
            meta["_votable_arraysize"] = field.arraysize
    unit = parse_unit(field.unit, version) if field.unit is not None else None
    return unit, field.description, meta, fmt


def empty_mask(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """An all-False mask."""
    return np.zeros(shape, dtype=bool)
