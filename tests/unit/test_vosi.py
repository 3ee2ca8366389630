"""VOSI capabilities, availability and tables documents (`vosweep.protocols.vosi`)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vosweep.errors import ResponseFormatError
from vosweep.protocols._xml import parse_subtrees, parse_tree
from vosweep.protocols.vosi import (
    Availability,
    Capability,
    OutputFormat,
    parse_availability,
    parse_capabilities,
    parse_tables,
)

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt#"
SETS = TAPREGEXT + "features-adql-sets"
UDF = TAPREGEXT + "features-udf"
GEO = TAPREGEXT + "features-adqlgeo"


def features(kind: str, *forms: str) -> str:
    """A languageFeatures block."""
    inner = "".join(f"<feature><form>{form}</form></feature>" for form in forms)
    return f'<languageFeatures type="{kind}">{inner}</languageFeatures>'


def output_format(mime: str, *aliases: str, ivo_id: str | None = None) -> str:
    """An outputFormat element."""
    attr = f' ivo-id="{ivo_id}"' if ivo_id else ""
    inner = "".join(f"<alias>{alias}</alias>" for alias in aliases)
    return f"<outputFormat{attr}><mime>{mime}</mime>{inner}</outputFormat>"


def capabilities(
    tap: str = "",
    *,
    prefix: str = "vosi",
    tap_attrs: str = 'standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess"',
    others: str = "",
) -> bytes:
    """A capabilities document: VOSI capabilities, availability, and a TAP capability."""
    p = f"{prefix}:" if prefix else ""
    xmlns = (
        f'xmlns:{prefix}="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        if prefix
        else 'xmlns="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{p}capabilities {xmlns} xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP"><accessURL use="full">http://x.test/tap/capabilities</accessURL></interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP"><accessURL use="full">http://x.test/tap/availability</accessURL></interface>
  </capability>
  {others}
  <capability {tap_attrs}>
    <interface role="std" xsi:type="vs:ParamHTTP"><accessURL use="base">http://x.test/tap</accessURL></interface>
    {tap}
  </capability>
</{p}capabilities>""".encode()


def adql(
    *blocks: str, version: str = '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
) -> str:
    """An ADQL language element."""
    return f"<language><name>ADQL</name>{version}{''.join(blocks)}</language>"


