"""ObsCore sweep, pure parts: ADQL building, planning, the ObsCore schema, de-duplication."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import sqlglot
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from vosweep import Cone, Service, TapQuery
from vosweep.errors import UsageError
from vosweep.services import Protocol
from vosweep.sweeps.obscore import (
    OBSCORE_COLUMNS,
    ObsCoreQuery,
    drop_duplicate_records,
    finish_obscore,
    plan_obscore,
    to_obscore_schema,
)
from vosweep.targets import Skipped, Targeted

#: Printable text: what a string literal may carry (control characters are refused).
HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
).filter(str.strip)


def _shape(adql: str) -> tuple[str, list[str]]:
    """The parsed query with every string literal blanked, and the literals' values."""
    tree = sqlglot.parse_one(adql)
    values = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]

    def blank(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and node.is_string:
            return exp.Literal.string("V")
        return node

    return tree.transform(blank).sql(), values


def test_filters_become_one_where_clause():
    query = ObsCoreQuery(
        position=(10.5, -20.25, 0.5),
        time=(50000, 50010.5),
        band=(4e-7, 7e-7),
        dataproduct_type=["image", "cube"],
        calib_level=[2, 3],
        collection="HST",
        where="s_fov < 1",
        columns=["obs_id", "access_url", "size"],
    )
    assert query.to_adql() == (
        'SELECT obs_id, access_url, "size" FROM ivoa.obscore WHERE '
        "1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10.5, -20.25, 0.5))"
        " AND t_min <= 50010.5 AND t_max >= 50000.0"
        " AND em_min <= 7e-07 AND em_max >= 4e-07"
        " AND dataproduct_type IN ('image', 'cube')"
        " AND calib_level IN (2, 3)"
        " AND obs_collection = 'HST'"
        " AND (s_fov < 1)"
    )


def test_no_filter_is_a_full_table_sweep_bounded_by_maxrec():
    query = ObsCoreQuery(maxrec=100)
    assert query.to_adql() == "SELECT * FROM ivoa.obscore"
    tap = query.to_tap()
    assert isinstance(tap, TapQuery)
    assert tap.maxrec == 100
    assert "TOP" not in tap.adql  # MAXREC reports overflow; TOP would cut silently


def test_footprint_match_uses_s_region():
    adql = ObsCoreQuery(position=(1, 2, 3), match="footprint").to_adql()
    assert adql.endswith("WHERE 1 = INTERSECTS(CIRCLE('ICRS', 1.0, 2.0, 3.0), s_region)")


def test_position_forms_agree():
    center = SkyCoord(83.63 * u.deg, 22.01 * u.deg)
    forms = [
        Cone(ra=83.63, dec=22.01, radius=0.1),
        (83.63, 22.01, 0.1),
        (83.63 * u.deg, 22.01 * u.deg, 6 * u.arcmin),
        (center, 6 * u.arcmin),
    ]
    queries = {ObsCoreQuery(position=form).position for form in forms}
    assert len({(round(c.ra, 9), round(c.dec, 9), round(c.radius, 9)) for c in queries}) == 1


def test_open_and_converted_intervals():
    query = ObsCoreQuery(
        time=(Time("2000-01-01T00:00:00", scale="utc"), None), band=(1 * u.GHz, 2 * u.GHz)
    )
    assert query.time is not None
    assert query.time[0] == pytest.approx(51544.0)
    assert query.time[1] == float("inf")
    assert query.band is not None
    # A frequency interval runs the other way in wavelength.
    assert query.band == pytest.approx(((2 * u.GHz).to_value(u.m, u.spectral()), 0.299792458))
    adql = query.to_adql()
    assert "t_max >= 51544.0" in adql
    assert "t_min <=" not in adql  # open end: no condition


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"adql": "SELECT * FROM ivoa.obscore", "collection": "x"}, "collection"),
        ({"adql": "SELECT * FROM ivoa.obscore", "position": (1, 2, 3)}, "position"),
        ({"adql": "  "}, "adql"),
        ({"time": (50010, 50000)}, "time"),
        ({"band": (1 * u.s, 2 * u.s)}, "band"),
        ({"band": (-1, 2)}, "band"),
        ({"position": (1, 2)}, "position"),
        ({"position": (1, 95, 1)}, "dec"),
        ({"position": (1, 2, -1)}, "radius"),
        ({"match": "overlap", "position": (1, 2, 3)}, "match"),
        ({"calib_level": [True]}, "calib_level"),
        ({"calib_level": ["2"]}, "calib_level"),
        ({"collection": [""]}, "collection"),
        ({"collection": "a\x00b"}, "collection"),
        ({"dataproduct_type": 3}, "dataproduct_type"),
        ({"columns": ["ok", "bad\nname"]}, "columns"),
        ({"maxrec": -1}, "maxrec"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_input_names_the_field(kwargs, named):
    with pytest.raises(UsageError, match=named):
        ObsCoreQuery(**kwargs)


@given(HOSTILE, HOSTILE)
def test_hostile_values_never_change_the_query_structure(collection, target):
    benign = ObsCoreQuery(collection="c", dataproduct_type=["d", "e"], position=(1, 2, 3))
    hostile = ObsCoreQuery(
        collection=collection, dataproduct_type=[target, "e"], position=(1, 2, 3)
    )
    benign_shape, _ = _shape(benign.to_adql())
    hostile_shape, values = _shape(hostile.to_adql())
    assert hostile_shape == benign_shape
    assert collection in values
    assert target in values


def test_plan_one_target_per_tap_service():
    services = [Service.tap("http://127.0.0.1:1/tap", name="a"), "http://127.0.0.1:2/tap"]
    query = ObsCoreQuery(collection="X", maxrec=7)
    targets = plan_obscore(services, query)
    assert [t.service.access_url for t in targets] == [
        "http://127.0.0.1:1/tap",
        "http://127.0.0.1:2/tap",
    ]
    assert all(t.service.protocol is Protocol.TAP for t in targets)
    assert all(t.query == query.to_tap() for t in targets)


def test_plan_refuses_other_protocols():
    with pytest.raises(UsageError, match=r"service #1 \(cone\) speaks scs"):
        plan_obscore(
            [
                Service.tap("http://127.0.0.1:1/tap"),
                Service.scs("http://127.0.0.1:1/s", name="cone"),
            ],
            ObsCoreQuery(),
        )


def _service_table() -> Table:
    """What a merged answer may look like: odd case, units, types, extras, provenance."""
    return Table(
        {
            "OBS_ID": ["a", "b"],
            "s_ra": [1.0, 2.0],
            "s_fov": np.array([60.0, 30.0]),  # arcmin, converted to deg
            "calib_level": np.array([2.0, 3.0]),  # floats from a service's odd types
            "t_exptime": np.array([1.0, 2.0]),
            "my_extra": [True, False],
            "service_name": ["s1", "s1"],
            "service_ivoid": ["ivo://x", "ivo://x"],
            "service_url": ["http://h/tap", "http://h/tap"],
        },
        units={"s_fov": u.arcmin, "t_exptime": u.min},
    )


def test_schema_puts_standard_columns_first_with_their_metadata():
    out = to_obscore_schema(_service_table())
    standard = [c.name for c in OBSCORE_COLUMNS]
    assert out.colnames[: len(standard)] == standard
    assert out.colnames[len(standard) :] == [
        "my_extra",
        "service_name",
        "service_ivoid",
        "service_url",
    ]
    for spec in OBSCORE_COLUMNS:
        column = out[spec.name]
        assert column.meta["ucd"] == spec.ucd
        assert column.meta["utype"] == spec.utype
        assert (column.unit is None) == (spec.unit is None)
        if spec.unit is not None:
            assert column.unit == u.Unit(spec.unit)
    assert list(out["obs_id"]) == ["a", "b"]
    assert out["s_fov"].tolist() == pytest.approx([1.0, 0.5])
    assert out["t_exptime"].tolist() == pytest.approx([60.0, 120.0])
    assert out["calib_level"].dtype == np.int32
    assert out["calib_level"].tolist() == [2, 3]
    assert out["access_url"].mask.all()  # missing: fully masked
    assert out["em_min"].mask.all()
    assert out["em_min"].dtype == np.float64


def test_schema_keeps_values_that_do_not_convert():
    table = Table({"calib_level": [1.5, 2.0], "s_ra": np.array([1.0, 2.0])}, units={"s_ra": u.s})
    out = to_obscore_schema(table)
    assert out["calib_level"].tolist() == [1.5, 2.0]  # fractions are not levels: kept
    assert out["s_ra"].tolist() == [1.0, 2.0]  # seconds are no angle: not converted


def test_schema_of_empty_table():
    out = to_obscore_schema(Table())
    assert out.colnames == [c.name for c in OBSCORE_COLUMNS]
    assert len(out) == 0


def _records(dids, urls) -> Table:
    return Table(
        [
            MaskedColumn(
                [d or "" for d in dids], name="obs_publisher_did", mask=[d is None for d in dids]
            ),
            MaskedColumn(
                [x or "" for x in urls], name="access_url", mask=[x is None for x in urls]
            ),
            list(range(len(dids))),
        ],
        names=["obs_publisher_did", "access_url", "row"],
    )


def test_duplicates_by_did_then_access_url():
    table = _records(
        ["d1", "d1", None, None, "", "d2", None, None],
        ["u1", "u9", "u1", "u3", "u3", "u4", None, None],
    )
    out, dropped = drop_duplicate_records(table)
    # row 1: DID d1 seen; row 2: no DID, URL u1 seen (row 0); row 4: empty DID, URL u3 seen;
    # rows 6, 7: nothing to compare: kept.
    assert out["row"].tolist() == [0, 3, 5, 6, 7]
    assert dropped == 3


def test_different_dids_sharing_a_url_are_kept():
    out, dropped = drop_duplicate_records(_records(["d1", "d2"], ["u", "u"]))
    assert dropped == 0
    assert len(out) == 2


def test_dedupe_without_key_columns_keeps_everything():
    table = Table({"x": [1, 1]})
    out, dropped = drop_duplicate_records(table)
    assert dropped == 0
    assert out is table


def test_finish_normalises_and_counts():
    from vosweep.result import FanoutResult  # noqa: PLC0415

    table = _records(["d1", "d1", "d2"], ["u1", "u2", "u3"])
    result = FanoutResult([], table, complete=True, reason=None, elapsed=0.0)
    finished = finish_obscore(result)
    assert finished.duplicates_dropped == 1
    assert finished.table["obs_publisher_did"].tolist() == ["d1", "d2"]
    assert finished.table.colnames[0] == "dataproduct_type"
    kept = finish_obscore(result, dedupe=False)
    assert kept.duplicates_dropped == 0
    assert len(kept.table) == 3


def test_whole_adql_is_sent_as_given():
    adql = "SELECT TOP 5 obs_id FROM ivoa.obscore WHERE calib_level = 3"
    query = ObsCoreQuery(adql, maxrec=5, mode="async")
    assert query.to_adql() == adql
    assert ObsCoreQuery(adql=adql) == ObsCoreQuery(adql)
    with pytest.raises(UsageError, match="adql once"):
        ObsCoreQuery(adql, adql=adql)
    with pytest.raises(UsageError, match="mode"):
        ObsCoreQuery(adql, mode="later")
    assert query.to_tap() == TapQuery(adql, maxrec=5, mode="async")
    assert query.coverage_hint() is None


def test_plan_skips_excluded_resources_with_the_reason():
    services = [
        Service.tap("http://127.0.0.1:1/tap", ivoid="IVO://X/A"),
        Service.tap("http://127.0.0.1:2/tap", ivoid="ivo://x/b"),
        Service.tap("http://127.0.0.1:3/tap"),
    ]
    query = ObsCoreQuery(position=(1, 2, 3))
    assert query.coverage_hint() == (1.0, 2.0, 3.0)
    targets = plan_obscore(services, query, excluded={"ivo://x/a": "out of coverage: sky"})
    assert isinstance(targets[0], Skipped)
    assert targets[0].reason == "out of coverage: sky"
    assert [type(t) for t in targets[1:]] == [Targeted, Targeted]


def test_case_variants_of_a_column_are_joined():
    table = Table(
        [
            MaskedColumn([1.0, 0.0, 3.0], name="s_ra", mask=[False, True, True]),
            MaskedColumn([0.0, 2.0, 0.0], name="S_RA", mask=[True, False, True]),
            MaskedColumn(["a", "", ""], name="obs_id", mask=[False, True, False]),
            MaskedColumn([0, 7, 0], name="OBS_ID", mask=[True, False, True]),
        ]
    )
    out = to_obscore_schema(table)
    assert out["s_ra"].tolist() == [1.0, 2.0, None]
    assert out["obs_id"].tolist() == ["a", "7", ""]
    assert "S_RA" not in out.colnames
    assert "OBS_ID" not in out.colnames


@pytest.mark.anyio
async def test_no_service_gives_an_empty_table_in_the_obscore_schema():
    import vosweep  # noqa: PLC0415
    from vosweep.sweeps.obscore import obscore  # noqa: PLC0415

    async with vosweep.Engine() as engine:
        result = await obscore(engine, ObsCoreQuery(maxrec=1), services=[])
    assert result.outcomes == []
    assert len(result.table) == 0
    assert result.table.colnames == [
        *(c.name for c in OBSCORE_COLUMNS),
        "service_name",
        "service_ivoid",
        "service_url",
    ]
