"""ADQL literals: the only way a value from the caller gets into a registry query.

Every value goes through `sql_literal`, which quotes strings (single quotes doubled, the
only escape ADQL has: a backslash is an ordinary character), writes numbers with `repr`
after a finiteness check, and refuses what has no safe literal form (NUL and other control
characters, lone surrogates, booleans, NaN, infinities, unknown types). Together with
templates that never contain caller data, this is what keeps a constraint value from
changing the structure of a query.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import unicodedata
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
from astropy.time import Time

from vosweep.errors import UsageError

__all__ = [
    "call",
    "number_literal",
    "sql_literal",
    "string_literal",
]

#: Unicode categories no literal may contain: control characters and lone surrogates.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs"})


def string_literal(value: str) -> str:
    """Return *value* as an ADQL character literal.

    Raises:
        UsageError: *value* holds a control character (NUL, newline, ...) or a lone
            surrogate: servers differ on those, and no search needs them.
    """
    for index, char in enumerate(value):
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise UsageError(
                f"{value!r} contains the control character U+{ord(char):04X} at position"
                f" {index}; registry queries accept printable text only"
            )
    return "'" + value.replace("'", "''") + "'"


def number_literal(value: Any) -> str:
    """Return a finite real number as an ADQL numeric literal (``repr`` of the value).

    Raises:
        UsageError: *value* is a bool, not a real number, or NaN/infinite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy.bool_ is not a numbers.Real, so it ends here too.
        raise UsageError(f"{value!r} is not a number")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    as_float = float(value)
    if not math.isfinite(as_float):
        raise UsageError(f"{value!r} is not a finite number")
    return repr(as_float)


def _time_literal(value: dt.date | dt.datetime) -> str:
    """ISO 8601 as RegTAP stores its timestamps: UTC, no offset."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return string_literal(value.isoformat())


def sql_literal(value: Any) -> str:
    """Return *value* as an ADQL literal.

    Strings (and UTF-8 bytes) become character literals; ints and finite floats (numpy
    scalars included) numeric literals; ``datetime``/``date`` and astropy ``Time`` ISO
    timestamps in UTC (RegTAP's ``created``/``updated``); sets and sequences a parenthesised
    comma list, for ``IN`` (sets sorted, so the query is reproducible).

    Raises:
        UsageError: The value has no safe literal form; the message names it.
    """
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, bytes):
        try:
            return string_literal(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"{value!r} is not UTF-8 text") from None
    if isinstance(value, dt.date):
        return _time_literal(value)
    if isinstance(value, Time):
        if not value.isscalar:
            raise UsageError(f"{value!r} is not a single point in time")
        return _time_literal(value.utc.to_datetime())
    if isinstance(value, numbers.Number | np.bool_):
        return number_literal(value)
    if isinstance(value, AbstractSet):
        try:
            items = sorted(value)
        except TypeError:  # mixed types: any fixed order will do
            items = sorted(value, key=repr)
        return _list_literal(items, value)
    if isinstance(value, Sequence):
        return _list_literal(value, value)
    raise UsageError(f"cannot write {value!r} (a {type(value).__name__}) as an ADQL literal")


def _list_literal(items: Iterable[Any], original: object) -> str:
    parts = [sql_literal(item) for item in items]
    if not parts:
        raise UsageError(f"{original!r} is empty; a list in a query needs at least one value")
    return "(" + ", ".join(parts) + ")"


def call(function: str, *literals: str) -> str:
    """Return ``function(lit1, lit2, ...)`` from already-made literals."""
    return f"{function}({', '.join(literals)})"
