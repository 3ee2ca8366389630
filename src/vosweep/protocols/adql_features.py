"""Which optional ADQL features a query uses, and which of them a TAP service lacks (sans-I/O).

ADQL 2.1 makes set operations, CAST, ILIKE, OFFSET and the geometry functions optional,
and TAPRegExt is where a service declares the ones it has. Sending a UNION to a service
that declares it cannot run one only earns an error after a round trip (or, worse, a
job in the queue); knowing before lets the fan-out skip that service with the reason.

Services declaring ADQL 2.0 only predate these declarations and often run the features
anyway, so a feature counts as missing only when the service shows it declares that
kind of feature: it speaks ADQL 2.1, or declares other features of the same type.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vosweep.protocols.vosi import TapCapabilities

__all__ = ["FEATURE_TYPES", "GEOMETRY_FUNCTIONS", "missing_features", "used_features"]

_TAPREGEXT = "ivo://ivoa.net/std/tapregext#"
#: The ADQL geometry functions (optional in ADQL 2.1, ``#features-adqlgeo``).
GEOMETRY_FUNCTIONS = (
    "AREA",
    "BOX",
    "CENTROID",
    "CIRCLE",
    "CONTAINS",
    "COORD1",
    "COORD2",
    "COORDSYS",
    "DISTANCE",
    "INTERSECTS",
    "POINT",
    "POLYGON",
    "REGION",
)
#: Feature name -> the TAPRegExt feature type declaring it.
FEATURE_TYPES: dict[str, str] = {
    **dict.fromkeys(("UNION", "INTERSECT", "EXCEPT"), _TAPREGEXT + "features-adql-sets"),
    "CAST": _TAPREGEXT + "features-adql-type",
    "ILIKE": _TAPREGEXT + "features-adql-string",
    "OFFSET": _TAPREGEXT + "features-adql-offset",
    **dict.fromkeys(GEOMETRY_FUNCTIONS, _TAPREGEXT + "features-adqlgeo"),
}
_CALLED = frozenset({"CAST", *GEOMETRY_FUNCTIONS})
# String literals ('it''s'), delimited identifiers ("x"), comments: never keywords.
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_WORD = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?")


def used_features(adql: str) -> set[str]:
    """The optional features *adql* uses (upper-case names of `FEATURE_TYPES`)."""
    code = _NOT_CODE.sub(" ", adql)
    found = set()
    for match in _WORD.finditer(code):
        word = match[1].upper()
        if word not in FEATURE_TYPES:
            continue
        if word in _CALLED and not match[2]:
            continue  # a column called "area" or "point" is not the function
        found.add(word)
    return found


def missing_features(caps: TapCapabilities, adql: str) -> list[str]:
    """The features *adql* uses that *caps* shows the service does not have, sorted."""
    declared_types = {kind for kind, _ in caps.features}
    speaks_21 = any(version.startswith("2.1") for version in caps.adql_versions)
    missing = []
    for name in used_features(adql):
        kind = FEATURE_TYPES[name]
        if caps.supports(name):
            continue
        if speaks_21 or kind in declared_types:
            missing.append(name)
    return sorted(missing)
