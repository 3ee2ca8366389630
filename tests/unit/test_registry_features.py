"""Registry features: what a RegTAP endpoint supports, read from its TAPRegExt capabilities."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from vosweep.errors import RegistryFeatureMissing, ResponseFormatError, UsageError
from vosweep.registry.constraints import Freetext, Spatial, build_query
from vosweep.registry.features import (
    COVERAGE_TABLES,
    DEFAULT_FEATURES,
    REGTAP_UDFS,
    TABLES_QUERY,
    RegistryFeatures,
    parse_capabilities,
)

CORPUS_ENV = "VOSWEEP_CORPUS"
GAVO_CAPABILITIES = "pyvo/pyvo/registry/tests/data/capabilities.xml"


def _corpus() -> Path | None:
    """The corpus folder next to the repository (or $VOSWEEP_CORPUS), None when absent."""
    override = os.environ.get(CORPUS_ENV)
    default = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    root = Path(override) if override else default
    return root if root.is_dir() else None


@pytest.fixture(name="gavo_body")
def _gavo_body() -> bytes:
    root = _corpus()
    if root is None:
        pytest.skip("../shared/corpus not found: set VOSWEEP_CORPUS to run the real-response tests")
    return (root / GAVO_CAPABILITIES).read_bytes()


def capabilities(
    *,
    features: str = "",
    data_models: str = '<dataModel ivo-id="ivo://ivoa.net/std/RegTAP#1.1">Registry 1.1</dataModel>',
    versions: str = '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>',
    standard_id: str = 'standardID="ivo://ivoa.net/std/TAP"',
    prefix: str = "cap:",
) -> bytes:
    """A small TAPRegExt capabilities document with the given pieces."""
    ns = prefix.rstrip(":")
    xmlns = f'xmlns:{ns}="http://www.ivoa.net/xml/VOSICapabilities/v1.0"' if ns else ""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<{prefix}capabilities {xmlns}
    xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP"><accessURL>http://x.test/avail</accessURL></interface>
  </capability>
  <capability {standard_id} xsi:type="tr:TableAccess">
    <interface role="std" xsi:type="vs:ParamHTTP"><accessURL>http://x.test/tap</accessURL></interface>
    {data_models}
    <language>
      <name>ADQL</name>
      {versions}
      {features}
    </language>
    <language>
      <name>PQL</name>
      <version>1.0</version>
      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adql-sets">
        <feature><form>UNION</form></feature>
      </languageFeatures>
    </language>
  </capability>
</{prefix}capabilities>""".encode()


def block(kind: str, *forms: str) -> str:
    feats = "".join(f"<feature><form>{form}</form></feature>" for form in forms)
    return f'<languageFeatures type="{kind}">{feats}</languageFeatures>'


SETS = "ivo://ivoa.net/std/TAPRegExt#features-adql-sets"
UDF = "ivo://ivoa.net/std/TAPRegExt#features-udf"
GEO = "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"
STRING = "ivo://ivoa.net/std/TAPRegExt#features-adql-string"
GAVO_KEYWORDS = "ivo://org.gavo.dc/std/exts#extra-adql-keywords"


