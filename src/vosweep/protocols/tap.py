"""TAP 1.1: sync queries, async UWS jobs, uploads and VOSI capabilities, sans I/O.

The registry client runs its RegTAP queries through `sync_request` / `parse_sync`; the
fan-out's TAP protocol is `converse`, a conversation (see
`vosweep.protocols.conversation`) that the scheduler drives:

1. the service's VOSI capabilities (cached by the engine) choose the output format
   (BINARY2 when declared), tell whether uploads are supported and what MAXREC means;
2. each upload batch runs as a sync query, or as a UWS job: create (303 to the job),
   ``PHASE=RUN``, wait (UWS 1.1 blocking ``WAIT`` where the service honours it, else
   polling with backoff), fetch the result, and ``DELETE`` the job, which the scheduler
   sends also when the fan-out is cancelled, runs out of time or the job failed;
3. the batches' tables are returned together (the aggregator stacks them).

Queries are POSTed as forms: an ADQL query with a list of a few hundred identifiers
does not fit the URL length limits of real servers.
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from vosweep.errors import (
    HTTPStatusError,
    NotSupported,
    QueryRejected,
    ResponseFormatError,
    ServiceError,
    ServiceTimeout,
    UsageError,
)
from vosweep.protocols.adql_features import missing_features
from vosweep.protocols.base import (
    Parsed,
    QueryStatus,
    Request,
    Response,
    UploadFile,
    with_params,
)
from vosweep.protocols.conversation import (
    Capabilities,
    Cleanup,
    Conversation,
    Note,
    Now,
    Recall,
    Send,
    Sleep,
    Work,
)
from vosweep.protocols.links import parse_results
from vosweep.protocols.uws import JobSummary, Phase, parse_job
from vosweep.protocols.votable import parse_votable
from vosweep.queries import TapQuery

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

    from astropy.table import Table

    from vosweep.config import EngineConfig, TapPolicy
    from vosweep.protocols.conversation import Step
    from vosweep.protocols.vosi import TapCapabilities
    from vosweep.services import Service

__all__ = [
    "async_url",
    "build",
    "capabilities_request",
    "converse",
    "delete_requests",
    "parse_sync",
    "phase_request",
    "sync_request",
    "sync_url",
    "upload_batches",
]

#: Statuses a job creation or phase change may answer with (UWS: 303 See Other).
_REDIRECTS = frozenset({200, 201, 301, 302, 303, 307})
#: Answers to a job deletion that are handed back rather than raised (refusals are tried
#: with the other method; 404 means the job is gone already).
_GONE = frozenset({*_REDIRECTS, 400, 403, 404, 405, 501})
#: Statuses with which a server refuses the WAIT/PHASE parameters it does not know.
_WAIT_REFUSED = frozenset({400, 405, 422, 501})
#: A WAIT answered faster than this (seconds) with an unchanged phase was not honoured.
_WAIT_IGNORED = 0.25


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def sync_url(base_url: str) -> str:
    """The ``{base}/sync`` endpoint of a TAP service."""
    return _base(base_url) + "/sync"


def async_url(base_url: str) -> str:
    """The ``{base}/async`` job list of a TAP service."""
    return _base(base_url) + "/async"


def _query_params(
    adql: str,
    *,
    maxrec: int | None = None,
    response_format: str | None = None,
    uploads: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    if not adql.strip():
        raise UsageError("an ADQL query cannot be empty")
    data = [("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", adql)]
    if maxrec is not None:
        if maxrec < 0:
            raise UsageError(f"maxrec must be >= 0, got {maxrec}")
        data.append(("MAXREC", str(maxrec)))
    if response_format:
        data.append(("RESPONSEFORMAT", response_format))
    if uploads:
        data.append(("UPLOAD", ";".join(f"{name},param:{name}" for name in uploads)))
    data.extend(extra)
    return data


def sync_request(
    base_url: str,
    adql: str,
    *,
    maxrec: int | None = None,
    response_format: str | None = None,
    files: Sequence[UploadFile] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> Request:
    """A synchronous ADQL query (``REQUEST=doQuery``, ``LANG=ADQL``) as a form POST.

    Raises:
        UsageError: An empty query or a negative *maxrec*.
    """
    data = _query_params(
        adql,
        maxrec=maxrec,
        response_format=response_format,
        uploads=[part.name for part in files],
        extra=extra,
    )
    return Request(url=sync_url(base_url), method="POST", data=tuple(data), files=tuple(files))


def capabilities_request(base_url: str) -> Request:
    """The VOSI capabilities document of a TAP service (TAPRegExt lives there)."""
    return Request(url=_base(base_url) + "/capabilities")


def parse_sync(response: Response, *, max_bytes: int) -> Parsed:
    """A sync answer: a VOTable whose QUERY_STATUS says OK, OVERFLOW or ERROR."""
    return parse_votable(response.body, content_type=response.content_type, max_bytes=max_bytes)


def phase_request(job_url: str, action: str) -> Request:
    """``POST {job}/phase`` with ``PHASE=RUN`` or ``PHASE=ABORT`` (answered with a 303)."""
    return Request(
        url=job_url + "/phase", method="POST", data=(("PHASE", action),), follow_redirects=False
    )


def delete_requests(job_url: str) -> tuple[Request, ...]:
    """How to destroy a job: HTTP DELETE, else UWS's ``POST ACTION=DELETE`` (older servers)."""
    return (
        Request(url=job_url, method="DELETE", follow_redirects=False),
        Request(url=job_url, method="POST", data=(("ACTION", "DELETE"),), follow_redirects=False),
    )


