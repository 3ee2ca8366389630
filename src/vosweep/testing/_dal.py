"""The SIA 1.0, SIA 2.0 and SSA 1.1 side of the simulator: a seeded sky of observations.

Every simulated image or spectrum service owns an archive that exists only as a function.
The sky is cut into cells (5-degree declination bands split in right ascension) and the
observations of one cell are drawn from a generator seeded by (kind, fleet seed, service
index, cell). A query draws the cells its region can touch and filters them exactly, so:

* answers agree across queries: an ID one query finds, the next finds too, and DataLink
  resolves it;
* every constraint really filters (INTERSECT, BAND, TIME, POL, COLLECTION...);
* `expected_images` and `expected_spectra` tell a test what a healthy service returns,
  without a request.

Documents are built by pure functions (no I/O), as in `vosweep.testing._scs`. The handlers'
``serve_subpath`` serves what the records point at, below each service's base path:
``/datalink`` (DataLink 1.1 {links}), ``/data/{id}.fits`` (``.vot`` for VOTable spectra),
``/preview/{id}.png`` and the VOSI ``/capabilities`` and ``/availability``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
from aiohttp import web
from astropy.io import fits

from vosweep.errors import UsageError
from vosweep.services import Protocol
from vosweep.testing._profiles import Behaviour, ServiceSpec
from vosweep.testing._votables import (
    Document,
    escape_attr,
    escape_text,
    format_rows,
    query_error_document,
)

if TYPE_CHECKING:
    from vosweep.testing._sim import Exchange

__all__ = [
    "DATALINK_TYPE",
    "Circle",
    "DalParameterError",
    "Interval",
    "ParamValues",
    "Polygon",
    "Range",
    "Sia2Handler",
    "Sia2Query",
    "SiaHandler",
    "SiaQuery",
    "SimRecord",
    "SsaHandler",
    "SsaQuery",
    "availability_document",
    "capabilities_document",
    "datalink_document",
    "expected_images",
    "expected_spectra",
    "fits_image",
    "fits_spectrum",
    "parse_interval",
    "parse_shape",
    "parse_sia2_query",
    "parse_sia_query",
    "parse_ssa_query",
    "parse_ssa_range",
    "png_preview",
    "votable_spectrum",
]

_F = npt.NDArray[np.float64]
_I = npt.NDArray[np.int64]
_B = npt.NDArray[np.bool_]
_Kind = Literal["img", "spec"]

#: The MIME type of DataLink {links} documents (and of records that point at one).
DATALINK_TYPE = "application/x-votable+xml;content=datalink"
_DATALINK_STANDARD = "ivo://ivoa.net/std/DataLink#links-1.1"
_SSA_VOTABLE = "application/x-votable+xml"
#: Height of the declination bands the sky is cut into (degrees); each band is split into
#: cells about as wide, so a small query draws a handful of cells.
_CELL_DEG = 5.0
#: Observations per square degree for each source per square degree of the profile: image
#: and spectrum archives are much sparser than catalogues.
_OBS_PER_SOURCE = 0.002
#: Upper bound on observations per square degree, so that a query without a position (a
#: whole-sky scan) stays bounded: about 800,000 observations drawn at most.
_MAX_OBS_PER_DEG2 = 20.0
#: Observation dates (MJD): 1998 to 2024.
_MJD_SPAN = (51000.0, 60500.0)
#: SSA diameter when a request gives POS without SIZE (degrees).
_SSA_DEFAULT_SIZE = 0.1
#: SIA 1.0 regions are gnomonic rectangles: wider ones are cut to this width (degrees).
_MAX_REGION_DEG = 170.0
#: SIA 2.0 polygons must lie within this distance of their centre (degrees).
_MAX_POLYGON_RADIUS = 80.0
#: Cosine of 89 degrees: footprints with a corner further than this from a region's centre
#: cannot be projected onto its tangent plane (and cannot meet the region either).
_FRONT = math.cos(math.radians(89.0))
#: Cells drawn per step of a scan (the scan stops once it holds more than its limit).
_SCAN_CHUNK = 64
_EPS = 1e-12
_VOTABLE_TYPES = frozenset(
    {"votable", "application/x-votable+xml", "text/xml", "application/x-votable"}
)
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
_LOCAL_ID = re.compile(r"(img|spec)-(\d+)-(\d+)")
_DATA_FILE = re.compile(r"/data/((?:img|spec)-\d+-\d+)(\.aux|\.raw)?\.(fits|vot)")
_PREVIEW_FILE = re.compile(r"/preview/((?:img|spec)-\d+-\d+)\.png")
_TARGET_FIELD = re.compile(r"SIMFIELD-(\d+)")
_TARGET_STAR = re.compile(r"SIMSTAR-(\d+)-(\d+)")
#: ObsCore polarisation states (SIA 2.0 POL values).
_POL_STATES = frozenset(
    {"I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX", "POLI", "POLA"}
)
#: The polarisation lists an image may carry (index 0: none).
_POL_LISTS: tuple[tuple[str, ...], ...] = ((), ("I",), ("I", "Q", "U"))
_POL_SHARES = (0.8, 0.05, 0.15)


class DalParameterError(ValueError):
    """A SIA, SSA or DataLink request is missing a parameter or has an invalid one."""


# -- instruments ---------------------------------------------------------------------------

#: Photometric filters of the simulated imagers: (name, lower, upper wavelength in metres).
_FILTERS: tuple[tuple[str, float, float], ...] = (
    ("FUV", 1.34e-7, 1.81e-7),
    ("NUV", 1.77e-7, 2.83e-7),
    ("u", 3.2e-7, 4.0e-7),
    ("g", 4.0e-7, 5.5e-7),
    ("r", 5.5e-7, 6.9e-7),
    ("i", 6.9e-7, 8.2e-7),
    ("z", 8.2e-7, 9.2e-7),
    ("J", 1.1e-6, 1.4e-6),
    ("H", 1.5e-6, 1.8e-6),
    ("Ks", 2.0e-6, 2.3e-6),
    ("W1", 2.8e-6, 3.8e-6),
    ("W2", 4.1e-6, 5.2e-6),
)
_FILTER_INDEX = {name: i for i, (name, _, _) in enumerate(_FILTERS)}


@dataclass(frozen=True, slots=True)
class _Imager:
    name: str
    facility: str
    naxis: tuple[int, int]
    scale: float  # degrees per pixel
    resolution: float  # arcsec
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Spectrograph:
    name: str
    facility: str
    em_min: float  # metres
    em_max: float
    res_power: float
    length: int  # samples
    aperture: float  # arcsec


_IMAGERS = (
    _Imager("SimCam", "Sim 2.5m Telescope", (2048, 2048), 1.0e-4, 0.9, ("u", "g", "r", "i", "z")),
    _Imager("WideSim", "Sim 1m Schmidt", (4096, 4096), 1.0e-4, 2.0, ("g", "r", "i")),
    _Imager("SimIR", "Sim 4m Telescope", (2048, 2048), 5.0e-5, 0.7, ("J", "H", "Ks")),
    _Imager("SimUV", "Sim Space Telescope", (1024, 1024), 5.0e-5, 0.3, ("FUV", "NUV")),
    _Imager("SimMIR", "Sim Space Telescope", (1024, 2048), 1.5e-4, 2.5, ("W1", "W2")),
)
_SPECTROGRAPHS = (
    _Spectrograph("SimSpec", "Sim 2.5m Telescope", 3.8e-7, 9.2e-7, 2000.0, 4000, 3.0),
    _Spectrograph("SimEchelle", "Sim 4m Telescope", 3.7e-7, 6.9e-7, 40000.0, 8000, 1.5),
    _Spectrograph("SimNIRSpec", "Sim 4m Telescope", 9.5e-7, 2.45e-6, 3000.0, 2048, 1.0),
    _Spectrograph("SimUVSpec", "Sim Space Telescope", 1.15e-7, 3.2e-7, 10000.0, 4096, 0.5),
)


def _half_diagonal(width: float, height: float) -> float:
    """Angular distance (degrees) from the centre to a corner of a gnomonic rectangle."""
    tan_x, tan_y = math.tan(math.radians(width / 2)), math.tan(math.radians(height / 2))
    return math.degrees(math.atan(math.hypot(tan_x, tan_y)))


#: How far (degrees) any image reaches from its centre: the margin around query regions.
_FOOTPRINT_RADIUS = max(
    _half_diagonal(i.naxis[0] * i.scale, i.naxis[1] * i.scale) for i in _IMAGERS
)
#: The margin (degrees) by which a query region grows when choosing the cells to draw.
_MARGIN = _FOOTPRINT_RADIUS + 0.01


# -- request parameters --------------------------------------------------------------------

#: Parameters as tests and handlers give them: one value or several per name (a
#: ``multidict.MultiDict`` qualifies, its repeated keys included).
ParamValues = Mapping[str, str] | Mapping[str, str | Sequence[str]]


class _Params:
    """Request parameters by upper-cased name, every value kept in order."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            self._values.setdefault(key.upper(), []).append(value)

    @classmethod
    def of(cls, params: ParamValues | _Params) -> _Params:
        if isinstance(params, _Params):
            return params
        items: list[tuple[str, str]] = []
        for key, value in params.items():
            if isinstance(value, str):
                items.append((key, value))
            else:
                items.extend((key, v) for v in value)
        return cls(items)

    def first(self, name: str) -> str | None:
        """The first value of *name* with text in it, stripped."""
        for value in self._values.get(name, ()):
            if value.strip():
                return value.strip()
        return None

    def all(self, name: str) -> list[str]:
        """Every non-blank value of *name*, stripped."""
        return [v.strip() for v in self._values.get(name, ()) if v.strip()]


