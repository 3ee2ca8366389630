"""ObsCore everywhere: one query to every TAP service with an ``ivoa.obscore`` table.

ObsCore is the one table schema every observation archive shares, so the same ADQL runs
unchanged on all of them; what a global sweep adds is finding them (the registry's
declared ObsCore data model), running the query as a fan-out, bringing the answers into
the ObsCore 1.1 schema (services differ in types, units and column case) and dropping the
records that reached the sweep twice (mirrors, one archive registered under two URLs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import astropy.units as u
import numpy as np
from astropy.table import Column, MaskedColumn, Table
from pydantic import BaseModel, ConfigDict, Field

from vosweep.adql import identifier
from vosweep.aggregation import PROVENANCE_COLUMNS
from vosweep.errors import UsageError
from vosweep.queries import (
    Cone,
    TapMode,
    TapQuery,
    _center_degrees,
    _degrees,
    _interval,
    _metres,
    _mjd,
    _usage_errors,
)
from vosweep.registry.coverage import excluded_resources
from vosweep.registry.results import RegistryResource, RegistryResults
from vosweep.services import Protocol, Service, coerce_service
from vosweep.sweeps._shared import (
    KeyGroup,
    drop_duplicates,
    equals_any,
    ints,
    overlaps,
    texts,
    with_kind,
)
from vosweep.targets import Skipped, Targeted, expand_targets

if TYPE_CHECKING:
    from vosweep.engine import Engine
    from vosweep.result import FanoutResult

__all__ = [
    "OBSCORE_COLUMNS",
    "OBSCORE_TABLE",
    "ObsCoreColumn",
    "ObsCoreQuery",
    "drop_duplicate_records",
    "finish_obscore",
    "obscore",
    "plan_obscore",
    "to_obscore_schema",
]

#: The table every ObsCore service publishes (ObsCore 1.1, section 4).
OBSCORE_TABLE = "ivoa.obscore"
#: What identifies an ObsCore record across services, in order of trust: the publisher's
#: dataset identifier, else (no DID) the URL of the data.
_DEDUPE_KEYS: tuple[str, ...] = ("obs_publisher_did", "access_url")


@dataclass(frozen=True, slots=True)
class ObsCoreColumn:
    """One ObsCore 1.1 column as the standard defines it.

    Attributes:
        name: Column name.
        dtype: numpy dtype kind written by `to_obscore_schema` (``str``, ``int32``...).
        unit: Standard unit, or None.
        ucd: Standard UCD.
        utype: Standard utype (``obscore:...``).
    """

    name: str
    dtype: str
    unit: str | None
    ucd: str
    utype: str


def _col(name: str, dtype: str, unit: str | None, ucd: str, utype: str) -> ObsCoreColumn:
    return ObsCoreColumn(name, dtype, unit, ucd, "obscore:" + utype)


_SPATIAL = "Char.SpatialAxis."
_TIME = "Char.TimeAxis."
_SPECTRAL = "Char.SpectralAxis."
#: The mandatory columns of ObsCore 1.1 (its table 5), in the standard's order.
OBSCORE_COLUMNS: tuple[ObsCoreColumn, ...] = (
    _col("dataproduct_type", "str", None, "meta.code.class", "ObsDataset.dataProductType"),
    _col("calib_level", "int32", None, "meta.code;obs.calib", "ObsDataset.calibLevel"),
    _col("obs_collection", "str", None, "meta.id", "DataID.Collection"),
    _col("obs_id", "str", None, "meta.id", "DataID.observationID"),
    _col("obs_publisher_did", "str", None, "meta.ref.ivoid", "Curation.PublisherDID"),
    _col("access_url", "str", None, "meta.ref.url", "Access.Reference"),
    _col("access_format", "str", None, "meta.code.mime", "Access.Format"),
    _col("access_estsize", "int64", "kbyte", "phys.size;meta.file", "Access.Size"),
    _col("target_name", "str", None, "meta.id;src", "Target.Name"),
    _col("s_ra", "float64", "deg", "pos.eq.ra",
         _SPATIAL + "Coverage.Location.Coord.Position2D.Value2.C1"),
    _col("s_dec", "float64", "deg", "pos.eq.dec",
         _SPATIAL + "Coverage.Location.Coord.Position2D.Value2.C2"),
    _col("s_fov", "float64", "deg", "phys.angSize;instr.fov",
         _SPATIAL + "Coverage.Bounds.Extent.diameter"),
    _col("s_region", "str", "deg", "pos.outline;obs.field", _SPATIAL + "Coverage.Support.Area"),
    _col("s_resolution", "float64", "arcsec", "pos.angResolution",
         _SPATIAL + "Resolution.Refval.value"),
    _col("s_xel1", "int64", None, "meta.number", _SPATIAL + "numBins1"),
    _col("s_xel2", "int64", None, "meta.number", _SPATIAL + "numBins2"),
    _col("t_min", "float64", "d", "time.start;obs.exposure",
         _TIME + "Coverage.Bounds.Limits.StartTime"),
    _col("t_max", "float64", "d", "time.end;obs.exposure",
         _TIME + "Coverage.Bounds.Limits.StopTime"),
    _col("t_exptime", "float64", "s", "time.duration;obs.exposure",
         _TIME + "Coverage.Support.Extent"),
    _col("t_resolution", "float64", "s", "time.resolution", _TIME + "Resolution.Refval.value"),
    _col("t_xel", "int64", None, "meta.number", _TIME + "numBins"),
    _col("em_min", "float64", "m", "em.wl;stat.min", _SPECTRAL + "Coverage.Bounds.Limits.LoLimit"),
    _col("em_max", "float64", "m", "em.wl;stat.max", _SPECTRAL + "Coverage.Bounds.Limits.HiLimit"),
    _col("em_res_power", "float64", None, "spect.resolution",
         _SPECTRAL + "Resolution.ResolPower.refVal"),
    _col("em_xel", "int64", None, "meta.number", _SPECTRAL + "numBins"),
    _col("o_ucd", "str", None, "meta.ucd", "Char.ObservableAxis.ucd"),
    _col("pol_states", "str", None, "meta.code;phys.polarization",
         "Char.PolarizationAxis.stateList"),
    _col("pol_xel", "int64", None, "meta.number", "Char.PolarizationAxis.numBins"),
    _col("facility_name", "str", None, "meta.id;instr.tel", "Provenance.ObsConfig.Facility.name"),
    _col("instrument_name", "str", None, "meta.id;instr",
         "Provenance.ObsConfig.Instrument.name"),
)  # fmt: skip


class ObsCoreQuery(BaseModel):
    """What to ask every ObsCore table: whole ADQL, or filters vosweep writes as ADQL.

    ::

        ObsCoreQuery(position=(83.63, 22.01, 0.1), band=(400 * u.nm, 700 * u.nm),
                     dataproduct_type="image", maxrec=1000)
        ObsCoreQuery("SELECT TOP 10 * FROM ivoa.obscore WHERE calib_level = 3")

    No filter at all is a legitimate full-table sweep (bound it with *maxrec*).

    Position: ``CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE(...))`` by default, because
    ``s_ra``/``s_dec`` are filled and indexed nearly everywhere while ``s_region`` is often
    NULL, of mixed shapes or unindexed; ``match="footprint"`` asks for
    ``INTERSECTS(CIRCLE(...), s_region)`` instead (footprints touching the circle).

    Attributes:
        adql: A whole query on ``ivoa.obscore`` (then no filter may be given).
        where: An ADQL condition of the caller's, AND-ed as it is (their responsibility).
        position: A `Cone`; ``(ra, dec, radius)`` or ``(SkyCoord, radius)`` are accepted.
        match: ``center`` (``s_ra``/``s_dec`` inside the circle) or ``footprint``.
        time: MJD interval ``(start, stop)`` that ``[t_min, t_max]`` must overlap;
            astropy ``Time``, datetimes and ISO strings accepted, None for an open end.
        band: Wavelength interval in metres that ``[em_min, em_max]`` must overlap; any
            spectral quantity accepted (frequencies and energies too).
        dataproduct_type: ``image``, ``cube``, ``spectrum``... (any of them).
        calib_level: Calibration levels (any of them).
        collection: ``obs_collection`` values (any of them).
        columns: Columns to select; empty selects ``*``.
        maxrec: At most this many rows per service (MAXREC, so that a cut is reported
            as an overflow; ``TOP`` would cut silently).
        mode: TAP ``sync``/``async``/``auto``; None uses the engine's policy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    adql: str | None = None
    where: str | None = None
    position: Cone | None = None
    match: Literal["center", "footprint"] = "center"
    time: tuple[float, float] | None = None
    band: tuple[float, float] | None = None
    dataproduct_type: tuple[str, ...] = ()
    calib_level: tuple[int, ...] = ()
    collection: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    maxrec: int | None = Field(default=None, ge=0)
    mode: TapMode | None = None

    def __init__(self, adql: str | None = None, /, **data: Any) -> None:
        if adql is not None:
            if "adql" in data:
                raise UsageError("give the adql once")
            data["adql"] = adql
        if data.get("position") is not None:
            data["position"] = _cone(data["position"])
        data["time"] = _interval(data.get("time"), _mjd, "time")
        data["band"] = _interval(data.get("band"), _metres, "band")
        data["dataproduct_type"] = texts(data.get("dataproduct_type"), "dataproduct_type")
        data["calib_level"] = ints(data.get("calib_level"), "calib_level")
        data["collection"] = texts(data.get("collection"), "collection")
        data["columns"] = texts(data.get("columns"), "columns")
        for name in data["columns"]:
            identifier(name)  # control characters: refused now, not at query time
        for name in ("adql", "where"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise UsageError(f"{name} must be a non-empty ADQL string, got {value!r}")
        if data.get("match", "center") not in {"center", "footprint"}:
            raise UsageError(f"match must be 'center' or 'footprint', got {data['match']!r}")
        if data.get("adql") is not None:
            given = [n for n in _FILTERS if data.get(n) not in (None, ())]
            if given:
                raise UsageError(
                    f"give either adql or filters, not both (adql with {', '.join(given)})"
                )
        with _usage_errors("ObsCore query"):
            super().__init__(**data)

    def to_adql(self) -> str:
        """The ADQL every ObsCore service gets."""
        if self.adql is not None:
            return self.adql
        select = ", ".join(identifier(c) for c in self.columns) if self.columns else "*"
        conditions = self._conditions()
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        # S608: names go through identifier, values through literals.
        return f"SELECT {select} FROM {OBSCORE_TABLE}{where}"  # noqa: S608

    def _conditions(self) -> list[str]:
        found: list[str] = []
        if self.position is not None:
            p = self.position
            circle = f"CIRCLE('ICRS', {_num(p.ra)}, {_num(p.dec)}, {_num(p.radius)})"
            if self.match == "footprint":
                found.append(f"1 = INTERSECTS({circle}, s_region)")
            else:
                found.append(f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), {circle})")
        if self.time is not None:
            found += overlaps("t_min", "t_max", self.time)
        if self.band is not None:
            found += overlaps("em_min", "em_max", self.band)
        if self.dataproduct_type:
            found.append(equals_any("dataproduct_type", self.dataproduct_type))
        if self.calib_level:
            found.append(equals_any("calib_level", self.calib_level))
        if self.collection:
            found.append(equals_any("obs_collection", self.collection))
        if self.where is not None:
            found.append(f"({self.where})")
        return found

    def coverage_hint(self) -> tuple[float, float, float] | None:
        """``(ra, dec, radius)`` in degrees, for the registry coverage check.

        ``band`` (metres) and ``time`` (MJD) are read by `vosweep.registry.coverage` too.
        """
        p = self.position
        return None if p is None else (p.ra, p.dec, p.radius)

    def to_tap(self) -> TapQuery:
        """The `TapQuery` sent to each service."""
        return TapQuery(self.to_adql(), maxrec=self.maxrec, mode=self.mode)


