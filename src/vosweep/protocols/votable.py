# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Turn one service response body into VOTable result tables, or a classified error.

Every response of an all-VO sweep ends here, thousands of times per sweep, in worker
threads. Real services send far more than textbook VOTables, so the rules below are
the ones real responses taught us (see ``shared/corpus/MANIFEST.md``):

* **Size and compression first.** A body that starts with the gzip magic is inflated
  even when no Content-Encoding said so (services gzip by hand), in bounded steps, so
  a decompression bomb stops at ``max_bytes`` (`ResponseTooLarge`) instead of filling
  memory. A gzip holding something else (a tar archive, ...) is named as such.
* **Sniff before parsing.** The prolog is walked by hand (BOM, XML declaration,
  comments, DOCTYPE) to find the root element. HTML pages (error and login pages
  served with status 200), JSON, CSV, empty bodies and XML documents of other kinds
  (UWS, VOSI, IRSA's ``<results status="error">``) become `ResponseFormatError`
  naming what was found; the Content-Type is only a hint, because services mislabel
  VOTables as ``text/plain`` or ``text/xml`` all the time. Encodings expat cannot read
  under the declared name (``utf8``, ``latin1``, ``windows-1252``) are re-encoded.
* **No entities.** A DTD internal subset declaring entities is refused (billion
  laughs, XXE); VOTables never need one. A plain ``<!DOCTYPE VOTABLE SYSTEM ...>``
  (VOTable 1.0) is fine: expat never fetches external DTDs.
* **The fast decoder first** (`vosweep.protocols.fastvot`): it reads the common
  documents (TABLEDATA, BINARY, BINARY2 with the usual datatypes) several times faster
  than astropy (about 5x for a small answer), with exactly astropy's values, and gives
  `TableData` (astropy tables built on demand). For anything it does not reproduce
  exactly it steps aside, and astropy reads the document as below (``fast=False``
  forces that).
* **astropy does the parsing** otherwise, with ``verify="ignore"`` (no warnings, so no global
  warning state is touched: thread-safe). Whatever it raises on
  junk (ValueError, IndexError, KeyError, VOTableSpecError, ...) becomes
  `ResponseFormatError` with its message; only MemoryError passes through.
* **Status lives in many places.** DALI puts ``INFO name="QUERY_STATUS"`` in the
  results RESOURCE, SCS at the root, some services in the TABLE, and OVERFLOW often
  comes *after* the data. All of them (outside ``type="meta"`` resources) are put
  back in document order and the last one counts: ERROR -> `QueryRejected`,
  OVERFLOW -> ``Parsed(status=OVERFLOW)`` with every row kept. SCS-style errors (an
  INFO or PARAM named ``Error`` at the root, in a RESOURCE or in VOTable 1.0
  DEFINITIONS) reject the query even when QUERY_STATUS says OK. Some services signal
  truncation only with an INFO named ``warning``; one that speaks of truncation or a
  reached limit makes the result OVERFLOW.
* **Every result table comes back**, in document order (one VizieR answer holds 360),
  except those in ``type="meta"`` resources (DataLink service descriptors and the
  like). A TABLE with PARAMs but no FIELDs is a legal zero-column table, not an error.
"""

from __future__ import annotations

import codecs
import html
import io
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
from astropy.io.votable import parse as _astropy_parse

from vosweep.errors import QueryRejected, ResponseFormatError, ResponseTooLarge, ServiceError
from vosweep.protocols import fastvot
from vosweep.protocols.base import Parsed, QueryStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from astropy.table import Table

    from vosweep.protocols.fastvot import TableData

__all__ = ["DEFAULT_MAX_BYTES", "parse_votable"]

#: The default cap on the (decompressed) body size.
DEFAULT_MAX_BYTES = 256 * 2**20

_GZIP_MAGIC = b"\x1f\x8b"
#: Servers that gzip by hand sometimes do it twice; more layers than this is abuse.
_MAX_GZIP_LAYERS = 3
#: Output step of the bounded inflater: big enough to be fast, small enough to stop a bomb early.
_INFLATE_STEP = 1 << 20
#: How far into the body the sniffers look (prolog, HTML title, error message, excerpt).
_SNIFF_LIMIT = 64 * 1024
#: Longest message kept from a service (some send whole stack traces).
_MESSAGE_LIMIT = 2000
_EXCERPT_LIMIT = 120

_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_S = rb"[ \t\r\n]"
#: A comment as XML allows it (no ``--`` inside): one way to match it, in linear time.
_COMMENT = _S + rb"*+<!--[^-]*+(?:-[^-]++)*+-->"
_QUOTED = rb"""(?:"[^"<>]*+"|'[^'<>]*+')"""
#: The prolog of nearly every VOTable (see `_plain_start`): group 1 is the document's
#: first ``<`` (past leading whitespace), group 2 the declared encoding. Every part is
#: atomic or possessive: a prolog that is not plain fails at once, never backtracks.
_PLAIN_PROLOG = re.compile(
    _S + rb"*+(?=(<))"
    rb"(?><\?xml(?>"
    + _S
    + rb"++(?:encoding"
    + _S
    + rb"*+="
    + _S
    + rb"""*+["']([A-Za-z][\w.\-]*+)["']|[a-z]++"""
    + _S
    + rb"*+="
    + _S
    + rb"*+"
    + _QUOTED
    + rb"))*+"
    + _S
    + rb"*+\?>)?"
    rb"(?>" + _COMMENT + rb")*+"
    rb"(?>"
    + _S
    + rb"*+<!DOCTYPE"
    + _S
    + rb"++[^\s\[<>]++(?>"
    + _S
    + rb"++(?:SYSTEM|PUBLIC)(?>"
    + _S
    + rb"++"
    + _QUOTED
    + rb")++)?"
    + _S
    + rb"*+>)?"
    rb"(?>" + _COMMENT + rb")*+" + _S + rb"*+<(?:[A-Za-z_][\w.\-]*+:)?VOTABLE[ \t\r\n/>]"
)
_XML_DECL_ENCODING = re.compile(rb"""<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.\-]*)["']""")
#: The encodings expat (inside astropy) reads natively, under these exact names.
_EXPAT_ENCODINGS = frozenset({b"UTF-8", b"UTF-16", b"ISO-8859-1", b"US-ASCII"})
_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)")
_DOCTYPE = re.compile(
    rb"""<!DOCTYPE\s+([^\s\[>]+)(?:\s+(?:SYSTEM|PUBLIC)(?:\s+(?:"[^"]*"|'[^']*'))+)?\s*([\[>])""",
    re.IGNORECASE,
)
_DOCTYPE_NAME = re.compile(rb"<!DOCTYPE\s+([^\s\[>]+)", re.IGNORECASE)
_SUBSET_TOKEN = re.compile(
    rb"""[^"'<\]]+|"[^"]*"|'[^']*'|<!--.*?-->|<\?.*?\?>|<!ENTITY|<|\]""",
    re.DOTALL | re.IGNORECASE,
)
_SUBSET_CLOSE = re.compile(rb"\s*>")
_ARRAYSIZE = re.compile(rb"""arraysize\s*=\s*["']\s*([0-9x]+)\s*["']""")
_DATATYPE = re.compile(rb"""\bdatatype\s*=\s*["']\s*(\w+)""")
#: Bytes per array element in the tables built (char as numpy ``U``: 4 bytes a character).
_ITEM_BYTES = {
    b"boolean": 1,
    b"bit": 1,
    b"unsignedByte": 1,
    b"short": 2,
    b"int": 4,
    b"long": 8,
    b"char": 4,
    b"unicodeChar": 4,
    b"float": 4,
    b"double": 8,
    b"floatComplex": 8,
    b"doubleComplex": 16,
}
#: Cells up to this size are never checked: only giant fixed arraysizes can blow memory up.
_BIG_CELL = 64 * 1024
#: Tables may take this much memory, or this many times the body, whichever is more.
_EXPANSION_FLOOR = 32 * 2**20
_EXPANSION_RATIO = 16
#: astropy allocates BINARY/BINARY2 columns 512 rows at a time, however few rows come.
_ASTROPY_CHUNK_ROWS = 512
_HTML_TITLE_OPEN = re.compile(rb"<title[^>]{0,512}>")
_HTML_TITLE_CLOSE = re.compile(rb"</title\s*>")
# Opening and closing tags are searched apart, from the first opening on: one lazy
# ``<message>(.*?)</message>`` pattern is quadratic on ``<message>`` repeated unclosed.
_XML_MESSAGE = re.compile(rb"<(?:[\w.\-]+:)?message\b[^<>]*>", re.IGNORECASE)
_XML_MESSAGE_END = re.compile(rb"</(?:[\w.\-]+:)?message\s*>", re.IGNORECASE)
_TRUNCATION = re.compile(
    r"truncat|overflow|max_?rec|maxtup"
    r"|limit\w*\s+(?:was\s+|has\s+been\s+|is\s+)?(?:reached|exceeded|hit)",
    re.IGNORECASE,
)

