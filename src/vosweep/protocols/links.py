"""DataLink from the client's side: where a result's links are, and fetching them (sans-I/O).

ObsCore records (TAP ``ivoa.obscore``, SIA2) whose ``access_format`` is the DataLink media
type point ``access_url`` at a ``{links}`` document listing the dataset's files,
previews, cutout services and so on. `datalink_services` finds those URLs in a fan-out's
table; each becomes a `Protocol.DATALINK` service that the fan-out queries like any
other (same limits, retries, breakers), and `converse` keeps only the links of the
semantics asked for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vosweep.errors import ServiceError, UsageError
from vosweep.protocols._xml import parse_subtrees
from vosweep.protocols.base import Parsed, Request, Response, with_params
from vosweep.protocols.conversation import Conversation, Send, Work
from vosweep.protocols.datalink import Link, is_datalink_type, parse_links
from vosweep.protocols.votable import parse_votable
from vosweep.queries import DatalinkQuery
from vosweep.services import Protocol, Service

if TYPE_CHECKING:
    from collections.abc import Generator

    from astropy.table import Table

    from vosweep.config import EngineConfig
    from vosweep.protocols.conversation import Step

__all__ = [
    "IDS_PER_REQUEST",
    "LINK_COLUMNS",
    "NARROWER",
    "DatalinkAccess",
    "build",
    "converse",
    "datalink_access",
    "datalink_services",
    "links_table",
    "parse_results",
    "widened",
    "with_datalink",
]

#: The links table's columns, in DataLink 1.1 order (the fields of `Link`).
LINK_COLUMNS = tuple(field.name for field in dataclasses.fields(Link))
#: Column names, UCDs and utype endings of the access URL and format, by protocol family:
#: ObsCore (TAP, SIA2), SSA, SIA1.
_URL_NAMES = ("access_url",)
_FORMAT_NAMES = ("access_format",)
_URL_MARKS = ("meta.ref.url", "access.reference", "vox:image_accessreference")
_FORMAT_MARKS = ("meta.code.mime", "access.format", "vox:image_format")


#: Narrower terms of the IVOA DataLink core vocabulary (http://www.ivoa.net/rdf/datalink/core):
#: asking for ``#preview`` also means its ``#thumbnail``, as pyvo's ``include_narrower``.
NARROWER: dict[str, tuple[str, ...]] = {
    "#auxiliary": ("#weight", "#error", "#noise"),
    "#calibration": ("#bias", "#dark", "#flat"),
    "#preview": ("#preview-image", "#preview-plot", "#thumbnail"),
    "#proc": ("#cutout",),
    "#documentation": ("#detached-header",),
}
_CORE = "http://www.ivoa.net/rdf/datalink/core"
_LINKS_STANDARD = "ivo://ivoa.net/std/datalink#links"


def _is_meta(name: str, attrs: Any) -> bool:
    return (
        name == "RESOURCE"
        and str(attrs.get("type", "")).lower() == "meta"
        and str(attrs.get("utype", "")).lower() == "adhoc:service"
    )


def widened(semantics: tuple[str, ...]) -> tuple[str, ...]:
    """*semantics* with the narrower core-vocabulary terms of each (full URIs understood)."""
    out: dict[str, None] = {}
    for term in semantics:
        out[term] = None
        short = term.removeprefix(_CORE) if term.startswith(_CORE + "#") else term
        for narrower in NARROWER.get(short, ()):
            out[narrower] = None
    return tuple(out)


def build(service: Service, query: object) -> Request:
    """The ``{links}`` GET for *service*, with the query's extra ``ID`` values."""
    if not isinstance(query, DatalinkQuery):
        raise UsageError(f"a DataLink endpoint cannot answer a {type(query).__name__} query")
    return Request(url=with_params(service.access_url, [("ID", i) for i in query.ids]))


