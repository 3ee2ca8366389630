# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Variable-length arrays of numbers and booleans (``arraysize="*"`` or ``"n*"``).

Real services send them: DALI polygons (``datatype="double" arraysize="*"
xtype="polygon"``), ESA's lists of ids, SIA's pixel scales. astropy reads each cell into
a masked array of Python scalars; the fast decoder must give exactly the same objects,
in TABLEDATA, BINARY and BINARY2 alike. Documents are written by hand here (astropy's
writer cannot be fed such cells simply), and every one is read by both decoders.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastvot_compare import assert_same_outcome, outcome
from vosweep.protocols import fastvot
from vosweep.protocols.fastvot import TableData
from vosweep.protocols.votable import parse_votable

#: struct formats and hypothesis strategies per datatype.
_FORMATS = {
    "double": ">d",
    "float": ">f",
    "long": ">q",
    "int": ">i",
    "short": ">h",
    "unsignedByte": ">B",
    "boolean": "c",
}
_INTEGERS = {
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "unsignedByte": (0, 255),
}


def document(fields: str, data: str, version: str = "1.4") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><VOTABLE version="{version}">'
        f"<RESOURCE><TABLE>{fields}<DATA>{data}</DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


def field(datatype: str, arraysize: str, null: str | None, name: str = "v") -> str:
    values = f'<VALUES null="{null}"/>' if null is not None else ""
    return (
        f'<FIELD name="{name}" datatype="{datatype}" arraysize="{arraysize}" unit="deg"'
        f' xtype="polygon">{values}</FIELD>'
    )


def item_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return repr(value) if isinstance(value, float) else str(value)


def tabledata(rows: list[list[list[Any]]], separators: list[str]) -> str:
    cells = []
    for row in rows:
        texts = []
        for k, items in enumerate(row):
            sep = separators[k % len(separators)]
            texts.append(f"<TD>{sep.join(item_text(v) for v in items)}</TD>")
        cells.append("<TR>" + "".join(texts) + "</TR>")
    return "<TABLEDATA>" + "".join(cells) + "</TABLEDATA>"


def binary(rows: list[list[list[Any]]], datatypes: list[str], flags: list[int] | None) -> str:
    stream = b""
    for r, row in enumerate(rows):
        if flags is not None:
            stream += bytes([flags[r] & (0xFF << (8 - len(row)) & 0xFF)])
        for items, datatype in zip(row, datatypes, strict=True):
            stream += struct.pack(">i", len(items))
            stream += b"".join(struct.pack(_FORMATS[datatype], v) for v in items)
    kind = "BINARY" if flags is None else "BINARY2"
    text = base64.encodebytes(stream).decode()
    return f'<{kind}><STREAM encoding="base64">{text}</STREAM></{kind}>'


def same_as_astropy(body: bytes, *, fast: bool = True) -> None:
    assert (fastvot.decode(body) is not None) is fast
    assert_same_outcome(outcome(body, fast=True), outcome(body, fast=False))


@st.composite
def columns(draw: st.DrawFn) -> tuple[str, str, str | None, st.SearchStrategy[Any]]:
    datatype = draw(st.sampled_from(list(_FORMATS)))
    arraysize = draw(st.sampled_from(["*", "*", "2*", "10*"]))
    items: st.SearchStrategy[Any]
    null: str | None = None
    if datatype == "boolean":
        items = st.sampled_from([b"T", b"F", b"t", b"f", b"1", b"0", b"?"])
    elif datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]
        items = st.integers(low, high)
        if draw(st.booleans()):
            null = str(draw(st.integers(low, high)))
            items = st.one_of(items, st.just(int(null)))
    else:
        width = 32 if datatype == "float" else 64
        items = st.floats(width=width, allow_infinity=True, allow_nan=True)
        if draw(st.booleans()):
            null = draw(st.sampled_from(["-999", "-99.9", "1e20", "0"]))
            items = st.one_of(items, st.just(float(null)))
    return datatype, arraysize, null, items


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[str], list[list[list[Any]]]]:
    specs = draw(st.lists(columns(), min_size=1, max_size=4))
    rows = draw(
        st.lists(
            st.tuples(*(st.lists(spec[3], max_size=5) for spec in specs)).map(list),
            max_size=6,
        )
    )
    fields = [field(d, a, n, name=f"c{i}") for i, (d, a, n, _) in enumerate(specs)]
    return fields, [spec[0] for spec in specs], rows


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tables(), st.sampled_from(["tabledata", "binary", "binary2"]), st.data())
def test_random_variable_arrays_match_astropy(
    table: tuple[list[str], list[str], list[list[list[Any]]]], serialisation: str, data: Any
) -> None:
    """Random schemas and cells, in each serialisation: same tables as astropy's."""
    fields, datatypes, rows = table
    if serialisation == "tabledata":
        # (" , " would split into an empty item between the two: see test_tabledata_cells)
        separators = data.draw(st.lists(st.sampled_from([" ", "  ", ",", ", "]), min_size=1))
        rows = [
            [[v for v in items if not (isinstance(v, float) and math.isinf(v))] for items in r]
            for r in rows
        ]  # astropy writes infinities as +InF/-InF, which it cannot read back either
        payload = tabledata(rows, separators)
    else:
        flags = data.draw(st.lists(st.integers(0, 255), min_size=len(rows), max_size=len(rows)))
        payload = binary(rows, datatypes, flags if serialisation == "binary2" else None)
    body = document("".join(fields), payload)
    assert_same_outcome(outcome(body, fast=True), outcome(body, fast=False))
    assert fastvot.decode(body) is not None


