"""The simulated registry's ADQL engine: translation, RegTAP functions, MOCs, hostile queries."""

from __future__ import annotations

import contextlib
import math
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SIM_EXTRA = "the simulated registry needs the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pytest.importorskip("cdshealpix", reason=SIM_EXTRA)

from vosweep.errors import UsageError  # noqa: E402
from vosweep.testing import NamedResource, RegistryUrls, _adql, build_registry  # noqa: E402
from vosweep.testing._adql import (  # noqa: E402
    AdqlDatabase,
    AdqlError,
    AdqlFeatures,
    ColumnDef,
    QueryTimeout,
    TableDef,
    format_moc,
    geometry_moc,
    hashlist_has,
    hasword,
    interval_overlaps,
    moc_contains,
    moc_intersects,
    nocasematch,
    parse_moc,
    require_sim_extra,
    translate,
)
from vosweep.testing._registry import RR_TABLES, rr_tables  # noqa: E402
from vosweep.testing._regtap import RegistryProfile, tap_schema_rows, tap_schema_tables  # noqa: E402

RESOURCE = TableDef(
    "rr",
    "resource",
    "resources",
    (
        ColumnDef("ivoid", "char", primary=True),
        ColumnDef("res_title", "unicodeChar"),
        ColumnDef("waveband", "char"),
        ColumnDef("region_of_regard", "float", unit="deg"),
        ColumnDef("created", "char", xtype="timestamp"),
    ),
    indexes=(("ivoid",),),
)
CAPABILITY = TableDef(
    "rr",
    "capability",
    "capabilities",
    (
        ColumnDef("ivoid", "char"),
        ColumnDef("cap_index", "short"),
        ColumnDef("standard_id", "char"),
    ),
)
SUBJECT = TableDef(
    "rr", "res_subject", "subjects", (ColumnDef("ivoid", "char"), ColumnDef("res_subject", "char"))
)
SPATIAL = TableDef(
    "rr",
    "stc_spatial",
    "coverage",
    (ColumnDef("ivoid", "char"), ColumnDef("coverage", "char", xtype="moc")),
)
TABLES = (RESOURCE, CAPABILITY, SUBJECT, SPATIAL)
ROWS = {
    "rr.resource": [
        ("ivo://a", "White dwarfs in the UV", "uv#optical", 1.0, "2020-01-01T00:00:00"),
        ("ivo://b", "Quasars from X-rays", "x-ray", None, "2021-06-01T00:00:00"),
        ("ivo://c", "Müller's galaxies", "optical", 0.5, "2019-03-04T00:00:00"),
        ("ivo://d", "no capabilities here", None, None, None),
    ],
    "rr.capability": [
        ("ivo://a", 1, "ivo://ivoa.net/std/conesearch"),
        ("ivo://a", 2, "ivo://ivoa.net/std/tap#aux"),
        ("ivo://b", 1, "ivo://ivoa.net/std/tap"),
        ("ivo://c", 1, "ivo://ivoa.net/std/conesearch"),
    ],
    "rr.res_subject": [("ivo://a", "white-dwarf-stars"), ("ivo://b", "quasars")],
    "rr.stc_spatial": [
        ("ivo://a", "0/0-11"),
        ("ivo://b", geometry_moc("10.0 20.0 5.0", 6)),
        ("ivo://c", geometry_moc("200.0 -30.0 2.0", 6)),
    ],
}


@pytest.fixture(name="db", scope="module")
def _db():
    database = AdqlDatabase(TABLES, ROWS, timeout=2.0)
    yield database
    database.close()


def ivoids(db, query):
    return sorted(row[0] for row in db.execute(query, maxrec=1000).rows)


def catalog(*tables):
    return {(t.schema, t.name): t for t in tables or TABLES}


# -- translation --------------------------------------------------------------------------


