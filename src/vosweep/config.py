"""Configuration as small frozen values with named phases, and the defaults in one place.

Change one field with ``cfg.model_copy(update={...})``; every model validates itself, so a
bad value is reported (naming the field) before any request is sent.
"""

from __future__ import annotations

import os
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from vosweep.errors import UsageError

__all__ = [
    "DEFAULT_BREAKER",
    "DEFAULT_LIMITS",
    "DEFAULT_REGISTRY_ENDPOINTS",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "BreakerPolicy",
    "EngineConfig",
    "ErrorPolicy",
    "Limits",
    "RegistryConfig",
    "RetryPolicy",
    "TapPolicy",
    "Timeouts",
]

_POSITIVE = Field(default=None, gt=0)


class Timeouts(BaseModel, frozen=True, extra="forbid"):
    """Per-attempt time limits, in seconds (``None`` switches one off).

    The defaults follow what VO clients use (astroquery waits 30 s per cone service, pyvo's
    ``discover`` 20 s) rather than aiohttp's 300 s, which would let one hung service stall a
    sweep for minutes.

    Attributes:
        connect: Time to get a connection (DNS, TCP, TLS).
        read: Longest silence between two received chunks; catches stalled servers early.
        attempt: Wall time for one whole attempt, body included; caps slow-drip servers.
    """

    connect: float | None = Field(default=10.0, gt=0)
    read: float | None = Field(default=20.0, gt=0)
    attempt: float | None = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _attempt_covers_phases(self) -> Timeouts:
        # Like aiohttp's ClientTimeout: the overall limit is never below a phase limit,
        # otherwise the phase limit could never fire and its error message would lie.
        if self.attempt is not None:
            for phase in ("connect", "read"):
                value = getattr(self, phase)
                if value is not None and value > self.attempt:
                    raise ValueError(
                        f"{phase} timeout ({value} s) exceeds the attempt timeout "
                        f"({self.attempt} s)"
                    )
        return self


class Limits(BaseModel, frozen=True, extra="forbid"):
    """Concurrency and size limits.

    Attributes:
        total: Requests in flight at once, over all hosts.
        per_host: Requests in flight at once to one host name. The community norm is at most
            5 (STILTS caps at 5 since overloads in 2018; TOPCAT defaults to 3).
        max_response_bytes: Cap on one (decompressed) response body.
        max_redirects: Longest redirect chain followed.
        lookahead: Planned requests held in memory ahead of dispatch; targets are read
            lazily, so 100,000 services never become 100,000 pending tasks.
        parse_threads: Worker threads that decode VOTables off the event loop. astropy's
            decoder holds the GIL, so more threads add contention with the event loop
            (measured: p99 loop lag doubles with two) rather than speed.
    """

    total: int = Field(default=100, ge=1)
    per_host: int = Field(default=5, ge=1)
    max_response_bytes: int = Field(default=256 * 2**20, ge=1024)
    max_redirects: int = Field(default=5, ge=0)
    lookahead: int = Field(default=10_000, ge=1)
    parse_threads: int = Field(default=1, ge=1)


class RetryPolicy(BaseModel, frozen=True, extra="forbid"):
    """How transient failures (connection errors, 5xx, 408, 429, 503) are retried.

    Malformed data, QUERY_STATUS=ERROR, timeouts and other 4xx are never retried: another
    attempt would cost the same and fail the same way.

    Attributes:
        attempts: Attempts per request, the first included (1 = no retries).
        wait_initial: First backoff, in seconds; doubles each retry.
        wait_max: Longest computed backoff.
        wait_jitter: Up to this many random seconds added to each backoff.
        budget: Total seconds one request may spend retrying.
        max_retry_after: A server's ``Retry-After`` is honoured up to this; a longer one
            ends the request instead of parking it.
        host_budget_ratio: Retries a host may get per request sent to it ...
        host_budget_min: ... on top of this floor; keeps a sick host from receiving a
            retry storm while giving small hosts a fair chance.
    """

    attempts: int = Field(default=3, ge=1)
    wait_initial: float = Field(default=0.5, ge=0)
    wait_max: float = Field(default=10.0, ge=0)
    wait_jitter: float = Field(default=0.5, ge=0)
    budget: float = Field(default=60.0, gt=0)
    max_retry_after: float = Field(default=30.0, ge=0)
    host_budget_ratio: float = Field(default=0.2, ge=0)
    host_budget_min: int = Field(default=10, ge=0)