# --- uploads --------------------------------------------------------------------------


def upload_batches(
    uploads: Sequence[tuple[str, Table]], batch_rows: int
) -> list[list[tuple[str, Table]]]:
    """Split the longest upload into slices of *batch_rows* rows; the others go whole.

    Each batch is one query. Stacking the batches' results is right for the usual
    uploads (each uploaded row joined on its own: positional cross-matches, ID lists).
    """
    if not uploads:
        return [[]]
    longest = max(range(len(uploads)), key=lambda i: len(uploads[i][1]))
    name, table = uploads[longest]
    if len(table) <= batch_rows:
        return [list(uploads)]
    batches = []
    for start in range(0, len(table), batch_rows):
        batch = list(uploads)
        batch[longest] = (name, table[start : start + batch_rows])
        batches.append(batch)
    return batches


def _votable_bytes(table: Table) -> bytes:
    """An astropy table as a TABLEDATA VOTable, the serialisation every service reads."""
    from astropy.io.votable import from_table  # noqa: PLC0415 - slow import, rarely needed

    votable = from_table(table)
    buffer = io.BytesIO()
    votable.to_xml(buffer, tabledata_format="tabledata")
    return buffer.getvalue()


# --- the conversation ---------------------------------------------------------------


def build(service: Service, query: object) -> Request:
    """The sync request a `TapQuery` stands for (checks the query; `converse` runs it)."""
    if not isinstance(query, TapQuery):
        raise UsageError(f"a TAP service cannot answer a {type(query).__name__} query")
    return sync_request(service.access_url, query.adql, maxrec=query.maxrec, extra=query.params)


def converse(service: Service, query: object, config: EngineConfig) -> Conversation:
    """Run *query* on the TAP service *service*: capabilities, then each batch, sync or async."""
    if not isinstance(query, TapQuery):
        raise UsageError(f"a TAP service cannot answer a {type(query).__name__} query")
    return _converse(service, query, config)


