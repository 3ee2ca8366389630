"""vosweep's registry client against the simulated RegTAP registry, with pyvo as the oracle.

Every search runs twice on the same endpoint: through ``Engine.discover`` and through
``pyvo.registry.search`` (in a worker thread: pyvo is synchronous). Both must find the
same ivoids, and for the named resources the answer is also known from the records.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from astropy import units as u
from astropy.time import Time

SIM_EXTRA = "the simulated registry needs the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pytest.importorskip("cdshealpix", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")

from pyvo import registry as pyvo_registry  # noqa: E402
from pyvo.registry import rtcons  # noqa: E402

import vosweep  # noqa: E402
from vosweep import registry  # noqa: E402
from vosweep.errors import QueryRejected, RegistryFeatureMissing, RegistryUnavailable  # noqa: E402
from vosweep.testing import (  # noqa: E402
    NamedResource,
    RegistryProfile,
    SimulatedVO,
    build_fleet,
    expected_rows,
    no_backoff,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.anyio

MESSENGERS = frozenset(
    {"radio", "millimeter", "infrared", "optical", "uv", "euv", "x-ray", "gamma-ray", "photon"}
)
CONE = vosweep.Cone(ra=10.0, dec=20.0, radius=0.1)

#: (pyvo-style keyword arguments) searched by both clients; each must find something.
SEARCHES: list[dict[str, Any]] = [
    {"servicetype": "scs"},
    {"servicetype": "tap"},
    {"servicetype": "tap", "includeaux": True},
    {"servicetype": ["sia", "ssa"]},
    {"servicetype": "sia2"},
    {"keywords": ["white dwarf"]},
    {"keywords": ["quasars", "x-ray"]},
    {"waveband": "UV"},
    {"waveband": ["radio", "gamma-ray"]},
    {"datamodel": "obscore"},
    {"datamodel": "epntap"},
    {"datamodel": "regtap"},
    {"ivoid": str(NamedResource.OBSCORE_TAP)},
    {"ucd": "phot.mag;em.UV%"},
    {"author": "%ldous%"},
    {"spatial": (10.0, 20.0)},
    {"spatial": (120.0, -30.0, 4.0)},
    {"spatial": [23.0, -40.0, 26.0, -39.0, 25.0, -43.0]},
    {"spectral": 5000 * u.Angstrom},
    {"spectral": (1e17 * u.Hz, 1e18 * u.Hz)},
    {"temporal": Time(55000.5, format="mjd")},
    {"servicetype": "scs", "waveband": "uv", "keywords": ["white dwarf"]},
]


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    """A registry with alternates of fewer features (same records)."""
    alternates = [
        RegistryProfile(union=False, reject_or_freetext=True),
        RegistryProfile(geometry=False, coverage_tables=False),
    ]
    async with SimulatedVO(
        build_fleet(12, 3, seed=5),
        registry=RegistryProfile(n_resources=600, seed=3),
        registry_mirrors=alternates,
    ) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cached registry answers across tests; pyvo gets its vocabulary offline."""
    monkeypatch.setattr(rtcons.Waveband, "_legal_terms", set(MESSENGERS))
    registry.clear_cache()
    yield
    registry.clear_cache()


def engine_for(*endpoints: str, **overrides: Any) -> vosweep.Engine:
    config = vosweep.RegistryConfig(endpoints=endpoints, **overrides)
    return vosweep.Engine(registry=config, user_agent_purpose="test")


@contextmanager
def pyvo_endpoint(url: str) -> Iterator[None]:
    previous = pyvo_registry.regtap.get_RegTAP_service_url()
    pyvo_registry.choose_RegTAP_service(url)
    try:
        yield
    finally:
        pyvo_registry.choose_RegTAP_service(previous)


async def pyvo_ivoids(url: str, **keywords: Any) -> set[str]:
    def search() -> set[str]:
        with pyvo_endpoint(url):
            return {r.ivoid for r in pyvo_registry.search(**keywords)}

    return await anyio.to_thread.run_sync(search)


@pytest.mark.parametrize("keywords", SEARCHES, ids=lambda k: ",".join(f"{a}" for a in k))
async def test_same_ivoids_as_pyvo(sim: SimulatedVO, keywords: dict[str, Any]) -> None:
    """Every pyvo constraint, keyword form: vosweep and pyvo agree on the same registry."""
    async with engine_for(sim.registry_url) as engine:
        found = await engine.discover(**keywords)
    expected = await pyvo_ivoids(sim.registry_url, **keywords)
    assert set(found.ivoids) == expected
    assert expected, "a search that finds nothing proves little"
    assert found.ivoids == sorted(found.ivoids)


