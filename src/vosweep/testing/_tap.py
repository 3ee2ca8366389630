"""The fleet's TAP 1.1 services: sync and async (UWS 1.1) ADQL queries, uploads and VOSI.

Every ``Protocol.TAP`` service of a `SimulatedVO` serves, below its base URL:

* ``/sync`` (GET, or POST as a form or multipart): ``REQUEST=doQuery`` (optional, as in
  TAP 1.1), ``LANG=ADQL``, ``QUERY``, ``MAXREC``, ``RESPONSEFORMAT`` (or ``FORMAT``:
  TABLEDATA, BINARY2 where offered, CSV), ``UPLOAD``. Errors are DALI error documents
  with HTTP 400. The service's `Behaviour` applies here as it does to cone searches.
* ``/async``: the UWS job list (GET) and job creation (POST, 303 to the job), where the
  behaviours that fail a request before any answer apply (hangs, 5xx, 503/429, resets,
  garbage); ``/async/{id}`` and its children ``phase``, ``executionduration``,
  ``destruction``, ``quote``, ``owner``, ``parameters``, ``results``,
  ``results/result`` (where the behaviours that mangle a document apply: gzip,
  truncation, drips...) and ``error``; ``DELETE`` or ``ACTION=DELETE`` destroys a job.
  Blocking ``WAIT`` (with ``PHASE``) is honoured when the profile says so.
* VOSI: ``/capabilities`` (TAPRegExt; missing or broken when the profile says so),
  ``/availability``, ``/tables`` (``detail=min`` too) and ``/tables/{name}``.
* What ObsCore rows point at, whatever the behaviour (a client that got rows can follow
  them): ``/datalink`` (DataLink 1.1 {links}, GET or POST, ``ID`` repeated, ``MAXREC``),
  ``/data/{obs_id}.fits`` (and its ``.aux.fits`` weight map) and
  ``/preview/{obs_id}.png``. ObsCore rows of DataLink format have the ``/datalink`` URL
  of their ``obs_publisher_did`` as ``access_url``, as on CADC's and DaCHS's services.

Each service holds ObsCore, EPN-TAP and catalogue tables (`vosweep.testing._tapdata`) in
its own SQLite database, built on its first query in a worker thread. Queries run in
worker threads, bounded by the profile's ``query_timeout``, and stop when their client
goes away or their job is deleted. Jobs advance lazily (see `vosweep.testing._tapjobs`):
nothing runs between requests, so the simulator can close at any time.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from aiohttp import web

from vosweep.testing._adql import (
    AdqlDatabase,
    AdqlError,
    AdqlFeatures,
    QueryResult,
    QueryTimeout,
    TableDef,
    UploadedTable,
    require_sim_extra,
)
from vosweep.testing._dal import DATALINK_TYPE, fits_image, png_preview
from vosweep.testing._profiles import (
    Behaviour,
    CapabilitiesState,
    ServiceSpec,
    TapProfile,
    TapTable,
)
from vosweep.testing._tapdata import (
    OBSCORE_MODEL,
    TABLES,
    ObscoreDataset,
    data_tables,
    obscore_datasets,
    obscore_did,
    table_rows,
)
from vosweep.testing._tapdocs import (
    BINARY2_FORMAT,
    BINARY2_TYPE,
    CSV_FORMAT,
    CSV_TYPE,
    TABLEDATA_FORMAT,
    VOTABLE_TYPE,
    Serialization,
    TapCapability,
    availability_xml,
    capabilities_xml,
    error_document,
    result_document,
    table_xml,
    tables_xml,
    tap_schema_rows,
    tap_schema_tables,
)
from vosweep.testing._tapjobs import (
    ACTIVE_PHASES,
    Job,
    JobError,
    JobLedger,
    JobParamError,
    Lifecycle,
    Phase,
    format_time,
    job_list_xml,
    job_xml,
    parameters_xml,
    parse_time,
    parse_wait,
    peak_overlap,
    results_xml,
    select_jobs,
)
from vosweep.testing._tapupload import UploadError, parse_upload, read_upload
from vosweep.testing._votables import Column, Document, escape_text, results_document

if TYPE_CHECKING:
    from aiohttp.web_request import FileField

    from vosweep.testing._sim import Exchange

__all__ = [
    "QueryParamError",
    "TapHandler",
    "TapQuery",
    "TapService",
    "datalink_document",
    "parse_query",
    "tap_capability",
]

#: Values of RESPONSEFORMAT / FORMAT (lower case, no spaces) and what they ask for.
_FORMATS: Mapping[str, Serialization] = {
    "votable": Serialization.TABLEDATA,
    "votable/td": Serialization.TABLEDATA,
    "votabletd": Serialization.TABLEDATA,
    "text/xml": Serialization.TABLEDATA,
    "application/x-votable+xml": Serialization.TABLEDATA,
    "application/x-votable+xml;serialization=tabledata": Serialization.TABLEDATA,
    "votable/b2": Serialization.BINARY2,
    "votableb2": Serialization.BINARY2,
    "votable/binary2": Serialization.BINARY2,
    "application/x-votable+xml;serialization=binary2": Serialization.BINARY2,
    "csv": Serialization.CSV,
    "text/csv": Serialization.CSV,
    "text/csv;header=present": Serialization.CSV,
}
_MEDIA_TYPES: Mapping[Serialization, str] = {
    Serialization.TABLEDATA: VOTABLE_TYPE,
    Serialization.BINARY2: BINARY2_TYPE,
    Serialization.CSV: CSV_TYPE,
}
_LANGS = frozenset({"ADQL", "ADQL-2.0", "ADQL-2.1"})
#: Behaviours that fail a job creation before it is answered (the others create the job
#: normally and act on its result document instead).
_CREATION_FAULTS = frozenset(
    {
        Behaviour.HANG,
        Behaviour.HTTP_500,
        Behaviour.UNAVAILABLE,
        Behaviour.RATE_LIMITED,
        Behaviour.FLAKY,
        Behaviour.RESET,
        Behaviour.MALFORMED,
        Behaviour.HTML_200,
        Behaviour.REDIRECT_LOOP,
    }
)
#: Behaviours that act on how a job's result document travels.
_RESULT_BEHAVIOURS = frozenset(
    {
        Behaviour.GZIP,
        Behaviour.TRUNCATED,
        Behaviour.DRIP,
        Behaviour.OVERSIZED,
        Behaviour.WRONG_CONTENT_TYPE,
    }
)
#: Job parameters that are job attributes, not TAP parameters (UWS).
_UWS_PARAMETERS = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
#: Worker threads one service's queries may use at once (its database has two connections).
_QUERY_THREADS = 2
#: DataLink RESPONSEFORMAT values (lower case, no spaces): a {links} VOTable (DataLink 1.1).
_DATALINK_FORMATS = frozenset({"votable", "application/x-votable+xml", DATALINK_TYPE})
#: What XML 1.0 cannot carry (an ID may hold anything): replaced, so the answer parses.
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Served data files: ``{obs_id}.fits`` and its weight map ``{obs_id}.aux.fits``.
_DATA_FILE = re.compile(r"([\w-]+)(\.aux)?\.fits")
_PREVIEW_FILE = re.compile(r"([\w-]+)\.png")
#: The clock of job timelines: asyncio's loop clock, readable outside the loop too
#: (counters are read from tests, fixtures and the admin site alike).
_now = time.monotonic


class QueryParamError(ValueError):
    """A TAP query parameter is missing or wrong (a DALI error document, HTTP 400)."""


@dataclass(frozen=True, slots=True)
class TapQuery:
    """What one TAP request asks for.

    Attributes:
        adql: The ADQL text.
        maxrec: The row limit (MAXREC, defaulted and capped by the profile).
        serialization: The output format.
    """

    adql: str
    maxrec: int
    serialization: Serialization = Serialization.TABLEDATA

    @property
    def media_type(self) -> str:
        """The answer's media type."""
        return _MEDIA_TYPES[self.serialization]


