"""A VOTable's structure without its data: tables, fields, params and status signals.

The payloads (the content of TABLEDATA, BINARY, BINARY2 and FITS elements) are found
with a byte search and cut out, so the XML parser only ever sees the small rest, the
*skeleton*, and never builds anything per row or cell. The skeleton is parsed with the
standard library's expat, without namespace processing, exactly as astropy's own
iterparser reads it (element prefixes dropped, text stripped of XML whitespace, text of
mixed content as astropy's C tokenizer keeps it). Entity declarations were refused
before this runs (`vosweep.protocols.votable`), so expat expands nothing.

The expat events are then walked the way astropy's ``tree.py`` walks them, element by
element: unknown elements are not skipped but flattened (their children count as if
they were the parent's, as in astropy), a TABLE's INFOs after its DATA count, INFOs
inside DATA do not, DEFINITIONS' PARAMs land at the root, and so on. Every check astropy
makes that raises even with ``verify="ignore"`` is made too; where astropy would raise,
warn its way into odd data, or where this module does not reproduce the result exactly,
`read_skeleton` returns None and the caller lets astropy read the whole document.

Reproduced rather than refused, because real services send them all the time and their
effect on astropy's table is plain: FIELD/@ref (informational, ignored by astropy's
table), LINKs in FIELDs (``meta["links"]``), VALUES IDs, MIN, MAX and OPTIONs
(``meta["values"]``, for scalar and string fields), DataLink descriptors' PARAM limits
(only checked: astropy raises on unreadable integer or boolean ones).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from xml.parsers import expat

import numpy as np

from vosweep.protocols.fastvot._columns import (
    FLOAT_TYPES,
    INT_RANGES,
    NUMPY_TYPES,
    limit_value,
    parse_bool_text,
    parse_float_text,
    parse_int_text,
)
from vosweep.protocols.fastvot._model import FieldMeta, parse_unit

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PAYLOAD_CODECS", "Payload", "Signal", "Skeleton", "TableSkeleton", "read_skeleton"]

#: The elements whose content is cut out of the document before XML parsing.
PAYLOAD_KINDS = frozenset({"TABLEDATA", "BINARY", "BINARY2", "FITS"})
#: The VOTable versions this module knows the rules of.
VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"})
#: XML whitespace: what astropy's tokenizer strips from text (not Unicode whitespace).
XML_SPACE = " \t\r\n"

_MARKUP = re.compile(
    rb"<(?:(!--)|(!\[CDATA\[)|(\?)|([^\s<>/!?:=\"']+:)?(TABLEDATA|BINARY2|BINARY|FITS)(?=[\s/>]))"
)
_TAG_TAIL = re.compile(rb"""(?:\s+[^\s=<>/"']+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*(/?)>""")
_SPACES = re.compile(rb"[ \t\r\n]*")
_PLAIN_DOCTYPE = re.compile(
    rb"""<!DOCTYPE[ \t\r\n]+[^\s\[>]+(?:[ \t\r\n]+(?:SYSTEM|PUBLIC)"""
    rb"""(?:[ \t\r\n]+(?:"[^"]*"|'[^']*'))+)?[ \t\r\n]*>"""
)
_XML_DECL = re.compile(rb"""<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.\-]*)["']""")
#: The declared encodings whose payload bytes are decoded here (by their expat names,
#: upper case), and the Python codec of each.
PAYLOAD_CODECS = {"UTF-8": "utf-8", "ISO-8859-1": "latin-1", "US-ASCII": "ascii"}

#: astropy's spellings of datatypes that are not in the standard (warning W13).
_DATATYPE_ALIASES = {
    "string": "char",
    "unicodeString": "unicodeChar",
    "int16": "short",
    "int32": "int",
    "int64": "long",
    "float32": "float",
    "float64": "double",
    "unsignedInt": "long",
    "unsignedShort": "int",
}
_STRING_TYPES = frozenset({"char", "unicodeChar"})
#: Datatypes astropy knows but the model cannot hold (bit and complex).
_OTHER_TYPES = frozenset({"bit", "floatComplex", "doubleComplex"})
_ARRAYSIZE = re.compile(r"^([0-9]+x)*[0-9]*[*]?(s\W)?$")
_PRECISION = re.compile(r"^[FE]?[0-9]+$")
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\.\-]*$")
_FIXED = re.compile(r"[0-9]+")
_FIXED_ND = re.compile(r"[0-9]+(?:x[0-9]+)*")
_VARIABLE = re.compile(r"[0-9]*\*")
#: Attribute names that are also astropy constructors' own arguments (some, per element).
_COLLIDING = frozenset({"config", "pos", "votable", "field", "table"})
#: The largest PARAM array built from an empty value (astropy makes it all zeros).
_MAX_EMPTY_PARAM_ITEMS = 1 << 16
#: astropy's lax splitter for array values: whitespace, or a comma with optional spaces.
ARRAY_SPLIT = re.compile(r"\s+|(?:\s*,\s*)")


