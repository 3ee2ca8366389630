"""UCD sweeps, the pure parts: schema, UCD matching, RegTAP and TAP query building, merging.

Queries are checked by parsing them: the simulator's ADQL checker (sqlglot) must find
exactly the tables, columns and literals planned, whatever their names hold.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vosweep.aggregation import PROVENANCE_COLUMNS
from vosweep.errors import UsageError
from vosweep.protocols.vosi import ServiceCapabilities, TapCapabilities
from vosweep.queries import Cone, TapQuery
from vosweep.registry.features import RegistryFeatures
from vosweep.services import Service
from vosweep.sweeps.ucd import (
    SOURCE_TABLE,
    ResultColumn,
    UcdColumn,
    UcdTable,
    box_bounds,
    match_ucd,
    merge_ucd,
    pick_columns,
    plan_ucd,
    ucd_regtap_query,
    ucd_tables_from_rows,
)

sqlglot = pytest.importorskip("sqlglot", reason="query checks need the sim extra (sqlglot)")
from sqlglot import exp  # noqa: E402

from vosweep.testing._adql import (  # noqa: E402
    AdqlFeatures,
    ColumnDef,
    TableDef,
    _dialect,
    translate,
)

_TR = "ivo://ivoa.net/std/tapregext#"
PM = [
    ResultColumn("ra", "pos.eq.ra", "deg"),
    ResultColumn("dec", "pos.eq.dec", "deg"),
    ResultColumn("pmra", "pos.pm;pos.eq.ra", "mas/yr"),
    ResultColumn("pmdec", "pos.pm;pos.eq.dec", "mas/yr"),
]


def caps(*features: tuple[str, str], adql: tuple[str, ...] = ("2.0",)) -> ServiceCapabilities:
    tap = TapCapabilities(
        adql_versions=frozenset(adql),
        features=frozenset((_TR + kind, name) for kind, name in features),
        output_formats=(),
        upload_methods=frozenset(),
        output_limit_default=None,
        output_limit_hard=None,
        upload_limit_hard=None,
        upload_limit_hard_bytes=None,
        execution_duration_default=None,
        execution_duration_hard=None,
        retention_default=None,
        retention_hard=None,
        data_models=frozenset(),
    )
    return ServiceCapabilities(capabilities=(), tap=tap)


UNION = ("features-adql-sets", "UNION")
CAST = ("features-adql-type", "CAST")
GEO = tuple(("features-adqlgeo", f) for f in ("POINT", "CIRCLE", "CONTAINS"))
FULL = caps(UNION, CAST, *GEO, adql=("2.0", "2.1"))

SERVICE = Service.tap("http://tap.example/tap", ivoid="ivo://example/tap")
CAT = UcdTable(
    SERVICE,
    "cat.sources",
    {
        "ra": UcdColumn("ra", "pos.eq.ra;meta.main", "deg"),
        "dec": UcdColumn("dec", "pos.eq.dec;meta.main", "deg"),
        "pmra": UcdColumn("pmra", "pos.pm;pos.eq.ra", "mas/yr"),
        "pmdec": UcdColumn("pmdec", "pos.pm;pos.eq.dec", "mas/yr"),
    },
    (UcdColumn("ra", "pos.eq.ra;meta.main"), UcdColumn("dec", "pos.eq.dec;meta.main")),
)
VIZ = UcdTable(
    SERVICE,
    "J/A+A/600/A12/table2",
    {
        "ra": UcdColumn("RAJ2000", "pos.eq.ra;meta.main", "deg"),
        "dec": UcdColumn("DEJ2000", "pos.eq.dec;meta.main", "deg"),
        "pmra": UcdColumn("pmRA", "pos.pm;pos.eq.ra", "arcsec/yr"),
        "pmdec": UcdColumn("pmDE", "pos.pm;pos.eq.dec", "arcsec/yr"),
    },
    (UcdColumn("RAJ2000"), UcdColumn("DEJ2000")),
)


def catalog_of(*tables: UcdTable) -> dict[tuple[str, str], TableDef]:
    """Simulator table definitions holding exactly the planned tables' columns."""
    found: dict[tuple[str, str], TableDef] = {}
    for table in tables:
        names = {c.name for c in table.columns.values() if c is not None}
        if table.position is not None:
            names |= {c.name for c in table.position}
        schema, _, name = table.table.rpartition(".") if "/" not in table.table else ("", "", "")
        name = name or table.table
        columns = tuple(ColumnDef(n, "double") for n in sorted(names))
        found[schema.lower(), name.lower()] = TableDef(schema, name, "", columns)
    return found


