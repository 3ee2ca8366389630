"""The vosweep error tree.

One root, split into "your fault" (raised before any I/O) and "their fault" (what a
service did wrong; turned into a per-service outcome at the fan-out boundary):

* `VosweepError`
    * `UsageError` (also a `ValueError`): bad input from the caller.
        * `RegistryFeatureMissing`: a registry constraint needs a feature the registry lacks.
    * `FanoutAborted`: the ``abort`` error policy stopped a fan-out; carries the partial result.
    * `RegistryUnavailable`: no registry endpoint could be reached; says why for each.
    * `ServiceError`: a service failed; carries the service, URL and HTTP status.
        * `TransportError`: connection refused or reset, DNS failure, TLS trouble.
        * `ServiceTimeout` (also a `TimeoutError`): connect, idle-read or attempt timeout.
          Not retried, so a hung service costs one timeout.
        * `HTTPStatusError`: a non-2xx answer.
            * `RateLimited`: 429, or 503 with ``Retry-After``; carries ``retry_after``.
        * `TooManyRedirects`: a redirect chain longer than allowed, or to another scheme.
        * `ResponseTooLarge`: the (decompressed) body passed the size cap.
        * `ResponseFormatError`: not a VOTable, truncated, HTML served with 200, ...
        * `QueryRejected`: the service answered with QUERY_STATUS=ERROR (or an Error PARAM/INFO).
        * `NotSupported`: not sent, because the service declares it cannot run the query.
        * `CircuitOpen`: not sent, because the host's circuit breaker is open.

`SweepInterrupted` is not a `VosweepError`: it is the `KeyboardInterrupt` of `fanout_sync`,
carrying the partial result, so that Ctrl-C still stops a script.

Only `vosweep.transport` translates aiohttp's exceptions into these (with ``__cause__`` kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from vosweep.result import FanoutResult
    from vosweep.services import Service

__all__ = [
    "CircuitOpen",
    "FanoutAborted",
    "HTTPStatusError",
    "NotSupported",
    "QueryRejected",
    "RateLimited",
    "RegistryFeatureMissing",
    "RegistryUnavailable",
    "ResponseFormatError",
    "ResponseTooLarge",
    "ServiceError",
    "ServiceTimeout",
    "SweepInterrupted",
    "TooManyRedirects",
    "TransportError",
    "UsageError",
    "VosweepError",
]

#: HTTP status codes worth another attempt (besides 429 and 503, which may carry Retry-After).
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class VosweepError(Exception):
    """Root of every error vosweep raises on purpose."""


class UsageError(VosweepError, ValueError):
    """The caller asked for something invalid; raised before any request is sent."""


class RegistryFeatureMissing(UsageError):
    """A registry constraint needs a feature (ADQL feature, UDF, table) the registry lacks.

    Raised while building the query, before it is sent. Other RegTAP endpoints may have
    the feature: a search with ``datamodel="regtap"`` lists them.

    Attributes:
        feature: What is missing, e.g. ``"the MOC function"``.
        constraint: The constraint that needs it, e.g. ``"Spatial"``.
    """

    def __init__(self, feature: str, constraint: str) -> None:
        super().__init__(
            f"{constraint} needs {feature}, which this registry does not offer; use another"
            " RegTAP endpoint or drop the constraint"
        )
        self.feature = feature
        self.constraint = constraint


class FanoutAborted(VosweepError):
    """The ``abort`` error policy stopped the fan-out at the first failed service.

    Attributes:
        result: Everything received before the abort (a `vosweep.FanoutResult`).
        cause: The service error that triggered the abort.
    """

    def __init__(self, message: str, *, result: FanoutResult, cause: ServiceError) -> None:
        super().__init__(message)
        self.result = result
        self.cause = cause


class RegistryUnavailable(VosweepError):
    """Every configured RegTAP endpoint failed (unreachable, timed out, 5xx, garbage).

    Attributes:
        failures: Endpoint -> the error it gave, in the order they were tried.
    """

    def __init__(self, failures: dict[str, ServiceError]) -> None:
        if failures:
            detail = "; ".join(
                f"{endpoint}: {type(exc).__name__}: {exc}" for endpoint, exc in failures.items()
            )
        else:
            detail = "no endpoint configured"
        super().__init__(
            f"no registry endpoint answered ({detail}); set IVOA_REGISTRY or"
            " EngineConfig.registry.endpoints to another RegTAP service"
        )
        self.failures = dict(failures)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `vosweep.fanout_sync`.

    Attributes:
        result: Everything received before the interrupt (a `vosweep.FanoutResult`), or
            ``None`` if the interrupt came before the fan-out started.
    """

    def __init__(self, result: FanoutResult | None) -> None:
        super().__init__("fan-out interrupted; partial result in .result")
        self.result = result


class ServiceError(VosweepError):
    """A remote service failed to deliver a usable answer.

    Attributes:
        service: The service concerned, when known at the raise site.
        url: The URL that was requested (after redirects, when known).
        status: The HTTP status code, when there was one.
    """

    #: Whether another attempt may succeed (connection trouble, 5xx, 408, 425, 429).
    transient: ClassVar[bool] = False
    #: Whether this failure says something about the health of the whole host.
    host_failure: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        service: Service | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.url = url
        self.status = status

    def is_transient(self) -> bool:
        """Return whether a retry may help."""
        return self.transient


class TransportError(ServiceError):
    """The connection could not be made or broke down (refused, reset, DNS, TLS)."""

    transient = True
    host_failure = True


class ServiceTimeout(ServiceError, TimeoutError):
    """A per-attempt time limit ran out.

    Attributes:
        phase: ``"connect"``, ``"read"`` (no bytes for the idle-read time) or ``"total"``.
    """

    # Not retried: a hung or dripping service must cost at most its timeout, once.
    transient = False
    host_failure = True

    def __init__(self, message: str, *, phase: str = "total", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.phase = phase


class HTTPStatusError(ServiceError):
    """The service answered with a non-success HTTP status."""

    def is_transient(self) -> bool:
        """5xx, 408, 425 and 429 may go away; other 4xx will not."""
        return self.status in TRANSIENT_HTTP_STATUSES

    @property
    def is_host_failure(self) -> bool:
        """Server-side errors (5xx) count against the host's circuit breaker."""
        return self.status is not None and self.status >= 500


class RateLimited(HTTPStatusError):
    """429, or 503 with a ``Retry-After`` header: the server is alive and says when to return.

    Attributes:
        retry_after: Seconds the server asked us to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def is_transient(self) -> bool:
        """Always worth another attempt, after the requested pause."""
        return True

    @property
    def is_host_failure(self) -> bool:
        """The host answered and asked for patience: not a sign of a dead host."""
        return False


class TooManyRedirects(ServiceError):
    """The redirect chain was too long, looped, or left HTTP(S)."""


class ResponseTooLarge(ServiceError):
    """The response body, after decompression, passed the configured size cap."""


class ResponseFormatError(ServiceError):
    """The body is not a usable VOTable: malformed, truncated, HTML, or another format."""


class QueryRejected(ServiceError):
    """The service understood the request and refused it (QUERY_STATUS=ERROR and kin)."""


class NotSupported(ServiceError):
    """Not sent: the service declares it cannot run this query (no uploads, no UNION...)."""


class CircuitOpen(ServiceError):
    """The request was not sent because the host's circuit breaker is open."""


def counts_against_host(exc: ServiceError) -> bool:
    """Return whether *exc* is evidence that the service's host is unhealthy."""
    if isinstance(exc, HTTPStatusError):
        return exc.is_host_failure
    return exc.host_failure
