"""Schema harmonisation: one output type, unit and metadata per column name.

Services disagree: an ``id`` is a long here and text there, a magnitude column is float32
in one catalogue and float64 in the next, a radius in arcsec here and deg there. Rather
than failing (astropy's vstack raises on int-vs-str), each column gets the narrowest type
every input converts to losslessly enough for a merge: numbers promote numerically, and
anything mixed with text becomes text. Convertible units are converted to the first one
seen; incompatible units keep their values and the column loses its unit, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy import units as u

from vosweep.protocols.fastvot._model import ColumnData

__all__ = ["ColumnPlan", "column_mask", "column_values", "plan_column"]

_NUMERIC = frozenset("biufc")
_TEXT = frozenset("US")


@dataclass(slots=True)
class ColumnPlan:
    """How one output column is built.

    Attributes:
        name: The column name.
        dtype: The output dtype (``object`` for ragged or exotic inputs).
        shape: Per-row shape (``()`` for scalars).
        unit: The output unit, if any.
        factors: Per-input multiplicative unit conversion factors (1.0: none).
        meta: Column metadata (UCD, utype, ...) of the first input that had any.
        description: The first non-empty description.
        note: Why types or units were changed, if they were.
    """

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    unit: u.UnitBase | None
    factors: list[float] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    note: str | None = None


def column_values(column: Any) -> np.ndarray[Any, Any]:
    """The raw values of an astropy column or of the fast decoder's `ColumnData`."""
    if isinstance(column, ColumnData):
        return column.data
    return np.ma.getdata(column)


def column_mask(column: Any) -> np.ndarray[Any, Any]:
    """The null mask (same shape as the values) of either kind of column."""
    if isinstance(column, ColumnData):
        return column.mask
    return np.ma.getmaskarray(column)


def _effective_dtype(column: Any) -> np.dtype[Any]:
    """The column's dtype, reading object columns that hold only text as text.

    astropy gives variable-length ``char`` VOTable fields an object dtype; they are text,
    and must merge as text with the fixed-width ``char`` columns of other services.
    """
    dtype: np.dtype[Any] = np.dtype(column.dtype)
    if dtype.kind != "O" or column.ndim != 1:
        return dtype
    values = column_values(column)
    mask = column_mask(column)
    width = 1
    for value, masked in zip(values, mask, strict=True):
        if masked or value is None:
            continue
        if not isinstance(value, str):
            return dtype
        width = max(width, len(value))
    return np.dtype(f"U{width}")


def _text_width(dtype: np.dtype[Any]) -> int:
    if dtype.kind == "U":
        return dtype.itemsize // 4
    if dtype.kind == "S":
        return dtype.itemsize
    if dtype.kind == "b":
        return 5
    if dtype.kind in "iu":
        return 21
    return 32  # floats and complex, shortest repr


def plan_column(name: str, columns: Sequence[Any]) -> ColumnPlan:
    """Decide the output type, unit and metadata of column *name* from its inputs."""
    dtypes = [_effective_dtype(c) for c in columns]
    kinds = {d.kind for d in dtypes}
    shapes = {tuple(c.shape[1:]) for c in columns}
    note = None
    if len(shapes) > 1 or "O" in kinds or not kinds <= (_NUMERIC | _TEXT):
        dtype: np.dtype[Any] = np.dtype(object)
        shape: tuple[int, ...] = ()
        if len(kinds) > 1 or len(shapes) > 1:
            note = "mixed shapes or types stored as objects"
    elif kinds <= _NUMERIC:
        dtype = np.result_type(*dtypes)
        shape = next(iter(shapes))
    else:
        dtype = np.dtype(f"U{max(1, *(_text_width(d) for d in dtypes))}")
        shape = next(iter(shapes))
        if kinds & _NUMERIC:
            note = "numbers and text mixed: stored as text"

    unit, factors, unit_note = _plan_units(columns, numeric=dtype.kind in "biufc")
    if dtype.kind in "biu" and any(f != 1.0 for f in factors):
        dtype = np.dtype(np.float64)
    note = "; ".join(n for n in (note, unit_note) if n) or None
    meta: dict[str, Any] = {}
    description = None
    for column in columns:
        if not meta and column.meta:
            meta = dict(column.meta)
        if description is None and column.description:
            description = column.description
    return ColumnPlan(name, dtype, shape, unit, factors, meta, description, note)


def _plan_units(
    columns: Sequence[Any], *, numeric: bool
) -> tuple[u.UnitBase | None, list[float], str | None]:
    units = [getattr(c, "unit", None) for c in columns]
    target = next((unit for unit in units if unit is not None), None)
    factors = [1.0] * len(columns)
    if target is None:
        return None, factors, None
    note = None
    for i, unit in enumerate(units):
        if unit is None or unit == target:
            continue
        try:
            factors[i] = float(u.Unit(unit).to(target))
        except (u.UnitsError, ValueError, TypeError):
            note = f"incompatible units ({target} vs {unit}): unit dropped"
            return None, [1.0] * len(columns), note
        if not numeric:
            factors[i] = 1.0
        note = f"values converted to {target}"
    return target, factors, note
