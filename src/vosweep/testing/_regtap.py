"""The simulated RegTAP registry: a real TAP service (sync + VOSI) over the synthetic records.

Each endpoint is an aiohttp application on its own loopback host, serving under ``/tap``:

* ``/tap/sync`` (GET or POST): ``REQUEST=doQuery``, ``LANG=ADQL``, ``QUERY``, ``MAXREC``,
  ``RESPONSEFORMAT``/``FORMAT``; parameter names are case-insensitive, as TAP requires.
  Queries run on SQLite in a worker thread (`AdqlDatabase`); errors come back as TAP
  error VOTables (QUERY_STATUS=ERROR) with HTTP 400; MAXREC cuts with OVERFLOW.
* ``/tap/capabilities``: VOSI capabilities with a TAPRegExt capability, whose
  ``languageFeatures`` say what the endpoint supports (the RegTAP functions, ADQL
  geometry, the ``MOC`` keyword pyvo looks for, UNION...).
* ``/tap/tables`` (``?detail=min`` too) and ``/tap/tables/{name}``: VOSI tables of
  ``rr`` and ``tap_schema``; RegTAP 1.2 coverage support shows as ``rr.stc_*`` tables,
  which is how pyvo detects it.
* ``/tap/availability``: VOSI availability.

A `RegistryProfile` makes variants real registries show: without UNION, without MOC and
geometry, without the coverage tables, rejecting three-part column names (and with them
pyvo's OR-form of freetext queries), down (connection refused), failing (503 with
Retry-After, 429, 500, resets, hangs) or slow.
"""

from __future__ import annotations

import collections
import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from vosweep.errors import UsageError
from vosweep.testing._adql import (
    AdqlDatabase,
    AdqlError,
    AdqlFeatures,
    ColumnDef,
    QueryResult,
    ResultColumn,
    TableDef,
    require_sim_extra,
)
from vosweep.testing._profiles import Behaviour
from vosweep.testing._registry import (
    REGTAP_MODEL,
    RegistryUrls,
    ServedService,
    SyntheticRegistry,
    build_registry,
    rr_tables,
)
from vosweep.testing._votables import escape_attr, escape_text, html_error_page

if TYPE_CHECKING:
    from vosweep.testing._profiles import ServiceSpec

__all__ = [
    "REGISTRY_PATH",
    "RegistryProfile",
    "RegistrySite",
    "RegistryStats",
    "result_votable",
    "tap_schema_rows",
    "tap_schema_tables",
]

