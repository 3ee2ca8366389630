"""What each simulated service does: behaviours, profiles and seeded fleets (pure, no I/O).

A fleet is plain data: a list of frozen `ServiceSpec` built deterministically from a seed,
so a benchmark can be rerun against the very same VO, and a test can say "host 3 answers
500, service 5 hangs" with `override_fleet`. The servers in `vosweep.testing._sim` only
read these values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from vosweep.errors import UsageError
from vosweep.services import Protocol
from vosweep.testing._votables import EXTRA_COLUMNS

__all__ = [
    "DEFAULT_MIX",
    "Behaviour",
    "CapabilitiesState",
    "JobOutcome",
    "ProfileChange",
    "ServiceProfile",
    "ServiceSpec",
    "TapProfile",
    "TapTable",
    "build_fleet",
    "host_shares",
    "override_fleet",
]

#: Number of decimal digits in service names and paths (``scs-00007``).
_NAME_DIGITS = 5
#: Where the simulated resources live in the (fake) registry.
_AUTHORITY = "ivo://sim.vosweep.test"


class Behaviour(StrEnum):
    """How a simulated service answers (the failure modes seen in the real VO)."""

    #: A results VOTable with the rows the cone holds.
    OK = "ok"
    #: A VOTable with FIELDs and zero rows.
    EMPTY = "empty"
    #: Accepts the request and never answers (until ``max_hang``, then drops the connection).
    HANG = "hang"
    #: Sends 200 and headers, then a few bytes every ``drip_interval`` and never finishes.
    DRIP = "drip"
    #: HTTP 500.
    HTTP_500 = "http_500"
    #: HTTP 503 with ``Retry-After`` for the first ``fail_times`` requests, then ok.
    UNAVAILABLE = "unavailable"
    #: HTTP 429 with ``Retry-After`` for the first ``fail_times`` requests, then ok.
    RATE_LIMITED = "rate_limited"
    #: HTTP 500 / 502 alternately for the first ``fail_times`` requests, then ok.
    FLAKY = "flaky"
    #: Aborts the TCP connection without any answer.
    RESET = "reset"
    #: HTTP 200, ``text/xml``, broken XML.
    MALFORMED = "malformed"
    #: HTTP 200 with a Content-Length, then the connection closes mid-TABLEDATA.
    TRUNCATED = "truncated"
    #: HTTP 200, a VOTable with QUERY_STATUS=ERROR.
    QUERY_ERROR = "query_error"
    #: Exactly ``max_rows`` rows and QUERY_STATUS=OVERFLOW after the TABLE.
    OVERFLOW = "overflow"
    #: HTTP 200, an HTML error page.
    HTML_200 = "html_200"
    #: HTTP 302 to another path on the same host, which answers ok.
    REDIRECT = "redirect"
    #: An endless chain of immediate 302s.
    REDIRECT_LOOP = "redirect_loop"
    #: A VOTable of about ``size_bytes``, streamed in chunks and generated lazily.
    OVERSIZED = "oversized"
    #: A valid VOTable served as ``text/plain``.
    WRONG_CONTENT_TYPE = "wrong_content_type"
    #: A VOTable with ``Content-Encoding: gzip``.
    GZIP = "gzip"
    #: Ok, but the ``id`` column holds strings instead of longs.
    CONFLICTING_TYPES = "conflicting_types"


#: Behaviours that always end with the full result table when the client is patient
#: (follows redirects, honours Retry-After, decompresses, ignores the content type).
_DELIVERING = frozenset(
    {
        Behaviour.OK,
        Behaviour.EMPTY,
        Behaviour.UNAVAILABLE,
        Behaviour.RATE_LIMITED,
        Behaviour.FLAKY,
        Behaviour.OVERFLOW,
        Behaviour.REDIRECT,
        Behaviour.WRONG_CONTENT_TYPE,
        Behaviour.GZIP,
        Behaviour.CONFLICTING_TYPES,
    }
)


class TapTable(StrEnum):
    """The data tables a simulated TAP service may hold (TAP_SCHEMA is always there)."""

    #: ``ivoa.obscore``: ObsCore 1.1 observations.
    OBSCORE = "obscore"
    #: ``planets.epn_core``: an EPN-TAP 2.0 table of planetary observations.
    EPNTAP = "epntap"
    #: ``cat.sources``: a source catalogue with UCD-annotated positions and magnitudes.
    CATALOGUE = "catalogue"
    #: ``"J/A+A/600/A12/table2"``: a VizieR-like catalogue table without a schema, with
    #: mixed-case column names and proper motions in arcsec/yr as floats (opt-in).
    VIZIER_PM = "vizier_pm"


class JobOutcome(StrEnum):
    """How a simulated TAP service's UWS jobs end, once started."""

    #: The query runs; the job ends COMPLETED (or ERROR when the ADQL is wrong).
    OK = "ok"
    #: After ``execution_time`` the job ends in ERROR with ``error_message``.
    ERROR = "error"
    #: The job stays EXECUTING (until its execution duration or ``max_hang``: ABORTED).
    STALL = "stall"
    #: The job never leaves QUEUED (until ``max_hang``: ERROR).
    QUEUED = "queued"