class Unsupported(Exception):
    """The document is outside what the fast decoder reproduces: let astropy read it."""


def _unsupported() -> NoReturn:
    raise Unsupported


class Payload(NamedTuple):
    """One cut-out data element (a named tuple: immutable and cheap to make).

    Attributes:
        kind: ``TABLEDATA``, ``BINARY``, ``BINARY2`` or ``FITS``.
        prefix: The element's namespace prefix with its colon (``vot:``), or ``""``.
        start: Where the content starts in the document bytes.
        end: Where the content ends (the closing tag's position).
    """

    kind: str
    prefix: str
    start: int
    end: int


@dataclass(slots=True)
class Signal:
    """A status-bearing INFO or PARAM, shaped as `vosweep.protocols.votable` reads them.

    Attributes:
        name: The element's name attribute.
        value: An INFO's value attribute, or a PARAM's value as astropy parses it.
        content: An INFO's text (None when it has none; always None for a PARAM).
    """

    name: str | None
    value: Any
    content: str | None = None


@dataclass(slots=True)
class TableSkeleton:
    """One TABLE, without its data.

    Attributes:
        meta: What astropy's ``to_table`` puts in ``Table.meta`` (ID, name, ...).
        label: The table's name, else its ID (what names it in a sweep), maybe empty.
        fields: The FIELDs, named as with ``use_names_over_ids=True``.
        params: The table's own PARAMs, name to value as astropy parses it.
        payload: The data element astropy reads, or None (no DATA, or no FIELD).
        result: False inside a ``type="meta"`` RESOURCE (not a result table).
    """

    meta: dict[str, Any]
    label: str
    fields: list[FieldMeta]
    params: dict[str, Any]
    payload: Payload | None
    result: bool


@dataclass(slots=True)
class Skeleton:
    """A document's structure and status signals.

    Attributes:
        version: The VOTable version astropy works with.
        encoding: The Python codec of the payload bytes.
        tables: Every TABLE in document order, result tables and meta ones.
        statuses: QUERY_STATUS INFOs outside meta resources, in document order.
        errors: ``Error`` INFOs and PARAMs at root and RESOURCE level, in order.
        warnings: ``warning`` INFOs (root, RESOURCE, TABLE), in order.
    """

    version: str
    encoding: str
    tables: list[TableSkeleton] = field(default_factory=list)
    statuses: list[Signal] = field(default_factory=list)
    errors: list[Signal] = field(default_factory=list)
    warnings: list[Signal] = field(default_factory=list)


def read_skeleton(
    data: bytes, *, codec: str | None = None
) -> tuple[Skeleton, list[Payload]] | None:
    """The structure of the VOTable *data*, or None to let astropy read it.

    Args:
        data: The document, starting at its first ``<`` (votable.py's sniffing has
            checked that the root is a VOTABLE and that no entity is declared).
        codec: The payloads' codec if the caller has checked the prolog (see
            `vosweep.protocols.fastvot.decode`); None: checked here.

    Returns:
        The skeleton and every cut-out payload in document order, or None.
    """
    encoding = codec
    if encoding is None:
        encoding = _payload_encoding(data)
        if encoding is None or not _plain_prolog(data):
            return None
    cut = _cut_payloads(data)
    if cut is None:
        return None
    skeleton_bytes, payloads = cut
    try:
        events = _events(skeleton_bytes, payloads)
        skeleton, used = _Walker(events, payloads).walk()
    except (Unsupported, expat.ExpatError, ValueError, TypeError, OverflowError, RecursionError):
        return None
    skeleton.encoding = encoding
    for index, payload in enumerate(payloads):
        # astropy never reads these, but its parser still checks they are well-formed.
        if index not in used and data[payload.start : payload.end].strip(b" \t\r\n"):
            return None
    return skeleton, payloads


