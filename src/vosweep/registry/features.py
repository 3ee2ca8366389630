"""What a RegTAP endpoint can do, read from its TAPRegExt capabilities (sans-I/O).

Registries differ: UNION, ILIKE, MOC, the geometry functions and the RegTAP 1.2 coverage
tables (``rr.stc_spatial``, ``rr.stc_spectral``, ``rr.stc_temporal``) are all optional.
`RegistryFeatures` records what one endpoint has, so that constraints can pick a query
shape that endpoint runs, or refuse with `vosweep.errors.RegistryFeatureMissing` before
anything is sent. Its default is a modern registry with everything (what the IVOA's main
RegTAP endpoints offer), so building queries needs no capabilities at all.

The coverage tables are not part of TAPRegExt. A capabilities document declaring the
RegTAP 1.2 data model implies them; otherwise (RegTAP 1.1 endpoints that have them
anyway are common) `parse_capabilities` leaves `RegistryFeatures.coverage_tables` as
``None``, "unknown", and the client may run `TABLES_QUERY` and call
`RegistryFeatures.with_tables` with the answer (pyvo reads the VOSI tables document for
the same purpose, which is megabytes on a big registry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vosweep.errors import ResponseFormatError
from vosweep.protocols._xml import Element, parse_tree
from vosweep.protocols.adql_features import GEOMETRY_FUNCTIONS

__all__ = [
    "COVERAGE_TABLES",
    "DEFAULT_FEATURES",
    "REGTAP_UDFS",
    "TABLES_QUERY",
    "RegistryFeatures",
    "parse_capabilities",
]

_TAPREGEXT = "ivo://ivoa.net/std/tapregext#"
#: TAPRegExt feature types, lower-cased (ivoids compare case-insensitively).
FEATURES_UDF = _TAPREGEXT + "features-udf"
FEATURES_GEO = _TAPREGEXT + "features-adqlgeo"
FEATURES_SETS = _TAPREGEXT + "features-adql-sets"
FEATURES_STRING = _TAPREGEXT + "features-adql-string"

#: The user-defined functions every RegTAP (1.0 and later) endpoint must implement.
REGTAP_UDFS = frozenset({"ivo_hasword", "ivo_hashlist_has", "ivo_nocasematch", "ivo_string_agg"})
#: The RegTAP 1.2 coverage tables.
COVERAGE_TABLES = frozenset({"rr.stc_spatial", "rr.stc_spectral", "rr.stc_temporal"})
#: Lists the ``rr`` tables of an endpoint; feed the ``table_name`` column to `with_tables`.
TABLES_QUERY = "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'rr'"

_REGTAP_DM = "ivo://ivoa.net/std/regtap#"
_ADQL_GEOMETRY = frozenset(GEOMETRY_FUNCTIONS)


@dataclass(frozen=True, slots=True)
class RegistryFeatures:
    """What one RegTAP endpoint supports; the default is a modern registry with everything.

    Attributes:
        adql_versions: ADQL versions declared, e.g. ``{"2.0", "2.1"}``. With 2.1, geometries
            are written without the (deprecated) coordinate-system argument.
        union: ADQL ``UNION`` (TAPRegExt ``#features-adql-sets``). Freetext uses it when there.
        ilike: ADQL 2.1 ``ILIKE`` (``#features-adql-string``); otherwise ``ivo_nocasematch``.
        moc: The ``MOC`` geometry function (a GAVO ADQL extension) that Spatial needs.
        udfs: Names of the user-defined functions, lower-cased (``#features-udf``).
        geometry: Geometry functions, upper-cased (``#features-adqlgeo``).
        data_models: Data-model ivoids of the TAP capability, lower-cased.
        coverage_tables: Which RegTAP 1.2 coverage tables exist; ``None`` when unknown.
    """

    adql_versions: frozenset[str] = frozenset({"2.0", "2.1"})
    union: bool = True
    ilike: bool = True
    moc: bool = True
    udfs: frozenset[str] = REGTAP_UDFS | {"ivo_interval_overlaps"}
    geometry: frozenset[str] = _ADQL_GEOMETRY
    data_models: frozenset[str] = frozenset({_REGTAP_DM + "1.1"})
    coverage_tables: frozenset[str] | None = COVERAGE_TABLES

    def __post_init__(self) -> None:
        # Normalised here, so that hand-made instances compare as parsed ones do.
        normal: dict[str, Any] = {
            "adql_versions": frozenset(v.strip() for v in self.adql_versions),
            "udfs": frozenset(name.lower() for name in self.udfs),
            "geometry": frozenset(name.upper() for name in self.geometry),
            "data_models": frozenset(dm.lower() for dm in self.data_models),
        }
        if self.coverage_tables is not None:
            normal["coverage_tables"] = _table_names(self.coverage_tables)
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    def has_udf(self, name: str) -> bool:
        """Return whether the user-defined function *name* is declared (case-insensitive)."""
        return name.lower() in self.udfs

    def has_geometry(self, name: str) -> bool:
        """Return whether the ADQL geometry function *name* is declared."""
        return name.upper() in self.geometry

    def has_table(self, name: str) -> bool | None:
        """Return whether the coverage table *name* exists, or None when that is unknown."""
        if self.coverage_tables is None:
            return None
        return name.lower() in self.coverage_tables

    def with_tables(self, names: Iterable[str]) -> RegistryFeatures:
        """Return a copy that knows the coverage tables from a list of the endpoint's tables.

        *names* are table names as `TABLES_QUERY` returns them (``rr.stc_spatial``; a
        missing schema prefix is taken to be ``rr``).
        """
        found = _table_names(names) & COVERAGE_TABLES
        return dataclasses.replace(self, coverage_tables=found)


def _table_names(names: Iterable[str]) -> frozenset[str]:
    cleaned = (name.strip().strip('"').lower() for name in names)
    return frozenset(name if "." in name else f"rr.{name}" for name in cleaned)


#: A registry with every feature vosweep's constraints can use.
DEFAULT_FEATURES = RegistryFeatures()


# --- parsing -------------------------------------------------------------------------


def _tap_capability(root: Element) -> Element:
    if root.name != "capabilities":
        raise ResponseFormatError(
            f"not a VOSI capabilities document: the root element is <{root.name}>"
        )
    for capability in root.iter("capability"):
        standard_id = capability.attrs.get("standardID", "").strip().lower()
        xsi_type = capability.attrs.get("type", "")
        if standard_id == "ivo://ivoa.net/std/tap" or xsi_type.endswith("TableAccess"):
            return capability
    raise ResponseFormatError("the capabilities document has no TAP capability")


def _form_name(form: str) -> str:
    """``ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER`` -> ``ivo_hasword``."""
    return form.partition("(")[0].strip()


def _regtap_minor(data_models: Iterable[str]) -> int | None:
    """The highest RegTAP 1.x minor version among *data_models*, if any."""
    minors = []
    for dm in data_models:
        if dm.startswith(_REGTAP_DM + "1."):
            minor = dm.removeprefix(_REGTAP_DM + "1.")
            # isascii: str.isdigit accepts digits int() refuses (superscripts).
            minors.append(int(minor[:9]) if minor.isascii() and minor.isdigit() else 0)
    return max(minors, default=None)


def parse_capabilities(body: bytes) -> RegistryFeatures:
    """Read a registry's features from its VOSI capabilities document (TAPRegExt).

    Only the ADQL language of the TAP capability counts. Declaring the RegTAP data model
    implies the UDFs RegTAP mandates (`REGTAP_UDFS`), declared or not; declaring RegTAP
    1.2 or later implies the coverage tables, which are otherwise left unknown (``None``).

    Args:
        body: The document as sent by ``{tap}/capabilities``.

    Raises:
        ResponseFormatError: Not well-formed XML, a DOCTYPE or entity declaration (refused
            for safety), not a capabilities document, or no TAP capability in it.
    """
    capability = _tap_capability(parse_tree(body, "VOSI capabilities document"))
    data_models = frozenset(
        dm.attrs.get("ivo-id", "").strip().lower() for dm in capability.iter("dataModel")
    ) - {""}
    versions: set[str] = set()
    declared: set[tuple[str, str]] = set()
    for language in capability.iter("language"):
        names = [name.text for name in language.iter("name")]
        # "ADQL", and "ADQL-2.0" from some older services.
        if not any(name.upper().startswith("ADQL") for name in names):
            continue
        for version in language.iter("version"):
            text = version.text or version.attrs.get("ivo-id", "").rpartition("#v")[2]
            if text:
                versions.add(text)
        for block in language.iter("languageFeatures"):
            kind = block.attrs.get("type", "").strip().lower()
            for feature in block.iter("feature"):
                for form in feature.iter("form"):
                    declared.add((kind, _form_name(form.text)))

    regtap_minor = _regtap_minor(data_models)
    udfs = {name for kind, name in declared if kind == FEATURES_UDF}
    if regtap_minor is not None:
        udfs |= REGTAP_UDFS
    return RegistryFeatures(
        adql_versions=frozenset(versions),
        union=(FEATURES_SETS, "UNION") in {(k, n.upper()) for k, n in declared},
        ilike=any(name.upper() == "ILIKE" for _, name in declared),
        moc=any(name.upper() == "MOC" for _, name in declared),
        udfs=frozenset(udfs),
        geometry=frozenset(name for kind, name in declared if kind == FEATURES_GEO),
        data_models=data_models,
        coverage_tables=COVERAGE_TABLES if regtap_minor is not None and regtap_minor >= 2 else None,
    )
