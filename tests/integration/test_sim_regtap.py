"""The simulated RegTAP registry over real loopback HTTP, with pyvo as an independent oracle.

pyvo is synchronous: it runs in a worker thread while the simulator serves in the event
loop. Every expected answer is computed from the typed records (``sim.registry``) in
Python, never from SQL.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import pytest
from astropy import constants
from astropy import units as u
from astropy.io.votable import parse

SIM_EXTRA = "the simulated registry needs the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pytest.importorskip("cdshealpix", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")

from pyvo import registry as pyvo_registry  # noqa: E402
from pyvo.dal import DALQueryError  # noqa: E402
from pyvo.io import vosi  # noqa: E402
from pyvo.registry import rtcons  # noqa: E402

import vosweep  # noqa: E402
from vosweep.errors import UsageError  # noqa: E402
from vosweep.testing import (  # noqa: E402
    NamedResource,
    RegistryProfile,
    SimProcess,
    SimulatedVO,
    build_fleet,
    expected_rows,
)
from vosweep.testing._adql import (  # noqa: E402
    geometry_moc,
    hasword,
    interval_overlaps,
    moc_contains,
    moc_intersects,
    nocasematch,
    parse_moc,
)
from vosweep.testing._registry import RR_TABLES  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from vosweep.testing import SyntheticRegistry
    from vosweep.testing._registry import Resource

#: The IVOA messenger vocabulary's terms, so that pyvo's Waveband never downloads it.
MESSENGERS = frozenset(
    {"radio", "millimeter", "infrared", "optical", "uv", "euv", "x-ray", "gamma-ray", "photon"}
)
CONE = {"RA": "10.0", "DEC": "20.0", "SR": "0.1"}


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    """One VO with a registry and differently-featured alternate endpoints (same records)."""
    fleet = build_fleet(12, 3, seed=5)
    alternates = [
        RegistryProfile(union=False),
        RegistryProfile(union=False, reject_or_freetext=True),
        RegistryProfile(geometry=False, coverage_tables=False),
        RegistryProfile(query_timeout=0.5, maxrec_default=5, maxrec_hard=20),
    ]
    profile = RegistryProfile(n_resources=800, seed=2)
    async with SimulatedVO(fleet, registry=profile, registry_mirrors=alternates) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _offline_vocabularies(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyvo fetches vocabularies from ivoa.net: give it the terms instead."""
    monkeypatch.setattr(rtcons.Waveband, "_legal_terms", set(MESSENGERS))


@contextmanager
def registry_endpoint(url: str) -> Iterator[None]:
    """Point pyvo's registry functions at *url*, and back afterwards."""
    previous = pyvo_registry.regtap.get_RegTAP_service_url()
    pyvo_registry.choose_RegTAP_service(url)
    try:
        yield
    finally:
        pyvo_registry.choose_RegTAP_service(previous)


async def pyvo_search(url: str, *constraints: Any, **keywords: Any) -> set[str]:
    """The ivoids pyvo's ``registry.search`` finds on the endpoint at *url*."""

    def search() -> set[str]:
        with registry_endpoint(url):
            return {r.ivoid for r in pyvo_registry.search(*constraints, **keywords)}

    return await anyio.to_thread.run_sync(search)


async def in_thread(url: str, function: Callable[[], Any]) -> Any:
    def call() -> Any:
        with registry_endpoint(url):
            return function()

    return await anyio.to_thread.run_sync(call)


async def fetch(
    url: str, *, params: dict[str, str] | None = None, data: dict[str, str] | None = None
) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as session:
        method = session.post if data is not None else session.get
        async with method(url, params=params, data=data) as response:
            return response.status, await response.read(), response.headers


def query_status(body: bytes) -> tuple[str, str]:
    """The last QUERY_STATUS of a VOTable (value, message)."""
    infos = re.findall(
        r'<INFO name="QUERY_STATUS" value="(\w+)"(?:/>|>(.*?)</INFO>)', body.decode()
    )
    return infos[-1]


# -- expected answers, from the typed records ---------------------------------------------


