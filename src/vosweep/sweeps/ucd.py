"""UCD-driven multi-table TAP sweeps: "all proper motions in the VO around here".

The pyVO course's VO-wide TAP recipe, made robust: the registry (RegTAP) names the
tables that have columns of the wanted UCDs, each table gets a ``SELECT`` that maps its
columns by UCD onto the user's result schema, and each service gets one query (a
``UNION ALL`` of its tables) or, where it lacks UNION, one query per table. What breaks
the naive recipe is handled here: VizieR's table names (``J/A+A/600/A12/table2``) and
mixed-case columns are delimited identifiers; ``CAST`` harmonises types only where the
service declares it; units differ per table (arcsec/yr here, mas/yr there) and are
converted with astropy after the merge, per source table, using the units the registry
gives for the table's columns. Those, not the units in the answer, are trusted: in a
UNION the answer's metadata is the first table's for every row.

Sans-I/O where it can be: `ucd_regtap_query`, `plan_ucd` and `finish_ucd` are pure;
`find_ucd_tables` and `ucd_sweep` do the I/O through an `Engine`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table
from pydantic import BaseModel, field_validator

from vosweep import _log
from vosweep.adql import identifier, table_reference
from vosweep.aggregation import PROVENANCE_COLUMNS
from vosweep.errors import RegistryFeatureMissing, ServiceError, UsageError
from vosweep.queries import Cone, TapQuery
from vosweep.registry._adql import number_literal, string_literal
from vosweep.registry.constraints import Spatial
from vosweep.services import Service
from vosweep.targets import Targeted

if TYPE_CHECKING:
    from vosweep.engine import Engine
    from vosweep.outcomes import Part
    from vosweep.protocols.vosi import ServiceCapabilities, TapCapabilities
    from vosweep.registry.features import RegistryFeatures
    from vosweep.result import FanoutResult

__all__ = [
    "SOURCE_TABLE",
    "ResultColumn",
    "UcdColumn",
    "UcdTable",
    "find_ucd_tables",
    "finish_ucd",
    "match_ucd",
    "merge_ucd",
    "pick_columns",
    "plan_ucd",
    "ucd_regtap_query",
    "ucd_sweep",
    "ucd_tables_from_rows",
]

#: The column naming each row's source table (in every query and in the result).
SOURCE_TABLE = "source_table"
#: Most tables one UNION query joins: VizieR has hundreds per service.
UNION_LIMIT = 50
#: Capabilities documents fetched at once while planning.
CAPABILITY_CONCURRENCY = 10
#: The most registry rows read (one per matching column).
REGISTRY_MAXREC = 1_000_000

#: The columns and joins of `ucd_regtap_query` (the conditions follow).
_REGTAP_SELECT = (
    "SELECT i.access_url, r.ivoid, r.short_name, r.res_title, t.table_name,"
    " c.name, c.ucd, c.unit, c.datatype"
    " FROM rr.table_column AS c"
    " JOIN rr.res_table AS t ON t.ivoid = c.ivoid AND t.table_index = c.table_index"
    " JOIN rr.resource AS r ON r.ivoid = c.ivoid"
    " JOIN rr.capability AS cap ON cap.ivoid = c.ivoid"
    " JOIN rr.interface AS i ON i.ivoid = cap.ivoid AND i.cap_index = cap.cap_index"
)
_TAP_STANDARDS = ("ivo://ivoa.net/std/tap", "ivo://ivoa.net/std/tap#aux")
_MAIN = "meta.main"
_RA, _DEC = "pos.eq.ra", "pos.eq.dec"

#: Result datatype -> (ADQL CAST type, numpy dtype).
_DATATYPES: Mapping[str, tuple[str, str]] = {
    "double": ("DOUBLE PRECISION", "f8"),
    "float": ("REAL", "f4"),
    "real": ("REAL", "f4"),
    "long": ("BIGINT", "i8"),
    "bigint": ("BIGINT", "i8"),
    "int": ("INTEGER", "i4"),
    "integer": ("INTEGER", "i4"),
    "short": ("SMALLINT", "i2"),
    "smallint": ("SMALLINT", "i2"),
    "char": ("VARCHAR", "U"),
    "varchar": ("VARCHAR", "U"),
    "text": ("VARCHAR", "U"),
}


def _words(ucd: str) -> tuple[str, ...]:
    """The UCD's words, lower-cased, without ``meta.main`` (which marks, not means)."""
    return tuple(w for w in (p.strip().lower() for p in ucd.split(";")) if w and w != _MAIN)