def parse_query(params: Mapping[str, str], profile: TapProfile) -> TapQuery:
    """Read a TAP query from upper-cased *params* (TAP parameter names ignore case).

    Raises:
        QueryParamError: On a REQUEST other than doQuery, a LANG other than ADQL, a
            missing QUERY, a bad MAXREC, or a RESPONSEFORMAT the service does not offer.
    """
    request = params.get("REQUEST")
    if request is not None and request.strip().lower() != "doquery":
        raise QueryParamError(f"unsupported REQUEST={request!r} (this service only does doQuery)")
    lang = params.get("LANG", "ADQL")
    if lang.strip().upper() not in _LANGS:
        raise QueryParamError(f"unsupported LANG={lang!r}; use ADQL")
    query = params.get("QUERY", "")
    if not query.strip():
        raise QueryParamError("missing QUERY parameter")
    raw_maxrec = params.get("MAXREC", "").strip()
    maxrec = profile.maxrec_default
    if raw_maxrec:
        try:
            maxrec = int(raw_maxrec)
        except ValueError:
            maxrec = -1
        if maxrec < 0:
            raise QueryParamError(f"MAXREC must be a non-negative integer, got {raw_maxrec!r}")
    maxrec = min(maxrec, profile.maxrec_hard)
    serialization = Serialization.TABLEDATA
    raw_format = params.get("RESPONSEFORMAT") or params.get("FORMAT")
    if raw_format:
        key = raw_format.lower().replace(" ", "").replace('"', "")
        chosen = _FORMATS.get(key)
        if chosen is None or (chosen is Serialization.BINARY2 and not profile.binary2):
            offered = "votable, votable/b2, csv" if profile.binary2 else "votable, csv"
            raise QueryParamError(
                f"unsupported RESPONSEFORMAT={raw_format!r}; this service offers {offered}"
            )
        serialization = chosen
    return TapQuery(query, maxrec, serialization)


def tap_capability(spec: ServiceSpec, base_url: str) -> TapCapability:
    """What the TAP service *spec* declares in its VOSI capabilities."""
    tap = spec.profile.tap
    formats = [TABLEDATA_FORMAT, CSV_FORMAT]
    if tap.binary2:
        formats.insert(1, BINARY2_FORMAT)
    retention = round(tap.retention)
    limit = tap.execution_duration
    return TapCapability(
        base_url=base_url,
        features=_features(tap),
        output_formats=tuple(formats),
        data_models=((OBSCORE_MODEL, "ObsCore-1.1"),) if TapTable.OBSCORE in tap.tables else (),
        upload=tap.uploads,
        retention=(retention, retention),
        execution_duration=(limit, limit) if limit > 0 else None,
        output_limit=(tap.maxrec_default, tap.maxrec_hard),
        upload_limit=tap.upload_limit,
        description=f"ADQL on the simulated TAP service {spec.name} (SQLite underneath).",
        vosi_tables="tables-1.1",
    )