class TestCapabilities:
    def test_capabilities_and_endpoints(self):
        """Every capability is listed, and endpoints are found by standard id."""
        caps = parse_capabilities(capabilities())
        assert [c.standard_id for c in caps.capabilities] == [
            "ivo://ivoa.net/std/VOSI#capabilities",
            "ivo://ivoa.net/std/VOSI#availability",
            "ivo://ivoa.net/std/TAP",
        ]
        assert caps.endpoint("ivo://ivoa.net/std/TAP") == "http://x.test/tap"
        assert (
            caps.endpoint("IVO://IVOA.NET/STD/vosi#Availability")
            == "http://x.test/tap/availability"
        )
        assert caps.endpoint("ivo://ivoa.net/std/VOSI#tables") is None

    def test_fragments_count(self):
        """VOSI#tables and VOSI#tables-1.1 are different standards."""
        other = (
            '<capability standardID="ivo://ivoa.net/std/VOSI#tables-1.1">'
            "<interface><accessURL>http://x.test/tables</accessURL></interface></capability>"
        )
        caps = parse_capabilities(capabilities(others=other))
        assert caps.endpoint("ivo://ivoa.net/std/VOSI#tables-1.1") == "http://x.test/tables"
        assert caps.endpoint("ivo://ivoa.net/std/VOSI#tables") is None
        assert caps.endpoint("ivo://ivoa.net/std/VOSI") is None

    def test_anonymous_interfaces_first(self):
        """Interfaces needing credentials come after anonymous ones; duplicates go."""
        other = """<capability standardID="ivo://ivoa.net/std/SIA#query-2.0">
          <interface><accessURL>https://x.test/auth</accessURL>
            <securityMethod standardID="ivo://ivoa.net/sso#BasicAA"/></interface>
          <interface><accessURL>https://x.test/anon</accessURL></interface>
          <interface><accessURL>https://x.test/cookie</accessURL>
            <securityMethod standardID="ivo://ivoa.net/sso#cookie"/></interface>
          <interface><accessURL>https://x.test/anon</accessURL>
            <securityMethod standardID="ivo://ivoa.net/sso#cookie"/></interface>
          <interface><accessURL>https://x.test/cadc</accessURL><securityMethod/>
            <securityMethod standardID="ivo://ivoa.net/sso#tls-with-certificate"/></interface>
          <interface><accessURL>https://x.test/anon2</accessURL>
            <securityMethod standardID="ivo://ivoa.net/sso#anon"/></interface>
          <interface><mirrorURL>https://m.test/</mirrorURL><accessURL> </accessURL></interface>
        </capability>"""
        caps = parse_capabilities(capabilities(others=other))
        sia = next(c for c in caps.capabilities if "SIA" in c.standard_id)
        assert sia.access_urls == (
            "https://x.test/anon",
            "https://x.test/cadc",
            "https://x.test/anon2",
            "https://x.test/auth",
            "https://x.test/cookie",
        )
        assert sia.mirror_urls == ("https://m.test/",)
        assert caps.endpoint("ivo://ivoa.net/std/SIA#query-2.0") == "https://x.test/anon"

    @pytest.mark.parametrize("prefix", ["vosi", "cap", "ns0", ""])
    def test_any_prefix(self, prefix):
        """Any prefix on the root, or a default namespace, reads the same."""
        caps = parse_capabilities(capabilities(adql(features(SETS, "UNION")), prefix=prefix))
        assert caps.tap is not None
        assert caps.tap.union

    def test_no_tap(self):
        """A service without a TAP capability (SIA2) has tap=None, not an error."""
        body = (
            b'<capabilities><capability standardID="ivo://ivoa.net/std/SIA#query-2.0">'
            b"<interface><accessURL>http://x.test/sia</accessURL></interface>"
            b"</capability></capabilities>"
        )
        caps = parse_capabilities(body)
        assert caps.tap is None
        assert caps.capabilities == (
            Capability("ivo://ivoa.net/std/SIA#query-2.0", ("http://x.test/sia",)),
        )

    def test_tap_by_type_only(self):
        """A TableAccess capability without standardID is the TAP capability."""
        caps = parse_capabilities(capabilities(adql(), tap_attrs='xsi:type="tr:TableAccess"'))
        assert caps.tap is not None
        assert caps.tap.adql_versions == {"2.0"}
        assert caps.capabilities[-1].xsi_type == "TableAccess"

    def test_tap_capability_with_language_preferred(self):
        """Of two TAP capabilities, the one with TAPRegExt content is read."""
        bare = '<capability standardID="ivo://ivoa.net/std/TAP"><interface/></capability>'
        caps = parse_capabilities(capabilities(adql(features(SETS, "UNION")), others=bare))
        assert caps.tap is not None
        assert caps.tap.union

    def test_bare_tap_capability(self):
        """A TAP 1.0 capability without TAPRegExt content gives empty capabilities."""
        caps = parse_capabilities(capabilities(tap_attrs='standardID="ivo://ivoa.net/std/TAP"'))
        assert caps.tap is not None
        assert caps.tap.adql_versions == frozenset()
        assert not caps.tap.union
        assert caps.tap.best_format() is None
        assert not caps.tap.uploads

    def test_features(self):
        """Feature types are lower-cased, forms kept as declared, UDF signatures cut."""
        tap = adql(
            features(SETS, "UNION", "EXCEPT"),
            features(TAPREGEXT + "features-adql-type", "CAST"),
            features(
                UDF,
                "ivo_hasword(haystack TEXT, needle TEXT) -&gt; INTEGER",
                "  gavo_match (pattern TEXT) -&gt; INTEGER",
            ),
            features(GEO, "CONTAINS", "POINT"),
            features(TAPREGEXT.upper() + "FEATURES-ADQL-STRING", "ILIKE"),
            "<languageFeatures><feature><form/></feature></languageFeatures>",
        )
        caps = parse_capabilities(capabilities(tap)).tap
        assert caps is not None
        assert caps.features == {
            (SETS.lower(), "UNION"),
            (SETS.lower(), "EXCEPT"),
            ((TAPREGEXT + "features-adql-type").lower(), "CAST"),
            (UDF.lower(), "ivo_hasword"),
            (UDF.lower(), "gavo_match"),
            (GEO.lower(), "CONTAINS"),
            (GEO.lower(), "POINT"),
            ((TAPREGEXT + "features-adql-string").lower(), "ILIKE"),
        }
        assert caps.union
        assert caps.cast
        for form in ("union", "IVO_HASWORD", "contains", "Ilike", "gavo_match"):
            assert caps.supports(form)
        assert not caps.supports("MOC")
        assert not caps.supports("ivo_has")

    def test_no_union_no_cast(self):
        """Without the features, union and cast are False."""
        caps = parse_capabilities(capabilities(adql(features(GEO, "POINT")))).tap
        assert caps is not None
        assert (caps.union, caps.cast) == (False, False)

    @pytest.mark.parametrize(
        ("language", "versions"),
        [
            (adql(), {"2.0"}),
            (adql(version='<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1"/>'), {"2.1"}),
            (adql(version="<version>2.0</version><version>2.1</version>"), {"2.0", "2.1"}),
            ("<language><name>ADQL-2.0</name></language>", {"2.0"}),
            ("<language><name>adql</name><version> 2.1 </version></language>", {"2.1"}),
            ("<language><name>PQL</name><version>1.0</version></language>", set()),
        ],
    )
    def test_adql_versions(self, language, versions):
        """ADQL versions from text, ivo-id or the language name; other languages ignored."""
        caps = parse_capabilities(capabilities(language)).tap
        assert caps is not None
        assert caps.adql_versions == versions

    def test_features_of_other_languages_ignored(self):
        """Only ADQL's features count (a PQL UNION says nothing about ADQL)."""
        tap = (
            "<language><name>PQL</name><version>1</version>"
            + features(SETS, "UNION")
            + "</language>"
        )
        caps = parse_capabilities(capabilities(tap)).tap
        assert caps is not None
        assert not caps.union

    def test_limits_and_durations(self):
        """Row limits, byte limits, execution durations and retention periods."""
        tap = """
          <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>
          <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#UPLOAD-HTTPS"/>
          <retentionPeriod><default>172800</default><hard>604800</hard></retentionPeriod>
          <executionDuration><default>3600</default></executionDuration>
          <outputLimit>
            <default unit="row">2000</default><hard unit="row">16000000</hard>
          </outputLimit>
          <uploadLimit><hard unit="byte">100000000</hard></uploadLimit>
          <dataModel ivo-id="ivo://ivoa.net/std/ObsCore#table-1.1">ObsCore-1.1</dataModel>
          <dataModel ivo-id="IVO://ivoa.net/std/RegTAP#1.0">RegTAP</dataModel>
          <dataModel>no id</dataModel>
        """
        caps = parse_capabilities(capabilities(tap)).tap
        assert caps is not None
        assert caps.upload_methods == {
            "ivo://ivoa.net/std/tapregext#upload-inline",
            "ivo://ivoa.net/std/tapregext#upload-https",
        }
        assert caps.uploads
        assert (caps.retention_default, caps.retention_hard) == (172800.0, 604800.0)
        assert (caps.execution_duration_default, caps.execution_duration_hard) == (3600.0, None)
        assert (caps.output_limit_default, caps.output_limit_hard) == (2000, 16000000)
        assert (caps.upload_limit_hard, caps.upload_limit_hard_bytes) == (None, 100000000)
        assert caps.data_models == {
            "ivo://ivoa.net/std/obscore#table-1.1",
            "ivo://ivoa.net/std/regtap#1.0",
        }

    def test_byte_output_limits_are_not_rows(self):
        """CADC gives output limits in bytes: the row fields stay None."""
        tap = """
          <outputLimit>
            <default unit="byte">134217728</default><hard unit="byte">134217728</hard>
          </outputLimit>
          <uploadLimit>
            <default unit="row">100000</default><hard unit="row">100000</hard>
          </uploadLimit>
        """
        caps = parse_capabilities(capabilities(tap)).tap
        assert caps is not None
        assert (caps.output_limit_default, caps.output_limit_hard) == (None, None)
        assert (caps.upload_limit_hard, caps.upload_limit_hard_bytes) == (100000, None)

    @pytest.mark.parametrize(
        ("limit", "expected"),
        [
            ("<hard>5000</hard>", 5000),
            ('<hard unit="ROW">5000</hard>', 5000),
            ('<hard unit="row"> 1e6 </hard>', 1000000),
            ('<hard unit="row">lots</hard>', None),
            ('<hard unit="row"/>', None),
            ('<hard unit="parsec">5</hard>', None),
            ('<hard unit="row">inf</hard>', None),
        ],
    )
    def test_odd_limits(self, limit, expected):
        """A missing unit means rows; unreadable values and unknown units give None."""
        caps = parse_capabilities(capabilities(f"<outputLimit>{limit}</outputLimit>")).tap
        assert caps is not None
        assert caps.output_limit_hard == expected

    def test_odd_durations(self):
        """Unreadable durations are None, not an error."""
        tap = "<executionDuration><default>an hour</default><hard>nan</hard></executionDuration>"
        caps = parse_capabilities(capabilities(tap)).tap
        assert caps is not None
        assert (caps.execution_duration_default, caps.execution_duration_hard) == (None, None)


