"""The simulated RegTAP registry: a real TAP service (sync + VOSI) over the synthetic records.

Each endpoint is an aiohttp application on its own loopback host, serving under ``/tap``:

* ``/tap/sync`` (GET or POST): ``REQUEST=doQuery``, ``LANG=ADQL``, ``QUERY``, ``MAXREC``,
  ``RESPONSEFORMAT``/``FORMAT``; parameter names are case-insensitive, as TAP requires.
  Queries run on SQLite in a worker thread (`AdqlDatabase`); errors come back as TAP
  error VOTables (QUERY_STATUS=ERROR) with HTTP 400; MAXREC cuts with OVERFLOW.
* ``/tap/capabilities``: VOSI capabilities with a TAPRegExt capability, whose
  ``languageFeatures`` say what the endpoint supports (the RegTAP functions, ADQL
  geometry, the ``MOC`` keyword pyvo looks for, UNION...).
* ``/tap/tables`` (``?detail=min`` too) and ``/tap/tables/{name}``: VOSI tables of
  ``rr`` and ``tap_schema``; RegTAP 1.2 coverage support shows as ``rr.stc_*`` tables,
  which is how pyvo detects it.
* ``/tap/availability``: VOSI availability.

A `RegistryProfile` makes variants real registries show: without UNION, without MOC and
geometry, without the coverage tables, rejecting three-part column names (and with them
pyvo's OR-form of freetext queries), down (connection refused), failing (503 with
Retry-After, 429, 500, resets, hangs) or slow.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from vosweep.errors import UsageError
from vosweep.testing import _tapdocs as tapdocs
from vosweep.testing._adql import (
    AdqlDatabase,
    AdqlError,
    AdqlFeatures,
    TableDef,
    require_sim_extra,
)
from vosweep.testing._profiles import Behaviour
from vosweep.testing._registry import (
    REGTAP_MODEL,
    RegistryUrls,
    ServedService,
    SyntheticRegistry,
    build_registry,
    rr_tables,
)
from vosweep.testing._tapdocs import (
    VOTABLE_TYPE,
    TapCapability,
    error_votable,
    result_votable,
    table_xml,
    tap_schema_rows,
    tap_schema_tables,
)
from vosweep.testing._votables import html_error_page

if TYPE_CHECKING:
    from vosweep.testing._profiles import ServiceSpec

__all__ = [
    "REGISTRY_PATH",
    "RegistryProfile",
    "RegistrySite",
    "RegistryStats",
    "result_votable",
    "tap_schema_rows",
    "tap_schema_tables",
]

#: Where the TAP service lives on its host.
REGISTRY_PATH = "/tap"
#: Behaviours a registry endpoint can have.
REGISTRY_BEHAVIOURS = frozenset(
    {
        Behaviour.OK,
        Behaviour.HTTP_500,
        Behaviour.UNAVAILABLE,
        Behaviour.RATE_LIMITED,
        Behaviour.HANG,
        Behaviour.RESET,
    }
)
#: Values of RESPONSEFORMAT / FORMAT that mean "the VOTable we send".
_FORMATS = frozenset(
    {
        "votable",
        "votable/td",
        "votabletd",
        "text/xml",
        "application/x-votable+xml",
        "application/x-votable+xml;serialization=tabledata",
    }
)
_LANGS = frozenset({"ADQL", "ADQL-2.0", "ADQL-2.1"})
#: How many recent queries each endpoint remembers (for tests and debugging).
_RECENT = 200


class RegistryProfile(BaseModel, frozen=True, extra="forbid"):
    """What a simulated RegTAP endpoint offers and how it behaves.

    The records (*n_resources*, *seed*) come from the primary endpoint's profile; the
    alternate endpoints serve the same records, each with its own features and behaviour.

    Attributes:
        n_resources: Generated records (the named and fleet records come on top).
        seed: Seed of the generated records.
        union: Whether ADQL set operations (UNION...) are supported and advertised.
        geometry: Whether ADQL geometry and ``MOC`` are supported and advertised
            (pyvo's Spatial constraint needs them).
        coverage_tables: Whether the RegTAP 1.2 tables ``rr.stc_spatial``,
            ``rr.stc_spectral`` and ``rr.stc_temporal`` exist.
        reject_or_freetext: Refuse column names with a schema (``rr.res_subject.res_subject``)
            with 'Unknown column', as some registries do: this breaks pyvo's OR-form
            of freetext queries (sent when UNION is missing).
        behaviour: ``ok``, ``http_500``, ``unavailable`` (503 + Retry-After),
            ``rate_limited`` (429 + Retry-After), ``hang`` or ``reset``.
        dead: Nothing listens: connections are refused.
        fail_times: Requests that fail before a failing endpoint recovers (negative: never).
        retry_after: The ``Retry-After`` of 503 and 429 answers, in seconds.
        latency: Delay before every answer, in seconds.
        max_hang: Upper bound on a ``hang``, in seconds.
        maxrec_default: Rows returned when the client sends no MAXREC.
        maxrec_hard: Most rows ever returned, whatever MAXREC says.
        query_timeout: Seconds any one query may run before it is stopped.
    """

    n_resources: int = Field(default=2000, ge=0)
    seed: int = 0
    union: bool = True
    geometry: bool = True
    coverage_tables: bool = True
    reject_or_freetext: bool = False
    behaviour: Behaviour = Behaviour.OK
    dead: bool = False
    fail_times: int = -1
    retry_after: float = Field(default=1.0, ge=0.0)
    latency: float = Field(default=0.0, ge=0.0)
    max_hang: float = Field(default=600.0, gt=0.0)
    maxrec_default: int = Field(default=10_000, ge=0)
    maxrec_hard: int = Field(default=100_000, ge=0)
    query_timeout: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> RegistryProfile:
        if self.behaviour not in REGISTRY_BEHAVIOURS:
            allowed = sorted(b.value for b in REGISTRY_BEHAVIOURS)
            raise ValueError(f"a registry cannot behave {self.behaviour.value!r}; use {allowed}")
        if self.maxrec_default > self.maxrec_hard:
            raise ValueError("maxrec_default must not exceed maxrec_hard")
        return self

    @property
    def features(self) -> AdqlFeatures:
        """The ADQL features the endpoint's database offers."""
        return AdqlFeatures(
            sets=self.union, geometry=self.geometry, three_part_columns=not self.reject_or_freetext
        )


class RegistryStats(BaseModel, frozen=True, extra="forbid"):
    """Server-side counters of one registry endpoint.

    Attributes:
        url: The endpoint's TAP base URL.
        requests: Every HTTP request it received (VOSI included).
        queries: Sync queries it received.
        errors: Answers with an HTTP error status.
        recent_queries: The last ADQL texts it received, oldest first.
    """

    url: str
    requests: int
    queries: int
    errors: int
    recent_queries: tuple[str, ...]


# -- documents -----------------------------------------------------------------------------

_UDFS = (
    (
        "ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER",
        "1 if every word of needle is a word of haystack (no case, plurals folded), else 0.",
    ),
    (
        "ivo_nocasematch(value TEXT, pattern TEXT) -> INTEGER",
        "1 if value matches the LIKE pattern case-insensitively, 0 otherwise.",
    ),
    (
        "ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
        "1 if item is in the hash-separated list (case-insensitively), 0 otherwise.",
    ),
    (
        "ivo_string_agg(expression TEXT, delimiter TEXT) -> TEXT",
        "An aggregate function concatenating the values of a group with the delimiter.",
    ),
    (
        "ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
        "1 if [l1, h1] overlaps [l2, h2] (touching counts), 0 otherwise.",
    ),
)


def capabilities_xml(base_url: str, profile: RegistryProfile, mirrors: Sequence[str]) -> str:
    """VOSI capabilities: TAP (with TAPRegExt, the RegTAP functions) and the VOSI endpoints."""
    keywords = [("COALESCE", "SQL COALESCE"), ("CASE", "The SQL92 CASE expression")]
    if profile.geometry:
        keywords.insert(
            0,
            (
                "MOC",
                "A geometry function creating MOCs: MOC(ascii_moc) or MOC(order, geometry).",
            ),
        )
    return tapdocs.capabilities_xml(
        TapCapability(
            base_url=base_url,
            features=profile.features,
            data_models=((REGTAP_MODEL, "Registry 1.1"),),
            udfs=_UDFS,
            extra_keywords=tuple(keywords),
            execution_duration=(profile.query_timeout, None),
            output_limit=(profile.maxrec_default, profile.maxrec_hard),
            mirrors=tuple(mirrors),
            description="ADQL run on SQLite by vosweep's simulated registry.",
        )
    )


def tables_xml(tables: Sequence[TableDef], *, columns: bool = True) -> str:
    """VOSI tables of the registry (``rr`` carries the RegTAP utype)."""
    return tapdocs.tables_xml(tables, columns=columns, schema_utypes={"rr": REGTAP_MODEL})


def availability_xml(*, available: bool = True) -> str:
    """VOSI availability."""
    return tapdocs.availability_xml(available=available, note="vosweep simulated RegTAP registry")


# -- one endpoint --------------------------------------------------------------------------


#: How the simulator opens a listening site: (app, address) -> (runner, port).
Listen = Callable[[web.Application, str], Awaitable[tuple[web.AppRunner, int]]]
#: How the simulator waits for up to n seconds, less when it closes; true when closing.
WaitClosing = Callable[[float], Awaitable[bool]]


class _ParamError(ValueError):
    """A TAP request parameter is missing or wrong."""


@dataclass(slots=True)
class _Endpoint:
    """One running registry endpoint: its profile, database and counters."""

    profile: RegistryProfile
    address: str
    url: str = ""
    database: AdqlDatabase | None = None
    tables: tuple[TableDef, ...] = ()
    mirrors: tuple[str, ...] = ()
    runner: web.AppRunner | None = None
    limiter: anyio.CapacityLimiter | None = None
    requests: int = 0
    queries: int = 0
    errors: int = 0
    attempts: int = 0
    recent: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_RECENT)
    )

    def stats(self) -> RegistryStats:
        return RegistryStats(
            url=self.url,
            requests=self.requests,
            queries=self.queries,
            errors=self.errors,
            recent_queries=tuple(self.recent),
        )

    def reset(self) -> None:
        self.requests = self.queries = self.errors = self.attempts = 0
        self.recent.clear()