def _number(text: str, name: str, *, finite: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DalParameterError(f"{name}: {text!r} is not a number") from None
    if math.isnan(value) or (finite and math.isinf(value)):
        raise DalParameterError(f"{name}: {text!r} is not a finite number")
    return value


def _in_range(value: float, low: float, high: float, what: str) -> float:
    if not low <= value <= high:
        raise DalParameterError(f"{what} {value:g} is outside [{low:g}, {high:g}]")
    return value


def _count(params: _Params, name: str) -> int | None:
    raw = params.first(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DalParameterError(f"{name}={raw!r} is not an integer") from None
    if value < 0:
        raise DalParameterError(f"{name}={raw!r} must not be negative")
    return value


def _format_tokens(params: _Params) -> tuple[str, ...]:
    """FORMAT values split on commas (SIA 1.0 and SSA allow lists), blanks dropped."""
    return tuple(t.strip() for raw in params.all("FORMAT") for t in raw.split(",") if t.strip())


def _mime(text: str) -> str:
    """A MIME type without parameters or case, for comparisons."""
    return text.split(";", 1)[0].strip().lower()


def _check_response_format(params: _Params) -> None:
    raw = params.first("RESPONSEFORMAT")
    if raw is not None and _mime(raw) not in _VOTABLE_TYPES:
        raise DalParameterError(f"RESPONSEFORMAT={raw!r} is not supported (VOTable only)")


# -- shapes and intervals --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval; either end may be infinite (DALI ``-Inf`` / ``+Inf``)."""

    low: float
    high: float

    def overlaps(self, low: _F, high: _F) -> _B:
        """Which of the intervals [*low*, *high*] meet this one."""
        return (low <= self.high) & (high >= self.low)

    def contains(self, values: _F) -> _B:
        """Which *values* lie in this interval."""
        return (values >= self.low) & (values <= self.high)


@dataclass(frozen=True, slots=True)
class Circle:
    """A DALI circle: centre and radius in degrees."""

    ra: float
    dec: float
    radius: float


@dataclass(frozen=True, slots=True)
class Range:
    """A DALI range: right ascension and declination intervals in degrees.

    ``ra_min > ra_max`` means the range wraps through RA 0.
    """

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    @property
    def full_ra(self) -> bool:
        """Whether the range spans every right ascension."""
        return self.ra_min <= 0.0 and self.ra_max >= 360.0


@dataclass(frozen=True, slots=True)
class Polygon:
    """A DALI polygon: vertices (ra, dec) in degrees, joined by great circles."""

    vertices: tuple[tuple[float, float], ...]

    def vectors(self) -> _F:
        """The vertices as unit vectors, shape (n, 3)."""
        ra, dec = zip(*self.vertices, strict=True)
        return _unit(np.array(ra), np.array(dec))


Shape = Circle | Range | Polygon


def _ra(value: float, what: str) -> float:
    return _in_range(value, 0.0, 360.0, what) % 360.0


def _dec(value: float, what: str) -> float:
    return _in_range(value, -90.0, 90.0, what)


def parse_shape(text: str) -> Shape:
    """Read one DALI shape (``CIRCLE ra dec r``, ``RANGE ...``, ``POLYGON ...``).

    Raises:
        DalParameterError: On an unknown shape, a wrong number of values or values out
            of range (a polygon reaching more than 80 degrees from its centre included).
    """
    kind, *rest = text.split() or [""]
    kind = kind.upper()
    if kind == "CIRCLE":
        if len(rest) != 3:
            raise DalParameterError(f"POS: CIRCLE takes ra dec radius, got {text!r}")
        ra, dec, radius = (_number(v, "POS") for v in rest)
        return Circle(
            _ra(ra, "POS right ascension"),
            _dec(dec, "POS declination"),
            _in_range(radius, 0.0, 180.0, "POS radius"),
        )
    if kind == "RANGE":
        if len(rest) != 4:
            raise DalParameterError(f"POS: RANGE takes ra1 ra2 dec1 dec2, got {text!r}")
        ra1, ra2, dec1, dec2 = (_number(v, "POS", finite=False) for v in rest)
        ra1 = 0.0 if ra1 == -math.inf else _in_range(ra1, 0.0, 360.0, "POS right ascension")
        ra2 = 360.0 if ra2 == math.inf else _in_range(ra2, 0.0, 360.0, "POS right ascension")
        dec1, dec2 = max(dec1, -90.0), min(dec2, 90.0)
        if dec1 > dec2 or dec1 > 90.0 or dec2 < -90.0:
            raise DalParameterError(f"POS: empty declination range in {text!r}")
        return Range(ra1, ra2, dec1, dec2)
    if kind == "POLYGON":
        if len(rest) < 6 or len(rest) % 2:
            raise DalParameterError(f"POS: POLYGON takes 3 or more ra dec pairs, got {text!r}")
        values = [_number(v, "POS") for v in rest]
        vertices = tuple(
            (_ra(values[i], "POS right ascension"), _dec(values[i + 1], "POS declination"))
            for i in range(0, len(values), 2)
        )
        vectors = Polygon(vertices).vectors()
        centre = vectors.sum(axis=0)
        norm = float(np.linalg.norm(centre))
        limit = math.cos(math.radians(_MAX_POLYGON_RADIUS))
        if norm < _EPS or float((vectors @ (centre / norm)).min()) < limit:
            raise DalParameterError(
                f"POS: polygons must lie within {_MAX_POLYGON_RADIUS:g} degrees of their centre"
            )
        return Polygon(vertices)
    raise DalParameterError(f"POS: unknown shape in {text!r} (CIRCLE, RANGE or POLYGON)")


def parse_interval(text: str, name: str) -> Interval:
    """Read a DALI interval ``low high`` (one value means ``value value``).

    Raises:
        DalParameterError: On anything but one or two numbers, or ``low > high``.
    """
    parts = text.split()
    if len(parts) not in {1, 2}:
        raise DalParameterError(f"{name}: an interval is 'low high', got {text!r}")
    low, high = (_number(p, name, finite=False) for p in (parts * 2)[:2])
    if low > high:
        raise DalParameterError(f"{name}: empty interval {text!r} (low > high)")
    return Interval(low, high)


def parse_ssa_range(text: str, name: str, convert: Callable[[str, str], float]) -> list[Interval]:
    """Read an SSA range list: ``lo/hi``, open ``/hi`` or ``lo/``, single values, commas.

    Args:
        text: The parameter value.
        name: The parameter name (for messages).
        convert: Turns one bound into a number (metres, MJD...).

    Raises:
        DalParameterError: On an unreadable bound or ``lo > hi``.
    """
    intervals: list[Interval] = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        if "/" in item:
            low_text, high_text = (p.strip() for p in item.split("/", 1))
            low = convert(low_text, name) if low_text else -math.inf
            high = convert(high_text, name) if high_text else math.inf
        else:
            low = high = convert(item, name)
        if low > high:
            raise DalParameterError(f"{name}: empty range {item!r} (start after end)")
        intervals.append(Interval(low, high))
    if not intervals:
        raise DalParameterError(f"{name}: no range in {text!r}")
    return intervals


def _metres(text: str, name: str) -> float:
    value = _number(text, name)
    if value <= 0:
        raise DalParameterError(f"{name}: wavelengths are positive metres, got {text!r}")
    return value


def _mjd_of_iso(text: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DalParameterError(f"{name}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _MJD_EPOCH) / timedelta(days=1)


def _iso_date(mjd: float) -> str:
    return (_MJD_EPOCH + timedelta(days=mjd)).strftime("%Y-%m-%d")


# -- the three queries ---------------------------------------------------------------------

_INTERSECTS = ("OVERLAPS", "COVERS", "ENCLOSED", "CENTER")


@dataclass(frozen=True, slots=True)
class SiaQuery:
    """An SIA 1.0 query (angles in degrees).

    Attributes:
        ra: Centre right ascension.
        dec: Centre declination.
        width: Region width along right ascension (SIZE's first value).
        height: Region height along declination.
        intersect: COVERS, ENCLOSED, CENTER or OVERLAPS.
        formats: FORMAT tokens, e.g. ``("ALL",)`` or ``("image/fits", "GRAPHIC")``.
        verb: Column verbosity (0 to 3).
        maxrec: MAXREC, when given.
        band_name: This simulator's custom BAND_NAME parameter (a filter name).
    """

    ra: float
    dec: float
    width: float
    height: float
    intersect: str = "OVERLAPS"
    formats: tuple[str, ...] = ("ALL",)
    verb: int = 1
    maxrec: int | None = None
    band_name: str | None = None


def _is_metadata(params: _Params) -> bool:
    return any(token.upper() == "METADATA" for token in _format_tokens(params))


def _pos_pair(raw: str | None, name: str = "POS") -> tuple[float, float]:
    if raw is None:
        raise DalParameterError(f"missing required parameter {name}")
    parts = raw.split(",")
    if len(parts) != 2:
        raise DalParameterError(f"{name}={raw!r} is not 'ra,dec'")
    ra, dec = (_number(p, name) for p in parts)
    return _ra(ra, f"{name} right ascension"), _dec(dec, f"{name} declination")


def parse_sia_query(params: ParamValues | _Params) -> SiaQuery:
    """Read an SIA 1.0 query (POS, SIZE, INTERSECT, FORMAT, VERB, MAXREC, BAND_NAME).

    Raises:
        DalParameterError: When POS or SIZE is missing or invalid, or INTERSECT, VERB or
            MAXREC is not a legal value. The service answers it with QUERY_STATUS=ERROR.
    """
    values = _Params.of(params)
    ra, dec = _pos_pair(values.first("POS"))
    raw_size = values.first("SIZE")
    if raw_size is None:
        raise DalParameterError("missing required parameter SIZE")
    sizes = [_number(s, "SIZE") for s in raw_size.split(",")]
    if len(sizes) not in {1, 2}:
        raise DalParameterError(f"SIZE={raw_size!r} takes one or two values")
    width, height = (_in_range(s, 0.0, 180.0, "SIZE") for s in (sizes * 2)[:2])
    intersect = (values.first("INTERSECT") or "OVERLAPS").upper()
    if intersect not in _INTERSECTS:
        raise DalParameterError(f"INTERSECT={intersect!r} is not one of {', '.join(_INTERSECTS)}")
    verb = _count(values, "VERB")
    if verb is not None and verb > 3:
        raise DalParameterError(f"VERB={verb} is not within 0..3")
    return SiaQuery(
        ra=ra,
        dec=dec,
        width=width,
        height=height,
        intersect=intersect,
        formats=_format_tokens(values) or ("ALL",),
        verb=1 if verb is None else verb,
        maxrec=_count(values, "MAXREC"),
        band_name=values.first("BAND_NAME"),
    )


@dataclass(frozen=True, slots=True)
class Sia2Query:
    """An SIA 2.0 query: values of one parameter are OR-ed, parameters AND-ed.

    Units follow SIA 2.0: degrees (POS, FOV), metres (BAND), MJD (TIME), arcsec
    (SPATRES), seconds (EXPTIME, TIMERES).
    """

    pos: tuple[Shape, ...] = ()
    band: tuple[Interval, ...] = ()
    time: tuple[Interval, ...] = ()
    pol: tuple[str, ...] = ()
    fov: tuple[Interval, ...] = ()
    spatres: tuple[Interval, ...] = ()
    exptime: tuple[Interval, ...] = ()
    timeres: tuple[Interval, ...] = ()
    specrp: tuple[Interval, ...] = ()
    ids: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    dptypes: tuple[str, ...] = ()
    calib: tuple[int, ...] = ()
    targets: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    maxrec: int | None = None


def parse_sia2_query(params: ParamValues | _Params) -> Sia2Query:
    """Read an SIA 2.0 query; repeated parameters are kept, unknown ones ignored.

    Raises:
        DalParameterError: On an unreadable shape or interval, an unknown POL state, a
            CALIB outside 0..4, a bad MAXREC or a RESPONSEFORMAT other than VOTable.
    """
    values = _Params.of(params)
    _check_response_format(values)
    pol = tuple(p.upper() for p in values.all("POL"))
    if unknown := sorted(set(pol) - _POL_STATES):
        raise DalParameterError(f"POL: unknown polarization states {unknown}")
    calib: list[int] = []
    for raw in values.all("CALIB"):
        if raw not in {"0", "1", "2", "3", "4"}:
            raise DalParameterError(f"CALIB={raw!r} is not a calibration level 0..4")
        calib.append(int(raw))

    def intervals(name: str) -> tuple[Interval, ...]:
        return tuple(parse_interval(raw, name) for raw in values.all(name))

    return Sia2Query(
        pos=tuple(parse_shape(raw) for raw in values.all("POS")),
        band=intervals("BAND"),
        time=intervals("TIME"),
        pol=pol,
        fov=intervals("FOV"),
        spatres=intervals("SPATRES"),
        exptime=intervals("EXPTIME"),
        timeres=intervals("TIMERES"),
        specrp=intervals("SPECRP"),
        ids=tuple(values.all("ID")),
        collections=tuple(values.all("COLLECTION")),
        facilities=tuple(values.all("FACILITY")),
        instruments=tuple(values.all("INSTRUMENT")),
        dptypes=tuple(values.all("DPTYPE")),
        calib=tuple(calib),
        targets=tuple(values.all("TARGET")),
        formats=tuple(values.all("FORMAT")),
        maxrec=_count(values, "MAXREC"),
    )


@dataclass(frozen=True, slots=True)
class SsaQuery:
    """An SSA 1.1 queryData request (degrees, metres, MJD).

    Attributes:
        ra: POS right ascension (None: no position constraint).
        dec: POS declination.
        size: Diameter of the search cone.
        band: Spectral ranges (OR-ed).
        time: Time ranges as MJD (OR-ed).
        formats: FORMAT tokens (``all``, ``compliant``, ``fits``, MIME types...).
        maxrec: MAXREC, when given.
        top: TOP, when given.
        collections: COLLECTION values.
        targets: TARGETNAME values.
        pubdids: PUBDID values.
        instruments: This simulator's custom INSTRUMENT parameter.
    """

    ra: float | None = None
    dec: float | None = None
    size: float = _SSA_DEFAULT_SIZE
    band: tuple[Interval, ...] = ()
    time: tuple[Interval, ...] = ()
    formats: tuple[str, ...] = ("all",)
    maxrec: int | None = None
    top: int | None = None
    collections: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    pubdids: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()


def _ssa_request(values: _Params) -> None:
    request = values.first("REQUEST")
    if request is None:
        raise DalParameterError("missing required parameter REQUEST (queryData)")
    if request.lower() != "querydata":
        raise DalParameterError(f"REQUEST={request!r} is not supported (queryData only)")


def parse_ssa_query(params: ParamValues | _Params) -> SsaQuery:
    """Read an SSA 1.1 queryData request.

    Raises:
        DalParameterError: When REQUEST is not queryData, or POS (``ra,dec[;ICRS]``),
            SIZE, BAND, TIME, MAXREC or TOP is invalid.
    """
    values = _Params.of(params)
    _ssa_request(values)
    ra = dec = None
    raw_pos = values.first("POS")
    if raw_pos is not None:
        where, _, frame = raw_pos.partition(";")
        if frame.strip() and frame.strip().upper() != "ICRS":
            raise DalParameterError(f"POS: only ICRS positions are supported, got {frame!r}")
        ra, dec = _pos_pair(where)
    raw_size = values.first("SIZE")
    size = _SSA_DEFAULT_SIZE
    if raw_size is not None:
        size = _in_range(_number(raw_size, "SIZE"), 0.0, 360.0, "SIZE")
    band = [i for raw in values.all("BAND") for i in parse_ssa_range(raw, "BAND", _metres)]
    time = [i for raw in values.all("TIME") for i in parse_ssa_range(raw, "TIME", _mjd_of_iso)]
    return SsaQuery(
        ra=ra,
        dec=dec,
        size=size,
        band=tuple(band),
        time=tuple(time),
        formats=tuple(t.lower() for t in _format_tokens(values)) or ("all",),
        maxrec=_count(values, "MAXREC"),
        top=_count(values, "TOP"),
        collections=tuple(values.all("COLLECTION")),
        targets=tuple(values.all("TARGETNAME")),
        pubdids=tuple(values.all("PUBDID")),
        instruments=tuple(values.all("INSTRUMENT")),
    )


# -- the sky grid and the archives ---------------------------------------------------------


def _build_grid() -> tuple[_I, _I]:
    n_bands = round(180.0 / _CELL_DEG)
    middles = -90.0 + _CELL_DEG * (np.arange(n_bands) + 0.5)
    n_ra = np.maximum(1, np.round(360.0 * np.cos(np.radians(middles)) / _CELL_DEG))
    n_ra = n_ra.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(n_ra)[:-1]]).astype(np.int64)
    return n_ra, starts


#: Cells per declination band, and the index of each band's first cell.
_N_RA, _BAND_START = _build_grid()
_N_CELLS = int(_N_RA.sum())


def _cell_geometry() -> tuple[_F, _F, _F, _F]:
    """Per cell: RA bounds, and the sines of the declination bounds (degrees)."""
    band = np.repeat(np.arange(len(_N_RA)), _N_RA)
    width = 360.0 / _N_RA[band]
    k = np.arange(_N_CELLS) - _BAND_START[band]
    dec_lo = -90.0 + band * _CELL_DEG
    sin_lo, sin_hi = np.sin(np.radians(dec_lo)), np.sin(np.radians(dec_lo + _CELL_DEG))
    return k * width, (k + 1) * width, sin_lo, sin_hi


_RA_LO, _RA_HI, _SIN_LO, _SIN_HI = _cell_geometry()
#: Solid angle of each cell (square degrees).
_CELL_AREA = (_RA_HI - _RA_LO) * (_SIN_HI - _SIN_LO) * 180.0 / math.pi


def _box_cells(ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float) -> list[int]:
    """Cells meeting an RA/Dec box; RA may run outside [0, 360] (it wraps)."""
    n_bands = len(_N_RA)
    first_band = max(0, math.floor((dec_lo + 90.0) / _CELL_DEG))
    last_band = min(n_bands - 1, math.floor((dec_hi + 90.0) / _CELL_DEG))
    cells: list[int] = []
    for band in range(first_band, last_band + 1):
        n = int(_N_RA[band])
        start = int(_BAND_START[band])
        if ra_hi - ra_lo >= 360.0:
            cells.extend(range(start, start + n))
            continue
        width = 360.0 / n
        ks = {k % n for k in range(math.floor(ra_lo / width), math.floor(ra_hi / width) + 1)}
        cells.extend(start + k for k in sorted(ks))
    return cells


def _cap_cells(ra: float, dec: float, radius: float) -> list[int]:
    """Cells meeting the cap of *radius* degrees around (ra, dec)."""
    low, high = dec - radius, dec + radius
    if low <= -90.0 or high >= 90.0:
        return _box_cells(0.0, 360.0, max(low, -90.0), min(high, 90.0))
    ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec))
    half = math.degrees(math.asin(min(1.0, ratio)))
    return _box_cells(ra - half, ra + half, low, high)


