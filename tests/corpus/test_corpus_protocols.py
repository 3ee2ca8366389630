# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Real responses replayed through whole fan-outs: SIA, SSA, TAP (UWS), VOSI and DataLink.

A mock transport answers each request with a corpus file, so the files go through what a
live sweep runs (request building, the TAP conversation, parsing, outcomes), and pyvo or
astropy say what the right answer is.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from astropy.io.votable import parse as astropy_parse

import vosweep
from vosweep.protocols.base import Request, Response
from vosweep.transport import MockTransport

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio

PV = "pyvo/pyvo/"
AQ = "astroquery/astroquery/"


def astropy_rows(path: Path) -> int:
    return sum(len(t.array) for t in astropy_parse(str(path), verify="ignore").iter_tables())


def replay(files: dict[str, bytes], default: bytes | None = None) -> Callable[[Request], Response]:
    """Answer by URL path suffix; job creations and phase changes get their 303s."""

    def handler(request: Request) -> Response:
        path = urlsplit(request.url).path
        if request.method == "POST" and path.endswith("/async"):
            return Response(url=request.url, status=303, headers={"location": path + "/1337"})
        if request.method == "POST" and path.endswith("/phase"):
            return Response(url=request.url, status=303, headers={"location": path[:-6]})
        if request.method in {"DELETE", "POST"} and path.endswith("/1337"):
            return Response(url=request.url, status=303, headers={"location": path[:-5]})
        for suffix, body in files.items():
            if path.endswith(suffix):
                return Response(url=request.url, status=200, body=body, content_type="text/xml")
        if default is not None:
            return Response(url=request.url, status=200, body=default, content_type="text/xml")
        return Response(url=request.url, status=404, body=b"not here", content_type="text/plain")

    return handler


async def fanout(
    handler: Callable[[Request], Response], services: list[vosweep.Service], query: object
) -> vosweep.FanoutResult:
    transport = MockTransport(handler)
    async with vosweep.Engine(transport=transport, user_agent_purpose="test") as engine:
        return await engine.fanout(services, query)


@pytest.mark.parametrize(
    ("name", "service", "query"),
    [
        (
            PV + "dal/tests/data/sia/dataset.xml",
            vosweep.Service.sia("http://sia.test/q"),
            vosweep.ImageQuery((10, 10), size=0.1),
        ),
        (
            PV + "dal/tests/data/sia2/dataset.xml",
            vosweep.Service.sia2("http://sia2.test/q"),
            vosweep.ImageQuery((10, 10), radius=0.1),
        ),
        (
            PV + "dal/tests/data/ssa/result.xml",
            vosweep.Service.ssa("http://ssa.test/q"),
            vosweep.SpectrumQuery((10, 10), diameter=0.1),
        ),
    ],
)
async def test_dal_results(corpus_dir: Path, name: str, service: vosweep.Service, query: object):
    path = corpus_dir / name
    result = await fanout(replay({}, default=path.read_bytes()), [service], query)
    outcome = result.outcomes[0]
    expected = astropy_rows(path)
    assert outcome.status is (vosweep.Status.OK if expected else vosweep.Status.EMPTY), (
        outcome.message
    )
    assert result.rows == expected


async def test_tap_async_completed_job(corpus_dir: Path):
    """pyvo's captured DaCHS job: COMPLETED, result at its href; then deleted."""
    files = {
        "/1337": (corpus_dir / PV / "io/uws/tests/data/job.xml").read_bytes(),
        "/results/result": (corpus_dir / PV / "dal/tests/data/tap/obscore-image.xml").read_bytes(),
        "/capabilities": (corpus_dir / PV / "dal/tests/data/tap/capabilities.xml").read_bytes(),
    }
    handler = replay(files)
    transport = MockTransport(handler)
    async with vosweep.Engine(transport=transport, user_agent_purpose="test") as engine:
        result = await engine.fanout(
            [vosweep.Service.tap("http://example.com/tap")],
            vosweep.TapQuery("SELECT * FROM ivoa.obscore", mode="async"),
        )
    outcome = result.outcomes[0]
    assert outcome.status is vosweep.Status.OK, outcome.message
    assert result.rows == astropy_rows(corpus_dir / PV / "dal/tests/data/tap/obscore-image.xml")
    methods = [(r.method, urlsplit(r.url).path) for r in transport.requests]
    assert methods[-1] == ("DELETE", "/tap/async/1337")


async def test_tap_async_error_job(corpus_dir: Path):
    """A real ERROR job document: the errorSummary message is the outcome's."""
    files = {"/1337": (corpus_dir / PV / "io/uws/tests/data/job-error.xml").read_bytes()}
    result = await fanout(
        replay(files),
        [vosweep.Service.tap("http://example.com/tap")],
        vosweep.TapQuery("SELECT 'test'", mode="async"),
    )
    outcome = result.outcomes[0]
    assert outcome.status is vosweep.Status.ERROR
    assert "We have problem" in (outcome.message or "")


async def test_tap_capabilities_real_documents(corpus_dir: Path):
    body = (corpus_dir / AQ / "cadc/tests/data/tap_caps.xml").read_bytes()
    transport = MockTransport(replay({"/capabilities": body}))
    async with vosweep.Engine(transport=transport, user_agent_purpose="test") as engine:
        caps = await engine.capabilities("http://cadc.test/tap")
    assert caps is not None
    assert caps.tap is not None


@pytest.mark.parametrize(
    "name",
    [
        PV + "dal/tests/data/datalink/datalink.xml",
        AQ + "alma/tests/data/alma-datalink.xml",
        AQ + "alma/tests/data/alma-datalink-recurse-aux.xml",
        AQ + "casda/tests/data/datalink.xml",
        AQ + "casda/tests/data/datalink_noaccess.xml",
    ],
)
async def test_datalink_documents_match_pyvo(
    corpus_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
):
    """Same links as pyvo's DatalinkResults, and the same #preview / #this selections.

    pyvo widens a semantics to its narrower terms from the online vocabulary; here it
    reads the corpus copy of the DataLink core vocabulary instead.
    """
    from pyvo.dal.adhoc import DatalinkResults  # noqa: PLC0415
    from pyvo.utils import vocabularies  # noqa: PLC0415

    desise = json.loads((corpus_dir / PV / "dal/tests/data/datalink/datalink.desise").read_text())
    monkeypatch.setattr(vocabularies, "get_vocabulary", lambda *_, **__: desise)

    path = corpus_dir / name
    votable = astropy_parse(str(path), verify="ignore")
    pyvo_links = DatalinkResults(votable)
    service = vosweep.Service.datalink("http://dl.test/links?ID=x")
    result = await fanout(replay({}, default=path.read_bytes()), [service], vosweep.DatalinkQuery())
    assert result.outcomes[0].status.succeeded, result.outcomes[0].message
    assert result.rows == len(pyvo_links)
    for semantics, narrower in (("#preview", False), ("#this", False), ("#preview", True)):
        chosen = await fanout(
            replay({}, default=path.read_bytes()),
            [service],
            vosweep.DatalinkQuery(semantics=semantics, include_narrower=narrower),
        )
        expected = list(pyvo_links.bysemantics(semantics, include_narrower=narrower))
        assert chosen.rows == len(expected)
        if expected:
            ours = sorted(_cell(v) for v in chosen.table["access_url"])
            theirs = sorted(_cell(link["access_url"]) for link in expected)
            assert ours == theirs


def _cell(value: object) -> str:
    """A pyvo record's raw cell as our table shows it ('' where masked)."""
    import numpy as np  # noqa: PLC0415

    if value is None or value is np.ma.masked:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
