"""Coverage pre-filtering: services whose declared coverage excludes the query are not asked.

RegTAP 1.2 keeps each resource's sky, spectral and time coverage (``rr.stc_spatial``,
``rr.stc_spectral``, ``rr.stc_temporal``). A cone on the Crab need not be sent to a survey
of the southern sky: before any request, the registry is asked which of the found
resources declare a coverage that the query misses. Resources declaring no coverage are
always asked (most do not declare it yet), and a registry without those tables or the
functions they need means no filtering at all, never a failed sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import astropy.units as u

from vosweep import _log
from vosweep.errors import (
    QueryRejected,
    RegistryFeatureMissing,
    RegistryUnavailable,
    UsageError,
)
from vosweep.registry.constraints import Constraint, Spatial, Spectral, Temporal
from vosweep.registry.results import RegistryResource, RegistryResults

if TYPE_CHECKING:
    from vosweep.registry.client import RegistryClient

__all__ = ["CoverageCheck", "coverage_checks", "excluded_resources", "out_of_coverage"]

#: MOC order of the query's region: order 6 cells are about a degree wide, RegTAP's
#: recommended resolution of coverage; a coarser cell only errs on the side of asking.
_ORDER = 6
#: ivoids per registry query.
_BATCH = 500


@dataclass(frozen=True, slots=True)
class CoverageCheck:
    """One coverage the query must meet, as a registry constraint over one ``rr`` table."""

    table: str
    constraint: Constraint
    what: str


def coverage_checks(query: object) -> list[CoverageCheck]:
    """The coverage checks a query's own position, band and time imply (possibly none).

    Queries say where they look through ``ra``/``dec`` and a size (`Cone`, `ImageQuery`,
    `SpectrumQuery`), ``band`` (metres) and ``time`` (MJD); other queries (ADQL) imply
    nothing unless they offer ``coverage_hint()`` returning ``(ra, dec, radius)`` degrees.
    """
    checks: list[CoverageCheck] = []
    circle = _circle(query)
    if circle is not None:
        ra, dec, radius = circle
        spatial = Spatial((ra, dec, max(radius, 1e-6)), order=_ORDER, intersect="overlaps")
        checks.append(CoverageCheck("rr.stc_spatial", spatial, "sky"))
    band = _pair(getattr(query, "band", None))
    if band is not None:
        low, high = band
        spectral = Spectral((max(low, 1e-30) * u.m, max(high, 1e-30) * u.m))
        checks.append(CoverageCheck("rr.stc_spectral", spectral, "spectral"))
    time = _pair(getattr(query, "time", None))
    if time is not None:
        checks.append(CoverageCheck("rr.stc_temporal", Temporal(time), "time"))
    return checks


def _pair(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, tuple) or len(value) != 2:
        return None
    if not all(isinstance(v, float | int) and math.isfinite(v) for v in value):
        return None  # an open end (None, inf) or NaN says nothing the registry can use
    return float(value[0]), float(value[1])


def _circle(query: object) -> tuple[float, float, float] | None:
    hint = getattr(query, "coverage_hint", None)
    if callable(hint):
        found = hint()
        return None if found is None else (float(found[0]), float(found[1]), float(found[2]))
    ra, dec = getattr(query, "ra", None), getattr(query, "dec", None)
    if not isinstance(ra, float | int) or not isinstance(dec, float | int):
        return None
    radius = getattr(query, "radius", None)
    if isinstance(radius, float | int) and radius > 0:
        return float(ra), float(dec), float(radius)
    diameter = getattr(query, "diameter", None)
    if isinstance(diameter, float | int) and diameter > 0:
        return float(ra), float(dec), float(diameter) / 2
    size = getattr(query, "size", None)
    if isinstance(size, tuple) and size and all(isinstance(v, float | int) for v in size):
        # A width x height box lies within the circle through its corners.
        return float(ra), float(dec), max(size) / 2 * math.sqrt(2)
    return float(ra), float(dec), 0.0


async def excluded_resources(
    registry: RegistryClient, targets: object, query: object
) -> dict[str, str]:
    """`out_of_coverage` for fan-out targets: registry results or one registry resource.

    Services given by hand (anything else) are the user's choice: none is excluded.
    """
    if isinstance(targets, RegistryResource):
        ivoids, subquery = [targets.ivoid], None
    elif isinstance(targets, RegistryResults):
        ivoids, subquery = [r.ivoid for r in targets], targets.ivoid_subquery()
    else:
        return {}
    if not coverage_checks(query):
        return {}
    return await out_of_coverage(registry, ivoids, query, subquery)


async def out_of_coverage(
    registry: RegistryClient,
    ivoids: Sequence[str],
    query: object,
    subquery: str | None = None,
) -> dict[str, str]:
    """The ivoids among *ivoids* whose declared coverage misses *query*, with the reason.

    *subquery*, an ADQL subquery selecting exactly *ivoids* (the search that found them:
    `RegistryResults.ivoid_subquery`), makes it two registry queries per coverage kind
    whatever their number; without it they are named in batches of 500.

    Never raises: filtering is an optimisation, so what the registry lacks, refuses or
    cannot answer means "none excluded" for that coverage (and an event says why).
    """
    checks = coverage_checks(query)
    wanted = sorted({ivoid.lower() for ivoid in ivoids if ivoid})
    if not checks or not wanted:
        return {}
    try:
        features = await registry.features()
    except RegistryUnavailable as exc:
        _log.get_logger().warning(_log.COVERAGE_UNCHECKED, coverage="all", error=str(exc))
        return {}
    excluded: dict[str, str] = {}
    for check in checks:
        try:
            condition = check.constraint.get_search_condition(features)
        except (RegistryFeatureMissing, UsageError) as exc:
            _log.get_logger().debug(_log.COVERAGE_UNCHECKED, coverage=check.what, error=str(exc))
            continue
        try:
            try:
                declared = await _ivoids(registry, check.table, wanted, None, subquery)
            except QueryRejected:
                if subquery is None:
                    raise
                subquery = None  # another endpoint's dialect: name the ivoids instead
                declared = await _ivoids(registry, check.table, wanted, None)
            meeting = await _ivoids(registry, check.table, sorted(declared), condition, subquery)
        except (QueryRejected, RegistryUnavailable) as exc:
            _log.get_logger().warning(_log.COVERAGE_UNCHECKED, coverage=check.what, error=str(exc))
            continue
        for ivoid in sorted(declared - meeting):
            excluded.setdefault(
                ivoid, f"out of coverage: the query is outside its declared {check.what} coverage"
            )
    return excluded


async def _ivoids(
    registry: RegistryClient,
    table: str,
    ivoids: Sequence[str],
    condition: str | None,
    subquery: str | None = None,
) -> set[str]:
    """Which of *ivoids* have a row in *table* (meeting *condition*, when given)."""
    from vosweep.registry._adql import string_literal  # noqa: PLC0415 - avoids a cycle

    wanted = {ivoid.lower() for ivoid in ivoids}
    selections = (
        [subquery]
        if subquery is not None
        else [
            ", ".join(string_literal(i) for i in ivoids[start : start + _BATCH])
            for start in range(0, len(ivoids), _BATCH)
        ]
    )
    found: set[str] = set()
    for selection in selections:
        where = f"ivoid IN ({selection})"
        if condition is not None:
            where += f" AND {condition}"
        answer = await registry.query(
            f"SELECT DISTINCT ivoid FROM {table} WHERE {where}",  # noqa: S608 - literals quoted
            maxrec=max(len(ivoids), 1) * 4,
        )
        found.update(str(row.get("ivoid") or "").lower() for row in answer.rows)
    return found & wanted