def _features(tap: TapProfile) -> AdqlFeatures:
    return AdqlFeatures(sets=tap.union, geometry=tap.geometry, cast=tap.cast, string=tap.string)


def _broken_capabilities(base_url: str) -> str:
    """Capabilities that break off mid-element, as a crashed VOSI endpoint sends."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP"><interface role="std">'
        f"<accessURL use='base'>{base_url}</accessURL><languag"
    )


class TapService:
    """The state of one running TAP service: its database, its jobs and their counters.

    Args:
        spec: The service.
        base_url: Its TAP base URL.

    Raises:
        UsageError: When the ``sim`` extra (sqlglot) is missing.
    """

    def __init__(self, spec: ServiceSpec, base_url: str) -> None:
        require_sim_extra("sqlglot")
        self.spec = spec
        self.base_url = base_url
        self.data_tables = data_tables(spec.profile.tap)
        self.tables: tuple[TableDef, ...] = (*self.data_tables, *tap_schema_tables())
        self.jobs: dict[str, Job] = {}
        self.ledger = JobLedger()
        self.lifecycle = Lifecycle.of(spec.profile)
        self._database: AdqlDatabase | None = None
        self._datasets: Mapping[str, ObscoreDataset] = {}
        self._build_lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(_QUERY_THREADS)
        self._changed: dict[str, anyio.Event] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._closed = False
        self._created = 0

    @property
    def profile(self) -> TapProfile:
        """The service's TAP profile."""
        return self.spec.profile.tap

    @property
    def jobs_url(self) -> str:
        """The job list's URL (``{base}/async``)."""
        return f"{self.base_url}/async"

    def job_url(self, job: Job) -> str:
        """A job's URL."""
        return f"{self.jobs_url}/{job.job_id}"

    # -- the database ----------------------------------------------------------------------

    def _build(self) -> tuple[AdqlDatabase, dict[str, ObscoreDataset]]:
        rows: dict[str, list[tuple[object, ...]]] = {}
        datasets: dict[str, ObscoreDataset] = {}
        for table in self.profile.tables:
            rows[TABLES[table].qualified_name] = table_rows(
                table, seed=self.spec.seed, index=self.spec.index, base_url=self.base_url
            )
            if table is TapTable.OBSCORE:
                datasets = obscore_datasets(rows[TABLES[table].qualified_name])
        database = AdqlDatabase(
            self.tables,
            {**rows, **tap_schema_rows(self.tables)},
            features=_features(self.profile),
            timeout=self.profile.query_timeout,
            connections=_QUERY_THREADS,
        )
        return database, datasets

    async def database(self) -> AdqlDatabase:
        """The service's database, built on first use (in a worker thread, once)."""
        async with self._build_lock:
            if self._database is None:
                # Shielded: a client leaving mid-build must not waste the build.
                with anyio.CancelScope(shield=True):
                    database, datasets = await anyio.to_thread.run_sync(self._build)
                if self._closed:
                    database.close()
                    raise AdqlError("the service is shutting down")
                self._database, self._datasets = database, datasets
            return self._database

    async def datasets(self) -> Mapping[str, ObscoreDataset]:
        """The ObsCore datasets, by ``obs_publisher_did`` (empty without ObsCore).

        They come with the database (built on first use), so that links and files
        agree with what queries find.

        Raises:
            AdqlError: When the service is shutting down.
        """
        await self.database()
        return self._datasets

    async def dataset(self, obs_id: str) -> ObscoreDataset | None:
        """The ObsCore dataset whose ``obs_id`` is *obs_id*, or None.

        Raises:
            AdqlError: When the service is shutting down.
        """
        return (await self.datasets()).get(obscore_did(self.spec.index, obs_id))

    def _answer(
        self,
        database: AdqlDatabase,
        query: TapQuery,
        uploads: Sequence[UploadedTable],
        cancel: threading.Event,
    ) -> Document:
        """Run *query* and write its answer (in a worker thread: both take a while)."""
        behaviour = self.spec.profile.behaviour
        result = database.execute(query.adql, maxrec=query.maxrec, uploads=uploads, cancel=cancel)
        overflow: bool | None = None
        if behaviour is Behaviour.EMPTY:
            result = QueryResult(result.columns, [], overflow=False, sql=result.sql)
        elif behaviour is Behaviour.OVERFLOW:
            cut = min(len(result.rows), self.spec.profile.max_rows)
            result = QueryResult(result.columns, result.rows[:cut], overflow=True, sql=result.sql)
            overflow = True
        return result_document(
            result,
            query=query.adql,
            maxrec=query.maxrec,
            serialization=query.serialization,
            software=f"vosweep simulated TAP ({self.spec.name})",
            overflow=overflow,
        )

    async def answer(
        self,
        query: TapQuery,
        uploads: Sequence[UploadedTable] = (),
        cancel: threading.Event | None = None,
    ) -> Document:
        """Run *query* in a worker thread; cancelling the caller stops the query.

        Raises:
            AdqlError: When the query is wrong, unsupported, fails, times out or is cancelled.
        """
        database = await self.database()
        stop = cancel if cancel is not None else threading.Event()
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(self._answer, database, query, uploads, stop),
                abandon_on_cancel=True,
                limiter=self._limiter,
            )
        finally:
            stop.set()  # stops an abandoned query; harmless once it is done

    def query_error(self) -> str:
        """The message of a ``query_error`` service's refusals."""
        return f"Simulated failure of {self.spec.name}: table temporarily unavailable for queries"

    # -- jobs ------------------------------------------------------------------------------

    def create_job(
        self, params: Mapping[str, str], uploads: Sequence[UploadedTable], now: float
    ) -> Job:
        """A new PENDING job (QUEUED when PHASE=RUN came along and the profile honours it).

        Raises:
            JobParamError: On a bad EXECUTIONDURATION or DESTRUCTION.
        """
        self.expire(now)
        self._created += 1
        wall = datetime.now(UTC)
        job = Job(
            job_id=f"{self._created:05d}{secrets.token_hex(3)}",
            created=now,
            created_wall=wall,
            lifecycle=self.lifecycle,
            parameters={
                key.lower(): value for key, value in params.items() if key not in _UWS_PARAMETERS
            },
            execution_duration=self._duration(params.get("EXECUTIONDURATION")),
            destruction=now + self.profile.retention,
            run_id=params.get("RUNID"),
            uploads=tuple(uploads),
        )
        if params.get("DESTRUCTION"):
            self.set_destruction(job, params["DESTRUCTION"], now)
        self.jobs[job.job_id] = job
        self._changed[job.job_id] = anyio.Event()
        self._locks[job.job_id] = anyio.Lock()
        self.ledger.created += 1
        if params.get("PHASE", "").strip().upper() == "RUN" and self.profile.run_on_create:
            job.run(now)
        return job

    def _duration(self, raw: str | None) -> int:
        """EXECUTIONDURATION, capped by the profile's limit (0 asks for the most allowed)."""
        limit = self.profile.execution_duration
        if raw is None or not raw.strip():
            return limit
        try:
            asked = int(float(raw))
        except ValueError:
            raise JobParamError(f"EXECUTIONDURATION must be whole seconds, not {raw!r}") from None
        if asked < 0:
            raise JobParamError(f"EXECUTIONDURATION must not be negative, got {raw!r}")
        if limit > 0 and (asked == 0 or asked > limit):
            return limit
        return asked

    def set_execution_duration(self, job: Job, raw: str) -> None:
        """``POST {job}/executionduration``: only while the job is PENDING.

        Raises:
            JobParamError: On a bad value or a job that already started.
        """
        if job.phase is not Phase.PENDING:
            raise JobParamError(f"the job is {job.phase.value}: its executionDuration is fixed")
        job.execution_duration = self._duration(raw)

    def set_destruction(self, job: Job, raw: str, now: float) -> None:
        """``DESTRUCTION``: a new destruction time, no later than the retention allows.

        Raises:
            JobParamError: When it is not an ISO 8601 datetime.
        """
        wanted = parse_time(raw)
        delay = (wanted - job.wall(now)).total_seconds()
        latest = job.created + self.profile.retention
        job.destruction = min(max(now + delay, now), latest)

    def job(self, job_id: str, now: float) -> Job | None:
        """The live job *job_id* (destroying expired jobs first), or None."""
        self.expire(now)
        return self.jobs.get(job_id)

    def _notify(self, job_id: str) -> None:
        event = self._changed.get(job_id)
        if event is not None:
            event.set()
            self._changed[job_id] = anyio.Event()

    async def settle(self, job: Job) -> None:
        """Advance *job* to now, running its query when it is due."""
        lock = self._locks.get(job.job_id)
        if lock is None:  # deleted meanwhile
            job.advance(_now())
            return
        async with lock:
            while job.advance(_now()) and job.deleted_at is None:
                outcome = await self._run_query(job)
                if isinstance(outcome, JobError):
                    job.fail(outcome)
                else:
                    job.complete(*outcome)
                self._notify(job.job_id)

    async def _run_query(self, job: Job) -> tuple[Document, str] | JobError:
        """A due job's result and its media type, or its errorSummary."""
        if self.spec.profile.behaviour is Behaviour.QUERY_ERROR:
            return JobError(self.query_error(), fatal=False)
        params = {key.upper(): value for key, value in job.parameters.items()}
        cancel = self._cancels[job.job_id] = threading.Event()
        try:
            query = parse_query(params, self.profile)
            return await self.answer(query, job.uploads, cancel), query.media_type
        except QueryParamError as exc:
            return JobError(str(exc))
        except QueryTimeout as exc:
            return JobError(str(exc), fatal=False)  # another try may find the server idler
        except AdqlError as exc:
            return JobError(str(exc))
        finally:
            self._cancels.pop(job.job_id, None)

    def run(self, job: Job, now: float) -> None:
        """``PHASE=RUN``."""
        if job.run(now):
            self._notify(job.job_id)

    def abort(self, job: Job, now: float) -> None:
        """``PHASE=ABORT``: the job ends ABORTED and its running query stops."""
        if job.abort(now):
            self._stop_query(job.job_id)
            self._notify(job.job_id)

    def _stop_query(self, job_id: str) -> None:
        cancel = self._cancels.get(job_id)
        if cancel is not None:
            cancel.set()

    def delete(self, job: Job, now: float, *, destroyed: bool = False) -> None:
        """Destroy *job*: it stops, leaves the list and its URLs answer 404."""
        if self.jobs.pop(job.job_id, None) is None:
            return
        job.delete(now)
        self.ledger.forget(job, destroyed=destroyed)
        self._stop_query(job.job_id)
        event = self._changed.pop(job.job_id, None)
        if event is not None:
            event.set()  # blocked WAITs return (no new event: this may run outside the loop)
        self._locks.pop(job.job_id, None)

    def expire(self, now: float) -> None:
        """Destroy the jobs whose destruction time has come."""
        for job in [job for job in self.jobs.values() if job.destruction <= now]:
            self.delete(job, now, destroyed=True)

    async def wait(self, job: Job, seconds: float, phase: Phase | None) -> None:
        """UWS 1.1 blocking ``WAIT``, bounded by the profile's ``max_wait``.

        Returns when the phase leaves *phase* (or the current one), the job leaves the
        active phases or is deleted, *seconds* pass, or the simulator closes.
        """
        await self.settle(job)
        reference = phase if phase is not None else job.phase
        deadline = _now() + min(seconds, self.profile.max_wait)
        while (
            job.phase is reference
            and job.phase in ACTIVE_PHASES
            and job.deleted_at is None
            and not self._closed
        ):
            now = _now()
            if now >= deadline:
                return
            event = self._changed.get(job.job_id)
            if event is None:
                return
            wake = min(deadline, job.next_change())
            with anyio.move_on_after(max(wake - now, 0.001)):
                await event.wait()
            await self.settle(job)

    # -- counters --------------------------------------------------------------------------

    def intervals(self, now: float) -> list[tuple[float, float]]:
        """EXECUTING intervals of every job counted since the last reset (for the peak)."""
        self.expire(now)
        live = [job.executing_interval() for job in self.jobs.values()]
        return [*self.ledger.gone, *(i for i in live if i is not None)]

    def counts(self, now: float) -> dict[str, int]:
        """The job counters of `ServiceStats`."""
        intervals = self.intervals(now)
        return {
            "jobs_created": self.ledger.created,
            "jobs_alive": len(self.jobs),
            "jobs_deleted": self.ledger.deleted,
            "jobs_destroyed": self.ledger.destroyed,
            "jobs_executing": sum(job.executing(now) for job in self.jobs.values()),
            "max_jobs_executing": peak_overlap(intervals, self.ledger.since, now),
        }

    def reset(self, now: float) -> None:
        """Count afresh; live jobs stay counted as created."""
        self.expire(now)
        self.ledger.reset(now, len(self.jobs))

    def close(self) -> None:
        """Stop running queries and wake every waiter (idempotent)."""
        self._closed = True
        for cancel in self._cancels.values():
            cancel.set()
        for event in self._changed.values():
            event.set()
        if self._database is not None:
            self._database.close()


