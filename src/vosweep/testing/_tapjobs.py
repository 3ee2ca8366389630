"""UWS 1.1 jobs of the simulated TAP services, sans I/O: the state machine and its documents.

A job's life is decided when it is started (``PHASE=RUN``): it stays QUEUED for the
profile's queue delay, EXECUTING for its execution time, then ends as the profile says
(`JobOutcome`), or as its ADQL query ends, or in the profile's *limit phase* when its
``executionDuration`` runs out first. Nothing runs in the background: the server
*advances* a job to the present whenever someone looks at it (`Job.advance`), and runs
its query then, once it is due. So no task outlives a request, a closing simulator
leaves nothing behind, and the counters are exact functions of the timeline: a job
executes over ``[starts_at, ended_at)`` whoever looks and when.

Times are the event loop's clock (``anyio.current_time()``, seconds); documents show
them as UTC datetimes (or with the profile's offset, as CASDA writes them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

from vosweep.testing._adql import UploadedTable
from vosweep.testing._profiles import JobOutcome, ServiceProfile
from vosweep.testing._votables import Document, escape_attr, escape_text

__all__ = [
    "ACTIVE_PHASES",
    "Job",
    "JobError",
    "JobLedger",
    "JobParamError",
    "Lifecycle",
    "Phase",
    "format_time",
    "job_list_xml",
    "job_xml",
    "parameters_xml",
    "parse_time",
    "parse_wait",
    "peak_overlap",
    "results_xml",
    "select_jobs",
]

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
# UWS 1.1 kept the 1.0 namespace; the version attribute tells them apart.
_UWS_NS = (
    'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"'
    ' xmlns:xlink="http://www.w3.org/1999/xlink"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
_NIL = ' xsi:nil="true"/>'


class Phase(StrEnum):
    """The UWS execution phases."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


#: Phases a job can still leave (blocking WAIT only blocks in these, as UWS 1.1 says).
ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING})


class JobParamError(ValueError):
    """A UWS request parameter is wrong (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How a service's jobs run, from its profile (seconds).

    Attributes:
        queue_delay: Time QUEUED before EXECUTING.
        execution_time: Time EXECUTING before the outcome.
        outcome: How jobs end.
        error_message: The errorSummary of the ``error`` outcome.
        limit_phase: Where a job over its execution duration ends (ERROR or ABORTED).
        max_hang: How long a stalled or forever-queued job lasts before the server gives up.
    """

    queue_delay: float = 0.0
    execution_time: float = 0.0
    outcome: JobOutcome = JobOutcome.OK
    error_message: str = "query timed out on the server"
    limit_phase: Phase = Phase.ERROR
    max_hang: float = 600.0

    @classmethod
    def of(cls, profile: ServiceProfile) -> Lifecycle:
        """The lifecycle a service with *profile* gives its jobs."""
        tap = profile.tap
        return cls(
            queue_delay=tap.queue_delay,
            execution_time=tap.execution_time,
            outcome=tap.outcome,
            error_message=tap.error_message,
            limit_phase=Phase(tap.limit_phase),
            max_hang=profile.max_hang,
        )


@dataclass(frozen=True, slots=True)
class JobError:
    """A job's errorSummary.

    Attributes:
        message: What went wrong (also the detail document's QUERY_STATUS message).
        fatal: ``fatal`` (the query is wrong: do not retry) or ``transient``.
    """

    message: str
    fatal: bool = True


