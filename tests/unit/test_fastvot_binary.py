"""The fast BINARY/BINARY2 decoder against astropy's own reader, value for value."""

from __future__ import annotations

import base64
import io
import math
import re
import struct
import time
import tracemalloc
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Literal
from unittest import mock

import numpy as np
import pytest
from astropy.io import votable
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vosweep.protocols.fastvot import _binary
from vosweep.protocols.fastvot._binary import decode_stream
from vosweep.protocols.fastvot._model import ColumnData, FieldMeta, TableData

INT_RANGES = {
    "unsignedByte": (0, 255),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
FLOAT_WIDTHS: dict[str, Literal[32, 64]] = {"float": 32, "double": 64}
NUMPY_FORMATS = {
    "unsignedByte": "u1",
    "short": "i2",
    "int": "i4",
    "long": "i8",
    "float": "f4",
    "double": "f8",
    "boolean": "b1",
}
STREAM = re.compile(rb"(<STREAM[^>]*>)(.*?)(</STREAM>)", re.DOTALL)


# --- helpers: documents, astropy's reading, ours, and the comparison -----------------------


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def extract(doc: bytes) -> tuple[list[FieldMeta], bytes, bool, str | None]:
    """The FIELDs, the STREAM text, BINARY2 or not, and the STREAM's encoding."""
    root = ET.fromstring(doc)  # noqa: S314 - documents this test wrote
    fields = []
    stream, binary2 = b"", False
    encoding: str | None = "base64"
    for element in root.iter():
        tag = local(element.tag)
        if tag == "FIELD":
            children = {local(child.tag): child for child in element}
            description = children.get("DESCRIPTION")
            values = children.get("VALUES")
            attrs = element.attrib
            fields.append(
                FieldMeta(
                    name=attrs["name"],
                    ID=attrs.get("ID"),
                    datatype=attrs["datatype"],
                    arraysize=attrs.get("arraysize"),
                    unit=attrs.get("unit"),
                    ucd=attrs.get("ucd"),
                    utype=attrs.get("utype"),
                    xtype=attrs.get("xtype"),
                    width=attrs.get("width"),
                    precision=attrs.get("precision"),
                    ref=attrs.get("ref"),
                    description=None
                    if description is None
                    else (description.text or "").strip() or None,
                    null=None if values is None else values.get("null"),
                )
            )
        elif tag == "BINARY2":
            binary2 = True
    match = STREAM.search(doc)
    if match is not None:
        stream = match.group(2)
        element = ET.fromstring(match.group(1) + match.group(3))  # noqa: S314 - ditto
        encoding = element.get("encoding")
    return fields, stream, binary2, encoding


def astropy_table(doc: bytes) -> Any:
    """astropy's table for *doc*, as vosweep reads documents."""
    parsed = votable.parse(io.BytesIO(doc), verify="ignore")
    return parsed.get_first_table().to_table(use_names_over_ids=True)


def ours(doc: bytes) -> list[ColumnData] | None:
    fields, stream, binary2, encoding = extract(doc)
    version = ET.fromstring(doc).get("version", "1.4")  # noqa: S314 - ditto
    return decode_stream(fields, stream, binary2=binary2, encoding=encoding, version=version)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types, NaN equal to NaN (for VALUES/@null in meta)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float | np.floating) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def assert_same(reference: Any, columns: list[ColumnData] | None) -> None:
    """TableData(columns).to_table() equals astropy's table, column by column."""
    assert columns is not None
    table = TableData(columns=columns, nrows=len(reference)).to_table()
    assert table.colnames == reference.colnames
    for name in reference.colnames:
        expected, got = reference[name], table[name]
        assert type(got) is type(expected), name
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(expected.mask), name)
        want, have = expected.data.data, got.data.data
        if want.dtype.kind == "f":
            assert np.array_equal(have, want, equal_nan=True), name
        else:
            assert have.tolist() == want.tolist(), name
        if want.dtype.kind == "O":
            assert all(type(x) is str for x in have), name
        assert got.unit == expected.unit, name
        assert same(got.meta, expected.meta), (name, got.meta, expected.meta)
        assert got.description == expected.description, name
        assert got.format == expected.format, name