# -- DataLink ------------------------------------------------------------------------------

#: The {links} columns of DataLink 1.1, in its order, with the UCDs it gives them.
_LINK_COLUMNS = (
    Column("ID", "char", "meta.id;meta.main", "The dataset these links belong to", None, "*"),
    Column("access_url", "char", "meta.ref.url", "Where to get the linked resource", None, "*"),
    Column("service_def", "char", "meta.ref", "Service descriptor to use instead", None, "*"),
    Column("error_message", "char", "meta.code.error", "Why there is no link", None, "*"),
    Column("semantics", "char", "meta.code", "What the link is (DataLink core)", None, "*"),
    Column("description", "char", "meta.note", "What the link is, for humans", None, "*"),
    Column("content_type", "char", "meta.code.mime", "MIME type of the resource", None, "*"),
    Column("content_length", "long", "phys.size;meta.file", "Size of the resource", "byte"),
    Column("content_qualifier", "char", "meta.code.class", "Product type of it", None, "*"),
    Column("local_semantics", "char", "meta.code", "What the link is, here", None, "*"),
    Column("link_auth", "char", "meta.code", "Whether it needs authentication", None, "*"),
    Column("link_authorized", "boolean", "meta.code", "Whether the caller may use it"),
)


def _links(dataset: ObscoreDataset | None, did: str, base_url: str) -> list[tuple[str, ...]]:
    """The {links} rows of *did*: ``#this``, ``#preview`` and ``#auxiliary``, or an error."""
    if dataset is None:
        message = f"NotFoundFault: no dataset {did} at this service"
        return [(did, "", "", message, "#this", "", "", "", "", "", "", "")]
    obs_id, kind = dataset.obs_id, dataset.dataproduct_type
    fits_size = str(len(fits_image()))
    links = (
        # path, semantics, description, content type, length, qualifier, local semantics
        (f"/data/{obs_id}.fits", "#this", f"The {kind}", "application/fits", fits_size,
         f"#{kind}", "science"),
        (f"/preview/{obs_id}.png", "#preview", "Quick-look image", "image/png",
         str(len(png_preview())), "", "quicklook"),
        (f"/data/{obs_id}.aux.fits", "#auxiliary", "Weight map", "application/fits", fits_size,
         "#image", "weights"),
    )  # fmt: skip
    public = ("false", "T")  # no authentication needed, and the caller may use the link
    return [
        (did, base_url + path, "", "", semantics, text, mime, size, qualifier, local, *public)
        for path, semantics, text, mime, size, qualifier, local in links
    ]


