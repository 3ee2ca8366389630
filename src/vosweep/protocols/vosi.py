"""VOSI capabilities (with TAPRegExt), availability and tables documents (sans-I/O).

A TAP client reads ``{tap}/capabilities`` once per service to learn what to ask for:
which ADQL features exist (UNION, CAST, ILIKE, the UDFs), which output formats
(BINARY2 decodes fastest), whether uploads work, and the row limits behind MAXREC.
Every capability's access URLs come along, so the VOSI endpoints of services that
moved them (``tableMetadata`` at GAVO, ``tables`` elsewhere) are found, not guessed.

What real documents do, and what is accepted here (see ``shared/corpus``):

* any prefix on the root (``cap:``, ``vosi:``, none) and a default namespace;
* TAP capabilities found by ``standardID`` (any case) or, without one, by their
  ``xsi:type`` ``tr:TableAccess``; non-IVOA standard ids (CADC's ``vos://...``);
* ``ADQL-2.0`` as a language name, versions given as text or only as ``ivo-id``;
* UDF forms with their signatures (``ivo_hasword(haystack TEXT, ...) -> INTEGER``):
  the name before the parenthesis is the feature;
* interfaces behind authentication next to anonymous ones (CADC, SIA2): anonymous
  access URLs are listed first, since a sweep has no credentials;
* limits in bytes where rows were hoped for (CADC): only row limits fill the row
  fields; a limit without ``unit`` is taken as rows (TAPRegExt requires the unit,
  and MAXREC, which these limits bound, counts rows);
* tables documents that break the VODataService schema (pyvo's validator cases):
  tables and columns without a name are skipped, duplicated elements use the first.

Capabilities compare standard ids case-insensitively (IVOA identifiers are), but
fragments count: ``VOSI#tables`` and ``VOSI#tables-1.1`` are different capabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vosweep.errors import ResponseFormatError
from vosweep.protocols._xml import Element, media_type, parse_tree, text_or_none

__all__ = [
    "Availability",
    "Capability",
    "ColumnInfo",
    "OutputFormat",
    "ServiceCapabilities",
    "TableInfo",
    "TapCapabilities",
    "parse_availability",
    "parse_capabilities",
    "parse_tables",
]

TAP_STANDARD = "ivo://ivoa.net/std/tap"
_TAPREGEXT = "ivo://ivoa.net/std/tapregext#"
_BINARY2 = _TAPREGEXT + "output-votable-binary2"
_BINARY = _TAPREGEXT + "output-votable-binary"
_VOTABLE_MIME = "application/x-votable+xml"
#: The security method of anonymous access (VOResource 1.1); no method means the same.
_ANONYMOUS = "ivo://ivoa.net/sso#anon"

_CAPABILITIES = "VOSI capabilities document"
_AVAILABILITY = "VOSI availability document"
_TABLES = "VOSI tables document"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One ``outputFormat`` of a TAP capability.

    Attributes:
        mime: The media type, as declared (a valid RESPONSEFORMAT value).
        aliases: Short names the service also accepts as RESPONSEFORMAT.
        ivo_id: The TAPRegExt format id (``...#output-votable-binary2``), if declared.
    """

    mime: str
    aliases: tuple[str, ...]
    ivo_id: str | None

    @property
    def serialization(self) -> str | None:
        """The VOTable serialization this format delivers, upper-cased, if it says so.

        The ``ivo-id`` decides; else the ``serialization`` parameter of a VOTable type.
        """
        ivo_id = (self.ivo_id or "").lower()
        if ivo_id == _BINARY2:
            return "BINARY2"
        if ivo_id == _BINARY:
            return "BINARY"
        if ivo_id == _TAPREGEXT + "output-votable-td":
            return "TABLEDATA"
        media, params = media_type(self.mime)
        if media == _VOTABLE_MIME and params.get("serialization"):
            return params["serialization"].upper()
        return None