def test_top_becomes_limit_and_ilike_a_unicode_aware_function():
    sql = translate(
        "SELECT TOP 3 ivoid FROM rr.resource WHERE res_title ILIKE '%a%'", catalog()
    ).sql
    assert "LIMIT 3" in sql
    assert "IVO_NOCASEMATCH(res_title, '%a%') = 1" in sql


def test_adql_functions_keep_their_adql_meaning_not_sqlglots_rewrites(db):
    """SQLite's LOG is base 10; ADQL's is natural. sqlglot must not "translate" it."""
    row = db.execute("SELECT LOG(10), LOG10(100), ROUND(2.5), ROUND(-2.5), MOD(7, 3)", maxrec=1)
    log, log10, up, down, mod = row.rows[0]
    assert log == pytest.approx(math.log(10))
    assert log10 == pytest.approx(2.0)
    assert (up, down, mod) == (3.0, -3.0, 1)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC ivoid FROM rr.resource", "Could not parse"),
        ("SELECT ivoid FROM rr.nothing", "unknown table rr.nothing"),
        ("SELECT ivoid FROM elsewhere.resource", "unknown table elsewhere.resource"),
        ("SELECT nope FROM rr.resource", "unknown column nope"),
        ('SELECT "IVOID" FROM rr.resource', "unknown column IVOID"),
        ('SELECT ivoid FROM rr.resource WHERE ivoid = "x"', "unknown column x"),
        ("SELECT frobnicate(ivoid) FROM rr.resource", "unknown function FROBNICATE"),
        ("SELECT ivo_hasword(res_title) FROM rr.resource", "IVO_HASWORD takes 2 arguments"),
        ("SELECT ivo_string_agg(ivoid) FROM rr.resource", "IVO_STRING_AGG takes 2 arguments"),
        ("SELECT MAX(1, 2)", "MAX takes one argument"),
        ("SELECT CAST(ivoid AS BLOB) FROM rr.resource", "cannot CAST"),
        ("SELECT 1; SELECT 2", "exactly one query"),
        ("DELETE FROM rr.resource", "only SELECT"),
        ("INSERT INTO rr.resource (ivoid) VALUES ('x')", "only SELECT"),
        ("DROP TABLE rr.resource", "only SELECT"),
        ("UPDATE rr.resource SET ivoid = 'x'", "only SELECT"),
        ("CREATE TABLE rr.x (a INTEGER)", "only SELECT"),
        ("PRAGMA query_only = OFF", "only SELECT"),
        ("ATTACH DATABASE ':memory:' AS x", "Could not parse"),
        ("SELECT ivoid FROM rr.resource WHERE ivoid = ?", "unsupported construct"),
        ("SELECT * FROM sqlite_master", "unknown table sqlite_master"),
        ("SELECT res_subject AS value FROM rr.res_subject", "value is a reserved word"),
        ("SELECT ivoid AS top FROM rr.resource", "top is a reserved word"),
        ("SELECT ivoid FROM rr.resource AS user", "user is a reserved word"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
            "recursive",
        ),
    ],
)
def test_bad_queries_fail_with_a_message_naming_the_problem(db, query, message):
    with pytest.raises(AdqlError, match=re.escape(message)):
        db.execute(query, maxrec=10)


def test_optional_features_can_be_switched_off():
    no_sets = AdqlFeatures(sets=False)
    with pytest.raises(AdqlError, match="UNION is not supported"):
        translate(
            "SELECT ivoid FROM rr.resource UNION SELECT ivoid FROM rr.capability",
            catalog(),
            no_sets,
        )
    no_geometry = AdqlFeatures(geometry=False)
    with pytest.raises(AdqlError, match="unknown function MOC"):
        translate("SELECT MOC('0/1')", catalog(), no_geometry)
    strict = AdqlFeatures(three_part_columns=False)
    query = "SELECT ivoid FROM rr.res_subject WHERE rr.res_subject.res_subject LIKE 'q%'"
    with pytest.raises(AdqlError, match=re.escape('Unknown column "rr.res_subject.res_subject"')):
        translate(query, catalog(), strict)
    assert translate(query, catalog()).sql.endswith("LIKE 'q%'")


