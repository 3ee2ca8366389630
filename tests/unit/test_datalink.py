"""DataLink links responses and service descriptors (`vosweep.protocols.datalink`)."""

from __future__ import annotations

import contextlib
import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vosweep.errors import QueryRejected, ResponseFormatError, ResponseTooLarge
from vosweep.protocols.datalink import (
    CORE_VOCABULARY,
    DATALINK_CONTENT_TYPE,
    DescriptorParam,
    Link,
    ServiceDescriptor,
    is_datalink_type,
    parse_descriptors,
    parse_links,
)

MAX = 10_000_000
COLUMNS_10 = (
    "ID",
    "access_url",
    "service_def",
    "error_message",
    "description",
    "semantics",
    "content_type",
    "content_length",
)
DATATYPES = {"content_length": 'datatype="long"', "link_authorized": 'datatype="boolean"'}

SODA = """
  <RESOURCE ID="soda" name="cutout" type="meta" utype="adhoc:service">
    <GROUP name="inputParams">
      <PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main" ref="pubdid" value=""/>
      <PARAM name="CIRCLE" datatype="double" arraysize="3" unit="deg" xtype="circle" value="">
        <VALUES><MIN value="0 -90 0"/><MAX value="360 90 180"/></VALUES>
      </PARAM>
      <PARAM name="FORMAT" datatype="char" arraysize="*" value="image/fits">
        <VALUES><OPTION value="image/fits"/><OPTION name="png" value="image/png"/></VALUES>
      </PARAM>
    </GROUP>
    <PARAM name="accessURL" datatype="char" arraysize="*" value="http://x.test/soda"/>
    <PARAM name="standardID" datatype="char" arraysize="*" value="ivo://ivoa.net/std/SODA#sync-1.0"/>
    <PARAM name="resourceIdentifier" datatype="char" arraysize="*" value="ivo://x.test/soda"/>
  </RESOURCE>"""


def field(name: str) -> str:
    """A FIELD of a links table: long content_length with -1 as null, chars otherwise."""
    datatype = DATATYPES.get(name.lower(), 'datatype="char" arraysize="*"')
    if name.lower() == "content_length":
        return f'<FIELD name="{name}" {datatype} ><VALUES null="-1"/></FIELD>'
    return f'<FIELD name="{name}" {datatype}/>'


def links_votable(
    rows: list[tuple[str, ...]],
    columns: tuple[str, ...] = COLUMNS_10,
    *,
    extra: str = SODA,
    status: str = "",
    prefix: str = "",
) -> bytes:
    """A DataLink response: one links table with *columns* and *rows*, then *extra*."""
    fields = "".join(field(name) for name in columns)
    trs = "".join("<TR>" + "".join(f"<TD>{cell}</TD>" for cell in row) + "</TR>" for row in rows)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE type="results">{status}<TABLE name="links">{fields}'
        f"<DATA><TABLEDATA>{trs}</TABLEDATA></DATA></TABLE></RESOURCE>{extra}</VOTABLE>"
    )
    if prefix:
        body = body.replace("<", f"<{prefix}:").replace(f"<{prefix}:/", f"</{prefix}:")
        body = body.replace(f"<{prefix}:?xml", "<?xml").replace('xmlns="', f'xmlns:{prefix}="')
    return body.encode()


ROWS = [
    ("ivo://x/1", "http://x.test/1.fits", "", "", "The data", "#this", "image/fits", "1000"),
    ("ivo://x/1", "http://x.test/1.png", "", "", "", "#preview", "image/png", "-1"),
    ("ivo://x/1", "", "soda", "", "Cutouts", "#cutout", "", ""),
    ("ivo://x/2", "", "", "NotFoundFault: no such dataset", "", "#error", "", ""),
]


