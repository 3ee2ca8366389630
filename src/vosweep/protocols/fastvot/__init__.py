"""A fast VOTable decoder for the serialisations and types real services send.

astropy's reader costs 2-5 ms of CPU for a ten-row answer, mostly Python work per cell
and per object; over a sweep of thousands of services that, not the network, is the
bottleneck. `decode` reads the document's structure from a skeleton without its data
(`._skeleton`), decodes TABLEDATA in bulk (`._tabledata`) and BINARY/BINARY2 with
numpy (`._binary`), and gives light column tables (`TableData`) with exactly what
astropy's ``to_table(use_names_over_ids=True)`` would hold.

Anything it does not reproduce exactly makes it return None, and the caller falls back
to astropy for that document (see `vosweep.protocols.votable`): correctness first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vosweep.protocols.fastvot._binary import decode_stream
from vosweep.protocols.fastvot._model import ColumnData, FieldMeta, TableData
from vosweep.protocols.fastvot._skeleton import (
    PAYLOAD_CODECS,
    Payload,
    Signal,
    Skeleton,
    TableSkeleton,
    Unsupported,
    read_skeleton,
)
from vosweep.protocols.fastvot._tabledata import decode_tabledata

__all__ = ["PAYLOAD_CODECS", "FastDocument", "Signal", "Signals", "TableData", "decode"]

# A BINARY/BINARY2 payload must be exactly one local STREAM; its megabytes of base64 are
# not walked by a regex (a byte search checks them for markup), only the two tags are.
_STREAM_OPEN = re.compile(
    rb"[ \t\r\n]*<((?:[^\s<>/:=\"']+:)?)STREAM((?:[ \t\r\n]+[^\s=<>/\"']+[ \t\r\n]*=[ \t\r\n]*"
    rb"(?:\"[^\"<]*\"|'[^'<]*'))*)[ \t\r\n]*>"
)
_STREAM_CLOSE = re.compile(rb"</((?:[^\s<>/:=\"']+:)?)STREAM[ \t\r\n]*>[ \t\r\n]*\Z")
_ATTRIBUTE = re.compile(rb"""([^\s=]+)[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')""")


@dataclass(slots=True)
class Signals:
    """The status-bearing elements, as `vosweep.protocols.votable` decides on them.

    Attributes:
        statuses: QUERY_STATUS INFOs (``.value``, ``.content``), in document order.
        errors: ``Error`` INFOs and PARAMs of the root, RESOURCE and DEFINITIONS levels.
        warnings: INFOs named ``warning``.
    """

    statuses: list[Signal] = field(default_factory=list)
    errors: list[Signal] = field(default_factory=list)
    warnings: list[Signal] = field(default_factory=list)


@dataclass(slots=True)
class FastDocument:
    """A decoded VOTable.

    Attributes:
        tables: The result tables (not those of ``type="meta"`` resources), in document
            order; ``meta`` holds astropy's table metadata plus ``vosweep_table`` (the
            name, ID or ``table<i>``) and ``params`` (PARAM name to value) if any.
        signals: The status signals.
        version: The VOTable version.
    """

    tables: list[TableData]
    signals: Signals
    version: str


def decode(data: bytes, *, codec: str | None = None) -> FastDocument | None:
    """Decode the VOTable *data*, or return None to let astropy read it.

    Args:
        data: The whole document, starting at its first ``<``, after the checks of
            `vosweep.protocols.votable` (size, gzip, root element, no entity
            declarations, an encoding expat reads).
        codec: The payloads' Python codec, when the caller has found the prolog plain
            (no internal DTD subset) and read the declared encoding; None: found here.

    Returns:
        The document, or None for anything not reproduced exactly (odd structure, a
        datatype or arraysize not handled, a cell astropy would refuse ...).
    """
    # Cells out of a float32's range become infinite, as astropy reads them: numpy's
    # warnings about it are silenced once for the whole document.
    with np.errstate(all="ignore"):
        return _decode(data, codec)


def _decode(data: bytes, codec: str | None) -> FastDocument | None:
    try:
        read = read_skeleton(data, codec=codec)
        if read is None:
            return None
        skeleton, _ = read
        tables: list[TableData] = []
        for table in skeleton.tables:
            # Meta tables are decoded too: astropy reads them, and fails on bad ones.
            columns = _columns(table, data, skeleton)
            if columns is None:
                return None
            if table.result:
                tables.append(_table_data(table, columns, len(tables)))
    except (
        Unsupported,
        LookupError,  # expat asks Python's codecs for a declared encoding it does not know
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        RecursionError,
    ):
        return None
    signals = Signals(skeleton.statuses, skeleton.errors, skeleton.warnings)
    return FastDocument(tables=tables, signals=signals, version=skeleton.version)


def _table_data(table: TableSkeleton, columns: list[ColumnData], index: int) -> TableData:
    meta = dict(table.meta)
    meta["vosweep_table"] = table.label or f"table{index}"
    if table.params:
        meta["params"] = table.params
    nrows = len(columns[0].data) if columns else 0
    return TableData(columns=columns, meta=meta, nrows=nrows)


def _columns(table: TableSkeleton, data: bytes, skeleton: Skeleton) -> list[ColumnData] | None:
    """The table's columns from its payload (zero rows without DATA)."""
    if not table.fields:
        return []
    payload = table.payload
    if payload is None:
        return decode_tabledata(
            table.fields, b"", prefix="", encoding="ascii", version=skeleton.version
        )
    if payload.kind == "TABLEDATA":
        return decode_tabledata(
            table.fields,
            memoryview(data)[payload.start : payload.end],
            prefix=payload.prefix,
            encoding=skeleton.encoding,
            version=skeleton.version,
        )
    return _decode_binary(table.fields, payload, data, skeleton.version)


def _decode_binary(
    fields: list[FieldMeta], payload: Payload, data: bytes, version: str
) -> list[ColumnData] | None:
    """A BINARY or BINARY2 payload of the document *data*, read where it lies (no copy)."""
    stream = _stream(data, payload.start, payload.end)
    if stream is None:
        return None  # anything but one local STREAM: astropy's odd paths
    attributes_text, start, end = stream
    attributes: dict[str, Any] = {}
    for name, double, single in _ATTRIBUTE.findall(attributes_text):
        value = double if double or not single else single
        if b"&" in value:
            return None
        attributes[name.decode("ascii", errors="replace")] = value.decode("latin-1")
    if "href" in attributes:
        return None  # a remote stream: astropy would fetch it
    return decode_stream(
        fields,
        data,
        binary2=payload.kind == "BINARY2",
        encoding=attributes.get("encoding"),
        version=version,
        start=start,
        end=end,
    )


def _stream(data: bytes, start: int, end: int) -> tuple[bytes, int, int] | None:
    """(attributes, text start, text end) of ``data[start:end]``'s single ``<STREAM>``.

    None if the payload is not exactly one STREAM element holding plain text.
    """
    opening = _STREAM_OPEN.match(data, start, end)
    close = data.rfind(b"</", start, end)
    if opening is None or close < opening.end():
        return None
    closing = _STREAM_CLOSE.match(data, close, end)
    if closing is None or closing.group(1) != opening.group(1):
        return None
    # Comments, CDATA, child elements are astropy's business. References need no search
    # here: the strict base64 decoder refuses their ``&`` and ``;``.
    if data.find(b"<", opening.end(), close) >= 0:
        return None
    return opening.group(2), opening.end(), close
