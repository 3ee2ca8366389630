"""TAP uploads (DALI ``UPLOAD``): which tables a request brings, and reading them (pure).

``UPLOAD=name,param:part`` names a table ``TAP_UPLOAD.name`` whose VOTable travels in the
multipart part *part* of the same request; several tables are separated by ``;`` or sent
as several ``UPLOAD`` parameters. ``UPLOAD=name,http://...`` (the service fetches the
table itself) is refused: the simulator never makes requests of its own.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vosweep.testing._adql import UPLOAD_SCHEMA, ColumnDef, TableDef, UploadedTable

__all__ = ["UploadError", "UploadRef", "parse_upload", "read_upload"]

#: What an uploaded table may be called: an ADQL regular identifier.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: VOTable scalar types stored as they are; others become text or integers.
_SCALARS = frozenset({"short", "int", "long", "float", "double"})
_INTEGERS = frozenset({"boolean", "bit", "unsignedByte"})


class UploadError(ValueError):
    """An upload is malformed, missing, too big or of a kind the service refuses."""


@dataclass(frozen=True, slots=True)
class UploadRef:
    """One ``name,uri`` pair of an ``UPLOAD`` parameter.

    Attributes:
        name: The table name (``TAP_UPLOAD.name``), as the client spelled it.
        uri: Where the table is: ``param:part`` for an inline upload, else a URL.
    """

    name: str
    uri: str

    @property
    def part(self) -> str | None:
        """The multipart part holding an inline table, or None for a URL."""
        return self.uri.removeprefix("param:") if self.uri.startswith("param:") else None


def parse_upload(values: Sequence[str]) -> tuple[UploadRef, ...]:
    """Read the ``UPLOAD`` parameter(s) of a request.

    Raises:
        UploadError: On a pair without a comma, a name that is not an ADQL identifier,
            an empty location, or one name given twice (names are case-insensitive).
    """
    refs: list[UploadRef] = []
    seen: set[str] = set()
    for value in values:
        for pair in value.split(";"):
            if not pair.strip():
                continue
            name, comma, uri = pair.partition(",")
            name, uri = name.strip(), uri.strip()
            if not comma or not uri:
                raise UploadError(f"UPLOAD needs table_name,URI pairs, not {pair!r}")
            if not _NAME.fullmatch(name):
                raise UploadError(f"upload table name {name!r} is not an ADQL identifier")
            if uri.startswith("param:") and not uri.removeprefix("param:"):
                raise UploadError(f"UPLOAD {name} names no request part ({uri!r})")
            if name.lower() in seen:
                raise UploadError(f"table {name} is uploaded twice")
            seen.add(name.lower())
            refs.append(UploadRef(name, uri))
    return tuple(refs)


def _datatype(field: Any) -> str:
    """The stored datatype of a FIELD: scalars as they are, arrays and others as text."""
    datatype = str(field.datatype)
    arraysize = field.arraysize
    if datatype in {"char", "unicodeChar"}:
        return datatype
    if arraysize not in {None, "1"}:
        return "char"
    if datatype in _SCALARS:
        return datatype
    if datatype in _INTEGERS:
        return "short"
    return "char"


def _cells(values: np.ndarray, mask: np.ndarray, datatype: str) -> list[object]:
    cells: list[object] = values.tolist()
    for i, cell in enumerate(cells):
        if bool(mask[i]) if mask.ndim == 1 else bool(mask[i].all()):
            cells[i] = None
        elif isinstance(cell, bytes):
            cells[i] = cell.decode("utf-8", "replace")
        elif isinstance(cell, list):  # an array cell: DALI's space-separated values
            cells[i] = " ".join(str(v) for v in np.ravel(cell).tolist())
        elif isinstance(cell, bool):
            cells[i] = int(cell)
        elif datatype == "char" and not isinstance(cell, str):
            cells[i] = str(cell)
    return cells


def read_upload(name: str, data: bytes, *, max_rows: int) -> UploadedTable:
    """Read an uploaded VOTable into the table ``TAP_UPLOAD.name`` (blocking: a thread).

    Column names are folded to lower case, as ADQL regular identifiers are compared
    without case. Array columns become text (space-separated values); booleans 1/0.

    Raises:
        UploadError: When *data* is not a VOTable with one table, has more than
            *max_rows* rows, or has two columns with the same name.
    """
    from astropy.io.votable import parse_single_table  # noqa: PLC0415 -- heavy import

    try:
        votable = parse_single_table(io.BytesIO(data), verify="ignore")
        array = votable.array
    except Exception as exc:  # noqa: BLE001 -- whatever breaks, the client sent it
        raise UploadError(f"cannot read upload {name} as a VOTable: {exc}") from None
    if len(array) > max_rows:
        raise UploadError(
            f"upload {name} has {len(array)} rows; this service accepts at most {max_rows}"
        )
    columns: list[ColumnDef] = []
    values: list[list[object]] = []
    seen: set[str] = set()
    for field, key in zip(votable.fields, array.dtype.names or (), strict=False):
        column_name = str(field.name or field.ID or key).lower()
        if column_name in seen:
            raise UploadError(f"upload {name} has two columns named {column_name}")
        seen.add(column_name)
        datatype = _datatype(field)
        columns.append(
            ColumnDef(
                column_name,
                datatype,
                str(field.description or ""),
                unit=str(field.unit) if field.unit is not None else None,
                ucd=field.ucd or None,
                xtype=field.xtype or None,
            )
        )
        column = array[key]
        values.append(_cells(np.ma.getdata(column), np.ma.getmaskarray(column), datatype))
    rows = list(zip(*values, strict=True)) if values else []
    table = TableDef(
        UPLOAD_SCHEMA, name.lower(), f"Table {name} uploaded with the query", tuple(columns)
    )
    return UploadedTable(table, rows)