@dataclass(frozen=True, slots=True)
class TapCapabilities:
    """What a TAP service declares in TAPRegExt.

    Attributes:
        adql_versions: ADQL versions, e.g. ``{"2.0", "2.1"}``.
        features: (feature type ivoid lower-cased, form name as declared): e.g.
            ``("ivo://ivoa.net/std/tapregext#features-adql-sets", "UNION")``; UDF forms
            are reduced to their names (``ivo_hasword``).
        output_formats: The output formats, in document order.
        upload_methods: Upload method ivo-ids, lower-cased.
        output_limit_default: Rows returned when MAXREC is not given.
        output_limit_hard: The most rows MAXREC can obtain.
        upload_limit_hard: The most rows an upload may have, when given in rows.
        upload_limit_hard_bytes: The biggest upload, when given in bytes.
        execution_duration_default: Seconds a job may run by default.
        execution_duration_hard: Seconds a job may run at most.
        retention_default: Seconds a job is kept by default.
        retention_hard: Seconds a job is kept at most.
        data_models: Data-model ivo-ids of the capability, lower-cased.
    """

    adql_versions: frozenset[str]
    features: frozenset[tuple[str, str]]
    output_formats: tuple[OutputFormat, ...]
    upload_methods: frozenset[str]
    output_limit_default: int | None
    output_limit_hard: int | None
    upload_limit_hard: int | None
    upload_limit_hard_bytes: int | None
    execution_duration_default: float | None
    execution_duration_hard: float | None
    retention_default: float | None
    retention_hard: float | None
    data_models: frozenset[str]

    def supports(self, form: str) -> bool:
        """Whether a language feature called *form* is declared, case-insensitively.

        Any feature type counts (``"UNION"``, ``"CAST"``, ``"CONTAINS"``,
        ``"ILIKE"``, ``"ivo_hasword"`` ...).
        """
        wanted = form.strip().lower()
        return any(name.lower() == wanted for _, name in self.features)

    @property
    def union(self) -> bool:
        """ADQL ``UNION`` (TAPRegExt ``#features-adql-sets``)."""
        return self.supports("UNION")

    @property
    def cast(self) -> bool:
        """ADQL ``CAST`` (TAPRegExt ``#features-adql-type``)."""
        return self.supports("CAST")

    @property
    def uploads(self) -> bool:
        """Table upload works: any upload method is declared.

        TAP makes inline upload mandatory for services that take uploads, so any
        declared method means the inline (multipart) upload vosweep sends works.
        """
        return bool(self.upload_methods)

    def best_format(self) -> str | None:
        """The RESPONSEFORMAT to ask for: BINARY2 VOTable, else BINARY, else None.

        None leaves the service's default format (always a VOTable). The declared
        media type is returned, which TAP requires services to accept.
        """
        for wanted in ("BINARY2", "BINARY"):
            for output in self.output_formats:
                if output.serialization == wanted and output.mime:
                    return output.mime
        return None


@dataclass(frozen=True, slots=True)
class Capability:
    """One ``capability`` of a VOSI capabilities document.

    Attributes:
        standard_id: The ``standardID``, as declared ("" when missing).
        access_urls: Access URLs of its interfaces, anonymous interfaces first,
            without duplicates.
        mirror_urls: Mirror URLs of its interfaces, in the same order.
        xsi_type: The capability's ``xsi:type`` local part, e.g. ``TableAccess``.
    """

    standard_id: str
    access_urls: tuple[str, ...]
    mirror_urls: tuple[str, ...] = ()
    xsi_type: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceCapabilities:
    """A VOSI capabilities document.

    Attributes:
        capabilities: Every capability, in document order.
        tap: The TAP capability's TAPRegExt content; None when there is none.
    """

    capabilities: tuple[Capability, ...]
    tap: TapCapabilities | None

    def endpoint(self, standard_id: str) -> str | None:
        """The first access URL of the first capability with *standard_id*.

        Ids compare case-insensitively, fragments included.
        """
        wanted = standard_id.strip().lower()
        for capability in self.capabilities:
            if capability.standard_id.strip().lower() == wanted and capability.access_urls:
                return capability.access_urls[0]
        return None