def _range_cells(shape: Range, margin: float) -> list[int]:
    low, high = shape.dec_min - margin, shape.dec_max + margin
    if shape.full_ra or low <= -90.0 or high >= 90.0:
        return _box_cells(0.0, 360.0, max(low, -90.0), min(high, 90.0))
    pad = margin / math.cos(math.radians(max(abs(low), abs(high))))
    ra_max = shape.ra_max if shape.ra_min <= shape.ra_max else shape.ra_max + 360.0
    return _box_cells(shape.ra_min - pad, ra_max + pad, low, high)


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash (Python's ``hash()`` is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


@dataclass(frozen=True, slots=True)
class _Service:
    """What one simulated image or spectrum service holds, apart from the observations."""

    spec: ServiceSpec
    kind: _Kind
    instruments: tuple[int, int]  # indices into _IMAGERS or _SPECTROGRAPHS
    collections: tuple[str, str]
    per_deg2: float

    @property
    def imagers(self) -> tuple[_Imager, _Imager]:
        return _IMAGERS[self.instruments[0]], _IMAGERS[self.instruments[1]]

    @property
    def spectrographs(self) -> tuple[_Spectrograph, _Spectrograph]:
        return _SPECTROGRAPHS[self.instruments[0]], _SPECTROGRAPHS[self.instruments[1]]

    @property
    def instrument_names(self) -> tuple[str, str]:
        table = self.imagers if self.kind == "img" else self.spectrographs
        return table[0].name, table[1].name

    @property
    def facility_names(self) -> tuple[str, str]:
        table = self.imagers if self.kind == "img" else self.spectrographs
        return table[0].facility, table[1].facility


@functools.lru_cache(maxsize=1024)
def _service(spec: ServiceSpec) -> _Service:
    kind: _Kind = "spec" if spec.protocol is Protocol.SSA else "img"
    choices = len(_SPECTROGRAPHS if kind == "spec" else _IMAGERS)
    picked = sorted(
        int(i)
        for i in _rng("instruments", kind, spec.seed, spec.index).choice(
            choices, size=2, replace=False
        )
    )
    stem = spec.name.upper()
    return _Service(
        spec=spec,
        kind=kind,
        instruments=(picked[0], picked[1]),
        collections=(f"{stem}-SURVEY", f"{stem}-DEEP"),
        per_deg2=min(spec.profile.density * _OBS_PER_SOURCE, _MAX_OBS_PER_DEG2),
    )


@dataclass(frozen=True, slots=True)
class _Archive:
    """Observations as columns (one entry each), in cell order then number order."""

    cell: _I
    number: _I
    ra: _F
    dec: _F
    slot: _I  # which of the service's two instruments
    filter: _I  # index into _FILTERS (images; -1 for spectra)
    t_min: _F  # MJD
    exptime: _F  # seconds
    calib: _I
    cube: _B
    pol: _I  # index into _POL_LISTS
    deep: _B  # the second collection
    votable: _B  # spectra: served as VOTable ("compliant") instead of FITS ("native")

    def __len__(self) -> int:
        return len(self.cell)

    def take(self, index: _B | _I | slice) -> _Archive:
        return _Archive(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concat(parts: Sequence[_Archive]) -> _Archive:
        if len(parts) == 1:
            return parts[0]
        return _Archive(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Archive))
        )


#: Calibration levels 1, 2, 3 (cumulative shares).
_CALIB_CUMULATIVE = np.cumsum([0.2, 0.6])
_POL_CUMULATIVE = np.cumsum(_POL_SHARES[:-1])
#: Uniform numbers drawn per observation (one row per column of `_Archive` drawn).
_DRAWS = 11


@functools.lru_cache(maxsize=64)
def _filter_table(service: _Service) -> tuple[_I, _I]:
    """Filter indices of each of the service's imagers (padded), and how many each has."""
    choices = [[_FILTER_INDEX[f] for f in imager.filters] for imager in service.imagers]
    width = max(len(c) for c in choices)
    table = np.array([c + [c[-1]] * (width - len(c)) for c in choices], dtype=np.int64)
    return table, np.array([len(c) for c in choices], dtype=np.int64)


def _draws(service: _Service, cell: int) -> _F:
    """The uniform numbers behind *cell*'s observations, shape (`_DRAWS`, n)."""
    spec = service.spec
    rng = _rng("cell", service.kind, spec.seed, spec.index, cell)
    n = int(rng.poisson(service.per_deg2 * _CELL_AREA[cell]))
    return rng.random((_DRAWS, n))


