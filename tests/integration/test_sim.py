"""The simulated VO does what it claims: real loopback servers, each behaviour, exact counters."""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import numpy as np
import pydantic
import pytest
from astropy.io.votable import parse

from vosweep.errors import UsageError
from vosweep.services import Protocol
from vosweep.testing import (
    DEFAULT_MIX,
    Behaviour,
    ServiceProfile,
    ServiceSpec,
    SimManifest,
    SimProcess,
    SimStats,
    SimulatedVO,
    _sim,
    build_fleet,
    expected_rows,
    override_fleet,
)
from vosweep.testing._sim import PROTOCOL_HANDLERS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from astropy.io.votable.tree import VOTableFile
    from multidict import CIMultiDictProxy

CONE = {"RA": "10.0", "DEC": "20.0", "SR": "0.1"}


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


def votable(body: bytes) -> VOTableFile:
    return parse(io.BytesIO(body))


def resource_statuses(vot: VOTableFile) -> list[str]:
    return [info.value for info in vot.resources[0].infos if info.name == "QUERY_STATUS"]


def separation(ra1: Any, dec1: Any, ra2: float, dec2: float) -> Any:
    """Angular distance in degrees (haversine, stable for small angles)."""
    ra1, dec1, ra2, dec2 = (np.radians(x) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def single(behaviour: Behaviour = Behaviour.OK, **profile: Any) -> list[ServiceSpec]:
    return [ServiceSpec.make(0, 0, ServiceProfile(behaviour=behaviour, **profile))]


@asynccontextmanager
async def serving(
    fleet: list[ServiceSpec], **kwargs: Any
) -> AsyncIterator[tuple[SimulatedVO, aiohttp.ClientSession]]:
    # force_close: one connection per request, so aiohttp never silently retries a
    # request on a reused connection and the server-side counts stay exact.
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        SimulatedVO(fleet, **kwargs) as sim,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        yield sim, session


async def eventually(predicate: Callable[[], bool], within: float = 3.0) -> None:
    with anyio.fail_after(within):
        while not predicate():
            await anyio.sleep(0.01)


@dataclass
class Answer:
    status: int
    content_type: str
    headers: CIMultiDictProxy[str]
    body: bytes
    stats: SimStats


async def fetch_one(fleet: list[ServiceSpec], params: dict[str, str] = CONE) -> Answer:
    """One GET to service 0 of *fleet*, read whole; the simulator's stats once answered."""
    async with (
        serving(fleet) as (sim, session),
        session.get(sim.service(0).url, params=params) as r,
    ):
        body = await r.read()
        return Answer(r.status, r.content_type, r.headers, body, sim.stats())


class TestFleet:
    def test_same_seed_same_fleet(self) -> None:
        """A fleet is a pure function of its arguments."""
        first = build_fleet(300, 12, seed=7, mix=DEFAULT_MIX)
        assert first == build_fleet(300, 12, seed=7, mix=DEFAULT_MIX)
        assert first != build_fleet(300, 12, seed=8, mix=DEFAULT_MIX)

    def test_mix_counts_are_exact(self) -> None:
        """Each behaviour gets round(fraction * n) services; the rest are ok."""
        fleet = build_fleet(1000, 10, seed=1, mix=DEFAULT_MIX)
        counts = Counter(spec.profile.behaviour for spec in fleet)
        for behaviour, fraction in DEFAULT_MIX.items():
            assert counts[behaviour] == round(fraction * 1000)
        assert counts[Behaviour.OK] == 1000 - sum(round(f * 1000) for f in DEFAULT_MIX.values())
        assert all(spec.profile.behaviour is Behaviour.OK for spec in build_fleet(50, 3))

    def test_hosts_are_skewed_like_the_vo(self) -> None:
        """Host 0 carries about a third of the services; the others decay; none is empty."""
        fleet = build_fleet(1000, 20, seed=2)
        per_host = Counter(spec.host_index for spec in fleet)
        assert set(per_host) == set(range(20))
        assert 0.30 <= per_host[0] / 1000 <= 0.40
        assert per_host[1] > per_host[5] > per_host[19] >= 1
        assert {s.host_index for s in build_fleet(5, 5)} == set(range(5))

    def test_latencies_are_lognormal_around_the_median(self) -> None:
        """Latency is drawn once per service with the requested median and a heavy tail."""
        latencies = np.array([s.profile.latency for s in build_fleet(4000, 10, seed=3)])
        assert np.median(latencies) == pytest.approx(0.2, rel=0.05)
        assert latencies.max() > 5 * 0.2

    def test_names_ivoids_and_paths(self) -> None:
        """Services are named scs-00007, ivo://sim.vosweep.test/scs/00007 at /scs/00007."""
        spec = build_fleet(10)[7]
        assert (spec.name, spec.ivoid, spec.path) == (
            "scs-00007",
            "ivo://sim.vosweep.test/scs/00007",
            "/scs/00007",
        )
        assert spec.protocol is Protocol.SCS

    def test_override_hosts_then_services(self) -> None:
        """Host overrides apply first; a service override wins over its host's."""
        fleet = build_fleet(40, 4, seed=5)
        host3 = [s.index for s in fleet if s.host_index == 3]
        changed = override_fleet(
            fleet,
            hosts={3: Behaviour.HTTP_500},
            services={host3[0]: {"behaviour": "hang", "max_hang": 2.0}},
        )
        assert changed[host3[0]].profile.behaviour is Behaviour.HANG
        assert changed[host3[0]].profile.max_hang == 2.0
        assert changed[host3[0]].profile.latency == fleet[host3[0]].profile.latency
        assert all(changed[i].profile.behaviour is Behaviour.HTTP_500 for i in host3[1:])
        untouched = [s for s in changed if s.host_index != 3 and s.index != host3[0]]
        assert all(s == fleet[s.index] for s in untouched)
        with pytest.raises(UsageError):
            override_fleet(fleet, hosts={9: Behaviour.HANG})
        with pytest.raises(UsageError):
            override_fleet(fleet, services={99: Behaviour.HANG})

    def test_profiles_validate(self) -> None:
        """Profiles reject unknown fields, unknown extra columns and negative times."""
        with pytest.raises(pydantic.ValidationError):
            ServiceProfile(extra_columns=("nope",))
        with pytest.raises(pydantic.ValidationError):
            ServiceProfile(latency=-1.0)
        with pytest.raises(pydantic.ValidationError):
            ServiceProfile.model_validate({"behavior": "ok"})
        with pytest.raises(UsageError):
            build_fleet(10, mix={Behaviour.HANG: 0.7, Behaviour.RESET: 0.6})


class TestDocuments:
    @pytest.mark.parametrize(
        "behaviour",
        [
            Behaviour.OK,
            Behaviour.EMPTY,
            Behaviour.OVERFLOW,
            Behaviour.CONFLICTING_TYPES,
            Behaviour.QUERY_ERROR,
        ],
    )
    def test_documents_pass_strict_astropy_verification(self, behaviour: Behaviour) -> None:
        """Every document the SCS handler builds parses with verify="exception" (no warnings)."""
        columns = ("pmra", "pmdec", "parallax", "e_mag", "bmag", "flags")
        spec = ServiceSpec.make(
            0,
            0,
            ServiceProfile(behaviour=behaviour, density=2e4, max_rows=50, extra_columns=columns),
        )
        for params in (CONE, {"RA": "10", "DEC": "95", "SR": "1"}):
            body = PROTOCOL_HANDLERS[Protocol.SCS].answer(spec, params).encode()
            parse(io.BytesIO(body), verify="exception")

    def test_every_behaviour_has_a_delivery(self) -> None:
        """The server knows how to deliver every behaviour a profile can name."""
        assert set(_sim._BEHAVIOURS) == set(Behaviour)


class TestServing:
    @pytest.mark.anyio
    async def test_hosts_listen_on_distinct_loopback_addresses(self) -> None:
        """Host k listens on 127.0.0.(k+1); targets() are SCS services with those hosts."""
        fleet = build_fleet(12, 4, seed=1)
        async with SimulatedVO(fleet) as sim:
            assert [h.name for h in sim.hosts] == [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.4",
            ]
            assert all(h.port > 0 for h in sim.hosts)
            targets = sim.targets()
            assert [t.host for t in targets] == [f"127.0.0.{s.host_index + 1}" for s in fleet]
            assert {t.protocol for t in targets} == {Protocol.SCS}
            assert targets[3].ivoid == fleet[3].ivoid
            assert targets[3].access_url == sim.service(3).url
            assert "12 services on 4 hosts" in repr(sim)
        assert "closed" in repr(sim)

    @pytest.mark.anyio
    async def test_rows_match_expected_rows_and_lie_in_the_cone(self) -> None:
        """Rows lie in the cone and number expected_rows, near the pole and across RA=0 too."""
        fleet = build_fleet(4, 2, seed=11)
        fleet = override_fleet(
            fleet, services={i: {"density": 5000.0, "latency": 0.0} for i in range(4)}
        )
        cones = [(10.0, 20.0, 0.1), (359.99, 0.0, 0.2), (123.4, 89.95, 0.15), (0.0, -45.0, 0.05)]
        async with serving(fleet) as (sim, session):
            for service in sim.services:
                for ra, dec, sr in cones:
                    params = {"RA": str(ra), "DEC": str(dec), "SR": str(sr)}
                    async with session.get(service.url, params=params) as response:
                        assert response.status == 200
                        table = votable(await response.read()).get_first_table().to_table()
                    assert len(table) == expected_rows(service.spec, ra, dec, sr) > 0
                    assert separation(table["ra"], table["dec"], ra, dec).max() <= sr + 1e-8
                    assert len(set(table["id"])) == len(table)
            served = sim.stats().rows_served
        assert served == sum(expected_rows(s.spec, *c) for s in sim.services for c in cones)

    @pytest.mark.anyio
    async def test_votables_carry_units_ucds_nulls_and_escaped_text(self) -> None:
        """astropy reads the FIELD metadata, empty cells as nulls and escaped names."""
        fleet = single(density=20_000.0, extra_columns=("pmra", "pmdec"))
        answer = await fetch_one(fleet)
        assert answer.content_type == "text/xml"
        vot = votable(answer.body)
        fields = {f.name: f for f in vot.get_first_table().fields}
        assert list(fields) == ["id", "ra", "dec", "mag", "name", "pmra", "pmdec"]
        assert (fields["ra"].unit, fields["ra"].ucd) == ("deg", "pos.eq.ra;meta.main")
        assert (fields["dec"].unit, fields["dec"].ucd) == ("deg", "pos.eq.dec;meta.main")
        assert fields["id"].datatype == "long"
        assert fields["mag"].ucd == "phot.mag;em.opt.V"
        assert str(fields["pmra"].unit) == "mas / yr"
        assert all(f.description for f in fields.values())
        table = vot.get_first_table().to_table()
        assert 0 < int(table["mag"].mask.sum()) < len(table)
        assert any(name.endswith(" <A&B>") for name in table["name"])
        assert resource_statuses(vot) == ["OK"]

    @pytest.mark.anyio
    async def test_post_and_lower_case_parameters(self) -> None:
        """Parameter names are case-insensitive, in the query or a POSTed form."""
        fleet = single(density=50_000.0)
        async with serving(fleet) as (sim, session):
            url = sim.service(0).url
            lower = {"ra": "10.0", "dec": "20.0", "sr": "0.1"}
            async with session.get(url, params=lower) as response:
                from_get = votable(await response.read()).get_first_table().to_table()
            async with session.post(
                url, data={"Ra": "10.0", "DEC": "20.0", "sR": "0.1"}
            ) as response:
                from_post = votable(await response.read()).get_first_table().to_table()
        assert len(from_get) == len(from_post) == expected_rows(fleet[0], 10.0, 20.0, 0.1)
        assert list(from_get["id"]) == list(from_post["id"])

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"RA": "10", "DEC": "20"}, "missing required parameter SR"),
            ({"RA": "abc", "DEC": "20", "SR": "1"}, "not a number"),
            ({"RA": "10", "DEC": "95", "SR": "1"}, "outside"),
            ({"RA": "nan", "DEC": "0", "SR": "1"}, "outside"),
        ],
    )
    async def test_bad_parameters_get_the_scs_error_document(
        self, params: dict[str, str], message: str
    ) -> None:
        """Bad requests are answered 200 with an Error INFO and QUERY_STATUS=ERROR (SCS 1.03)."""
        async with serving(single()) as (sim, session):
            async with session.get(sim.service(0).url, params=params) as response:
                assert response.status == 200
                vot = votable(await response.read())
            assert sim.stats().rows_served == 0
        infos = {info.name: info for info in vot.infos}
        assert message in infos["Error"].value
        assert infos["QUERY_STATUS"].value == "ERROR"

    @pytest.mark.anyio
    async def test_verb_selects_columns(self) -> None:
        """VERB=1 gives id/ra/dec, VERB=2 the base columns, no VERB everything."""
        fleet = single(density=20_000.0, extra_columns=("parallax",))
        async with serving(fleet) as (sim, session):
            names = []
            for verb in ("1", "2", None):
                params = CONE | ({"VERB": verb} if verb else {})
                async with session.get(sim.service(0).url, params=params) as response:
                    names.append(
                        [f.name for f in votable(await response.read()).get_first_table().fields]
                    )
        assert names == [
            ["id", "ra", "dec"],
            ["id", "ra", "dec", "mag", "name"],
            ["id", "ra", "dec", "mag", "name", "parallax"],
        ]


