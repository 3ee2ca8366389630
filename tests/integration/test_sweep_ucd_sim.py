"""UCD sweeps against the simulated VO: registry discovery, UNION/CAST plans, merged units.

The oracle for the merged proper motions is each table asked on its own (a plain
``TapQuery`` naming its columns) and converted by hand with astropy from the unit that
single-table answer declares, independent of the registry's metadata and of the plan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sqlglot", reason="the simulated VO needs the sim extra (sqlglot)")

import vosweep
from vosweep.services import Protocol
from vosweep.sweeps.ucd import (
    SOURCE_TABLE,
    ResultColumn,
    UcdTable,
    find_ucd_tables,
    plan_ucd,
    ucd_sweep,
)
from vosweep.testing import (
    RegistryProfile,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

CAT, VIZ, OBSCORE = TapTable.CATALOGUE, TapTable.VIZIER_PM, TapTable.OBSCORE
VIZ_NAME = "J/A+A/600/A12/table2"
PROFILES = {
    "full": TapProfile(tables=(CAT, VIZ)),
    "no_union": TapProfile(tables=(CAT, VIZ), union=False),
    "no_cast": TapProfile(tables=(VIZ, CAT), cast=False),
    "vizier_only": TapProfile(tables=(VIZ,)),
    "obscore_only": TapProfile(tables=(OBSCORE,)),
}
INDEX = {name: index for index, name in enumerate(PROFILES)}
FLEET = [
    ServiceSpec.make(i, i % 3, ServiceProfile(tap=p), protocol=Protocol.TAP, seed=11)
    for i, p in enumerate(PROFILES.values())
]
SCHEMA = [
    ResultColumn("ra", "pos.eq.ra", "deg"),
    ResultColumn("dec", "pos.eq.dec", "deg"),
    ResultColumn("pmra", "pos.pm;pos.eq.ra", "mas/yr"),
    ResultColumn("pmdec", "pos.pm;pos.eq.dec", "mas/yr"),
]
#: The columns of each simulated table, as a direct query names them.
DIRECT = {
    "cat.sources": ("ra", "dec", "pmra", "pmdec"),
    VIZ_NAME: ('"RAJ2000"', '"DEJ2000"', '"pmRA"', '"pmDE"'),
}
REGION = vosweep.Cone(ra=40.0, dec=-10.0, radius=25.0)


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    async with SimulatedVO(FLEET, registry=RegistryProfile(n_resources=50, seed=11)) as sim:
        yield sim


def engine(sim: SimulatedVO) -> vosweep.Engine:
    registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,))
    return vosweep.Engine(registry=registry, user_agent_purpose="test")


def url(sim: SimulatedVO, name: str) -> str:
    return sim.service(INDEX[name]).url


def fleet_tables(sim: SimulatedVO, tables: list[UcdTable]) -> list[UcdTable]:
    urls = {sim.service(i).url for i in range(len(FLEET))}
    return [t for t in tables if t.service.access_url in urls]


async def direct_rows(
    e: vosweep.Engine, sim: SimulatedVO, name: str, table: str
) -> list[tuple[float, ...]]:
    """The table's rows in the region, asked alone, converted to the schema by hand."""
    ra, dec, pmra, pmdec = DIRECT[table]
    from_ = '"J/A+A/600/A12/table2"' if table == VIZ_NAME else table
    circle = f"CIRCLE('ICRS', {REGION.ra}, {REGION.dec}, {REGION.radius})"
    where = f"1 = CONTAINS(POINT('ICRS', {ra}, {dec}), {circle})"
    adql = f"SELECT {ra}, {dec}, {pmra}, {pmdec} FROM {from_} WHERE {where}"  # noqa: S608
    result = await e.fanout([sim.service(INDEX[name]).target()], vosweep.TapQuery(adql))
    assert result.outcomes[0].status is vosweep.Status.OK, result.summary()
    answer = result.table
    names = answer.colnames[:4]
    converted = []
    for column, wanted in zip(names, SCHEMA, strict=True):
        unit = answer[column].unit
        assert unit is not None  # a single-table answer declares its own units
        converted.append((np.asarray(answer[column], float) * unit).to_value(wanted.unit))
    return sorted(zip(*(c.tolist() for c in converted), strict=True))


