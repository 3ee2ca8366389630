"""Schedule and fetch: run planned jobs under limits, breakers, retries and a deadline.

One dispatcher coroutine owns admission. It reads jobs lazily from the plan into per-host
queues, starts a task only when both the global and the host's limit have room, and is
woken whenever a task ends. So there are never more tasks than the global limit, never
more queued jobs than the lookahead allows, and a slow host's backlog never holds slots
another host could use.

Every finished job becomes a `Part` that is *recorded* synchronously (so nothing received
is lost when the fan-out is cancelled a moment later) and then *delivered* to a stream
consumer, whose bounded buffer applies backpressure.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import tenacity
from anyio.abc import TaskGroup

from vosweep import _log
from vosweep.errors import (
    CircuitOpen,
    NotSupported,
    ServiceError,
    ServiceTimeout,
    counts_against_host,
)
from vosweep.outcomes import Part, ServiceOutcome, Status
from vosweep.protocols.base import Parsed, QueryStatus, Request, Response, check_http_status
from vosweep.protocols.conversation import (
    Capabilities,
    Cleanup,
    Note,
    Now,
    Recall,
    Send,
    Sleep,
    Step,
    Work,
)
from vosweep.scheduling.breaker import BreakerBoard, BreakerState, CircuitBreaker
from vosweep.scheduling.capabilities import CapabilityCache
from vosweep.scheduling.limits import HostLimits
from vosweep.scheduling.plan import Job
from vosweep.scheduling.retry import RetryBudget, backoff, is_retryable

if TYPE_CHECKING:
    from vosweep.config import EngineConfig, ErrorPolicy
    from vosweep.protocols.vosi import ServiceCapabilities
    from vosweep.services import Service
    from vosweep.transport.base import Transport

__all__ = ["RunEnd", "Runner"]

#: Jobs planned per dispatcher step: planning 100,000 targets at once would block the loop.
_REFILL_BATCH = 64
#: Requests started per dispatcher step, for the same reason.
_START_BATCH = 16

Record = Callable[[Part], None]
Deliver = Callable[[Part], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended.

    Attributes:
        complete: Every job ran to its own end (no deadline, cancel or abort cut it short).
        reason: Why it was cut short, if it was.
        aborted_by: The part whose failure triggered the ``abort`` policy.
    """

    complete: bool
    reason: str | None = None
    aborted_by: Part | None = None