# -- execution ----------------------------------------------------------------------------


def test_a_quoted_reserved_word_is_a_fine_alias(db):
    result = db.execute('SELECT ivoid AS "value" FROM rr.resource', maxrec=1)
    assert [c.name for c in result.columns] == ["value"]


def test_like_is_case_sensitive_and_ilike_is_not_even_beyond_ascii(db):
    assert ivoids(db, "SELECT ivoid FROM rr.resource WHERE res_title LIKE 'white%'") == []
    assert ivoids(db, "SELECT ivoid FROM rr.resource WHERE res_title LIKE 'White%'") == ["ivo://a"]
    assert ivoids(db, "SELECT ivoid FROM rr.resource WHERE res_title ILIKE 'WHITE%'") == ["ivo://a"]
    assert ivoids(db, "SELECT ivoid FROM rr.resource WHERE res_title ILIKE 'MÜLLER%'") == [
        "ivo://c"
    ]
    assert ivoids(db, "SELECT ivoid FROM rr.resource WHERE res_title NOT ILIKE '%E%'") == [
        "ivo://b"
    ]
    lowered = db.execute(
        "SELECT LOWER(res_title) FROM rr.resource WHERE ivoid = 'ivo://c'", maxrec=1
    )
    assert lowered.rows == [("müller's galaxies",)]


def test_sql_features_used_by_registry_clients(db):
    query = """
        SELECT r.ivoid AS id, COUNT(*) AS n, ivo_string_agg(COALESCE(standard_id, ''), '|') AS stds
        FROM rr.resource AS r NATURAL LEFT OUTER JOIN rr.capability
        WHERE r.ivoid IN (SELECT ivoid FROM rr.capability UNION SELECT ivoid FROM rr.res_subject)
          AND (1 = ivo_hashlist_has(waveband, 'OPTICAL') OR waveband || '' = 'x-ray')
        GROUP BY r.ivoid HAVING COUNT(*) >= 1 ORDER BY id DESC OFFSET 0
    """
    result = db.execute(query, maxrec=10)
    assert [c.name for c in result.columns] == ["id", "n", "stds"]
    assert [c.datatype for c in result.columns] == ["char", "long", "char"]
    rows = {row[0]: row[1:] for row in result.rows}
    assert rows["ivo://c"] == (1, "ivo://ivoa.net/std/conesearch")
    assert rows["ivo://b"] == (1, "ivo://ivoa.net/std/tap")
    assert sorted(rows["ivo://a"][1].split("|")) == [
        "ivo://ivoa.net/std/conesearch",
        "ivo://ivoa.net/std/tap#aux",
    ]
    assert list(rows) == ["ivo://c", "ivo://b", "ivo://a"]


def test_casts_distinct_case_and_delimited_identifiers(db):
    result = db.execute(
        'SELECT DISTINCT "ivoid", CAST(cap_index AS DOUBLE PRECISION) AS x,'
        " CAST('42' AS INTEGER) AS n, CASE WHEN cap_index > 1 THEN 'aux' ELSE 'main' END AS k"
        ' FROM rr.capability AS "c" WHERE "c".ivoid = \'ivo://a\' ORDER BY x',
        maxrec=10,
    )
    assert result.rows == [("ivo://a", 1.0, 42, "main"), ("ivo://a", 2.0, 42, "aux")]
    assert [c.datatype for c in result.columns] == ["char", "double", "long", "char"]
    assert ivoids(db, "SELECT DISTINCT ivoid FROM rr.capability") == [
        "ivo://a",
        "ivo://b",
        "ivo://c",
    ]


def test_string_agg_skips_nulls_and_gives_null_for_an_empty_group(db):
    result = db.execute(
        "SELECT ivoid, ivo_string_agg(standard_id, ',') FROM rr.resource"
        " NATURAL LEFT OUTER JOIN rr.capability WHERE ivoid = 'ivo://d' GROUP BY ivoid",
        maxrec=10,
    )
    assert result.rows == [("ivo://d", None)]


