"""The engine: plan -> schedule -> fetch -> parse -> aggregate -> report, in one call."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import ObjectReceiveStream
from astropy.table import Table

from vosweep import _log
from vosweep.checkpoint import Checkpoint, SweepSpec, is_finished, job_key
from vosweep.config import EngineConfig, ErrorPolicy, make_config
from vosweep.errors import (
    FanoutAborted,
    ServiceError,
    SweepInterrupted,
    UsageError,
)
from vosweep.outcomes import Part, ServiceOutcome, Status
from vosweep.protocols.base import Request
from vosweep.protocols.conversation import Capabilities, Send, Step, Work
from vosweep.protocols.links import datalink_services
from vosweep.protocols.metadata import ServiceParameter, metadata_request, parse_metadata
from vosweep.protocols.vosi import (
    Availability,
    ServiceCapabilities,
    TableInfo,
    parse_availability,
    parse_tables,
)
from vosweep.queries import DatalinkQuery, query_protocols
from vosweep.registry.client import RegistryClient
from vosweep.registry.constraints import Constraint, SearchSpec
from vosweep.registry.coverage import excluded_resources
from vosweep.registry.results import RegistryResource, RegistryResults
from vosweep.result import Collector, FanoutResult
from vosweep.scheduling.breaker import BreakerSnapshot
from vosweep.scheduling.limits import HostLimitsStatistics
from vosweep.scheduling.plan import DUPLICATE, Plan, split_target
from vosweep.scheduling.runner import RunEnd, Runner
from vosweep.services import Protocol, Service, coerce_service
from vosweep.targets import Skipped, Targeted, expand_targets, is_single_target
from vosweep.transport.base import Transport
from vosweep.transport.http import AiohttpTransport

__all__ = ["Engine", "EngineStatistics", "SweepStream", "fanout", "fanout_sync"]


class _GCFreeze:
    """Reference-counted `gc.freeze`: frozen while at least one engine asks for it."""

    holders = 0

    @classmethod
    def acquire(cls) -> None:
        if cls.holders == 0:
            gc.freeze()
        cls.holders += 1

    @classmethod
    def release(cls) -> None:
        cls.holders -= 1
        if cls.holders == 0:
            gc.unfreeze()


class _State(Enum):
    # Like httpx's ClientState: an engine is opened once and closed once.
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """What the engine's limiter and breakers look like now.

    Attributes:
        limits: In-flight and peak counts, globally and per host.
        breakers: Hosts whose circuit breaker opened at some point.
    """

    limits: HostLimitsStatistics
    breakers: list[BreakerSnapshot]


class SweepStream:
    """Parts as services finish, from `Engine.stream`; iterate with ``async for``.

    `result()` gives everything received so far at any moment (and the final result once
    the iteration ended), including outcomes of parts not yet read from the stream.
    """

    def __init__(self, receive: ObjectReceiveStream[Part], collector: Collector, t0: float) -> None:
        self._receive = receive
        self._collector = collector
        self._t0 = t0
        self.end: RunEnd | None = None

    def __aiter__(self) -> AsyncIterator[Part]:
        return self._receive.__aiter__()

    async def __anext__(self) -> Part:
        return await self._receive.__anext__()

    def result(self) -> FanoutResult:
        """The merged table and outcomes so far."""
        return self._collector.result(self.end, time.perf_counter() - self._t0)


class Engine:
    """Fans queries out to many VO services at once.

    Use as an async context manager; it owns one HTTP session (one connection pool), the
    per-host politeness limits and the per-host circuit breakers, all shared by every
    fan-out run on it::

        async with vosweep.Engine() as engine:
            result = await engine.fanout(services, vosweep.Cone(ra=83.6, dec=22.0, radius=0.1))
        print(result.summary())

    Args:
        config: The configuration; keyword arguments override its fields
            (``Engine(errors="retry3", deadline=60)``).
        transport: Send requests through this instead of aiohttp (tests, custom stacks).
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        transport: Transport | None = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(config, **overrides)
        self._transport = transport
        self._owns_transport = transport is None
        self._runner: Runner | None = None
        self._registry: RegistryClient | None = None
        self._state = _State.UNOPENED
        #: The result of the most recent fan-out, also when it was cancelled or aborted:
        #: the way to get partial results after a KeyboardInterrupt in a notebook.
        self.last_result: FanoutResult | None = None

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise UsageError("an Engine can be opened only once; create a new one")
        if self._transport is None:
            self._transport = AiohttpTransport(
                self.config.limits, purpose=self.config.user_agent_purpose
            )
        self._runner = Runner(self._transport, self.config)
        self._registry = RegistryClient(self._transport, self.config)
        self._state = _State.OPENED
        if self.config.freeze_gc:
            _GCFreeze.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = _State.CLOSED
        if self.config.freeze_gc:
            _GCFreeze.release()
        if self._transport is not None and self._owns_transport:
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()

    def _opened_runner(self) -> Runner:
        if self._state is not _State.OPENED or self._runner is None:
            state = "closed" if self._state is _State.CLOSED else "not opened"
            raise UsageError(f"the Engine is {state}: use it inside 'async with Engine() as e:'")
        return self._runner

    @property
    def registry(self) -> RegistryClient:
        """The engine's RegTAP client (ADQL on the registry, features, endpoints)."""
        self._opened_runner()
        if self._registry is None:  # pragma: no cover - set with the runner
            raise UsageError("the Engine has no registry client")
        return self._registry

    async def discover(
        self,
        *constraints: Constraint | str | SearchSpec,
        includeaux: bool = False,
        maxrec: int | None = None,
        **keywords: Any,
    ) -> RegistryResults:
        """Search the VO Registry (RegTAP) like ``pyvo.registry.search``.

        ::

            found = await engine.discover(servicetype="tap", datamodel="obscore")
            found = await engine.discover(registry.Freetext("white dwarf"), waveband="UV")
            result = await engine.fanout(found, query)

        Args:
            *constraints: Constraint objects (strings are free-text keywords), or one
                prepared `vosweep.registry.search(...)`.
            includeaux: Also find resources that offer a service only as an auxiliary
                capability (``tap#aux``: data collections published through a TAP service).
            maxrec: At most this many resources.
            **keywords: Constraints by keyword, as pyvo takes them: keywords, author,
                servicetype, waveband, datamodel, ivoid, ucd, uat, spatial, spectral,
                temporal.

        Raises:
            UsageError: No constraint, an unknown keyword, a bad value.
            RegistryFeatureMissing: A constraint needs a feature the registry lacks.
            RegistryUnavailable: No registry endpoint answered.
            QueryRejected: The registry refused the query.
        """
        if len(constraints) == 1 and isinstance(constraints[0], SearchSpec):
            if keywords or includeaux or maxrec is not None:
                raise UsageError("give either a prepared registry search or constraints, not both")
            spec = constraints[0]
        else:
            if any(isinstance(item, SearchSpec) for item in constraints):
                raise UsageError("a prepared registry search cannot be combined with constraints")
            spec = SearchSpec.from_arguments(
                *constraints,  # type: ignore[arg-type]
                includeaux=includeaux,
                maxrec=maxrec,
                **keywords,
            )
        return await self.registry.search(spec)

    # -- one service at a time: VOSI, parameters -------------------------------------------

    async def capabilities(self, service: Service | str) -> ServiceCapabilities | None:
        """A service's VOSI capabilities (TAPRegExt for TAP), cached like the fan-out's.

        *service* is a `Service` or a TAP base URL. Returns None when the service has no
        usable capabilities document (404, broken XML): fan-outs then assume defaults.

        Raises:
            ServiceError: The service cannot be reached (refused, timed out, 5xx).
        """
        runner = self._opened_runner()
        target = _one_service(service, Protocol.TAP)
        found: ServiceCapabilities | None = await runner.one_off(
            target, _cached_capabilities(target.access_url.rstrip("/"))
        )
        return found

    async def tables(self, service: Service | str) -> list[TableInfo]:
        """The tables and columns a TAP service publishes (VOSI tables).

        Raises:
            ServiceError: Unreachable, or no readable VOSI tables document.
        """
        runner = self._opened_runner()
        target = _one_service(service, Protocol.TAP)
        found: list[TableInfo] = await runner.one_off(
            target, _vosi_fetch(target, "/tables", parse_tables)
        )
        return found

    async def availability(self, service: Service | str) -> Availability:
        """Whether a service says it is up (VOSI availability).

        Raises:
            ServiceError: Unreachable, or no readable availability document.
        """
        runner = self._opened_runner()
        target = _one_service(service, Protocol.TAP)
        found: Availability = await runner.one_off(
            target, _vosi_fetch(target, "/availability", parse_availability)
        )
        return found

    async def service_parameters(self, service: Service) -> list[ServiceParameter]:
        """The input parameters an SIA, SIA2 or SSA service declares, custom ones included.

        Asks ``FORMAT=METADATA`` (SIA 1.0, SSA) or ``MAXREC=0`` (SIA2, DALI); pass
        custom ones through a query's ``params``.

        Raises:
            UsageError: A service of another protocol.
            ServiceError: Unreachable, or an unreadable answer.
        """
        runner = self._opened_runner()
        if not isinstance(service, Service) or service.protocol not in {
            Protocol.SIA,
            Protocol.SIA2,
            Protocol.SSA,
        }:
            raise UsageError("service_parameters needs an SIA, SIA2 or SSA vosweep.Service")
        found: list[ServiceParameter] = await runner.one_off(
            service, _fetch_parsed(metadata_request(service), parse_metadata)
        )
        return found

    async def datalinks(
        self,
        source: FanoutResult | Table,
        *,
        semantics: str | Sequence[str] = (),
        include_narrower: bool = True,
        errors: str | ErrorPolicy | None = None,
        deadline: float | None = None,
    ) -> FanoutResult:
        """Fetch the DataLink documents a result points to, keeping some link semantics.

        Rows whose access format is DataLink's (ObsCore ``access_format``, SSA
        ``Access.Format``) lead to their ``{links}`` documents; rows of services whose
        answers carried a DataLink service descriptor (SSA, many TAP services) are asked
        through it, many IDs per request. All are fetched as a fan-out (same limits,
        retries and breakers); the merged table has one row per link::

            links = await engine.datalinks(result, semantics="#preview")
            for url in links.table["access_url"]: ...

        Raises:
            UsageError: The table has no access URL / access format columns.
        """
        if isinstance(source, FanoutResult):
            services = datalink_services(source.table, source.datalink_access)
        else:
            services = datalink_services(source)
        return await self.fanout(
            services,
            DatalinkQuery(semantics=semantics, include_narrower=include_narrower),
            errors=errors,
            deadline=deadline,
        )

    def statistics(self) -> EngineStatistics:
        """A snapshot of the limiter and the circuit breakers."""
        runner = self._opened_runner()
        return EngineStatistics(
            runner.limits.statistics(), runner.breakers.snapshot(anyio.current_time())
        )

    async def _resolve(self, targets: Iterable[object] | SearchSpec) -> Iterable[object]:
        """A prepared registry search as targets: run it first."""
        if isinstance(targets, SearchSpec):
            return await self.discover(targets)
        return targets

    async def _excluded(
        self, targets: Iterable[object], query: object, coverage: bool
    ) -> dict[str, str]:
        """Registry resources whose declared coverage the query misses (see `coverage`)."""
        return await excluded_resources(self.registry, targets, query) if coverage else {}

    def _prepare(
        self,
        targets: Iterable[object],
        query: object,
        errors: str | ErrorPolicy | None,
        deadline: float | None,
        excluded: Mapping[str, str] | None = None,
    ) -> tuple[Plan, ErrorPolicy, float | None]:
        checked = self._checked_targets(targets, query)
        policy, deadline = self._options(errors, deadline)
        return Plan(checked, query, excluded), policy, deadline

    def _checked_targets(
        self, targets: Iterable[object], query: object
    ) -> Iterable[Service | str | Targeted | Skipped]:
        """The services *targets* stand for, for the plan.

        A collection is checked now; anything else (a generator of 100,000 services) is
        read lazily as the plan asks for more.
        """
        targets = _as_collection(targets)
        if isinstance(targets, Sequence | set | frozenset | dict):
            return self._target_list(targets, query)
        return expand_targets(targets, query_protocols(query), query)

    def _target_list(
        self, targets: Iterable[object], query: object
    ) -> list[Service | Targeted | Skipped]:
        """Every service *targets* stand for, checked now.

        Bad input is the caller's to fix, before any I/O.
        """
        targets = _as_collection(targets)
        fits = query_protocols(query)
        default = getattr(query, "default_protocol", None)
        checked: list[Service | Targeted | Skipped] = []
        for i, target in enumerate(expand_targets(targets, fits, query)):
            try:
                if isinstance(target, Targeted | Skipped):
                    checked.append(target)
                else:
                    checked.append(split_target(target, query, default)[0])
            except UsageError as exc:
                raise UsageError(f"target #{i}: {exc}") from None
        if not checked and isinstance(targets, RegistryResults) and targets:
            kind = "/".join(sorted(p.value for p in fits)) if fits else "queryable"
            raise UsageError(
                f"none of the {len(targets)} registry resources offers a {kind} interface"
            )
        return checked

    def _options(
        self, errors: str | ErrorPolicy | None, deadline: float | None
    ) -> tuple[ErrorPolicy, float | None]:
        policy = ErrorPolicy.parse(errors) if errors is not None else self.config.errors
        if deadline is None:
            deadline = self.config.deadline
        elif deadline <= 0:
            raise UsageError(f"deadline must be positive seconds, got {deadline}")
        return policy, deadline

    async def fanout(
        self,
        targets: Iterable[object] | SearchSpec,
        query: object = None,
        *,
        errors: str | ErrorPolicy | None = None,
        deadline: float | None = None,
        on_part: Callable[[Part], None] | None = None,
        coverage: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_info: Mapping[str, Any] | None = None,
        keep_rows: bool = True,
    ) -> FanoutResult:
        """Send *query* to every target; return the merged table and all outcomes.

        Args:
            targets: `Service` objects (or access URLs, for a query that implies a protocol).
                Read lazily: a generator of 100,000 services is fine.
            query: What to ask, e.g. a `Cone`; may be None when every target is a
                `Targeted` bringing its own query (what the global sweeps build).
            errors: Error policy for this fan-out (``"ignore"``, ``"abort"``, ``"retry"``,
                ``"retry<n>"``); defaults to the engine's.
            deadline: Seconds for the whole fan-out; defaults to the engine's.
            on_part: Called with each service's part as it is recorded, cancelled ones
                included (e.g. to drive a progress bar); for a continued checkpoint,
                first with each restored service.
            coverage: For registry results: skip (as ``out of coverage``) the resources
                whose RegTAP 1.2 coverage the query's position, band or time misses.
                False asks them anyway. Resources declaring no coverage are always asked.
            checkpoint: A SQLite file storing each finished service's outcome and rows as
                they arrive (see `vosweep.checkpoint`), so that a killed sweep can be
                finished with `resume`. Targets are read into a list first. If the file
                holds this very sweep already, it is continued (finished services are
                not asked again).
            checkpoint_info: A small JSON-able mapping stored with the sweep (what kind of
                sweep it is, say), for whoever resumes it: `vosweep.checkpoint.read_info`
                and ``result.checkpoint_info``. A continued sweep keeps the stored one.
            keep_rows: False (with a checkpoint only) keeps the rows in the checkpoint
                alone, not in memory: for results larger than memory, written out with
                `FanoutResult.write`.

        Raises:
            UsageError: Bad targets, query or options (before anything is sent); a
                checkpoint file of another sweep.
            FanoutAborted: Under the ``abort`` policy, when a service failed; carries the
                partial result.
        """
        self._opened_runner()
        if checkpoint is None and (checkpoint_info is not None or not keep_rows):
            raise UsageError("checkpoint_info and keep_rows=False need a checkpoint file")
        targets = await self._resolve(targets)
        excluded = await self._excluded(targets, query, coverage)
        if checkpoint is not None:
            # Stored with the sweep, so read whole and checked now, generators included.
            checked = self._target_list(targets, query)
            policy, deadline = self._options(errors, deadline)
            spec = SweepSpec(checked, query, dict(excluded))
            store = await anyio.to_thread.run_sync(
                Checkpoint.open, checkpoint, spec, checkpoint_info
            )
            return await self._checkpointed(
                store, policy, deadline, on_part, keep_rows=keep_rows, retry_failed=False
            )
        plan, policy, deadline = self._prepare(targets, query, errors, deadline, excluded)
        return await self._collect(Collector(on_part), plan, policy, deadline)

    async def resume(
        self,
        path: str | os.PathLike[str],
        *,
        retry_failed: bool = False,
        errors: str | ErrorPolicy | None = None,
        deadline: float | None = None,
        on_part: Callable[[Part], None] | None = None,
        keep_rows: bool = True,
    ) -> FanoutResult:
        """Finish a checkpointed sweep: ask the services that did not finish, and only them.

        The targets and query are read from the checkpoint. The result holds the stored
        outcomes and rows of finished services (``result.restored`` counts them) and the
        new ones, outcomes in target order. Cancelled services and those skipped behind
        an open circuit breaker are asked again; failed ones only with *retry_failed*.

        Raises:
            UsageError: No such file, or not a vosweep checkpoint.
        """
        self._opened_runner()
        store = await anyio.to_thread.run_sync(Checkpoint.open, path)
        policy, deadline = self._options(errors, deadline)  # the targets were checked
        return await self._checkpointed(
            store, policy, deadline, on_part, keep_rows=keep_rows, retry_failed=retry_failed
        )

    async def _checkpointed(
        self,
        store: Checkpoint,
        policy: ErrorPolicy,
        deadline: float | None,
        on_part: Callable[[Part], None] | None,
        *,
        keep_rows: bool,
        retry_failed: bool,
    ) -> FanoutResult:
        """Restore what the checkpoint holds, then run the rest of its sweep."""
        spec = store.spec
        stored = await anyio.to_thread.run_sync(store.outcomes)
        done = {i: o for i, o in stored.items() if is_finished(o, retry_failed=retry_failed)}
        wanted = [i for i, o in done.items() if keep_rows and o.status.succeeded]
        tables = await anyio.to_thread.run_sync(store.tables_of, wanted)
        collector = Collector(on_part, checkpoint=store, keep_rows=keep_rows, info=store.info)
        for index in sorted(done):
            collector.restore(index, done[index], tables.get(index, []))
        # What the plan would skip as duplicates of finished targets, it cannot see: the
        # finished ones are not planned again. Skip those here, as the plan would.
        first_done: dict[str, int] = {}
        for index in sorted(done):
            first_done.setdefault(job_key(spec.targets[index]), index)
        indices: list[int] = []
        for index, target in enumerate(spec.targets):
            if index in done:
                continue
            if first_done.get(job_key(target), index) < index:
                collector.record(_duplicate(index, target))
                continue
            indices.append(index)
        plan = Plan([spec.targets[i] for i in indices], spec.query, spec.excluded)
        return await self._collect(collector, plan, policy, deadline, indices)

    async def _collect(
        self,
        collector: Collector,
        plan: Plan,
        policy: ErrorPolicy,
        deadline: float | None,
        indices: Sequence[int] | None = None,
    ) -> FanoutResult:
        """Run *plan* into *collector*; the result, also when cancelled or aborted."""
        runner = self._opened_runner()
        t0 = time.perf_counter()
        end: RunEnd | None = None
        _log.get_logger().debug(_log.FANOUT_STARTED, policy=str(policy), deadline=deadline)

        async def deliver(part: Part) -> None:
            del part  # recorded already; nobody streams here
            await collector.compact(runner.parse_limiter)
            await collector.flush()

        try:
            end = await _run(
                runner,
                plan,
                collector,
                deliver=deliver,
                policy=policy,
                deadline=deadline,
                indices=indices,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await collector.flush()  # recorded, not yet stored: a cancel loses nothing
            result = collector.result(end, time.perf_counter() - t0)
            self.last_result = result
            _log.get_logger().info(
                _log.FANOUT_DONE,
                services=len(result.outcomes),
                rows=result.rows,
                elapsed=round(result.elapsed, 3),
                complete=result.complete,
                reason=result.reason,
                **{status.value: n for status, n in result.counts().items()},
            )
        if end.aborted_by is not None:
            cause = end.aborted_by.outcome
            raise FanoutAborted(
                end.reason or "aborted",
                result=result,
                cause=ServiceError(
                    cause.message or "failed",
                    service=cause.service,
                    url=cause.url,
                    status=cause.http_status,
                ),
            )
        return result

    @asynccontextmanager
    async def stream(
        self,
        targets: Iterable[object] | SearchSpec,
        query: object = None,
        *,
        errors: str | ErrorPolicy | None = None,
        deadline: float | None = None,
        buffer: int = 64,
        coverage: bool = True,
    ) -> AsyncIterator[SweepStream]:
        """Run a fan-out and hand out each service's `Part` as soon as it finishes.

        ::


            async with engine.stream(services, cone) as parts:
                async for part in parts:
                    print(part.outcome.status, len(part.tables))

        A context manager (like ``httpx.AsyncClient.stream``) because the sweep runs in a
        task group that must end where it began: leaving the block early cancels what is
        still running, and ``parts.result()`` still holds everything received.

        Args:
            targets: As for `fanout`.
            query: As for `fanout`.
            errors: As for `fanout`; under ``abort`` the stream just ends early.
            deadline: As for `fanout`.
            buffer: Parts held when the consumer is slower than the services; beyond that,
                finished requests wait (backpressure) instead of piling up in memory.
            coverage: As for `fanout`.
        """
        runner = self._opened_runner()
        targets = await self._resolve(targets)
        excluded = await self._excluded(targets, query, coverage)
        plan, policy, deadline = self._prepare(targets, query, errors, deadline, excluded)
        collector = Collector()
        send, receive = anyio.create_memory_object_stream[Part](max(0, buffer))
        parts = SweepStream(receive, collector, time.perf_counter())

        async def deliver(part: Part) -> None:
            await collector.compact(runner.parse_limiter)
            # If the consumer left, the part is recorded all the same.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(part)

        async def drive() -> None:
            async with send:
                parts.end = await _run(
                    runner, plan, collector, deliver=deliver, policy=policy, deadline=deadline
                )

        try:
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(drive)
                try:
                    yield parts
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self.last_result = parts.result()


def _as_collection(targets: object) -> Iterable[object]:
    """*targets* as something to iterate: one resource or service stands for its interfaces.

    Raises:
        UsageError: A string (one URL is not a collection of them), or no iterable.
    """
    if isinstance(targets, (str, bytes)):
        raise UsageError("targets must be a collection of services, not a single string")
    if isinstance(targets, RegistryResource | Service) or is_single_target(targets):
        return [targets]
    if not isinstance(targets, Iterable):
        raise UsageError(f"targets must be iterable, got {type(targets).__name__}")
    return targets


def _duplicate(index: int, target: Service | Targeted | Skipped) -> Part:
    service = target.service if isinstance(target, Targeted | Skipped) else target
    return Part(
        index,
        ServiceOutcome(service=service, status=Status.SKIPPED, message=DUPLICATE),
    )


def _one_service(service: Service | str, protocol: Protocol) -> Service:
    if isinstance(service, Service):
        return service
    if isinstance(service, str):
        return coerce_service(service, protocol)
    raise UsageError(f"expected a vosweep.Service or a base URL, got {type(service).__name__}")


def _vosi_fetch(
    service: Service, suffix: str, parse: Callable[[bytes], Any]
) -> Generator[Step, Any, Any]:
    return _fetch_parsed(Request(url=service.access_url.rstrip("/") + suffix), parse)


def _fetch_parsed(request: Request, parse: Callable[[bytes], Any]) -> Generator[Step, Any, Any]:
    response = yield Send(request)
    value = yield Work(parse, (response.body,))
    return value


def _cached_capabilities(base_url: str) -> Generator[Step, Any, ServiceCapabilities | None]:
    # The very step TAP fan-outs use: same cache, same "missing means defaults" rule.
    found = yield Capabilities(base_url)
    capabilities: ServiceCapabilities | None = found
    return capabilities


async def _run(
    runner: Runner,
    plan: Plan,
    collector: Collector,
    *,
    deliver: Callable[[Part], Awaitable[None]],
    policy: ErrorPolicy,
    deadline: float | None,
    indices: Sequence[int] | None = None,
) -> RunEnd:
    record = collector.record
    if indices is not None:
        # A resumed run plans only the unfinished targets: report their original places.
        positions = indices

        def record(part: Part) -> None:
            part.index = positions[part.index]
            collector.record(part)

    return await runner.run(
        plan,
        record=record,
        deliver=deliver,
        policy=policy,
        deadline=deadline,
        remaining=plan.rest,
    )


async def fanout(
    targets: Iterable[object] | SearchSpec,
    query: object = None,
    *,
    config: EngineConfig | None = None,
    **kwargs: Any,
) -> FanoutResult:
    """One fan-out with a temporary `Engine` (for notebooks: ``await vosweep.fanout(...)``).

    Keyword arguments go to `Engine.fanout` (errors, deadline, on_part).
    """
    async with Engine(config) as engine:
        return await engine.fanout(targets, query, **kwargs)


def fanout_sync(
    targets: Iterable[object] | SearchSpec,
    query: object = None,
    *,
    config: EngineConfig | None = None,
    **kwargs: Any,
) -> FanoutResult:
    """`fanout` for plain scripts: runs its own event loop.

    Raises:
        UsageError: When called from a running event loop (Jupyter: use ``await fanout``).
        SweepInterrupted: On Ctrl-C; a `KeyboardInterrupt` whose ``result`` holds
            everything received before it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError(
            "fanout_sync() cannot run inside a running event loop (e.g. Jupyter); "
            "use 'await vosweep.fanout(...)' there"
        )
    engine = Engine(config)

    async def main() -> FanoutResult:
        async with engine:
            return await engine.fanout(targets, query, **kwargs)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt as exc:
        raise SweepInterrupted(engine.last_result) from exc