class TestOutputFormats:
    def formats(self, *elements: str):
        caps = parse_capabilities(capabilities("".join(elements))).tap
        assert caps is not None
        return caps

    def test_formats_read(self):
        """mime, aliases and ivo-id of each format, in order."""
        caps = self.formats(
            output_format("text/csv;header=present", "csv"),
            output_format(
                "application/x-votable+xml;serialization=BINARY2",
                "votable/b2",
                "votableb2",
                ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
            ),
            "<outputFormat><alias>broken</alias></outputFormat>",
        )
        assert caps.output_formats == (
            OutputFormat("text/csv;header=present", ("csv",), None),
            OutputFormat(
                "application/x-votable+xml;serialization=BINARY2",
                ("votable/b2", "votableb2"),
                "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
            ),
            OutputFormat("", ("broken",), None),
        )

    def test_binary2_preferred(self):
        """BINARY2 is chosen over BINARY and TABLEDATA, wherever it is listed."""
        caps = self.formats(
            output_format(
                "application/x-votable+xml",
                "votable",
                ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary",
            ),
            output_format("text/xml", ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
            output_format(
                "application/x-votable+xml;serialization=binary2",
                "votable/b2",
                ivo_id="ivo://ivoa.net/std/TAPRegEXT#output-votable-binary2",
            ),
        )
        assert caps.best_format() == "application/x-votable+xml;serialization=binary2"

    def test_binary_otherwise(self):
        """Without BINARY2, BINARY (by ivo-id) is chosen, with its declared mime."""
        caps = self.formats(
            output_format("text/xml", ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
            output_format("text/xml", ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary"),
        )
        assert caps.best_format() == "text/xml"

    @pytest.mark.parametrize(
        "mime",
        [
            "application/x-votable+xml;serialization=BINARY2",
            "application/x-votable+xml; serialization = binary2",
            'Application/X-VOTable+XML; version=1.4; serialization="BINARY2"',
        ],
    )
    def test_binary2_by_mime(self, mime):
        """A format without ivo-id is recognised by its serialization parameter."""
        caps = self.formats(output_format("text/csv", "csv"), output_format(mime))
        assert caps.best_format() == mime

    def test_none_when_no_binary(self):
        """Only TABLEDATA, CSV and the like: the service's default is kept."""
        caps = self.formats(
            output_format(
                "application/x-votable+xml", "votable", ivo_id=TAPREGEXT + "output-votable-td"
            ),
            output_format("application/x-votable+xml;serialization=TABLEDATA"),
            output_format("text/csv;serialization=binary2"),
        )
        assert caps.best_format() is None


class TestCapabilitiesRefused:
    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"", "not well-formed.*empty body"),
            (b"<html><body>Service down</body>", "HTML page"),
            (b"<capabilities><capability>", "not well-formed"),
            (b"<html><head><title>Login</title></head></html>", "HTML page.*Login"),
            (b'<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE/></VOTABLE>', "VOTable"),
            (b"<availability><available>true</available></availability>", "root <availability>"),
            (
                b'<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><capabilities>&x;</capabilities>',
                "DOCTYPE",
            ),
        ],
    )
    def test_not_capabilities(self, body, match):
        """Anything but a capabilities document is a ResponseFormatError that says why."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_capabilities(body)

    @given(st.binary(max_size=200))
    @settings(max_examples=100)
    def test_garbage(self, body):
        """Random bytes never raise anything but ResponseFormatError."""
        with contextlib.suppress(ResponseFormatError):
            parse_capabilities(body)


def availability(inner: str, prefix: str = "avl") -> bytes:
    """An availability document."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns{':' + prefix if prefix else ''}"
    return (
        f'<{p}availability {xmlns}="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"{inner.replace('{p}', p)}</{p}availability>"
    ).encode()


