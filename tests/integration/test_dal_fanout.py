"""vosweep's SIA 1/2, SSA and DataLink fan-outs against the simulated VO, with pyvo as the oracle.

Each test sends the same question through vosweep and through pyvo's own clients to the
same loopback services, and asks for the same rows.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import astropy.units as u
import pytest
from astropy.time import Time

import vosweep
from vosweep.services import Protocol
from vosweep.testing import Behaviour, ServiceProfile, ServiceSpec, SimulatedVO, no_backoff
from vosweep.testing._dal import expected_images, expected_spectra

pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")
from pyvo.dal import SIA2Service, SIAService, SSAService  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("offline_pyvo")]

T = TypeVar("T")
RA, DEC = 83.63, 22.01
DENSE = 10_000.0


def make(index: int, protocol: Protocol, behaviour: Behaviour = Behaviour.OK, **profile: Any):
    profile.setdefault("density", DENSE)
    return ServiceSpec.make(
        index, index % 3, ServiceProfile(behaviour=behaviour, **profile), protocol=protocol
    )


FLEET = [
    make(0, Protocol.SIA),
    make(1, Protocol.SIA2),
    make(2, Protocol.SIA2),
    make(3, Protocol.SSA),
    make(4, Protocol.SCS, density=100.0),
    make(5, Protocol.SIA2, Behaviour.QUERY_ERROR),
    make(6, Protocol.SSA, Behaviour.OVERFLOW, max_rows=2),
    make(7, Protocol.SIA, Behaviour.HTTP_500),
    make(8, Protocol.SSA, Behaviour.GZIP),
]


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    async with SimulatedVO(FLEET) as sim:
        yield sim


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


def engine() -> vosweep.Engine:
    return vosweep.Engine(user_agent_purpose="test", errors="retry")


def rows_of(result: vosweep.FanoutResult, url: str, column: str) -> list[str]:
    table = result.table
    return sorted(
        str(v) for v, s in zip(table[column], table["service_url"], strict=True) if s == url
    )


def service(sim: SimulatedVO, index: int) -> vosweep.Service:
    return sim.service(index).target()


class TestImages:
    async def test_image_query_equals_pyvo_on_sia1_and_sia2(self, sim: SimulatedVO):
        """One ImageQuery: SIA1 gets POS/SIZE, SIA2 gets CIRCLE; rows equal pyvo's."""
        query = vosweep.ImageQuery((RA, DEC), radius=0.4)
        targets = [service(sim, i) for i in (0, 1, 2)]
        async with engine() as e:
            result = await e.fanout(targets, query)
        assert [o.status for o in result.outcomes] == [vosweep.Status.OK] * 3
        sia1 = await in_thread(SIAService(targets[0].access_url).search, pos=(RA, DEC), size=0.8)
        assert len(sia1) == sum(
            1 for s in result.table["service_url"] if s == targets[0].access_url
        )
        for index in (1, 2):
            pyvo_service = await in_thread(SIA2Service, targets[index].access_url)
            found = await in_thread(pyvo_service.search, pos=(RA, DEC, 0.4))
            ours = rows_of(result, targets[index].access_url, "obs_publisher_did")
            assert ours == sorted(str(r.obs_publisher_did) for r in found)
            assert len(ours) == len(
                expected_images(FLEET[index], {"POS": f"CIRCLE {RA} {DEC} 0.4"})
            )

    async def test_sia2_constraints_equal_pyvo(self, sim: SimulatedVO):
        target = service(sim, 1)
        band = (400 * u.nm, 2 * u.um)
        time = (Time(52000, format="mjd"), Time(60000, format="mjd"))
        async with engine() as e:
            result = await e.fanout(
                [target], vosweep.ImageQuery((RA, DEC), radius=1.0, band=band, time=time)
            )
        pyvo_service = await in_thread(SIA2Service, target.access_url)
        found = await in_thread(pyvo_service.search, pos=(RA, DEC, 1.0), band=band, time=time)
        assert rows_of(result, target.access_url, "obs_publisher_did") == sorted(
            str(r.obs_publisher_did) for r in found
        )
        assert result.outcomes[0].status in {vosweep.Status.OK, vosweep.Status.EMPTY}

    async def test_sia1_skipped_for_constraints_it_cannot_express(self, sim: SimulatedVO):
        query = vosweep.ImageQuery((RA, DEC), radius=0.4, band=(400 * u.nm, 700 * u.nm))
        async with engine() as e:
            result = await e.fanout([service(sim, 0), service(sim, 1)], query)
        assert result.outcomes[0].status is vosweep.Status.SKIPPED
        assert "band" in (result.outcomes[0].message or "")
        assert result.outcomes[1].status.succeeded

    async def test_failures_are_outcomes(self, sim: SimulatedVO):
        query = vosweep.ImageQuery((RA, DEC), radius=0.4)
        async with engine() as e:
            with no_backoff():
                result = await e.fanout([service(sim, 5), service(sim, 7)], query)
        error, broken = result.outcomes
        assert error.status is vosweep.Status.ERROR
        assert error.error_type == "QueryRejected"
        assert broken.status is vosweep.Status.ERROR
        assert broken.http_status == 500

    async def test_service_parameters(self, sim: SimulatedVO):
        async with engine() as e:
            sia1 = await e.service_parameters(service(sim, 0))
            ssa = await e.service_parameters(service(sim, 3))
        assert {"POS", "SIZE", "FORMAT", "BAND_NAME"} <= {p.name for p in sia1}
        assert {"POS", "SIZE", "BAND", "TIME"} <= {p.name for p in ssa}
        pyvo_params = await in_thread(lambda: SIAService(service(sim, 0).access_url).params)
        assert {p.name.removeprefix("INPUT:") for p in pyvo_params} == {p.name for p in sia1}

    async def test_custom_parameters_pass_through(self, sim: SimulatedVO):
        target = service(sim, 0)
        async with engine() as e:
            everything = await e.fanout([target], vosweep.ImageQuery((RA, DEC), size=2.0))
            band = (
                str(everything.table["bandpass_id"][0])
                if "bandpass_id" in everything.table.colnames
                else None
            )
            if band is None:
                pytest.skip("no bandpass column")
            narrowed = await e.fanout(
                [target], vosweep.ImageQuery((RA, DEC), size=2.0, params={"BAND_NAME": band})
            )
        assert 0 < narrowed.rows < everything.rows


