"""ADQL on SQLite for the simulated registry: parse, check, translate, run, bounded.

The simulated RegTAP endpoint must answer the ADQL that real clients send (pyvo's
``registry.search``, TOPCAT, vosweep's own discovery), so it runs a real query engine
rather than canned answers:

1. sqlglot parses the ADQL with a small dialect (the generic SQL grammar plus ``TOP``);
   every ADQL and RegTAP function parses as a plain call, so that none of sqlglot's
   dialect rewrites can change its meaning (SQLite's ``LOG`` is base 10, ADQL's is not).
2. The tree is checked against what ADQL allows here: one ``SELECT`` or set operation,
   known tables and columns, whitelisted functions with the right number of arguments,
   no parameters, no recursive common tables. Errors name the problem, as TAP services do.
3. The tree is rewritten for SQLite (``ILIKE`` becomes a Unicode-aware case-insensitive
   match; unnamed expressions get names) and run on a private in-memory copy of the
   database. The ADQL and RegTAP functions are registered as Python functions; an
   authorizer allows nothing but reading; a progress handler stops any query after its
   time budget; SQLite's length limits bound strings.

Geometry and coverage values are strings, as in a VOTable: DALI serialisations for
points (``"ra dec"``), circles (``"ra dec radius"``) and polygons (``"ra1 dec1 ra2 dec2
..."``), in ICRS degrees, and ASCII MOCs (``"6/1234-1240 7/8"``) for ``MOC(...)`` and
for RegTAP 1.2 coverages (``rr.stc_spatial.coverage``). ``CONTAINS`` and
``INTERSECTS`` are exact for points against circles and MOCs and for circles against
circles; otherwise both sides become MOCs (with cdshealpix) at the order of the MOC
involved (order 10 when none is) and are compared cell by cell, so a circle "contains"
a MOC when every cell of the MOC touches the circle: close enough for discovery.

The heavy dependencies (sqlglot, cdshealpix) are imported on first use: without the
``sim`` extra, a `UsageError` says how to install them.
"""

from __future__ import annotations

import functools
import importlib
import math
import queue
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vosweep.errors import UsageError

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

__all__ = [
    "AdqlDatabase",
    "AdqlError",
    "AdqlFeatures",
    "ColumnDef",
    "QueryResult",
    "QueryTimeout",
    "ResultColumn",
    "TableDef",
    "format_moc",
    "geometry_moc",
    "hashlist_has",
    "hasword",
    "interval_overlaps",
    "moc_contains",
    "moc_intersects",
    "nocasematch",
    "parse_moc",
    "require_sim_extra",
]

#: The deepest HEALPix order of a MOC (MOC 2.0); ranges are kept at this order.
MAX_ORDER = 29
#: Deepest order a geometry may be turned into a MOC at: deeper orders cost seconds.
MAX_GEOMETRY_ORDER = 14
#: Order used to compare two geometries when neither side is a MOC.
DEFAULT_COMPARE_ORDER = 10
#: HEALPix base cells (order 0).
_BASE_CELLS = 12
#: Longest ADQL text accepted (a list of a thousand ivoids fits).
MAX_QUERY_CHARS = 256_000
#: Longest string (or string aggregate) a query may build, in bytes.
MAX_STRING_BYTES = 16 * 2**20
#: SQLite virtual-machine steps between two deadline checks.
_PROGRESS_STEPS = 2000

#: The SQLite database holding tables without a schema (VizieR's ``"J/A+A/.../table2"``).
NO_SCHEMA = "noschema_"
#: VOTable datatypes a column may have, with the SQLite column type they are stored as.
_SQL_TYPES = {
    "char": "TEXT",
    "unicodeChar": "TEXT",
    "short": "INTEGER",
    "int": "INTEGER",
    "long": "INTEGER",
    "float": "REAL",
    "double": "REAL",
}


class AdqlError(Exception):
    """The query is wrong or unsupported; the message is what the client is told."""


class QueryTimeout(AdqlError):
    """The query ran out of its time budget and was stopped."""


def require_sim_extra(module: str) -> Any:
    """Import *module*, or say which extra to install when it is missing.

    Raises:
        UsageError: When the ``sim`` extra is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".", 1)[0]
        raise UsageError(
            f"the simulated RegTAP registry needs {package}: pip install 'vosweep[sim]'"
        ) from exc


# -- table metadata ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """One column of a served table.

    Attributes:
        name: Column name (lower case; ADQL regular identifiers are case-insensitive).
        datatype: VOTable datatype (``char``, ``unicodeChar``, ``short``, ``int``,
            ``long``, ``float``, ``double``); strings are variable-length.
        description: What the column holds.
        unit: VOUnit, if any.
        ucd: UCD, if any.
        xtype: DALI xtype (``timestamp``, ``moc``...), if any.
        primary: Whether it belongs to the table's key (VOSI ``flag``).
        utype: Its data-model utype (ObsCore's ``obscore:Access.Reference``...), if any.
    """

    name: str
    datatype: str
    description: str = ""
    unit: str | None = None
    ucd: str | None = None
    xtype: str | None = None
    primary: bool = False
    utype: str | None = None

    def __post_init__(self) -> None:
        if self.datatype not in _SQL_TYPES:
            raise ValueError(f"unsupported datatype {self.datatype!r} for {self.name}")

    @property
    def arraysize(self) -> str | None:
        """``"*"`` for strings, None for scalars."""
        return "*" if self.datatype in {"char", "unicodeChar"} else None


@dataclass(frozen=True, slots=True)
class TableDef:
    """One served table.

    Attributes:
        schema: Schema name (``rr``, ``tap_schema``).
        name: Table name without the schema.
        description: What the table holds.
        columns: Its columns, in order.
        utype: Its utype, if any.
        indexes: Column groups to index (what joins and ``ivoid IN (...)`` use).
    """

    schema: str
    name: str
    description: str
    columns: tuple[ColumnDef, ...]
    utype: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def qualified_name(self) -> str:
        """``schema.name``, as queries and VOSI name the table (``name`` without a schema).

        VizieR's tables have no schema: their names (``J/A+A/600/A12/table2``) are
        what TAP_SCHEMA lists and, delimited, what queries write after ``FROM``.
        """
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def sqlite_name(self) -> str:
        """The table in the SQLite database: schema-less tables live in `NO_SCHEMA`."""
        return f"{self.schema or NO_SCHEMA}.{_quote(self.name)}"


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """The metadata of one result column (what becomes its FIELD)."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    description: str = ""
    utype: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """What a query returned.

    Attributes:
        columns: One per result column.
        rows: The rows, at most MAXREC of them.
        overflow: Whether MAXREC cut the result (QUERY_STATUS=OVERFLOW).
        sql: The SQLite statement that ran (for the response's INFO, and for debugging).
    """

    columns: tuple[ResultColumn, ...]
    rows: list[tuple[object, ...]]
    overflow: bool
    sql: str


@dataclass(frozen=True, slots=True)
class AdqlFeatures:
    """The optional ADQL features a service offers (what TAPRegExt advertises).

    Attributes:
        sets: UNION, INTERSECT and EXCEPT.
        geometry: POINT, CIRCLE, POLYGON, MOC, CONTAINS, INTERSECTS, DISTANCE, COORD1/2.
        three_part_columns: Column references with a schema (``rr.res_subject.res_subject``).
            Some registries reject them, which breaks pyvo's OR-form of freetext queries.
        cast: ``CAST`` (TAPRegExt ``features-adql-type``).
        string: ``LOWER``, ``UPPER`` and ``ILIKE`` (TAPRegExt ``features-adql-string``):
            ADQL 2.1 additions that ADQL 2.0 services lack.
    """

    sets: bool = True
    geometry: bool = True
    three_part_columns: bool = True
    cast: bool = True
    string: bool = True

    def offers(self, function: _Function) -> bool:
        """Whether a query may call *function* here."""
        return (self.geometry or not function.geometry) and (self.string or not function.string)


# -- string functions (RegTAP user-defined functions, in Python) -------------------------

_WORD = re.compile(r"\w+")


def _stem(word: str) -> str:
    """Fold simple English plurals: full-text engines stem, so "dwarfs" finds "dwarf"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=65536)
def _words(text: str) -> frozenset[str]:
    return frozenset(_stem(word) for word in _WORD.findall(text.casefold()))


def hasword(haystack: str | None, needle: str | None) -> int:
    """RegTAP ``ivo_hasword``: 1 when every word of *needle* is a word of *haystack*.

    Words are runs of letters and digits, compared case-insensitively after folding
    simple English plurals ("X-rays" holds the words "x" and "ray"; "dwarf" finds
    "dwarfs"). Real registries use full-text engines with stemming; this is the
    whole-word, case-insensitive behaviour RegTAP tells clients to expect.
    """
    if haystack is None or needle is None:
        return 0
    wanted = _words(needle)
    return int(bool(wanted) and wanted <= _words(haystack))


@functools.lru_cache(maxsize=4096)
def _like_regex(pattern: str, escape: str | None, *, nocase: bool) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if escape is not None and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    return re.compile("".join(parts), flags)


def nocasematch(value: str | None, pattern: str | None) -> int:
    """RegTAP ``ivo_nocasematch`` (and ADQL 2.1 ``ILIKE``): LIKE, case-insensitively."""
    if value is None or pattern is None:
        return 0
    return int(_like_regex(str(pattern), None, nocase=True).fullmatch(str(value)) is not None)


def _like(pattern: str | None, value: str | None, escape: str | None = None) -> int | None:
    """SQLite's ``like(pattern, value)``, case-sensitively (only when the pragma is absent)."""
    if pattern is None or value is None:
        return None
    regex = _like_regex(str(pattern), escape, nocase=False)
    return int(regex.fullmatch(str(value)) is not None)


def hashlist_has(hashlist: str | None, item: str | None) -> int:
    """RegTAP ``ivo_hashlist_has``: whether *item* is in the ``#``-separated list (no case)."""
    if hashlist is None or item is None:
        return 0
    wanted = item.strip().casefold()
    return int(any(part.strip().casefold() == wanted for part in hashlist.split("#")))


def interval_overlaps(
    low1: float | None, high1: float | None, low2: float | None, high2: float | None
) -> int | None:
    """RegTAP ``ivo_interval_overlaps``: 1 when [low1, high1] meets [low2, high2] (ends count)."""
    if low1 is None or high1 is None or low2 is None or high2 is None:
        return None
    return int(low1 <= high2 and low2 <= high1)


# -- MOCs: sorted, disjoint, non-adjacent ranges of order-29 HEALPix cells --------------


@dataclass(frozen=True, slots=True)
class _Moc:
    """A MOC as half-open ranges of nested order-29 cells, plus its declared max order."""

    ranges: np.ndarray  # shape (n, 2), int64, normalized
    order: int


@dataclass(frozen=True, slots=True)
class _Point:
    ra: float
    dec: float


@dataclass(frozen=True, slots=True)
class _Circle:
    ra: float
    dec: float
    radius: float


@dataclass(frozen=True, slots=True)
class _Polygon:
    vertices: tuple[tuple[float, float], ...]


_Geometry = _Point | _Circle | _Polygon | _Moc


def _normalize(ranges: np.ndarray) -> np.ndarray:
    """Sort ranges and merge the overlapping and touching ones."""
    if len(ranges) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
    starts, ends = ranges[:, 0], np.maximum.accumulate(ranges[:, 1])
    # A new run starts where a range begins after everything before it has ended.
    breaks = np.flatnonzero(starts[1:] > ends[:-1]) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(ranges) - 1]))
    merged = np.stack((starts[first], ends[last]), axis=1).astype(np.int64)
    merged.setflags(write=False)
    return merged


