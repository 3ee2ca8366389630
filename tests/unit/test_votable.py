# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Unit tests for `vosweep.protocols.votable.parse_votable`, one rule at a time."""

from __future__ import annotations

import gzip
import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from astropy import units as u
from astropy.io.votable.tree import VOTableFile
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vosweep.errors import QueryRejected, ResponseFormatError, ResponseTooLarge, ServiceError
from vosweep.protocols import votable as votable_module
from vosweep.protocols.base import Parsed, QueryStatus
from vosweep.protocols.fastvot import TableData
from vosweep.protocols.votable import parse_votable

if TYPE_CHECKING:
    from pathlib import Path

NAMESPACES = {
    "1.1": "http://www.ivoa.net/xml/VOTable/v1.1",
    "1.2": "http://www.ivoa.net/xml/VOTable/v1.2",
    "1.3": "http://www.ivoa.net/xml/VOTable/v1.3",
    "1.4": "http://www.ivoa.net/xml/VOTable/v1.3",
    "1.5": "http://www.ivoa.net/xml/VOTable/v1.3",
}

FIELDS = (
    '<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main">'
    "<DESCRIPTION>Right ascension</DESCRIPTION></FIELD>"
    '<FIELD name="id" datatype="char" arraysize="*"/>'
)
ROWS = "<TR><TD>10.5</TD><TD>a</TD></TR><TR><TD>11.5</TD><TD>b</TD></TR>"
TABLE = f'<TABLE name="results">{FIELDS}<DATA><TABLEDATA>{ROWS}</TABLEDATA></DATA></TABLE>'


def vot(
    inner: str, *, version: str = "1.4", namespace: bool = True, declaration: bool = True
) -> bytes:
    """Wrap *inner* in a VOTABLE root element."""
    xmlns = f' xmlns="{NAMESPACES[version]}"' if namespace and version in NAMESPACES else ""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    return f'{head}<VOTABLE version="{version}"{xmlns}>{inner}</VOTABLE>'.encode()


def as_table(table: Table | TableData) -> Table:
    """The astropy table, from the fast decoder's TableData or astropy's own."""
    return table.to_table() if isinstance(table, TableData) else table


def info(name: str, value: str, content: str = "") -> str:
    """An INFO element, with content if given."""
    if content:
        return f'<INFO name="{name}" value="{value}">{content}</INFO>'
    return f'<INFO name="{name}" value="{value}"/>'


def resource(*parts: str, rtype: str = "results") -> str:
    """A RESOURCE element holding *parts* in order."""
    return f'<RESOURCE type="{rtype}">{"".join(parts)}</RESOURCE>'


def serialized(fmt: str) -> bytes:
    """A three-row VOTable written by astropy in *fmt* (tabledata, binary or binary2)."""
    table = Table({"a": [1, 2, 3], "b": ["x", "yy", "zzz"]})
    table["a"].unit = u.m
    buffer = io.BytesIO()
    VOTableFile.from_table(table).to_xml(buffer, tabledata_format=fmt)
    return buffer.getvalue()


# --- status ---------------------------------------------------------------------------------


def test_ok_status_returns_rows_and_message() -> None:
    """QUERY_STATUS=OK gives the rows and the status content as message."""
    parsed = parse_votable(vot(resource(info("QUERY_STATUS", "OK", "Successful query"), TABLE)))
    assert isinstance(parsed, Parsed)
    assert parsed.status is QueryStatus.OK
    assert parsed.message == "Successful query"
    assert parsed.rows == 2
    assert as_table(parsed.tables[0])["id"].tolist() == ["a", "b"]


def test_missing_status_is_ok_without_message() -> None:
    """No QUERY_STATUS at all means OK (DALI default) and no message."""
    parsed = parse_votable(vot(resource(TABLE)))
    assert parsed.status is QueryStatus.OK
    assert parsed.message is None


def test_error_status_raises_with_content() -> None:
    """QUERY_STATUS=ERROR raises QueryRejected carrying the INFO content."""
    body = vot(resource(info("QUERY_STATUS", "ERROR", "Table 'foo' does not exist")))
    with pytest.raises(QueryRejected, match="Table 'foo' does not exist"):
        parse_votable(body)


def test_error_status_without_content_uses_value() -> None:
    """An ERROR INFO with no content falls back to its value as the message."""
    with pytest.raises(QueryRejected, match=r"^ERROR$"):
        parse_votable(vot(resource(info("QUERY_STATUS", "ERROR"), TABLE)))