class Runner:
    """Executes jobs for one engine; limits, breakers and retry budgets outlive fan-outs.

    Sharing them across fan-outs is deliberate: two sweeps running at once on one engine
    still respect the per-host politeness cap together, and a host found dead a minute ago
    is not hammered again by the next sweep.
    """

    def __init__(self, transport: Transport, config: EngineConfig) -> None:
        self.transport = transport
        self.config = config
        self.limits = HostLimits(config.limits.total, config.limits.per_host)
        self.breakers = BreakerBoard(config.breaker)
        self.budget = RetryBudget(config.retry.host_budget_ratio, config.retry.host_budget_min)
        self.parse_limiter = anyio.CapacityLimiter(config.limits.parse_threads)
        self.capability_cache = CapabilityCache(config.tap.capabilities_ttl)
        #: What conversations learnt about services (`Note` / `Recall`).
        self.notes: dict[tuple[str, ...], object] = {}

    async def run(
        self,
        jobs: Iterator[Job],
        *,
        record: Record,
        deliver: Deliver,
        policy: ErrorPolicy,
        deadline: float | None,
        remaining: Callable[[], Iterator[Job]],
    ) -> RunEnd:
        """Run every job; return how the run ended.

        Args:
            jobs: The planned jobs, read lazily.
            record: Called synchronously with every part, including cancelled ones.
            deliver: Awaited with every part that finished normally (stream consumers).
            policy: The fan-out's error policy.
            deadline: Seconds for the whole run, or ``None``.
            remaining: Yields the jobs never read from *jobs*, to report them as cancelled.
        """
        dispatch = _Dispatch(self, jobs, record, deliver, policy)
        end: RunEnd | None = None
        try:
            with anyio.move_on_after(deadline if deadline is not None else float("inf")) as scope:
                await dispatch.run()
            if scope.cancelled_caught:
                end = RunEnd(complete=False, reason=f"fan-out deadline of {deadline} s reached")
            elif dispatch.abort_part is not None:
                failed = dispatch.abort_part.outcome
                end = RunEnd(
                    complete=False,
                    reason=f"aborted after {failed.service.label} failed: {failed.message}",
                    aborted_by=dispatch.abort_part,
                )
            else:
                end = RunEnd(complete=True)
        finally:
            # Runs on external cancellation too: synchronous, so it cannot be interrupted.
            reason = end.reason if end is not None else "fan-out cancelled"
            dispatch.cancel_rest(reason or "fan-out cancelled", remaining)
        return end

    async def execute(self, job: Job, policy: ErrorPolicy, slot: Slot | None = None) -> Part:
        """Send one job's request (retrying), falling over to mirror URLs if its host is down.

        The job's host slot (*slot*) is given back while it backs off between attempts and
        taken again before the next one, and given back for good once the body is in: a
        request sleeping on a Retry-After or waiting for the parser asks nothing of the
        server, and its slot is better used by another request meanwhile. When the access
        URL's host fails (unreachable, timed out, 5xx) and the service has mirrors
        (RegTAP 1.1 ``mirror_url``), the request moves on to the next mirror, taking a slot
        on that host; the outcome stays the registered service's.
        """
        started = anyio.current_time()
        current, current_slot = job, slot
        attempts = 0
        try:
            while True:
                part, host_failed, attempts = await self._attempt(
                    current, policy, current_slot, started, attempts
                )
                following = self.next_mirror(current) if host_failed else None
                if following is None:
                    return part
                _log.get_logger().info(
                    _log.FETCH_FAILOVER,
                    service=job.service.label,
                    failed=current.service.access_url,
                    mirror=following.service.access_url,
                )
                if current_slot is not None:
                    current_slot = current_slot.moved_to(following.host)
                    await current_slot.reacquire()
                current = following
        finally:
            if current_slot is not None and current_slot is not slot:
                current_slot.release()

    def next_mirror(self, job: Job) -> Job | None:
        """The job's next mirror whose host's breaker is not open, if any."""
        following = job.mirror()
        now = anyio.current_time()
        while following is not None and (
            self.breakers.state(following.host, now) is BreakerState.OPEN
        ):
            following = following.mirror()
        return following

    async def _attempt(
        self, job: Job, policy: ErrorPolicy, slot: Slot | None, started: float, attempts: int
    ) -> tuple[Part, bool, int]:
        """Send *job*'s request with retries, parse the answer off the loop, judge it.

        Returns:
            The part, whether it failed for a reason that condemns the host (so a mirror
            may do better), and the attempts made so far (*attempts* plus this URL's).
        """
        if job.request is None or job.spec is None:  # pragma: no cover - planner guarantees
            raise RuntimeError(f"job {job.index} has nothing to send")
        if job.spec.converse is not None:
            return await self._converse(job, policy, slot, started, attempts)
        request, spec = job.request, job.spec
        config = self.config
        breaker = self.breakers[job.host] if self.breakers.enabled else None
        run = _Conversation(self, job, policy, slot, breaker, attempts)
        try:
            response = await run.send(Send(request))
            if slot is not None:
                # The server's part is done: parsing must not hold its slot.
                slot.release()
            parsed = await anyio.to_thread.run_sync(
                spec.parse_response,
                response,
                config.limits.max_response_bytes,
                limiter=self.parse_limiter,
                abandon_on_cancel=True,
            )
        except ServiceError as exc:
            received = run.received
            status = Status.TIMEOUT if isinstance(exc, ServiceTimeout) else Status.ERROR
            outcome = ServiceOutcome(
                service=job.reported,
                status=status,
                attempts=run.attempts,
                elapsed=anyio.current_time() - started,
                bytes=len(received.body) if received is not None else 0,
                http_status=exc.status if exc.status is not None else _status_of(received),
                error_type=type(exc).__name__,
                message=exc.message,
                url=exc.url or (received.url if received is not None else request.url),
                failovers=job.failovers,
            )
            return Part(job.index, outcome), counts_against_host(exc), run.attempts
        outcome = _success(job, parsed, response, run.attempts, started)
        return Part(job.index, outcome, parsed.tables, parsed.datalink), False, run.attempts

    async def _converse(
        self, job: Job, policy: ErrorPolicy, slot: Slot | None, started: float, attempts: int
    ) -> tuple[Part, bool, int]:
        """Drive a protocol's conversation (see `vosweep.protocols.conversation`).

        Every `Send` gets the retry policy, breaker and budget of a single request; the
        host slot is held while requests run and given back while the conversation
        sleeps or works. Its `Cleanup` requests go out whatever happens: on success, on
        failure, and shielded from cancellation (bounded by ``tap.cleanup_timeout``).
        """
        if job.spec is None or job.spec.converse is None or job.request is None:
            raise RuntimeError(f"job {job.index} has no conversation")  # pragma: no cover
        breaker = self.breakers[job.host] if self.breakers.enabled else None
        run = _Conversation(self, job, policy, slot, breaker, attempts)
        try:
            parsed: Parsed = await run.drive(job.spec.converse(job.service, job.query, self.config))
        except ServiceError as exc:
            last = run.last
            status = _failure_status(exc)
            outcome = ServiceOutcome(
                service=job.reported,
                status=status,
                attempts=run.attempts,
                elapsed=anyio.current_time() - started,
                bytes=len(last.body) if last is not None else 0,
                http_status=exc.status if exc.status is not None else _status_of(last),
                error_type=type(exc).__name__,
                message=exc.message,
                url=exc.url or (last.url if last is not None else job.request.url),
                failovers=job.failovers,
            )
            # Only a failure before anything was created on the server may move to a mirror.
            host_failed = counts_against_host(exc) and not run.cleanups
            return Part(job.index, outcome), host_failed, run.attempts
        finally:
            await run.clean_up()
        if run.last is None:  # pragma: no cover - a conversation always sends
            raise RuntimeError("conversation ended without a response")
        outcome = _success(job, parsed, run.last, run.attempts, started)
        return Part(job.index, outcome, parsed.tables, parsed.datalink), False, run.attempts

    async def one_off(self, service: Service, conversation: Generator[Step, Any, Any]) -> Any:
        """Run a conversation outside any fan-out (capabilities, tables, service metadata).

        Same retries, breaker and cleanup as a fan-out's requests; no host slot is taken
        (one request does not need the politeness queue). Raises `ServiceError`.
        """
        job = Job(-1, service)
        breaker = self.breakers[service.host] if self.breakers.enabled else None
        run = _Conversation(self, job, self.config.errors, None, breaker, 0)
        try:
            return await run.drive(conversation)
        finally:
            await run.clean_up()

    def _retrying(
        self,
        job: Job,
        policy: ErrorPolicy,
        slot: Slot | None,
        breaker: CircuitBreaker | None,
        *,
        retry: bool = True,
    ) -> tenacity.AsyncRetrying:
        """The retry loop of one request: the error policy's attempts, backoff, budgets.

        A retry is refused once the host's breaker left CLOSED or its retry budget is
        spent; the host slot is given back while the retry backs off.
        """
        config = self.config
        host = job.host

        def should_retry(exc: BaseException) -> bool:
            if not retry or not is_retryable(exc, config.retry):
                return False
            if breaker is not None and breaker.state(anyio.current_time()) is not (
                BreakerState.CLOSED
            ):
                return False
            if not self.budget.try_spend(host):
                return False
            if slot is not None:
                slot.release()
            return True

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            _log.get_logger().debug(
                _log.FETCH_RETRY,
                service=job.service.label,
                host=host,
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep, 3),
                error=str(exc),
            )

        max_attempts = policy.attempts(config.retry)
        # Never start a wait that would end past the time budget.
        stop: tenacity.stop.stop_base = tenacity.stop_before_delay(config.retry.budget)
        if max_attempts is not None:
            stop = stop | tenacity.stop_after_attempt(max_attempts)
        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(should_retry),
            stop=stop,
            wait=lambda state: backoff(
                state.attempt_number,
                state.outcome.exception() if state.outcome is not None else None,
                config.retry,
            ),
            sleep=anyio.sleep,
            before_sleep=log_retry,
            reraise=True,
        )

    def _judge_host(
        self, breaker: CircuitBreaker | None, host: str, exc: ServiceError, *, repeated: bool
    ) -> None:
        """Tell *host*'s breaker about a failed attempt.

        A retry failing again (*repeated*) is not new evidence against the host: one
        broken service retried three times must not weigh like three services failing.
        """
        if breaker is None:
            return
        now = anyio.current_time()
        if counts_against_host(exc):
            if repeated:
                return
            was = breaker.state(now)
            breaker.record_failure(now, f"{type(exc).__name__}: {exc.message}")
            if was is BreakerState.CLOSED and breaker.state(now) is not BreakerState.CLOSED:
                _log.get_logger().warning(
                    _log.BREAKER_OPENED, host=host, reason=exc.message, cooldown=breaker.cooldown
                )
        else:
            # The host answered (a 4xx, a rate limit): it is alive.
            breaker.record_success(now)