def like(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    regex = "".join({"%": ".*", "_": "."}.get(c, re.escape(c)) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def with_standard(registry: SyntheticRegistry, *patterns: str) -> set[str]:
    return registry.ivoids(lambda r: any(like(p, s) for p in patterns for s in r.standard_ids))


def mentions(resource: Resource, word: str) -> bool:
    """What pyvo's freetext asks: a word of the title or description, or in a subject."""
    return bool(
        hasword(resource.description, word)
        or hasword(resource.title, word)
        or any(nocasematch(s, f"%{word}%") for s in resource.subjects)
    )


def covers(moc: str | None, region: str) -> bool:
    inner, outer = parse_moc(region), parse_moc(moc) if moc else ()
    return all(any(lo <= a and b <= hi for lo, hi in outer) for a, b in inner)


def joule(quantity: u.Quantity) -> float:
    return float(quantity.to(u.J, equivalencies=u.spectral()).value)


# -- VOSI ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_capabilities_parse_with_pyvos_vosi_parser(sim: SimulatedVO) -> None:
    status, body, headers = await fetch(sim.registry_url + "/capabilities")
    assert status == 200
    assert headers["Content-Type"].startswith("text/xml")
    capabilities = vosi.parse_capabilities(io.BytesIO(body))
    tap = next(c for c in capabilities if c.standardid == "ivo://ivoa.net/std/TAP")
    assert tap.interfaces[0].accessurls[0].content == sim.registry_url
    assert [m.content for m in tap.interfaces[0].mirrorurls] == list(sim.registry_urls[1:])
    assert [m.ivo_id for m in tap.datamodels] == ["ivo://ivoa.net/std/RegTAP#1.1"]
    adql = tap.get_adql()
    assert adql.get_feature("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION")
    assert adql.get_feature("ivo://org.gavo.dc/std/exts#extra-adql-keywords", "MOC")
    assert adql.get_feature("ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CONTAINS")
    udfs = [f.form for f in adql.get_feature_list("ivo://ivoa.net/std/TAPRegExt#features-udf")]
    for name in ("ivo_hasword", "ivo_nocasematch", "ivo_hashlist_has", "ivo_string_agg"):
        assert any(form.startswith(f"{name}(") for form in udfs)
    assert tap.outputlimit.default.content == 10_000
    assert {c.standardid for c in capabilities} >= {
        "ivo://ivoa.net/std/VOSI#capabilities",
        "ivo://ivoa.net/std/VOSI#availability",
        "ivo://ivoa.net/std/VOSI#tables",
    }


@pytest.mark.anyio
async def test_optional_features_are_advertised_only_where_present(sim: SimulatedVO) -> None:
    no_union, _, limited, *_ = sim.registry_urls[1:]
    _, body, _ = await fetch(no_union + "/capabilities")
    adql = vosi.parse_capabilities(io.BytesIO(body))[0].get_adql()
    assert adql.get_feature("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION") is None
    _, body, _ = await fetch(limited + "/capabilities")
    adql = vosi.parse_capabilities(io.BytesIO(body))[0].get_adql()
    assert adql.get_feature("ivo://org.gavo.dc/std/exts#extra-adql-keywords", "MOC") is None
    assert adql.get_feature("ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "POINT") is None
    _, body, _ = await fetch(limited + "/tables")
    names = [t.name for t in vosi.parse_tables(io.BytesIO(body)).iter_tables()]
    assert "rr.resource" in names
    assert "rr.stc_spatial" not in names


@pytest.mark.anyio
async def test_vosi_tables_give_the_rr_schema_with_its_datatypes(sim: SimulatedVO) -> None:
    status, body, _ = await fetch(sim.registry_url + "/tables")
    assert status == 200
    tables = {t.name: t for t in vosi.parse_tables(io.BytesIO(body)).iter_tables()}
    for expected in RR_TABLES:
        served = tables[expected.qualified_name]
        types = {c.name: (c.datatype.content, c.datatype.arraysize) for c in served.columns}
        # pyvo reads a missing arraysize as "1" (a scalar).
        assert types == {c.name: (c.datatype, c.arraysize or "1") for c in expected.columns}
    assert {"tap_schema.tables", "tap_schema.columns"} <= set(tables)
    _, body, _ = await fetch(sim.registry_url + "/tables", params={"detail": "min"})
    brief = list(vosi.parse_tables(io.BytesIO(body)).iter_tables())
    assert len(brief) == len(tables)
    assert all(not t.columns for t in brief)
    status, body, _ = await fetch(sim.registry_url + "/tables/rr.interface")
    single = vosi.parse_tables(io.BytesIO(body)).get_first_table()
    assert (status, single.name) == (200, "rr.interface")
    assert "mirror_url" in [c.name for c in single.columns]
    status, _, _ = await fetch(sim.registry_url + "/tables/rr.nothing")
    assert status == 404


@pytest.mark.anyio
async def test_availability(sim: SimulatedVO) -> None:
    status, body, _ = await fetch(sim.registry_url + "/availability")
    assert status == 200
    assert vosi.parse_availability(io.BytesIO(body)).available


@pytest.mark.anyio
async def test_pyvo_tap_service_sees_the_coverage_tables(sim: SimulatedVO) -> None:
    def inspect() -> tuple[bool, int]:
        service = pyvo.dal.TAPService(sim.registry_url)
        return "rr.stc_spatial" in service.tables, service.hardlimit

    assert await anyio.to_thread.run_sync(inspect) == (True, 100_000)


# -- sync queries -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sync_queries_with_case_insensitive_parameters(sim: SimulatedVO, method: str) -> None:
    params = {
        "request": "doQuery",
        "Lang": "ADQL-2.1",
        "responseformat": "votable",
        "query": "SELECT * FROM rr.interface WHERE ivoid = 'ivo://sim.vosweep.test/viz/ii/283'",
    }
    sync = sim.registry_url + "/sync"
    status, body, headers = await (
        fetch(sync, data=params) if method == "POST" else fetch(sync, params=params)
    )
    assert status == 200
    assert headers["Content-Type"] == "application/x-votable+xml"
    assert query_status(body)[0] == "OK"
    table = parse(io.BytesIO(body)).get_first_table()
    interface = next(t for t in RR_TABLES if t.name == "interface")
    assert [(f.name, f.datatype) for f in table.fields] == [
        (c.name, c.datatype) for c in interface.columns
    ]
    expected = sim.registry[NamedResource.WHITE_DWARF_UV].access_urls
    assert sorted(table.array["access_url"]) == sorted(expected)


@pytest.mark.anyio
async def test_results_keep_types_nulls_and_unicode(sim: SimulatedVO) -> None:
    query = (
        "SELECT TOP 50 r.ivoid, region_of_regard, created, role_name, COUNT(*) AS n"
        " FROM rr.resource AS r NATURAL JOIN rr.res_role"
        " WHERE base_role = 'creator' GROUP BY r.ivoid, region_of_regard, created, role_name"
    )
    _, body, _ = await fetch(sim.registry_url + "/sync", params={"QUERY": query})
    table = parse(io.BytesIO(body)).get_first_table()
    assert [f.datatype for f in table.fields] == ["char", "float", "char", "unicodeChar", "long"]
    assert table.get_field_by_id_or_name("created").xtype == "timestamp"
    assert len(table.array) == 50
    assert table.array["region_of_regard"].mask.any()  # NULLs arrive as masked values


@pytest.mark.anyio
async def test_maxrec_truncates_with_overflow(sim: SimulatedVO) -> None:
    sync = sim.registry_url + "/sync"
    query = {"QUERY": "SELECT ivoid FROM rr.resource"}
    status, body, _ = await fetch(sync, params={**query, "MAXREC": "7"})
    assert (status, query_status(body)[0]) == (200, "OVERFLOW")
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 7
    _, body, _ = await fetch(sync, params={"QUERY": "SELECT TOP 7 ivoid FROM rr.resource"})
    assert query_status(body)[0] == "OK"
    _, body, _ = await fetch(sync, params={**query, "MAXREC": "0"})
    assert query_status(body)[0] == "OVERFLOW"
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 0
    limited = sim.registry_urls[4] + "/sync"  # default 5, hard 20
    _, body, _ = await fetch(limited, params=query)
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 5
    _, body, _ = await fetch(limited, params={**query, "MAXREC": "1000"})
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 20


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"QUERY": "SELECT ivoid FRM rr.resource"}, "Could not parse"),
        ({"QUERY": "SELECT ivoid FROM rr.nowhere"}, "unknown table rr.nowhere"),
        ({"QUERY": "SELECT nope FROM rr.resource"}, "unknown column nope"),
        ({"QUERY": "SELECT gavo_specconv(1, 'J') FROM rr.resource"}, "unknown function"),
        ({"QUERY": "DELETE FROM rr.resource"}, "only SELECT"),
        ({"QUERY": "SELECT 1", "LANG": "PQL"}, "unsupported LANG"),
        ({"QUERY": "SELECT 1", "REQUEST": "getCapabilities"}, "unsupported REQUEST"),
        ({"QUERY": "SELECT 1", "RESPONSEFORMAT": "text/csv"}, "unsupported RESPONSEFORMAT"),
        ({"QUERY": "SELECT 1", "MAXREC": "-3"}, "MAXREC"),
        ({"QUERY": "SELECT 1", "UPLOAD": "t,http://127.0.0.1/x"}, "UPLOAD"),
        ({"REQUEST": "doQuery"}, "missing QUERY"),
    ],
)
async def test_errors_are_tap_error_documents_with_400(
    sim: SimulatedVO, params: dict[str, str], message: str
) -> None:
    status, body, headers = await fetch(sim.registry_url + "/sync", params=params)
    assert status == 400
    assert headers["Content-Type"] == "application/x-votable+xml"
    value, text = query_status(body)
    assert value == "ERROR"
    assert message in text