def test_error_status_at_root_without_resource() -> None:
    """A root-level ERROR INFO in a document without RESOURCE is still found."""
    with pytest.raises(QueryRejected, match="not found: zaada"):
        parse_votable(
            vot(info("QUERY_STATUS", "ERROR", "PhotCalID not found: zaada"), version="1.1")
        )


def test_error_status_in_table_is_found() -> None:
    """A QUERY_STATUS INFO inside the TABLE (after the data) counts too."""
    table = TABLE.replace("</TABLE>", info("QUERY_STATUS", "ERROR", "died mid-query") + "</TABLE>")
    with pytest.raises(QueryRejected, match="died mid-query"):
        parse_votable(vot(resource(info("QUERY_STATUS", "OK"), table)))


def test_overflow_after_table_keeps_rows() -> None:
    """An OVERFLOW INFO written after the TABLE gives OVERFLOW with every row kept."""
    body = vot(resource(TABLE, info("QUERY_STATUS", "OVERFLOW", "Truncated result")))
    parsed = parse_votable(body)
    assert parsed.status is QueryStatus.OVERFLOW
    assert parsed.message == "Truncated result"
    assert parsed.rows == 2


def test_ok_then_overflow_last_one_counts() -> None:
    """OK before the table and OVERFLOW after it: the last one (OVERFLOW) counts."""
    body = vot(resource(info("QUERY_STATUS", "OK"), TABLE, info("QUERY_STATUS", "OVERFLOW")))
    assert parse_votable(body).status is QueryStatus.OVERFLOW


def test_overflow_then_ok_last_one_counts() -> None:
    """The order matters both ways: OVERFLOW then OK ends as OK."""
    body = vot(
        resource(info("QUERY_STATUS", "OVERFLOW"), TABLE, info("QUERY_STATUS", "OK", "fine"))
    )
    parsed = parse_votable(body)
    assert parsed.status is QueryStatus.OK
    assert parsed.message == "fine"


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        pytest.param(
            info("QUERY_STATUS", "OK")
            + resource(TABLE.replace("</TABLE>", info("QUERY_STATUS", "OVERFLOW") + "</TABLE>")),
            QueryStatus.OVERFLOW,
            id="root-ok-then-table-overflow",
        ),
        pytest.param(
            resource(TABLE, info("QUERY_STATUS", "OVERFLOW")) + info("QUERY_STATUS", "OK"),
            QueryStatus.OK,
            id="resource-overflow-then-root-ok",
        ),
        pytest.param(
            resource(info("QUERY_STATUS", "OK"), TABLE) + info("QUERY_STATUS", "OVERFLOW"),
            QueryStatus.OVERFLOW,
            id="resource-ok-then-root-overflow",
        ),
    ],
)
def test_status_order_across_levels(inner: str, expected: QueryStatus) -> None:
    """Root, RESOURCE and TABLE INFOs are merged in document order before the last one wins."""
    assert parse_votable(vot(inner)).status is expected


def test_status_name_is_case_insensitive() -> None:
    """An INFO named query_status (lower case) is a status INFO too."""
    body = vot(resource(TABLE, info("query_status", "OVERFLOW")))
    assert parse_votable(body).status is QueryStatus.OVERFLOW


def test_error_status_with_error_infos_combines_messages() -> None:
    """Several Error INFOs plus QUERY_STATUS=ERROR: the first Error INFO and the status text."""
    errors = info("Error", "The database is not reachable.") + info("Error", "second") * 3
    body = vot(
        errors + info("QUERY_STATUS", "ERROR", "no connection\n  Postgres error") + resource()
    )
    with pytest.raises(QueryRejected) as caught:
        parse_votable(body)
    assert caught.value.message == "The database is not reachable.: no connection Postgres error"


def test_long_messages_are_capped() -> None:
    """A service that sends a whole stack trace as message gets it cut to a readable length."""
    with pytest.raises(QueryRejected) as caught:
        parse_votable(vot(resource(info("QUERY_STATUS", "ERROR", "x " * 5000))))
    assert len(caught.value.message) <= 2000


SCS_ERRORS = [
    pytest.param(
        '<DESCRIPTION>MAST</DESCRIPTION><INFO ID="Error" name="Error" value="bad RA"/>',
        id="root-info",
    ),
    pytest.param('<RESOURCE><INFO name="Error" value="bad RA"/></RESOURCE>', id="resource-info"),
    pytest.param(
        '<RESOURCE><PARAM name="Error" datatype="char" arraysize="*" value="bad RA"/></RESOURCE>',
        id="resource-param",
    ),
    pytest.param(
        '<DEFINITIONS><PARAM name="Error" datatype="char" arraysize="*" value="bad RA"/>'
        "</DEFINITIONS>",
        id="definitions-param",
    ),
    pytest.param('<RESOURCE><PARAM name="Error" value="bad RA"/></RESOURCE>', id="untyped-param"),
]