def _stop_if_opened(breaker: CircuitBreaker | None, failed: ServiceError | None) -> None:
    """Before a retry: if the host's circuit opened during the backoff, end with the last error.

    The retry decision looked at the breaker before the pause; other requests to the
    host may have failed meanwhile, and a dead host must not get one more connection
    per waiting retry.
    """
    if (
        failed is not None
        and breaker is not None
        and breaker.state(anyio.current_time()) is BreakerState.OPEN
    ):
        raise failed


def _failure_status(exc: ServiceError) -> Status:
    if isinstance(exc, NotSupported):
        return Status.SKIPPED  # never asked: the service said it cannot
    return Status.TIMEOUT if isinstance(exc, ServiceTimeout) else Status.ERROR


def _status_of(response: Response | None) -> int | None:
    return response.status if response is not None else None


def _success(
    job: Job, parsed: Parsed, response: Response, attempts: int, started: float
) -> ServiceOutcome:
    rows = parsed.rows
    if parsed.status is QueryStatus.OVERFLOW:
        status = Status.OVERFLOW
    elif rows:
        status = Status.OK
    else:
        status = Status.EMPTY
    return ServiceOutcome(
        service=job.reported,
        status=status,
        rows=rows,
        attempts=attempts,
        elapsed=anyio.current_time() - started,
        bytes=len(response.body),
        http_status=response.status,
        message=parsed.message if status is Status.OVERFLOW else None,
        url=response.url,
        failovers=job.failovers,
    )