@dataclass(slots=True)
class Job:
    """One UWS job: parameters, timeline and outcome.

    Attributes:
        job_id: Its identifier (the last segment of its URL).
        created: Creation time (loop clock).
        created_wall: Creation time in UTC (what documents show).
        lifecycle: How it runs once started.
        parameters: Its TAP parameters, names in lower case.
        execution_duration: Its run time limit in whole seconds (0: none).
        destruction: When the server destroys it (loop clock).
        run_id: The client's RUNID, if any.
        uploads: Tables uploaded at creation (``TAP_UPLOAD.name``).
        phase: Its phase as of the last `advance`.
        queued_at: When it was started (``PHASE=RUN``).
        starts_at: When it starts (or started) EXECUTING; ``inf`` when never.
        ends_at: When EXECUTING ends; ``inf`` when never.
        gives_up_at: When a job that never leaves the queue ends in ERROR.
        planned: The final phase and errorSummary at *ends_at*, or None when its query
            decides (run it when `advance` says so, then `complete` or `fail`).
        ended_at: When it reached a final phase.
        error: Its errorSummary.
        result: Its result document once COMPLETED.
        result_type: The result's media type.
        deleted_at: When it was deleted or destroyed.
    """

    job_id: str
    created: float
    created_wall: datetime
    lifecycle: Lifecycle
    parameters: dict[str, str]
    execution_duration: int
    destruction: float
    run_id: str | None = None
    uploads: tuple[UploadedTable, ...] = ()
    phase: Phase = Phase.PENDING
    queued_at: float | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    gives_up_at: float | None = None
    planned: tuple[Phase, JobError | None] | None = None
    ended_at: float | None = None
    error: JobError | None = None
    result: Document | None = None
    result_type: str | None = None
    deleted_at: float | None = None

    def wall(self, at: float) -> datetime:
        """The UTC datetime of loop-clock time *at*."""
        return self.created_wall + timedelta(seconds=at - self.created)

    def run(self, now: float) -> bool:
        """``PHASE=RUN``: a PENDING job is queued and its timeline fixed.

        Returns:
            Whether the phase changed (RUN on a job that is not PENDING is ignored).
        """
        self.advance(now)
        if self.phase is not Phase.PENDING:
            return False
        life = self.lifecycle
        self.phase = Phase.QUEUED
        self.queued_at = now
        if life.outcome is JobOutcome.QUEUED:
            self.starts_at = self.ends_at = math.inf
            self.gives_up_at = now + life.max_hang
            return True
        self.starts_at = now + life.queue_delay
        limit = float(self.execution_duration) if self.execution_duration > 0 else math.inf
        run_time = math.inf if life.outcome is JobOutcome.STALL else life.execution_time
        if run_time > limit:
            self.ends_at = self.starts_at + limit
            error = (
                JobError(
                    f"the job ran longer than its execution duration of {limit:g} s",
                    fatal=False,
                )
                if life.limit_phase is Phase.ERROR
                else None
            )
            self.planned = (life.limit_phase, error)
        elif life.outcome is JobOutcome.STALL:
            self.ends_at = self.starts_at + life.max_hang
            self.planned = (Phase.ABORTED, None)
        elif life.outcome is JobOutcome.ERROR:
            self.ends_at = self.starts_at + run_time
            self.planned = (Phase.ERROR, JobError(life.error_message, fatal=False))
        else:
            self.ends_at = self.starts_at + run_time
        return True

    def advance(self, now: float) -> bool:
        """Apply the transitions due by *now*.

        Returns:
            True when the job's query must run now: it is EXECUTING past *ends_at* and
            its outcome depends on the query (call `complete` or `fail` next).
        """
        if self.phase is Phase.QUEUED:
            if self.starts_at is not None and now >= self.starts_at:
                self.phase = Phase.EXECUTING
            elif self.gives_up_at is not None and now >= self.gives_up_at:
                self._end(
                    Phase.ERROR,
                    JobError("the job never left the queue and was given up", fatal=False),
                    self.gives_up_at,
                )
        if self.phase is Phase.EXECUTING and self.ends_at is not None and now >= self.ends_at:
            if self.planned is None:
                return True
            phase, error = self.planned
            self._end(phase, error, self.ends_at)
        return False

    def _end(self, phase: Phase, error: JobError | None, at: float) -> None:
        self.phase = phase
        self.error = error
        self.ended_at = at

    def complete(self, result: Document, media_type: str) -> bool:
        """The query ran: COMPLETED with *result*. False when the job left EXECUTING meanwhile."""
        if self.phase is not Phase.EXECUTING or self.ends_at is None:
            return False
        self.result = result
        self.result_type = media_type
        self._end(Phase.COMPLETED, None, self.ends_at)
        return True

    def fail(self, error: JobError) -> bool:
        """The query failed: ERROR. False when the job left EXECUTING meanwhile."""
        if self.phase is not Phase.EXECUTING or self.ends_at is None:
            return False
        self._end(Phase.ERROR, error, self.ends_at)
        return True

    def abort(self, now: float) -> bool:
        """``PHASE=ABORT``: an active job ends ABORTED. Returns whether the phase changed."""
        self.advance(now)
        if self.phase not in ACTIVE_PHASES:
            return False
        self._end(Phase.ABORTED, None, min(now, self.ends_at if self.ends_at is not None else now))
        return True

    def delete(self, now: float) -> None:
        """The job is deleted (or destroyed): a running one stops executing now."""
        self.advance(now)
        if self.phase in ACTIVE_PHASES:
            self.ended_at = min(now, self.ends_at if self.ends_at is not None else now)
        self.deleted_at = now

    def next_change(self) -> float:
        """When the phase changes next by itself (``inf``: only a client can change it)."""
        if self.phase is Phase.QUEUED:
            return min(self.starts_at or math.inf, self.gives_up_at or math.inf)
        if self.phase is Phase.EXECUTING and self.ends_at is not None:
            return self.ends_at
        return math.inf

    def executing_interval(self) -> tuple[float, float] | None:
        """``[start, end)`` of its EXECUTING phase, as scheduled or as cut short; None if never."""
        start = self.starts_at
        if start is None or math.isinf(start):
            return None
        end = self.ended_at if self.ended_at is not None else self.ends_at
        if end is None or end <= start:
            return None
        return start, end

    def executing(self, now: float) -> bool:
        """Whether it is EXECUTING at *now* (by its timeline, whether advanced or not)."""
        interval = self.executing_interval()
        return interval is not None and interval[0] <= now < interval[1]

    @property
    def quote(self) -> float | None:
        """When the job is expected to end (UWS ``quote``), once started."""
        if self.ends_at is None or math.isinf(self.ends_at):
            return None
        return self.ends_at


