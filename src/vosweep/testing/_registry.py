"""A synthetic VO registry: seeded records shaped like the real one, and their RegTAP rows.

`build_registry` makes a deterministic registry (same seed, same records) with the shape
VO-FACTS describes: most cone searches are VizieR-like catalogues on one very large host;
there are a few hundred TAP services per 5,000 records, about a third of them with an
ObsCore table, a few EPN-TAP services and collections, some SIA1/SIA2/SSA services, data
collections published as ``tap#aux`` capabilities of TAP services (with ``isservedby``
relationships), organisations and authorities without capabilities, web pages. Records
carry wavebands, UAT-like subjects, creators and contacts, UCD-annotated table columns,
``res_detail`` rows, DOIs and ORCIDs, spatial (ASCII MOC at order 6), spectral (Joule)
and temporal (MJD) coverage, mirror URLs and a few authenticated-only interfaces.

The services of a `SimulatedVO` fleet are registered too, with their real loopback
access URLs, so that a client can discover them and then query them. Every other access
URL points at a live simulated host under ``/reg/...`` (which answers 404) or at an
address that refuses connections: nothing ever points outside 127.0.0.0/8.

The records are typed Python data (`Resource`, `Capability`, `Interface`, `Table`...), so
that tests can compute the expected answer of a query without SQL. `NamedResource` lists
records with known properties that every registry holds:

* ``WHITE_DWARF_UV`` (``ivo://sim.vosweep.test/viz/ii/283``): short name ``II/283``, a
  catalogue of white dwarfs observed in the ultraviolet; wavebands uv and optical;
  subject ``white-dwarf-stars``; a cone search (the first SCS service of the fleet, when
  there is one), a ``tap#aux`` capability and a web page; creators ``Aldous, W.`` and
  ``Brightwell, D.``; a DOI; all-sky spatial coverage; UV/optical spectral coverage;
  MJD 52640-56290.
* ``OBSCORE_TAP`` (``ivo://sim.vosweep.test/obscore/tap``): a TAP service with an
  ``ivoa.obscore`` table and the ObsCore data model in ``res_detail``.
* ``EPNTAP_SERVICE`` (``ivo://sim.vosweep.test/planets/tap``): a TAP service with an
  EPN-TAP 2.0 table (``planets.epn_core``).
* ``MIRRORED_SCS`` (``ivo://sim.vosweep.test/mirrored/scs``): a cone search whose access
  URL refuses connections and whose ``mirror_url`` is a working fleet service.
* ``AUTHENTICATED_TAP`` (``ivo://sim.vosweep.test/proprietary/tap``): a TAP service whose
  only interface has ``authenticated_only=1``.
* ``AUX_ONLY_COLLECTION`` (``ivo://sim.vosweep.test/deepfield/collection``): a data
  collection reachable only through a ``tap#aux`` capability (``servicetype="tap"``
  finds it with ``includeaux`` only), served by ``OBSCORE_TAP``.
* ``REGISTRY`` (``ivo://sim.vosweep.test/rr``): the simulated RegTAP service itself
  (``datamodel="regtap"``), with the alternate endpoints as ``mirror_url``; each
  alternate endpoint is also registered as ``ivo://sim.vosweep.test/rr/alt-<k>``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from vosweep.errors import UsageError
from vosweep.services import STANDARD_IDS
from vosweep.services import Protocol as VOProtocol
from vosweep.testing._adql import ColumnDef, TableDef, geometry_moc
from vosweep.testing._profiles import TapTable
from vosweep.testing._tapdata import EPNTAP_UTYPE, OBSCORE_MODEL, OBSCORE_UTYPE, data_tables
from vosweep.testing._votables import BASE_COLUMNS, CONFLICTING_ID_COLUMN, EXTRA_COLUMNS

if TYPE_CHECKING:
    from vosweep.testing._profiles import ServiceSpec

__all__ = [
    "RR_TABLES",
    "Capability",
    "Column",
    "Interface",
    "NamedResource",
    "Param",
    "RegistryUrls",
    "Relationship",
    "Resource",
    "Role",
    "Schema",
    "SyntheticRegistry",
    "Table",
    "build_registry",
    "rr_tables",
]

#: The authority of every simulated record.
AUTHORITY = "ivo://sim.vosweep.test"
#: Order of the coverage MOCs (what RegTAP 1.2 recommends: about a degree).
COVERAGE_ORDER = 6
#: The whole sky as an ASCII MOC.
ALL_SKY = "0/0-11"
#: Planck constant times the speed of light, J m: wavelengths to photon energies.
_HC = 1.98644586e-25


class NamedResource(StrEnum):
    """Records with known properties that every synthetic registry holds (see module doc)."""

    WHITE_DWARF_UV = f"{AUTHORITY}/viz/ii/283"
    OBSCORE_TAP = f"{AUTHORITY}/obscore/tap"
    EPNTAP_SERVICE = f"{AUTHORITY}/planets/tap"
    MIRRORED_SCS = f"{AUTHORITY}/mirrored/scs"
    AUTHENTICATED_TAP = f"{AUTHORITY}/proprietary/tap"
    AUX_ONLY_COLLECTION = f"{AUTHORITY}/deepfield/collection"
    REGISTRY = f"{AUTHORITY}/rr"


# -- the records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """An input parameter of an interface (``rr.intf_param``)."""

    name: str
    datatype: str
    ucd: str | None = None
    unit: str | None = None
    description: str = ""
    use: str = "optional"


@dataclass(frozen=True, slots=True)
class Interface:
    """One way to reach a capability (``rr.interface``).

    Attributes:
        access_url: Where to send requests.
        intf_type: ``vs:paramhttp``, ``vr:webbrowser``...
        role: ``std`` for the standard interface of a standard capability, else None.
        url_use: ``base`` or ``full``.
        std_version: The version of the standard the interface implements.
        mirror_urls: Other URLs serving the same interface (RegTAP 1.1 ``mirror_url``).
        authenticated_only: Whether only authenticated users may use it.
        params: Input parameters (``rr.intf_param``).
    """

    access_url: str
    intf_type: str = "vs:paramhttp"
    role: str | None = "std"
    url_use: str = "base"
    std_version: str | None = None
    query_type: str | None = None
    result_type: str | None = None
    mirror_urls: tuple[str, ...] = ()
    authenticated_only: bool = False
    params: tuple[Param, ...] = ()


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability of a resource (``rr.capability``), with its interfaces and details.

    Attributes:
        standard_id: Lower-cased standard identifier (None for e.g. web pages).
        cap_type: Lower-cased capability type (``vs:conesearch``, ``tr:tableaccess``...).
        interfaces: Its interfaces.
        description: Free text.
        details: ``(xpath, value)`` pairs of ``rr.res_detail`` for this capability.
    """

    standard_id: str | None
    cap_type: str
    interfaces: tuple[Interface, ...]
    description: str | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Column:
    """One table column (``rr.table_column``)."""

    name: str
    datatype: str
    ucd: str | None = None
    unit: str | None = None
    description: str = ""
    utype: str | None = None
    arraysize: str | None = None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """One table of a resource (``rr.res_table``)."""

    name: str
    columns: tuple[Column, ...]
    title: str | None = None
    description: str = ""
    utype: str | None = None
    table_type: str = "table"
    nrows: int | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema of a resource's tableset (``rr.res_schema``)."""

    name: str
    tables: tuple[Table, ...]
    title: str | None = None
    description: str = ""
    utype: str | None = None


@dataclass(frozen=True, slots=True)
class Role:
    """A creator, contact or publisher (``rr.res_role``)."""

    name: str
    base_role: str
    role_ivoid: str | None = None
    email: str | None = None
    telephone: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Relationship:
    """A relationship to another resource (``rr.relationship``), e.g. ``isservedby``."""

    relationship_type: str
    related_id: str
    related_name: str