@pytest.mark.anyio
async def test_a_hostile_query_is_stopped_and_the_registry_keeps_answering(
    sim: SimulatedVO,
) -> None:
    sync = sim.registry_urls[4] + "/sync"  # query_timeout=0.5
    joins = ", ".join(f"rr.table_column AS c{k}" for k in range(6))
    started = time.monotonic()
    status, body, _ = await fetch(sync, params={"QUERY": f"SELECT COUNT(*) FROM {joins}"})  # noqa: S608
    assert (status, query_status(body)[0]) == (400, "ERROR")
    assert "time limit" in query_status(body)[1]
    assert time.monotonic() - started < 10
    status, body, _ = await fetch(sync, params={"QUERY": "SELECT COUNT(*) FROM rr.resource"})
    assert (status, query_status(body)[0]) == (200, "OK")


@pytest.mark.anyio
async def test_other_paths_answer_404_and_tap_schema_is_there(sim: SimulatedVO) -> None:
    base = sim.registry_url.removesuffix("/tap")
    assert (await fetch(base + "/reg/anything"))[0] == 404
    assert (await fetch(sim.registry_url + "/async"))[0] == 404
    query = "SELECT table_name FROM tap_schema.tables WHERE schema_name = 'rr'"
    _, body, _ = await fetch(sim.registry_url + "/sync", params={"QUERY": query})
    names = set(parse(io.BytesIO(body)).get_first_table().array["table_name"])
    assert names == {t.qualified_name for t in RR_TABLES}