def peak_overlap(intervals: Iterable[tuple[float, float]], since: float, now: float) -> int:
    """The most half-open intervals covering one instant of ``[since, now]``."""
    events: list[tuple[float, int]] = []
    current = 0
    for begin, end in intervals:
        start = max(begin, since)
        if start > now or end <= start:
            continue
        if start <= now < end:
            current += 1
        events.append((start, 1))
        events.append((min(end, now), -1) if end <= now else (math.inf, -1))
    events.sort(key=lambda event: (event[0], event[1]))  # ends before starts at one instant
    peak = level = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return max(peak, current)


@dataclass(slots=True)
class JobLedger:
    """A service's job counters since the start or the last reset.

    Attributes:
        created: Jobs created (after a reset: the jobs alive then).
        deleted: Jobs a client deleted.
        destroyed: Jobs the server destroyed at their destruction time.
        since: When counting started (loop clock).
        gone: EXECUTING intervals of jobs no longer alive (for the peak).
    """

    created: int = 0
    deleted: int = 0
    destroyed: int = 0
    since: float = -math.inf
    gone: list[tuple[float, float]] = field(default_factory=list)

    def forget(self, job: Job, *, destroyed: bool) -> None:
        """Count a job deleted (or destroyed) and keep its EXECUTING interval."""
        if destroyed:
            self.destroyed += 1
        else:
            self.deleted += 1
        interval = job.executing_interval()
        if interval is not None:
            self.gone.append(interval)

    def reset(self, now: float, alive: int) -> None:
        """Count afresh from *now*; the *alive* jobs count as created."""
        self.created = alive
        self.deleted = self.destroyed = 0
        self.since = now
        self.gone = [interval for interval in self.gone if interval[1] > now]


# -- parameters ----------------------------------------------------------------------------