def parse(adql: str) -> exp.Expr:
    return sqlglot.parse_one(adql, dialect=_dialect())


def selects(tree: exp.Expr) -> list[exp.Select]:
    return list(tree.find_all(exp.Select, bfs=False))  # in query order


def query_of(target: object) -> str:
    query = target.query  # type: ignore[attr-defined]
    assert isinstance(query, TapQuery)
    return query.adql


class TestResultColumn:
    def test_valid_column(self):
        column = ResultColumn("pmra", "pos.pm;pos.eq.ra", "mas/yr", datatype="FLOAT")
        assert (column.datatype, column.cast_type, column.numeric) == ("float", "REAL", True)
        assert not ResultColumn("id", "meta.id", datatype="char").numeric

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"name": "x", "ucd": "pos.pm", "unit": "furlongs per blorp"}, "furlongs per blorp"),
            ({"name": "x", "ucd": "pos.pm", "datatype": "complex"}, "complex"),
            ({"name": "", "ucd": "pos.pm"}, "empty"),
            ({"name": "a\nb", "ucd": "pos.pm"}, "control"),
            ({"name": "Source_Table", "ucd": "pos.pm"}, "reserved"),
            ({"name": "service_url", "ucd": "pos.pm"}, "reserved"),
            ({"name": "x", "ucd": " ; meta.main"}, "no UCD word"),
            ({"name": "x", "ucd": "pos.pm' OR 1=1 --"}, "characters"),
        ],
    )
    def test_bad_input_names_the_problem(self, kwargs, message):
        name, ucd = kwargs.pop("name"), kwargs.pop("ucd")
        with pytest.raises(UsageError, match=message):
            ResultColumn(name, ucd, **kwargs)

    def test_frozen(self):
        with pytest.raises(Exception, match="frozen"):
            PM[0].name = "other"  # type: ignore[misc]

    def test_duplicate_names_refused(self):
        with pytest.raises(UsageError, match=r"unique.*pmra"):
            plan_ucd([CAT], [PM[2], ResultColumn("PMRA", "pos.pm")], capabilities={})
        with pytest.raises(UsageError, match="at least one"):
            plan_ucd([CAT], [], capabilities={})


class TestUcdMatching:
    @pytest.mark.parametrize(
        ("column", "wanted", "matches"),
        [
            ("pos.eq.ra;meta.main", "pos.eq.ra", True),
            ("POS.EQ.RA", "pos.eq.ra;meta.main", True),
            ("pos.pm;pos.eq.ra", "pos.pm;pos.eq.ra", True),
            ("pos.pm;pos.eq.dec", "pos.pm;pos.eq.ra", False),
            ("pos.pm", "pos.pm;pos.eq.ra", False),
            ("stat.error;pos.pm;pos.eq.ra", "pos.pm;pos.eq.ra", False),
            ("pos.eq.ra", "pos.eq.dec", False),
            (None, "pos.eq.ra", False),
            ("meta.main", "pos.eq.ra", False),
        ],
    )
    def test_match(self, column, wanted, matches):
        assert match_ucd(column, wanted) is matches

    def test_meta_main_wins_then_the_first(self):
        b1950 = UcdColumn("RAB1950", "pos.eq.ra")
        j2000 = UcdColumn("RAJ2000", "pos.eq.ra;meta.main")
        other = UcdColumn("RA2", "pos.eq.ra")
        wanted = [ResultColumn("ra", "pos.eq.ra")]
        assert pick_columns([b1950, j2000, other], wanted) == {"ra": j2000}
        assert pick_columns([b1950, other], wanted) == {"ra": b1950}

    def test_tables_lacking_a_required_ucd_are_left_out(self):
        candidates = [UcdColumn("ra", "pos.eq.ra"), UcdColumn("pmra", "pos.pm;pos.eq.ra")]
        assert pick_columns(candidates, PM) is None
        optional = [*PM[:3], PM[3].model_copy(update={"optional": True})]
        picked = pick_columns(candidates, [PM[0], PM[2], optional[3]])
        assert picked == {"ra": candidates[0], "pmra": candidates[1], "pmdec": None}

    def test_a_table_matching_only_optional_nothing_is_left_out(self):
        optional = [ResultColumn("x", "phot.mag", optional=True)]
        assert pick_columns([UcdColumn("ra", "pos.eq.ra")], optional) is None