def _cell(text: str) -> str:
    """*text* as TABLEDATA cell content: escaped, and safe from XML's newline rewriting."""
    return escape_text(_ILLEGAL_XML.sub("\ufffd", text)).replace("\r", "&#13;")


def datalink_document(
    datasets: Mapping[str, ObscoreDataset],
    ids: Sequence[str],
    *,
    base_url: str,
    limit: int,
    name: str = "the simulated TAP service",
) -> Document:
    """The DataLink 1.1 {links} answer for *ids* (pure).

    Each ID gets its rows in request order: ``#this`` (the data file), ``#preview`` and
    ``#auxiliary`` when it is one of *datasets*, else one row whose error_message is a
    ``NotFoundFault``. More rows than *limit* (MAXREC) are cut, with QUERY_STATUS=OVERFLOW.

    Args:
        datasets: The service's ObsCore datasets, by ``obs_publisher_did``.
        ids: The ID parameter's values.
        base_url: The service's base URL, which links point below.
        limit: The most rows to send.
        name: The service's name, for the table description.
    """
    base = base_url.rstrip("/")
    rows: list[tuple[str, ...]] = []
    for did in ids:
        rows.extend(_links(datasets.get(did), did, base))
        if len(rows) > limit:
            break
    kept = [[_cell(text) for text in row] for row in rows[:limit]]
    return results_document(
        _LINK_COLUMNS,
        [list(column) for column in zip(*kept, strict=True)],
        description=f"Links of datasets of {name}",
        overflow_message=f"links truncated at MAXREC={limit}" if len(rows) > limit else None,
    )