@dataclass(frozen=True, slots=True)
class Availability:
    """A VOSI availability document.

    Attributes:
        available: Whether the service says it is up.
        notes: The non-empty notes, in document order.
        up_since: Since when it is up (as written).
        down_at: When it is scheduled to go down (as written).
        back_at: When it is expected back (as written).
    """

    available: bool
    notes: tuple[str, ...]
    up_since: str | None
    down_at: str | None = None
    back_at: str | None = None


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """A column of a VOSI tables document.

    Attributes:
        name: The column name, as to be written in ADQL.
        datatype: The ``dataType`` text (``VARCHAR``, ``double`` ...), if given.
        unit: The unit, if given.
        ucd: The UCD, if given.
        utype: The utype, if given.
        description: The description, if given.
        arraysize: The ``dataType``'s ``arraysize``, if given.
        xtype: The ``dataType``'s ``extendedType`` (or ``xtype``), if given.
        flags: ``indexed``, ``primary``, ``nullable`` ... as declared.
    """

    name: str
    datatype: str | None
    unit: str | None
    ucd: str | None
    utype: str | None
    description: str | None
    arraysize: str | None
    xtype: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A table of a VOSI tables document.

    Attributes:
        name: The table name, as to be written in ADQL (often schema-qualified).
        description: The description, if given.
        type: The ``type`` attribute (``base_table``, ``view``, ``output``), if given.
        nrows: The row count (VODataService 1.2 ``nrows``), if given.
        columns: The columns, in document order (empty for ``detail=min`` documents).
        schema: The name of the enclosing schema, if any.
    """

    name: str
    description: str | None
    type: str | None
    nrows: int | None
    columns: tuple[ColumnInfo, ...]
    schema: str | None = None


# --- capabilities ----------------------------------------------------------------------


def parse_capabilities(body: bytes) -> ServiceCapabilities:
    """Read a VOSI capabilities document (``{service}/capabilities``).

    Raises:
        ResponseFormatError: Not well-formed XML, a DOCTYPE or entity declaration
            (refused for safety), or not a capabilities document.
    """
    root = parse_tree(body, _CAPABILITIES, roots={"capabilities"})
    elements = list(root.iter("capability"))
    capabilities = tuple(_capability(element) for element in elements)
    tap = _tap_element(elements)
    return ServiceCapabilities(
        capabilities=capabilities, tap=_tap_capabilities(tap) if tap is not None else None
    )


def _capability(element: Element) -> Capability:
    anonymous: list[str] = []
    protected: list[str] = []
    mirrors: list[str] = []
    for interface in element.iter("interface"):
        urls = [url.text for url in interface.iter("accessURL") if url.text]
        (anonymous if _is_anonymous(interface) else protected).extend(urls)
        mirrors.extend(url.text for url in interface.iter("mirrorURL") if url.text)
    xsi_type = element.attrs.get("type", "").strip().rpartition(":")[2] or None
    return Capability(
        standard_id=element.attrs.get("standardID", "").strip(),
        access_urls=tuple(dict.fromkeys(anonymous + protected)),
        mirror_urls=tuple(dict.fromkeys(mirrors)),
        xsi_type=xsi_type,
    )


def _is_anonymous(interface: Element) -> bool:
    """No security method, an empty one (CADC) or ``sso#anon``: no credentials needed."""
    methods = [
        m.attrs.get("standardID", "").strip().lower() for m in interface.iter("securityMethod")
    ]
    return not methods or any(method in {"", _ANONYMOUS} for method in methods)


def _is_tap(element: Element) -> bool:
    standard_id = element.attrs.get("standardID", "").strip().lower()
    if standard_id == TAP_STANDARD or standard_id.startswith(TAP_STANDARD + "#"):
        return True
    return element.attrs.get("type", "").endswith("TableAccess")


def _tap_element(elements: list[Element]) -> Element | None:
    """The TAP capability; one with a TAPRegExt ``language`` is preferred to a bare one."""
    candidates = [element for element in elements if _is_tap(element)]
    return next((c for c in candidates if c.find("language") is not None), None) or next(
        iter(candidates), None
    )


def _tap_capabilities(element: Element) -> TapCapabilities:
    versions: set[str] = set()
    features: set[tuple[str, str]] = set()
    for language in element.iter("language"):
        name = (text_or_none(language.find("name")) or "").upper()
        if not name.startswith("ADQL"):
            continue
        found = {_version(version) for version in language.iter("version")} - {""}
        if not found and name.startswith("ADQL-"):
            found = {name.removeprefix("ADQL-")}
        versions |= found
        for block in language.iter("languageFeatures"):
            kind = block.attrs.get("type", "").strip().lower()
            for feature in block.iter("feature"):
                form = _form_name(text_or_none(feature.find("form")) or "")
                if form:
                    features.add((kind, form))
    output_default, _ = _limit(element.find("outputLimit"), "default")
    output_hard, _ = _limit(element.find("outputLimit"), "hard")
    upload_rows, upload_bytes = _limit(element.find("uploadLimit"), "hard")
    return TapCapabilities(
        adql_versions=frozenset(versions),
        features=frozenset(features),
        output_formats=tuple(_output_format(f) for f in element.iter("outputFormat")),
        upload_methods=frozenset(
            m.attrs.get("ivo-id", "").strip().lower() for m in element.iter("uploadMethod")
        )
        - {""},
        output_limit_default=output_default,
        output_limit_hard=output_hard,
        upload_limit_hard=upload_rows,
        upload_limit_hard_bytes=upload_bytes,
        execution_duration_default=_duration(element.find("executionDuration"), "default"),
        execution_duration_hard=_duration(element.find("executionDuration"), "hard"),
        retention_default=_duration(element.find("retentionPeriod"), "default"),
        retention_hard=_duration(element.find("retentionPeriod"), "hard"),
        data_models=frozenset(
            dm.attrs.get("ivo-id", "").strip().lower() for dm in element.iter("dataModel")
        )
        - {""},
    )