@pytest.mark.anyio
async def test_stats_count_queries_and_reset(sim: SimulatedVO) -> None:
    sim.reset_stats()
    await fetch(sim.registry_url + "/sync", params={"QUERY": "SELECT TOP 1 ivoid FROM rr.resource"})
    stats = sim.registry_stats()[0]
    assert (stats.url, stats.queries, stats.requests) == (sim.registry_url, 1, 1)
    assert stats.recent_queries == ("SELECT TOP 1 ivoid FROM rr.resource",)
    sim.reset_stats()
    assert sim.registry_stats()[0].requests == 0
    assert sim.manifest().registry_urls == sim.registry_urls


# -- pyvo as the oracle -------------------------------------------------------------------


@pytest.mark.anyio
async def test_pyvo_servicetypes(sim: SimulatedVO) -> None:
    url, registry = sim.registry_url, sim.registry
    std = "ivo://ivoa.net/std/"
    assert await pyvo_search(url, servicetype="scs") == with_standard(registry, f"{std}conesearch")
    assert await pyvo_search(url, servicetype="tap") == with_standard(registry, f"{std}tap")
    with_aux = with_standard(registry, f"{std}tap", f"{std}tap#aux")
    assert await pyvo_search(url, servicetype="tap", includeaux=True) == with_aux
    assert NamedResource.AUX_ONLY_COLLECTION in with_aux
    assert NamedResource.AUX_ONLY_COLLECTION not in with_standard(registry, f"{std}tap")
    assert await pyvo_search(url, servicetype="sia2") == with_standard(
        registry, f"{std}sia#query-2.%"
    )
    expected = with_standard(registry, f"{std}sia", f"{std}ssa")
    assert await pyvo_search(url, servicetype=["sia", "ssa"]) == expected