def _cells_to_ranges(orders: np.ndarray, cells: np.ndarray) -> np.ndarray:
    shift = 2 * (MAX_ORDER - orders.astype(np.int64))
    cells = cells.astype(np.int64)
    return np.stack((cells << shift, (cells + 1) << shift), axis=1)


_MOC_TOKEN = re.compile(r"(?:(\d+)/)?(\d+)?(?:-(\d+))?")


@functools.lru_cache(maxsize=16384)
def _parse_moc(text: str) -> _Moc:
    orders: list[int] = []
    starts: list[int] = []
    stops: list[int] = []
    order: int | None = None
    max_order = 0
    for token in text.replace(",", " ").split():
        match = _MOC_TOKEN.fullmatch(token)
        if match is None or token == "":
            raise AdqlError(f"invalid ASCII MOC token {token!r}")
        new_order, first, last = match.groups()
        if new_order is not None:
            order = int(new_order)
            if order > MAX_ORDER:
                raise AdqlError(f"MOC order {order} is deeper than {MAX_ORDER}")
            max_order = max(max_order, order)
        if first is None:
            if last is not None or new_order is None:
                raise AdqlError(f"invalid ASCII MOC token {token!r}")
            continue
        if order is None:
            raise AdqlError(f"ASCII MOC value {token!r} comes before any order")
        low, high = int(first), int(last) if last is not None else int(first)
        if high < low or high >= _BASE_CELLS * 4**order:
            raise AdqlError(f"invalid cell range {token!r} at MOC order {order}")
        orders.append(order)
        starts.append(low)
        stops.append(high + 1)
    if not orders:
        return _Moc(np.zeros((0, 2), dtype=np.int64), max_order)
    shift = 2 * (MAX_ORDER - np.asarray(orders, dtype=np.int64))
    ranges = np.stack(
        (np.asarray(starts, dtype=np.int64) << shift, np.asarray(stops, dtype=np.int64) << shift),
        axis=1,
    )
    return _Moc(_normalize(ranges), max_order)


def parse_moc(text: str) -> tuple[tuple[int, int], ...]:
    """The order-29 cell ranges an ASCII MOC covers (for tests and the registry builder).

    Raises:
        AdqlError: On a malformed MOC.
    """
    return tuple((int(a), int(b)) for a, b in _parse_moc(text).ranges.tolist())


def _format_ranges(ranges: np.ndarray, order: int) -> str:
    """ASCII MOC of *ranges*, cut into the largest aligned cells (MOC 2.0 serialisation)."""
    by_order: dict[int, list[int]] = {}
    for start, end in ranges.tolist():
        cursor = start
        while cursor < end:
            # The largest cell that starts here and fits before the end.
            free = MAX_ORDER if cursor == 0 else ((cursor & -cursor).bit_length() - 1) // 2
            fits = ((end - cursor).bit_length() - 1) // 2
            size = min(free, fits, MAX_ORDER)
            by_order.setdefault(MAX_ORDER - size, []).append(cursor >> (2 * size))
            cursor += 1 << (2 * size)
    words: list[str] = []
    for cell_order in sorted(by_order):
        cells = sorted(by_order[cell_order])
        items: list[str] = []
        run_start = previous = cells[0]
        for cell in [*cells[1:], None]:
            if cell is not None and cell == previous + 1:
                previous = cell
                continue
            items.append(str(run_start) if run_start == previous else f"{run_start}-{previous}")
            if cell is not None:
                run_start = previous = cell
        words.append(f"{cell_order}/" + " ".join(items))
    deepest = max(by_order, default=-1)
    if order > deepest:
        words.append(f"{order}/")
    return " ".join(words)


def format_moc(cells: Iterable[tuple[int, int]], order: int | None = None) -> str:
    """The ASCII MOC of (order, cell) pairs, normalized; *order* is the declared depth."""
    pairs = list(cells)
    if not pairs:
        return f"{order or 0}/"
    array = np.asarray(pairs, dtype=np.int64)
    ranges = _normalize(_cells_to_ranges(array[:, 0], array[:, 1]))
    return _format_ranges(ranges, order if order is not None else int(array[:, 0].max()))


def _healpix() -> Any:
    return require_sim_extra("cdshealpix.nested")