def _datalink_limit(params: Mapping[str, str], profile: TapProfile) -> int:
    """The row limit of a DataLink request: MAXREC, capped by the service's hard limit.

    Raises:
        QueryParamError: On a bad MAXREC or a RESPONSEFORMAT other than a VOTable.
    """
    raw_format = params.get("RESPONSEFORMAT")
    if raw_format and raw_format.lower().replace(" ", "").replace('"', "") not in _DATALINK_FORMATS:
        raise QueryParamError(f"unsupported RESPONSEFORMAT={raw_format!r}; use {DATALINK_TYPE}")
    raw = params.get("MAXREC", "").strip()
    if not raw:
        return profile.maxrec_hard
    try:
        maxrec = int(raw)
    except ValueError:
        maxrec = -1
    if maxrec < 0:
        raise QueryParamError(f"MAXREC must be a non-negative integer, got {raw!r}")
    return min(maxrec, profile.maxrec_hard)


# -- the HTTP side -------------------------------------------------------------------------


def _all_values(request: web.Request, form: Mapping[str, Any], name: str) -> list[str]:
    """Every value of parameter *name* (any case) in the query string and the form."""
    values = [v for k, v in request.query.items() if k.upper() == name]
    values += [v for k, v in form.items() if k.upper() == name and isinstance(v, str)]
    return values