_FILTERS = (
    "where",
    "position",
    "time",
    "band",
    "dataproduct_type",
    "calib_level",
    "collection",
    "columns",
)


def _num(value: float) -> str:
    return repr(float(value))


def _cone(value: Any) -> Cone:
    """A `Cone` from a Cone, ``(ra, dec, radius)`` or ``(SkyCoord, radius)``."""
    if isinstance(value, Cone):
        return value
    try:
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return Cone(ra=_degrees(value[0], "ra"), dec=_degrees(value[1], "dec"), radius=value[2])
        if isinstance(value, (tuple, list)) and len(value) == 2:
            ra, dec = _center_degrees(value[0])
            return Cone(ra=ra, dec=dec, radius=value[1])
    except UsageError as exc:
        raise UsageError(f"position: {exc}") from None
    raise UsageError(
        f"position must be a Cone, (ra, dec, radius) or (SkyCoord, radius), got {value!r}"
    )


# -- planning ------------------------------------------------------------------------------


def plan_obscore(
    services: Iterable[object],
    query: ObsCoreQuery,
    *,
    excluded: Mapping[str, str] | None = None,
) -> list[Targeted | Skipped]:
    """One target per TAP service, each asked *query* (pure: nothing is sent).

    Args:
        services: `Service` objects, TAP access URLs, registry results or resources
            (their TAP interfaces).
        query: What each is asked.
        excluded: Lower-case ivoids not to ask, with the reason (coverage misses): they
            are reported as skipped.

    Raises:
        UsageError: A service that is not TAP, or that cannot be a target.
    """
    tap = query.to_tap()
    excluded = excluded or {}
    targets: list[Targeted | Skipped] = []
    for position, target in enumerate(expand_targets(_as_list(services), Protocol.TAP)):
        if isinstance(target, Skipped):
            targets.append(target)
            continue
        if isinstance(target, Targeted):
            raise UsageError(f"service #{position}: give services, not Targeted")
        try:
            service = coerce_service(target, Protocol.TAP)
        except UsageError as exc:
            raise UsageError(f"service #{position}: {exc}") from None
        if service.protocol is not Protocol.TAP:
            raise UsageError(
                f"service #{position} ({service.label}) speaks {service.protocol.value}, not tap"
            )
        reason = excluded.get((service.ivoid or "").lower())
        targets.append(Targeted(service, tap) if reason is None else Skipped(service, reason))
    return targets