def parse_wait(value: str | None) -> float | None:
    """UWS 1.1 ``WAIT``: seconds to block, ``inf`` for -1, None when absent.

    Raises:
        JobParamError: When it is not a number.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise JobParamError(f"WAIT must be a number of seconds, not {value!r}") from None
    if math.isnan(seconds):
        raise JobParamError(f"WAIT must be a number of seconds, not {value!r}")
    return math.inf if seconds < 0 else seconds


def parse_time(value: str) -> datetime:
    """An ISO 8601 datetime (``Z``, an offset, or none for UTC) as an aware UTC datetime.

    Raises:
        JobParamError: When it is not one.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise JobParamError(f"not an ISO 8601 datetime: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime, offset_minutes: int = 0) -> str:
    """An xs:dateTime with milliseconds: ``Z`` for UTC, else ``+HHMM`` as CASDA writes it."""
    if offset_minutes == 0:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + local.strftime("%z")


# -- documents -----------------------------------------------------------------------------


def _time(element: str, at: float | None, job: Job, offset: int) -> str:
    if at is None or math.isinf(at):
        return f"<uws:{element}{_NIL}"
    return f"<uws:{element}>{format_time(job.wall(at), offset)}</uws:{element}>"


def parameters_xml(job: Job, *, root: bool = False) -> str:
    """The ``uws:parameters`` element (a whole document with *root*)."""
    items = "".join(
        f'<uws:parameter id="{escape_attr(name)}">{escape_text(value)}</uws:parameter>'
        for name, value in job.parameters.items()
    )
    if root:
        return f"{_XML_DECL}<uws:parameters {_UWS_NS}>{items}</uws:parameters>\n"
    return f"<uws:parameters>{items}</uws:parameters>"


def results_xml(job: Job, job_url: str, *, root: bool = False) -> str:
    """The ``uws:results`` element: one ``result`` once the job COMPLETED."""
    items = ""
    if job.phase is Phase.COMPLETED and job.result is not None:
        size = len(job.result.encode())
        mime = escape_attr(job.result_type or "application/x-votable+xml")
        items = (
            f'<uws:result id="result" xlink:type="simple"'
            f' xlink:href="{escape_attr(job_url)}/results/result"'
            f' size="{size}" mime-type="{mime}"/>'
        )
    if root:
        return f"{_XML_DECL}<uws:results {_UWS_NS}>{items}</uws:results>\n"
    return f"<uws:results>{items}</uws:results>"


def _job_body(job: Job, job_url: str, offset: int) -> str:
    started = None
    if job.phase not in {Phase.PENDING, Phase.QUEUED} and job.executing_interval() is not None:
        started = job.starts_at
    parts = [f"<uws:jobId>{escape_text(job.job_id)}</uws:jobId>"]
    if job.run_id is not None:
        parts.append(f"<uws:runId>{escape_text(job.run_id)}</uws:runId>")
    parts += [
        f"<uws:ownerId{_NIL}",
        f"<uws:phase>{job.phase.value}</uws:phase>",
        _time("quote", job.quote, job, offset),
        _time("creationTime", job.created, job, offset),
        _time("startTime", started, job, offset),
        _time("endTime", job.ended_at, job, offset),
        f"<uws:executionDuration>{job.execution_duration}</uws:executionDuration>",
        _time("destruction", job.destruction, job, offset),
        parameters_xml(job),
        results_xml(job, job_url),
    ]
    if job.error is not None:
        kind = "fatal" if job.error.fatal else "transient"
        parts.append(
            f'<uws:errorSummary type="{kind}" hasDetail="true">'
            f"<uws:message>{escape_text(job.error.message)}</uws:message></uws:errorSummary>"
        )
    return "".join(parts)


def job_xml(job: Job, job_url: str, *, utc_offset: int = 0) -> str:
    """The UWS 1.1 job document."""
    return (
        f'{_XML_DECL}<uws:job {_UWS_NS} version="1.1">'
        f"{_job_body(job, job_url, utc_offset)}</uws:job>\n"
    )


def job_list_xml(
    jobs: Sequence[Job], jobs_url: str, *, utc_offset: int = 0, inline: bool = False
) -> str:
    """The job list: ``uws:jobref`` per job, or whole jobs with *inline* (ESA's TAP+ way)."""
    items = []
    for job in jobs:
        job_url = f"{jobs_url}/{job.job_id}"
        if inline:
            items.append(f"<uws:job>{_job_body(job, job_url, utc_offset)}</uws:job>")
            continue
        run_id = f"<uws:runId>{escape_text(job.run_id)}</uws:runId>" if job.run_id else ""
        items.append(
            f'<uws:jobref id="{escape_attr(job.job_id)}" xlink:type="simple"'
            f' xlink:href="{escape_attr(job_url)}">'
            f"<uws:phase>{job.phase.value}</uws:phase>{run_id}<uws:ownerId{_NIL}"
            f"{_time('creationTime', job.created, job, utc_offset)}</uws:jobref>"
        )
    return f'{_XML_DECL}<uws:jobs {_UWS_NS} version="1.1">{"".join(items)}</uws:jobs>\n'


def select_jobs(jobs: Iterable[Job], params: Mapping[str, Sequence[str]]) -> list[Job]:
    """UWS 1.1 job list filters: ``PHASE`` (repeatable), ``AFTER`` and ``LAST``.

    Args:
        jobs: The jobs, advanced to now.
        params: Upper-case parameter names, every value of each.

    Raises:
        JobParamError: On an unknown phase, a bad datetime or a bad ``LAST``.
    """
    selected = list(jobs)
    phases = params.get("PHASE", ())
    if phases:
        try:
            wanted = {Phase(value.strip().upper()) for value in phases}
        except ValueError:
            raise JobParamError(f"unknown phase in PHASE={list(phases)}") from None
        selected = [job for job in selected if job.phase in wanted]
    else:
        selected = [job for job in selected if job.phase is not Phase.ARCHIVED]
    for value in params.get("AFTER", ())[:1]:
        after = parse_time(value)
        selected = [job for job in selected if job.wall(job.created) > after]
    for value in params.get("LAST", ())[:1]:
        try:
            last = int(value)
        except ValueError:
            raise JobParamError(f"LAST must be a positive integer, not {value!r}") from None
        if last <= 0:
            raise JobParamError(f"LAST must be a positive integer, not {value!r}")
        selected = sorted(selected, key=lambda job: job.created, reverse=True)[:last]
    return selected