def converse(service: Service, query: object, config: EngineConfig) -> Conversation:
    """Fetch the links document and keep the links of the semantics asked for."""
    request = build(service, query)
    assert isinstance(query, DatalinkQuery)  # noqa: S101 - build checked it
    semantics = widened(query.semantics) if query.include_narrower else query.semantics
    return _converse(request, semantics, config.limits.max_response_bytes)


def _converse(
    request: Request, semantics: tuple[str, ...], max_bytes: int
) -> Generator[Step, Any, Parsed]:
    response = yield Send(request)
    parsed: Parsed = yield Work(_parse, (response, semantics, max_bytes))
    return parsed


def _parse(response: Response, semantics: tuple[str, ...], max_bytes: int) -> Parsed:
    links, _ = parse_links(response.body, max_bytes=max_bytes)
    if semantics:
        links = [link for link in links if any(link.matches(s) for s in semantics)]
    return Parsed([links_table(links)])


def links_table(links: list[Link]) -> Table:
    """Links as an astropy table (masked where a cell is empty)."""
    from astropy.table import MaskedColumn, Table  # noqa: PLC0415 - worker thread only

    columns = []
    for name in LINK_COLUMNS:
        values = [getattr(link, name) for link in links]
        mask = [value is None for value in values]
        if name == "content_length":
            data: list[Any] = [-1 if v is None else v for v in values]
            columns.append(MaskedColumn(data, name=name, dtype="int64", mask=mask))
        elif name == "link_authorized":
            data = [False if v is None else v for v in values]
            columns.append(MaskedColumn(data, name=name, dtype=bool, mask=mask))
        else:
            data = ["" if v is None else str(v) for v in values]
            columns.append(MaskedColumn(data, name=name, dtype=str, mask=mask))
    return Table(columns)


def _column(table: Table, names: tuple[str, ...], marks: tuple[str, ...]) -> str | None:
    colnames: list[str] = list(table.colnames)
    lowered = {name.lower(): name for name in colnames}
    for name in names:
        if name in lowered:
            return lowered[name]
    for name in colnames:
        meta = table[name].meta or {}
        for key in ("ucd", "utype"):
            value = str(meta.get(key) or "").lower()
            if value and any(value == mark or value.endswith(mark) for mark in marks):
                return name
    return None


@dataclass(frozen=True, slots=True)
class DatalinkAccess:
    """A result document's DataLink service descriptor, ready to use on its rows.

    Attributes:
        access_url: The ``{links}`` endpoint.
        column: The result column whose value is each row's ``ID`` (the FIELD the
            descriptor's ``ID`` PARAM refers to, by name).
        fixed: Input parameters with fixed values, sent as they are.
    """

    access_url: str
    column: str
    fixed: tuple[tuple[str, str], ...] = ()


#: IDs per ``{links}`` request when a descriptor is used (DataLink takes several).
IDS_PER_REQUEST = 50


def datalink_access(body: bytes) -> tuple[DatalinkAccess, ...]:
    """The DataLink descriptors of a result document (SSA, SIA2 and TAP results carry them).

    Cheap when there are none: the body is only parsed when it mentions ``adhoc:service``.
    """
    if b"adhoc:service" not in body:
        return ()
    try:
        _, elements = parse_subtrees(
            body,
            "VOTable",
            lambda name, attrs: name == "FIELD" or _is_meta(name, attrs),
            allow_doctype=True,
        )
    except ServiceError:
        return ()
    names = {
        element.attrs["ID"]: element.attrs.get("name") or element.attrs["ID"]
        for element in elements
        if element.name == "FIELD" and element.attrs.get("ID")
    }
    found = []
    for element in elements:
        if element.name != "RESOURCE":
            continue
        params = {
            p.attrs.get("name", "").lower(): p.attrs.get("value", "") for p in element.iter("PARAM")
        }
        if not params.get("standardid", "").lower().startswith(_LINKS_STANDARD):
            continue
        url = params.get("accessurl", "").strip()
        column = None
        fixed = []
        for group in element.iter("GROUP"):
            for param in group.walk("PARAM"):
                name = param.attrs.get("name", "")
                if param.attrs.get("ref"):
                    if name.upper() == "ID":
                        column = names.get(param.attrs["ref"], param.attrs["ref"])
                elif param.attrs.get("value"):
                    fixed.append((name, param.attrs["value"]))
        if url.startswith(("http://", "https://")) and column is not None:
            found.append(DatalinkAccess(url, column, tuple(fixed)))
    return tuple(found)