class TestRegtapQuery:
    def test_parses_and_selects_each_ucd_family_once(self):
        adql = ucd_regtap_query(PM)
        tree = sqlglot.parse_one(adql)
        assert {t.name for t in tree.find_all(exp.Table)} == {
            "table_column",
            "res_table",
            "resource",
            "capability",
            "interface",
        }
        patterns = sorted(
            lit.this for lit in tree.find_all(exp.Literal) if lit.is_string and "%" in lit.this
        )
        assert patterns == ["pos.eq.dec%", "pos.eq.ra%", "pos.pm%"]
        assert "ivo://ivoa.net/std/tap#aux" in adql
        assert "stc_spatial" not in adql

    def test_coverage_only_where_the_registry_has_it(self):
        region = Cone(ra=10, dec=20, radius=1)
        with_coverage = ucd_regtap_query(PM, region=region, features=RegistryFeatures())
        assert "rr.stc_spatial" in with_coverage
        assert "coverage IS NOT NULL" in with_coverage  # resources without coverage stay in
        sqlglot.parse_one(with_coverage)
        lacking = dataclasses.replace(RegistryFeatures(), coverage_tables=frozenset())
        assert "stc_spatial" not in ucd_regtap_query(PM, region=region, features=lacking)
        no_moc = dataclasses.replace(RegistryFeatures(), moc=False)
        assert "stc_spatial" not in ucd_regtap_query(PM, region=region, features=no_moc)

    def test_bad_region_refused(self):
        with pytest.raises(UsageError, match="region"):
            ucd_regtap_query(PM, region="M31")  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="cone"):
            ucd_regtap_query(PM, region=(10, 95, 1))


