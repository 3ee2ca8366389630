# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""The fast VOTable decoder: same results as astropy, or a fallback to astropy.

Every document here is read twice, by ``parse_votable(fast=True)`` and by astropy
(``fast=False``), and the two outcomes must be equal in every attribute astropy sets
(see ``tests/fastvot_compare.py``). Each test also says whether the fast decoder must
take the document or step aside.
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastvot_compare import as_table, assert_same_outcome, outcome
from vosweep.errors import QueryRejected, ResponseFormatError
from vosweep.protocols import fastvot
from vosweep.protocols.base import QueryStatus
from vosweep.protocols.fastvot import TableData
from vosweep.protocols.fastvot._columns import column_meta, null_value
from vosweep.protocols.fastvot._model import FieldMeta
from vosweep.protocols.votable import parse_votable


def vot(inner: str, *, version: str = "1.4", head: str = "") -> bytes:
    """A VOTABLE document around *inner*."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{head}'
        f'<VOTABLE version="{version}" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f"{inner}</VOTABLE>"
    ).encode()


def table(fields: str, rows: str, *, attrs: str = "", extra: str = "") -> str:
    """A RESOURCE with one TABLE of *fields* and TABLEDATA *rows*."""
    return (
        f"<RESOURCE><TABLE{attrs}>{fields}{extra}"
        f"<DATA><TABLEDATA>{rows}</TABLEDATA></DATA></TABLE></RESOURCE>"
    )


def field(name: str, datatype: str, arraysize: str | None = None, extra: str = "") -> str:
    """A FIELD element."""
    size = f' arraysize="{arraysize}"' if arraysize is not None else ""
    return f'<FIELD name="{name}" datatype="{datatype}"{size}{extra}/>'


def rows(*cells: tuple[str, ...]) -> str:
    """TABLEDATA rows from cell texts (written as is)."""
    return "".join("<TR>" + "".join(f"<TD>{c}</TD>" for c in row) + "</TR>" for row in cells)


def check(body: bytes, *, fast: bool = True) -> Any:
    """Assert the fast path is (not) taken and both readings agree; return the outcome."""
    decoded = fastvot.decode(body)
    assert (decoded is not None) is fast, "fast path taken" if decoded else "fell back"
    mine, theirs = outcome(body, fast=True), outcome(body, fast=False)
    assert_same_outcome(mine, theirs)
    return mine


def only_table(body: bytes) -> Any:
    """The single result table of *body* (fast path), as an astropy table."""
    parsed = check(body)
    (result,) = parsed.tables
    assert isinstance(result, TableData)
    return result.to_table()


# --- datatypes ------------------------------------------------------------------------------

SCALARS = [
    pytest.param("boolean", None, ("T", "F", "1", "0", "true", "False", "?", ""), id="boolean"),
    pytest.param("boolean", None, ("tRuE", " T ", "f", "?"), id="boolean-odd-spellings"),
    pytest.param("unsignedByte", None, ("0", "255", "300", "-4", "0x1F", ""), id="ubyte"),
    pytest.param("short", None, ("1", "-32768", "40000", "+7", " 12 ", "nan"), id="short"),
    pytest.param("int", None, ("1", "-5", "0X7f", "", "NaN", "1_000"), id="int"),
    pytest.param("long", None, ("9223372036854775807", "99999999999999999999", "-1"), id="long"),
    pytest.param("float", None, ("1.5", "NaN", "", "null", "1e30", "-0", "+InF"), id="float"),
    pytest.param("double", None, ("0.1", "nan", "1E-300", "Infinity", "---", " 3 "), id="double"),
    pytest.param("char", None, ("a", "bc", "", " d "), id="char-1"),
    pytest.param("char", "3", ("abc", "abcdef", "", "x y"), id="char-3"),
    pytest.param("char", "4*", ("ab", "abcdefg", ""), id="char-4*"),
    pytest.param("char", "*", ("a", "long text here", "", "  padded  "), id="char-*"),
    pytest.param("unicodeChar", "*", ("\u00e9t\u00e9", "\u4e2d\u6587", ""), id="unicode-*"),
    pytest.param("unicodeChar", "2", ("\u00e9t\u00e9", "a"), id="unicode-2"),
    pytest.param("double", "3", ("1 2 3", "4,5,6", "", "NaN 1 2", "1, 2\t3"), id="double-3"),
    pytest.param("int", "2", ("1 2", "-3 0x10", "", "nan 4"), id="int-2"),
    pytest.param("boolean", "2", ("T F", "? 1", ""), id="boolean-2"),
    pytest.param("float", "1", ("1", "", "2.5"), id="float-1"),
]


@pytest.mark.parametrize(("datatype", "arraysize", "cells"), SCALARS)
@pytest.mark.parametrize("version", ["1.2", "1.4"])
def test_datatypes_match_astropy(
    datatype: str, arraysize: str | None, cells: tuple[str, ...], version: str
) -> None:
    """Every supported datatype and arraysize decodes to astropy's values and masks."""
    body = vot(
        table(
            field("x", datatype, arraysize) + field("i", "int"), rows(*[(c, "1") for c in cells])
        ),
        version=version,
    )
    empty_array = arraysize not in {None, "*"} and datatype not in {"char", "unicodeChar"}
    check(body, fast=not (empty_array and version == "1.2" and "" in cells))


