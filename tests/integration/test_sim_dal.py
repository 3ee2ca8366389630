"""pyvo's own SIA, SIA2, SSA and DataLink clients against the simulated services, over loopback.

pyvo is synchronous, so every pyvo call runs in a worker thread while the simulator keeps
serving on the test's event loop. Row counts are checked against `expected_images` and
`expected_spectra`, which compute the answer without a request.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import anyio
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.time import Time

from vosweep.services import Protocol
from vosweep.testing import Behaviour, ServiceProfile, ServiceSpec, SimulatedVO
from vosweep.testing._dal import DATALINK_TYPE, expected_images, expected_spectra

pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")
from pyvo.dal import (  # noqa: E402
    DALOverflowWarning,
    DALQueryError,
    DALServiceError,
    SIA2Service,
    SIAService,
    SSAService,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("offline_pyvo")]

T = TypeVar("T")

RA, DEC = 83.63, 22.01
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: 20 observations per square degree (the simulator's cap): every query finds some.
DENSE = 10_000.0


def make(index: int, protocol: Protocol, behaviour: Behaviour = Behaviour.OK, **profile: Any):
    profile.setdefault("density", DENSE)
    return ServiceSpec.make(
        index, index % 2, ServiceProfile(behaviour=behaviour, **profile), protocol=protocol
    )


FLEET = [
    make(0, Protocol.SIA),
    make(1, Protocol.SIA2),  # odd: with a DataLink service descriptor
    make(2, Protocol.SIA2),  # even: records point at DataLink documents themselves
    make(3, Protocol.SSA),
    make(4, Protocol.SIA2, Behaviour.EMPTY),
    make(5, Protocol.SIA2, Behaviour.OVERFLOW, max_rows=5),
    make(6, Protocol.SIA2, Behaviour.QUERY_ERROR),
    make(7, Protocol.SSA, Behaviour.QUERY_ERROR),
    make(8, Protocol.SIA, Behaviour.OVERFLOW, max_rows=3),
    make(9, Protocol.SSA, Behaviour.CONFLICTING_TYPES),
    make(10, Protocol.SIA, Behaviour.QUERY_ERROR),
    make(11, Protocol.SSA, Behaviour.EMPTY),
    make(12, Protocol.SIA2, Behaviour.CONFLICTING_TYPES),
    make(13, Protocol.SIA, Behaviour.EMPTY),
    make(14, Protocol.SSA, Behaviour.OVERFLOW, max_rows=2),
    make(15, Protocol.SSA, Behaviour.GZIP),
    make(16, Protocol.SSA, Behaviour.REDIRECT),
    make(17, Protocol.SIA2, Behaviour.HTTP_500),
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


def fetch(url: str) -> requests.Response:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response


def url_of(sim: SimulatedVO, index: int) -> str:
    return sim.service(index).url


class TestSia1:
    async def test_search_matches_expected_images(self, sim: SimulatedVO) -> None:
        """pyvo's SIAService finds the expected rows, with every SIA 1.0 accessor working."""
        results = await in_thread(SIAService(url_of(sim, 0)).search, pos=(RA, DEC), size=0.5)
        expected = expected_images(FLEET[0], {"POS": f"{RA},{DEC}", "SIZE": "0.5", "VERB": "2"})
        assert len(results) == len(expected) > 0
        base = url_of(sim, 0)
        assert [r.acref for r in results] == [base + e.path for e in expected]
        first = results[0]
        assert first.pos.ra.deg == pytest.approx(expected[0].ra)
        assert first.title.endswith(expected[0].obs_id)
        assert first.naxes == 2
        assert first.naxis.shape == (2,)
        assert first.scale.shape == (2,)
        assert first.format in {"image/fits", "image/png"}
        assert first.coord_frame == "ICRS"
        assert first.cdmatrix.shape == (2, 2)
        assert 51000 <= first.dateobs.mjd <= 60501
        assert first.bandpass_lolimit < first.bandpass_refvalue < first.bandpass_hilimit
        assert str(first.bandpass_unit) == "m"

    async def test_access_references_serve_fits_and_png(self, sim: SimulatedVO) -> None:
        """Each acref serves a valid file of its format and announced size."""
        results = await in_thread(
            SIAService(url_of(sim, 0)).search, pos=(RA, DEC), size=1.0, format="ALL"
        )
        formats = {r.format for r in results}
        assert formats == {"image/fits", "image/png"}
        for record in (next(r for r in results if r.format == f) for f in formats):
            body = (await in_thread(fetch, record.acref)).content
            assert len(body) == record.filesize
            if record.format == "image/png":
                assert body.startswith(PNG_MAGIC)
            else:
                with fits.open(io.BytesIO(body)) as hdus:
                    assert hdus[0].data.shape == (16, 16)

    @pytest.mark.parametrize("intersect", ["OVERLAPS", "COVERS", "ENCLOSED", "CENTER"])
    @pytest.mark.parametrize("image_format", ["GRAPHIC", "image/fits"])
    async def test_intersect_and_format_filter(
        self, sim: SimulatedVO, intersect: str, image_format: str
    ) -> None:
        """INTERSECT and FORMAT really filter, as the expected rows say."""
        service = SIAService(url_of(sim, 0))
        results = await in_thread(
            service.search, pos=(RA, DEC), size=0.4, intersect=intersect, format=image_format
        )
        params = {"POS": f"{RA},{DEC}", "SIZE": "0.4", "INTERSECT": intersect}
        expected = expected_images(FLEET[0], {**params, "FORMAT": image_format})
        assert len(results) == len(expected)
        wanted = "image/png" if image_format == "GRAPHIC" else "image/fits"
        assert {r.format for r in results} <= {wanted}
        everything = expected_images(FLEET[0], {**params, "FORMAT": "ALL"})
        assert {e.path for e in expected} <= {e.path for e in everything}

    async def test_metadata_lists_inputs_and_columns(self, sim: SimulatedVO) -> None:
        """FORMAT=METADATA: the INPUT: parameters, the custom one included, and the FIELDs."""
        service = SIAService(url_of(sim, 0))
        params = await in_thread(lambda: service.params)
        names = {p.name for p in params}
        assert {"INPUT:POS", "INPUT:SIZE", "INPUT:FORMAT", "INPUT:BAND_NAME"} <= names
        assert all(p.description for p in params)
        columns = await in_thread(lambda: service.columns)
        assert {"title", "acref", "filesize", "bandpass_id"} <= {c.name for c in columns}

    async def test_custom_band_name_filters(self, sim: SimulatedVO) -> None:
        """The service's own BAND_NAME parameter keeps one filter's images."""
        results = await in_thread(SIAService(url_of(sim, 0)).search, pos=(RA, DEC), size=2.0)
        band = results[0].bandpass_id
        narrowed = await in_thread(
            SIAService(url_of(sim, 0)).search, pos=(RA, DEC), size=2.0, BAND_NAME=band
        )
        assert 0 < len(narrowed) < len(results)
        assert {r.bandpass_id for r in narrowed} == {band}

    async def test_misbehaving_services(self, sim: SimulatedVO) -> None:
        """QUERY_ERROR raises DALQueryError, OVERFLOW warns at max_rows, EMPTY has no rows."""
        with pytest.raises(DALQueryError, match="Simulated failure"):
            await in_thread(SIAService(url_of(sim, 10)).search, pos=(RA, DEC), size=0.5)

        def overflowing() -> int:
            with pytest.warns(DALOverflowWarning):
                return len(SIAService(url_of(sim, 8)).search(pos=(RA, DEC), size=2.0))

        assert await in_thread(overflowing) == 3
        empty = await in_thread(SIAService(url_of(sim, 13)).search, pos=(RA, DEC), size=2.0)
        assert len(empty) == 0

    async def test_missing_size_is_an_error(self, sim: SimulatedVO) -> None:
        """SIA 1.0 errors come with HTTP 200 and QUERY_STATUS=ERROR."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(url_of(sim, 0), params={"POS": "10,10"}) as response,
        ):
            assert response.status == 200
            body = await response.read()
        info = parse(io.BytesIO(body)).resources[0].infos[0]
        assert (info.name, info.value) == ("QUERY_STATUS", "ERROR")
        assert "SIZE" in info.content


def sia2_params(
    radius: float, band: tuple[float, float] | None = None, mjd: tuple[float, float] | None = None
) -> dict[str, str]:
    params = {"POS": f"CIRCLE {RA} {DEC} {radius}"}
    if band is not None:
        params["BAND"] = f"{band[0]} {band[1]}"
    if mjd is not None:
        params["TIME"] = f"{mjd[0]} {mjd[1]}"
    return params


class TestSia2:
    async def search(self, sim: SimulatedVO, index: int, **constraints: Any) -> Any:
        service = await in_thread(SIA2Service, url_of(sim, index))
        return await in_thread(service.search, **constraints)

    @pytest.mark.parametrize("index", [1, 2])
    async def test_search_matches_expected_images(self, sim: SimulatedVO, index: int) -> None:
        """SIA2Service reads the capabilities, then POS, BAND and TIME really filter."""
        everything = await self.search(sim, index, pos=(RA, DEC, 1.0))
        assert len(everything) == len(expected_images(FLEET[index], sia2_params(1.0)))
        some = everything[0]
        edge = some.em_min.to_value("m")
        band = (edge * 0.99, edge * 1.01)  # around one record's filter edge
        mjd = (some.t_min.mjd - 1000, some.t_min.mjd + 1000)
        times = (Time(mjd[0], format="mjd"), Time(mjd[1], format="mjd"))
        results = await self.search(sim, index, pos=(RA, DEC, 1.0), band=band, time=times)
        expected = expected_images(FLEET[index], sia2_params(1.0, band, mjd))
        assert len(everything) > len(results) == len(expected) > 0
        assert [r.obs_publisher_did for r in results] == [e.did for e in expected]
        for record in results:
            assert record.em_min.to_value("m") <= band[1]
            assert record.em_max.to_value("m") >= band[0]
            assert record.t_min.mjd <= mjd[1]
            assert record.t_max.mjd >= mjd[0]
            assert record.access_url.startswith(url_of(sim, index))

    async def test_datalink_through_the_service_descriptor(self, sim: SimulatedVO) -> None:
        """With a descriptor, every record's getdatalink() works; #preview serves a PNG."""
        results = await self.search(sim, 1, pos=(RA, DEC, 0.5))
        assert len(results) > 0
        for record in list(results)[:3]:
            links = await in_thread(record.getdatalink)
            assert len(links) == 4
            assert {link.semantics for link in links} == {
                "#this",
                "#preview",
                "#auxiliary",
                "#progenitor",
            }
            preview = next(links.bysemantics("#preview"))
            assert (await in_thread(fetch, preview.access_url)).content.startswith(PNG_MAGIC)
        batches = await in_thread(lambda: list(results.iter_datalinks()))
        assert len(batches) == len(results)

    async def test_datalink_records_without_descriptor(self, sim: SimulatedVO) -> None:
        """Without a descriptor, records whose access_format is DataLink resolve; FITS ones not."""
        results = await self.search(sim, 2, pos=(RA, DEC, 1.0))
        linked = [r for r in results if r.access_format == DATALINK_TYPE]
        plain = [r for r in results if r.access_format == "image/fits"]
        assert linked
        assert plain
        links = await in_thread(linked[0].getdatalink)
        this = next(links.bysemantics("#this"))
        assert this.content_type == "image/fits"
        body = (await in_thread(fetch, this.access_url)).content
        assert len(body) == this.content_length
        with pytest.raises(DALServiceError, match="No datalink"):
            await in_thread(plain[0].getdatalink)
        found = await in_thread(lambda: list(results.iter_datalinks()))
        assert len(found) == len(linked)

    async def test_repeated_pos_are_ored(self, sim: SimulatedVO) -> None:
        """POS=...&POS=... matches either region (the union of both answers)."""
        first, second = f"CIRCLE {RA} {DEC} 0.3", f"CIRCLE {RA + 1} {DEC} 0.3"
        params = [("POS", first), ("POS", second)]
        async with (
            aiohttp.ClientSession() as session,
            session.get(url_of(sim, 1), params=params) as response,
        ):
            table = parse(io.BytesIO(await response.read())).get_first_table().to_table()
        one = {e.did for e in expected_images(FLEET[1], {"POS": first})}
        two = {e.did for e in expected_images(FLEET[1], {"POS": second})}
        assert one
        assert two
        assert set(table["obs_publisher_did"]) == one | two
        assert len(table) == len(expected_images(FLEET[1], {"POS": [first, second]}))

    async def test_string_constraints_and_maxrec(self, sim: SimulatedVO) -> None:
        """COLLECTION, INSTRUMENT, CALIB and DPTYPE filter; MAXREC=0 gives metadata only."""
        everything = await self.search(sim, 1, pos=(RA, DEC, 2.0))
        record = everything[0]
        narrowed = await self.search(
            sim,
            1,
            pos=(RA, DEC, 2.0),
            collection=record.obs_collection,
            instrument=record.instrument_name,
            calib_level=int(record.calib_level),
            data_type=record.dataproduct_type,
        )
        assert 0 < len(narrowed) < len(everything)
        assert {r.instrument_name for r in narrowed} == {record.instrument_name}
        assert {r.obs_collection for r in narrowed} == {record.obs_collection}
        metadata = await self.search(sim, 1, pos=(RA, DEC, 2.0), maxrec=0)
        assert len(metadata) == 0
        assert "s_region" in metadata.fieldnames

    async def test_misbehaving_services(self, sim: SimulatedVO) -> None:
        """EMPTY: no rows; OVERFLOW: max_rows and a warning; QUERY_ERROR: DALQueryError."""
        assert len(await self.search(sim, 4, pos=(RA, DEC, 1.0))) == 0
        service = await in_thread(SIA2Service, url_of(sim, 5))

        def overflowing() -> int:
            with pytest.warns(DALOverflowWarning):
                return len(service.search(pos=(RA, DEC, 1.0)))

        assert await in_thread(overflowing) == 5
        with pytest.raises(DALQueryError, match="Simulated failure"):
            await self.search(sim, 6, pos=(RA, DEC, 1.0))
        clashing = await self.search(sim, 12, pos=(RA, DEC, 1.0))
        assert len(clashing) > 0
        assert clashing.resultstable.get_field_by_id("calib_level").datatype == "char"

    async def test_bad_pos_is_a_dali_error(self, sim: SimulatedVO) -> None:
        """An unreadable shape: a DALI error document with HTTP 400, which pyvo reports."""
        with pytest.raises(DALQueryError, match="POS"):
            await self.search(sim, 1, POS="SQUARE 1 2 3")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url_of(sim, 1), params={"POS": "SQUARE 1 2 3"}) as response,
        ):
            assert response.status == 400
            info = parse(io.BytesIO(await response.read())).resources[0].infos[0]
        assert (info.name, info.value) == ("QUERY_STATUS", "ERROR")