def _as_list(services: Iterable[object]) -> Iterable[object]:
    """Registry results pass whole (they expand themselves); a lone Service is one item."""
    if isinstance(services, (Service, str, RegistryResource)):
        return [services]
    if isinstance(services, RegistryResults):
        return services
    return list(services)


# -- running -------------------------------------------------------------------------------


async def obscore(
    engine: Engine,
    query: ObsCoreQuery,
    *,
    services: Iterable[object] | None = None,
    dedupe: bool = True,
    coverage: bool = True,
    **fanout_kwargs: Any,
) -> FanoutResult:
    """Ask every ObsCore service *query*; one table in the ObsCore schema, with provenance.

    Args:
        engine: An opened `Engine`.
        query: What to ask.
        services: Where to ask; None finds them in the registry (TAP services declaring
            the ObsCore data model; ``tap#aux`` collections are left out, their serving
            TAP service being found itself).
        dedupe: Drop records seen before (same publisher DID, else same access URL).
        coverage: For registry results: skip (as ``out of coverage``) the resources whose
            declared RegTAP 1.2 coverage the query's position, band or time misses.
        **fanout_kwargs: Passed to `Engine.fanout` (``errors``, ``deadline``, ``on_part``,
            ``checkpoint``).

    Returns:
        The fan-out's result, its table normalised (and de-duplicated, counted); with
        ``keep_rows=False`` (rows on disk), the result as stored, not normalised.
    """
    if services is None:
        services = await engine.discover(servicetype="tap", datamodel="obscore")
    excluded = await excluded_resources(engine.registry, services, query) if coverage else {}
    targets = plan_obscore(services, query, excluded=excluded)
    kwargs = with_kind(fanout_kwargs, "obscore", adql=query.to_adql(), dedupe=dedupe)
    result = await engine.fanout(targets, None, **kwargs)
    if fanout_kwargs.get("keep_rows") is False:
        # The rows stay on disk: reading them all back to normalise them would undo
        # that. `result.write` streams them; `finish_obscore` works on what fits.
        return result
    return await anyio.to_thread.run_sync(lambda: finish_obscore(result, dedupe=dedupe))