@pytest.mark.parametrize(
    ("alias", "datatype"),
    [("string", "char"), ("int16", "short"), ("unsignedInt", "long"), ("float64", "double")],
)
def test_datatype_aliases(alias: str, datatype: str) -> None:
    """Non-standard datatype names astropy maps (VizieR's unsignedInt) decode as it does."""
    arraysize = "*" if datatype == "char" else None
    result = only_table(vot(table(field("x", alias, arraysize), rows(("1",), ("2",)))))
    expected = np.dtype(object) if datatype == "char" else np.dtype(fastvot_numpy(datatype))
    assert result["x"].dtype == expected


def fastvot_numpy(datatype: str) -> str:
    """The numpy dtype the decoders give *datatype*."""
    return {"short": "i2", "long": "i8", "double": "f8"}[datatype]


def test_values_and_masks_in_detail() -> None:
    """A spot check of what astropy gives (beyond agreeing with it)."""
    fields = (
        field("f", "double")
        + field("i", "int", extra=' ucd="meta.id"')
        + '<FIELD name="n" datatype="short"><VALUES null="-1"/></FIELD>'
        + field("s", "char", "*")
    )
    body = vot(
        table(fields, rows(("1.5", "7", "-1", "a"), ("", "", "3", ""), ("NaN", "0x10", "", "b")))
    )
    result = only_table(body)
    assert result["f"].mask.tolist() == [False, True, True]
    assert result["i"].tolist() == [7, None, 16]  # masked empty int (VOTable 1.3+)
    assert result["n"].mask.tolist() == [True, False, True]
    assert result["n"].meta["values"] == {"null": -1}
    assert result["s"].tolist() == ["a", "", "b"]
    assert result["s"].dtype == object
    assert result["i"].meta["ucd"] == "meta.id"


def test_float_null_is_compared_as_astropy_does() -> None:
    """With VALUES/@null a float column masks the null only, not NaN."""
    fields = '<FIELD name="m" datatype="float"><VALUES null="-99.9"/></FIELD>'
    result = only_table(vot(table(fields, rows(("-99.9",), ("NaN",), ("",), ("1",)))))
    assert result["m"].mask.tolist() == [True, False, True, False]


# --- markup ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows_text",
    [
        pytest.param("<TR><TD/><TD>b</TD></TR><TR><TD>1</TD><TD/></TR>", id="empty-element"),
        pytest.param(
            '<TR ID="r1"><TD a="1">2</TD><TD  >b</TD ></TR><TR><TD>3</TD><TD>c</TD></TR>',
            id="attributes",
        ),
        pytest.param(
            "\n  <TR>\n    <TD> 1 </TD>\n\t<TD>\n b \n</TD>\n  </TR>\r\n"
            "<TR><TD>2</TD><TD>c\r\nd</TD></TR>\n",
            id="whitespace",
        ),
        pytest.param(
            "<TR><TD>1</TD><TD>a &amp; b &lt;c&gt; &quot;&apos; &#233;&#x4E2D;&#32;</TD></TR>",
            id="references",
        ),
        pytest.param(
            "<TR><TD>1</TD><TD><![CDATA[<b>&amp;]]> x</TD></TR><!-- a row --><TR>"
            "<TD>2<!-- two --></TD><TD>y</TD></TR>",
            id="cdata-comments",
        ),
        pytest.param("", id="no-rows"),
    ],
)
def test_tabledata_markup(rows_text: str) -> None:
    """Empty-element cells, attributes, whitespace, references, CDATA and comments."""
    check(vot(table(field("n", "int") + field("s", "char", "*"), rows_text)))


@pytest.mark.parametrize(
    ("rows_text", "fast"),
    [
        pytest.param("<TR><TD>1</TD></TR>", False, id="short-row"),
        pytest.param("<TR><TD>1</TD><TD>a</TD><TD>x</TD></TR>", False, id="long-row"),
        pytest.param(
            "<TR><TD>1</TD><TD>a</TD></TR><TR><TD>2</TD></TR><TR><TD>3</TD><TD>b</TD></TR>",
            False,
            id="short-row-inside",
        ),
        pytest.param(
            "<TR><TD>1</TD><TD>a</TD></TR>text<TR><TD>2</TD><TD>b</TD></TR>",
            False,
            id="text-between-rows",
        ),
        pytest.param(
            "<TR><TD>1</TD><TD>a</TD></TR>\u00a0<TR><TD>2</TD><TD>b</TD></TR>\u2028",
            True,
            id="unicode-space-between-rows",
        ),
        pytest.param(
            "<TR><TD>1</TD><TD/></TR> <TR><TD/><TD>b &amp; c</TD></TR>", True, id="plain-rows"
        ),
    ],
)
def test_row_structure(rows_text: str, *, fast: bool) -> None:
    """Rows of the wrong width or with text between them leave the whole-row fast path."""
    check(vot(table(field("n", "int") + field("s", "char", "*"), rows_text)), fast=fast)