# --- cutting --------------------------------------------------------------------------------


def _payload_encoding(data: bytes) -> str | None:
    """The codec of *data*'s payloads, from its XML declaration (None: not handled here)."""
    if not data.startswith(b"<"):
        return None  # a UTF-16/32 byte-order mark or anything else unusual
    match = _XML_DECL.match(data, 0, 512)
    if match is None:
        return "utf-8"
    return PAYLOAD_CODECS.get(match.group(1).decode("ascii").upper())


def _plain_prolog(data: bytes) -> bool:
    """Whether the prolog has no DTD internal subset (whose literals could hide markup)."""
    pos = 0
    while True:
        space = _SPACES.match(data, pos)
        pos = space.end() if space else pos
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos)
            if end < 0:
                return False
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos)
            if end < 0:
                return False
            pos = end + 3
        elif data.startswith(b"<!", pos):
            doctype = _PLAIN_DOCTYPE.match(data, pos)
            if doctype is None:
                return False
            pos = doctype.end()
        else:
            return True


@lru_cache(maxsize=64)
def _closing_tag(qname: bytes) -> re.Pattern[bytes]:
    return re.compile(b"</" + re.escape(qname) + rb"[ \t\r\n]*>")


def _cut_payloads(data: bytes) -> tuple[bytes, list[Payload]] | None:
    """The document without the content of its data elements, and where that content was.

    Comments, CDATA sections and processing instructions are stepped over whole, so
    that a ``<TABLEDATA>`` written inside one is not taken for the real thing.
    """
    pieces: list[bytes] = []
    payloads: list[Payload] = []
    kept = 0
    pos = 0
    while (match := _MARKUP.search(data, pos)) is not None:
        if match.group(1) or match.group(2) or match.group(3):
            closer = b"-->" if match.group(1) else b"]]>" if match.group(2) else b"?>"
            end = data.find(closer, match.end())
            if end < 0:
                return None
            pos = end + len(closer)
            continue
        tail = _TAG_TAIL.match(data, match.end())
        if tail is None:
            return None
        prefix = (match.group(4) or b"").decode("ascii", errors="replace")
        kind = match.group(5).decode("ascii")
        if tail.group(1):  # <TABLEDATA/>: nothing to cut
            payloads.append(Payload(kind, prefix, tail.end(), tail.end()))
            pos = tail.end()
            continue
        close = _closing_tag((match.group(4) or b"") + match.group(5))
        closing = close.search(data, tail.end())
        if closing is None:
            return None
        payloads.append(Payload(kind, prefix, tail.end(), closing.start()))
        pieces.append(data[kept : tail.end()])
        kept = pos = closing.start()
    if not payloads:
        return data, payloads
    pieces.append(data[kept:])
    return b"".join(pieces), payloads


# --- events ---------------------------------------------------------------------------------

#: (start, local tag, attributes or text, payload index or -1)
Event = tuple[bool, str, Any, int]
#: The elements whose text is read (the others' end events carry an empty string).
_TEXT_TAGS = frozenset({"DESCRIPTION", "INFO"})


def _events(skeleton: bytes, payloads: list[Payload]) -> list[Event]:
    """The skeleton's start and end events, with text as astropy's tokenizer keeps it.

    astropy's C tokenizer clears its text buffer at every start tag, stops collecting at
    every end tag, and strips XML whitespace: an element's text is what was written
    since the last start tag inside it, up to the first end tag.
    """
    events: list[Event] = []
    add = events.append
    text: list[str] = []
    keep = text.append
    seen = 0
    parser = expat.ParserCreate()

    # Text is collected by ``list.append`` itself (no Python frame per chunk), switched
    # on at each start tag and off at each end tag: pyexpat flushes its text buffer to
    # the old handler before a switch, so every chunk lands where astropy's would.
    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal seen
        tag = name.partition(":")[2] if ":" in name else name  # astropy cuts at the first
        index = -1
        if tag in PAYLOAD_KINDS:
            if seen >= len(payloads) or name != payloads[seen].prefix + payloads[seen].kind:
                _unsupported()
            index = seen
            seen += 1
        add((True, tag, attributes, index))
        text.clear()
        parser.CharacterDataHandler = keep

    def end(name: str) -> None:
        parser.CharacterDataHandler = None
        tag = name.partition(":")[2] if ":" in name else name
        if tag in _TEXT_TAGS:
            # An end tag leaves the buffer as it is: the enclosing element's end reads
            # the same text again, as in astropy.
            add((False, tag, "".join(text).strip(XML_SPACE), -1))
        else:
            add((False, tag, "", -1))

    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(skeleton, True)  # noqa: FBT003 - pyexpat takes no keyword here
    if seen != len(payloads):
        _unsupported()
    return events