@pytest.mark.anyio
async def test_pyvo_keywords_wavebands_authors_and_ucds(sim: SimulatedVO) -> None:
    url, registry = sim.registry_url, sim.registry
    found = await pyvo_search(url, keywords=["white dwarf"])
    assert found == registry.ivoids(lambda r: mentions(r, "white dwarf"))
    assert NamedResource.WHITE_DWARF_UV in found
    found = await pyvo_search(url, keywords=["quasars", "x-ray"])
    assert found == registry.ivoids(lambda r: mentions(r, "quasars") and mentions(r, "x-ray"))
    assert await pyvo_search(url, waveband="UV") == registry.ivoids(lambda r: "uv" in r.wavebands)
    expected = registry.ivoids(lambda r: "radio" in r.wavebands or "gamma-ray" in r.wavebands)
    assert await pyvo_search(url, waveband=["radio", "gamma-ray"]) == expected
    found = await pyvo_search(url, author="%ldous%")
    assert found == registry.ivoids(lambda r: any(like("%ldous%", c) for c in r.creators))
    assert found == {NamedResource.WHITE_DWARF_UV}
    assert await pyvo_search(url, author="Ibáñez%") == registry.ivoids(
        lambda r: any(like("Ibáñez%", c) for c in r.creators)
    )
    for pattern in ("src.redshift", "phot.mag;em.UV%", "pos.pm%"):
        found = await pyvo_search(url, ucd=pattern)
        assert found == registry.ivoids(lambda r, p=pattern: any(like(p, c) for c in r.ucds))
        assert found


@pytest.mark.anyio
async def test_pyvo_datamodels_and_ivoids(sim: SimulatedVO) -> None:
    url, registry = sim.registry_url, sim.registry
    xpath = "/capability/dataModel/@ivo-id"

    def model(pattern: str) -> set[str]:
        return registry.ivoids(lambda r: any(nocasematch(v, pattern) for v in r.details_of(xpath)))

    obscore = await pyvo_search(url, datamodel="obscore")
    assert obscore == model("ivo://ivoa.net/std/obscore%")
    assert NamedResource.OBSCORE_TAP in obscore
    epntap = await pyvo_search(url, datamodel="epntap")
    patterns = ("ivo://ivoa.net/std/epntap#table-2.%", "ivo://vopdc.obspm/std/epncore#schema-2.%")
    assert epntap == registry.ivoids(
        lambda r: any(like(p, t.utype) for p in patterns for t in r.tables)
    )
    assert NamedResource.EPNTAP_SERVICE in epntap
    assert await pyvo_search(url, datamodel="regtap") == {
        NamedResource.REGISTRY,
        *(f"{NamedResource.REGISTRY}/alt-{k}" for k in range(1, len(sim.registry_urls))),
    }
    assert await pyvo_search(url, ivoid=NamedResource.MIRRORED_SCS.upper()) == {
        NamedResource.MIRRORED_SCS
    }
    fleet = {s.spec.ivoid for s in sim.services}
    assert await pyvo_search(url, pyvo_registry.Ivoid(*fleet)) == fleet


