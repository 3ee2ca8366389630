"""Simple Cone Search 1.03: build a GET request, read a VOTable answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vosweep.errors import UsageError
from vosweep.protocols.base import Parsed, Request, Response, number_text, with_params
from vosweep.protocols.votable import parse_votable
from vosweep.queries import Cone

if TYPE_CHECKING:
    from vosweep.services import Service

__all__ = ["build", "parse"]


def build(service: Service, query: object) -> Request:
    """The SCS GET request for *query* on *service* (RA, DEC, SR in decimal degrees)."""
    if not isinstance(query, Cone):
        raise UsageError(f"a cone search service cannot answer a {type(query).__name__} query")
    params = [
        ("RA", number_text(query.ra)),
        ("DEC", number_text(query.dec)),
        ("SR", number_text(query.radius)),
    ]
    if query.verb is not None:
        params.append(("VERB", str(query.verb)))
    return Request(url=with_params(service.access_url, params))


def parse(response: Response, *, max_bytes: int) -> Parsed:
    """Read an SCS answer: a VOTable whose error signals may sit in several places."""
    return parse_votable(response.body, content_type=response.content_type, max_bytes=max_bytes)
