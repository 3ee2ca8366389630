"""The simulated VO: real aiohttp servers on loopback, one per simulated host.

Host *k* listens on 127.0.0.(k+1) with an ephemeral port, so hosts have distinct host
names (as VizieR, GAVO and ESA do) without a custom resolver, and any client, pyvo
included, can reach them. Nothing here ever listens on or connects to anything outside
127.0.0.0/8.

Two registries keep the server small as protocols are added:

* `PROTOCOL_HANDLERS` maps a `Protocol` to a pure handler that turns request parameters
  into a `Document` (what the service *says*);
* ``_BEHAVIOURS`` maps a `Behaviour` to a coroutine that decides how the answer travels
  (what the *network* does: hangs, resets, 503s, gzip, redirects...).

A request to a service's base path goes through its behaviour; a request below it goes
to its handler's ``serve_subpath``, which chooses what goes through the behaviour
(`Exchange.behave`): TAP sends its sync queries and job creations that way, and answers
VOSI and job polling directly.

Every wait is bounded (``max_hang``, the shutdown timeout) and wakes up when the
simulator closes; handlers are cancelled when their client disconnects
(``handler_cancellation=True``), so the counters stay exact.
"""

from __future__ import annotations

import gzip
import math
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Self

import anyio
from aiohttp import web
from pydantic import BaseModel

from vosweep.errors import UsageError
from vosweep.services import Protocol as VOProtocol
from vosweep.services import Service
from vosweep.testing._dal import Sia2Handler, SiaHandler, SsaHandler
from vosweep.testing._profiles import Behaviour, ServiceSpec, build_fleet
from vosweep.testing._regtap import RegistryProfile, RegistrySite, RegistryStats
from vosweep.testing._scs import ScsHandler
from vosweep.testing._stats import Counter, HostStats, ServiceStats, SimStats
from vosweep.testing._tap import TapHandler, TapService
from vosweep.testing._tapjobs import peak_overlap
from vosweep.testing._votables import Document, html_error_page, malformed_document

if TYPE_CHECKING:
    from types import TracebackType

    from vosweep.testing._registry import SyntheticRegistry

__all__ = [
    "PROTOCOL_HANDLERS",
    "DocumentHandler",
    "Exchange",
    "ProtocolHandler",
    "SimHost",
    "SimManifest",
    "SimService",
    "SimulatedVO",
    "SubpathHandler",
    "host_address",
]

#: The admin site listens here (the registry's 127.0.0.1 is also host 0's address, on
#: another port; clients never sweep the admin site).
ADMIN_ADDRESS = "127.0.0.1"
#: Bytes sent per drip.
_DRIP_BYTES = 16
#: Target size of one chunk of an oversized answer.
_CHUNK_BYTES = 64 * 1024
#: Listen backlog: a sweep opens hundreds of connections to the VizieR-like host at once.
_BACKLOG = 4096
#: The VOTable media types real cone searches use; services cycle through them.
_VOTABLE_TYPES = ("text/xml", "application/x-votable+xml", "text/xml;content=x-votable")
#: Largest request body (TAP uploads come in multipart bodies).
_MAX_REQUEST_BYTES = 16 * 2**20


def host_address(host_index: int) -> str:
    """The loopback address of host *host_index*: 127.0.0.(k+1), continuing into 127.0.1.0...

    Raises:
        UsageError: When the index does not fit in 127.0.0.0/8.
    """
    number = host_index + 1
    if not 0 < number < 2**24 - 1:
        raise UsageError(f"host index {host_index} does not fit in 127.0.0.0/8")
    return f"127.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"


class ProtocolHandler(Protocol):
    """What the simulator needs from a protocol: parameters in, document out (no I/O)."""

    def answer(self, spec: ServiceSpec, params: Mapping[str, str]) -> Document:
        """Return the document *spec* sends for upper-cased request *params*."""
        ...


class SubpathHandler(Protocol):
    """A protocol that also serves paths below the service's base path.

    SIA, SSA and TAP services link to datalink documents, previews and data files below
    their base path, and TAP lives entirely below it (``/sync``, ``/async/{job}``,
    VOSI). The handler answers those itself; None means "not mine" (404).
    """

    async def serve_subpath(self, ex: Exchange) -> web.StreamResponse | None:
        """Answer a request for ``ex.subpath`` (never empty), or return None."""
        ...