@pytest.mark.anyio
async def test_pyvo_spatial_constraints(sim: SimulatedVO) -> None:
    url, registry = sim.registry_url, sim.registry
    for ra, dec in ((10.0, 20.0), (250.5, -61.25), (0.0, 90.0)):
        found = await pyvo_search(url, spatial=(ra, dec))
        assert found == registry.ivoids(
            lambda r, ra=ra, dec=dec: r.coverage is not None and moc_contains(r.coverage, ra, dec)
        )
    circle = geometry_moc("120.0 -30.0 4.0", 6)
    for intersect, test in (
        ("covers", lambda r: covers(r.coverage, circle)),
        ("enclosed", lambda r: r.coverage is not None and covers(circle, r.coverage)),
        ("overlaps", lambda r: r.coverage is not None and moc_intersects(r.coverage, circle)),
    ):
        constraint = pyvo_registry.Spatial((120.0, -30.0, 4.0), intersect=intersect)
        assert await pyvo_search(url, constraint) == registry.ivoids(test), intersect
    polygon = [23.0, -40.0, 26.0, -39.0, 25.0, -43.0]
    area = geometry_moc(" ".join(map(str, polygon)), 6)
    assert await pyvo_search(url, spatial=polygon) == registry.ivoids(
        lambda r: covers(r.coverage, area)
    )
    assert await pyvo_search(url, spatial="0/1-3 3/") == registry.ivoids(
        lambda r: covers(r.coverage, "0/1-3")
    )
    inclusive = pyvo_registry.Spatial((10.0, 20.0), inclusive=True)
    assert await pyvo_search(url, inclusive) == registry.ivoids(
        lambda r: r.coverage is not None and moc_contains(r.coverage, 10.0, 20.0)
    )


@pytest.mark.anyio
async def test_pyvo_spectral_and_temporal_constraints(sim: SimulatedVO) -> None:
    url, registry = sim.registry_url, sim.registry
    energy = joule(5000 * u.Angstrom)
    assert await pyvo_search(url, spectral=5000 * u.Angstrom) == registry.ivoids(
        lambda r: any(lo <= energy <= hi for lo, hi in r.spectral)
    )
    low, high = joule(1e17 * u.Hz), joule(1e18 * u.Hz)  # X-rays, as increasing energies
    found = await pyvo_search(url, spectral=(1e17 * u.Hz, 1e18 * u.Hz))
    assert found == registry.ivoids(
        lambda r: any(interval_overlaps(lo, hi, low, high) for lo, hi in r.spectral)
    )
    assert found
    inclusive = pyvo_registry.Spectral(5000 * u.Angstrom, inclusive=True)
    assert await pyvo_search(url, inclusive) == registry.ivoids(
        lambda r: not r.spectral or any(lo <= energy <= hi for lo, hi in r.spectral)
    )
    assert joule(1 * u.eV) == pytest.approx(constants.e.value)
    found = await pyvo_search(url, temporal=55000.5)
    assert found == registry.ivoids(lambda r: any(a <= 55000.5 <= b for a, b in r.temporal))
    assert NamedResource.WHITE_DWARF_UV in found
    found = await pyvo_search(url, temporal=(51000, 51100))
    assert found == registry.ivoids(
        lambda r: any(interval_overlaps(a, b, 51000, 51100) for a, b in r.temporal)
    )


@pytest.mark.anyio
async def test_pyvo_combined_constraints(sim: SimulatedVO) -> None:
    found = await pyvo_search(
        sim.registry_url, servicetype="scs", waveband="uv", keywords=["white dwarf"]
    )
    expected = sim.registry.ivoids(
        lambda r: (
            "ivo://ivoa.net/std/conesearch" in r.standard_ids
            and "uv" in r.wavebands
            and mentions(r, "white dwarf")
        )
    )
    assert found == expected
    assert NamedResource.WHITE_DWARF_UV in found


@pytest.mark.anyio
async def test_pyvo_records_tables_contacts_and_the_discovered_service(sim: SimulatedVO) -> None:
    service = sim.service(0)

    def explore() -> dict[str, Any]:
        [record] = pyvo_registry.search(ivoid=NamedResource.WHITE_DWARF_UV)
        tables = record.get_tables()
        cone = record.get_service("conesearch").search(pos=(10.0, 20.0), radius=0.1)
        return {
            "short_name": record.short_name,
            "wavebands": record.waveband,
            "creators": record.creators,
            "modes": record.access_modes(),
            "contact": record.get_contact(),
            "alt": record.get_alt_identifiers(),
            "columns": {c.name: c.ucd for c in tables["II/283/catalog"].columns},
            "rows": len(cone),
        }

    found = await in_thread(sim.registry_url, explore)
    assert found["short_name"] == "II/283"
    assert found["wavebands"] == ["uv", "optical"]
    assert found["creators"] == ["Aldous, W.", " Brightwell, D."]
    assert found["modes"] == {"conesearch", "tap#aux", "web"}
    assert found["contact"] == "CDS (simulated) help desk <help@viz.sim.vosweep.test>"
    assert "doi:10.5072/vosweep.ii.283" in found["alt"]
    assert found["columns"]["FUVmag"] == "phot.mag;em.UV.FUV"
    assert found["rows"] == expected_rows(service.spec, 10.0, 20.0, 0.1)