def test_same_field_with_other_children_in_later_documents() -> None:
    """FIELDs are cached on their attributes: children still count per document."""
    head = '<FIELD name="m" datatype="int" unit="mag" ucd="phot.mag"'
    children = [
        "/>",
        '><DESCRIPTION>first</DESCRIPTION><VALUES null="-1"/></FIELD>',
        '><LINK href="http://example.org/m"/></FIELD>',
        "/>",
    ]
    seen = []
    for child in children:
        result = only_table(vot(table(head + child, rows(("-1",), ("2",)))))
        column = result["m"]
        seen.append((column.description, column.mask.tolist(), "links" in column.meta))
    assert seen == [
        (None, [False, False], False),
        ("first", [True, False], False),
        (None, [False, False], True),
        (None, [False, False], False),
    ]


def test_cached_metadata_is_each_column_own() -> None:
    """Columns of later documents keep their metadata whatever was done to earlier ones.

    FIELDs and their column metadata are cached across documents: each column must get
    a copy that its owner may change, nested VALUES and LINK entries included.
    """
    fields = (
        '<FIELD name="m" datatype="int" ucd="phot.mag"><VALUES null="-1"><MIN value="0"/>'
        '</VALUES><LINK href="http://example.org/m"/></FIELD>'
        + field("s", "char", "*", ' ucd="meta.id"')
    )
    body = vot(table(fields, rows(("-1", "a"), ("2", "b"))))
    for fast_column in parse_votable(body).tables[0].columns:
        fast_column.meta["ucd"] = "changed"
        fast_column.meta.setdefault("values", {})["null"] = 99
        fast_column.meta.setdefault("links", [{}])[0]["href"] = "changed"
    again = only_table(body)
    assert again["m"].meta["ucd"] == "phot.mag"
    assert again["m"].meta["values"] == {"null": -1, "min": {"value": 0, "inclusive": True}}
    assert again["m"].meta["links"] == [{"href": "http://example.org/m"}]
    assert again["s"].meta == {"ucd": "meta.id", "_votable_string_dtype": "char"} | {
        "_votable_arraysize": "*"
    }


@pytest.mark.parametrize("prefix", ["vot", "ns0"])
def test_namespace_prefixes(prefix: str) -> None:
    """Prefixed documents (vot:, ns0:) take the fast path, status included."""
    text = vot(
        "<RESOURCE>"
        '<INFO name="QUERY_STATUS" value="OVERFLOW">cut</INFO>'
        + table(field("n", "int") + field("s", "char", "*"), rows(("1", "a"), ("2", "b")))
        + "</RESOURCE>"
    ).decode()
    text = text.replace("</", "\0").replace("<", f"<{prefix}:").replace("\0", f"</{prefix}:")
    text = text.replace(f"<{prefix}:?xml", "<?xml").replace(' xmlns="', f' xmlns:{prefix}="')
    parsed = check(text.encode())
    assert parsed.status is QueryStatus.OVERFLOW
    assert parsed.rows == 2


def test_several_tables_params_and_meta_resources() -> None:
    """Nested resources, PARAM-only tables, meta resources and INFOs around the data."""
    data = table(
        field("a", "double", extra=' unit="deg"'), rows(("1",), ("2",)), attrs=' name="t1"'
    )
    params = (
        '<TABLE name="p"><PARAM name="z" datatype="double" value="1.5"/>'
        '<PARAM name="k" datatype="char" arraysize="*" value=" text "/>'
        '<PARAM name="v" datatype="int" arraysize="2" value="1 2"/>'
        '<PARAM name="e" datatype="float" value=""><VALUES null="NaN"/></PARAM>'
        "<DATA><TABLEDATA/></DATA></TABLE>"
    )
    meta = (
        '<RESOURCE type="meta" utype="adhoc:service">'
        '<PARAM name="standardID" datatype="char" arraysize="*" value="ivo://x"/>'
        '<GROUP name="inputParams"><PARAM name="ID" datatype="char" arraysize="*" value="">'
        '<VALUES><OPTION value="a"/><MAX value="b"/></VALUES></PARAM>'
        '<PARAM name="BAND" datatype="double" arraysize="2" value="">'
        '<VALUES><MIN value="1 2"/></VALUES></PARAM></GROUP>'
        + table(field("d", "char", "*"), rows(("x",)))[len("<RESOURCE>") : -len("</RESOURCE>")]
        + "</RESOURCE>"
    )
    inner = (
        "<RESOURCE>"
        '<INFO name="QUERY_STATUS" value="OK"/>'
        + data
        + f"<RESOURCE>{params}</RESOURCE>"
        + meta
        + "</RESOURCE>"
    )
    parsed = check(vot(inner))
    assert [t.meta["vosweep_table"] for t in parsed.tables] == ["t1", "p"]
    assert parsed.tables[1].meta["params"]["z"] == 1.5
    assert as_table(parsed.tables[1]).colnames == []