class TestTablesFromRows:
    def row(self, url, table, name, ucd, unit=None, ivoid="ivo://a/tap"):  # noqa: PLR0917
        return {
            "access_url": url,
            "ivoid": ivoid,
            "short_name": "A",
            "res_title": "A TAP",
            "table_name": table,
            "name": name,
            "ucd": ucd,
            "unit": unit,
            "datatype": "double",
        }

    def test_grouped_deduplicated_and_filtered(self):
        url = "http://a.example/tap"
        rows = [
            self.row(url, "J/t", "RAB1950", "pos.eq.ra", "deg"),
            self.row(url, "J/t", "RAJ2000", "pos.eq.ra;meta.main", "deg"),
            self.row(url, "J/t", "DEJ2000", "pos.eq.dec;meta.main", "deg"),
            self.row(url, "J/t", "pmRA", "pos.pm;pos.eq.ra", "arcsec/yr"),
            self.row(url, "J/t", "pmDE", "POS.PM;pos.eq.dec", "arcsec/yr"),
            # the same table again through a tap#aux collection record
            self.row(url + "/", "J/t", "pmRA", "pos.pm;pos.eq.ra", "arcsec/yr", "ivo://a/coll"),
            self.row(url, "other", "pmRA", "pos.pm;pos.eq.ra"),  # no Dec, no pmDE: out
            self.row(None, "junk", "x", "pos.pm"),
            self.row(url, None, "x", "pos.pm"),
        ]
        [table] = ucd_tables_from_rows(rows, PM)
        assert (table.service.access_url, table.service.ivoid, table.table) == (
            url,
            "ivo://a/tap",
            "J/t",
        )
        assert {k: v.name for k, v in table.columns.items() if v} == {
            "ra": "RAJ2000",
            "dec": "DEJ2000",
            "pmra": "pmRA",
            "pmdec": "pmDE",
        }
        assert table.columns["pmra"] == UcdColumn("pmRA", "pos.pm;pos.eq.ra", "arcsec/yr", "double")
        assert [c.name for c in table.position or ()] == ["RAJ2000", "DEJ2000"]

    def test_region_needs_positions(self):
        rows = [self.row("http://a/tap", "t", "pm", "pos.pm;pos.eq.ra")]
        wanted = [ResultColumn("pmra", "pos.pm;pos.eq.ra")]
        assert len(ucd_tables_from_rows(rows, wanted)) == 1
        assert ucd_tables_from_rows(rows, wanted, need_position=True) == []