def finish_obscore(result: FanoutResult, *, dedupe: bool = True) -> FanoutResult:
    """*result* with its table in the ObsCore schema, duplicates dropped and counted.

    Also what finishes a fan-out resumed from a checkpoint. Blocking: call it in a worker
    thread from async code.
    """
    table = to_obscore_schema(result.table)
    dropped = 0
    if dedupe:
        table, dropped = drop_duplicate_records(table)
    return result.derive(table, duplicates=dropped)


# -- the merged table ----------------------------------------------------------------------


def to_obscore_schema(table: Table) -> Table:
    """*table* in the ObsCore 1.1 schema: standard columns first, in the standard's order.

    Columns are matched by name, case-insensitively (services that write ``S_RA`` and
    ``s_ra`` merge into two columns: they are joined again, the first non-masked value
    kept); each gets the standard dtype, unit (values converted when the service gave
    another unit of the same kind), UCD and utype. Missing standard columns are added,
    fully masked. Other columns follow, then vosweep's provenance columns.
    """
    by_lower: dict[str, list[str]] = {}
    for name in table.colnames:
        by_lower.setdefault(name.lower(), []).append(name)
    columns: list[Column | MaskedColumn] = []
    used: set[str] = set()
    for spec in OBSCORE_COLUMNS:
        names = by_lower.get(spec.name, [])
        used.update(names)
        if not names:
            columns.append(_missing(spec, len(table)))
        else:
            columns.append(_joined([_standard(table[name], spec) for name in names]))
    provenance = [n for n in table.colnames if n in PROVENANCE_COLUMNS or n.startswith("vosweep_")]
    extras = [n for n in table.colnames if n not in used and n not in provenance]
    out = Table(columns, meta=dict(table.meta), copy=False)
    for name in (*extras, *provenance):
        out[name] = table[name]
    return out