#: Byte-order marks (UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: Magic numbers of what services send instead of a VOTable, for a useful error message.
_MAGIC = (
    (b"PK\x03\x04", "ZIP archive"),
    (b"%PDF", "PDF document"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"SIMPLE  =", "FITS file"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"PAR1", "Parquet file"),
    (b"# %ECSV", "ECSV table"),
)


def parse_votable(
    body: bytes,
    *,
    content_type: str = "",
    max_bytes: int = DEFAULT_MAX_BYTES,
    fast: bool = True,
) -> Parsed:
    """Read a service response body as a VOTable.

    Pure and thread-safe: no I/O, no global state (astropy runs with ``verify="ignore"``).

    Args:
        body: The response body as received (gzip is detected and inflated here).
        content_type: The response media type; only a hint (see the module docstring).
        max_bytes: Cap on the body size after decompression.
        fast: Try the fast decoder first (False: astropy only, e.g. to compare the two
            or to step around a fast-decoder bug).

    Returns:
        The result tables in document order (meta resources left out): `TableData`
        from the fast decoder, astropy `Table` from the fallback. Then the status
        (OK or OVERFLOW) and a message: the deciding QUERY_STATUS INFO's content (or
        its value when it has none), the truncation warning for an OVERFLOW found in a
        warning INFO, None when the document has no QUERY_STATUS.

    Raises:
        ResponseTooLarge: The (decompressed) body is larger than ``max_bytes``.
        ResponseFormatError: Not a usable VOTable: empty, HTML, JSON, another XML
            document, entity declarations, malformed or truncated XML, astropy failure.
        QueryRejected: QUERY_STATUS=ERROR, or an SCS-style ``Error`` INFO or PARAM.
    """
    data, layers = _inflate(body, max_bytes)
    plain = _plain_start(data)
    if plain is not None:
        start, codec = plain
    else:
        codec = None
        start = _sniff(data, content_type, gzipped=layers > 0)
        recoded = _recode_for_expat(data, start)
        if recoded is not None:
            # Sniff what expat will really read: the declared encoding may have hidden markup.
            data = recoded
            start = _sniff(data, content_type, gzipped=layers > 0)
    _check_width(data)
    cell = _largest_cell(data, start)
    if fast:
        _check_expansion(data, start, cell, extra_rows=1)
        parsed = _parse_fast(data, start, codec)
        if parsed is not None:
            return parsed
    _check_expansion(data, start, cell, extra_rows=_ASTROPY_CHUNK_ROWS)
    _refuse_remote_streams(data, start)
    votable = _read_tree(data, start)
    with _format_errors("cannot read the VOTable"), np.errstate(all="ignore"):
        signals = _collect_signals(votable)
        status, message = _decide_status(signals)
        tables = _result_tables(votable)
    return Parsed(tables=tables, status=status, message=message)