#: Where the TAP service lives on its host.
REGISTRY_PATH = "/tap"
#: Behaviours a registry endpoint can have.
REGISTRY_BEHAVIOURS = frozenset(
    {
        Behaviour.OK,
        Behaviour.HTTP_500,
        Behaviour.UNAVAILABLE,
        Behaviour.RATE_LIMITED,
        Behaviour.HANG,
        Behaviour.RESET,
    }
)
#: Media type of every VOTable the registry sends.
VOTABLE_TYPE = "application/x-votable+xml"
#: Values of RESPONSEFORMAT / FORMAT that mean "the VOTable we send".
_FORMATS = frozenset(
    {
        "votable",
        "votable/td",
        "votabletd",
        "text/xml",
        "application/x-votable+xml",
        "application/x-votable+xml;serialization=tabledata",
    }
)
_LANGS = frozenset({"ADQL", "ADQL-2.0", "ADQL-2.1"})
#: How many recent queries each endpoint remembers (for tests and debugging).
_RECENT = 200
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
_VOTABLE_OPEN = (
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class RegistryProfile(BaseModel, frozen=True, extra="forbid"):
    """What a simulated RegTAP endpoint offers and how it behaves.

    The records (*n_resources*, *seed*) come from the primary endpoint's profile; the
    alternate endpoints serve the same records, each with its own features and behaviour.

    Attributes:
        n_resources: Generated records (the named and fleet records come on top).
        seed: Seed of the generated records.
        union: Whether ADQL set operations (UNION...) are supported and advertised.
        geometry: Whether ADQL geometry and ``MOC`` are supported and advertised
            (pyvo's Spatial constraint needs them).
        coverage_tables: Whether the RegTAP 1.2 tables ``rr.stc_spatial``,
            ``rr.stc_spectral`` and ``rr.stc_temporal`` exist.
        reject_or_freetext: Refuse column names with a schema (``rr.res_subject.res_subject``)
            with 'Unknown column', as some registries do: this breaks pyvo's OR-form
            of freetext queries (sent when UNION is missing).
        behaviour: ``ok``, ``http_500``, ``unavailable`` (503 + Retry-After),
            ``rate_limited`` (429 + Retry-After), ``hang`` or ``reset``.
        dead: Nothing listens: connections are refused.
        fail_times: Requests that fail before a failing endpoint recovers (negative: never).
        retry_after: The ``Retry-After`` of 503 and 429 answers, in seconds.
        latency: Delay before every answer, in seconds.
        max_hang: Upper bound on a ``hang``, in seconds.
        maxrec_default: Rows returned when the client sends no MAXREC.
        maxrec_hard: Most rows ever returned, whatever MAXREC says.
        query_timeout: Seconds any one query may run before it is stopped.
    """

    n_resources: int = Field(default=2000, ge=0)
    seed: int = 0
    union: bool = True
    geometry: bool = True
    coverage_tables: bool = True
    reject_or_freetext: bool = False
    behaviour: Behaviour = Behaviour.OK
    dead: bool = False
    fail_times: int = -1
    retry_after: float = Field(default=1.0, ge=0.0)
    latency: float = Field(default=0.0, ge=0.0)
    max_hang: float = Field(default=600.0, gt=0.0)
    maxrec_default: int = Field(default=10_000, ge=0)
    maxrec_hard: int = Field(default=100_000, ge=0)
    query_timeout: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> RegistryProfile:
        if self.behaviour not in REGISTRY_BEHAVIOURS:
            allowed = sorted(b.value for b in REGISTRY_BEHAVIOURS)
            raise ValueError(f"a registry cannot behave {self.behaviour.value!r}; use {allowed}")
        if self.maxrec_default > self.maxrec_hard:
            raise ValueError("maxrec_default must not exceed maxrec_hard")
        return self

    @property
    def features(self) -> AdqlFeatures:
        """The ADQL features the endpoint's database offers."""
        return AdqlFeatures(
            sets=self.union, geometry=self.geometry, three_part_columns=not self.reject_or_freetext
        )


class RegistryStats(BaseModel, frozen=True, extra="forbid"):
    """Server-side counters of one registry endpoint.

    Attributes:
        url: The endpoint's TAP base URL.
        requests: Every HTTP request it received (VOSI included).
        queries: Sync queries it received.
        errors: Answers with an HTTP error status.
        recent_queries: The last ADQL texts it received, oldest first.
    """

    url: str
    requests: int
    queries: int
    errors: int
    recent_queries: tuple[str, ...]


# -- TAP_SCHEMA ----------------------------------------------------------------------------


def tap_schema_tables() -> tuple[TableDef, ...]:
    """The TAP_SCHEMA tables every TAP service describes its tables in."""

    def c(name: str, datatype: str = "char", description: str = "") -> ColumnDef:
        return ColumnDef(name, datatype, description)

    return (
        TableDef(
            "tap_schema",
            "schemas",
            "Schemas of this service",
            (c("schema_name"), c("utype"), c("description"), c("schema_index", "int")),
        ),
        TableDef(
            "tap_schema",
            "tables",
            "Tables of this service",
            (
                c("schema_name"),
                c("table_name"),
                c("table_type"),
                c("utype"),
                c("description"),
                c("table_index", "int"),
            ),
        ),
        TableDef(
            "tap_schema",
            "columns",
            "Columns of the tables of this service",
            (
                c("table_name"),
                c("column_name"),
                c("utype"),
                c("ucd"),
                c("unit"),
                c("description"),
                c("datatype"),
                c("arraysize"),
                c("xtype"),
                c("principal", "int"),
                c("indexed", "int"),
                c("std", "int"),
                c("column_index", "int"),
            ),
        ),
        TableDef(
            "tap_schema",
            "keys",
            "Foreign keys between tables",
            (c("key_id"), c("from_table"), c("target_table"), c("utype"), c("description")),
        ),
        TableDef(
            "tap_schema",
            "key_columns",
            "Columns of the foreign keys",
            (c("key_id"), c("from_column"), c("target_column")),
        ),
    )


def tap_schema_rows(tables: Sequence[TableDef]) -> dict[str, list[tuple[object, ...]]]:
    """TAP_SCHEMA rows describing *tables* (TAP_SCHEMA itself included by the caller)."""
    schemas = sorted({t.schema for t in tables})
    rows: dict[str, list[tuple[object, ...]]] = {
        "tap_schema.schemas": [
            (name, REGTAP_MODEL if name == "rr" else None, f"The {name} schema", index)
            for index, name in enumerate(schemas)
        ],
        "tap_schema.tables": [
            (t.schema, t.qualified_name, "table", t.utype, t.description, index)
            for index, t in enumerate(tables)
        ],
        "tap_schema.columns": [
            (
                t.qualified_name,
                c.name,
                None,
                c.ucd,
                c.unit,
                c.description,
                c.datatype,
                c.arraysize,
                c.xtype,
                1,
                int(c.primary),
                0,
                index,
            )
            for t in tables
            for index, c in enumerate(t.columns)
        ],
        "tap_schema.keys": [],
        "tap_schema.key_columns": [],
    }
    return rows


# -- documents -----------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Replace characters XML 1.0 cannot carry (a query may contain anything)."""
    return _ILLEGAL_XML.sub("\ufffd", text)


def _info(name: str, value: str, content: str | None = None) -> str:
    value = escape_attr(_clean(value))
    if content is None:
        return f'<INFO name="{name}" value="{value}"/>\n'
    return f'<INFO name="{name}" value="{value}">{escape_text(_clean(content))}</INFO>\n'


def _field(column: ResultColumn, name: str) -> str:
    attrs = [f'name="{escape_attr(_clean(name))}"', f'datatype="{column.datatype}"']
    if column.arraysize is not None:
        attrs.append(f'arraysize="{column.arraysize}"')
    for key, value in (("xtype", column.xtype), ("unit", column.unit), ("ucd", column.ucd)):
        if value:
            attrs.append(f'{key}="{escape_attr(value)}"')
    description = (
        f"<DESCRIPTION>{escape_text(column.description)}</DESCRIPTION>"
        if column.description
        else ""
    )
    return f"<FIELD {' '.join(attrs)}>{description}</FIELD>\n"


def _cell_formatter(datatype: str) -> Callable[[object], str]:
    if datatype in {"short", "int", "long"}:

        def integer(value: object) -> str:
            if isinstance(value, bool) or value is None:
                return ""
            if isinstance(value, int):
                return str(value)
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return ""

        return integer
    if datatype in {"float", "double"}:

        def real(value: object) -> str:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return ""
            number = float(value)
            if number != number:  # noqa: PLR0124 -- NaN check without importing math
                return "NaN"
            if number in {float("inf"), float("-inf")}:
                return "+Inf" if number > 0 else "-Inf"
            return repr(number)

        return real

    def text(value: object) -> str:
        return "" if value is None else escape_text(_clean(str(value)))

    return text


def _unique_names(columns: Sequence[ResultColumn]) -> list[str]:
    """Field names, made unique (``ivoid``, ``ivoid_2``): astropy renames duplicates anyway."""
    seen: dict[str, int] = {}
    names = []
    for column in columns:
        count = seen.get(column.name, 0) + 1
        seen[column.name] = count
        names.append(column.name if count == 1 else f"{column.name}_{count}")
    return names


def result_votable(result: QueryResult, *, query: str, maxrec: int) -> bytes:
    """The TAP answer for *result*: one TABLEDATA table, OVERFLOW after it when cut."""
    names = _unique_names(result.columns)
    formatters = [_cell_formatter(column.datatype) for column in result.columns]
    parts = [
        _XML_DECL,
        _VOTABLE_OPEN,
        '<RESOURCE type="results">\n',
        _info("QUERY_STATUS", "OK"),
        _info("query", query),
        _info("server_software", "vosweep simulated RegTAP"),
        _info("request_date", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        '<TABLE name="result">\n',
        *(_field(column, name) for column, name in zip(result.columns, names, strict=True)),
        "<DATA><TABLEDATA>\n",
    ]
    for row in result.rows:
        cells = "</TD><TD>".join(f(v) for f, v in zip(formatters, row, strict=True))
        parts.append(f"<TR><TD>{cells}</TD></TR>\n")
    parts.append("</TABLEDATA></DATA>\n</TABLE>\n")
    if result.overflow:
        parts.append(_info("QUERY_STATUS", "OVERFLOW", f"result truncated at MAXREC={maxrec}"))
    parts.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(parts).encode()


def error_votable(message: str) -> bytes:
    """A TAP error document: QUERY_STATUS=ERROR with the message, no table."""
    return (
        _XML_DECL
        + '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        + '<RESOURCE type="results">\n'
        + _info("QUERY_STATUS", "ERROR", message)
        + "</RESOURCE>\n</VOTABLE>\n"
    ).encode()


_UDFS = (
    (
        "ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER",
        "1 if every word of needle is a word of haystack (no case, plurals folded), else 0.",
    ),
    (
        "ivo_nocasematch(value TEXT, pattern TEXT) -> INTEGER",
        "1 if value matches the LIKE pattern case-insensitively, 0 otherwise.",
    ),
    (
        "ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
        "1 if item is in the hash-separated list (case-insensitively), 0 otherwise.",
    ),
    (
        "ivo_string_agg(expression TEXT, delimiter TEXT) -> TEXT",
        "An aggregate function concatenating the values of a group with the delimiter.",
    ),
    (
        "ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
        "1 if [l1, h1] overlaps [l2, h2] (touching counts), 0 otherwise.",
    ),
)
_GEOMETRY_FORMS = (
    "POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE", "COORD1", "COORD2",
)  # fmt: skip


def _features(kind: str, forms: Sequence[tuple[str, str | None]]) -> str:
    items = []
    for form, description in forms:
        text = f"<form>{escape_text(form)}</form>"
        if description:
            text += f"<description>{escape_text(description)}</description>"
        items.append(f"<feature>{text}</feature>")
    return f'<languageFeatures type="{kind}">{"".join(items)}</languageFeatures>'


def capabilities_xml(base_url: str, profile: RegistryProfile, mirrors: Sequence[str]) -> str:
    """VOSI capabilities: TAP (with TAPRegExt) and the VOSI endpoints."""
    tr = "ivo://ivoa.net/std/TAPRegExt"
    features = [_features(f"{tr}#features-udf", _UDFS)]
    keywords = [("COALESCE", "SQL COALESCE"), ("CASE", "The SQL92 CASE expression")]
    if profile.geometry:
        features.append(_features(f"{tr}#features-adqlgeo", [(f, None) for f in _GEOMETRY_FORMS]))
        keywords.insert(
            0,
            (
                "MOC",
                "A geometry function creating MOCs: MOC(ascii_moc) or MOC(order, geometry).",
            ),
        )
    features += [
        _features(
            f"{tr}#features-adql-string", [("LOWER", None), ("UPPER", None), ("ILIKE", None)]
        ),
        _features(f"{tr}#features-adql-offset", [("OFFSET", None)]),
        _features(f"{tr}#features-adql-type", [("CAST", None)]),
        _features(f"{tr}#features-adql-common-table", [("WITH", None)]),
        _features("ivo://org.gavo.dc/std/exts#extra-adql-keywords", keywords),
    ]
    if profile.union:
        forms = [("UNION", None), ("EXCEPT", None), ("INTERSECT", None)]
        features.append(_features(f"{tr}#features-adql-sets", forms))
    mirror_xml = "".join(f"<mirrorURL>{escape_text(url)}</mirrorURL>" for url in mirrors)
    vosi = "".join(
        f'<capability standardID="ivo://ivoa.net/std/VOSI#{name}">'
        f'<interface xsi:type="vs:ParamHTTP" role="std">'
        f'<accessURL use="full">{escape_text(base_url)}/{name}</accessURL></interface>'
        "</capability>\n"
        for name in ("capabilities", "availability", "tables")
    )
    return (
        _XML_DECL + '<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"'
        ' xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface role="std" version="1.1" xsi:type="vs:ParamHTTP">'
        f'<accessURL use="base">{escape_text(base_url)}</accessURL>{mirror_xml}</interface>'
        f'<dataModel ivo-id="{REGTAP_MODEL}">Registry 1.1</dataModel>'
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL run on SQLite by vosweep's simulated registry.</description>"
        + "".join(features)
        + "</language>"
        f'<outputFormat ivo-id="{tr}#output-votable-td">'
        f"<mime>{VOTABLE_TYPE};serialization=TABLEDATA</mime><alias>votable</alias>"
        "</outputFormat>"
        f"<executionDuration><default>{profile.query_timeout:g}</default></executionDuration>"
        f'<outputLimit><default unit="row">{profile.maxrec_default}</default>'
        f'<hard unit="row">{profile.maxrec_hard}</hard></outputLimit>'
        "</capability>\n" + vosi + "</cap:capabilities>\n"
    )


def _column_xml(column: ColumnDef) -> str:
    parts = [f"<name>{escape_text(column.name)}</name>"]
    if column.description:
        parts.append(f"<description>{escape_text(column.description)}</description>")
    if column.unit:
        parts.append(f"<unit>{escape_text(column.unit)}</unit>")
    if column.ucd:
        parts.append(f"<ucd>{escape_text(column.ucd)}</ucd>")
    attrs = ['xsi:type="vs:VOTableType"']
    if column.arraysize is not None:
        attrs.append(f'arraysize="{column.arraysize}"')
    if column.xtype:
        attrs.append(f'extendedType="{escape_attr(column.xtype)}"')
    parts.append(f"<dataType {' '.join(attrs)}>{column.datatype}</dataType>")
    if column.primary:
        parts.append("<flag>primary</flag>")
    return f"<column>{''.join(parts)}</column>"


def _table_xml(table: TableDef, *, columns: bool, element: str = "table", ns: str = "") -> str:
    body = [f"<name>{escape_text(table.qualified_name)}</name>"]
    body.append(f"<description>{escape_text(table.description)}</description>")
    if table.utype:
        body.append(f"<utype>{escape_text(table.utype)}</utype>")
    if columns:
        body.extend(_column_xml(column) for column in table.columns)
    return f'<{element}{ns} type="table">{"".join(body)}</{element}>'


_TABLES_NS = (
    ' xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"'
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def tables_xml(tables: Sequence[TableDef], *, columns: bool = True) -> str:
    """VOSI tables: a tableset with one schema per schema name."""
    schemas: dict[str, list[TableDef]] = {}
    for table in tables:
        schemas.setdefault(table.schema, []).append(table)
    body = []
    for name, members in schemas.items():
        utype = f"<utype>{REGTAP_MODEL}</utype>" if name == "rr" else ""
        inner = "".join(_table_xml(t, columns=columns) for t in members)
        body.append(
            f"<schema><name>{name}</name><description>The {name} schema</description>"
            f"{utype}{inner}</schema>"
        )
    return f"{_XML_DECL}<vosi:tableset{_TABLES_NS}>{''.join(body)}</vosi:tableset>\n"


def table_xml(table: TableDef) -> str:
    """VOSI 1.1 answer for one table (``/tables/{name}``)."""
    return _XML_DECL + _table_xml(table, columns=True, element="vosi:table", ns=_TABLES_NS) + "\n"


def availability_xml(*, available: bool = True) -> str:
    """VOSI availability."""
    state = "true" if available else "false"
    return (
        f'{_XML_DECL}<avl:availability xmlns:avl="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<avl:available>{state}</avl:available>"
        "<avl:note>vosweep simulated RegTAP registry</avl:note></avl:availability>\n"
    )


# -- one endpoint --------------------------------------------------------------------------


#: How the simulator opens a listening site: (app, address) -> (runner, port).
Listen = Callable[[web.Application, str], Awaitable[tuple[web.AppRunner, int]]]
#: How the simulator waits for up to n seconds, less when it closes; true when closing.
WaitClosing = Callable[[float], Awaitable[bool]]


class _ParamError(ValueError):
    """A TAP request parameter is missing or wrong."""


@dataclass(slots=True)
class _Endpoint:
    """One running registry endpoint: its profile, database and counters."""

    profile: RegistryProfile
    address: str
    url: str = ""
    database: AdqlDatabase | None = None
    tables: tuple[TableDef, ...] = ()
    mirrors: tuple[str, ...] = ()
    runner: web.AppRunner | None = None
    limiter: anyio.CapacityLimiter | None = None
    requests: int = 0
    queries: int = 0
    errors: int = 0
    attempts: int = 0
    recent: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_RECENT)
    )

    def stats(self) -> RegistryStats:
        return RegistryStats(
            url=self.url,
            requests=self.requests,
            queries=self.queries,
            errors=self.errors,
            recent_queries=tuple(self.recent),
        )

    def reset(self) -> None:
        self.requests = self.queries = self.errors = self.attempts = 0
        self.recent.clear()


async def _params(request: web.Request) -> dict[str, str]:
    """Query and form parameters, names upper-cased (TAP names are case-insensitive)."""
    items: list[tuple[str, str]] = list(request.query.items())
    if request.method == "POST":
        form = await request.post()
        items.extend((k, v) for k, v in form.items() if isinstance(v, str))
    params: dict[str, str] = {}
    for key, value in items:
        params.setdefault(key.upper(), value)
    return params


def _maxrec(params: Mapping[str, str], profile: RegistryProfile) -> int:
    raw = params.get("MAXREC", "").strip()
    if not raw:
        return profile.maxrec_default
    try:
        value = int(raw)
    except ValueError:
        raise _ParamError(f"MAXREC must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise _ParamError(f"MAXREC must be a non-negative integer, got {raw!r}")
    return min(value, profile.maxrec_hard)


def _check_sync(params: Mapping[str, str]) -> str:
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise _ParamError(f"unsupported REQUEST={request!r} (this service only does doQuery)")
    lang = params.get("LANG", "ADQL")
    if lang.upper() not in _LANGS:
        raise _ParamError(f"unsupported LANG={lang!r}; use ADQL")
    response_format = params.get("RESPONSEFORMAT") or params.get("FORMAT")
    if response_format and response_format.lower().replace(" ", "") not in _FORMATS:
        raise _ParamError(f"unsupported RESPONSEFORMAT={response_format!r}; use votable")
    if params.get("UPLOAD"):
        raise _ParamError("UPLOAD is not supported by this service")
    query = params.get("QUERY", "")
    if not query.strip():
        raise _ParamError("missing QUERY parameter")
    return query


def _run(database: AdqlDatabase, query: str, maxrec: int) -> tuple[int, bytes]:
    """Run a query and build its answer (in a worker thread: both can take a while)."""
    try:
        result = database.execute(query, maxrec=maxrec)
    except AdqlError as exc:
        return 400, error_votable(str(exc))
    return 200, result_votable(result, query=query, maxrec=maxrec)


class _App:
    """The aiohttp handlers of one endpoint."""

    def __init__(self, endpoint: _Endpoint, wait_closing: WaitClosing) -> None:
        self.endpoint = endpoint
        self.wait_closing = wait_closing

    def application(self) -> web.Application:
        app = web.Application(client_max_size=2 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint
        endpoint.requests += 1
        profile = endpoint.profile
        if profile.latency:
            await self.wait_closing(profile.latency)
        failure = await self._misbehave(request)
        if failure is not None:
            endpoint.errors += 1
            return failure
        response = await self._route(request)
        if response.status >= 400:
            endpoint.errors += 1
        return response

    async def _misbehave(self, request: web.Request) -> web.StreamResponse | None:
        profile = self.endpoint.profile
        if profile.behaviour is Behaviour.OK:
            return None
        self.endpoint.attempts += 1
        if 0 <= profile.fail_times < self.endpoint.attempts:
            return None
        retry_after = (
            str(int(profile.retry_after))
            if float(profile.retry_after).is_integer()
            else repr(profile.retry_after)
        )
        if profile.behaviour is Behaviour.UNAVAILABLE:
            return web.Response(
                status=503,
                text="registry temporarily unavailable\n",
                headers={"Retry-After": retry_after},
            )
        if profile.behaviour is Behaviour.RATE_LIMITED:
            return web.Response(
                status=429, text="too many requests\n", headers={"Retry-After": retry_after}
            )
        if profile.behaviour is Behaviour.HTTP_500:
            page = html_error_page("500 Internal Server Error", "registry database error")
            return web.Response(status=500, text=page, content_type="text/html")
        if profile.behaviour is Behaviour.HANG:
            await self.wait_closing(profile.max_hang)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500)  # never sent: the connection is gone

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path == REGISTRY_PATH:
            return web.Response(
                text="vosweep simulated RegTAP registry: see sync, capabilities, tables,"
                " availability\n"
            )
        tail = path.removeprefix(REGISTRY_PATH + "/") if path.startswith(REGISTRY_PATH) else None
        if tail == "sync":
            return await self._sync(request)
        if tail == "capabilities":
            text = capabilities_xml(self.endpoint.url, self.endpoint.profile, self.endpoint.mirrors)
            return web.Response(text=text, content_type="text/xml")
        if tail == "availability":
            return web.Response(text=availability_xml(), content_type="text/xml")
        if tail == "tables":
            detail = request.query.get("detail", "").lower()
            text = tables_xml(self.endpoint.tables, columns=detail != "min")
            return web.Response(text=text, content_type="text/xml")
        if tail is not None and tail.startswith("tables/"):
            name = tail.removeprefix("tables/").lower()
            for table in self.endpoint.tables:
                if table.qualified_name.lower() == name:
                    return web.Response(text=table_xml(table), content_type="text/xml")
            return web.Response(status=404, text=f"no table {name}\n")
        return web.Response(status=404, text=f"nothing at {request.path}\n")

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint
        params = await _params(request)
        query = params.get("QUERY")
        if query:
            endpoint.queries += 1
            endpoint.recent.append(query)
        try:
            query = _check_sync(params)
            maxrec = _maxrec(params, endpoint.profile)
        except _ParamError as exc:
            return web.Response(status=400, body=error_votable(str(exc)), content_type=VOTABLE_TYPE)
        database = endpoint.database
        if database is None:
            return web.Response(status=503, text="registry starting\n")
        status, body = await anyio.to_thread.run_sync(
            functools.partial(_run, database, query, maxrec),
            limiter=endpoint.limiter,
            abandon_on_cancel=True,
        )
        return web.Response(status=status, body=body, content_type=VOTABLE_TYPE)


# -- the site: every endpoint of a simulated VO --------------------------------------------


@dataclass(frozen=True, slots=True)
class _FleetService:
    spec: ServiceSpec
    url: str


class RegistrySite:
    """The RegTAP endpoints of a `SimulatedVO`: one primary, optional alternates.

    Args:
        primary: The primary endpoint's profile (its *n_resources* and *seed* make the
            records every endpoint serves).
        alternates: One profile per alternate endpoint.

    Raises:
        UsageError: When the ``sim`` extra is missing.
    """

    def __init__(
        self, primary: RegistryProfile, alternates: Sequence[RegistryProfile] = ()
    ) -> None:
        require_sim_extra("sqlglot")
        require_sim_extra("cdshealpix")
        self.profiles = (primary, *alternates)
        self._endpoints: list[_Endpoint] = []
        self._databases: list[AdqlDatabase] = []
        self.registry: SyntheticRegistry | None = None

    @classmethod
    def from_options(
        cls, registry: RegistryProfile | bool, mirrors: int | Sequence[RegistryProfile]
    ) -> RegistrySite | None:
        """The site `SimulatedVO`'s ``registry=`` and ``registry_mirrors=`` ask for, if any.

        An integer number of mirrors gives healthy copies of the primary's features.

        Raises:
            UsageError: On mirrors without a registry, or a negative number of mirrors.
        """
        if registry is False:
            if mirrors:
                raise UsageError("registry_mirrors needs registry=True or a RegistryProfile")
            return None
        primary = RegistryProfile() if registry is True else registry
        if isinstance(mirrors, int):
            if mirrors < 0:
                raise UsageError(f"registry_mirrors must not be negative, got {mirrors}")
            healthy = primary.model_copy(
                update={"behaviour": Behaviour.OK, "dead": False, "latency": 0.0}
            )
            alternates: Sequence[RegistryProfile] = [healthy] * mirrors
        else:
            alternates = list(mirrors)
        return cls(primary, alternates)

    @property
    def host_count(self) -> int:
        """Loopback hosts the site uses: one per endpoint, plus one that refuses connections."""
        return len(self.profiles) + 1

    @property
    def urls(self) -> tuple[str, ...]:
        """The TAP base URL of every endpoint, primary first."""
        return tuple(endpoint.url for endpoint in self._endpoints)

    @property
    def runners(self) -> list[web.AppRunner]:
        """The endpoints' runners (the simulator cleans them up)."""
        return [e.runner for e in self._endpoints if e.runner is not None]

    async def start(
        self,
        *,
        addresses: Sequence[str],
        listen: Listen,
        reserve_port: Callable[[str], int],
        wait_closing: WaitClosing,
        services: Sequence[ServedService],
        hosts: Sequence[str],
    ) -> None:
        """Listen on *addresses* (one per endpoint, then the refusing one), build, serve.

        Args:
            addresses: ``host_count`` loopback addresses no other site uses.
            listen: Opens a site for an app on an address.
            reserve_port: A port on an address where nothing will listen.
            wait_closing: The simulator's bounded sleep.
            services: The fleet services to register.
            hosts: Base URLs of live simulated hosts (synthetic services point there).
        """
        for profile, address in zip(self.profiles, addresses, strict=False):
            endpoint = _Endpoint(profile, address, limiter=anyio.CapacityLimiter(2))
            if profile.dead:
                port = reserve_port(address)
            else:
                endpoint.runner, port = await listen(
                    _App(endpoint, wait_closing).application(), address
                )
            endpoint.url = f"http://{address}:{port}{REGISTRY_PATH}"
            self._endpoints.append(endpoint)
        refusing = addresses[len(self.profiles)]
        refused = f"http://{refusing}:{reserve_port(refusing)}"
        urls = RegistryUrls(
            endpoints=self.urls,
            hosts=tuple(hosts) or (self._endpoints[0].url.removesuffix(REGISTRY_PATH),),
            refused=refused,
        )
        fleet = [_FleetService(s.spec, s.url) for s in services]
        await anyio.to_thread.run_sync(functools.partial(self._build, urls, fleet))

    def _build(self, urls: RegistryUrls, fleet: Sequence[ServedService]) -> None:
        primary = self.profiles[0]
        registry = build_registry(primary.n_resources, seed=primary.seed, services=fleet, urls=urls)
        rows = registry.rows()
        databases: dict[tuple[object, ...], tuple[AdqlDatabase, tuple[TableDef, ...]]] = {}
        for index, endpoint in enumerate(self._endpoints):
            profile = endpoint.profile
            key = (profile.features, profile.coverage_tables, profile.query_timeout)
            if key not in databases:
                served = (*rr_tables(coverage=profile.coverage_tables), *tap_schema_tables())
                all_rows = {**rows, **tap_schema_rows(served)}
                database = AdqlDatabase(
                    served, all_rows, features=profile.features, timeout=profile.query_timeout
                )
                self._databases.append(database)
                databases[key] = (database, served)
            endpoint.database, endpoint.tables = databases[key]
            endpoint.mirrors = tuple(u for k, u in enumerate(self.urls) if k != index)
        self.registry = registry

    def stats(self) -> tuple[RegistryStats, ...]:
        """Counters of every endpoint, primary first."""
        return tuple(endpoint.stats() for endpoint in self._endpoints)

    def reset(self) -> None:
        """Zero the counters and restart the ``fail_times`` countdowns."""
        for endpoint in self._endpoints:
            endpoint.reset()

    def close(self) -> None:
        """Stop running queries and close the databases (idempotent)."""
        for database in self._databases:
            database.close()
