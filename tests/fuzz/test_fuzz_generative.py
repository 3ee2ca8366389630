# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Generative fuzzing: structurally valid-ish VOTable, UWS and VOSI documents, random contents.

The strategies build documents the way services write them (prefixes, serialisations,
datatypes, arraysizes, status INFOs) but fill them with random names, values and
cells, so the parsers meet plausible documents no corpus holds.
"""

from __future__ import annotations

import base64
from xml.sax.saxutils import quoteattr

from hypothesis import given
from hypothesis import strategies as st

from vosweep.errors import ServiceError
from vosweep.protocols.base import Parsed

from .conftest import PARSERS, XML_PARSERS, check, fuzz_settings

_DATATYPES = (
    "char", "unicodeChar", "int", "long", "short", "double", "float", "boolean", "bit",
    "unsignedByte", "floatComplex", "doubleComplex",
)  # fmt: skip
_ARRAYSIZES = (None, "*", "1", "3", "2x2", "2x*", "10*", "0", "100x*")
_CELLS = (
    "", "0", "1", "-1", "3.5", "1e308", "1e999", "NaN", "-inf", "T", "F", "?", "true", "x",
    "1 2", "1 2 3 4", "9" * 30, "&amp;", "&lt;b&gt;", "\u00e9\u4e2d", " ", "0x10",
)  # fmt: skip
_PREFIXES = ("", "vot:", "ns0:")

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


@st.composite
def _field(draw: st.DrawFn, tag: str = "FIELD") -> str:
    attrs = {
        "name": draw(_text),
        "datatype": draw(st.sampled_from(_DATATYPES)),
    }
    arraysize = draw(st.sampled_from(_ARRAYSIZES))
    if arraysize is not None:
        attrs["arraysize"] = arraysize
    if tag == "PARAM":
        attrs["value"] = draw(st.sampled_from(_CELLS) | _text)
    return f"<{tag} " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"


@st.composite
def _info(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(("QUERY_STATUS", "Error", "warning", "other")))
    value = draw(st.sampled_from(("OK", "ERROR", "OVERFLOW", "", "ok")))
    return f"<INFO name={quoteattr(name)} value={quoteattr(value)}>{_esc(draw(_text))}</INFO>"


@st.composite
def votables(draw: st.DrawFn) -> bytes:
    """A VOTable with random fields, rows and serialisation."""
    p = draw(st.sampled_from(_PREFIXES))
    fields = draw(st.lists(_field(), max_size=5))
    params = draw(st.lists(_field("PARAM"), max_size=2))
    nrows = draw(st.integers(0, 6))
    serialisation = draw(st.sampled_from(("TABLEDATA", "BINARY", "BINARY2", None)))
    if serialisation == "TABLEDATA":
        rows = "".join(
            f"<{p}TR>"
            + "".join(
                f"<{p}TD>{_esc(draw(st.sampled_from(_CELLS) | _text))}</{p}TD>" for _ in fields
            )
            + f"</{p}TR>"
            for _ in range(nrows)
        )
        payload = f"<{p}DATA><{p}TABLEDATA>{rows}</{p}TABLEDATA></{p}DATA>"
    elif serialisation is not None:
        raw = draw(st.binary(max_size=256))
        payload = (
            f'<{p}DATA><{p}{serialisation}><{p}STREAM encoding="base64">'
            f"{base64.b64encode(raw).decode()}</{p}STREAM></{p}{serialisation}></{p}DATA>"
        )
    else:
        payload = ""
    infos = "".join(draw(st.lists(_info(), max_size=3)))
    after = "".join(draw(st.lists(_info(), max_size=2)))
    table = f"<{p}TABLE>{''.join(params)}{''.join(fields)}{payload}{after}</{p}TABLE>"
    table = table.replace("<PARAM", f"<{p}PARAM").replace("<FIELD", f"<{p}FIELD")
    infos = infos.replace("<INFO", f"<{p}INFO").replace("</INFO", f"</{p}INFO")
    resource_type = draw(st.sampled_from(("results", "meta", "")))
    version = draw(st.sampled_from(("1.1", "1.2", "1.3", "1.4", "1.5", "9.9")))
    namespace = f' xmlns:{p[:-1]}="http://www.ivoa.net/xml/VOTable/v1.3"' if p else ""
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}VOTABLE version="{version}"{namespace}>'
        f'{infos}<{p}RESOURCE type="{resource_type}">{table}</{p}RESOURCE></{p}VOTABLE>'
    )
    return document.encode()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;") if "&" not in text[:1] else text


_PHASES = st.sampled_from(
    ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "held", "", "RUNNING")
)


@st.composite
def uws_documents(draw: st.DrawFn) -> bytes:
    """A UWS job or job list, elements and values random, some missing or nil."""
    p = draw(st.sampled_from(("uws:", "", "ns0:")))
    ns = f'xmlns{":" + p[:-1] if p else ""}="http://www.ivoa.net/xml/UWS/v1.0"'
    xsi = ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'

    def element(name: str, value: st.SearchStrategy[str]) -> str:
        choice = draw(st.sampled_from(("value", "nil", "missing", "empty")))
        if choice == "missing":
            return ""
        if choice == "nil":
            return f'<{p}{name} xsi:nil="true"/>'
        text = "" if choice == "empty" else _esc(draw(value))
        return f"<{p}{name}>{text}</{p}{name}>"

    if draw(st.booleans()):
        refs = "".join(
            f"<{p}jobref id={quoteattr(draw(_text))}>{element('phase', _PHASES)}</{p}jobref>"
            for _ in range(draw(st.integers(0, 3)))
        )
        return f"<{p}jobs {ns}{xsi}>{refs}</{p}jobs>".encode()
    number = st.sampled_from(("0", "-1", "3600", "1e999", "nan", "x")) | _text
    results = "".join(
        f"<{p}result id={quoteattr(draw(_text))} xlink:href={quoteattr(draw(_text))}/>"
        for _ in range(draw(st.integers(0, 2)))
    )
    body = "".join(
        (
            element("jobId", _text),
            element("runId", _text),
            element("phase", _PHASES),
            element("quote", number),
            element("executionDuration", number),
            element("destruction", _text),
            f'<{p}results xmlns:xlink="http://www.w3.org/1999/xlink">{results}</{p}results>',
            (
                f"<{p}errorSummary type={quoteattr(draw(_text))} hasDetail="
                f"{quoteattr(draw(st.sampled_from(('true', 'false', 'x'))))}>"
                f"{element('message', _text)}</{p}errorSummary>"
            ),
        )
    )
    return f'<{p}job {ns}{xsi} version="1.1">{body}</{p}job>'.encode()


@st.composite
def vosi_documents(draw: st.DrawFn) -> bytes:
    """VOSI capabilities (TAPRegExt), availability or tables, random contents."""
    kind = draw(st.sampled_from(("capabilities", "availability", "tableset")))
    word = st.sampled_from(("ADQL", "ADQL-2.0", "UNION", "ILIKE", "MOC", "2.1")) | _text
    number = st.sampled_from(("0", "-1", "1e6", "20000.0", "1e999", "9" * 5000, "nan")) | _text
    if kind == "availability":
        return (
            f"<availability><available>{_esc(draw(word | st.just('true')))}</available>"
            f"<note>{_esc(draw(_text))}</note></availability>"
        ).encode()
    if kind == "tableset":
        columns = "".join(
            f"<column><name>{_esc(draw(_text))}</name><dataType arraysize="
            f"{quoteattr(draw(_text))}>{_esc(draw(word))}</dataType></column>"
            for _ in range(draw(st.integers(0, 3)))
        )
        return (
            f"<tableset><schema><name>{_esc(draw(_text))}</name><table><name>"
            f"{_esc(draw(_text))}</name><nrows>{_esc(draw(number))}</nrows>{columns}"
            "</table></schema></tableset>"
        ).encode()
    models = "".join(
        f"<dataModel ivo-id={quoteattr(draw(st.sampled_from(_MODELS) | _text))}/>"
        for _ in range(draw(st.integers(0, 2)))
    )
    features = "".join(
        f"<languageFeatures type={quoteattr(draw(_text))}><feature><form>{_esc(draw(word))}"
        "</form></feature></languageFeatures>"
        for _ in range(draw(st.integers(0, 2)))
    )
    return (
        '<capabilities xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        f"{models}<language><name>{_esc(draw(word))}</name><version>{_esc(draw(word))}"
        f"</version>{features}</language><outputLimit><default unit="
        f"{quoteattr(draw(st.sampled_from(('row', 'byte', 'x'))))}>{_esc(draw(number))}"
        "</default></outputLimit><interface><accessURL>"
        f"{_esc(draw(_text))}</accessURL></interface></capability></capabilities>"
    ).encode()


_MODELS = (
    "ivo://ivoa.net/std/RegTAP#1.1",
    "ivo://ivoa.net/std/RegTAP#1.\u00b2",
    "ivo://ivoa.net/std/RegTAP#1." + "9" * 5000,
    "ivo://ivoa.net/std/RegTAP#1.x",
)


@fuzz_settings(150)
@given(body=votables())
def test_generated_votables(body: bytes) -> None:
    for name in ("votable", "votable-astropy", "datalink.links", "datalink.descriptors"):
        outcome = check(name, body)
        if name == "votable" and not isinstance(outcome, ServiceError):
            assert isinstance(outcome, Parsed)
            for table in outcome.tables:
                assert len(table) >= 0
    check("regtap.rows", body)
    check("metadata", body)


@fuzz_settings(150)
@given(body=uws_documents())
def test_generated_uws_documents(body: bytes) -> None:
    for name in XML_PARSERS:
        check(name, body)


@fuzz_settings(150)
@given(body=vosi_documents())
def test_generated_vosi_documents(body: bytes) -> None:
    for name in XML_PARSERS:
        check(name, body)


@fuzz_settings(100)
@given(body=st.binary(max_size=512) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes(body: bytes) -> None:
    for name in PARSERS:
        check(name, body)