def _is_main(ucd: str | None) -> bool:
    return _MAIN in (p.strip().lower() for p in (ucd or "").split(";"))


def match_ucd(column_ucd: str | None, wanted: str) -> bool:
    """Whether a column of *column_ucd* carries what *wanted* asks for.

    UCD words compare case-insensitively and ``meta.main`` is ignored on both sides
    (``pos.eq.ra;meta.main`` matches ``pos.eq.ra``); the other words must be the same,
    in order, so ``pos.pm;pos.eq.ra`` does not match ``pos.pm;pos.eq.dec``.
    """
    if not column_ucd:
        return False
    found = _words(column_ucd)
    return bool(found) and found == _words(wanted)


class ResultColumn(BaseModel, frozen=True, extra="forbid"):
    """One column of the result schema a UCD sweep fills.

    Attributes:
        name: The result column's name.
        ucd: The UCD a table's column must carry to fill it (see `match_ucd`).
        unit: The unit values are converted to (astropy syntax); None keeps them as sent.
        datatype: ``double``, ``float``, ``long``, ``int``, ``short`` or ``char``: the
            result's type, and the CAST target where the service offers CAST.
        optional: Tables without a column of this UCD still qualify (NULL here); by
            default they are left out.
    """

    name: str
    ucd: str
    unit: str | None = None
    datatype: str = "double"
    optional: bool = False

    def __init__(self, name: str, ucd: str, unit: str | None = None, **data: Any) -> None:
        try:
            super().__init__(name=name, ucd=ucd, unit=unit, **data)
        except ValueError as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"invalid ResultColumn {name!r}: {exc}") from None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        identifier(value)  # empty names and control characters raise UsageError
        if value.lower() in {SOURCE_TABLE, *PROVENANCE_COLUMNS}:
            raise UsageError(f"result column name {value!r} is reserved for provenance")
        return value

    @field_validator("ucd")
    @classmethod
    def _ucd(cls, value: str) -> str:
        if not _words(value):
            raise UsageError(f"UCD {value!r} names no UCD word")
        if any(ord(c) < 32 or c in "'\"%" for c in value):
            raise UsageError(f"UCD {value!r} holds characters no UCD has")
        return value

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            u.Unit(value)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"unit {value!r} is not a unit astropy knows: {exc}") from None
        return value

    @field_validator("datatype")
    @classmethod
    def _datatype(cls, value: str) -> str:
        if value.lower() not in _DATATYPES:
            raise UsageError(f"datatype {value!r} is not one of {', '.join(sorted(_DATATYPES))}")
        return value.lower()

    @property
    def cast_type(self) -> str:
        """The ADQL type CAST converts to."""
        return _DATATYPES[self.datatype][0]

    @property
    def numeric(self) -> bool:
        """Whether values are numbers (converted between units), not text."""
        return _DATATYPES[self.datatype][1] != "U"


@dataclass(frozen=True, slots=True)
class UcdColumn:
    """A table's column as the registry describes it.

    Attributes:
        name: As the table has it (written delimited where it must be).
        ucd: Its UCD.
        unit: Its unit, if the registry gives one.
        datatype: Its datatype, if given.
    """

    name: str
    ucd: str | None = None
    unit: str | None = None
    datatype: str | None = None


@dataclass(frozen=True, slots=True)
class UcdTable:
    """A table a UCD sweep asks, and which of its columns fills each result column.

    Attributes:
        service: The TAP service serving it.
        table: Its name as the registry lists it (``cat.sources``, ``J/A+A/600/A12/table2``).
        columns: Result column name -> the table's column (None: an optional one it lacks).
        position: Its main RA and Dec columns (for region filters), if it has them.
    """

    service: Service
    table: str
    columns: Mapping[str, UcdColumn | None]
    position: tuple[UcdColumn, UcdColumn] | None = None


