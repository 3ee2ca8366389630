"""What every simulated TAP endpoint writes (pure text, no I/O).

The RegTAP registry and the fleet's TAP services share these writers:

* result tables (`result_document`): TABLEDATA or BINARY2 VOTables with QUERY_STATUS OK
  before the TABLE and OVERFLOW after it when MAXREC cut the result (as DALI says and
  DaCHS does), or CSV; split into head, rows and tail (`Document`) so that the
  simulator's behaviours can truncate, drip or gzip them like any other answer;
* DALI error documents (`error_document`): QUERY_STATUS=ERROR and the message;
* VOSI: TAPRegExt capabilities (`capabilities_xml`), tables (`tables_xml`, `table_xml`)
  and availability (`availability_xml`);
* TAP_SCHEMA (`tap_schema_tables`, `tap_schema_rows`): every TAP service describes its
  tables in it.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vosweep.testing._adql import AdqlFeatures, ColumnDef, QueryResult, ResultColumn, TableDef
from vosweep.testing._votables import Document, escape_attr, escape_text

__all__ = [
    "BINARY2_TYPE",
    "CSV_TYPE",
    "VOTABLE_TYPE",
    "OutputFormat",
    "Serialization",
    "TableDocument",
    "TapCapability",
    "availability_xml",
    "capabilities_xml",
    "error_document",
    "error_votable",
    "result_document",
    "result_votable",
    "table_xml",
    "tables_xml",
    "tap_schema_rows",
    "tap_schema_tables",
]

#: Media type of TABLEDATA VOTables (and of error documents).
VOTABLE_TYPE = "application/x-votable+xml"
#: Media type of BINARY2 VOTables (TAPRegExt's ``output-votable-binary2``).
BINARY2_TYPE = "application/x-votable+xml;serialization=BINARY2"
#: Media type of CSV answers (a header line, no status: overflow cannot be told).
CSV_TYPE = "text/csv;header=present"

_TR = "ivo://ivoa.net/std/TAPRegExt"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
# VOTable 1.4 kept the 1.3 namespace on purpose (the schema change was compatible).
_VOTABLE_OPEN = (
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Base64 characters per line of a BINARY2 stream (MIME's 76).
_BASE64_LINE = 76


class Serialization(StrEnum):
    """How a result table is written."""

    TABLEDATA = "tabledata"
    BINARY2 = "binary2"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class TableDocument(Document):
    """A result whose *rows* are not one string per table row (BINARY2 base64 lines).

    Attributes:
        row_count: The table rows the document holds (what the counters count).
    """

    row_count: int = 0

    @property
    def nrows(self) -> int:
        """The number of table rows (not of base64 lines)."""
        return self.row_count


# -- result tables -------------------------------------------------------------------------


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
    for key, value in (
        ("xtype", column.xtype),
        ("unit", column.unit),
        ("ucd", column.ucd),
        ("utype", column.utype),
    ):
        if value:
            attrs.append(f'{key}="{escape_attr(value)}"')
    description = (
        f"<DESCRIPTION>{escape_text(_clean(column.description))}</DESCRIPTION>"
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


#: BINARY2 fixed-size encodings, with the bytes written for a null cell.
_BINARY_FORMATS: Mapping[str, struct.Struct] = {
    "short": struct.Struct(">h"),
    "int": struct.Struct(">i"),
    "long": struct.Struct(">q"),
    "float": struct.Struct(">f"),
    "double": struct.Struct(">d"),
}


def _binary_encoder(datatype: str) -> tuple[Callable[[object], bytes | None], bytes]:
    """A cell encoder (None for a null cell) and the filler bytes of a null cell."""
    if datatype in {"char", "unicodeChar"}:
        wide = datatype == "unicodeChar"

        def text(value: object) -> bytes | None:
            if value is None:
                return None
            string = _clean(str(value))
            if wide:  # UCS-2: characters beyond the BMP cannot be written
                string = "".join(c if ord(c) < 0x10000 else "\ufffd" for c in string)
                data = string.encode("utf-16-be")
                return struct.pack(">i", len(string)) + data
            data = string.encode("ascii", "replace")
            return struct.pack(">i", len(data)) + data

        return text, struct.pack(">i", 0)
    packer = _BINARY_FORMATS[datatype]
    if datatype in {"float", "double"}:

        def real(value: object) -> bytes | None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return packer.pack(float(value))

        return real, packer.pack(float("nan"))

    def integer(value: object) -> bytes | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        try:
            return packer.pack(value)
        except struct.error:  # out of range for the declared type
            return None

    return integer, packer.pack(0)


def _binary2(columns: Sequence[ResultColumn], rows: Sequence[Sequence[object]]) -> bytes:
    """BINARY2 rows: a null-flag byte array (first column in the high bit), then the cells."""
    encoders = [_binary_encoder(column.datatype) for column in columns]
    flag_bytes = (len(columns) + 7) // 8
    out = bytearray()
    for row in rows:
        flags = bytearray(flag_bytes)
        cells = []
        for index, ((encode, null), value) in enumerate(zip(encoders, row, strict=True)):
            data = encode(value)
            if data is None:
                flags[index >> 3] |= 0x80 >> (index & 7)
                data = null
            cells.append(data)
        out += flags
        out += b"".join(cells)
    return bytes(out)


def _unique_names(columns: Sequence[ResultColumn]) -> list[str]:
    """Field names, made unique (``ivoid``, ``ivoid_2``): astropy renames duplicates anyway."""
    seen: dict[str, int] = {}
    names = []
    for column in columns:
        count = seen.get(column.name, 0) + 1
        seen[column.name] = count
        names.append(column.name if count == 1 else f"{column.name}_{count}")
    return names


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        "" if value is None else repr(value) if isinstance(value, float) else value
        for value in values
    )
    return buffer.getvalue()


def result_document(
    result: QueryResult,
    *,
    query: str,
    maxrec: int,
    serialization: Serialization = Serialization.TABLEDATA,
    software: str = "vosweep simulated TAP",
    overflow: bool | None = None,
) -> Document:
    """The TAP answer for *result*: one table, QUERY_STATUS=OVERFLOW after it when cut.

    Args:
        result: The rows and their column metadata.
        query: The ADQL text (echoed in an INFO, as DaCHS does).
        maxrec: The MAXREC the result was cut at (named in the OVERFLOW INFO).
        serialization: TABLEDATA, BINARY2 or CSV (CSV cannot say it overflowed).
        software: The ``server_software`` INFO.
        overflow: Overrides ``result.overflow`` (a service claiming truncation).
    """
    overflowed = result.overflow if overflow is None else overflow
    names = _unique_names(result.columns)
    if serialization is Serialization.CSV:
        return Document(
            head=_csv_line(names),
            rows=tuple(_csv_line(row) for row in result.rows),
            status="OVERFLOW" if overflowed else "OK",
        )
    head = [
        _XML_DECL,
        _VOTABLE_OPEN,
        '<RESOURCE type="results">\n',
        _info("QUERY_STATUS", "OK"),
        _info("query", query),
        _info("server_software", software),
        _info("request_date", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        '<TABLE name="result">\n',
        *(_field(column, name) for column, name in zip(result.columns, names, strict=True)),
    ]
    tail = []
    if overflowed:
        tail.append(_info("QUERY_STATUS", "OVERFLOW", f"result truncated at MAXREC={maxrec}"))
    tail.append("</RESOURCE>\n</VOTABLE>\n")
    status = "OVERFLOW" if overflowed else "OK"
    if serialization is Serialization.BINARY2:
        head.append('<DATA><BINARY2><STREAM encoding="base64">\n')
        encoded = base64.b64encode(_binary2(result.columns, result.rows)).decode("ascii")
        lines = tuple(
            encoded[start : start + _BASE64_LINE] + "\n"
            for start in range(0, len(encoded), _BASE64_LINE)
        )
        return TableDocument(
            head="".join(head),
            rows=lines,
            tail="".join(["</STREAM></BINARY2></DATA>\n</TABLE>\n", *tail]),
            status=status,
            row_count=len(result.rows),
        )
    head.append("<DATA><TABLEDATA>\n")
    formatters = [_cell_formatter(column.datatype) for column in result.columns]
    rows = tuple(
        "<TR><TD>"
        + "</TD><TD>".join(f(v) for f, v in zip(formatters, row, strict=True))
        + "</TD></TR>\n"
        for row in result.rows
    )
    return Document(
        head="".join(head),
        rows=rows,
        tail="".join(["</TABLEDATA></DATA>\n</TABLE>\n", *tail]),
        status=status,
    )


def result_votable(
    result: QueryResult, *, query: str, maxrec: int, software: str = "vosweep simulated TAP"
) -> bytes:
    """The TABLEDATA answer for *result* as bytes (see `result_document`)."""
    return result_document(result, query=query, maxrec=maxrec, software=software).encode()


def error_document(message: str) -> Document:
    """A DALI error document: QUERY_STATUS=ERROR with the message, no table."""
    return Document(
        head=_XML_DECL
        + '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        + '<RESOURCE type="results">\n'
        + _info("QUERY_STATUS", "ERROR", message)
        + "</RESOURCE>\n</VOTABLE>\n",
        status="ERROR",
        is_table=False,
    )


def error_votable(message: str) -> bytes:
    """A DALI error document as bytes (see `error_document`)."""
    return error_document(message).encode()


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


def tap_schema_rows(
    tables: Sequence[TableDef], schema_utypes: Mapping[str, str] | None = None
) -> dict[str, list[tuple[object, ...]]]:
    """TAP_SCHEMA rows describing *tables* (TAP_SCHEMA itself included by the caller).

    Args:
        tables: The served tables.
        schema_utypes: The utype of each schema that has one (RegTAP's ``rr``).
    """
    utypes = schema_utypes or {}
    schemas = sorted({t.schema for t in tables})
    return {
        "tap_schema.schemas": [
            (name, utypes.get(name), f"The {name} schema", index)
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
                c.utype,
                c.ucd,
                c.unit,
                c.description,
                c.datatype,
                c.arraysize,
                c.xtype,
                1,
                int(c.primary),
                int(c.utype is not None),
                index,
            )
            for t in tables
            for index, c in enumerate(t.columns)
        ],
        "tap_schema.keys": [],
        "tap_schema.key_columns": [],
    }


# -- VOSI capabilities ---------------------------------------------------------------------

#: ADQL geometry functions (TAPRegExt ``features-adqlgeo``).
_GEOMETRY_FORMS = (
    "POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE", "COORD1", "COORD2",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One ``outputFormat`` of a TAP capability.

    Attributes:
        mime: Its media type.
        aliases: Short names RESPONSEFORMAT accepts (``votable``, ``csv``).
        ivo_id: Its TAPRegExt identifier, when the standard has one.
    """

    mime: str
    aliases: tuple[str, ...] = ()
    ivo_id: str | None = None


#: TABLEDATA VOTables: every TAP service offers them.
TABLEDATA_FORMAT = OutputFormat(VOTABLE_TYPE, ("votable",), f"{_TR}#output-votable-td")
#: BINARY2 VOTables.
BINARY2_FORMAT = OutputFormat(BINARY2_TYPE, ("votable/b2",), f"{_TR}#output-votable-binary2")
#: CSV with a header line (no TAPRegExt identifier exists for it).
CSV_FORMAT = OutputFormat(CSV_TYPE, ("csv",))


@dataclass(frozen=True, slots=True)
class TapCapability:
    """What one TAP endpoint declares in its VOSI capabilities (TAPRegExt 1.0).

    Attributes:
        base_url: The TAP base URL (the interface's ``accessURL``).
        features: The optional ADQL features on offer; each shows as ``languageFeatures``.
        output_formats: The ``outputFormat`` elements, TABLEDATA first.
        data_models: ``(ivo-id, name)`` of the data models served (ObsCore, RegTAP...).
        udfs: ``(signature, description)`` of user-defined functions.
        extra_keywords: ``(form, description)`` of extra ADQL keywords (GAVO's extension).
        upload: Whether inline uploads are accepted (``uploadMethod``).
        retention: Default and hard job retention (seconds), if declared.
        execution_duration: Default and hard run time limits (seconds), if declared.
        output_limit: Default and hard MAXREC (rows).
        upload_limit: The most rows an upload may have, if declared.
        mirrors: Other URLs of the same interface (``mirrorURL``).
        description: The ADQL language's description.
        vosi_tables: The VOSI tables standard id's fragment (``tables`` or ``tables-1.1``).
    """

    base_url: str
    features: AdqlFeatures
    output_formats: tuple[OutputFormat, ...] = (TABLEDATA_FORMAT,)
    data_models: tuple[tuple[str, str], ...] = ()
    udfs: tuple[tuple[str, str], ...] = ()
    extra_keywords: tuple[tuple[str, str], ...] = ()
    upload: bool = False
    retention: tuple[int, int] | None = None
    execution_duration: tuple[float, float | None] | None = None
    output_limit: tuple[int, int] = (10_000, 100_000)
    upload_limit: int | None = None
    mirrors: tuple[str, ...] = ()
    description: str = "ADQL run on SQLite by vosweep's simulated VO."
    vosi_tables: str = "tables"


def _features(kind: str, forms: Sequence[tuple[str, str | None]]) -> str:
    items = []
    for form, description in forms:
        text = f"<form>{escape_text(form)}</form>"
        if description:
            text += f"<description>{escape_text(description)}</description>"
        items.append(f"<feature>{text}</feature>")
    return f'<languageFeatures type="{kind}">{"".join(items)}</languageFeatures>'


def _number(value: float) -> str:
    """Whole numbers without a fraction or an exponent (``100000``, not ``1e+05``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _limits(element: str, limits: tuple[float, float | None], unit: str | None = None) -> str:
    unit_attr = f' unit="{unit}"' if unit else ""
    default, hard = limits
    text = f"<default{unit_attr}>{_number(default)}</default>"
    if hard is not None:
        text += f"<hard{unit_attr}>{_number(hard)}</hard>"
    return f"<{element}>{text}</{element}>"


def capabilities_xml(capability: TapCapability) -> str:
    """VOSI capabilities: TAP (with TAPRegExt) and the VOSI endpoints."""
    cap = capability
    features = []
    if cap.udfs:
        features.append(_features(f"{_TR}#features-udf", cap.udfs))
    if cap.features.geometry:
        features.append(_features(f"{_TR}#features-adqlgeo", [(f, None) for f in _GEOMETRY_FORMS]))
    if cap.features.string:
        forms = [("LOWER", None), ("UPPER", None), ("ILIKE", None)]
        features.append(_features(f"{_TR}#features-adql-string", forms))
    features.append(_features(f"{_TR}#features-adql-offset", [("OFFSET", None)]))
    if cap.features.cast:
        features.append(_features(f"{_TR}#features-adql-type", [("CAST", None)]))
    features.append(_features(f"{_TR}#features-adql-common-table", [("WITH", None)]))
    if cap.extra_keywords:
        kind = "ivo://org.gavo.dc/std/exts#extra-adql-keywords"
        features.append(_features(kind, cap.extra_keywords))
    if cap.features.sets:
        forms = [("UNION", None), ("EXCEPT", None), ("INTERSECT", None)]
        features.append(_features(f"{_TR}#features-adql-sets", forms))
    mirrors = "".join(f"<mirrorURL>{escape_text(url)}</mirrorURL>" for url in cap.mirrors)
    models = "".join(
        f'<dataModel ivo-id="{escape_attr(ivo_id)}">{escape_text(name)}</dataModel>'
        for ivo_id, name in cap.data_models
    )
    formats = []
    for output in cap.output_formats:
        ivo_id = f' ivo-id="{escape_attr(output.ivo_id)}"' if output.ivo_id else ""
        aliases = "".join(f"<alias>{escape_text(a)}</alias>" for a in output.aliases)
        formats.append(
            f"<outputFormat{ivo_id}><mime>{escape_text(output.mime)}</mime>{aliases}</outputFormat>"
        )
    limits = []
    if cap.upload:
        limits.append(f'<uploadMethod ivo-id="{_TR}#upload-inline"/>')
    if cap.retention is not None:
        limits.append(_limits("retentionPeriod", cap.retention))
    if cap.execution_duration is not None:
        limits.append(_limits("executionDuration", cap.execution_duration))
    limits.append(_limits("outputLimit", cap.output_limit, "row"))
    if cap.upload and cap.upload_limit is not None:
        limits.append(f'<uploadLimit><hard unit="row">{cap.upload_limit}</hard></uploadLimit>')
    base = escape_text(cap.base_url)
    vosi = "".join(
        f'<capability standardID="ivo://ivoa.net/std/VOSI#{standard}">'
        f'<interface xsi:type="vs:ParamHTTP" role="std">'
        f'<accessURL use="full">{base}/{endpoint}</accessURL></interface>'
        "</capability>\n"
        for standard, endpoint in (
            ("capabilities", "capabilities"),
            ("availability", "availability"),
            (cap.vosi_tables, "tables"),
        )
    )
    return (
        _XML_DECL + '<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"'
        ' xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface role="std" version="1.1" xsi:type="vs:ParamHTTP">'
        f'<accessURL use="base">{base}</accessURL>{mirrors}</interface>'
        f"{models}<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        f"<description>{escape_text(cap.description)}</description>"
        + "".join(features)
        + "</language>"
        + "".join(formats)
        + "".join(limits)
        + "</capability>\n"
        + vosi
        + "</cap:capabilities>\n"
    )


# -- VOSI tables and availability ----------------------------------------------------------


def _column_xml(column: ColumnDef) -> str:
    parts = [f"<name>{escape_text(column.name)}</name>"]
    if column.description:
        parts.append(f"<description>{escape_text(column.description)}</description>")
    if column.unit:
        parts.append(f"<unit>{escape_text(column.unit)}</unit>")
    if column.ucd:
        parts.append(f"<ucd>{escape_text(column.ucd)}</ucd>")
    if column.utype:
        parts.append(f"<utype>{escape_text(column.utype)}</utype>")
    attrs = ['xsi:type="vs:VOTableType"']
    if column.arraysize is not None:
        attrs.append(f'arraysize="{column.arraysize}"')
    if column.xtype:
        attrs.append(f'extendedType="{escape_attr(column.xtype)}"')
    parts.append(f"<dataType {' '.join(attrs)}>{column.datatype}</dataType>")
    if column.primary:
        parts.append("<flag>primary</flag>")
    if column.utype:
        parts.append("<flag>std</flag>")
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


def tables_xml(
    tables: Sequence[TableDef],
    *,
    columns: bool = True,
    schema_utypes: Mapping[str, str] | None = None,
) -> str:
    """VOSI tables: a tableset with one schema per schema name (``detail=min``: no columns)."""
    utypes = schema_utypes or {}
    schemas: dict[str, list[TableDef]] = {}
    for table in tables:
        schemas.setdefault(table.schema, []).append(table)
    body = []
    for name, members in schemas.items():
        utype = f"<utype>{escape_text(utypes[name])}</utype>" if name in utypes else ""
        inner = "".join(_table_xml(t, columns=columns) for t in members)
        body.append(
            f"<schema><name>{name}</name><description>The {name} schema</description>"
            f"{utype}{inner}</schema>"
        )
    return f"{_XML_DECL}<vosi:tableset{_TABLES_NS}>{''.join(body)}</vosi:tableset>\n"


def table_xml(table: TableDef) -> str:
    """VOSI 1.1 answer for one table (``/tables/{name}``)."""
    return _XML_DECL + _table_xml(table, columns=True, element="vosi:table", ns=_TABLES_NS) + "\n"


def availability_xml(*, available: bool = True, note: str = "vosweep simulated VO") -> str:
    """VOSI availability."""
    state = "true" if available else "false"
    return (
        f'{_XML_DECL}<avl:availability xmlns:avl="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<avl:available>{state}</avl:available>"
        f"<avl:note>{escape_text(note)}</avl:note></avl:availability>\n"
    )