class CapabilitiesState(StrEnum):
    """What ``{base}/capabilities`` answers (real services miss or break it)."""

    OK = "ok"
    #: HTTP 404.
    MISSING = "missing"
    #: HTTP 200 with XML that breaks off.
    BROKEN = "broken"


class TapProfile(BaseModel, frozen=True, extra="forbid"):
    """What a simulated TAP service holds, offers and how its UWS jobs run; times in seconds.

    Attributes:
        tables: The data tables it holds (rows seeded from the fleet seed and the
            service index).
        union: ADQL set operations (UNION, EXCEPT, INTERSECT).
        cast: ADQL ``CAST``.
        string: ADQL 2.1 ``LOWER``, ``UPPER`` and ``ILIKE``.
        geometry: ADQL geometry functions (POINT, CIRCLE, CONTAINS...).
        binary2: Whether BINARY2 VOTables are offered (TABLEDATA and CSV always are).
        uploads: Whether ``UPLOAD`` (inline tables, ``TAP_UPLOAD.name``) is accepted.
        upload_limit: The most rows one uploaded table may have.
        maxrec_default: Rows returned when the client sends no MAXREC.
        maxrec_hard: Most rows ever returned, whatever MAXREC says.
        query_timeout: How long one ADQL query may run on the database.
        capabilities: Whether ``{base}/capabilities`` works, is missing or is broken.
        queue_delay: Time a started job spends QUEUED before EXECUTING.
        execution_time: Time a job spends EXECUTING before its outcome.
        outcome: How jobs end (`JobOutcome`).
        error_message: The errorSummary of jobs whose outcome is ``error``.
        execution_duration: The run time limit of a job (UWS ``executionDuration``,
            whole seconds, 0 for none): the default and the most a client may ask for.
            A job running longer ends in *limit_phase*.
        limit_phase: ``ERROR`` or ``ABORTED``: where a job over its limit ends.
        blocking_wait: Whether UWS 1.1 blocking ``WAIT`` is honoured (else job
            documents come back at once, as UWS 1.0 services do).
        max_wait: The longest one blocking ``WAIT`` is held.
        run_on_create: Whether ``PHASE=RUN`` sent with the job creation starts the job;
            some services ignore it and wait for ``PHASE=RUN`` on ``{job}/phase``.
        retention: Seconds from creation to a job's destruction (long, so that tests see
            jobs a client leaves behind).
        utc_offset: Minutes east of UTC of the job timestamps (``+0800`` at CASDA); 0
            writes ``Z``.
        inline_job_list: Whether the job list carries whole ``uws:job`` elements instead
            of ``uws:jobref`` (as ESA's TAP+ does).
    """

    tables: tuple[TapTable, ...] = (TapTable.OBSCORE, TapTable.EPNTAP, TapTable.CATALOGUE)
    union: bool = True
    cast: bool = True
    string: bool = True
    geometry: bool = True
    binary2: bool = True
    uploads: bool = True
    upload_limit: int = Field(default=10_000, ge=0)
    maxrec_default: int = Field(default=1000, ge=0)
    maxrec_hard: int = Field(default=10_000, ge=0)
    query_timeout: float = Field(default=10.0, gt=0.0)
    capabilities: CapabilitiesState = CapabilitiesState.OK
    queue_delay: float = Field(default=0.0, ge=0.0)
    execution_time: float = Field(default=0.05, ge=0.0)
    outcome: JobOutcome = JobOutcome.OK
    error_message: str = "query timed out on the server"
    execution_duration: int = Field(default=3600, ge=0)
    limit_phase: Literal["ERROR", "ABORTED"] = "ERROR"
    blocking_wait: bool = True
    max_wait: float = Field(default=60.0, ge=0.0)
    run_on_create: bool = True
    retention: float = Field(default=7 * 86_400.0, gt=0.0)
    utc_offset: int = Field(default=0, ge=-24 * 60, le=24 * 60)
    inline_job_list: bool = False

    @model_validator(mode="after")
    def _check(self) -> TapProfile:
        if self.maxrec_default > self.maxrec_hard:
            raise ValueError("maxrec_default must not exceed maxrec_hard")
        if len(set(self.tables)) != len(self.tables):
            raise ValueError(f"duplicate tables in {self.tables}")
        return self


