"""Bombs over real loopback HTTP: each is cut off with an outcome that says why, within the caps.

Entity expansion (billion laughs), external entities (XXE: no file read, no connection),
decompression bombs (the cap applies to decompressed bytes, whichever layer inflates),
endless chunked bodies and headers, and documents with a million FIELDs or attributes.
Every server here is a tiny purpose-built one on 127.0.0.x; every loop in it is bounded.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import anyio
import pytest
from aiohttp import web
from hostile_servers import Handler, raw_server

import vosweep

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

CAP = 1_000_000
#: Decompressed size of the bombs: 64 times the cap.
BOMB_BYTES = 64 * 2**20
#: Tracemalloc peak allowed while a bomb is received: a few caps, far below the bomb.
MEMORY_BOUND = 16 * 2**20
CONE = vosweep.Cone(ra=10.0, dec=20.0, radius=0.1)
TIMEOUTS = vosweep.Timeouts(connect=2, read=2, attempt=4)
HEAD = (
    b'<?xml version="1.0"?>\n<VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results"><TABLE>'
)
TAIL = b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
ONE_ROW = (
    b'<FIELD name="x" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>{cell}</TD></TR>'
    + TAIL
)
ROOT = b"<VOTABLE"


def engine(**overrides: Any) -> vosweep.Engine:
    """An engine with a 1 MB cap, short timeouts and no retries (one attempt per case)."""
    config: dict[str, Any] = {
        "user_agent_purpose": "test",
        "limits": vosweep.Limits(max_response_bytes=CAP),
        "timeouts": TIMEOUTS,
        "retry": vosweep.RetryPolicy(attempts=1),
        "breaker": vosweep.BreakerPolicy(enabled=False),
        "freeze_gc": False,
    }
    return vosweep.Engine(**{**config, **overrides})


@asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run *app* on *host* (a free port); yield its base URL."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def body_app(
    body: bytes, *, content_type: str = "application/x-votable+xml", **headers: str
) -> web.Application:
    """An app answering every GET with *body* and *headers* (no automatic compression).

    The body goes out in pieces, each awaited, so that the server's own buffers stay
    small and the memory measured is the client's.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type, **headers})
        response.content_length = len(body)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(body), 65536):
                await response.write(body[start : start + 65536])
            await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


@dataclass
class Listener:
    """A loopback listener that counts the connections it gets (an entity's target)."""

    url: str = ""
    accepted: int = 0


@asynccontextmanager
async def listener(host: str = "127.0.0.9") -> AsyncIterator[Listener]:
    """Count connections to *host*: a fetched external entity would show up here."""
    seen = Listener()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        del reader
        seen.accepted += 1
        writer.close()

    async with raw_server(handle, host) as url:
        seen.url = url
        yield seen


@dataclass
class Guard:
    """What the client process tried: sockets connected, files opened."""

    connects: list[Any] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)


@pytest.fixture(name="guard")
def _guard(monkeypatch: pytest.MonkeyPatch) -> Guard:
    """Record every connect() and open(); refuse any outside loopback or at /etc/passwd."""
    seen = Guard()
    connect = socket.socket.connect
    real_open = builtins.open

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        seen.connects.append(address)
        if sock.family in {socket.AF_INET, socket.AF_INET6}:
            assert str(address[0]).startswith("127."), f"non-loopback connect: {address}"
        connect(sock, address)

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        seen.opened.append(str(file))
        assert "passwd" not in str(file), f"opened {file}"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(builtins, "open", guarded_open)
    return seen


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Trace Python allocations; the list gets the peak (bytes) at exit."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def only(result: vosweep.FanoutResult) -> vosweep.ServiceOutcome:
    (outcome,) = result.outcomes
    return outcome


def assert_refused(outcome: vosweep.ServiceOutcome, error_type: str, *words: str) -> None:
    """The outcome is an error of *error_type* whose message has each of *words*."""
    assert outcome.status is vosweep.Status.ERROR, outcome
    assert outcome.error_type == error_type, outcome
    message = (outcome.message or "").lower()
    assert all(word.lower() in message for word in words), outcome.message
    assert "root:" not in message  # nothing of /etc/passwd leaked into the report