@pytest.mark.anyio
async def test_without_union_pyvo_sends_the_or_form_and_gets_the_same_answer(
    sim: SimulatedVO,
) -> None:
    no_union, strict = sim.registry_urls[1], sim.registry_urls[2]
    expected = sim.registry.ivoids(lambda r: mentions(r, "pulsars"))
    assert await pyvo_search(no_union, keywords=["pulsars"]) == expected
    sent = sim.registry_stats()[1].recent_queries[-1]
    assert "UNION" not in sent
    assert "rr.res_subject.res_subject" in sent
    with pytest.raises(
        DALQueryError, match=re.escape('Unknown column "rr.res_subject.res_subject"')
    ):
        await pyvo_search(strict, keywords=["pulsars"])
    assert await pyvo_search(strict, servicetype="ssa") == with_standard(
        sim.registry, "ivo://ivoa.net/std/ssa"
    )


@pytest.mark.anyio
async def test_pyvo_detects_missing_geometry_and_coverage(sim: SimulatedVO) -> None:
    limited = sim.registry_urls[3]
    for constraint in (
        pyvo_registry.Spatial((10.0, 20.0)),
        pyvo_registry.Spectral(5000 * u.Angstrom),
        pyvo_registry.Temporal(55000.0),
    ):
        with pytest.raises(rtcons.RegTAPFeatureMissing):
            await pyvo_search(limited, constraint)
    status, body, _ = await fetch(limited + "/sync", params={"QUERY": "SELECT MOC('0/1')"})
    assert status == 400
    assert "unknown function MOC" in query_status(body)[1]


# -- the registry inside the simulated VO -------------------------------------------------


@pytest.mark.anyio
async def test_fleet_services_are_registered_and_can_be_swept(sim: SimulatedVO) -> None:
    for service in sim.services:
        record = sim.registry[service.spec.ivoid]
        assert record.access_urls == (service.url,)
    found = await pyvo_search(sim.registry_url, servicetype="scs")
    fleet = [s for s in sim.services if s.spec.ivoid in found]
    assert len(fleet) == len(sim.services)
    async with vosweep.Engine() as engine:
        result = await engine.fanout(
            [vosweep.Service.scs(s.url, ivoid=s.spec.ivoid) for s in fleet],
            vosweep.Cone(ra=10.0, dec=20.0, radius=0.1),
        )
    assert len(result.table) == sum(expected_rows(s.spec, 10.0, 20.0, 0.1) for s in fleet)


@pytest.mark.anyio
async def test_the_mirrored_resource_fails_over_to_a_working_mirror(sim: SimulatedVO) -> None:
    interface = sim.registry[NamedResource.MIRRORED_SCS].capabilities[0].interfaces[0]
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(interface.access_url, params=CONE)
    status, body, _ = await fetch(interface.mirror_urls[0], params=CONE)
    assert status == 200
    assert query_status(body)[0] in {"OK", "OVERFLOW"}
    registry_record = sim.registry[NamedResource.REGISTRY]
    tap = registry_record.capabilities[0].interfaces[0]
    assert (tap.access_url, tap.mirror_urls) == (sim.registry_url, sim.registry_urls[1:])