def _not_sent(job: Job, status: Status, message: str, error_type: str | None = None) -> Part:
    outcome = ServiceOutcome(
        service=job.reported,
        status=status,
        message=message,
        error_type=error_type,
        url=job.request.url if job.request is not None else None,
        failovers=job.failovers,
    )
    return Part(job.index, outcome)


class _Conversation:
    """The I/O side of one conversation: answers its steps (see `Runner._converse`)."""

    def __init__(  # noqa: PLR0917 - private, one call site
        self,
        runner: Runner,
        job: Job,
        policy: ErrorPolicy,
        slot: Slot | None,
        breaker: CircuitBreaker | None,
        attempts: int,
    ) -> None:
        self.runner = runner
        self.job = job
        self.policy = policy
        self.slot = slot
        self.breaker = breaker
        self.attempts = attempts
        self.last: Response | None = None
        #: The latest attempt's response, also one that failed its status check.
        self.received: Response | None = None
        #: Pending cleanups by key (see `Cleanup`).
        self.cleanups: dict[str, tuple[Request, ...]] = {}

    async def drive(self, conversation: Generator[Step, Any, Any]) -> Any:
        """Run *conversation* to its end; return its value (or raise its `ServiceError`).

        A step's `ServiceError` is thrown into the generator at its ``yield``, so the
        protocol code can handle it; if it does not, it comes out here.
        """
        answer: Any = None
        error: ServiceError | None = None
        try:
            while True:
                try:
                    step = (
                        conversation.throw(error)
                        if error is not None
                        else conversation.send(answer)
                    )
                except StopIteration as stop:
                    return stop.value
                answer, error = None, None
                try:
                    answer = await self.step(step)
                except ServiceError as exc:
                    error = exc
        finally:
            conversation.close()

    async def step(self, step: Step) -> Any:
        """Carry out *step*; return its answer (raises `ServiceError` into the generator)."""
        runner = self.runner
        if isinstance(step, Send):
            response = await self.send(step)
            if step.report:
                self.last = response
            return response
        if isinstance(step, Work):
            self._release()
            return await anyio.to_thread.run_sync(
                step.func, *step.args, limiter=runner.parse_limiter, abandon_on_cancel=True
            )
        if isinstance(step, Sleep):
            if not step.hold:
                self._release()
            await anyio.sleep(step.seconds)
            return None
        if isinstance(step, Capabilities):
            return await runner.capability_cache.get(
                step.base_url, lambda: self._fetch_capabilities(step.base_url)
            )
        if isinstance(step, Now):
            return anyio.current_time()
        if isinstance(step, Cleanup):
            if step.requests:
                self.cleanups[step.key] = step.requests
            else:
                self.cleanups.pop(step.key, None)
            return None
        if isinstance(step, Recall):
            return runner.notes.get(step.key)
        if isinstance(step, Note):
            runner.notes[step.key] = step.value
            return None
        raise TypeError(f"unknown conversation step {step!r}")  # pragma: no cover

    def _release(self) -> None:
        if self.slot is not None:
            self.slot.release()

    async def send(self, step: Send) -> Response:
        """One request, under the retry policy, the breaker and the retry budget."""
        runner, job = self.runner, self.job
        config = runner.config
        host = job.host
        timeouts = config.timeouts
        if step.extra_time > 0:
            timeouts = timeouts.model_copy(
                update={
                    name: value + step.extra_time
                    for name in ("read", "attempt")
                    if (value := getattr(timeouts, name)) is not None
                }
            )
        runner.budget.record_request(host)
        response: Response | None = None
        failed: ServiceError | None = None
        async for attempt in runner._retrying(
            job, self.policy, self.slot, self.breaker, retry=step.retry
        ):
            if self.slot is not None:
                await self.slot.reacquire()
            with attempt:
                _stop_if_opened(self.breaker, failed)
                self.attempts += 1
                self.received = None
                try:
                    response = self.received = await runner.transport.send(
                        step.request, timeouts=timeouts, max_bytes=config.limits.max_response_bytes
                    )
                    if response.status not in step.accept:
                        check_http_status(response)
                except ServiceError as exc:
                    runner._judge_host(self.breaker, host, exc, repeated=failed is not None)
                    failed = exc
                    _log.get_logger().debug(
                        _log.FETCH_FAILED,
                        service=job.service.label,
                        host=host,
                        url=step.request.url,
                        attempt=self.attempts,
                        error_type=type(exc).__name__,
                        error=str(exc),
                    )
                    raise
                if self.breaker is not None:
                    self.breaker.record_success(anyio.current_time())
        if response is None:  # pragma: no cover - tenacity returns only after a success
            raise RuntimeError("retry loop ended without a response")
        return response

    async def _fetch_capabilities(self, base_url: str) -> ServiceCapabilities | None:
        """Fetch and parse; None when the service has no usable document.

        A dead or hanging host is not "no capabilities": that failure ends the job at
        once, instead of costing a second timeout on the query itself.
        """
        from vosweep.protocols.tap import capabilities_request  # noqa: PLC0415
        from vosweep.protocols.vosi import parse_capabilities  # noqa: PLC0415

        try:
            response = await self.send(Send(capabilities_request(base_url), retry=False))
            self._release()
            return await anyio.to_thread.run_sync(
                parse_capabilities, response.body, limiter=self.runner.parse_limiter
            )
        except ServiceError as exc:
            if counts_against_host(exc):
                raise
            _log.get_logger().info(
                _log.CAPABILITIES_UNUSABLE, service=self.job.service.label, error=exc.message
            )
            return None

    async def clean_up(self) -> None:
        """Send the pending cleanups, shielded from cancellation and bounded in time."""
        if not self.cleanups:
            return
        config = self.runner.config
        with anyio.CancelScope(shield=True), anyio.move_on_after(config.tap.cleanup_timeout):
            for key, requests in list(self.cleanups.items()):
                if await self._clean(requests):
                    del self.cleanups[key]

    async def _clean(self, requests: tuple[Request, ...]) -> bool:
        """Try *requests* in turn until one is not refused; whether one succeeded."""
        runner, job = self.runner, self.job
        config = runner.config
        status = None
        for request in requests:
            try:
                response = await runner.transport.send(
                    request, timeouts=config.timeouts, max_bytes=64 * 1024
                )
            except ServiceError as exc:
                _log.get_logger().warning(
                    _log.CLEANUP_FAILED,
                    service=job.service.label,
                    url=request.url,
                    error=exc.message,
                )
                return False
            status = response.status
            if status < 400 or status == 404:
                # 404: already gone (destroyed, or never kept by the server).
                _log.get_logger().debug(
                    _log.CLEANUP_DONE, service=job.service.label, url=request.url
                )
                return True
        _log.get_logger().warning(
            _log.CLEANUP_FAILED,
            service=job.service.label,
            url=requests[0].url if requests else "",
            error=f"HTTP {status}",
        )
        return False