def pick_columns(
    candidates: Sequence[UcdColumn], columns: Sequence[ResultColumn]
) -> dict[str, UcdColumn | None] | None:
    """For each result column, the candidate carrying its UCD; None if the table fails.

    Among several matches the one marked ``meta.main`` wins, else the first. A table
    lacking a non-optional UCD, or matching nothing at all, is left out (None).
    """
    picked: dict[str, UcdColumn | None] = {}
    for wanted in columns:
        picked[wanted.name] = _best(candidates, wanted.ucd)
        if picked[wanted.name] is None and not wanted.optional:
            return None
    if all(found is None for found in picked.values()):
        return None
    return picked


def _best(candidates: Sequence[UcdColumn], ucd: str) -> UcdColumn | None:
    matching = [c for c in candidates if match_ucd(c.ucd, ucd)]
    return next((c for c in matching if _is_main(c.ucd)), matching[0] if matching else None)


def _position(candidates: Sequence[UcdColumn]) -> tuple[UcdColumn, UcdColumn] | None:
    ra, dec = _best(candidates, _RA), _best(candidates, _DEC)
    return (ra, dec) if ra is not None and dec is not None else None


def _checked_columns(columns: Sequence[ResultColumn]) -> tuple[ResultColumn, ...]:
    found = tuple(columns)
    if not found:
        raise UsageError("a UCD sweep needs at least one ResultColumn")
    if not all(isinstance(c, ResultColumn) for c in found):
        raise UsageError("columns must be ResultColumn objects")
    names = [c.name.lower() for c in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"result column names must be unique, repeated: {', '.join(duplicates)}")
    return found


def _cone(region: object) -> Cone | None:
    """The region as a `Cone` (from a Cone or an ``(ra, dec, radius)`` in degrees)."""
    if region is None or isinstance(region, Cone):
        return region
    if isinstance(region, (tuple, list)) and len(region) == 3:
        return Cone(ra=region[0], dec=region[1], radius=region[2])
    raise UsageError(f"region must be a vosweep.Cone or (ra, dec, radius), got {region!r}")


# -- discovery -----------------------------------------------------------------------------


def ucd_regtap_query(
    columns: Sequence[ResultColumn],
    *,
    region: Cone | tuple[float, float, float] | None = None,
    features: RegistryFeatures | None = None,
    intersect: str = "covers",
) -> str:
    """The RegTAP query listing TAP tables' columns of the wanted UCDs (pure).

    One row per matching column: service access URL (``tap`` and ``tap#aux``
    capabilities, the latter for data collections a TAP service serves), resource,
    table and column. UCDs are pre-selected case-insensitively by their first word
    (``ivo_nocasematch``); `match_ucd` decides. With a *region*, where *features*
    show RegTAP 1.2 coverage, only resources whose coverage *intersect*-s it, and
    those declaring none, are kept.
    """
    columns = _checked_columns(columns)
    cone = _cone(region)
    prefixes = sorted({_words(c.ucd)[0] for c in columns} | {_RA, _DEC})
    ucds = " OR ".join(
        f"1 = ivo_nocasematch(c.ucd, {string_literal(prefix + '%')})" for prefix in prefixes
    )
    standards = ", ".join(string_literal(s) for s in _TAP_STANDARDS)
    where = [
        f"cap.standard_id IN ({standards})",
        "i.intf_type = 'vs:paramhttp'",
        "(t.table_type IS NULL OR t.table_type <> 'output')",
        f"({ucds})",
    ]
    if cone is not None and features is not None and _has_coverage(features):
        spatial = Spatial((cone.ra, cone.dec, cone.radius), intersect=intersect, inclusive=True)
        try:
            condition = spatial.get_search_condition(features)
        except RegistryFeatureMissing:
            pass  # no coverage filter: every resource stays in
        else:
            subquery = f"SELECT ivoid FROM rr.resource WHERE {condition}"  # noqa: S608
            where.append(f"c.ivoid IN ({subquery})")
    return f"{_REGTAP_SELECT} WHERE {' AND '.join(where)}"


def _has_coverage(features: RegistryFeatures) -> bool:
    return bool(
        features.moc
        and features.has_geometry("CONTAINS")
        and features.has_geometry("CIRCLE")
        and features.has_table("rr.stc_spatial")
    )


