"""A small, safe XML tree reader for the VO's non-VOTable documents (sans-I/O).

UWS job documents, VOSI capabilities, availability and tables documents and the
DataLink service descriptors are small XML documents whose namespace handling varies
wildly between servers: ``uws:``, ``vosi:``, ``vod:``, ``ns0:`` or no prefix, a
default namespace, the wrong namespace URI, even prefixes that are never declared
(pyvo's ``lazy-table1.xml`` uses ``xsi:type`` without binding ``xsi``). Readers of
those documents therefore only ever look at *local* names, so expat runs without
namespace processing and prefixes are cut off here; an undeclared prefix is then no
error, and ``xmlns`` declarations are dropped from the attributes.

Safety: a DOCTYPE is refused by default (these documents never need one), and an
entity declaration always is, so neither entity expansion ("billion laughs") nor
external entities (XXE) can happen; expat never fetches anything. Everything is
linear in the body size, which the transport has already capped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from xml.parsers import expat

from vosweep.errors import ResponseFormatError

__all__ = [
    "Element",
    "expect_root",
    "is_nil",
    "media_type",
    "parse_subtrees",
    "parse_tree",
    "text_or_none",
    "wrong_root",
]

#: The encoding in an XML declaration (expat refuses spellings such as ``utf8``).
_DECLARED_ENCODING = re.compile(rb"""<\?xml\b[^>]*?\bencoding\s*=\s*["']([\w.\-]+)["']""")
_UTF8_SPELLINGS = frozenset({b"utf8", b"utf-8", b"u8", b"ascii", b"us-ascii"})
_EXCERPT_LIMIT = 80
_MESSAGE_LIMIT = 500
#: How far into a body the error messages look for a title or a QUERY_STATUS.
_SNIFF_LIMIT = 64 * 1024
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_QUERY_STATUS = re.compile(
    rb"<(?:[\w.\-]+:)?INFO\b([^>]*\bname\s*=\s*[\"']QUERY_STATUS[\"'][^>]*?)"
    rb"(?:/>|>(.*?)</(?:[\w.\-]+:)?INFO\s*>)",
    re.IGNORECASE | re.DOTALL,
)
_VALUE = re.compile(rb"""\bvalue\s*=\s*["']([^"']*)["']""")
_UTF8_BOM = b"\xef\xbb\xbf"
_SPACE = frozenset(b" \t\r\n")

#: Chooses the subtrees `parse_subtrees` keeps: (local name, attributes) -> keep?
Selector = Callable[[str, Mapping[str, str]], bool]


@dataclass(slots=True)
class Element:
    """One element with local names only: prefixes vary between servers, meanings do not.

    Attributes:
        name: The local name (``job`` for ``<uws:job>``).
        attrs: Attributes by local name (``href`` for ``xlink:href``); an unprefixed
            attribute wins over a prefixed one of the same local name.
        children: Child elements, in document order.
        chunks: The character data directly inside this element (see `text`).
    """

    name: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The element's own character data, stripped (CDATA included)."""
        return "".join(self.chunks).strip()

    def iter(self, name: str) -> Iterator[Element]:
        """The direct children called *name*."""
        return (child for child in self.children if child.name == name)

    def find(self, name: str) -> Element | None:
        """The first direct child called *name*, if any."""
        return next(self.iter(name), None)

    def walk(self, name: str) -> Iterator[Element]:
        """Every descendant called *name*, depth first, in document order."""
        stack = list(reversed(self.children))
        while stack:
            element = stack.pop()
            if element.name == name:
                yield element
            stack.extend(reversed(element.children))


def is_nil(element: Element) -> bool:
    """Whether *element* carries ``xsi:nil="true"`` (UWS writes absent values that way)."""
    return element.attrs.get("nil", "").strip().lower() in {"true", "1"}


def text_or_none(element: Element | None) -> str | None:
    """The text of an optional element: None when absent, nil or empty."""
    if element is None or is_nil(element):
        return None
    return element.text or None


def parse_tree(
    body: bytes,
    what: str,
    *,
    roots: Collection[str] | None = None,
    allow_doctype: bool = False,
) -> Element:
    """Parse *body* into an `Element` tree.

    Args:
        body: The whole document.
        what: The document expected, named in error messages (``"UWS job document"``).
        roots: The local names the root may have; another root stops the parse at its
            start tag (a big VOTable sent in place of a job document costs nothing) and
            the error says what came instead (an HTML page and its title, a VOTable
            and its QUERY_STATUS message). None accepts any root.
        allow_doctype: Accept a DOCTYPE without entity declarations (VOTable 1.0 has one).

    Raises:
        ResponseFormatError: Not well-formed XML, no element at all, an unexpected root,
            a DOCTYPE (unless allowed) or any entity declaration.
    """
    _, kept = _parse(body, what, _everything, roots=roots, allow_doctype=allow_doctype)
    return kept[0]


def parse_subtrees(
    body: bytes,
    what: str,
    select: Selector,
    *,
    roots: Collection[str] | None = None,
    allow_doctype: bool = False,
) -> tuple[str, list[Element]]:
    """Parse only the subtrees of *body* whose top element *select* chooses.

    Only the chosen subtrees are built, so the service descriptors of a big result
    document cost memory for themselves alone, not for every row around them. A
    chosen element inside another chosen one stays in its parent's subtree.

    Returns:
        The local name of the root element and the chosen subtrees in document order.

    Raises:
        ResponseFormatError: As `parse_tree`.
    """
    return _parse(body, what, select, roots=roots, allow_doctype=allow_doctype)


def expect_root(root: Element, names: Collection[str], what: str) -> None:
    """Raise a `ResponseFormatError` saying what came instead, unless *root* is one of *names*.

    For trees already built; `parse_tree` with ``roots`` checks before building.

    Args:
        root: The parsed document.
        names: The local names a document of the expected kind may have as its root.
        what: The expected document, for the message (``"UWS job document"``).
    """
    if root.name in names:
        return
    detail = ""
    if root.name.lower() == "html":
        title = next(root.walk("title"), None)
        text = " ".join(title.text.split()) if title is not None else ""
        detail = f" (title: {text[:_EXCERPT_LIMIT]!r})" if text else ""
        raise ResponseFormatError(f"HTML page (root <{root.name}>) instead of a {what}{detail}")
    if root.name.upper() == "VOTABLE":
        for info in root.walk("INFO"):
            if info.attrs.get("name", "").upper() == "QUERY_STATUS":
                text = " ".join((info.text or info.attrs.get("value", "")).split())
                detail = f": {text[:_MESSAGE_LIMIT]}" if text else ""
                break
        raise ResponseFormatError(f"VOTable (root <{root.name}>) instead of a {what}{detail}")
    raise ResponseFormatError(f"XML document with root <{root.name}> instead of a {what}")


def wrong_root(root: str, body: bytes, what: str) -> ResponseFormatError:
    """The error for a document whose root is *root* where a *what* was expected.

    HTML pages (error and login pages served with 200) and VOTables (DALI errors)
    are named as such, with their title or QUERY_STATUS message, found in the head of
    *body*.
    """
    head = body[:_SNIFF_LIMIT]
    if root.lower() == "html":
        title = _first(_HTML_TITLE, head)
        detail = f" (title: {title[:_EXCERPT_LIMIT]!r})" if title else ""
        return ResponseFormatError(f"HTML page (root <{root}>) instead of a {what}{detail}")
    if root.upper() == "VOTABLE":
        match = _QUERY_STATUS.search(head)
        message = ""
        if match is not None:
            message = _clean(match.group(2) or b"") or _first(_VALUE, match.group(1))
        detail = f": {message[:_MESSAGE_LIMIT]}" if message else ""
        return ResponseFormatError(f"VOTable (root <{root}>) instead of a {what}{detail}")
    return ResponseFormatError(f"XML document with root <{root}> instead of a {what}")


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a media type into its type and parameters, as VO documents declare them.

    Capabilities (``outputFormat/mime``) and DataLink (``content_type``) write media
    types with any spacing, case and parameter order, and quote values at times.

    Returns:
        The type, lower-cased (``application/x-votable+xml``), and the parameters
        (names lower-cased, values stripped of spaces and quotes, case kept).
    """
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, raw = part.partition("=")
        if sep and key.strip():
            params.setdefault(key.strip().lower(), raw.strip().strip('"').strip())
    return kind.strip().lower(), params


class _Refused(Exception):
    """Raised inside the expat callbacks; becomes a ResponseFormatError."""


class _WrongRoot(Exception):
    """Raised at an unexpected root's start tag, to stop parsing at once."""


def _everything(_name: str, _attrs: Mapping[str, str]) -> bool:
    return True


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _attributes(raw: dict[str, str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    plain: set[str] = set()
    for key, value in raw.items():
        if key == "xmlns" or key.startswith("xmlns:"):
            continue
        local = _local(key)
        if local in plain:
            continue
        attrs[local] = value
        if local == key:
            plain.add(local)
    return attrs


def _parse(
    body: bytes,
    what: str,
    select: Selector,
    *,
    roots: Collection[str] | None,
    allow_doctype: bool,
) -> tuple[str, list[Element]]:
    body = _lstrip(body)
    parser = expat.ParserCreate(encoding=_encoding_override(body))
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    # The open elements of the kept subtree being built (empty outside kept subtrees).
    stack: list[Element] = []
    kept: list[Element] = []
    root_name: list[str] = []

    def start(name: str, raw: dict[str, str]) -> None:
        local = _local(name)
        if not root_name:
            root_name.append(local)
            if roots is not None and local not in roots:
                raise _WrongRoot(local)
        if stack:
            element = Element(local, _attributes(raw))
            stack[-1].children.append(element)
            stack.append(element)
            return
        attrs = _attributes(raw)
        if select(local, attrs):
            element = Element(local, attrs)
            kept.append(element)
            stack.append(element)

    def end(_name: str) -> None:
        if stack:
            stack.pop()

    def data(text: str) -> None:
        if stack:
            stack[-1].chunks.append(text)

    def doctype(name: str, *_args: object) -> None:
        if name.lower() == "html":
            raise _Refused(f"HTML page instead of a {what}")
        if not allow_doctype:
            # Entity declarations are the way to billion laughs and XXE; these documents
            # never need a DOCTYPE, so none is accepted.
            raise _Refused(f"a {what} must not have a DOCTYPE (entities are refused)")

    def entity(*_args: object) -> None:
        raise _Refused(f"entity declarations are refused (in a {what})")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(body, True)  # noqa: FBT003 (positional-only in pyexpat)
    except _Refused as exc:
        raise ResponseFormatError(str(exc)) from None
    except _WrongRoot as exc:
        raise wrong_root(str(exc), body, what) from None
    except LookupError as exc:  # expat asks Python's codecs for an encoding it lacks
        raise ResponseFormatError(f"{what} in an unknown character encoding: {exc}") from None
    except expat.ExpatError as exc:
        raise ResponseFormatError(
            f"{what} is not well-formed XML: {exc}{_describe_body(body)}"
        ) from None
    if not root_name:
        raise ResponseFormatError(f"{what} without any element{_describe_body(body)}")
    return root_name[0], kept


def _lstrip(body: bytes) -> bytes:
    """Drop a UTF-8 byte-order mark and whitespace before the XML declaration.

    Servers that print a newline before ``<?xml`` exist; expat refuses a declaration
    that is not at the very start.
    """
    start = 3 if body.startswith(_UTF8_BOM) else 0
    end = start
    while end < len(body) and body[end] in _SPACE:
        end += 1
    return body[end:] if end else body


def _encoding_override(body: bytes) -> str | None:
    """``UTF-8`` when the document declares UTF-8 under a name expat refuses (``utf8``).

    US-ASCII is read as UTF-8 too: a superset, and servers that declare ASCII and
    send accented names exist.
    """
    match = _DECLARED_ENCODING.match(body, 0, 256)
    if match is not None and match.group(1).lower() in _UTF8_SPELLINGS:
        return "UTF-8"
    return None


def _describe_body(body: bytes) -> str:
    """A hint at what a body that failed to parse is (HTML, JSON, empty, text)."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return " (empty body)"
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return " (an HTML page)"
    excerpt = " ".join(head[:_EXCERPT_LIMIT].decode("utf-8", errors="replace").split())
    return f" (starts with {excerpt!r})"


def _first(pattern: re.Pattern[bytes], text: bytes) -> str:
    match = pattern.search(text)
    return _clean(match.group(1)) if match else ""


def _clean(raw: bytes) -> str:
    return " ".join(html.unescape(raw.decode("utf-8", errors="replace")).split())