# --- entities -------------------------------------------------------------------------

LAUGHS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else '<!ENTITY lol0 "lol">' for i in range(10)
)


def with_entities(root: str, subset: str, body: bytes) -> bytes:
    """*body* with a DOCTYPE internal subset inserted before its root element."""
    prolog, sep, rest = body.partition(b"<" + root.encode())
    return prolog + f"<!DOCTYPE {root} [{subset}]>".encode() + sep + rest


def entity_cases(listen: Listener) -> dict[str, tuple[str, str]]:
    """Entity attacks as (internal subset, reference placed in the document)."""
    return {
        "billion laughs": (LAUGHS, "&lol9;"),
        "xxe file": ('<!ENTITY xxe SYSTEM "file:///etc/passwd">', "&xxe;"),
        "xxe http": (f'<!ENTITY xxe SYSTEM "{listen.url}/xxe">', "&xxe;"),
        "parameter entity": (f'<!ENTITY % ext SYSTEM "{listen.url}/x.dtd"> %ext;', "x"),
    }


ENTITY_CASES = ["billion laughs", "xxe file", "xxe http", "parameter entity"]


@pytest.mark.parametrize("case", ENTITY_CASES)
async def test_entities_in_a_votable_are_refused(case: str, guard: Guard) -> None:
    """A VOTable declaring entities ends as a ResponseFormatError; nothing is fetched or read."""
    async with listener() as listen:
        subset, ref = entity_cases(listen)[case]
        body = with_entities("VOTABLE", subset, HEAD + ONE_ROW.replace(b"{cell}", ref.encode()))
        async with serve(body_app(body)) as url, engine() as e:
            started = time.perf_counter()
            with peak_memory() as peak:
                result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
            elapsed = time.perf_counter() - started
    assert_refused(only(result), "ResponseFormatError", "entit")
    assert elapsed < 2.0
    assert peak[0] < MEMORY_BOUND
    assert listen.accepted == 0
    assert not [a for a in guard.connects if a[0] == "127.0.0.9"]
    assert not [f for f in guard.opened if "passwd" in f]


async def test_an_external_dtd_is_never_fetched(guard: Guard) -> None:
    """``<!DOCTYPE VOTABLE SYSTEM url>`` (VOTable 1.0 style) is read without fetching the DTD."""
    async with listener() as listen:
        doctype = f'<!DOCTYPE VOTABLE SYSTEM "{listen.url}/VOTable.dtd">'.encode()
        body = HEAD.replace(ROOT, doctype + ROOT, 1) + ONE_ROW.replace(b"{cell}", b"fine")
        async with serve(body_app(body)) as url, engine() as e:
            result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
    assert only(result).status is vosweep.Status.OK, only(result)
    assert listen.accepted == 0
    assert len(guard.connects) >= 1  # the guard saw the fan-out's own connection


JOB = (
    b'<?xml version="1.0"?>\n<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0">'
    b"<uws:jobId>{ref}</uws:jobId><uws:phase>COMPLETED</uws:phase>"
    b"<uws:results/></uws:job>"
)


@dataclass
class JobServer:
    """Counts of what a bomb-serving TAP service received."""

    deletes: int = 0
    job_gets: int = 0


