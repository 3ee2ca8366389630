"""Coverage pre-filtering and protocol de-duplication over the simulated registry.

Services whose RegTAP 1.2 coverage the query misses are reported as skipped and never
receive a request (the simulator's counters prove it); ``coverage=False`` asks them all.
"""

from __future__ import annotations

import astropy.units as u
import pytest

import vosweep
from vosweep.services import Protocol
from vosweep.testing import RegistryProfile, ServiceProfile, ServiceSpec, SimulatedVO

pytest.importorskip("sqlglot", reason="the simulated registry needs the 'sim' extra")

pytestmark = pytest.mark.anyio

#: The cone (near the Crab) lies in HEALPix order-0 cell 4 or 5; cells 8-11 are the south.
CONE = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)
SOUTH = "0/8-11"


def _fleet(protocol: Protocol = Protocol.SCS) -> list[ServiceSpec]:
    return [
        ServiceSpec.make(0, 0, ServiceProfile(), protocol=protocol),  # all sky
        ServiceSpec.make(1, 1, ServiceProfile(), protocol=protocol, coverage=SOUTH),
        ServiceSpec.make(2, 0, ServiceProfile(), protocol=protocol, coverage=None),  # none
        ServiceSpec.make(3, 1, ServiceProfile(), protocol=protocol, coverage="1/16-19,20"),
    ]


def _requests(sim: SimulatedVO) -> dict[str, int]:
    return {s.name: s.requests for s in sim.stats().services}


async def _sweep(sim: SimulatedVO, query: object, **kwargs: object) -> vosweep.FanoutResult:
    registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,), cache_ttl=0)
    async with vosweep.Engine(registry=registry, user_agent_purpose="test") as engine:
        found = await engine.discover(servicetype="scs", keywords=["fleet"])
        return await engine.fanout(found, query, **kwargs)  # type: ignore[arg-type]


async def test_services_out_of_coverage_are_skipped_and_not_asked():
    fleet = _fleet()
    async with SimulatedVO(fleet, registry=RegistryProfile(n_resources=20)) as sim:
        result = await _sweep(sim, CONE)
        requests = _requests(sim)
    by_name = {o.service.name: o for o in result.outcomes}
    assert set(by_name) == {s.name for s in fleet}
    skipped = {name for name, o in by_name.items() if o.status is vosweep.Status.SKIPPED}
    assert skipped == {"scs-00001", "scs-00003"}
    for name in skipped:
        assert "out of coverage" in (by_name[name].message or "")
        assert "sky" in (by_name[name].message or "")
        assert requests[name] == 0
    assert by_name["scs-00000"].status.succeeded
    assert by_name["scs-00002"].status.succeeded  # declares no coverage: asked
    assert requests["scs-00000"] == requests["scs-00002"] == 1


async def test_the_switch_asks_every_service_anyway():
    async with SimulatedVO(_fleet(), registry=RegistryProfile(n_resources=20)) as sim:
        result = await _sweep(sim, CONE, coverage=False)
        requests = _requests(sim)
    assert all(o.status is not vosweep.Status.SKIPPED for o in result.outcomes)
    assert all(n == 1 for n in requests.values())


async def test_a_registry_without_coverage_tables_filters_nothing():
    profile = RegistryProfile(n_resources=20, coverage_tables=False)
    async with SimulatedVO(_fleet(), registry=profile) as sim:
        result = await _sweep(sim, CONE)
    assert all(o.status is not vosweep.Status.SKIPPED for o in result.outcomes)


async def test_spectral_coverage_spares_optical_services_an_xray_search():
    """The fleet declares optical spectral coverage: an X-ray band misses all of it."""
    fleet = [ServiceSpec.make(i, 0, ServiceProfile(), protocol=Protocol.SIA2) for i in range(2)]
    query = vosweep.ImageQuery(ra=83.63, dec=22.01, radius=0.1, band=(1 * u.keV, 10 * u.keV))
    async with SimulatedVO(fleet, registry=RegistryProfile(n_resources=20)) as sim:
        registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,), cache_ttl=0)
        async with vosweep.Engine(registry=registry, user_agent_purpose="test") as engine:
            found = await engine.discover(servicetype="sia2", keywords=["fleet"])
            result = await engine.fanout(found, query)
            optical = await engine.fanout(
                found, vosweep.ImageQuery(ra=83.63, dec=22.01, radius=0.1, band=(5e-7, 6e-7))
            )
    assert [o.status for o in result.outcomes] == [vosweep.Status.SKIPPED] * 2
    assert all("spectral" in (o.message or "") for o in result.outcomes)
    assert all(o.status is not vosweep.Status.SKIPPED for o in optical.outcomes)


def test_coverage_checks_follow_the_query():
    from vosweep.registry.coverage import coverage_checks  # noqa: PLC0415

    assert [c.what for c in coverage_checks(CONE)] == ["sky"]
    image = vosweep.ImageQuery(ra=1, dec=2, size=0.5, band=(4e-7, 7e-7), time=(50000, 50001))
    assert [c.what for c in coverage_checks(image)] == ["sky", "spectral", "time"]
    assert coverage_checks(vosweep.TapQuery("SELECT 1")) == []
    assert [c.what for c in coverage_checks(vosweep.SpectrumQuery(band=(4e-7, 7e-7)))] == [
        "spectral"
    ]


async def test_the_search_itself_names_the_resources_two_queries_per_check():
    """However many resources were found, the pre-filter asks the registry twice per kind
    of coverage, naming them by the search that found them."""
    async with SimulatedVO(_fleet(), registry=RegistryProfile(n_resources=20)) as sim:
        # The default cache keeps the registry's capabilities from the search.
        registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,))
        async with vosweep.Engine(registry=registry, user_agent_purpose="test") as engine:
            found = await engine.discover(servicetype="scs", keywords=["fleet"])
            assert found.ivoid_subquery() is not None
            before = engine.registry.round_trips
            result = await engine.fanout(found, CONE)
            trips = engine.registry.round_trips - before
            cut = await engine.discover(servicetype="scs", keywords=["fleet"], maxrec=3)
            assert cut.ivoid_subquery() is None  # a cut answer: named one by one
            sliced = await engine.fanout(cut, CONE)
    assert trips == 2
    skipped = {o.service.name for o in result.outcomes if o.status is vosweep.Status.SKIPPED}
    assert skipped == {"scs-00001", "scs-00003"}
    assert {o.service.name for o in sliced.outcomes if o.status is vosweep.Status.SKIPPED} == (
        skipped & {o.service.name for o in sliced.outcomes}
    )