def test_field_metadata() -> None:
    """Units, UCDs, descriptions, links, VALUES options and limits reach the columns' meta."""
    fields = (
        '<FIELD ID="ra_id" name="ra" datatype="double" unit="deg" ucd="pos.eq.ra" ref="J2000"'
        ' width="10" precision="E4" utype="x:y" xtype="t">'
        "<DESCRIPTION>\n  Right\n  ascension </DESCRIPTION>"
        '<LINK content-role="doc" href="http://x/y" title="t"/>'
        '<VALUES ID="v1" null="-1"><MIN value="0" inclusive="no"/><MAX value="360"/>'
        '<OPTION name="a" value="1"/><OPTION value="2"/></VALUES></FIELD>'
        '<FIELD name="ra" datatype="float" precision="3"/>'
        '<FIELD name="ra" datatype="char" arraysize="5*" ucd=" "/>'
    )
    result = only_table(
        vot(
            table(fields, rows(("1", "2", "x")), attrs=' ID="T" name="my t" ucd="u"'),
            head='<!DOCTYPE VOTABLE SYSTEM "http://x/VOTable.dtd">',
        )
    )
    assert result.colnames == ["ra", "ra2", "ra3"]
    assert result["ra"].meta["values"]["min"] == {"value": 0.0, "inclusive": False}
    assert result["ra"].format == "{:10.4g}"
    assert result.meta["name"] == "my t"


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "v1.3", None])
def test_versions(version: str | None) -> None:
    """All VOTable versions, units parsed per version (CDS before 1.4, VOUnit after)."""
    head = f' version="{version}"' if version else ""
    body = (
        f"<VOTABLE{head}><RESOURCE><TABLE>"
        '<FIELD name="f" datatype="double" unit="10-3m.s-1"/><FIELD name="g" datatype="int"/>'
        "<DATA><TABLEDATA><TR><TD>1</TD><TD></TD></TR></TABLEDATA></DATA></TABLE>"
        "</RESOURCE></VOTABLE>"
    ).encode()
    check(body)


@pytest.mark.parametrize(
    "inner",
    [
        pytest.param(
            '<INFO name="QUERY_STATUS" value="OK"/>'
            '<RESOURCE><INFO name="QUERY_STATUS" value="OVERFLOW">truncated</INFO></RESOURCE>',
            id="overflow",
        ),
        pytest.param('<RESOURCE><INFO name="Error" value="bad RA"/></RESOURCE>', id="error-info"),
        pytest.param(
            '<RESOURCE><PARAM name="Error" datatype="double" value="1e3"/></RESOURCE>',
            id="error-param",
        ),
        pytest.param(
            '<DEFINITIONS><PARAM name="Error" value="in definitions"/></DEFINITIONS>',
            id="definitions",
        ),
        pytest.param(
            '<RESOURCE><INFO name="warning" value="limit was reached"/></RESOURCE>',
            id="warning",
        ),
        pytest.param(
            table(field("a", "int"), rows(("1",)))[: -len("</TABLE></RESOURCE>")]
            + '<INFO name="QUERY_STATUS" value="ERROR">late error</INFO></TABLE></RESOURCE>',
            id="table-info-after-data",
        ),
        pytest.param(
            "<RESOURCE><TABLE><FIELD name='a' datatype='int'/><DATA><TABLEDATA/>"
            '<INFO name="QUERY_STATUS" value="ERROR"/></DATA></TABLE></RESOURCE>',
            id="info-inside-data-ignored",
        ),
        pytest.param(
            '<RESOURCE type="meta"><INFO name="QUERY_STATUS" value="ERROR"/></RESOURCE>',
            id="meta-ignored",
        ),
        pytest.param(
            '<RESOURCE><VODML><INFO name="QUERY_STATUS" value="ERROR"/></VODML></RESOURCE>',
            id="mivot-ignored",
        ),
        pytest.param(
            '<RESOURCE><FOO><INFO name="QUERY_STATUS" value="ERROR">flattened</INFO></FOO>'
            "</RESOURCE>",
            id="unknown-element-flattened",
        ),
    ],
)
def test_status_signals_match_astropy(inner: str) -> None:
    """Status INFOs and Error PARAMs are found where astropy's tree has them."""
    check(vot(inner, version="1.0" if "DEFINITIONS" in inner else "1.4"))


def test_status_outcomes() -> None:
    """The status rules still apply on the fast path."""
    with pytest.raises(QueryRejected, match="late error"):
        parse_votable(
            vot(
                table(field("a", "int"), rows(("1",)))[: -len("</TABLE></RESOURCE>")]
                + '<INFO name="QUERY_STATUS" value="ERROR">late error</INFO></TABLE></RESOURCE>'
            )
        )
    parsed = parse_votable(vot('<RESOURCE><INFO name="warning" value="truncated"/></RESOURCE>'))
    assert parsed.status is QueryStatus.OVERFLOW


# --- fallbacks ------------------------------------------------------------------------------