@functools.cache
def _healpix_core() -> Any | None:
    """The compiled core of cdshealpix: it skips astropy's ~1 ms of Angle checks per call.

    The registry builder turns thousands of circles into MOCs; through the public API
    that costs seconds. The core's signatures are not public, so every use falls back
    to the public API if the call fails.
    """
    try:
        return importlib.import_module("cdshealpix.cdshealpix")
    except ImportError:
        return None


def _lonlat(ra: Sequence[float], dec: Sequence[float]) -> tuple[Any, Any]:
    from astropy import units as u  # noqa: PLC0415 -- astropy's import is heavy
    from astropy.coordinates import Latitude, Longitude  # noqa: PLC0415

    return Longitude(list(ra), u.deg), Latitude(list(dec), u.deg)


@functools.lru_cache(maxsize=4096)
def _point_cell(point: _Point, order: int) -> int:
    core = _healpix_core()
    if core is not None:
        cell = np.empty(1, dtype=np.uint64)
        offsets = np.empty(1), np.empty(1)
        try:
            core.lonlat_to_healpix(
                np.asarray([order], dtype=np.uint8),
                np.radians([point.ra]),
                np.radians([point.dec]),
                cell,
                *offsets,
                np.uint16(1),
            )
            return int(cell[0])
        except (TypeError, ValueError, AttributeError):
            pass
    lon, lat = _lonlat([point.ra], [point.dec])
    return int(_healpix().lonlat_to_healpix(lon, lat, order)[0])


def _cone_cells(circle: _Circle, order: int) -> tuple[Any, Any]:
    core = _healpix_core()
    if core is not None:
        try:
            cells, depths, _ = core.cone_search(
                np.uint8(order),
                np.uint8(2),
                np.float64(math.radians(circle.ra)),
                np.float64(math.radians(circle.dec)),
                np.float64(math.radians(circle.radius)),
                False,  # noqa: FBT003 -- the core takes "flat" positionally
            )
        except (TypeError, ValueError, AttributeError):
            pass
        else:
            return cells, depths
    from astropy import units as u  # noqa: PLC0415
    from astropy.coordinates import Angle  # noqa: PLC0415

    lon, lat = _lonlat([circle.ra], [circle.dec])
    cells, depths, _ = _healpix().cone_search(
        lon[0], lat[0], Angle(circle.radius, u.deg), order, flat=False
    )
    return cells, depths


def _polygon_cells(polygon: _Polygon, order: int) -> tuple[Any, Any]:
    ras, decs = zip(*polygon.vertices, strict=True)
    if len(set(polygon.vertices)) < 3:
        raise AdqlError("a polygon needs at least three distinct vertices")
    core = _healpix_core()
    try:
        if core is not None:
            try:
                cells, depths, _ = core.polygon_search(
                    np.uint8(order),
                    np.radians(np.asarray(ras, dtype=np.float64)),
                    np.radians(np.asarray(decs, dtype=np.float64)),
                    False,  # noqa: FBT003 -- the core takes "flat" positionally
                )
            except (TypeError, AttributeError):
                pass
            else:
                return cells, depths
        lon, lat = _lonlat(ras, decs)
        cells, depths, _ = _healpix().polygon_search(lon, lat, order, flat=False)
    except Exception as exc:  # noqa: BLE001 -- cdshealpix raises Rust panics for odd polygons
        raise AdqlError(f"cannot use polygon {_format_geometry(polygon)}: {exc}") from None
    return cells, depths


@functools.lru_cache(maxsize=4096)
def _to_moc(geometry: _Point | _Circle | _Polygon, order: int) -> _Moc:
    """The MOC of the cells at *order* (or coarser) that touch *geometry*."""
    if isinstance(geometry, _Point):
        cell = np.asarray([_point_cell(geometry, order)])
        return _Moc(_normalize(_cells_to_ranges(np.asarray([order]), cell)), order)
    if isinstance(geometry, _Circle):
        if geometry.radius >= 180.0:
            return _Moc(_normalize(np.asarray([[0, _BASE_CELLS << 2 * MAX_ORDER]])), order)
        cells, depths = _cone_cells(geometry, order)
    else:
        cells, depths = _polygon_cells(geometry, order)
    ranges = _cells_to_ranges(np.asarray(depths), np.asarray(cells))
    return _Moc(_normalize(ranges), order)


def _subset(inner: np.ndarray, outer: np.ndarray) -> bool:
    if len(inner) == 0:
        return True
    if len(outer) == 0:
        return False
    index = np.searchsorted(outer[:, 0], inner[:, 0], side="right") - 1
    ok = index >= 0
    ok[ok] &= outer[index[ok], 1] >= inner[ok, 1]
    return bool(ok.all())


def _overlap(first: np.ndarray, second: np.ndarray) -> bool:
    if len(first) == 0 or len(second) == 0:
        return False
    index = np.searchsorted(second[:, 1], first[:, 0], side="right")
    inside = index < len(second)
    return bool((second[index[inside], 0] < first[inside, 1]).any())


def _in_moc(point: _Point, moc: _Moc) -> bool:
    value = _point_cell(point, MAX_ORDER)
    index = int(np.searchsorted(moc.ranges[:, 0], value, side="right")) - 1
    return index >= 0 and value < int(moc.ranges[index, 1])


def moc_contains(moc: str, ra: float, dec: float) -> bool:
    """Whether the ASCII MOC *moc* covers the point (*ra*, *dec*), in degrees."""
    return _in_moc(_Point(ra % 360.0, dec), _parse_moc(moc))


def moc_intersects(first: str, second: str) -> bool:
    """Whether two ASCII MOCs share at least one cell."""
    return _overlap(_parse_moc(first).ranges, _parse_moc(second).ranges)


def geometry_moc(value: str, order: int) -> str:
    """The ASCII MOC at *order* of a DALI geometry string (what ``MOC(order, geom)`` gives)."""
    geometry = _parse_geometry(value)
    if isinstance(geometry, _Moc):
        return _format_ranges(geometry.ranges, geometry.order)
    return _format_ranges(_to_moc(geometry, order).ranges, order)


# -- geometry values ---------------------------------------------------------------------


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdqlError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise AdqlError(f"{what} must be finite, got {value!r}")
    return number


def _make_point(ra: object, dec: object) -> _Point:
    lon, lat = _number(ra, "a longitude"), _number(dec, "a latitude")
    if not -90.0 <= lat <= 90.0:
        raise AdqlError(f"latitude {lat} is outside [-90, 90] degrees")
    return _Point(lon % 360.0, lat)


def _fmt(value: float) -> str:
    return repr(float(value))


def _format_geometry(geometry: _Geometry) -> str:
    """DALI serialisation (ASCII MOC for MOCs)."""
    if isinstance(geometry, _Point):
        return f"{_fmt(geometry.ra)} {_fmt(geometry.dec)}"
    if isinstance(geometry, _Circle):
        return f"{_fmt(geometry.ra)} {_fmt(geometry.dec)} {_fmt(geometry.radius)}"
    if isinstance(geometry, _Polygon):
        return " ".join(f"{_fmt(ra)} {_fmt(dec)}" for ra, dec in geometry.vertices)
    return _format_ranges(geometry.ranges, geometry.order)


@functools.lru_cache(maxsize=16384)
def _parse_geometry(text: str) -> _Geometry:
    if "/" in text:
        return _parse_moc(text)
    try:
        numbers = [float(part) for part in text.split()]
    except ValueError:
        raise AdqlError(f"not a geometry: {text[:80]!r}") from None
    if len(numbers) == 2:
        return _make_point(*numbers)
    if len(numbers) == 3:
        return _make_circle(_make_point(numbers[0], numbers[1]), numbers[2])
    if len(numbers) >= 6 and len(numbers) % 2 == 0:
        return _make_polygon(numbers)
    raise AdqlError(f"not a geometry: {text[:80]!r}")