def ucd_tables_from_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[ResultColumn],
    *,
    need_position: bool = False,
) -> list[UcdTable]:
    """The tables (in answer order) that `ucd_regtap_query`'s *rows* show qualify (pure).

    One table served at one access URL counts once, whichever resource listed it (a
    service's own record and a ``tap#aux`` collection may both do).
    """
    columns = _checked_columns(columns)
    found: dict[tuple[str, str], tuple[Service, str, list[UcdColumn]]] = {}
    for row in rows:
        url, table, name = row.get("access_url"), row.get("table_name"), row.get("name")
        if not (isinstance(url, str) and url and isinstance(table, str) and table and name):
            continue  # junk rows: a broken record must not break the sweep
        key = (url.rstrip("/"), table.lower())
        if key not in found:
            service = Service.tap(
                url,
                ivoid=row.get("ivoid") or None,
                name=row.get("short_name") or None,
                title=row.get("res_title") or None,
            )
            found[key] = (service, table, [])
        found[key][2].append(
            UcdColumn(
                str(name), _text(row.get("ucd")), _text(row.get("unit")), _text(row.get("datatype"))
            )
        )
    tables = []
    for service, table, candidates in found.values():
        picked = pick_columns(candidates, columns)
        position = _position(candidates)
        if picked is None or (need_position and position is None):
            continue
        tables.append(UcdTable(service, table, picked, position))
    return tables


def _text(value: object) -> str | None:
    return (str(value).strip() or None) if value is not None else None


async def find_ucd_tables(
    engine: Engine,
    columns: Sequence[ResultColumn],
    *,
    region: Cone | tuple[float, float, float] | None = None,
    intersect: str = "covers",
) -> list[UcdTable]:
    """Find the TAP tables holding columns of the wanted UCDs, through the registry.

    Args:
        engine: An open engine (its registry client is used).
        columns: The result schema.
        region: Keep only resources whose RegTAP 1.2 coverage fits this cone (where the
            registry has coverage; resources declaring none stay in), and tables with
            main RA/Dec columns to filter on.
        intersect: How coverage and region must meet (`vosweep.registry.Spatial`).

    Raises:
        UsageError: Bad columns or region.
        RegistryUnavailable: No registry endpoint could be reached.
    """
    columns = _checked_columns(columns)
    cone = _cone(region)
    features = await engine.registry.features() if cone is not None else None
    adql = ucd_regtap_query(columns, region=cone, features=features, intersect=intersect)
    answer = await engine.registry.query(adql, maxrec=REGISTRY_MAXREC)
    if answer.overflow:
        _log.get_logger().warning(
            "vosweep.ucd.registry_overflow", rows=len(answer.rows), endpoint=answer.endpoint
        )
    return ucd_tables_from_rows(answer.rows, columns, need_position=cone is not None)


# -- planning ------------------------------------------------------------------------------


def _tap(capabilities: ServiceCapabilities | None) -> TapCapabilities | None:
    return capabilities.tap if capabilities is not None else None


def _offers_union(caps: TapCapabilities | None) -> bool:
    """UNION: declared, or implied by an ADQL 2.0 service declaring no set features.

    As `vosweep.protocols.adql_features` has it: a feature is missing only where the
    service speaks ADQL 2.1 or declares features of its type. Without capabilities
    nothing is known, and one query per table is the safe plan.
    """
    if caps is None:
        return False
    if caps.union:
        return True
    sets = "ivo://ivoa.net/std/tapregext#features-adql-sets"
    speaks_21 = any(v.startswith("2.1") for v in caps.adql_versions)
    return not speaks_21 and all(kind != sets for kind, _ in caps.features)


def _offers_geometry(caps: TapCapabilities | None) -> bool:
    """POINT, CIRCLE and CONTAINS: mandatory in ADQL 2.0, so assumed unless shown missing."""
    if caps is None:
        return True
    geo = "ivo://ivoa.net/std/tapregext#features-adqlgeo"
    speaks_21 = any(v.startswith("2.1") for v in caps.adql_versions)
    declares = any(kind == geo for kind, _ in caps.features)
    if not (speaks_21 or declares):
        return True
    return all(caps.supports(name) for name in ("POINT", "CIRCLE", "CONTAINS"))


def _delimited(name: str) -> str:
    """An output name written delimited, so every service returns it as spelt."""
    identifier(name)  # refuses empty names and control characters
    return '"' + name.replace('"', '""') + '"'