class TestSsa:
    BAND = (4.0e-7, 6.0e-7)
    TIME = ("2003-01-01T00:00:00", "2020-01-01T00:00:00")

    def params(self, diameter: float) -> dict[str, str]:
        return {
            "REQUEST": "queryData",
            "POS": f"{RA},{DEC}",
            "SIZE": str(diameter),
            "BAND": f"{self.BAND[0]}/{self.BAND[1]}",
            "TIME": f"{self.TIME[0]}/{self.TIME[1]}",
        }

    async def test_search_matches_expected_spectra(self, sim: SimulatedVO) -> None:
        """SSAService: POS, SIZE, BAND and TIME filter; SSARecord accessors work."""
        service = SSAService(url_of(sim, 3))
        results = await in_thread(
            service.search, pos=(RA, DEC), diameter=2.0, band=self.BAND, time=self.TIME
        )
        expected = expected_spectra(FLEET[3], self.params(2.0))
        assert len(results) == len(expected) > 0
        for record, wanted in zip(results, expected, strict=True):
            assert record.acref == url_of(sim, 3) + wanted.path
            assert record.ra == pytest.approx(wanted.ra)
            assert record.dec == pytest.approx(wanted.dec)
            assert record.format == wanted.access_format
            assert record.title
            assert 2003 <= record.dateobs.datetime.year <= 2020
        record = results[0]
        body = (await in_thread(fetch, record.acref)).content
        assert len(body) == record.filesize

    async def test_getdatalink_uses_the_descriptor(self, sim: SimulatedVO) -> None:
        """The DataLink descriptor makes getdatalink() work; #this is the spectrum itself."""
        results = await in_thread(SSAService(url_of(sim, 3)).search, pos=(RA, DEC), diameter=2.0)
        record = results[0]
        links = await in_thread(record.getdatalink)
        assert [link.semantics for link in links] == [
            "#this",
            "#preview",
            "#auxiliary",
            "#progenitor",
        ]
        assert next(links.bysemantics("#this")).access_url == record.acref
        preview = next(links.bysemantics("#preview"))
        assert (await in_thread(fetch, preview.access_url)).content.startswith(PNG_MAGIC)

    async def test_metadata_and_misbehaving_services(self, sim: SimulatedVO) -> None:
        """METADATA lists the columns; QUERY_ERROR raises; EMPTY, OVERFLOW, clashes parse."""
        service = SSAService(url_of(sim, 3))
        columns = await in_thread(lambda: service.columns)
        assert {"ssa_pubdid", "accref", "INPUT:POS", "INPUT:INSTRUMENT"} <= {
            c.name for c in columns
        }
        with pytest.raises(DALQueryError, match="Simulated failure"):
            await in_thread(SSAService(url_of(sim, 7)).search, pos=(RA, DEC), diameter=2.0)
        empty = await in_thread(SSAService(url_of(sim, 11)).search, pos=(RA, DEC), diameter=2.0)
        assert len(empty) == 0
        clashing = await in_thread(SSAService(url_of(sim, 9)).search, pos=(RA, DEC), diameter=2.0)
        assert len(clashing) > 0
        assert isinstance(clashing[0].getbyutype("ssa:Dataset.Length"), str)

        def overflowing() -> int:
            with pytest.warns(DALOverflowWarning):
                return len(SSAService(url_of(sim, 14)).search(pos=(RA, DEC), diameter=2.0))

        assert await in_thread(overflowing) == 2
        with pytest.raises(DALQueryError, match="ICRS"):  # an SSA error, sent with HTTP 200
            await in_thread(service.search, pos=(RA, DEC), POS=f"{RA},{DEC};GALACTIC")


