"""Network hostility over real loopback HTTP: each ends with an outcome that says why, in time.

Redirects to other schemes and endless chains, a UWS job creation pointing to a foreign
host, slow drips, servers that never read or never answer, and cookies or credentials
that must stay with the host that set them. Servers are tiny purpose-built ones on
127.0.0.x (127.0.0.1 and 127.0.0.2 are different hosts); every loop in them is bounded.
"""

from __future__ import annotations

import asyncio
import builtins
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from aiohttp import web
from hostile_servers import Handler, raw_server

import vosweep
from vosweep.config import Limits, Timeouts
from vosweep.protocols.base import Request, UploadFile
from vosweep.transport.http import AiohttpTransport

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

CONE = vosweep.Cone(ra=10.0, dec=20.0, radius=0.1)
READ, ATTEMPT = 0.5, 1.5
TIMEOUTS = vosweep.Timeouts(connect=1, read=READ, attempt=ATTEMPT)
#: Slack allowed over a configured timeout (scheduling, connection set-up, a loaded CI).
SLACK = 1.0
VOTABLE = (
    b'<?xml version="1.0"?>\n<VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results"><TABLE>'
    b'<FIELD name="x" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR>'
    b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
)


def engine(**overrides: Any) -> vosweep.Engine:
    """Short timeouts, no retries, no breaker: one attempt per case, timed exactly."""
    config: dict[str, Any] = {
        "user_agent_purpose": "test",
        "timeouts": TIMEOUTS,
        "retry": vosweep.RetryPolicy(attempts=1),
        "breaker": vosweep.BreakerPolicy(enabled=False),
        "freeze_gc": False,
    }
    return vosweep.Engine(**{**config, **overrides})


@dataclass
class Seen:
    """What one server received: request paths and headers, in order."""

    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def record(self, request: web.Request) -> None:
        self.paths.append(request.path_qs)
        self.headers.append(dict(request.headers))


Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(
    routes: dict[tuple[str, str], Route], host: str = "127.0.0.1"
) -> AsyncIterator[tuple[str, Seen]]:
    """Run an app with *routes* ((method, path) -> handler) on *host*; yield URL and log."""
    seen = Seen()

    @web.middleware
    async def log(request: web.Request, handler: Route) -> web.StreamResponse:
        seen.record(request)
        return await handler(request)

    app = web.Application(middlewares=[log])
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def votable(request: web.Request) -> web.Response:
    del request
    return web.Response(body=VOTABLE, content_type="application/x-votable+xml")


def only(result: vosweep.FanoutResult) -> vosweep.ServiceOutcome:
    (outcome,) = result.outcomes
    return outcome


def assert_ended(
    outcome: vosweep.ServiceOutcome, status: str, error_type: str, *words: str
) -> None:
    """*outcome* has this status and error type, and its message has each of *words*."""
    assert outcome.status == status, outcome
    assert outcome.error_type == error_type, outcome
    message = (outcome.message or "").lower()
    assert all(word.lower() in message for word in words), outcome.message


async def sweep(url: str, **overrides: Any) -> tuple[vosweep.ServiceOutcome, float]:
    """One cone search to *url*; its outcome and the wall time it took."""
    async with engine(**overrides) as e:
        started = time.perf_counter()
        result = await e.fanout([vosweep.Service.scs(url)], CONE)
        return only(result), time.perf_counter() - started


# --- redirects ---------------------------------------------------------------------------


@dataclass
class Counter:
    accepted: int = 0