def _converse(
    service: Service, query: TapQuery, config: EngineConfig
) -> Generator[Step, Any, Parsed]:
    policy = config.tap
    base = _base(service.access_url)
    caps: TapCapabilities | None = None
    if policy.capabilities:
        found = yield Capabilities(base)
        caps = found.tap if found is not None else None
    if caps is not None:
        if query.uploads and not caps.uploads:
            raise NotSupported(
                "not sent: the service declares no upload method (TAP_UPLOAD unsupported)",
                url=base + "/capabilities",
            )
        if missing := missing_features(caps, query.adql):
            raise NotSupported(
                "not sent: the query uses " + ", ".join(missing) + ", which the service's "
                "capabilities do not declare (TAPRegExt languageFeatures)",
                url=base + "/capabilities",
            )
    response_format = caps.best_format() if caps is not None and policy.prefer_binary else None
    maxrec = query.maxrec
    if maxrec is not None and caps is not None and caps.output_limit_hard is not None:
        maxrec = min(maxrec, caps.output_limit_hard)
    mode = query.mode or policy.mode
    slow_key = ("tap-sync-timed-out", base)
    if mode == "auto" and (yield Recall(slow_key)):
        mode = "async"  # its sync endpoint timed out before: do not wait for that again
    tables: list[Any] = []
    status = QueryStatus.OK
    message: str | None = None
    datalink: tuple[Any, ...] = ()
    for batch in upload_batches(query.uploads, policy.upload_batch_rows):
        files = []
        for name, table in batch:
            content = yield Work(_votable_bytes, (table,))
            files.append(UploadFile(name=name, filename=f"{name}.xml", content=content))
        params = _query_params(
            query.adql,
            maxrec=maxrec,
            response_format=response_format,
            uploads=[part.name for part in files],
            extra=query.params,
        )
        parsed: Parsed | None = None
        if mode in {"sync", "auto"}:
            try:
                parsed = yield from _sync(base, params, files, config)
            except ServiceTimeout as exc:
                if mode == "sync" or exc.phase == "connect":
                    raise  # an unreachable host will not take a job either
                mode = "async"  # a long query: the rest goes through UWS too
                yield Note(slow_key, value=True)
        if parsed is None:
            parsed = yield from _async(base, params, files, config)
        tables.extend(parsed.tables)
        datalink = datalink or parsed.datalink
        if parsed.status is QueryStatus.OVERFLOW:
            status, message = QueryStatus.OVERFLOW, parsed.message
    return Parsed(tables, status, message, datalink)


def _sync(
    base: str, params: list[tuple[str, str]], files: list[UploadFile], config: EngineConfig
) -> Generator[Step, Any, Parsed]:
    request = Request(url=sync_url(base), method="POST", data=tuple(params), files=tuple(files))
    response = yield Send(request)
    parsed: Parsed = yield Work(parse_results, (response, config.limits.max_response_bytes))
    return parsed


def _async(
    base: str, params: list[tuple[str, str]], files: list[UploadFile], config: EngineConfig
) -> Generator[Step, Any, Parsed]:
    policy = config.tap
    started: float = yield Now()
    create = Request(
        url=async_url(base),
        method="POST",
        data=tuple(params),
        files=tuple(files),
        follow_redirects=False,
    )
    response = yield Send(create, accept=_REDIRECTS)
    job_url = _job_url(base, response)
    if not policy.delete_jobs:
        parsed: Parsed = yield from _run_job(job_url, started, config)
        return parsed
    # Registered for the ends this code cannot see (cancellation); deleted here otherwise.
    yield Cleanup(job_url, delete_requests(job_url))
    try:
        parsed = yield from _run_job(job_url, started, config)
    except ServiceError:
        yield from _delete(job_url)
        raise
    yield from _delete(job_url)
    return parsed


def _delete(job_url: str) -> Generator[Step, Any, None]:
    """Delete the job now (DELETE, else POST ACTION=DELETE); the cleanup stays if both fail."""
    for request in delete_requests(job_url):
        try:
            response = yield Send(request, accept=_GONE, retry=False, report=False)
        except ServiceError:
            return
        if response.status < 400 or response.status == 404:
            yield Cleanup(job_url)
            return


def _run_job(job_url: str, started: float, config: EngineConfig) -> Generator[Step, Any, Parsed]:
    """Start the job, wait for its end, fetch its result."""
    policy = config.tap
    yield Send(phase_request(job_url, "RUN"), accept=_REDIRECTS)
    job = yield from _wait(job_url, started, policy)
    if job.phase is Phase.ERROR:
        message = job.error_message
        if not message:
            message = yield from _error_detail(job_url)
        raise QueryRejected(
            f"job {job.job_id} failed: {message or 'no error message given'}", url=job_url
        )
    if job.phase is not Phase.COMPLETED:
        raise ServiceError(f"job {job.job_id} ended in phase {job.phase.value}", url=job_url)
    result_url = job.result_url(job_url) or job_url + "/results/result"
    response = yield Send(Request(url=result_url))
    parsed: Parsed = yield Work(parse_results, (response, config.limits.max_response_bytes))
    return parsed