def test_result_columns_carry_the_table_metadata(db):
    result = db.execute(
        "SELECT ivoid, region_of_regard AS ror, created, cap_index, 1.5 AS x, 'é' AS y"
        " FROM rr.resource NATURAL JOIN rr.capability",
        maxrec=10,
    )
    described = [(c.name, c.datatype, c.arraysize, c.xtype, c.unit) for c in result.columns]
    assert described == [
        ("ivoid", "char", "*", None, None),
        ("ror", "float", None, None, "deg"),
        ("created", "char", "*", "timestamp", None),
        ("cap_index", "short", None, None, None),
        ("x", "double", None, None, None),
        ("y", "unicodeChar", "*", None, None),
    ]
    star = db.execute("SELECT * FROM rr.stc_spatial", maxrec=1)
    assert [(c.name, c.xtype) for c in star.columns] == [("ivoid", None), ("coverage", "moc")]


def test_maxrec_cuts_with_overflow_and_top_does_not(db):
    cut = db.execute("SELECT ivoid FROM rr.resource", maxrec=2)
    assert (len(cut.rows), cut.overflow) == (2, True)
    top = db.execute("SELECT TOP 2 ivoid FROM rr.resource", maxrec=2)
    assert (len(top.rows), top.overflow) == (2, False)
    metadata = db.execute("SELECT ivoid FROM rr.resource", maxrec=0)
    assert (metadata.rows, metadata.overflow, metadata.columns[0].name) == ([], True, "ivoid")


def test_spatial_queries_in_pyvos_forms(db):
    def covering(geometry, relation="CONTAINS({g}, coverage)"):
        condition = relation.format(g=geometry)
        return ivoids(db, f"SELECT ivoid FROM rr.stc_spatial WHERE 1 = {condition}")  # noqa: S608

    assert covering("MOC(6, POINT(10.0, 20.0))") == ["ivo://a", "ivo://b"]
    assert covering("POINT('ICRS', 200.5, -30.2)") == ["ivo://a", "ivo://c"]
    assert covering("MOC(6, CIRCLE(10.0, 20.0, 1.0))") == ["ivo://a", "ivo://b"]
    assert covering("MOC(6, CIRCLE(10.0, 20.0, 30.0))") == ["ivo://a"]
    assert covering("MOC(6, POLYGON(9.0, 19.0, 11.0, 19.0, 11.0, 21.0))") == ["ivo://a", "ivo://b"]
    assert covering("MOC('0/0-11')", "CONTAINS(coverage, {g})") == ["ivo://a", "ivo://b", "ivo://c"]
    overlapping = covering("MOC(6, CIRCLE(13.0, 20.0, 3.0))", "INTERSECTS(coverage, {g})")
    assert overlapping == ["ivo://a", "ivo://b"]


def test_geometry_functions(db):
    result = db.execute(
        "SELECT POINT(370.0, 10.0), CIRCLE(POINT(1, 2), 3), DISTANCE(POINT(0, 0), POINT(0, 1)),"
        " COORD1(POINT(5, 6)), COORD2(POINT(5, 6)), CONTAINS(POINT(1, 2), CIRCLE(1, 2.5, 1)),"
        " INTERSECTS(CIRCLE(0, 0, 1), CIRCLE(0, 3, 1.5)), MOC(1, POINT(0, 90))",
        maxrec=1,
    )
    point, circle, distance, coord1, coord2, contains, intersects, moc = result.rows[0]
    assert (point, circle, coord1, coord2, contains, intersects) == (
        "10.0 10.0", "1.0 2.0 3.0", 5.0, 6.0, 1, 0,
    )  # fmt: skip
    assert distance == pytest.approx(1.0)
    assert moc_contains(moc, 0.0, 90.0)
    assert moc.startswith("1/")
    assert [c.xtype for c in result.columns] == [
        "point", "circle", None, None, None, None, None, "moc",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT POINT(0, 91)", "latitude 91.0 is outside"),
        ("SELECT CIRCLE(0, 0, 200)", "radius 200.0 is outside"),
        ("SELECT POLYGON(0, 0, 1, 1)", "at least three vertices"),
        ("SELECT MOC('7/x')", "invalid ASCII MOC"),
        ("SELECT MOC('3/1000')", "invalid cell range"),
        ("SELECT MOC(20, POINT(0, 0))", "MOC order must be between"),
        ("SELECT CONTAINS('nonsense', '0/1')", "not a geometry"),
        ("SELECT SQRT(-1)", "SQRT"),
    ],
)
def test_bad_geometry_and_math_fail_cleanly(db, query, message):
    with pytest.raises(AdqlError, match=re.escape(message)):
        db.execute(query, maxrec=1)