# --- the walk -------------------------------------------------------------------------------


def fix_id(name: str | None) -> str | None:
    """Astropy's ``xmlutil.fix_id``: *name* turned into a valid XML ID."""
    if name is None:
        return None
    if _XML_ID.match(name):
        return name
    if not name:
        return ""
    corrected = name
    if re.match("^[^A-Za-z_]$", corrected[0]):
        corrected = "_" + corrected
    return re.sub(r"[^A-Za-z_]", "_", corrected[0]) + re.sub(
        r"[^A-Za-z0-9_\.\-]", "_", corrected[1:]
    )


def _resolve_id(attributes: dict[str, str]) -> str | None:
    identifier = attributes.get("ID")
    if identifier is None:
        return attributes.get("id")
    return identifier


def _refuse_attributes(attributes: dict[str, str], *names: str) -> None:
    """Attributes that collide with astropy's constructor arguments make it raise."""
    if not _COLLIDING.isdisjoint(attributes) and not {"config", "pos", *names}.isdisjoint(
        attributes
    ):
        _unsupported()


def _blank_to_none(text: str | None) -> str | None:
    return None if text is not None and text.strip() == "" else text


@dataclass(slots=True)
class _Values:
    """A FIELD's or PARAM's VALUES child as astropy keeps it."""

    null: str | None = None
    values_id: str | None = None
    minimum: tuple[str, str] | None = None
    maximum: tuple[str, str] | None = None
    options: list[tuple[str | None, str]] = field(default_factory=list)


#: The attributes of a LINK that astropy keeps in a column's meta, in its order.
_LINK_KEYS = ("ID", "content_role", "content_type", "title", "value", "href", "action")