FALLBACKS = [
    pytest.param(table(field("b", "bit"), rows(("1",))), id="bit"),
    pytest.param(table(field("c", "floatComplex"), rows(("1 2",))), id="floatComplex"),
    pytest.param(table(field("c", "doubleComplex"), rows(("1 2",))), id="doubleComplex"),
    pytest.param(table(field("a", "double", "3x2"), rows(("1 2 3 4 5 6",))), id="multidim"),
    pytest.param(table(field("a", "double", "*"), rows(("1 null",))), id="unreadable-item"),
    pytest.param(table(field("a", "char", "10x*"), rows(("x",))), id="char-array-of-arrays"),
    pytest.param(table(field("a", "char", "3x2"), rows(("x",))), id="char-3x2"),
    pytest.param(table(field("a", "int", "2x*"), rows(("1 2",))), id="numeric-2x*"),
    pytest.param(table(field("a", "double", "2"), rows(("1 2 3",))), id="array-wrong-count"),
    pytest.param(table(field("a", "quaternion"), rows(("1",))), id="unknown-datatype"),
    pytest.param(table(field("a", "int", "3q"), rows(("1",))), id="bad-arraysize"),
    pytest.param(table(field("a", "int", ""), rows(("1",))), id="empty-arraysize"),
    pytest.param(
        table('<FIELD name="a" datatype="int" width="0"/>', rows(("1",))), id="width-zero"
    ),
    pytest.param(
        table('<FIELD name="a" datatype="double" precision="X2"/>', rows(("1",))),
        id="bad-precision",
    ),
    pytest.param(table('<FIELD datatype="int"/>', rows(("1",))), id="no-name-no-id"),
    pytest.param(table(field("a", "int"), rows(("ten",))), id="bad-int-cell"),
    pytest.param(table(field("a", "int"), rows(("1.0",))), id="float-in-int"),
    pytest.param(table(field("a", "boolean"), rows(("yes",))), id="bad-boolean"),
    pytest.param(
        table(field("a", "int") + field("b", "int"), rows(("1",), ("2", "3", "4"))), id="ragged"
    ),
    pytest.param(table(field("a", "int"), "<TR></TR>"), id="empty-row"),
    pytest.param(table(field("a", "int"), "<TR/>"), id="empty-element-row"),
    pytest.param(table(field("a", "int"), "<TR><TD>1<B/></TD></TR>"), id="element-in-cell"),
    pytest.param(
        table(field("a", "int"), '<TR><TD encoding="base64">AAAAAQ==</TD></TR>'), id="base64-cell"
    ),
    pytest.param(table(field("a", "char", "*"), "<TR><TD>&nbsp;</TD></TR>"), id="html-entity"),
    pytest.param(table(field("a", "char", "*"), "<TR><TD>&#1;</TD></TR>"), id="invalid-reference"),
    pytest.param(table(field("a", "char", "*"), "<TR><TD>a\x01b</TD></TR>"), id="control-char"),
    pytest.param(table(field("a", "char", "*"), "<TR><TD>a]]>b</TD></TR>"), id="cdata-end"),
    pytest.param(table(field("a", "char", "*"), "<TR><TD><?pi x?>a</TD></TR>"), id="pi-in-cell"),
    pytest.param(
        table(field("a", "char", "*"), "<TR><TD>a<!-- x -- y --></TD></TR>"), id="bad-comment"
    ),
    pytest.param(
        '<RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><FITS extnum="1">'
        '<STREAM href="http://example.invalid/x.fits"/></FITS></DATA></TABLE></RESOURCE>',
        id="fits",
    ),
    pytest.param(
        '<RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY>'
        '<STREAM href="http://example.invalid/x.bin"/></BINARY></DATA></TABLE></RESOURCE>',
        id="remote-stream",
    ),
    pytest.param(
        '<RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA></DATA></TABLE></RESOURCE>',
        id="empty-data",
    ),
    pytest.param(
        '<RESOURCE><TABLE ID="t"><FIELD name="a" datatype="int"/></TABLE>'
        '<TABLE ref="t"><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>'
        "</RESOURCE>",
        id="table-ref",
    ),
    pytest.param(
        table('<FIELD name="a" datatype="int"><VALUES ref="v"/></FIELD>', rows(("1",))),
        id="values-ref",
    ),
    pytest.param(
        table('<FIELD name="a" datatype="int"><VALUES type="odd"/></FIELD>', rows(("1",))),
        id="values-type",
    ),
    pytest.param(
        table(
            '<FIELD name="a" datatype="int"><VALUES><MIN value="x"/></VALUES></FIELD>', rows(("1",))
        ),
        id="bad-min",
    ),
    pytest.param(
        table(
            '<FIELD name="a" datatype="int" arraysize="2">'
            '<VALUES><MIN value="1"/></VALUES></FIELD>',
            rows(("1 2",)),
        ),
        id="array-limits",
    ),
    pytest.param('<RESOURCE type="Results"/>', id="resource-type"),
    pytest.param(
        '<RESOURCE><TABLE nrows="2"><PARAM name="p" value="1"/>'
        "<DATA><TABLEDATA/></DATA></TABLE></RESOURCE>",
        id="rows-without-columns",
    ),
    pytest.param(
        '<RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><TABLEDATA/></DATA></TABLE>'
        '<TABLE><PARAM name="p" value="1"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>'
        "</DATA></TABLE></RESOURCE>",
        id="unread-payload",
    ),
    pytest.param('<RESOURCE><PARAM name="p" datatype="int" value="x"/></RESOURCE>', id="bad-param"),
    pytest.param('<RESOURCE><COOSYS system="ICRS"/></RESOURCE>', id="coosys-without-id"),
    pytest.param('<TIMESYS timescale="TT"/>', id="timesys-without-id"),
    pytest.param('<GROUP><FIELDref ucd="x"/></GROUP>', id="fieldref-without-ref"),
    pytest.param('<GROUP><PARAMref ref="x" odd="1"/></GROUP>', id="paramref-extra"),
    pytest.param('<INFO name="a" value="b"><INFO name="c" value="d"/></INFO>', id="nested-info"),
    pytest.param('<RESOURCE><TABLE config="x"/></RESOURCE>', id="attribute-collision"),
    pytest.param(
        table(
            '<FIELD name="cprojection" ID="cprojection" datatype="double"'
            ' ucd="VOX:WCS_CoordProjection"/>',
            rows(("TAN",)),
        ),
        id="cprojection",
    ),
]