# --- size and compression ------------------------------------------------------------------

#: FIELDs in one document beyond which it is refused. The widest real answers have a few
#: hundred columns (SDSS PhotoObj: about 500); past a few thousand, both decoders cost
#: more per column than a sweep can pay (astropy is quadratic in the FIELD count: 16,000
#: FIELDs took 26 s), and a small body of a million FIELDs would hold a worker thread
#: for minutes.
MAX_FIELDS = 5_000
_FIELD_TAG = re.compile(rb"<(?:[\w.-]+:)?FIELD[\s/>]")


def _check_width(data: bytes) -> None:
    # A cheap upper bound first: the tag can only be counted if the word is there.
    if data.count(b"FIELD") <= MAX_FIELDS:
        return
    fields = sum(1 for _ in _FIELD_TAG.finditer(data))
    if fields > MAX_FIELDS:
        raise ResponseTooLarge(
            f"the VOTable declares {fields} FIELDs, over the {MAX_FIELDS} vosweep reads "
            "(decoding that many columns would take minutes)"
        )


def _inflate(body: bytes, max_bytes: int) -> tuple[bytes, int]:
    """Strip the gzip layers off *body*, enforcing *max_bytes* on every layer.

    Returns:
        The plain body and the number of gzip layers removed.
    """
    data = body
    layers = 0
    while True:
        if len(data) > max_bytes:
            raise ResponseTooLarge(f"body larger than the {max_bytes}-byte cap")
        if not data.startswith(_GZIP_MAGIC):
            return data, layers
        if layers == _MAX_GZIP_LAYERS:
            raise ResponseFormatError(f"more than {_MAX_GZIP_LAYERS} nested gzip layers")
        data = _gunzip(data, max_bytes)
        layers += 1


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """Inflate one gzip stream (all its members) without ever holding more than the cap."""
    out = io.BytesIO()
    total = 0
    pending = data
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        while True:
            chunk = inflater.decompress(pending, min(_INFLATE_STEP, max_bytes - total + 1))
            total += len(chunk)
            if total > max_bytes:
                raise ResponseTooLarge(f"gzip body inflates past the {max_bytes}-byte cap")
            out.write(chunk)
            if inflater.eof:
                # Concatenated gzip members are one valid stream; other trailing bytes are junk.
                pending = inflater.unused_data
                if not pending.startswith(_GZIP_MAGIC):
                    break
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                continue
            pending = inflater.unconsumed_tail
            if not pending and not chunk:
                raise ResponseFormatError("truncated gzip body")
    except zlib.error as exc:
        raise ResponseFormatError(f"corrupt gzip body: {exc}") from exc
    return out.getvalue()


