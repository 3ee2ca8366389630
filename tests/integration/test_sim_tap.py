"""The simulated TAP services over real loopback HTTP, with pyvo's TAPService as the oracle.

pyvo is synchronous: it runs in a worker thread while the simulator serves in the event
loop. Raw UWS details pyvo does not expose (303s, WAIT timing, job lists) are checked
with aiohttp.
"""

from __future__ import annotations

import gc
import io
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import numpy as np
import pytest
import requests
import urllib3
from astropy.table import Table

SIM_EXTRA = "the simulated TAP services need the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pytest.importorskip("cdshealpix", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")

from pyvo import registry as pyvo_registry  # noqa: E402
from pyvo.dal import (  # noqa: E402
    DALFormatError,
    DALOverflowWarning,
    DALQueryError,
    DALServiceError,
    TAPService,
)
from pyvo.utils.http import create_session  # noqa: E402

from vosweep.services import Protocol  # noqa: E402
from vosweep.testing import (  # noqa: E402
    Behaviour,
    CapabilitiesState,
    JobOutcome,
    RegistryProfile,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
)
from vosweep.testing._tapdata import table_rows  # noqa: E402
from vosweep.testing._tapjobs import format_time  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

pytestmark = [
    pytest.mark.anyio,
    # pyvo never reads the body of the job document it is redirected to after creating a
    # job, so its connection is only closed by the garbage collector.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

SEED = 3
PLAIN_TAP = TapProfile(
    binary2=False,
    uploads=False,
    union=False,
    cast=False,
    string=False,
    geometry=False,
    blocking_wait=False,
    tables=(TapTable.CATALOGUE,),
    maxrec_default=50,
    maxrec_hard=100,
)
#: name -> (service profile, host): one service per situation.
PROFILES: dict[str, tuple[ServiceProfile, int]] = {
    "default": (ServiceProfile(), 0),
    "plain": (ServiceProfile(tap=PLAIN_TAP), 0),
    "stall": (ServiceProfile(max_hang=30, tap=TapProfile(outcome=JobOutcome.STALL)), 1),
    "failing": (
        ServiceProfile(tap=TapProfile(outcome=JobOutcome.ERROR, execution_time=0.1)),
        1,
    ),
    "limited": (
        ServiceProfile(max_hang=30, tap=TapProfile(outcome=JobOutcome.STALL, execution_duration=1)),
        1,
    ),
    "http_500": (ServiceProfile(behaviour=Behaviour.HTTP_500), 2),
    "gzip": (ServiceProfile(behaviour=Behaviour.GZIP), 2),
    "redirect": (ServiceProfile(behaviour=Behaviour.REDIRECT), 2),
    "truncated": (ServiceProfile(behaviour=Behaviour.TRUNCATED), 2),
    "unavailable": (
        ServiceProfile(behaviour=Behaviour.UNAVAILABLE, fail_times=1, retry_after=0.0),
        2,
    ),
    "broken_caps": (
        ServiceProfile(tap=TapProfile(capabilities=CapabilitiesState.BROKEN)),
        0,
    ),
    "missing_caps": (
        ServiceProfile(tap=TapProfile(capabilities=CapabilitiesState.MISSING, upload_limit=3)),
        0,
    ),
    "slow": (ServiceProfile(tap=TapProfile(queue_delay=0.3, execution_time=0.5)), 1),
    "run_ignored": (ServiceProfile(tap=TapProfile(run_on_create=False)), 1),
    "short_timeout": (ServiceProfile(tap=TapProfile(query_timeout=0.2)), 1),
    "hang": (ServiceProfile(behaviour=Behaviour.HANG, max_hang=0.5), 2),
    "reset": (ServiceProfile(behaviour=Behaviour.RESET), 2),
    "html_200": (ServiceProfile(behaviour=Behaviour.HTML_200), 2),
}
INDEX = {name: index for index, name in enumerate(PROFILES)}
FLEET = [
    ServiceSpec.make(index, host, profile, protocol=Protocol.TAP, seed=SEED)
    for index, (profile, host) in enumerate(PROFILES.values())
]


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    """One VO: a TAP service per situation, and a small registry listing them."""
    async with SimulatedVO(FLEET, registry=RegistryProfile(n_resources=30)) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh_counters(sim: SimulatedVO) -> None:
    """Each test starts with no job and zero counters, whatever the previous one left."""
    for state in sim._services.values():
        if state.tap is not None:
            for job in list(state.tap.jobs.values()):
                state.tap.delete(job, time.monotonic())
    sim.reset_stats()


@pytest.fixture(name="session")
def _session() -> Iterator[requests.Session]:
    """pyvo's HTTP session, closed after the test (else its sockets leak into warnings)."""
    session = create_session()
    yield session
    session.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()  # pyvo's abandoned responses: their sockets close here, not in a later test


def url(sim: SimulatedVO, name: str) -> str:
    return sim.service(INDEX[name]).url


def service(sim: SimulatedVO, name: str, session: requests.Session) -> TAPService:
    return TAPService(url(sim, name), session=session)


async def in_thread(function: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(function)


async def fetch(
    target: str,
    method: str = "GET",
    *,
    params: dict[str, str] | None = None,
    data: Any = None,
    decompress: bool = True,
) -> tuple[int, bytes, Any]:
    """One raw request, redirects not followed."""
    async with (
        aiohttp.ClientSession(auto_decompress=decompress) as session,
        session.request(
            method, target, params=params, data=data, allow_redirects=False
        ) as response,
    ):
        return response.status, await response.read(), response.headers


async def create_job(sim: SimulatedVO, name: str, **params: str) -> str:
    """Create a job with a raw POST; return its URL (from the 303's Location)."""
    form = {"REQUEST": "doQuery", "LANG": "ADQL", **params}
    status, _, headers = await fetch(f"{url(sim, name)}/async", "POST", data=form)
    assert status == 303
    return str(headers["Location"])


def stats(sim: SimulatedVO, name: str) -> Any:
    return sim.stats().service(INDEX[name])


def positions() -> Table:
    return Table({"id": [1, 2, 3], "ra": [10.0, 150.0, 300.0], "dec": [20.0, -30.0, 60.0]})


GEOMETRY_QUERY = (
    "SELECT TOP 1 name FROM cat.sources"
    " WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 10, 5))"
)
CROSS_MATCH = (
    "SELECT u.id, COUNT(*) AS n FROM TAP_UPLOAD.pos AS u JOIN cat.sources AS s"
    " ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 10))"
    " GROUP BY u.id ORDER BY u.id"
)


# -- sync --------------------------------------------------------------------------------


async def test_run_sync_tabledata(sim: SimulatedVO, session: requests.Session) -> None:
    """pyvo's run_sync: TABLEDATA, the UCDs clients look for, every seeded row countable."""
    tap = service(sim, "default", session)
    query = "SELECT TOP 10 source_id, ra, dec, vmag FROM cat.sources ORDER BY source_id"
    result = await in_thread(lambda: tap.run_sync(query))
    assert len(result) == 10
    ucds = {field.name: field.ucd for field in result.resultstable.fields}
    assert ucds["ra"] == "pos.eq.ra;meta.main"
    assert ucds["vmag"] == "phot.mag;em.opt.V"
    table = result.to_table()
    assert list(table["source_id"]) == sorted(table["source_id"])
    count = await in_thread(lambda: tap.run_sync("SELECT COUNT(*) AS n FROM cat.sources"))
    rows = table_rows(TapTable.CATALOGUE, seed=SEED, index=INDEX["default"], base_url="x")
    assert int(count.to_table()["n"][0]) == len(rows)
    assert stats(sim, "default").rows_served == 11


async def test_run_sync_binary2_holds_the_same_rows(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """RESPONSEFORMAT=votable/b2 answers BINARY2 with exactly the TABLEDATA rows and nulls."""
    tap = service(sim, "default", session)
    query = "SELECT TOP 50 * FROM ivoa.obscore ORDER BY obs_id"
    tabledata = await in_thread(lambda: tap.run_sync(query))
    binary2 = await in_thread(lambda: tap.run_sync(query, responseformat="votable/b2"))
    first, second = tabledata.to_table(), binary2.to_table()
    assert first.colnames == second.colnames
    for name in first.colnames:
        assert list(first[name].mask if hasattr(first[name], "mask") else []) == list(
            second[name].mask if hasattr(second[name], "mask") else []
        )
        assert [str(v) for v in first[name]] == [str(v) for v in second[name]], name
    _, body, headers = await fetch(
        f"{url(sim, 'default')}/sync",
        params={"QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore", "RESPONSEFORMAT": "votable/b2"},
    )
    assert headers["Content-Type"] == "application/x-votable+xml;serialization=BINARY2"
    assert b"<BINARY2>" in body


async def test_binary2_refused_where_not_offered(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """A service without BINARY2 refuses it with a DALI error document."""
    tap = service(sim, "plain", session)
    with pytest.raises(DALQueryError, match="RESPONSEFORMAT"):
        await in_thread(
            lambda: tap.run_sync("SELECT TOP 1 * FROM cat.sources", format="votable/b2")
        )


async def test_csv(sim: SimulatedVO) -> None:
    """RESPONSEFORMAT=csv: a header line and one line per row."""
    status, body, headers = await fetch(
        f"{url(sim, 'default')}/sync",
        "POST",
        data={"QUERY": "SELECT TOP 3 source_id, name FROM cat.sources", "RESPONSEFORMAT": "csv"},
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0] == "source_id,name"
    assert len(lines) == 4


async def test_maxrec_default_and_hard_limit_overflow(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """No MAXREC: the default, flagged OVERFLOW; a MAXREC above the hard limit is cut to it."""
    tap = service(sim, "default", session)
    with pytest.warns(DALOverflowWarning, match="server limits"):
        result = await in_thread(lambda: tap.run_sync("SELECT source_id FROM cat.sources"))
    assert (len(result), result.query_status) == (1000, "OVERFLOW")
    exact = await in_thread(lambda: tap.run_sync("SELECT source_id FROM cat.sources", maxrec=7))
    assert (len(exact), exact.query_status) == (7, "OVERFLOW")
    plain = service(sim, "plain", session)
    with pytest.warns(DALOverflowWarning, match="maxrec=1000"):
        capped = await in_thread(lambda: plain.run_sync("SELECT * FROM cat.sources", maxrec=1000))
    assert len(capped) == 100
    small = await in_thread(lambda: tap.run_sync("SELECT TOP 3 source_id FROM cat.sources"))
    assert small.query_status == "OK"


async def test_adql_errors_are_dali_errors_with_400(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """Bad ADQL: HTTP 400 and QUERY_STATUS=ERROR, which pyvo raises as DALQueryError."""
    tap = service(sim, "default", session)
    with pytest.raises(DALQueryError, match=r"unknown table nowhere\.at_all"):
        await in_thread(lambda: tap.run_sync("SELECT * FROM nowhere.at_all"))
    with pytest.raises(DALQueryError, match="Could not parse"):
        await in_thread(lambda: tap.run_sync("SELEKT 1"))
    status, body, _ = await fetch(f"{url(sim, 'default')}/sync", params={"LANG": "ADQL"})
    assert status == 400
    assert b'value="ERROR"' in body
    assert b"missing QUERY" in body


@pytest.mark.parametrize(
    "query",
    [
        "SELECT source_id FROM cat.sources UNION SELECT source_id FROM cat.sources",
        "SELECT TOP 1 CAST(vmag AS DOUBLE) FROM cat.sources",
        "SELECT TOP 1 name FROM cat.sources WHERE name ILIKE 'sim%'",
        GEOMETRY_QUERY,
    ],
)
async def test_undeclared_features_are_refused(
    sim: SimulatedVO, session: requests.Session, query: str
) -> None:
    """What a service's capabilities do not declare, it refuses; the full service runs it."""
    plain = service(sim, "plain", session)
    with pytest.raises(DALQueryError):
        await in_thread(lambda: plain.run_sync(query))
    result = await in_thread(lambda: service(sim, "default", session).run_sync(query, maxrec=5))
    assert result.query_status in {"OK", "OVERFLOW"}


# -- async (UWS) ---------------------------------------------------------------------------


async def test_run_async(sim: SimulatedVO, session: requests.Session) -> None:
    """pyvo's run_async: create, run, wait, fetch and delete; nothing left behind."""
    tap = service(sim, "default", session)
    result = await in_thread(lambda: tap.run_async("SELECT TOP 4 * FROM planets.epn_core"))
    table = result.to_table()
    assert len(table) == 4
    assert {"granule_uid", "time_min", "s_region", "target_class"} <= set(table.colnames)
    counters = stats(sim, "default")
    assert (counters.jobs_created, counters.jobs_deleted, counters.jobs_alive) == (1, 1, 0)
    assert sim.jobs_alive() == 0


async def test_job_step_by_step(sim: SimulatedVO, session: requests.Session) -> None:
    """submit_job, run, wait, fetch_result, delete: each step as UWS 1.1 says."""
    tap = service(sim, "default", session)
    job = await in_thread(lambda: tap.submit_job("SELECT TOP 3 obs_id FROM ivoa.obscore"))
    assert await in_thread(lambda: job.phase) == "PENDING"
    assert stats(sim, "default").jobs_alive == 1
    await in_thread(lambda: job.run().wait(timeout=10))
    assert await in_thread(lambda: job.phase) == "COMPLETED"
    assert await in_thread(lambda: job.result_uri) == f"{job.url}/results/result"
    assert await in_thread(lambda: job.uws_version) == "1.1"
    result = await in_thread(job.fetch_result)
    assert [str(v) for v in result.to_table()["obs_id"]] == [
        f"obs{INDEX['default']}-{k:05d}" for k in range(3)
    ]
    job_url = job.url
    await in_thread(job.delete)
    assert (await fetch(job_url))[0] == 404
    counters = stats(sim, "default")
    assert (counters.jobs_created, counters.jobs_deleted, counters.jobs_alive) == (1, 1, 0)


async def test_async_adql_error_ends_in_error(sim: SimulatedVO, session: requests.Session) -> None:
    """Bad ADQL in a job: ERROR, a fatal errorSummary, the DALI detail at {job}/error."""
    tap = service(sim, "default", session)
    job = await in_thread(lambda: tap.submit_job("SELECT nothing FROM cat.sources"))
    await in_thread(lambda: job.run().wait(timeout=10))
    summary = await in_thread(lambda: job.job.errorsummary)
    assert job._job.phase == "ERROR"
    with pytest.raises(DALQueryError, match="unknown column nothing"):
        job.raise_if_error()
    assert (summary._type, summary.has_detail) == ("fatal", True)
    status, body, _ = await fetch(f"{job.url}/error")
    assert status == 200
    assert b"unknown column nothing" in body
    assert (await fetch(f"{job.url}/results/result"))[0] == 404
    await in_thread(job.delete)
    assert sim.jobs_alive() == 0


async def test_error_outcome(sim: SimulatedVO, session: requests.Session) -> None:
    """A service whose jobs fail: ERROR with its transient message; pyvo deletes the job."""
    tap = service(sim, "failing", session)
    with pytest.raises(DALQueryError, match="query timed out on the server"):
        await in_thread(lambda: tap.run_async("SELECT TOP 1 * FROM cat.sources"))
    counters = stats(sim, "failing")
    assert (counters.jobs_created, counters.jobs_alive) == (1, 0)


async def test_stalled_job_and_pyvo_wait_timeout(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """A stalled job stays EXECUTING; pyvo's wait times out; deleting it leaves nothing."""
    tap = service(sim, "stall", session)
    job = await in_thread(lambda: tap.submit_job("SELECT TOP 1 * FROM cat.sources"))
    started = time.monotonic()
    with pytest.raises(DALServiceError):
        await in_thread(lambda: job.run().wait(timeout=1))
    assert 0.9 < time.monotonic() - started < 5
    assert await in_thread(lambda: job.phase) == "EXECUTING"
    assert stats(sim, "stall").jobs_executing == 1
    await in_thread(job.delete)
    counters = stats(sim, "stall")
    assert (counters.jobs_alive, counters.jobs_executing, counters.max_jobs_executing) == (
        0,
        0,
        1,
    )
    with anyio.fail_after(5):  # the blocked WAIT ended when pyvo gave up
        while sim.stats().service(INDEX["stall"]).in_flight:
            await anyio.sleep(0.05)


async def test_execution_duration_is_enforced(sim: SimulatedVO, session: requests.Session) -> None:
    """A job over its executionDuration (1 s) ends in ERROR saying so."""
    tap = service(sim, "limited", session)
    started = time.monotonic()
    with pytest.raises(DALQueryError, match="execution duration of 1 s"):
        await in_thread(lambda: tap.run_async("SELECT TOP 1 * FROM cat.sources", timeout=10))
    assert time.monotonic() - started >= 1.0
    assert sim.jobs_alive() == 0


async def test_blocking_wait(sim: SimulatedVO) -> None:
    """WAIT blocks until the phase changes (QUEUED, EXECUTING, COMPLETED), never longer."""
    job_url = await create_job(sim, "slow", QUERY="SELECT TOP 1 * FROM cat.sources", PHASE="RUN")
    phases = []
    started = time.monotonic()
    for _ in range(3):
        _, body, _ = await fetch(job_url, params={"WAIT": "10"})
        phases.append(body.decode().split("<uws:phase>")[1].split("<")[0])
        if phases[-1] == "COMPLETED":
            break
    elapsed = time.monotonic() - started
    assert phases[-1] == "COMPLETED"
    assert 0.7 < elapsed < 3
    # PHASE=EXECUTING on a COMPLETED job: at once; WAIT on a final phase: at once.
    started = time.monotonic()
    await fetch(job_url, params={"WAIT": "10", "PHASE": "EXECUTING"})
    await fetch(job_url, params={"WAIT": "-1"})
    assert time.monotonic() - started < 0.5
    # A PENDING job waits as long as asked, and no longer.
    pending = await create_job(sim, "slow", QUERY="SELECT 1")
    started = time.monotonic()
    _, body, _ = await fetch(pending, params={"WAIT": "0.4"})
    assert 0.35 < time.monotonic() - started < 2
    assert b"<uws:phase>PENDING</uws:phase>" in body
    for target in (job_url, pending):
        await fetch(target, "DELETE")
    assert sim.jobs_alive() == 0


async def test_services_without_blocking_wait_answer_at_once(sim: SimulatedVO) -> None:
    """A UWS 1.0-like service ignores WAIT."""
    job_url = await create_job(sim, "plain", QUERY="SELECT 1")
    started = time.monotonic()
    status, body, _ = await fetch(job_url, params={"WAIT": "5"})
    assert status == 200
    assert time.monotonic() - started < 1
    assert b"PENDING" in body
    await fetch(job_url, "DELETE")


async def test_uws_endpoints(sim: SimulatedVO) -> None:
    """Job list, phase, parameters, executionduration, destruction, quote, owner, delete."""
    base = url(sim, "default")
    job_url = await create_job(sim, "default", QUERY="SELECT TOP 2 * FROM cat.sources", RUNID="r7")
    job_id = job_url.rsplit("/", 1)[1]
    assert job_url == f"{base}/async/{job_id}"
    status, body, _ = await fetch(f"{base}/async")
    assert status == 200
    assert f'<uws:jobref id="{job_id}"'.encode() in body
    assert b"<uws:runId>r7</uws:runId>" in body
    assert (await fetch(f"{job_url}/phase"))[1] == b"PENDING"
    assert (await fetch(f"{job_url}/parameters", "POST", data={"MAXREC": "1"}))[0] == 303
    assert (
        b'<uws:parameter id="maxrec">1</uws:parameter>' in (await fetch(f"{job_url}/parameters"))[1]
    )
    assert (await fetch(f"{job_url}/executionduration", "POST", data={"EXECUTIONDURATION": "9"}))[
        0
    ] == 303
    assert (await fetch(f"{job_url}/executionduration"))[1] == b"9"
    soon = format_time(datetime.now(UTC) + timedelta(hours=1))
    assert (await fetch(f"{job_url}/destruction", "POST", data={"DESTRUCTION": soon}))[0] == 303
    assert (await fetch(f"{job_url}/destruction"))[1].decode()[:16] == soon[:16]
    assert (await fetch(f"{job_url}/quote"))[0] == 200
    assert (await fetch(f"{job_url}/owner"))[1] == b""
    assert (await fetch(f"{job_url}/phase", "POST", data={"PHASE": "SUSPEND"}))[0] == 400
    status, _, headers = await fetch(f"{job_url}/phase", "POST", data={"PHASE": "RUN"})
    assert (status, headers["Location"]) == (303, job_url)
    _, body, _ = await fetch(job_url, params={"WAIT": "5"})
    _, body, _ = await fetch(job_url, params={"WAIT": "5"})
    assert b"<uws:phase>COMPLETED</uws:phase>" in body
    result = (await fetch(f"{job_url}/results/result"))[1]
    assert result.count(b"<TR>") == 1  # MAXREC=1
    assert b'value="OVERFLOW"' in result
    running = await fetch(f"{base}/async", params={"PHASE": "COMPLETED"})
    assert job_id.encode() in running[1]
    assert job_id.encode() not in (await fetch(f"{base}/async", params={"PHASE": "PENDING"}))[1]
    status, _, headers = await fetch(job_url, "POST", data={"ACTION": "DELETE"})
    assert (status, headers["Location"]) == (303, f"{base}/async")
    for target in (job_url, f"{job_url}/phase", f"{base}/async/nosuchjob"):
        assert (await fetch(target))[0] == 404
    assert (await fetch(job_url, "DELETE"))[0] == 404
    assert sim.jobs_alive() == 0


async def test_phase_run_at_creation_may_be_ignored(sim: SimulatedVO) -> None:
    """Some services ignore PHASE=RUN with the creation: the job waits for {job}/phase."""
    job_url = await create_job(sim, "run_ignored", QUERY="SELECT 1", PHASE="RUN")
    assert (await fetch(f"{job_url}/phase"))[1] == b"PENDING"
    await fetch(f"{job_url}/phase", "POST", data={"PHASE": "RUN"})
    assert (await fetch(f"{job_url}/phase"))[1] in {b"QUEUED", b"EXECUTING"}
    await fetch(job_url, "DELETE")


async def test_abort(sim: SimulatedVO) -> None:
    """PHASE=ABORT ends a running job ABORTED; it stops counting as executing."""
    job_url = await create_job(sim, "stall", QUERY="SELECT 1", PHASE="RUN")
    assert stats(sim, "stall").jobs_executing == 1
    await fetch(f"{job_url}/phase", "POST", data={"PHASE": "ABORT"})
    assert (await fetch(f"{job_url}/phase"))[1] == b"ABORTED"
    assert stats(sim, "stall").jobs_executing == 0
    await fetch(job_url, "DELETE")


# -- uploads -------------------------------------------------------------------------------


async def test_uploads_sync_and_async(sim: SimulatedVO, session: requests.Session) -> None:
    """An astropy table uploaded by pyvo joins cat.sources, sync and async, same answer."""
    tap = service(sim, "default", session)
    table = positions()
    expected = []
    for ra, dec in zip(table["ra"], table["dec"], strict=True):
        single = await in_thread(
            lambda ra=ra, dec=dec: tap.run_sync(
                "SELECT COUNT(*) AS n FROM cat.sources WHERE 1 = CONTAINS("  # noqa: S608 -- ADQL
                f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 10))"
            )
        )
        expected.append(int(single.to_table()["n"][0]))
    sync = await in_thread(lambda: tap.run_sync(CROSS_MATCH, uploads={"pos": table}))
    answer = await in_thread(lambda: tap.run_async(CROSS_MATCH, uploads={"pos": table}))
    for result in (sync, answer):
        counts = dict(zip(result.to_table()["id"], result.to_table()["n"], strict=True))
        assert [int(counts.get(k, 0)) for k in (1, 2, 3)] == expected
    echo = await in_thread(
        lambda: tap.run_sync("SELECT * FROM TAP_UPLOAD.pos", uploads={"pos": table})
    )
    assert np.array_equal(echo.to_table()["ra"], table["ra"])
    assert sim.jobs_alive() == 0


async def test_uploads_refused_or_too_big(sim: SimulatedVO, session: requests.Session) -> None:
    """No uploads on this service; too many rows on that one; URL uploads nowhere."""
    plain = service(sim, "plain", session)
    with pytest.raises(DALQueryError, match="does not accept table uploads"):
        await in_thread(
            lambda: plain.run_sync("SELECT * FROM TAP_UPLOAD.pos", uploads={"pos": positions()})
        )
    with pytest.raises(DALServiceError):  # job creation answers 400: no job is made
        await in_thread(
            lambda: plain.submit_job("SELECT * FROM TAP_UPLOAD.pos", uploads={"pos": positions()})
        )
    assert stats(sim, "plain").jobs_created == 0
    limited = service(sim, "missing_caps", session)
    big = Table({"x": list(range(5))})
    with pytest.raises(DALQueryError, match="at most 3"):
        await in_thread(lambda: limited.run_sync("SELECT * FROM TAP_UPLOAD.t", uploads={"t": big}))
    with pytest.raises(DALQueryError, match="only inline uploads"):
        await in_thread(
            lambda: limited.run_sync(
                "SELECT * FROM TAP_UPLOAD.t", uploads={"t": "http://127.0.0.1:9/t.xml"}
            )
        )


# -- behaviours ----------------------------------------------------------------------------


async def test_http_500_hits_queries_and_job_creation_not_vosi(
    sim: SimulatedVO, session: requests.Session
) -> None:
    """A failing service fails sync queries and job creation; VOSI still answers."""
    base = url(sim, "http_500")
    tap = service(sim, "http_500", session)
    with pytest.raises(DALServiceError, match="500"):
        await in_thread(lambda: tap.run_sync("SELECT TOP 1 * FROM cat.sources"))
    status, _, _ = await fetch(f"{base}/async", "POST", data={"QUERY": "SELECT 1"})
    assert status == 500
    assert stats(sim, "http_500").jobs_created == 0
    for endpoint in ("capabilities", "availability", "tables", "async"):
        assert (await fetch(f"{base}/{endpoint}"))[0] == 200


async def test_gzip_redirect_and_retry_after(sim: SimulatedVO, session: requests.Session) -> None:
    """gzip bodies, a 307 to another path and one 503 are all survivable by a patient client."""
    query = "SELECT TOP 5 source_id FROM cat.sources"
    _, raw, headers = await fetch(
        f"{url(sim, 'gzip')}/sync", params={"QUERY": query}, decompress=False
    )
    assert headers["Content-Encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b"
    for name in ("gzip", "redirect"):
        tap = service(sim, name, session)
        assert len(await in_thread(lambda tap=tap: tap.run_sync(query))) == 5
    status, _, headers = await fetch(f"{url(sim, 'unavailable')}/sync", params={"QUERY": query})
    assert (status, headers["Retry-After"]) == (503, "0")
    tap = service(sim, "unavailable", session)
    assert len(await in_thread(lambda: tap.run_sync(query))) == 5


#: How pyvo fails on a body cut short: urllib3's error escapes it when reading the stream.
BROKEN_BODY = (DALServiceError, DALFormatError, urllib3.exceptions.ProtocolError)


async def test_truncated_answers(sim: SimulatedVO, session: requests.Session) -> None:
    """Truncation breaks sync answers and job results, not job creation or polling."""
    tap = service(sim, "truncated", session)
    query = "SELECT TOP 200 * FROM cat.sources"
    with pytest.raises(BROKEN_BODY):
        await in_thread(lambda: tap.run_sync(query))
    job = await in_thread(lambda: tap.submit_job(query))
    await in_thread(lambda: job.run().wait(timeout=10))
    assert await in_thread(lambda: job.phase) == "COMPLETED"
    with pytest.raises(BROKEN_BODY):
        await in_thread(job.fetch_result)
    await in_thread(job.delete)
    assert sim.jobs_alive() == 0


@pytest.mark.parametrize("name", ["hang", "reset", "html_200", "http_500"])
async def test_failing_job_creation_makes_no_job(sim: SimulatedVO, name: str) -> None:
    """Hangs (bounded by max_hang), resets and HTML pages instead of a 303: no job exists."""
    started = time.monotonic()
    try:
        status, _, _ = await fetch(f"{url(sim, name)}/async", "POST", data={"QUERY": "SELECT 1"})
    except aiohttp.ClientError:
        status = None
    assert status in {None, 200, 500}
    assert time.monotonic() - started < 3
    assert stats(sim, name).jobs_created == 0
    assert (await fetch(f"{url(sim, name)}/availability"))[0] == 200


async def test_queries_are_bounded_in_time(sim: SimulatedVO) -> None:
    """A query over the service's time limit: 400 on sync, a transient ERROR in a job."""
    # A three-way join: billions of row triples, beyond any time limit on any machine (a
    # two-way join finished within the 0.2 s limit on a fast day).
    heavy = (
        "SELECT COUNT(*) FROM cat.sources AS a, cat.sources AS b, cat.sources AS c"
        " WHERE a.vmag < b.vmag AND b.vmag < c.vmag"
    )
    base = url(sim, "short_timeout")
    started = time.monotonic()
    status, body, _ = await fetch(f"{base}/sync", "POST", data={"QUERY": heavy})
    assert time.monotonic() - started < 3
    assert status == 400
    assert b"time limit" in body
    job_url = await create_job(sim, "short_timeout", QUERY=heavy, PHASE="RUN")
    _, body, _ = await fetch(job_url, params={"WAIT": "5"})
    while b"<uws:phase>EXECUTING" in body or b"<uws:phase>QUEUED" in body:
        _, body, _ = await fetch(job_url, params={"WAIT": "5"})
    assert b'<uws:errorSummary type="transient"' in body
    await fetch(job_url, "DELETE")


async def test_closing_ends_blocked_waits() -> None:
    """A WAIT blocked on a stalled job ends as soon as the simulator closes."""
    spec = ServiceSpec.make(
        0, profile=ServiceProfile(tap=TapProfile(outcome=JobOutcome.STALL)), protocol=Protocol.TAP
    )
    async with SimulatedVO([spec]) as small:
        form = {"QUERY": "SELECT 1", "PHASE": "RUN"}
        status, _, headers = await fetch(f"{small.service(0).url}/async", "POST", data=form)
        assert status == 303
        outcome: list[object] = []

        async def wait() -> None:
            try:
                outcome.append((await fetch(headers["Location"], params={"WAIT": "-1"}))[0])
            except aiohttp.ClientError as exc:
                outcome.append(exc)

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.sleep(0.2)
            await small.aclose()
    assert time.monotonic() - started < 3
    assert outcome


# -- VOSI ----------------------------------------------------------------------------------


async def test_capabilities_as_pyvo_reads_them(sim: SimulatedVO, session: requests.Session) -> None:
    """Limits, formats, uploads and ADQL features as pyvo reads them, per profile."""
    sets = "ivo://ivoa.net/std/TAPRegExt#features-adql-sets"

    def read(name: str) -> Any:
        tap = service(sim, name, session)
        capability = tap.get_tap_capability()
        return tap.maxrec, tap.hardlimit, tap.upload_methods, capability

    maxrec, hard, uploads, capability = await in_thread(lambda: read("default"))
    assert (maxrec, hard) == (1000, 10_000)
    assert [m.ivo_id for m in uploads] == ["ivo://ivoa.net/std/TAPRegExt#upload-inline"]
    assert any("binary2" in f.ivo_id for f in capability.outputformats if f.ivo_id)
    assert capability.get_adql().get_feature(sets, "UNION")
    maxrec, hard, uploads, capability = await in_thread(lambda: read("plain"))
    assert (maxrec, hard, uploads) == (50, 100, [])
    assert capability.get_adql().get_feature(sets, "UNION") is None
    for name in ("broken_caps", "missing_caps"):
        with pytest.raises((DALServiceError, ValueError)):  # pyvo lets the XML error out
            await in_thread(lambda name=name: service(sim, name, session).capabilities)
    assert (await fetch(f"{url(sim, 'missing_caps')}/capabilities"))[0] == 404
    assert (await fetch(f"{url(sim, 'broken_caps')}/availability"))[0] == 200


async def test_tables_as_pyvo_reads_them(sim: SimulatedVO, session: requests.Session) -> None:
    """VOSI tables (min detail, then one table) and TAP_SCHEMA describe the same tables."""
    tap = service(sim, "default", session)

    def read() -> tuple[list[str], Any]:
        tables = tap.tables
        return list(tables.keys()), {c.name: c for c in tables["ivoa.obscore"].columns}

    names, columns = await in_thread(read)
    assert names[:3] == ["ivoa.obscore", "planets.epn_core", "cat.sources"]
    assert "tap_schema.columns" in names
    assert columns["s_region"].ucd == "pos.outline;obs.field"
    assert columns["access_url"].utype == "obscore:Access.Reference"
    plain = await in_thread(lambda: list(service(sim, "plain", session).tables.keys()))
    assert [n for n in plain if not n.startswith("tap_schema")] == ["cat.sources"]
    schema = await in_thread(
        lambda: tap.run_sync(
            "SELECT table_name, utype FROM tap_schema.tables WHERE schema_name <> 'tap_schema'"
        )
    )
    utypes = dict(zip(schema.to_table()["table_name"], schema.to_table()["utype"], strict=True))
    assert utypes["ivoa.obscore"] == "ivo://ivoa.net/std/obscore#table-1.1"
    assert utypes["planets.epn_core"] == "ivo://ivoa.net/std/epntap#table-2.0"
    status, body, _ = await fetch(f"{url(sim, 'default')}/tables/cat.sources")
    assert status == 200
    assert b"pos.eq.ra;meta.main" in body
    assert (await fetch(f"{url(sim, 'default')}/tables/cat.nothing"))[0] == 404


# -- counters --------------------------------------------------------------------------------


async def test_peak_executing_and_reset(sim: SimulatedVO) -> None:
    """Two overlapping jobs: peak 2 (per service and fleet-wide); a reset keeps live jobs."""
    query = "SELECT TOP 1 * FROM cat.sources"
    first = await create_job(sim, "slow", QUERY=query, PHASE="RUN")
    second = await create_job(sim, "slow", QUERY=query, PHASE="RUN")
    for job_url in (first, second):
        while b"COMPLETED" not in (await fetch(job_url, params={"WAIT": "5"}))[1]:
            pass
    counters = stats(sim, "slow")
    assert (counters.max_jobs_executing, counters.jobs_executing) == (2, 0)
    assert sim.stats().max_jobs_executing >= 2
    await fetch(first, "DELETE")
    sim.reset_stats()
    counters = stats(sim, "slow")
    assert (counters.jobs_created, counters.jobs_alive, counters.jobs_deleted) == (1, 1, 0)
    assert counters.max_jobs_executing == 0
    await fetch(second, "DELETE")
    counters = stats(sim, "slow")
    assert (counters.jobs_created, counters.jobs_alive, counters.jobs_deleted) == (1, 0, 1)


async def test_jobs_are_destroyed_at_their_destruction_time(sim: SimulatedVO) -> None:
    """A job past its destruction time is gone (404) and counted as destroyed."""
    soon = format_time(datetime.now(UTC) + timedelta(seconds=0.3))
    job_url = await create_job(sim, "default", QUERY="SELECT 1", DESTRUCTION=soon)
    assert sim.jobs_alive() == 1
    await anyio.sleep(0.5)
    assert (await fetch(job_url))[0] == 404
    counters = stats(sim, "default")
    assert (counters.jobs_alive, counters.jobs_destroyed, counters.jobs_deleted) == (0, 1, 0)


# -- the registry ----------------------------------------------------------------------------


async def test_registry_lists_the_fleet_tap_services(sim: SimulatedVO) -> None:
    """The registry has each TAP service at its base URL, with ObsCore and EPN-TAP declared."""

    def search(**constraints: Any) -> dict[str, Any]:
        previous = pyvo_registry.regtap.get_RegTAP_service_url()
        pyvo_registry.choose_RegTAP_service(sim.registry_url)
        try:
            return {r.ivoid: r for r in pyvo_registry.search(**constraints)}
        finally:
            pyvo_registry.choose_RegTAP_service(previous)

    obscore = await in_thread(lambda: search(servicetype="tap", datamodel="obscore"))
    assert FLEET[INDEX["default"]].ivoid.lower() in obscore
    assert FLEET[INDEX["plain"]].ivoid.lower() not in obscore
    resource = obscore[FLEET[INDEX["default"]].ivoid.lower()]
    assert resource.get_service("tap").baseurl == url(sim, "default")
    epntap = await in_thread(lambda: search(datamodel="epntap"))
    assert FLEET[INDEX["stall"]].ivoid.lower() in epntap
    assert FLEET[INDEX["plain"]].ivoid.lower() not in epntap


async def test_documents_read_back_through_io(sim: SimulatedVO) -> None:
    """The job list of a live service is the UWS pyvo reads (one jobref per live job)."""
    job_url = await create_job(sim, "default", QUERY="SELECT 1")
    _, body, _ = await fetch(f"{url(sim, 'default')}/async")
    jobs = pyvo.io.uws.parse_job_list(io.BytesIO(body))
    assert [j.jobid for j in jobs] == [job_url.rsplit("/", 1)[1]]
    await fetch(job_url, "DELETE")