class TestBehaviours:
    @pytest.mark.anyio
    async def test_overflow_behaviour(self) -> None:
        """overflow: exactly max_rows rows, then QUERY_STATUS=OVERFLOW after the TABLE."""
        fleet = single(Behaviour.OVERFLOW, density=1.0, max_rows=25)
        answer = await fetch_one(fleet)
        assert answer.stats.service(0).rows_served == 25
        body = answer.body
        vot = votable(body)
        assert len(vot.get_first_table().array) == 25 == expected_rows(fleet[0], 10.0, 20.0, 0.1)
        assert resource_statuses(vot)[-1] == "OVERFLOW"
        assert body.index(b'value="OVERFLOW"') > body.index(b"</TABLE>")

    @pytest.mark.anyio
    async def test_dense_cones_overflow_at_max_rows(self) -> None:
        """A healthy service cuts a cone holding more than max_rows sources, and says so."""
        fleet = single(density=1e6, max_rows=100)
        vot = votable((await fetch_one(fleet)).body)
        assert len(vot.get_first_table().array) == 100 == expected_rows(fleet[0], 10.0, 20.0, 0.1)
        assert resource_statuses(vot) == ["OK", "OVERFLOW"]

    @pytest.mark.anyio
    async def test_empty(self) -> None:
        """empty: a VOTable with its FIELDs and no rows."""
        table = votable(
            (await fetch_one(single(Behaviour.EMPTY, density=1e5))).body
        ).get_first_table()
        assert len(table.array) == 0
        assert [f.name for f in table.fields] == ["id", "ra", "dec", "mag", "name"]

    @pytest.mark.anyio
    async def test_conflicting_types(self) -> None:
        """conflicting_types: the id column is a string such as J053524.0+220012-17."""
        fleet = single(Behaviour.CONFLICTING_TYPES, density=1e5)
        table = votable((await fetch_one(fleet)).body).get_first_table()
        assert table.get_field_by_id("id").datatype == "char"
        ids = list(table.to_table()["id"])
        assert len(ids) == expected_rows(fleet[0], 10.0, 20.0, 0.1)
        assert all(re.fullmatch(r"J\d{6}\.\d[+-]\d{6}-\d+", str(i)) for i in ids)

    @pytest.mark.anyio
    async def test_http_500(self) -> None:
        """http_500: every request gets an HTML 500."""
        async with serving(single(Behaviour.HTTP_500)) as (sim, session):
            for _ in range(3):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    assert response.status == 500
                    assert response.content_type == "text/html"

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("behaviour", "status"), [(Behaviour.UNAVAILABLE, 503), (Behaviour.RATE_LIMITED, 429)]
    )
    async def test_retry_after_then_ok(self, behaviour: Behaviour, status: int) -> None:
        """503/429 with Retry-After for the first fail_times requests, then the table."""
        fleet = single(behaviour, fail_times=2, retry_after=3.0, density=1e5)
        async with serving(fleet) as (sim, session):
            statuses = []
            for _ in range(4):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    statuses.append(response.status)
                    if response.status != 200:
                        assert response.headers["Retry-After"] == "3"
            assert statuses == [status, status, 200, 200]
            assert sim.stats().service(0).rows_served == 2 * expected_rows(
                fleet[0], 10.0, 20.0, 0.1
            )
            sim.reset_stats()
            async with session.get(sim.service(0).url, params=CONE) as response:
                assert response.status == status  # reset_stats restarts the countdown

    @pytest.mark.anyio
    async def test_always_unavailable_with_fractional_retry_after(self) -> None:
        """fail_times < 0 never recovers; sub-second Retry-After is sent as a decimal."""
        fleet = single(Behaviour.UNAVAILABLE, fail_times=-1, retry_after=0.25)
        async with serving(fleet) as (sim, session):
            for _ in range(5):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    assert (response.status, response.headers["Retry-After"]) == (503, "0.25")

    @pytest.mark.anyio
    async def test_flaky(self) -> None:
        """flaky: 500 then 502 for the first fail_times requests, then ok."""
        async with serving(single(Behaviour.FLAKY, fail_times=3)) as (sim, session):
            statuses = []
            for _ in range(5):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    statuses.append(response.status)
        assert statuses == [500, 502, 500, 200, 200]

    @pytest.mark.anyio
    async def test_reset(self) -> None:
        """reset: the connection is aborted without any answer."""
        async with serving(single(Behaviour.RESET)) as (sim, session):
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    await response.read()
            # aiohttp resends an idempotent request once after a disconnect: two resets.
            await eventually(lambda: sim.stats().service(0).aborted == 2)
            assert (sim.stats().service(0).requests, sim.stats().service(0).completed) == (2, 0)

    @pytest.mark.anyio
    async def test_hang_times_out_and_the_handler_is_cancelled(self) -> None:
        """hang: the client times out; its disconnect cancels the handler at once."""
        async with serving(single(Behaviour.HANG, max_hang=30.0)) as (sim, session):
            timeout = aiohttp.ClientTimeout(total=0.3)
            with pytest.raises(TimeoutError):
                async with session.get(
                    sim.service(0).url, params=CONE, timeout=timeout
                ) as response:
                    await response.read()
            await eventually(lambda: sim.stats().in_flight == 0, within=2.0)
            stats = sim.stats().service(0)
            assert (stats.requests, stats.aborted, stats.completed) == (1, 1, 0)

    @pytest.mark.anyio
    async def test_hang_is_bounded_by_max_hang(self) -> None:
        """hang: after max_hang the server drops the connection (every wait is bounded)."""
        async with serving(single(Behaviour.HANG, max_hang=0.2)) as (sim, session):
            with anyio.fail_after(3), pytest.raises(aiohttp.ServerDisconnectedError):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    await response.read()

    @pytest.mark.anyio
    async def test_drip(self) -> None:
        """drip: 200 and headers at once, then a few bytes per interval, never the end."""
        fleet = single(Behaviour.DRIP, drip_interval=0.05, max_hang=0.5, density=1e5)
        async with serving(fleet) as (sim, session):
            with anyio.fail_after(5):
                async with session.get(sim.service(0).url, params=CONE) as response:
                    assert response.status == 200
                    first = await response.content.readany()
                    assert 0 < len(first) <= 64
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await response.read()
            await eventually(lambda: sim.stats().service(0).aborted == 1)

    @pytest.mark.anyio
    async def test_malformed(self) -> None:
        """malformed: 200 text/xml that is not XML."""
        answer = await fetch_one(single(Behaviour.MALFORMED))
        assert (answer.status, answer.content_type) == (200, "text/xml")
        with pytest.raises(ValueError):
            votable(answer.body)

    @pytest.mark.anyio
    async def test_truncated(self) -> None:
        """truncated: 200 with a Content-Length, then the body stops mid-TABLEDATA."""
        async with serving(single(Behaviour.TRUNCATED, density=1e5)) as (sim, session):
            async with session.get(sim.service(0).url, params=CONE) as response:
                assert response.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await response.read()
            await eventually(lambda: sim.stats().service(0).aborted == 1)
            assert sim.stats().rows_served == 0

    @pytest.mark.anyio
    async def test_query_error(self) -> None:
        """query_error: 200 VOTable whose RESOURCE says QUERY_STATUS=ERROR with a message."""
        answer = await fetch_one(single(Behaviour.QUERY_ERROR))
        assert answer.status == 200
        vot = votable(answer.body)
        (info,) = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
        assert info.value == "ERROR"
        assert "Simulated failure" in info.content

    @pytest.mark.anyio
    async def test_html_200(self) -> None:
        """html_200: an HTML page with status 200."""
        answer = await fetch_one(single(Behaviour.HTML_200))
        assert (answer.status, answer.content_type) == (200, "text/html")
        assert b"<html>" in answer.body

    @pytest.mark.anyio
    async def test_redirect(self) -> None:
        """redirect: one 302 to another path on the same host, which answers ok."""
        fleet = single(Behaviour.REDIRECT, density=1e5)
        async with serving(fleet) as (sim, session):
            async with session.get(sim.service(0).url, params=CONE) as response:
                table = votable(await response.read()).get_first_table()
                assert [r.status for r in response.history] == [302]
                assert response.url.host == sim.service(0).host
                assert response.url.path == "/scs/00000/moved"
            assert len(table.array) == expected_rows(fleet[0], 10.0, 20.0, 0.1)
            assert sim.stats().service(0).requests == 2

    @pytest.mark.anyio
    async def test_redirect_loop(self) -> None:
        """redirect_loop: 302 after 302, each at once, until the client gives up."""
        fleet = single(Behaviour.REDIRECT_LOOP, latency=5.0)
        async with serving(fleet) as (sim, session):
            with anyio.fail_after(2), pytest.raises(aiohttp.TooManyRedirects):
                async with session.get(sim.service(0).url, params=CONE, max_redirects=7):
                    pass
            assert sim.stats().service(0).requests == 7  # aiohttp counts the first request

    @pytest.mark.anyio
    async def test_oversized(self) -> None:
        """oversized: about size_bytes of valid VOTable, chunked, without a Content-Length."""
        size = 2 * 2**20
        fleet = single(Behaviour.OVERSIZED, size_bytes=size, density=1e5)
        async with serving(fleet) as (sim, session):
            async with session.get(sim.service(0).url, params=CONE) as response:
                assert response.headers.get("Transfer-Encoding") == "chunked"
                assert "Content-Length" not in response.headers
                body = await response.read()
            assert size <= len(body) < size + 128 * 1024
            assert body.rstrip().endswith(b"</VOTABLE>")
            assert sim.stats().service(0).rows_served == body.count(b"<TR>")

    @pytest.mark.anyio
    async def test_wrong_content_type(self) -> None:
        """wrong_content_type: a valid VOTable labelled text/plain."""
        fleet = single(Behaviour.WRONG_CONTENT_TYPE, density=1e5)
        answer = await fetch_one(fleet)
        assert answer.content_type == "text/plain"
        table = votable(answer.body).get_first_table()
        assert len(table.array) == expected_rows(fleet[0], 10.0, 20.0, 0.1)

    @pytest.mark.anyio
    async def test_gzip(self) -> None:
        """gzip: the body is gzip-compressed and says so in Content-Encoding."""
        fleet = single(Behaviour.GZIP, density=1e5)
        async with (
            SimulatedVO(fleet) as sim,
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(sim.service(0).url, params=CONE) as response,
        ):
            assert response.headers["Content-Encoding"] == "gzip"
            raw = await response.read()
        assert raw[:2] == b"\x1f\x8b"
        table = votable(gzip.decompress(raw)).get_first_table()
        assert len(table.array) == expected_rows(fleet[0], 10.0, 20.0, 0.1)

    @pytest.mark.anyio
    async def test_dead_host_refuses_connections(self) -> None:
        """A dead host has a port but nothing listens: connection refused."""
        fleet = build_fleet(6, 2, seed=4)
        async with serving(fleet, dead_hosts=[1]) as (sim, session):
            dead = next(s for s in sim.services if s.spec.host_index == 1)
            with pytest.raises(aiohttp.ClientConnectorError):
                async with session.get(dead.url, params=CONE):
                    pass
            assert sim.stats().host(1).dead
            assert sim.stats().host(1).requests == 0


