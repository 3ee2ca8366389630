"""ObsCore and EPN-TAP global sweeps against the simulated VO (loopback only).

Expected rows come from the simulator's data generator (`table_rows`), filtered here in
plain Python, and expected tables from the typed registry records: never from the sweep
code under test.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import vosweep
from vosweep.checkpoint import read_info
from vosweep.services import Protocol, Service
from vosweep.sweeps.epntap import EpnTable, EpnTapQuery, epntap, find_epncore_tables
from vosweep.sweeps.obscore import OBSCORE_COLUMNS, ObsCoreQuery, finish_obscore, obscore
from vosweep.testing import RegistryProfile, ServiceProfile, ServiceSpec, SimulatedVO
from vosweep.testing._profiles import TapProfile, TapTable
from vosweep.testing._tapdata import TABLES, table_rows

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

SEED = 3
ALL = (TapTable.OBSCORE, TapTable.EPNTAP, TapTable.CATALOGUE)
#: Index -> the tables that service holds: 2 has neither ObsCore nor EPN-TAP.
HOLDS = {
    0: ALL,
    1: (TapTable.OBSCORE,),
    2: (TapTable.CATALOGUE,),
    3: (TapTable.EPNTAP, TapTable.CATALOGUE),
    4: ALL,
}
FLEET = [
    ServiceSpec.make(
        i,
        i % 2,
        ServiceProfile(tap=TapProfile(tables=tables, maxrec_hard=100_000)),
        protocol=Protocol.TAP,
        seed=SEED,
    )
    for i, tables in HOLDS.items()
]
EPN_PATTERN = re.compile(
    r"ivo://(ivoa\.net/std/epntap#table-2\.|vopdc\.obspm/std/epncore#schema-2\.)", re.IGNORECASE
)


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim():
    # 2000 generated records: EPN-TAP services and collections, some with the legacy utype.
    async with SimulatedVO(FLEET, registry=RegistryProfile(n_resources=2000)) as sim:
        yield sim


def _engine(sim: SimulatedVO) -> vosweep.Engine:
    registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,))
    return vosweep.Engine(registry=registry, user_agent_purpose="test", deadline=60)


def _rows(table: TapTable, index: int) -> list[dict[str, object]]:
    names = [c.name for c in TABLES[table].columns]
    rows = table_rows(table, seed=SEED, index=index, base_url="http://unused")
    return [dict(zip(names, row, strict=True)) for row in rows]


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _fleet_urls(sim: SimulatedVO, table: TapTable) -> dict[str, int]:
    return {sim.service(i).url: i for i, tables in HOLDS.items() if table in tables}


# -- ObsCore ---------------------------------------------------------------------------------


def _expected_obscore(index: int) -> set[str]:
    """DIDs of service *index*'s rows that the query in `test_discovered_...` selects."""
    return {
        str(r["obs_publisher_did"])
        for r in _rows(TapTable.OBSCORE, index)
        if r["dataproduct_type"] in {"image", "spectrum"}
        and r["calib_level"] in {1, 2}
        and float(r["t_min"]) <= 57000.0  # type: ignore[arg-type]
        and float(r["t_max"]) >= 52000.0  # type: ignore[arg-type]
        and _separation(float(r["s_ra"]), float(r["s_dec"]), 180.0, 0.0) < 60.0  # type: ignore[arg-type]
    }


QUERY = ObsCoreQuery(
    position=(180.0, 0.0, 60.0),
    time=(52000, 57000),
    dataproduct_type=["image", "spectrum"],
    calib_level=[1, 2],
    maxrec=50_000,
)


async def test_discovered_obscore_services_merge_into_the_obscore_schema(sim):
    async with _engine(sim) as engine:
        result = await obscore(engine, QUERY)
    fleet = _fleet_urls(sim, TapTable.OBSCORE)
    asked = {o.service.access_url: o for o in result.outcomes}
    # Every fleet ObsCore service was found and answered; the one without was not asked.
    assert {url: asked[url].status for url in fleet} == dict.fromkeys(fleet, vosweep.Status.OK)
    assert sim.service(2).url not in asked
    # Registered ObsCore services the simulator does not run fail, recorded, not raised
    # (unless their declared coverage misses the query: then they are not asked at all).
    others = [o for url, o in asked.items() if url not in fleet]
    assert any(o.status is vosweep.Status.ERROR for o in others)
    assert all(
        o.status is vosweep.Status.ERROR
        or (o.status is vosweep.Status.SKIPPED and "out of coverage" in (o.message or ""))
        for o in others
    )
    table = result.table
    standard = [c.name for c in OBSCORE_COLUMNS]
    assert table.colnames[: len(standard)] == standard
    assert table.colnames[-3:] == ["service_name", "service_ivoid", "service_url"]
    for url, index in fleet.items():
        mine = table[table["service_url"] == url]
        expected = _expected_obscore(index)
        assert expected
        assert set(mine["obs_publisher_did"]) == expected
        assert len(mine) == len(expected)
    assert result.duplicates_dropped == 0