class Slot:
    """One job's hold on its host's concurrency slot."""

    __slots__ = ("_dispatch", "holding", "host")

    def __init__(self, dispatch: _Dispatch, host: str) -> None:
        self._dispatch = dispatch
        self.host = host
        self.holding = True

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self.holding:
            self.holding = False
            self._dispatch.release_slot(self.host)

    def moved_to(self, host: str) -> Slot:
        """Give this slot back and return an unheld one on *host* (a failover to a mirror)."""
        self.release()
        moved = Slot(self._dispatch, host)
        moved.holding = False
        return moved

    async def reacquire(self) -> None:
        """Take a slot again, waiting for one; waiting retries go before new requests."""
        if not self.holding:
            await self._dispatch.acquire_slot(self.host)
            self.holding = True


class _Dispatch:
    """One fan-out's admission loop (see the module docstring)."""

    def __init__(
        self,
        runner: Runner,
        jobs: Iterator[Job],
        record: Record,
        deliver: Deliver,
        policy: ErrorPolicy,
    ) -> None:
        self.runner = runner
        self.jobs = jobs
        self.record = record
        self.deliver = deliver
        self.policy = policy
        lookahead = runner.config.limits.lookahead
        self.soft_cap = lookahead
        self.hard_cap = 4 * lookahead
        # Jobs give their host slot back before parsing; this bounds those waiting for the
        # parser (and their bodies in memory) when the network outpaces the decoder.
        self.max_tasks = 2 * runner.config.limits.total
        self.queues: dict[str, deque[Job]] = {}
        # Hosts with queued jobs that may have room; ordered for round-robin fairness.
        self.ready: OrderedDict[str, None] = OrderedDict()
        self.buffered = 0
        self.exhausted = False
        self.in_flight: dict[int, Job] = {}
        self.probes: set[int] = set()
        self.pending_parts: list[Part] = []
        self.interrupted: list[Job] = []
        # Retrying jobs waiting to get their host slot back, served before new jobs.
        self.waiters: dict[str, deque[anyio.Event]] = {}
        self.abort_part: Part | None = None
        self.wake = anyio.Event()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                more = self._refill()
                more = self._dispatch(tg) or more
                await self._flush_pending()
                if self.abort_part is not None:
                    tg.cancel_scope.cancel()
                    return
                if self.exhausted and not self.buffered and not self.in_flight:
                    return
                if more or not self.in_flight:
                    # Planning and starting requests are CPU work: let the loop breathe
                    # between batches (100 connections opened at once stall it ~40 ms).
                    await anyio.lowlevel.checkpoint()
                    continue
                await self.wake.wait()
                self.wake = anyio.Event()

    def _refill(self) -> bool:
        """Read planned jobs into the host queues; True if stopped only by the batch size."""
        limits = self.runner.limits
        for _ in range(_REFILL_BATCH):
            if self.exhausted or self.buffered >= self.hard_cap:
                return False
            if self.buffered >= self.soft_cap and (not limits.has_global_room() or self.ready):
                # Past the soft cap, read on only while slots would otherwise sit idle.
                return False
            job = next(self.jobs, None)
            if job is None:
                self.exhausted = True
                return False
            if job.skip_reason is not None:
                self._finish_unsent(_not_sent(job, Status.SKIPPED, job.skip_reason))
                continue
            if self._breaker_state(job.host) is BreakerState.OPEN:
                rerouted = self.runner.next_mirror(job)
                if rerouted is None:
                    self._finish_unsent(self._circuit_open(job))
                    continue
                job = rerouted
            self._enqueue(job)
        return True

    def _enqueue(self, job: Job) -> None:
        host = job.host
        queue = self.queues.get(host)
        if queue is None:
            queue = self.queues[host] = deque()
        queue.append(job)
        self.buffered += 1
        self.ready[host] = None

    def _dispatch(self, tg: TaskGroup) -> bool:
        """Start what the limits allow; True if stopped only by the per-step start budget."""
        runner = self.runner
        limits = runner.limits
        budget = _START_BATCH
        for host in list(self.ready):
            if not limits.has_global_room() or len(self.in_flight) >= self.max_tasks:
                break
            if budget <= 0:
                return True
            waiting = self.waiters.get(host)
            while waiting and limits.can_start(host):
                limits.acquire(host)
                waiting.popleft().set()
            if waiting is not None and not waiting:
                del self.waiters[host]
            queue = self.queues.get(host)
            if queue is None:
                if host not in self.waiters or not limits.can_start(host):
                    del self.ready[host]
                continue
            state = self._breaker_state(host)
            if state is BreakerState.OPEN:
                while queue:
                    self.buffered -= 1
                    job = queue.popleft()
                    rerouted = runner.next_mirror(job)
                    if rerouted is None:
                        self._finish_unsent(self._circuit_open(job))
                    else:
                        self._enqueue(rerouted)
            elif state is BreakerState.HALF_OPEN:
                breaker = runner.breakers[host]
                if not breaker.probe_in_flight() and limits.can_start(host):
                    breaker.start_probe()
                    self._start(tg, queue.popleft(), probe=True)
                # Others wait for the probe's verdict; its end wakes us.
                if not queue:
                    del self.queues[host]
                if host not in self.waiters:
                    del self.ready[host]
                continue
            else:
                while (
                    queue
                    and budget > 0
                    and limits.can_start(host)
                    and len(self.in_flight) < self.max_tasks
                ):
                    self._start(tg, queue.popleft(), probe=False)
                    budget -= 1
            if not queue:
                del self.queues[host]
                if host not in self.waiters:
                    del self.ready[host]
            elif not limits.can_start(host) and limits.has_global_room():
                del self.ready[host]  # at its cap: a finishing job puts it back
            else:
                self.ready.move_to_end(host)
        return False

    def _start(self, tg: TaskGroup, job: Job, *, probe: bool) -> None:
        self.buffered -= 1
        self.runner.limits.acquire(job.host)
        self.in_flight[job.index] = job
        if probe:
            self.probes.add(job.index)
        tg.start_soon(self._run_job, job, name=f"vosweep:{job.service.label}")

    async def _run_job(self, job: Job) -> None:
        part: Part | None = None
        slot = Slot(self, job.host)
        try:
            part = await self.runner.execute(job, self.policy, slot)
        except anyio.get_cancelled_exc_class():
            # Reported by cancel_rest(), which knows why (deadline, abort, cancel).
            self.interrupted.append(job)
            raise
        finally:
            slot.release()
            self._job_ended(job, finished=part is not None)
        self.record(part)
        if self.policy.action == "abort" and part.outcome.status.failed and not self.abort_part:
            self.abort_part = part
            self.wake.set()
        await self.deliver(part)

    def release_slot(self, host: str) -> None:
        """A job gave its host slot back: the host may take more work."""
        self.runner.limits.release(host)
        if host in self.queues or host in self.waiters:
            self.ready[host] = None
        self.wake.set()

    async def acquire_slot(self, host: str) -> None:
        """Wait for a slot on *host* (for a retry); the dispatcher hands it over."""
        limits = self.runner.limits
        if limits.can_start(host) and not self.waiters.get(host):
            limits.acquire(host)
            return
        event = anyio.Event()
        self.waiters.setdefault(host, deque()).append(event)
        self.ready[host] = None
        self.wake.set()
        try:
            await event.wait()
        except anyio.get_cancelled_exc_class():
            if event.is_set():
                self.release_slot(host)  # handed over just as we were cancelled
            else:
                self.waiters[host].remove(event)
            raise

    def _job_ended(self, job: Job, *, finished: bool) -> None:
        host = job.host
        del self.in_flight[job.index]
        if job.index in self.probes:
            self.probes.discard(job.index)
            if not finished:
                # A cancelled probe proved nothing; let the next sweep probe again.
                self.runner.breakers[host].abandon_probe()
        if host in self.queues:
            self.ready[host] = None
        self.wake.set()

    def _breaker_state(self, host: str) -> BreakerState:
        return self.runner.breakers.state(host, anyio.current_time())

    def _circuit_open(self, job: Job) -> Part:
        breaker = self.runner.breakers[job.host]
        wait = max(0.0, breaker.retry_at() - anyio.current_time())
        message = (
            f"circuit open for host {job.host} after repeated failures "
            f"({breaker.last_error}); next probe in {wait:.0f} s"
        )
        return _not_sent(job, Status.SKIPPED, message, CircuitOpen.__name__)

    def _finish_unsent(self, part: Part) -> None:
        self.record(part)
        self.pending_parts.append(part)

    async def _flush_pending(self) -> None:
        while self.pending_parts:
            parts, self.pending_parts = self.pending_parts, []
            for part in parts:
                await self.deliver(part)

    def cancel_rest(self, reason: str, remaining: Callable[[], Iterator[Job]]) -> None:
        """Report every job that never got its own end as cancelled (synchronously)."""
        for job in self.interrupted:
            self.record(_not_sent(job, Status.CANCELLED, f"{reason} while the request ran"))
        self.interrupted.clear()
        for queue in self.queues.values():
            for job in queue:
                self.record(_not_sent(job, Status.CANCELLED, reason))
        self.queues.clear()
        self.ready.clear()
        self.buffered = 0
        if not self.exhausted:
            self.exhausted = True
            for job in remaining():
                status = Status.SKIPPED if job.skip_reason else Status.CANCELLED
                self.record(_not_sent(job, status, job.skip_reason or reason))