@pytest.mark.parametrize("inner", FALLBACKS)
def test_fallbacks(inner: str) -> None:
    """What the fast decoder does not reproduce goes to astropy, with astropy's outcome."""
    check(vot(inner), fast=False)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'<?xml version="1.0"?><VOTABLE version="2.0"><RESOURCE/></VOTABLE>', id="version"
        ),
        pytest.param(
            '<?xml version="1.0" encoding="UTF-16"?><VOTABLE version="1.3"/>'.encode("utf-16"),
            id="utf-16",
        ),
        pytest.param(
            b'<!DOCTYPE VOTABLE [ <!ATTLIST VOTABLE version CDATA "1.3"> ]><VOTABLE/>',
            id="internal-subset",
        ),
        pytest.param(vot("<RESOURCE>") + b"</RESOURCE>", id="malformed"),
        pytest.param(vot(table(field("a", "int"), rows(("1",))))[:-30], id="truncated"),
    ],
)
def test_document_level_fallbacks(body: bytes) -> None:
    """Odd versions, encodings, DTD subsets and broken XML go to astropy."""
    check(body, fast=False)


def test_latin1_document() -> None:
    """An ISO-8859-1 document decodes its cells as Latin-1."""
    body = vot(table(field("s", "unicodeChar", "*"), rows(("caf\u00e9",)))).decode()
    body = body.replace("UTF-8", "ISO-8859-1").encode("latin-1")
    assert only_table(body)["s"][0] == "caf\u00e9"


def test_fast_false_forces_astropy() -> None:
    """``fast=False`` gives astropy tables."""
    body = vot(table(field("a", "int"), rows(("1",))))
    assert isinstance(parse_votable(body).tables[0], TableData)
    (result,) = parse_votable(body, fast=False).tables
    assert not isinstance(result, TableData)


def test_bad_cell_is_still_a_format_error() -> None:
    """A cell astropy refuses fails the response with astropy's message (via the fallback)."""
    with pytest.raises(ResponseFormatError, match="'ten'"):
        parse_votable(vot(table(field("a", "int"), rows(("ten",)))))


def test_huge_fixed_width_strings_fall_back() -> None:
    """A char arraysize that would need far more memory than the body is left to astropy."""
    body = vot(table(field("a", "char", "400000000"), rows(("x",))))
    assert fastvot.decode(body) is None


def test_threads_share_nothing() -> None:
    """Parallel decoding (as the engine does) gives the same results."""
    bodies = [
        vot(table(field("a", "double") + field("s", "char", "*"), rows((str(i), f"r{i}"))))
        for i in range(20)
    ]
    expected = [as_table(parse_votable(b).tables[0])["s"][0] for b in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda b: as_table(parse_votable(b).tables[0])["s"][0], bodies * 5))
    assert results == expected * 5


# --- the column model -----------------------------------------------------------------------


def test_column_meta_and_nulls_like_astropy() -> None:
    """column_meta and null_value follow astropy's parsing of VALUES/@null."""
    assert null_value(FieldMeta("a", datatype="int", null="x")) == 0
    assert null_value(FieldMeta("a", datatype="short", null="99999")) == 32767
    assert null_value(FieldMeta("a", datatype="double", null="none")) is None
    assert null_value(FieldMeta("a", datatype="boolean", null="T")) is True
    unit, _, meta, fmt = column_meta(FieldMeta("a", datatype="double", arraysize="2", width="5"))
    assert (unit, fmt, meta) == (None, None, {"width": 5})
    unit, _, meta, fmt = column_meta(FieldMeta("a", datatype="float", unit="mag", precision="2"))
    assert (unit, fmt) == (u.mag, "{:.2f}")


