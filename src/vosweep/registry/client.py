"""The async RegTAP client: search, then fetch details in batches, from whichever registry answers.

Flow of one search (`RegistryClient.search`):

1. Pick an endpoint: the one that answered last, else the configured ones in order.
2. Learn what it supports (`features`: its TAPRegExt capabilities, plus a look at its
   ``TAP_SCHEMA`` when the capabilities leave RegTAP 1.1 columns or the 1.2 coverage
   tables in doubt), cached per endpoint.
3. Run the search's ADQL there (one row per resource).
4. Fetch capabilities and interfaces, subjects and alternative identifiers for the
   ivoids found: when the answer is the whole match, one query each that names the
   search itself (``ivoid IN (SELECT ivoid ...)``); when it was cut at ``maxrec``,
   ``batch_size`` ivoids per query, a few queries in flight. The round trips grow with
   N / batch_size at most, never with N.

An endpoint that cannot be reached (connection refused, timeout, 5xx, an HTML page)
is skipped for the next one, and every query of one search goes to the endpoint that
ran the search, so that its answers agree with each other. Answers are cached with a
TTL (`vosweep.registry.cache`), keyed by endpoint and query. A registry that answers but
refuses the query (an ADQL error) is not failed over: the error is raised as the
registry worded it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import numpy as np

from vosweep import _log
from vosweep.errors import (
    HTTPStatusError,
    QueryRejected,
    RegistryUnavailable,
    ResponseFormatError,
    ServiceError,
    UsageError,
    VosweepError,
)
from vosweep.protocols import tap
from vosweep.protocols.base import check_http_status
from vosweep.registry._adql import string_literal
from vosweep.registry.cache import SHARED_CACHE, TTLCache
from vosweep.registry.constraints import SearchSpec
from vosweep.registry.features import RegistryFeatures, parse_capabilities
from vosweep.registry.results import (
    Column,
    Contact,
    Interface,
    RegistryResource,
    RegistryResults,
    TableMeta,
)
from vosweep.scheduling.retry import backoff, is_retryable

if TYPE_CHECKING:
    from astropy.table import Table

    from vosweep.config import EngineConfig
    from vosweep.protocols.base import Parsed, Request, Response
    from vosweep.protocols.fastvot import TableData
    from vosweep.transport.base import Transport

__all__ = ["QueryAnswer", "RegistryClient", "SchemaInfo"]

T = TypeVar("T")

#: Seconds the conservative features of an endpoint without capabilities are kept.
_FALLBACK_TTL = 60.0
#: Rows a follow-up query may return before its batch is split in two.
_DETAIL_MAXREC = 200_000
#: Lists that RegTAP stores as hash-separated strings ("#radio#optical#").
_HASH_SPLIT = re.compile(r"#")
#: ``creator_seq`` separates names with semicolons (a name holds commas: "Doe, J.").
_CREATOR_SPLIT = re.compile(r";")
#: Mirror URLs are a hash list too, but a URL may itself hold a '#': split only before URLs.
_MIRROR_SPLIT = re.compile(r"#(?=[A-Za-z][A-Za-z0-9+.-]*://)")
#: RegTAP 1.x data-model ids, lower-cased, without the minor version.
_REGTAP_1X = "ivo://ivoa.net/std/regtap#1."
#: Columns RegTAP 1.1 added that the client reads when present.
_INTERFACE_11 = ("mirror_url", "authenticated_only")


# Follow-up queries; "{ivoids}" becomes a list of quoted ivoids (one batch).
_INTERFACES = (
    "SELECT ivoid, cap_index, intf_index, standard_id, cap_description, intf_type, intf_role,"
    " access_url FROM rr.capability NATURAL JOIN rr.interface"
    " WHERE ivoid IN ({ivoids}) ORDER BY ivoid, cap_index, intf_index"
)
_INTERFACES_11 = _INTERFACES.replace("access_url", "access_url, mirror_url, authenticated_only", 1)
_SUBJECTS = (
    "SELECT ivoid, res_subject FROM rr.res_subject"
    " WHERE ivoid IN ({ivoids}) ORDER BY ivoid, res_subject"
)
_ALT_IDENTIFIERS = (
    "SELECT ivoid, alt_identifier FROM rr.alt_identifier"
    " WHERE ivoid IN ({ivoids}) ORDER BY ivoid, alt_identifier"
)
_TABLES = (
    "SELECT ivoid, table_index, table_name, table_title, table_description, table_utype"
    " FROM rr.res_table WHERE ivoid IN ({ivoids}) ORDER BY ivoid, table_index"
)
#: RegTAP 1.1 added ``table_type``.
_TABLES_11 = _TABLES.replace("table_utype", "table_utype, table_type", 1)
_COLUMNS = (
    "SELECT ivoid, table_index, name, ucd, unit, utype, datatype, arraysize, extended_type,"
    " column_description, flag FROM rr.table_column"
    " WHERE ivoid IN ({ivoids}) ORDER BY ivoid, table_index"
)
_CONTACTS = (
    "SELECT ivoid, role_name, email, telephone, street_address, role_ivoid FROM rr.res_role"
    " WHERE base_role = 'contact' AND ivoid IN ({ivoids}) ORDER BY ivoid, role_name"
)


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """Which optional ``rr`` tables and columns one endpoint has.

    Attributes:
        tables: ``rr`` table names, lower-cased and qualified (``rr.alt_identifier``).
        interface_columns: Columns of ``rr.interface``, lower-cased.
    """

    tables: frozenset[str]
    interface_columns: frozenset[str]

    @property
    def mirrors(self) -> bool:
        """Whether ``rr.interface`` has RegTAP 1.1's ``mirror_url`` and ``authenticated_only``."""
        return all(column in self.interface_columns for column in _INTERFACE_11)

    @property
    def table_type(self) -> bool:
        """Whether ``rr.res_table`` has RegTAP 1.1's ``table_type``."""
        return self.mirrors  # both came with RegTAP 1.1

    @property
    def alt_identifiers(self) -> bool:
        """Whether RegTAP 1.1's ``rr.alt_identifier`` exists."""
        return "rr.alt_identifier" in self.tables