class BreakerPolicy(BaseModel, frozen=True, extra="forbid"):
    """When a host is declared down, and how it is probed back.

    Attributes:
        enabled: Switch the breaker off to send every request whatever happens.
        failure_threshold: Consecutive host-level failures (connection errors, timeouts,
            5xx) that open the circuit...
        failure_ratio: ...provided at least this share of the host's last `window`
            answers failed too. A big host (VizieR) with a few hanging catalogues sees
            its 5 slots time out one after another while hundreds of its other services
            answer: that is not a dead host, and must not cost those services.
        window: How many of the host's latest answers the ratio looks at.
        cooldown: Seconds the circuit stays open before one probe request is let through.
        max_cooldown: Upper bound for the cooldown, which doubles after each failed probe.
    """

    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    window: int = Field(default=20, ge=1)
    cooldown: float = Field(default=30.0, gt=0)
    max_cooldown: float = Field(default=300.0, gt=0)


_ERROR_POLICY = re.compile(r"^(abort|ignore|retry)(\d*)$")


class ErrorPolicy(BaseModel, frozen=True, extra="forbid"):
    """What a failed service means for the fan-out, in STILTS/TOPCAT vocabulary.

    * ``ignore`` (default): record the outcome and go on. Transient failures are still
      retried as the `RetryPolicy` says.
    * ``abort``: the first service that ends in error or timeout stops the whole fan-out
      with `vosweep.FanoutAborted`, which carries everything received so far.
    * ``retry``: like ignore, but transient failures are retried until the retry budget
      (seconds) runs out.
    * ``retry<n>``: like ignore, with up to *n* retries per request.

    Attributes:
        action: ``"ignore"`` or ``"abort"``.
        retries: Retries per request; ``None`` keeps the `RetryPolicy`'s attempts and
            ``-1`` means until the time budget is spent.
    """

    action: Literal["ignore", "abort"] = "ignore"
    retries: int | None = Field(default=None, ge=-1)

    @classmethod
    def parse(cls, value: str | ErrorPolicy) -> ErrorPolicy:
        """Read the STILTS-style spelling: ``abort``, ``ignore``, ``retry`` or ``retry<n>``."""
        if isinstance(value, ErrorPolicy):
            return value
        match = _ERROR_POLICY.match(str(value).strip().lower())
        if match is None or (match[2] and match[1] != "retry"):
            raise UsageError(
                f"unknown error policy {value!r}: use 'abort', 'ignore', 'retry' or 'retry<n>'"
            )
        word, digits = match[1], match[2]
        if word == "retry":
            return cls(action="ignore", retries=int(digits) if digits else -1)
        return cls(action="abort" if word == "abort" else "ignore")

    def attempts(self, retry: RetryPolicy) -> int | None:
        """Attempts per request under this policy (``None``: bounded by time only)."""
        if self.retries is None:
            return retry.attempts
        if self.retries < 0:
            return None
        return self.retries + 1

    def __str__(self) -> str:
        if self.retries is None:
            return self.action
        return "retry" if self.retries < 0 else f"retry{self.retries}"


#: RegTAP endpoints tried in turn when no endpoint is configured: GAVO's registry (the
#: default of pyvo and TOPCAT), its Paris mirror, and STScI's independent implementation.
DEFAULT_REGISTRY_ENDPOINTS = (
    "http://reg.g-vo.org/tap",
    "http://voparis-rr.obspm.fr/tap",
    "https://vao.stsci.edu/RegTAP/TapService.aspx",
)


def _registry_endpoints() -> tuple[str, ...]:
    """``IVOA_REGISTRY`` (pyvo's variable) alone if set, else the default endpoints.

    A user who names a registry means that one: failing over to the public registries
    would send a test suite pointed at a local registry out to the internet.
    """
    chosen = os.environ.get("IVOA_REGISTRY", "").strip()
    return (chosen.rstrip("/"),) if chosen else DEFAULT_REGISTRY_ENDPOINTS


class RegistryConfig(BaseModel, frozen=True, extra="forbid"):
    """How the engine talks to the VO Registry (RegTAP).

    Attributes:
        endpoints: RegTAP TAP base URLs, tried in order when one fails (connection
            refused, timeout, 5xx). Defaults to ``IVOA_REGISTRY`` if set, else
            `DEFAULT_REGISTRY_ENDPOINTS`.
        cache_ttl: Seconds a registry answer is reused for the same query (a notebook
            re-running a cell does not query again); 0 disables the cache.
        batch_size: Resources per follow-up query (capabilities, tables, columns...):
            metadata for N resources costs about N / batch_size round trips.
        concurrency: Registry queries in flight at once (be kind to registries).
        include_authenticated: Keep interfaces marked ``authenticated_only`` (they
            need credentials vosweep does not send).
    """

    endpoints: tuple[str, ...] = Field(default_factory=_registry_endpoints, min_length=1)
    cache_ttl: float = Field(default=600.0, ge=0)
    batch_size: int = Field(default=300, ge=1, le=5000)
    concurrency: int = Field(default=2, ge=1, le=16)
    include_authenticated: bool = False

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for url in value:
            parts = urlsplit(url.strip())
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"registry endpoint must be an http(s) URL, got {url!r}")
            cleaned.append(url.strip().rstrip("/"))
        return tuple(dict.fromkeys(cleaned))