class _Walker:
    """Walks the events as astropy's ``tree.py`` does, element by element.

    Each method mirrors the ``parse`` of the astropy element of the same name, sharing
    one event iterator the way astropy's elements share theirs.
    """

    def __init__(self, events: list[Event], payloads: list[Payload]) -> None:
        self._it: Iterator[Event] = iter(events)
        self._payloads = payloads
        self._used: set[int] = set()
        self.version = "1.4"
        self._v11 = self._v13 = True
        self._skeleton = Skeleton(version="1.4", encoding="utf-8")

    def walk(self) -> tuple[Skeleton, set[int]]:
        """Read the whole document; return its skeleton and the payloads astropy reads."""
        self._root()
        self._skeleton.version = self.version
        return self._skeleton, self._used

    # VOTABLE ----------------------------------------------------------------------------

    def _root(self) -> None:
        for start, tag, data, _ in self._it:
            if start:
                if tag != "VOTABLE":
                    _unsupported()  # E19
                self._set_version(data.get("version"))
                break
        else:
            _unsupported()
        for start, tag, data, _ in self._it:
            if not start:
                continue
            if tag == "PARAM":
                self._scs_param(self._param(data), in_meta=False)
            elif tag == "RESOURCE":
                self._resource(data, in_meta=False)
            elif tag == "INFO":
                self._info(data, scs_level=True, in_meta=False)
            elif tag == "GROUP":
                self._group(data)
            elif tag == "COOSYS":
                self._coosys(data)
            elif tag == "TIMESYS":
                self._timesys(data)
            # DEFINITIONS, DESCRIPTION and unknown elements: their children count here.

    def _set_version(self, version: str | None) -> None:
        if version is None:
            version = "1.4"
        elif version.lower().startswith("v"):
            version = version[1:]
        if version not in VERSIONS:
            _unsupported()
        self.version = version
        self._v11 = version != "1.0"
        self._v13 = version not in {"1.0", "1.1", "1.2"}

    # RESOURCE ---------------------------------------------------------------------------

    def _resource(self, attributes: dict[str, str], *, in_meta: bool) -> None:
        _refuse_attributes(attributes)
        kind = attributes.get("type", "results")
        if kind not in {"results", "meta"}:
            _unsupported()  # E18
        in_meta = in_meta or kind == "meta"
        for start, tag, data, _ in self._it:
            if tag == "VODML":
                self._skip_mivot()
            elif start:
                if tag == "TABLE":
                    self._table(data, in_meta=in_meta)
                elif tag == "INFO":
                    self._info(data, scs_level=True, in_meta=in_meta)
                elif tag == "PARAM":
                    self._scs_param(self._param(data), in_meta=in_meta)
                elif tag == "RESOURCE":
                    self._resource(data, in_meta=in_meta)
                elif tag == "GROUP":
                    self._group(data)
                elif tag == "COOSYS":
                    self._coosys(data)
                elif tag == "TIMESYS":
                    self._timesys(data)
                elif tag == "LINK":
                    self._link(data)
            elif tag == "RESOURCE":
                break

    def _skip_mivot(self) -> None:
        """A MIVOT mapping block: astropy keeps it as text, none of it is VOTable."""
        for start, tag, _, _ in self._it:
            if not start and tag == "VODML":
                break

    # TABLE ------------------------------------------------------------------------------

    def _table(self, attributes: dict[str, str], *, in_meta: bool) -> None:
        _refuse_attributes(attributes, "votable")
        if attributes.get("ref") is not None:
            _unsupported()  # the metadata would come from another table
        name = attributes.get("name")
        identifier = _resolve_id(attributes) or fix_id(name)
        nrows = None
        if attributes.get("nrows") is not None:
            nrows = int(attributes["nrows"])
            if nrows < 0:
                _unsupported()
        description = None
        fields: list[FieldMeta] = []
        params: dict[str, Any] = {}
        has_data = False
        for start, tag, data, _ in self._it:
            if start:
                if tag == "DATA":
                    has_data = True
                    break
                if tag == "FIELD":
                    fields.append(self._field(data))
                elif tag == "PARAM":
                    key, constant = self._param(data)
                    params[key] = constant
                elif tag == "GROUP":
                    self._group(data)
                elif tag == "LINK":
                    self._link(data)
                elif tag == "INFO":
                    self._info(data, scs_level=False, in_meta=in_meta)
            elif tag == "DESCRIPTION":
                description = data or None
            elif tag == "TABLE":
                break
        else:
            _unsupported()
        payload = self._data(bool(fields), in_meta=in_meta) if has_data else None
        meta: dict[str, Any] = {}
        if identifier is not None:
            meta["ID"] = identifier
        if name is not None:
            meta["name"] = name
        ucd = _blank_to_none(attributes.get("ucd"))
        if ucd is not None:
            meta["ucd"] = ucd
        utype = attributes.get("utype")
        if utype is not None:
            meta["utype"] = utype
        if description is not None:
            meta["description"] = description
        if has_data and not fields and nrows and not in_meta:
            _unsupported()  # rows without columns: astropy's to_table raises
        self._skeleton.tables.append(
            TableSkeleton(
                meta=meta,
                label=name or identifier or "",
                fields=_field_metas(fields),
                params=params,
                payload=payload,
                result=not in_meta,
            )
        )

    def _data(self, has_fields: bool, *, in_meta: bool) -> Payload | None:
        """Past a TABLE's DATA start: the payload astropy reads, then on to ``</TABLE>``."""
        payload = None
        if has_fields:
            start, tag, _, index = next(self._it, (False, "", None, -1))
            if not start or tag not in {"TABLEDATA", "BINARY", "BINARY2"}:
                _unsupported()  # FITS, PARQUET, an empty DATA: astropy's odd paths
            payload = self._payloads[index]
            self._used.add(index)
        for start, tag, _, _ in self._it:
            if not start and tag == "DATA":
                break
        for start, tag, data, _ in self._it:
            if start and tag == "INFO":
                self._info(data, scs_level=False, in_meta=in_meta)
            elif not start and tag == "TABLE":
                break
        return payload

    # FIELD and PARAM --------------------------------------------------------------------

    def _field(self, attributes: dict[str, str], element: str = "FIELD") -> FieldMeta:
        base = _field_base(tuple(attributes.items()), element, self.version)
        description = None
        values = None
        links: list[tuple[tuple[str, str], ...]] = []
        for start, tag, data, _ in self._it:
            if start:
                if tag == "VALUES":
                    values = self._values(data, base, column=element == "FIELD")
                elif tag == "LINK":
                    links.append(_link_meta(data))
                    self._link(data)
            elif tag == "DESCRIPTION":
                description = data or None
            elif tag == element:
                break
        if description is None and values is None and not links:
            return base  # immutable: shared by every document with this FIELD
        values = values or _Values()
        details = (
            description,
            values.null,
            values.values_id,
            values.minimum,
            values.maximum,
            tuple(values.options),
            tuple(links),
        )
        return _detailed(base, details)

    def _values(self, attributes: dict[str, str], base: FieldMeta, *, column: bool) -> _Values:
        """A VALUES element: astropy starts its domain afresh for each one."""
        _refuse_attributes(attributes, "votable", "field")
        if attributes.get("ref") is not None:
            _unsupported()  # the domain of another VALUES
        if attributes.get("type", "legal") not in {"legal", "actual"}:
            _unsupported()  # E08
        current = _Values(null=attributes.get("null"), values_id=_resolve_id(attributes))
        for start, tag, data, _ in self._it:
            if start:
                if tag in {"MIN", "MAX", "OPTION"} and "value" not in data:
                    _unsupported()  # E09
                if tag == "MIN":
                    current.minimum = (data["value"], data.get("inclusive", "yes"))
                elif tag == "MAX":
                    current.maximum = (data["value"], data.get("inclusive", "yes"))
                elif tag == "OPTION":
                    current.options.append((data.get("name"), data["value"]))
            elif tag == "VALUES":
                break
        for limit in (current.minimum, current.maximum):
            if limit is not None:
                _check_limit(base, limit[0], column=column, v13=self._v13)
        return current

    def _param(self, attributes: dict[str, str]) -> tuple[str, Any]:
        """A PARAM: its name and its value as astropy parses it."""
        current = self._field(attributes, "PARAM")
        value = attributes.get("value")
        return current.name, param_value(current, value or "", v13=self._v13)

    def _scs_param(self, param: tuple[str, Any], *, in_meta: bool) -> None:
        """A root or RESOURCE PARAM: an SCS-style error if it is named Error."""
        name, value = param
        if not in_meta and name.lower() == "error":
            self._skeleton.errors.append(Signal(name, value))

    # INFO and the rest ------------------------------------------------------------------

    def _info(self, attributes: dict[str, str], *, scs_level: bool, in_meta: bool) -> None:
        _refuse_attributes(attributes)
        unit = attributes.get("unit")
        if unit is not None:
            parse_unit(unit, self.version)
        content = None
        for start, tag, data, _ in self._it:
            if tag == "INFO":
                if start:
                    _unsupported()  # astropy would take the attributes for the content
                content = data or None
                break
        if in_meta:
            return
        info = Signal(attributes.get("name"), attributes.get("value"), content)
        name = (info.name or "").lower()
        if name == "query_status":
            self._skeleton.statuses.append(info)
        elif name == "error" and scs_level:
            self._skeleton.errors.append(info)
        elif name == "warning":
            self._skeleton.warnings.append(info)

    def _group(self, attributes: dict[str, str]) -> None:
        _refuse_attributes(attributes, "table")
        for start, tag, data, _ in self._it:
            if start:
                if tag == "FIELDref":
                    _refuse_attributes(data, "table")
                    if "ref" not in data:
                        _unsupported()
                elif tag == "PARAMref":
                    if "ref" not in data or not set(data) <= {"ref", "ucd", "utype"}:
                        _unsupported()
                elif tag == "PARAM":
                    self._param(data)
                elif tag == "GROUP":
                    self._group(data)
            elif tag == "GROUP":
                break

    def _coosys(self, attributes: dict[str, str]) -> None:
        _refuse_attributes(attributes)
        if self._v11 and _resolve_id(attributes) is None:
            _unsupported()  # E15
        self._simple("COOSYS")

    def _timesys(self, attributes: dict[str, str]) -> None:
        _refuse_attributes(attributes)
        if _resolve_id(attributes) is None:
            _unsupported()  # E22
        self._simple("TIMESYS")

    def _link(self, attributes: dict[str, str]) -> None:
        _refuse_attributes(attributes)
        self._simple("LINK")

    def _simple(self, element: str) -> None:
        for _, tag, _, _ in self._it:
            if tag == element:
                break