@pytest.mark.parametrize("inner", SCS_ERRORS)
def test_scs_error_placements_raise(inner: str) -> None:
    """Each of the SCS error placements (VOTable 1.0, no namespace) raises QueryRejected."""
    body = b'<?xml version="1.0"?>\n<!DOCTYPE VOTABLE SYSTEM "http://us-vo.org/xml/VOTable.dtd">\n'
    body += vot(inner, version="1.0", namespace=False, declaration=False)
    with pytest.raises(QueryRejected, match=r"^bad RA$"):
        parse_votable(body)


def test_scs_error_param_wins_over_ok_status() -> None:
    """An Error PARAM rejects the query even when QUERY_STATUS says OK (NED does this)."""
    body = vot(
        resource(info("QUERY_STATUS", "OK"), '<PARAM name="Error" value=" No note found."/>'),
        version="1.1",
        namespace=False,
    )
    with pytest.raises(QueryRejected, match=r"^No note found\.$"):
        parse_votable(body)


def test_scs_error_info_with_rows_still_rejects() -> None:
    """An Error INFO next to a result table rejects the query: the service said it failed."""
    with pytest.raises(QueryRejected, match="partial failure"):
        parse_votable(vot(resource(info("Error", "partial failure"), TABLE)))


def test_blank_error_info_still_rejects() -> None:
    """An Error INFO without text is still an error, with a generic message."""
    with pytest.raises(QueryRejected, match="without text"):
        parse_votable(vot(resource(info("Error", " "))))


def test_warning_about_truncation_is_overflow() -> None:
    """Truncation signalled only by INFO name=warning (DaCHS) is reported as OVERFLOW."""
    warning = info("warning", "In table result: The query limit was reached. Increase it.")
    parsed = parse_votable(vot(resource(warning, TABLE)))
    assert parsed.status is QueryStatus.OVERFLOW
    assert parsed.message is not None
    assert "query limit was reached" in parsed.message
    assert parsed.rows == 2


@pytest.mark.parametrize(
    "text", ["truncated result (maxtup=5)", "Result truncated at MAXREC", "Output limit exceeded"]
)
def test_warning_truncation_wordings(text: str) -> None:
    """Various truncation wordings in a Warning INFO (any case) give OVERFLOW."""
    parsed = parse_votable(vot(resource(TABLE, info("Warning", text))))
    assert parsed.status is QueryStatus.OVERFLOW


def test_other_warning_is_ok() -> None:
    """A warning that does not speak of truncation leaves the status OK."""
    body = vot(resource(info("warning", "increase the precision for computed column 14"), TABLE))
    parsed = parse_votable(body)
    assert parsed.status is QueryStatus.OK
    assert parsed.message is None


def test_ok_status_beats_nothing_but_not_truncation_warning() -> None:
    """QUERY_STATUS=OK plus a truncation warning: the warning is the only truncation signal."""
    body = vot(resource(info("QUERY_STATUS", "OK"), TABLE, info("Warning", "truncated result")))
    assert parse_votable(body).status is QueryStatus.OVERFLOW


# --- tables ---------------------------------------------------------------------------------