class ServiceProfile(BaseModel, frozen=True, extra="forbid"):
    """How one simulated service behaves; every time is in seconds.

    Attributes:
        behaviour: The failure mode (or `Behaviour.OK`).
        latency: Delay before the first byte of every answer. Fixed per service, so a
            benchmark can compute the ideal wall time of a sweep.
        fail_times: How many requests fail before ``unavailable``, ``rate_limited`` and
            ``flaky`` services recover; negative means they never do. Counted from the
            start or from the last `SimulatedVO.reset_stats`.
        retry_after: The ``Retry-After`` value sent with 503 and 429 (whole seconds are
            sent as integers, as HTTP says; fractions are sent as decimals so that tests
            can use sub-second pauses).
        density: Sources per square degree; the cone area times this is the mean row count.
        max_rows: The service's hard row limit: larger results are cut to this many rows
            and flagged with QUERY_STATUS=OVERFLOW, as real services do.
        drip_interval: Pause between the few bytes a ``drip`` service sends.
        size_bytes: Approximate body size of an ``oversized`` answer.
        max_hang: Upper bound on how long ``hang`` and ``drip`` hold a connection; every
            wait in the simulator is bounded.
        extra_columns: Names from `EXTRA_COLUMNS` appended to the table, so that schemas
            differ across services.
        tap: What a TAP service holds and offers, and how its jobs run (TAP services only).
    """

    behaviour: Behaviour = Behaviour.OK
    latency: float = Field(default=0.0, ge=0.0)
    fail_times: int = 2
    retry_after: float = Field(default=1.0, ge=0.0)
    density: float = Field(default=1000.0, ge=0.0)
    max_rows: int = Field(default=2000, ge=0)
    drip_interval: float = Field(default=0.5, gt=0.0)
    size_bytes: int = Field(default=300 * 2**20, ge=0)
    max_hang: float = Field(default=600.0, gt=0.0)
    extra_columns: tuple[str, ...] = ()
    tap: TapProfile = TapProfile()

    @field_validator("extra_columns")
    @classmethod
    def _check_extra_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in EXTRA_COLUMNS]
        if unknown:
            raise ValueError(f"unknown extra columns {unknown}; known: {sorted(EXTRA_COLUMNS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate extra columns in {value}")
        return value

    @property
    def delivers_rows(self) -> bool:
        """Whether a patient, correct client ends up with this service's full table."""
        if self.behaviour in {Behaviour.UNAVAILABLE, Behaviour.RATE_LIMITED, Behaviour.FLAKY}:
            return self.fail_times >= 0
        return self.behaviour in _DELIVERING