async def test_constraint_objects_and_known_answers(sim: SimulatedVO) -> None:
    """Object form, combined with keywords; answers checked against the records."""
    async with engine_for(sim.registry_url) as engine:
        found = await engine.discover(registry.Freetext("white dwarf"), registry.Waveband("UV"))
        assert NamedResource.WHITE_DWARF_UV in found.ivoids
        assert set(found.ivoids) == await pyvo_ivoids(
            sim.registry_url, keywords=["white dwarf"], waveband="UV"
        )
        assert all("uv" in sim.registry[ivoid].wavebands for ivoid in found.ivoids)
        authors = await engine.discover(author="%ldous%")
        assert authors.ivoids == [NamedResource.WHITE_DWARF_UV]
        aux = await engine.discover(servicetype="tap", includeaux=True)
        plain = await engine.discover(servicetype="tap")
    assert NamedResource.AUX_ONLY_COLLECTION in aux.ivoids
    assert NamedResource.AUX_ONLY_COLLECTION not in plain.ivoids


async def test_resources_carry_interfaces_mirrors_subjects_and_identifiers(
    sim: SimulatedVO,
) -> None:
    """Records come back whole: interfaces, mirror URLs, subjects, DOIs, creators."""
    async with engine_for(sim.registry_url) as engine:
        found = await engine.discover(
            ivoid=[
                NamedResource.WHITE_DWARF_UV,
                NamedResource.MIRRORED_SCS,
                NamedResource.AUTHENTICATED_TAP,
            ]
        )
        tables = await found.get_tables()
        contact = await found[NamedResource.WHITE_DWARF_UV].get_contact()
    dwarf = found["II/283"]
    record = sim.registry[NamedResource.WHITE_DWARF_UV]
    assert dwarf.ivoid == NamedResource.WHITE_DWARF_UV
    assert dwarf.res_title == record.title
    assert dwarf.creators == record.creators
    assert set(dwarf.waveband) == set(record.wavebands)
    assert any(identifier.startswith("doi:") for identifier in dwarf.get_alt_identifiers())
    assert dwarf.subjects
    assert "conesearch" in dwarf.access_modes()
    assert dwarf.get_service("scs").access_url == sim.service(0).url
    assert {t.name for t in tables[dwarf.ivoid].values()} == {t.name for t in record.tables}
    assert contact
    mirrored = found[NamedResource.MIRRORED_SCS]
    (interface,) = mirrored.list_interfaces("scs")
    assert interface.mirror_urls
    assert mirrored.get_service("scs").mirrors == interface.mirror_urls
    # Its only interface needs authentication: left out by default.
    assert found[NamedResource.AUTHENTICATED_TAP].interfaces == ()
    async with engine_for(sim.registry_url, include_authenticated=True) as engine:
        everything = await engine.discover(ivoid=NamedResource.AUTHENTICATED_TAP)
    assert everything[0].interfaces[0].authenticated_only


async def test_discover_then_fanout_reaches_the_fleet(sim: SimulatedVO) -> None:
    """Registry results as targets: every fleet cone search is asked, mirrors included."""
    async with engine_for(sim.registry_url) as engine:
        fleet = await engine.discover(ivoid=[s.spec.ivoid for s in sim.services])
        result = await engine.fanout(fleet, CONE)
        mirrored = await engine.fanout(
            await engine.discover(ivoid=NamedResource.MIRRORED_SCS), CONE
        )
        one_step = await engine.fanout(
            registry.search(ivoid=[s.spec.ivoid for s in sim.services]), CONE
        )
    expected = sum(expected_rows(s.spec, 10.0, 20.0, 0.1) for s in sim.services)
    assert len(result.table) == expected
    assert len(one_step.table) == expected
    assert {o.service.ivoid for o in result.outcomes} == {s.spec.ivoid for s in sim.services}
    (outcome,) = mirrored.outcomes
    assert outcome.failovers, "the access URL refuses connections: a mirror must have answered"
    assert outcome.status in {vosweep.Status.OK, vosweep.Status.EMPTY, vosweep.Status.OVERFLOW}