def test_table_metadata_is_kept() -> None:
    """Units, UCDs, descriptions and the table name survive into the astropy Table."""
    table = parse_votable(vot(resource(TABLE))).tables[0]
    assert table["ra"].unit == u.deg
    assert table["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert table["ra"].description == "Right ascension"
    assert table.meta["vosweep_table"] == "results"


def test_param_only_table_is_empty_table_with_params() -> None:
    """A TABLE with PARAMs but no FIELDs is a zero-row, zero-column table, params in meta."""
    params = (
        '<PARAM name="PhotCalID" datatype="char" arraysize="*" value="2MASS/2MASS.H/Vega"/>'
        '<PARAM name="ZeroPoint" datatype="double" unit="Jy" value="1024.0"/>'
    )
    body = vot(
        resource(info("QUERY_STATUS", "OK"), f"<TABLE>{params}<DATA><TABLEDATA/></DATA></TABLE>")
    )
    parsed = parse_votable(body, max_bytes=10_000)
    (table,) = parsed.tables
    assert len(table) == 0
    assert table.colnames == []
    assert table.meta["params"]["PhotCalID"] == "2MASS/2MASS.H/Vega"
    assert float(table.meta["params"]["ZeroPoint"]) == 1024.0


def test_fields_without_data_is_zero_row_table() -> None:
    """A TABLE with FIELDs and no DATA is a zero-row table that keeps its columns."""
    parsed = parse_votable(vot(resource(f'<TABLE name="empty">{FIELDS}</TABLE>')))
    (table,) = parsed.tables
    assert len(table) == 0
    assert table.colnames == ["ra", "id"]


def test_no_table_is_empty_list() -> None:
    """A VOTable without any TABLE and without error is Parsed with no tables."""
    parsed = parse_votable(vot(resource(info("QUERY_STATUS", "OK"))))
    assert parsed.tables == []
    assert parsed.status is QueryStatus.OK


def test_multiple_resources_and_tables_in_document_order() -> None:
    """Every TABLE of every RESOURCE comes back, in document order, with its name or ID."""
    one = TABLE.replace('name="results"', 'name="first"')
    two = TABLE.replace('name="results"', 'ID="second"').replace(ROWS, ROWS * 2)
    three = TABLE.replace(' name="results"', "")
    nested = resource(three)
    parsed = parse_votable(vot(resource(one, two) + resource(nested)))
    assert [t.meta["vosweep_table"] for t in parsed.tables] == ["first", "second", "table2"]
    assert [len(t) for t in parsed.tables] == [2, 4, 2]


def test_meta_resource_tables_are_excluded() -> None:
    """Tables and status INFOs inside RESOURCE type=meta (service descriptors) are ignored."""
    descriptor = resource(
        info("QUERY_STATUS", "ERROR", "not about this query"),
        TABLE.replace('name="results"', 'name="descriptor"'),
        rtype="meta",
    )
    parsed = parse_votable(vot(resource(TABLE) + descriptor))
    assert [t.meta["vosweep_table"] for t in parsed.tables] == ["results"]
    assert parsed.status is QueryStatus.OK


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"])
@pytest.mark.parametrize("namespace", [True, False])
def test_votable_versions(version: str, namespace: bool) -> None:
    """VOTable 1.0 to 1.5, with or without namespace, all parse."""
    parsed = parse_votable(vot(resource(TABLE), version=version, namespace=namespace))
    assert parsed.rows == 2


def test_no_xml_declaration() -> None:
    """A document without the XML declaration parses."""
    assert parse_votable(vot(resource(TABLE), declaration=False)).rows == 2


def test_leading_whitespace_before_declaration() -> None:
    """Blank lines before the XML declaration (sloppy CGI scripts) are tolerated."""
    assert parse_votable(b"\r\n\n  " + vot(resource(TABLE))).rows == 2


@pytest.mark.parametrize("prefix", ["vot", "ns0"])
def test_namespace_prefix(prefix: str) -> None:
    """Prefixed elements (vot:, ns0:) parse, including their status INFOs."""
    inner = resource(TABLE, info("QUERY_STATUS", "OVERFLOW"))
    body = vot(inner).decode()
    body = body.replace("</", "\0").replace("<", f"<{prefix}:").replace("\0", f"</{prefix}:")
    body = body.replace(f"<{prefix}:?xml", "<?xml")
    body = body.replace(' xmlns="', f' xmlns:{prefix}="')
    parsed = parse_votable(body.encode())
    assert parsed.rows == 2
    assert parsed.status is QueryStatus.OVERFLOW


@pytest.mark.parametrize("fmt", ["tabledata", "binary", "binary2"])
def test_serializations(fmt: str) -> None:
    """TABLEDATA, BINARY and BINARY2 serializations all give the same rows and units."""
    (table,) = map(as_table, parse_votable(serialized(fmt)).tables)
    assert table["a"].tolist() == [1, 2, 3]
    assert table["b"].tolist() == ["x", "yy", "zzz"]
    assert table["a"].unit == u.m


def test_mislabelled_content_type_is_parsed() -> None:
    """A valid VOTable served as text/plain or text/html is parsed anyway."""
    body = vot(resource(TABLE))
    assert parse_votable(body, content_type="text/plain").rows == 2
    assert parse_votable(body, content_type="text/html").rows == 2


def test_utf16_document() -> None:
    """A UTF-16 document with a byte-order mark parses."""
    text = vot(resource(TABLE), declaration=False).decode()
    body = ('<?xml version="1.0" encoding="UTF-16"?>' + text).encode("utf-16")
    assert parse_votable(body).rows == 2


@pytest.mark.parametrize("encoding", ["windows-1252", "latin1", "utf8"])
def test_encodings_expat_does_not_know(encoding: str) -> None:
    """Encodings declared under names expat refuses are re-encoded and parse."""
    text = vot(resource(TABLE.replace("<TD>a</TD>", "<TD>caf\u00e9</TD>")), declaration=False)
    codec = "utf-8" if encoding == "utf8" else "cp1252"
    body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + text.decode().encode(codec)
    assert as_table(parse_votable(body).tables[0])["id"][0] == "caf\u00e9"


def test_unknown_encoding_is_format_error() -> None:
    """An encoding nobody knows is a format error naming it."""
    body = b'<?xml version="1.0" encoding="klingon-8"?>' + vot(resource(TABLE), declaration=False)
    with pytest.raises(ResponseFormatError, match="klingon-8"):
        parse_votable(body)


# --- not a VOTable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body/></html>",
        b"\xef\xbb\xbf \n<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD></HTML>",
        (
            b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
            b"<head><title>Service  Unavailable</title></head></html>"
        ),
    ],
    ids=["doctype", "bom-uppercase", "xhtml"],
)
def test_html_page_is_format_error_with_title(body: bytes) -> None:
    """An HTML page served with 200 is a format error quoting the page title."""
    with pytest.raises(
        ResponseFormatError, match=r"^HTML page instead of a VOTable.*Service Unavailable"
    ):
        parse_votable(body, content_type="text/html")