def _archive(service: _Service, cells: Sequence[int]) -> _Archive:
    """The observations of *service* in *cells*: a pure function of its arguments.

    Each cell has its own generator (so a cell is the same whatever else is drawn with
    it); only the few draws are per cell, the columns are computed for all cells at once.
    """
    draws = [_draws(service, c) for c in cells]
    u = np.concatenate(draws, axis=1) if draws else np.zeros((_DRAWS, 0))
    counts = np.array([d.shape[1] for d in draws], dtype=np.int64)
    cell = np.repeat(np.asarray(cells, dtype=np.int64), counts)
    number = np.arange(len(cell), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    slot = (u[2] < 0.5).astype(np.int64)
    if service.kind == "img":
        table, choices = _filter_table(service)
        filters = table[slot, (u[3] * choices[slot]).astype(np.int64)]
    else:
        filters = np.full(len(cell), -1, dtype=np.int64)
    ra_lo, sin_lo = _RA_LO[cell], _SIN_LO[cell]
    sin_dec = sin_lo + u[1] * (_SIN_HI[cell] - sin_lo)
    archive = _Archive(
        cell=cell,
        number=number,
        ra=ra_lo + u[0] * (_RA_HI[cell] - ra_lo),
        dec=np.degrees(np.arcsin(np.clip(sin_dec, -1.0, 1.0))),
        slot=slot,
        filter=filters,
        t_min=np.round(_MJD_SPAN[0] + u[4] * (_MJD_SPAN[1] - _MJD_SPAN[0]), 6),
        exptime=np.round(10.0 * 360.0 ** u[5], 1),  # log-uniform, 10 s to 1 h
        calib=np.searchsorted(_CALIB_CUMULATIVE, u[6], side="right").astype(np.int64) + 1,
        cube=u[7] < 0.2,
        pol=np.searchsorted(_POL_CUMULATIVE, u[8], side="right").astype(np.int64),
        deep=u[9] < 0.3,
        votable=u[10] < 0.5,
    )
    for f in fields(archive):
        getattr(archive, f.name).flags.writeable = False
    return archive


@functools.lru_cache(maxsize=256)
def _cell(service: _Service, cell: int) -> _Archive:
    """The observations of *service* in one cell (cached: DataLink and data files ask)."""
    return _archive(service, [cell])


def _local_id(kind: str, cell: int, number: int) -> str:
    return f"{kind}-{cell}-{number}"


def _resolve(service: _Service, local: str) -> tuple[int, int] | None:
    """(cell, number) of the observation called *local* (``img-12-3``), if it exists."""
    match = _LOCAL_ID.fullmatch(local)
    if match is None or match[1] != service.kind:
        return None
    cell, number = int(match[2]), int(match[3])
    if cell >= _N_CELLS or number >= len(_cell(service, cell)):
        return None
    return cell, number


def _resolve_did(service: _Service, did: str) -> tuple[int, int] | None:
    prefix = service.spec.ivoid + "?"
    return _resolve(service, did[len(prefix) :]) if did.startswith(prefix) else None


# -- geometry ------------------------------------------------------------------------------


def _unit(ra: _F | float, dec: _F | float) -> _F:
    """Unit vectors of (ra, dec) in degrees, shape ``(..., 3)``."""
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    cos_dec = np.cos(dec_r)
    return np.stack([cos_dec * np.cos(ra_r), cos_dec * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def _basis(ra: _F | float, dec: _F | float) -> tuple[_F, _F]:
    """Unit vectors pointing east and north at (ra, dec)."""
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    zero = np.zeros_like(ra_r)
    east = np.stack([-np.sin(ra_r), np.cos(ra_r), zero], axis=-1)
    north = np.stack(
        [-np.sin(dec_r) * np.cos(ra_r), -np.sin(dec_r) * np.sin(ra_r), np.cos(dec_r)], axis=-1
    )
    return east, north


def _radec(vectors: _F) -> tuple[_F, _F]:
    """(ra, dec) in degrees of vectors (not necessarily of unit length)."""
    ra = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(vectors[..., 2], np.hypot(vectors[..., 0], vectors[..., 1])))
    return ra, dec


#: Corner order of a footprint in its tangent plane (east = +x): counter-clockwise as the
#: sky is drawn (north up, east left), the DALI and STC-S winding.
_CORNER_SIGNS = np.array([(-1.0, 1.0), (1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)])


def _in_convex(px: _F, py: _F, qx: _F, qy: _F) -> _B:
    """Which points (n, k) lie in their convex quadrilateral (n, 4), either winding."""
    ex = np.roll(qx, -1, axis=1) - qx
    ey = np.roll(qy, -1, axis=1) - qy
    cross = ex[:, :, None] * (py[:, None, :] - qy[:, :, None]) - ey[:, :, None] * (
        px[:, None, :] - qx[:, :, None]
    )
    return np.asarray((cross >= -_EPS).all(axis=1) | (cross <= _EPS).all(axis=1))


def _quads_meet_rect(xi: _F, eta: _F, half_x: float, half_y: float) -> _B:
    """Separating-axis test: which convex quads (n, 4) meet the box |x|<=X, |y|<=Y."""
    apart = (
        (xi.min(axis=1) > half_x)
        | (xi.max(axis=1) < -half_x)
        | (eta.min(axis=1) > half_y)
        | (eta.max(axis=1) < -half_y)
    )
    nx = -(np.roll(eta, -1, axis=1) - eta)
    ny = np.roll(xi, -1, axis=1) - xi
    quad = xi[:, None, :] * nx[:, :, None] + eta[:, None, :] * ny[:, :, None]
    box_x = np.array([-half_x, half_x, half_x, -half_x])
    box_y = np.array([-half_y, -half_y, half_y, half_y])
    box = box_x[None, None, :] * nx[:, :, None] + box_y[None, None, :] * ny[:, :, None]
    apart |= ((quad.max(axis=2) < box.min(axis=2)) | (box.max(axis=2) < quad.min(axis=2))).any(
        axis=1
    )
    return np.asarray(~apart)


_Point = tuple[_F, _F]


def _segments_cross(a: _Point, b: _Point, c: _Point, d: _Point) -> _B:
    """Whether segments AB and CD intersect (broadcast (x, y) arrays; touching counts)."""

    def orient(p: _Point, q: _Point, r: _Point) -> _F:
        return np.asarray((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    # Signs, not products against a tolerance: on a tangent plane they are ~1e-14.
    return np.asarray(
        (np.sign(orient(c, d, a)) * np.sign(orient(c, d, b)) <= 0)
        & (np.sign(orient(a, b, c)) * np.sign(orient(a, b, d)) <= 0)
    )


class _View:
    """An archive with the values derived from it (footprints, wavelengths...), lazily."""

    def __init__(self, service: _Service, archive: _Archive) -> None:
        self.service = service
        self.obs = archive

    def _per_slot(self, values: Sequence[float]) -> _F:
        return np.asarray(values, dtype=np.float64)[self.obs.slot]

    @cached_property
    def width(self) -> _F:
        """Footprint width along RA (degrees); the aperture for spectra."""
        if self.service.kind == "spec":
            return self._per_slot([s.aperture / 3600.0 for s in self.service.spectrographs])
        return self._per_slot([i.naxis[0] * i.scale for i in self.service.imagers])

    @cached_property
    def height(self) -> _F:
        """Footprint height along Dec (degrees)."""
        if self.service.kind == "spec":
            return self.width
        return self._per_slot([i.naxis[1] * i.scale for i in self.service.imagers])

    @cached_property
    def naxis(self) -> tuple[_I, _I]:
        imagers = self.service.imagers
        first = np.array([i.naxis[0] for i in imagers], dtype=np.int64)[self.obs.slot]
        second = np.array([i.naxis[1] for i in imagers], dtype=np.int64)[self.obs.slot]
        return first, second

    @cached_property
    def scale(self) -> _F:
        return self._per_slot([i.scale for i in self.service.imagers])

    @cached_property
    def centres(self) -> _F:
        return _unit(self.obs.ra, self.obs.dec)

    @cached_property
    def corners(self) -> _F:
        """Footprint corners as unit vectors, shape (n, 4, 3), in `_CORNER_SIGNS` order."""
        east, north = _basis(self.obs.ra, self.obs.dec)
        tan_x = np.tan(np.radians(self.width / 2))[:, None, None]
        tan_y = np.tan(np.radians(self.height / 2))[:, None, None]
        sx = _CORNER_SIGNS[None, :, 0, None]
        sy = _CORNER_SIGNS[None, :, 1, None]
        points = (
            self.centres[:, None, :]
            + sx * tan_x * east[:, None, :]
            + sy * tan_y * north[:, None, :]
        )
        return np.asarray(points / np.linalg.norm(points, axis=-1, keepdims=True))

    @cached_property
    def s_fov(self) -> _F:
        """Diameter of the footprint's bounding circle (degrees), as published.

        Filters use the published (rounded) values, so that a client constraining by a
        value it read back finds that record again; the same holds for every filtered
        quantity (times, exposures, wavelengths and resolutions come from tables).
        """
        tan_x, tan_y = np.tan(np.radians(self.width / 2)), np.tan(np.radians(self.height / 2))
        return np.round(2.0 * np.degrees(np.arctan(np.hypot(tan_x, tan_y))), 6)

    @cached_property
    def em_min(self) -> _F:
        if self.service.kind == "spec":
            return self._per_slot([s.em_min for s in self.service.spectrographs])
        return np.array([f[1] for f in _FILTERS])[self.obs.filter]

    @cached_property
    def em_max(self) -> _F:
        if self.service.kind == "spec":
            return self._per_slot([s.em_max for s in self.service.spectrographs])
        return np.array([f[2] for f in _FILTERS])[self.obs.filter]

    @cached_property
    def res_power(self) -> _F:
        if self.service.kind == "spec":
            return self._per_slot([s.res_power for s in self.service.spectrographs])
        middle = (self.em_min + self.em_max) / 2
        return np.where(self.obs.cube, 1000.0, np.round(middle / (self.em_max - self.em_min), 2))

    @cached_property
    def t_max(self) -> _F:
        return np.round(self.obs.t_min + self.obs.exptime / 86400.0, 6)

    @cached_property
    def resolution(self) -> _F:
        """Spatial resolution in arcsec."""
        return self._per_slot([i.resolution for i in self.service.imagers])

    @cached_property
    def local_ids(self) -> list[str]:
        kind = self.service.kind
        return [
            _local_id(kind, c, k)
            for c, k in zip(self.obs.cell.tolist(), self.obs.number.tolist(), strict=True)
        ]

    @cached_property
    def dids(self) -> list[str]:
        return [f"{self.service.spec.ivoid}?{local}" for local in self.local_ids]

    @cached_property
    def datalink(self) -> _B:
        """SIA 2.0 records whose access_url is a DataLink document (every other one)."""
        return np.asarray(self.obs.number % 2 == 1)

    @cached_property
    def graphic(self) -> _B:
        """SIA 1.0 images also offered as a PNG (every third one)."""
        return np.asarray(self.obs.number % 3 == 0)

    def corner_radec(self) -> tuple[_F, _F]:
        return _radec(self.corners)

    # -- spatial tests ---------------------------------------------------------------

    def in_plane(self, ra: float, dec: float) -> tuple[_F, _F, _B]:
        """Corners projected on the tangent plane at (ra, dec), and which ones can be."""
        centre = _unit(ra, dec)
        east, north = _basis(ra, dec)
        depth = self.corners @ centre
        front = np.asarray((depth > _FRONT).all(axis=1))
        safe = np.where(depth > _FRONT, depth, 1.0)
        return (self.corners @ east) / safe, (self.corners @ north) / safe, front

    def sia1_match(self, query: SiaQuery) -> _B:
        """SIA 1.0 INTERSECT against the gnomonic rectangle of SIZE around POS."""
        half_x = math.tan(math.radians(min(query.width, _MAX_REGION_DEG) / 2))
        half_y = math.tan(math.radians(min(query.height, _MAX_REGION_DEG) / 2))
        if query.intersect == "CENTER":
            centre = _unit(query.ra, query.dec)
            east, north = _basis(query.ra, query.dec)
            depth = self.centres @ centre
            safe = np.where(depth > 0, depth, 1.0)
            xi, eta = (self.centres @ east) / safe, (self.centres @ north) / safe
            return np.asarray(
                (depth > 0) & (np.abs(xi) <= half_x + _EPS) & (np.abs(eta) <= half_y + _EPS)
            )
        xi, eta, front = self.in_plane(query.ra, query.dec)
        if query.intersect == "ENCLOSED":
            inside = (np.abs(xi) <= half_x + _EPS) & (np.abs(eta) <= half_y + _EPS)
            return np.asarray(front & inside.all(axis=1))
        if query.intersect == "COVERS":
            box_x = np.broadcast_to(np.array([-half_x, half_x, half_x, -half_x]), xi.shape)
            box_y = np.broadcast_to(np.array([-half_y, -half_y, half_y, half_y]), xi.shape)
            return np.asarray(front & _in_convex(box_x, box_y, xi, eta).all(axis=1))
        return np.asarray(front & _quads_meet_rect(xi, eta, half_x, half_y))

    def circle_match(self, shape: Circle) -> _B:
        """Footprints meeting the circle (exact, on the sphere)."""
        point = _unit(shape.ra, shape.dec)
        radius = math.radians(shape.radius)
        corners = self.corners
        after = np.roll(corners, -1, axis=1)
        normals = np.cross(corners, after)
        orient = np.sign(np.einsum("nkd,nd->nk", normals, self.centres))
        inside = (normals @ point * orient >= -_EPS).all(axis=1)
        corner_in = (corners @ point >= math.cos(radius) - _EPS).any(axis=1)
        unit_normals = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
        offset = unit_normals @ point
        foot = point[None, None, :] - offset[..., None] * unit_normals
        within = (np.einsum("nkd,nkd->nk", np.cross(corners, foot), unit_normals) >= 0) & (
            np.einsum("nkd,nkd->nk", np.cross(foot, after), unit_normals) >= 0
        )
        edge_near = (within & (np.arcsin(np.clip(np.abs(offset), 0, 1)) <= radius)).any(axis=1)
        return np.asarray(inside | corner_in | edge_near)

    def range_match(self, shape: Range) -> _B:
        """Footprints whose RA/Dec bounding box (of their corners) meets the range."""
        corner_ra, corner_dec = self.corner_radec()
        dec_lo, dec_hi = corner_dec.min(axis=1), corner_dec.max(axis=1)
        offsets = (corner_ra - self.obs.ra[:, None] + 180.0) % 360.0 - 180.0
        ra_lo = self.obs.ra + offsets.min(axis=1)
        ra_hi = self.obs.ra + offsets.max(axis=1)
        poles = []
        for pole in (np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])):
            normals = np.cross(self.corners, np.roll(self.corners, -1, axis=1))
            orient = np.sign(np.einsum("nkd,nd->nk", normals, self.centres))
            poles.append((normals @ pole * orient >= 0).all(axis=1))
        dec_hi = np.where(poles[0], 90.0, dec_hi)
        dec_lo = np.where(poles[1], -90.0, dec_lo)
        dec_ok = (dec_lo <= shape.dec_max) & (dec_hi >= shape.dec_min)
        if shape.full_ra:
            return np.asarray(dec_ok)
        low = shape.ra_min
        high = shape.ra_max if shape.ra_min <= shape.ra_max else shape.ra_max + 360.0
        ra_ok = poles[0] | poles[1]
        for shift in (-360.0, 0.0, 360.0):
            ra_ok = ra_ok | ((ra_lo + shift <= high) & (ra_hi + shift >= low))
        return np.asarray(dec_ok & ra_ok)

    def polygon_match(self, shape: Polygon) -> _B:
        """Footprints meeting the polygon, tested on the tangent plane at its centre."""
        vectors = shape.vectors()
        centre_ra, centre_dec = _radec(vectors.sum(axis=0))
        centre_ra_f, centre_dec_f = float(centre_ra), float(centre_dec)
        east, north = _basis(centre_ra_f, centre_dec_f)
        depth = vectors @ _unit(centre_ra_f, centre_dec_f)
        px, py = (vectors @ east) / depth, (vectors @ north) / depth
        xi, eta, front = self.in_plane(centre_ra_f, centre_dec_f)
        # 1. a footprint corner inside the polygon (even-odd rule: any polygon shape)
        ax, ay = px[None, None, :], py[None, None, :]
        bx, by = np.roll(px, -1)[None, None, :], np.roll(py, -1)[None, None, :]
        x, y = xi[:, :, None], eta[:, :, None]
        straddle = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = x < (bx - ax) * (y - ay) / (by - ay) + ax
        corner_in = ((straddle & crossing).sum(axis=2) % 2 == 1).any(axis=1)
        # 2. a polygon vertex inside the footprint
        vx = np.broadcast_to(px, (len(xi), len(px)))
        vy = np.broadcast_to(py, (len(xi), len(py)))
        vertex_in = _in_convex(vx, vy, xi, eta).any(axis=1)
        # 3. edges crossing
        cx, cy = xi[:, :, None], eta[:, :, None]
        dx, dy = np.roll(xi, -1, axis=1)[:, :, None], np.roll(eta, -1, axis=1)[:, :, None]
        edges = _segments_cross((cx, cy), (dx, dy), (ax, ay), (bx, by)).any(axis=(1, 2))
        return np.asarray(front & (corner_in | vertex_in | edges))

    def is_one_of(self, pairs: set[tuple[int, int] | None]) -> _B:
        """Which observations are among these (cell, number) pairs."""
        found = zip(self.obs.cell.tolist(), self.obs.number.tolist(), strict=True)
        return np.array([pair in pairs for pair in found], dtype=bool)

    def shape_match(self, shape: Shape) -> _B:
        if isinstance(shape, Circle):
            return self.circle_match(shape)
        if isinstance(shape, Range):
            return self.range_match(shape)
        return self.polygon_match(shape)

    def cone_match(self, ra: float, dec: float, radius: float) -> _B:
        """Observations whose centre lies within *radius* degrees (SSA: spectra are points)."""
        return np.asarray(self.centres @ _unit(ra, dec) >= math.cos(math.radians(radius)) - _EPS)


def _shape_cells(shape: Shape) -> list[int]:
    if isinstance(shape, Circle):
        return _cap_cells(shape.ra, shape.dec, shape.radius + _MARGIN)
    if isinstance(shape, Range):
        return _range_cells(shape, _MARGIN)
    vectors = shape.vectors()
    centre = vectors.sum(axis=0)
    centre /= np.linalg.norm(centre)
    reach = math.degrees(math.acos(float(np.clip((vectors @ centre).min(), -1.0, 1.0))))
    ra, dec = _radec(centre)
    return _cap_cells(float(ra), float(dec), reach + _MARGIN)


def _scan(
    service: _Service, cells: Iterable[int], keep: Callable[[_View], _B], limit: int
) -> tuple[_View, bool]:
    """Matching observations in cell order: at most *limit*, and whether there are more."""
    ordered = sorted(set(cells))
    found: list[_Archive] = []
    count = 0
    for start in range(0, len(ordered), _SCAN_CHUNK):
        chunk = _archive(service, ordered[start : start + _SCAN_CHUNK])
        if not len(chunk):
            continue
        matched = chunk.take(keep(_View(service, chunk)))
        found.append(matched)
        count += len(matched)
        if count > limit:
            break
    if not found:
        found.append(_archive(service, []))
    result = _Archive.concat(found)
    return _View(service, result.take(slice(0, limit))), len(result) > limit


def _row_limit(spec: ServiceSpec, maxrec: int | None) -> int:
    """The rows an answer may hold: MAXREC, capped by the service's hard limit."""
    limit = spec.profile.max_rows
    return limit if maxrec is None else min(maxrec, limit)


def _lookup_cells(
    service: _Service, ids: Sequence[str], targets: Sequence[str], target: re.Pattern[str]
) -> list[int]:
    """The cells a query without a position must draw.

    Identifiers and target names encode their cell, as an archive's index would: a query
    by ID or TARGET draws those cells only (none when no value can match); any other
    query scans the whole sky (bounded by `_MAX_OBS_PER_DEG2`, and stopped at the limit).
    """
    if ids:
        return sorted({found[0] for did in ids if (found := _resolve_did(service, did))})
    if targets:
        names = (target.fullmatch(t) for t in targets)
        return sorted({int(m[1]) for m in names if m and int(m[1]) < _N_CELLS})
    return list(range(_N_CELLS))


def _names_nothing(constraints: Iterable[tuple[Sequence[object], Sequence[object]]]) -> bool:
    """Whether a constraint lists only values the service never has (no scan needed)."""
    return any(wanted and not set(wanted) & set(names) for wanted, names in constraints)


# -- VOTable documents ---------------------------------------------------------------------

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
_VOTABLE_OPEN = (
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)
_VOTABLE_CLOSE = "</VOTABLE>\n"


@dataclass(frozen=True, slots=True)
class _Field:
    """A FIELD (or, with a value, a PARAM) with the utype, xtype and null SIA/SSA need."""

    name: str
    datatype: str
    ucd: str
    description: str
    unit: str | None = None
    arraysize: str | None = None
    utype: str | None = None
    xtype: str | None = None
    null: str | None = None

    def _attributes(self, element_id: str) -> str:
        attrs = [f'name="{escape_attr(self.name)}"', f'ID="{escape_attr(element_id)}"']
        attrs.append(f'datatype="{self.datatype}"')
        optional = {
            "arraysize": self.arraysize,
            "unit": self.unit,
            "ucd": self.ucd,
            "utype": self.utype,
            "xtype": self.xtype,
        }
        attrs.extend(f'{key}="{escape_attr(value)}"' for key, value in optional.items() if value)
        return " ".join(attrs)

    def field_xml(self) -> str:
        values = f'<VALUES null="{escape_attr(self.null)}"/>' if self.null is not None else ""
        return (
            f"<FIELD {self._attributes(self.name)}>"
            f"<DESCRIPTION>{escape_text(self.description)}</DESCRIPTION>{values}</FIELD>\n"
        )

    def param_xml(self, value: str) -> str:
        # PARAM names such as INPUT:POS are not NCNames: the ID replaces the colon.
        return (
            f"<PARAM {self._attributes(self.name.replace(':', '_'))}"
            f' value="{escape_attr(value)}">'
            f"<DESCRIPTION>{escape_text(self.description)}</DESCRIPTION></PARAM>\n"
        )

    def as_char(self) -> _Field:
        """The same column holding strings (what a ``conflicting_types`` service sends)."""
        return replace(self, datatype="char", arraysize="*", null=None)


def _field(row: Sequence[str], utype_prefix: str = "") -> _Field:
    """A FIELD from a ``name datatype unit ucd utype description`` table row.

    A datatype is ``char`` (any length), ``double[2]`` (a fixed array) or ``long?`` (null
    written as -1); ``-`` means no unit or no utype.
    """
    name, datatype, unit, ucd, utype, description = row
    arraysize = null = None
    if datatype == "char":
        arraysize = "*"
    elif datatype.endswith("?"):
        datatype, null = datatype[:-1], "-1"
    elif datatype.endswith("]"):
        datatype, arraysize = datatype[:-1].split("[")
    return _Field(
        name,
        datatype,
        ucd,
        description,
        unit=None if unit == "-" else unit,
        arraysize=arraysize,
        utype=None if utype == "-" else utype_prefix + utype,
        null=null,
    )


def _table_rows(table: str) -> list[list[str]]:
    """Rows of a table of five words and a description per line."""
    return [line.split(maxsplit=5) for line in table.strip().splitlines()]


def _schema(table: str, utype_prefix: str = "") -> tuple[_Field, ...]:
    """FIELDs from a table of ``name datatype unit ucd utype description`` rows."""
    return tuple(_field(row, utype_prefix) for row in _table_rows(table))


def _inputs(table: str) -> str:
    """SIA/SSA metadata PARAMs from ``name datatype unit ucd default description`` rows.

    Each input parameter is announced as a PARAM named ``INPUT:<name>`` whose value is
    its default, as SIA 1.0 and SSA 1.1 ask of FORMAT=METADATA answers.
    """
    params: list[str] = []
    for name, datatype, unit, ucd, default, description in _table_rows(table):
        field = _field([f"INPUT:{name}", datatype, unit, ucd, "-", description])
        params.append(field.param_xml("" if default == "-" else default))
    return "".join(params)


def _info(name: str, value: str, content: str | None = None) -> str:
    if content is None:
        return f'<INFO name="{escape_attr(name)}" value="{escape_attr(value)}"/>\n'
    return (
        f'<INFO name="{escape_attr(name)}" value="{escape_attr(value)}">'
        f"{escape_text(content)}</INFO>\n"
    )


def _table_document(
    columns: Sequence[_Field],
    cells_by_column: Sequence[Sequence[str]],
    *,
    description: str,
    infos: Sequence[tuple[str, str, str | None]] = (),
    params_xml: str = "",
    overflow: str | None = None,
    trailer: str = "",
) -> Document:
    """A results VOTable split for the server (head, rows, tail), as `_votables` builds.

    Args:
        columns: The FIELDs.
        cells_by_column: Escaped cells, column-major (empty for no rows).
        description: The TABLE description.
        infos: ``(name, value, content)`` INFOs after the leading QUERY_STATUS=OK.
        params_xml: PARAM elements of the results RESOURCE (SIA/SSA metadata answers).
        overflow: When set, a QUERY_STATUS=OVERFLOW INFO follows the TABLE.
        trailer: RESOURCEs after the results RESOURCE (service descriptors).
    """
    head = [_XML_DECL, _VOTABLE_OPEN, '<RESOURCE type="results">\n', _info("QUERY_STATUS", "OK")]
    head.extend(_info(name, value, content) for name, value, content in infos)
    head.append(params_xml)
    head.append(f'<TABLE name="results">\n<DESCRIPTION>{escape_text(description)}</DESCRIPTION>\n')
    head.extend(column.field_xml() for column in columns)
    head.append("<DATA><TABLEDATA>\n")
    tail = ["</TABLEDATA></DATA>\n</TABLE>\n"]
    if overflow is not None:
        tail.append(_info("QUERY_STATUS", "OVERFLOW", overflow))
    tail.extend(["</RESOURCE>\n", trailer, _VOTABLE_CLOSE])
    return Document(
        head="".join(head),
        rows=format_rows(cells_by_column),
        tail="".join(tail),
        status="OK" if overflow is None else "OVERFLOW",
    )


def _columns_document(
    columns: Sequence[_Field], cells: Mapping[str, list[str]], **kwargs: Any
) -> Document:
    """`_table_document` with the cells given by column name."""
    rows = [cells[c.name] for c in columns] if any(cells[c.name] for c in columns) else []
    return _table_document(columns, rows, **kwargs)


def _clashing(columns: Iterable[_Field], spec: ServiceSpec, name: str) -> list[_Field]:
    """The FIELDs, column *name* holding strings when *spec* has clashing types."""
    clash = spec.profile.behaviour is Behaviour.CONFLICTING_TYPES
    return [f.as_char() if clash and f.name == name else f for f in columns]


def _floats(values: npt.ArrayLike, fmt: str) -> list[str]:
    return [format(v, fmt) for v in np.asarray(values, dtype=np.float64).tolist()]


def _pairs(first: npt.ArrayLike, second: npt.ArrayLike, fmt: str) -> list[str]:
    return [f"{a} {b}" for a, b in zip(_floats(first, fmt), _floats(second, fmt), strict=True)]


def _texts(values: Iterable[str]) -> list[str]:
    return [escape_text(v) for v in values]


def _overflow_message(spec: ServiceSpec, limit: int) -> str:
    if limit < spec.profile.max_rows:
        return f"result truncated at MAXREC={limit} rows"
    return f"result truncated at the service limit of {spec.profile.max_rows} rows"


def _descriptor(base_url: str, ref: str) -> str:
    """A DataLink service descriptor whose ID parameter takes the *ref* column's values."""
    return (
        '<RESOURCE type="meta" utype="adhoc:service" ID="datalink">\n'
        "<DESCRIPTION>The links of each dataset (DataLink 1.1)</DESCRIPTION>\n"
        '<PARAM name="standardID" datatype="char" arraysize="*"'
        ' value="ivo://ivoa.net/std/DataLink#links-1.1"/>\n'
        '<PARAM name="accessURL" datatype="char" arraysize="*" ucd="meta.ref.url"'
        f' value="{escape_attr(base_url)}/datalink"/>\n'
        f'<PARAM name="contentType" datatype="char" arraysize="*" value="{DATALINK_TYPE}"/>\n'
        '<GROUP name="inputParams">\n'
        '<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main"'
        f' ref="{ref}" value=""/>\n'
        "</GROUP>\n</RESOURCE>\n"
    )


# -- served files --------------------------------------------------------------------------


def _fits_bytes(data: npt.NDArray[np.float32], **header: str | float) -> bytes:
    hdu = fits.PrimaryHDU(data)
    hdu.header["ORIGIN"] = "vosweep simulated VO"
    for key, value in header.items():
        hdu.header[key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


@functools.cache
def fits_image() -> bytes:
    """The 16x16 FITS image every simulated image (and its auxiliary files) serves."""
    y, x = np.mgrid[0:16, 0:16]
    data = (1000.0 * np.exp(-((x - 7.5) ** 2 + (y - 7.5) ** 2) / 8.0)).astype(np.float32)
    return _fits_bytes(data, BUNIT="count")


@functools.cache
def fits_spectrum() -> bytes:
    """The 64-sample FITS spectrum every simulated "native" spectrum serves."""
    flux = (1.0 + 0.5 * np.sin(np.linspace(0.0, 6.0, 64))).astype(np.float32)
    return _fits_bytes(flux, CTYPE1="WAVE", CUNIT1="m", CRPIX1=1.0, CRVAL1=4e-7, CDELT1=5e-9)


_SPECTRUM_FIELDS = _schema(
    """
    spectral double m em.wl Data.SpectralAxis.Value Wavelength
    flux double W.m**-2.m**-1 phot.flux.density;em.wl Data.FluxAxis.Value Flux density
    """,
    "spec:Spectrum.",
)


@functools.cache
def votable_spectrum() -> bytes:
    """The 16-point VOTable spectrum every simulated "compliant" spectrum serves."""
    wavelengths = 4.0e-7 + 2.0e-8 * np.arange(16)
    flux = 1.0 + 0.5 * np.sin(np.arange(16) / 2.0)
    cells = [_floats(wavelengths, ".4e"), _floats(flux, ".6f")]
    return _table_document(_SPECTRUM_FIELDS, cells, description="Simulated spectrum").encode()


@functools.cache
def png_preview() -> bytes:
    """A 16x16 greyscale PNG, written by hand (no imaging library needed)."""
    size = 16
    raw = b"".join(
        b"\x00" + bytes((x * 16 + y * 8) % 256 for x in range(size)) for y in range(size)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data)
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = chunk(b"IDAT", zlib.compress(raw, 9))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def _data_file(service: _Service, subpath: str) -> tuple[bytes, str] | None:
    """The body and content type served at *subpath*, or None when nothing is there."""
    if match := _DATA_FILE.fullmatch(subpath):
        local, variant, extension = match[1], match[2], match[3]
        if _resolve(service, local) is None:
            return None
        if service.kind == "img":
            return (fits_image(), "image/fits") if extension == "fits" else None
        if extension == "vot":
            return None if variant else (votable_spectrum(), _SSA_VOTABLE)
        return fits_spectrum(), "application/fits"
    if (match := _PREVIEW_FILE.fullmatch(subpath)) and _resolve(service, match[1]) is not None:
        return png_preview(), "image/png"
    return None


# -- SIA 1.0 -------------------------------------------------------------------------------

#: SIA 1.0 columns (UCD1 words, as the standard names them; pyvo finds columns by them).
_SIA1_FIELDS = _schema(
    """
    title char - VOX:Image_Title - Image title
    ra double deg POS_EQ_RA_MAIN - Image centre RA (ICRS)
    dec double deg POS_EQ_DEC_MAIN - Image centre Dec (ICRS)
    naxes int - VOX:Image_Naxes - Number of image axes
    naxis int[2] - VOX:Image_Naxis - Pixels along each axis
    scale double[2] deg/pix VOX:Image_Scale - Pixel scale of each axis
    format char - VOX:Image_Format - MIME type of the image
    acref char - VOX:Image_AccessReference - Where to download the image
    filesize long byte VOX:Image_FileSize - Size of the file
    instr char - INST_ID - Instrument
    dateobs double d VOX:Image_MJDateObs - Mid-exposure date (MJD)
    cframe char - VOX:STC_CoordRefFrame - Coordinate frame
    bandpass_id char - VOX:BandPass_ID - Filter name
    bandpass_unit char - VOX:BandPass_Unit - Unit of the bandpass values
    bandpass_refvalue double m VOX:BandPass_RefValue - Central wavelength
    bandpass_lolimit double m VOX:BandPass_LoLimit - Lower wavelength
    bandpass_hilimit double m VOX:BandPass_HiLimit - Upper wavelength
    equinox double yr VOX:STC_CoordEquinox - Equinox
    proj char - VOX:WCS_CoordProjection - Celestial projection
    crpix double[2] - VOX:WCS_CoordRefPixel - WCS reference pixel
    crval double[2] deg VOX:WCS_CoordRefValue - WCS reference value
    cd double[4] deg/pix VOX:WCS_CDMatrix - WCS CD matrix
    pixflags char - VOX:Image_PixFlags - Pixel processing flags
    obs_publisher_did char - meta.ref.ivoid - Publisher dataset identifier
    """
)
#: The lowest VERB that shows each column (0: the mandatory ones, 3: everything).
_SIA1_VERB = {
    **dict.fromkeys(("title", "ra", "dec", "naxes", "naxis", "scale", "format", "acref"), 0),
    **dict.fromkeys(("equinox", "proj", "crpix", "crval", "cd", "pixflags"), 2),
    "obs_publisher_did": 3,
}
_SIA1_INPUTS = """
    POS char - pos.eq - Centre of the search region: ra,dec (ICRS, degrees)
    SIZE char deg phys.angSize;instr.fov - Width[,height] of the search region
    INTERSECT char - meta.code OVERLAPS COVERS, ENCLOSED, CENTER or OVERLAPS
    FORMAT char - meta.code.mime ALL ALL, GRAPHIC, METADATA or MIME types, commas
    VERB int - meta.code 1 Column verbosity, 0 to 3
    MAXREC int - meta.number {max_rows} Maximum number of records
    BAND_NAME char - instr.bandpass - Filter name, e.g. r or Ks (this service only)
"""


def _sia1_row_formats(formats: Sequence[str]) -> tuple[bool, bool]:
    """Whether FORMAT selects the FITS rows, and the PNG rows."""
    fits_rows = png_rows = False
    for word in formats:
        if word.upper() == "ALL":
            return True, True
        if word.upper() in {"GRAPHIC", "GRAPHIC-ALL", "GRAPHIC-PNG"}:
            png_rows = True
        elif _mime(word) in {"image/fits", "image/png"}:
            fits_rows |= _mime(word) == "image/fits"
            png_rows |= _mime(word) == "image/png"
    return fits_rows, png_rows


def _sia1_keep(query: SiaQuery, with_fits: bool, with_png: bool) -> Callable[[_View], _B]:
    def keep(view: _View) -> _B:
        mask = view.sia1_match(query)
        if not with_fits:
            mask &= view.graphic & with_png
        if query.band_name is not None:
            names = np.array([name.upper() for name, _, _ in _FILTERS])
            mask &= names[view.obs.filter] == query.band_name.upper()
        return mask

    return keep


@dataclass(frozen=True, slots=True)
class _Sia1Rows:
    """The rows of an SIA 1.0 answer: one per image and format."""

    view: _View  # one entry per row
    png: _B
    overflow: bool
    limit: int


def _sia1_select(spec: ServiceSpec, query: SiaQuery) -> _Sia1Rows:
    with_fits, with_png = _sia1_row_formats(query.formats)
    limit = _row_limit(spec, query.maxrec)
    service = _service(spec)
    width, height = min(query.width, _MAX_REGION_DEG), min(query.height, _MAX_REGION_DEG)
    cells = _cap_cells(query.ra, query.dec, _half_diagonal(width, height) + _MARGIN)
    # Every kept image gives at least one row: limit + 1 images tell an overflow.
    view, more = _scan(service, cells, _sia1_keep(query, with_fits, with_png), limit)
    if spec.profile.behaviour is Behaviour.EMPTY:
        view, more = _View(service, view.obs.take(slice(0, 0))), False
    per_image = np.where(view.graphic & with_png, 1 + int(with_fits), 1)
    image = np.repeat(np.arange(len(view.obs), dtype=np.int64), per_image)
    first = np.ones(len(image), dtype=bool)
    first[1:] = image[1:] != image[:-1]
    png = ~first if with_fits else np.ones(len(image), dtype=bool)
    overflow = more or len(image) > limit or spec.profile.behaviour is Behaviour.OVERFLOW
    rows = _View(service, view.obs.take(image[:limit]))
    return _Sia1Rows(rows, png[:limit], overflow, limit)


def _sia1_cells(rows: _Sia1Rows, base_url: str) -> dict[str, list[str]]:
    view, obs, n = rows.view, rows.view.obs, len(rows.view.obs)
    names = view.service.instrument_names
    filters = [_FILTERS[f][0] for f in obs.filter.tolist()]
    png = rows.png.tolist()
    naxis1, naxis2 = view.naxis
    centre = _pairs((naxis1 + 1) / 2, (naxis2 + 1) / 2, ".1f")
    return {
        "title": _texts(
            f"{names[s]} {f} {local}"
            for s, f, local in zip(obs.slot.tolist(), filters, view.local_ids, strict=True)
        ),
        "ra": _floats(obs.ra, ".9f"),
        "dec": _floats(obs.dec, ".9f"),
        "naxes": ["2"] * n,
        "naxis": [f"{a} {b}" for a, b in zip(naxis1.tolist(), naxis2.tolist(), strict=True)],
        "scale": _pairs(view.scale, view.scale, ".6e"),
        "format": ["image/png" if p else "image/fits" for p in png],
        "acref": _texts(
            f"{base_url}/preview/{local}.png" if p else f"{base_url}/data/{local}.fits"
            for local, p in zip(view.local_ids, png, strict=True)
        ),
        "filesize": [str(len(png_preview() if p else fits_image())) for p in png],
        "instr": _texts(names[s] for s in obs.slot.tolist()),
        "dateobs": _floats((obs.t_min + view.t_max) / 2, ".6f"),
        "cframe": ["ICRS"] * n,
        "bandpass_id": _texts(filters),
        "bandpass_unit": ["m"] * n,
        "bandpass_refvalue": _floats((view.em_min + view.em_max) / 2, ".4e"),
        "bandpass_lolimit": _floats(view.em_min, ".4e"),
        "bandpass_hilimit": _floats(view.em_max, ".4e"),
        "equinox": ["2000.0"] * n,
        "proj": ["TAN"] * n,
        "crpix": centre,
        "crval": _pairs(obs.ra, obs.dec, ".9f"),
        "cd": [f"{-s:.6e} 0 0 {s:.6e}" for s in view.scale.tolist()],
        "pixflags": ["C"] * n,
        "obs_publisher_did": _texts(view.dids),
    }


def _sia1_fields(spec: ServiceSpec, verb: int) -> list[_Field]:
    shown = (f for f in _SIA1_FIELDS if _SIA1_VERB.get(f.name, 1) <= verb)
    return _clashing(shown, spec, "filesize")


def _sia1_answer(spec: ServiceSpec, params: _Params, base_url: str) -> Document:
    if _is_metadata(params):
        if spec.profile.behaviour is Behaviour.QUERY_ERROR:
            return _query_error(spec)
        return _table_document(
            _sia1_fields(spec, 3),
            [],
            description=f"Simulated SIA 1.0 service {spec.name}: query metadata",
            params_xml=_inputs(_SIA1_INPUTS.format(max_rows=spec.profile.max_rows)),
        )
    query = parse_sia_query(params)
    if spec.profile.behaviour is Behaviour.QUERY_ERROR:
        return _query_error(spec)
    rows = _sia1_select(spec, query)
    return _columns_document(
        _sia1_fields(spec, query.verb),
        _sia1_cells(rows, base_url),
        description=f"Simulated SIA 1.0 service {spec.name}",
        infos=[("SERVICE_PROTOCOL", "1.0", "SIA")],
        overflow=_overflow_message(spec, rows.limit) if rows.overflow else None,
    )


# -- SIA 2.0 -------------------------------------------------------------------------------

#: ObsCore 1.1 columns (the mandatory ones), with their UCDs and utypes.
_OBSCORE_FIELDS = _schema(
    """
    dataproduct_type char - meta.code.class ObsDataset.dataProductType Product type
    calib_level short - meta.code;obs.calib ObsDataset.calibLevel Calibration level
    obs_collection char - meta.id DataID.Collection Data collection
    obs_id char - meta.id DataID.observationID Observation identifier
    obs_publisher_did char - meta.ref.ivoid Curation.PublisherDID Publisher's ID
    access_url char - meta.ref.url Access.Reference Where to get the data
    access_format char - meta.code.mime Access.Format MIME type of access_url
    access_estsize long? kbyte phys.size;meta.file Access.Size Estimated size
    target_name char - meta.id;src Target.name Target of the observation
    s_ra double deg pos.eq.ra Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1 RA
    s_dec double deg pos.eq.dec Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2 Dec
    s_fov double deg phys.angSize;instr.fov Char.SpatialAxis.Coverage.Bounds.Extent.diameter FOV
    s_region char - pos.outline;obs.field Char.SpatialAxis.Coverage.Support.Area Footprint
    s_resolution double arcsec pos.angResolution Char.SpatialAxis.Resolution.Refval.value PSF
    s_xel1 long - meta.number Char.SpatialAxis.numBins1 Pixels along RA
    s_xel2 long - meta.number Char.SpatialAxis.numBins2 Pixels along Dec
    t_min double d time.start;obs.exposure Char.TimeAxis.Coverage.Bounds.Limits.StartTime Start
    t_max double d time.end;obs.exposure Char.TimeAxis.Coverage.Bounds.Limits.StopTime End
    t_exptime double s time.duration;obs.exposure Char.TimeAxis.Coverage.Support.Extent Exposure
    t_resolution double s time.resolution Char.TimeAxis.Resolution.Refval.value Time resolution
    t_xel long - meta.number Char.TimeAxis.numBins Time samples
    em_min double m em.wl;stat.min Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit Shortest
    em_max double m em.wl;stat.max Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit Longest
    em_res_power double - spect.resolution Char.SpectralAxis.Resolution.ResolPower.refVal R
    em_xel long - meta.number Char.SpectralAxis.numBins Spectral samples
    o_ucd char - meta.ucd Char.ObservableAxis.ucd What the pixels measure
    pol_states char - meta.code;phys.polarization Char.PolarizationAxis.stateList States
    pol_xel long? - meta.number Char.PolarizationAxis.numBins Polarization samples
    facility_name char - meta.id;instr.tel Provenance.ObsConfig.Facility.name Telescope
    instrument_name char - meta.id;instr Provenance.ObsConfig.Instrument.name Instrument
    """,
    "obscore:",
)
_OBSCORE_FIELDS = tuple(
    replace(f, xtype="adql:REGION") if f.name == "s_region" else f for f in _OBSCORE_FIELDS
)


def _sia2_keep(service: _Service, query: Sia2Query) -> Callable[[_View], _B]:
    def any_of(masks: Iterable[_B], size: int) -> _B:
        return np.asarray(np.logical_or.reduce([np.zeros(size, dtype=bool), *masks]), dtype=bool)

    def keep(view: _View) -> _B:
        obs, n = view.obs, len(view.obs)
        mask = np.ones(n, dtype=bool)
        if query.pos:
            mask &= any_of((view.shape_match(shape) for shape in query.pos), n)
        for intervals, low, high in (
            (query.band, view.em_min, view.em_max),
            (query.time, obs.t_min, view.t_max),
        ):
            if intervals:
                mask &= any_of((i.overlaps(low, high) for i in intervals), n)
        for intervals, values in (
            (query.fov, view.s_fov),
            (query.spatres, view.resolution),
            (query.exptime, obs.exptime),
            (query.timeres, obs.exptime),
            (query.specrp, view.res_power),
        ):
            if intervals:
                mask &= any_of((i.contains(values) for i in intervals), n)
        if query.pol:
            mask &= np.array([bool(set(states) & set(query.pol)) for states in _POL_LISTS])[obs.pol]
        if query.ids:
            mask &= view.is_one_of({_resolve_did(service, did) for did in query.ids})
        if query.targets:
            cells = {int(m[1]) for t in query.targets if (m := _TARGET_FIELD.fullmatch(t))}
            mask &= np.isin(obs.cell, sorted(cells))
        for wanted, names, index in (
            (query.collections, service.collections, obs.deep.astype(np.int64)),
            (query.facilities, service.facility_names, obs.slot),
            (query.instruments, service.instrument_names, obs.slot),
            (query.dptypes, ("image", "cube"), obs.cube.astype(np.int64)),
        ):
            if wanted:
                mask &= np.array([name in wanted for name in names])[index]
        if query.calib:
            mask &= np.isin(obs.calib, query.calib)
        if query.formats:
            mimes = {f.replace(" ", "").lower() for f in query.formats}
            fits_ok = any(_mime(f) == "image/fits" for f in mimes)
            mask &= np.where(view.datalink, DATALINK_TYPE in mimes, fits_ok)
        return mask

    return keep


def _sia2_cells(service: _Service, query: Sia2Query) -> list[int]:
    vocabulary = (
        (query.collections, service.collections),
        (query.facilities, service.facility_names),
        (query.instruments, service.instrument_names),
        (query.dptypes, ("image", "cube")),
        (query.calib, (1, 2, 3)),
    )
    if _names_nothing(vocabulary):
        return []
    if query.pos:
        return [c for shape in query.pos for c in _shape_cells(shape)]
    return _lookup_cells(service, query.ids, query.targets, _TARGET_FIELD)


def _sia2_select(spec: ServiceSpec, query: Sia2Query) -> tuple[_View, bool, int]:
    service = _service(spec)
    limit = _row_limit(spec, query.maxrec)
    view, more = _scan(service, _sia2_cells(service, query), _sia2_keep(service, query), limit)
    if spec.profile.behaviour is Behaviour.EMPTY:
        return _View(service, view.obs.take(slice(0, 0))), False, limit
    return view, more or spec.profile.behaviour is Behaviour.OVERFLOW, limit


def _sia2_access(view: _View) -> tuple[list[str], list[str]]:
    """(access paths below the base URL, access formats) of SIA 2.0 records."""
    paths = [
        f"/datalink?ID={quote(did, safe='')}" if link else f"/data/{local}.fits"
        for did, local, link in zip(view.dids, view.local_ids, view.datalink.tolist(), strict=True)
    ]
    return paths, [DATALINK_TYPE if link else "image/fits" for link in view.datalink.tolist()]


def _obscore_cells(view: _View, base_url: str) -> dict[str, list[str]]:
    service, obs, n = view.service, view.obs, len(view.obs)
    paths, formats = _sia2_access(view)
    corner_ra, corner_dec = _radec(view.corners)
    regions = [
        "POLYGON ICRS " + " ".join(f"{a:.7f} {d:.7f}" for a, d in zip(ras, decs, strict=True))
        for ras, decs in zip(corner_ra.tolist(), corner_dec.tolist(), strict=True)
    ]
    naxis1, naxis2 = view.naxis
    estsize = str(-(-len(fits_image()) // 1024))
    pols = obs.pol.tolist()
    return {
        "dataproduct_type": ["cube" if c else "image" for c in obs.cube.tolist()],
        "calib_level": [str(c) for c in obs.calib.tolist()],
        "obs_collection": _texts(service.collections[int(d)] for d in obs.deep.tolist()),
        "obs_id": view.local_ids,
        "obs_publisher_did": _texts(view.dids),
        "access_url": _texts(base_url + path for path in paths),
        "access_format": _texts(formats),
        "access_estsize": ["-1" if f == DATALINK_TYPE else estsize for f in formats],
        "target_name": [f"SIMFIELD-{c}" for c in obs.cell.tolist()],
        "s_ra": _floats(obs.ra, ".9f"),
        "s_dec": _floats(obs.dec, ".9f"),
        "s_fov": _floats(view.s_fov, ".6f"),
        "s_region": regions,
        "s_resolution": _floats(view.resolution, ".3f"),
        "s_xel1": [str(v) for v in naxis1.tolist()],
        "s_xel2": [str(v) for v in naxis2.tolist()],
        "t_min": _floats(obs.t_min, ".6f"),
        "t_max": _floats(view.t_max, ".6f"),
        "t_exptime": _floats(obs.exptime, ".1f"),
        "t_resolution": _floats(obs.exptime, ".1f"),
        "t_xel": ["1"] * n,
        "em_min": _floats(view.em_min, ".4e"),
        "em_max": _floats(view.em_max, ".4e"),
        "em_res_power": _floats(view.res_power, ".2f"),
        "em_xel": ["30" if c else "1" for c in obs.cube.tolist()],
        "o_ucd": ["phot.count"] * n,
        "pol_states": ["/" + "/".join(_POL_LISTS[p]) + "/" if p else "" for p in pols],
        "pol_xel": [str(len(_POL_LISTS[p])) if p else "-1" for p in pols],
        "facility_name": _texts(service.facility_names[s] for s in obs.slot.tolist()),
        "instrument_name": _texts(service.instrument_names[s] for s in obs.slot.tolist()),
    }


def _sia2_has_descriptor(spec: ServiceSpec) -> bool:
    """Odd services add a DataLink descriptor, as many real ones do; even ones do not."""
    return spec.index % 2 == 1


def _sia2_answer(spec: ServiceSpec, params: _Params, base_url: str) -> Document:
    query = parse_sia2_query(params)
    if spec.profile.behaviour is Behaviour.QUERY_ERROR:
        return _query_error(spec)
    view, overflow, limit = _sia2_select(spec, query)
    return _columns_document(
        _clashing(_OBSCORE_FIELDS, spec, "calib_level"),
        _obscore_cells(view, base_url),
        description=f"Simulated SIA 2.0 service {spec.name} (ObsCore 1.1 records)",
        overflow=_overflow_message(spec, limit) if overflow else None,
        trailer=_descriptor(base_url, "obs_publisher_did") if _sia2_has_descriptor(spec) else "",
    )


# -- SSA 1.1 -------------------------------------------------------------------------------

_SSA_FIELDS = _schema(
    """
    ssa_pubdid char - meta.ref.ivoid Curation.PublisherDID Publisher's dataset ID
    accref char - meta.ref.url;meta.dataset Access.Reference Where to get the spectrum
    mime char - meta.code.mime Access.Format MIME type of the spectrum
    accsize long byte phys.size;meta.file Access.Size Size of the file
    title char - meta.title;meta.dataset DataID.Title Dataset title
    collection char - meta.id DataID.Collection Data collection
    instrument char - meta.id;instr DataID.Instrument Instrument
    date char - time;meta.dataset DataID.Date Observation date
    dataset_type char - meta.code.class Dataset.Type Dataset type
    data_model char - meta.id Dataset.DataModel Data model
    length long - meta.number Dataset.Length Number of samples
    target_name char - meta.id;src Target.Name Target
    target_pos double[2] deg pos.eq;src Target.Pos Target position (ICRS)
    location double[2] deg pos.eq Char.SpatialAxis.Coverage.Location.Value Position
    aperture double deg phys.angSize;instr.fov Char.SpatialAxis.Coverage.Bounds.Extent Aperture
    spec_mid double m em.wl;instr.bandpass Char.SpectralAxis.Coverage.Location.Value Middle
    spec_extent double m em.wl;instr.bandwidth Char.SpectralAxis.Coverage.Bounds.Extent Span
    spec_start double m em.wl;stat.min Char.SpectralAxis.Coverage.Bounds.Start Shortest
    spec_stop double m em.wl;stat.max Char.SpectralAxis.Coverage.Bounds.Stop Longest
    res_power double - spect.resolution Char.SpectralAxis.ResPower Resolving power
    time_mid double d time.epoch Char.TimeAxis.Coverage.Location.Value Mid-exposure MJD
    time_extent double s time.duration;obs.exposure Char.TimeAxis.Coverage.Bounds.Extent Exposure
    publisher char - meta.curation Curation.Publisher Publisher
    """,
    "ssa:",
)
_SSA_INPUTS = """
    REQUEST char - meta.code queryData The operation: queryData
    POS char - pos.eq - Search position: ra,dec[;ICRS] in degrees
    SIZE double deg phys.angSize;instr.fov {size} Diameter of the search cone
    BAND char m em.wl - Wavelength ranges in metres: lo/hi, /hi, lo/, value
    TIME char - time - Time ranges in ISO 8601: start/end
    FORMAT char - meta.code.mime all all, compliant, native, votable, fits, metadata...
    MAXREC int - meta.number {max_rows} Maximum number of records
    TOP int - meta.number - Return only the first n records
    COLLECTION char - meta.id - Data collection
    TARGETNAME char - meta.id;src - Target name
    PUBDID char - meta.ref.ivoid - Publisher dataset identifier
    INSTRUMENT char - meta.id;instr - Instrument name (this service only)
"""


def _ssa_format_mask(formats: Sequence[str], votable: _B) -> _B:
    mask = np.zeros(len(votable), dtype=bool)
    for word in formats:
        if word == "all":
            return np.ones(len(votable), dtype=bool)
        if word in {"compliant", "votable", "xml"} or _mime(word) == _SSA_VOTABLE:
            mask |= votable
        elif word in {"native", "fits"} or _mime(word) == "application/fits":
            mask |= ~votable
    return mask


def _ssa_keep(service: _Service, query: SsaQuery) -> Callable[[_View], _B]:
    def any_of(masks: Iterable[_B], size: int) -> _B:
        return np.asarray(np.logical_or.reduce([np.zeros(size, dtype=bool), *masks]), dtype=bool)

    def keep(view: _View) -> _B:
        obs, n = view.obs, len(view.obs)
        mask = _ssa_format_mask(query.formats, obs.votable)
        if query.ra is not None and query.dec is not None:
            mask &= view.cone_match(query.ra, query.dec, query.size / 2)
        if query.band:
            mask &= any_of((i.overlaps(view.em_min, view.em_max) for i in query.band), n)
        if query.time:
            mask &= any_of((i.overlaps(obs.t_min, view.t_max) for i in query.time), n)
        for wanted, names, index in (
            (query.collections, service.collections, obs.deep.astype(np.int64)),
            (query.instruments, service.instrument_names, obs.slot),
        ):
            if wanted:
                mask &= np.array([name in wanted for name in names])[index]
        if query.pubdids:
            mask &= view.is_one_of({_resolve_did(service, did) for did in query.pubdids})
        if query.targets:
            stars = (_TARGET_STAR.fullmatch(t) for t in query.targets)
            mask &= view.is_one_of({(int(m[1]), int(m[2])) for m in stars if m})
        return mask

    return keep


def _ssa_cells(service: _Service, query: SsaQuery) -> list[int]:
    vocabulary = (
        (query.collections, service.collections),
        (query.instruments, service.instrument_names),
    )
    if _names_nothing(vocabulary):
        return []
    if query.ra is not None and query.dec is not None:
        return _cap_cells(query.ra, query.dec, query.size / 2 + 0.01)
    return _lookup_cells(service, query.pubdids, query.targets, _TARGET_STAR)


def _ssa_select(spec: ServiceSpec, query: SsaQuery) -> tuple[_View, bool, int]:
    service = _service(spec)
    limit = _row_limit(spec, query.maxrec)
    view, more = _scan(service, _ssa_cells(service, query), _ssa_keep(service, query), limit)
    if spec.profile.behaviour is Behaviour.EMPTY:
        return _View(service, view.obs.take(slice(0, 0))), False, limit
    if query.top is not None:  # TOP asks for the first n: not an overflow
        view = _View(service, view.obs.take(slice(0, query.top)))
    return view, more or spec.profile.behaviour is Behaviour.OVERFLOW, limit


def _ssa_access(view: _View) -> tuple[list[str], list[str]]:
    """(access paths below the base URL, access formats) of SSA records."""
    votable = view.obs.votable.tolist()
    paths = [
        f"/data/{local}.{'vot' if v else 'fits'}"
        for local, v in zip(view.local_ids, votable, strict=True)
    ]
    return paths, [_SSA_VOTABLE if v else "application/fits" for v in votable]


def _ssa_cells_by_name(view: _View, base_url: str) -> dict[str, list[str]]:
    service, obs, n = view.service, view.obs, len(view.obs)
    names = service.instrument_names
    cells, numbers, slots = obs.cell.tolist(), obs.number.tolist(), obs.slot.tolist()
    targets = [f"SIMSTAR-{c}-{k}" for c, k in zip(cells, numbers, strict=True)]
    paths, formats = _ssa_access(view)
    positions = _pairs(obs.ra, obs.dec, ".9f")
    return {
        "ssa_pubdid": _texts(view.dids),
        "accref": _texts(base_url + path for path in paths),
        "mime": formats,
        "accsize": [
            str(len(votable_spectrum() if v else fits_spectrum())) for v in obs.votable.tolist()
        ],
        "title": _texts(f"{names[s]} spectrum of {t}" for s, t in zip(slots, targets, strict=True)),
        "collection": _texts(service.collections[int(d)] for d in obs.deep.tolist()),
        "instrument": _texts(names[s] for s in slots),
        "date": [_iso_date(t) for t in obs.t_min.tolist()],
        "dataset_type": ["Spectrum"] * n,
        "data_model": ["Spectrum-1.0"] * n,
        "length": [str(service.spectrographs[s].length) for s in slots],
        "target_name": targets,
        "target_pos": positions,
        "location": positions,
        "aperture": _floats(view.width, ".6e"),
        "spec_mid": _floats((view.em_min + view.em_max) / 2, ".4e"),
        "spec_extent": _floats(view.em_max - view.em_min, ".4e"),
        "spec_start": _floats(view.em_min, ".4e"),
        "spec_stop": _floats(view.em_max, ".4e"),
        "res_power": _floats(view.res_power, ".1f"),
        "time_mid": _floats((obs.t_min + view.t_max) / 2, ".6f"),
        "time_extent": _floats(obs.exptime, ".1f"),
        "publisher": ["vosweep simulated VO"] * n,
    }


def _ssa_fields(spec: ServiceSpec) -> list[_Field]:
    return _clashing(_SSA_FIELDS, spec, "length")


def _ssa_answer(spec: ServiceSpec, params: _Params, base_url: str) -> Document:
    if _is_metadata(params):
        _ssa_request(params)
        if spec.profile.behaviour is Behaviour.QUERY_ERROR:
            return _query_error(spec)
        inputs = _SSA_INPUTS.format(size=_SSA_DEFAULT_SIZE, max_rows=spec.profile.max_rows)
        return _table_document(
            _ssa_fields(spec),
            [],
            description=f"Simulated SSA 1.1 service {spec.name}: query metadata",
            params_xml=_inputs(inputs),
        )
    query = parse_ssa_query(params)
    if spec.profile.behaviour is Behaviour.QUERY_ERROR:
        return _query_error(spec)
    view, overflow, limit = _ssa_select(spec, query)
    return _columns_document(
        _ssa_fields(spec),
        _ssa_cells_by_name(view, base_url),
        description=f"Simulated SSA 1.1 service {spec.name}",
        infos=[("SERVICE_PROTOCOL", "1.1", "SSAP")],
        overflow=_overflow_message(spec, limit) if overflow else None,
        trailer=_descriptor(base_url, "ssa_pubdid"),
    )


# -- DataLink and VOSI ---------------------------------------------------------------------

_LINK_FIELDS = _schema(
    """
    ID char - meta.id;meta.main - The dataset these links belong to
    access_url char - meta.ref.url - Where to get the linked resource
    service_def char - meta.ref - Service descriptor to use instead of access_url
    error_message char - meta.code.error - Why there is no link
    semantics char - meta.code - What the link is (DataLink core vocabulary)
    description char - meta.note - What the link is, for humans
    content_type char - meta.code.mime - MIME type of the linked resource
    content_length long? byte phys.size;meta.file - Size of the linked resource
    content_qualifier char - meta.code.class - Product type of the linked resource
    local_semantics char - meta.code - What the link is, in this service's terms
    link_auth char - meta.code - Whether the link needs authentication
    link_authorized boolean - meta.code - Whether the caller may use the link
    """
)


def _links(service: _Service, did: str, base_url: str) -> list[list[str]]:
    """DataLink rows of one ID: #this, #preview, #auxiliary and #progenitor."""
    found = _resolve_did(service, did)
    if found is None:
        message = f"NotFoundFault: no dataset {did} at this service"
        return [[did, "", "", message, "#this", "", "", "-1", "", "", "", ""]]
    local = _local_id(service.kind, *found)
    if service.kind == "img":
        this = (f"{local}.fits", "image/fits", len(fits_image()), "#image", "The image")
        aux_text, raw_text, aux_type, aux_size = "Weight map", "Raw frame", "image/fits", this[2]
    else:
        votable = bool(_cell(service, found[0]).votable[found[1]])
        this = (
            f"{local}.{'vot' if votable else 'fits'}",
            _SSA_VOTABLE if votable else "application/fits",
            len(votable_spectrum() if votable else fits_spectrum()),
            "#spectrum",
            "The spectrum",
        )
        aux_text, raw_text, aux_type = "Error spectrum", "Raw 2D frame", "application/fits"
        aux_size = len(fits_spectrum())
    links = [
        (f"/data/{this[0]}", "#this", this[4], this[1], this[2], this[3], "science"),
        (
            f"/preview/{local}.png",
            "#preview",
            "Quick look",
            "image/png",
            len(png_preview()),
            "",
            "quicklook",
        ),
        (f"/data/{local}.aux.fits", "#auxiliary", aux_text, aux_type, aux_size, "", "weights"),
        (f"/data/{local}.raw.fits", "#progenitor", raw_text, aux_type, aux_size, "", "raw"),
    ]
    auth = ("false", "T")  # public data: no authentication, and the caller may use it
    return [
        [did, base_url + path, "", "", semantics, text, mime, str(size), kind, local_kind, *auth]
        for path, semantics, text, mime, size, kind, local_kind in links
    ]


def datalink_document(spec: ServiceSpec, params: ParamValues | _Params, base_url: str) -> Document:
    """The DataLink 1.1 {links} answer of *spec*'s ``/datalink`` endpoint.

    Every ID (the parameter may repeat) gets its links, in order: ``#this``, ``#preview``,
    ``#auxiliary``, ``#progenitor``; an unknown ID gets one row whose error_message is a
    ``NotFoundFault``. MAXREC (and the service's row limit) cut the table, with
    QUERY_STATUS=OVERFLOW. A request without ID is a ``UsageFault`` error document.
    """
    values = _Params.of(params)
    try:
        _check_response_format(values)
        limit = _row_limit(spec, _count(values, "MAXREC"))
    except DalParameterError as exc:
        return query_error_document(f"UsageFault: {exc}")
    ids = values.all("ID")
    if not ids:
        return query_error_document("UsageFault: the ID parameter is required")
    service = _service(spec)
    rows: list[list[str]] = []
    for did in ids:
        rows.extend(_links(service, did, base_url))
        if len(rows) > limit:
            break
    escaped = [[escape_text(cell) for cell in row] for row in rows[:limit]]
    return _table_document(
        _LINK_FIELDS,
        [list(column) for column in zip(*escaped, strict=True)],
        description=f"Links of datasets of {spec.name}",
        overflow=f"links truncated at MAXREC={limit}" if len(rows) > limit else None,
    )


_CAPABILITIES_OPEN = (
    '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)
_STANDARDS = {
    Protocol.SIA: ("ivo://ivoa.net/std/SIA", "1.0"),
    Protocol.SIA2: ("ivo://ivoa.net/std/SIA#query-2.0", "2.0"),
    Protocol.SSA: ("ivo://ivoa.net/std/SSA", "1.1"),
}


def capabilities_document(spec: ServiceSpec, base_url: str) -> str:
    """The VOSI capabilities: the query interface at the base URL, DataLink and VOSI."""
    standard, version = _STANDARDS[spec.protocol]
    url = escape_text(base_url)

    def capability(standard_id: str, access_url: str, use: str, extra: str = "") -> str:
        return (
            f'<capability standardID="{standard_id}">\n'
            f'<interface xsi:type="vs:ParamHTTP"{extra}>'
            f'<accessURL use="{use}">{access_url}</accessURL></interface>\n'
            "</capability>\n"
        )

    return "".join(
        [
            _XML_DECL,
            _CAPABILITIES_OPEN,
            capability("ivo://ivoa.net/std/VOSI#capabilities", f"{url}/capabilities", "full"),
            capability("ivo://ivoa.net/std/VOSI#availability", f"{url}/availability", "full"),
            capability(standard, url, "base", f' role="std" version="{version}"'),
            capability(_DATALINK_STANDARD, f"{url}/datalink", "base", ' version="1.1"'),
            "</vosi:capabilities>\n",
        ]
    )


def availability_document(spec: ServiceSpec) -> str:
    """The VOSI availability: always up (failures are the behaviours' business)."""
    return (
        _XML_DECL
        + '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        "<vosi:available>true</vosi:available>\n"
        f"<vosi:note>{escape_text(spec.name)} is a simulated service</vosi:note>\n"
        "</vosi:availability>\n"
    )


# -- handlers ------------------------------------------------------------------------------


def _query_error(spec: ServiceSpec) -> Document:
    return query_error_document(
        f"Simulated failure of {spec.name}: table temporarily unavailable for queries"
    )


_ANSWERS: dict[Protocol, Callable[[ServiceSpec, _Params, str], Document]] = {
    Protocol.SIA: _sia1_answer,
    Protocol.SIA2: _sia2_answer,
    Protocol.SSA: _ssa_answer,
}


def _respond(spec: ServiceSpec, params: _Params, base_url: str) -> tuple[Document, bool]:
    """The document answering *params*, and whether it refuses them (a usage error)."""
    try:
        return _ANSWERS[spec.protocol](spec, params, base_url), False
    except DalParameterError as exc:
        return query_error_document(str(exc)), True


def _base_url(request: web.BaseRequest, spec: ServiceSpec) -> str:
    """The service's base URL as the client addressed it (host and port included)."""
    return f"{request.url.origin()}{spec.path}"


async def _request_params(request: web.BaseRequest) -> _Params:
    """Query and form parameters, every value of repeated names kept."""
    items = list(request.query.items())
    if request.method == "POST":
        form = await request.post()
        items.extend((key, value) for key, value in form.items() if isinstance(value, str))
    return _Params(items)


class _DalHandler:
    """What SIA 1.0, SIA 2.0 and SSA services share: answers, and the paths below them."""

    def answer(
        self, spec: ServiceSpec, params: ParamValues | _Params, *, base_url: str | None = None
    ) -> Document:
        """Return the document *spec* sends for these request *params* (pure).

        Args:
            spec: The service.
            params: Request parameters (several values per name allowed).
            base_url: The service's base URL, which records point below (default
                ``http://sim.invalid{path}``: the server passes the URL it was called by).
        """
        return _respond(spec, _Params.of(params), base_url or f"http://sim.invalid{spec.path}")[0]

    async def document(self, ex: Exchange) -> Document:
        """Answer the request of *ex*: every value of repeated parameters, its own URL.

        SIA 2.0 follows DALI and sends a refused request's error document with HTTP 400;
        SIA 1.0 and SSA send theirs with 200, as their standards say.
        """
        params = await _request_params(ex.request)
        document, refused = _respond(ex.spec, params, _base_url(ex.request, ex.spec))
        if refused and ex.spec.protocol is Protocol.SIA2:
            ex.status = 400
        return document

    async def serve_subpath(self, ex: Exchange) -> web.StreamResponse | None:
        """Serve DataLink, data files, previews and VOSI below the service's base path.

        These answer directly, whatever the service's behaviour: a sweep's failures are
        on its queries, and a client that got records can follow their links.
        """
        spec = ex.spec
        base_url = _base_url(ex.request, spec)
        if ex.subpath == "/datalink":
            params = await _request_params(ex.request)
            document = datalink_document(spec, params, base_url)
            if document.status == "ERROR":  # a UsageFault: DALI's 400
                ex.status = 400
            return await ex.send_document(document, content_type=DATALINK_TYPE)
        if ex.subpath == "/capabilities":
            capabilities = capabilities_document(spec, base_url)
            return await ex.send(200, capabilities.encode(), "text/xml")
        if ex.subpath == "/availability":
            return await ex.send(200, availability_document(spec).encode(), "text/xml")
        found = _data_file(_service(spec), ex.subpath)
        if found is None:
            return None
        body, content_type = found
        return await ex.send(200, body, content_type)


class SiaHandler(_DalHandler):
    """Answers SIA 1.0 queries (POS, SIZE, INTERSECT, FORMAT, VERB, MAXREC, BAND_NAME)."""


class Sia2Handler(_DalHandler):
    """Answers SIA 2.0 queries with ObsCore 1.1 records; serves VOSI for pyvo."""


class SsaHandler(_DalHandler):
    """Answers SSA 1.1 queryData requests, with a DataLink service descriptor."""


# -- expected answers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One row a healthy simulated SIA/SSA service returns.

    Attributes:
        did: The publisher dataset identifier.
        obs_id: The local identifier (``img-123-4``), also the data file's name.
        ra: Centre right ascension (degrees).
        dec: Centre declination (degrees).
        access_format: MIME type of what the access reference serves.
        path: Where the access reference points, below the service's base URL.
    """

    did: str
    obs_id: str
    ra: float
    dec: float
    access_format: str
    path: str


def _records(view: _View, paths: Sequence[str], formats: Sequence[str]) -> list[SimRecord]:
    columns = (view.dids, view.local_ids, view.obs.ra.tolist(), view.obs.dec.tolist())
    return [
        SimRecord(did, local, ra, dec, access_format, path)
        for (did, local, ra, dec), access_format, path in zip(
            zip(*columns, strict=True), formats, paths, strict=True
        )
    ]


def expected_images(spec: ServiceSpec, params: ParamValues) -> list[SimRecord]:
    """The rows an SIA 1.0 or SIA 2.0 service *spec* returns for these request *params*.

    "Healthy" means the table the service serves once it answers at all, as for
    `expected_rows`: none for ``empty``, the rows before the cut for ``overflow`` (and
    for any query with more than MAXREC or ``max_rows`` rows), and for failing
    behaviours the rows the service would have returned. A metadata query has none.
    SIA 1.0 has one row per image and format (FITS, and PNG for some images).

    Raises:
        DalParameterError: When the service would reject the parameters.
        UsageError: When *spec* is not an image service.
    """
    values = _Params.of(params)
    if spec.protocol is Protocol.SIA:
        if _is_metadata(values):
            return []
        rows = _sia1_select(spec, parse_sia_query(values))
        png = rows.png.tolist()
        formats = ["image/png" if p else "image/fits" for p in png]
        paths = [
            f"/preview/{local}.png" if p else f"/data/{local}.fits"
            for local, p in zip(rows.view.local_ids, png, strict=True)
        ]
        return _records(rows.view, paths, formats)
    if spec.protocol is Protocol.SIA2:
        view, _, _ = _sia2_select(spec, parse_sia2_query(values))
        return _records(view, *_sia2_access(view))
    raise UsageError(f"{spec.name} is not an image service (SIA or SIA2)")


def expected_spectra(spec: ServiceSpec, params: ParamValues) -> list[SimRecord]:
    """The rows an SSA service *spec* returns for these request *params* (as above).

    Raises:
        DalParameterError: When the service would reject the parameters.
        UsageError: When *spec* is not an SSA service.
    """
    if spec.protocol is not Protocol.SSA:
        raise UsageError(f"{spec.name} is not a spectrum service (SSA)")
    values = _Params.of(params)
    if _is_metadata(values):
        return []
    view, _, _ = _ssa_select(spec, parse_ssa_query(values))
    return _records(view, *_ssa_access(view))