async def test_query_shapes_adapt_to_each_registry(sim: SimulatedVO) -> None:
    """A registry without UNION that rejects pyvo's OR-form still answers vosweep's form."""
    _, strict, plain = sim.registry_urls
    async with engine_for(strict) as engine:
        found = await engine.discover(keywords=["white dwarf"])
        features = await engine.registry.features()
    assert not features.union
    assert set(found.ivoids) == await pyvo_ivoids(sim.registry_url, keywords=["white dwarf"])
    async with engine_for(plain) as engine:
        with pytest.raises(RegistryFeatureMissing, match="Spatial"):
            await engine.discover(spatial=(10.0, 20.0))
        assert (await engine.discover(servicetype="tap")).ivoids


async def test_a_dead_primary_fails_over_to_the_next_endpoint() -> None:
    """Primary refuses connections: the alternate answers, and stays first afterwards."""
    profile = RegistryProfile(n_resources=40, dead=True)
    async with SimulatedVO(build_fleet(2, 1), registry=profile, registry_mirrors=1) as sim:
        primary, alternate = sim.registry_urls
        async with engine_for(primary, alternate) as engine:
            found = await engine.discover(servicetype="scs")
            assert found.endpoint == alternate
            assert engine.registry.endpoints[0] == alternate
            tables = await found.get_tables()
        assert {s.spec.ivoid for s in sim.services} <= set(found.ivoids)
        assert tables


async def test_failing_primary_registries_fail_over() -> None:
    """500s and hangs on the primary: the engine's timeouts and retries, then the next one."""
    fleet = build_fleet(2, 1)
    for profile in (
        RegistryProfile(n_resources=20, behaviour="http_500"),
        RegistryProfile(n_resources=20, behaviour="hang", max_hang=5),
    ):
        async with SimulatedVO(fleet, registry=profile, registry_mirrors=1) as sim:
            config = vosweep.RegistryConfig(endpoints=sim.registry_urls)
            timeouts = vosweep.Timeouts(connect=1, read=0.5, attempt=1)
            async with vosweep.Engine(
                registry=config, timeouts=timeouts, user_agent_purpose="test"
            ) as engine:
                with no_backoff():
                    found = await engine.discover(servicetype="scs")
            assert found.endpoint == sim.registry_urls[1], profile.behaviour


async def test_every_registry_down_names_each_endpoint() -> None:
    profile = RegistryProfile(n_resources=10, dead=True)
    async with (
        SimulatedVO(build_fleet(1, 1), registry=profile) as sim,
        engine_for(sim.registry_url) as engine,
    ):
        with pytest.raises(RegistryUnavailable, match=sim.registry_url) as caught:
            await engine.discover(servicetype="scs")
    assert list(caught.value.failures) == [sim.registry_url]


async def test_bad_adql_is_the_registrys_word(sim: SimulatedVO) -> None:
    async with engine_for(sim.registry_url) as engine:
        with pytest.raises(QueryRejected, match=r"(?i)no_such_table|unknown|not found"):
            await engine.registry.query("SELECT * FROM rr.no_such_table")


async def test_details_take_a_bounded_number_of_round_trips(sim: SimulatedVO) -> None:
    """N resources' details and tables cost about N / batch_size queries, not N."""
    async with engine_for(sim.registry_url, batch_size=100) as engine:
        found = await engine.discover(servicetype=["scs", "tap", "sia", "ssa"])
        discovery = engine.registry.round_trips
        await found.get_tables()
        tables = engine.registry.round_trips - discovery
    assert len(found) > 300
    # capabilities + TAP_SCHEMA probe + search, then 3 follow-ups naming the search itself
    assert discovery <= 3 + 3
    assert tables == 2
    async with engine_for(sim.registry_url, batch_size=100) as engine:
        cut = await engine.discover(servicetype=["scs", "tap", "sia", "ssa"], maxrec=350)
        discovery = engine.registry.round_trips
        await cut.get_tables()
        tables = engine.registry.round_trips - discovery
    # A cut answer lists its ivoids: 4 batches of 100 per follow-up kind.
    assert len(cut) == 350
    assert discovery <= 3 + 3 * 4
    assert tables == 2 * 4


async def test_answers_are_cached_across_engines(sim: SimulatedVO) -> None:
    """A notebook re-running a cell with a new engine does not query the registry again."""
    async with engine_for(sim.registry_url) as engine:
        first = await engine.discover(waveband="UV")
    before = sim.registry_stats()[0].queries
    async with engine_for(sim.registry_url) as engine:
        again = await engine.discover(waveband="UV")
        assert engine.registry.round_trips == 0
    assert sim.registry_stats()[0].queries == before
    assert again.ivoids == first.ivoids
    async with engine_for(sim.registry_url, cache_ttl=0) as engine:
        await engine.discover(waveband="UV")
        assert engine.registry.round_trips > 0
