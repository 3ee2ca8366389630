# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Shared machinery of the parser fuzz tests: the parsers, the property, the mutators.

The property (`check`): a parser returns its value or raises a `ServiceError`
subclass, within `TIME_LIMIT` seconds, with a bounded memory peak and without warnings
(a sweep parses thousands of bodies; anything else crashes it or floods its log).

Runs are deterministic (``derandomize``); ``VOSWEEP_FUZZ_EXAMPLES=5000`` selects the
"fuzz-long" profile: that many examples per test, random seeds, for long runs.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import os
import random
import re
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from astropy.io.votable.exceptions import VOWarning
from astropy.units import UnitsWarning
from hypothesis import HealthCheck, settings

from vosweep.errors import ServiceError
from vosweep.protocols import datalink, metadata, uws, vosi
from vosweep.protocols.base import Response
from vosweep.protocols.votable import parse_votable
from vosweep.registry import client, features

# --- the corpus (tests/corpus/conftest.py's helpers, loaded by path: no package there) ----

_spec = importlib.util.spec_from_file_location(
    "_vosweep_corpus_helpers", Path(__file__).resolve().parents[1] / "corpus" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_corpus_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_corpus_helpers)

CORPUS_ROOT: Path | None = _corpus_helpers.locate_corpus()
CORPUS_FILES: list[str] = _corpus_helpers.corpus_files(CORPUS_ROOT) if CORPUS_ROOT else []
SKIP_REASON: str = _corpus_helpers.SKIP_REASON


def corpus_params() -> list[Any]:
    """One parameter per corpus file, or one skipped case without the corpus."""
    if CORPUS_ROOT is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    return [pytest.param(name, id=name) for name in CORPUS_FILES]


def corpus_bytes(name: str) -> bytes:
    assert CORPUS_ROOT is not None
    return (CORPUS_ROOT / name).read_bytes()


# --- settings ---------------------------------------------------------------------------