# -- hostile queries ----------------------------------------------------------------------


def test_a_runaway_query_is_stopped_and_the_database_stays_usable():
    database = AdqlDatabase(TABLES, ROWS, timeout=0.3)
    joins = ", ".join(f"rr.resource AS t{k}" for k in range(30))
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="time limit"):
        database.execute(f"SELECT COUNT(*) FROM {joins}", maxrec=1)  # noqa: S608
    assert time.monotonic() - started < 5
    for _ in range(3):  # every pooled connection is still fine
        assert database.execute("SELECT COUNT(*) FROM rr.resource", maxrec=1).rows == [(4,)]
    database.close()
    with pytest.raises(AdqlError, match="shutting down"):
        database.execute("SELECT 1", maxrec=1)


def test_strings_cannot_grow_without_bound(db):
    joins = ", ".join(f"rr.resource AS t{k}" for k in range(12))
    with pytest.raises(AdqlError):
        db.execute(
            f"SELECT ivo_string_agg(t0.res_description || t0.ivoid, 'x') FROM {joins}",  # noqa: S608
            maxrec=1,
        )


def test_deep_nesting_and_huge_queries_are_refused(db):
    with pytest.raises(AdqlError):
        db.execute("SELECT " + "(" * 5000 + "1" + ")" * 5000, maxrec=1)
    with pytest.raises(AdqlError, match="longer than"):
        db.execute("SELECT 1 FROM rr.resource WHERE ivoid = '" + "x" * 300_000 + "'", maxrec=1)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_string_literals_never_change_the_query(db, text):
    """A quoted value (quotes doubled, as SQL does) is data, whatever it holds."""
    if "\x00" in text:
        with pytest.raises(AdqlError, match="NUL"):
            db.execute(f"SELECT '{text}'", maxrec=1)
        return
    literal = "'" + text.replace("'", "''") + "'"
    result = db.execute(
        f"SELECT ivoid, {literal} AS v FROM rr.resource WHERE ivoid = {literal}",  # noqa: S608
        maxrec=10,
    )
    assert result.rows == [(r[0], text) for r in ROWS["rr.resource"] if r[0] == text]


FRAGMENTS = st.sampled_from(
    [
        "SELECT", "TOP 2", "*", "ivoid", ",", "FROM", "rr.resource", "rr.capability", "WHERE",
        "1=1", "AND", "OR", "(", ")", "'x'", "''", "UNION", "GROUP BY", "ivoid", "ORDER BY",
        "NATURAL JOIN", "ILIKE '%a%'", "LIKE", "IN", "COUNT(*)", "ivo_hasword(res_title, 'x')",
        "MOC(6, POINT(1, 2))", "CONTAINS", ";", "--", "/*", "DROP", '"', "sqlite_master",
    ]
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(FRAGMENTS | st.text(max_size=8), max_size=14))
def test_any_text_either_runs_or_fails_with_an_adql_error(db, parts):
    with contextlib.suppress(AdqlError):
        db.execute(" ".join(parts), maxrec=5)


# -- RegTAP functions ---------------------------------------------------------------------