class DocumentHandler(Protocol):
    """A protocol whose documents need I/O to build (TAP runs ADQL in a worker thread).

    When a handler has ``document``, the behaviours use it instead of ``answer``.
    """

    async def document(self, ex: Exchange) -> Document:
        """Return the document answering *ex* (it may set ``ex.status``, ``ex.content_type``)."""
        ...


#: One handler per protocol; SIA, SSA, TAP and RegTAP plug in here.
PROTOCOL_HANDLERS: dict[VOProtocol, ProtocolHandler] = {
    VOProtocol.SCS: ScsHandler(),
    VOProtocol.SIA: SiaHandler(),
    VOProtocol.SIA2: Sia2Handler(),
    VOProtocol.SSA: SsaHandler(),
    VOProtocol.TAP: TapHandler(),
}


class SimHost(BaseModel, frozen=True, extra="forbid"):
    """One simulated host.

    Attributes:
        index: The host index.
        name: Its host name as clients see it (the loopback address).
        port: Its TCP port (reserved but never listened on when *dead*).
        dead: Whether connections to it are refused.
    """

    index: int
    name: str
    port: int
    dead: bool = False

    @property
    def url(self) -> str:
        """The host's base URL."""
        return f"http://{self.name}:{self.port}"


class SimService(BaseModel, frozen=True, extra="forbid"):
    """One running simulated service.

    Attributes:
        spec: What the service is and how it behaves.
        host: Its host name (the loopback address of its host).
        port: Its host's port.
        url: The access URL to query.
    """

    spec: ServiceSpec
    host: str
    port: int
    url: str

    @property
    def index(self) -> int:
        """The service's index in the fleet."""
        return self.spec.index

    @property
    def name(self) -> str:
        """The service's short name."""
        return self.spec.name

    def target(self) -> Service:
        """The `vosweep.Service` that points at this simulated service."""
        return Service(
            protocol=self.spec.protocol,
            access_url=self.url,
            ivoid=self.spec.ivoid,
            name=self.spec.name,
        )


class SimManifest(BaseModel, frozen=True, extra="forbid"):
    """Everything a client needs to use a running simulated VO (also its JSON manifest).

    Attributes:
        admin_url: Base URL of the admin site (``/_sim/stats`` and friends).
        hosts: The hosts, by index.
        services: The services, by index.
        registry_urls: TAP base URLs of the RegTAP endpoints, primary first (if any).
    """

    admin_url: str
    hosts: tuple[SimHost, ...]
    services: tuple[SimService, ...]
    registry_urls: tuple[str, ...] = ()


@dataclass(slots=True)
class _ServiceState:
    service: SimService
    counter: Counter = field(default_factory=Counter)
    #: Requests to the service path since the last reset (drives ``fail_times``).
    attempts: int = 0
    #: A TAP service's database, jobs and job counters.
    tap: TapService | None = None


@dataclass(slots=True)
class _HostState:
    host: SimHost
    counter: Counter = field(default_factory=Counter)
    services: dict[str, _ServiceState] = field(default_factory=dict)
    runner: web.AppRunner | None = None

    def open_connections(self) -> int:
        server = self.runner.server if self.runner is not None else None
        if server is None:
            return 0
        return sum(1 for handler in server.connections if handler.transport is not None)


@dataclass(slots=True)
class _Outcome:
    completed: bool = False
    rows: int = 0


