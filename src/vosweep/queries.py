"""What to ask: protocol-neutral query values, validated and normalised to degrees up front."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import astropy.units as u
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vosweep.errors import UsageError
from vosweep.services import Protocol

__all__ = [
    "Cone",
    "DatalinkQuery",
    "ImageQuery",
    "PerProtocol",
    "SpectrumQuery",
    "TapMode",
    "TapQuery",
    "query_protocols",
]


def _degrees(value: Any, what: str) -> float:
    """Turn a float, astropy `Angle`/`Quantity` or numeric string into degrees."""
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        try:
            return float(value.to_value("deg"))
        except (u.UnitsError, TypeError, ValueError) as exc:
            raise UsageError(f"{what} must be an angle, got {value!r}: {exc}") from None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number of degrees or an angle, got {value!r}") from None
    if not math.isfinite(result):
        raise UsageError(f"{what} must be finite, got {value!r}")
    return result


class Cone(BaseModel):
    """A cone on the sky: position (ICRS) and radius, all in degrees once built.

    Accepts plain degrees, astropy ``SkyCoord`` (converted to ICRS) for ``center``, and
    ``Angle``/``Quantity`` for every angle, as pyvo's SCS setters do::

        Cone(ra=83.6, dec=22.0, radius=0.1)
        Cone(SkyCoord.from_name("M1"), radius=6 * u.arcmin)

    Attributes:
        ra: Right ascension in degrees, normalised to [0, 360).
        dec: Declination in degrees, in [-90, 90].
        radius: Search radius in degrees, in (0, 180].
        verb: SCS verbosity (1 minimal columns, 2 default, 3 all), when set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Plain URL targets given with a cone are taken to be cone search services.
    default_protocol: ClassVar[Protocol] = Protocol.SCS

    ra: float
    dec: float
    radius: float = Field(gt=0, le=180)
    verb: int | None = Field(default=None, ge=1, le=3)

    def __init__(self, center: Any = None, /, **data: Any) -> None:
        if center is not None:
            if "ra" in data or "dec" in data:
                raise UsageError("give either a center or ra/dec, not both")
            data["ra"], data["dec"] = _center_degrees(center)
        with _usage_errors("cone"):
            super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _to_degrees(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("ra", "dec", "radius"):
                if key in data and data[key] is not None:
                    data[key] = _degrees(data[key], key)
            if "ra" in data and isinstance(data["ra"], float):
                data["ra"] = wrap_ra(data["ra"])
        return data

    @model_validator(mode="after")
    def _check_dec(self) -> Cone:
        if not -90.0 <= self.dec <= 90.0:
            raise ValueError(f"dec must be within [-90, 90] degrees, got {self.dec}")
        return self


def wrap_ra(ra: float) -> float:
    """*ra* in [0, 360): a tiny negative value wraps to 360.0 in floating point, not below it."""
    wrapped = ra % 360.0
    return 0.0 if wrapped >= 360.0 else wrapped


def _center_degrees(center: Any) -> tuple[float, float]:
    """(ra, dec) in degrees of a SkyCoord or an (ra, dec) pair."""
    if hasattr(center, "icrs") and hasattr(center, "frame"):
        icrs = center.icrs
        if not icrs.isscalar:
            raise UsageError("the cone center must be a single position, not an array SkyCoord")
        return float(icrs.ra.deg), float(icrs.dec.deg)
    if isinstance(center, (tuple, list)) and len(center) == 2:
        return _degrees(center[0], "ra"), _degrees(center[1], "dec")
    raise UsageError(f"cone center must be a SkyCoord or an (ra, dec) pair, got {center!r}")


# --- images, spectra, tables ------------------------------------------------------------


def spectral_value(value: Any, what: str, unit: Any, kind: str) -> float:
    """A non-negative spectral value in *unit* (a plain number is taken to be in it).

    Any spectral quantity converts (wavelength, frequency, energy, wavenumber); *kind*
    names what *unit* measures, for the errors ("wavelength", "frequency").
    """
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        try:
            result = float(value.to_value(unit, equivalencies=u.spectral()))
        except (u.UnitsError, TypeError, ValueError) as exc:
            raise UsageError(f"{what} must be a spectral quantity ({kind} wanted): {exc}") from None
    else:
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"{what} must be {unit} or a spectral quantity, got {value!r}"
            ) from None
    if math.isnan(result) or result < 0:
        raise UsageError(f"{what} must be a non-negative {kind}, got {value!r}")
    return result


