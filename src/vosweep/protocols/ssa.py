"""Simple Spectral Access 1.x: build queryData GET requests, read VOTable answers (sans-I/O).

SSA predates DALI: ranges are written ``low/high`` (either end may be empty), times are
ISO 8601, and SIZE is the *diameter* of the search region in degrees.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vosweep.errors import UsageError
from vosweep.protocols.base import Request, number_text, position_text, with_params

# An answer is a VOTable with DALI QUERY_STATUS and, maybe, DataLink descriptors.
from vosweep.protocols.links import parse_results as parse
from vosweep.queries import Cone, SpectrumQuery

if TYPE_CHECKING:
    from collections.abc import Callable

    from vosweep.services import Service

__all__ = ["build", "iso_time", "parse", "ssa_range"]


def ssa_range(interval: tuple[float, float], text: Callable[[float], str] = number_text) -> str:
    """SSA's range-list syntax: ``low/high``, an open end left empty; one value if equal."""
    low, high = interval
    if low == high and math.isfinite(low):
        return text(low)
    return f"{'' if math.isinf(low) else text(low)}/{'' if math.isinf(high) else text(high)}"


def iso_time(mjd: float) -> str:
    """An MJD as the ISO 8601 timestamp SSA's TIME parameter takes."""
    from astropy.time import Time  # noqa: PLC0415 - astropy.time is slow to import

    return str(Time(mjd, format="mjd", scale="utc").isot)


def build(service: Service, query: object) -> Request:
    """The SSA ``REQUEST=queryData`` for a cone or spectrum query."""
    params: list[tuple[str, str]] = [("REQUEST", "queryData")]
    if isinstance(query, Cone):
        params += [
            ("POS", position_text(query.ra, query.dec)),
            ("SIZE", number_text(2 * query.radius)),
        ]
        return Request(url=with_params(service.access_url, params))
    if not isinstance(query, SpectrumQuery):
        raise UsageError(f"an SSA service cannot answer a {type(query).__name__} query")
    if query.has_position:
        params.append(("POS", position_text(query.ra, query.dec)))
        if query.diameter is not None:
            params.append(("SIZE", number_text(query.diameter)))
    if query.band is not None:
        params.append(("BAND", ssa_range(query.band)))
    if query.time is not None:
        params.append(("TIME", ssa_range(query.time, iso_time)))
    if query.format:
        params.append(("FORMAT", ",".join(query.format)))
    if query.maxrec is not None:
        params.append(("MAXREC", str(query.maxrec)))
    params.extend(query.params)
    return Request(url=with_params(service.access_url, params))