@dataclass(slots=True)
class Exchange:
    """One request being answered: what behaviours work with.

    Attributes:
        request: The request.
        state: The service's state.
        sim: The simulator.
        subpath: The path below the service's base path ("" for the base path).
        outcome: Whether the answer was written whole, and its rows.
        status: The HTTP status of a document answer; a handler may set it (TAP sends
            its error documents with 400, as DALI says).
        content_type: The media type of a document answer, when the handler knows it
            (TAP: the RESPONSEFORMAT asked for); else the service's VOTable type.
        healthy: How a healthy answer is sent when it is not a document (TAP's job
            creation: a 303 to the new job).
    """

    request: web.Request
    state: _ServiceState
    sim: SimulatedVO
    subpath: str
    outcome: _Outcome = field(default_factory=_Outcome)
    status: int = 200
    content_type: str | None = None
    healthy: _Behaviour | None = None

    @property
    def spec(self) -> ServiceSpec:
        return self.state.service.spec

    async def params(self) -> dict[str, str]:
        """Query and form parameters, names upper-cased, first value wins."""
        params: dict[str, str] = {}
        items: list[tuple[str, str]] = list(self.request.query.items())
        if self.request.method == "POST":
            form = await self.request.post()
            items.extend((k, v) for k, v in form.items() if isinstance(v, str))
        for key, value in items:
            params.setdefault(key.upper(), value)
        return params

    async def document(self) -> Document:
        handler = PROTOCOL_HANDLERS[self.spec.protocol]
        produce = getattr(handler, "document", None)
        if produce is not None:
            document: Document = await produce(self)
            return document
        return handler.answer(self.spec, await self.params())

    def votable_type(self) -> str:
        if self.content_type is not None:
            return self.content_type
        return _VOTABLE_TYPES[self.spec.index % len(_VOTABLE_TYPES)]

    async def behave(self, *, healthy: _Behaviour | None = None) -> web.StreamResponse:
        """Answer through the service's behaviour (hangs, 5xx, 503s, gzip...).

        Counts one attempt (what ``fail_times`` counts down). *healthy* sends the
        answer of a healthy service when that is not a document.
        """
        if healthy is not None:
            self.healthy = healthy
        self.state.attempts += 1
        return await _BEHAVIOURS[self.spec.profile.behaviour](self)

    async def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        rows: int = 0,
    ) -> web.StreamResponse:
        """Write a whole answer inside the handler, so that "completed" means written."""
        response = web.StreamResponse(
            status=status, headers={"Content-Type": content_type, **(headers or {})}
        )
        response.content_length = len(body)
        try:
            await response.prepare(self.request)
            await response.write(body)
            await response.write_eof()
        except ConnectionError:
            return response
        self.outcome.completed = True
        self.outcome.rows = rows if status == 200 else 0
        return response

    async def send_document(
        self, document: Document, *, content_type: str | None = None, compress: bool = False
    ) -> web.StreamResponse:
        body = document.encode()
        headers = {}
        if compress:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return await self.send(
            self.status,
            body,
            content_type or self.votable_type(),
            headers,
            rows=document.nrows if document.is_table else 0,
        )

    def drop(self, *, abort: bool) -> web.StreamResponse:
        """Close the connection without finishing the answer.

        ``abort`` sends a TCP reset at once; otherwise what was written is flushed first,
        then the connection closes (a truncated body). aiohttp then fails to finish the
        returned response and ignores it as a premature disconnection, silently.
        """
        transport = self.request.transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()
        return web.StreamResponse()

    async def redirect(self, location_path: str) -> web.StreamResponse:
        """Redirect to *location_path* on this host, keeping the query string."""
        status = 302
        query = self.request.query_string
        location = f"{self.request.url.origin()}{location_path}" + (f"?{query}" if query else "")
        if self.request.method == "POST":
            status = 307  # keep the form: a 302 would make the client switch to GET
        return await self.send(status, b"", "text/plain", {"Location": location})


_Behaviour = Callable[[Exchange], Awaitable[web.StreamResponse]]


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _failing(ex: Exchange) -> bool:
    """Whether this attempt of an unavailable / rate-limited / flaky service fails."""
    fail_times = ex.spec.profile.fail_times
    return fail_times < 0 or ex.state.attempts <= fail_times


async def _ok(ex: Exchange) -> web.StreamResponse:
    if ex.healthy is not None:
        return await ex.healthy(ex)
    return await ex.send_document(await ex.document())


async def _wrong_content_type(ex: Exchange) -> web.StreamResponse:
    return await ex.send_document(await ex.document(), content_type="text/plain")


async def _gzip(ex: Exchange) -> web.StreamResponse:
    return await ex.send_document(await ex.document(), content_type="text/xml", compress=True)


async def _hang(ex: Exchange) -> web.StreamResponse:
    await ex.sim._wait_closing(ex.spec.profile.max_hang)
    return ex.drop(abort=True)