class TestAvailability:
    @pytest.mark.parametrize("prefix", ["avl", "vosi", ""])
    def test_full(self, prefix):
        """available, upSince, downAt, backAt and notes are read."""
        body = availability(
            "<{p}available>true</{p}available><{p}upSince>2022-04-07T11:11:40Z</{p}upSince>"
            "<{p}downAt>2030-01-01T00:00:00Z</{p}downAt><{p}backAt>2030-01-02T00:00:00Z</{p}backAt>"
            "<{p}note>foo</{p}note><{p}note/><{p}note>  bar </{p}note>",
            prefix,
        )
        assert parse_availability(body) == Availability(
            available=True,
            notes=("foo", "bar"),
            up_since="2022-04-07T11:11:40Z",
            down_at="2030-01-01T00:00:00Z",
            back_at="2030-01-02T00:00:00Z",
        )

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("true", True), (" TRUE ", True), ("1", True), ("false", False), ("0", False)],
    )
    def test_flag(self, text, expected):
        """xs:boolean in any case."""
        body = availability(f"<{{p}}available>{text}</{{p}}available><{{p}}note></{{p}}note>")
        result = parse_availability(body)
        assert result.available is expected
        assert result.notes == ()
        assert result.up_since is None

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (availability("<{p}note>down</{p}note>"), "'available' is missing"),
            (availability("<{p}available>maybe</{p}available>"), "'available' is 'maybe'"),
            (b"<capabilities/>", "root <capabilities>"),
            (b"OK", "not well-formed"),
        ],
    )
    def test_refused(self, body, match):
        """No readable availability flag, or another document: ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_availability(body)


TABLESET = """<?xml version="1.0"?>
<vtm:tableset xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:vtm="http://www.ivoa.net/xml/VOSITables/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <schema>
    <name>ivoa</name>
    <table type="view">
      <name>ivoa.obscore</name>
      <description>  The  ObsCore
         table </description>
      <nrows>1200</nrows>
      <column>
        <name>s_ra</name><description>RA</description><unit>deg</unit>
        <ucd>pos.eq.ra</ucd><utype>obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1</utype>
        <dataType xsi:type="vs:TAPType">DOUBLE</dataType><flag>indexed</flag><flag>nullable</flag>
      </column>
      <column>
        <name>s_region</name>
        <dataType xsi:type="vs:TAPType" arraysize="*" extendedType="adql:REGION">CHAR</dataType>
      </column>
      <column><description>no name</description></column>
    </table>
    <table><description>no name either</description></table>
  </schema>
  <schema>
    <name>tap_schema</name>
    <table><name>tap_schema.tables</name><nrows>many</nrows></table>
  </schema>