class TestRegistryFeatures:
    def test_default_is_a_full_registry(self):
        """The default has UNION, ILIKE, MOC, every UDF the constraints use, the coverage tables."""
        features = RegistryFeatures()
        assert features == DEFAULT_FEATURES
        assert features.union
        assert features.ilike
        assert features.moc
        assert REGTAP_UDFS | {"ivo_interval_overlaps"} <= features.udfs
        for name in ("POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS"):
            assert features.has_geometry(name)
        assert features.coverage_tables == COVERAGE_TABLES
        assert features.adql_versions == {"2.0", "2.1"}

    def test_values_are_normalised(self):
        """Hand-made instances compare like parsed ones: UDFs lower, geometry upper, sets frozen."""
        features = RegistryFeatures(
            udfs={"IVO_HasWord"},  # type: ignore[arg-type]
            geometry=["point"],  # type: ignore[arg-type]
            coverage_tables={"RR.STC_Spatial", "stc_temporal"},  # type: ignore[arg-type]
            adql_versions={" 2.0 "},  # type: ignore[arg-type]
        )
        assert features.udfs == frozenset({"ivo_hasword"})
        assert features.has_udf("IVO_HASWORD")
        assert features.geometry == frozenset({"POINT"})
        assert features.coverage_tables == frozenset({"rr.stc_spatial", "rr.stc_temporal"})
        assert features.adql_versions == frozenset({"2.0"})
        assert not features.has_udf("ivo_hashlist_has")

    def test_frozen(self):
        """Features are values: they cannot be changed in place."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            DEFAULT_FEATURES.union = False  # type: ignore[misc]

    def test_has_table_is_three_valued(self):
        """Unknown coverage tables answer None, known ones True or False."""
        assert RegistryFeatures(coverage_tables=None).has_table("rr.stc_spatial") is None
        partial = RegistryFeatures(coverage_tables=frozenset({"rr.stc_spatial"}))
        assert partial.has_table("rr.stc_spatial") is True
        assert partial.has_table("RR.STC_SPECTRAL") is False

    def test_with_tables(self):
        """A TABLES_QUERY answer fills in the coverage tables; other rr tables are ignored."""
        unknown = RegistryFeatures(coverage_tables=None)
        names = ["rr.resource", "RR.STC_SPATIAL", '"stc_temporal"', "rr.capability"]
        known = unknown.with_tables(names)
        assert known.coverage_tables == {"rr.stc_spatial", "rr.stc_temporal"}
        assert unknown.coverage_tables is None  # a copy, not a change
        assert unknown.with_tables([]).coverage_tables == frozenset()
        assert "TAP_SCHEMA.tables" in TABLES_QUERY
        assert "'rr'" in TABLES_QUERY


class TestParseRealCapabilities:
    def test_gavo(self, gavo_body):
        """The default registry's real capabilities: UNION, ILIKE, MOC, RegTAP UDFs, geometry."""
        features = parse_capabilities(gavo_body)
        assert features.union
        assert features.ilike
        assert features.moc
        assert features.adql_versions == {"2.0", "2.1"}
        assert features.udfs >= REGTAP_UDFS
        assert {"ivo_interval_overlaps", "gavo_specconv", "ivo_to_mjd"} <= features.udfs
        assert {"POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS"} <= features.geometry
        assert "ivo://ivoa.net/std/regtap#1.1" in features.data_models
        # RegTAP 1.1 says nothing about the coverage tables: unknown, not absent.
        assert features.coverage_tables is None

    def test_gavo_agrees_with_pyvo(self, gavo_body, tmp_path):
        """pyvo's own TAPRegExt reader finds the same UNION, MOC and ILIKE on the same document."""
        vosi = pytest.importorskip("pyvo.io.vosi")
        path = tmp_path / "capabilities.xml"
        path.write_bytes(gavo_body)
        tap = next(
            cap
            for cap in vosi.parse_capabilities(str(path))
            if cap.standardid.lower() == "ivo://ivoa.net/std/tap"
        )
        adql = tap.get_adql()
        features = parse_capabilities(gavo_body)
        assert features.union == bool(adql.get_feature(SETS, "UNION"))
        assert features.moc == bool(adql.get_feature(GAVO_KEYWORDS, "MOC"))
        assert features.ilike == bool(adql.get_feature(STRING, "ILIKE"))
        pyvo_udfs = {
            feature.form.partition("(")[0].strip().lower()
            for lf in adql.languagefeaturelists
            if lf.type == UDF
            for feature in lf
        }
        assert pyvo_udfs == features.udfs

    def test_gavo_features_build_every_constraint(self, gavo_body):
        """With its table list, the real registry runs Spatial, and Freetext in the UNION form."""
        features = parse_capabilities(gavo_body).with_tables(COVERAGE_TABLES)
        query = build_query(Spatial((10, 20, 1)), Freetext("quasar"), features=features)
        assert "UNION ALL" in query
        assert "MOC(6, CIRCLE(10.0, 20.0, 1.0))" in query