async def _http_500(ex: Exchange) -> web.StreamResponse:
    page = html_error_page("500 Internal Server Error", f"{ex.spec.name}: database error")
    return await ex.send(500, page.encode(), "text/html")


def _throttled(status: int, reason: str) -> _Behaviour:
    async def behaviour(ex: Exchange) -> web.StreamResponse:
        if not _failing(ex):
            return await _ok(ex)
        profile = ex.spec.profile
        return await ex.send(
            status,
            f"{reason}; retry after {profile.retry_after} s\n".encode(),
            "text/plain",
            {"Retry-After": _retry_after(profile.retry_after)},
        )

    return behaviour


async def _flaky(ex: Exchange) -> web.StreamResponse:
    if not _failing(ex):
        return await _ok(ex)
    status = 500 if ex.state.attempts % 2 else 502
    page = html_error_page(f"{status} Server Error", "upstream trouble, try again")
    return await ex.send(status, page.encode(), "text/html")


async def _reset(ex: Exchange) -> web.StreamResponse:
    return ex.drop(abort=True)


async def _malformed(ex: Exchange) -> web.StreamResponse:
    return await ex.send(200, malformed_document().encode(), "text/xml")


async def _truncated(ex: Exchange) -> web.StreamResponse:
    document = await ex.document()
    body = document.encode()
    rows = "".join(document.rows).encode()
    cut = len(document.head.encode()) + len(rows) // 2
    response = web.StreamResponse(status=200, headers={"Content-Type": ex.votable_type()})
    response.content_length = len(body)  # the promise that will not be kept
    try:
        await response.prepare(ex.request)
        await response.write(body[:cut])
    except ConnectionError:
        return response
    return ex.drop(abort=False)


async def _html_200(ex: Exchange) -> web.StreamResponse:
    page = html_error_page("Service maintenance", "The cone search is down for maintenance.")
    return await ex.send(200, page.encode(), "text/html")


async def _redirect(ex: Exchange) -> web.StreamResponse:
    return await ex.redirect(f"{ex.spec.path}/moved")


async def _redirect_loop(ex: Exchange) -> web.StreamResponse:
    hop_text = ex.subpath.removeprefix("/loop/")
    hop = int(hop_text) if hop_text.isdigit() else 0
    return await ex.redirect(f"{ex.spec.path}/loop/{hop + 1}")


async def _drip(ex: Exchange) -> web.StreamResponse:
    """Headers, then a few bytes per interval; the document's tail is never sent."""
    profile = ex.spec.profile
    document = await ex.document()
    body = (document.head + "".join(document.rows)).encode()
    response = web.StreamResponse(status=200, headers={"Content-Type": ex.votable_type()})
    deadline = anyio.current_time() + profile.max_hang
    position = 0
    try:
        await response.prepare(ex.request)
        while True:
            # Once the body runs out, whitespace keeps the connection alive, still valid XML.
            piece = body[position : position + _DRIP_BYTES] or b" "
            position += _DRIP_BYTES
            await response.write(piece)
            remaining = deadline - anyio.current_time()
            if remaining <= 0 or await ex.sim._wait_closing(min(profile.drip_interval, remaining)):
                break
    except ConnectionError:
        return response
    return ex.drop(abort=True)


