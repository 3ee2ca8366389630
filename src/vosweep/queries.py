"""What to ask: protocol-neutral query values, validated and normalised to degrees up front."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import astropy.units as u
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vosweep.errors import UsageError
from vosweep.services import Protocol

__all__ = ["Cone"]


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
        try:
            super().__init__(**data)
        except ValueError as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"invalid cone: {exc}") from None

    @model_validator(mode="before")
    @classmethod
    def _to_degrees(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("ra", "dec", "radius"):
                if key in data and data[key] is not None:
                    data[key] = _degrees(data[key], key)
            if "ra" in data and isinstance(data["ra"], float):
                data["ra"] %= 360.0
        return data

    @model_validator(mode="after")
    def _check_dec(self) -> Cone:
        if not -90.0 <= self.dec <= 90.0:
            raise ValueError(f"dec must be within [-90, 90] degrees, got {self.dec}")
        return self


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