@pytest.mark.parametrize("version", ["1.2", "1.4"])
def test_tabledata_cells(version: str) -> None:
    """Empty cells, commas, NaN, nulls, clipped and hexadecimal integers, as astropy."""
    cases = {
        "double": ["1 2 -1", "", "NaN 5", " 7,8 ", "1e400 -0", "  "],
        "float": ["1 2 -1", "", "NaN -99.9", " 7 , 8 ", "3.4e39"],
        "int": ["1 2 -1", "", "nan 5", "0x10 7", "99999999999"],
        "unsignedByte": ["1 -1 300", "", "5"],
        "short": ["1,,2", ""],
        "boolean": ["T F ?", "", "1", "t f", "true False"],
    }
    for datatype, cells in cases.items():
        for null in (None, "-1", "-99.9"):
            if null == "-99.9" and datatype not in {"float", "double"}:
                continue
            fields = field(datatype, "*", null) + field(datatype, "4*", null, name="w")
            rows = "".join(f"<TR><TD>{c}</TD><TD>{c}</TD></TR>" for c in cells)
            # " 7 , 8 " has an empty item between 7 and 8 for astropy's splitter: a float
            # without null then becomes None (an object array), left to astropy.
            unreadable = null is None and any(" , " in c for c in cells)
            fast = not (unreadable and datatype in {"float", "double"})
            same_as_astropy(document(fields, f"<TABLEDATA>{rows}</TABLEDATA>", version), fast=fast)


def test_cells_are_masked_arrays_of_python_scalars() -> None:
    """What a user gets: float64 even for float, int64 for every integer, empty float64."""
    fields = field("float", "*", None) + field("short", "*", "-1", name="s")
    rows = [[[1.5, math.nan], [3, -1]], [[], []]]
    for flags in (None, [0b01000000, 0b10000000]):
        parsed = parse_votable(document(fields, binary(rows, ["float", "short"], flags)))
        (result,) = parsed.tables
        assert isinstance(result, TableData)
        v, s = result["v"], result["s"]
        assert v.data.dtype == object
        assert v.data[0].dtype == np.float64
        assert v.data[0].mask.tolist() == [False, True]
        assert s.data[0].dtype == np.int64
        assert s.data[0].mask.tolist() == [False, True]
        assert v.data[1].dtype == np.float64
        assert v.data[1].mask is np.ma.nomask
        # BINARY2 flags (first bit: first field) mask whole cells: s in row 0, v in row 1.
        assert s.mask.tolist() == ([False, False] if flags is None else [True, False])
        assert v.mask.tolist() == ([False, False] if flags is None else [False, True])


def test_float_null_in_the_field_precision() -> None:
    """A float32 null of -99.9 masks the float32 -99.9, as astropy compares them."""
    fields = field("float", "*", "-99.9")
    body = document(fields, binary([[[-99.9, 1.0]]], ["float"], None))
    same_as_astropy(body)
    (result,) = parse_votable(body).tables
    assert isinstance(result, TableData)
    assert result["v"].data[0].mask.tolist() == [True, False]


@pytest.mark.parametrize(
    "fields",
    [
        field("double", "*", None),
        field("double", "*", "junk"),
    ],
)
def test_unreadable_float_items_fall_back(fields: str) -> None:
    """An item astropy cannot read is its null, or None without one: left to astropy."""
    body = document(fields, "<TABLEDATA><TR><TD>1 null</TD></TR></TABLEDATA>")
    same_as_astropy(body, fast=False)


def test_arrays_of_vectors_fall_back() -> None:
    """``3x*`` (variable-length arrays of fixed-size vectors) is astropy's business."""
    body = document(
        field("double", "2x*", None), "<TABLEDATA><TR><TD>1 2 3 4</TD></TR></TABLEDATA>"
    )
    same_as_astropy(body, fast=False)
