"""TABLEDATA decoding in bulk, with astropy's exact values, masks and dtypes.

astropy parses TABLEDATA one XML event and one Python call per cell. Here one regular
expression cuts every cell out of the payload at once, the row structure is checked on
what is left between the cells (a single string comparison), and each column is then
converted in one go (``map(float, ...)`` into `numpy.fromiter`, fixed-width string
arrays, object arrays). Cells that the bulk conversion refuses are read one by one with
astropy's rules (`vosweep.protocols.fastvot._columns`); where astropy would raise, the
decoder returns None and astropy gets the document, to fail the way it fails.

What astropy does, with ``verify="ignore"``, and this module reproduces:

* Cell text is what expat hands over: references expanded, CDATA sections' content
  kept, comments dropped, line ends normalised; then stripped of XML whitespace.
* Floats: a cell that is not a number (empty, ``null``) is masked, its value the null
  (NaN without VALUES/@null); without a null NaN is masked, with one only the null.
* Integers: empty and ``nan`` give the null or 0, masked (an empty cell only from
  VOTable 1.3 on); ``0x`` means hexadecimal; values out of range are clipped; anything
  else that is not an integer makes astropy raise.
* Booleans: ``T F 1 0 true false ?`` and empty, any case; anything else raises.
* Strings are never masked; fixed ``arraysize`` gives ``U<n>`` (longer values cut),
  ``*`` an object array of `str`.
* Fixed-size numeric arrays (``arraysize="3"``): values split on whitespace or commas;
  an empty cell (1.3 on) is all zeros, all masked.
* Variable-length numeric arrays (``*``, ``n*``): each cell a masked array of its items
  as Python scalars (float64, int64, bool); an empty cell an empty float64 array.
"""

from __future__ import annotations

import math
import operator
import re
from functools import lru_cache
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from vosweep.protocols.fastvot._columns import (
    FLOAT_TYPES,
    INT_RANGES,
    NUMPY_TYPES,
    build_column,
    null_value,
    parse_bool_text,
    parse_float_text,
    parse_int_text,
)
from vosweep.protocols.fastvot._model import ColumnData
from vosweep.protocols.fastvot._skeleton import ARRAY_SPLIT, XML_SPACE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vosweep.protocols.fastvot._model import FieldMeta

__all__ = ["decode_tabledata"]

Array = np.ndarray[Any, Any]