def test_hasword_matches_whole_words_case_insensitively_with_plurals_folded():
    assert hasword("Catalogue of White Dwarfs", "white dwarf") == 1
    assert hasword("Catalogue of white dwarfs", "dwarfs") == 1
    assert hasword("X-rays from quasars", "x-ray") == 1
    assert hasword("Galaxies and clusters", "galaxy") == 1
    assert hasword("whitedwarf catalogue", "white") == 0
    assert hasword("dwarf galaxies", "white dwarf") == 0
    assert hasword("anything", "") == 0
    assert hasword(None, "x") == 0


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüçÅÉ", min_size=1, max_size=10)


@given(words=st.lists(WORDS, min_size=1, max_size=8), pick=st.integers(min_value=0))
def test_hasword_finds_every_word_of_a_text(words, pick):
    text = ", ".join(words).title()
    assert hasword(text, words[pick % len(words)].upper()) == 1


@given(value=st.text(max_size=12), pattern=st.text(alphabet="ab%_A.", max_size=6))
def test_nocasematch_is_like_without_case(value, pattern):
    regex = "".join({"%": ".*", "_": "."}.get(c, re.escape(c)) for c in pattern)
    expected = re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None
    assert nocasematch(value, pattern) == int(expected)


def test_hashlist_has_and_interval_overlaps():
    assert hashlist_has("optical#UV", "uv") == 1
    assert hashlist_has("optical#uv", "u") == 0
    assert hashlist_has(None, "uv") == 0
    assert interval_overlaps(1, 2, 2, 3) == 1
    assert interval_overlaps(1, 2, 2.5, 3) == 0
    assert interval_overlaps(None, 2, 1, 3) is None


@given(
    a=st.floats(-1e3, 1e3), b=st.floats(-1e3, 1e3), c=st.floats(-1e3, 1e3), d=st.floats(-1e3, 1e3)
)
def test_interval_overlap_is_symmetric_and_exact(a, b, c, d):
    low1, high1, low2, high2 = min(a, b), max(a, b), min(c, d), max(c, d)
    expected = int(not (high1 < low2 or high2 < low1))
    assert interval_overlaps(low1, high1, low2, high2) == expected
    assert interval_overlaps(low2, high2, low1, high1) == expected


# -- MOCs ---------------------------------------------------------------------------------

CELLS = st.integers(min_value=0, max_value=8).flatmap(
    lambda order: st.tuples(st.just(order), st.integers(0, 12 * 4**order - 1))
)


@given(cells=st.lists(CELLS, min_size=1, max_size=30))
def test_ascii_mocs_round_trip(cells):
    text = format_moc(cells)
    assert parse_moc(text) == parse_moc(format_moc(parse_moc_cells(text)))
    covered = parse_moc(text)
    for order, cell in cells:
        start = cell << 2 * (29 - order)
        assert any(low <= start < high for low, high in covered)


def parse_moc_cells(text):
    cells = []
    order = 0
    for word in text.split():
        value = word
        if "/" in word:
            order_text, value = word.split("/")
            order = int(order_text)
            if not value:
                continue
        low, _, high = value.partition("-")
        cells += [(order, c) for c in range(int(low), int(high or low) + 1)]
    return cells


def test_mocs_parse_the_forms_in_use():
    assert parse_moc("0/0-11") == ((0, 12 << 58),)
    assert parse_moc("1/1,3,4 2/4,25") == parse_moc("1/1 3 4 2/4 25")
    assert parse_moc("3/") == ()
    assert moc_intersects("1/0", "2/3")
    assert not moc_intersects("1/0", "2/4")


def unit_vector(ra, dec):
    ra, dec = math.radians(ra), math.radians(dec)
    return math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)


def separation(ra1, dec1, ra2, dec2):
    dot = sum(a * b for a, b in zip(unit_vector(ra1, dec1), unit_vector(ra2, dec2), strict=True))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot))))