def _metres(value: Any, what: str) -> float:
    """A wavelength in metres from a number (metres) or any spectral `Quantity`.

    Frequencies and energies are accepted too (``5 * u.GHz``), as pyvo's SIA2 ``band`` is.
    """
    return spectral_value(value, what, u.m, "wavelength")


def _mjd(value: Any, what: str) -> float:
    """A Modified Julian Date from an astropy `Time`, a datetime, an ISO string or a number."""
    from astropy.time import Time  # noqa: PLC0415 - astropy.time is slow to import

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        try:
            result = float(Time(value).mjd)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"{what} must be a time (Time, datetime, ISO string, MJD): {exc}"
            ) from None
    if math.isnan(result):
        raise UsageError(f"{what} must not be NaN")
    return result


def interval_ends(value: Any, what: str) -> tuple[Any, Any]:
    """The two ends of an interval as given; None marks an open end.

    A pair (list, tuple, 2-element array or quantity), or one value standing for ``(v, v)``.
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UsageError(f"{what} must be a (low, high) pair, got {len(value)} values")
        return value[0], value[1]
    if hasattr(value, "shape") and getattr(value, "shape", ()) == (2,):
        return value[0], value[1]
    return value, value


def _interval(value: Any, convert: Any, what: str) -> tuple[float, float] | None:
    """``(low, high)`` with None for an open end, or one value meaning ``(v, v)``."""
    if value is None:
        return None
    low, high = interval_ends(value, what)
    lo = -math.inf if low is None else convert(low, what)
    hi = math.inf if high is None else convert(high, what)
    if convert is _metres and _inverse_spectral(low, high):
        # A frequency or energy interval runs the other way in wavelength.
        lo, hi = (0.0 if high is None else hi), (math.inf if low is None else lo)
    if lo > hi:
        raise UsageError(f"{what} interval is empty: {lo} > {hi}")
    return lo, hi


def _inverse_spectral(*ends: Any) -> bool:
    """Whether the given interval ends are frequencies or energies (not lengths)."""
    units = [end.unit for end in ends if end is not None and hasattr(end, "unit")]
    return bool(units) and not any(unit.is_equivalent(u.m) for unit in units)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        items = tuple(str(v) for v in value)
    except TypeError:
        raise UsageError(f"{what} must be a string or a list of strings, got {value!r}") from None
    return items


#: Parameters vosweep sets itself: custom ``params`` may not override them.
_RESERVED = frozenset({"REQUEST", "VERSION", "RESPONSEFORMAT"})
_TAP_RESERVED = frozenset(
    {"REQUEST", "LANG", "QUERY", "MAXREC", "UPLOAD", "RESPONSEFORMAT", "FORMAT", "PHASE"}
)


@contextmanager
def _usage_errors(what: str) -> Iterator[None]:
    """Pydantic's validation errors as the `UsageError` callers catch, naming *what*."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(f"invalid {what}: {exc}") from None