def test_html_title_search_is_linear_on_unclosed_titles() -> None:
    """64 KiB of unclosed <title> tags: the sniffer reads the page once, not once per tag.

    The old lazy regex rescanned to the end from every tag (~2e9 steps here); the bound is
    a guard far above the linear cost, not a benchmark.
    """
    import time  # noqa: PLC0415

    body = b"<html><head>" + b"<title>x" * 8000
    started = time.process_time()
    with pytest.raises(ResponseFormatError, match=r"^HTML page instead of a VOTable \(starts"):
        parse_votable(body, content_type="text/html")
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (b"<html><title lang='en'>A &amp; B</title ><title>second</title>", "A & B"),
        (b"<html><TITLE>\n  spaced   out \n</TITLE>", "spaced out"),
        (b"<html><title></title><h1>x</h1>", None),
    ],
)
def test_html_title_is_the_first_one(body: bytes, title: str | None) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        parse_votable(body, content_type="text/html")
    if title is None:
        assert "title:" not in str(caught.value)
    else:
        assert f"(title: {title!r})" in str(caught.value)


def test_html_content_type_without_votable_root() -> None:
    """text/html with a body that is no VOTable is reported as an HTML page."""
    with pytest.raises(ResponseFormatError, match=r"HTML page.*Internal error"):
        parse_votable(b"Internal error, try later", content_type="text/html")


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"", "", "empty body"),
        (b"  \r\n ", "", "blank body"),
        (b'{"metadata": [], "data": []}', "application/json", "JSON document"),
        (b"[1, 2]", "", "JSON document"),
        (b"ra,dec\n1,2\n", "text/csv", "CSV text"),
        (b"# %ECSV 1.0\n# ---\na b\n", "", "ECSV table"),
        (b"SIMPLE  =                    T", "", "FITS file"),
        (b"Service temporarily unavailable", "text/plain", "plain text"),
        (b"\x00\x01\x02\x03binary", "", "binary data"),
    ],
)
def test_other_formats_are_named(body: bytes, content_type: str, kind: str) -> None:
    """Non-XML bodies raise ResponseFormatError naming what they are."""
    with pytest.raises(ResponseFormatError, match=f"^{kind} instead of a VOTable"):
        parse_votable(body, content_type=content_type)


def test_non_votable_xml_names_root_and_message() -> None:
    """Another XML document names its root element and quotes an error message if any."""
    body = (
        b'<results status="error">\n  <message>\n    Invalid object name.\n  </message>\n</results>'
    )
    with pytest.raises(ResponseFormatError, match=r"root <results>.*: Invalid object name\.$"):
        parse_votable(body)


def test_uws_document_names_prefixed_root() -> None:
    """A UWS job document is a format error naming <uws:job>."""
    body = b'<?xml version="1.0"?><uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"/>'
    with pytest.raises(ResponseFormatError, match="<uws:job>"):
        parse_votable(body)


