"""The Simple Cone Search side of the simulator: parameters, seeded rows, documents.

Pure functions (no I/O): the server hands over the request parameters and gets a
`Document` back. Rows depend only on the fleet seed, the service index and the cone, so
`expected_rows` can tell a test how many rows a healthy answer carries without a request.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vosweep.testing._profiles import Behaviour, ServiceSpec
from vosweep.testing._votables import (
    BASE_COLUMNS,
    CONFLICTING_ID_COLUMN,
    EXTRA_COLUMNS,
    Column,
    Document,
    escape_text,
    query_error_document,
    results_document,
    scs_error_document,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Cone", "ConeError", "ScsHandler", "cone_area", "expected_rows", "parse_cone"]

#: Cone values are rounded to this many decimals (1e-6 deg = 3.6 mas) before they seed the
#: rows, so a client that prints RA=10.1234567891 as "10.123457" still gets the same rows.
_SEED_DECIMALS = 6
#: Square degrees on the whole sky.
_SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2
#: Poisson means above this are clipped (numpy's limit is far above any useful cone).
_MAX_MEAN = 1e15


class ConeError(ValueError):
    """A cone-search request is missing a parameter or has an invalid one."""


@dataclass(frozen=True, slots=True)
class Cone:
    """A cone on the sky, in degrees (ICRS).

    Attributes:
        ra: Right ascension of the centre, 0 <= ra <= 360.
        dec: Declination of the centre, -90 <= dec <= 90.
        sr: Search radius, 0 <= sr <= 180.
        verb: The SCS verbosity (1, 2 or 3), or None when the client did not say.
    """

    ra: float
    dec: float
    sr: float
    verb: int | None = None


def _number(params: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = params.get(name)
    if raw is None or not raw.strip():
        raise ConeError(f"missing required parameter {name}")
    try:
        value = float(raw)
    except ValueError:
        raise ConeError(f"parameter {name}={raw!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConeError(f"parameter {name}={raw!r} is outside [{low:g}, {high:g}] degrees")
    return value


def parse_cone(params: Mapping[str, str]) -> Cone:
    """Read RA, DEC, SR (degrees) and the optional VERB from upper-cased *params*.

    SCS 1.03 spells the names in upper case; the server upper-cases what it receives, so
    ``ra=`` works too (many real services accept it, and clients do send it).

    Raises:
        ConeError: When a parameter is missing, not a number or out of range. The server
            turns this into the standard's HTTP 200 error document.
    """
    ra = _number(params, "RA", 0.0, 360.0)
    dec = _number(params, "DEC", -90.0, 90.0)
    sr = _number(params, "SR", 0.0, 180.0)
    verb: int | None = None
    raw_verb = params.get("VERB", "").strip()
    if raw_verb in {"1", "2", "3"}:
        verb = int(raw_verb)
    # Any other VERB is ignored, as the standard lets services do.
    return Cone(ra=ra if ra < 360.0 else 0.0, dec=dec, sr=sr, verb=verb)


def cone_area(sr: float) -> float:
    """The solid angle of a cone of radius *sr* degrees, in square degrees."""
    return _SKY_DEG2 * (1.0 - math.cos(math.radians(sr))) / 2.0


def _rng(spec: ServiceSpec, cone: Cone) -> np.random.Generator:
    """A generator seeded from a stable hash (Python's ``hash()`` is salted per process)."""
    key = struct.pack(
        "<qq3d",
        spec.seed,
        spec.index,
        round(cone.ra, _SEED_DECIMALS),
        round(cone.dec, _SEED_DECIMALS),
        round(cone.sr, _SEED_DECIMALS),
    )
    digest = hashlib.blake2b(key, digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _true_count(spec: ServiceSpec, rng: np.random.Generator, cone: Cone) -> int:
    mean = min(spec.profile.density * cone_area(round(cone.sr, _SEED_DECIMALS)), _MAX_MEAN)
    return int(rng.poisson(mean))


def _served_count(spec: ServiceSpec, true_count: int) -> tuple[int, bool]:
    """Rows in the answer, and whether it overflows."""
    profile = spec.profile
    if profile.behaviour is Behaviour.EMPTY:
        return 0, False
    if profile.behaviour is Behaviour.OVERFLOW:
        return profile.max_rows, True
    if true_count > profile.max_rows:
        return profile.max_rows, True
    return true_count, False


def expected_rows(spec: ServiceSpec, ra: float, dec: float, sr: float) -> int:
    """The number of rows a healthy answer of *spec* to this cone carries.

    "Healthy" means the table the service serves once it answers at all: 0 for
    ``empty``, ``max_rows`` for ``overflow`` (and for any cone holding more than
    ``max_rows`` sources). For failing behaviours it is the count the service would have
    returned; use `ServiceProfile.delivers_rows` to know whether a client can get them.
    """
    cone = Cone(ra=ra, dec=dec, sr=sr)
    return _served_count(spec, _true_count(spec, _rng(spec, cone), cone))[0]


def _positions(rng: np.random.Generator, cone: Cone, n: int) -> tuple[np.ndarray, np.ndarray]:
    """*n* points uniform on the sphere inside the cone (degrees)."""
    cos_r = math.cos(math.radians(cone.sr))
    cos_t = 1.0 - rng.random(n) * (1.0 - cos_r)
    sin_t = np.sqrt(np.clip(1.0 - cos_t * cos_t, 0.0, 1.0))
    bearing = rng.random(n) * (2 * math.pi)
    ra0, dec0 = math.radians(cone.ra), math.radians(cone.dec)
    sin_dec = math.sin(dec0) * cos_t + math.cos(dec0) * sin_t * np.cos(bearing)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    ra = ra0 + np.arctan2(
        np.sin(bearing) * sin_t * math.cos(dec0), cos_t - math.sin(dec0) * sin_dec
    )
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _designations(ra: np.ndarray, dec: np.ndarray) -> list[str]:
    """IAU-style ``JHHMMSS.s+DDMMSS`` fragments, computed column-wise for speed."""
    tenths = np.floor(ra / 15.0 * 36000.0).astype(np.int64)  # RA in tenths of a time second
    arcsec = np.floor(np.abs(dec) * 3600.0).astype(np.int64)
    fields = zip(
        (tenths // 36000).tolist(),
        (tenths // 600 % 60).tolist(),
        (tenths // 10 % 60).tolist(),
        (tenths % 10).tolist(),
        np.where(dec < 0, "-", "+").tolist(),
        (arcsec // 3600).tolist(),
        (arcsec // 60 % 60).tolist(),
        (arcsec % 60).tolist(),
        strict=True,
    )
    return [
        f"J{h:02d}{m:02d}{s:02d}.{t}{sign}{d:02d}{dm:02d}{ds:02d}"
        for h, m, s, t, sign, d, dm, ds in fields
    ]


def _floats(values: np.ndarray, fmt: str, nulls: np.ndarray | None = None) -> list[str]:
    cells = [format(v, fmt) for v in values.tolist()]
    if nulls is not None:
        for i in np.flatnonzero(nulls).tolist():
            cells[i] = ""
    return cells


#: How each extra column's values are drawn: (rng, n) -> cells, already XML-escaped.
_EXTRA_VALUES: Mapping[str, Callable[[np.random.Generator, int], list[str]]] = {
    "pmra": lambda rng, n: _floats(rng.normal(0.0, 8.0, n), ".3f"),
    "pmdec": lambda rng, n: _floats(rng.normal(-2.0, 8.0, n), ".3f"),
    "parallax": lambda rng, n: _floats(np.abs(rng.normal(0.8, 1.0, n)), ".4f"),
    "e_mag": lambda rng, n: _floats(rng.uniform(0.001, 0.3, n), ".3f", rng.random(n) < 0.1),
    "bmag": lambda rng, n: _floats(rng.normal(17.0, 2.0, n), ".3f", rng.random(n) < 0.15),
    "flags": lambda rng, n: [
        ("", "B", "D&amp;S", "&lt;v&gt;")[k] for k in rng.integers(0, 4, n).tolist()
    ],
}


def _cone_document(spec: ServiceSpec, cone: Cone) -> Document:
    profile = spec.profile
    rng = _rng(spec, cone)
    true_count = _true_count(spec, rng, cone)
    n, overflow = _served_count(spec, true_count)
    ra, dec = _positions(rng, cone, n)
    ids = int(rng.integers(1, 2**40)) * 1000 + np.arange(n)
    mags = rng.normal(16.0, 2.0, n)
    null_mag = rng.random(n) < 0.1
    designations = _designations(ra, dec)
    id_column = BASE_COLUMNS[0]
    if profile.behaviour is Behaviour.CONFLICTING_TYPES:
        id_column = CONFLICTING_ID_COLUMN
        id_cells = [f"{d}-{k}" for k, d in enumerate(designations)]
    else:
        id_cells = [str(i) for i in ids.tolist()]
    # Every 17th name carries markup-like text, so that clients' XML unescaping is exercised
    # (designations themselves never need escaping).
    suffix = " " + escape_text("<A&B>")
    names = [
        f"SIM {d}{suffix}" if i % 17 == 0 else f"SIM {d}"
        for i, d in zip(ids.tolist(), designations, strict=True)
    ]
    columns: list[Column] = [id_column, *BASE_COLUMNS[1:]]
    cells: list[list[str]] = [
        id_cells,
        _floats(ra, ".9f"),
        _floats(dec, ".9f"),
        _floats(mags, ".3f", null_mag),
        names,
    ]
    for name in profile.extra_columns:
        columns.append(EXTRA_COLUMNS[name])
        cells.append(_EXTRA_VALUES[name](rng, n))
    keep = {1: 3, 2: len(BASE_COLUMNS)}.get(cone.verb or 3, len(columns))
    return results_document(
        columns[:keep],
        cells[:keep],
        description=f'Simulated cone search {spec.name} ("{spec.ivoid}") & friends',
        resource_infos=[("request", f"RA={cone.ra}&DEC={cone.dec}&SR={cone.sr}", None)],
        overflow_message=(
            f"result truncated at the service limit of {profile.max_rows} rows"
            if overflow
            else None
        ),
    )


class ScsHandler:
    """Answers Simple Cone Search requests (the SCS entry of the protocol registry)."""

    def answer(self, spec: ServiceSpec, params: Mapping[str, str]) -> Document:
        """Return the document a service with *spec* sends for these (upper-cased) params.

        Only the behaviours that shape the *content* are handled here (empty, overflow,
        conflicting types, query error); HTTP-level faults are the server's business.
        """
        try:
            cone = parse_cone(params)
        except ConeError as exc:
            return scs_error_document(str(exc))
        if spec.profile.behaviour is Behaviour.QUERY_ERROR:
            return query_error_document(
                f"Simulated failure of {spec.name}: table temporarily unavailable for queries"
            )
        return _cone_document(spec, cone)
