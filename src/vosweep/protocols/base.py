"""Sans-I/O value types shared by every protocol: what to send, what came back, what it meant."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from vosweep.errors import HTTPStatusError, RateLimited

if TYPE_CHECKING:
    from astropy.table import Table

    from vosweep.protocols.fastvot._model import TableData
    from vosweep.protocols.links import DatalinkAccess

__all__ = [
    "Parsed",
    "QueryStatus",
    "Request",
    "Response",
    "UploadFile",
    "check_http_status",
    "number_text",
    "parse_retry_after",
    "position_text",
    "with_params",
]


@dataclass(frozen=True, slots=True)
class UploadFile:
    """A file part of a multipart/form-data POST (a TAP upload).

    Attributes:
        name: The form field name (what ``UPLOAD=t,param:<name>`` points at).
        filename: The file name sent with it.
        content: The bytes.
        content_type: Its media type.
    """

    name: str
    filename: str
    content: bytes
    content_type: str = "application/x-votable+xml"


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, fully built (query parameters already encoded into ``url``).

    Attributes:
        url: The absolute URL, percent-encoded.
        method: ``GET``, ``POST`` or ``DELETE``.
        data: Form fields for a POST body.
        headers: Extra headers (the transport adds User-Agent and Accept-Encoding).
        files: File parts: with any, the body is multipart/form-data.
        follow_redirects: Follow 3xx answers (off where the ``Location`` is the answer,
            as for a UWS job creation's 303).
    """

    url: str
    method: str = "GET"
    data: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    files: tuple[UploadFile, ...] = ()
    follow_redirects: bool = True


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response, body already read (and transport-decompressed).

    Attributes:
        url: The final URL, after redirects.
        status: The HTTP status code.
        headers: Response headers, names lower-cased.
        body: The body bytes.
        content_type: The media type, lower-cased, without parameters ("" if absent).
        elapsed: Seconds from sending to the last body byte.
    """

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""
    elapsed: float = 0.0


class QueryStatus(StrEnum):
    """The DALI QUERY_STATUS values that survive parsing (ERROR raises `QueryRejected`)."""

    OK = "OK"
    OVERFLOW = "OVERFLOW"


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a response meant.

    Attributes:
        tables: The result tables, in document order (empty list: no result table at all);
            astropy tables, or the fast decoder's `TableData` (astropy built on demand).
        status: OK, or OVERFLOW when the service truncated the result (rows are kept).
        message: The status message or a note on what was found (e.g. the overflow text).
        datalink: The document's DataLink service descriptors, usable on its rows
            (`vosweep.protocols.links.DatalinkAccess`).
    """

    tables: list[Table | TableData]
    status: QueryStatus = QueryStatus.OK
    message: str | None = None
    datalink: tuple[DatalinkAccess, ...] = ()

    @property
    def rows(self) -> int:
        """Total rows over all result tables."""
        return sum(len(t) for t in self.tables)


def number_text(value: float) -> str:
    """A number as a request parameter: `repr` round-trips, so no precision is lost or invented."""
    return repr(float(value))


def position_text(ra: float | None, dec: float | None) -> str:
    """SIA 1.0 and SSA's ``POS=ra,dec`` in decimal degrees."""
    return f"{number_text(ra or 0.0)},{number_text(dec or 0.0)}"


def with_params(url: str, params: list[tuple[str, str]]) -> str:
    """Append query parameters to *url*, keeping those already in it.

    Registered access URLs often carry parameters of their own (``...?CAT=II/246&``) or end
    in a bare ``?``; both must survive, and a parameter we set replaces one of the same name
    (case-insensitively, as the IVOA parameter names are).
    """
    parts = urlsplit(url)
    ours = {name.upper() for name, _ in params}
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.upper() not in ours
    ]
    query = urlencode(kept + params, quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            seconds = float(value)  # not RFC 9110, but some servers send "1.5"
        except ValueError:
            return None
        return seconds if seconds >= 0 else None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


_STATUS_MESSAGE = re.compile(
    rb"<(?:\w+:)?INFO\b[^>]*\bname\s*=\s*[\"']QUERY_STATUS[\"'][^>]*>(.*?)</(?:\w+:)?INFO>",
    re.IGNORECASE | re.DOTALL,
)


def check_http_status(response: Response) -> None:
    """Raise the right `HTTPStatusError` for a non-2xx answer.

    DALI lets services answer errors with 4xx/5xx and a VOTable whose QUERY_STATUS INFO
    holds the reason; that reason is far more useful than "Bad Request", so it is used.
    """
    status = response.status
    if 200 <= status < 300:
        return
    reason = _error_text(response.body)
    message = f"HTTP {status}" + (f": {reason}" if reason else "")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429 or (status == 503 and retry_after is not None):
        raise RateLimited(message, retry_after=retry_after, url=response.url, status=status)
    raise HTTPStatusError(message, url=response.url, status=status)


def _error_text(body: bytes, limit: int = 300) -> str:
    head = body[:65536]
    match = _STATUS_MESSAGE.search(head)
    if match:
        text = match[1]
    else:
        # An HTML error page repeats its <title> in an <h1>: drop the head, keep the body.
        text = re.sub(rb"(?is)<head\b.*?</head>|<title\b.*?</title>", b" ", head[:8192])
        text = re.sub(rb"<[^>]*>", b" ", text)
    cleaned = " ".join(text.decode("utf-8", "replace").split())
    return cleaned[:limit]