@settings(max_examples=60)
@given(
    ra=st.floats(0, 360),
    dec=st.floats(-89, 89),
    radius=st.floats(1.0, 30.0),
    ra2=st.floats(0, 360),
    dec2=st.floats(-90, 90),
)
def test_circle_mocs_cover_the_circle_and_little_more(ra, dec, radius, ra2, dec2):
    """An order-6 MOC (cells ~0.9 deg) covers every point of the circle, none far off it."""
    moc = geometry_moc(f"{ra} {dec} {radius}", 6)
    distance = separation(ra, dec, ra2, dec2)
    if distance <= radius:
        assert moc_contains(moc, ra2, dec2)
    elif distance > radius + 2.0:
        assert not moc_contains(moc, ra2, dec2)


def test_the_fast_healpix_path_agrees_with_the_public_api(monkeypatch):
    fast = geometry_moc("123.4 -45.6 7.8", 7), geometry_moc("10 10 14 10 12 15", 7)
    _adql._to_moc.cache_clear()
    _adql._point_cell.cache_clear()
    monkeypatch.setattr(_adql, "_healpix_core", lambda: None)
    slow = geometry_moc("123.4 -45.6 7.8", 7), geometry_moc("10 10 14 10 12 15", 7)
    _adql._to_moc.cache_clear()
    assert fast == slow
    assert moc_contains("6/" + str(_adql._point_cell(_adql._Point(1.0, 2.0), 6)), 1.0, 2.0)
    _adql._point_cell.cache_clear()


# -- the synthetic registry ---------------------------------------------------------------


@pytest.fixture(name="registry", scope="module")
def _registry():
    return build_registry(1500, seed=3)


def test_registry_is_deterministic_and_seeded():
    first, again, other = (
        build_registry(300, seed=1),
        build_registry(300, seed=1),
        build_registry(300, seed=2),
    )
    assert first.resources == again.resources
    assert first.rows() == again.rows()
    assert first.ivoids() != other.ivoids()


def test_registry_has_the_shape_of_the_vo(registry):
    def count(where):
        return len(registry.ivoids(where))

    scs = [r for r in registry if "ivo://ivoa.net/std/conesearch" in r.standard_ids]
    on_big_host = [r for r in scs if r.access_urls[0].startswith(registry.urls.hosts[0])]
    assert len(scs) > len(registry) / 2
    assert len(on_big_host) > 0.8 * len(scs)
    tap = count(lambda r: "ivo://ivoa.net/std/tap" in r.standard_ids)
    obscore = count(
        lambda r: any(
            v.startswith("ivo://ivoa.net/std/obscore")
            for v in r.details_of("/capability/dataModel/@ivo-id")
        )
    )
    epntap = count(
        lambda r: any(
            (t.utype or "").startswith("ivo://ivoa.net/std/epntap#table-2.") for t in r.tables
        )
    )
    assert 60 < tap < 150
    assert 20 < obscore < tap / 2
    assert 3 < epntap < obscore
    for kind in ("sia", "sia#query-2.0", "ssa", "tap#aux"):
        assert count(lambda r, k=kind: f"ivo://ivoa.net/std/{k}" in r.standard_ids) > 5
    assert count(lambda r: r.coverage is not None) > len(registry) / 2
    assert count(lambda r: bool(r.spectral)) > 100
    assert count(lambda r: bool(r.temporal)) > 100
    assert count(lambda r: any(a.startswith("doi:") for a in r.alt_identifiers)) > 100
    assert count(lambda r: any(a.startswith("orcid:") for a in r.alt_identifiers)) > 10
    assert (
        count(lambda r: any(rel.relationship_type == "isservedby" for rel in r.relationships)) > 50
    )
    assert count(lambda r: any(i.mirror_urls for c in r.capabilities for i in c.interfaces)) > 2
    assert (
        count(lambda r: any(i.authenticated_only for c in r.capabilities for i in c.interfaces)) > 5
    )
    assert count(lambda r: not r.capabilities) > 10  # organisations and authorities
    urls = [
        u
        for r in registry
        for c in r.capabilities
        for i in c.interfaces
        for u in (i.access_url, *i.mirror_urls)
    ]
    assert all(u.startswith("http://127.") for u in urls)


