"""Fast VOTable 1.4 TABLEDATA builders for the simulated VO (pure text, no I/O).

The simulator answers thousands of requests per second on a small machine, so documents
are assembled with string joins instead of astropy's writer. Every builder returns a
`Document` split into *head* (up to and including ``<TABLEDATA>``), *rows* (one ``<TR>``
string each) and *tail*: that split is what lets the server truncate a document mid-table,
drip it slowly or stream a huge one lazily without ever building it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as _escape

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "BASE_COLUMNS",
    "CONFLICTING_ID_COLUMN",
    "EXTRA_COLUMNS",
    "Column",
    "Document",
    "escape_attr",
    "escape_text",
    "format_rows",
    "html_error_page",
    "malformed_document",
    "query_error_document",
    "results_document",
    "scs_error_document",
]

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
# VOTable 1.4 kept the 1.3 namespace on purpose (the schema change was compatible).
_VOTABLE_OPEN = (
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)
_VOTABLE_CLOSE = "</VOTABLE>\n"
_ATTR_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def escape_text(text: str) -> str:
    """Escape *text* for element content (``&``, ``<``, ``>``)."""
    return _escape(text)


def escape_attr(text: str) -> str:
    """Escape *text* for a double-quoted attribute value (also quotes and whitespace)."""
    return _escape(text, _ATTR_ENTITIES)


@dataclass(frozen=True, slots=True)
class Column:
    """The metadata of one FIELD.

    Attributes:
        name: Column name, also used as the XML ``ID`` (so it must be an XML NCName).
        datatype: VOTable datatype (``long``, ``double``, ``float``, ``char``...).
        ucd: UCD1+ word list: how clients recognise positions across services.
        description: Human description; escaped on output.
        unit: VOUnit string, or None for dimensionless columns.
        arraysize: ``"*"`` for variable-length strings, None for scalars.
    """

    name: str
    datatype: str
    ucd: str
    description: str
    unit: str | None = None
    arraysize: str | None = None

    def field_xml(self) -> str:
        """Return the ``<FIELD>`` element."""
        attrs = [
            f'name="{escape_attr(self.name)}"',
            f'ID="{escape_attr(self.name)}"',
            f'datatype="{self.datatype}"',
        ]
        if self.arraysize is not None:
            attrs.append(f'arraysize="{escape_attr(self.arraysize)}"')
        if self.unit is not None:
            attrs.append(f'unit="{escape_attr(self.unit)}"')
        attrs.append(f'ucd="{escape_attr(self.ucd)}"')
        return (
            f"<FIELD {' '.join(attrs)}>"
            f"<DESCRIPTION>{escape_text(self.description)}</DESCRIPTION></FIELD>\n"
        )


#: The columns every simulated cone search returns at full verbosity, in order.
BASE_COLUMNS: tuple[Column, ...] = (
    Column("id", "long", "meta.id;meta.main", "Source identifier, unique within the service"),
    Column("ra", "double", "pos.eq.ra;meta.main", "Right ascension (ICRS, epoch J2000)", "deg"),
    Column("dec", "double", "pos.eq.dec;meta.main", "Declination (ICRS, epoch J2000)", "deg"),
    Column("mag", "float", "phot.mag;em.opt.V", "V magnitude (empty when not measured)", "mag"),
    Column("name", "char", "meta.id", "Designation <catalogue & position>", arraysize="*"),
)

#: The ``id`` column of a service whose identifiers are strings (schema clash across services).
CONFLICTING_ID_COLUMN = Column(
    "id", "char", "meta.id;meta.main", "Source identifier (IAU-style string)", arraysize="*"
)

#: Optional columns a `ServiceProfile` may add, so that schemas differ across services.
EXTRA_COLUMNS: Mapping[str, Column] = {
    column.name: column
    for column in (
        Column("pmra", "double", "pos.pm;pos.eq.ra", "Proper motion in RA * cos(Dec)", "mas/yr"),
        Column("pmdec", "double", "pos.pm;pos.eq.dec", "Proper motion in Dec", "mas/yr"),
        Column("parallax", "double", "pos.parallax.trig", "Trigonometric parallax", "mas"),
        Column("e_mag", "float", "stat.error;phot.mag;em.opt.V", "Error on mag", "mag"),
        Column("bmag", "float", "phot.mag;em.opt.B", "B magnitude", "mag"),
        Column("flags", "char", "meta.code.qual", "Quality flags", arraysize="*"),
    )
}


@dataclass(frozen=True, slots=True)
class Document:
    """A VOTable (or other body) split so that it can be truncated, dripped or streamed.

    Attributes:
        head: Everything before the first row (for tables: up to ``<TABLEDATA>``).
        rows: One ``<TR>...</TR>`` string per row.
        tail: Everything after the last row.
        status: The last QUERY_STATUS the document carries (``OK``, ``OVERFLOW``, ``ERROR``).
        is_table: Whether the document holds a result table (its rows count as served).
    """

    head: str
    rows: tuple[str, ...] = ()
    tail: str = ""
    status: str = "OK"
    is_table: bool = True

    @property
    def nrows(self) -> int:
        """The number of table rows."""
        return len(self.rows)

    def text(self) -> str:
        """Return the whole document."""
        return self.head + "".join(self.rows) + self.tail

    def encode(self) -> bytes:
        """Return the whole document as UTF-8."""
        return self.text().encode()


def _info(name: str, value: str, content: str | None = None) -> str:
    if content is None:
        return f'<INFO name="{escape_attr(name)}" value="{escape_attr(value)}"/>\n'
    return (
        f'<INFO name="{escape_attr(name)}" value="{escape_attr(value)}">'
        f"{escape_text(content)}</INFO>\n"
    )


def format_rows(cells_by_column: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Turn column-major, already escaped cell strings into ``<TR>`` rows.

    Column-major input lets callers format each column with one list comprehension,
    which is several times faster than formatting row by row.
    """
    if not cells_by_column:
        return ()
    return tuple(
        "<TR><TD>" + "</TD><TD>".join(cells) + "</TD></TR>\n"
        for cells in zip(*cells_by_column, strict=True)
    )