class TestPlan:
    def test_union_with_cast_and_region_where_declared(self):
        region = Cone(ra=10, dec=20, radius=0.5)
        [target] = plan_ucd([CAT, VIZ], PM, region=region, capabilities={SERVICE.access_url: FULL})
        adql = query_of(target)
        assert target.key == "union:0"
        tree = parse(adql)
        assert isinstance(tree, exp.Union)
        assert tree.args.get("distinct") is False  # UNION ALL: no server-side dedup
        assert len(list(tree.find_all(exp.Cast))) == 8
        assert all(c.to.this == exp.DataType.Type.DOUBLE for c in tree.find_all(exp.Cast))
        assert adql.count("CONTAINS(POINT('ICRS', ") == 2
        translate(adql, catalog_of(CAT, VIZ))  # the simulator's checker accepts it

    def test_per_table_without_union_and_bare_columns_without_cast(self):
        targets = plan_ucd(
            [CAT, VIZ], PM, capabilities={SERVICE.access_url: caps(*GEO, adql=("2.1",))}, maxrec=7
        )
        assert [t.key for t in targets] == ["cat.sources", "J/A+A/600/A12/table2"]
        for target, table in zip(targets, [CAT, VIZ], strict=True):
            adql = query_of(target)
            assert "CAST" not in adql
            assert "UNION" not in adql
            assert target.query.maxrec == 7  # type: ignore[attr-defined]
            tree = parse(adql)
            assert tree.args["limit"].expression.this == "7"  # TOP 7
            [literal] = [
                lit for lit in tree.find_all(exp.Literal) if lit.is_string and lit.this != "ICRS"
            ]
            assert literal.this == table.table
            translate(adql, catalog_of(table), AdqlFeatures(sets=False, cast=False))

    def test_adql_20_service_without_declarations_gets_union(self):
        [target] = plan_ucd([CAT, VIZ], PM, capabilities={SERVICE.access_url: caps()})
        assert "UNION ALL" in query_of(target)
        assert "CAST" not in query_of(target)  # CAST only where declared

    def test_unknown_capabilities_ask_table_by_table(self):
        targets = plan_ucd([CAT, VIZ], PM, region=(1, 2, 3), capabilities={})
        assert len(targets) == 2
        assert all("CONTAINS" in query_of(t) for t in targets)  # mandatory in ADQL 2.0

    def test_a_bounding_box_without_geometry(self):
        """No geometry functions: the cone's box in plain comparisons, RA wrapped at 0."""
        lacking = caps(UNION, ("features-adqlgeo", "POINT"), adql=("2.1",))
        [target] = plan_ucd(
            [CAT, VIZ], PM, region=(1, 2, 3), capabilities={SERVICE.access_url: lacking}
        )
        adql = query_of(target)
        assert "CONTAINS" not in adql
        assert '"dec" BETWEEN -1.0 AND 5.0' in adql  # DEC is an ADQL reserved word
        assert "DEJ2000 BETWEEN -1.0 AND 5.0" in adql
        assert "(ra >= 357.99" in adql  # 1 - 3.004 wraps to the top of the RA range
        parse(adql)  # still one well-formed query

    def test_union_chunks(self):
        tables = [dataclasses.replace(CAT, table=f"s.t{i}") for i in range(5)]
        targets = plan_ucd(tables, PM, capabilities={SERVICE.access_url: FULL}, union_limit=2)
        assert [t.key for t in targets] == ["union:0", "union:1", "union:2"]
        assert [len(selects(parse(query_of(t)))) for t in targets] == [2, 2, 1]

    def test_optional_columns_become_null(self):
        optional = ResultColumn("vmag", "phot.mag;em.opt.V", "mag", optional=True)
        table = dataclasses.replace(CAT, columns={**CAT.columns, "vmag": None})
        [target] = plan_ucd([table], [*PM, optional], capabilities={SERVICE.access_url: FULL})
        assert 'CAST(NULL AS DOUBLE PRECISION) AS "vmag"' in query_of(target)

    def test_bad_plans_refused(self):
        with pytest.raises(UsageError, match="maxrec"):
            plan_ucd([CAT], PM, capabilities={}, maxrec=0)
        with pytest.raises(UsageError, match="union_limit"):
            plan_ucd([CAT], PM, capabilities={}, union_limit=0)
        with pytest.raises(UsageError, match="UcdTable"):
            plan_ucd(["cat.sources"], PM, capabilities={})  # type: ignore[list-item]
        nowhere = dataclasses.replace(CAT, position=None)
        with pytest.raises(UsageError, match="RA/Dec"):
            plan_ucd([nowhere], PM, region=(1, 2, 3), capabilities={})

    # Table names are one part here (no dots): a dotted name is schema.table by design.
    _table_names = st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='."'),
        min_size=1,
        max_size=30,
    ).filter(lambda s: s.strip() == s and s.strip())
    _column_names = st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
    ).filter(lambda s: s.strip() == s and s.strip())

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        names=st.lists(_table_names, min_size=1, max_size=4, unique_by=str.lower),
        columns=st.lists(_column_names, min_size=4, max_size=4, unique_by=str.lower),
        union=st.booleans(),
        cast=st.booleans(),
        ra=st.floats(0, 359.9),
        dec=st.floats(-90, 90),
    )
    def test_hostile_names_keep_the_query_structure(  # noqa: PLR0917
        self, names, columns, union, cast, ra, dec
    ):
        ra_col, dec_col, pmra_col, pmdec_col = columns
        tables = [
            UcdTable(
                SERVICE,
                name,
                {
                    "ra": UcdColumn(ra_col),
                    "dec": UcdColumn(dec_col),
                    "pmra": UcdColumn(pmra_col),
                    "pmdec": UcdColumn(pmdec_col),
                },
                (UcdColumn(ra_col), UcdColumn(dec_col)),
            )
            for name in names
        ]
        features = [*GEO, *([UNION] if union else []), *([CAST] if cast else [])]
        region = Cone(ra=ra, dec=dec, radius=0.1)
        targets = plan_ucd(
            tables,
            PM,
            region=region,
            capabilities={SERVICE.access_url: caps(*features, adql=("2.1",))},
        )
        assert len(targets) == (1 if union and len(names) > 1 else len(names))
        planned = [s for t in targets for s in selects(parse(query_of(t)))]
        assert len(planned) == len(names)
        for select, name in zip(planned, names, strict=True):
            [table] = select.find_all(exp.Table)
            assert table.name == name
            assert not table.db
            outputs = [p.alias for p in select.expressions]
            assert outputs == ["ra", "dec", "pmra", "pmdec", SOURCE_TABLE]
            sources = [p.this for p in select.expressions[:4]]
            if cast:
                sources = [s.this for s in sources]
            assert [s.name for s in sources] == columns
            assert select.expressions[4].this.this == name
            contains = select.args["where"].find(exp.Anonymous)
            assert contains is not None
            assert contains.name.upper() == "CONTAINS"
            point = [c.name for c in contains.find_all(exp.Column)]
            assert point == [ra_col, dec_col]
        catalog = {}
        for table in tables:
            catalog.update(catalog_of(table))
        for target in targets:
            translate(query_of(target), catalog)