def _read_part(value: FileField | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return value.file.read()


class TapHandler:
    """Answers TAP requests (the TAP entry of the simulator's protocol registry)."""

    def answer(self, spec: ServiceSpec, params: Mapping[str, str]) -> Document:
        """What the bare base URL says: queries go below it."""
        del params
        return error_document(
            f"{spec.name} is a TAP 1.1 service: send queries to {spec.path}/sync or "
            f"{spec.path}/async"
        )

    async def document(self, ex: Exchange) -> Document:
        """The document of a request that goes through the service's behaviour."""
        tap = ex.state.tap
        if not ex.subpath or tap is None:
            return self.answer(ex.spec, await ex.params())
        segments = ex.subpath.strip("/").split("/")
        if len(segments) == 4 and segments[0] == "async" and segments[2:] == ["results", "result"]:
            job = tap.jobs.get(segments[1])
            if job is not None and job.result is not None:
                ex.content_type = job.result_type
                return job.result
            ex.status = 404
            return error_document("this job has no result")
        return await self._sync(ex, tap)

    async def _sync(self, ex: Exchange, tap: TapService) -> Document:
        params = await ex.params()
        ex.content_type = VOTABLE_TYPE
        try:
            query = parse_query(params, tap.profile)
            uploads = await self._uploads(ex, tap)
        except (QueryParamError, UploadError) as exc:
            ex.status = 400
            return error_document(str(exc))
        if ex.spec.profile.behaviour is Behaviour.QUERY_ERROR:
            return error_document(tap.query_error())  # sent with 200, as the behaviour says
        try:
            document = await tap.answer(query, uploads)
        except AdqlError as exc:
            ex.status = 400
            return error_document(str(exc))
        ex.content_type = query.media_type
        return document

    async def _uploads(self, ex: Exchange, tap: TapService) -> tuple[UploadedTable, ...]:
        """The tables a request uploads, read in a worker thread.

        Raises:
            UploadError: On malformed, missing, too big or refused uploads.
        """
        request = ex.request
        form: Mapping[str, Any] = await request.post() if request.method == "POST" else {}
        refs = parse_upload(_all_values(request, form, "UPLOAD"))
        if not refs:
            return ()
        if not tap.profile.uploads:
            raise UploadError("this service does not accept table uploads (UPLOAD)")
        parts: list[tuple[str, FileField | str]] = []
        for ref in refs:
            if ref.part is None:
                raise UploadError(
                    f"UPLOAD {ref.name}: only inline uploads (name,param:part) are accepted,"
                    f" not {ref.uri}"
                )
            value = form.get(ref.part)
            if value is None:
                value = next((v for k, v in form.items() if k.lower() == ref.part.lower()), None)
            if value is None:
                raise UploadError(f"UPLOAD {ref.name} refers to param:{ref.part}, which is missing")
            parts.append((ref.name, value))

        def read() -> tuple[UploadedTable, ...]:
            limit = tap.profile.upload_limit
            return tuple(read_upload(name, _read_part(v), max_rows=limit) for name, v in parts)

        return await anyio.to_thread.run_sync(read)

    async def serve_subpath(self, ex: Exchange) -> web.StreamResponse | None:
        """Route a request below the base URL; None (404) for paths TAP does not have."""
        tap = ex.state.tap
        if tap is None:
            return None
        segments = ex.subpath.strip("/").split("/")
        method = ex.request.method
        match segments:
            case ["sync"]:
                if method not in {"GET", "POST"}:
                    return await _text(ex, 405, "use GET or POST\n")
                return await ex.behave()
            case ["async"]:
                if method == "POST":
                    return await self._create(ex, tap)
                if method == "GET":
                    return await self._job_list(ex, tap)
                return await _text(ex, 405, "use GET or POST\n")
            case ["async", job_id, *rest]:
                return await self._job_route(ex, tap, job_id, rest)
            case ["capabilities"]:
                return await self._capabilities(ex, tap)
            case ["availability"]:
                return await _xml(ex, availability_xml(note=f"{ex.spec.name} is up"))
            case ["tables"]:
                detail = ex.request.query.get("detail", "").lower()
                return await _xml(ex, tables_xml(tap.tables, columns=detail != "min"))
            case ["tables", name]:
                for table in tap.tables:
                    if table.qualified_name.lower() == name.lower():
                        return await _xml(ex, table_xml(table))
                return await _text(ex, 404, f"no table {name}\n")
            case ["datalink"]:
                if method not in {"GET", "POST"}:
                    return await _text(ex, 405, "use GET or POST\n")
                return await self._datalink(ex, tap)
            case ["data", name] if method == "GET":
                return await self._file(ex, tap, name, _DATA_FILE)
            case ["preview", name] if method == "GET":
                return await self._file(ex, tap, name, _PREVIEW_FILE)
            case _:
                return None

    async def _datalink(self, ex: Exchange, tap: TapService) -> web.StreamResponse:
        """DataLink 1.1 {links}: every ID's links; a request without ID is a UsageFault."""
        params = await ex.params()
        form: Mapping[str, Any] = await ex.request.post() if ex.request.method == "POST" else {}
        ids = _all_values(ex.request, form, "ID")
        if not ids:
            return await _error(ex, 400, "UsageFault: the ID parameter is required", DATALINK_TYPE)
        try:
            limit = _datalink_limit(params, tap.profile)
        except QueryParamError as exc:
            return await _error(ex, 400, f"UsageFault: {exc}", DATALINK_TYPE)
        try:
            datasets = await tap.datasets()
        except AdqlError as exc:
            return await _error(ex, 503, f"ServiceUnavailableFault: {exc}", DATALINK_TYPE)
        document = datalink_document(
            datasets, ids, base_url=tap.base_url, limit=limit, name=ex.spec.name
        )
        return await ex.send_document(document, content_type=DATALINK_TYPE)

    async def _file(
        self, ex: Exchange, tap: TapService, name: str, pattern: re.Pattern[str]
    ) -> web.StreamResponse | None:
        """A data file or preview of a known ObsCore dataset; None (404) otherwise."""
        match = pattern.fullmatch(name)
        if match is None:
            return None
        try:
            dataset = await tap.dataset(match[1])
        except AdqlError as exc:
            return await _text(ex, 503, f"{exc}\n")
        if dataset is None:
            return await _text(ex, 404, f"no dataset {match[1]} at this service\n")
        if pattern is _PREVIEW_FILE:
            return await ex.send(200, png_preview(), "image/png")
        return await ex.send(200, fits_image(), "application/fits")

    async def _capabilities(self, ex: Exchange, tap: TapService) -> web.StreamResponse:
        state = tap.profile.capabilities
        if state is CapabilitiesState.MISSING:
            return await _text(ex, 404, "no capabilities here\n")
        if state is CapabilitiesState.BROKEN:
            return await _xml(ex, _broken_capabilities(tap.base_url))
        return await _xml(ex, capabilities_xml(tap_capability(ex.spec, tap.base_url)))

    async def _create(self, ex: Exchange, tap: TapService) -> web.StreamResponse:
        async def create(ex: Exchange) -> web.StreamResponse:
            params = await ex.params()
            try:
                uploads = await self._uploads(ex, tap)
                job = tap.create_job(params, uploads, _now())
            except (UploadError, JobParamError) as exc:
                return await _error(ex, 400, str(exc))
            return await _see_other(ex, tap.job_url(job))

        if ex.spec.profile.behaviour in _CREATION_FAULTS:
            return await ex.behave(healthy=create)
        return await create(ex)

    async def _job_list(self, ex: Exchange, tap: TapService) -> web.StreamResponse:
        tap.expire(_now())
        for job in list(tap.jobs.values()):
            await tap.settle(job)
        params: dict[str, list[str]] = {}
        for key, value in ex.request.query.items():
            params.setdefault(key.upper(), []).append(value)
        try:
            jobs = select_jobs(tap.jobs.values(), params)
        except JobParamError as exc:
            return await _error(ex, 400, str(exc))
        text = job_list_xml(
            jobs,
            tap.jobs_url,
            utc_offset=tap.profile.utc_offset,
            inline=tap.profile.inline_job_list,
        )
        return await _xml(ex, text)

    async def _job_route(
        self, ex: Exchange, tap: TapService, job_id: str, rest: list[str]
    ) -> web.StreamResponse | None:
        now = _now()
        job = tap.job(job_id, now)
        if job is None:
            return await _text(ex, 404, f"no job {job_id} (never created, or deleted)\n")
        method = ex.request.method
        try:
            match rest:
                case []:
                    return await self._job(ex, tap, job)
                case ["phase"]:
                    return await self._phase(ex, tap, job)
                case ["executionduration"] if method == "POST":
                    params = await ex.params()
                    tap.set_execution_duration(job, params.get("EXECUTIONDURATION", ""))
                    return await _see_other(ex, tap.job_url(job))
                case ["destruction"] if method == "POST":
                    params = await ex.params()
                    tap.set_destruction(job, params.get("DESTRUCTION", ""), now)
                    return await _see_other(ex, tap.job_url(job))
                case ["parameters"] if method == "POST":
                    return await self._parameters(ex, tap, job)
                case ["error"]:
                    await tap.settle(job)
                    if job.error is None:
                        return await _text(ex, 404, f"job {job_id} has no error\n")
                    return await ex.send_document(
                        error_document(job.error.message), content_type=VOTABLE_TYPE
                    )
                case ["results", "result"]:
                    return await self._result(ex, tap, job)
                case [leaf] if method == "GET":
                    return await self._job_leaf(ex, tap, job, leaf)
        except JobParamError as exc:
            return await _error(ex, 400, str(exc))
        return None

    async def _job(self, ex: Exchange, tap: TapService, job: Job) -> web.StreamResponse:
        method = ex.request.method
        params = await ex.params()
        if method == "DELETE" or (
            method == "POST" and params.get("ACTION", "").strip().upper() == "DELETE"
        ):
            tap.delete(job, _now())
            return await _see_other(ex, tap.jobs_url)
        if method != "GET":
            return await _error(ex, 400, "POST to a job needs ACTION=DELETE")
        wait = parse_wait(params.get("WAIT"))
        raw_phase = params.get("PHASE")
        phase = None
        if raw_phase:
            try:
                phase = Phase(raw_phase.strip().upper())
            except ValueError:
                raise JobParamError(f"unknown phase {raw_phase!r}") from None
        if wait is not None and tap.profile.blocking_wait:
            await tap.wait(job, wait, phase)
        else:
            await tap.settle(job)
        return await _xml(ex, job_xml(job, tap.job_url(job), utc_offset=tap.profile.utc_offset))

    async def _phase(self, ex: Exchange, tap: TapService, job: Job) -> web.StreamResponse:
        if ex.request.method == "GET":
            await tap.settle(job)
            return await _text(ex, 200, job.phase.value)
        if ex.request.method != "POST":
            return await _text(ex, 405, "use GET or POST\n")
        action = (await ex.params()).get("PHASE", "").strip().upper()
        now = _now()
        if action == "RUN":
            tap.run(job, now)
        elif action == "ABORT":
            tap.abort(job, now)
        else:
            raise JobParamError(f"PHASE must be RUN or ABORT here, not {action!r}")
        return await _see_other(ex, tap.job_url(job))

    async def _parameters(self, ex: Exchange, tap: TapService, job: Job) -> web.StreamResponse:
        if job.phase is not Phase.PENDING:
            raise JobParamError(f"the job is {job.phase.value}: its parameters are fixed")
        params = await ex.params()
        try:
            uploads = await self._uploads(ex, tap)
        except UploadError as exc:
            return await _error(ex, 400, str(exc))
        for key, value in params.items():
            if key not in _UWS_PARAMETERS:
                job.parameters[key.lower()] = value
        if uploads:
            names = {upload.table.name for upload in uploads}
            kept = tuple(u for u in job.uploads if u.table.name not in names)
            job.uploads = kept + uploads
        return await _see_other(ex, tap.job_url(job))

    async def _result(self, ex: Exchange, tap: TapService, job: Job) -> web.StreamResponse:
        await tap.settle(job)
        if job.phase is not Phase.COMPLETED or job.result is None:
            return await _text(ex, 404, f"job {job.job_id} is {job.phase.value}: no result\n")
        if ex.spec.profile.behaviour in _RESULT_BEHAVIOURS:
            return await ex.behave()
        return await ex.send_document(job.result, content_type=job.result_type)

    async def _job_leaf(
        self, ex: Exchange, tap: TapService, job: Job, leaf: str
    ) -> web.StreamResponse | None:
        await tap.settle(job)
        offset = tap.profile.utc_offset
        texts: dict[str, Callable[[], str]] = {
            "executionduration": lambda: str(job.execution_duration),
            "destruction": lambda: format_time(job.wall(job.destruction), offset),
            "quote": lambda: "" if job.quote is None else format_time(job.wall(job.quote), offset),
            "owner": lambda: "",
        }
        if leaf in texts:
            return await _text(ex, 200, texts[leaf]())
        if leaf == "parameters":
            return await _xml(ex, parameters_xml(job, root=True))
        if leaf == "results":
            return await _xml(ex, results_xml(job, tap.job_url(job), root=True))
        return None


async def _text(ex: Exchange, status: int, text: str) -> web.StreamResponse:
    return await ex.send(status, text.encode(), "text/plain")


async def _xml(ex: Exchange, text: str) -> web.StreamResponse:
    return await ex.send(200, text.encode(), "text/xml")


async def _error(
    ex: Exchange, status: int, message: str, content_type: str = VOTABLE_TYPE
) -> web.StreamResponse:
    return await ex.send(status, error_document(message).encode(), content_type)


async def _see_other(ex: Exchange, location: str) -> web.StreamResponse:
    return await ex.send(303, b"", "text/plain", {"Location": location})