@pytest.mark.parametrize("cut", [60, 150, 300, -40, -10])
def test_truncated_document_is_format_error(cut: int) -> None:
    """A body cut anywhere (mid-tag, mid-row, before the end tags) is a format error."""
    body = vot(resource(info("QUERY_STATUS", "OK"), TABLE))
    with pytest.raises(ResponseFormatError):
        parse_votable(body[:cut])


def test_malformed_xml_is_format_error_with_parser_message() -> None:
    """Malformed XML gives the parser's message (line:column: reason)."""
    with pytest.raises(ResponseFormatError, match="mismatched tag"):
        parse_votable(vot("<RESOURCE><TABLE></RESOURCE>"))


def test_unreadable_cell_is_format_error_not_shifted_row() -> None:
    """A cell astropy cannot convert fails the response instead of shifting the row's data."""
    table = (
        '<TABLE><FIELD name="n" datatype="int"/><FIELD name="id" datatype="char" arraysize="*"/>'
        "<DATA><TABLEDATA><TR><TD>ten</TD><TD>a</TD></TR></TABLEDATA></DATA></TABLE>"
    )
    with pytest.raises(ResponseFormatError, match="'ten'"):
        parse_votable(vot(resource(table)))


def test_astropy_refusal_is_format_error() -> None:
    """An arraysize astropy refuses (100x*, seen at ESA) is a format error, not a crash."""
    body = vot(
        resource(
            '<TABLE><FIELD name="c" datatype="char" arraysize="100x*"/>'
            "<DATA><TABLEDATA><TR><TD>x</TD></TR></TABLEDATA></DATA></TABLE>"
        )
    )
    with pytest.raises(ResponseFormatError, match="E01"):
        parse_votable(body)


# --- security -------------------------------------------------------------------------------


def test_entity_declaration_is_refused() -> None:
    """A DTD internal subset declaring entities (billion laughs) is refused before parsing."""
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE VOTABLE [<!ENTITY l0 "lol">{laughs}]>'
        f'<VOTABLE version="1.3"><DESCRIPTION>&l9;</DESCRIPTION></VOTABLE>'
    ).encode()
    with pytest.raises(ResponseFormatError, match="entities"):
        parse_votable(body)


def test_external_entity_declaration_is_refused() -> None:
    """An XXE-style SYSTEM entity declaration is refused too."""
    body = (
        b'<!DOCTYPE VOTABLE [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>'
        b'<VOTABLE version="1.3"><DESCRIPTION>&xxe;</DESCRIPTION></VOTABLE>'
    )
    with pytest.raises(ResponseFormatError, match="entities"):
        parse_votable(body)


@pytest.mark.parametrize(
    "subset",
    [
        # A "]>" inside a literal must not end the subset before the real declarations.
        '<!ATTLIST VOTABLE x CDATA "]><VOTABLE"> <!ENTITY l0 "lol">',
        "<!-- ]> --> <!entity l0 'lol'>",
    ],
    ids=["literal", "comment-lowercase"],
)
def test_entity_declaration_hidden_behind_fake_subset_end(subset: str) -> None:
    """Entity declarations after a fake ']>' in a literal or comment are still found."""
    body = f'<!DOCTYPE VOTABLE [ {subset} ]><VOTABLE version="1.3"/>'.encode()
    with pytest.raises(ResponseFormatError, match="entities"):
        parse_votable(body)


def test_entity_declaration_hidden_by_declared_encoding() -> None:
    """Markup hidden by an exotic declared encoding (UTF-7) is checked after re-encoding."""
    body = (
        b'<?xml version="1.0" encoding="UTF-7"?><!DOCTYPE VOTABLE [+ADw-!ENTITY l0 "lol">]>'
        b'<VOTABLE version="1.3">&l0;</VOTABLE>'
    )
    assert "<!ENTITY" in body.decode("utf-7")
    with pytest.raises(ResponseFormatError, match="entities"):
        parse_votable(body)


def test_doctype_system_does_not_load_the_dtd(tmp_path: Path) -> None:
    """A plain DOCTYPE SYSTEM is accepted and the named DTD is never read."""
    dtd = tmp_path / "trap.dtd"
    dtd.write_text('<!ENTITY secret "LEAKED">')
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE VOTABLE SYSTEM "{dtd.as_uri()}">\n'
        '<VOTABLE version="1.0"><RESOURCE><TABLE><DESCRIPTION>x&secret;y</DESCRIPTION>'
        '<FIELD name="a" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA>'
        "</TABLE></RESOURCE></VOTABLE>"
    ).encode()
    parsed = parse_votable(body)
    # expat skips the reference to the entity it never loaded.
    assert parsed.tables[0].meta["description"] == "xy"