@dataclass(frozen=True, slots=True)
class Resource:
    """One registry record, with everything the ``rr`` tables say about it.

    Attributes:
        ivoid: Lower-cased IVOA identifier.
        res_type: ``vs:catalogservice``, ``vs:catalogresource``, ``vr:organisation``...
        short_name: Short name (VizieR-like ``J/ApJ/123/45`` for catalogues).
        title: The resource title.
        description: Free text.
        wavebands: Lower-cased messenger terms (``uv``, ``optical``...).
        subjects: UAT-like concept identifiers (``white-dwarf-stars``).
        roles: Creators (in order), contacts, publishers.
        capabilities: Capabilities, in order (``cap_index`` is the 1-based position).
        schemas: Table metadata.
        coverage: Spatial coverage as an ASCII MOC (order 6), or None.
        footprint: The shape the coverage was made from: () for the whole sky, DALI
            numbers for a circle (3) or a polygon (6 or more), None without coverage.
        spectral: Spectral coverage, (low, high) photon energies in Joule.
        temporal: Temporal coverage, (start, end) in MJD.
        alt_identifiers: ``doi:...`` and ``orcid:...`` identifiers.
        relationships: ``isservedby`` and friends.
        details: Resource-level ``(xpath, value)`` pairs of ``rr.res_detail``.
    """

    ivoid: str
    res_type: str
    short_name: str | None
    title: str
    description: str
    created: str = "2015-01-01T00:00:00"
    updated: str = "2024-01-01T00:00:00"
    content_levels: tuple[str, ...] = ("research",)
    content_types: tuple[str, ...] = ()
    wavebands: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    reference_url: str | None = None
    source_format: str | None = None
    source_value: str | None = None
    version: str | None = None
    region_of_regard: float | None = None
    rights: str | None = None
    rights_uri: str | None = None
    capabilities: tuple[Capability, ...] = ()
    schemas: tuple[Schema, ...] = ()
    coverage: str | None = None
    footprint: tuple[float, ...] | None = None
    spectral: tuple[tuple[float, float], ...] = ()
    temporal: tuple[tuple[float, float], ...] = ()
    alt_identifiers: tuple[str, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    dates: tuple[tuple[str, str], ...] = ()

    @property
    def creators(self) -> tuple[str, ...]:
        """Creator names, in order."""
        return tuple(role.name for role in self.roles if role.base_role == "creator")

    @property
    def standard_ids(self) -> frozenset[str]:
        """The standard identifiers of all capabilities."""
        return frozenset(c.standard_id for c in self.capabilities if c.standard_id is not None)

    @property
    def tables(self) -> tuple[Table, ...]:
        """Every table of every schema, in order (``table_index`` is the 1-based position)."""
        return tuple(table for schema in self.schemas for table in schema.tables)

    @property
    def ucds(self) -> frozenset[str]:
        """The UCDs of all table columns."""
        return frozenset(c.ucd for t in self.tables for c in t.columns if c.ucd is not None)

    @property
    def access_urls(self) -> tuple[str, ...]:
        """Every interface's access URL, in capability order."""
        return tuple(i.access_url for c in self.capabilities for i in c.interfaces)

    def details_of(self, xpath: str) -> tuple[str, ...]:
        """The ``res_detail`` values at *xpath*, resource- and capability-level."""
        values = [v for x, v in self.details if x == xpath]
        values += [v for cap in self.capabilities for x, v in cap.details if x == xpath]
        return tuple(values)


@dataclass(frozen=True, slots=True)
class RegistryUrls:
    """Where the records point (the simulator fills this in with its live addresses).

    Attributes:
        endpoints: The RegTAP endpoints (TAP base URLs; the first one is the primary).
        hosts: Base URLs the synthetic services are spread over; the first one plays
            VizieR and carries most cone searches. Paths under ``/reg/`` answer 404.
        refused: A base URL where connections are refused.
    """

    endpoints: tuple[str, ...] = ("http://127.0.0.1:9/tap",)
    hosts: tuple[str, ...] = ("http://127.0.0.1:9",)
    refused: str = "http://127.0.0.1:9"

    def __post_init__(self) -> None:
        if not self.endpoints or not self.hosts:
            raise UsageError("RegistryUrls needs at least one endpoint and one host")
        for url in (*self.endpoints, *self.hosts, self.refused):
            if not url.startswith("http://127."):
                raise UsageError(f"registry URLs must stay on loopback, got {url!r}")


class ServedService(Protocol):
    """What the registry needs from a running fleet service (a `SimService`)."""

    @property
    def spec(self) -> ServiceSpec:
        """What the service is."""
        ...

    @property
    def url(self) -> str:
        """Its real access URL."""
        ...


# -- the rr schema (RegTAP 1.1, plus the RegTAP 1.2 coverage tables) ----------------------


def _c(
    name: str,
    datatype: str = "char",
    description: str = "",
    *,
    unit: str | None = None,
    xtype: str | None = None,
    primary: bool = False,
) -> ColumnDef:
    return ColumnDef(name, datatype, description, unit=unit, xtype=xtype, primary=primary)


_IVOID = _c("ivoid", description="The parent resource (lower-cased IVOA identifier)")
_CAP = _c("cap_index", "short", "Index of the capability within the resource (1-based)")
_INTF = _c("intf_index", "short", "Index of the interface within the resource (1-based)")
_TABLE = _c("table_index", "short", "Index of the table within the resource (1-based)")
_SCHEMA = _c("schema_index", "short", "Index of the schema within the resource (1-based)")
_PARAM_COLUMNS = (
    _c("name", description="Name of the column or parameter"),
    _c("ucd", description="UCD of its content"),
    _c("unit", description="Unit of its content"),
    _c("utype", description="Utype of its content"),
    _c("std", "short", "1 if its meaning is defined by a standard"),
    _c("datatype", description="Its type, in the type system given"),
    _c("extended_schema", description="Namespace of the extended type"),
    _c("extended_type", description="Extended type (e.g. timestamp)"),
    _c("arraysize", description="Array shape (VOTable syntax)"),
    _c("delim", description="Array delimiter"),
)


def rr_tables(*, coverage: bool = True) -> tuple[TableDef, ...]:
    """The ``rr`` tables: RegTAP 1.1, plus RegTAP 1.2 ``stc_*`` when *coverage* is true."""
    tables = [
        TableDef(
            "rr",
            "resource",
            "The resources (services, data collections, organisations...) in the registry.",
            (
                _c("ivoid", description="Unique resource identifier (lower-cased)", primary=True),
                _c("res_type", description="Resource type (vs:catalogservice...)"),
                _c("created", description="Creation date of the record", xtype="timestamp"),
                _c("short_name", description="A short name or abbreviation"),
                _c("res_title", "unicodeChar", "The full name of the resource"),
                _c("content_level", description="Hash-separated intended audiences"),
                _c("res_description", "unicodeChar", "An account of the resource"),
                _c("reference_url", description="URL of further documentation"),
                _c("creator_seq", "unicodeChar", "Creators, separated by semicolons"),
                _c("content_type", description="Hash-separated nature of the content"),
                _c("source_format", description="Format of source_value (e.g. bibcode)"),
                _c("source_value", "unicodeChar", "Bibliographic source of the resource"),
                _c("res_version", description="Version of the resource"),
                _c("region_of_regard", "float", "Intrinsic spatial resolution", unit="deg"),
                _c("waveband", description="Hash-separated messenger terms"),
                _c("notes", "unicodeChar", "Remarks from the registry operators"),
                _c("updated", description="Last update of the record", xtype="timestamp"),
                _c("rights", "unicodeChar", "Statement of the rights in the resource"),
                _c("rights_uri", description="URI of a licence"),
                _c("harvested_from", description="The registry this record came from"),
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "res_role",
            "Entities (persons, organisations) related to resources: creators, contacts...",
            (
                _IVOID,
                _c("role_name", "unicodeChar", "Name of the entity"),
                _c("role_ivoid", description="IVOA identifier of the entity"),
                _c("street_address", "unicodeChar", "Postal address"),
                _c("email", description="Email address"),
                _c("telephone", description="Telephone number"),
                _c("logo", description="URL of a logo"),
                _c("base_role", description="creator, contact, publisher or contributor"),
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "res_subject",
            "Topics and keywords of resources.",
            (_IVOID, _c("res_subject", description="A topic or keyword")),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "capability",
            "Capabilities (protocol endpoints) of resources.",
            (
                _IVOID,
                _CAP,
                _c("cap_name", description="Name of the capability"),
                _c("cap_type", description="Type of the capability (vs:conesearch...)"),
                _c("cap_description", "unicodeChar", "Description of the capability"),
                _c("standard_id", description="Standard implemented (lower-cased)"),
            ),
            indexes=(("ivoid", "cap_index"), ("standard_id",)),
        ),
        TableDef(
            "rr",
            "res_schema",
            "Schemas of the tablesets of resources.",
            (
                _IVOID,
                _SCHEMA,
                _c("schema_description", "unicodeChar", "Description of the schema"),
                _c("schema_name", description="Name of the schema"),
                _c("schema_title", "unicodeChar", "Title of the schema"),
                _c("schema_utype", description="Utype of the schema"),
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "res_table",
            "Tables of the tablesets of resources.",
            (
                _IVOID,
                _SCHEMA,
                _c("table_description", "unicodeChar", "Description of the table"),
                _c("table_name", description="Name of the table (as used in queries)"),
                _TABLE,
                _c("table_title", "unicodeChar", "Title of the table"),
                _c("table_type", description="output, table, view..."),
                _c("table_utype", description="Utype of the table (data model of the table)"),
                _c("nrows", "long", "Approximate number of rows"),
            ),
            indexes=(("ivoid", "table_index"), ("table_utype",)),
        ),
        TableDef(
            "rr",
            "table_column",
            "Columns of the tables of resources.",
            (
                _IVOID,
                _TABLE,
                *_PARAM_COLUMNS,
                _c("type_system", description="Type system of datatype"),
                _c("flag", description="Hash-separated flags: indexed, primary, nullable"),
                _c("column_description", "unicodeChar", "Description of the column"),
            ),
            indexes=(("ivoid", "table_index"), ("ucd",)),
        ),
        TableDef(
            "rr",
            "interface",
            "Interfaces of the capabilities of resources.",
            (
                _IVOID,
                _CAP,
                _INTF,
                _c("intf_type", description="Type of the interface (vs:paramhttp...)"),
                _c("intf_role", description="std for the standard interface"),
                _c("std_version", description="Version of the standard implemented"),
                _c("query_type", description="Hash-separated HTTP methods"),
                _c("result_type", description="MIME type of results"),
                _c("wsdl_url", description="URL of a WSDL document"),
                _c("url_use", description="base, full, post or dir"),
                _c("access_url", description="The URL to access the interface at"),
                _c("mirror_url", description="Hash-separated mirrors of access_url"),
                _c("authenticated_only", "short", "1 if only authenticated users may use it"),
            ),
            indexes=(("ivoid", "cap_index"),),
        ),
        TableDef(
            "rr",
            "intf_param",
            "Input parameters of interfaces.",
            (
                _IVOID,
                _INTF,
                *_PARAM_COLUMNS,
                _c("param_use", description="required, optional or ignored"),
                _c("param_description", "unicodeChar", "Description of the parameter"),
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "relationship",
            "Relationships between resources.",
            (
                _IVOID,
                _c("relationship_type", description="Type (isservedby, isderivedfrom...)"),
                _c("related_id", description="IVOA identifier of the related resource"),
                _c("related_name", "unicodeChar", "Name of the related resource"),
            ),
            indexes=(("ivoid",), ("related_id",)),
        ),
        TableDef(
            "rr",
            "validation",
            "Validation levels of resources and capabilities.",
            (
                _IVOID,
                _c("validated_by", description="Identifier of the validating registry"),
                _c("val_level", "short", "Validation level (0 to 4)"),
                _CAP,
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "res_date",
            "Dates of events in the life of resources.",
            (
                _IVOID,
                _c("date_value", description="The date", xtype="timestamp"),
                _c("value_role", description="What happened (created, updated...)"),
            ),
            indexes=(("ivoid",),),
        ),
        TableDef(
            "rr",
            "res_detail",
            "Further metadata of resources and capabilities, by xpath.",
            (
                _IVOID,
                _CAP,
                _c("detail_xpath", description="Xpath of the metadata item"),
                _c("detail_value", "unicodeChar", "Its value"),
            ),
            indexes=(("ivoid",), ("detail_xpath",)),
        ),
        TableDef(
            "rr",
            "alt_identifier",
            "Alternative identifiers (DOIs, ORCIDs...) of resources and their roles.",
            (_IVOID, _c("alt_identifier", description="The identifier, as a URI")),
            indexes=(("ivoid",),),
        ),
    ]
    if coverage:
        tables += [
            TableDef(
                "rr",
                "stc_spatial",
                "Spatial coverage of resources (RegTAP 1.2).",
                (
                    _IVOID,
                    _c("coverage", description="Coverage as an ASCII MOC", xtype="moc"),
                    _c("ref_system_name", description="Reference system (ICRS)"),
                ),
                indexes=(("ivoid",),),
            ),
            TableDef(
                "rr",
                "stc_spectral",
                "Spectral coverage of resources, as photon energies (RegTAP 1.2).",
                (
                    _IVOID,
                    _c("spectral_start", "double", "Lower limit", unit="J"),
                    _c("spectral_end", "double", "Upper limit", unit="J"),
                ),
                indexes=(("ivoid",),),
            ),
            TableDef(
                "rr",
                "stc_temporal",
                "Temporal coverage of resources, in MJD (RegTAP 1.2).",
                (
                    _IVOID,
                    _c("time_start", "double", "Start", unit="d"),
                    _c("time_end", "double", "End", unit="d"),
                ),
                indexes=(("ivoid",),),
            ),
        ]
    return tuple(tables)


#: Every ``rr`` table, coverage tables included.
RR_TABLES = rr_tables()


# -- the registry and its rows ------------------------------------------------------------


def _hashes(values: Iterable[str]) -> str | None:
    joined = "#".join(values)
    return joined or None


def _resource_rows(resource: Resource) -> Iterator[tuple[str, tuple[object, ...]]]:
    """``(table, row)`` pairs of one record, in ``rr`` column order."""
    r = resource
    yield (
        "rr.resource",
        (
            r.ivoid, r.res_type, r.created, r.short_name, r.title, _hashes(r.content_levels),
            r.description, r.reference_url, "; ".join(r.creators) or None,
            _hashes(r.content_types), r.source_format, r.source_value, r.version,
            r.region_of_regard, _hashes(r.wavebands), None, r.updated, r.rights,
            r.rights_uri, f"{AUTHORITY}/rr",
        ),
    )  # fmt: skip
    for role in r.roles:
        yield (
            "rr.res_role",
            (
                r.ivoid, role.name, role.role_ivoid, role.address, role.email,
                role.telephone, None, role.base_role,
            ),
        )  # fmt: skip
    for subject in r.subjects:
        yield "rr.res_subject", (r.ivoid, subject)
    intf_index = 0
    for cap_index, cap in enumerate(r.capabilities, start=1):
        yield (
            "rr.capability",
            (r.ivoid, cap_index, None, cap.cap_type, cap.description, cap.standard_id),
        )
        for xpath, value in cap.details:
            yield "rr.res_detail", (r.ivoid, cap_index, xpath, value)
        for intf in cap.interfaces:
            intf_index += 1
            yield (
                "rr.interface",
                (
                    r.ivoid, cap_index, intf_index, intf.intf_type, intf.role,
                    intf.std_version, intf.query_type, intf.result_type, None, intf.url_use,
                    intf.access_url, _hashes(intf.mirror_urls), int(intf.authenticated_only),
                ),
            )  # fmt: skip
            for param in intf.params:
                yield (
                    "rr.intf_param",
                    (
                        r.ivoid, intf_index, param.name, param.ucd, param.unit, None, 1,
                        param.datatype, None, None, None, None, param.use, param.description,
                    ),
                )  # fmt: skip
    table_index = 0
    for schema_index, schema in enumerate(r.schemas, start=1):
        yield (
            "rr.res_schema",
            (r.ivoid, schema_index, schema.description, schema.name, schema.title, schema.utype),
        )
        for table in schema.tables:
            table_index += 1
            yield (
                "rr.res_table",
                (
                    r.ivoid, schema_index, table.description, table.name, table_index,
                    table.title, table.table_type, table.utype, table.nrows,
                ),
            )  # fmt: skip
            for col in table.columns:
                yield (
                    "rr.table_column",
                    (
                        r.ivoid, table_index, col.name, col.ucd, col.unit, col.utype, 0,
                        col.datatype, None, None, col.arraysize, None, "vs:votabletype",
                        col.flag, col.description,
                    ),
                )  # fmt: skip
    for rel in r.relationships:
        yield "rr.relationship", (r.ivoid, rel.relationship_type, rel.related_id, rel.related_name)
    yield "rr.validation", (r.ivoid, f"{AUTHORITY}/rr", 2, None)
    for value, role_name in r.dates:
        yield "rr.res_date", (r.ivoid, value, role_name)
    for xpath, value in r.details:
        yield "rr.res_detail", (r.ivoid, None, xpath, value)
    for alt in r.alt_identifiers:
        yield "rr.alt_identifier", (r.ivoid, alt)
    if r.coverage is not None:
        yield "rr.stc_spatial", (r.ivoid, r.coverage, "ICRS")
    for low, high in r.spectral:
        yield "rr.stc_spectral", (r.ivoid, low, high)
    for start, end in r.temporal:
        yield "rr.stc_temporal", (r.ivoid, start, end)


@dataclass(frozen=True)
class SyntheticRegistry:
    """The records of a synthetic registry (see `build_registry`).

    Attributes:
        resources: Every record, named and fleet records first.
        urls: Where the records point.
        seed: The seed it was built with.
    """

    resources: tuple[Resource, ...]
    urls: RegistryUrls = field(default_factory=RegistryUrls)
    seed: int = 0

    @functools.cached_property
    def _by_ivoid(self) -> dict[str, Resource]:
        return {r.ivoid: r for r in self.resources}

    def __len__(self) -> int:
        return len(self.resources)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __getitem__(self, ivoid: str) -> Resource:
        """The record with this ivoid (matched case-insensitively, as RegTAP does)."""
        return self._by_ivoid[str(ivoid).lower()]

    def __contains__(self, ivoid: object) -> bool:
        return isinstance(ivoid, str) and ivoid.lower() in self._by_ivoid

    def ivoids(self, where: Callable[[Resource], bool] = lambda _: True) -> set[str]:
        """The ivoids of the records for which *where* is true (for expected answers)."""
        return {r.ivoid for r in self.resources if where(r)}

    def rows(self) -> dict[str, list[tuple[object, ...]]]:
        """Rows for every ``rr`` table, keyed by qualified table name."""
        rows: dict[str, list[tuple[object, ...]]] = {t.qualified_name: [] for t in RR_TABLES}
        for resource in self.resources:
            for table, row in _resource_rows(resource):
                rows[table].append(row)
        return rows

    def __repr__(self) -> str:
        return f"<SyntheticRegistry {len(self.resources)} records, seed {self.seed}>"


# -- vocabulary ----------------------------------------------------------------------------

#: Photon energy ranges (J) of the messenger terms, from wavelength ranges (m).
BAND_ENERGIES: dict[str, tuple[float, float]] = {
    band: (_HC / long_wl, _HC / short_wl)
    for band, (short_wl, long_wl) in {
        "radio": (1e-2, 10.0),
        "millimeter": (1e-4, 1e-2),
        "infrared": (7e-7, 1e-4),
        "optical": (3e-7, 7e-7),
        "uv": (1e-8, 3e-7),
        "euv": (1e-9, 1e-8),
        "x-ray": (1e-12, 1e-9),
        "gamma-ray": (1e-16, 1e-12),
    }.items()
}

_SURVEYS = (
    ("GALEX", ("uv",), "ultraviolet"),
    ("SDSS", ("optical",), "optical"),
    ("2MASS", ("infrared",), "near-infrared"),
    ("WISE", ("infrared",), "mid-infrared"),
    ("ROSAT", ("x-ray",), "X-ray"),
    ("XMM-Newton", ("x-ray", "optical"), "X-ray"),
    ("Gaia", ("optical",), "astrometric"),
    ("NVSS", ("radio",), "radio"),
    ("Fermi-LAT", ("gamma-ray",), "gamma-ray"),
    ("Planck", ("millimeter", "radio"), "millimetre"),
    ("Pan-STARRS", ("optical",), "optical"),
    ("UKIDSS", ("infrared",), "near-infrared"),
    ("Chandra", ("x-ray",), "X-ray"),
    ("LAMOST", ("optical",), "spectroscopic"),
    ("Herschel", ("infrared",), "far-infrared"),
    ("EUVE", ("euv",), "extreme-ultraviolet"),
)
_TOPICS = (
    ("white dwarfs", "white-dwarf-stars"),
    ("quasars", "quasars"),
    ("galaxy clusters", "galaxy-clusters"),
    ("variable stars", "variable-stars"),
    ("open clusters", "open-star-clusters"),
    ("globular clusters", "globular-star-clusters"),
    ("brown dwarfs", "brown-dwarfs"),
    ("pulsars", "pulsars"),
    ("supernova remnants", "supernova-remnants"),
    ("exoplanet host stars", "exoplanets"),
    ("active galactic nuclei", "active-galactic-nuclei"),
    ("young stellar objects", "young-stellar-objects"),
    ("binary stars", "binary-stars"),
    ("galaxies", "galaxies"),
    ("planetary nebulae", "planetary-nebulae"),
    ("high proper motion stars", "high-proper-motion-stars"),
    ("radio sources", "radio-sources"),
    ("cataclysmic variables", "cataclysmic-variable-stars"),
)
_SOLAR_TOPICS = (
    ("asteroids", "asteroids"),
    ("comets", "comets"),
    ("the Martian surface", "mars"),
    ("Jupiter's magnetosphere", "jupiter"),
    ("icy moons", "natural-satellites-solar-system"),
    ("meteor showers", "meteor-showers"),
)
_ADJECTIVES = ("deep", "wide-field", "multi-epoch", "homogeneous", "revised", "complete")
_JOURNALS = ("ApJ", "A+A", "MNRAS", "AJ", "ApJS", "PASP", "A+AS")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "B")
_SURNAMES = (
    "Abara", "Bergström", "Castellanos", "Dunmore", "Eklund", "Fairweather", "Gonçalves",
    "Hartigan", "Ibáñez", "Jovanović", "Kowalczyk", "Lindqvist", "Moreau", "Nakashima",
    "Okafor", "Pellegrini", "Quiroga", "Rasmussen", "Sørensen", "Thackeray", "Uribe",
    "Vasquez", "Whitcombe", "Yamada", "Zielinski", "Müller", "O'Rourke",
)  # fmt: skip
_INITIALS = "ABCDEFGHJKLMNPRSTW"
#: Data centres: (name, path prefix, whether it runs a big TAP service).
_ORGS = (
    ("gavo", "GAVO Data Center"),
    ("esa", "ESA Science Archives"),
    ("irsa", "Infrared Science Archive"),
    ("cadc", "Canadian Astronomy Data Centre"),
    ("mast", "Mikulski Archive for Space Telescopes"),
    ("heasarc", "HEASARC"),
    ("obspm", "Paris Observatory VO"),
    ("ia2", "Italian Center for Astronomical Archives"),
    ("noirlab", "NOIRLab Astro Data Lab"),
    ("aip", "Leibniz-Institut fuer Astrophysik Potsdam"),
    ("svo", "Spanish Virtual Observatory"),
    ("ned", "NASA/IPAC Extragalactic Database"),
)

#: Column templates: (name, datatype, ucd, unit, description).
_ColumnSpec = tuple[str, str, str, str | None, str]
_COMMON_COLUMNS: tuple[_ColumnSpec, ...] = (
    ("RAJ2000", "double", "pos.eq.ra;meta.main", "deg", "Right ascension (ICRS, J2000)"),
    ("DEJ2000", "double", "pos.eq.dec;meta.main", "deg", "Declination (ICRS, J2000)"),
)
_COLUMN_POOL: dict[str, tuple[_ColumnSpec, ...]] = {
    "uv": (
        ("FUVmag", "float", "phot.mag;em.UV.FUV", "mag", "GALEX FUV magnitude"),
        ("NUVmag", "float", "phot.mag;em.UV.NUV", "mag", "GALEX NUV magnitude"),
        ("e_FUVmag", "float", "stat.error;phot.mag;em.UV.FUV", "mag", "Error on FUVmag"),
    ),
    "euv": (("EUVflux", "float", "phot.flux;em.UV.10-50nm", "mW/m2", "EUV flux"),),
    "optical": (
        ("Vmag", "float", "phot.mag;em.opt.V", "mag", "V magnitude"),
        ("Bmag", "float", "phot.mag;em.opt.B", "mag", "B magnitude"),
        ("rmag", "float", "phot.mag;em.opt.R", "mag", "r magnitude"),
        ("e_Vmag", "float", "stat.error;phot.mag;em.opt.V", "mag", "Error on Vmag"),
    ),
    "infrared": (
        ("Jmag", "float", "phot.mag;em.IR.J", "mag", "J magnitude"),
        ("Kmag", "float", "phot.mag;em.IR.K", "mag", "K magnitude"),
        ("W1mag", "float", "phot.mag;em.IR.3-4um", "mag", "W1 magnitude"),
    ),
    "x-ray": (
        ("Fx", "double", "phot.flux;em.X-ray", "mW/m2", "X-ray flux"),
        ("HR1", "float", "phot.color;em.X-ray", None, "Hardness ratio"),
    ),
    "radio": (
        ("S1.4", "float", "phot.flux.density;em.radio.750-1500MHz", "mJy", "Flux at 1.4 GHz"),
    ),
    "millimeter": (("S353", "float", "phot.flux.density;em.mm", "mJy", "Flux at 353 GHz"),),
    "gamma-ray": (("Flux1000", "double", "phot.flux;em.gamma", "ph/cm2/s", "Flux above 1 GeV"),),
}
_PHYSICS_COLUMNS: tuple[_ColumnSpec, ...] = (
    ("z", "float", "src.redshift", None, "Redshift"),
    ("plx", "double", "pos.parallax.trig", "mas", "Trigonometric parallax"),
    ("pmRA", "double", "pos.pm;pos.eq.ra", "mas/yr", "Proper motion in RA*cos(Dec)"),
    ("pmDE", "double", "pos.pm;pos.eq.dec", "mas/yr", "Proper motion in Dec"),
    ("Teff", "int", "phys.temperature.effective", "K", "Effective temperature"),
    ("logg", "float", "phys.gravity", "[cm/s2]", "Surface gravity"),
    ("Dist", "float", "pos.distance", "pc", "Distance"),
    ("SpType", "char", "src.spType", None, "Spectral type"),
    ("Per", "double", "time.period", "d", "Period"),
    ("Rad", "float", "phys.size.radius", "Rsun", "Radius"),
    ("Mass", "float", "phys.mass", "Msun", "Mass"),
    ("Class", "char", "src.class", None, "Object class"),
)

_OBSCORE_COLUMNS: tuple[_ColumnSpec, ...] = (
    ("dataproduct_type", "char", "meta.code.class", None, "Data product type"),
    ("calib_level", "short", "meta.code;obs.calib", None, "Calibration level"),
    ("obs_collection", "char", "meta.id", None, "Name of the data collection"),
    ("obs_id", "char", "meta.id", None, "Observation identifier"),
    ("obs_publisher_did", "char", "meta.ref.ivoid", None, "Dataset identifier"),
    ("access_url", "char", "meta.ref.url", None, "URL of the dataset"),
    ("access_format", "char", "meta.code.mime", None, "Format of the dataset"),
    ("access_estsize", "long", "phys.size;meta.file", "kbyte", "Estimated size"),
    ("target_name", "char", "meta.id;src", None, "Target name"),
    ("s_ra", "double", "pos.eq.ra", "deg", "RA of the centre"),
    ("s_dec", "double", "pos.eq.dec", "deg", "Dec of the centre"),
    ("s_fov", "double", "phys.angSize;instr.fov", "deg", "Field of view"),
    ("s_region", "char", "pos.outline;obs.field", None, "Footprint"),
    ("s_resolution", "double", "pos.angResolution", "arcsec", "Spatial resolution"),
    ("t_min", "double", "time.start;obs.exposure", "d", "Start time (MJD)"),
    ("t_max", "double", "time.end;obs.exposure", "d", "Stop time (MJD)"),
    ("t_exptime", "double", "time.duration;obs.exposure", "s", "Exposure time"),
    ("em_min", "double", "em.wl;stat.min", "m", "Minimum wavelength"),
    ("em_max", "double", "em.wl;stat.max", "m", "Maximum wavelength"),
    ("o_ucd", "char", "meta.ucd", None, "UCD of the observable"),
    ("facility_name", "char", "meta.id;instr.tel", None, "Facility"),
    ("instrument_name", "char", "meta.id;instr", None, "Instrument"),
)
_EPN_COLUMNS: tuple[_ColumnSpec, ...] = (
    ("granule_uid", "char", "meta.id", None, "Granule identifier"),
    ("granule_gid", "char", "meta.id", None, "Group identifier"),
    ("obs_id", "char", "meta.id;obs", None, "Observation identifier"),
    ("dataproduct_type", "char", "meta.code.class", None, "Data product type"),
    ("target_name", "char", "meta.id;src", None, "Target name"),
    ("target_class", "char", "src.class", None, "Target class"),
    ("time_min", "double", "time.start", "d", "Start time (JD)"),
    ("time_max", "double", "time.end", "d", "Stop time (JD)"),
    ("spectral_range_min", "double", "em.freq;stat.min", "Hz", "Minimum frequency"),
    ("spectral_range_max", "double", "em.freq;stat.max", "Hz", "Maximum frequency"),
    ("c1min", "double", "obs.field;stat.min", "deg", "Minimum first coordinate"),
    ("c1max", "double", "obs.field;stat.max", "deg", "Maximum first coordinate"),
    ("c2min", "double", "obs.field;stat.min", "deg", "Minimum second coordinate"),
    ("c2max", "double", "obs.field;stat.max", "deg", "Maximum second coordinate"),
    ("instrument_host_name", "char", "meta.id;instr.obsty", None, "Instrument host"),
    ("instrument_name", "char", "meta.id;instr", None, "Instrument"),
    ("measurement_type", "char", "meta.ucd", None, "Measurement type"),
    ("processing_level", "int", "meta.calibLevel", None, "Processing level"),
    ("service_title", "char", "meta.title", None, "Service title"),
)

EPNCORE_LEGACY_UTYPE = "ivo://vopdc.obspm/std/epncore#schema-2.0"
REGTAP_MODEL = "ivo://ivoa.net/std/RegTAP#1.1"
DATAMODEL_XPATH = "/capability/dataModel/@ivo-id"
_TAP = "ivo://ivoa.net/std/tap"
_VOSI = "ivo://ivoa.net/std/vosi"
_VOTABLE = "application/x-votable+xml"


def _columns(specs: Iterable[_ColumnSpec]) -> tuple[Column, ...]:
    return tuple(
        Column(
            name=name,
            datatype=datatype,
            ucd=ucd,
            unit=unit,
            description=description,
            arraysize="*" if datatype == "char" else None,
        )
        for name, datatype, ucd, unit, description in specs
    )


_SCS_PARAMS = (
    Param("RA", "double", "pos.eq.ra", "deg", "Right ascension of the cone centre", "required"),
    Param("DEC", "double", "pos.eq.dec", "deg", "Declination of the cone centre", "required"),
    Param("SR", "double", "phys.angSize", "deg", "Radius of the cone", "required"),
    Param("VERB", "int", None, None, "Verbosity of the output (1, 2 or 3)"),
)


def _scs(url: str, **extra: Any) -> Capability:
    interface = Interface(
        url, std_version="1.03", query_type="get", result_type=_VOTABLE, params=_SCS_PARAMS
    )
    return Capability(
        STANDARD_IDS[VOProtocol.SCS],
        "vs:conesearch",
        (dataclasses.replace(interface, **extra),),
        details=(
            ("/capability/maxSR", "180"),
            ("/capability/maxRecords", "50000"),
            ("/capability/verbosity", "true"),
            ("/capability/testQuery/ra", "10.0"),
            ("/capability/testQuery/dec", "10.0"),
            ("/capability/testQuery/sr", "0.1"),
        ),
    )


def _tap(url: str, *, models: Sequence[str] = (), aux: bool = False, **extra: Any) -> Capability:
    interface = dataclasses.replace(Interface(url, std_version="1.1"), **extra)
    details = [(DATAMODEL_XPATH, model) for model in models]
    details.append(("/capability/language/name", "ADQL"))
    return Capability(
        f"{_TAP}#aux" if aux else _TAP,
        "vr:capability" if aux else "tr:tableaccess",
        (interface,),
        details=tuple(details),
    )


def _vosi(url: str) -> tuple[Capability, ...]:
    return tuple(
        Capability(
            f"{_VOSI}#{endpoint}",
            "vr:capability",
            (Interface(f"{url}/{endpoint}", url_use="full"),),
        )
        for endpoint in ("capabilities", "availability", "tables")
    )


def _web(url: str) -> Capability:
    return Capability(
        None,
        "vr:capability",
        (Interface(url, intf_type="vr:webbrowser", role=None, url_use="full"),),
        description="Browser-based access",
    )


def _sia(url: str) -> Capability:
    return Capability(
        STANDARD_IDS[VOProtocol.SIA],
        "sia:simpleimageaccess",
        (Interface(url, std_version="1.0", query_type="get", result_type=_VOTABLE),),
        details=(("/capability/imageServiceType", "Pointed"),),
    )


def _sia2(url: str, *, aux: bool = False) -> Capability:
    standard = "ivo://ivoa.net/std/sia#query-aux-2.0" if aux else STANDARD_IDS[VOProtocol.SIA2]
    return Capability(standard, "vr:capability", (Interface(url, std_version="2.0"),))


def _ssa(url: str) -> Capability:
    return Capability(
        STANDARD_IDS[VOProtocol.SSA],
        "ssa:simplespectralaccess",
        (Interface(url, std_version="1.1", query_type="get", result_type=_VOTABLE),),
        details=(("/capability/dataSource", "survey"), ("/capability/creationType", "archival")),
    )


def _fleet_tap(service: ServedService) -> Resource:
    """The record of a fleet TAP service: its real tables, ObsCore declared as a data model."""
    spec = service.spec
    held = data_tables(spec.profile.tap)
    schemas: dict[str, list[Table]] = {}
    for table in held:
        schemas.setdefault(table.schema, []).append(
            Table(
                name=table.qualified_name,
                columns=tuple(
                    Column(
                        name=c.name,
                        datatype=c.datatype,
                        ucd=c.ucd,
                        unit=c.unit,
                        description=c.description,
                        utype=c.utype,
                        arraysize=c.arraysize,
                    )
                    for c in table.columns
                ),
                description=table.description,
                utype=table.utype,
            )
        )
    models = (OBSCORE_MODEL,) if TapTable.OBSCORE in spec.profile.tap.tables else ()
    return Resource(
        ivoid=spec.ivoid.lower(),
        res_type="vs:catalogservice",
        short_name=spec.name,
        title=f"Simulated TAP service {spec.name}",
        description=(
            f"A TAP service of the simulated VO fleet (host {spec.host_index}): "
            f"{', '.join(t.qualified_name for t in held) or 'no data tables'}."
        ),
        content_types=("catalog", "survey"),
        wavebands=("optical",),
        subjects=("stars", "planets", "simulated-data"),
        roles=(
            Role("Simulated VO team", "creator"),
            Role("vosweep help desk", "contact", email="help@sim.vosweep.test"),
        ),
        capabilities=(_tap(service.url, models=models), *_vosi(service.url)),
        schemas=tuple(Schema(name, tuple(tables)) for name, tables in schemas.items()),
        coverage=spec.coverage,
        footprint=(),
        spectral=(BAND_ENERGIES["optical"],),
    )


# -- the builder ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Builder:
    """Makes the records; every random choice comes from its own seeded stream."""

    seed: int
    urls: RegistryUrls
    rng: random.Random = field(init=False)
    resources: list[Resource] = field(default_factory=list)
    tap_services: list[Resource] = field(default_factory=list)
    short_names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"vosweep-registry-{self.seed}")
        self.short_names.add("II/283")  # the white dwarf catalogue's, see NamedResource

    # -- small pieces --

    def host(self, org_index: int) -> str:
        """The base URL of a data centre: VizieR is host 0, others share the rest."""
        hosts = self.urls.hosts
        if org_index < 0 or len(hosts) == 1:
            return hosts[0]
        return hosts[1 + org_index % (len(hosts) - 1)]

    def person(self) -> str:
        return f"{self.rng.choice(_SURNAMES)} {self.rng.choice(_INITIALS)}."

    def dates(self) -> tuple[str, str]:
        created = self.rng.randrange(2004, 2024)
        updated = self.rng.randrange(created, 2026)
        month, day = self.rng.randrange(1, 13), self.rng.randrange(1, 29)
        return (
            f"{created}-{month:02d}-{day:02d}T10:00:00",
            f"{updated}-{month:02d}-{day:02d}T12:30:00",
        )

    def roles(self, org: str, org_name: str, n_creators: int) -> tuple[Role, ...]:
        creators = tuple(Role(self.person(), "creator") for _ in range(n_creators))
        contact = Role(
            f"{org_name} help desk",
            "contact",
            email=f"help@{org}.sim.vosweep.test",
            telephone="+00 0000 0000" if self.rng.random() < 0.3 else None,
        )
        publisher = Role(org_name, "publisher", role_ivoid=f"{AUTHORITY}/{org}")
        return (*creators, contact, publisher)

    def alt_ids(self, slug: str, creators: int) -> tuple[str, ...]:
        ids: list[str] = []
        if self.rng.random() < 0.4:
            ids.append(f"doi:10.5072/vosweep.{slug}")
        for _ in range(creators):
            if self.rng.random() < 0.15:
                digits = "".join(str(self.rng.randrange(10)) for _ in range(12))
                ids.append(f"orcid:0000-{digits[:4]}-{digits[4:8]}-{digits[8:]}")
        return tuple(ids)

    def spatial(self, *, all_sky: float = 0.25) -> tuple[str | None, tuple[float, ...] | None]:
        """A coverage MOC (order 6) and the footprint it was made from."""
        draw = self.rng.random()
        if draw < 0.3:
            return None, None
        if draw < 0.3 + all_sky:
            return ALL_SKY, ()
        ra = self.rng.uniform(0.0, 360.0)
        dec = math.degrees(math.asin(self.rng.uniform(-1.0, 1.0)))
        if self.rng.random() < 0.85:
            radius = round(math.exp(self.rng.uniform(math.log(0.3), math.log(30.0))), 3)
            footprint: tuple[float, ...] = (round(ra, 4), round(dec, 4), radius)
        else:
            half = self.rng.uniform(2.0, 10.0)
            dec = max(-80.0, min(80.0, dec))
            footprint = tuple(
                round(v, 4)
                for v in (ra - half, dec - half, ra + half, dec - half, ra + half, dec + half,
                          ra - half, dec + half)
            )  # fmt: skip
        dali = " ".join(repr(float(v)) for v in footprint)
        return geometry_moc(dali, COVERAGE_ORDER), footprint

    def spectral(self, bands: Sequence[str]) -> tuple[tuple[float, float], ...]:
        if self.rng.random() < 0.5:
            return ()
        return tuple(BAND_ENERGIES[band] for band in bands if band in BAND_ENERGIES)

    def temporal(self) -> tuple[tuple[float, float], ...]:
        if self.rng.random() < 0.6:
            return ()
        start = round(self.rng.uniform(41000.0, 60500.0), 3)
        length = math.exp(self.rng.uniform(0.0, math.log(7300.0)))
        return ((start, round(start + length, 3)),)

    def table(self, name: str, bands: Sequence[str], title: str) -> Table:
        specs: list[_ColumnSpec] = [
            ("recno", "int", "meta.record", None, "Record number"),
            *_COMMON_COLUMNS,
        ]
        for band in bands:
            pool = _COLUMN_POOL.get(band, ())
            specs += self.rng.sample(pool, self.rng.randint(1, len(pool))) if pool else []
        specs += self.rng.sample(_PHYSICS_COLUMNS, self.rng.randint(0, 4))
        return Table(
            name=name,
            columns=_columns(specs),
            title=title,
            description=f"The {title}",
            nrows=self.rng.randrange(10, 2_000_000),
        )

    def short_name(self) -> str:
        while True:
            if self.rng.random() < 0.8:
                journal = self.rng.choice(_JOURNALS)
                name = f"J/{journal}/{self.rng.randrange(1, 900)}/{self.rng.randrange(1, 999)}"
            else:
                name = f"{self.rng.choice(_ROMAN)}/{self.rng.randrange(100, 400)}"
            if name not in self.short_names:
                self.short_names.add(name)
                return name

    def topic_text(self) -> tuple[str, str, tuple[str, ...], str, tuple[str, ...]]:
        """(title, description, wavebands, survey, subjects) of a catalogue."""
        survey, bands, band_word = self.rng.choice(_SURVEYS)
        topic, subject = self.rng.choice(_TOPICS)
        adjective = self.rng.choice(_ADJECTIVES)
        count = self.rng.randrange(12, 200_000)
        title = self.rng.choice(
            (
                f"{survey} {adjective} catalogue of {topic}",
                f"{topic[0].upper()}{topic[1:]} in the {survey} {band_word} survey",
                f"{adjective[0].upper()}{adjective[1:]} {band_word} photometry of {topic}",
            )
        )
        description = (
            f"This catalogue lists {count} {topic} observed by {survey}. It gives "
            f"{band_word} measurements and positions (ICRS, epoch J2000)."
        )
        subjects = (subject, f"{bands[0]}-astronomy") if self.rng.random() < 0.5 else (subject,)
        return title, description, bands, survey, subjects

    # -- kinds of records --

    def vizier_catalogue(self, index: int, vizier_tap: str) -> Resource:
        short = self.short_name()
        slug = short.lower()
        title, description, bands, _survey, subjects = self.topic_text()
        base = f"{self.host(-1)}/reg/viz"
        tables = tuple(
            self.table(f"{short}/table{k + 1}", bands, f"table {k + 1} of {short}")
            for k in range(self.rng.choice((1, 1, 1, 2, 3)))
        )
        capabilities = [_scs(f"{base}/conesearch/{short}?")]
        if self.rng.random() < 0.6:
            capabilities.append(_tap(vizier_tap, aux=True))
        if self.rng.random() < 0.5:
            capabilities.append(_web(f"{base}/page/{short}"))
        coverage, footprint = self.spatial()
        created, updated = self.dates()
        n_creators = self.rng.randint(1, 6)
        return Resource(
            ivoid=f"{AUTHORITY}/viz/{slug}",
            res_type="vs:catalogservice",
            short_name=short,
            title=title,
            description=description,
            created=created,
            updated=updated,
            content_types=("catalog",),
            wavebands=bands,
            subjects=subjects,
            roles=self.roles("viz", "CDS (simulated)", n_creators),
            reference_url=f"{base}/page/{short}",
            source_format="bibcode",
            source_value=f"{created[:4]}SimJ..{index:05d}....",
            capabilities=tuple(capabilities),
            schemas=(Schema(short.split("/")[0].lower(), tables),),
            coverage=coverage,
            footprint=footprint,
            spectral=self.spectral(bands),
            temporal=self.temporal(),
            alt_identifiers=self.alt_ids(f"viz.{index}", n_creators),
            dates=((created, "created"), (updated, "updated")),
            region_of_regard=round(self.rng.uniform(0.0001, 0.01), 5),
        )

    def tap_service(self, index: int, kind: str) -> Resource:
        """A TAP service; *kind* is ``plain``, ``obscore`` or ``epntap``."""
        org_index = self.rng.randrange(len(_ORGS))
        org, org_name = _ORGS[org_index]
        url = f"{self.host(org_index)}/reg/{org}/tap{index}"
        models: list[str] = []
        schemas: list[Schema] = []
        bands: tuple[str, ...]
        subjects: tuple[str, ...]
        if kind == "epntap":
            topic, subject = self.rng.choice(_SOLAR_TOPICS)
            title = f"EPN-TAP service on {topic} ({org_name} {index})"
            description = f"Planetary science data on {topic}, served with EPN-TAP 2.0."
            utype = EPNTAP_UTYPE if self.rng.random() < 0.8 else EPNCORE_LEGACY_UTYPE
            schema_name = f"{subject.replace('-', '_')}{index}"
            schemas.append(
                Schema(
                    schema_name,
                    (Table(f"{schema_name}.epn_core", _columns(_EPN_COLUMNS), utype=utype),),
                )
            )
            bands, subjects = ("optical", "infrared"), (subject, "solar-system")
        else:
            survey, bands, band_word = self.rng.choice(_SURVEYS)
            topic, subject = self.rng.choice(_TOPICS)
            title = f"{org_name} TAP service {index}: {survey} and {topic}"
            description = f"Table access to {band_word} data of {survey} and catalogues of {topic}."
            subjects = (subject,)
            tables = [self.table(f"{org}{index}.main", bands, f"{survey} main table")]
            if kind == "obscore":
                models.append(OBSCORE_MODEL)
                title = f"{org_name} ObsCore archive {index} ({survey})"
                description += " Observations are published through the ObsCore table."
                obscore = Table("ivoa.obscore", _columns(_OBSCORE_COLUMNS), utype=OBSCORE_UTYPE)
                schemas.append(Schema("ivoa", (obscore,), description="IVOA standard tables"))
            schemas.append(Schema(f"{org}{index}", tuple(tables)))
        coverage, footprint = self.spatial(all_sky=0.5)
        created, updated = self.dates()
        n_creators = self.rng.randint(1, 3)
        capabilities = [_tap(url, models=models), *_vosi(url)]
        if self.rng.random() < 0.3:
            capabilities.append(_web(f"{url}/info"))
        first = capabilities[0]
        public = first.interfaces[0]
        if index % 13 == 0:  # a mirror (that happens to be down)
            mirror = f"{self.urls.refused}/reg/{org}/tap{index}"
            public = dataclasses.replace(public, mirror_urls=(mirror,))
        interfaces: tuple[Interface, ...] = (public,)
        if index % 11 == 5:  # a second, authenticated-only endpoint next to the public one
            interfaces += (Interface(f"{url}/auth", std_version="1.1", authenticated_only=True),)
        elif index % 23 == 7:  # proprietary: authenticated users only
            interfaces = (dataclasses.replace(public, authenticated_only=True),)
        capabilities[0] = dataclasses.replace(first, interfaces=interfaces)
        return Resource(
            ivoid=f"{AUTHORITY}/{org}/tap{index}",
            res_type="vs:catalogservice",
            short_name=f"{org.upper()} TAP{index}",
            title=title,
            description=description,
            created=created,
            updated=updated,
            content_types=("archive",),
            wavebands=bands,
            subjects=subjects,
            roles=self.roles(org, org_name, n_creators),
            reference_url=f"{url}/info",
            capabilities=tuple(capabilities),
            schemas=tuple(schemas),
            coverage=coverage,
            footprint=footprint,
            spectral=self.spectral(bands),
            temporal=self.temporal(),
            alt_identifiers=self.alt_ids(f"{org}.tap{index}", n_creators),
            dates=((created, "created"), (updated, "updated")),
            details=(("/facility", f"{org_name} facility"),),
        )

    def collection(self, index: int, kind: str) -> Resource:
        """A data collection served through a TAP service's ``tap#aux`` capability."""
        server = self.rng.choice(self.tap_services) if self.tap_services else None
        server_url = server.capabilities[0].interfaces[0].access_url if server else None
        org_index = self.rng.randrange(len(_ORGS))
        org, org_name = _ORGS[org_index]
        bands: tuple[str, ...]
        subjects: tuple[str, ...]
        if kind == "epntap":
            topic, subject = self.rng.choice(_SOLAR_TOPICS)
            title = f"{topic[0].upper()}{topic[1:]} observations (EPN-TAP collection {index})"
            description = f"A collection of observations of {topic}, in EPN-TAP 2.0."
            table = Table(f"coll{index}.epn_core", _columns(_EPN_COLUMNS), utype=EPNTAP_UTYPE)
            bands, subjects = ("optical",), (subject, "solar-system")
        else:
            title, description, bands, _survey, subjects = self.topic_text()
            title = f"{title} (collection {index})"
            table = self.table(f"coll{index}.data", bands, "data table")
            if kind == "obscore":
                table = Table(
                    f"coll{index}.obscore", _columns(_OBSCORE_COLUMNS), utype=OBSCORE_UTYPE
                )
        capabilities: list[Capability] = []
        relationships: list[Relationship] = []
        if server is not None and server_url is not None:
            capabilities.append(_tap(server_url, aux=True))
            relationships.append(Relationship("isservedby", server.ivoid, server.title))
        if self.rng.random() < 0.2:
            capabilities.append(_sia2(f"{self.host(org_index)}/reg/{org}/sia2/{index}", aux=True))
        coverage, footprint = self.spatial()
        created, updated = self.dates()
        n_creators = self.rng.randint(1, 5)
        return Resource(
            ivoid=f"{AUTHORITY}/{org}/coll{index}",
            res_type="vs:catalogresource",
            short_name=f"coll{index}",
            title=title,
            description=description,
            created=created,
            updated=updated,
            content_types=("catalog", "survey"),
            wavebands=bands,
            subjects=subjects,
            roles=self.roles(org, org_name, n_creators),
            capabilities=tuple(capabilities),
            schemas=(Schema(f"coll{index}", (table,)),),
            coverage=coverage,
            footprint=footprint,
            spectral=self.spectral(bands),
            temporal=self.temporal(),
            alt_identifiers=self.alt_ids(f"{org}.coll{index}", n_creators),
            relationships=tuple(relationships),
            dates=((created, "created"), (updated, "updated")),
        )

    def dal_service(self, index: int, kind: str) -> Resource:
        """An SCS (not VizieR), SIA1, SIA2 or SSA service, sometimes with a second protocol."""
        org_index = self.rng.randrange(len(_ORGS))
        org, org_name = _ORGS[org_index]
        base = f"{self.host(org_index)}/reg/{org}/{kind}/{index}"
        title, description, bands, survey, subjects = self.topic_text()
        makers: dict[str, Callable[[str], Capability]] = {
            "scs": _scs,
            "sia": _sia,
            "sia2": _sia2,
            "ssa": _ssa,
        }
        capabilities = [makers[kind](base)]
        if kind in {"sia", "sia2", "ssa"}:
            noun = "spectra" if kind == "ssa" else "images"
            title = f"{survey} {noun} of {title.split(' of ')[-1]}"
            description = f"{noun.capitalize()} from {survey}. {description}"
        if self.rng.random() < 0.15:
            other = self.rng.choice([k for k in makers if k != kind])
            capabilities.append(makers[other](f"{base}/{other}"))
        schemas: tuple[Schema, ...] = ()
        if kind == "scs":
            schemas = (
                Schema(org, (self.table(f"{org}.cat{index}", bands, f"{survey} catalogue"),)),
            )
        coverage, footprint = self.spatial()
        created, updated = self.dates()
        n_creators = self.rng.randint(1, 4)
        return Resource(
            ivoid=f"{AUTHORITY}/{org}/{kind}{index}",
            res_type="vs:catalogservice" if schemas else "vs:dataservice",
            short_name=f"{org.upper()} {kind.upper()}{index}",
            title=title,
            description=description,
            created=created,
            updated=updated,
            content_types=("survey",),
            wavebands=bands,
            subjects=subjects,
            roles=self.roles(org, org_name, n_creators),
            capabilities=tuple(capabilities),
            schemas=schemas,
            coverage=coverage,
            footprint=footprint,
            spectral=self.spectral(bands),
            temporal=self.temporal(),
            alt_identifiers=self.alt_ids(f"{org}.{kind}{index}", n_creators),
            dates=((created, "created"), (updated, "updated")),
            details=(("/instrument", f"{survey} camera"),),
        )

    def organisation(self, index: int) -> Resource:
        org, org_name = _ORGS[index % len(_ORGS)]
        kind = ("vr:organisation", "vg:authority")[index % 2]
        created, updated = self.dates()
        return Resource(
            ivoid=f"{AUTHORITY}/{org}/{'org' if kind == 'vr:organisation' else 'auth'}{index}",
            res_type=kind,
            short_name=org.upper(),
            title=f"{org_name} ({'organisation' if kind == 'vr:organisation' else 'authority'})",
            description=f"{org_name}, a data centre of the simulated VO.",
            created=created,
            updated=updated,
            content_levels=("general",),
            roles=(Role(f"{org_name} help desk", "contact", email=f"help@{org}.sim.vosweep.test"),),
            details=(("/managedAuthority", f"{org}.sim.vosweep.test"),)
            if kind == "vg:authority"
            else (),
        )

    def web_page(self, index: int) -> Resource:
        org_index = self.rng.randrange(len(_ORGS))
        org, org_name = _ORGS[org_index]
        title, description, bands, _survey, subjects = self.topic_text()
        created, updated = self.dates()
        return Resource(
            ivoid=f"{AUTHORITY}/{org}/web{index}",
            res_type="vr:service",
            short_name=f"web{index}",
            title=f"{title} (web interface)",
            description=description,
            created=created,
            updated=updated,
            wavebands=bands,
            subjects=subjects,
            roles=self.roles(org, org_name, 1),
            capabilities=(_web(f"{self.host(org_index)}/reg/{org}/web/{index}"),),
        )

    # -- named and fleet records --

    def fleet(self, services: Sequence[ServedService]) -> list[Resource]:
        resources = []
        for service in services:
            spec = service.spec
            protocol = VOProtocol(spec.protocol)
            if protocol is VOProtocol.TAP:
                resources.append(_fleet_tap(service))
                continue
            if protocol is VOProtocol.SCS:
                capability = _scs(service.url)
            else:
                makers = {VOProtocol.SIA: _sia, VOProtocol.SIA2: _sia2, VOProtocol.SSA: _ssa}
                capability = makers[protocol](service.url)
            base_columns = list(BASE_COLUMNS)
            if spec.profile.behaviour == "conflicting_types":
                base_columns[0] = CONFLICTING_ID_COLUMN
            columns = [*base_columns, *(EXTRA_COLUMNS[n] for n in spec.profile.extra_columns)]
            table = Table(
                name=f"{spec.name}.results",
                columns=tuple(
                    Column(
                        name=c.name,
                        datatype=c.datatype,
                        ucd=c.ucd,
                        unit=c.unit,
                        description=c.description,
                        arraysize=c.arraysize,
                    )
                    for c in columns
                ),
                title=f"Sources of {spec.name}",
                description="What the simulated cone search returns",
            )
            resources.append(
                Resource(
                    ivoid=spec.ivoid.lower(),
                    res_type="vs:catalogservice",
                    short_name=spec.name,
                    title=f"Simulated {protocol.value.upper()} service {spec.name}",
                    description=(
                        f"A service of the simulated VO fleet (host {spec.host_index}): "
                        "seeded random sources all over the sky."
                    ),
                    content_types=("catalog",),
                    wavebands=("optical",),
                    subjects=("stars", "simulated-data"),
                    roles=(
                        Role("Simulated VO team", "creator"),
                        Role("vosweep help desk", "contact", email="help@sim.vosweep.test"),
                    ),
                    capabilities=(capability,),
                    schemas=(Schema(spec.name, (table,)),),
                    coverage=spec.coverage,
                    footprint=(),
                    spectral=(BAND_ENERGIES["optical"],),
                )
            )
        return resources

    def named(self, services: Sequence[ServedService], vizier_tap: str) -> list[Resource]:
        scs = [s for s in services if VOProtocol(s.spec.protocol) is VOProtocol.SCS]
        working_scs = scs[0].url if scs else f"{self.host(-1)}/reg/viz/conesearch/II/283?"
        endpoints = self.urls.endpoints
        obscore_url = f"{self.host(0)}/reg/sim/obscore/tap"
        wd_table = Table(
            "II/283/catalog",
            _columns(
                (
                    ("WD", "char", "meta.id;meta.main", None, "White dwarf designation"),
                    *_COMMON_COLUMNS,
                    ("FUVmag", "float", "phot.mag;em.UV.FUV", "mag", "GALEX FUV magnitude"),
                    ("NUVmag", "float", "phot.mag;em.UV.NUV", "mag", "GALEX NUV magnitude"),
                    ("Vmag", "float", "phot.mag;em.opt.V", "mag", "V magnitude"),
                    ("Teff", "int", "phys.temperature.effective", "K", "Effective temperature"),
                    ("logg", "float", "phys.gravity", "[cm/s2]", "Surface gravity"),
                )
            ),
            title="The white dwarf catalogue",
            description="White dwarfs with ultraviolet photometry",
            nrows=4471,
        )
        rr_schema = Schema(
            "rr",
            tuple(
                Table(
                    t.qualified_name,
                    tuple(
                        Column(c.name, c.datatype, c.ucd, c.unit, c.description, None, c.arraysize)
                        for c in t.columns
                    ),
                    description=t.description,
                )
                for t in RR_TABLES
            ),
            description="The relational registry (RegTAP 1.1)",
            utype=REGTAP_MODEL,
        )
        registry_caps = (
            _tap(endpoints[0], models=(REGTAP_MODEL,), mirror_urls=tuple(endpoints[1:])),
            *_vosi(endpoints[0]),
        )
        team = (
            Role("Simulated VO team", "creator"),
            Role("vosweep help desk", "contact", email="help@sim.vosweep.test"),
        )
        named = [
            Resource(
                ivoid=NamedResource.WHITE_DWARF_UV,
                res_type="vs:catalogservice",
                short_name="II/283",
                title="Catalogue of white dwarfs observed in the ultraviolet (simulated)",
                description=(
                    "Positions, GALEX ultraviolet and optical photometry and atmospheric "
                    "parameters of 4471 spectroscopically confirmed white dwarfs."
                ),
                created="2009-03-02T10:00:00",
                updated="2023-05-17T12:30:00",
                content_types=("catalog",),
                wavebands=("uv", "optical"),
                subjects=("white-dwarf-stars", "ultraviolet-astronomy"),
                roles=(
                    Role("Aldous, W.", "creator"),
                    Role("Brightwell, D.", "creator"),
                    Role("CDS (simulated) help desk", "contact", email="help@viz.sim.vosweep.test"),
                    Role("CDS (simulated)", "publisher", role_ivoid=f"{AUTHORITY}/viz"),
                ),
                reference_url=f"{self.host(-1)}/reg/viz/page/II/283",
                source_format="bibcode",
                source_value="2009SimWD...1A",
                capabilities=(
                    _scs(working_scs),
                    _tap(vizier_tap, aux=True),
                    _web(f"{self.host(-1)}/reg/viz/page/II/283"),
                ),
                schemas=(Schema("ii", (wd_table,)),),
                coverage=ALL_SKY,
                footprint=(),
                spectral=(BAND_ENERGIES["uv"], BAND_ENERGIES["optical"]),
                temporal=((52640.0, 56290.0),),
                alt_identifiers=("doi:10.5072/vosweep.ii.283", "orcid:0000-0002-0000-0283"),
                dates=(("2009-03-02T10:00:00", "created"), ("2023-05-17T12:30:00", "updated")),
            ),
            Resource(
                ivoid=NamedResource.OBSCORE_TAP,
                res_type="vs:catalogservice",
                short_name="SIM ObsCore",
                title="Simulated ObsCore archive",
                description="Observations of the simulated VO, published through ObsCore.",
                wavebands=("optical", "infrared", "radio"),
                subjects=("observational-astronomy",),
                roles=team,
                capabilities=(_tap(obscore_url, models=(OBSCORE_MODEL,)), *_vosi(obscore_url)),
                schemas=(
                    Schema(
                        "ivoa",
                        (Table("ivoa.obscore", _columns(_OBSCORE_COLUMNS), utype=OBSCORE_UTYPE),),
                    ),
                ),
                coverage=ALL_SKY,
                footprint=(),
            ),
            Resource(
                ivoid=NamedResource.EPNTAP_SERVICE,
                res_type="vs:catalogservice",
                short_name="SIM planets",
                title="Simulated planetary data (EPN-TAP)",
                description="Observations of asteroids and comets, served with EPN-TAP 2.0.",
                wavebands=("optical",),
                subjects=("asteroids", "comets", "solar-system"),
                roles=team,
                capabilities=(_tap(f"{self.host(0)}/reg/sim/planets/tap"),),
                schemas=(
                    Schema(
                        "planets",
                        (Table("planets.epn_core", _columns(_EPN_COLUMNS), utype=EPNTAP_UTYPE),),
                    ),
                ),
            ),
            Resource(
                ivoid=NamedResource.MIRRORED_SCS,
                res_type="vs:catalogservice",
                short_name="SIM mirrored",
                title="Simulated cone search with a mirror",
                description="Its access URL refuses connections; its mirror answers.",
                wavebands=("optical",),
                subjects=("stars",),
                roles=team,
                capabilities=(
                    _scs(f"{self.urls.refused}/reg/mirrored/scs", mirror_urls=(working_scs,)),
                ),
                coverage=ALL_SKY,
                footprint=(),
            ),
            Resource(
                ivoid=NamedResource.AUTHENTICATED_TAP,
                res_type="vs:catalogservice",
                short_name="SIM proprietary",
                title="Simulated proprietary archive (authentication required)",
                description="Proprietary data: only authenticated users may query it.",
                wavebands=("x-ray",),
                subjects=("x-ray-astronomy",),
                roles=team,
                capabilities=(
                    _tap(f"{self.host(0)}/reg/sim/proprietary/tap", authenticated_only=True),
                ),
            ),
            Resource(
                ivoid=NamedResource.AUX_ONLY_COLLECTION,
                res_type="vs:catalogresource",
                short_name="SIM deep field",
                title="Simulated deep field photometry",
                description="Photometry of a deep field, served by the simulated ObsCore archive.",
                wavebands=("optical", "infrared"),
                subjects=("galaxies",),
                roles=team,
                capabilities=(_tap(obscore_url, aux=True),),
                schemas=(
                    Schema(
                        "deepfield",
                        (
                            self.table(
                                "deepfield.photometry", ("optical", "infrared"), "photometry"
                            ),
                        ),
                    ),
                ),
                relationships=(
                    Relationship(
                        "isservedby", NamedResource.OBSCORE_TAP, "Simulated ObsCore archive"
                    ),
                ),
                coverage=geometry_moc("150.1 2.2 1.0", COVERAGE_ORDER),
                footprint=(150.1, 2.2, 1.0),
            ),
            Resource(
                ivoid=NamedResource.REGISTRY,
                res_type="vs:catalogservice",
                short_name="SIM RegTAP",
                title="Simulated relational registry (RegTAP)",
                description="The registry of the simulated VO, queried with RegTAP.",
                subjects=("virtual-observatories",),
                roles=team,
                capabilities=registry_caps,
                schemas=(rr_schema,),
            ),
        ]
        named += [
            Resource(
                ivoid=f"{NamedResource.REGISTRY}/alt-{k}",
                res_type="vs:catalogservice",
                short_name=f"SIM RegTAP alt {k}",
                title=f"Simulated relational registry, alternate endpoint {k}",
                description="Another RegTAP endpoint of the simulated VO, with the same records.",
                subjects=("virtual-observatories",),
                roles=team,
                capabilities=(_tap(url, models=(REGTAP_MODEL,)), *_vosi(url)),
                schemas=(rr_schema,),
            )
            for k, url in enumerate(endpoints[1:], start=1)
        ]
        return named


#: Shares of the generated records, per kind (VizieR-like catalogues take the rest).
_SHARES = {
    "tap": 0.04,
    "obscore": 0.02,
    "epntap": 0.003,
    "collection": 0.12,
    "obscore_collection": 0.005,
    "epntap_collection": 0.003,
    "scs": 0.05,
    "sia": 0.02,
    "sia2": 0.01,
    "ssa": 0.015,
    "organisation": 0.02,
    "web": 0.02,
}


def build_registry(
    n_resources: int = 2000,
    *,
    seed: int = 0,
    services: Sequence[ServedService] = (),
    urls: RegistryUrls | None = None,
) -> SyntheticRegistry:
    """Build a deterministic synthetic registry.

    Args:
        n_resources: How many generated records; the named records (`NamedResource`, plus
            one per alternate endpoint) and one record per fleet service come on top.
        seed: The seed: the same seed (and URLs) gives the same records.
        services: Running fleet services to register with their real access URLs.
        urls: Where the records point (defaults to addresses that refuse connections).

    Returns:
        The registry; named records first, then fleet records, then generated ones.

    Raises:
        UsageError: On a negative size, or when the ``sim`` extra is missing.
    """
    if n_resources < 0:
        raise UsageError(f"n_resources must not be negative, got {n_resources}")
    builder = _Builder(seed, urls or RegistryUrls())
    vizier_tap = f"{builder.host(-1)}/reg/viz/tap"
    resources = builder.named(services, vizier_tap) + builder.fleet(services)
    counts = {kind: round(share * n_resources) for kind, share in _SHARES.items()}
    # VizieR-like catalogues make up the rest (the shares sum to well under one).
    n_vizier = max(0, n_resources - sum(counts.values()))
    generated: list[Resource] = []
    index = 0
    for kind in ("tap", "obscore", "epntap"):
        for _ in range(counts[kind]):
            service = builder.tap_service(index, "plain" if kind == "tap" else kind)
            builder.tap_services.append(service)
            generated.append(service)
            index += 1
    for kind, count in (
        ("plain", counts["collection"]),
        ("obscore", counts["obscore_collection"]),
        ("epntap", counts["epntap_collection"]),
    ):
        for _ in range(count):
            generated.append(builder.collection(index, kind))
            index += 1
    for kind in ("scs", "sia", "sia2", "ssa"):
        for _ in range(counts[kind]):
            generated.append(builder.dal_service(index, kind))
            index += 1
    generated += [builder.organisation(index + k) for k in range(counts["organisation"])]
    index += counts["organisation"]
    generated += [builder.web_page(index + k) for k in range(counts["web"])]
    index += counts["web"]
    generated += [builder.vizier_catalogue(index + k, vizier_tap) for k in range(n_vizier)]
    generated = generated[:n_resources]
    return SyntheticRegistry(tuple(resources + generated), builder.urls, seed)