FUZZ_EXAMPLES_ENV = "VOSWEEP_FUZZ_EXAMPLES"
_LONG = os.environ.get(FUZZ_EXAMPLES_ENV, "").strip()
settings.register_profile(
    "fuzz-long",
    max_examples=int(_LONG) if _LONG.isdigit() else 1000,
    derandomize=False,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def fuzz_settings(max_examples: int) -> settings:
    """Deterministic, *max_examples* examples; the "fuzz-long" profile when asked for."""
    if _LONG:
        return settings(settings.get_profile("fuzz-long"))
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the parsers --------------------------------------------------------------------------


def _regtap_resources(body: bytes) -> object:
    """RegTAP's entry point: a sync answer's rows, then the resources made of them."""
    response = Response(url="http://reg.sim.test/tap/sync", status=200, body=body)
    rows, _ = client._parse_rows(response, 1 << 28)
    resources = client._resources(rows, "http://reg.sim.test/tap")
    details = client._Details(include_authenticated=True)
    details.add_interfaces(rows)
    return resources


PARSERS: dict[str, Callable[[bytes], object]] = {
    "votable": parse_votable,
    "votable-astropy": lambda body: parse_votable(body, fast=False),
    "uws.job": uws.parse_job,
    "uws.phase": uws.parse_phase,
    "uws.job_list": uws.parse_job_list,
    "vosi.capabilities": vosi.parse_capabilities,
    "vosi.availability": vosi.parse_availability,
    "vosi.tables": vosi.parse_tables,
    "datalink.links": datalink.parse_links,
    "datalink.descriptors": datalink.parse_descriptors,
    "metadata": metadata.parse_metadata,
    "registry.capabilities": features.parse_capabilities,
    "regtap.rows": _regtap_resources,
}
#: The XML-only parsers (cheap: worth running on every mutant).
XML_PARSERS = (
    "uws.job",
    "uws.phase",
    "uws.job_list",
    "vosi.capabilities",
    "vosi.availability",
    "vosi.tables",
    "datalink.descriptors",
    "metadata",
    "registry.capabilities",
)

# --- the property -------------------------------------------------------------------------

TIME_LIMIT = 2.0
#: Memory peak allowed: this many times the input, plus a floor.
MEMORY_RATIO = 50
MEMORY_FLOOR = 100 * 2**20
#: Warnings astropy may give on odd but readable content (also ignored in pyproject).
_TOLERATED_WARNINGS = (VOWarning, UnitsWarning)


def check(name: str, body: bytes, *, memory: bool = False) -> object | ServiceError:
    """Run parser *name* on *body*; return its value or the ServiceError it raised.

    Raises:
        AssertionError: Any other exception, a warning, too slow, or too much memory.
    """
    parser = PARSERS[name]
    if memory:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome: object | ServiceError = parser(body)
            except ServiceError as exc:
                outcome = exc
            except Exception as exc:
                msg = f"{name} raised {type(exc).__name__}: {exc!s:.300} on {_show(body)}"
                raise AssertionError(msg) from exc
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
    finally:
        if memory:
            tracemalloc.stop()
    loud = [w for w in caught if not issubclass(w.category, _TOLERATED_WARNINGS)]
    assert not loud, f"{name} warned {loud[0].category.__name__}: {loud[0].message}"
    limit = TIME_LIMIT * (4 if memory else 1)  # tracemalloc slows allocation down
    assert elapsed < limit, f"{name} took {elapsed:.2f} s on {_show(body)}"
    bound = MEMORY_RATIO * len(body) + MEMORY_FLOOR
    assert peak < bound, f"{name} peaked at {peak} bytes for {len(body)} on {_show(body)}"
    return outcome


def _show(body: bytes) -> str:
    return f"{len(body)} bytes {body[:160]!r}"


# --- mutators -----------------------------------------------------------------------------

_TAG = re.compile(rb"<(/?)((?:[A-Za-z_][\w.\-]*:)?)([A-Za-z_][\w.\-]*)")
_ATTRIBUTE = re.compile(
    rb"""\b(datatype|arraysize|encoding|width|precision|nrows|value|name|ID|ref|version|"""
    rb"""type|standardID|href|unit|utype|ucd|xtype)\s*=\s*(["'])(.*?)\2"""
)
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STREAM = re.compile(rb"(<(?:\w+:)?STREAM\b[^>]*>)(.*?)(</(?:\w+:)?STREAM\s*>)", re.DOTALL)
_TAG_NAMES = (
    b"VOTABLE RESOURCE TABLE FIELD PARAM INFO DATA TABLEDATA BINARY BINARY2 STREAM TR TD "
    b"GROUP FIELDref PARAMref VALUES MIN MAX OPTION LINK DESCRIPTION DEFINITIONS COOSYS FITS "
    b"job jobs jobref jobId phase results result errorSummary message parameters "
    b"capabilities capability interface accessURL language feature form dataModel "
    b"availability available tableset schema table column name dataType html title"
).split()
_ATTRIBUTE_VALUES = {
    b"datatype": (
        b"char",
        b"unicodeChar",
        b"int",
        b"long",
        b"short",
        b"double",
        b"float",
        b"boolean",
        b"bit",
        b"unsignedByte",
        b"floatComplex",
        b"doubleComplex",
        b"string",
        b"int64",
        b"",
        b"bogus",
        b"object",
    ),
    b"arraysize": (
        b"*",
        b"1",
        b"0",
        b"-1",
        b"2x3",
        b"2x*",
        b"100x*",
        b"*x2",
        b"10*",
        b"99999",
        b"999999999",
        b"1e9",
        b"x",
        b"",
        b"3x0x*",
        b"65536",
    ),
    b"encoding": (b"base64", b"gzip", b"dynamic", b"", b"bogus", b"BASE64"),
    b"width": (b"-1", b"0", b"1e99", b"99999999999999999999", b"x"),
}
_HUGE_NUMBERS = (
    b"9" * 40,
    b"-" + b"9" * 5000,
    b"1e309",
    b"-1e-400",
    b"nan",
    b"-inf",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0x7f",
    b"1_000",
    b"\xd9\xa3",
    b"\xc2\xb2",
)
_PROLOG_INJECTIONS = (
    b'<!DOCTYPE VOTABLE SYSTEM "http://www.ivoa.net/xml/VOTable/VOTable.dtd">',
    b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>',
    b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',
    b"<!DOCTYPE html>",
    b"<!-- a comment -->",
    b'<?xml-stylesheet type="text/xsl" href="x.xsl"?>',
)
_BAD_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80")


def _flip(data: bytes, rnd: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        out[rnd.randrange(len(out))] ^= 1 << rnd.randrange(8)
    return bytes(out)


def _truncate(data: bytes, rnd: random.Random) -> bytes:
    return data[: rnd.randrange(len(data))]


def _chunk(data: bytes, rnd: random.Random) -> bytes:
    start = rnd.randrange(len(data))
    end = min(len(data), start + rnd.randint(1, 4096))
    if rnd.random() < 0.5:
        return data[:start] + data[end:]
    return data[:end] + data[start:end] * rnd.randint(1, 4) + data[end:]


def _swap_tag(data: bytes, rnd: random.Random) -> bytes:
    tags = list(_TAG.finditer(data))
    if not tags:
        return data
    tag = rnd.choice(tags)
    return data[: tag.start(3)] + rnd.choice(_TAG_NAMES) + data[tag.end(3) :]


def _attribute(data: bytes, rnd: random.Random) -> bytes:
    found = list(_ATTRIBUTE.finditer(data))
    if not found:
        return data
    match = rnd.choice(found)
    key = match.group(1)
    choices = _ATTRIBUTE_VALUES.get(key)
    if choices is not None and rnd.random() < 0.8:
        value = rnd.choice(choices)
    else:
        value = rnd.choice(
            (b"", b"&amp;", b"&#0;", b"&#xD800;", b"\x00", b"<", rnd.choice(_HUGE_NUMBERS))
        )
    return data[: match.start(3)] + value + data[match.end(3) :]


def _prolog(data: bytes, rnd: random.Random) -> bytes:
    injection = rnd.choice(_PROLOG_INJECTIONS)
    end = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    if rnd.random() < 0.3:
        injection += b"<x>&lol2;&xxe;</x>"
    return data[:end] + injection + data[end:]


def _stream(data: bytes, rnd: random.Random) -> bytes:
    payload = base64.b64encode(rnd.randbytes(rnd.randint(0, 2048)))
    if rnd.random() < 0.2:
        payload = payload[: rnd.randrange(len(payload) + 1)] + b"=*!"
    match = _STREAM.search(data)
    if match is not None:
        return data[: match.start(2)] + payload + data[match.end(2) :]
    data_at = data.find(b"<TABLEDATA>")
    if data_at < 0:
        return data
    closing = data.find(b"</TABLEDATA>", data_at)
    if closing < 0:
        return data
    kind = rnd.choice((b"BINARY", b"BINARY2"))
    replacement = b"<" + kind + b'><STREAM encoding="base64">' + payload + b"</STREAM></" + kind
    return data[:data_at] + replacement + b">" + data[closing + len(b"</TABLEDATA>") :]


def _number(data: bytes, rnd: random.Random) -> bytes:
    found = list(_NUMBER.finditer(data, 0, 200_000))
    if not found:
        return data
    match = rnd.choice(found)
    return data[: match.start()] + rnd.choice(_HUGE_NUMBERS) + data[match.end() :]


def _insert(data: bytes, rnd: random.Random) -> bytes:
    junk = rnd.choice((b"\x00", b"\x00" * rnd.randint(1, 64), *_BAD_UTF8))
    at = rnd.randrange(len(data) + 1)
    return data[:at] + junk + data[at:]


def _recode(data: bytes, rnd: random.Random) -> bytes:
    if rnd.random() < 0.5:
        return gzip.compress(data, compresslevel=1, mtime=0)
    return data.decode("utf-8", errors="replace").encode(rnd.choice(("utf-16", "utf-32")))


MUTATORS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    _flip,
    _truncate,
    _chunk,
    _swap_tag,
    _attribute,
    _prolog,
    _stream,
    _number,
    _insert,
    _recode,
)


def mutate(data: bytes, rnd: random.Random) -> bytes:
    """Apply one to three random mutations (structure-aware ones included) to *data*."""
    for _ in range(rnd.randint(1, 3)):
        if not data:
            return data
        data = rnd.choice(MUTATORS)(data, rnd)
    return data