def _geometry(value: object, what: str) -> _Geometry:
    if not isinstance(value, str):
        raise AdqlError(f"{what} must be a geometry, got {value!r}")
    return _parse_geometry(value)


def _make_circle(center: _Point, radius: object) -> _Circle:
    size = _number(radius, "a circle radius")
    if not 0.0 <= size <= 180.0:
        raise AdqlError(f"circle radius {size} is outside [0, 180] degrees")
    return _Circle(center.ra, center.dec, size)


def _make_polygon(numbers: Sequence[float]) -> _Polygon:
    vertices = tuple(
        (point.ra, point.dec)
        for point in (_make_point(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2))
    )
    if len(vertices) < 3:
        raise AdqlError("a polygon needs at least three vertices")
    return _Polygon(vertices)


def _drop_frame(args: tuple[object, ...]) -> tuple[object, ...]:
    """ADQL 2.0 geometry constructors start with a coordinate system string: ignore it."""
    if args and isinstance(args[0], str) and not _looks_like_geometry(args[0]):
        return args[1:]
    return args


def _looks_like_geometry(text: str) -> bool:
    return "/" in text or bool(re.fullmatch(r"[\s0-9eE.+-]+", text))


def _angular_distance(a: _Point, b: _Point) -> float:
    ra1, dec1, ra2, dec2 = map(math.radians, (a.ra, a.dec, b.ra, b.dec))
    sin_ddec, sin_dra = math.sin((dec2 - dec1) / 2), math.sin((ra2 - ra1) / 2)
    h = sin_ddec**2 + math.cos(dec1) * math.cos(dec2) * sin_dra**2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def _sql_point(*args: object) -> str | None:
    args = _drop_frame(args)
    if any(arg is None for arg in args):
        return None
    if len(args) != 2:
        raise AdqlError("POINT takes a longitude and a latitude")
    return _format_geometry(_make_point(*args))


def _sql_circle(*args: object) -> str | None:
    args = _drop_frame(args)
    if any(arg is None for arg in args):
        return None
    if len(args) == 2:
        center = _geometry(args[0], "the centre of a CIRCLE")
        if not isinstance(center, _Point):
            raise AdqlError("the centre of a CIRCLE must be a POINT")
        return _format_geometry(_make_circle(center, args[1]))
    if len(args) != 3:
        raise AdqlError("CIRCLE takes a centre (a POINT or two coordinates) and a radius")
    return _format_geometry(_make_circle(_make_point(args[0], args[1]), args[2]))


def _sql_polygon(*args: object) -> str | None:
    args = _drop_frame(args)
    if any(arg is None for arg in args):
        return None
    if args and all(isinstance(arg, str) for arg in args):
        numbers: list[float] = []
        for arg in args:
            point = _geometry(arg, "a POLYGON vertex")
            if not isinstance(point, _Point):
                raise AdqlError("POLYGON vertices must be POINTs")
            numbers += [point.ra, point.dec]
    else:
        numbers = [_number(arg, "a POLYGON coordinate") for arg in args]
        if len(numbers) % 2:
            raise AdqlError("POLYGON takes pairs of coordinates")
    return _format_geometry(_make_polygon(numbers))


def _sql_moc(*args: object) -> str | None:
    if any(arg is None for arg in args):
        return None
    if len(args) == 1:
        if not isinstance(args[0], str):
            raise AdqlError("MOC(text) takes an ASCII MOC string")
        moc = _parse_moc(args[0])
        return _format_ranges(moc.ranges, moc.order)
    order_value, value = args
    if isinstance(order_value, bool) or not isinstance(order_value, int):
        raise AdqlError(f"the order in MOC(order, geometry) must be an integer: {order_value!r}")
    if not 0 <= order_value <= MAX_GEOMETRY_ORDER:
        raise AdqlError(f"MOC order must be between 0 and {MAX_GEOMETRY_ORDER} here")
    return geometry_moc(_format_geometry(_geometry(value, "the geometry of MOC()")), order_value)


def _compare_order(first: _Geometry, second: _Geometry) -> int:
    orders = [g.order for g in (first, second) if isinstance(g, _Moc)]
    return max(orders) if orders else DEFAULT_COMPARE_ORDER


def _as_moc(geometry: _Geometry, order: int) -> _Moc:
    return geometry if isinstance(geometry, _Moc) else _to_moc(geometry, order)


def _contains(inner: _Geometry, outer: _Geometry) -> bool:
    if isinstance(inner, _Point):
        if isinstance(outer, _Point):
            return _angular_distance(inner, outer) == 0.0
        if isinstance(outer, _Circle):
            return _angular_distance(inner, _Point(outer.ra, outer.dec)) <= outer.radius
        if isinstance(outer, _Moc):
            return _in_moc(inner, outer)
        return _in_moc(inner, _to_moc(outer, MAX_GEOMETRY_ORDER))
    if isinstance(inner, _Circle) and isinstance(outer, _Circle):
        center = _Point(outer.ra, outer.dec)
        return _angular_distance(_Point(inner.ra, inner.dec), center) + inner.radius <= outer.radius
    order = _compare_order(inner, outer)
    return _subset(_as_moc(inner, order).ranges, _as_moc(outer, order).ranges)


def _intersects(first: _Geometry, second: _Geometry) -> bool:
    if isinstance(first, _Point):
        return _contains(first, second)
    if isinstance(second, _Point):
        return _contains(second, first)
    if isinstance(first, _Circle) and isinstance(second, _Circle):
        distance = _angular_distance(_Point(first.ra, first.dec), _Point(second.ra, second.dec))
        return distance <= first.radius + second.radius
    order = _compare_order(first, second)
    return _overlap(_as_moc(first, order).ranges, _as_moc(second, order).ranges)


def _sql_contains(inner: object, outer: object) -> int | None:
    if inner is None or outer is None:
        return None
    return int(_contains(_geometry(inner, "CONTAINS' argument"), _geometry(outer, "CONTAINS")))


def _sql_intersects(first: object, second: object) -> int | None:
    if first is None or second is None:
        return None
    return int(
        _intersects(_geometry(first, "INTERSECTS' argument"), _geometry(second, "INTERSECTS"))
    )


def _point_arg(value: object, what: str) -> _Point:
    point = _geometry(value, what)
    if not isinstance(point, _Point):
        raise AdqlError(f"{what} must be a POINT")
    return point


def _sql_distance(*args: object) -> float | None:
    if any(arg is None for arg in args):
        return None
    if len(args) == 4:
        first, second = _make_point(args[0], args[1]), _make_point(args[2], args[3])
    else:
        first, second = _point_arg(args[0], "DISTANCE's argument"), _point_arg(args[1], "DISTANCE")
    return _angular_distance(first, second)


def _sql_coord(index: int) -> Callable[[object], float | None]:
    def coord(value: object) -> float | None:
        if value is None:
            return None
        point = _point_arg(value, f"COORD{index + 1}'s argument")
        return point.ra if index == 0 else point.dec

    return coord


# -- numeric functions with ADQL's meaning (SQLite's LOG is base 10, its ROUND differs) --


def _numeric(name: str, function: Callable[..., float]) -> Callable[..., float | None]:
    def call(*args: object) -> float | None:
        if any(arg is None for arg in args):
            return None
        # Integers stay integers (ABS, MOD, FLOOR of an integer is an integer in SQL).
        numbers = [
            arg if isinstance(arg, int) and not isinstance(arg, bool) else _number(arg, name)
            for arg in args
        ]
        try:
            result = function(*numbers)
        except (ValueError, OverflowError, ZeroDivisionError) as exc:
            raise AdqlError(f"{name}{tuple(numbers)}: {exc}") from None
        return result

    return call


def _round(value: float, digits: float = 0) -> float:
    scale = 10.0 ** int(digits)
    return math.floor(abs(value) * scale + 0.5) / scale * (1 if value >= 0 else -1)


def _truncate(value: float, digits: float = 0) -> float:
    scale = 10.0 ** int(digits)
    return math.trunc(value * scale) / scale