def answer(source: list[str], **columns: tuple[list[object], str | None]) -> Table:
    table = Table()
    for name, (values, unit) in columns.items():
        mask = [v is None for v in values]
        data = [0.0 if v is None else v for v in values]
        table[name] = MaskedColumn(data, mask=mask, unit=unit)
    table[SOURCE_TABLE] = source
    return table


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 360, exclude_max=True),
    st.floats(-89.9, 89.9),
    st.floats(1e-4, 20),
    st.floats(0, 1),
    st.floats(0, 360),
)
def test_the_box_holds_every_point_of_the_cone(ra, dec, radius, fraction, bearing):
    """Any point within the cone (at some distance and bearing) satisfies the box."""
    cone = Cone(ra=ra, dec=dec, radius=radius)
    distance, angle = np.radians(radius * fraction), np.radians(bearing)
    lat0, lon0 = np.radians(dec), np.radians(ra)
    lat = np.arcsin(
        np.sin(lat0) * np.cos(distance) + np.cos(lat0) * np.sin(distance) * np.cos(angle)
    )
    lon = lon0 + np.arctan2(
        np.sin(angle) * np.sin(distance) * np.cos(lat0),
        np.cos(distance) - np.sin(lat0) * np.sin(lat),
    )
    point_ra, point_dec = np.degrees(lon) % 360.0, np.degrees(lat)
    low, high, ras = box_bounds(cone)
    slack = 1e-9
    assert low - slack <= point_dec <= high + slack
    if ras is not None:
        start, end = ras
        inside = [
            start - slack <= x <= end + slack for x in (point_ra - 360, point_ra, point_ra + 360)
        ]
        assert any(inside), (point_ra, ras)