def _select(
    table: UcdTable,
    columns: Sequence[ResultColumn],
    *,
    cast: bool,
    cone: Cone | None,
    top: int | None,
    geometry: bool = True,
) -> str:
    """One table's SELECT, its columns mapped by UCD onto the result schema.

    The region is a ``CONTAINS`` where the service has geometry functions, else the
    cone's bounding box in plain comparisons (the exact cut is then made on the merged
    rows, see `merge_ucd`).
    """
    items = []
    for wanted in columns:
        source = table.columns.get(wanted.name)
        expression = identifier(source.name) if source is not None else "NULL"
        if cast:
            expression = f"CAST({expression} AS {wanted.cast_type})"
        items.append(f"{expression} AS {_delimited(wanted.name)}")
    items.append(f"{string_literal(table.table)} AS {_delimited(SOURCE_TABLE)}")
    head = f"SELECT TOP {top} " if top is not None else "SELECT "
    query = f"{head}{', '.join(items)} FROM {table_reference(table.table)}"
    if cone is not None:
        if table.position is None:
            raise UsageError(
                f"table {table.table!r} has no main RA/Dec columns to filter the region on"
            )
        ra, dec = (identifier(column.name) for column in table.position)
        if geometry:
            circle = ", ".join(number_literal(v) for v in (cone.ra, cone.dec, cone.radius))
            query += f" WHERE 1 = CONTAINS(POINT('ICRS', {ra}, {dec}), CIRCLE('ICRS', {circle}))"
        else:
            query += " WHERE " + " AND ".join(_box(ra, dec, cone))
    return query


def box_bounds(cone: Cone) -> tuple[float, float, tuple[float, float] | None]:
    """A box around *cone*: its Dec band, and its RA range (None: every RA).

    The RA range runs from ``ra - w`` to ``ra + w`` (it may cross 0 or 360); ``w`` is the
    widest RA offset on the cap, asin(sin r / cos dec), and there is none when the cap
    holds a pole.
    """
    low, high = cone.dec - cone.radius, cone.dec + cone.radius
    if low <= -90.0 or high >= 90.0:
        return max(low, -90.0), min(high, 90.0), None
    half = math.degrees(
        math.asin(math.sin(math.radians(cone.radius)) / math.cos(math.radians(cone.dec)))
    )
    return low, high, (cone.ra - half, cone.ra + half)


def _box(ra: str, dec: str, cone: Cone) -> list[str]:
    """Plain comparisons selecting `box_bounds` (no geometry functions needed)."""
    low, high, ras = box_bounds(cone)
    found = [f"{dec} BETWEEN {number_literal(low)} AND {number_literal(high)}"]
    if ras is None:
        return found
    start, end = ras
    if start < 0.0:
        found.append(f"({ra} >= {number_literal(start + 360.0)} OR {ra} <= {number_literal(end)})")
    elif end >= 360.0:
        found.append(f"({ra} >= {number_literal(start)} OR {ra} <= {number_literal(end - 360.0)})")
    else:
        found.append(f"{ra} BETWEEN {number_literal(start)} AND {number_literal(end)}")
    return found