async def _params(request: web.Request) -> dict[str, str]:
    """Query and form parameters, names upper-cased (TAP names are case-insensitive)."""
    items: list[tuple[str, str]] = list(request.query.items())
    if request.method == "POST":
        form = await request.post()
        items.extend((k, v) for k, v in form.items() if isinstance(v, str))
    params: dict[str, str] = {}
    for key, value in items:
        params.setdefault(key.upper(), value)
    return params


def _maxrec(params: Mapping[str, str], profile: RegistryProfile) -> int:
    raw = params.get("MAXREC", "").strip()
    if not raw:
        return profile.maxrec_default
    try:
        value = int(raw)
    except ValueError:
        raise _ParamError(f"MAXREC must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise _ParamError(f"MAXREC must be a non-negative integer, got {raw!r}")
    return min(value, profile.maxrec_hard)


def _check_sync(params: Mapping[str, str]) -> str:
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise _ParamError(f"unsupported REQUEST={request!r} (this service only does doQuery)")
    lang = params.get("LANG", "ADQL")
    if lang.upper() not in _LANGS:
        raise _ParamError(f"unsupported LANG={lang!r}; use ADQL")
    response_format = params.get("RESPONSEFORMAT") or params.get("FORMAT")
    if response_format and response_format.lower().replace(" ", "") not in _FORMATS:
        raise _ParamError(f"unsupported RESPONSEFORMAT={response_format!r}; use votable")
    if params.get("UPLOAD"):
        raise _ParamError("UPLOAD is not supported by this service")
    query = params.get("QUERY", "")
    if not query.strip():
        raise _ParamError("missing QUERY parameter")
    return query


def _run(database: AdqlDatabase, query: str, maxrec: int) -> tuple[int, bytes]:
    """Run a query and build its answer (in a worker thread: both can take a while)."""
    try:
        result = database.execute(query, maxrec=maxrec)
    except AdqlError as exc:
        return 400, error_votable(str(exc))
    return 200, result_votable(
        result, query=query, maxrec=maxrec, software="vosweep simulated RegTAP"
    )


class _App:
    """The aiohttp handlers of one endpoint."""

    def __init__(self, endpoint: _Endpoint, wait_closing: WaitClosing) -> None:
        self.endpoint = endpoint
        self.wait_closing = wait_closing

    def application(self) -> web.Application:
        app = web.Application(client_max_size=2 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint
        endpoint.requests += 1
        profile = endpoint.profile
        if profile.latency:
            await self.wait_closing(profile.latency)
        failure = await self._misbehave(request)
        if failure is not None:
            endpoint.errors += 1
            return failure
        response = await self._route(request)
        if response.status >= 400:
            endpoint.errors += 1
        return response

    async def _misbehave(self, request: web.Request) -> web.StreamResponse | None:
        profile = self.endpoint.profile
        if profile.behaviour is Behaviour.OK:
            return None
        self.endpoint.attempts += 1
        if 0 <= profile.fail_times < self.endpoint.attempts:
            return None
        retry_after = (
            str(int(profile.retry_after))
            if float(profile.retry_after).is_integer()
            else repr(profile.retry_after)
        )
        if profile.behaviour is Behaviour.UNAVAILABLE:
            return web.Response(
                status=503,
                text="registry temporarily unavailable\n",
                headers={"Retry-After": retry_after},
            )
        if profile.behaviour is Behaviour.RATE_LIMITED:
            return web.Response(
                status=429, text="too many requests\n", headers={"Retry-After": retry_after}
            )
        if profile.behaviour is Behaviour.HTTP_500:
            page = html_error_page("500 Internal Server Error", "registry database error")
            return web.Response(status=500, text=page, content_type="text/html")
        if profile.behaviour is Behaviour.HANG:
            await self.wait_closing(profile.max_hang)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500)  # never sent: the connection is gone

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path == REGISTRY_PATH:
            return web.Response(
                text="vosweep simulated RegTAP registry: see sync, capabilities, tables,"
                " availability\n"
            )
        tail = path.removeprefix(REGISTRY_PATH + "/") if path.startswith(REGISTRY_PATH) else None
        if tail == "sync":
            return await self._sync(request)
        if tail == "capabilities":
            text = capabilities_xml(self.endpoint.url, self.endpoint.profile, self.endpoint.mirrors)
            return web.Response(text=text, content_type="text/xml")
        if tail == "availability":
            return web.Response(text=availability_xml(), content_type="text/xml")
        if tail == "tables":
            detail = request.query.get("detail", "").lower()
            text = tables_xml(self.endpoint.tables, columns=detail != "min")
            return web.Response(text=text, content_type="text/xml")
        if tail is not None and tail.startswith("tables/"):
            name = tail.removeprefix("tables/").lower()
            for table in self.endpoint.tables:
                if table.qualified_name.lower() == name:
                    return web.Response(text=table_xml(table), content_type="text/xml")
            return web.Response(status=404, text=f"no table {name}\n")
        return web.Response(status=404, text=f"nothing at {request.path}\n")

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint
        params = await _params(request)
        query = params.get("QUERY")
        if query:
            endpoint.queries += 1
            endpoint.recent.append(query)
        try:
            query = _check_sync(params)
            maxrec = _maxrec(params, endpoint.profile)
        except _ParamError as exc:
            return web.Response(status=400, body=error_votable(str(exc)), content_type=VOTABLE_TYPE)
        database = endpoint.database
        if database is None:
            return web.Response(status=503, text="registry starting\n")
        status, body = await anyio.to_thread.run_sync(
            functools.partial(_run, database, query, maxrec),
            limiter=endpoint.limiter,
            abandon_on_cancel=True,
        )
        return web.Response(status=status, body=body, content_type=VOTABLE_TYPE)


# -- the site: every endpoint of a simulated VO --------------------------------------------


@dataclass(frozen=True, slots=True)
class _FleetService:
    spec: ServiceSpec
    url: str


class RegistrySite:
    """The RegTAP endpoints of a `SimulatedVO`: one primary, optional alternates.

    Args:
        primary: The primary endpoint's profile (its *n_resources* and *seed* make the
            records every endpoint serves).
        alternates: One profile per alternate endpoint.

    Raises:
        UsageError: When the ``sim`` extra is missing.
    """

    def __init__(
        self, primary: RegistryProfile, alternates: Sequence[RegistryProfile] = ()
    ) -> None:
        require_sim_extra("sqlglot")
        require_sim_extra("cdshealpix")
        self.profiles = (primary, *alternates)
        self._endpoints: list[_Endpoint] = []
        self._databases: list[AdqlDatabase] = []
        self.registry: SyntheticRegistry | None = None

    @classmethod
    def from_options(
        cls, registry: RegistryProfile | bool, mirrors: int | Sequence[RegistryProfile]
    ) -> RegistrySite | None:
        """The site `SimulatedVO`'s ``registry=`` and ``registry_mirrors=`` ask for, if any.

        An integer number of mirrors gives healthy copies of the primary's features.

        Raises:
            UsageError: On mirrors without a registry, or a negative number of mirrors.
        """
        if registry is False:
            if mirrors:
                raise UsageError("registry_mirrors needs registry=True or a RegistryProfile")
            return None
        primary = RegistryProfile() if registry is True else registry
        if isinstance(mirrors, int):
            if mirrors < 0:
                raise UsageError(f"registry_mirrors must not be negative, got {mirrors}")
            healthy = primary.model_copy(
                update={"behaviour": Behaviour.OK, "dead": False, "latency": 0.0}
            )
            alternates: Sequence[RegistryProfile] = [healthy] * mirrors
        else:
            alternates = list(mirrors)
        return cls(primary, alternates)

    @property
    def host_count(self) -> int:
        """Loopback hosts the site uses: one per endpoint, plus one that refuses connections."""
        return len(self.profiles) + 1

    @property
    def urls(self) -> tuple[str, ...]:
        """The TAP base URL of every endpoint, primary first."""
        return tuple(endpoint.url for endpoint in self._endpoints)

    @property
    def runners(self) -> list[web.AppRunner]:
        """The endpoints' runners (the simulator cleans them up)."""
        return [e.runner for e in self._endpoints if e.runner is not None]

    async def start(
        self,
        *,
        addresses: Sequence[str],
        listen: Listen,
        reserve_port: Callable[[str], int],
        wait_closing: WaitClosing,
        services: Sequence[ServedService],
        hosts: Sequence[str],
    ) -> None:
        """Listen on *addresses* (one per endpoint, then the refusing one), build, serve.

        Args:
            addresses: ``host_count`` loopback addresses no other site uses.
            listen: Opens a site for an app on an address.
            reserve_port: A port on an address where nothing will listen.
            wait_closing: The simulator's bounded sleep.
            services: The fleet services to register.
            hosts: Base URLs of live simulated hosts (synthetic services point there).
        """
        for profile, address in zip(self.profiles, addresses, strict=False):
            endpoint = _Endpoint(profile, address, limiter=anyio.CapacityLimiter(2))
            if profile.dead:
                port = reserve_port(address)
            else:
                endpoint.runner, port = await listen(
                    _App(endpoint, wait_closing).application(), address
                )
            endpoint.url = f"http://{address}:{port}{REGISTRY_PATH}"
            self._endpoints.append(endpoint)
        refusing = addresses[len(self.profiles)]
        refused = f"http://{refusing}:{reserve_port(refusing)}"
        urls = RegistryUrls(
            endpoints=self.urls,
            hosts=tuple(hosts) or (self._endpoints[0].url.removesuffix(REGISTRY_PATH),),
            refused=refused,
        )
        fleet = [_FleetService(s.spec, s.url) for s in services]
        await anyio.to_thread.run_sync(functools.partial(self._build, urls, fleet))

    def _build(self, urls: RegistryUrls, fleet: Sequence[ServedService]) -> None:
        primary = self.profiles[0]
        registry = build_registry(primary.n_resources, seed=primary.seed, services=fleet, urls=urls)
        rows = registry.rows()
        databases: dict[tuple[object, ...], tuple[AdqlDatabase, tuple[TableDef, ...]]] = {}
        for index, endpoint in enumerate(self._endpoints):
            profile = endpoint.profile
            key = (profile.features, profile.coverage_tables, profile.query_timeout)
            if key not in databases:
                served = (*rr_tables(coverage=profile.coverage_tables), *tap_schema_tables())
                all_rows = {**rows, **tap_schema_rows(served, {"rr": REGTAP_MODEL})}
                database = AdqlDatabase(
                    served, all_rows, features=profile.features, timeout=profile.query_timeout
                )
                self._databases.append(database)
                databases[key] = (database, served)
            endpoint.database, endpoint.tables = databases[key]
            endpoint.mirrors = tuple(u for k, u in enumerate(self.urls) if k != index)
        self.registry = registry

    def stats(self) -> tuple[RegistryStats, ...]:
        """Counters of every endpoint, primary first."""
        return tuple(endpoint.stats() for endpoint in self._endpoints)

    def reset(self) -> None:
        """Zero the counters and restart the ``fail_times`` countdowns."""
        for endpoint in self._endpoints:
            endpoint.reset()

    def close(self) -> None:
        """Stop running queries and close the databases (idempotent)."""
        for database in self._databases:
            database.close()