class TestMerge:
    def test_rows_outside_the_region_are_cut(self):
        """A bounding box's corners (services without geometry) are cut to the cone."""
        rows = answer(
            ["cat.sources"] * 4,
            ra=([10.0, 10.9, 10.0, 10.0], "deg"),
            dec=([20.0, 20.9, 20.95, None], "deg"),
            pmra=([1.0, 2.0, 3.0, 4.0], "mas/yr"),
            pmdec=([1.0, 2.0, 3.0, 4.0], "mas/yr"),
        )
        merged = merge_ucd([(SERVICE, rows)], PM, [CAT], Cone(ra=10, dec=20, radius=1))
        # (10.9, 20.9) is in the box but 1.2 deg away; a NULL position is not in the cone.
        assert merged["pmra"].tolist() == [1.0, 3.0]
        assert merged.meta["vosweep_ucd_outside_region"] == 2
        without = merge_ucd([(SERVICE, rows)], PM[2:], [CAT], Cone(ra=10, dec=20, radius=1))
        assert len(without) == 4  # no RA/Dec in the schema: nothing to cut on

    def test_units_converted_per_source_table_not_by_the_answer(self):
        # A UNION answer declares its first table's unit (mas/yr) for every row: the
        # registry's units for each source table are what count.
        union = answer(
            ["cat.sources", "J/A+A/600/A12/table2", "J/A+A/600/A12/table2"],
            ra=([1.0, 2.0, 3.0], "deg"),
            dec=([4.0, 5.0, 6.0], "deg"),
            pmra=([10.0, 0.02, None], "mas/yr"),
            pmdec=([-3.0, 0.5, 0.001], "mas/yr"),
        )
        merged = merge_ucd([(SERVICE, union)], PM, [CAT, VIZ])
        assert merged.colnames == [c.name for c in PM] + [SOURCE_TABLE, *PROVENANCE_COLUMNS]
        expected_pmra = [10.0, (0.02 * u.arcsec / u.yr).to_value(u.mas / u.yr), 0.0]
        assert np.allclose(merged["pmra"].filled(0.0), expected_pmra)
        assert merged["pmra"].mask.tolist() == [False, False, True]
        assert np.allclose(merged["pmdec"], [-3.0, 500.0, 1.0])
        assert merged["pmra"].unit == u.mas / u.yr
        assert merged["pmra"].meta["ucd"] == "pos.pm;pos.eq.ra"
        assert merged["service_url"].tolist() == [SERVICE.access_url] * 3
        assert merged["service_ivoid"].tolist() == ["ivo://example/tap"] * 3
        assert "vosweep_ucd_dropped" not in merged.meta

    def test_unconvertible_and_unknown_tables_dropped_and_reported(self):
        bad = dataclasses.replace(
            VIZ, columns={**VIZ.columns, "pmra": UcdColumn("pmRA", unit="Jy")}
        )
        data = answer(
            ["cat.sources", "J/A+A/600/A12/table2", "not/asked"],
            ra=([1.0, 2.0, 3.0], None),
            dec=([1.0, 2.0, 3.0], None),
            pmra=([1.0, 2.0, 3.0], None),
            pmdec=([1.0, 2.0, 3.0], None),
        )
        merged = merge_ucd([(SERVICE, data)], PM, [CAT, bad])
        assert merged[SOURCE_TABLE].tolist() == ["cat.sources"]
        dropped = merged.meta["vosweep_ucd_dropped"]
        assert "'Jy' cannot be converted" in dropped[f"{SERVICE.label} J/A+A/600/A12/table2"]
        assert "did not ask" in dropped[f"{SERVICE.label} not/asked"]
        no_source = Table({"pmra": [1.0]})
        merged = merge_ucd([(SERVICE, no_source)], PM, [CAT])
        assert len(merged) == 0
        assert SOURCE_TABLE in merged.meta["vosweep_ucd_dropped"][SERVICE.label]

    def test_missing_units_are_the_schemas_and_types_follow_the_schema(self):
        table = UcdTable(
            SERVICE,
            "t",
            {"id": UcdColumn("Seq"), "pm": UcdColumn("pm"), "mag": None},
        )
        schema = [
            ResultColumn("id", "meta.id", datatype="char"),
            ResultColumn("pm", "pos.pm", "mas/yr", datatype="int"),
            ResultColumn("mag", "phot.mag", "mag", optional=True),
        ]
        data = answer(["t", "t"], id=([17, 18], None), pm=([2.6, None], None))
        merged = merge_ucd([(SERVICE, data)], schema, [table])
        assert merged["id"].tolist() == ["17", "18"]
        assert merged["pm"].dtype == np.int32
        assert merged["pm"].filled(-1).tolist() == [3, -1]
        assert merged["mag"].mask.all()
        assert merged["mag"].dtype == np.float64
        text = answer(["t"], id=([1], None), pm=([1.0], None))
        text["pm"] = ["fast"]
        merged = merge_ucd([(SERVICE, text)], schema, [table])
        assert "not numbers" in merged.meta["vosweep_ucd_dropped"][f"{SERVICE.label} t"]

    def test_nothing_answered_gives_the_empty_schema(self):
        merged = merge_ucd([], PM, [CAT])
        assert len(merged) == 0
        assert merged.colnames == [c.name for c in PM] + [SOURCE_TABLE, *PROVENANCE_COLUMNS]
        assert all(merged[c.name].dtype == np.float64 for c in PM)
        assert merged["ra"].unit == u.deg