class TestNetworkBehaviours:
    @pytest.mark.parametrize("index", [15, 16])
    async def test_gzip_and_redirect_deliver(self, sim: SimulatedVO, index: int) -> None:
        """Compressed and redirected answers reach pyvo whole, with URLs of the service."""
        results = await in_thread(
            SSAService(url_of(sim, index)).search, pos=(RA, DEC), diameter=2.0
        )
        params = {"REQUEST": "queryData", "POS": f"{RA},{DEC}", "SIZE": "2.0"}
        expected = expected_spectra(FLEET[index], params)
        assert [r.acref for r in results] == [url_of(sim, index) + e.path for e in expected]
        assert len(results) > 0

    async def test_server_errors_are_service_errors(self, sim: SimulatedVO) -> None:
        """A 500 on the query (VOSI still answering) is a DALServiceError in pyvo."""
        service = await in_thread(SIA2Service, url_of(sim, 17))
        with pytest.raises(DALServiceError):
            await in_thread(service.search, pos=(RA, DEC, 1.0))


class TestBelowTheService:
    async def test_datalink_endpoint(self, sim: SimulatedVO) -> None:
        """Repeated IDs (GET and POST), unknown IDs as NotFoundFault rows, MAXREC overflow."""
        query = {"REQUEST": "queryData", "POS": f"{RA},{DEC}", "SIZE": "2"}
        records = expected_spectra(FLEET[3], query)
        assert len(records) >= 2
        ids = [records[0].did, "ivo://elsewhere/x?y", records[1].did]
        url = f"{url_of(sim, 3)}/datalink"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, params=[("ID", i) for i in ids]) as response:
                assert response.content_type == "application/x-votable+xml"
                got = parse(io.BytesIO(await response.read())).get_first_table().to_table()
            async with session.post(url, data=[("ID", i) for i in ids]) as response:
                posted = parse(io.BytesIO(await response.read())).get_first_table().to_table()
            params = [("ID", ids[0]), ("ID", ids[2]), ("MAXREC", "5")]
            async with session.get(url, params=params) as response:
                cut = parse(io.BytesIO(await response.read()))
            async with session.get(url) as response:
                assert response.status == 400
                missing = parse(io.BytesIO(await response.read()))
        assert list(got["ID"]) == [ids[0]] * 4 + [ids[1]] + [ids[2]] * 4
        assert list(posted["ID"]) == list(got["ID"])
        assert got["error_message"][4].startswith("NotFoundFault")
        assert not got["access_url"][4]  # empty: no link, only the error
        assert len(cut.get_first_table().array) == 5
        assert [i.value for i in cut.resources[0].infos] == ["OK", "OVERFLOW"]
        assert missing.resources[0].infos[0].value == "ERROR"

    async def test_files_vosi_and_unknown_paths(self, sim: SimulatedVO) -> None:
        """Data, previews and VOSI are served; unknown records and paths are 404s."""
        record = expected_images(FLEET[2], {"POS": f"CIRCLE {RA} {DEC} 0.5"})[0]
        base = url_of(sim, 2)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/data/{record.obs_id}.fits") as response:
                assert (response.status, response.content_type) == (200, "image/fits")
            async with session.get(f"{base}/preview/{record.obs_id}.png") as response:
                assert (await response.read()).startswith(PNG_MAGIC)
            async with session.get(f"{base}/availability") as response:
                assert b"<vosi:available>true</vosi:available>" in await response.read()
            for path in ("/data/img-0-999999.fits", "/data/spec-1-1.fits", "/nothing"):
                async with session.get(base + path) as response:
                    assert response.status == 404, path
            did = quote(record.did, safe="")
            async with session.get(f"{base}/datalink?ID={did}") as response:
                assert response.status == 200

    async def test_stats_count_served_rows(self, sim: SimulatedVO) -> None:
        """The simulator's counters see the DAL answers like any other."""
        sim.reset_stats()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results = await in_thread(SIAService(url_of(sim, 0)).search, pos=(RA, DEC), size=0.5)
        assert sim.stats().rows_served == len(results)
