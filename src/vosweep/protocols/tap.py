"""TAP 1.1 synchronous queries and the VOSI endpoints of a TAP service, sans I/O.

The registry client runs its RegTAP queries through these; the fan-out's TAP protocol
(sync and UWS) builds on them. Queries are POSTed as forms: an ADQL query with a list
of a few hundred identifiers does not fit the URL length limits of real servers.
"""

from __future__ import annotations

from vosweep.errors import UsageError
from vosweep.protocols.base import Parsed, Request, Response
from vosweep.protocols.votable import parse_votable

__all__ = ["capabilities_request", "parse_sync", "sync_request", "sync_url"]


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def sync_url(base_url: str) -> str:
    """The ``{base}/sync`` endpoint of a TAP service."""
    return _base(base_url) + "/sync"


def sync_request(base_url: str, adql: str, *, maxrec: int | None = None) -> Request:
    """A synchronous ADQL query (``REQUEST=doQuery``, ``LANG=ADQL``) as a form POST.

    Raises:
        UsageError: An empty query or a negative *maxrec*.
    """
    if not adql.strip():
        raise UsageError("an ADQL query cannot be empty")
    data = [("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", adql)]
    if maxrec is not None:
        if maxrec < 0:
            raise UsageError(f"maxrec must be >= 0, got {maxrec}")
        data.append(("MAXREC", str(maxrec)))
    return Request(url=sync_url(base_url), method="POST", data=tuple(data))


def capabilities_request(base_url: str) -> Request:
    """The VOSI capabilities document of a TAP service (TAPRegExt lives there)."""
    return Request(url=_base(base_url) + "/capabilities")


def parse_sync(response: Response, *, max_bytes: int) -> Parsed:
    """A sync answer: a VOTable whose QUERY_STATUS says OK, OVERFLOW or ERROR."""
    return parse_votable(response.body, content_type=response.content_type, max_bytes=max_bytes)