@asynccontextmanager
async def counting_listener(host: str = "127.0.0.9") -> AsyncIterator[tuple[str, Counter]]:
    """A listener that only counts connections: a followed redirect would show up here."""
    count = Counter()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        del reader
        count.accepted += 1
        writer.close()

    async with raw_server(handle, host) as url:
        yield url.split("//", 1)[1], count


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "ftp://{hostport}/pub/x.xml",
        "gopher://{hostport}/",
        "data:,<VOTABLE/>",
    ],
)
async def test_redirects_to_other_schemes_are_refused(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 302 to file:, ftp:, gopher: or data: ends as TooManyRedirects; nothing is read."""
    opened: list[str] = []
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    async with counting_listener() as (hostport, count):
        location = target.format(hostport=hostport)

        async def redirect(request: web.Request) -> web.Response:
            del request
            raise web.HTTPFound(location=location)

        async with serve({("GET", "/scs"): redirect}) as (url, seen):
            outcome, elapsed = await sweep(url + "/scs")
    assert_ended(outcome, "error", "TooManyRedirects", "non-http")
    assert "root:" not in (outcome.message or "")
    assert len(seen.paths) == 1
    assert count.accepted == 0
    assert not [f for f in opened if "passwd" in f]
    assert elapsed < SLACK


@pytest.mark.parametrize("max_redirects", [0, 1, 3])
async def test_an_endless_redirect_chain_stops_at_max_redirects(max_redirects: int) -> None:
    """Each hop is a new URL (no loop to detect); exactly max_redirects hops are followed.

    0 follows none (aiohttp itself would read 0 as "no limit").
    """

    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound(location=f"/hop/{n + 1}")

    limits = vosweep.Limits(max_redirects=max_redirects)
    async with serve({("GET", "/hop/{n}"): hop}) as (url, seen):
        outcome, elapsed = await sweep(url + "/hop/0", limits=limits)
    assert_ended(outcome, "error", "TooManyRedirects", f"more than {max_redirects} redirects")
    assert len(seen.paths) == 1 + max_redirects
    assert elapsed < SLACK


async def test_a_chain_of_exactly_max_redirects_is_followed() -> None:
    """max_redirects=3 allows a chain of three hops to its answer."""

    async def hop(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        if n == 3:
            return await votable(request)
        raise web.HTTPFound(location=f"/hop/{n + 1}")

    async with serve({("GET", "/hop/{n}"): hop}) as (url, seen):
        outcome, _ = await sweep(url + "/hop/0", limits=vosweep.Limits(max_redirects=3))
    assert outcome.status == "ok", outcome
    assert len(seen.paths) == 4


async def test_a_redirect_ping_pong_between_hosts_stops() -> None:
    """Two hosts redirecting to each other forever: bounded by max_redirects over both."""
    urls: dict[str, str] = {}

    async def to_two(request: web.Request) -> web.Response:
        del request
        raise web.HTTPFound(location=urls["two"] + "/ping")

    async def to_one(request: web.Request) -> web.Response:
        del request
        raise web.HTTPTemporaryRedirect(location=urls["one"] + "/pong")

    async with (
        serve({("GET", "/ping"): to_one}, "127.0.0.2") as (urls["two"], seen2),
        serve({("GET", "/scs"): to_two, ("GET", "/pong"): to_two}) as (urls["one"], seen1),
    ):
        outcome, elapsed = await sweep(urls["one"] + "/scs", limits=vosweep.Limits(max_redirects=4))
    assert_ended(outcome, "error", "TooManyRedirects", "redirects")
    assert len(seen1.paths) + len(seen2.paths) == 1 + 4
    assert seen2.paths
    assert elapsed < SLACK


# --- UWS: a job created on a foreign host ---------------------------------------------------


@pytest.mark.parametrize("where", ["foreign host", "foreign host, scheme-relative", "ftp"])
async def test_a_job_on_a_foreign_host_is_refused(where: str) -> None:
    """A job creation's 303 to another host or scheme fails the service; nothing goes there."""
    anything: dict[tuple[str, str], Route] = {
        (method, "/{tail:.*}"): votable for method in ("GET", "POST", "DELETE")
    }
    async with serve(anything, "127.0.0.2") as (foreign, foreign_seen):
        location = {
            "foreign host": f"{foreign}/tap/async/j1",
            "foreign host, scheme-relative": f"//{foreign.split('//', 1)[1]}/tap/async/j1",
            "ftp": "ftp://127.0.0.1/tap/async/j1",
        }[where]

        async def create(request: web.Request) -> web.Response:
            del request
            raise web.HTTPSeeOther(location=location)

        async with serve({("POST", "/tap/async"): create, **anything}) as (url, seen):
            policy = vosweep.TapPolicy(mode="async", capabilities=False, poll_initial=0.05)
            async with engine(tap=policy) as e:
                started = time.perf_counter()
                query = vosweep.TapQuery("SELECT 1")
                result = await e.fanout([vosweep.Service.tap(url + "/tap")], query)
                elapsed = time.perf_counter() - started
    outcome = only(result)
    assert_ended(outcome, "error", "ResponseFormatError", "127.0.0.1")
    message = outcome.message or ""
    assert ("127.0.0.2" in message) if where != "ftp" else ("ftp" in message), message
    assert seen.paths == ["/tap/async"]  # created, then nothing else on either host
    assert foreign_seen.paths == []
    assert elapsed < SLACK


async def test_a_job_moved_to_https_on_the_same_host_is_followed_up() -> None:
    """An upgrade to https on the service's own host is no foreign host (real services do it)."""

    async def create(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther(location=f"https://{request.host}/tap/async/j1")

    async with serve({("POST", "/tap/async"): create}) as (url, seen):
        policy = vosweep.TapPolicy(mode="async", capabilities=False, poll_initial=0.05)
        async with engine(tap=policy) as e:
            result = await e.fanout(
                [vosweep.Service.tap(url + "/tap")], vosweep.TapQuery("SELECT 1")
            )
    outcome = only(result)
    # The job is accepted and asked for over TLS, which this plain server cannot speak.
    assert outcome.status == "error", outcome
    assert outcome.error_type == "TransportError", outcome
    assert "different host" not in (outcome.message or "")
    assert seen.paths[0] == "/tap/async"


# --- slow, silent and deaf servers --------------------------------------------------------------


@dataclass
class Drip:
    """What a drip server sent, and whether the client hung up on it."""

    sent: int = 0
    hung_up: bool = False


def dripping(head: bytes, piece: bytes, every: float, drip: Drip) -> Handler:
    """Read the request, send *head*, then *piece* every *every* seconds (at most 30 s)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with anyio.fail_after(30):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(head)
                await writer.drain()
                while True:
                    with anyio.move_on_after(every):
                        if not await reader.read(1):  # EOF: the client hung up
                            drip.hung_up = True
                            return
                    writer.write(piece)
                    drip.sent += len(piece)
                    await writer.drain()
        except (ConnectionError, TimeoutError):
            drip.hung_up = True
        finally:
            writer.close()

    return handle


BODY_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-votable+xml\r\nContent-Length: 100000\r\n\r\n"
)


@pytest.mark.parametrize(
    ("head", "every", "phase", "limit"),
    [
        (BODY_HEAD, 0.1, "total", ATTEMPT),
        (BODY_HEAD, 2.0, "read", READ),
        (b"HTTP/1.1 200 OK\r\n", 0.1, "total", ATTEMPT),
    ],
    ids=["body drip beats the read timeout", "body drip slower than read", "header drip"],
)
async def test_slowloris_drips_end_in_time(
    head: bytes, every: float, phase: str, limit: float
) -> None:
    """A byte now and then: the idle-read timeout or, if it keeps dripping, the attempt's."""
    drip = Drip()
    piece = b"X-A: b\r\n" if head.endswith(b"OK\r\n") else b" "
    async with raw_server(dripping(head, piece, every, drip)) as url:
        outcome, elapsed = await sweep(url + "/scs")
        with anyio.fail_after(3):
            while not drip.hung_up:
                await anyio.sleep(0.01)
    assert_ended(outcome, "timeout", "ServiceTimeout", str(limit))
    assert limit * 0.9 <= elapsed < limit + SLACK
    assert ("idle" in (outcome.message or "")) is (phase == "read")


async def test_a_server_that_never_answers_times_out() -> None:
    """Reads the request and stays silent: the idle-read timeout ends it."""
    hung_up: list[bool] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with anyio.fail_after(30):
                await reader.readuntil(b"\r\n\r\n")
                await reader.read()  # until the client closes
        except (ConnectionError, TimeoutError):
            pass
        hung_up.append(True)
        writer.close()

    async with raw_server(silent) as url:
        outcome, elapsed = await sweep(url + "/scs")
        with anyio.fail_after(3):
            while not hung_up:
                await anyio.sleep(0.01)
    assert_ended(outcome, "timeout", "ServiceTimeout", "idle", str(READ))
    assert READ * 0.9 <= elapsed < READ + SLACK


async def test_a_server_that_never_reads_an_upload_hits_the_attempt_timeout() -> None:
    """Accepts, never reads: the upload blocks on full buffers until the attempt ends."""
    accepted: list[socket.socket] = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    async def accept() -> None:
        loop = asyncio.get_running_loop()
        with anyio.move_on_after(10):
            conn, _ = await loop.sock_accept(listener)
            accepted.append(conn)  # kept open, never read

    upload = UploadFile(name="t", filename="t.xml", content=b"<x/>" * (16 * 2**20 // 4))
    request = Request(url=f"http://127.0.0.1:{port}/tap/sync", method="POST", files=(upload,))
    timeouts = Timeouts(connect=1, read=READ, attempt=ATTEMPT)
    transport = AiohttpTransport(Limits(), purpose="test")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            started = time.perf_counter()
            with pytest.raises(vosweep.ServiceTimeout, match=r"longer than 1\.5 s") as info:
                await transport.send(request, timeouts=timeouts, max_bytes=2**20)
            elapsed = time.perf_counter() - started
    finally:
        await transport.aclose()
        for conn in accepted:
            conn.close()
        listener.close()
    assert info.value.phase == "total"
    assert accepted
    assert ATTEMPT * 0.9 <= elapsed < ATTEMPT + SLACK


# --- cookies and credentials stay with their host --------------------------------------------


async def test_cookies_set_by_one_host_reach_no_other() -> None:
    """Set-Cookie from 127.0.0.1 (even with Domain=127.0.0.2) never comes back, to anyone."""

    async def other_host(request: web.Request) -> web.Response:
        return await votable(request)

    async with serve({("GET", "/{tail:.*}"): other_host}, "127.0.0.2") as (url2, seen2):

        async def setter(request: web.Request) -> web.Response:
            response = await votable(request)
            response.headers.add("Set-Cookie", "session=s3cret; Path=/")
            response.headers.add("Set-Cookie", "wide=s3cret; Domain=127.0.0.2; Path=/")
            return response

        async def bounce(request: web.Request) -> web.Response:
            del request
            response = web.HTTPFound(location=url2 + "/after-redirect")
            response.headers.add("Set-Cookie", "hop=s3cret; Path=/")
            raise response

        routes: dict[tuple[str, str], Route] = {("GET", "/set"): setter, ("GET", "/bounce"): bounce}
        async with serve(routes) as (url1, seen1), engine() as e:
            targets = [vosweep.Service.scs(url1 + "/set"), vosweep.Service.scs(url1 + "/bounce")]
            first = await e.fanout(targets, CONE)
            again = [vosweep.Service.scs(url1 + "/set"), vosweep.Service.scs(url2 + "/second")]
            second = await e.fanout(again, CONE)
    assert all(o.status == "ok" for o in (*first.outcomes, *second.outcomes))
    assert "/after-redirect" in " ".join(seen2.paths)
    for headers in (*seen1.headers, *seen2.headers):
        assert "Cookie" not in headers, headers
        assert "s3cret" not in " ".join(headers.values())


async def test_credentials_are_not_forwarded_across_hosts() -> None:
    """An Authorization header for one host is dropped when a redirect leaves that host."""

    async def bounce(request: web.Request) -> web.Response:
        del request
        raise web.HTTPFound(location=other[0] + "/landing")

    other: list[str] = []
    async with serve({("GET", "/{tail:.*}"): votable}, "127.0.0.2") as (url2, seen2):
        other.append(url2)
        async with serve({("GET", "/scs"): bounce, ("GET", "/same"): votable}) as (url1, seen1):
            transport = AiohttpTransport(Limits(), purpose="test")
            auth = (("Authorization", "Basic dXNlcjpzM2NyZXQ="),)
            try:
                response = await transport.send(
                    Request(url=url1 + "/scs", headers=auth), timeouts=Timeouts(), max_bytes=2**20
                )
            finally:
                await transport.aclose()
    assert response.status == 200
    assert response.url == url2 + "/landing"
    assert seen1.headers[0].get("Authorization") == auth[0][1]  # sent where it was meant
    assert "Authorization" not in seen2.headers[0]