def document(fields_xml: str, stream: bytes | str, *, binary2: bool, attrs: str = "") -> bytes:
    """A one-table VOTable 1.4 around hand-written FIELDs and STREAM text."""
    text = stream.decode("ascii") if isinstance(stream, bytes) else stream
    tag = "BINARY2" if binary2 else "BINARY"
    stream_attrs = attrs or 'encoding="base64"'
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        "<RESOURCE><TABLE>\n"
        f"{fields_xml}\n"
        f"<DATA><{tag}><STREAM {stream_attrs}>{text}</STREAM></{tag}></DATA>\n"
        "</TABLE></RESOURCE></VOTABLE>\n"
    ).encode()


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


# --- the differential property test ---------------------------------------------------------


@dataclass
class Column:
    datatype: str
    arraysize: str | None
    null: Any
    values: list[Any]
    mask: list[Any]
    unit: str | None
    ucd: str | None
    description: str | None
    precision: str | None
    width: int | None


def cell_shape(datatype: str, arraysize: str | None) -> tuple[int, ...]:
    if datatype in {"char", "unicodeChar"} or arraysize is None:
        return ()
    return tuple(int(x) for x in reversed(arraysize.split("x")))


ASCII = st.characters(max_codepoint=127)
UNICODE = st.characters(exclude_categories=["Cs"])


def scalar_values(datatype: str, null: Any) -> st.SearchStrategy[Any]:
    if datatype in INT_RANGES:
        values: st.SearchStrategy[Any] = st.integers(*INT_RANGES[datatype])
    elif datatype in FLOAT_WIDTHS:
        values = st.floats(width=FLOAT_WIDTHS[datatype])
    else:
        values = st.booleans()
    return values if null is None else st.one_of(values, st.just(null))