#: Control characters XML forbids (expat refuses them); U+FFFE and U+FFFF are checked too.
_CONTROL_BYTES = bytes(c for c in range(32) if c not in b"\t\n\r")
#: The five predefined entities and character references: all expat expands here.
_REFERENCE = re.compile(r"&(?:#([0-9]+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));")
_BAD_AMPERSAND = re.compile(r"&(?!(?:#[0-9]+|#x[0-9a-fA-F]+|amp|lt|gt|quot|apos);)")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_ATTRIBUTES = r"""(?:[ \t\r\n]+[^ \t\r\n=<>/"']+[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*"""
_HIDDEN = re.compile(r"<!--(.*?)-->|<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
#: Boolean cells as writers spell them: 1 true, 0 false, 2 null (anything else: slow path).
_BOOLEAN_CODES = {
    **dict.fromkeys(("T", "t", "1", "true", "True", "TRUE"), 1),
    **dict.fromkeys(("F", "f", "0", "false", "False", "FALSE"), 0),
    **dict.fromkeys(("", "?"), 2),
}
_VARIABLE = re.compile(r"[0-9]*\*")
#: Fixed-width strings may take this many characters per payload character (and at
#: least the floor): ``arraysize="1000000"`` must not make a few rows allocate gigabytes.
_STRING_BLOWUP = 16
_STRING_FLOOR = 1 << 22


class _Patterns:
    """The regular expressions for one namespace prefix (``vot:`` or none).

    ``plain`` takes the usual writers' output (``<TD>value</TD>``, ``<TD/>``); ``general``
    also takes attributes and spaces inside the tags.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        p = re.escape(prefix)
        space = "[ \t\r\n]*"
        # An empty-element cell (<TD/>, as astropy writes empty values) leaves the group
        # unmatched: re.split gives None for it.
        # The whitespace after a cell goes with it (fewer, emptier strings between cells).
        self.plain = re.compile(f"<{p}TD(?:/>|>([^<]*+)</{p}TD>)[ \t\r\n]*+")
        self.general = re.compile(
            f"<{p}TD{_ATTRIBUTES}{space}(?:/>|>([^<]*+)</{p}TD{space}>)[ \t\r\n]*+"
        )
        self.encoded = re.compile(f"<{p}TD[ \t\r\n][^>]*encoding")
        self.cell_slot = f"(?:<{p}TD/>|<{p}TD>([^<]*+)</{p}TD>)[ \t\r\n]*+"
        self.row_open = re.compile(f"<{p}TR{_ATTRIBUTES}{space}>")
        self.row_close = re.compile(f"</{p}TR{space}>")


@lru_cache(maxsize=16)
def _patterns(prefix: str) -> _Patterns:
    return _Patterns(prefix)


@lru_cache(maxsize=64)
def _row_pattern(prefix: str, width: int) -> re.Pattern[str]:
    """One whole plain row of *width* cells: `re.split` then yields only cells and gaps."""
    patterns = _patterns(prefix)
    p = re.escape(prefix)
    return re.compile(f"<{p}TR>[ \t\r\n]*+{patterns.cell_slot * width}</{p}TR>")


def decode_tabledata(
    fields: Sequence[FieldMeta],
    payload: bytes | memoryview,
    *,
    prefix: str,
    encoding: str,
    version: str,
) -> list[ColumnData] | None:
    """Decode a TABLEDATA payload into columns, or None to let astropy read the document.

    Args:
        fields: The TABLE's FIELDs, in order (at least one).
        payload: The bytes between ``<TABLEDATA>`` and ``</TABLEDATA>``.
        prefix: The TABLEDATA element's namespace prefix with its colon, or ``""``.
        encoding: The document's encoding, as a Python codec name.
        version: The VOTable version (empty integer cells are null from 1.3 on).

    Returns:
        One column per field, as astropy's ``to_table(use_names_over_ids=True)`` has
        them; None when a cell, a field or the markup is outside what is reproduced.
    """
    raw = bytes(payload)
    if len(raw.translate(None, _CONTROL_BYTES)) != len(raw) or (
        encoding == "utf-8"
        and b"\xef\xbf" in raw
        and (b"\xef\xbf\xbe" in raw or b"\xef\xbf\xbf" in raw)
    ):
        return None  # characters XML forbids: expat refuses the document
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    cells = _cells(text, len(fields), _patterns(prefix))
    if cells is None:
        return None
    v13 = version not in {"1.0", "1.1", "1.2"}
    width = len(fields)
    rows = len(cells) // width
    budget = _STRING_BLOWUP * len(text) + _STRING_FLOOR
    # Columns read alike are read together: a small answer is short and wide, and numpy
    # costs microseconds per call whatever the length (45 columns of one row: 4x faster).
    groups: dict[tuple[str, str | None, str | None], list[int]] = {}
    for j, field in enumerate(fields):
        groups.setdefault((field.datatype, field.arraysize, field.null), []).append(j)
    columns: list[ColumnData | None] = [None] * width
    for indices in groups.values():
        if len(indices) == 1:
            (j,) = indices
            group_cells = cells[j::width]
        else:
            group_cells = list(chain.from_iterable(cells[j::width] for j in indices))
        try:
            # Every conversion is cell by cell: the cells of k columns in a row, then
            # cut back into k columns, read exactly as each column alone would be.
            decoded = _column(fields[indices[0]], group_cells, v13=v13, budget=budget)
        except ValueError:  # astropy raises on this cell: so will the fallback
            return None
        if decoded is None:
            return None
        data, mask = decoded
        if len(indices) == 1:
            columns[indices[0]] = build_column(fields[indices[0]], data, mask, version)
            continue
        shape = (len(indices), rows, *data.shape[1:])
        data, mask = data.reshape(shape), mask.reshape(shape)
        for i, j in enumerate(indices):
            columns[j] = build_column(fields[j], data[i], mask[i], version)
    return [column for column in columns if column is not None]


# --- cells ----------------------------------------------------------------------------------


def _cells(text: str, width: int, patterns: _Patterns) -> list[str] | None:
    """Every cell's text (row by row), or None unless the payload is plain rows of cells.

    The cells are cut out with one `re.split`; what remains between them must then be
    exactly ``<TR>`` + *width* cell slots + ``</TR>`` per row, up to whitespace. The
    common markup is tried first; comments, CDATA sections and attributes take a
    second, slower pass.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # XML end-of-line handling
    cells = _split_rows(text, width, patterns.prefix)
    if cells is None:
        cells = _split(text, width, patterns, patterns.plain)
    if cells is None:
        if "<!" in text:
            plain = _plain(text)
            if plain is None:
                return None
            text = plain
        if "<?" in text or "<!" in text or patterns.encoded.search(text):
            return None  # processing instructions, DOCTYPEs, base64-encoded cells
        cells = _split(text, width, patterns, patterns.general)
        if cells is None:
            return None
    if "]]>" in text:
        return None  # not allowed in XML text: expat refuses the document
    if "&" in text:
        for i, cell in enumerate(cells):
            if "&" in cell:
                expanded = _expand(cell)
                if expanded is None:
                    return None
                cells[i] = expanded
    return cells


def _split_rows(text: str, width: int, prefix: str) -> list[str] | None:
    """The cells, if *text* is only plain rows (``<TR><TD>v</TD><TD/></TR>``, spaced).

    One match per row leaves a single gap string per row, which must be blank; the
    cell-by-cell split below makes two strings per cell and checks the tags afterwards.
    """
    parts = _row_pattern(prefix, width).split(text)
    step = width + 1
    gaps = "".join(parts[::step])
    if (gaps and not gaps.isspace()) or not gaps.isascii():
        return None  # something else between the rows: let the general path judge it
    del parts[::step]
    if None in parts:
        return [value or "" for value in parts]
    return parts


def _split(text: str, width: int, patterns: _Patterns, cell: re.Pattern[str]) -> list[str] | None:
    """The cells, if *text* is only rows of *width* cells (as *cell* matches them)."""
    parts = cell.split(text)
    cells = parts[1::2]
    if None in cells:
        cells = [value or "" for value in cells]
    rows, rest = divmod(len(cells), width)
    if rest:
        return None
    between = "\0".join(parts[0::2])
    if cell is patterns.plain:
        between = between.replace("</" + patterns.prefix + "TR>", "\2")
        between = between.replace("<" + patterns.prefix + "TR>", "\1")
    else:
        between = patterns.row_close.sub("\2", patterns.row_open.sub("\1", between))
    # Text between elements is ignored (by astropy too): only the tags must be right.
    if "".join(between.split()) != ("\1" + "\0" * width + "\2") * rows:
        return None
    return cells


def _plain(text: str) -> str | None:
    """*text* without comments, CDATA sections turned into escaped text; None if malformed.

    expat hands a CDATA section's content over as character data and drops comments,
    so a cell ``a<!--x--><![CDATA[<b>]]>`` reads ``a<b>``: the same as ``a&lt;b&gt;``.
    """
    malformed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal malformed
        comment, cdata = match.group(1), match.group(2)
        if cdata is not None:
            return cdata.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if "--" in comment or comment.endswith("-"):
            malformed = True  # not allowed in an XML comment
        return ""

    plain = _HIDDEN.sub(replace, text)
    return None if malformed else plain


def _expand(cell: str) -> str | None:
    """*cell* with its references expanded, or None if expat would refuse one."""
    if _BAD_AMPERSAND.search(cell):
        return None
    refused = False

    def replace(match: re.Match[str]) -> str:
        nonlocal refused
        if match.group(3):
            return _ENTITIES[match.group(3)]
        code = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
        if not (
            code in {0x9, 0xA, 0xD}
            or 0x20 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF
        ):
            refused = True
            return ""
        return chr(code)

    expanded = _REFERENCE.sub(replace, cell)
    return None if refused else expanded


# --- columns --------------------------------------------------------------------------------


def _column(
    field: FieldMeta, cells: list[str], *, v13: bool, budget: int
) -> tuple[Array, Array] | None:
    """(data, mask) of one column from its cells' texts.

    Raises:
        ValueError: A cell astropy cannot read (it raises too).
    """
    datatype, arraysize = field.datatype, field.arraysize
    if datatype in {"char", "unicodeChar"}:
        # Cells keep the whitespace around them; numbers are read with it, strings not.
        return _strings(_stripped(cells), arraysize, budget)
    if datatype not in NUMPY_TYPES:
        return None
    if arraysize is None:
        return _scalars(field, cells, v13=v13)
    if _VARIABLE.fullmatch(arraysize):
        return _var_arrays(field, cells, v13=v13)
    if not arraysize.isdigit() or not arraysize.isascii():
        return None  # multidimensional arrays
    return _arrays(field, cells, int(arraysize), v13=v13)


def _strings(cells: list[str], arraysize: str | None, budget: int) -> tuple[Array, Array]:
    mask = np.zeros(len(cells), dtype=bool)
    if arraysize == "*":
        data = np.empty(len(cells), dtype=object)
        data[:] = cells
        return data, mask
    size = int(arraysize.removesuffix("*")) if arraysize is not None else 1
    if size * len(cells) > budget:
        raise ValueError("fixed-width strings would take far more memory than the body")
    return np.array(cells, dtype=f"U{size}"), mask


def _scalars(field: FieldMeta, cells: list[str], *, v13: bool) -> tuple[Array, Array]:
    datatype = field.datatype
    if datatype in FLOAT_TYPES:
        return _floats(cells, np.dtype(NUMPY_TYPES[datatype]), null_value(field))
    if datatype == "boolean":
        return _booleans(cells)
    return _integers(cells, datatype, null_value(field), v13=v13)


def _floats(cells: list[str], dtype: np.dtype[Any], null: float | None) -> tuple[Array, Array]:
    """Floats: bulk `float` first; cells it refuses are masked (astropy's lax parser)."""
    count = len(cells)
    bad: Array | None = None
    try:
        if "" in cells:
            empty = np.fromiter(map(operator.not_, cells), dtype=bool, count=count)
            values = np.full(count, np.nan)
            values[~empty] = np.fromiter(map(float, filter(None, cells)), np.float64)
            if null is not None:
                bad = empty
        else:
            values = np.fromiter(map(float, cells), dtype=np.float64, count=count)
    except ValueError:
        parsed = [parse_float_text(cell) for cell in cells]
        bad = np.fromiter((value is None for value in parsed), dtype=bool, count=count)
        values = np.array([np.nan if value is None else value for value in parsed])
    if null is None:
        mask = np.isnan(values)
    else:
        # astropy compares each Python float with the null as numpy promotes them.
        with np.errstate(over="ignore", invalid="ignore"):
            target = np.asarray(null, dtype=dtype)
        compare = np.result_type(0.0, target)
        if bad is not None:
            values[bad] = target
        mask = values.astype(compare) == target.astype(compare)
        if bad is not None:
            mask |= bad
    if dtype == values.dtype:
        return values, mask
    # float32: out-of-range values become infinite (`fastvot.decode` silences numpy).
    return values.astype(dtype), mask


def _integers(
    cells: list[str], datatype: str, null: int | None, *, v13: bool
) -> tuple[Array, Array]:
    """Integers: bulk `int` first; the rest one by one with astropy's rules.

    Raises:
        ValueError: A cell that is no integer (astropy raises).
    """
    count = len(cells)
    low, high = INT_RANGES[datatype]
    try:
        if "" in cells:
            empty = np.fromiter(map(operator.not_, cells), dtype=bool, count=count)
            values = np.zeros(count, dtype=np.int64)
            values[~empty] = np.fromiter(map(int, filter(None, cells)), np.int64)
        else:
            empty = None
            values = np.fromiter(map(int, cells), dtype=np.int64, count=count)
    except (ValueError, OverflowError):
        pairs = [
            parse_int_text(cell.strip(XML_SPACE), datatype, empty_is_null=v13, null=null)
            for cell in cells
        ]
        data = np.array([value for value, _ in pairs], dtype=NUMPY_TYPES[datatype])
        mask = np.fromiter((masked for _, masked in pairs), dtype=bool, count=count)
        return data, mask
    if null is not None:
        if empty is not None:
            values[empty] = null
        mask = values == null
    elif empty is not None and v13:
        mask = empty
    else:
        mask = np.zeros(count, dtype=bool)
    if datatype != "long":
        np.maximum(values, low, out=values)
        np.minimum(values, high, out=values)
    return values.astype(NUMPY_TYPES[datatype], copy=False), mask


def _booleans(cells: list[str]) -> tuple[Array, Array]:
    """Booleans: the usual spellings through one lookup table, the rest cell by cell.

    Raises:
        ValueError: A cell astropy does not read as a boolean (it raises E05).
    """
    try:
        codes = np.fromiter(map(_BOOLEAN_CODES.__getitem__, cells), np.int8, len(cells))
    except KeyError:
        pass
    else:
        return codes == 1, codes == 2
    pairs = [parse_bool_text(cell.strip(XML_SPACE)) for cell in cells]
    count = len(cells)
    data = np.fromiter((value for value, _ in pairs), dtype=bool, count=count)
    mask = np.fromiter((masked for _, masked in pairs), dtype=bool, count=count)
    return data, mask


def _arrays(
    field: FieldMeta, cells: list[str], size: int, *, v13: bool
) -> tuple[Array, Array] | None:
    """Fixed-size numeric arrays: every cell's values read as one long scalar column."""
    if size == 0:
        return None
    cells = _stripped(cells)
    empty = [i for i, cell in enumerate(cells) if cell == ""]
    if empty and not v13:
        return None  # astropy pads '' with defaults and warns: not reproduced
    parts: list[str] = []
    for cell in cells:
        split = ARRAY_SPLIT.split(cell) if cell else ["0"] * size
        if len(split) != size:
            return None  # astropy pads or cuts, with a warning
        parts.extend(split)
    data, mask = _scalars(field, parts, v13=v13)
    data = data.reshape(len(cells), size)
    mask = mask.reshape(len(cells), size)
    if empty:
        data[empty] = 0
        mask[empty] = True
    return data, mask


def _var_arrays(field: FieldMeta, cells: list[str], *, v13: bool) -> tuple[Array, Array] | None:
    """Variable-length arrays of numbers or booleans (``arraysize="*"`` or ``"n*"``).

    As astropy's ``ScalarVarArray`` makes them: each cell a masked array of its items
    read as Python scalars (float64, int64 or bool), an empty cell an empty float64 array
    without mask, and the cells themselves never masked. A float item astropy cannot
    read would be its null, or None without one: not reproduced (None).

    Raises:
        ValueError: An integer or boolean item astropy cannot read (it raises too).
    """
    datatype = field.datatype
    null = null_value(field)
    if null is not None and datatype in FLOAT_TYPES:
        # astropy keeps a float null in the field's precision (float32: -99.9 is not
        # -99.9 any more), and compares and substitutes that.
        null = np.asarray(null, dtype=NUMPY_TYPES[datatype])[()]
    column = np.empty(len(cells), dtype=object)
    for row, cell in enumerate(cells):
        text = cell.strip(XML_SPACE)
        if text.strip() == "":
            column[row] = np.ma.array(np.array([]))
            continue
        parts = ARRAY_SPLIT.split(text)
        values: list[Any] = []
        masks: list[bool] = []
        if datatype in FLOAT_TYPES:
            for part in parts:
                value = parse_float_text(part)
                if value is None:
                    if null is None:
                        return None
                    values.append(null)
                    masks.append(True)
                else:
                    values.append(value)
                    masks.append(math.isnan(value) if null is None else value == null)
        elif datatype == "boolean":
            for part in parts:
                value, masked = parse_bool_text(part)
                values.append(value)
                masks.append(masked)
        else:
            for part in parts:
                number, masked = parse_int_text(part, datatype, empty_is_null=v13, null=null)
                values.append(number)
                masks.append(masked)
        column[row] = np.ma.array(np.array(values), mask=np.array(masks, dtype=bool))
    return column, np.zeros(len(cells), dtype=bool)


def _stripped(cells: list[str]) -> list[str]:
    """The cells without surrounding XML whitespace (astropy's tokenizer strips it)."""
    return list(map(str.strip, cells, repeat(XML_SPACE, len(cells))))