def test_table_data_reads_like_a_table() -> None:
    """TableData: colnames, len, columns by name, and to_table()."""
    body = vot(
        table(field("a", "double") + field("b", "int", "2"), rows(("1", "1 2"), ("2", "3 4")))
    )
    (result,) = parse_votable(body).tables
    assert isinstance(result, TableData)
    assert (result.colnames, len(result)) == (["a", "b"], 2)
    assert result["b"].shape == (2, 2)
    assert result["b"].ndim == 2
    assert len(result["a"]) == 2
    with pytest.raises(KeyError):
        result["c"]
    assert as_table(result)["b"].tolist() == [[1, 2], [3, 4]]


# --- differential: documents written by astropy ------------------------------------------

_NUMBERS = {
    "unsignedByte": (0, 255),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n", max_codepoint=0x2FFFF
    ),
    max_size=12,
)
_ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


@st.composite
def columns(draw: st.DrawFn) -> dict[str, Any]:
    """A random FIELD: datatype, arraysize, metadata, and a value strategy."""
    datatype = draw(
        st.sampled_from(["boolean", *list(_NUMBERS), "float", "double", "char", "unicodeChar"])
    )
    spec: dict[str, Any] = {
        "name": draw(st.sampled_from(["a", "b", "ra", "dec", "flux", "a b", "x-1"])),
        "datatype": datatype,
        "unit": draw(st.sampled_from([None, "deg", "mag", "km/s", "mJy", "bogus unit"])),
        "ucd": draw(st.sampled_from([None, "pos.eq.ra;meta.main", "phot.mag"])),
        "description": draw(st.one_of(st.none(), _TEXT)),
    }
    if datatype in {"char", "unicodeChar"}:
        spec["arraysize"] = draw(st.sampled_from([None, "1", "5", "8*", "*"]))
    else:
        spec["arraysize"] = draw(st.sampled_from([None, None, "1", "3"]))
    if datatype in {"float", "double"}:
        spec["precision"] = draw(st.sampled_from([None, "3", "E5", "F2"]))
        spec["width"] = draw(st.sampled_from([None, "8"]))
        if draw(st.booleans()):
            spec["null"] = draw(st.sampled_from([-999.0, -99.9, 1e20]))
    elif datatype in _NUMBERS and draw(st.booleans()):
        low, high = _NUMBERS[datatype]
        spec["null"] = draw(st.integers(low, high))
    return spec


