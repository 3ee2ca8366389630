"""The aiohttp transport: one session per engine, per-phase timeouts, capped bodies.

aiohttp's exceptions are translated into vosweep's here and nowhere else, keeping the
original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from vosweep.errors import (
    ResponseFormatError,
    ResponseTooLarge,
    ServiceError,
    ServiceTimeout,
    TooManyRedirects,
    TransportError,
)
from vosweep.protocols.base import Request, Response

if TYPE_CHECKING:
    from vosweep.config import Limits, Timeouts

__all__ = ["AiohttpTransport", "user_agent"]

#: Bytes kept from the body of an HTTP error answer: enough for any error message.
ERROR_BODY_BYTES = 64 * 1024
_CHUNK = 256 * 1024


def _package_version() -> str:
    try:
        return version("vosweep")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def user_agent(purpose: str = "science") -> str:
    """The IVOA softid User-Agent: product/version, then ``(IVOA-<purpose>)``.

    Operators filter their logs on the purpose (``test`` traffic is not science use).
    """
    return f"vosweep/{_package_version()} aiohttp/{aiohttp.__version__} (IVOA-{purpose})"


class AiohttpTransport:
    """Sends requests through one `aiohttp.ClientSession`.

    The politeness limits live in the scheduler (keyed by host name); the connector's own
    limit is only a safety net, sized to the global limit. Cookies are never stored: one
    service's cookies must not reach another.
    """

    def __init__(self, limits: Limits, *, purpose: str = "science") -> None:
        self._limits = limits
        connector = aiohttp.TCPConnector(
            limit=limits.total,
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=15,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": user_agent(purpose), "Accept-Encoding": "gzip, deflate"},
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            raise_for_status=False,
            trust_env=True,
        )

    async def send(self, request: Request, *, timeouts: Timeouts, max_bytes: int) -> Response:
        """Send *request*; read at most *max_bytes* of (decompressed) body."""
        started = time.perf_counter()
        client_timeout = aiohttp.ClientTimeout(
            total=timeouts.attempt, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        with _map_errors(request.url, timeouts, self._limits):
            async with self._session.request(
                request.method,
                URL(request.url, encoded=True),
                data=_body(request),
                headers=dict(request.headers) if request.headers else None,
                timeout=client_timeout,
                allow_redirects=request.follow_redirects,
                # aiohttp raises on its max_redirects-th redirect (following one fewer) and
                # reads 0 as "no limit": one more makes the limit the number of hops followed.
                max_redirects=self._limits.max_redirects + 1,
            ) as resp:
                final_url = str(resp.url)
                limit = max_bytes if resp.status < 400 else min(max_bytes, ERROR_BODY_BYTES)
                declared = resp.content_length
                if (
                    resp.status < 400
                    and declared is not None
                    and declared > max_bytes
                    and "content-encoding" not in resp.headers
                ):
                    raise ResponseTooLarge(
                        f"response declares {declared} bytes, over the {max_bytes}-byte cap",
                        url=final_url,
                        status=resp.status,
                    )
                body = await _read_capped(resp, limit, final_url, truncate=resp.status >= 400)
                return Response(
                    url=final_url,
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                    content_type=resp.content_type.lower() if resp.content_type else "",
                    elapsed=time.perf_counter() - started,
                )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self._session.close()


def _body(request: Request) -> list[tuple[str, str]] | aiohttp.FormData | None:
    """The form, url-encoded; or multipart/form-data when the request carries files."""
    if not request.files:
        return list(request.data) if request.data else None
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request.data:
        form.add_field(name, value)
    for part in request.files:
        form.add_field(
            part.name, part.content, filename=part.filename, content_type=part.content_type
        )
    return form


async def _read_capped(
    resp: aiohttp.ClientResponse, limit: int, url: str, *, truncate: bool
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                resp.close()
                break
            resp.close()
            raise ResponseTooLarge(
                f"response body passed the {limit}-byte cap", url=url, status=resp.status
            )
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def _map_errors(url: str, timeouts: Timeouts, limits: Limits) -> Iterator[None]:
    """Translate aiohttp and socket exceptions into vosweep errors (most specific first)."""
    try:
        yield
    except ServiceError:
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        raise ServiceTimeout(
            f"no connection within {timeouts.connect} s", phase="connect", url=url
        ) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise ServiceTimeout(
            f"no data for {timeouts.read} s (idle-read timeout)", phase="read", url=url
        ) from exc
    except (aiohttp.NonHttpUrlRedirectClientError, aiohttp.InvalidUrlRedirectClientError) as exc:
        raise TooManyRedirects(f"redirect to a non-HTTP or invalid URL: {exc}", url=url) from exc
    except aiohttp.TooManyRedirects as exc:
        last = str(exc.history[-1].url) if exc.history else url
        raise TooManyRedirects(
            f"more than {limits.max_redirects} redirects (max_redirects), last at {last}",
            url=url,
            status=exc.status,
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        cause = exc.__cause__ or exc
        if "encoding" in str(cause).lower() or "decompress" in str(cause).lower():
            raise ResponseFormatError(f"undecodable body: {cause}", url=url) from exc
        raise TransportError(f"connection broke during the body: {exc}", url=url) from exc
    except aiohttp.ClientResponseError as exc:
        raise TransportError(
            f"invalid HTTP response: {exc.message}", url=url, status=exc.status or None
        ) from exc
    except TimeoutError as exc:
        # aiohttp signals the attempt's total limit with a plain TimeoutError, which is
        # an OSError too: it must be caught before the OSError branch below.
        raise ServiceTimeout(
            f"attempt took longer than {timeouts.attempt} s", phase="total", url=url
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise TransportError(_describe(exc), url=url) from exc
    except asyncio.IncompleteReadError as exc:  # pragma: no cover - aiohttp wraps these
        raise TransportError(f"connection closed early: {exc}", url=url) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a complete answer"
    text = str(exc) or type(exc).__name__
    return f"connection error: {text}"