#: What a RegTAP 1.1 endpoint has (used when its capabilities say it is one).
_SCHEMA_11 = SchemaInfo(
    tables=frozenset({"rr.alt_identifier", "rr.res_subject", "rr.res_table", "rr.table_column"}),
    interface_columns=frozenset(_INTERFACE_11),
)
#: What every RegTAP endpoint has (used when nothing better is known).
_SCHEMA_10 = SchemaInfo(
    tables=frozenset({"rr.res_subject", "rr.res_table", "rr.table_column"}),
    interface_columns=frozenset(),
)


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """One registry answer: its rows as plain Python values, and where it came from.

    Attributes:
        rows: One dict per row, column name -> value (None for nulls).
        overflow: The registry truncated the answer at MAXREC.
        endpoint: The registry that answered.
    """

    rows: list[dict[str, Any]]
    overflow: bool
    endpoint: str


class RegistryClient:
    """RegTAP queries for one engine, through its transport (same limits and timeouts).

    Args:
        transport: The engine's HTTP transport.
        config: The engine's configuration (``config.registry`` above all).
        cache: Where answers are cached (the process-wide one by default).
    """

    def __init__(
        self, transport: Transport, config: EngineConfig, cache: TTLCache = SHARED_CACHE
    ) -> None:
        self._transport = transport
        self._config = config
        self._registry = config.registry
        self._cache = cache
        self._preferred: str | None = None
        self._limiter = anyio.CapacityLimiter(self._registry.concurrency)
        #: Round trips made (cache hits excluded), for benchmarks and tests.
        self.round_trips = 0

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints in the order they will be tried next."""
        configured = self._registry.endpoints
        if self._preferred is None or self._preferred not in configured:
            return configured
        return (self._preferred, *(e for e in configured if e != self._preferred))

    # -- public operations --------------------------------------------------------------

    async def search(self, spec: SearchSpec) -> RegistryResults:
        """Run a search and fetch every found resource's interfaces and details.

        Raises:
            RegistryUnavailable: No endpoint could be reached.
            RegistryFeatureMissing: A constraint needs what the registry lacks.
            QueryRejected: The registry refused the query.
        """

        async def attempt(endpoint: str) -> RegistryResults:
            features, schema = await self._capabilities(endpoint, spec)
            adql = spec.adql(features)
            answer = await self._query_at(endpoint, adql, maxrec=spec.maxrec)
            resources = _resources(answer.rows, endpoint)
            ivoids = [r.ivoid for r in resources]
            # When the answer is the whole match, follow-ups can name it by the search itself.
            whole = not answer.overflow and (spec.maxrec is None or len(ivoids) < spec.maxrec)
            subquery = spec.ivoid_query(features) if whole else None
            details = await self._details(endpoint, schema, ivoids, subquery)
            link = _Binding(self, endpoint, subquery, ivoids)
            complete = [details.complete(resource, link) for resource in resources]
            return RegistryResults(
                complete,
                spec=spec,
                query=adql,
                endpoint=endpoint,
                overflow=answer.overflow and (spec.maxrec is None or len(complete) < spec.maxrec),
                link=link,
            )

        results = await self._with_failover(attempt)
        _log.get_logger().info(
            _log.REGISTRY_SEARCH,
            endpoint=results.endpoint,
            resources=len(results),
            overflow=results.overflow,
        )
        return results

    async def query(self, adql: str, *, maxrec: int | None = None) -> QueryAnswer:
        """Run any ADQL on the registry (failing over between endpoints), rows as dicts."""
        answer = await self._with_failover(
            lambda endpoint: self._query_at(endpoint, adql, maxrec=maxrec)
        )
        # The cache keeps its own rows: the caller may change these.
        return replace(answer, rows=[dict(row) for row in answer.rows])

    async def features(self, endpoint: str | None = None) -> RegistryFeatures:
        """What *endpoint* (default: the first reachable one) supports, from its capabilities."""
        if endpoint is not None:
            return (await self._capabilities(endpoint, None))[0]

        async def attempt(endpoint: str) -> RegistryFeatures:
            return (await self._capabilities(endpoint, None))[0]

        return await self._with_failover(attempt)

    async def get_tables(
        self,
        resources: Sequence[RegistryResource],
        *,
        table_limit: int,
        endpoint: str | None = None,
        subquery: str | None = None,
    ) -> dict[str, list[TableMeta]]:
        """Tables and their columns for *resources*: two batched queries per batch.

        *subquery*, an ADQL query selecting exactly these resources' ivoids, replaces the
        batches of ivoid lists when there would be several.
        """
        ivoids = [r.ivoid for r in resources]

        async def attempt(endpoint: str) -> dict[str, list[TableMeta]]:
            _, schema = await self._capabilities(endpoint, None)
            template = _TABLES_11 if schema.table_type else _TABLES
            tables = await self._batched(endpoint, ivoids, template, subquery)
            counts: dict[str, int] = defaultdict(int)
            for row in tables:
                counts[row["ivoid"]] += 1
            for ivoid, count in counts.items():
                if count > table_limit:
                    raise UsageError(
                        f"{ivoid} has {count} tables, more than table_limit={table_limit};"
                        " raise table_limit to fetch them all"
                    )
            columns = await self._batched(endpoint, ivoids, _COLUMNS, subquery)
            return _tables(tables, columns)

        if endpoint is not None:
            return await attempt(endpoint)
        return await self._with_failover(attempt)

    async def get_contacts(
        self,
        resources: Sequence[RegistryResource],
        *,
        endpoint: str | None = None,
        subquery: str | None = None,
    ) -> dict[str, list[Contact]]:
        """Contacts (``rr.res_role``, base role ``contact``) of *resources*, batched."""
        ivoids = [r.ivoid for r in resources]

        async def attempt(endpoint: str) -> dict[str, list[Contact]]:
            rows = await self._batched(endpoint, ivoids, _CONTACTS, subquery)
            found: dict[str, list[Contact]] = defaultdict(list)
            for row in rows:
                found[row["ivoid"]].append(
                    Contact(
                        name=row.get("role_name"),
                        email=row.get("email"),
                        telephone=row.get("telephone"),
                        address=row.get("street_address"),
                        ivoid=row.get("role_ivoid"),
                    )
                )
            return dict(found)

        if endpoint is not None:
            return await attempt(endpoint)
        return await self._with_failover(attempt)

    # -- failover -----------------------------------------------------------------------

    async def _with_failover(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        failures: dict[str, ServiceError] = {}
        for endpoint in self.endpoints:
            try:
                result = await attempt(endpoint)
            except QueryRejected:
                raise  # the registry answered: another would likely refuse too
            except ServiceError as exc:
                failures[endpoint] = exc
                _log.get_logger().warning(
                    _log.REGISTRY_FAILOVER, endpoint=endpoint, error=f"{type(exc).__name__}: {exc}"
                )
                continue
            self._preferred = endpoint
            return result
        raise RegistryUnavailable(failures)

    # -- features -----------------------------------------------------------------------

    async def _capabilities(
        self, endpoint: str, spec: SearchSpec | None
    ) -> tuple[RegistryFeatures, SchemaInfo]:
        key = ("features", endpoint)
        cached = self._cached(key)
        if cached is None:
            ttl = self._registry.cache_ttl
            try:
                response = await self._send(tap.capabilities_request(endpoint))
                features = await anyio.to_thread.run_sync(parse_capabilities, response.body)
            except (QueryRejected, ResponseFormatError, HTTPStatusError) as exc:
                if isinstance(exc, HTTPStatusError) and exc.is_transient():
                    raise  # a sick registry: fail over
                # No usable capabilities (some registries lack VOSI): be conservative.
                _log.get_logger().warning(
                    _log.REGISTRY_NO_CAPABILITIES, endpoint=endpoint, error=str(exc)
                )
                ttl = min(ttl, _FALLBACK_TTL)  # it may have been a passing hiccup
                features = RegistryFeatures(
                    union=False,
                    ilike=False,
                    moc=False,
                    geometry=frozenset(),
                    coverage_tables=None,
                    data_models=frozenset(),
                )
            schema = _SCHEMA_11 if _declares_regtap_11(features.data_models) else None
            if schema is None or features.coverage_tables is None:
                probed = await self._probe_schema(endpoint)
                if probed is not None:
                    schema = probed
                    features = features.with_tables(probed.tables)
            cached = (features, schema or _SCHEMA_10)
            self._cache.put(key, cached, ttl)
        features, schema = cached
        if spec is not None and spec.needs_table_list(features):
            features = features.with_tables(())  # still unknown after probing: none usable
        return features, schema

    async def _probe_schema(self, endpoint: str) -> SchemaInfo | None:
        """The ``rr`` tables and interface columns, from ``TAP_SCHEMA`` (None if unknown)."""
        try:
            answer = await self._query_at(
                endpoint,
                "SELECT table_name, column_name FROM TAP_SCHEMA.columns"
                " WHERE table_name LIKE 'rr.%'",
                maxrec=_DETAIL_MAXREC,
            )
        except (QueryRejected, ResponseFormatError):
            return None
        tables: set[str] = set()
        interface: set[str] = set()
        for row in answer.rows:
            table = str(row.get("table_name") or "").strip('"').lower()
            tables.add(table)
            if table == "rr.interface":
                interface.add(str(row.get("column_name") or "").strip('"').lower())
        if "rr.interface" not in tables:
            # Every RegTAP has rr.interface: this TAP_SCHEMA does not describe rr (names
            # not qualified, or not in lower case), so it says nothing about what is missing.
            return None
        return SchemaInfo(frozenset(tables), frozenset(interface))

    # -- details ------------------------------------------------------------------------

    async def _details(
        self, endpoint: str, schema: SchemaInfo, ivoids: list[str], subquery: str | None
    ) -> _Details:
        details = _Details(include_authenticated=self._registry.include_authenticated)
        if not ivoids:
            return details

        async def interfaces() -> None:
            details.add_interfaces(
                await self._batched(
                    endpoint,
                    ivoids,
                    _INTERFACES_11 if schema.mirrors else _INTERFACES,
                    subquery,
                )
            )

        async def values(kind: str, column: str, template: str) -> None:
            rows = await self._batched(endpoint, ivoids, template, subquery)
            details.add_values(kind, column, rows)

        with _unwrap_errors():
            async with anyio.create_task_group() as tg:
                tg.start_soon(interfaces)
                tg.start_soon(values, "subjects", "res_subject", _SUBJECTS)
                if schema.alt_identifiers:
                    tg.start_soon(values, "alt_identifiers", "alt_identifier", _ALT_IDENTIFIERS)
        return details

    async def _batched(
        self, endpoint: str, ivoids: Sequence[str], template: str, subquery: str | None = None
    ) -> list[dict[str, Any]]:
        """Run the *template* query for every batch of ivoids; rows in batch order.

        A batch whose answer overflows is split in two and asked again. With more than
        one batch's worth of ivoids and a *subquery* that selects exactly them, one query
        asks for all at once (the batches remain the fallback if its answer overflows).
        """
        size = self._registry.batch_size
        if subquery is not None and len(ivoids) > size:
            answer = await self._query_at(
                endpoint, template.replace("{ivoids}", subquery), maxrec=_DETAIL_MAXREC
            )
            if not answer.overflow:
                return answer.rows
        batches = [list(ivoids[i : i + size]) for i in range(0, len(ivoids), size)]
        answers: list[list[dict[str, Any]]] = [[] for _ in batches]

        async def run(index: int, batch: list[str]) -> None:
            answers[index] = await self._batch(endpoint, batch, template)

        with _unwrap_errors():
            async with anyio.create_task_group() as tg:
                for index, batch in enumerate(batches):
                    tg.start_soon(run, index, batch)
        return [row for answer in answers for row in answer]

    async def _batch(self, endpoint: str, batch: list[str], template: str) -> list[dict[str, Any]]:
        # The ivoids come from the registry, but are quoted like any caller value.
        ivoids = ", ".join(string_literal(ivoid) for ivoid in batch)
        adql = template.replace("{ivoids}", ivoids)
        answer = await self._query_at(endpoint, adql, maxrec=_DETAIL_MAXREC)
        if not answer.overflow:
            return answer.rows
        if len(batch) == 1:
            raise ResponseFormatError(
                f"the registry at {endpoint} truncated the details of {batch[0]}"
                f" at {len(answer.rows)} rows",
                url=tap.sync_url(endpoint),
            )
        half = len(batch) // 2
        first = await self._batch(endpoint, batch[:half], template)
        return first + await self._batch(endpoint, batch[half:], template)

    # -- one query ----------------------------------------------------------------------

    async def _query_at(self, endpoint: str, adql: str, *, maxrec: int | None) -> QueryAnswer:
        key = ("query", endpoint, adql, maxrec)
        cached = self._cached(key)
        if cached is not None:
            answer: QueryAnswer = cached
            return answer
        async with self._limiter:
            response = await self._send(tap.sync_request(endpoint, adql, maxrec=maxrec))
            # Parsing and turning thousands of rows into dicts are CPU work: off the loop.
            rows, overflow = await anyio.to_thread.run_sync(
                _parse_rows, response, self._config.limits.max_response_bytes
            )
        answer = QueryAnswer(rows=rows, overflow=overflow, endpoint=endpoint)
        self._cache.put(key, answer, self._registry.cache_ttl)
        return answer

    def _cached(self, key: tuple[object, ...]) -> Any | None:
        """A cached answer, unless the cache is switched off (``cache_ttl=0``)."""
        return self._cache.get(key) if self._registry.cache_ttl > 0 else None

    async def _send(self, request: Request) -> Response:
        """One request with the engine's retry policy for transient failures."""
        policy = self._config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                self.round_trips += 1
                response = await self._transport.send(
                    request,
                    timeouts=self._config.timeouts,
                    max_bytes=self._config.limits.max_response_bytes,
                )
                if response.status == 400 and response.body.lstrip().startswith(b"<"):
                    return response  # TAP errors come as VOTables with 400: let the parser say why
                check_http_status(response)
            except ServiceError as exc:
                if attempt >= policy.attempts or not is_retryable(exc, policy):
                    raise
                await anyio.sleep(backoff(attempt, exc, policy))
                continue
            return response