def _value(draw: st.DrawFn, spec: dict[str, Any]) -> Any:
    datatype = spec["datatype"]
    if datatype == "boolean":
        return draw(st.booleans())
    if datatype in _NUMBERS:
        return draw(st.integers(*_NUMBERS[datatype]))
    if datatype in {"float", "double"}:
        width = 32 if datatype == "float" else 64
        return draw(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False, width=width),
                st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 0.1]),
            )
        )
    return draw(_ASCII if datatype == "char" else _TEXT)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A VOTable written by astropy from a random schema and random (masked) values."""
    version = draw(st.sampled_from(["1.1", "1.2", "1.3", "1.4", "1.5"]))
    specs = draw(st.lists(columns(), min_size=1, max_size=6))
    nrows = draw(st.integers(0, 6))
    votable = VOTableFile(version=version)
    resource = Resource()
    votable.resources.append(resource)
    element = TableElement(votable, name=draw(st.sampled_from([None, "results", "my table"])))
    resource.tables.append(element)
    for spec in specs:
        new = Field(
            votable,
            name=spec["name"],
            datatype=spec["datatype"],
            arraysize=spec["arraysize"],
            unit=spec["unit"],
            ucd=spec["ucd"],
            precision=spec.get("precision"),
            width=spec.get("width"),
        )
        new.description = spec["description"]
        if "null" in spec:
            new.values.null = spec["null"]
            new._setup(votable.config, None)
        element.fields.append(new)
    element.create_arrays(nrows)
    for i in range(nrows):
        for j, spec in enumerate(specs):
            shape = element.array.dtype[j].shape
            count = int(np.prod(shape)) if shape else 1
            values = [_value(draw, spec) for _ in range(count)]
            masks = [draw(st.booleans()) for _ in values]  # strings: written as ""
            key = element.array.dtype.names[j]
            element.array[key][i] = values[0] if not shape else np.array(values).reshape(shape)
            element.array.mask[key][i] = masks[0] if not shape else np.array(masks).reshape(shape)
    buffer = io.BytesIO()
    votable.to_xml(buffer, tabledata_format="tabledata")
    return buffer.getvalue()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_differential_astropy_written(body: bytes) -> None:
    """Random tables written by astropy decode exactly as astropy reads them back."""
    mine, theirs = outcome(body, fast=True), outcome(body, fast=False)
    assert_same_outcome(mine, theirs)
    if not isinstance(theirs, Exception):
        assert fastvot.decode(body) is not None


# --- differential: odd hand-written cells -------------------------------------------------

_TOKENS = [
    "",
    " ",
    "1",
    "-1",
    "+1",
    "007",
    "1.5",
    "1e5",
    "1E-5",
    ".5",
    "5.",
    "-0",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-Infinity",
    "+InF",
    "0x1F",
    "0X1f",
    "0x",
    "0x-5",
    "1_000",
    "\u0661\u0662",
    "T",
    "F",
    "true",
    "FALSE",
    "?",
    "t",
    "1 2",
    "1,2",
    "1 2 3",
    "1, 2,3",
    "null",
    "---",
    "1.0",
    "99999999999999999999",
    "-32769",
    "256",
    "-129",
    "\u00a01",
    " 7 ",
    "\t8\n",
    "&amp;",
    "a&lt;b",
    "&#233;",
    "&#32;x&#32;",
    "&#x31;",
    "\u00e9t\u00e9",
    "<![CDATA[ 3 ]]>",
    "4<!-- c -->",
]
_CELL = st.one_of(
    st.sampled_from(_TOKENS),
    _TEXT.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "")),
)
_KINDS = [
    ("boolean", None),
    ("unsignedByte", None),
    ("short", None),
    ("int", None),
    ("long", None),
    ("float", None),
    ("double", None),
    ("char", None),
    ("char", "3"),
    ("char", "*"),
    ("unicodeChar", "*"),
    ("double", "2"),
    ("int", "3"),
    ("boolean", "2"),
]


@st.composite
def odd_documents(draw: st.DrawFn) -> bytes:
    """A hand-written TABLEDATA document with odd cells, nulls and markup variants."""
    kinds = draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=4))
    fields = ""
    for i, (datatype, arraysize) in enumerate(kinds):
        values = ""
        if datatype not in {"char", "unicodeChar", "boolean"} and draw(st.booleans()):
            values = f'<VALUES null="{draw(st.sampled_from(["-1", "0", "NaN", "255", "x"]))}"/>'
        size = f' arraysize="{arraysize}"' if arraysize else ""
        fields += f'<FIELD name="c{i}" datatype="{datatype}"{size}>{values}</FIELD>'
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        cells = []
        for _ in kinds:
            cell = draw(_CELL)
            form = draw(st.sampled_from(["plain", "plain", "padded", "empty"]))
            if form == "empty" and cell == "":
                cells.append("<TD/>")
            elif form == "padded":
                cells.append(f"<TD>\n  {cell}  </TD>")
            else:
                cells.append(f"<TD>{cell}</TD>")
        lines.append("<TR>" + "".join(cells) + "</TR>")
    version = draw(st.sampled_from(["1.1", "1.2", "1.3", "1.4"]))
    return vot(table(fields, "\n".join(lines)), version=version)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_documents())
def test_differential_odd_cells(body: bytes) -> None:
    """Odd cell texts: the fast path agrees with astropy, or steps aside."""
    assert_same_outcome(outcome(body, fast=True), outcome(body, fast=False))


# --- differential: random document structures ----------------------------------------------

_LEAVES = [
    '<INFO name="QUERY_STATUS" value="OK"/>',
    '<INFO name="QUERY_STATUS" value="OVERFLOW">cut here</INFO>',
    '<INFO name="QUERY_STATUS" value="ERROR">it failed</INFO>',
    '<INFO name="Error" value="bad input"/>',
    '<INFO name="warning" value="the limit was reached"/>',
    '<INFO name="other" value="x">text<B>bold</B>tail</INFO>',
    '<PARAM name="Error" datatype="char" arraysize="*" value="param error"/>',
    '<PARAM name="p" datatype="double" value="2.5" unit="m"/>',
    '<PARAM name="q" datatype="int" value=""><VALUES null="-1"/></PARAM>',
    '<FIELD name="f" datatype="int"/>',
    '<FIELD name="g" datatype="char" arraysize="*"><DESCRIPTION>about g</DESCRIPTION></FIELD>',
    '<COOSYS ID="c" system="ICRS"/>',
    "<DESCRIPTION>some <I>words</I> here</DESCRIPTION>",
    '<LINK href="http://x"/>',
    '<GROUP name="g"><PARAM name="r" datatype="float" value="1"/><FIELDref ref="f"/></GROUP>',
    "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA>",
    "<DATA><TABLEDATA><TR><TD>1</TD><TD>a</TD></TR></TABLEDATA></DATA>",
    "<DATA><TABLEDATA/></DATA>",
]
_CONTAINERS = [
    "RESOURCE",
    'RESOURCE type="meta"',
    "TABLE",
    'TABLE name="t"',
    "GROUP",
    "FOO",
    "VODML",
]


def _structures() -> st.SearchStrategy[str]:
    leaves = st.sampled_from(_LEAVES)

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.builds(
            lambda tag, inner: f"<{tag}>{''.join(inner)}</{tag.split()[0]}>",
            st.sampled_from(_CONTAINERS),
            st.lists(children, max_size=4),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_structures(), max_size=4), st.sampled_from(["1.1", "1.3", "1.4"]))
def test_differential_structures(parts: list[str], version: str) -> None:
    """Random nestings of VOTable elements: same tables and status as astropy's tree."""
    body = vot("".join(parts), version=version)
    assert_same_outcome(outcome(body, fast=True), outcome(body, fast=False))
