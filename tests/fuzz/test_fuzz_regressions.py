# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""The minimal inputs of the bugs the fuzzers found, one test each, plus adversarial cases."""

from __future__ import annotations

import gzip

import pytest

from vosweep.errors import ResponseFormatError, ResponseTooLarge
from vosweep.protocols import uws, vosi
from vosweep.protocols.votable import parse_votable
from vosweep.registry import features

from .conftest import check


def _votable(fields: str, data: str) -> bytes:
    return (
        '<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE type="results"><TABLE>'
        f"{fields}<DATA>{data}</DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


@pytest.mark.parametrize(
    ("field", "data"),
    [
        # <TD>x</TD> padded to 200 million characters: 6 GB in astropy, 2.4 GB in fastvot.
        ('datatype="char" arraysize="200000000"', "<TABLEDATA>" + "<TR><TD>x</TD></TR>" * 3),
        ('datatype="int" arraysize="200000000"', "<TABLEDATA><TR><TD>1</TD></TR>"),
        ('datatype="unicodeChar" arraysize="300000000"', "<TABLEDATA><TR><TD>x</TD></TR>"),
        # astropy allocates BINARY columns 512 rows at a time: 191 GiB for a 10-byte stream.
        ('datatype="char" arraysize="100000000"', '<BINARY><STREAM encoding="base64">YWFh'),
    ],
)
def test_fixed_arraysize_cannot_blow_memory_up(field: str, data: str) -> None:
    closing = "</TABLEDATA>" if data.startswith("<TABLEDATA>") else "</STREAM></BINARY>"
    body = _votable(f'<FIELD name="a" {field}/>', data + closing)
    for name in ("votable", "votable-astropy"):
        assert isinstance(check(name, body, memory=True), ResponseTooLarge)


def test_fixed_arraysize_of_thousands_of_digits() -> None:
    body = _votable('<FIELD name="a" datatype="char" arraysize="' + "9" * 5000 + '"/>', "")
    assert isinstance(check("votable", body), ServiceErrorTypes)


def test_moderate_fixed_arraysize_still_reads() -> None:
    """A spectrum-sized fixed array in a few rows is no blow-up: still read."""
    cells = " ".join(["1.5"] * 20_000)
    body = _votable(
        '<FIELD name="flux" datatype="double" arraysize="20000"/>',
        f"<TABLEDATA><TR><TD>{cells}</TD></TR><TR><TD>{cells}</TD></TR></TABLEDATA>",
    )
    parsed = parse_votable(body)
    assert parsed.rows == 2


@pytest.mark.parametrize("encoding", ["base64", "zlib", "hex", "rot13", "uu"])
def test_declared_non_text_codec_is_a_format_error(encoding: str) -> None:
    """expat and the re-encoder used Python's codecs: base64 raised LookupError, zlib inflated."""
    bomb = gzip.compress(b"\0" * 1000)
    for name in ("votable", "uws.job", "vosi.availability", "registry.capabilities"):
        body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
        outcome = check(name, body + b"<VOTABLE><job><availability/>" + bomb)
        assert isinstance(outcome, ResponseFormatError)
    with pytest.raises(ResponseFormatError):
        uws.parse_job(b'<?xml version="1.0" encoding="base64"?><job/>')


def test_overflowing_param_value_does_not_warn() -> None:
    """numpy's overflow RuntimeWarning left astropy's path (an error under -W error)."""
    body = _votable(
        '<PARAM name="p" datatype="float" arraysize="1" value="1e308"/>', "<TABLEDATA/>"
    ).replace(b"<DATA><TABLEDATA/></DATA>", b"")
    outcome = check("votable-astropy", body)
    assert not isinstance(outcome, Exception)


@pytest.mark.parametrize("minor", ["\u00b2", "9" * 5000, "\u0663"])
def test_regtap_minor_version_digits_int_refuses(minor: str) -> None:
    """str.isdigit accepts superscripts and other scripts' digits; int() does not."""
    body = (
        "<capabilities><capability standardID='ivo://ivoa.net/std/TAP'>"
        f"<dataModel ivo-id='ivo://ivoa.net/std/RegTAP#1.{minor}'/></capability></capabilities>"
    ).encode()
    found = features.parse_capabilities(body)
    assert found.coverage_tables is None or minor.isascii()


_REGTAP_HEAD = (
    '<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE type="results">'
    '<INFO name="QUERY_STATUS" value="OK"/><TABLE>'
)


def _regtap(fields: str, rows: str) -> bytes:
    return (
        f"{_REGTAP_HEAD}{fields}<DATA><TABLEDATA>{rows}</TABLEDATA></DATA>"
        "</TABLE></RESOURCE></VOTABLE>"
    ).encode()


def test_regtap_answer_without_ivoid_column_is_a_format_error() -> None:
    """A KeyError out of RegistryClient.search (no failover, a crashed sweep) before."""
    body = _regtap('<FIELD name="ra" datatype="double"/>', "<TR><TD>1</TD></TR>")
    assert isinstance(check("regtap.rows", body), ResponseFormatError)


def test_regtap_rows_with_null_ivoid_or_junk_region_are_survivable() -> None:
    fields = (
        '<FIELD name="ivoid" datatype="char" arraysize="*"/>'
        '<FIELD name="region_of_regard" datatype="char" arraysize="*"/>'
    )
    rows = "<TR><TD/><TD>1</TD></TR><TR><TD>ivo://x/y</TD><TD>not a number</TD></TR>"
    resources = check("regtap.rows", _regtap(fields, rows))
    assert isinstance(resources, list)
    assert [(r.ivoid, r.region_of_regard) for r in resources] == [("ivo://x/y", None)]


@pytest.mark.parametrize(
    "body",
    [
        # Entity expansion and external entities: refused before any parser expands them.
        (
            b'<!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<VOTABLE>&b;</VOTABLE>"
        ),
        b'<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]><VOTABLE>&x;</VOTABLE>',
        # Deep nesting: astropy recurses, fastvot walks.
        b'<VOTABLE version="1.4">'
        + b"<RESOURCE>" * 50_000
        + b"</RESOURCE>" * 50_000
        + b"</VOTABLE>",
        # Regex worst cases in the sniffers (bounded to their 64 KiB window).
        b"<html>" + b"<title" * 10_000,
        b"<x><message>" * 5000,
        # A gzip bomb (100 MB of zeros) under a small cap.
        gzip.compress(b"\0" * 100_000_000, compresslevel=9),
    ],
    ids=["billion-laughs", "xxe", "deep", "html-title", "message", "gzip-bomb"],
)
def test_adversarial_bodies(body: bytes) -> None:
    for name in ("votable", "uws.job", "vosi.capabilities", "datalink.descriptors"):
        check(name, body)
    with pytest.raises((ResponseTooLarge, ResponseFormatError)):
        parse_votable(body, max_bytes=10_000_000)
    with pytest.raises(ResponseFormatError):
        vosi.parse_tables(body)


ServiceErrorTypes = (ResponseFormatError, ResponseTooLarge)


def test_unknown_long_encoding_name_past_the_sniffed_declaration() -> None:
    """fastvot let expat's LookupError out when the name was too long for the re-encoder."""
    body = b'<?xml version="1.0" encoding="UTF-' + b"9" * 300 + b'"?><VOTABLE/>'
    assert isinstance(check("votable", body), ResponseFormatError)


def test_overflowing_cell_does_not_warn_in_the_fast_decoder() -> None:
    rows = "<TR><TD>1e39</TD></TR><TR><TD>1e300</TD></TR>"
    field = '<FIELD name="f" datatype="float"><VALUES null="-999"/></FIELD>'
    body = _votable(field, f"<TABLEDATA>{rows}</TABLEDATA>")
    outcome = check("votable", body)
    assert not isinstance(outcome, Exception)