def merged_rows(table: Any, service_url: str, source: str) -> list[tuple[float, ...]]:
    rows = (table["service_url"] == service_url) & (table[SOURCE_TABLE] == source)
    columns = [np.asarray(table[c.name][rows], float).tolist() for c in SCHEMA]
    return sorted(zip(*columns, strict=True))


def assert_rows_close(got: list[tuple[float, ...]], expected: list[tuple[float, ...]]) -> None:
    assert len(got) == len(expected)
    assert len(got) > 0
    # float32 columns (VizieR-like) come back CAST to double or as floats.
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-6, atol=1e-9)


async def test_registry_finds_every_table_with_the_ucds(sim: SimulatedVO):
    async with engine(sim) as e:
        found = await find_ucd_tables(e, SCHEMA, region=REGION)
    mine = {(t.service.access_url, t.table) for t in fleet_tables(sim, found)}
    assert mine == {
        (url(sim, "full"), "cat.sources"),
        (url(sim, "full"), VIZ_NAME),
        (url(sim, "no_union"), "cat.sources"),
        (url(sim, "no_union"), VIZ_NAME),
        (url(sim, "no_cast"), "cat.sources"),
        (url(sim, "no_cast"), VIZ_NAME),
        (url(sim, "vizier_only"), VIZ_NAME),
    }
    viz = next(t for t in found if t.table == VIZ_NAME)
    # RAB1950 comes first in the table but is not meta.main: RAJ2000 is picked.
    assert {k: (c.name, c.unit) for k, c in viz.columns.items() if c} == {
        "ra": ("RAJ2000", "deg"),
        "dec": ("DEJ2000", "deg"),
        "pmra": ("pmRA", "arcsec/yr"),
        "pmdec": ("pmDE", "arcsec/yr"),
    }
    assert viz.service.ivoid is not None


async def test_plans_follow_each_services_capabilities(sim: SimulatedVO):
    async with engine(sim) as e:
        tables = fleet_tables(sim, await find_ucd_tables(e, SCHEMA))
        urls = {t.service.access_url for t in tables}
        capabilities = {u: await e.capabilities(u) for u in urls}
    targets = plan_ucd(tables, SCHEMA, region=REGION, capabilities=capabilities)
    by_url: dict[str, list[str]] = {}
    for target in targets:
        by_url.setdefault(target.service.access_url, []).append(target.query.adql)  # type: ignore[attr-defined]
    [full] = by_url[url(sim, "full")]
    assert "UNION ALL" in full
    assert "CAST(" in full
    assert len(by_url[url(sim, "no_union")]) == 2
    assert not any("UNION" in q for q in by_url[url(sim, "no_union")])
    [no_cast] = by_url[url(sim, "no_cast")]
    assert "UNION ALL" in no_cast
    assert "CAST" not in no_cast
    assert '"J/A+A/600/A12/table2"' in full


async def test_sweep_merges_proper_motions_in_the_schema_units(sim: SimulatedVO):
    async with engine(sim) as e:
        tables = fleet_tables(sim, await find_ucd_tables(e, SCHEMA, region=REGION))
        result = await ucd_sweep(e, SCHEMA, region=REGION, tables=tables)
        expected = {
            (name, table): await direct_rows(e, sim, name, table)
            for name in ("full", "no_union", "no_cast", "vizier_only")
            for table in DIRECT
            if (url(sim, name), table) in {(t.service.access_url, t.table) for t in tables}
        }
    assert result.complete
    assert [o.status for o in result.outcomes] == [vosweep.Status.OK] * 5  # 1+2+1+1 queries
    table = result.table
    assert table.colnames == [
        "ra",
        "dec",
        "pmra",
        "pmdec",
        SOURCE_TABLE,
        "service_name",
        "service_ivoid",
        "service_url",
    ]
    assert [str(table[c.name].unit) for c in SCHEMA] == ["deg", "deg", "mas / yr", "mas / yr"]
    assert [table[c.name].meta["ucd"] for c in SCHEMA] == [c.ucd for c in SCHEMA]
    assert all(table[c.name].dtype == np.float64 for c in SCHEMA)
    assert len(expected) == 7
    for (name, source), rows in expected.items():
        assert_rows_close(merged_rows(table, url(sim, name), source), rows)
    assert len(table) == sum(len(rows) for rows in expected.values())
    viz = table[table[SOURCE_TABLE] == VIZ_NAME]
    # arcsec/yr became mas/yr: VizieR-like values (sigma 0.02 arcsec/yr) are now tens.
    assert np.nanstd(np.asarray(viz["pmra"], float)) > 5


