"""vosweep's TAP fan-outs (sync, UWS, uploads, capabilities) against the simulated TAP services.

pyvo's TAPService on the same services is the oracle for the rows; the simulator's job
counters prove that no job is ever left behind, whether the job completed, failed,
stalled past its time limit or the fan-out was cancelled.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anyio
import numpy as np
import pytest
from astropy.table import Table

SIM_EXTRA = "the simulated TAP services need the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")
from pyvo.dal import TAPService  # noqa: E402

import vosweep  # noqa: E402
from vosweep.services import Protocol  # noqa: E402
from vosweep.testing import (  # noqa: E402
    Behaviour,
    CapabilitiesState,
    JobOutcome,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
    no_backoff,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

PLAIN = TapProfile(
    binary2=False,
    uploads=False,
    union=False,
    cast=False,
    string=False,
    blocking_wait=False,
    tables=(TapTable.CATALOGUE,),
    maxrec_default=50,
    maxrec_hard=100,
)
PROFILES: dict[str, tuple[ServiceProfile, int]] = {
    "default": (ServiceProfile(), 0),
    "second": (ServiceProfile(), 1),
    "plain": (ServiceProfile(tap=PLAIN), 0),
    "failing": (ServiceProfile(tap=TapProfile(outcome=JobOutcome.ERROR, execution_time=0.1)), 1),
    "stall": (ServiceProfile(max_hang=30, tap=TapProfile(outcome=JobOutcome.STALL)), 1),
    "slow": (ServiceProfile(tap=TapProfile(queue_delay=0.2, execution_time=0.4)), 2),
    "no_wait": (ServiceProfile(tap=TapProfile(blocking_wait=False, execution_time=0.3)), 2),
    "run_ignored": (ServiceProfile(tap=TapProfile(run_on_create=False)), 2),
    "missing_caps": (ServiceProfile(tap=TapProfile(capabilities=CapabilitiesState.MISSING)), 0),
    "broken_caps": (ServiceProfile(tap=TapProfile(capabilities=CapabilitiesState.BROKEN)), 0),
    "http_500": (ServiceProfile(behaviour=Behaviour.HTTP_500), 3),
    "small_uploads": (ServiceProfile(tap=TapProfile(upload_limit=4)), 0),
}
INDEX = {name: index for index, name in enumerate(PROFILES)}
FLEET = [
    ServiceSpec.make(index, host, profile, protocol=Protocol.TAP, seed=5)
    for index, (profile, host) in enumerate(PROFILES.values())
]
CATALOGUE = "SELECT source_id, ra, dec, vmag FROM cat.sources WHERE vmag < 14 ORDER BY source_id"


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    async with SimulatedVO(FLEET) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(sim: SimulatedVO) -> None:
    sim.reset_stats()


def target(sim: SimulatedVO, name: str) -> vosweep.Service:
    return sim.service(INDEX[name]).target()


def engine(**tap: Any) -> vosweep.Engine:
    policy = vosweep.TapPolicy(**{"poll_initial": 0.05, "poll_max": 0.2, "wait": 2, **tap})
    return vosweep.Engine(user_agent_purpose="test", tap=policy)


async def pyvo_sync(sim: SimulatedVO, name: str, adql: str, **kwargs: Any) -> Table:
    def run() -> Table:
        service = TAPService(sim.service(INDEX[name]).url)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pyvo.dal.DALOverflowWarning)
                return service.run_sync(adql, **kwargs).to_table()
        finally:
            service._session.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()

    return await anyio.to_thread.run_sync(run)


def rows(result: vosweep.FanoutResult, sim: SimulatedVO, name: str, column: str) -> list[Any]:
    url = sim.service(INDEX[name]).url
    table = result.table
    return sorted(
        v for v, s in zip(table[column].tolist(), table["service_url"], strict=True) if s == url
    )


class TestSync:
    async def test_rows_equal_pyvo_on_several_services(self, sim: SimulatedVO):
        names = ["default", "second", "plain"]
        async with engine() as e:
            result = await e.fanout(
                [target(sim, n) for n in names], vosweep.TapQuery(CATALOGUE, mode="sync")
            )
        statuses = [o.status for o in result.outcomes]
        # The plain service's default MAXREC (50) cuts the answer, as it does pyvo's.
        assert statuses == [vosweep.Status.OK, vosweep.Status.OK, vosweep.Status.OVERFLOW]
        for name in names:
            expected = await pyvo_sync(sim, name, CATALOGUE)
            assert rows(result, sim, name, "source_id") == sorted(expected["source_id"].tolist())

    async def test_binary2_asked_where_declared(self, sim: SimulatedVO):
        async with engine() as e:
            caps = await e.capabilities(target(sim, "default"))
            plain = await e.capabilities(target(sim, "plain"))
        assert caps is not None
        assert caps.tap is not None
        assert "binary2" in (caps.tap.best_format() or "").lower()
        assert plain is not None
        assert plain.tap is not None
        assert plain.tap.best_format() is None

    async def test_maxrec_overflow_is_kept(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "default")],
                vosweep.TapQuery("SELECT * FROM cat.sources", maxrec=7, mode="sync"),
            )
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.OVERFLOW
        assert outcome.rows == 7

    async def test_bad_adql_is_an_error_with_the_services_message(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "default")],
                vosweep.TapQuery("SELECT * FROM no.such_table", mode="sync"),
            )
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert "such_table" in (outcome.message or "").lower()

    async def test_broken_or_missing_capabilities_fall_back_to_defaults(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "missing_caps"), target(sim, "broken_caps")],
                vosweep.TapQuery(CATALOGUE, mode="sync"),
            )
        assert all(o.status is vosweep.Status.OK for o in result.outcomes), result.summary()

    async def test_unsupported_features_skip_the_service(self, sim: SimulatedVO):
        union = (
            "SELECT source_id FROM cat.sources WHERE vmag < 12 "
            "UNION SELECT source_id FROM cat.sources WHERE vmag > 20"
        )
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "default"), target(sim, "plain")], vosweep.TapQuery(union, mode="sync")
            )
        ok, skipped = result.outcomes
        assert ok.status is vosweep.Status.OK
        assert skipped.status is vosweep.Status.SKIPPED
        assert "UNION" in (skipped.message or "")

    async def test_server_errors_are_outcomes(self, sim: SimulatedVO):
        async with engine() as e:
            with no_backoff():
                result = await e.fanout(
                    [target(sim, "http_500")], vosweep.TapQuery(CATALOGUE, mode="sync")
                )
        assert result.outcomes[0].status is vosweep.Status.ERROR
        assert result.outcomes[0].http_status == 500


class TestAsync:
    @pytest.mark.parametrize("name", ["default", "slow", "no_wait", "run_ignored"])
    async def test_completed_jobs_equal_pyvo_and_are_deleted(self, sim: SimulatedVO, name: str):
        async with engine() as e:
            result = await e.fanout([target(sim, name)], vosweep.TapQuery(CATALOGUE, mode="async"))
        assert result.outcomes[0].status is vosweep.Status.OK, result.summary()
        expected = await pyvo_sync(sim, name, CATALOGUE)
        assert rows(result, sim, name, "source_id") == sorted(expected["source_id"].tolist())
        stats = sim.stats().service(INDEX[name])
        assert stats.jobs_created == 1
        assert sim.jobs_alive() == 0

    async def test_error_job_reports_its_summary(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "failing")], vosweep.TapQuery(CATALOGUE, mode="async")
            )
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert "query timed out on the server" in (outcome.message or "")
        assert sim.jobs_alive() == 0

    async def test_adql_error_in_a_job(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "default")],
                vosweep.TapQuery("SELECT nope FROM cat.sources", mode="async"),
            )
        assert result.outcomes[0].status is vosweep.Status.ERROR
        assert "nope" in (result.outcomes[0].message or "").lower()
        assert sim.jobs_alive() == 0

    async def test_stalled_job_times_out_and_is_deleted(self, sim: SimulatedVO):
        async with engine(job_timeout=1.0) as e:
            started = time.monotonic()
            result = await e.fanout(
                [target(sim, "stall")], vosweep.TapQuery(CATALOGUE, mode="async")
            )
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.TIMEOUT
        assert time.monotonic() - started < 10
        assert sim.stats().service(INDEX["stall"]).jobs_created == 1
        assert sim.jobs_alive() == 0

    async def test_cancelled_fanout_deletes_running_jobs(self, sim: SimulatedVO):
        names = ["stall", "slow", "no_wait"]
        async with engine() as e:
            result = await e.fanout(
                [target(sim, n) for n in names],
                vosweep.TapQuery(CATALOGUE, mode="async"),
                deadline=0.3,
            )
        assert any(o.status is vosweep.Status.CANCELLED for o in result.outcomes)
        assert sum(sim.stats().service(INDEX[n]).jobs_created for n in names) >= 1
        assert sim.jobs_alive() == 0

    async def test_outer_cancel_scope_deletes_jobs(self, sim: SimulatedVO):
        async with engine() as e:
            with anyio.move_on_after(0.4):
                await e.fanout([target(sim, "stall")], vosweep.TapQuery(CATALOGUE, mode="async"))
        assert sim.stats().service(INDEX["stall"]).jobs_created == 1
        assert sim.jobs_alive() == 0

    async def test_many_jobs_on_many_services(self, sim: SimulatedVO):
        names = ["default", "second", "slow", "no_wait", "run_ignored"]
        async with engine() as e:
            result = await e.fanout(
                [target(sim, n) for n in names], vosweep.TapQuery(CATALOGUE, mode="async")
            )
        assert all(o.status is vosweep.Status.OK for o in result.outcomes), result.summary()
        assert sim.jobs_alive() == 0


def positions(n: int) -> Table:
    rng = np.random.default_rng(1)
    return Table(
        {"pid": np.arange(n), "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-60, 60, n)}
    )


UPLOAD_JOIN = (
    "SELECT u.pid, s.source_id FROM TAP_UPLOAD.mine AS u JOIN cat.sources AS s "
    "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 5))"
)


class TestUploads:
    @pytest.mark.parametrize("mode", ["sync", "async"])
    async def test_batched_upload_equals_one_pyvo_upload(self, sim: SimulatedVO, mode: str):
        table = positions(11)
        async with engine(upload_batch_rows=5) as e:
            result = await e.fanout(
                [target(sim, "default")],
                vosweep.TapQuery(UPLOAD_JOIN, uploads={"mine": table}, mode=mode),
            )
        assert result.outcomes[0].status is vosweep.Status.OK, result.summary()
        expected = await pyvo_sync(sim, "default", UPLOAD_JOIN, uploads={"mine": table})
        ours = sorted(
            zip(result.table["pid"].tolist(), result.table["source_id"].tolist(), strict=True)
        )
        theirs = sorted(zip(expected["pid"].tolist(), expected["source_id"].tolist(), strict=True))
        assert ours == theirs
        if mode == "async":
            assert sim.stats().service(INDEX["default"]).jobs_created == 3
            assert sim.jobs_alive() == 0

    async def test_batches_respect_the_upload_limit(self, sim: SimulatedVO):
        table = positions(10)
        async with engine(upload_batch_rows=4) as e:
            result = await e.fanout(
                [target(sim, "small_uploads")],
                vosweep.TapQuery(UPLOAD_JOIN, uploads={"mine": table}, mode="sync"),
            )
        assert result.outcomes[0].status is vosweep.Status.OK, result.summary()

    async def test_service_without_uploads_is_skipped(self, sim: SimulatedVO):
        async with engine() as e:
            result = await e.fanout(
                [target(sim, "plain")],
                vosweep.TapQuery(UPLOAD_JOIN, uploads={"mine": positions(3)}),
            )
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.SKIPPED
        assert "upload" in (outcome.message or "")
        assert sim.stats().service(INDEX["plain"]).requests == 1  # the capabilities only


class TestVosi:
    async def test_tables_equal_pyvo(self, sim: SimulatedVO):
        async with engine() as e:
            tables = await e.tables(target(sim, "default"))
            availability = await e.availability(target(sim, "default"))

        def pyvo_tables() -> list[str]:
            return sorted(TAPService(sim.service(INDEX["default"]).url).tables.keys())

        assert sorted(t.name for t in tables) == await anyio.to_thread.run_sync(pyvo_tables)
        assert availability.available

    async def test_capabilities_fetched_once_per_service(self, sim: SimulatedVO):
        async with engine() as e:
            for _ in range(3):
                await e.fanout([target(sim, "second")], vosweep.TapQuery(CATALOGUE, mode="sync"))
        assert sim.stats().service(INDEX["second"]).requests == 4  # 1 capabilities + 3 queries


class TestDatalink:
    async def test_obscore_previews_equal_pyvo(self, sim: SimulatedVO, offline_pyvo: None):
        adql = "SELECT * FROM ivoa.obscore WHERE access_format LIKE '%datalink%' ORDER BY obs_id"
        async with engine() as e:
            result = await e.fanout([target(sim, "default")], vosweep.TapQuery(adql, maxrec=5))
            links = await e.datalinks(result, semantics="#preview")
        assert result.rows > 0
        assert all(o.status.succeeded for o in links.outcomes), links.summary()

        def pyvo_previews() -> list[str]:
            service = TAPService(sim.service(INDEX["default"]).url)
            found = service.run_sync(adql, maxrec=5)
            return sorted(
                str(link.access_url)
                for record in found
                for link in record.getdatalink().bysemantics("#preview")
            )

        assert sorted(str(u) for u in links.table["access_url"]) == await anyio.to_thread.run_sync(
            pyvo_previews
        )


async def test_running_jobs_per_host_stay_within_the_host_limit():
    """A polled job keeps its host slot: per_host bounds the jobs running at once."""
    slow = ServiceProfile(tap=TapProfile(blocking_wait=False, execution_time=0.4))
    fleet = [ServiceSpec.make(i, 0, slow, protocol=Protocol.TAP, seed=2) for i in range(6)]
    async with SimulatedVO(fleet) as sim:
        config = {"limits": vosweep.Limits(per_host=2), "user_agent_purpose": "test"}
        async with vosweep.Engine(tap=vosweep.TapPolicy(poll_initial=0.05), **config) as e:
            result = await e.fanout(sim.targets(), vosweep.TapQuery(CATALOGUE, mode="async"))
        assert all(o.status is vosweep.Status.OK for o in result.outcomes), result.summary()
        stats = sim.stats()
        assert sum(s.jobs_created for s in stats.services) == 6
        assert stats.max_jobs_executing <= 2
        assert stats.max_in_flight_per_host <= 2
        assert sim.jobs_alive() == 0


async def test_discovered_obscore_services_answer_a_tap_sweep():
    """Registry search (servicetype tap, datamodel obscore) straight into a TAP fan-out."""
    from vosweep.testing import RegistryProfile  # noqa: PLC0415

    fleet = [ServiceSpec.make(i, i % 2, ServiceProfile(), protocol=Protocol.TAP) for i in range(3)]
    async with SimulatedVO(fleet, registry=RegistryProfile(n_resources=50)) as sim:
        registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,))
        async with vosweep.Engine(registry=registry, user_agent_purpose="test") as e:
            search = vosweep.registry.search(
                servicetype="tap", datamodel="obscore", keywords=["fleet"]
            )
            result = await e.fanout(
                search, vosweep.TapQuery("SELECT TOP 5 obs_id FROM ivoa.obscore")
            )
        assert [o.service.name for o in result.outcomes] == [s.name for s in fleet]
        assert all(o.status is vosweep.Status.OK and o.rows == 5 for o in result.outcomes)