def _mod(a: float, b: float) -> float:
    """SQL's MOD: the sign of the dividend, integers for integers."""
    result = math.fmod(a, b)
    return int(result) if isinstance(a, int) and isinstance(b, int) else result


def _cot(x: float) -> float:
    return 1.0 / math.tan(x)


def _rand(*args: object) -> float:
    if args and args[0] is not None:
        return random.Random(_number(args[0], "RAND's seed")).random()
    return random.random()


def _case(name: str, method: Callable[[str], str]) -> Callable[[object], str | None]:
    def call(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise AdqlError(f"{name} takes a string, got {value!r}")
        return method(value)

    return call


@dataclass(frozen=True, slots=True)
class _Function:
    """A scalar function ADQL queries may call, with what it returns."""

    impl: Callable[..., object] | None  # None: SQLite's own
    arities: tuple[int, ...]  # () means "one or more" (registered variadic)
    datatype: str | None = None  # result datatype; None: inferred from the values
    xtype: str | None = None
    geometry: bool = False
    deterministic: bool = True
    string: bool = False  # an ADQL 2.1 string function (features-adql-string)


def _functions() -> dict[str, _Function]:
    numeric: dict[str, tuple[Callable[..., float], tuple[int, ...]]] = {
        "ABS": (abs, (1,)),
        "ACOS": (math.acos, (1,)),
        "ASIN": (math.asin, (1,)),
        "ATAN": (math.atan, (1,)),
        "ATAN2": (math.atan2, (2,)),
        "CEILING": (math.ceil, (1,)),
        "COS": (math.cos, (1,)),
        "COT": (_cot, (1,)),
        "DEGREES": (math.degrees, (1,)),
        "EXP": (math.exp, (1,)),
        "FLOOR": (math.floor, (1,)),
        "LOG": (math.log, (1,)),
        "LOG10": (math.log10, (1,)),
        "MOD": (_mod, (2,)),
        "POWER": (math.pow, (2,)),
        "RADIANS": (math.radians, (1,)),
        "ROUND": (_round, (1, 2)),
        "SIN": (math.sin, (1,)),
        "SQRT": (math.sqrt, (1,)),
        "TAN": (math.tan, (1,)),
        "TRUNCATE": (_truncate, (1, 2)),
    }
    table = {
        name: _Function(_numeric(name, function), arities)
        for name, (function, arities) in numeric.items()
    }
    table |= {
        "PI": _Function(lambda: math.pi, (0,), "double"),
        "RAND": _Function(_rand, (0, 1), "double", deterministic=False),
        "LOWER": _Function(_case("LOWER", str.lower), (1,), string=True),
        "UPPER": _Function(_case("UPPER", str.upper), (1,), string=True),
        "COALESCE": _Function(None, ()),
        "IVO_HASWORD": _Function(hasword, (2,), "int"),
        "IVO_NOCASEMATCH": _Function(nocasematch, (2,), "int"),
        "IVO_HASHLIST_HAS": _Function(hashlist_has, (2,), "int"),
        "IVO_INTERVAL_OVERLAPS": _Function(interval_overlaps, (4,), "int"),
        "POINT": _Function(_sql_point, (2, 3), "char", "point", geometry=True),
        "CIRCLE": _Function(_sql_circle, (2, 3, 4), "char", "circle", geometry=True),
        "POLYGON": _Function(_sql_polygon, (), "char", "polygon", geometry=True),
        "MOC": _Function(_sql_moc, (1, 2), "char", "moc", geometry=True),
        "CONTAINS": _Function(_sql_contains, (2,), "int", geometry=True),
        "INTERSECTS": _Function(_sql_intersects, (2,), "int", geometry=True),
        "DISTANCE": _Function(_sql_distance, (2, 4), "double", geometry=True),
        "COORD1": _Function(_sql_coord(0), (1,), "double", geometry=True),
        "COORD2": _Function(_sql_coord(1), (1,), "double", geometry=True),
    }
    return table


#: Every scalar function a query may call, by upper-case ADQL name.
FUNCTIONS: Mapping[str, _Function] = _functions()
#: The aggregate functions (besides SQL's COUNT, SUM, AVG, MIN, MAX).
AGGREGATES = frozenset({"IVO_STRING_AGG"})
#: SQLite built-ins the generated SQL may use (LIKE is the ``like`` function to SQLite).
_SQLITE_BUILTINS = frozenset(
    {"count", "sum", "avg", "min", "max", "total", "coalesce", "like", "datetime"}
)


# -- the ADQL dialect and the checks -----------------------------------------------------


@functools.cache
def _dialect() -> type[Dialect]:
    """The ADQL dialect: generic SQL plus ``TOP``, ADQL functions kept as plain calls."""
    require_sim_extra("sqlglot")
    from sqlglot import TokenType, parser, tokens  # noqa: PLC0415 -- optional dependency
    from sqlglot.dialects.dialect import Dialect  # noqa: PLC0415

    plain = set(FUNCTIONS) | AGGREGATES

    class Adql(Dialect):
        class Tokenizer(tokens.Tokenizer):
            KEYWORDS = {**tokens.Tokenizer.KEYWORDS, "TOP": TokenType.TOP}  # noqa: RUF012

        class Parser(parser.Parser):
            FUNCTIONS = {  # noqa: RUF012
                k: v for k, v in parser.Parser.FUNCTIONS.items() if k not in plain
            }
            FUNCTION_PARSERS = {  # noqa: RUF012
                k: v for k, v in parser.Parser.FUNCTION_PARSERS.items() if k not in plain
            }

    return Adql


@functools.cache
def _allowed_nodes() -> tuple[type, ...]:
    from sqlglot import exp  # noqa: PLC0415

    return (
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.From, exp.Join, exp.Table, exp.TableAlias, exp.Column, exp.Identifier, exp.Star,
        exp.Alias, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
        exp.Offset, exp.Distinct, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Neg,
        exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Is, exp.In, exp.Between, exp.Exists, exp.Like, exp.ILike, exp.Add, exp.Sub,
        exp.Mul, exp.Div, exp.DPipe, exp.Case, exp.If, exp.Cast, exp.DataType,
        exp.DataTypeParam, exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Anonymous,
        exp.Tuple,
    )  # fmt: skip


_CAST_TYPES = frozenset(
    {"SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "CHAR", "VARCHAR", "TEXT", "TIMESTAMP"}
)


@dataclass(frozen=True, slots=True)
class _Projection:
    """What one output column of the outer SELECT is, for its FIELD metadata."""

    kind: str  # "column", "function", "other"
    name: str = ""


@dataclass(frozen=True, slots=True)
class Translation:
    """An ADQL query checked and turned into SQLite SQL.

    Attributes:
        sql: The SQLite statement.
        projections: One entry per output column, or None when a ``*`` makes the
            count unknown before the query runs.
        tables: The served tables the query reads, in order of appearance: their
            columns' metadata wins over same-named columns of other tables.
    """

    sql: str
    projections: tuple[_Projection, ...] | None
    tables: tuple[TableDef, ...] = ()


def _syntax_error(exc: Exception) -> AdqlError:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        where = f" (line {first.get('line')}, column {first.get('col')})"
        near = first.get("highlight") or ""
        detail = f"{first.get('description', 'syntax error')}{where}"
        if near:
            detail += f" near {near!r}"
        return AdqlError(f"Could not parse your query: {detail}")
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return AdqlError(f"Could not parse your query: {text}")


#: Reserved words of ADQL 2.1 (SQL-92's and ADQL's own) that clients are tempted to use as
#: names: strict services (DaCHS, for one) refuse them unquoted, so the simulator does too.
RESERVED_WORDS = frozenset(
    {
        *("ABSOLUTE", "ACTION", "COLUMN", "CURRENT", "DATE", "DAY", "DOMAIN", "FIRST", "HOUR"),
        *("KEY", "LAST", "LEVEL", "MATCH", "MINUTE", "MONTH", "NAMES", "OUTPUT", "POSITION"),
        *("PRIOR", "READ", "RELATIVE", "SCHEMA", "SECOND", "SECTION", "SESSION", "SIZE"),
        *("SPACE", "TIME", "TIMESTAMP", "TRANSLATION", "USER", "VALUE", "VALUES", "YEAR"),
        *("ZONE", "AREA", "BOX", "CENTROID", "CIRCLE", "CONTAINS", "COORD1", "COORD2"),
        *("COORDSYS", "DISTANCE", "INTERSECTS", "POINT", "POLYGON", "REGION", "TOP"),
    }
)


def _refuse_reserved(identifier: object) -> None:
    """An unquoted alias that is an ADQL reserved word is a syntax error on strict services."""
    from sqlglot import exp  # noqa: PLC0415

    if not isinstance(identifier, exp.Identifier) or identifier.quoted:
        return
    if identifier.name.upper() in RESERVED_WORDS:
        raise AdqlError(
            f"{identifier.name} is a reserved word in ADQL: quote it or choose another name"
        )


@dataclass(slots=True)
class _Checker:
    """Walks a parsed query: refuses what ADQL (or this service) does not have."""

    catalog: Mapping[tuple[str, str], TableDef]
    column_names: frozenset[str]
    features: AdqlFeatures
    ctes: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)

    def check(self, tree: exp.Expr) -> None:
        from sqlglot import exp  # noqa: PLC0415

        allowed = _allowed_nodes()
        for with_ in tree.find_all(exp.With):
            if with_.args.get("recursive"):
                raise AdqlError("recursive common table expressions are not supported")
        for cte in tree.find_all(exp.CTE):
            self.ctes.add(cte.alias_or_name.lower())
            alias = cte.args.get("alias")
            if alias is not None:
                self.aliases.update(c.name.lower() for c in alias.columns)
        for alias_node in tree.find_all(exp.Alias):
            _refuse_reserved(alias_node.args.get("alias"))
            self.aliases.add(alias_node.alias.lower())
        for table_alias in tree.find_all(exp.TableAlias):
            _refuse_reserved(table_alias.args.get("this"))
            self.aliases.add(table_alias.name.lower())
        for node in tree.walk():
            if not isinstance(node, allowed):
                raise AdqlError(f"unsupported construct in ADQL: {node.key.upper()}")
            if isinstance(node, (exp.Union, exp.Intersect, exp.Except)) and not self.features.sets:
                kind = node.key.upper()
                raise AdqlError(f"{kind} is not supported by this service (no ADQL set operations)")
            if isinstance(node, exp.ILike) and not self.features.string:
                raise AdqlError("ILIKE is not supported by this service (ADQL 2.0)")
            if isinstance(node, exp.Cast) and not self.features.cast:
                raise AdqlError("CAST is not supported by this service")
            if isinstance(node, exp.Anonymous):
                self._check_function(node)
            elif isinstance(node, (exp.Min, exp.Max)) and node.expressions:
                raise AdqlError(f"{node.key.upper()} takes one argument")
            elif isinstance(node, exp.Cast):
                self._check_cast(node)
            elif isinstance(node, exp.Table):
                self._check_table(node)
            elif isinstance(node, exp.Column):
                self._check_column(node)

    def _check_function(self, node: exp.Anonymous) -> None:
        name = str(node.name).upper()
        count = len(node.expressions)
        if name in AGGREGATES:
            if count != 2:
                raise AdqlError(f"{name} takes 2 arguments, not {count}")
            return
        function = FUNCTIONS.get(name)
        if function is None or not self.features.offers(function):
            raise AdqlError(f"unknown function {name}")
        if function.arities and count not in function.arities:
            expected = " or ".join(map(str, function.arities))
            raise AdqlError(f"{name} takes {expected} arguments, not {count}")
        if not function.arities and count < 1:
            raise AdqlError(f"{name} needs arguments")

    @staticmethod
    def _check_cast(node: exp.Cast) -> None:
        target = node.to.this.name if node.to is not None else "?"
        if target not in _CAST_TYPES:
            raise AdqlError(f"cannot CAST to {node.to.sql() if node.to is not None else target}")

    def _check_table(self, node: exp.Table) -> None:
        name, schema = node.name.lower(), node.db.lower()
        if node.catalog:
            raise AdqlError(f"unknown table {node.sql()}")
        if not schema and name in self.ctes:
            return
        if schema:
            if (schema, name) not in self.catalog:
                raise AdqlError(f"unknown table {schema}.{name}")
            return
        if not any(table == name for _, table in self.catalog):
            raise AdqlError(f"unknown table {name}")

    def _check_column(self, node: exp.Column) -> None:
        from sqlglot import exp  # noqa: PLC0415

        if isinstance(node.this, exp.Star):
            return
        identifier = node.this
        name = identifier.name if isinstance(identifier, exp.Identifier) else str(identifier)
        if node.args.get("db") is not None and not self.features.three_part_columns:
            raise AdqlError(f'Unknown column "{node.sql()}"')
        quoted = isinstance(identifier, exp.Identifier) and identifier.quoted
        known = name in self.column_names or name.lower() in self.aliases
        if not quoted:
            known = known or name.lower() in self.column_names
        if not known:
            raise AdqlError(f"unknown column {name}")


def _rewrite(tree: exp.Expr) -> exp.Expr:
    """Rewrite for SQLite: ILIKE as a function, and names for unnamed expressions."""
    from sqlglot import exp  # noqa: PLC0415

    def ilike(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.ILike):
            call = exp.Anonymous(this="IVO_NOCASEMATCH", expressions=[node.this, node.expression])
            match = exp.EQ(this=call, expression=exp.Literal.number(1))
            # sqlglot keeps NOT ILIKE as a flag on the node, not as a NOT around it.
            return exp.Not(this=exp.Paren(this=match)) if node.args.get("negate") else match
        return node

    tree = tree.transform(ilike)
    outer = tree
    while isinstance(outer, (exp.Union, exp.Intersect, exp.Except)):
        outer = outer.this
    if isinstance(outer, exp.Select):
        named: list[exp.Expr] = []
        for index, projection in enumerate(outer.expressions):
            if isinstance(projection, (exp.Column, exp.Alias, exp.Star)):
                named.append(projection)
            else:
                named.append(exp.alias_(projection, _default_name(projection, index)))
        outer.set("expressions", named)
    return tree


def _default_name(node: exp.Expr, index: int) -> str:
    from sqlglot import exp  # noqa: PLC0415

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)):
        return node.key.lower()
    return f"col{index + 1}"