def test_internal_subset_without_entities_is_accepted() -> None:
    """An internal subset with only ATTLIST/ELEMENT declarations is harmless and accepted."""
    body = b'<!DOCTYPE VOTABLE [ <!ATTLIST VOTABLE version CDATA "1.3"> ]>' + vot(
        resource(TABLE), declaration=False, namespace=False
    )
    assert parse_votable(body).rows == 2


# --- compression and size -------------------------------------------------------------------


def test_gzip_body_is_inflated() -> None:
    """A gzip body (no Content-Encoding said so) is inflated and parsed."""
    assert parse_votable(gzip.compress(vot(resource(TABLE)))).rows == 2


def test_double_gzip_and_multi_member_gzip() -> None:
    """Gzip applied twice, and gzip streams of several members, are both read."""
    body = vot(resource(TABLE))
    assert parse_votable(gzip.compress(gzip.compress(body))).rows == 2
    assert parse_votable(gzip.compress(body[:50]) + gzip.compress(body[50:])).rows == 2


def test_gzip_cap_boundary() -> None:
    """The cap applies to the inflated size: exactly at the cap passes, one byte less fails."""
    body = vot(resource(TABLE))
    packed = gzip.compress(body)
    assert parse_votable(packed, max_bytes=len(body)).rows == 2
    with pytest.raises(ResponseTooLarge):
        parse_votable(packed, max_bytes=len(body) - 1)


def test_gzip_bomb_is_too_large() -> None:
    """A small gzip of many zero bytes stops at max_bytes with ResponseTooLarge."""
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(ResponseTooLarge):
        parse_votable(bomb, max_bytes=1_000_000)


def test_plain_body_over_cap_is_too_large() -> None:
    """An uncompressed body longer than max_bytes is ResponseTooLarge too."""
    with pytest.raises(ResponseTooLarge):
        parse_votable(vot(resource(TABLE)), max_bytes=100)