def _joined(columns: list[MaskedColumn]) -> MaskedColumn:
    """One column from spellings of the same one: each row's first unmasked value."""
    first = columns[0]
    if len(columns) == 1:
        return first
    values = np.ma.getdata(first)
    mask = np.ma.getmaskarray(first)
    for other in columns[1:]:
        data = np.ma.getdata(other)
        if data.dtype.kind != values.dtype.kind:
            values, data = values.astype(object), data.astype(object)
        values = np.where(mask, data, values)
        mask = mask & np.ma.getmaskarray(other)
    return MaskedColumn(
        values,
        name=first.name,
        mask=mask,
        unit=first.unit,
        description=first.description,
        meta=first.meta,
    )


def _missing(spec: ObsCoreColumn, n: int) -> MaskedColumn:
    dtype = "U1" if spec.dtype == "str" else spec.dtype
    return MaskedColumn(
        np.zeros(n, dtype=dtype),
        name=spec.name,
        mask=np.ones(n, dtype=bool),
        unit=spec.unit,
        meta={"ucd": spec.ucd, "utype": spec.utype},
    )


def _standard(column: Column, spec: ObsCoreColumn) -> MaskedColumn:
    data = column.data if isinstance(column, MaskedColumn) else np.ma.asarray(column.data)
    mask = np.ma.getmaskarray(data)
    values = np.asarray(data.data)
    if spec.unit is not None and column.unit is not None:
        try:
            factor = float(u.Unit(column.unit).to(spec.unit))
        except (u.UnitsError, ValueError, TypeError):
            factor = 1.0  # a unit of another kind: keep the values as the service wrote them
        if factor != 1.0 and values.dtype.kind in "fiu":
            values = values.astype("float64") * factor
    values = _as_dtype(values, mask, spec.dtype)
    return MaskedColumn(
        values,
        name=spec.name,
        mask=mask,
        unit=spec.unit,
        description=column.description,
        meta={"ucd": spec.ucd, "utype": spec.utype},
    )


def _as_dtype(values: np.ndarray, mask: np.ndarray, dtype: str) -> np.ndarray:
    """*values* as *dtype* where they convert; else as they are (services vary)."""
    if dtype == "str":
        if values.dtype.kind in "US":
            return values.astype(str)
        return np.array(["" if m else str(v) for v, m in zip(values, mask, strict=True)])
    target = np.dtype(dtype)
    if values.dtype == target:
        return values
    try:
        if target.kind in "iu" and values.dtype.kind == "f":
            filled = np.where(mask | ~np.isfinite(values), 0, values)
            if np.any(filled != np.round(filled)):
                return values  # fractions in an integer column: keep them rather than lose
            return filled.astype(target)
        filled_any = np.where(mask, np.zeros(1, dtype=target)[0], values)
        return filled_any.astype(target)
    except (TypeError, ValueError, OverflowError):
        return values


def drop_duplicate_records(
    table: Table, keys: Sequence[str | KeyGroup] = _DEDUPE_KEYS
) -> tuple[Table, int]:
    """*table* without records seen earlier, and how many were dropped.

    A record is a duplicate when its first non-empty key (publisher DID, else access URL,
    by default) was seen in a record kept before; masked and empty values never match.
    Keys may be column names or tuples of them (all must be non-empty).
    """
    groups: list[KeyGroup] = [(k,) if isinstance(k, str) else tuple(k) for k in keys]
    return drop_duplicates(table, groups)