def uws_app(job_document: bytes, seen: JobServer) -> web.Application:
    """A TAP service whose one job answers every GET with *job_document*."""

    async def create(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther(location=str(request.url.with_path("/tap/async/j1")))

    async def phase(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther(location=str(request.url.with_path("/tap/async/j1")))

    async def job(request: web.Request) -> web.Response:
        del request
        seen.job_gets += 1
        return web.Response(body=job_document, content_type="text/xml")

    async def delete(request: web.Request) -> web.Response:
        seen.deletes += 1
        raise web.HTTPSeeOther(location=str(request.url.with_path("/tap/async")))

    app = web.Application()
    app.router.add_post("/tap/async", create)
    app.router.add_post("/tap/async/j1/phase", phase)
    app.router.add_get("/tap/async/j1", job)
    app.router.add_delete("/tap/async/j1", delete)
    return app


ASYNC_TAP = vosweep.TapPolicy(
    mode="async", capabilities=False, wait=0, poll_initial=0.05, cleanup_timeout=1
)


@pytest.mark.parametrize("case", ENTITY_CASES)
async def test_entities_in_a_uws_job_document_are_refused(case: str, guard: Guard) -> None:
    """A job document declaring entities fails the job; the job is still deleted."""
    seen = JobServer()
    async with listener() as listen:
        subset, ref = entity_cases(listen)[case]
        document = with_entities("uws:job", subset, JOB.replace(b"{ref}", ref.encode()))
        async with serve(uws_app(document, seen)) as url, engine(tap=ASYNC_TAP) as e:
            started = time.perf_counter()
            query = vosweep.TapQuery("SELECT * FROM t")
            result = await e.fanout([vosweep.Service.tap(url + "/tap")], query)
            elapsed = time.perf_counter() - started
    assert_refused(only(result), "ResponseFormatError", "doctype")
    assert elapsed < 2.0
    assert seen.job_gets == 1
    assert seen.deletes == 1
    assert listen.accepted == 0
    assert not [a for a in guard.connects if a[0] == "127.0.0.9"]


CAPABILITIES = (
    b'<?xml version="1.0"?>\n<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0">'
    b'<capability standardID="ivo://ivoa.net/std/TAP"><interface><accessURL use="base">'
    b"{ref}</accessURL></interface></capability></vosi:capabilities>"
)
AVAILABILITY = (
    b'<?xml version="1.0"?>\n<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
    b"<vosi:available>true</vosi:available><vosi:note>{ref}</vosi:note></vosi:availability>"
)
TABLESET = (
    b'<?xml version="1.0"?>\n<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0">'
    b"<schema><name>s</name><table><name>{ref}</name></table></schema></vosi:tableset>"
)


def vosi_app(documents: dict[str, bytes]) -> web.Application:
    """A TAP service whose VOSI endpoints serve *documents* and whose /sync answers one row."""

    async def vosi(request: web.Request) -> web.Response:
        return web.Response(body=documents[request.match_info["doc"]], content_type="text/xml")

    async def sync(request: web.Request) -> web.Response:
        del request
        body = HEAD + ONE_ROW.replace(b"{cell}", b"row")
        return web.Response(body=body, content_type="application/x-votable+xml")

    app = web.Application()
    app.router.add_get("/tap/{doc}", vosi)
    app.router.add_post("/tap/sync", sync)
    return app


@pytest.mark.parametrize("case", ENTITY_CASES)
async def test_entities_in_vosi_documents_are_refused(case: str, guard: Guard) -> None:
    """VOSI availability/tables with entities raise; bad capabilities mean defaults, not a leak."""
    async with listener() as listen:
        subset, ref = entity_cases(listen)[case]
        documents = {
            name: with_entities(root, subset, template.replace(b"{ref}", ref.encode()))
            for name, root, template in [
                ("capabilities", "vosi:capabilities", CAPABILITIES),
                ("availability", "vosi:availability", AVAILABILITY),
                ("tables", "vosi:tableset", TABLESET),
            ]
        }
        policy = vosweep.TapPolicy(mode="sync")
        async with serve(vosi_app(documents)) as url, engine(tap=policy) as e:
            service = vosweep.Service.tap(url + "/tap")
            started = time.perf_counter()
            for fetch in (e.availability, e.tables):
                with pytest.raises(vosweep.ResponseFormatError, match=r"(?i)doctype") as info:
                    await fetch(service)
                assert "root:" not in str(info.value)
            assert await e.capabilities(service) is None
            result = await e.fanout([service], vosweep.TapQuery("SELECT x FROM t"))
            elapsed = time.perf_counter() - started
    assert only(result).status is vosweep.Status.OK, only(result)
    assert list(result.table["x"]) == ["row"]
    assert elapsed < 3.0
    assert listen.accepted == 0
    assert not [a for a in guard.connects if a[0] == "127.0.0.9"]


# --- decompression bombs ----------------------------------------------------------------


@cache
def plain_bomb() -> bytes:
    """A VOTable head followed by 64 MB of blanks: small when compressed, huge when not."""
    return HEAD + b'<FIELD name="x" datatype="int"/><DATA><TABLEDATA>' + b" " * BOMB_BYTES


@cache
def gzipped(layers: int) -> bytes:
    data = plain_bomb()
    for _ in range(layers):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return data


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@cache
def bomb_cases() -> dict[str, tuple[bytes, dict[str, str]]]:
    """Body and headers of each decompression bomb."""
    return {
        "content-encoding gzip": (gzipped(1), {"Content-Encoding": "gzip"}),
        "content-encoding deflate": (
            zlib.compress(plain_bomb(), 6),
            {"Content-Encoding": "deflate"},
        ),
        "content-encoding raw deflate": (
            raw_deflate(plain_bomb()),
            {"Content-Encoding": "deflate"},
        ),
        "hand gzip, no header": (gzipped(1), {}),
        "gzip of a gzip, outer as content-encoding": (gzipped(2), {"Content-Encoding": "gzip"}),
        "gzip of a gzip, no header": (gzipped(2), {}),
    }


@pytest.mark.parametrize("case", list(bomb_cases()))
async def test_decompression_bombs_stop_at_the_cap(case: str) -> None:
    """The cap counts decompressed bytes, whichever layer inflates; memory stays a few caps."""
    body, headers = bomb_cases()[case]
    assert len(body) < CAP < BOMB_BYTES  # the wire size alone would pass the cap
    async with serve(body_app(body, **headers)) as url, engine() as e:
        started = time.perf_counter()
        with peak_memory() as peak:
            result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
        elapsed = time.perf_counter() - started
    outcome = only(result)
    assert_refused(outcome, "ResponseTooLarge", str(CAP), "cap")
    assert elapsed < 3.0
    assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / 2**20:.1f} MiB"


async def test_too_many_gzip_layers_are_refused() -> None:
    """Gzip inside gzip inside gzip ... beyond what hand-gzipping servers do is abuse."""
    body = HEAD + ONE_ROW.replace(b"{cell}", b"x")
    for _ in range(6):
        body = gzip.compress(body, mtime=0)
    async with serve(body_app(body)) as url, engine() as e:
        result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
    assert_refused(only(result), "ResponseFormatError", "gzip layers")


# --- endless bodies and headers ------------------------------------------------------------


@dataclass
class Drain:
    """What an endless server managed to send before the client went away."""

    sent: int = 0
    stopped_by_client: bool = False


def endless(head: bytes, piece: bytes, drain: Drain, *, budget: int = 200 * 2**20) -> Handler:
    """A handler that reads the request, sends *head*, then *piece* again and again.

    Bounded by *budget* bytes and 10 s, so a client that never stops cannot hang the test.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with anyio.fail_after(10):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(head)
                while drain.sent < budget:
                    writer.write(piece)
                    drain.sent += len(piece)
                    await writer.drain()
        except (ConnectionError, TimeoutError):
            drain.stopped_by_client = True
        finally:
            writer.close()

    return handle


CHUNK = b" " * 65536
CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-votable+xml\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(HEAD), HEAD)
)


async def test_an_endless_chunked_body_stops_at_the_cap() -> None:
    """Chunks forever: cut at the cap, the connection dropped, the server told so."""
    drain = Drain()
    piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    async with raw_server(endless(CHUNKED_HEAD, piece, drain)) as url, engine() as e:
        started = time.perf_counter()
        with peak_memory() as peak:
            result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
        elapsed = time.perf_counter() - started
        await _wait_for(lambda: drain.stopped_by_client)
    assert_refused(only(result), "ResponseTooLarge", str(CAP))
    assert elapsed < 3.0
    assert peak[0] < MEMORY_BOUND
    # The client stopped reading soon after the cap: the server could only fill the buffers.
    assert drain.sent < 40 * CAP


async def test_an_endless_gzip_chunked_body_stops_at_the_cap() -> None:
    """An endless gzip stream (never a trailer) is cut at the cap after decompression."""
    drain = Drain()
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-votable+xml\r\n"
        b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    start = packer.compress(HEAD) + packer.compress(CHUNK * 16) + packer.flush(zlib.Z_SYNC_FLUSH)
    more = packer.compress(CHUNK * 16) + packer.flush(zlib.Z_SYNC_FLUSH)
    head += b"%x\r\n%s\r\n" % (len(start), start)
    piece = b"%x\r\n%s\r\n" % (len(more), more)
    async with raw_server(endless(head, piece, drain)) as url, engine() as e:
        started = time.perf_counter()
        result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
        elapsed = time.perf_counter() - started
        await _wait_for(lambda: drain.stopped_by_client)
    assert_refused(only(result), "ResponseTooLarge", str(CAP))
    assert elapsed < 3.0
    assert drain.sent < 40 * CAP  # socket buffers, not the 200 MB budget


@pytest.mark.parametrize(
    ("head", "piece"),
    [
        (b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"a" * 100 + b"\r\n"),
        (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 4096),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"f" * 4096),
    ],
    ids=["endless header lines", "one endless header", "endless chunk-size line"],
)
async def test_endless_protocol_lines_are_refused(head: bytes, piece: bytes) -> None:
    """Headers (or a chunk-size line) that never end are refused by the parser's line limits."""
    drain = Drain()
    async with raw_server(endless(head, piece, drain)) as url, engine() as e:
        started = time.perf_counter()
        result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
        elapsed = time.perf_counter() - started
    outcome = only(result)
    assert outcome.status is vosweep.Status.ERROR, outcome
    assert outcome.error_type in {"TransportError", "ResponseFormatError"}, outcome
    assert outcome.message
    assert elapsed < 3.0
    assert drain.sent < 40 * CAP


async def _wait_for(predicate: Callable[[], bool], within: float = 3.0) -> None:
    with anyio.fail_after(within):
        while not predicate():
            await anyio.sleep(0.01)


# --- a million FIELDs, a million attributes ---------------------------------------------------


@cache
def million_fields() -> bytes:
    fields = b"".join(b'<FIELD name="c%d" datatype="int"/>' % i for i in range(1_000_000))
    return HEAD + fields + b"<DATA><TABLEDATA></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"


@cache
def million_attributes() -> bytes:
    attributes = b" ".join(b'a%d="x"' % i for i in range(1_000_000))
    return (
        HEAD
        + b'<FIELD name="x" datatype="int" '
        + attributes
        + b"/><DATA><TABLEDATA><TR><TD>1</TD></TR>"
        + TAIL
    )


@pytest.mark.parametrize("kind", ["fields", "attributes"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "hand gzip"])
async def test_a_million_fields_or_attributes_end_at_the_cap(kind: str, encoding: str) -> None:
    """Tens of megabytes of metadata are refused at the cap, before any parsing starts."""
    body = million_fields() if kind == "fields" else million_attributes()
    headers: dict[str, str] = {}
    if encoding != "identity":
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers = {"Content-Encoding": "gzip"} if encoding == "gzip" else {}
    async with serve(body_app(body, **headers)) as url, engine() as e:
        started = time.perf_counter()
        with peak_memory() as peak:
            result = await e.fanout([vosweep.Service.scs(url + "/scs")], CONE)
        elapsed = time.perf_counter() - started
    assert_refused(only(result), "ResponseTooLarge", str(CAP))
    assert elapsed < 3.0
    assert peak[0] < MEMORY_BOUND