class TestSpectra:
    async def test_spectrum_query_equals_pyvo(self, sim: SimulatedVO):
        target = service(sim, 3)
        async with engine() as e:
            result = await e.fanout(
                [target],
                vosweep.SpectrumQuery((RA, DEC), diameter=1.0, band=(300 * u.nm, 1 * u.um)),
            )
        found = await in_thread(
            SSAService(target.access_url).search,
            pos=(RA, DEC),
            diameter=1.0,
            band=(300 * u.nm, 1 * u.um),
        )
        assert result.rows == len(found) > 0
        params = {
            "REQUEST": "queryData",
            "POS": f"{RA},{DEC}",
            "SIZE": "1.0",
            "BAND": "3e-07/1e-06",
        }
        assert result.rows == len(expected_spectra(FLEET[3], params))

    async def test_overflow_and_gzip(self, sim: SimulatedVO):
        query = vosweep.SpectrumQuery((RA, DEC), diameter=2.0)
        async with engine() as e:
            result = await e.fanout([service(sim, 6), service(sim, 8)], query)
        overflow, gzipped = result.outcomes
        assert overflow.status is vosweep.Status.OVERFLOW
        assert overflow.rows == 2
        assert gzipped.status is vosweep.Status.OK


class TestMixed:
    async def test_per_protocol_fanout(self, sim: SimulatedVO):
        """Cone search, images and spectra in one fan-out, each service with its query."""
        cone = vosweep.Cone(ra=RA, dec=DEC, radius=0.2)
        query = vosweep.PerProtocol(
            scs=cone,
            sia=vosweep.ImageQuery((RA, DEC), radius=0.2),
            ssa=vosweep.SpectrumQuery((RA, DEC), diameter=0.4),
        )
        targets = [service(sim, i) for i in (0, 1, 3, 4)]
        async with engine() as e:
            result = await e.fanout(targets, query)
        assert all(o.status.succeeded for o in result.outcomes), result.summary()
        per_service = {o.service.protocol: o.rows for o in result.outcomes}
        assert set(per_service) == {Protocol.SIA, Protocol.SIA2, Protocol.SSA, Protocol.SCS}
        assert result.rows == sum(per_service.values())

    async def test_a_cone_goes_to_image_and_spectrum_services_given_explicitly(self, sim):
        cone = vosweep.Cone(ra=RA, dec=DEC, radius=0.3)
        async with engine() as e:
            result = await e.fanout([service(sim, i) for i in (0, 2, 3)], cone)
        assert all(o.status.succeeded and o.rows for o in result.outcomes), result.summary()


class TestDatalink:
    async def test_previews_equal_pyvo(self, sim: SimulatedVO):
        """engine.datalinks on an SIA2 result: the #preview links pyvo finds, record by record."""
        target = service(sim, 2)  # records point at DataLink documents themselves
        async with engine() as e:
            result = await e.fanout([target], vosweep.ImageQuery((RA, DEC), radius=0.4))
            links = await e.datalinks(result, semantics="#preview")
        assert links.outcomes, "no datalink rows in the result"
        assert all(o.status.succeeded for o in links.outcomes)
        pyvo_service = await in_thread(SIA2Service, target.access_url)
        found = await in_thread(pyvo_service.search, pos=(RA, DEC, 0.4))

        def pyvo_previews() -> list[str]:
            urls = []
            for record in found:
                if "datalink" not in str(record.access_format).lower():
                    continue
                urls += [
                    str(link.access_url) for link in record.getdatalink().bysemantics("#preview")
                ]
            return sorted(urls)

        assert sorted(str(u) for u in links.table["access_url"]) == await in_thread(pyvo_previews)
        assert len(links.outcomes) == sum(
            1 for f in result.table["access_format"] if "datalink" in str(f).lower()
        )

    async def test_ssa_descriptor_links_equal_pyvo(self, sim: SimulatedVO):
        """SSA rows reach DataLink through the answer's service descriptor, many IDs a request."""
        target = service(sim, 3)
        async with engine() as e:
            result = await e.fanout([target], vosweep.SpectrumQuery((RA, DEC), diameter=1.0))
            assert result.datalink_access, "the SSA answer carries a DataLink descriptor"
            links = await e.datalinks(result, semantics="#this")
        assert all(o.status.succeeded for o in links.outcomes), links.summary()
        assert len(links.outcomes) == -(-result.rows // 50)  # IDS_PER_REQUEST IDs per request
        found = await in_thread(SSAService(target.access_url).search, pos=(RA, DEC), diameter=1.0)

        def pyvo_links() -> list[str]:
            return sorted(
                str(link.access_url)
                for record in found
                for link in record.getdatalink().bysemantics("#this")
            )

        assert sorted(str(u) for u in links.table["access_url"]) == await in_thread(pyvo_links)