def plan_ucd(
    tables: Sequence[UcdTable],
    columns: Sequence[ResultColumn],
    *,
    region: Cone | tuple[float, float, float] | None = None,
    capabilities: Mapping[str, ServiceCapabilities | None],
    maxrec: int | None = None,
    union_limit: int = UNION_LIMIT,
) -> list[Targeted]:
    """The fan-out targets of a UCD sweep: per service one query, or one per table (pure).

    Tables of a service offering UNION go into ``UNION ALL`` queries (at most
    *union_limit* tables each, key ``union:<n>``); elsewhere each table is its own
    query (key: the table name). Columns are CAST to the schema's types only where
    the service declares CAST. The region filter is ``CONTAINS`` on the table's main
    RA/Dec where geometry functions are available, elsewhere the cone's bounding box
    (`merge_ucd` then cuts to the cone, where the schema holds RA and Dec).

    Args:
        tables: What `find_ucd_tables` found.
        columns: The result schema.
        region: Rows within this cone only.
        capabilities: Each service's capabilities by access URL (None: unknown).
        maxrec: At most this many rows per query (MAXREC; ``TOP`` too where a query
            asks one table).
        union_limit: Most tables in one UNION query.

    Raises:
        UsageError: Bad columns, region, limits, or a table without what a query needs.
    """
    columns = _checked_columns(columns)
    cone = _cone(region)
    if maxrec is not None and (isinstance(maxrec, bool) or maxrec < 1):
        raise UsageError(f"maxrec must be a positive integer, got {maxrec!r}")
    if union_limit < 1:
        raise UsageError(f"union_limit must be at least 1, got {union_limit!r}")
    by_service: dict[str, list[UcdTable]] = {}
    for table in tables:
        if not isinstance(table, UcdTable):
            raise UsageError(f"tables must be UcdTable objects, got {type(table).__name__}")
        by_service.setdefault(table.service.access_url, []).append(table)
    targets = []
    for url, members in by_service.items():
        caps = _tap(capabilities.get(url, capabilities.get(url.rstrip("/"))))
        cast = caps is not None and caps.cast
        geometry = _offers_geometry(caps)
        service = members[0].service
        if _offers_union(caps) and len(members) > 1:
            # No TOP inside a UNION (SQL engines refuse a LIMIT there): MAXREC bounds it.
            for number, start in enumerate(range(0, len(members), union_limit)):
                chunk = members[start : start + union_limit]
                adql = " UNION ALL ".join(
                    _select(t, columns, cast=cast, cone=cone, top=None, geometry=geometry)
                    for t in chunk
                )
                key = f"union:{number}"
                targets.append(Targeted(service, TapQuery(adql, maxrec=maxrec), key=key))
        else:
            for table in members:
                adql = _select(table, columns, cast=cast, cone=cone, top=maxrec, geometry=geometry)
                targets.append(Targeted(service, TapQuery(adql, maxrec=maxrec), key=table.table))
    return targets


# -- merging -------------------------------------------------------------------------------


class _Unconvertible(Exception):
    """A table's values cannot be brought into the schema (unit or type)."""


def _unit(text: str) -> u.UnitBase:
    try:
        return u.Unit(text)
    except (ValueError, TypeError):
        return u.Unit(text, format="vounit")


def _convert(values: Any, unit: str | None, wanted: ResultColumn) -> np.ma.MaskedArray[Any, Any]:
    """*values* (in *unit*; None: assumed the schema's) as the result column wants them."""
    mask = np.ma.getmaskarray(values).copy()
    raw = np.ma.getdata(values)
    dtype = _DATATYPES[wanted.datatype][1]
    if not wanted.numeric:
        text = np.array(["" if m else str(v) for v, m in zip(raw, mask, strict=True)], dtype=str)
        return np.ma.MaskedArray(text, mask=mask)
    try:
        numbers = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError):
        raise _Unconvertible(f"column {wanted.name}: values are not numbers") from None
    if wanted.unit is not None and unit is not None:
        try:
            factor = float(_unit(unit).to(_unit(wanted.unit)))
        except (u.UnitsError, ValueError, TypeError):
            raise _Unconvertible(
                f"column {wanted.name}: unit {unit!r} cannot be converted to {wanted.unit!r}"
            ) from None
        numbers = numbers * factor
    if np.dtype(dtype).kind in "iu":  # NaN has no integer: masked, and rounded, not cut
        mask |= ~np.isfinite(numbers)
        numbers = np.where(mask, 0.0, np.rint(numbers))
    return np.ma.MaskedArray(numbers.astype(dtype), mask=mask)