def test_named_resources_have_their_documented_properties(registry):
    wd = registry[NamedResource.WHITE_DWARF_UV]
    assert wd.short_name == "II/283"
    assert set(wd.wavebands) == {"uv", "optical"}
    assert "white-dwarf-stars" in wd.subjects
    assert wd.creators == ("Aldous, W.", "Brightwell, D.")
    assert {"ivo://ivoa.net/std/conesearch", "ivo://ivoa.net/std/tap#aux"} <= wd.standard_ids
    assert "phot.mag;em.UV.FUV" in wd.ucds
    obscore = registry[NamedResource.OBSCORE_TAP]
    assert obscore.details_of("/capability/dataModel/@ivo-id") == (
        "ivo://ivoa.net/std/obscore#core-1.1",
    )
    assert (
        registry[NamedResource.EPNTAP_SERVICE].tables[0].utype
        == "ivo://ivoa.net/std/epntap#table-2.0"
    )
    mirrored = registry[NamedResource.MIRRORED_SCS].capabilities[0].interfaces[0]
    assert mirrored.access_url.startswith(registry.urls.refused)
    assert mirrored.mirror_urls
    assert (
        registry[NamedResource.AUTHENTICATED_TAP].capabilities[0].interfaces[0].authenticated_only
    )
    aux = registry[NamedResource.AUX_ONLY_COLLECTION]
    assert aux.standard_ids == {"ivo://ivoa.net/std/tap#aux"}
    assert aux.relationships[0].related_id == NamedResource.OBSCORE_TAP
    assert registry[NamedResource.REGISTRY].details_of("/capability/dataModel/@ivo-id") == (
        "ivo://ivoa.net/std/RegTAP#1.1",
    )


def test_rows_fit_the_rr_tables_and_load(registry):
    rows = registry.rows()
    widths = {t.qualified_name: len(t.columns) for t in RR_TABLES}
    for name, table_rows in rows.items():
        assert all(len(row) == widths[name] for row in table_rows), name
    served = (*rr_tables(coverage=False), *tap_schema_tables())
    database = AdqlDatabase(served, {**rows, **tap_schema_rows(served)})
    counted = database.execute("SELECT COUNT(*) FROM rr.resource", maxrec=1).rows
    assert counted == [(len(registry),)]
    with pytest.raises(AdqlError, match=re.escape("unknown table rr.stc_spatial")):
        database.execute("SELECT * FROM rr.stc_spatial", maxrec=1)
    described = database.execute(
        "SELECT column_name, datatype FROM tap_schema.columns WHERE table_name = 'rr.interface'"
        " AND column_name = 'authenticated_only'",
        maxrec=1,
    )
    assert described.rows == [("authenticated_only", "short")]
    database.close()


def test_a_large_registry_builds_quickly():
    started = time.perf_counter()
    build_registry(5000, seed=11)
    assert time.perf_counter() - started < 15  # about 2 s here; generous for a busy CI


def test_registry_urls_must_stay_on_loopback():
    with pytest.raises(UsageError, match="loopback"):
        RegistryUrls(hosts=("http://example.org",))
    with pytest.raises(UsageError, match="negative"):
        build_registry(-1)


def test_registry_profiles_refuse_impossible_settings():
    with pytest.raises(ValueError, match="cannot behave"):
        RegistryProfile(behaviour="drip")
    with pytest.raises(ValueError, match="maxrec_default"):
        RegistryProfile(maxrec_default=10, maxrec_hard=5)


def test_missing_sim_extra_names_the_install_command():
    with pytest.raises(UsageError, match=re.escape("pip install 'vosweep[sim]'")):
        require_sim_extra("vosweep_no_such_module")