class TestCounters:
    @pytest.mark.anyio
    async def test_max_in_flight_is_the_client_concurrency(self) -> None:
        """k concurrent requests to one host show as max_in_flight == k, then 0 in flight."""
        fleet = [ServiceSpec.make(i, 0, ServiceProfile(latency=0.3)) for i in range(7)]
        async with SimulatedVO(fleet) as sim, aiohttp.ClientSession() as session:

            async def fetch(url: str) -> None:
                async with session.get(url, params=CONE) as response:
                    await response.read()

            async with anyio.create_task_group() as group:
                for service in sim.services:
                    group.start_soon(fetch, service.url)
            stats = sim.stats()
            assert (stats.host(0).max_in_flight, stats.host(0).in_flight) == (7, 0)
            assert stats.host(0).requests == stats.host(0).completed == 7
            assert all(s.max_in_flight == 1 for s in stats.services)
            assert stats.host(0).open_connections == 7  # idle keep-alive connections
        await eventually(lambda: sim.stats().open_connections == 0)

    @pytest.mark.anyio
    async def test_in_flight_returns_to_zero_after_client_cancellation(self) -> None:
        """Cancelling hung requests on the client side leaves nothing in flight on the server."""
        fleet = [ServiceSpec.make(i, 0, ServiceProfile(behaviour=Behaviour.HANG)) for i in range(5)]
        async with serving(fleet) as (sim, session):

            async def fetch(url: str) -> None:
                async with session.get(url, params=CONE) as response:
                    await response.read()

            with anyio.move_on_after(0.3):
                async with anyio.create_task_group() as group:
                    for service in sim.services:
                        group.start_soon(fetch, service.url)
            assert sim.stats().host(0).max_in_flight == 5
            await eventually(lambda: sim.stats().in_flight == 0)
            stats = sim.stats()
            assert (stats.requests, stats.aborted, stats.completed) == (5, 5, 0)

    @pytest.mark.anyio
    async def test_reset_stats_keeps_in_flight(self) -> None:
        """reset_stats zeroes the counts but still counts requests that are in the handlers."""
        fleet = [
            ServiceSpec.make(0, 0, ServiceProfile(behaviour=Behaviour.HANG)),
            ServiceSpec.make(1, 0, ServiceProfile(density=1e5)),
        ]
        async with serving(fleet) as (sim, session):
            async with session.get(sim.service(1).url, params=CONE) as response:
                await response.read()
            async with anyio.create_task_group() as group:

                async def hang() -> None:
                    with anyio.move_on_after(2):
                        async with session.get(sim.service(0).url, params=CONE) as response:
                            await response.read()

                group.start_soon(hang)
                await eventually(lambda: sim.stats().in_flight == 1)
                sim.reset_stats()
                stats = sim.stats()
                assert (stats.requests, stats.in_flight, stats.completed, stats.rows_served) == (
                    1,
                    1,
                    0,
                    0,
                )
                group.cancel_scope.cancel()
            await eventually(lambda: sim.stats().in_flight == 0)
            assert sim.stats().aborted == 1

    @pytest.mark.anyio
    async def test_admin_endpoints(self) -> None:
        """The admin site serves stats, manifest and reset as JSON on loopback."""
        fleet = build_fleet(5, 2, seed=9, mix=None)
        async with serving(fleet) as (sim, session):
            async with session.get(sim.service(2).url, params=CONE) as response:
                await response.read()
            async with session.get(f"{sim.admin_url}/_sim/stats") as response:
                stats = SimStats.model_validate_json(await response.read())
            assert stats == sim.stats()
            assert stats.service(2).requests == 1
            async with session.get(f"{sim.admin_url}/_sim/manifest") as response:
                manifest = await response.json()
            assert [s["url"] for s in manifest["services"]] == [s.url for s in sim.services]
            async with session.post(f"{sim.admin_url}/_sim/reset") as response:
                assert response.status == 200
            assert sim.stats().requests == 0

    @pytest.mark.anyio
    async def test_lifecycle(self) -> None:
        """Using a simulator before start is an error; after exit, nothing listens."""
        sim = SimulatedVO(single())
        with pytest.raises(UsageError):
            sim.stats()
        async with sim:
            url = sim.service(0).url
        await sim.aclose()  # idempotent
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                async with session.get(url, params=CONE):
                    pass
        with pytest.raises(UsageError):
            SimulatedVO(single(), n_services=3)

    @pytest.mark.anyio
    async def test_closing_cuts_hung_requests_short(self) -> None:
        """Leaving the context drops hung requests at once, whatever max_hang says."""
        with anyio.fail_after(5):
            async with serving(single(Behaviour.HANG)) as (sim, session):

                async def hang() -> None:
                    with pytest.raises(aiohttp.ClientConnectionError):
                        async with session.get(sim.service(0).url, params=CONE) as response:
                            await response.read()

                async with anyio.create_task_group() as group:
                    group.start_soon(hang)
                    await eventually(lambda: sim.stats().in_flight == 1)
                    await sim.aclose()