def merge_ucd(
    answers: Iterable[tuple[Service, Table]],
    columns: Sequence[ResultColumn],
    tables: Sequence[UcdTable],
    region: Cone | None = None,
) -> Table:
    """The services' answers as one table in the result schema, units converted (pure).

    Rows are attributed by their ``source_table`` value to the `UcdTable` they came
    from, and each column converted from that table's unit (as the registry gives it;
    a column without a unit is taken to be in the schema's unit already) to the
    schema's. A table whose unit cannot be converted loses its rows; why is in
    ``table.meta["vosweep_ucd_dropped"]`` (``"service table"`` -> reason) and logged.

    With a *region* and a schema holding RA and Dec (UCDs ``pos.eq.ra``/``pos.eq.dec``),
    rows outside the cone are dropped: what services without geometry functions sent
    for its bounding box (``table.meta["vosweep_ucd_outside_region"]`` counts them).
    """
    columns = _checked_columns(columns)
    lookup = {(t.service.access_url.rstrip("/"), t.table): t for t in tables}
    values: dict[str, list[np.ma.MaskedArray[Any, Any]]] = {c.name: [] for c in columns}
    sources: list[np.ndarray[Any, Any]] = []
    provenance: list[tuple[Service, int]] = []
    dropped: dict[str, str] = {}
    for service, answer in answers:
        if not len(answer):
            continue
        names = {name.lower(): name for name in answer.colnames}
        if SOURCE_TABLE not in names:
            dropped[service.label] = f"the answer has no {SOURCE_TABLE} column"
            continue
        source = np.array([str(v) for v in answer[names[SOURCE_TABLE]].tolist()])
        for name in dict.fromkeys(source.tolist()):
            where = f"{service.label} {name}"
            table = lookup.get((service.access_url.rstrip("/"), name))
            if table is None:
                dropped[where] = "rows of a table the sweep did not ask"
                continue
            rows = source == name
            try:
                converted = {
                    wanted.name: _column_values(answer, names, rows, table, wanted)
                    for wanted in columns
                }
            except _Unconvertible as exc:
                dropped[where] = str(exc)
                continue
            for key, array in converted.items():
                values[key].append(array)
            sources.append(source[rows])
            provenance.append((service, int(rows.sum())))
    out = Table()
    for wanted in columns:
        out[wanted.name] = _result_column(wanted, values[wanted.name])
    out[SOURCE_TABLE] = Column(
        np.concatenate(sources) if sources else np.array([], dtype="U1"),
        description="vosweep provenance: the table this row came from",
    )
    for index, name in enumerate(PROVENANCE_COLUMNS):
        labels = [
            (s.label, s.ivoid or "", s.access_url)[index] for s, n in provenance for _ in range(n)
        ]
        out[name] = Column(
            np.array(labels, dtype=str) if labels else np.array([], dtype="U1"),
            description="vosweep provenance: the service this row came from",
        )
    if region is not None:
        out = _within(out, columns, region)
    if dropped:
        out.meta["vosweep_ucd_dropped"] = dropped
        for where, why in dropped.items():
            _log.get_logger().warning("vosweep.ucd.rows_dropped", table=where, reason=why)
    return out


def _within(table: Table, columns: Sequence[ResultColumn], cone: Cone) -> Table:
    """*table* without the rows outside *cone* (when the schema has RA and Dec)."""
    ra = next((c for c in columns if match_ucd(c.ucd, "pos.eq.ra")), None)
    dec = next((c for c in columns if match_ucd(c.ucd, "pos.eq.dec")), None)
    if ra is None or dec is None or not len(table):
        return table
    lon, lat = (_degrees_of(table[c.name], c) for c in (ra, dec))
    sin_half = np.sqrt(
        np.sin((lat - math.radians(cone.dec)) / 2) ** 2
        + np.cos(lat)
        * math.cos(math.radians(cone.dec))
        * np.sin((lon - math.radians(cone.ra)) / 2) ** 2
    )
    distance = np.degrees(2 * np.arcsin(np.clip(sin_half, 0.0, 1.0)))
    # NULL positions are not in the cone (ADQL's CONTAINS says NULL, which is not 1).
    inside = np.ma.filled(distance <= cone.radius * (1 + 1e-9) + 1e-9, fill_value=False)
    outside = int((~inside).sum())
    if not outside:
        return table
    kept = table[inside]
    kept.meta["vosweep_ucd_outside_region"] = outside
    return kept


def _degrees_of(column: Any, wanted: ResultColumn) -> np.ma.MaskedArray[Any, Any]:
    """A position column in radians (its schema unit, degrees when it has none)."""
    values = np.ma.MaskedArray(np.ma.getdata(column), mask=np.ma.getmaskarray(column)).astype(float)
    unit = _unit(wanted.unit) if wanted.unit else u.deg
    return values * unit.to(u.rad)  # type: ignore[no-any-return]


def _column_values(
    answer: Table,
    names: Mapping[str, str],
    rows: np.ndarray[Any, Any],
    table: UcdTable,
    wanted: ResultColumn,
) -> np.ma.MaskedArray[Any, Any]:
    source = table.columns.get(wanted.name)
    name = names.get(wanted.name.lower())
    count = int(rows.sum())
    if source is None or name is None:
        dtype = _DATATYPES[wanted.datatype][1]
        empty = np.zeros(count, dtype=dtype if dtype != "U" else "U1")
        return np.ma.MaskedArray(empty, mask=np.ones(count, dtype=bool))
    return _convert(answer[name][rows], source.unit, wanted)