def _declares_regtap_11(data_models: Iterable[str]) -> bool:
    """Whether RegTAP 1.1 or later is declared (1.2 keeps the columns 1.1 added)."""
    minors = (dm.removeprefix(_REGTAP_1X) for dm in data_models if dm.startswith(_REGTAP_1X))
    return any(minor.isascii() and minor.isdigit() and int(minor[:9]) >= 1 for minor in minors)


@contextmanager
def _unwrap_errors() -> Iterator[None]:
    """Let a task group's vosweep error out as itself, not inside an ExceptionGroup.

    anyio wraps whatever a child task raises in an ExceptionGroup, but failover catches
    `ServiceError` and callers catch `QueryRejected` or `UsageError`: a group made only of
    vosweep errors is replaced by its first one. A group holding anything else (a bug,
    a cancellation) is left alone.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if leaves and all(isinstance(exc, VosweepError) for exc in leaves):
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


class _Binding:
    """Ties found resources to the client and endpoint that found them."""

    def __init__(
        self,
        client: RegistryClient,
        endpoint: str,
        subquery: str | None = None,
        ivoids: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._subquery = subquery
        self._ivoids = frozenset(ivoids)

    def subquery_for(self, resources: Sequence[RegistryResource]) -> str | None:
        """The search itself, as a subquery, when asked about exactly what it found.

        None otherwise: the caller names the ivoids one by one.
        """
        if self._subquery is None or len(resources) != len(self._ivoids):
            return None
        return self._subquery if {r.ivoid for r in resources} == self._ivoids else None

    async def get_tables(
        self, resources: Sequence[RegistryResource], *, table_limit: int
    ) -> dict[str, list[TableMeta]]:
        return await self._client.get_tables(
            resources,
            table_limit=table_limit,
            endpoint=self._endpoint,
            subquery=self.subquery_for(resources),
        )

    async def get_contacts(self, resources: Sequence[RegistryResource]) -> dict[str, list[Contact]]:
        return await self._client.get_contacts(
            resources, endpoint=self._endpoint, subquery=self.subquery_for(resources)
        )


# --- parsing answers (in worker threads) -------------------------------------------------


def _parse_rows(response: Response, max_bytes: int) -> tuple[list[dict[str, Any]], bool]:
    """The answer's rows, and whether the registry cut it at MAXREC (runs in a thread)."""
    parsed = tap.parse_sync(response, max_bytes=max_bytes)
    return _rows(parsed), parsed.status == "OVERFLOW"


