# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Differential checks: the fast decoder's results against astropy's, attribute by attribute.

Shared by ``tests/unit/test_fastvot.py`` and ``tests/corpus/test_fastvot_corpus.py``
(``tests/`` is on ``sys.path`` because it holds a ``conftest.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.table import MaskedColumn, Table

from vosweep.errors import ServiceError
from vosweep.protocols.base import Parsed
from vosweep.protocols.fastvot import TableData
from vosweep.protocols.votable import parse_votable


def outcome(body: bytes, *, fast: bool) -> Parsed | ServiceError:
    """`parse_votable`'s result, or the ServiceError it raised."""
    try:
        return parse_votable(body, fast=fast)
    except ServiceError as exc:
        return exc


def assert_same_outcome(fast: Parsed | ServiceError, slow: Parsed | ServiceError) -> None:
    """Both readings ended the same way: same error (type and message) or same tables."""
    if isinstance(slow, ServiceError) or isinstance(fast, ServiceError):
        assert type(fast) is type(slow), (fast, slow)
        assert str(fast) == str(slow)
        return
    assert (fast.status, fast.message) == (slow.status, slow.message)
    assert len(fast.tables) == len(slow.tables)
    assert fast.rows == slow.rows
    for mine, theirs in zip(fast.tables, slow.tables, strict=True):
        assert_same_table(mine, theirs)


def as_table(table: Table | TableData) -> Table:
    """An astropy table from either kind of result table."""
    return table.to_table() if isinstance(table, TableData) else table


def assert_same_table(mine: Table | TableData, theirs: Table | TableData) -> None:
    """Every attribute astropy's ``to_table`` sets is equal, values NaN-aware."""
    if isinstance(mine, TableData):
        assert len(mine) == len(mine.to_table())
        assert mine.colnames == [c.name for c in mine.columns]
    a, b = as_table(mine), as_table(theirs)
    assert a.colnames == b.colnames
    assert len(a) == len(b)
    assert a.masked == b.masked
    assert_same_value(dict(a.meta), dict(b.meta))
    for name in a.colnames:
        x, y = a[name], b[name]
        where = f"column {name!r}"
        assert type(x) is type(y) is MaskedColumn, where
        assert x.dtype == y.dtype, (where, x.dtype, y.dtype)
        assert x.shape == y.shape, where
        assert x.unit == y.unit, (where, x.unit, y.unit)
        assert type(x.unit) is type(y.unit), where
        assert x.description == y.description, where
        assert x.format == y.format, (where, x.format, y.format)
        assert_same_value(dict(x.meta), dict(y.meta))
        assert list(x.meta) == list(y.meta), where
        mask_x, mask_y = np.ma.getmaskarray(x), np.ma.getmaskarray(y)
        assert mask_x.dtype == mask_y.dtype, where
        assert np.array_equal(mask_x, mask_y), (where, mask_x, mask_y)
        assert_same_array(np.ma.getdata(x), np.ma.getdata(y), where)


def assert_same_array(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], where: str) -> None:
    """Equal arrays: same dtype and shape, NaN equal to NaN, objects of the same type."""
    assert x.dtype == y.dtype, where
    assert x.shape == y.shape, where
    if x.dtype.kind == "O":
        for u, v in zip(x.ravel().tolist(), y.ravel().tolist(), strict=True):
            assert_same_value(u, v)
    elif x.dtype.kind in "fc":
        assert np.array_equal(x, y, equal_nan=True), (where, x, y)
    else:
        assert np.array_equal(x, y), (where, x, y)


def assert_same_value(x: Any, y: Any) -> None:
    """Deep equality for metadata: dicts, numpy (masked) arrays, floats (NaN-aware)."""
    assert type(x) is type(y), (x, y)
    if isinstance(x, dict):
        assert list(x) == list(y), (x, y)
        for key in x:
            assert_same_value(x[key], y[key])
    elif isinstance(x, np.ma.MaskedArray):
        assert np.array_equal(np.ma.getmaskarray(x), np.ma.getmaskarray(y))
        assert_same_array(np.ma.getdata(x), np.ma.getdata(y), "masked value")
    elif isinstance(x, np.ndarray):
        assert_same_array(x, y, "value")
    elif isinstance(x, float) and math.isnan(x):
        assert math.isnan(y)
    else:
        assert x == y, (x, y)