@pytest.mark.anyio
async def test_failing_registries() -> None:
    profiles = [
        RegistryProfile(n_resources=20, behaviour="unavailable", retry_after=2, fail_times=1),
        RegistryProfile(behaviour="rate_limited"),
        RegistryProfile(behaviour="http_500"),
        RegistryProfile(behaviour="reset"),
        RegistryProfile(behaviour="hang", max_hang=0.3),
        RegistryProfile(latency=0.3),
    ]
    primary, *alternates = profiles
    fleet = build_fleet(2, 1, seed=1)
    async with SimulatedVO(fleet, registry=primary, registry_mirrors=alternates) as sim:
        unavailable, limited, broken, reset, hanging, slow = sim.registry_urls
        status, _, headers = await fetch(unavailable + "/capabilities")
        assert (status, headers["Retry-After"]) == (503, "2")
        assert (await fetch(unavailable + "/capabilities"))[0] == 200  # fail_times=1
        status, _, headers = await fetch(limited + "/availability")
        assert (status, headers["Retry-After"]) == (429, "1")
        assert (await fetch(broken + "/sync", params={"QUERY": "SELECT 1"}))[0] == 500
        with pytest.raises(aiohttp.ClientError):
            await fetch(reset + "/capabilities")
        started = time.monotonic()
        with pytest.raises(aiohttp.ClientError):
            await fetch(hanging + "/capabilities")
        assert 0.25 < time.monotonic() - started < 5
        started = time.monotonic()
        assert (await fetch(slow + "/availability"))[0] == 200
        assert time.monotonic() - started >= 0.3
        assert sim.registry_stats()[0].errors == 1


@pytest.mark.anyio
async def test_a_dead_primary_registry_refuses_connections_and_its_mirror_answers() -> None:
    profile = RegistryProfile(n_resources=30, dead=True)
    async with SimulatedVO(build_fleet(2, 1), registry=profile, registry_mirrors=1) as sim:
        primary, mirror = sim.registry_urls
        with pytest.raises(aiohttp.ClientConnectionError):
            await fetch(primary + "/capabilities")
        found = await pyvo_search(mirror, servicetype="scs")
        assert {s.spec.ivoid for s in sim.services} <= found
        hosts = {h.name for h in sim.hosts}
        assert all(url.split("/")[2].split(":")[0] not in hosts for url in sim.registry_urls)


@pytest.mark.anyio
async def test_a_simulated_vo_without_registry_says_so() -> None:
    async with SimulatedVO(n_services=2) as sim:
        with pytest.raises(UsageError, match="registry=True"):
            _ = sim.registry_url
        assert sim.manifest().registry_urls == ()
    with pytest.raises(UsageError, match="registry_mirrors"):
        SimulatedVO(n_services=2, registry_mirrors=1)


def test_a_registry_without_the_sim_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sqlglot", None)  # as if it were not installed
    with pytest.raises(UsageError, match=re.escape("pip install 'vosweep[sim]'")):
        SimulatedVO(n_services=1, registry=True)


def test_sim_process_serves_the_registry_to_synchronous_pyvo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rtcons.Waveband, "_legal_terms", set(MESSENGERS))
    profile = RegistryProfile(n_resources=100, seed=4)
    with SimProcess(n_services=4, n_hosts=2, registry=profile, startup_timeout=120) as process:
        assert process.registry_url == process.registry_urls[0]
        with registry_endpoint(process.registry_url):
            found = {r.ivoid for r in pyvo_registry.search(servicetype="scs")}
            [record] = pyvo_registry.search(ivoid=NamedResource.WHITE_DWARF_UV)
        assert {s.spec.ivoid for s in process.services} <= found
        assert record.get_interface(service_type="conesearch").access_url == process.services[0].url


def test_serve_prints_the_registry_url(tmp_path: Any) -> None:
    command = [sys.executable, "-m", "vosweep.testing", "serve", "--services", "2", "--registry"]
    command += ["--registry-size", "20", "--max-seconds", "60", "--manifest", str(tmp_path / "m")]
    with subprocess.Popen(  # noqa: S603 -- our own interpreter and module
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as child:
        try:
            assert child.stdout is not None
            lines = [child.stdout.readline(), child.stdout.readline()]
        finally:
            child.terminate()
            child.wait(30)
    assert lines[0].startswith("vosweep simulated VO ready")
    assert re.fullmatch(r"RegTAP registry at http://127\.[0-9.]+:\d+/tap\n", lines[1])
