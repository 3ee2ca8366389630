"""EPN-TAP sweep, pure parts: ADQL per table, registry rows to tables, planning, dedupe."""

from __future__ import annotations

from types import SimpleNamespace

import astropy.units as u
import pytest
import sqlglot
from astropy.table import Table
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from vosweep import Service
from vosweep.errors import QueryRejected, UsageError
from vosweep.registry.client import QueryAnswer
from vosweep.result import FanoutResult
from vosweep.sweeps.epntap import (
    EpnTable,
    EpnTapQuery,
    _tables_of,
    find_epncore_tables,
    finish_epntap,
    plan_epntap,
)

HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
).filter(str.strip)
TAP = Service.tap("http://127.0.0.1:9/tap", name="planets")


def test_filters_and_table_name():
    query = EpnTapQuery(
        target_name="Mars",
        target_class=["planet", "satellite"],
        dataproduct_type=["im", "sp"],
        instrument_host_name="Mars Express",
        instrument_name="OMEGA",
        time=(2451545.0, 2451546.5),
        spectral_range=(1e14, 2e14),
        processing_level=[3, 2],
        where="c1min > 10",
        columns=["granule_uid", "access_url"],
    )
    assert query.to_adql("vvex.epn_core") == (
        "SELECT granule_uid, access_url FROM vvex.epn_core WHERE"
        " 1 = ivo_hashlist_has(target_name, 'Mars')"
        " AND (1 = ivo_hashlist_has(target_class, 'planet')"
        " OR 1 = ivo_hashlist_has(target_class, 'satellite'))"
        " AND (1 = ivo_hashlist_has(dataproduct_type, 'im')"
        " OR 1 = ivo_hashlist_has(dataproduct_type, 'sp'))"
        " AND 1 = ivo_hashlist_has(instrument_host_name, 'Mars Express')"
        " AND 1 = ivo_hashlist_has(instrument_name, 'OMEGA')"
        " AND time_min <= 2451546.5 AND time_max >= 2451545.0"
        " AND spectral_range_min <= 200000000000000.0"
        " AND spectral_range_max >= 100000000000000.0"
        " AND processing_level IN (2, 3)"
        " AND (c1min > 10)"
    )


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("planets.epn_core", "planets.epn_core"),
        ("epn_core", "epn_core"),
        ('"J/A+A/1/x".epn_core', '"J/A+A/1/x".epn_core'),
        ("order.epn_core", '"order".epn_core'),
    ],
)
def test_table_names_are_quoted_as_needed(name, reference):
    assert EpnTapQuery().to_adql(name).removeprefix("SELECT * FROM ") == reference


def test_times_are_julian_days_and_wavelengths_become_hertz():
    query = EpnTapQuery(
        time=(Time("2000-01-01T12:00:00", scale="utc"), 2451546),
        spectral_range=(500 * u.nm, 1 * u.um),
    )
    assert query.time == pytest.approx((2451545.0, 2451546.0))
    low, high = query.spectral_range or (0, 0)
    assert low == pytest.approx(299792458 / 1e-6)  # the long wavelength: the low frequency
    assert high == pytest.approx(299792458 / 5e-7)
    open_end = EpnTapQuery(spectral_range=(1 * u.um, None))
    assert open_end.spectral_range == (0.0, pytest.approx(299792458 / 1e-6))
    assert "spectral_range_min" in EpnTapQuery(spectral_range=(None, 5 * u.GHz)).to_adql("t")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"time": (2451546, 2451545)}, "time"),
        ({"spectral_range": (2e14, 1e14)}, "spectral_range"),
        ({"spectral_range": (1 * u.um, 500 * u.nm)}, "spectral_range"),
        ({"spectral_range": (1 * u.kg, 2 * u.kg)}, "spectral_range"),
        ({"spectral_range": (-1, 2)}, "spectral_range"),
        ({"spectral_range": (1, 2, 3)}, "spectral_range"),
        ({"processing_level": True}, "processing_level"),
        ({"target_name": ["Mars", ""]}, "target_name"),
        ({"target_class": "a\nb"}, "target_class"),
        ({"instrument_name": 5}, "instrument_name"),
        ({"where": ""}, "where"),
        ({"maxrec": -5}, "maxrec"),
    ],
)
def test_bad_input_names_the_field(kwargs, named):
    with pytest.raises(UsageError, match=named):
        EpnTapQuery(**kwargs)


@given(HOSTILE, HOSTILE)
def test_hostile_values_never_change_the_query_structure(target, instrument):
    def shape(adql: str) -> tuple[str, list[str]]:
        tree = sqlglot.parse_one(adql)
        values = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
        blanked = tree.transform(
            lambda n: exp.Literal.string("V") if isinstance(n, exp.Literal) and n.is_string else n
        )
        return blanked.sql(), values

    benign = EpnTapQuery(target_name=["a", "b"], instrument_name="c").to_adql("s.epn_core")
    hostile = EpnTapQuery(target_name=[target, "b"], instrument_name=instrument)
    hostile_shape, values = shape(hostile.to_adql("s.epn_core"))
    assert hostile_shape == shape(benign)[0]
    assert target in values
    assert instrument in values


@given(HOSTILE)
def test_hostile_table_names_stay_one_table(name):
    tree = sqlglot.parse_one(EpnTapQuery(target_name="Mars").to_adql(name))
    tables = list(tree.find_all(exp.Table))
    assert len(tables) == 1
    assert tree.find(exp.Where) is not None


