"""Helpers the global sweeps share: ADQL condition builders and record de-duplication.

Every user value reaches ADQL through `vosweep.registry._adql` literals and every column
name through `vosweep.adql.identifier`: the builders here take values, never ADQL text,
so that no constraint can change a query's structure. The de-duplication runs after the
merge, because the same dataset reaches a sweep through several services (mirrors,
collections served by two TAP services, one service registered twice).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from astropy.table import Table

from vosweep.adql import identifier
from vosweep.errors import UsageError
from vosweep.registry._adql import number_literal, sql_literal, string_literal

__all__ = [
    "KeyGroup",
    "drop_duplicates",
    "equals_any",
    "hashlist_any",
    "ints",
    "overlaps",
    "texts",
    "with_kind",
]

#: Columns whose values together identify a record (e.g. ``("obs_publisher_did",)``).
KeyGroup = tuple[str, ...]


def texts(value: Any, what: str) -> tuple[str, ...]:
    """One string or an iterable of them, each non-empty (a blank would match nothing)."""
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else value
    try:
        found = tuple(items)
    except TypeError:
        raise UsageError(f"{what} must be a string or a list of strings, got {value!r}") from None
    for item in found:
        if not isinstance(item, str) or not item.strip():
            raise UsageError(f"{what} values must be non-empty strings, got {item!r}")
        try:
            string_literal(item)  # control characters: refused now, naming the field
        except UsageError as exc:
            raise UsageError(f"{what}: {exc}") from None
    return found


def ints(value: Any, what: str) -> tuple[int, ...]:
    """One integer or an iterable of them (bools refused: ``True`` is no level)."""
    if value is None:
        return ()
    items = (value,) if not isinstance(value, (list, tuple, set, frozenset, range)) else value
    found = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise UsageError(f"{what} values must be integers, got {item!r}")
        found.append(int(item))
    return tuple(sorted(set(found)))


def equals_any(column: str, values: Sequence[object]) -> str:
    """``col = v`` for one value, ``col IN (...)`` for several."""
    if len(values) == 1:
        return f"{identifier(column)} = {sql_literal(values[0])}"
    return f"{identifier(column)} IN {sql_literal(list(values))}"


def hashlist_any(column: str, values: Sequence[str]) -> str:
    """Rows whose ``#``-separated list in *column* holds any of *values* (RegTAP's UDF)."""
    parts = [f"1 = ivo_hashlist_has({identifier(column)}, {string_literal(v)})" for v in values]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def overlaps(low_column: str, high_column: str, interval: tuple[float, float]) -> list[str]:
    """Conditions for ``[low_column, high_column]`` to overlap *interval* (open ends: none).

    A record with a NULL bound does not match that bound's condition: ADQL's three-valued
    logic, which is what services do too.
    """
    low, high = interval
    found = []
    if math.isfinite(high):
        found.append(f"{identifier(low_column)} <= {number_literal(high)}")
    if math.isfinite(low):
        found.append(f"{identifier(high_column)} >= {number_literal(low)}")
    return found


def _text_of(value: object) -> str:
    """A cell as comparable text: masked, None and blank all become ``""`` (never equal)."""
    if value is None or value is np.ma.masked:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def _column_texts(table: Table, name: str) -> list[str]:
    column = table[name]
    mask = np.ma.getmaskarray(column) if hasattr(column, "mask") else None
    values = column.tolist() if mask is None else np.asarray(column.data).tolist()
    if mask is not None:
        return ["" if m else _text_of(v) for v, m in zip(values, mask.tolist(), strict=True)]
    return [_text_of(v) for v in values]


def drop_duplicates(table: Table, groups: Iterable[KeyGroup]) -> tuple[Table, int]:
    """*table* without the records seen before, and how many were dropped.

    The first key group whose values are all non-empty in a record decides whether it
    is a duplicate: it is when that group's values were seen in a record kept before
    (under any group). A record with no complete group is always kept: masked and empty
    values never match. Groups naming a column the table lacks are ignored.
    """
    present = [g for g in groups if g and all(name in table.colnames for name in g)]
    if not present or len(table) == 0:
        return table, 0
    columns = {name: _column_texts(table, name) for g in present for name in g}
    seen: list[set[tuple[str, ...]]] = [set() for _ in present]
    keep = np.ones(len(table), dtype=bool)
    for row in range(len(table)):
        keys = [tuple(columns[name][row] for name in g) for g in present]
        complete = [all(key) for key in keys]
        decider = next((i for i, ok in enumerate(complete) if ok), None)
        if decider is None:
            continue
        if keys[decider] in seen[decider]:
            keep[row] = False
            continue
        for i, key in enumerate(keys):
            if complete[i]:
                seen[i].add(key)
    dropped = int((~keep).sum())
    return (table if dropped == 0 else table[keep]), dropped


def with_kind(fanout_kwargs: dict[str, Any], kind: str, **info: Any) -> dict[str, Any]:
    """*fanout_kwargs* with the sweep's ``checkpoint_info`` when a checkpoint is kept.

    ``kind`` is what tells `resume` how to finish the sweep (``finish_obscore``...); the
    caller's own ``checkpoint_info`` entries are kept beside it.
    """
    if fanout_kwargs.get("checkpoint") is None:
        return fanout_kwargs
    given = fanout_kwargs.get("checkpoint_info") or {}
    return {**fanout_kwargs, "checkpoint_info": {**given, **info, "kind": kind}}