async def test_whole_sweep_with_discovery_reports_broken_registry_entries(sim: SimulatedVO):
    seen: list[str] = []
    async with engine(sim) as e:
        result = await ucd_sweep(
            e, SCHEMA, region=REGION, on_part=lambda part: seen.append(part.outcome.service.label)
        )
    assert len(seen) == len(result.outcomes)
    ok = [o for o in result.outcomes if o.status is vosweep.Status.OK]
    assert {o.service.access_url for o in ok} >= {
        url(sim, n) for n in ("full", "no_union", "no_cast", "vizier_only")
    }
    # Rows come only from services that answered; failures stay in the outcomes.
    assert set(result.table["service_url"].tolist()) <= {o.service.access_url for o in ok}
    assert len(result.table) > 0


async def test_unconvertible_unit_drops_that_tables_rows(sim: SimulatedVO):
    schema = [*SCHEMA[:3], ResultColumn("pmdec", "pos.pm;pos.eq.dec", "km")]
    async with engine(sim) as e:
        tables = fleet_tables(sim, await find_ucd_tables(e, schema, region=REGION))
        tables = [t for t in tables if t.service.access_url == url(sim, "full")]
        result = await ucd_sweep(e, schema, region=REGION, tables=tables)
    assert len(result.table) == 0
    dropped = result.table.meta["vosweep_ucd_dropped"]
    assert len(dropped) == 2
    assert all("cannot be converted to 'km'" in why for why in dropped.values())
    assert [o.status for o in result.outcomes] == [vosweep.Status.OK]


async def test_bad_input_fails_before_anything_is_sent(sim: SimulatedVO):
    sim.reset_stats()
    async with engine(sim) as e:
        with pytest.raises(vosweep.UsageError, match="region"):
            await ucd_sweep(e, SCHEMA, region="M31")  # type: ignore[arg-type]
        with pytest.raises(vosweep.UsageError, match="unit"):
            await ucd_sweep(e, [ResultColumn("pm", "pos.pm", "parsecs per fortnight!")])
    assert sim.stats().requests == 0


async def test_no_tables_gives_the_empty_schema(sim: SimulatedVO):
    async with engine(sim) as e:
        result = await ucd_sweep(e, SCHEMA, tables=[])
    assert result.outcomes == []
    assert len(result.table) == 0
    assert result.table.colnames[:5] == ["ra", "dec", "pmra", "pmdec", SOURCE_TABLE]


async def test_a_service_without_geometry_gets_a_box_then_the_exact_cone():
    """No geometry functions: the box is asked for, the merge cuts to the cone; the rows
    equal the table's rows within the cone by astropy's separation (independent oracle)."""
    from astropy import units as u  # noqa: PLC0415
    from astropy.coordinates import SkyCoord  # noqa: PLC0415

    spec = ServiceSpec.make(
        0,
        0,
        ServiceProfile(tap=TapProfile(tables=(CAT,), geometry=False)),
        protocol=Protocol.TAP,
        seed=11,
    )
    region = vosweep.Cone(ra=5.0, dec=30.0, radius=20.0)  # its box crosses RA 0
    async with (
        SimulatedVO([spec], registry=RegistryProfile(n_resources=10, seed=11)) as small,
        engine(small) as e,
    ):
        tables = [
            t
            for t in await find_ucd_tables(e, SCHEMA)
            if t.service.access_url == small.service(0).url
        ]
        result = await ucd_sweep(e, SCHEMA, region=region, tables=tables)
        everything = await e.fanout(
            [small.service(0).target()],
            vosweep.TapQuery("SELECT ra, dec, pmra, pmdec FROM cat.sources", maxrec=100_000),
        )
    assert [o.status for o in result.outcomes] == [vosweep.Status.OK]
    rows = everything.table
    where = (
        SkyCoord(rows["ra"], rows["dec"], unit="deg").separation(
            SkyCoord(region.ra * u.deg, region.dec * u.deg)
        )
        <= region.radius * u.deg
    )
    expected = sorted(np.asarray(rows["pmra"][where], float).tolist())
    got = sorted(np.asarray(result.table["pmra"], float).tolist())
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert result.table.meta.get("vosweep_ucd_outside_region", 0) > 0  # the box's corners