# --- expansion -----------------------------------------------------------------------------


def _largest_cell(data: bytes, start: int) -> int:
    """Bytes of the largest fixed-size cell any FIELD or PARAM declares (0 if none is big).

    A fixed ``arraysize`` is allocated whole for every row, whatever the cell holds:
    ``<FIELD datatype="char" arraysize="200000000"/>`` turns ``<TD>x</TD>`` into 800 MB.
    A byte search finds the few ``arraysize`` attributes of even a huge document.
    """
    largest = 0
    pos = data.find(b"arraysize", start)
    while pos >= 0:
        match = _ARRAYSIZE.match(data, pos)
        if match is not None:
            elements = 1
            for dim in match.group(1).split(b"x"):
                # 19 digits are plenty (and int() refuses thousands of them).
                elements *= int(dim.lstrip(b"0")[:19] or b"0") if dim else 1
            if elements * 4 > _BIG_CELL:  # cheap test first: the smallest item is a byte
                tag = data[data.rfind(b"<", start, pos) + 1 : data.find(b">", pos)]
                datatype = _DATATYPE.search(tag)
                item = _ITEM_BYTES.get(datatype.group(1), 16) if datatype else 16
                largest = max(largest, elements * item)
        pos = data.find(b"arraysize", pos + 9)
    return largest if largest > _BIG_CELL else 0


def _check_expansion(data: bytes, start: int, cell: int, *, extra_rows: int) -> None:
    """Refuse a document whose fixed-size cells would take memory out of all proportion.

    Args:
        data: The document.
        start: Where it starts.
        cell: `_largest_cell` of the document.
        extra_rows: Rows allocated besides those written (the reader's first chunk).

    Raises:
        ResponseTooLarge: The cells times the rows (an upper bound: every ``<TR`` of the
            document) pass the greater of a floor and a multiple of the body size.
    """
    if not cell:
        return
    rows = data.count(b"<TR", start) + data.count(b":TR", start) + extra_rows
    limit = max(_EXPANSION_FLOOR, _EXPANSION_RATIO * len(data))
    if cell * rows > limit:
        raise ResponseTooLarge(
            f"a fixed arraysize of {cell} bytes a cell would take about {cell * rows} bytes"
            f" in memory for a {len(data)}-byte body (limit {limit})"
        )


# --- sniffing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prolog:
    """What the prolog walk found.

    Attributes:
        root: The root element's name as written (``vot:VOTABLE``), None if no element starts.
        doctype: The name in ``<!DOCTYPE name ...>``, if any.
    """

    root: str | None
    doctype: str | None


def _plain_start(data: bytes) -> tuple[int, str] | None:
    """(where the root starts, the payloads' codec) of a VOTable with the common prolog.

    Nearly every VOTable starts with an optional XML declaration in an encoding expat
    reads, comments and a DOCTYPE without internal subset, then ``<VOTABLE``: one match
    says so, where `_sniff`, `_recode_for_expat` and the fast decoder's own prolog
    checks would each walk it again. None: let them judge the document.
    """
    prolog = _PLAIN_PROLOG.match(data)
    if prolog is None:
        return None
    declared = prolog.group(2)
    if declared is None:
        return prolog.start(1), "utf-8"
    # Encodings that both expat and the fast decoder read as they are.
    codec = fastvot.PAYLOAD_CODECS.get(declared.decode("ascii").upper())
    return None if codec is None else (prolog.start(1), codec)