class TapPolicy(BaseModel, frozen=True, extra="forbid"):
    """How TAP queries run: sync or async (UWS), waiting, job clean-up, uploads.

    Attributes:
        mode: ``sync``; ``async`` (a UWS job per service); or ``auto``: sync, switching
            to a UWS job when the sync attempt runs out of time once connected (a long
            query is what async is for), and going straight to async for that service
            afterwards (for the engine's lifetime). A `TapQuery` may choose its own. A
            running job holds its host slot while it is polled, so ``limits.per_host``
            also bounds the jobs running at once on one host.
        wait: Seconds of UWS 1.1 blocking ``WAIT`` per job poll; services without WAIT
            (UWS 1.0) are polled with backoff instead. 0 always polls.
        poll_initial: First pause between polls of a service without WAIT.
        poll_max: Longest pause between polls.
        job_timeout: Seconds a job may take from creation, queueing included; then it is
            aborted, deleted and reported as a timeout. None waits as long as the
            fan-out's deadline allows.
        delete_jobs: Delete each job once its result is in, or once it failed, timed out
            or was cancelled, so that none is left on a server.
        cleanup_timeout: Seconds granted to a job's deletion, even during cancellation.
        upload_batch_rows: Upload tables longer than this go in batches of this many
            rows, one query each, and the results are stacked.
        prefer_binary: Ask for BINARY2 (or BINARY) VOTables where the capabilities
            declare them: smaller and faster to decode than TABLEDATA.
        capabilities: Read each service's VOSI capabilities (once, cached) to pick the
            output format, check upload support and respect its limits.
        capabilities_ttl: Seconds capabilities stay cached.
    """

    mode: Literal["sync", "async", "auto"] = "auto"
    wait: float = Field(default=10.0, ge=0)
    poll_initial: float = Field(default=0.5, gt=0)
    poll_max: float = Field(default=8.0, gt=0)
    job_timeout: float | None = Field(default=600.0, gt=0)
    delete_jobs: bool = True
    cleanup_timeout: float = Field(default=10.0, gt=0)
    upload_batch_rows: int = Field(default=10_000, ge=1)
    prefer_binary: bool = True
    capabilities: bool = True
    capabilities_ttl: float = Field(default=3600.0, ge=0)


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_BREAKER = BreakerPolicy()


class EngineConfig(BaseModel, frozen=True, extra="forbid"):
    """Everything an `Engine` can be told.

    Attributes:
        timeouts: Per-attempt time limits.
        limits: Concurrency and size limits.
        retry: Retry policy for transient failures.
        breaker: Per-host circuit breaker policy.
        errors: Default error policy of a fan-out (``"ignore"``, ``"abort"``,
            ``"retry"``, ``"retry<n>"``).
        deadline: Default wall-time limit, in seconds, for a whole fan-out (``None``: none).
            When it passes, requests still running are cancelled and reported as such;
            everything already received is kept.
        user_agent_purpose: The IVOA softid purpose in the User-Agent (``science``, or
            ``test`` for test suites, so operators can filter their logs).
        freeze_gc: While an engine is open, exclude the objects that existed before it
            (astropy alone creates some 150,000) from Python's full garbage collections,
            which otherwise walk them all and stall the event loop for 100 ms or more in
            the middle of a sweep. Undone when the last engine closes.
        registry: Where and how to query the VO Registry.
        tap: How TAP queries run (sync or async, waiting, clean-up, uploads).
    """

    timeouts: Timeouts = DEFAULT_TIMEOUTS
    limits: Limits = DEFAULT_LIMITS
    retry: RetryPolicy = DEFAULT_RETRY
    breaker: BreakerPolicy = DEFAULT_BREAKER
    errors: ErrorPolicy = ErrorPolicy()
    deadline: float | None = Field(default=None, gt=0)
    user_agent_purpose: str = "science"
    freeze_gc: bool = True
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    tap: TapPolicy = TapPolicy()

    @field_validator("errors", mode="before")
    @classmethod
    def _parse_errors(cls, value: object) -> object:
        if isinstance(value, str):
            return ErrorPolicy.parse(value)
        return value

    @field_validator("user_agent_purpose")
    @classmethod
    def _check_purpose(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]+", value):
            raise ValueError("the User-Agent purpose is one lower-case word, e.g. 'science'")
        return value


def make_config(config: EngineConfig | None = None, **overrides: object) -> EngineConfig:
    """Build a config from keyword overrides, turning validation errors into `UsageError`."""
    base = config or EngineConfig()
    if not overrides:
        return base
    try:
        return EngineConfig.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        raise UsageError(f"invalid engine configuration: {exc}") from None