def test_subprocess_mode_serves_reports_and_stops() -> None:
    """SimProcess runs the simulator in a child: it serves, reports stats, and stops on exit."""
    fleet = override_fleet(build_fleet(6, 2, seed=3), services={0: {"density": 1e5}})
    with SimProcess(fleet, startup_timeout=60) as process:
        pid = process.pid
        assert pid is not None
        service = process.services[0]
        assert service.url.startswith(f"http://{service.host}:")

        async def query() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.get(service.url, params=CONE) as response,
            ):
                return len(votable(await response.read()).get_first_table().array)

        rows = anyio.run(query)
        assert rows == expected_rows(fleet[0], 10.0, 20.0, 0.1) > 0
        stats = process.stats()
        assert (stats.service(0).requests, stats.service(0).rows_served) == (1, rows)
        process.reset_stats()
        assert process.stats().requests == 0
        assert [t.access_url for t in process.targets()] == [s.url for s in process.services]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_cone_area_sanity() -> None:
    """expected_rows scales with the cone area (density times square degrees)."""
    spec = ServiceSpec.make(0, 0, ServiceProfile(density=1000.0, max_rows=10**9))
    counts = [expected_rows(spec, 10.0, 20.0, sr) for sr in (0.5, 1.0, 2.0)]
    areas = [math.pi * sr**2 for sr in (0.5, 1.0, 2.0)]
    for count, area in zip(counts, areas, strict=True):
        assert count == pytest.approx(1000.0 * area, rel=0.05)


def test_serve_command_writes_a_manifest_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`python -m vosweep.testing serve` announces itself with a manifest and exits on SIGTERM."""
    manifest = tmp_path / "manifest.json"
    command = [sys.executable, "-m", "vosweep.testing", "serve", "--services", "4", "--hosts", "2"]
    command += ["--mix", "realistic", "--manifest", str(manifest), "--max-seconds", "60"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while not manifest.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        data = SimManifest.model_validate_json(manifest.read_bytes())
        assert [s.spec.name for s in data.services] == [
            "scs-00000",
            "scs-00001",
            "scs-00002",
            "scs-00003",
        ]
        assert data.admin_url.startswith("http://127.0.0.1:")
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=10)
        assert child.returncode == 0, stderr.decode()
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
