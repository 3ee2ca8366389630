"""Simple Image Access 1.0 and 2.0: build GET requests, read VOTable answers (sans-I/O).

SIA1 and SIA2 take different parameters for the same question: SIA1 wants ``POS=ra,dec``
and ``SIZE=width,height``; SIA2 (DALI) wants ``POS=CIRCLE ra dec r`` and intervals as
``low high`` pairs in SI units. One `ImageQuery` (or a `Cone`) becomes the right request
for each, so a fan-out can mix both versions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vosweep.errors import UsageError
from vosweep.protocols.base import Request, number_text, position_text, with_params

# An answer is a VOTable with DALI QUERY_STATUS and, maybe, DataLink descriptors.
from vosweep.protocols.links import parse_results as parse
from vosweep.queries import Cone, ImageQuery

if TYPE_CHECKING:
    from vosweep.services import Service

__all__ = ["build_sia1", "build_sia2", "dali_interval", "metadata_request", "parse"]


def dali_interval(interval: tuple[float, float]) -> str:
    """A DALI interval: ``low high`` with ``-Inf`` / ``+Inf`` for open ends."""

    def end(value: float) -> str:
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return number_text(value)

    return f"{end(interval[0])} {end(interval[1])}"


def _circle(ra: float, dec: float, radius: float) -> str:
    """A DALI circle: ``CIRCLE ra dec radius`` in degrees."""
    return f"CIRCLE {number_text(ra)} {number_text(dec)} {number_text(radius)}"


def build_sia1(service: Service, query: object) -> Request:
    """The SIA 1.0 query (POS, SIZE, INTERSECT, FORMAT, VERB) for a cone or image query."""
    params: list[tuple[str, str]]
    if isinstance(query, Cone):
        params = [
            ("POS", position_text(query.ra, query.dec)),
            ("SIZE", number_text(2 * query.radius)),
        ]
        if query.verb is not None:
            params.append(("VERB", str(query.verb)))
        return Request(url=with_params(service.access_url, params))
    if not isinstance(query, ImageQuery):
        raise UsageError(f"an SIA service cannot answer a {type(query).__name__} query")
    unsupported = query.sia1_unsupported
    if unsupported and not query.sia1_lenient:
        raise UsageError(
            "SIA 1.0 cannot express " + ", ".join(unsupported) + " (use sia1_lenient=True to "
            "send the position alone)"
        )
    size = query.full_size
    if not query.has_position or size is None:
        raise UsageError("SIA 1.0 needs a position and a size")
    width, height = size
    params = [
        ("POS", position_text(query.ra, query.dec)),
        (
            "SIZE",
            number_text(width)
            if width == height
            else f"{number_text(width)},{number_text(height)}",
        ),
    ]
    if query.intersect:
        params.append(("INTERSECT", query.intersect))
    if query.format:
        params.append(("FORMAT", ",".join(query.format)))
    if query.verb is not None:
        params.append(("VERB", str(query.verb)))
    if query.maxrec is not None:
        params.append(("MAXREC", str(query.maxrec)))
    params.extend(query.params)
    return Request(url=with_params(service.access_url, params))


def build_sia2(service: Service, query: object) -> Request:
    """The SIA 2.0 query: DALI parameters, repeated where several values are OR-ed."""
    if isinstance(query, Cone):
        params = [("POS", _circle(query.ra, query.dec, query.radius))]
        return Request(url=with_params(service.access_url, params))
    if not isinstance(query, ImageQuery):
        raise UsageError(f"an SIA2 service cannot answer a {type(query).__name__} query")
    params = []
    radius = query.circle_radius
    if query.has_position and radius is not None:
        params.append(("POS", _circle(query.ra or 0.0, query.dec or 0.0, radius)))
    if query.polygon:
        params.append(
            (
                "POS",
                "POLYGON "
                + " ".join(f"{number_text(a)} {number_text(d)}" for a, d in query.polygon),
            )
        )
    for name, interval in (
        ("BAND", query.band),
        ("TIME", query.time),
        ("FOV", query.fov),
        ("SPATRES", query.spatres),
        ("EXPTIME", query.exptime),
    ):
        if interval is not None:
            params.append((name, dali_interval(interval)))
    for name, values in (
        ("POL", query.pol),
        ("COLLECTION", query.collection),
        ("FACILITY", query.facility),
        ("INSTRUMENT", query.instrument),
        ("DPTYPE", query.dptype),
        ("TARGET", query.target),
        ("ID", query.id),
        ("FORMAT", query.format),
    ):
        params.extend((name, value) for value in values)
    params.extend(("CALIB", str(level)) for level in query.calib)
    if query.maxrec is not None:
        params.append(("MAXREC", str(query.maxrec)))
    params.extend(query.params)
    return Request(url=with_params(service.access_url, params))


def metadata_request(service: Service) -> Request:
    """Ask an SIA 1.0 (or SSA) service to describe its own parameters (FORMAT=METADATA)."""
    return Request(url=with_params(service.access_url, [("FORMAT", "METADATA")]))