def parse_results(response: Response, max_bytes: int) -> Parsed:
    """A DAL or TAP answer: the VOTable's tables and status, and its DataLink descriptors."""
    parsed = parse_votable(response.body, content_type=response.content_type, max_bytes=max_bytes)
    return with_datalink(parsed, response.body)


def with_datalink(parsed: Parsed, body: bytes) -> Parsed:
    """*parsed* with the DataLink descriptors of *body*, if it has any."""
    found = datalink_access(body)
    if not found:
        return parsed
    return Parsed(parsed.tables, parsed.status, parsed.message, found)


def datalink_services(
    table: Table, access: dict[str, tuple[DatalinkAccess, ...]] | None = None
) -> list[Service]:
    """The DataLink requests that give the links of *table*'s rows.

    A row links to DataLink when its access format is the DataLink media type
    (``application/x-votable+xml;content=datalink``): its access URL is the request.
    Columns are found by ObsCore name, then by UCD or utype (SSA's ``Access.Reference``,
    SIA1's ``VOX:Image_AccessReference``). Rows of services whose results carried a
    DataLink service descriptor (*access*, by service URL: `FanoutResult.datalink_access`)
    are asked through it instead, `IDS_PER_REQUEST` IDs per request.

    Raises:
        UsageError: Neither way leads anywhere: no access URL and format columns and no
            descriptor.
    """
    access = access or {}
    urls: dict[str, None] = {}
    url_column = _column(table, _URL_NAMES, _URL_MARKS)
    format_column = _column(table, _FORMAT_NAMES, _FORMAT_MARKS)
    if url_column is None or format_column is None:
        if not access:
            raise UsageError(
                "the table has no access URL and access format columns (ObsCore access_url "
                "and access_format, or their SSA/SIA equivalents) and its services sent no "
                "DataLink descriptor: nothing points to DataLink"
            )
    else:
        for url, kind in zip(table[url_column], table[format_column], strict=True):
            if _is_masked(url) or _is_masked(kind) or not is_datalink_type(str(kind)):
                continue
            text = str(url).strip()
            if text.startswith(("http://", "https://")):
                urls.setdefault(text)
    services = [Service(protocol=Protocol.DATALINK, access_url=url) for url in urls]
    services.extend(_descriptor_services(table, access, set(urls)))
    return services


def _descriptor_services(
    table: Table, access: dict[str, tuple[DatalinkAccess, ...]], done: set[str]
) -> list[Service]:
    if not access or "service_url" not in table.colnames:
        return []
    ids: dict[DatalinkAccess, dict[str, None]] = {}
    for index, service_url in enumerate(table["service_url"]):
        for descriptor in access.get(str(service_url), ()):
            if descriptor.column not in table.colnames:
                continue
            value = table[descriptor.column][index]
            if not _is_masked(value) and str(value).strip():
                ids.setdefault(descriptor, {})[str(value).strip()] = None
            break
    services = []
    for descriptor, found in ids.items():
        values = list(found)
        for start in range(0, len(values), IDS_PER_REQUEST):
            params = [
                *descriptor.fixed,
                *(("ID", v) for v in values[start : start + IDS_PER_REQUEST]),
            ]
            url = with_params(descriptor.access_url, params)
            if url not in done:
                services.append(Service(protocol=Protocol.DATALINK, access_url=url))
    return services


def _is_masked(value: object) -> bool:
    return value is None or value is np.ma.masked
