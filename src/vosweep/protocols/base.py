"""Sans-I/O value types shared by every protocol: what to send, what came back, what it meant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Parsed", "QueryStatus", "Request", "Response"]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, fully built (query parameters already encoded into ``url``).

    Attributes:
        url: The absolute URL, percent-encoded.
        method: ``GET`` or ``POST``.
        data: Form fields for a POST body.
        headers: Extra headers (the transport adds User-Agent and Accept-Encoding).
    """

    url: str
    method: str = "GET"
    data: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


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
        tables: The result tables, in document order (empty list: no result table at all).
        status: OK, or OVERFLOW when the service truncated the result (rows are kept).
        message: The status message or a note on what was found (e.g. the overflow text).
    """

    tables: list[Table]
    status: QueryStatus = QueryStatus.OK
    message: str | None = None

    @property
    def rows(self) -> int:
        """Total rows over all result tables."""
        return sum(len(t) for t in self.tables)