def _version(element: Element) -> str:
    """``2.0`` from ``<version>2.0</version>`` or ``<version ivo-id="...#v2.0"/>``."""
    return element.text or element.attrs.get("ivo-id", "").rpartition("#v")[2].strip()


def _form_name(form: str) -> str:
    """``ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER`` -> ``ivo_hasword``."""
    return form.partition("(")[0].strip()


def _output_format(element: Element) -> OutputFormat:
    aliases = (alias.text for alias in element.iter("alias"))
    return OutputFormat(
        mime=text_or_none(element.find("mime")) or "",
        aliases=tuple(alias for alias in aliases if alias),
        ivo_id=element.attrs.get("ivo-id", "").strip() or None,
    )


def _limit(element: Element | None, which: str) -> tuple[int | None, int | None]:
    """A TAPRegExt data limit as (rows, bytes); the one not given is None."""
    value = element.find(which) if element is not None else None
    number = _integer(text_or_none(value))
    if value is None or number is None:
        return None, None
    unit = value.attrs.get("unit", "row").strip().lower()
    if unit == "byte":
        return None, number
    return (number, None) if unit == "row" else (None, None)


def _duration(element: Element | None, which: str) -> float | None:
    value = element.find(which) if element is not None else None
    text = text_or_none(value)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _integer(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)  # "1e6", "20000.0"
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


# --- availability ----------------------------------------------------------------------


def parse_availability(body: bytes) -> Availability:
    """Read a VOSI availability document (``{service}/availability``).

    Raises:
        ResponseFormatError: Not well-formed XML, not an availability document, or no
            readable ``available`` element.
    """
    root = parse_tree(body, _AVAILABILITY, roots={"availability"})
    flag = (text_or_none(root.find("available")) or "").lower()
    if flag in {"true", "1"}:
        available = True
    elif flag in {"false", "0"}:
        available = False
    else:
        shown = f"{flag!r}" if flag else "missing"
        raise ResponseFormatError(f"{_AVAILABILITY} whose 'available' is {shown}")
    notes = (text_or_none(note) for note in root.iter("note"))
    return Availability(
        available=available,
        notes=tuple(note for note in notes if note),
        up_since=text_or_none(root.find("upSince")),
        down_at=text_or_none(root.find("downAt")),
        back_at=text_or_none(root.find("backAt")),
    )


# --- tables ----------------------------------------------------------------------------


def parse_tables(body: bytes) -> list[TableInfo]:
    """Read a VOSI tables document: a ``tableset`` or a single ``table`` (VOSI 1.1).

    Raises:
        ResponseFormatError: Not well-formed XML, or neither a tableset nor a table.
    """
    root = parse_tree(body, _TABLES, roots={"tableset", "table"})
    if root.name == "table":
        table = _table(root, None)
        return [table] if table is not None else []
    tables: list[TableInfo] = []
    for schema in root.iter("schema"):
        schema_name = text_or_none(schema.find("name"))
        tables.extend(t for t in (_table(e, schema_name) for e in schema.iter("table")) if t)
    # Not in the schema, but some services put tables straight into the tableset.
    tables.extend(t for t in (_table(e, None) for e in root.iter("table")) if t)
    return tables


def _table(element: Element, schema: str | None) -> TableInfo | None:
    name = text_or_none(element.find("name"))
    if name is None:
        return None
    columns = (_column(column) for column in element.iter("column"))
    return TableInfo(
        name=name,
        description=_description(element),
        type=element.attrs.get("type", "").strip() or None,
        nrows=_integer(text_or_none(element.find("nrows"))),
        columns=tuple(column for column in columns if column is not None),
        schema=schema,
    )


def _column(element: Element) -> ColumnInfo | None:
    name = text_or_none(element.find("name"))
    if name is None:
        return None
    datatype = element.find("dataType")
    attrs = datatype.attrs if datatype is not None else {}
    xtype = attrs.get("extendedType", "").strip() or attrs.get("xtype", "").strip()
    return ColumnInfo(
        name=name,
        datatype=text_or_none(datatype),
        unit=text_or_none(element.find("unit")),
        ucd=text_or_none(element.find("ucd")),
        utype=text_or_none(element.find("utype")),
        description=_description(element),
        arraysize=attrs.get("arraysize", "").strip() or None,
        xtype=xtype or None,
        flags=tuple(flag.text for flag in element.iter("flag") if flag.text),
    )


def _description(element: Element) -> str | None:
    text = text_or_none(element.find("description"))
    return " ".join(text.split()) if text is not None else None