def string_values(datatype: str, arraysize: str) -> st.SearchStrategy[str]:
    alphabet = ASCII if datatype == "char" else UNICODE
    if arraysize == "*":
        return st.text(alphabet, max_size=10)
    size = int(arraysize.rstrip("*"))
    if arraysize.endswith("*") and datatype == "unicodeChar":
        # Longer than n UTF-16 units is outside the decoder's remit (astropy warns W46).
        return st.text(alphabet, max_size=size // 2)
    return st.text(alphabet, max_size=size + 2)


@st.composite
def columns(draw: st.DrawFn, nrows: int, fmt: str) -> Column:
    datatype = draw(st.sampled_from([*INT_RANGES, *FLOAT_WIDTHS, "boolean", "char", "unicodeChar"]))
    null: Any = None
    values: list[Any]
    mask: list[Any]
    arraysize: str | None
    if datatype in {"char", "unicodeChar"}:
        arraysize = draw(st.sampled_from(["1", "4", "*", "*", "6*"]))
        values = [draw(string_values(datatype, arraysize)) for _ in range(nrows)]
        mask = [draw(st.booleans()) for _ in range(nrows)]
    else:
        arraysize = draw(st.sampled_from([None, None, None, "1", "3", "2x3"]))
        if datatype in INT_RANGES and draw(st.booleans()):
            null = draw(st.integers(*INT_RANGES[datatype]))
        elif datatype in FLOAT_WIDTHS and draw(st.integers(0, 3)) == 0:
            null = draw(st.sampled_from([-999.0, 0.0, 0.1, math.nan]))
        shape = cell_shape(datatype, arraysize)
        items = math.prod(shape)
        cell = scalar_values(datatype, null)
        # astropy cannot write a masked integer without a null (W31), except a BINARY2
        # scalar, whose null flag says it all.
        maskable = datatype not in INT_RANGES or null is not None or (fmt, shape) == ("binary2", ())
        masks = st.booleans() if maskable else st.just(False)
        values = [[draw(cell) for _ in range(items)] for _ in range(nrows)]
        mask = [[draw(masks) for _ in range(items)] for _ in range(nrows)]
        if not shape:
            values = [v[0] for v in values]
            mask = [m[0] for m in mask]
    return Column(
        datatype=datatype,
        arraysize=arraysize,
        null=null,
        values=values,
        mask=mask,
        unit=draw(st.sampled_from([None, "deg", "mag", "km/s", "mJy"])),
        ucd=draw(st.sampled_from([None, "pos.eq.ra;meta.main"])),
        description=draw(st.sampled_from([None, "A column"])),
        precision=draw(st.sampled_from([None, "3", "E4"])) if datatype in FLOAT_WIDTHS else None,
        width=draw(st.sampled_from([None, 8])) if datatype in FLOAT_WIDTHS else None,
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, int]:
    """A document written by astropy from a random schema and random values."""
    fmt = draw(st.sampled_from(["binary", "binary2"]))
    versions = ["1.3", "1.4"] if fmt == "binary2" else ["1.1", "1.2", "1.3", "1.4"]
    version = draw(st.sampled_from(versions))
    nrows = draw(st.integers(0, 12))
    specs = [draw(columns(nrows, fmt)) for _ in range(draw(st.integers(1, 10)))]
    votable_file = VOTableFile(version=version)
    resource = Resource()
    votable_file.resources.append(resource)
    table = TableElement(votable_file)
    resource.tables.append(table)
    for i, spec in enumerate(specs):
        field = Field(
            votable_file,
            name=f"c{i}",
            datatype=spec.datatype,
            arraysize=spec.arraysize,
            unit=spec.unit,
            ucd=spec.ucd,
            precision=spec.precision,
            width=spec.width,
        )
        field.description = spec.description
        if spec.null is not None:
            field.values.null = spec.null
        table.fields.append(field)
    table.create_arrays(nrows)
    for i, spec in enumerate(specs):
        column = table.array[f"c{i}"]
        if column.dtype.kind == "O":
            values = np.empty(nrows, dtype=object)
            values[:] = spec.values
        elif column.dtype.kind == "U":
            values = np.array(spec.values, dtype=column.dtype)
        else:
            values = np.array(spec.values, dtype=NUMPY_FORMATS[spec.datatype])
        table.array[f"c{i}"] = values.reshape(column.shape)
        table.array.mask[f"c{i}"] = np.array(spec.mask, dtype=bool).reshape(column.shape)
    out = io.BytesIO()
    votable_file.to_xml(out, tabledata_format=fmt)
    doc = out.getvalue()
    if draw(st.booleans()):  # as other writers do: lines of 76 characters
        doc = STREAM.sub(
            lambda m: m.group(1) + rewrap(m.group(2)) + m.group(3), doc.replace(b"\r", b"")
        )
    return doc, nrows


def rewrap(text: bytes) -> bytes:
    text = text.strip()
    return b"\n" + b"\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + b"\n    "


# The decoder's thresholds as shipped (small streams: struct walk, strings one by one), and
# set so that even tiny streams take the vectorised paths (table walk, string matrix).
VECTOR_PATHS: dict[str, Any] = {
    "_TABLE_WALK_MIN_BYTES": 0,
    "_MATRIX_MIN_ROWS": 0,
    "_MATRIX_OVERHEAD": 10**9,
}
SMALL_PATHS: dict[str, Any] = {name: getattr(_binary, name) for name in VECTOR_PATHS}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_matches_astropy_on_documents_astropy_wrote(example: tuple[bytes, int]) -> None:
    """Random schemas and values: same table as astropy's reader, or None where it fails."""
    doc, _ = example
    try:
        reference = astropy_table(doc)
    except Exception:  # e.g. a UTF-16 pair cut in two by a fixed-size unicodeChar
        reference = None
    for patches in (SMALL_PATHS, VECTOR_PATHS):  # small-stream paths, then the vectorised ones
        with mock.patch.multiple(_binary, **patches):
            result = ours(doc)
        if reference is None:
            assert result is None
        else:
            assert_same(reference, result)


# --- hand-written cases -----------------------------------------------------------------------

NULL_FIELDS = (
    '<FIELD name="i" datatype="int"><VALUES null="-99"/></FIELD>'
    '<FIELD name="j" datatype="short"/>'
    '<FIELD name="d" datatype="double"/>'
    '<FIELD name="e" datatype="double"><VALUES null="0"/></FIELD>'
    '<FIELD name="s" datatype="char" arraysize="*"/>'
    '<FIELD name="c" datatype="char" arraysize="2"/>'
    '<FIELD name="b" datatype="boolean"/>'
    '<FIELD name="a" datatype="float" arraysize="2"/>'
)


def null_rows(flags: list[int] | None) -> bytes:
    """Three rows for NULL_FIELDS (with leading flag bytes for BINARY2)."""
    nan = math.nan
    rows = [
        (1, 5, 1.5, 2.0, b"ab", b"xy", b"T", (1.0, 2.0)),
        (-99, 6, nan, 0.0, b"", b"z\0", b"F", (nan, 3.0)),
        (3, 7, 2.5, nan, b"cd", b"\0\0", b"?", (nan, nan)),
    ]
    out = b""
    for k, (i, j, d, e, s, c, b, a) in enumerate(rows):
        if flags is not None:
            out += bytes([flags[k]])
        out += struct.pack(">ihdd", i, j, d, e) + struct.pack(">I", len(s)) + s
        out += c + b + struct.pack(">2f", *a)
    return out


def test_binary_nulls_come_from_values() -> None:
    """BINARY: ints masked at their null, floats at NaN, or at their null and then not NaN."""
    doc = document(NULL_FIELDS, b64(null_rows(None)), binary2=False)
    columns = ours(doc)
    assert_same(astropy_table(doc), columns)
    assert columns is not None
    masks = {c.name: c.mask.tolist() for c in columns}
    assert masks["i"] == [False, True, False]
    assert masks["j"] == [False, False, False]
    assert masks["d"] == [False, True, False]
    assert masks["e"] == [False, True, False]  # NaN is a value when null="0"
    assert masks["b"] == [False, False, True]
    assert masks["a"] == [[False, False], [True, False], [True, True]]


def test_binary2_flags_mask_everything_but_strings() -> None:
    """BINARY2: a row's flag masks every non-string field, on top of the value masks."""
    flags = [0b11111111, 0b00000000, 0b01000000]  # all; none (values decide); only "j"
    doc = document(NULL_FIELDS, b64(null_rows(flags)), binary2=True)
    columns = ours(doc)
    assert_same(astropy_table(doc), columns)
    assert columns is not None
    masks = {c.name: c.mask.tolist() for c in columns}
    assert masks["i"] == [True, True, False]
    assert masks["j"] == [True, False, True]
    assert masks["d"] == [True, True, False]
    assert masks["s"] == [False, False, False]  # strings ignore flags (astropy #8995)
    assert masks["c"] == [False, False, False]
    assert masks["a"] == [[True, True], [True, False], [True, True]]
    values = {c.name: c.data.tolist() for c in columns}
    assert values["i"] == [1, -99, 3]  # masked values keep what was sent
    assert values["c"] == ["xy", "z", ""]


def test_many_fields_use_several_flag_bytes() -> None:
    """Ten fields: two flag bytes per row, most significant bit first."""
    fields = "".join(f'<FIELD name="x{i}" datatype="short"/>' for i in range(10))
    row = bytes([0b10000000, 0b01000000]) + struct.pack(">10h", *range(10))
    doc = document(fields, b64(row * 2), binary2=True)
    columns = ours(doc)
    assert_same(astropy_table(doc), columns)
    assert columns is not None
    assert [c.name for c in columns if c.mask.any()] == ["x0", "x9"]


def test_boolean_bytes_follow_astropy() -> None:
    """Scalars: T/t/1 true, F/f/0 false, anything else masked; array bytes likewise."""
    raw = b"Tt1Ff0\0 ?xZ\xff"
    fields = (
        '<FIELD name="b" datatype="boolean"/><FIELD name="v" datatype="boolean" arraysize="2"/>'
    )
    stream = b"".join(bytes([x]) + b"T?" for x in raw)
    doc = document(fields, b64(stream), binary2=False)
    columns = ours(doc)
    assert_same(astropy_table(doc), columns)
    assert columns is not None
    assert columns[0].data.tolist() == [True] * 3 + [False] * 9
    assert columns[0].mask.tolist() == [False] * 6 + [True] * 6


def test_invalid_boolean_in_array_falls_back() -> None:
    """A byte astropy refuses in a boolean array (E05): None, and astropy raises."""
    fields = '<FIELD name="v" datatype="boolean" arraysize="2"/>'
    doc = document(fields, b64(b"TX"), binary2=False)
    with pytest.raises(Exception, match="E05"):
        astropy_table(doc)
    assert ours(doc) is None


def test_strings_nul_and_surrogates() -> None:
    """Fixed strings end at their first NUL; variable ones keep NULs; UTF-16 pairs decode."""
    fields = (
        '<FIELD name="c" datatype="char" arraysize="5"/>'
        '<FIELD name="v" datatype="char" arraysize="*"/>'
        '<FIELD name="u" datatype="unicodeChar" arraysize="3"/>'
        '<FIELD name="w" datatype="unicodeChar" arraysize="*"/>'
        '<FIELD name="n" datatype="unicodeChar" arraysize="4*"/>'
    )
    rows = [("ab\0cd", "a\0b\0", "\U0001f600x", "é\0\U0001f600", "\U0001f600\0")]
    rows += [("abcde", "", "", "", "")] * 40  # enough rows for the vectorised paths

    def utf16(text: str) -> bytes:
        return text.encode("utf_16_be")

    stream = b""
    for c, v, u, w, n in rows:
        stream += c.encode().ljust(5, b"\0") + struct.pack(">I", len(v)) + v.encode()
        stream += utf16(u).ljust(6, b"\0")
        stream += struct.pack(">I", len(utf16(w)) // 2) + utf16(w)
        stream += struct.pack(">I", len(utf16(n)) // 2) + utf16(n)
    doc = document(fields, b64(stream), binary2=False)
    reference = astropy_table(doc)
    for patches in (SMALL_PATHS, VECTOR_PATHS):
        with mock.patch.multiple(_binary, **patches):
            columns = ours(doc)
        assert_same(reference, columns)
        assert columns is not None
        assert [c.data[0] for c in columns] == [
            "ab",
            "a\0b\0",
            "\U0001f600x",
            "é\0\U0001f600",
            "\U0001f600",
        ]


@pytest.mark.parametrize(
    ("fields", "stream"),
    [
        ('<FIELD name="c" datatype="char" arraysize="2"/>', b"a\xe9"),
        ('<FIELD name="c" datatype="char" arraysize="2"/>', b"\0\xe9"),  # after the NUL
        ('<FIELD name="c" datatype="char" arraysize="*"/>', b"\0\0\0\x02a\xe9"),
        ('<FIELD name="u" datatype="unicodeChar" arraysize="1"/>', b"\xd8\x00"),
        ('<FIELD name="u" datatype="unicodeChar" arraysize="*"/>', b"\0\0\0\x01\xdc\x00"),
    ],
)
def test_undecodable_strings_fall_back(fields: str, stream: bytes) -> None:
    """Non-ASCII char, lone UTF-16 surrogates: astropy raises, the decoder says None."""
    doc = document(fields, b64(stream), binary2=False)
    with pytest.raises(UnicodeDecodeError):
        astropy_table(doc)
    for patches in (SMALL_PATHS, VECTOR_PATHS):
        with mock.patch.multiple(_binary, **patches):
            assert ours(doc) is None


def test_char_without_arraysize_is_one_character() -> None:
    """A char FIELD without arraysize is char(1), as astropy reads it."""
    fields = '<FIELD name="c" datatype="char"/><FIELD name="u" datatype="unicodeChar"/>'
    doc = document(fields, b64(b"a\0\xe9" + b"\0\0\0"), binary2=False)
    assert_same(astropy_table(doc), ours(doc))


MIXED_FIELDS = (
    '<FIELD name="i" datatype="long"/>'
    '<FIELD name="s" datatype="char" arraysize="*"/>'
    '<FIELD name="d" datatype="double"/>'
    '<FIELD name="u" datatype="unicodeChar" arraysize="*"/>'
    '<FIELD name="b" datatype="boolean"/>'
)


def mixed_rows(count: int) -> bytes:
    out = b""
    for k in range(count):
        text = f"row{k}".encode()
        wide = f"é{k}".encode("utf_16_be")
        out += bytes([k % 256]) + struct.pack(">q", k) + struct.pack(">I", len(text)) + text
        out += struct.pack(">d", k / 3) + struct.pack(">I", len(wide) // 2) + wide + b"T"
    return out


@pytest.mark.parametrize("patches", [SMALL_PATHS, VECTOR_PATHS], ids=["struct-walk", "table-walk"])
def test_truncated_streams_fall_back(patches: dict[str, Any]) -> None:
    """A stream that ends inside a row gives None; one that ends between rows is whole."""
    whole = mixed_rows(3)
    row_ends = {len(mixed_rows(k)) for k in range(4)}
    with mock.patch.multiple(_binary, **patches):
        fields, _, _, _ = extract(document(MIXED_FIELDS, b"", binary2=True))
        for cut in range(len(whole)):
            columns = decode_stream(fields, b64(whole[:cut]), binary2=True)
            if cut in row_ends:
                assert columns is not None
                assert len(columns[0].data) == sorted(row_ends).index(cut)
            else:
                assert columns is None, cut
        fixed = extract(document('<FIELD name="x" datatype="double"/>', b"", binary2=False))[0]
        assert decode_stream(fixed, b64(b"\0" * 17), binary2=False) is None


@pytest.mark.parametrize("patches", [SMALL_PATHS, VECTOR_PATHS], ids=["struct-walk", "table-walk"])
def test_absurd_lengths_fall_back_without_allocating(patches: dict[str, Any]) -> None:
    """Length prefixes far past the end: None, with no allocation they would imply."""
    fields = extract(document(MIXED_FIELDS, b"", binary2=True))[0]
    good = mixed_rows(50)
    for length in (0xFFFFFFFF, 0x7FFFFFFF, len(good)):
        bad = good[:9] + struct.pack(">I", length) + good[13:]
        tracemalloc.start()
        try:
            with mock.patch.multiple(_binary, **patches):
                assert decode_stream(fields, b64(bad), binary2=True) is None
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * len(good) + (1 << 20)


def test_empty_stream_gives_empty_columns() -> None:
    """An empty STREAM: zero rows, with astropy's dtypes and metadata."""
    fields = MIXED_FIELDS + NULL_FIELDS.replace('name="', 'name="z')
    for binary2 in (False, True):
        doc = document(fields, "\n  ", binary2=binary2)
        columns = ours(doc)
        assert_same(astropy_table(doc), columns)
        assert columns is not None
        assert all(len(c.data) == 0 for c in columns)


@pytest.mark.parametrize(
    "field",
    [
        '<FIELD name="x" datatype="bit"/>',
        '<FIELD name="x" datatype="bit" arraysize="8"/>',
        '<FIELD name="x" datatype="floatComplex"/>',
        '<FIELD name="x" datatype="doubleComplex" arraysize="2"/>',
        '<FIELD name="x" datatype="double" arraysize="2x*"/>',
        '<FIELD name="x" datatype="char" arraysize="2x3"/>',
        '<FIELD name="x" datatype="char" arraysize="0"/>',
        '<FIELD name="x" datatype="short"><VALUES null="70000"/></FIELD>',
        '<FIELD name="x" datatype="int"><VALUES null="nan"/></FIELD>',
        '<FIELD name="x" datatype="int"><VALUES null=" 5"/></FIELD>',
        '<FIELD name="x" datatype="float"><VALUES null="1e300"/></FIELD>',
        '<FIELD name="x" datatype="double"><VALUES null="none"/></FIELD>',
        '<FIELD name="x" datatype="unsignedInt"/>',
    ],
)
def test_unsupported_fields_fall_back(field: str) -> None:
    """Datatypes, arraysizes and nulls the decoder does not reproduce: None."""
    fields = extract(document(field + '<FIELD name="y" datatype="int"/>', b"", binary2=False))[0]
    assert decode_stream(fields, b64(b"\0" * 64), binary2=False) is None


def test_bounded_string_longer_than_its_bound_falls_back() -> None:
    """An ``n*`` string longer than n (astropy warns W46 and truncates): None."""
    fields = extract(
        document('<FIELD name="s" datatype="char" arraysize="2*"/>', b"", binary2=False)
    )[0]
    assert decode_stream(fields, b64(b"\0\0\0\x02ab"), binary2=False) is not None
    assert decode_stream(fields, b64(b"\0\0\0\x03abc"), binary2=False) is None


def test_stream_text_and_encoding() -> None:
    """Plain (wrapped) base64 is decoded; other encodings and XML markup are refused."""
    fields = extract(document('<FIELD name="x" datatype="int"/>', b"", binary2=False))[0]
    text = b64(struct.pack(">3i", 1, 2, 3))
    wrapped = b"\r\n  " + text[:5] + b"\n\t " + text[5:] + b"  \n"
    for encoding in ("base64", None):
        columns = decode_stream(fields, wrapped, binary2=False, encoding=encoding)
        assert columns is not None
        assert columns[0].data.tolist() == [1, 2, 3]
    assert decode_stream(fields, text, binary2=False, encoding="gzip") is None
    assert decode_stream(fields, text, binary2=False, encoding="dynamic") is None
    for bad in (
        text[:4] + b"&#10;" + text[4:],
        b"<![CDATA[" + text + b"]]>",
        text[:-1],  # incomplete quantum
        b64(b"\0\0\0\x01") + b64(b"\0\0\0\x02\0"),  # padding inside
        text[:4] + "é".encode() + text[4:],
    ):
        assert decode_stream(fields, bad, binary2=False) is None, bad
    assert decode_stream([], text, binary2=False) is None


def test_none_encoding_is_what_astropy_decodes() -> None:
    """A STREAM without encoding: astropy base64-decodes it (W38), and so does this."""
    fields = '<FIELD name="x" datatype="int"/>'
    doc = document(fields, b64(struct.pack(">2i", 4, 5)), binary2=False, attrs='type="locator"')
    assert extract(doc)[3] is None
    assert_same(astropy_table(doc), ours(doc))


def test_speed_on_100k_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """100k mixed rows in BINARY2: prints the decoder's and astropy's throughput."""
    rng = np.random.default_rng(1)
    count = 100_000
    votable_file = VOTableFile(version="1.4")
    resource = Resource()
    votable_file.resources.append(resource)
    table = TableElement(votable_file)
    resource.tables.append(table)
    table.fields.extend(
        [
            Field(votable_file, name="id", datatype="long"),
            Field(votable_file, name="ra", datatype="double", unit="deg"),
            Field(votable_file, name="mag", datatype="float"),
            Field(votable_file, name="name", datatype="char", arraysize="*"),
            Field(votable_file, name="flag", datatype="boolean"),
        ]
    )
    table.create_arrays(count)
    table.array["id"] = np.arange(count)
    table.array["ra"] = rng.uniform(0, 360, count)
    table.array["mag"] = rng.normal(15, 2, count)
    names = np.empty(count, dtype=object)
    names[:] = [f"J{x}" for x in rng.integers(0, 10**9, count)]
    table.array["name"] = names
    table.array["flag"] = rng.random(count) < 0.5
    table.array.mask["mag"] = rng.random(count) < 0.1
    out = io.BytesIO()
    votable_file.to_xml(out, tabledata_format="binary2")
    doc = out.getvalue()
    fields, stream, _, _ = extract(doc)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        columns = decode_stream(fields, stream, binary2=True)
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    reference = astropy_table(doc)
    slow = time.perf_counter() - start
    assert_same(reference, columns)
    with capsys.disabled():
        print(
            f"\n100k-row BINARY2 ({len(doc) / 1e6:.1f} MB): decoder {best * 1e3:.0f} ms "
            f"({len(doc) / best / 1e6:.0f} MB/s), astropy {slow * 1e3:.0f} ms "
            f"({len(doc) / slow / 1e6:.1f} MB/s), {slow / best:.0f}x"
        )