def _sniff(data: bytes, content_type: str, *, gzipped: bool) -> int:
    """Check that *data* is a VOTable worth handing to astropy.

    Returns:
        The offset astropy should start reading at (past a UTF-8 BOM and leading
        whitespace, which expat refuses before an XML declaration).
    """
    buf, start = _sniff_view(data)
    media = content_type.split(";", 1)[0].strip().lower()
    end = min(len(buf), start + _SNIFF_LIMIT)
    prolog = _scan_prolog(buf, start, end, complete=end == len(buf))
    wrapper = "gzip-compressed " if gzipped else ""
    root = prolog.root
    local = root.rsplit(":", 1)[-1] if root else ""
    if local == "VOTABLE":
        return start if buf is data else 0
    if (prolog.doctype or "").lower() == "html" or local.lower() == "html" or "html" in media:
        _reject_html(buf, start, end, wrapper)
    if root is None:
        _reject_non_xml(buf, start, end, media, wrapper)
    message = _first_message(buf, start, end)
    detail = f": {message}" if message else ""
    raise ResponseFormatError(
        f"{wrapper}XML document with root <{root}> instead of a VOTable{detail}"
    )


def _sniff_view(data: bytes) -> tuple[bytes, int]:
    """Return ASCII-compatible bytes to sniff and where the content starts in them.

    UTF-16/32 documents (rare, but legal) are transcoded, head only, for sniffing;
    astropy still reads the original bytes.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _transcoded_head(data[len(bom) :], codec)
    if data.startswith((b"<\x00?\x00", b"<\x00\x00\x00")):
        return _transcoded_head(data, "utf-16-le" if data[2:3] != b"\x00" else "utf-32-le")
    if data.startswith((b"\x00<\x00?", b"\x00\x00\x00<")):
        return _transcoded_head(data, "utf-16-be" if data[1:2] == b"<" else "utf-32-be")
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    return data, _skip_space(data, start, len(data))


def _transcoded_head(data: bytes, codec: str) -> tuple[bytes, int]:
    head = data[: _SNIFF_LIMIT * 4].decode(codec, errors="replace").encode("utf-8")
    return head, _skip_space(head, 0, len(head))


def _skip_space(buf: bytes, pos: int, end: int) -> int:
    match = _WHITESPACE.match(buf, pos, end)
    return match.end() if match else pos


def _scan_prolog(buf: bytes, pos: int, end: int, *, complete: bool) -> _Prolog:
    """Walk the XML prolog (declaration, comments, processing instructions, DOCTYPE).

    Refuses entity declarations: they are the only way to a billion-laughs or XXE
    attack, and no VOTable needs them.
    """
    doctype: str | None = None
    while True:
        pos = _skip_space(buf, pos, end)
        if buf.startswith(b"<?", pos, end):
            pos = _past(buf, b"?>", pos, end, complete=complete)
        elif buf.startswith(b"<!--", pos, end):
            pos = _past(buf, b"-->", pos, end, complete=complete)
        elif buf[pos : pos + 9].upper() == b"<!DOCTYPE":
            doctype, pos = _scan_doctype(buf, pos, end, complete=complete)
        else:
            match = _ROOT_TAG.match(buf, pos, end)
            root = match.group(1).decode("ascii") if match else None
            return _Prolog(root=root, doctype=doctype)


def _past(buf: bytes, token: bytes, pos: int, end: int, *, complete: bool) -> int:
    found = buf.find(token, pos, end)
    if found < 0:
        _reject_prolog(complete=complete)
    return found + len(token)


def _scan_doctype(buf: bytes, pos: int, end: int, *, complete: bool) -> tuple[str | None, int]:
    """Read ``<!DOCTYPE ...>`` at *pos*; return its name and the position after it."""
    match = _DOCTYPE.match(buf, pos, end)
    if match is None:
        named = _DOCTYPE_NAME.match(buf, pos, end)
        if named and named.group(1).lower() == b"html":
            # A sloppy HTML doctype: the caller reports an HTML page.
            return "html", _past(buf, b">", pos, end, complete=complete)
        _reject_prolog(complete=complete, what="DOCTYPE declaration")
    name = match.group(1).decode("ascii", errors="replace")
    if match.group(2) == b">":
        return name, match.end()
    return name, _scan_internal_subset(buf, match.end(), end, complete=complete)


def _scan_internal_subset(buf: bytes, pos: int, end: int, *, complete: bool) -> int:
    """Check a DTD internal subset for entity declarations; return the position after it.

    Quoted literals, comments and processing instructions are skipped whole, so a
    ``]>`` or ``<!ENTITY`` inside a literal can neither end the subset early nor hide
    a real declaration behind it.
    """
    while True:
        token = _SUBSET_TOKEN.match(buf, pos, end)
        if token is None:
            _reject_prolog(complete=complete, what="DOCTYPE internal subset")
        text = token.group()
        if text == b"]":
            close = _SUBSET_CLOSE.match(buf, token.end(), end)
            if close is None:
                _reject_prolog(complete=complete, what="DOCTYPE internal subset")
            return close.end()
        if text.upper() == b"<!ENTITY":
            raise ResponseFormatError(
                "DOCTYPE declares entities (refused: VOTables never need them, "
                "and they allow entity-expansion and external-entity attacks)"
            )
        pos = token.end()


def _reject_prolog(*, complete: bool, what: str = "XML prolog") -> NoReturn:
    if complete:
        raise ResponseFormatError(f"truncated or malformed {what}")
    raise ResponseFormatError(f"{what} longer than {_SNIFF_LIMIT} bytes: not a VOTable")


def _html_title(buf: bytes, start: int, end: int) -> bytes | None:
    """The first ``<title>``'s text, found in linear time.

    A regex with a lazy ``.*?`` restarts at every ``<title`` and rescans to the end: a
    hostile page of 64 KiB of unclosed ``<title>`` tags made it quadratic (~1 s).
    """
    lowered = buf[start:end].lower()
    opening = _HTML_TITLE_OPEN.search(lowered)
    if opening is None:
        return None
    closing = _HTML_TITLE_CLOSE.search(lowered, opening.end())
    if closing is None:
        return None
    return buf[start + opening.end() : start + closing.start()]


def _reject_html(buf: bytes, start: int, end: int, wrapper: str) -> NoReturn:
    found = _html_title(buf, start, end)
    if found is not None:
        title = _clean(html.unescape(found.decode("utf-8", errors="replace")))
        detail = f" (title: {title[:_EXCERPT_LIMIT]!r})" if title else ""
    else:
        detail = f" (starts with {_excerpt(buf, start, end)!r})"
    raise ResponseFormatError(f"{wrapper}HTML page instead of a VOTable{detail}")


def _reject_non_xml(buf: bytes, start: int, end: int, media: str, wrapper: str) -> NoReturn:
    kind, textual = _non_xml_kind(buf, start, end, media)
    detail = ""
    if textual and start < end:
        detail = f": {_excerpt(buf, start, end)!r}"
    raise ResponseFormatError(f"{wrapper}{kind} instead of a VOTable{detail}")


def _non_xml_kind(buf: bytes, start: int, end: int, media: str) -> tuple[str, bool]:
    """Name what the body is, and whether an excerpt of it would be readable."""
    if start >= len(buf):
        return ("empty body" if not buf else "blank body"), False
    if buf[257:262] == b"ustar":
        return "tar archive", False
    for magic, kind in _MAGIC:
        if buf.startswith(magic, start):
            return kind, kind == "ECSV table"
    head = buf[start:end]
    if head[:1] in {b"{", b"["} or "json" in media:
        return "JSON document", True
    if b"\x00" in head or head.decode("utf-8", errors="replace").count("\ufffd") > len(head) // 10:
        return "binary data", False
    first_line = head.split(b"\n", 1)[0]
    if "csv" in media or b"," in first_line:
        return "CSV text", True
    if "tab-separated" in media or b"\t" in first_line:
        return "tab-separated text", True
    return "plain text", True


def _first_message(buf: bytes, start: int, end: int) -> str:
    """The text of a ``<message>`` element near the top (IRSA, UWS error summaries)."""
    match = _XML_MESSAGE.search(buf, start, end)
    closing = _XML_MESSAGE_END.search(buf, match.end(), end) if match else None
    if match is None or closing is None:
        return ""
    text = buf[match.end() : closing.start()]
    return _clean(html.unescape(text.decode("utf-8", errors="replace")))


def _excerpt(buf: bytes, start: int, end: int) -> str:
    text = buf[start : min(end, start + 4 * _EXCERPT_LIMIT)].decode("utf-8", errors="replace")
    return _clean(text)[:_EXCERPT_LIMIT]


# --- the fast decoder ----------------------------------------------------------------------


def _parse_fast(data: bytes, start: int, codec: str | None) -> Parsed | None:
    """The fast decoder's reading of the document, or None when it steps aside.

    The status rules are the same as for astropy's tree: same signals, same decision.
    *codec* is the payloads' codec when `_plain_start` has checked the prolog.
    """
    document = fastvot.decode(data[start:] if start else data, codec=codec)
    if document is None:
        return None
    found = document.signals
    signals = _Signals(
        statuses=list(found.statuses),
        errors=[_element_text(e) for e in found.errors],
        warnings=[_element_text(w) for w in found.warnings],
    )
    status, message = _decide_status(signals)
    tables: list[Table | TableData] = list(document.tables)
    return Parsed(tables=tables, status=status, message=message)


# --- astropy -------------------------------------------------------------------------------


def _recode_for_expat(data: bytes, start: int) -> bytes | None:
    """Re-encode a document declared in an encoding expat does not know, as UTF-8.

    expat reads only UTF-8, UTF-16, ISO-8859-1 and US-ASCII, and refuses spellings such
    as ``utf8``, ``latin1`` or ``windows-1252`` that real services declare. Those rare
    documents are decoded with Python's codec and re-declared as UTF-8 (one extra copy).

    Returns:
        The re-encoded document, or None when expat can read *data* as it is.
    """
    match = _XML_DECL_ENCODING.match(data, start, start + _EXCERPT_LIMIT * 2)
    if match is None or match.group(1).upper() in _EXPAT_ENCODINGS:
        return None
    name = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name).name
        # Not empty (that is never looked up): refuses bytes-to-bytes codecs (base64, zlib).
        b" ".decode(codec, errors="replace")
    except LookupError:
        raise ResponseFormatError(f"unknown character encoding {name!r} declared") from None
    declaration = data[start : match.start(1)] + b"UTF-8" + data[match.end(1) : match.end()]
    rest = data[match.end() :]
    if codec != "utf-8":
        rest = rest.decode(codec, errors="replace").encode("utf-8")
    return declaration + rest


@contextmanager
def _format_errors(what: str) -> Iterator[None]:
    """Turn whatever astropy raises on junk into `ResponseFormatError`.

    astropy raises ValueError, IndexError, KeyError, TypeError, VOTableSpecError,
    UnicodeDecodeError, RecursionError ... depending on where the junk sits; a sweep
    must record one failed service, never crash. Our own errors and MemoryError pass.
    """
    try:
        yield
    except (MemoryError, ServiceError):
        raise
    except Exception as exc:  # any parser failure is the body's fault (see the docstring)
        raise ResponseFormatError(f"{what}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    if isinstance(exc, ValueError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_REMOTE_STREAM = re.compile(rb"<(?:[\w.-]+:)?STREAM\b[^>]*\bhref\s*=", re.IGNORECASE)


def _refuse_remote_streams(data: bytes, start: int) -> None:
    """Refuse ``<STREAM href=...>``: astropy would fetch it with urlopen.

    That accepts ``file:`` and any host, so a service could make a sweep read local
    files or reach arbitrary addresses; a response must never reach beyond itself.
    """
    match = _REMOTE_STREAM.search(data, start)
    if match is not None:
        raise ResponseFormatError(
            "VOTable data given by reference (<STREAM href=...>) is not fetched: "
            "a response may not make vosweep read other URLs or local files"
        )


def _read_tree(data: bytes, start: int) -> Any:
    """Parse *data* from *start* into astropy's VOTable tree.

    A read function (not a file object) is passed, so astropy does not sniff for
    compression itself: only our bounded inflater ever decompresses. ``invalid`` stays
    at ``"exception"``: astropy 8's ``"mask"`` mode shifts the rest of a TABLEDATA row
    one column left after an unreadable cell, and silently wrong data is worse than a
    failed service.
    """
    stream = io.BytesIO(data)
    stream.seek(start)
    # numpy warns when a value overflows its column type (1e308 as a float); astropy's
    # value (inf) stands, and a sweep's worker threads must not warn per response.
    with _format_errors("malformed VOTable"), np.errstate(all="ignore"):
        return _astropy_parse(
            stream.read, verify="ignore", invalid="exception", filename="response"
        )


# --- status --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Signals:
    """The status-bearing elements of a document (meta resources excluded).

    Attributes:
        statuses: INFOs named QUERY_STATUS, in document order.
        errors: Texts of INFOs and PARAMs named ``Error`` (root and RESOURCE level),
            in document order.
        warnings: Texts of INFOs named ``warning``, at any level.
    """

    statuses: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _collect_signals(votable: Any) -> _Signals:
    statuses: list[Any] = []
    errors: list[Any] = []
    warnings: list[Any] = []

    def visit(infos: Iterable[Any], params: Iterable[Any], *, scs_level: bool) -> None:
        for info in infos:
            name = (info.name or "").lower()
            if name == "query_status":
                statuses.append(info)
            elif name == "error" and scs_level:
                errors.append(info)
            elif name == "warning":
                warnings.append(info)
        if scs_level:
            errors.extend(p for p in params if (p.name or "").lower() == "error")

    # VOTable 1.0 DEFINITIONS/PARAMs land among the root params in astropy's tree.
    visit(votable.infos, votable.params, scs_level=True)
    for resource in _result_resources(votable.resources):
        visit(resource.infos, resource.params, scs_level=True)
        for table in resource.tables:
            visit(table.infos, (), scs_level=False)
    return _Signals(
        statuses=_document_order(statuses),
        errors=[_element_text(e) for e in _document_order(errors)],
        warnings=[_element_text(w) for w in _document_order(warnings)],
    )


def _decide_status(signals: _Signals) -> tuple[QueryStatus, str | None]:
    """Apply the status rules (module docstring); raise `QueryRejected` on an error."""
    last = signals.statuses[-1] if signals.statuses else None
    value = str(last.value or "").strip().upper() if last is not None else ""
    status_text = _element_text(last) if last is not None else ""
    first_error = next((text for text in signals.errors if text), "")
    if value == "ERROR":
        if first_error and status_text.upper() != "ERROR" and first_error not in status_text:
            raise QueryRejected(_limit(f"{first_error}: {status_text}"))
        raise QueryRejected(_limit(first_error or status_text or "ERROR"))
    if signals.errors:
        raise QueryRejected(_limit(first_error or "the service reported an Error without text"))
    if value == "OVERFLOW":
        return QueryStatus.OVERFLOW, _limit(status_text)
    truncation = next((text for text in signals.warnings if _TRUNCATION.search(text)), None)
    if truncation is not None:
        return QueryStatus.OVERFLOW, _limit(truncation)
    return QueryStatus.OK, (_limit(status_text) if last is not None else None)


def _element_text(element: Any) -> str:
    """An INFO's content, or its value when it has none (PARAMs only have a value)."""
    content = getattr(element, "content", None)
    text = _clean(str(content)) if content is not None else ""
    if text:
        return text
    value = element.value
    return _clean(str(value)) if value is not None else ""