# --- fields ---------------------------------------------------------------------------------


def _link_meta(attributes: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A FIELD's LINK as astropy's ``Link.to_table_column`` records it."""
    _refuse_attributes(attributes)
    found = {
        "ID": _resolve_id(attributes),
        "content_role": attributes.get("content-role") or attributes.get("content_role"),
        "content_type": attributes.get("content-type") or attributes.get("content_type"),
        "title": attributes.get("title"),
        "value": attributes.get("value"),
        "href": attributes.get("href"),
        "action": attributes.get("action"),
    }
    return tuple((key, value) for key in _LINK_KEYS if (value := found[key]) is not None)


@lru_cache(maxsize=4096)
def _field_base(items: tuple[tuple[str, str], ...], element: str, version: str) -> FieldMeta:
    """A FIELD's or PARAM's own attributes, checked as astropy checks them.

    Cached (exceptions are not): a sweep meets the same FIELD elements over and over.

    Raises:
        Unsupported: astropy raises on these attributes, or they are not reproduced.
        ValueError: An attribute astropy cannot read (a width that is no integer).
    """
    attributes = dict(items)
    _refuse_attributes(attributes, "votable")
    name = attributes.get("name")
    identifier = _resolve_id(attributes) or fix_id(name)
    if name == "cprojection":
        _unsupported()  # astropy rewrites one NOAO field's type
    if name is None:
        if identifier is None:
            _unsupported()  # W12
        name = identifier
    datatype = attributes.get("datatype")
    datatype = _DATATYPE_ALIASES.get(datatype, datatype) if datatype else datatype
    if datatype is None:
        datatype = "char"
    if datatype not in NUMPY_TYPES and datatype not in _STRING_TYPES:
        _unsupported()  # unknown (E06), or bit and complex
    arraysize = attributes.get("arraysize")
    if arraysize is not None and not _ARRAYSIZE.match(arraysize):
        _unsupported()  # E13
    unit = attributes.get("unit")
    if unit is not None:
        parse_unit(unit, version)
    width = attributes.get("width") if element == "FIELD" else None
    if width is not None and int(width) <= 0:
        _unsupported()  # E12
    precision = attributes.get("precision")
    if precision is not None and not _PRECISION.match(precision):
        _unsupported()  # E11
    base = FieldMeta(
        name=name,
        ID=identifier,
        datatype=datatype,
        arraysize=arraysize,
        unit=unit,
        ucd=_blank_to_none(attributes.get("ucd")),
        utype=attributes.get("utype"),
        xtype=attributes.get("xtype"),
        width=width,
        precision=precision,
        ref=attributes.get("ref"),  # informational only: astropy's table ignores it
    )
    _check_converter(base)
    return base


#: A FIELD's DESCRIPTION, VALUES (null, ID, MIN, MAX, OPTIONs) and LINKs, in model order.
_Details = tuple[
    str | None,
    str | None,
    str | None,
    tuple[str, str] | None,
    tuple[str, str] | None,
    tuple[tuple[str | None, str], ...],
    tuple[tuple[tuple[str, str], ...], ...],
]


@lru_cache(maxsize=4096)
def _detailed(base: FieldMeta, details: _Details) -> FieldMeta:
    """*base* with its DESCRIPTION, VALUES and LINKs (cached like `_field_base`).

    Cached because described FIELDs come back with every answer of a service (Gaia
    describes all its columns), and shared FieldMeta objects find their column
    metadata by identity.
    """
    return FieldMeta(
        base.name,
        base.ID,
        base.datatype,
        base.arraysize,
        base.unit,
        base.ucd,
        base.utype,
        base.xtype,
        base.width,
        base.precision,
        base.ref,
        *details,
    )


def _check_limit(current: FieldMeta, text: str, *, column: bool, v13: bool) -> None:
    """Refuse a MIN or MAX value that astropy's converter raises on.

    A FIELD's limits end up in its column's meta, which is reproduced for scalars and
    strings only. A PARAM's limits are only parsed: astropy tries the value as one
    scalar, then as the whole array (the first *n* values of a fixed-size one), and
    raises only when an integer or boolean in there does not parse.

    Raises:
        Unsupported: A limit not reproduced.
        ValueError: A limit astropy raises on.
    """
    datatype, arraysize = current.datatype, current.arraysize
    if arraysize is None or datatype in _STRING_TYPES:
        limit_value(datatype, arraysize, text)
        return
    if column or "x" in arraysize:
        _unsupported()
    if datatype in FLOAT_TYPES:
        return
    try:
        _scalar(datatype, text, v13=v13)
    except ValueError:
        pass
    else:
        return
    if arraysize.endswith("*"):
        parts = ARRAY_SPLIT.split(text) if text.strip() != "" else []
    elif v13 and text == "":
        parts = []
    else:
        parts = ARRAY_SPLIT.split(text)[: int(arraysize)]
    for part in parts:
        _scalar(datatype, part, v13=v13)


def _check_converter(current: FieldMeta) -> None:
    """Refuse what astropy's ``get_converter`` raises on, or what the model cannot hold."""
    arraysize = current.arraysize
    if current.datatype in _STRING_TYPES:
        if arraysize is None or arraysize == "*":
            return
        if not _FIXED.fullmatch(arraysize.removesuffix("*")):
            _unsupported()  # E01 (100x*, 10x2 ...): char arrays of arrays
        if int(arraysize.removesuffix("*")) == 0:
            _unsupported()
        return
    if arraysize is None:
        return
    if _FIXED_ND.fullmatch(arraysize):
        if min(int(x) for x in arraysize.split("x")) == 0:
            _unsupported()
        return
    if not _VARIABLE.fullmatch(arraysize):
        _unsupported()  # 3x*, s-suffixes and other rarities


def _field_metas(fields: list[FieldMeta]) -> list[FieldMeta]:
    """The FIELDs named as astropy's ``to_table(use_names_over_ids=True)`` names columns."""
    distinct = {current.name for current in fields}
    if len(distinct) == len(fields) and "" not in distinct:
        return fields  # all named, no name twice: the common case
    names: set[str] = set()
    metas = []
    for current in fields:
        if not current.name:
            _unsupported()
        name = current.name
        counter = 2
        while name in names:
            name = f"{current.name}{counter}"
            counter += 1
        names.add(name)
        metas.append(current if name == current.name else current._replace(name=name))
    return metas


def param_value(current: FieldMeta, text: str, *, v13: bool) -> Any:
    """A PARAM's value as astropy's converter parses it.

    Raises:
        Unsupported: astropy raises on it, or the case is not reproduced here.
        ValueError: astropy raises on it (unreadable integer or boolean).
    """
    datatype, arraysize = current.datatype, current.arraysize
    if datatype in _STRING_TYPES:
        return text
    if arraysize is None:
        value = _scalar(datatype, text, v13=v13)
        if value is None and current.null is not None:
            # astropy parses the value again once VALUES is read: an unreadable float
            # then becomes the null, as a 0-d array of the field's dtype.
            null = parse_float_text(current.null)
            if null is not None:
                return np.asarray(null, dtype=NUMPY_TYPES[datatype])
        return value
    if arraysize.endswith("*"):
        if "x" in arraysize or text.strip() != "":
            _unsupported()
        return np.ma.array([])
    shape = tuple(int(x) for x in reversed(arraysize.split("x")))
    if math.prod(shape) > len(text) + _MAX_EMPTY_PARAM_ITEMS:
        _unsupported()  # a huge array of defaults: not built here
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if v13 and text == "":
        return np.zeros(shape, dtype=dtype)
    parts = ARRAY_SPLIT.split(text)
    if len(parts) != math.prod(shape):
        _unsupported()  # astropy pads or cuts, with a warning
    values = [_scalar(datatype, part, v13=v13) for part in parts]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(values, dtype=dtype).reshape(shape)


def _scalar(datatype: str, text: str, *, v13: bool) -> Any:
    if datatype in FLOAT_TYPES:
        return parse_float_text(text)
    if datatype == "boolean":
        return parse_bool_text(text)[0]
    if datatype in INT_RANGES:
        return parse_int_text(text, datatype, empty_is_null=v13)[0]
    _unsupported()