def _projections(tree: exp.Expr) -> tuple[_Projection, ...] | None:
    from sqlglot import exp  # noqa: PLC0415

    outer = tree
    while isinstance(outer, (exp.Union, exp.Intersect, exp.Except)):
        outer = outer.this
    if not isinstance(outer, exp.Select):
        return None
    result: list[_Projection] = []
    for projection in outer.expressions:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(node, exp.Star) or (
            isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
        ):
            return None
        if isinstance(node, exp.Column):
            result.append(_Projection("column", node.name.lower()))
        elif isinstance(node, exp.Anonymous):
            result.append(_Projection("function", str(node.name).upper()))
        elif isinstance(node, exp.Count):
            result.append(_Projection("function", "COUNT"))
        else:
            result.append(_Projection("other"))
    return tuple(result)


def translate(
    adql: str,
    catalog: Mapping[tuple[str, str], TableDef],
    features: AdqlFeatures = AdqlFeatures(),
) -> Translation:
    """Check *adql* and translate it to SQLite SQL.

    Raises:
        AdqlError: On a syntax error, an unknown table, column or function, a
            construct ADQL does not have, or anything but one query.
    """
    if len(adql) > MAX_QUERY_CHARS:
        raise AdqlError(f"query longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in adql:
        raise AdqlError("the query contains a NUL character")
    dialect = _dialect()
    import sqlglot  # noqa: PLC0415 -- optional dependency, present once _dialect() worked
    from sqlglot import exp  # noqa: PLC0415

    try:
        statements = [s for s in sqlglot.parse(adql, dialect=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise AdqlError("query too deeply nested") from None
    if len(statements) != 1:
        raise AdqlError(f"expected exactly one query, got {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise AdqlError(f"only SELECT queries are allowed, not {tree.key.upper()}")
    names = frozenset(c.name for table in catalog.values() for c in table.columns)
    try:
        _Checker(catalog, names, features).check(tree)
        tables = _read_tables(tree, catalog)
        tree = _rewrite(tree)
        sql = tree.sql(dialect="sqlite")
    except RecursionError:
        raise AdqlError("query too deeply nested") from None
    return Translation(sql=sql, projections=_projections(tree), tables=tables)


def _read_tables(
    tree: exp.Expr, catalog: Mapping[tuple[str, str], TableDef]
) -> tuple[TableDef, ...]:
    """The served tables a checked query names (common table expressions left out)."""
    from sqlglot import exp  # noqa: PLC0415

    found: dict[str, TableDef] = {}
    for node in tree.find_all(exp.Table):
        name, schema = node.name.lower(), node.db.lower()
        matches = [t for (s, n), t in catalog.items() if n == name and schema in {"", s}]
        if matches:
            found.setdefault(matches[0].qualified_name, matches[0])
    return tuple(found.values())


# -- the database --------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    """Per-connection state the callbacks share."""

    deadline: float = math.inf
    error: AdqlError | None = None
    cancel: threading.Event | None = None

    def stop(self) -> int:
        """The progress handler: non-zero interrupts the query (out of time, or cancelled)."""
        return int(
            time.monotonic() > self.deadline or (self.cancel is not None and self.cancel.is_set())
        )


#: The schema uploaded tables live in (TAP's ``TAP_UPLOAD.name``).
UPLOAD_SCHEMA = "tap_upload"


@dataclass(frozen=True, slots=True)
class UploadedTable:
    """A table a client sent with its query (TAP ``UPLOAD``), queryable for that query only.

    Attributes:
        table: Its metadata; the schema is `UPLOAD_SCHEMA`.
        rows: Its rows, values in column order.
    """

    table: TableDef
    rows: Sequence[Sequence[object]]


def _quote(identifier: str) -> str:
    """An SQL delimited identifier (uploaded column names may be anything)."""
    return '"' + identifier.replace('"', '""') + '"'


def _wrap(state: _State, name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: object) -> Any:
        try:
            return impl(*args)
        except AdqlError as exc:
            state.error = exc
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            state.error = AdqlError(f"{name}: {exc}")
            raise

    return call


def _string_agg(state: _State) -> type:
    class StringAgg:
        """``ivo_string_agg(expr, delimiter)``: NULLs skipped, NULL when nothing is left."""

        def __init__(self) -> None:
            self.parts: list[str] = []
            self.delimiter = ""
            self.size = 0

        def step(self, value: object, delimiter: object) -> None:
            if value is None:
                return
            text = str(value)
            self.delimiter = "" if delimiter is None else str(delimiter)
            self.size += len(text) + len(self.delimiter)
            if self.size > MAX_STRING_BYTES:
                state.error = AdqlError("IVO_STRING_AGG result too long")
                raise state.error
            self.parts.append(text)

        def finalize(self) -> str | None:
            return self.delimiter.join(self.parts) if self.parts else None

    return StringAgg


def _authorizer(functions: frozenset[str]) -> Callable[..., int]:
    allowed_actions = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}

    def authorize(
        action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None
    ) -> int:
        if action not in allowed_actions:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and (arg1 or "").lower().startswith("sqlite_"):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in functions:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


@dataclass(slots=True)
class _Connection:
    db: sqlite3.Connection
    state: _State
    authorizer: Callable[..., int]


class AdqlDatabase:
    """Tables in SQLite, queried with ADQL; thread-safe, every query bounded.

    The data is loaded once, serialised, and deserialised into a small pool of private
    in-memory connections, so that concurrent queries in worker threads never share a
    connection and never see each other's state.

    Args:
        tables: The tables to serve.
        rows: Rows per table (keyed by qualified name), values in column order.
        features: The optional ADQL features on offer.
        timeout: Seconds any one query may run before it is stopped.
        connections: Size of the connection pool (queries run at most this concurrently).

    Raises:
        UsageError: When the ``sim`` extra (sqlglot) is missing.
    """

    def __init__(
        self,
        tables: Sequence[TableDef],
        rows: Mapping[str, Iterable[Sequence[object]]],
        *,
        features: AdqlFeatures = AdqlFeatures(),
        timeout: float = 10.0,
        connections: int = 2,
    ) -> None:
        require_sim_extra("sqlglot")
        self.tables = tuple(tables)
        self.features = features
        self.timeout = timeout
        self.catalog = {(t.schema.lower(), t.name.lower()): t for t in self.tables}
        self._types: dict[str, ColumnDef] = {}
        for table in self.tables:
            for column in table.columns:
                self._types.setdefault(column.name, column)
        self._functions = {
            name: function for name, function in FUNCTIONS.items() if features.offers(function)
        }
        images = self._build(rows)
        self._pool: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(max(1, connections)):
            connection = self._connect(images)
            self._all.append(connection)
            self._pool.put(connection)

    def _build(self, rows: Mapping[str, Iterable[Sequence[object]]]) -> dict[str, bytes]:
        builder = sqlite3.connect(":memory:", isolation_level=None)
        try:
            # Schema-less tables go into their own attached database: SQLite finds an
            # unqualified name there when it is unique, as ADQL expects.
            schemas = sorted({t.schema or NO_SCHEMA for t in self.tables})
            for schema in schemas:
                builder.execute(f"ATTACH DATABASE ':memory:' AS {schema}")
            for table in self.tables:
                columns = ", ".join(
                    f"{_quote(c.name)} {_SQL_TYPES[c.datatype]}" for c in table.columns
                )
                builder.execute(f"CREATE TABLE {table.sqlite_name} ({columns})")
                marks = ", ".join("?" * len(table.columns))
                builder.execute("BEGIN")
                builder.executemany(
                    f"INSERT INTO {table.sqlite_name} VALUES ({marks})",  # noqa: S608
                    rows.get(table.qualified_name, ()),
                )
                builder.execute("COMMIT")
                for number, index in enumerate(table.indexes):
                    index_name = _quote(f"ix_{table.name}_{number}")
                    builder.execute(
                        f"CREATE INDEX {table.schema or NO_SCHEMA}.{index_name}"
                        f" ON {_quote(table.name)} ({', '.join(map(_quote, index))})"
                    )
            for schema in schemas:
                builder.execute(f"ANALYZE {schema}")
            return {schema: builder.serialize(name=schema) for schema in schemas}
        finally:
            builder.close()

    def _connect(self, images: Mapping[str, bytes]) -> _Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        for schema, image in images.items():
            db.execute(f"ATTACH DATABASE ':memory:' AS {schema}")
            db.deserialize(image, name=schema)
        state = _State()
        db.execute("PRAGMA case_sensitive_like = ON")
        if db.execute("SELECT 'a' LIKE 'A'").fetchone()[0]:  # the pragma was compiled out
            db.create_function("like", 2, _like, deterministic=True)
            db.create_function("like", 3, _like, deterministic=True)
        db.execute("PRAGMA query_only = ON")
        for name, function in self._functions.items():
            if function.impl is None:
                continue
            wrapped = _wrap(state, name, function.impl)
            for arity in function.arities or (-1,):
                db.create_function(
                    name.lower(), arity, wrapped, deterministic=function.deterministic
                )
        for name in AGGREGATES:
            db.create_aggregate(name.lower(), 2, _string_agg(state))
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_STRING_BYTES)
        db.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 4 * MAX_QUERY_CHARS)
        if UPLOAD_SCHEMA not in images:  # empty until a query brings tables along
            db.execute(f"ATTACH DATABASE ':memory:' AS {UPLOAD_SCHEMA}")
        db.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, len(images) + 1)
        allowed = frozenset(name.lower() for name in [*self._functions, *AGGREGATES])
        authorizer = _authorizer(allowed | _SQLITE_BUILTINS)
        db.set_authorizer(authorizer)
        db.set_progress_handler(state.stop, _PROGRESS_STEPS)
        return _Connection(db, state, authorizer)

    @staticmethod
    def _writing(connection: _Connection, statements: Callable[[sqlite3.Connection], None]) -> None:
        """Run *statements* with writes allowed (loading and dropping uploaded tables)."""
        db = connection.db
        db.set_authorizer(None)
        db.execute("PRAGMA query_only = OFF")
        try:
            statements(db)
        finally:
            db.execute("PRAGMA query_only = ON")
            db.set_authorizer(connection.authorizer)

    def _load(self, connection: _Connection, uploads: Sequence[UploadedTable]) -> None:
        def load(db: sqlite3.Connection) -> None:
            for upload in uploads:
                table = upload.table
                name = f"{UPLOAD_SCHEMA}.{_quote(table.name)}"
                columns = ", ".join(
                    f"{_quote(c.name)} {_SQL_TYPES[c.datatype]}" for c in table.columns
                )
                db.execute(f"CREATE TABLE {name} ({columns})")
                marks = ", ".join("?" * len(table.columns))
                db.executemany(f"INSERT INTO {name} VALUES ({marks})", upload.rows)  # noqa: S608

        self._writing(connection, load)

    def _unload(self, connection: _Connection, uploads: Sequence[UploadedTable]) -> None:
        def unload(db: sqlite3.Connection) -> None:
            for upload in uploads:
                db.execute(f"DROP TABLE IF EXISTS {UPLOAD_SCHEMA}.{_quote(upload.table.name)}")

        self._writing(connection, unload)

    def translate(self, adql: str, uploads: Sequence[UploadedTable] = ()) -> Translation:
        """Check *adql* against this database's tables and features; see `translate`."""
        catalog = self.catalog
        if uploads:
            catalog = {**catalog}
            for upload in uploads:
                table = upload.table
                if table.schema.lower() != UPLOAD_SCHEMA:
                    raise AdqlError(f"uploaded tables live in {UPLOAD_SCHEMA}, not {table.schema}")
                catalog[UPLOAD_SCHEMA, table.name.lower()] = table
        return translate(adql, catalog, self.features)

    def execute(
        self,
        adql: str,
        *,
        maxrec: int,
        uploads: Sequence[UploadedTable] = (),
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        """Run *adql*, returning at most *maxrec* rows. Blocking: call it in a worker thread.

        Args:
            adql: The query.
            maxrec: Most rows to return; more make the result overflow.
            uploads: Tables sent with the query, readable as ``TAP_UPLOAD.name`` by this
                query only (they are dropped before the connection serves another).
            cancel: Setting this event stops the query (its client went away, or its
                job was deleted).

        Raises:
            AdqlError: When the query is wrong, unsupported, fails or is cancelled.
            QueryTimeout: When it runs longer than the timeout.
        """
        translation = self.translate(adql, uploads)
        connection = self._acquire()
        state = connection.state
        state.error = None
        state.cancel = cancel
        state.deadline = time.monotonic() + self.timeout
        try:
            if uploads:
                self._load(connection, uploads)
            cursor = connection.db.execute(translation.sql)
            names = [d[0] for d in cursor.description or ()]
            if maxrec > 0:
                rows = cursor.fetchmany(maxrec + 1)
                overflow = len(rows) > maxrec
                del rows[maxrec:]
            else:
                rows, overflow = [], cursor.fetchone() is not None
            cursor.close()
        except sqlite3.Error as exc:
            raise self._error(state, exc) from None
        finally:
            state.deadline = math.inf
            cancelled = state.cancel is not None and state.cancel.is_set()
            state.cancel = None
            try:
                if uploads:
                    self._unload(connection, uploads)
            finally:
                self._release(connection)
        if cancelled:
            raise AdqlError("the query was cancelled")
        columns = self._columns(names, translation.projections, rows, translation.tables)
        return QueryResult(columns=columns, rows=rows, overflow=overflow, sql=translation.sql)

    def _acquire(self) -> _Connection:
        while not self._closed:
            try:
                return self._pool.get(timeout=0.5)
            except queue.Empty:
                continue
        raise AdqlError("the service is shutting down")

    def _release(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed:
                self._pool.put(connection)
                return
        connection.db.close()

    def _error(self, state: _State, exc: sqlite3.Error) -> AdqlError:
        if state.error is not None:
            return state.error
        message = str(exc)
        if message == "interrupted":
            if self._closed:
                return AdqlError("the service is shutting down")
            if state.cancel is not None and state.cancel.is_set():
                return AdqlError("the query was cancelled")
            return QueryTimeout(f"query stopped after the time limit of {self.timeout:g} s")
        if message.startswith("no such column: "):
            return AdqlError(f"unknown column {message.removeprefix('no such column: ')}")
        if message.startswith("ambiguous column name: "):
            return AdqlError(f"ambiguous column {message.removeprefix('ambiguous column name: ')}")
        if message.startswith("no such function: "):
            return AdqlError(f"unknown function {message.removeprefix('no such function: ')}")
        if message == "not authorized":
            return AdqlError("query refused: it does something other than reading")
        return AdqlError(f"query failed: {message}")

    def _columns(
        self,
        names: Sequence[str],
        projections: tuple[_Projection, ...] | None,
        rows: Sequence[tuple[object, ...]],
        tables: Sequence[TableDef] = (),
    ) -> tuple[ResultColumn, ...]:
        if projections is not None and len(projections) != len(names):
            projections = None
        read: dict[str, ColumnDef] = {}
        for table in tables:
            for column in table.columns:
                read.setdefault(column.name.lower(), column)
        types = {**self._types, **read} if read else self._types
        columns = []
        for index, name in enumerate(names):
            projection = projections[index] if projections is not None else None
            source: ColumnDef | None = None
            function: _Function | None = None
            if projection is None:
                source = types.get(name.lower())
            elif projection.kind == "column":
                source = types.get(projection.name)
            elif projection.kind == "function":
                function = self._functions.get(projection.name)
            if source is not None:
                columns.append(
                    ResultColumn(
                        name=name,
                        datatype=source.datatype,
                        arraysize=source.arraysize,
                        xtype=source.xtype,
                        unit=source.unit,
                        ucd=source.ucd,
                        description=source.description,
                        utype=source.utype,
                    )
                )
                continue
            values = [row[index] for row in rows]
            if projection is not None and projection.name in AGGREGATES:
                datatype, xtype = _infer(values, prefer_text=True), None
            elif projection is not None and projection.name == "COUNT":
                datatype, xtype = "long", None
            elif function is not None and function.datatype is not None:
                datatype, xtype = function.datatype, function.xtype
                if datatype == "char":
                    datatype = _infer(values, prefer_text=True)
            else:
                datatype, xtype = _infer(values), None
            arraysize = "*" if datatype in {"char", "unicodeChar"} else None
            columns.append(ResultColumn(name, datatype, arraysize, xtype))
        return tuple(columns)

    def close(self) -> None:
        """Stop running queries and close every connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for connection in self._all:
            connection.db.interrupt()
        # Connections in use close when their query ends (see _release); idle ones now.
        while True:
            try:
                idle = self._pool.get_nowait()
            except queue.Empty:
                break
            idle.db.close()


def _infer(values: Sequence[object], *, prefer_text: bool = False) -> str:
    """A VOTable datatype for computed values (SQLite types values, not columns)."""
    present = [v for v in values if v is not None]
    if prefer_text or any(isinstance(v, (str, bytes)) for v in present) or not present:
        if any(isinstance(v, str) and not v.isascii() for v in present):
            return "unicodeChar"
        return "char"
    if all(isinstance(v, int) for v in present):
        return "long"
    return "double"