async def test_declared_coverage_spares_services_that_cannot_hold_matches(sim):
    """The fleet's records declare optical coverage only: a radio band skips them."""
    radio = ObsCoreQuery(band=(0.2, 0.21), maxrec=50_000)
    fleet = _fleet_urls(sim, TapTable.OBSCORE)
    async with _engine(sim) as engine:
        found = await engine.discover(servicetype="tap", datamodel="obscore", keywords=["fleet"])
        spared = await obscore(engine, radio, services=found)
        asked = await obscore(engine, radio, services=found, coverage=False)
    assert {o.service.access_url for o in spared.outcomes} == set(fleet)
    assert all(o.status is vosweep.Status.SKIPPED for o in spared.outcomes)
    assert all("out of coverage" in (o.message or "") for o in spared.outcomes)
    assert len(spared.table) == 0
    assert spared.table.colnames[: len(OBSCORE_COLUMNS)] == [c.name for c in OBSCORE_COLUMNS]
    # Asked anyway, they do hold radio observations (the declared coverage is incomplete).
    assert all(o.status is vosweep.Status.OK for o in asked.outcomes)
    expected = {
        str(r["obs_publisher_did"])
        for index in fleet.values()
        for r in _rows(TapTable.OBSCORE, index)
        if float(r["em_min"]) <= 0.21 and float(r["em_max"]) >= 0.2  # type: ignore[arg-type]
    }
    assert expected
    assert set(asked.table["obs_publisher_did"]) == expected


async def test_a_service_registered_twice_gives_each_record_once(sim):
    first = sim.service(0)
    twin = Service.tap(first.url + "/", name="twin of tap-00000")  # same service, other URL
    services = [Service.tap(sim.service(i).url) for i in (0, 1)] + [twin]
    async with _engine(sim) as engine:
        result = await obscore(engine, QUERY, services=services)
        kept = await obscore(engine, QUERY, services=services, dedupe=False)
    assert [o.status for o in result.outcomes] == [vosweep.Status.OK] * 3
    expected = _expected_obscore(0)
    assert result.duplicates_dropped == len(expected)
    assert "duplicate records dropped" in result.summary()
    dids = list(result.table["obs_publisher_did"])
    assert len(dids) == len(set(dids)) == len(expected) + len(_expected_obscore(1))
    assert len(kept.table) == len(result.table) + len(expected)
    assert kept.duplicates_dropped == 0


async def test_checkpointed_sweep_records_its_kind_and_finishes_alike(sim, tmp_path):
    path = tmp_path / "obscore.sqlite"
    services = [Service.tap(sim.service(i).url) for i in (0, 1)]
    async with _engine(sim) as engine:
        result = await obscore(engine, QUERY, services=services, checkpoint=path)
        resumed = await engine.resume(path)
    info = read_info(path)
    assert info["kind"] == "obscore"
    assert info["adql"] == QUERY.to_adql()
    finished = finish_obscore(resumed, dedupe=info["dedupe"])
    assert finished.table.colnames == result.table.colnames
    assert sorted(finished.table["obs_publisher_did"]) == sorted(result.table["obs_publisher_did"])


async def test_rows_on_disk_are_left_there_and_streamed_out(sim, tmp_path):
    """keep_rows=False: the sweep does not read its rows back to normalise them; the
    stored rows stream to Parquet, the same records as the in-memory sweep's."""
    pq = pytest.importorskip("pyarrow.parquet")
    services = [Service.tap(sim.service(i).url) for i in (0, 1)]
    async with _engine(sim) as engine:
        kept = await obscore(engine, QUERY, services=services)
        on_disk = await obscore(
            engine, QUERY, services=services, checkpoint=tmp_path / "c.sqlite", keep_rows=False
        )
    assert on_disk.duplicates_dropped == 0  # not finished: the rows were never loaded
    on_disk.write(tmp_path / "rows.parquet")
    written = pq.read_table(tmp_path / "rows.parquet")
    dids = written.column("obs_publisher_did").to_pylist()
    assert sorted(set(dids)) == sorted(set(kept.table["obs_publisher_did"].tolist()))
    assert written.num_rows == on_disk.rows