def _extra_params(value: Any) -> tuple[tuple[str, str], ...]:
    """Custom service parameters, passed through as given (services define their own)."""
    if not value:
        return ()
    if not isinstance(value, dict):
        raise UsageError(f"params must be a mapping of parameter names to values, got {value!r}")
    pairs: list[tuple[str, str]] = []
    for name, raw in value.items():
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"parameter names must be non-empty strings, got {name!r}")
        values = raw if isinstance(raw, (list, tuple)) else [raw]
        pairs.extend((name, _param_text(v)) for v in values)
    return tuple(pairs)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class _Positional(BaseModel):
    """A position plus a search size, shared by image and spectrum queries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ra: float | None = None
    dec: float | None = None

    def _init_position(self, center: Any, data: dict[str, Any]) -> dict[str, Any]:
        if center is not None:
            if "ra" in data or "dec" in data:
                raise UsageError("give either a center or ra/dec, not both")
            data["ra"], data["dec"] = _center_degrees(center)
        for key in ("ra", "dec"):
            if data.get(key) is not None:
                data[key] = _degrees(data[key], key)
        if data.get("ra") is not None:
            data["ra"] = wrap_ra(data["ra"])
        if (data.get("ra") is None) != (data.get("dec") is None):
            raise UsageError("give both ra and dec (or a center), not one of them")
        if data.get("dec") is not None and not -90.0 <= data["dec"] <= 90.0:
            raise UsageError(f"dec must be within [-90, 90] degrees, got {data['dec']}")
        return data

    @property
    def has_position(self) -> bool:
        """Whether a position was given."""
        return self.ra is not None and self.dec is not None


class ImageQuery(_Positional):
    """An image search, for SIA 1.0 and SIA 2.0 services (each gets its own parameters).

    ::

        ImageQuery(SkyCoord.from_name("M51"), size=0.2)  # SIA1 POS/SIZE, SIA2 CIRCLE
        ImageQuery((202.5, 47.2), radius=5 * u.arcmin, band=(400 * u.nm, 700 * u.nm),
                   time=(Time("2020-01-01"), None), collection="HST")

    Angles are degrees or astropy angles; ``band`` takes wavelengths (or frequencies,
    energies) and ``time`` takes `Time`, datetimes, ISO strings or MJD numbers; ``None``
    leaves an end of an interval open. SIA1 services get POS, SIZE, INTERSECT, FORMAT and
    VERB; SIA2 services get every constraint given (POS, BAND, TIME, POL, COLLECTION ...).
    A constraint SIA1 cannot express (band, time, polygon, ...) makes SIA1 services skip,
    unless ``sia1_lenient=True`` sends them the position alone.

    Attributes:
        ra: Centre right ascension (degrees).
        dec: Centre declination (degrees).
        size: Full width and height of the region (degrees); SIA1 SIZE.
        radius: Radius of the region (degrees); SIA2 CIRCLE radius. Either may be given:
            the other is derived (a circle in the square, the square around the circle).
        polygon: Vertices (ra, dec) in degrees of a polygon (SIA2 only).
        band: Wavelength interval in metres.
        time: Time interval as MJD.
        pol: Polarisation states (SIA2 POL).
        collection, facility, instrument, dptype, target, id: SIA2 string constraints
            (each may list several values: OR-ed by the service).
        calib: Calibration levels (SIA2 CALIB).
        fov, spatres, exptime: SIA2 numeric intervals (degrees, arcseconds as SIA2
            and ObsCore's ``s_resolution`` use, seconds); angles and durations accepted.
        format: Image formats (SIA1 FORMAT, SIA2 FORMAT), e.g. ``"image/fits"``.
        intersect: SIA1 INTERSECT (COVERS, ENCLOSED, CENTER, OVERLAPS).
        verb: SIA1 VERB (0-3).
        maxrec: At most this many records (MAXREC).
        params: Custom service parameters, passed through.
        sia1_lenient: Send SIA1 services the position alone when other constraints exist.
    """

    default_protocol: ClassVar[Protocol] = Protocol.SIA
    #: Registry interfaces an image query goes to.
    protocols: ClassVar[frozenset[Protocol]] = frozenset({Protocol.SIA, Protocol.SIA2})

    size: tuple[float, float] | None = None
    radius: float | None = Field(default=None, gt=0, le=180)
    polygon: tuple[tuple[float, float], ...] | None = None
    band: tuple[float, float] | None = None
    time: tuple[float, float] | None = None
    pol: tuple[str, ...] = ()
    collection: tuple[str, ...] = ()
    facility: tuple[str, ...] = ()
    instrument: tuple[str, ...] = ()
    dptype: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    id: tuple[str, ...] = ()
    calib: tuple[int, ...] = ()
    fov: tuple[float, float] | None = None
    spatres: tuple[float, float] | None = None
    exptime: tuple[float, float] | None = None
    format: tuple[str, ...] = ()
    intersect: str | None = None
    verb: int | None = Field(default=None, ge=0, le=3)
    maxrec: int | None = Field(default=None, ge=0)
    params: tuple[tuple[str, str], ...] = ()
    sia1_lenient: bool = False

    def __init__(self, center: Any = None, /, **data: Any) -> None:
        data = self._init_position(center, data)
        if "size" in data and data["size"] is not None:
            data["size"] = _size(data["size"])
        if data.get("radius") is not None:
            data["radius"] = _degrees(data["radius"], "radius")
        if data.get("polygon") is not None:
            data["polygon"] = _polygon(data["polygon"])
        data["band"] = _interval(data.get("band"), _metres, "band")
        data["time"] = _interval(data.get("time"), _mjd, "time")
        data["fov"] = _interval(data.get("fov"), _degrees, "fov")
        data["spatres"] = _interval(data.get("spatres"), _arcsec, "spatres")
        data["exptime"] = _interval(data.get("exptime"), _seconds, "exptime")
        for key in ("pol", "collection", "facility", "instrument", "dptype", "target", "id"):
            data[key] = _strings(data.get(key), key)
        data["format"] = _strings(data.get("format"), "format")
        calib = data.get("calib")
        data["calib"] = (
            ()
            if calib is None
            else tuple(int(c) for c in ((calib,) if isinstance(calib, int) else calib))
        )
        if data.get("intersect") is not None:
            value = str(data["intersect"]).upper()
            if value not in {"COVERS", "ENCLOSED", "CENTER", "OVERLAPS"}:
                raise UsageError(
                    f"intersect must be COVERS, ENCLOSED, CENTER or OVERLAPS, got {value!r}"
                )
            data["intersect"] = value
        data["params"] = _extra_params(data.get("params"))
        _check_reserved(data["params"])
        with _usage_errors("image query"):
            super().__init__(**data)
        if not self.has_position and self.polygon is None and not self._sia2_constraints():
            raise UsageError("an image query needs a position, a polygon or another constraint")
        if self.has_position and self.size is None and self.radius is None:
            raise UsageError("give a size or a radius with the position")

    def _sia2_constraints(self) -> bool:
        return any(
            (
                self.band,
                self.time,
                self.pol,
                self.collection,
                self.facility,
                self.instrument,
                self.dptype,
                self.target,
                self.id,
                self.calib,
                self.fov,
                self.spatres,
                self.exptime,
            )
        )

    @property
    def sia1_unsupported(self) -> list[str]:
        """The constraints an SIA 1.0 service cannot express."""
        return [
            name
            for name in (
                "polygon",
                "band",
                "time",
                "pol",
                "collection",
                "facility",
                "instrument",
                "dptype",
                "target",
                "id",
                "calib",
                "fov",
                "spatres",
                "exptime",
            )
            if getattr(self, name)
        ]

    @property
    def full_size(self) -> tuple[float, float] | None:
        """Width and height in degrees (from size, else twice the radius)."""
        if self.size is not None:
            return self.size
        if self.radius is not None:
            return (2 * self.radius, 2 * self.radius)
        return None

    @property
    def circle_radius(self) -> float | None:
        """The circle radius in degrees (from radius, else half the larger size)."""
        if self.radius is not None:
            return self.radius
        if self.size is not None:
            return max(self.size) / 2
        return None


class SpectrumQuery(_Positional):
    """A spectrum search for SSA 1.x services (POS, SIZE, BAND, TIME, FORMAT).

    ::

        SpectrumQuery(SkyCoord.from_name("Vega"), diameter=0.01,
                      band=(380 * u.nm, 900 * u.nm), time=("2010-01-01", None))

    Attributes:
        ra: Centre right ascension (degrees).
        dec: Centre declination (degrees).
        diameter: SSA SIZE, the diameter of the search region (degrees); ``radius`` is
            accepted and doubled.
        band: Wavelength interval in metres (sent as SSA's ``low/high``).
        time: Time interval as MJD (sent as ISO 8601 ``start/end``).
        format: SSA FORMAT values (``all``, ``fits``, ``votable``, MIME types ...).
        maxrec: At most this many records (MAXREC).
        params: Custom service parameters, passed through.
    """

    default_protocol: ClassVar[Protocol] = Protocol.SSA

    diameter: float | None = Field(default=None, gt=0, le=360)
    band: tuple[float, float] | None = None
    time: tuple[float, float] | None = None
    format: tuple[str, ...] = ()
    maxrec: int | None = Field(default=None, ge=0)
    params: tuple[tuple[str, str], ...] = ()

    def __init__(self, center: Any = None, /, **data: Any) -> None:
        data = self._init_position(center, data)
        radius = data.pop("radius", None)
        if radius is not None:
            if data.get("diameter") is not None:
                raise UsageError("give either a diameter or a radius, not both")
            data["diameter"] = 2 * _degrees(radius, "radius")
        elif data.get("diameter") is not None:
            data["diameter"] = _degrees(data["diameter"], "diameter")
        data["band"] = _interval(data.get("band"), _metres, "band")
        data["time"] = _interval(data.get("time"), _mjd, "time")
        data["format"] = _strings(data.get("format"), "format")
        data["params"] = _extra_params(data.get("params"))
        _check_reserved(data["params"])
        with _usage_errors("spectrum query"):
            super().__init__(**data)
        if not self.has_position and self.band is None and self.time is None and not self.params:
            raise UsageError("a spectrum query needs a position or another constraint")


def _arcsec(value: Any, what: str) -> float:
    """Arcseconds from a number (arcsec) or an angle."""
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        return _degrees(value, what) * 3600.0
    return _seconds(value, what)  # a plain number, checked the same way


def _seconds(value: Any, what: str) -> float:
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        try:
            return float(value.to_value(u.s))
        except (u.UnitsError, TypeError, ValueError) as exc:
            raise UsageError(f"{what} must be a duration: {exc}") from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be seconds or a duration, got {value!r}") from None


def _size(value: Any) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UsageError(f"size must be one angle or (width, height), got {value!r}")
        width, height = (_degrees(v, "size") for v in value)
    else:
        width = height = _degrees(value, "size")
    if not (0 < width <= 360 and 0 < height <= 180):
        raise UsageError(f"size must be positive and at most 360 x 180 degrees, got {value!r}")
    return width, height


def _polygon(value: Any) -> tuple[tuple[float, float], ...]:
    try:
        vertices = tuple((_degrees(ra, "ra"), _degrees(dec, "dec")) for ra, dec in value)
    except (TypeError, ValueError):
        raise UsageError(
            f"polygon must be a sequence of (ra, dec) vertices, got {value!r}"
        ) from None
    if len(vertices) < 3:
        raise UsageError(f"a polygon needs at least 3 vertices, got {len(vertices)}")
    return vertices


def _check_reserved(
    params: tuple[tuple[str, str], ...], reserved: frozenset[str] = _RESERVED
) -> None:
    clash = sorted({name.upper() for name, _ in params} & reserved)
    if clash:
        raise UsageError(f"params must not set {', '.join(clash)}: vosweep sets them")


#: How a TAP query is run: ``sync``, ``async`` (UWS), or ``auto`` (sync, and async when
#: a sync attempt runs out of time: the query is long, and async jobs are meant for that).
TapMode = Literal["sync", "async", "auto"]


class TapQuery(BaseModel):
    """An ADQL query for TAP services, run sync or async (UWS), with table uploads.

    ::

        TapQuery("SELECT TOP 100 * FROM ivoa.obscore WHERE dataproduct_type = 'image'")
        TapQuery("SELECT * FROM cat.sources AS s JOIN TAP_UPLOAD.mine AS m ON ...",
                 uploads={"mine": my_table}, mode="async")

    Attributes:
        adql: The ADQL query.
        maxrec: At most this many rows (MAXREC); None leaves the service's default.
        mode: ``sync``, ``async`` or ``auto``; None uses the engine's `TapPolicy.mode`.
        uploads: Tables to upload (``TAP_UPLOAD.<name>``), astropy tables. Large ones are
            sent in batches of `TapPolicy.upload_batch_rows` rows, one query each, and the
            results stacked: right for the usual one-row-in, rows-out joins. Services
            that do not declare upload support are skipped.
        params: Custom service parameters, passed through.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    default_protocol: ClassVar[Protocol] = Protocol.TAP

    adql: str
    maxrec: int | None = Field(default=None, ge=0)
    mode: TapMode | None = None
    uploads: tuple[tuple[str, Any], ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    def __init__(self, adql: str | None = None, /, **data: Any) -> None:
        if adql is not None:
            if "adql" in data:
                raise UsageError("give the ADQL once")
            data["adql"] = adql
        text = data.get("adql")
        if not isinstance(text, str) or not text.strip():
            raise UsageError("a TAP query needs a non-empty ADQL string")
        uploads = data.get("uploads") or {}
        if not isinstance(uploads, dict):
            raise UsageError("uploads must be a mapping of table names to astropy tables")
        checked = []
        for name, table in uploads.items():
            if not isinstance(name, str) or not _UPLOAD_NAME.fullmatch(name):
                raise UsageError(
                    f"upload name {name!r} must be a simple ADQL identifier (letters, digits, _)"
                )
            if not (hasattr(table, "colnames") and hasattr(table, "__len__")):
                raise UsageError(
                    f"upload {name!r} must be an astropy Table, got {type(table).__name__}"
                )
            checked.append((name, table))
        data["uploads"] = tuple(checked)
        data["params"] = _extra_params(data.get("params"))
        _check_reserved(data["params"], _TAP_RESERVED)
        with _usage_errors("TAP query"):
            super().__init__(**data)


_UPLOAD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class DatalinkQuery(BaseModel):
    """Ask DataLink ``{links}`` endpoints for the links of datasets, keeping some semantics.

    Usually built by `Engine.datalinks` from a result's datalink access URLs (which carry
    their ``ID``); ``ids`` adds ``ID`` parameters (DataLink takes several at once).

    Attributes:
        semantics: Keep links with these semantics (``#preview``, ``#this``, or full
            vocabulary URIs); empty keeps every link.
        include_narrower: Also keep the narrower terms of the DataLink core vocabulary
            (``#preview`` keeps ``#thumbnail``), as pyvo's ``bysemantics`` does.
        ids: Dataset identifiers to send as ``ID`` parameters.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_protocol: ClassVar[Protocol] = Protocol.DATALINK

    semantics: tuple[str, ...] = ()
    include_narrower: bool = True
    ids: tuple[str, ...] = ()

    def __init__(self, **data: Any) -> None:
        data["semantics"] = tuple(
            s if s.startswith(("#", "http://", "https://")) else f"#{s}"
            for s in _strings(data.get("semantics"), "semantics")
        )
        data["ids"] = _strings(data.get("ids"), "ids")
        super().__init__(**data)


class PerProtocol(BaseModel):
    """One query per protocol, for a fan-out over services of several protocols.

    Each service gets the query of its protocol; services of a protocol without one are
    skipped (with the reason)::

        PerProtocol(scs=cone, sia=ImageQuery(...), ssa=SpectrumQuery(...),
                    tap=TapQuery("SELECT ... FROM ivoa.obscore WHERE ..."))

    ``sia2`` defaults to the ``sia`` query, since `ImageQuery` speaks both.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    scs: Any = None
    sia: Any = None
    sia2: Any = None
    ssa: Any = None
    tap: Any = None

    def for_protocol(self, protocol: Protocol) -> object | None:
        """The query for *protocol*'s services, or None."""
        query: object | None = getattr(self, protocol.value, None)
        if query is None and protocol is Protocol.SIA2:
            query = self.sia
        return query

    @property
    def protocols(self) -> frozenset[Protocol]:
        """The protocols given a query."""
        return frozenset(p for p in Protocol if self.for_protocol(p) is not None)


def query_protocols(query: object) -> frozenset[Protocol] | None:
    """The protocols whose registered interfaces a query goes to, when given registry results.

    A `Cone` goes to cone searches only (SIA and SSA services given explicitly answer it
    too, but a registry search's images and spectra mixed into a catalogue table would
    surprise); an `ImageQuery` to SIA 1 and 2.
    """
    fits: frozenset[Protocol] | None = getattr(query, "protocols", None)
    if fits is not None:
        return fits
    default = getattr(query, "default_protocol", None)
    return frozenset({default}) if isinstance(default, Protocol) else None
