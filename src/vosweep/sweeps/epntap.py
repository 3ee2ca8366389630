"""EPN-TAP everywhere: one query to every ``epn_core`` table of the VO's planetary services.

Unlike ObsCore, EPN-TAP tables have no fixed name (``planets.epn_core``, ``vvex.epn_core``
...), and one TAP service often holds several; the registry's table metadata says where
they are (their table utype: ``ivo://ivoa.net/std/epntap#table-2.0``, or the legacy
``ivo://vopdc.obspm/std/epncore#schema-2.0``, as the pyVO course's ``iter_epncore_tables``
finds them). The sweep asks each table in its own ADQL (its name quoted as it must be) and
merges the granules; EPN-TAP 2.0 times are Julian days and spectral ranges frequencies
(Hz), and the "hash-list" columns (``dataproduct_type``, ``target_name``...) are matched
with ``ivo_hashlist_has`` so that ``im#sp`` is found for ``im``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import astropy.units as u
from pydantic import BaseModel, ConfigDict, Field

from vosweep.adql import identifier, table_reference
from vosweep.errors import QueryRejected, UsageError
from vosweep.queries import (
    TapMode,
    TapQuery,
    _interval,
    _mjd,
    _usage_errors,
    interval_ends,
    spectral_value,
)
from vosweep.services import Protocol, Service
from vosweep.sweeps._shared import (
    KeyGroup,
    drop_duplicates,
    equals_any,
    hashlist_any,
    ints,
    overlaps,
    texts,
    with_kind,
)
from vosweep.targets import Targeted

if TYPE_CHECKING:
    from vosweep.engine import Engine
    from vosweep.result import FanoutResult

__all__ = [
    "EPNCORE_UTYPE_PATTERNS",
    "EpnTable",
    "EpnTapQuery",
    "epntap",
    "find_epncore_tables",
    "finish_epntap",
    "plan_epntap",
]

#: Table utypes of EPN-TAP 2.x tables (``LIKE`` patterns, lower-case as RegTAP stores
#: utypes): the IVOA one, and the pre-IVOA one many services still declare.
EPNCORE_UTYPE_PATTERNS = (
    "ivo://ivoa.net/std/epntap#table-2.%",
    "ivo://vopdc.obspm/std/epncore#schema-2.%",
)
_UTYPE = re.compile(
    r"ivo://(ivoa\.net/std/epntap#table-2\.|vopdc\.obspm/std/epncore#schema-2\.)", re.IGNORECASE
)
_TAP = "ivo://ivoa.net/std/tap"
#: Julian day of MJD 0.
_MJD_ZERO_JD = 2_400_000.5
#: What identifies a granule across services: ``service_title`` names the EPN-TAP
#: resource (the spec makes it the alias for multi-service queries, the same on its
#: mirrors) and ``granule_uid`` is unique within it. ``access_url`` alone is no key:
#: several granules may describe one file (one row per target or per group).
_GRANULE_KEY: tuple[KeyGroup, ...] = (("service_title", "granule_uid"),)


@dataclass(frozen=True, slots=True)
class EpnTable:
    """One EPN-TAP table and the TAP service to ask for it.

    Attributes:
        service: The TAP service serving the table (its ``ivoid`` is the resource
            that declares the table: the service itself or a data collection).
        table_name: The table's name as registered (``planets.epn_core``).
        utype: Its table utype as registered (empty when unknown).
        ivoid: The resource that declares the table.
    """

    service: Service
    table_name: str
    utype: str = ""
    ivoid: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.service, Service) or self.service.protocol is not Protocol.TAP:
            raise UsageError(f"EpnTable needs a TAP vosweep.Service, got {self.service!r}")
        if not isinstance(self.table_name, str) or not self.table_name.strip():
            raise UsageError(f"EpnTable needs a table name, got {self.table_name!r}")
        table_reference(self.table_name)  # control characters: refused now


class EpnTapQuery(BaseModel):
    """What to ask every EPN-TAP table; every given filter must hold (AND).

    ::

        EpnTapQuery(target_name="Mars", dataproduct_type=["im", "sp"],
                    time=(Time("2015-01-01"), Time("2016-01-01")), maxrec=500)

    Several values of one filter are alternatives (OR).

    Attributes:
        target_name: Target names (hash-list column: ``Mars`` finds ``Mars#Phobos``).
        target_class: Target classes (``planet``, ``satellite``, ``comet``...).
        time: Interval ``[time_min, time_max]`` must overlap, in Julian days; astropy
            ``Time``, datetimes and ISO strings accepted; plain numbers are JD (EPN-TAP's
            unit), None for an open end.
        dataproduct_type: EPN-TAP codes (``im``, ``sp``, ``ts``...), matched in the hash list.
        instrument_host_name: Spacecraft or observatory names.
        instrument_name: Instrument names.
        spectral_range: Interval ``[spectral_range_min, spectral_range_max]`` must
            overlap, in Hz; any spectral quantity accepted (wavelengths and energies too);
            plain numbers are Hz.
        processing_level: CODMAC levels (1-6).
        where: An ADQL condition of the caller's, AND-ed as it is (their responsibility).
        columns: Columns to select; empty selects ``*``.
        maxrec: At most this many rows per table (MAXREC: cuts are reported as overflow).
        mode: TAP ``sync``/``async``/``auto``; None uses the engine's policy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_name: tuple[str, ...] = ()
    target_class: tuple[str, ...] = ()
    time: tuple[float, float] | None = None
    dataproduct_type: tuple[str, ...] = ()
    instrument_host_name: tuple[str, ...] = ()
    instrument_name: tuple[str, ...] = ()
    spectral_range: tuple[float, float] | None = None
    processing_level: tuple[int, ...] = ()
    where: str | None = None
    columns: tuple[str, ...] = ()
    maxrec: int | None = Field(default=None, ge=0)
    mode: TapMode | None = None

    def __init__(self, **data: Any) -> None:
        for name in _HASHLISTS:
            data[name] = texts(data.get(name), name)
        data["columns"] = texts(data.get("columns"), "columns")
        for name in data["columns"]:
            identifier(name)
        data["time"] = _interval(data.get("time"), _jd, "time")
        data["spectral_range"] = _frequencies(data.get("spectral_range"))
        data["processing_level"] = ints(data.get("processing_level"), "processing_level")
        where = data.get("where")
        if where is not None and (not isinstance(where, str) or not where.strip()):
            raise UsageError(f"where must be a non-empty ADQL condition, got {where!r}")
        with _usage_errors("EPN-TAP query"):
            super().__init__(**data)

    def to_adql(self, table_name: str) -> str:
        """The ADQL for table *table_name* (quoted and qualified as it must be)."""
        select = ", ".join(identifier(c) for c in self.columns) if self.columns else "*"
        found = [
            hashlist_any(name, getattr(self, name)) for name in _HASHLISTS if getattr(self, name)
        ]
        if self.time is not None:
            found += overlaps("time_min", "time_max", self.time)
        if self.spectral_range is not None:
            found += overlaps("spectral_range_min", "spectral_range_max", self.spectral_range)
        if self.processing_level:
            found.append(equals_any("processing_level", self.processing_level))
        if self.where is not None:
            found.append(f"({self.where})")
        where = f" WHERE {' AND '.join(found)}" if found else ""
        # S608: names go through identifier/table_reference, values through literals.
        return f"SELECT {select} FROM {table_reference(table_name)}{where}"  # noqa: S608

    def to_tap(self, table_name: str) -> TapQuery:
        """The `TapQuery` sent for table *table_name*."""
        return TapQuery(self.to_adql(table_name), maxrec=self.maxrec, mode=self.mode)


#: Filters on EPN-TAP hash-list columns, in the order they are written.
_HASHLISTS = (
    "target_name",
    "target_class",
    "dataproduct_type",
    "instrument_host_name",
    "instrument_name",
)


def _jd(value: Any, what: str) -> float:
    """A Julian day: plain numbers are JD already; times (and ISO strings) converted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise UsageError(f"{what} must be finite, got {value!r}")
        return float(value)
    return _mjd(value, what) + _MJD_ZERO_JD


def _hertz(value: Any, what: str) -> float:
    """A frequency in Hz from a number (Hz) or any spectral quantity."""
    return spectral_value(value, what, u.Hz, "frequency")


def _frequencies(value: Any) -> tuple[float, float] | None:
    """``(low, high)`` in Hz; a wavelength interval runs the other way in frequency."""
    what = "spectral_range"
    if value is None:
        return None
    low, high = interval_ends(value, what)
    lo = 0.0 if low is None else _hertz(low, what)
    hi = math.inf if high is None else _hertz(high, what)
    units = [end.unit for end in (low, high) if end is not None and hasattr(end, "unit")]
    if any(unit.is_equivalent(u.m) for unit in units):
        # Wavelengths: the short end is the high frequency.
        lo, hi = (0.0 if high is None else hi), (math.inf if low is None else lo)
    if lo > hi:
        raise UsageError(f"{what} interval is empty: {lo} Hz > {hi} Hz")
    return lo, hi


# -- finding the tables --------------------------------------------------------------------

#: Tables whose own resource has a TAP (or ``tap#aux``) capability: services, and data
#: collections published through a TAP service.
_OWN = (
    "SELECT t.ivoid, t.table_name, t.table_utype, c.standard_id, i.access_url,"
    " r.short_name, r.res_title{extra}"
    " FROM rr.res_table AS t"
    " JOIN rr.resource AS r ON r.ivoid = t.ivoid"
    " JOIN rr.capability AS c ON c.ivoid = t.ivoid"
    " JOIN rr.interface AS i ON i.ivoid = c.ivoid AND i.cap_index = c.cap_index"
    " WHERE ({utypes})"
    " AND c.standard_id IN ('ivo://ivoa.net/std/tap', 'ivo://ivoa.net/std/tap#aux')"
    " AND i.intf_type = 'vs:paramhttp'"
    " ORDER BY t.ivoid, t.table_name"
)
#: Tables of collections that only say which TAP service serves them (``isservedby``).
_SERVED = (
    "SELECT t.ivoid, t.table_name, t.table_utype, c.standard_id, i.access_url,"
    " r.short_name, r.res_title{extra}"
    " FROM rr.res_table AS t"
    " JOIN rr.resource AS r ON r.ivoid = t.ivoid"
    " JOIN rr.relationship AS rel ON rel.ivoid = t.ivoid"
    " JOIN rr.capability AS c ON c.ivoid = rel.related_id"
    " JOIN rr.interface AS i ON i.ivoid = c.ivoid AND i.cap_index = c.cap_index"
    " WHERE ({utypes}) AND rel.relationship_type IN ('isservedby', 'isServedBy')"
    " AND c.standard_id = 'ivo://ivoa.net/std/tap' AND i.intf_type = 'vs:paramhttp'"
    " ORDER BY t.ivoid, t.table_name"
)


async def find_epncore_tables(engine: Engine) -> list[EpnTable]:
    """Every EPN-TAP 2.x table the registry knows, with the TAP service to ask for it.

    Found by table utype (both the IVOA and the legacy one, any 2.x, case-insensitively)
    in two RegTAP queries: tables of TAP services and of ``tap#aux`` collections, and
    tables of collections ``isservedby`` a TAP service. Interfaces reserved to
    authenticated users are left out (RegTAP 1.1). One table reached through several
    resources is listed once, under the TAP service's own record when it has one.

    Raises:
        RegistryUnavailable: No registry endpoint answered.
        QueryRejected: The registry refused the queries.
    """
    features = await engine.registry.features()
    if features.has_udf("ivo_nocasematch"):
        utypes = " OR ".join(
            f"1 = ivo_nocasematch(t.table_utype, '{p}')" for p in EPNCORE_UTYPE_PATTERNS
        )
    else:
        utypes = " OR ".join(f"t.table_utype LIKE '{p}'" for p in EPNCORE_UTYPE_PATTERNS)
    rows: list[dict[str, Any]] = []
    for template in (_OWN, _SERVED):
        rows += await _rows(engine, template, utypes)
    return _tables_of(rows)


async def _rows(engine: Engine, template: str, utypes: str) -> list[dict[str, Any]]:
    """The rows of *template*; without RegTAP 1.1's ``authenticated_only`` if refused."""
    try:
        answer = await engine.registry.query(
            template.format(utypes=utypes, extra=", i.authenticated_only")
        )
    except QueryRejected:
        answer = await engine.registry.query(template.format(utypes=utypes, extra=""))
    return answer.rows


def _tables_of(rows: Iterable[dict[str, Any]]) -> list[EpnTable]:
    """One `EpnTable` per (access URL, table), the TAP service's own record preferred."""
    best: dict[tuple[str, str], tuple[int, EpnTable]] = {}
    for row in rows:
        utype = str(row.get("table_utype") or "")
        url = str(row.get("access_url") or "").strip()
        name = str(row.get("table_name") or "").strip()
        if not _UTYPE.match(utype) or not url or not name or row.get("authenticated_only"):
            continue
        ivoid = str(row.get("ivoid") or "")
        try:
            service = Service(
                protocol=Protocol.TAP,
                access_url=url,
                ivoid=ivoid or None,
                name=row.get("short_name") or None,
                title=row.get("res_title") or None,
            )
            table = EpnTable(service, name, utype, ivoid)
        except (UsageError, ValueError):
            continue  # a record with a broken URL or name: nothing to ask
        rank = 0 if str(row.get("standard_id") or "").lower() == _TAP and ivoid else 1
        key = (url, name.lower())
        if key not in best or rank < best[key][0]:
            best[key] = (rank, table)
    return [best[key][1] for key in sorted(best)]


# -- planning and running ------------------------------------------------------------------


def plan_epntap(tables: Iterable[EpnTable], query: EpnTapQuery) -> list[Targeted]:
    """One target per table (key: the table name), each with its own ADQL (pure)."""
    targets = []
    for position, table in enumerate(tables):
        if not isinstance(table, EpnTable):
            raise UsageError(f"table #{position} must be an EpnTable, got {table!r}")
        targets.append(Targeted(table.service, query.to_tap(table.table_name), table.table_name))
    return targets


async def epntap(
    engine: Engine,
    query: EpnTapQuery,
    *,
    tables: Sequence[EpnTable] | None = None,
    dedupe: bool = True,
    **fanout_kwargs: Any,
) -> FanoutResult:
    """Ask every EPN-TAP table *query*; the granules merged into one table.

    Args:
        engine: An opened `Engine`.
        query: What to ask.
        tables: Which tables; None finds them with `find_epncore_tables`.
        dedupe: Drop granules seen before (same ``service_title`` and ``granule_uid``:
            one EPN-TAP resource reached through two services or URLs).
        **fanout_kwargs: Passed to `Engine.fanout` (``errors``, ``deadline``, ``on_part``).
    """
    if tables is None:
        tables = await find_epncore_tables(engine)
    targets = plan_epntap(tables, query)
    kwargs = with_kind(fanout_kwargs, "epntap", dedupe=dedupe)
    result = await engine.fanout(targets, None, **kwargs)
    if fanout_kwargs.get("keep_rows") is False:
        return result  # rows on disk, as stored: `result.write` streams them
    return await anyio.to_thread.run_sync(lambda: finish_epntap(result, dedupe=dedupe))


def finish_epntap(result: FanoutResult, *, dedupe: bool = True) -> FanoutResult:
    """*result* with duplicate granules dropped and counted (also after a resume).

    Blocking: call it in a worker thread from async code.
    """
    table = result.table
    dropped = 0
    if dedupe:
        table, dropped = drop_duplicates(table, _GRANULE_KEY)
    return result.derive(table, duplicates=dropped)