class ServiceSpec(BaseModel, frozen=True, extra="forbid"):
    """One service of a simulated fleet.

    Attributes:
        index: Position in the fleet (0-based); also part of every name.
        host_index: Which simulated host serves it (host *k* listens on 127.0.0.(k+1)).
        name: Short name, e.g. ``scs-00007``.
        ivoid: Registry identifier, e.g. ``ivo://sim.vosweep.test/scs/00007``.
        path: URL path on its host, e.g. ``/scs/00007``.
        profile: How it behaves.
        protocol: The protocol it speaks.
        seed: The fleet seed; with *index* it fixes every row the service ever returns.
        coverage: The sky coverage its registry record declares (RegTAP 1.2, an ASCII
            MOC such as ``"1/0-23"``; the whole sky by default), or None for none.
    """

    index: int = Field(ge=0)
    host_index: int = Field(ge=0)
    name: str
    ivoid: str
    path: str
    profile: ServiceProfile = ServiceProfile()
    protocol: Protocol = Protocol.SCS
    seed: int = 0
    coverage: str | None = "0/0-11"

    @classmethod
    def make(
        cls,
        index: int,
        host_index: int = 0,
        profile: ServiceProfile | None = None,
        *,
        protocol: Protocol = Protocol.SCS,
        seed: int = 0,
        coverage: str | None = "0/0-11",
    ) -> ServiceSpec:
        """Build a spec with the standard name, ivoid and path for *index*."""
        number = f"{index:0{_NAME_DIGITS}d}"
        kind = protocol.value
        return cls(
            index=index,
            host_index=host_index,
            name=f"{kind}-{number}",
            ivoid=f"{_AUTHORITY}/{kind}/{number}",
            path=f"/{kind}/{number}",
            profile=profile if profile is not None else ServiceProfile(),
            protocol=protocol,
            seed=seed,
            coverage=coverage,
        )


#: A "realistic" share of each misbehaviour (fractions of the fleet; the rest is ok).
#: Shaped after VO-FACTS: a few hangs and dead-slow services, server errors, throttling
#: with Retry-After, and the benign oddities a client must still read (gzip, redirects,
#: overflows, clashing column types); a 300 MB answer is rare.
DEFAULT_MIX: Mapping[Behaviour, float] = MappingProxyType(
    {
        Behaviour.EMPTY: 0.05,
        Behaviour.HANG: 0.03,
        Behaviour.DRIP: 0.01,
        Behaviour.HTTP_500: 0.02,
        Behaviour.UNAVAILABLE: 0.015,
        Behaviour.RATE_LIMITED: 0.01,
        Behaviour.FLAKY: 0.015,
        Behaviour.RESET: 0.01,
        Behaviour.MALFORMED: 0.01,
        Behaviour.TRUNCATED: 0.005,
        Behaviour.QUERY_ERROR: 0.01,
        Behaviour.OVERFLOW: 0.02,
        Behaviour.HTML_200: 0.01,
        Behaviour.REDIRECT: 0.01,
        Behaviour.REDIRECT_LOOP: 0.005,
        Behaviour.OVERSIZED: 0.002,
        Behaviour.WRONG_CONTENT_TYPE: 0.01,
        Behaviour.GZIP: 0.02,
        Behaviour.CONFLICTING_TYPES: 0.02,
    }
)