</vtm:tableset>"""


class TestTables:
    def test_tableset(self):
        """Tables of every schema, with their columns, in document order."""
        tables = parse_tables(TABLESET.encode())
        assert [t.name for t in tables] == ["ivoa.obscore", "tap_schema.tables"]
        obscore, tap_tables = tables
        assert obscore.description == "The ObsCore table"
        assert obscore.type == "view"
        assert obscore.nrows == 1200
        assert obscore.schema == "ivoa"
        assert [c.name for c in obscore.columns] == ["s_ra", "s_region"]
        s_ra, s_region = obscore.columns
        assert (s_ra.datatype, s_ra.unit, s_ra.ucd, s_ra.description) == (
            "DOUBLE",
            "deg",
            "pos.eq.ra",
            "RA",
        )
        assert s_ra.utype is not None
        assert s_ra.utype.startswith("obscore:")
        assert s_ra.flags == ("indexed", "nullable")
        assert s_ra.arraysize is None
        assert (s_region.arraysize, s_region.xtype) == ("*", "adql:REGION")
        assert (s_region.unit, s_region.ucd, s_region.description) == (None, None, None)
        assert tap_tables.nrows is None
        assert tap_tables.columns == ()

    def test_single_table(self):
        """VOSI 1.1 {tables}/{name} answers with one table element."""
        body = (
            b"<table><name>test.t1</name><column><name>id</name>"
            b'<dataType xsi:type="vs:TAP" arraysize="*">VARCHAR</dataType></column></table>'
        )
        (table,) = parse_tables(body)
        assert (table.name, table.schema) == ("test.t1", None)
        assert table.columns[0].datatype == "VARCHAR"

    def test_tables_outside_schemas(self):
        """Tables put straight into the tableset are read too."""
        body = b"<tableset><table><name>t</name></table></tableset>"
        assert [t.name for t in parse_tables(body)] == ["t"]

    def test_empty_tableset(self):
        """A tableset without schemas has no tables."""
        assert parse_tables(b"<tableset/>") == []

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"<capabilities/>", "root <capabilities>"),
            (b"<html><body>x</body></html>", "HTML page"),
            (b"<tableset><schema>", "not well-formed"),
        ],
    )
    def test_refused(self, body, match):
        """Other documents are a ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_tables(body)

    @given(
        names=st.lists(
            st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8),
            min_size=1,
            max_size=5,
        ),
        prefix=st.sampled_from(["", "vod:", "vtm:", "ns1:"]),
    )
    @settings(max_examples=40)
    def test_round_trip(self, names, prefix):
        """Table and column names come back, whatever the root prefix."""
        ns = f' xmlns:{prefix[:-1]}="urn:x"' if prefix else ""
        tables = "".join(
            f"<table><name>s.{n}</name><column><name>{n}_c</name></column></table>" for n in names
        )
        body = f"<{prefix}tableset{ns}><schema><name>s</name>{tables}</schema></{prefix}tableset>"
        parsed = parse_tables(body.encode())
        assert [t.name for t in parsed] == [f"s.{n}" for n in names]
        assert [t.columns[0].name for t in parsed] == [f"{n}_c" for n in names]