# -- EPN-TAP ---------------------------------------------------------------------------------


def _registered_epn_tables(sim: SimulatedVO) -> set[tuple[str, str]]:
    """(TAP access URL, table name) of every EPN-TAP 2.x table in the registry records."""
    found = set()
    for resource in sim.registry:
        tables = [t for s in resource.schemas for t in s.tables if EPN_PATTERN.match(t.utype or "")]
        for capability in resource.capabilities:
            if (capability.standard_id or "").lower() not in {
                "ivo://ivoa.net/std/tap",
                "ivo://ivoa.net/std/tap#aux",
            }:
                continue
            for interface in capability.interfaces:
                if interface.authenticated_only:
                    continue
                found |= {(interface.access_url, t.name) for t in tables}
    return found


async def test_epncore_tables_are_found_by_both_utypes(sim):
    async with _engine(sim) as engine:
        tables = await find_epncore_tables(engine)
    found = {(t.service.access_url, t.table_name) for t in tables}
    assert found == _registered_epn_tables(sim)
    assert len(found) == len(tables)
    utypes = {t.utype.lower() for t in tables}
    assert "ivo://vopdc.obspm/std/epncore#schema-2.0" in utypes  # the legacy form
    assert "ivo://ivoa.net/std/epntap#table-2.0" in utypes
    fleet = _fleet_urls(sim, TapTable.EPNTAP)
    assert {(url, "planets.epn_core") for url in fleet} <= found
    # The fleet services without an EPN-TAP table are not listed.
    assert not {
        t for t in tables if t.service.access_url in {sim.service(1).url, sim.service(2).url}
    }


def _expected_epn(index: int, product: str, target_class: str) -> set[str]:
    return {
        str(r["granule_uid"])
        for r in _rows(TapTable.EPNTAP, index)
        if product in str(r["dataproduct_type"]).split("#")
        and r["target_class"] == target_class
        and int(r["processing_level"]) >= 3  # type: ignore[call-overload]
    }


async def test_hashlist_filter_really_filters(sim):
    fleet = _fleet_urls(sim, TapTable.EPNTAP)
    query = EpnTapQuery(dataproduct_type="sp", target_class="planet", processing_level=[3, 4, 5])
    async with _engine(sim) as engine:
        tables = [t for t in await find_epncore_tables(engine) if t.service.access_url in fleet]
        assert len(tables) == len(fleet)
        result = await epntap(engine, query, tables=tables)
    assert [o.status for o in result.outcomes] == [vosweep.Status.OK] * len(fleet)
    table = result.table
    products = [str(p) for p in table["dataproduct_type"]]
    assert all("sp" in p.split("#") for p in products)
    assert any("#" in p for p in products)  # hash lists holding "sp" were found
    for url, index in fleet.items():
        mine = table[table["service_url"] == url]
        expected = _expected_epn(index, "sp", "planet")
        assert expected
        assert set(mine["granule_uid"]) == expected
    assert set(table["target_class"]) == {"planet"}


async def test_epn_granules_reached_twice_are_counted_once(sim):
    url = sim.service(0).url
    tables = [
        EpnTable(Service.tap(url), "planets.epn_core"),
        EpnTable(Service.tap(url + "/"), "planets.epn_core"),  # the same table, other URL
    ]
    query = EpnTapQuery(target_name="Mars", time=(2_451_545.0, 2_453_000.0))
    async with _engine(sim) as engine:
        result = await epntap(engine, query, tables=tables)
    expected = {
        str(r["granule_uid"])
        for r in _rows(TapTable.EPNTAP, 0)
        if r["target_name"] == "Mars"
        and float(r["time_min"]) <= 2_453_000.0  # type: ignore[arg-type]
        and float(r["time_max"]) >= 2_451_545.0  # type: ignore[arg-type]
    }
    assert expected
    assert sorted(result.table["granule_uid"]) == sorted(expected)
    assert result.duplicates_dropped == len(expected)
    assert np.all(result.table["target_name"] == "Mars")