def results_document(
    columns: Sequence[Column],
    cells_by_column: Sequence[Sequence[str]],
    *,
    description: str,
    resource_infos: Iterable[tuple[str, str, str | None]] = (),
    overflow_message: str | None = None,
) -> Document:
    """Build a results VOTable with one TABLE in a ``RESOURCE type="results"``.

    Args:
        columns: The FIELDs, in order.
        cells_by_column: One sequence of escaped cell strings per column (empty string = null).
        description: Table description (escaped here).
        resource_infos: Extra ``(name, value, content)`` INFOs before the table.
        overflow_message: When set, a QUERY_STATUS=OVERFLOW INFO follows the TABLE inside
            the RESOURCE, after an initial QUERY_STATUS=OK: real services do exactly this,
            and a client must honour the *last* status.

    Returns:
        The document, split into head, rows and tail.
    """
    head = [
        _XML_DECL,
        _VOTABLE_OPEN,
        '<RESOURCE type="results">\n',
        _info("QUERY_STATUS", "OK"),
    ]
    head.extend(_info(name, value, content) for name, value, content in resource_infos)
    head.append(f'<TABLE name="results">\n<DESCRIPTION>{escape_text(description)}</DESCRIPTION>\n')
    head.extend(column.field_xml() for column in columns)
    head.append("<DATA><TABLEDATA>\n")
    tail = ["</TABLEDATA></DATA>\n</TABLE>\n"]
    if overflow_message is not None:
        tail.append(_info("QUERY_STATUS", "OVERFLOW", overflow_message))
    tail.extend(["</RESOURCE>\n", _VOTABLE_CLOSE])
    return Document(
        head="".join(head),
        rows=format_rows(cells_by_column),
        tail="".join(tail),
        status="OK" if overflow_message is None else "OVERFLOW",
    )


def query_error_document(message: str) -> Document:
    """A DALI-style refusal: QUERY_STATUS=ERROR with the message as content, no table."""
    return Document(
        head="".join(
            [
                _XML_DECL,
                _VOTABLE_OPEN,
                '<RESOURCE type="results">\n',
                _info("QUERY_STATUS", "ERROR", message),
                "</RESOURCE>\n",
                _VOTABLE_CLOSE,
            ]
        ),
        status="ERROR",
        is_table=False,
    )


def scs_error_document(message: str) -> Document:
    """The SCS 1.03 error answer to a bad request (sent with HTTP 200, as the standard says).

    SCS 1.03 asks for an ``INFO`` named ``Error`` at the top of the VOTABLE; the DALI
    QUERY_STATUS=ERROR INFO is added for clients that only look for that.
    """
    return Document(
        head="".join(
            [
                _XML_DECL,
                _VOTABLE_OPEN,
                "<DESCRIPTION>Simulated cone search: the request was rejected</DESCRIPTION>\n",
                f'<INFO ID="Error" name="Error" value="{escape_attr(message)}"/>\n',
                _info("QUERY_STATUS", "ERROR", message),
                '<RESOURCE type="results"/>\n',
                _VOTABLE_CLOSE,
            ]
        ),
        status="ERROR",
        is_table=False,
    )


def malformed_document() -> Document:
    """A body that starts like a VOTable and then stops being XML at all."""
    broken = (
        '<RESOURCE type="results">\n<TABLE name="results">\n'
        '<FIELD name="id" datatype="long"/>\n<DATA><TABLEDATA>\n'
        "<TR><TD>1</TD></TR>\n<TR><TD>2</TD><TR>\n"
        "</TABLEDATA></DATA>\n</TABL>\n<<garbage & more garbage\n"
    )
    return Document(head=_XML_DECL + _VOTABLE_OPEN + broken, status="ERROR", is_table=False)


def html_error_page(title: str, detail: str) -> str:
    """An HTML error page of the kind misconfigured services send with HTTP 200."""
    return (
        "<!DOCTYPE html>\n<html><head><title>"
        f"{escape_text(title)}</title></head>\n<body><h1>{escape_text(title)}</h1>\n"
        f"<p>{escape_text(detail)}</p>\n</body></html>\n"
    )
