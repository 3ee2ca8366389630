"""DataLink 1.0/1.1 links responses and service descriptors (sans-I/O).

A DataLink ``{links}`` response is a VOTable whose table lists, per dataset ID, the
files and services around it (the dataset itself, previews, cutout services,
errors). Service descriptors (``RESOURCE type="meta" utype="adhoc:service"``) say how
to call the services the links point to, and they also ride along in ordinary result
documents, where they announce the DataLink service of a TAP, SIA or SSA answer.

What real responses do, and what is accepted here (see ``shared/corpus``):

* columns are found by *name*, case-insensitively, in any order, with extra columns
  (ALMA's ``readable``, CASDA's ``authenticated_id_token``) ignored; DataLink 1.1
  columns (``content_qualifier``, ``local_semantics``, ``link_auth``,
  ``link_authorized``) are read when present;
* empty cells and ``null`` values (``content_length`` -1) become None;
* semantics are written as ``#preview`` (the core vocabulary) or as full URIs;
* descriptors carry their access URL and standard id as PARAMs and their inputs in a
  GROUP named ``inputParams``, whose PARAMs either hold a value or ``ref`` a column.

The VOTable itself is read by `vosweep.protocols.votable.parse_votable`, so gzip,
HTML error pages, entity declarations and QUERY_STATUS=ERROR (`QueryRejected`) are
handled as for every other response. Descriptors are read with a streaming XML pass
that builds the meta resources only, so a big result document costs no tree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vosweep.errors import ResponseFormatError, ResponseTooLarge
from vosweep.protocols._xml import Element, media_type, parse_subtrees
from vosweep.protocols.votable import DEFAULT_MAX_BYTES, parse_votable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from astropy.table import Table

    from vosweep.protocols.fastvot import TableData

__all__ = [
    "CORE_VOCABULARY",
    "DATALINK_CONTENT_TYPE",
    "DescriptorParam",
    "Link",
    "ServiceDescriptor",
    "is_datalink_type",
    "parse_descriptors",
    "parse_links",
]

#: The media type of a DataLink links response.
DATALINK_CONTENT_TYPE = "application/x-votable+xml;content=datalink"
#: The DataLink core vocabulary; ``#preview`` is short for ``CORE_VOCABULARY + "#preview"``.
CORE_VOCABULARY = "http://www.ivoa.net/rdf/datalink/core"

_VOTABLE = "VOTable"
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_GZIP_LAYERS = 3
#: Columns of which one, with ``semantics``, makes a table a links table.
_LINK_TARGETS = ("access_url", "service_def", "error_message")
_TRUE = frozenset({"true", "t", "1", "yes"})
_FALSE = frozenset({"false", "f", "0", "no"})


@dataclass(frozen=True, slots=True)
class Link:
    """One row of a DataLink links table; empty cells are None.

    Attributes:
        id: The dataset identifier the link belongs to (``ID``).
        access_url: Where the linked resource is.
        service_def: The ``ID`` of the service descriptor to call instead.
        error_message: Why there is no link for this ID (semantics ``#error``).
        semantics: What the link is, e.g. ``#this``, ``#preview`` or a full URI.
        description: A human-readable description.
        content_type: The media type of the linked resource.
        content_length: Its size in bytes.
        content_qualifier: What the resource contains (DataLink 1.1).
        local_semantics: The service's own term for the link (DataLink 1.1).
        link_auth: ``false``, ``optional`` or ``true``: authentication needed (1.1).
        link_authorized: Whether the caller may access it (DataLink 1.1).
    """

    id: str | None
    access_url: str | None
    service_def: str | None
    error_message: str | None
    semantics: str | None
    description: str | None
    content_type: str | None
    content_length: int | None
    content_qualifier: str | None
    local_semantics: str | None
    link_auth: str | None
    link_authorized: bool | None

    def matches(self, semantics: str) -> bool:
        """Whether the link has the given semantics.

        ``#preview`` and ``http://www.ivoa.net/rdf/datalink/core#preview`` mean the
        same term; terms of other vocabularies compare by their full URI.
        """
        return self.semantics is not None and _term(self.semantics) == _term(semantics)


@dataclass(frozen=True, slots=True)
class DescriptorParam:
    """An input parameter of a service descriptor.

    Attributes:
        name: The parameter name to send.
        value: Its fixed value, if the descriptor gives one.
        ref: The ``ID`` of the FIELD whose value to send, if any.
        ucd: The UCD, if given.
        datatype: The VOTable datatype.
        arraysize: The VOTable arraysize, if given.
        unit: The unit, if given.
        xtype: The xtype (``interval``, ``circle`` ...), if given.
        minimum: The ``VALUES/MIN`` value, as written.
        maximum: The ``VALUES/MAX`` value, as written.
        options: The ``VALUES/OPTION`` values, in order.
    """

    name: str
    value: str | None
    ref: str | None
    ucd: str | None
    datatype: str | None
    arraysize: str | None
    unit: str | None = None
    xtype: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceDescriptor:
    """A ``RESOURCE type="meta" utype="adhoc:service"``: how to call a service.

    Attributes:
        id: The RESOURCE's ``ID`` (what a link's ``service_def`` names).
        standard_id: The standard the service follows (``ivo://ivoa.net/std/SODA#sync-1.0``).
        access_url: Where to call it.
        input_params: Its input parameters, in document order.
        name: The RESOURCE's ``name``, if any.
        resource_identifier: The ivoid of the service's registry record, if given.
    """

    id: str | None
    standard_id: str | None
    access_url: str | None
    input_params: tuple[DescriptorParam, ...]
    name: str | None = None
    resource_identifier: str | None = None


def is_datalink_type(content_type: str | None) -> bool:
    """Whether *content_type* is a DataLink links response's media type.

    Spaces, case and parameter order do not matter (``application/x-votable+xml;
    charset=UTF-8; content="DataLink"`` is one); the ``content=datalink`` parameter
    decides, on any XML type.
    """
    if not content_type:
        return False
    kind, params = media_type(content_type)
    return kind.endswith(("/xml", "+xml")) and params.get("content", "").lower() == "datalink"


def parse_links(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[Link], list[ServiceDescriptor]]:
    """Read a DataLink ``{links}`` response: the links, and the service descriptors.

    Args:
        body: The response body (gzip is detected and inflated).
        max_bytes: Cap on the body size after decompression.

    Returns:
        The links in table order, and every service descriptor of the document.

    Raises:
        QueryRejected: The service reported an error (QUERY_STATUS=ERROR ...).
        ResponseTooLarge: The (decompressed) body is larger than ``max_bytes``.
        ResponseFormatError: Not a VOTable, or no table in it is a links table.
    """
    parsed = parse_votable(body, max_bytes=max_bytes)
    table = next((t for t in parsed.tables if _is_links_table(t.colnames)), None)
    if table is None:
        found = "; ".join(", ".join(t.colnames[:8]) for t in parsed.tables[:3]) or "no table"
        raise ResponseFormatError(
            "not a DataLink links table: no table has a semantics column and an"
            f" access_url, service_def or error_message column (columns: {found})"
        )
    return _links(table), parse_descriptors(body, max_bytes=max_bytes)


def parse_descriptors(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[ServiceDescriptor]:
    """Every service descriptor of a VOTable (a links response or any result document).

    Descriptors nested in other RESOURCEs count too. Only the meta resources are built
    in memory, whatever the size of the document.

    Raises:
        ResponseTooLarge: The (decompressed) body is larger than ``max_bytes``.
        ResponseFormatError: Not well-formed XML, entity declarations, or not a VOTable.
    """
    data = _inflate(body, max_bytes)
    _, resources = parse_subtrees(
        data, _VOTABLE, _is_descriptor, roots={"VOTABLE"}, allow_doctype=True
    )
    return [_descriptor(resource) for resource in resources]


# --- links ---------------------------------------------------------------------------------


def _is_links_table(colnames: list[str]) -> bool:
    names = {name.lower() for name in colnames}
    return "semantics" in names and any(target in names for target in _LINK_TARGETS)


def _links(table: Table | TableData) -> list[Link]:
    columns = {name.lower(): name for name in reversed(table.colnames)}
    rows = len(table)

    def cells(name: str) -> list[Any]:
        actual = columns.get(name)
        return _cells(table[actual], rows) if actual is not None else [None] * rows

    text = {
        name: [_text(cell) for cell in cells(name)]
        for name in (
            "id",
            "access_url",
            "service_def",
            "error_message",
            "semantics",
            "description",
            "content_type",
            "content_qualifier",
            "local_semantics",
            "link_auth",
        )
    }
    lengths = [_length(cell) for cell in cells("content_length")]
    authorized = [_flag(cell) for cell in cells("link_authorized")]
    return [
        Link(
            id=text["id"][i],
            access_url=text["access_url"][i],
            service_def=text["service_def"][i],
            error_message=text["error_message"][i],
            semantics=text["semantics"][i],
            description=text["description"][i],
            content_type=text["content_type"][i],
            content_length=lengths[i],
            content_qualifier=text["content_qualifier"][i],
            local_semantics=text["local_semantics"][i],
            link_auth=text["link_auth"][i],
            link_authorized=authorized[i],
        )
        for i in range(rows)
    ]


def _cells(column: Any, rows: int) -> list[Any]:
    """The column's values as Python objects, None where masked.

    Works on astropy columns and on the fast decoder's columns alike: both have
    ``data`` and, when anything is masked, ``mask``.
    """
    if rows == 0:
        return []
    data = np.asarray(getattr(column, "data", column))
    mask = getattr(column, "mask", None)
    hidden: list[bool] = [False] * rows
    if mask is not None and mask is not np.ma.nomask:
        hidden = [bool(row.all()) for row in np.asarray(mask, dtype=bool).reshape(rows, -1)]
    values: list[Any] = data.tolist()
    return [None if hidden[i] else value for i, value in enumerate(values)]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def _length(value: Any) -> int | None:
    """A content length in bytes; negative numbers (a common null, -1) mean unknown."""
    if value is None or isinstance(value, bool):
        return None
    number: int | None
    if isinstance(value, str | bytes):
        # Some services declare the column as char; "1e6" and "100.0" happen too.
        value = _text(value) or ""
        try:
            number = int(value)
        except ValueError:
            number = _integral(value)
    else:
        number = _integral(value)
    return number if number is not None and number >= 0 else None


def _integral(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = (_text(value) or "").lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _term(semantics: str) -> str:
    term = semantics.strip()
    if term.startswith("#"):
        return CORE_VOCABULARY + term
    # The vocabulary URI is http; an https spelling names the same term.
    https = "https" + CORE_VOCABULARY.removeprefix("http")
    return CORE_VOCABULARY + term.removeprefix(https) if term.startswith(https) else term


# --- descriptors ---------------------------------------------------------------------------


def _is_descriptor(name: str, attrs: Mapping[str, str]) -> bool:
    return (
        name == "RESOURCE"
        and attrs.get("type", "").strip().lower() == "meta"
        and attrs.get("utype", "").strip().lower() == "adhoc:service"
    )


def _descriptor(resource: Element) -> ServiceDescriptor:
    params: dict[str, str | None] = {}
    for param in resource.iter("PARAM"):
        params.setdefault(param.attrs.get("name", "").strip().lower(), _attr(param, "value"))
    inputs = [
        _param(param)
        for group in resource.iter("GROUP")
        if group.attrs.get("name", "").strip().lower() == "inputparams"
        for param in group.walk("PARAM")
    ]
    return ServiceDescriptor(
        id=_attr(resource, "ID"),
        standard_id=params.get("standardid"),
        access_url=params.get("accessurl"),
        input_params=tuple(param for param in inputs if param.name),
        name=_attr(resource, "name"),
        resource_identifier=params.get("resourceidentifier"),
    )


def _param(element: Element) -> DescriptorParam:
    values = element.find("VALUES")
    minimum = values.find("MIN") if values is not None else None
    maximum = values.find("MAX") if values is not None else None
    options = values.walk("OPTION") if values is not None else iter(())
    return DescriptorParam(
        name=element.attrs.get("name", "").strip(),
        value=_attr(element, "value"),
        ref=_attr(element, "ref"),
        ucd=_attr(element, "ucd"),
        datatype=_attr(element, "datatype"),
        arraysize=_attr(element, "arraysize"),
        unit=_attr(element, "unit"),
        xtype=_attr(element, "xtype"),
        minimum=_attr(minimum, "value") if minimum is not None else None,
        maximum=_attr(maximum, "value") if maximum is not None else None,
        options=tuple(o.attrs["value"] for o in options if "value" in o.attrs),
    )


def _attr(element: Element, name: str) -> str | None:
    return element.attrs.get(name, "").strip() or None


def _inflate(body: bytes, max_bytes: int) -> bytes:
    """Strip hand-made gzip layers (bounded: a decompression bomb stops at the cap)."""
    data = body
    for _ in range(_MAX_GZIP_LAYERS + 1):
        if len(data) > max_bytes:
            raise ResponseTooLarge(f"body larger than the {max_bytes}-byte cap")
        if not data.startswith(_GZIP_MAGIC):
            return data
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, max_bytes + 1)
        except zlib.error as exc:
            raise ResponseFormatError(f"corrupt gzip body: {exc}") from exc
        if not inflater.eof and len(data) <= max_bytes:
            raise ResponseFormatError("truncated gzip body")
    raise ResponseFormatError(f"more than {_MAX_GZIP_LAYERS} nested gzip layers")