def _job_url(base: str, response: Response) -> str:
    """Where the new job lives: the 303's Location, else the job document's jobId.

    Raises:
        ResponseFormatError: The Location points to another host or scheme than the
            service's: a job is polled, run and deleted there, so a foreign Location
            would turn the service into a way to send requests anywhere.
    """
    location = response.headers.get("location")
    if location:
        job_url = urljoin(response.url, location.strip()).rstrip("/")
        _check_same_origin(base, job_url, response)
        return job_url
    if response.status in {200, 201} and response.body:
        job = parse_job(response.body)
        return f"{async_url(base)}/{job.job_id}"
    raise ResponseFormatError(
        f"job creation answered HTTP {response.status} without a Location or a job document",
        url=response.url,
        status=response.status,
    )


def _check_same_origin(base: str, job_url: str, response: Response) -> None:
    """Refuse a job URL on another host, or with a scheme other than the service's.

    Host names are compared as DNS does (case-insensitive, a trailing dot ignored); the
    port may differ (services behind proxies answer with their internal port). Moving
    from http to https on the same host is an upgrade real services make and is kept.
    """
    service, job = urlsplit(base), urlsplit(job_url)
    service_host = (service.hostname or "").rstrip(".")
    job_host = (job.hostname or "").rstrip(".")
    upgrade = (service.scheme, job.scheme) == ("http", "https")
    if job_host == service_host and (job.scheme == service.scheme or upgrade):
        return
    raise ResponseFormatError(
        f"job creation pointed to {job.scheme}://{job_host or '?'}, not to the service's "
        f"own host {service.scheme}://{service_host}: refused, nothing sent there",
        url=response.url,
        status=response.status,
    )


def _wait(job_url: str, started: float, policy: TapPolicy) -> Generator[Step, Any, JobSummary]:
    """Poll the job until it ends: blocking WAIT where honoured, else backoff."""
    pause = policy.poll_initial
    phase: Phase | None = None
    use_wait = policy.wait > 0
    while True:
        now: float = yield Now()
        remaining = None if policy.job_timeout is None else policy.job_timeout - (now - started)
        if remaining is not None and remaining <= 0:
            yield from _abort(job_url)
            raise ServiceTimeout(
                f"job still {phase.value if phase else 'unfinished'} after "
                f"{policy.job_timeout} s (job_timeout); aborted",
                phase="job",
                url=job_url,
            )
        params: list[tuple[str, str]] = []
        wait = 0.0
        if use_wait and phase is not None and phase.active:
            wait = policy.wait if remaining is None else max(1.0, min(policy.wait, remaining))
            params = [("WAIT", str(int(wait))), ("PHASE", phase.value)]
        url = with_params(job_url, params) if params else job_url
        try:
            response = yield Send(Request(url=url), extra_time=wait)
        except HTTPStatusError as exc:
            if not params or exc.status not in _WAIT_REFUSED:
                raise
            use_wait = False  # a server that refuses WAIT: poll it instead
            continue
        job = parse_job(response.body)
        if job.phase.final:
            return job
        if job.phase is Phase.PENDING and phase is None:
            # A server that did not take the PHASE=RUN: ask once more.
            yield Send(phase_request(job_url, "RUN"), accept=_REDIRECTS)
        honoured = wait > 0 and (job.phase is not phase or response.elapsed >= _WAIT_IGNORED)
        if wait > 0 and not honoured:
            use_wait = False  # a UWS 1.0 server: it answers at once
        if not honoured:
            yield Sleep(pause, hold=True)
            pause = min(policy.poll_max, pause * 2)
        phase = job.phase


def _abort(job_url: str) -> Generator[Step, Any, None]:
    # Best effort: the DELETE that follows destroys the job anyway.
    with contextlib.suppress(ServiceError):
        yield Send(phase_request(job_url, "ABORT"), accept=_REDIRECTS, retry=False, report=False)


def _error_detail(job_url: str) -> Generator[Step, Any, str | None]:
    """The job's ``/error`` document: a VOTable error (QUERY_STATUS) or plain text."""
    try:
        response = yield Send(Request(url=job_url + "/error"), retry=False)
    except ServiceError:
        return None
    try:
        parse_votable(
            response.body, content_type=response.content_type, max_bytes=len(response.body) + 1
        )
    except QueryRejected as exc:
        return exc.message
    except ServiceError:
        pass
    text = response.body[:2000].decode("utf-8", "replace").strip()
    return " ".join(text.split()) or None