def test_plan_one_target_per_table_keyed_by_name():
    tables = [EpnTable(TAP, "a.epn_core"), EpnTable(TAP, "b.epn_core")]
    targets = plan_epntap(tables, EpnTapQuery(target_name="Io", maxrec=3))
    assert [t.key for t in targets] == ["a.epn_core", "b.epn_core"]
    assert [t.query.adql for t in targets] == [  # type: ignore[attr-defined]
        "SELECT * FROM a.epn_core WHERE 1 = ivo_hashlist_has(target_name, 'Io')",
        "SELECT * FROM b.epn_core WHERE 1 = ivo_hashlist_has(target_name, 'Io')",
    ]
    assert {t.query.maxrec for t in targets} == {3}  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="table #0"):
        plan_epntap(["a.epn_core"], EpnTapQuery())  # type: ignore[list-item]


def test_epn_table_validation():
    with pytest.raises(UsageError, match="TAP"):
        EpnTable(Service.scs("http://127.0.0.1:9/scs"), "a.epn_core")
    with pytest.raises(UsageError, match="table name"):
        EpnTable(TAP, " ")
    with pytest.raises(UsageError, match="control"):
        EpnTable(TAP, "a\x01b")


def _row(
    ivoid,
    table,
    url,
    *,
    utype="ivo://ivoa.net/std/epntap#table-2.0",
    std="ivo://ivoa.net/std/tap",
    **extra,
):
    return {
        "ivoid": ivoid,
        "table_name": table,
        "table_utype": utype,
        "standard_id": std,
        "access_url": url,
        "short_name": ivoid.rsplit("/", 1)[-1],
        "res_title": None,
        **extra,
    }


def test_registry_rows_to_tables():
    url = "http://127.0.0.1:9/tap"
    rows = [
        # A collection (tap#aux) and the serving service list one table: the service wins.
        _row("ivo://x/coll", "s.epn_core", url, std="ivo://ivoa.net/std/tap#aux"),
        _row("ivo://x/tap", "S.EPN_CORE", url),
        _row("ivo://x/legacy", "l.epn_core", url, utype="IVO://VOPDC.OBSPM/STD/EPNCORE#SCHEMA-2.0"),
        _row("ivo://x/future", "f.epn_core", url, utype="ivo://ivoa.net/std/epntap#table-2.1"),
        _row("ivo://x/old", "o.epn_core", url, utype="ivo://vopdc.obspm/std/epncore#schema-1.0"),
        _row("ivo://x/obscore", "ivoa.obscore", url, utype="ivo://ivoa.net/std/obscore#table-1.1"),
        _row("ivo://x/auth", "a.epn_core", url, authenticated_only=1),
        _row("ivo://x/broken", "b.epn_core", "not a url"),
        _row("ivo://x/nameless", "", url),
    ]
    found = _tables_of(rows)
    assert [(t.table_name, t.ivoid) for t in found] == [
        ("f.epn_core", "ivo://x/future"),
        ("l.epn_core", "ivo://x/legacy"),
        ("S.EPN_CORE", "ivo://x/tap"),
    ]
    assert all(t.service.access_url == url for t in found)
    assert found[1].utype == "IVO://VOPDC.OBSPM/STD/EPNCORE#SCHEMA-2.0"


def test_finish_drops_granules_seen_before():
    table = Table(
        {
            "service_title": ["a", "a", "b", "a", ""],
            "granule_uid": ["g1", "g1", "g1", "g2", "g1"],
            "access_url": ["u", "u", "u", "u", "u"],
        }
    )
    result = FanoutResult([], table, complete=True, reason=None, elapsed=0.0)
    finished = finish_epntap(result)
    # Same service_title and granule_uid: the one duplicate; shared access URLs are no key.
    assert finished.duplicates_dropped == 1
    assert len(finished.table) == 4
    assert finish_epntap(result, dedupe=False).duplicates_dropped == 0


class _OldRegistry:
    """A RegTAP 1.0 registry without ivo_nocasematch: what find_epncore_tables must cope with."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def features(self) -> object:
        class Features:
            def has_udf(self, name: str) -> bool:
                del name
                return False

        return Features()

    async def query(self, adql: str) -> QueryAnswer:
        self.sent.append(adql)
        if "authenticated_only" in adql:
            raise QueryRejected("Unknown column 'authenticated_only'")
        row = _row("ivo://x/tap", "s.epn_core", "http://127.0.0.1:9/tap")
        return QueryAnswer(
            rows=[row] if "isservedby" not in adql else [], overflow=False, endpoint="x"
        )


@pytest.mark.anyio
async def test_registry_without_udfs_or_regtap_11_columns():
    registry = _OldRegistry()
    engine = SimpleNamespace(registry=registry)
    tables = await find_epncore_tables(engine)  # type: ignore[arg-type]
    assert [(t.table_name, t.ivoid) for t in tables] == [("s.epn_core", "ivo://x/tap")]
    # Two queries, each retried without the RegTAP 1.1 column; utypes matched with LIKE.
    assert len(registry.sent) == 4
    assert all("ivo_nocasematch" not in adql for adql in registry.sent)
    assert all(
        "t.table_utype LIKE 'ivo://vopdc.obspm/std/epncore#schema-2.%'" in a for a in registry.sent
    )
    assert ["authenticated_only" in adql for adql in registry.sent] == [True, False, True, False]