async def _oversized(ex: Exchange) -> web.StreamResponse:
    """About ``size_bytes`` of VOTable, chunked, made lazily by repeating the rows."""
    profile = ex.spec.profile
    document = await ex.document()
    head, tail = document.head.encode(), document.tail.encode()
    rows_text = "".join(document.rows)
    if rows_text:
        repeats = max(1, _CHUNK_BYTES // len(rows_text.encode()))
        chunk = (rows_text * repeats).encode()
        rows_per_chunk = repeats * document.nrows
    else:  # nothing to repeat: pad with an XML comment, still a valid document
        chunk = b"<!--" + b"-padding" * (_CHUNK_BYTES // 8) + b"-->\n"
        rows_per_chunk = 0
    n_chunks = max(0, math.ceil((profile.size_bytes - len(head) - len(tail)) / len(chunk)))
    response = web.StreamResponse(status=200, headers={"Content-Type": ex.votable_type()})
    response.enable_chunked_encoding()
    with anyio.move_on_after(profile.max_hang):
        try:
            await response.prepare(ex.request)
            await response.write(head)
            for _ in range(n_chunks):
                if ex.sim._is_closing:
                    return ex.drop(abort=True)
                await response.write(chunk)
            await response.write(tail)
            await response.write_eof()
        except ConnectionError:
            return response
        ex.outcome.completed = True
        ex.outcome.rows = (rows_per_chunk * n_chunks) if document.is_table else 0
        return response
    return ex.drop(abort=True)


#: How each behaviour delivers (or fails to deliver) its answer.
_BEHAVIOURS: dict[Behaviour, _Behaviour] = {
    Behaviour.OK: _ok,
    Behaviour.EMPTY: _ok,
    Behaviour.OVERFLOW: _ok,
    Behaviour.QUERY_ERROR: _ok,
    Behaviour.CONFLICTING_TYPES: _ok,
    Behaviour.HANG: _hang,
    Behaviour.DRIP: _drip,
    Behaviour.HTTP_500: _http_500,
    Behaviour.UNAVAILABLE: _throttled(503, "Service temporarily unavailable"),
    Behaviour.RATE_LIMITED: _throttled(429, "Too many requests"),
    Behaviour.FLAKY: _flaky,
    Behaviour.RESET: _reset,
    Behaviour.MALFORMED: _malformed,
    Behaviour.TRUNCATED: _truncated,
    Behaviour.HTML_200: _html_200,
    Behaviour.REDIRECT: _redirect,
    Behaviour.REDIRECT_LOOP: _redirect_loop,
    Behaviour.OVERSIZED: _oversized,
    Behaviour.WRONG_CONTENT_TYPE: _wrong_content_type,
    Behaviour.GZIP: _gzip,
}


async def _not_found(request: web.Request, outcome: _Outcome) -> web.StreamResponse:
    response = web.Response(status=404, text=f"no simulated service at {request.path}\n")
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return response
    outcome.completed = True
    return response


def _reserve_port(address: str) -> int:
    """A port on *address* that nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
    return port


class SimulatedVO:
    """A fleet of simulated VO services on loopback, with server-side counters.

    Use it as an async context manager::

        async with SimulatedVO(n_services=50, n_hosts=5, mix=DEFAULT_MIX) as sim:
            report = await engine.fanout(sim.targets(), cone)
            assert sim.stats().max_in_flight_per_host <= 5

    Args:
        fleet: The services to run (see `build_fleet` and `override_fleet`).
        n_services: Build a fleet of this many services instead (with *n_hosts*, *seed*,
            *mix*); give either *fleet* or *n_services*.
        n_hosts: Hosts of the built fleet.
        seed: Seed of the built fleet.
        mix: Behaviour mix of the built fleet (None: every service ok).
        dead_hosts: Host indices where nothing listens: connections are refused.
        admin: Whether to start the admin site (``/_sim/stats``, ``/_sim/reset``,
            ``/_sim/manifest``) on 127.0.0.1.
        shutdown_timeout: Seconds granted to close everything on exit.
        registry: Also run a RegTAP registry (``True`` or a `RegistryProfile`), on its
            own host after the fleet's, whose records include every fleet service with
            its real access URL (see `registry_url`, `registry`). Needs the ``sim`` extra.
        registry_mirrors: Alternate RegTAP endpoints serving the same records, each on
            its own host: a count of healthy copies, or one `RegistryProfile` each.

    Raises:
        UsageError: On an empty or inconsistent fleet, or a registry without the
            ``sim`` extra installed.
    """

    def __init__(
        self,
        fleet: Sequence[ServiceSpec] | None = None,
        *,
        n_services: int | None = None,
        n_hosts: int = 1,
        seed: int = 0,
        mix: Mapping[Behaviour, float] | None = None,
        dead_hosts: Iterable[int] = (),
        admin: bool = True,
        shutdown_timeout: float = 5.0,
        registry: RegistryProfile | bool = False,
        registry_mirrors: int | Sequence[RegistryProfile] = 0,
    ) -> None:
        if (fleet is None) == (n_services is None):
            raise UsageError("give SimulatedVO either a fleet or n_services, not both")
        if fleet is None:
            fleet = build_fleet(n_services or 0, n_hosts, seed=seed, mix=mix)
        if not fleet:
            raise UsageError("a simulated VO needs at least one service")
        if len({spec.index for spec in fleet}) != len(fleet):
            raise UsageError("service indices in the fleet must be unique")
        for spec in fleet:
            if spec.protocol not in PROTOCOL_HANDLERS:
                raise UsageError(f"the simulator cannot serve {spec.protocol} yet ({spec.name})")
        self._fleet = sorted(fleet, key=lambda spec: spec.index)
        self._dead = frozenset(dead_hosts)
        if unknown := sorted(self._dead - {spec.host_index for spec in self._fleet}):
            raise UsageError(f"dead hosts {unknown} carry no service of the fleet")
        self._admin = admin
        self._shutdown_timeout = shutdown_timeout
        self._hosts: dict[int, _HostState] = {}
        # Every request of the whole fleet: its peak is what a global limit must bound.
        self._total = Counter()
        self._services: dict[int, _ServiceState] = {}
        self._admin_runner: web.AppRunner | None = None
        self._admin_url = ""
        self._closing: anyio.Event | None = None
        self._state = "unopened"
        self._registry = RegistrySite.from_options(registry, registry_mirrors)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start every host (and the admin site); returns once all of them listen.

        Raises:
            UsageError: When started twice.
        """
        if self._state != "unopened":
            raise UsageError(f"this SimulatedVO is already {self._state}")
        self._state = "running"
        self._closing = anyio.Event()
        try:
            for host_index in sorted({spec.host_index for spec in self._fleet}):
                await self._start_host(host_index)
            for spec in self._fleet:
                host = self._hosts[spec.host_index].host
                service = SimService(
                    spec=spec, host=host.name, port=host.port, url=f"{host.url}{spec.path}"
                )
                state = _ServiceState(service)
                if spec.protocol is VOProtocol.TAP:
                    state.tap = TapService(spec, service.url)
                self._services[spec.index] = state
                self._hosts[spec.host_index].services[spec.path] = state
            if self._admin:
                self._admin_runner, port = await self._listen(self._admin_app(), ADMIN_ADDRESS)
                self._admin_url = f"http://{ADMIN_ADDRESS}:{port}"
            if self._registry is not None:
                first = max(self._hosts) + 1
                await self._registry.start(
                    addresses=[host_address(first + k) for k in range(self._registry.host_count)],
                    listen=self._listen,
                    reserve_port=_reserve_port,
                    wait_closing=self._wait_closing,
                    services=self.services,
                    hosts=[state.host.url for state in self._hosts.values() if not state.host.dead],
                )
        except BaseException:
            await self.aclose()
            raise

    async def _listen(self, app: web.Application, address: str) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(
            app,
            handler_cancellation=True,  # hung handlers end when their client leaves
            access_log=None,  # thousands of requests per second: no per-request logging
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, address, 0, backlog=_BACKLOG)
            await site.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
            raise
        port: int = runner.addresses[0][1]
        return runner, port

    async def _start_host(self, host_index: int) -> None:
        address = host_address(host_index)
        if host_index in self._dead:
            host = SimHost(index=host_index, name=address, port=_reserve_port(address), dead=True)
            self._hosts[host_index] = _HostState(host)
            return
        state = _HostState(SimHost(index=host_index, name=address, port=0))
        self._hosts[host_index] = state
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(state, request)

        app.router.add_route("*", "/{tail:.*}", handle)
        state.runner, port = await self._listen(app, address)
        state.host = state.host.model_copy(update={"port": port})

    async def aclose(self) -> None:
        """Stop every server; in-flight requests are dropped. Bounded by *shutdown_timeout*."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._closing is not None:
            self._closing.set()
        for service in self._services.values():
            if service.tap is not None:
                service.tap.close()  # stops running queries and wakes blocked WAITs
        runners = [h.runner for h in self._hosts.values() if h.runner is not None]
        if self._admin_runner is not None:
            runners.append(self._admin_runner)
        if self._registry is not None:
            self._registry.close()  # stops running queries, so their handlers end
            runners += self._registry.runners
        with anyio.move_on_after(self._shutdown_timeout + 1.0, shield=True):
            for runner in runners:
                # Abort live connections first, so that cleanup does not wait for hung
                # handlers: they are cancelled as their connections go.
                for handler in runner.server.connections if runner.server else ():
                    if handler.transport is not None:
                        handler.transport.abort()
            for runner in runners:
                await runner.cleanup()

    @property
    def _is_closing(self) -> bool:
        """Whether the simulator is shutting down (long waits end early)."""
        return self._closing is not None and self._closing.is_set()

    async def _wait_closing(self, seconds: float) -> bool:
        """Sleep up to *seconds*, less if the simulator closes; return whether it is closing."""
        if self._closing is None:
            await anyio.sleep(seconds)
            return False
        with anyio.move_on_after(seconds):
            await self._closing.wait()
        return self._closing.is_set()

    # -- request handling --------------------------------------------------------------

    async def _handle(self, host: _HostState, request: web.Request) -> web.StreamResponse:
        segments = request.path.split("/", 3)  # "", kind, number, rest
        base = "/".join(segments[:3])
        subpath = "/" + segments[3] if len(segments) > 3 else ""
        state = host.services.get(base)
        outcome = _Outcome()
        self._total.begin()
        host.counter.begin()
        if state is not None:
            state.counter.begin()
        try:
            if state is None:
                return await _not_found(request, outcome)
            return await self._serve(Exchange(request, state, self, subpath, outcome))
        finally:
            self._total.end(completed=outcome.completed, rows=outcome.rows)
            host.counter.end(completed=outcome.completed, rows=outcome.rows)
            if state is not None:
                state.counter.end(completed=outcome.completed, rows=outcome.rows)

    async def _serve(self, ex: Exchange) -> web.StreamResponse:
        profile = ex.spec.profile
        behaviour = profile.behaviour
        if behaviour is Behaviour.REDIRECT_LOOP and (
            not ex.subpath or ex.subpath.startswith("/loop/")
        ):
            return await _redirect_loop(ex)  # every hop answers at once
        await self._wait_closing(profile.latency)
        if ex.subpath == "/moved" and behaviour is Behaviour.REDIRECT:
            return await _ok(ex)
        if ex.subpath:
            handler = PROTOCOL_HANDLERS[ex.spec.protocol]
            serve_subpath = getattr(handler, "serve_subpath", None)
            response = await serve_subpath(ex) if serve_subpath is not None else None
            return response if response is not None else await _not_found(ex.request, ex.outcome)
        return await ex.behave()

    def _admin_app(self) -> web.Application:
        async def stats(_: web.Request) -> web.Response:
            return web.Response(
                text=self.stats().model_dump_json(), content_type="application/json"
            )

        async def reset(_: web.Request) -> web.Response:
            self.reset_stats()
            return web.Response(
                text=self.stats().model_dump_json(), content_type="application/json"
            )

        async def manifest(_: web.Request) -> web.Response:
            return web.Response(
                text=self.manifest().model_dump_json(), content_type="application/json"
            )

        app = web.Application()
        app.router.add_get("/_sim/stats", stats)
        app.router.add_post("/_sim/reset", reset)
        app.router.add_get("/_sim/manifest", manifest)
        return app

    # -- introspection -----------------------------------------------------------------

    def _require_started(self) -> None:
        if self._state == "unopened":
            raise UsageError("the SimulatedVO is not started: use `async with SimulatedVO(...)`")

    @property
    def fleet(self) -> list[ServiceSpec]:
        """The service specs, by index."""
        return list(self._fleet)

    @property
    def services(self) -> list[SimService]:
        """The running services, by index."""
        self._require_started()
        return [state.service for state in self._services.values()]

    def service(self, index: int) -> SimService:
        """The running service with fleet index *index*."""
        self._require_started()
        return self._services[index].service

    @property
    def hosts(self) -> list[SimHost]:
        """The hosts, by index."""
        self._require_started()
        return [state.host for state in self._hosts.values()]

    @property
    def admin_url(self) -> str:
        """Base URL of the admin site ("" when started with ``admin=False``)."""
        self._require_started()
        return self._admin_url

    def targets(self) -> list[Service]:
        """One `vosweep.Service` per simulated service, by index."""
        return [service.target() for service in self.services]

    def _registry_site(self) -> RegistrySite:
        self._require_started()
        if self._registry is None:
            raise UsageError(
                "this SimulatedVO has no registry: use SimulatedVO(..., registry=True)"
            )
        return self._registry

    @property
    def registry_url(self) -> str:
        """The TAP base URL of the primary RegTAP endpoint (what a client queries)."""
        return self._registry_site().urls[0]

    @property
    def registry_urls(self) -> tuple[str, ...]:
        """The TAP base URLs of every RegTAP endpoint, primary first."""
        return self._registry_site().urls

    @property
    def registry(self) -> SyntheticRegistry:
        """The records the registry serves (typed data, for expected answers in tests)."""
        registry = self._registry_site().registry
        if registry is None:  # pragma: no cover -- start() builds it or fails
            raise UsageError("the registry is not built yet")
        return registry

    def registry_stats(self) -> tuple[RegistryStats, ...]:
        """Counters of every RegTAP endpoint (requests, queries, recent ADQL), primary first."""
        return self._registry_site().stats()

    def manifest(self) -> SimManifest:
        """The hosts, services and admin URL, as written by ``python -m vosweep.testing serve``."""
        return SimManifest(
            admin_url=self.admin_url,
            hosts=tuple(self.hosts),
            services=tuple(self.services),
            registry_urls=self._registry.urls if self._registry is not None else (),
        )

    def stats(self) -> SimStats:
        """An immutable snapshot of every counter (see `SimStats`)."""
        self._require_started()
        now = time.monotonic()
        taps = [state.tap for state in self._services.values() if state.tap is not None]
        since = max((tap.ledger.since for tap in taps), default=-math.inf)
        return SimStats(
            hosts=tuple(
                HostStats(
                    index=state.host.index,
                    name=state.host.name,
                    port=state.host.port,
                    dead=state.host.dead,
                    open_connections=state.open_connections(),
                    **_counts(state.counter),
                )
                for state in self._hosts.values()
            ),
            services=tuple(
                ServiceStats(
                    index=state.service.index,
                    name=state.service.name,
                    host_index=state.service.spec.host_index,
                    **_counts(state.counter),
                    **(state.tap.counts(now) if state.tap is not None else {}),
                )
                for state in self._services.values()
            ),
            max_in_flight=self._total.max_in_flight,
            max_jobs_executing=peak_overlap(
                [interval for tap in taps for interval in tap.intervals(now)], since, now
            ),
        )

    def jobs_alive(self) -> int:
        """UWS jobs created and not yet deleted (nor destroyed), over every TAP service.

        A client that cleans up after itself leaves this at 0.
        """
        self._require_started()
        now = time.monotonic()
        total = 0
        for state in self._services.values():
            if state.tap is not None:
                state.tap.expire(now)
                total += len(state.tap.jobs)
        return total

    def reset_stats(self) -> None:
        """Zero every counter and restart ``fail_times``.

        In-flight requests stay counted, and so do live UWS jobs (as created).
        """
        now = time.monotonic()
        self._total.reset()
        for host in self._hosts.values():
            host.counter.reset()
        for service in self._services.values():
            service.counter.reset()
            service.attempts = 0
            if service.tap is not None:
                service.tap.reset(now)
        if self._registry is not None:
            self._registry.reset()

    def __repr__(self) -> str:
        hosts = {spec.host_index for spec in self._fleet}
        where = f"{len(self._fleet)} services on {len(hosts)} hosts"
        if self._dead:
            where += f" ({len(self._dead)} dead)"
        if self._state != "running":
            return f"<SimulatedVO {self._state}: {where}>"
        stats = self.stats()
        return (
            f"<SimulatedVO {where} | requests: {stats.requests}, in flight: {stats.in_flight}"
            f" (peak per host: {stats.max_in_flight_per_host}), completed: {stats.completed},"
            f" aborted: {stats.aborted}, rows: {stats.rows_served},"
            f" connections: {stats.open_connections}>"
        )


def _counts(counter: Counter) -> dict[str, int]:
    return {
        "requests": counter.requests,
        "in_flight": counter.in_flight,
        "max_in_flight": counter.max_in_flight,
        "completed": counter.completed,
        "aborted": counter.aborted,
        "rows_served": counter.rows_served,
    }