def _rows(parsed: Parsed) -> list[dict[str, Any]]:
    """The first result table's rows as dicts of Python values (None for masked cells)."""
    if not parsed.tables:
        return []
    table = parsed.tables[0]
    names = list(table.colnames)
    columns = [_values(table, name) for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _values(table: Table | TableData, name: str) -> list[Any]:
    column = table[name]
    data = np.asarray(column.data if hasattr(column, "data") else column)
    mask = getattr(column, "mask", None)
    values = data.tolist()
    if data.dtype.kind == "S":
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    if mask is not None and np.any(mask):
        flags = np.asarray(mask).tolist()
        values = [None if flag else value for value, flag in zip(values, flags, strict=True)]
    if data.dtype.kind == "f":
        values = [None if isinstance(v, float) and v != v else v for v in values]  # noqa: PLR0124
    # TABLEDATA writes a NULL string as an empty cell, which decodes as "": make it None.
    return [(v.strip() or None) if isinstance(v, str) else v for v in values]


def _hash_list(value: object, separator: re.Pattern[str] = _HASH_SPLIT) -> tuple[str, ...]:
    """A RegTAP list (``#radio#optical#``; ``Doe, J.; Roe, R.`` for creators) as its items."""
    if not value:
        return ()
    return tuple(item.strip() for item in separator.split(str(value)) if item.strip())


def _resources(rows: list[dict[str, Any]], endpoint: str) -> list[RegistryResource]:
    """The search answer's resources; rows without an ivoid are left out.

    Raises:
        ResponseFormatError: The answer has rows but no ``ivoid`` column: whatever
            answered is not a RegTAP service (or not this query's).
    """
    if rows and "ivoid" not in rows[0]:
        raise ResponseFormatError(
            f"the registry at {endpoint} answered without an ivoid column"
            f" (columns: {', '.join(list(rows[0])[:8])})",
            url=tap.sync_url(endpoint),
        )
    return [_resource(row) for row in rows if row.get("ivoid") is not None]


def _resource(row: dict[str, Any]) -> RegistryResource:
    region = _number(row.get("region_of_regard"))
    return RegistryResource(
        ivoid=str(row["ivoid"]),
        res_type=row.get("res_type"),
        short_name=row.get("short_name"),
        res_title=row.get("res_title"),
        res_description=row.get("res_description"),
        reference_url=row.get("reference_url"),
        content_levels=_hash_list(row.get("content_level")),
        content_types=_hash_list(row.get("content_type")),
        creators=_hash_list(row.get("creator_seq"), _CREATOR_SPLIT),
        waveband=_hash_list(row.get("waveband")),
        created=_text(row.get("created")),
        updated=_text(row.get("updated")),
        rights=row.get("rights"),
        source_format=row.get("source_format"),
        source_value=row.get("source_value"),
        res_version=row.get("res_version"),
        region_of_regard=region,
    )


def _number(value: object) -> float | None:
    """A float from a numeric cell, None for a null or for junk (a service's, not ours)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class _Details:
    """Follow-up rows grouped by ivoid, then merged into the resources."""

    def __init__(self, *, include_authenticated: bool) -> None:
        self._include_authenticated = include_authenticated
        self.interfaces: dict[str, list[Interface]] = defaultdict(list)
        self.values: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def add_interfaces(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            access_url = row.get("access_url")
            if not access_url:
                continue
            authenticated = bool(row.get("authenticated_only") or 0)
            if authenticated and not self._include_authenticated:
                continue
            standard_id = row.get("standard_id")
            self.interfaces[row["ivoid"]].append(
                Interface(
                    access_url=access_url,
                    standard_id=standard_id.lower() if standard_id else None,
                    type=(row.get("intf_type") or None),
                    role=(row.get("intf_role") or None),
                    capability_description=row.get("cap_description"),
                    mirror_urls=_mirrors(row.get("mirror_url"), access_url),
                    authenticated_only=authenticated,
                    cap_index=int(row.get("cap_index") or 0),
                )
            )

    def add_values(self, kind: str, column: str, rows: Iterable[dict[str, Any]]) -> None:
        # Columns are read by their own names: VALUE is an SQL-92 reserved word, so an
        # "AS value" alias is refused by strict ADQL parsers.
        for row in rows:
            if row.get(column):
                self.values[kind][row["ivoid"]].append(str(row[column]))

    def complete(self, resource: RegistryResource, link: _Binding) -> RegistryResource:
        from dataclasses import replace  # noqa: PLC0415 - only here

        return replace(
            resource,
            interfaces=tuple(self.interfaces.get(resource.ivoid, ())),
            subjects=tuple(self.values["subjects"].get(resource.ivoid, ())),
            alt_identifiers=tuple(self.values["alt_identifiers"].get(resource.ivoid, ())),
            _link=link,
        )


def _mirrors(value: object, access_url: str) -> tuple[str, ...]:
    if not value:
        return ()
    found = (url.strip() for url in _MIRROR_SPLIT.split(str(value).strip("#")))
    return tuple(dict.fromkeys(url for url in found if url and url != access_url))


def _tables(
    table_rows: list[dict[str, Any]], column_rows: list[dict[str, Any]]
) -> dict[str, list[TableMeta]]:
    columns: dict[tuple[str, Any], list[Column]] = defaultdict(list)
    for row in column_rows:
        columns[(row["ivoid"], row.get("table_index"))].append(
            Column(
                name=str(row.get("name") or ""),
                description=row.get("column_description"),
                unit=row.get("unit"),
                ucd=row.get("ucd"),
                utype=row.get("utype"),
                datatype=row.get("datatype"),
                arraysize=_text(row.get("arraysize")),
                xtype=row.get("extended_type"),
                flags=row.get("flag"),
            )
        )
    found: dict[str, list[TableMeta]] = defaultdict(list)
    for row in table_rows:
        found[row["ivoid"]].append(
            TableMeta(
                name=str(row.get("table_name") or ""),
                title=row.get("table_title"),
                description=row.get("table_description"),
                utype=row.get("table_utype"),
                type=row.get("table_type"),
                columns=tuple(columns.get((row["ivoid"], row.get("table_index")), ())),
            )
        )
    return dict(found)