def _result_column(wanted: ResultColumn, chunks: list[np.ma.MaskedArray[Any, Any]]) -> Any:
    dtype = _DATATYPES[wanted.datatype][1]
    if chunks:
        data = np.ma.concatenate(chunks)  # type: ignore[no-untyped-call]
    else:
        data = np.ma.MaskedArray(np.zeros(0, dtype=dtype if dtype != "U" else "U1"))
    return MaskedColumn(
        data=np.ma.getdata(data),
        mask=np.ma.getmaskarray(data),
        name=wanted.name,
        unit=wanted.unit,
        meta={"ucd": wanted.ucd},
        description=f"values of UCD {wanted.ucd}",
    )


def finish_ucd(
    result: FanoutResult,
    columns: Sequence[ResultColumn],
    tables: Sequence[UcdTable],
    parts: Iterable[Part],
    region: Cone | tuple[float, float, float] | None = None,
) -> FanoutResult:
    """*result* with its table rebuilt from the fan-out's *parts* in the result schema.

    The parts (what ``on_part`` or `Engine.stream` hand out) are used, not the merged
    table: merging converts values by the units the answers declare, and a UNION's
    answer declares its first table's units for every row. See `merge_ucd`.
    """
    answers = [
        (part.outcome.service, table)
        for part in parts
        if part.outcome.status.succeeded
        for table in part.tables
    ]
    return result.derive(merge_ucd(answers, columns, tables, _cone(region)))


# -- the sweep -----------------------------------------------------------------------------


async def ucd_sweep(
    engine: Engine,
    columns: Sequence[ResultColumn],
    *,
    region: Cone | tuple[float, float, float] | None = None,
    tables: Sequence[UcdTable] | None = None,
    maxrec: int | None = None,
    **fanout_kwargs: Any,
) -> FanoutResult:
    """Fill one table of *columns* from every TAP table carrying their UCDs.

    Finds the tables (unless *tables* are given), reads each service's capabilities
    (concurrently, at most `CAPABILITY_CONCURRENCY` at once; the engine caches them for
    the fan-out), plans the queries (`plan_ucd`), runs them as one fan-out and brings
    the answers into the schema (`merge_ucd`: units converted per source table).

    Args:
        engine: An open engine.
        columns: The result schema.
        region: Rows within this cone (ICRS degrees) only; see `plan_ucd` for services
            without geometry functions.
        tables: The tables to ask (default: `find_ucd_tables`).
        maxrec: Row limit per query.
        **fanout_kwargs: Passed to `Engine.fanout` (``errors``, ``deadline``, ``on_part``).

    Returns:
        The fan-out's result: every service's outcome, and a table with exactly the
        schema's columns plus ``source_table`` and the provenance columns.

    Raises:
        UsageError: Bad columns, region or options (before anything is sent).
    """
    columns = _checked_columns(columns)
    cone = _cone(region)
    if tables is None:
        tables = await find_ucd_tables(engine, columns, region=cone)
    tables = list(tables)
    services = {t.service.access_url: t.service for t in tables}
    capabilities: dict[str, ServiceCapabilities | None] = {}
    limiter = anyio.CapacityLimiter(CAPABILITY_CONCURRENCY)

    async def fetch(url: str, service: Service) -> None:
        async with limiter:
            try:
                capabilities[url] = await engine.capabilities(service)
            except ServiceError:
                capabilities[url] = None  # the fan-out meets the service again and reports it

    async with anyio.create_task_group() as group:
        for url, service in services.items():
            group.start_soon(fetch, url, service)
    targets = plan_ucd(tables, columns, region=cone, capabilities=capabilities, maxrec=maxrec)
    parts: list[Part] = []
    user_on_part: Callable[[Part], None] | None = fanout_kwargs.pop("on_part", None)

    def on_part(part: Part) -> None:
        parts.append(part)
        if user_on_part is not None:
            user_on_part(part)

    result = await engine.fanout(targets, None, on_part=on_part, **fanout_kwargs)
    finish = functools.partial(finish_ucd, result, columns, tables, parts, cone)
    return await anyio.to_thread.run_sync(finish)