class TestXmlTree:
    """The shared reader under every VOSI, UWS and DataLink parser."""

    def test_local_names_and_attributes(self):
        """Prefixes are cut from names; xmlns goes; an unprefixed attribute wins."""
        body = (
            b'<a:root xmlns:a="urn:a" xmlns="urn:d" xmlns:x="urn:x" x:type="prefixed" type="plain"'
            b' x:href="h"><a:child/></a:root>'
        )
        root = parse_tree(body, "test document")
        assert root.name == "root"
        assert root.attrs == {"type": "plain", "href": "h"}
        assert [child.name for child in root.children] == ["child"]

    def test_find_iter_walk(self):
        """find and iter see direct children; walk sees every descendant in document order."""
        body = b"<r><a n='1'><a n='2'/></a><b><a n='3'/></b><a n='4'/></r>"
        root = parse_tree(body, "test document")
        assert [a.attrs["n"] for a in root.iter("a")] == ["1", "4"]
        found = root.find("a")
        assert found is not None
        assert found.attrs["n"] == "1"
        assert root.find("c") is None
        assert [a.attrs["n"] for a in root.walk("a")] == ["1", "2", "3", "4"]

    def test_text(self):
        """Text joins character data and CDATA, stripped; entities are decoded."""
        root = parse_tree(b"<r>\n  a &amp; <![CDATA[<b>]]>  <x/> c \n</r>", "test document")
        assert root.text == "a & <b>   c"

    def test_subtrees(self):
        """Only chosen subtrees are built; a chosen one inside another stays inside it."""
        body = b"<r><s id='1'><s id='2'/></s><t><s id='3'/></t></r>"
        root, kept = parse_subtrees(body, "test document", lambda name, _attrs: name == "s")
        assert root == "r"
        assert [s.attrs["id"] for s in kept] == ["1", "3"]
        assert [s.attrs["id"] for s in kept[0].children] == ["2"]

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"<html><head><title> Sign  in </title></head>", "HTML page .*'Sign in'"),
            (
                b'<v:VOTABLE xmlns:v="u"><v:INFO name="QUERY_STATUS" value="ERROR"/></v:VOTABLE>',
                "VOTable \\(root <VOTABLE>\\).*: ERROR$",
            ),
            (b"<other/>", "XML document with root <other> instead of a test document$"),
        ],
    )
    def test_wrong_root(self, body, match):
        """An unexpected root is named, with an HTML title or a VOTable status."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_tree(body, "test document", roots={"root"})