class TestParseVariants:
    def test_no_union_no_moc(self):
        """A registry without UNION or MOC says so; Freetext adapts and Spatial refuses."""
        body = capabilities(features=block(GEO, "POINT", "CONTAINS"))
        features = parse_capabilities(body)
        assert not features.union
        assert not features.moc
        assert not features.ilike
        assert features.geometry == {"POINT", "CONTAINS"}
        assert "UNION" not in build_query(Freetext("star"), features=features)
        with pytest.raises(RegistryFeatureMissing, match="MOC"):
            build_query(Spatial((1, 2)), features=features)

    def test_union_only_counts_in_the_adql_language(self):
        """UNION declared for another query language is not ADQL's."""
        assert not parse_capabilities(capabilities()).union
        assert parse_capabilities(capabilities(features=block(SETS, "UNION", "EXCEPT"))).union

    def test_moc_and_ilike(self):
        """MOC (a GAVO keyword) and ILIKE (ADQL 2.1 string feature) are found by their form."""
        body = capabilities(features=block(GAVO_KEYWORDS, "MOC", "CASE") + block(STRING, "ILIKE"))
        features = parse_capabilities(body)
        assert features.moc
        assert features.ilike

    def test_udf_signatures(self):
        """UDFs are known by the name before the parenthesis of their declared signature."""
        body = capabilities(
            data_models="",
            features=block(
                UDF, "ivo_hasword(haystack TEXT, needle TEXT) -&gt; INTEGER", "  Foo_Bar ( x ) "
            ),
        )
        assert parse_capabilities(body).udfs == {"ivo_hasword", "foo_bar"}

    def test_regtap_data_model_implies_its_udfs(self):
        """RegTAP mandates ivo_hasword & co: declaring the data model is enough."""
        features = parse_capabilities(capabilities())
        assert features.udfs == REGTAP_UDFS
        assert "ivo_interval_overlaps" not in features.udfs

    def test_no_regtap_and_no_udfs(self):
        """Without the RegTAP data model or UDF declarations, Freetext names what is missing."""
        features = parse_capabilities(capabilities(data_models=""))
        assert features.udfs == frozenset()
        with pytest.raises(RegistryFeatureMissing) as excinfo:
            build_query("star", features=features)
        assert excinfo.value.feature == "the ivo_hasword UDF"
        assert excinfo.value.constraint == "Freetext"
        assert isinstance(excinfo.value, UsageError)

    def test_regtap_12_implies_coverage_tables(self):
        """Declaring RegTAP 1.2 means the coverage tables are there."""
        dm = '<dataModel ivo-id="ivo://ivoa.net/std/RegTAP#1.2">Registry 1.2</dataModel>'
        assert parse_capabilities(capabilities(data_models=dm)).coverage_tables == COVERAGE_TABLES
        assert parse_capabilities(capabilities()).coverage_tables is None

    def test_missing_language_features(self):
        """A TAP capability with no languageFeatures at all has no optional features."""
        features = parse_capabilities(capabilities(features=""))
        assert not features.union
        assert not features.moc
        assert features.geometry == frozenset()
        assert features.adql_versions == {"2.0"}

    def test_versions_from_ivo_id(self):
        """An empty <version> element still counts through its ivo-id."""
        versions = '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1"/>'
        features = parse_capabilities(capabilities(versions=versions))
        assert features.adql_versions == {"2.1"}

    def test_adql_20_only_writes_coordinate_systems(self):
        """On an ADQL 2.0-only registry, geometries carry the coordinate system 2.0 requires."""
        body = capabilities(
            features=block(GAVO_KEYWORDS, "MOC") + block(GEO, "POINT", "CONTAINS"),
        )
        features = parse_capabilities(body).with_tables(["rr.stc_spatial"])
        assert "POINT('ICRS', 10.0, 20.0)" in build_query(Spatial((10, 20)), features=features)

    @pytest.mark.parametrize("prefix", ["", "cap:", "ns0:", "vosi:"])
    def test_namespace_prefixes(self, prefix):
        """Any namespace prefix (or none) on the root reads the same."""
        body = capabilities(prefix=prefix, features=block(SETS, "UNION"))
        assert parse_capabilities(body).union

    def test_default_namespace(self):
        """A default namespace on every element reads the same as prefixes."""
        body = capabilities(prefix="", features=block(SETS, "UNION")).replace(
            b"<capabilities ",
            b'<capabilities xmlns="http://www.ivoa.net/xml/VOSICapabilities/v1.0" ',
        )
        assert parse_capabilities(body).union

    def test_tap_capability_found_by_type(self):
        """A TableAccess capability without a standardID is still the TAP capability."""
        body = capabilities(standard_id="", features=block(SETS, "UNION"))
        assert parse_capabilities(body).union


class TestParseRefusals:
    @pytest.mark.parametrize(
        "body",
        [
            (
                b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                b'<!ENTITY lol2 "&lol;&lol;">]><capabilities>&lol2;</capabilities>'
            ),
            (
                b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                b"<capabilities>&xxe;</capabilities>"
            ),
            b'<!DOCTYPE capabilities SYSTEM "http://example.invalid/x.dtd"><capabilities/>',
        ],
        ids=["billion-laughs", "xxe", "plain-doctype"],
    )
    def test_doctype_and_entities_refused(self, body):
        """No DOCTYPE, hence no entity, is ever accepted."""
        with pytest.raises(ResponseFormatError, match="DOCTYPE"):
            parse_capabilities(body)

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"", "not well-formed"),
            (b"<html><body>Service down</body>", "not well-formed"),
            (b"not xml at all", "not well-formed"),
            (b'<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE/></VOTABLE>', "<VOTABLE>"),
            (b"<html><body>Login</body></html>", "<html>"),
        ],
    )
    def test_not_capabilities(self, body, match):
        """Anything but a capabilities document is a ResponseFormatError that says why."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_capabilities(body)

    def test_no_tap_capability(self):
        """A capabilities document of a non-TAP service is refused."""
        body = (
            b'<capabilities><capability standardID="ivo://ivoa.net/std/ConeSearch">'
            b"</capability></capabilities>"
        )
        with pytest.raises(ResponseFormatError, match="no TAP capability"):
            parse_capabilities(body)