def test_truncated_gzip_is_format_error() -> None:
    """A gzip stream cut short is a format error, not a partial parse."""
    packed = gzip.compress(vot(resource(TABLE)))
    with pytest.raises(ResponseFormatError, match="gzip"):
        parse_votable(packed[: len(packed) // 2])


def test_corrupt_gzip_is_format_error() -> None:
    """A gzip header followed by junk is a format error."""
    with pytest.raises(ResponseFormatError, match="gzip"):
        parse_votable(b"\x1f\x8b\x08\x00junkjunkjunkjunk")


def test_gzip_of_tar_is_named() -> None:
    """A gzip that holds a tar archive (ESA's job_2.vot.gz) is named as such."""
    buffer = io.BytesIO()
    payload = vot(resource(TABLE))
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("job_2.vot")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    with pytest.raises(ResponseFormatError, match="gzip-compressed tar archive"):
        parse_votable(buffer.getvalue())


# --- robustness -----------------------------------------------------------------------------


def test_document_order_falls_back_without_positions() -> None:
    """Elements without a recorded parser position keep their traversal order."""
    items = [object(), object()]
    assert votable_module._document_order(items) == items


def test_parallel_parsing_gives_same_results() -> None:
    """Many threads parsing at once (as the engine does) get the same, correct answers."""
    bodies = [
        vot(resource(TABLE, info("QUERY_STATUS", "OVERFLOW"))),
        serialized("binary2"),
        gzip.compress(vot(resource(TABLE) * 3)),
    ]
    expected = [(p.status, p.rows) for p in map(parse_votable, bodies)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(parse_votable, bodies * 20))
    assert [(p.status, p.rows) for p in results] == expected * 20


VALID = vot(resource(info("QUERY_STATUS", "OK"), TABLE, info("QUERY_STATUS", "OVERFLOW")))
SEEDS = [VALID, serialized("binary2"), serialized("binary")]


def outcome_is_classified(body: bytes) -> None:
    """Assert that *body* parses or raises a ServiceError subclass, never anything else."""
    try:
        result = parse_votable(body, max_bytes=1_000_000)
    except ServiceError:
        return
    assert isinstance(result, Parsed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(body: bytes) -> None:
    """Random bytes end as Parsed or a ServiceError subclass, never another exception."""
    outcome_is_classified(body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
    compress=st.booleans(),
)
def test_mutated_votables_never_crash(
    seed: bytes, cut: float, flips: list[tuple[float, int]], compress: bool
) -> None:
    """Truncated and byte-flipped VOTables (optionally gzipped) end as Parsed or ServiceError."""
    body = bytearray(seed[: max(1, int(len(seed) * cut))] if cut < 1.0 else seed)
    for where, byte in flips:
        body[min(len(body) - 1, int(len(body) * where))] = byte
    data = bytes(body)
    outcome_is_classified(gzip.compress(data) if compress else data)


def test_remote_stream_is_never_fetched(tmp_path):
    """A STREAM href (file: or http:) is refused: astropy would open it."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00" * 16)
    for href in (secret.as_uri(), "http://127.0.0.1:9/x"):
        doc = (
            '<?xml version="1.0"?><VOTABLE version="1.4" '
            'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
            '<FIELD name="a" datatype="int"/><DATA><BINARY>'
            f'<STREAM href="{href}"/></BINARY></DATA></TABLE></RESOURCE></VOTABLE>'
        ).encode()
        for fast in (True, False):
            with pytest.raises(ResponseFormatError, match="by reference"):
                parse_votable(doc, fast=fast)


def test_a_million_fields_are_refused_at_once():
    """A small body declaring a million columns would hold a parser thread for minutes."""
    import time  # noqa: PLC0415

    from vosweep.errors import ResponseTooLarge  # noqa: PLC0415
    from vosweep.protocols.votable import MAX_FIELDS  # noqa: PLC0415

    field = b'<vot:FIELD name="a" datatype="int"/>'
    doc = (
        b'<vot:VOTABLE xmlns:vot="http://www.ivoa.net/xml/VOTable/v1.3"><vot:RESOURCE><vot:TABLE>'
        + field * 1_000_000
        + b"<vot:DATA><vot:TABLEDATA/></vot:DATA></vot:TABLE></vot:RESOURCE></vot:VOTABLE>"
    )
    started = time.perf_counter()
    with pytest.raises(ResponseTooLarge, match=f"over the {MAX_FIELDS}"):
        parse_votable(doc, max_bytes=10**9)
    assert time.perf_counter() - started < 10


def test_wide_but_reasonable_tables_still_parse():
    fields = "".join(f'<FIELD name="c{i}" datatype="int"/>' for i in range(300))
    cells = "".join(f"<TD>{i}</TD>" for i in range(300))
    doc = (
        f'<VOTABLE version="1.4"><RESOURCE type="results"><TABLE>{fields}'
        f"<DATA><TABLEDATA><TR>{cells}</TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()
    (table,) = parse_votable(doc).tables
    assert len(table.colnames) == 300


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'<?xml version="1.0" encoding="utf-8"?>\n<!-- by x -->\n<VOTABLE version="1.4">', 0),
        (b" \r\n\t<VOTABLE>", 4),
        (b"<?xml version='1.0'?><!DOCTYPE VOTABLE SYSTEM \"a.dtd\"><vot:VOTABLE xmlns:vot='x'>", 0),
        (b'<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?><VOTABLE\n>', 0),
        (b'<?xml version="1.0" encoding="windows-1252"?><VOTABLE>', None),  # re-encoded
        (b'<?xml version="1.0" encoding="utf8"?><VOTABLE>', None),  # a spelling expat lacks
        (b'<!DOCTYPE VOTABLE [<!ENTITY a "b">]><VOTABLE>', None),  # internal subset
        (b"\xef\xbb\xbf<VOTABLE>", None),  # byte-order mark
        (b"<?xml-stylesheet href='s.xsl'?><VOTABLE>", None),  # other processing instructions
        (b"<VOTABLEX>", None),
        (b"<html><VOTABLE>", None),
    ],
)
def test_plain_prolog_shortcut(head: bytes, expected: int | None) -> None:
    """The one-match prolog check takes the common prologs and leaves the rest to the sniffers."""
    plain = votable_module._plain_start(head)
    assert (plain[0] if plain else None) == expected
    if plain is not None:
        assert votable_module._sniff(head + b"</VOTABLE>", "", gzipped=False) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"<!-- a -->" * 200 + b"<VOTABLEX>",  # each comment splits in two for a lazy pattern
        b"<!-- a --> " * 200 + b"<!DOCTYPE x [",
        b"<?xml" + b" a='b'" * 2000 + b" x",
        b"<!-- " + b"- " * 20000,
    ],
)
def test_plain_prolog_shortcut_never_backtracks(head: bytes) -> None:
    """Prologs that are almost plain fail the shortcut at once (a fuzzer found one that
    took exponential time before its parts were made atomic), then get the full sniffers.
    """
    assert votable_module._plain_start(head) is None
    with pytest.raises(ResponseFormatError):
        parse_votable(head)