# --- tables --------------------------------------------------------------------------------


def _result_tables(votable: Any) -> list[Table]:
    elements = _document_order(
        [table for resource in _result_resources(votable.resources) for table in resource.tables]
    )
    tables: list[Table] = []
    for index, element in enumerate(elements):
        table = element.to_table(use_names_over_ids=True)
        table.meta["vosweep_table"] = element.name or element.ID or f"table{index}"
        params = {param.name: param.value for param in element.params}
        if params:
            table.meta["params"] = params
        tables.append(table)
    return tables


def _result_resources(resources: Iterable[Any]) -> Iterator[Any]:
    """Every RESOURCE, nested ones included, except ``type="meta"`` subtrees."""
    for resource in resources:
        if str(resource.type or "").lower() == "meta":
            continue
        yield resource
        yield from _result_resources(resource.resources)


# --- helpers -------------------------------------------------------------------------------


def _document_order(elements: list[Any]) -> list[Any]:
    """Sort astropy elements into document order.

    astropy's tree keeps INFOs of the root, of each RESOURCE and of each TABLE in
    separate lists, so an OVERFLOW written after the data cannot be told from one
    written before it by the tree's shape. Every element records the (line, column)
    where the parser met it, though: sorting on that restores the order without a
    second pass over the body. If a position is missing, the traversal order stands.
    """
    positions = [getattr(element, "_pos", None) for element in elements]
    if not all(_is_position(pos) for pos in positions):
        return elements
    order = sorted(range(len(elements)), key=lambda i: (positions[i], i))
    return [elements[i] for i in order]


def _is_position(pos: object) -> bool:
    return isinstance(pos, tuple) and len(pos) == 2 and all(isinstance(n, int) for n in pos)


def _clean(text: str) -> str:
    """Collapse whitespace: service messages come indented and split over many lines."""
    return " ".join(text.split())


def _limit(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "\u2026"