#: Extra-column sets handed out by `build_fleet` (with their shares of the fleet).
_EXTRA_COLUMN_SETS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("pmra", "pmdec"), 0.2),
    (("pmra", "pmdec", "parallax"), 0.1),
    (("e_mag", "bmag"), 0.1),
    (("flags",), 0.05),
)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split *total* into integer parts proportional to *weights* (largest remainder)."""
    weight_sum = math.fsum(weights)
    if total <= 0 or weight_sum <= 0:
        return [0] * len(weights)
    exact = [total * w / weight_sum for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def host_shares(n_services: int, n_hosts: int, *, main_host_share: float, skew: float) -> list[int]:
    """How many services each host carries, skewed like the real VO.

    Host 0 plays VizieR: it takes *main_host_share* of the services. The others share the
    rest with Zipf weights ``1 / rank**skew``. When there are at least as many services as
    hosts, every host gets at least one (a host without services would not be in a registry).

    Returns:
        One count per host; the counts sum to *n_services*.
    """
    if n_hosts < 1:
        raise UsageError(f"n_hosts must be at least 1, got {n_hosts}")
    if not 0.0 <= main_host_share <= 1.0:
        raise UsageError(f"main_host_share must be within [0, 1], got {main_host_share}")
    if skew < 0:
        raise UsageError(f"host_skew must not be negative, got {skew}")
    if n_hosts == 1:
        return [n_services]
    floor = 1 if n_services >= n_hosts else 0
    base = [floor] * n_hosts
    if floor == 0:
        base[:n_services] = [1] * n_services
    rest = n_services - sum(base)
    # Host 0 takes main_host_share; hosts 1..n-1 share the rest with Zipf weights.
    tail = [1.0 / rank**skew for rank in range(1, n_hosts)]
    tail_sum = math.fsum(tail)
    weights = [main_host_share] + [(1.0 - main_host_share) * w / tail_sum for w in tail]
    extra = _apportion(rest, weights)
    return [b + e for b, e in zip(base, extra, strict=True)]


def _behaviour_list(
    n_services: int, mix: Mapping[Behaviour, float] | None, rng: np.random.Generator
) -> list[Behaviour]:
    """Exact behaviour counts (``round(fraction * n)``), shuffled deterministically."""
    behaviours: list[Behaviour] = []
    if mix:
        total = math.fsum(mix.values())
        if any(f < 0 for f in mix.values()) or total > 1.0 + 1e-9:
            raise UsageError(f"mix fractions must be non-negative and sum to at most 1: {mix}")
        counts = {Behaviour(b): round(f * n_services) for b, f in mix.items()}
        # Rounding up several fractions can overshoot n; trim the largest counts first.
        while sum(counts.values()) > n_services:
            largest = max(counts, key=lambda b: (counts[b], b.value))
            counts[largest] -= 1
        for behaviour in Behaviour:
            behaviours.extend([behaviour] * counts.get(behaviour, 0))
    behaviours.extend([Behaviour.OK] * (n_services - len(behaviours)))
    order = rng.permutation(n_services)
    return [behaviours[i] for i in order]


def build_fleet(
    n_services: int,
    n_hosts: int = 1,
    *,
    seed: int = 0,
    latency_median: float = 0.2,
    latency_sigma: float = 0.6,
    mix: Mapping[Behaviour, float] | None = None,
    host_skew: float = 1.0,
    main_host_share: float = 0.35,
    density_range: tuple[float, float] = (1.0, 10_000.0),
    protocol: Protocol = Protocol.SCS,
) -> list[ServiceSpec]:
    """Build a deterministic fleet of simulated services.

    Every random choice comes from its own stream of ``numpy.random.SeedSequence(seed)``,
    so changing the mix does not change the latencies, and the same seed gives the same
    fleet (with the same numpy).

    Args:
        n_services: How many services.
        n_hosts: How many hosts they share (see `host_shares` for the skew).
        seed: The fleet seed; also fixes the rows every service returns.
        latency_median: Median first-byte latency in seconds.
        latency_sigma: Log-normal shape: 0.6 gives a heavy tail (a few services ~5x slower).
        mix: Fraction of the fleet per behaviour (exact counts, ``round(f * n)``; the rest
            is ok). None means every service is ok; `DEFAULT_MIX` is a realistic VO.
        host_skew: Zipf exponent of the hosts after host 0.
        main_host_share: Share of the services on host 0 (the VizieR of the simulation).
        density_range: Source densities (per square degree) are log-uniform in this range.
        protocol: The protocol every service speaks.

    Returns:
        The services, by index.

    Raises:
        UsageError: On negative sizes, fractions summing above 1 or bad ranges.
    """
    if n_services < 0:
        raise UsageError(f"n_services must not be negative, got {n_services}")
    if latency_median < 0 or latency_sigma < 0:
        raise UsageError("latency_median and latency_sigma must not be negative")
    low, high = density_range
    if not 0 < low <= high:
        raise UsageError(f"density_range must satisfy 0 < low <= high, got {density_range}")
    latency_rng, behaviour_rng, host_rng, density_rng, column_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    latencies = latency_median * np.exp(latency_sigma * latency_rng.standard_normal(n_services))
    behaviours = _behaviour_list(n_services, mix, behaviour_rng)
    counts = host_shares(n_services, n_hosts, main_host_share=main_host_share, skew=host_skew)
    hosts = np.repeat(np.arange(n_hosts), counts)[host_rng.permutation(n_services)]
    densities = np.exp(density_rng.uniform(math.log(low), math.log(high), n_services))
    column_sets = [s for s, _ in _EXTRA_COLUMN_SETS] + [()]
    shares = [f for _, f in _EXTRA_COLUMN_SETS]
    column_choice = column_rng.choice(
        len(column_sets), size=n_services, p=[*shares, 1 - sum(shares)]
    )
    return [
        ServiceSpec.make(
            i,
            int(hosts[i]),
            ServiceProfile(
                behaviour=behaviours[i],
                latency=float(latencies[i]),
                density=float(densities[i]),
                extra_columns=column_sets[int(column_choice[i])],
            ),
            protocol=protocol,
            seed=seed,
        )
        for i in range(n_services)
    ]


#: What `override_fleet` accepts per service or host: a new behaviour (the rest of the
#: profile is kept), a whole new profile, or a mapping of profile fields to change.
ProfileChange = Behaviour | ServiceProfile | Mapping[str, Any]


def _apply(profile: ServiceProfile, change: ProfileChange) -> ServiceProfile:
    if isinstance(change, ServiceProfile):
        return change
    if isinstance(change, Behaviour):
        return profile.model_copy(update={"behaviour": change})
    # Validate through the constructor: model_copy(update=...) would skip validation.
    return ServiceProfile.model_validate({**profile.model_dump(), **change})


def override_fleet(
    fleet: Sequence[ServiceSpec],
    *,
    services: Mapping[int, ProfileChange] | None = None,
    hosts: Mapping[int, ProfileChange] | None = None,
) -> list[ServiceSpec]:
    """Return a copy of *fleet* where chosen hosts and services behave as told.

    Host changes apply first, then service changes (the more specific wins), e.g.
    ``override_fleet(fleet, hosts={3: Behaviour.HTTP_500}, services={5: {"behaviour":
    "hang", "max_hang": 2.0}})``.

    Raises:
        UsageError: When an index names no service or no host of the fleet.
    """
    services = services or {}
    hosts = hosts or {}
    known_hosts = {spec.host_index for spec in fleet}
    known_services = {spec.index for spec in fleet}
    if missing := sorted(set(hosts) - known_hosts):
        raise UsageError(f"no service of the fleet is on host(s) {missing}")
    if missing := sorted(set(services) - known_services):
        raise UsageError(f"the fleet has no service(s) {missing}")
    result = []
    for spec in fleet:
        profile = spec.profile
        if spec.host_index in hosts:
            profile = _apply(profile, hosts[spec.host_index])
        if spec.index in services:
            profile = _apply(profile, services[spec.index])
        result.append(
            spec if profile is spec.profile else spec.model_copy(update={"profile": profile})
        )
    return result