class TestParseLinks:
    def test_links_and_descriptors(self):
        """Every row becomes a Link, empty cells None; descriptors come along."""
        links, descriptors = parse_links(links_votable(ROWS), max_bytes=MAX)
        assert links[0] == Link(
            id="ivo://x/1",
            access_url="http://x.test/1.fits",
            service_def=None,
            error_message=None,
            semantics="#this",
            description="The data",
            content_type="image/fits",
            content_length=1000,
            content_qualifier=None,
            local_semantics=None,
            link_auth=None,
            link_authorized=None,
        )
        assert links[1].content_length is None  # the null value
        assert (links[2].service_def, links[2].access_url) == ("soda", None)
        assert links[3].error_message == "NotFoundFault: no such dataset"
        assert len(links) == 4
        assert [d.id for d in descriptors] == ["soda"]

    def test_columns_by_name_any_order_and_case(self):
        """Columns are found by name, case-insensitively, whatever their order."""
        columns = ("Semantics", "ACCESS_URL", "extra", "id")
        rows = [("#preview", "http://x.test/p", "ignored", "ivo://x/9")]
        links, _ = parse_links(links_votable(rows, columns, extra=""), max_bytes=MAX)
        assert (links[0].id, links[0].access_url, links[0].semantics) == (
            "ivo://x/9",
            "http://x.test/p",
            "#preview",
        )
        assert links[0].content_type is None

    @pytest.mark.parametrize("target", ["service_def", "error_message"])
    def test_links_table_without_access_url(self, target):
        """semantics with service_def or error_message alone is still a links table."""
        rows = [("ivo://x/1", "soda", "#cutout")]
        links, _ = parse_links(links_votable(rows, ("ID", target, "semantics")), max_bytes=MAX)
        assert links[0].access_url is None
        assert getattr(links[0], target) == "soda"

    def test_datalink_11_columns(self):
        """content_qualifier, local_semantics, link_auth and link_authorized are read."""
        columns = (
            *COLUMNS_10,
            "content_qualifier",
            "local_semantics",
            "link_auth",
            "link_authorized",
        )
        rows = [
            (*ROWS[0], "#image", "full-res", "optional", "true"),
            (*ROWS[1], "", "", "false", "F"),
            (*ROWS[2], "", "", "", ""),
        ]
        links, _ = parse_links(links_votable(rows, columns), max_bytes=MAX)
        assert (links[0].content_qualifier, links[0].local_semantics) == ("#image", "full-res")
        assert (links[0].link_auth, links[0].link_authorized) == ("optional", True)
        assert (links[1].link_auth, links[1].link_authorized) == ("false", False)
        assert links[2].link_authorized is None

    def test_char_content_length(self):
        """A content_length declared as char is still read as a number."""
        columns = ("ID", "access_url", "semantics", "Content_Length")
        rows = [("a", "http://x", "#this", "2048"), ("b", "http://y", "#this", "big")]
        body = links_votable(rows, columns, extra="").replace(
            b'datatype="long" ><VALUES null="-1"/></FIELD>', b'datatype="char" arraysize="*"/>'
        )
        links, _ = parse_links(body, max_bytes=MAX)
        assert [link.content_length for link in links] == [2048, None]

    def test_empty_links_table(self):
        """A links table without rows gives no links (an ID without any link)."""
        links, descriptors = parse_links(links_votable([]), max_bytes=MAX)
        assert links == []
        assert len(descriptors) == 1

    def test_namespace_prefix(self):
        """vot:-prefixed documents read the same."""
        links, descriptors = parse_links(links_votable(ROWS, prefix="vot"), max_bytes=MAX)
        assert [link.semantics for link in links] == ["#this", "#preview", "#cutout", "#error"]
        assert [d.standard_id for d in descriptors] == ["ivo://ivoa.net/std/SODA#sync-1.0"]

    def test_gzip(self):
        """A hand-gzipped response is inflated, for the links and the descriptors."""
        links, descriptors = parse_links(gzip.compress(links_votable(ROWS)), max_bytes=MAX)
        assert len(links) == 4
        assert len(descriptors) == 1

    def test_too_large(self):
        """The size cap holds."""
        with pytest.raises(ResponseTooLarge):
            parse_links(links_votable(ROWS), max_bytes=100)

    def test_query_status_error(self):
        """QUERY_STATUS=ERROR is a QueryRejected with the service's message."""
        status = '<INFO name="QUERY_STATUS" value="ERROR">ID not recognised</INFO>'
        with pytest.raises(QueryRejected, match="ID not recognised"):
            parse_links(links_votable([], status=status), max_bytes=MAX)

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (
                links_votable([("1.0", "2.0")], ("ra", "dec"), extra=""),
                "not a DataLink links table.*ra, dec",
            ),
            (links_votable([("x",)], ("semantics",), extra=""), "not a DataLink links table"),
            (b"<html><head><title>Login</title></head></html>", "HTML"),
            (b"", "empty"),
            (b'<uws:job xmlns:uws="x"/>', "instead of a VOTable"),
        ],
    )
    def test_not_links(self, body, match):
        """A table without the DataLink columns, or no VOTable at all: ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_links(body, max_bytes=MAX)


class TestMatches:
    def link(self, semantics: str | None) -> Link:
        return Link(None, None, None, None, semantics, None, None, None, None, None, None, None)

    @pytest.mark.parametrize(
        ("declared", "asked", "expected"),
        [
            ("#preview", "#preview", True),
            ("#preview", CORE_VOCABULARY + "#preview", True),
            (CORE_VOCABULARY + "#preview", "#preview", True),
            ("https://www.ivoa.net/rdf/datalink/core#preview", "#preview", True),
            (" #this ", "#this", True),
            ("#preview", "#preview-image", False),
            ("#preview-image", "#preview", False),
            ("#this", "#preview", False),
            ("urn:example:rdf/dlext#oracle", "urn:example:rdf/dlext#oracle", True),
            ("urn:example:rdf/dlext#oracle", "#oracle", False),
            ("http://other.test/vocab#preview", "#preview", False),
            (None, "#this", False),
        ],
    )
    def test_matches(self, declared, asked, expected):
        """Core terms match in short and full form; other vocabularies by full URI."""
        assert self.link(declared).matches(asked) is expected

    @given(term=st.from_regex(r"[a-z][a-z\-]{0,15}", fullmatch=True))
    def test_short_and_full_forms(self, term):
        """For any core term, the short and the full form match each other."""
        assert self.link(f"#{term}").matches(f"{CORE_VOCABULARY}#{term}")
        assert self.link(f"{CORE_VOCABULARY}#{term}").matches(f"#{term}")
        assert not self.link(f"#{term}").matches(f"#{term}x")


class TestParseDescriptors:
    def test_soda_descriptor(self):
        """Access URL, standard id and input parameters with their VALUES."""
        (descriptor,) = parse_descriptors(links_votable(ROWS))
        assert descriptor == ServiceDescriptor(
            id="soda",
            standard_id="ivo://ivoa.net/std/SODA#sync-1.0",
            access_url="http://x.test/soda",
            input_params=(
                DescriptorParam(
                    name="ID",
                    value=None,
                    ref="pubdid",
                    ucd="meta.id;meta.main",
                    datatype="char",
                    arraysize="*",
                ),
                DescriptorParam(
                    name="CIRCLE",
                    value=None,
                    ref=None,
                    ucd=None,
                    datatype="double",
                    arraysize="3",
                    unit="deg",
                    xtype="circle",
                    minimum="0 -90 0",
                    maximum="360 90 180",
                ),
                DescriptorParam(
                    name="FORMAT",
                    value="image/fits",
                    ref=None,
                    ucd=None,
                    datatype="char",
                    arraysize="*",
                    options=("image/fits", "image/png"),
                ),
            ),
            name="cutout",
            resource_identifier="ivo://x.test/soda",
        )

    def test_in_a_result_document(self):
        """Result documents (TAP, SIA) carry descriptors next to, or inside, the results."""
        nested = SODA.replace('ID="soda"', 'ID="inner"')
        body = (
            '<VOTABLE version="1.3"><RESOURCE type="results">'
            '<TABLE><FIELD name="a" datatype="int"/>'
            f"<DATA><TABLEDATA>{'<TR><TD>1</TD></TR>' * 1000}</TABLEDATA></DATA></TABLE>{nested}"
            "</RESOURCE>"
            '<RESOURCE type="meta" utype="adhoc:service">'
            '<PARAM name="standardID" datatype="char" arraysize="*"'
            ' value="ivo://ivoa.net/std/DataLink#links-1.0"/>'
            '<PARAM name="accessURL" datatype="char" arraysize="*" value="http://x.test/links"/>'
            '<GROUP name="inputParams"><PARAM name="ID" datatype="char" arraysize="*" ref="a"/>'
            "</GROUP></RESOURCE>"
            '<RESOURCE type="meta" utype="other"/><RESOURCE type="results" utype="adhoc:service"/>'
            "</VOTABLE>"
        ).encode()
        descriptors = parse_descriptors(body)
        assert [(d.id, d.standard_id) for d in descriptors] == [
            ("inner", "ivo://ivoa.net/std/SODA#sync-1.0"),
            (None, "ivo://ivoa.net/std/DataLink#links-1.0"),
        ]
        assert descriptors[1].access_url == "http://x.test/links"
        assert descriptors[1].input_params[0].ref == "a"

    def test_odd_descriptor(self):
        """Case-varied names, no inputParams group, empty values: still read."""
        body = (
            b'<VOTABLE><RESOURCE TYPE="x" type=" META " utype="ADHOC:SERVICE">'
            b'<PARAM name="AccessURL" value=" http://x.test/s "/>'
            b'<PARAM name="standardid" value=""/>'
            b'<GROUP name="other"><PARAM name="X"/></GROUP></RESOURCE></VOTABLE>'
        )
        (descriptor,) = parse_descriptors(body)
        assert descriptor == ServiceDescriptor(
            id=None, standard_id=None, access_url="http://x.test/s", input_params=()
        )

    def test_none(self):
        """A VOTable without descriptors has none."""
        assert parse_descriptors(links_votable(ROWS, extra="")) == []

    def test_votable_10_doctype(self):
        """VOTable 1.0's DOCTYPE is accepted, an internal entity is not."""
        body = b'<!DOCTYPE VOTABLE SYSTEM "http://us-vo.org/xml/VOTable.dtd"><VOTABLE/>'
        assert parse_descriptors(body) == []
        bomb = b'<!DOCTYPE VOTABLE [<!ENTITY a "aaaa">]><VOTABLE>&a;</VOTABLE>'
        with pytest.raises(ResponseFormatError, match="entity"):
            parse_descriptors(bomb)

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"<html><body>x</body></html>", "HTML page"),
            (b"<tableset/>", "root <tableset>"),
            (b"<VOTABLE><RESOURCE>", "not well-formed"),
            (b"\x1f\x8b\x08\x00garbage", "gzip"),
        ],
    )
    def test_refused(self, body, match):
        """Not a VOTable: ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_descriptors(body)

    def test_gzip_bomb_stops_at_cap(self):
        """A decompression bomb stops at the cap."""
        with pytest.raises(ResponseTooLarge):
            parse_descriptors(gzip.compress(b"<VOTABLE>" + b" " * 100_000), max_bytes=10_000)

    @given(st.binary(max_size=200))
    @settings(max_examples=100)
    def test_garbage(self, body):
        """Random bytes never raise anything but ResponseFormatError."""
        with contextlib.suppress(ResponseFormatError):
            parse_descriptors(body)


class TestContentType:
    @pytest.mark.parametrize(
        "content_type",
        [
            DATALINK_CONTENT_TYPE,
            "application/x-votable+xml; content=datalink",
            "Application/X-VOTable+XML;Content=DataLink",
            "application/x-votable+xml;charset=UTF-8;content=datalink",
            'application/x-votable+xml; content="datalink"; version=1.4',
            "  application/x-votable+xml ;  content = datalink  ",
            "text/xml;content=datalink",
        ],
    )
    def test_datalink(self, content_type):
        """The DataLink media type, however it is spelled."""
        assert is_datalink_type(content_type)

    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "",
            "application/x-votable+xml",
            "application/x-votable+xml;serialization=binary2",
            "application/x-votable+xml;content=datalinks",
            "text/html;content=datalink",
            "image/fits",
            "content=datalink",
        ],
    )
    def test_not_datalink(self, content_type):
        """Other media types, or none, are not DataLink."""
        assert not is_datalink_type(content_type)

    @given(
        params=st.permutations(["content=datalink", "charset=utf-8", "version=1.4"]),
        spaces=st.sampled_from(["", " ", "  "]),
        upper=st.booleans(),
    )
    def test_parameter_order(self, params, spaces, upper):
        """Parameter order, spacing and case never matter."""
        value = f"application/x-votable+xml{spaces};{spaces}" + f"{spaces};{spaces}".join(params)
        assert is_datalink_type(value.upper() if upper else value)
