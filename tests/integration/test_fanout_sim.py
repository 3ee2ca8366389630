"""The engine against the simulated VO, over real loopback HTTP.

Every behaviour a real service shows ends as the right outcome, no healthy service's row is
lost (counted against what the servers say they sent), and the server-side counters prove
the limits held.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import anyio
import numpy as np
import pytest
from aiohttp import web

import vosweep
from vosweep.testing import (
    DEFAULT_MIX,
    Behaviour,
    SimulatedVO,
    build_fleet,
    expected_rows,
    override_fleet,
)

pytestmark = pytest.mark.anyio

CONE = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)
FAST = vosweep.Timeouts(connect=1.0, read=1.0, attempt=1.5)

#: What each simulated behaviour must end as: (status, error type or None).
EXPECTED = {
    Behaviour.OK: ("ok", None),
    Behaviour.EMPTY: ("empty", None),
    Behaviour.HANG: ("timeout", "ServiceTimeout"),
    Behaviour.DRIP: ("timeout", "ServiceTimeout"),
    Behaviour.HTTP_500: ("error", "HTTPStatusError"),
    Behaviour.UNAVAILABLE: ("ok", None),
    Behaviour.RATE_LIMITED: ("ok", None),
    Behaviour.FLAKY: ("ok", None),
    Behaviour.RESET: ("error", "TransportError"),
    Behaviour.MALFORMED: ("error", "ResponseFormatError"),
    Behaviour.TRUNCATED: ("error", "TransportError"),
    Behaviour.QUERY_ERROR: ("error", "QueryRejected"),
    Behaviour.OVERFLOW: ("overflow", None),
    Behaviour.HTML_200: ("error", "ResponseFormatError"),
    Behaviour.REDIRECT: ("ok", None),
    Behaviour.REDIRECT_LOOP: ("error", "TooManyRedirects"),
    Behaviour.OVERSIZED: ("error", "ResponseTooLarge"),
    Behaviour.WRONG_CONTENT_TYPE: ("ok", None),
    Behaviour.GZIP: ("ok", None),
    Behaviour.CONFLICTING_TYPES: ("ok", None),
}


def engine(**overrides: object) -> vosweep.Engine:
    overrides.setdefault("timeouts", FAST)
    overrides.setdefault("user_agent_purpose", "test")
    return vosweep.Engine(**overrides)  # type: ignore[arg-type]


def every_behaviour_fleet() -> list:
    behaviours = list(Behaviour)
    fleet = build_fleet(len(behaviours) * 2, 3, seed=7, latency_median=0.02)
    changes = {}
    for i, behaviour in enumerate(behaviours * 2):
        change: dict[str, object] = {
            "behaviour": behaviour,
            "retry_after": 0.2,
            "size_bytes": 8 * 2**20,
            "max_hang": 30.0,
            "max_rows": 300,
            "density": 5_000.0,
        }
        if behaviour is Behaviour.EMPTY:
            change["density"] = 1.0
        changes[i] = change
    return override_fleet(fleet, services=changes)


async def test_every_behaviour_ends_as_the_right_outcome(no_backoff):
    """Each failure mode of real services maps to its outcome; healthy rows all arrive."""
    fleet = every_behaviour_fleet()
    limits = vosweep.Limits(max_response_bytes=2 * 2**20)
    breaker = vosweep.BreakerPolicy(enabled=False)
    retry = {"host_budget_min": 1000}  # budgets are tested apart; here every retry may run
    async with (
        SimulatedVO(fleet) as sim,
        engine(limits=limits, breaker=breaker, retry=retry) as e,
    ):
        result = await e.fanout(sim.targets(), CONE)
        stats = sim.stats()
    assert result.complete
    for spec, outcome in zip(fleet, result.outcomes, strict=True):
        status, error_type = EXPECTED[spec.profile.behaviour]
        assert (outcome.status.value, outcome.error_type) == (status, error_type), (
            spec.profile.behaviour,
            outcome,
        )
        if outcome.status.succeeded:
            served = stats.service(spec.index).rows_served
            assert outcome.rows == served, spec.profile.behaviour
            if spec.profile.behaviour is not Behaviour.OVERFLOW:
                assert outcome.rows == expected_rows(spec, CONE.ra, CONE.dec, CONE.radius)
    assert len(result.table) == sum(o.rows for o in result.outcomes)
    ids = result.table["id"]
    assert ids.dtype.kind == "U"  # harmonised: longs here, text there


async def test_transient_failures_are_retried_with_attempts_counted(no_backoff):
    """503/429/flaky services succeed after fail_times + 1 attempts; 500 stops at 3."""
    fleet = every_behaviour_fleet()
    # A host's retry budget (10 + 20% of its requests) could run out first, depending on
    # which of its failing services retries first: this test counts attempts, not budgets.
    retry = {"host_budget_min": 1000}
    async with SimulatedVO(fleet) as sim, engine(breaker={"enabled": False}, retry=retry) as e:
        result = await e.fanout(sim.targets(), CONE)
        stats = sim.stats()
    by_behaviour = {s.profile.behaviour: o for s, o in zip(fleet, result.outcomes, strict=False)}
    for behaviour in (Behaviour.UNAVAILABLE, Behaviour.RATE_LIMITED, Behaviour.FLAKY):
        assert by_behaviour[behaviour].attempts == 3
    assert by_behaviour[Behaviour.HTTP_500].attempts == 3
    for behaviour in (Behaviour.QUERY_ERROR, Behaviour.MALFORMED, Behaviour.HTML_200):
        assert by_behaviour[behaviour].attempts == 1
    assert by_behaviour[Behaviour.HANG].attempts == 1  # a hang costs one timeout, not three
    index = next(s.index for s in fleet if s.profile.behaviour is Behaviour.QUERY_ERROR)
    assert stats.service(index).requests == 1


async def test_retry_after_is_honoured_over_http():
    """A 503 with Retry-After: 0.6 s is retried no sooner than asked."""
    fleet = override_fleet(
        build_fleet(1, 1, latency_median=0.0),
        services={0: {"behaviour": "unavailable", "fail_times": 1, "retry_after": 0.6}},
    )
    async with SimulatedVO(fleet) as sim, engine() as e:
        t0 = time.perf_counter()
        result = await e.fanout(sim.targets(), CONE)
        elapsed = time.perf_counter() - t0
    assert result.outcomes[0].status.succeeded
    assert result.outcomes[0].attempts == 2
    assert 0.6 <= elapsed < 2.0


async def test_limits_hold_on_the_server_side():
    """The servers never see more than per_host at once per host, nor total overall."""
    fleet = build_fleet(240, 6, seed=3, latency_median=0.03)
    limits = vosweep.Limits(total=12, per_host=3)
    async with SimulatedVO(fleet) as sim, engine(limits=limits) as e:
        result = await e.fanout(sim.targets(), CONE)
        stats = sim.stats()
    assert result.counts()[vosweep.Status.OK] + result.counts()[vosweep.Status.EMPTY] == 240
    peaks = [h.max_in_flight for h in stats.hosts]
    assert max(peaks) == 3  # reached, never passed
    assert stats.max_in_flight == 12  # the global limit too, seen from the servers
    assert sum(h.requests for h in stats.hosts) == 240


async def test_dead_host_is_asked_a_bounded_number_of_times(no_backoff):
    """A host answering 500 to everything trips the breaker; the rest is skipped."""
    fleet = build_fleet(150, 3, seed=5, latency_median=0.01)
    fleet = override_fleet(fleet, hosts={0: Behaviour.HTTP_500})
    on_dead = sum(1 for s in fleet if s.host_index == 0)
    policy = vosweep.BreakerPolicy(failure_threshold=5, cooldown=60)
    async with SimulatedVO(fleet) as sim, engine(breaker=policy) as e:
        result = await e.fanout(sim.targets(), CONE)
        dead = sim.stats().host(0)
    per_host, attempts = 5, 3
    assert dead.requests <= policy.failure_threshold + per_host * attempts
    skipped = [o for o in result.outcomes if o.status is vosweep.Status.SKIPPED]
    assert len(skipped) >= on_dead - 10
    assert all(o.error_type == "CircuitOpen" for o in skipped)
    healthy = [o for s, o in zip(fleet, result.outcomes, strict=True) if s.host_index != 0]
    assert all(o.status.succeeded for o in healthy)


async def test_refused_connections_on_a_dead_host(no_backoff):
    """Connection refused is a transport error, retried, then the breaker stops it."""
    fleet = build_fleet(40, 2, seed=2, latency_median=0.01)
    async with SimulatedVO(fleet, dead_hosts=[1]) as sim, engine() as e:
        result = await e.fanout(sim.targets(), CONE)
    on_dead = [o for s, o in zip(fleet, result.outcomes, strict=True) if s.host_index == 1]
    assert {o.status for o in on_dead} <= {vosweep.Status.ERROR, vosweep.Status.SKIPPED}
    assert any(o.error_type == "TransportError" for o in on_dead)
    assert "cannot connect" in next(o.message for o in on_dead if o.error_type)


async def test_deadline_keeps_answers_and_closes_connections():
    """A deadline cuts hung services within a second and loses none of the answers."""
    fleet = build_fleet(30, 3, seed=11, latency_median=0.02)
    fleet = override_fleet(fleet, services=dict.fromkeys(range(0, 30, 5), Behaviour.HANG))
    timeouts = vosweep.Timeouts(attempt=60, read=60, connect=5)
    async with SimulatedVO(fleet) as sim:
        async with engine(timeouts=timeouts) as e:
            t0 = time.perf_counter()
            result = await e.fanout(sim.targets(), CONE, deadline=0.8)
            elapsed = time.perf_counter() - t0
            stats = sim.stats()
        assert elapsed < 0.8 + 1.0
        assert not result.complete
        counts = result.counts()
        assert counts[vosweep.Status.CANCELLED] == 6
        received = sum(o.rows for o in result.outcomes)
        served = sum(s.rows_served for s in stats.services)
        assert received == served == len(result.table)
        await anyio.sleep(0.2)
        after = sim.stats()
        assert after.in_flight == 0  # the servers saw the hung requests go away
        assert sum(h.open_connections for h in after.hosts) == 0


async def test_task_cancellation_is_prompt_and_leaks_nothing():
    """Cancelling the caller's task stops everything within a second; no task is left."""
    fleet = override_fleet(
        build_fleet(20, 4, seed=4, latency_median=0.01),
        services=dict.fromkeys(range(10, 20), Behaviour.DRIP),
    )
    before = set(asyncio.all_tasks())
    async with SimulatedVO(fleet) as sim:
        e = engine(timeouts=vosweep.Timeouts(attempt=60, read=30, connect=5))
        async with e:
            t0 = time.perf_counter()
            with anyio.move_on_after(0.7):
                await e.fanout(sim.targets(), CONE)
            assert time.perf_counter() - t0 < 0.7 + 1.0
        result = e.last_result
        assert result is not None
        assert Counter(o.status.value for o in result.outcomes)["cancelled"] == 10
        await anyio.sleep(0.2)
        assert sim.stats().in_flight == 0
    leftover = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()}
    assert not leftover


async def test_drip_costs_at_most_the_attempt_timeout():
    """A server dripping bytes forever is cut at the attempt timeout."""
    fleet = override_fleet(
        build_fleet(1, 1), services={0: {"behaviour": "drip", "drip_interval": 0.1}}
    )
    timeouts = vosweep.Timeouts(connect=1, read=0.5, attempt=1.0)
    async with SimulatedVO(fleet) as sim, engine(timeouts=timeouts) as e:
        t0 = time.perf_counter()
        result = await e.fanout(sim.targets(), CONE)
    assert time.perf_counter() - t0 < 1.8
    assert result.outcomes[0].status is vosweep.Status.TIMEOUT


async def test_stream_yields_parts_as_they_arrive():
    """Parts stream out before the slowest service answers."""
    fleet = build_fleet(12, 3, seed=9, latency_median=0.01)
    fleet = override_fleet(fleet, services={0: {"latency": 0.8}})
    async with SimulatedVO(fleet) as sim, engine() as e:
        t0 = time.perf_counter()
        async with e.stream(sim.targets(), CONE) as parts:
            arrivals = [(part.index, time.perf_counter() - t0) async for part in parts]
        result = parts.result()
    assert arrivals[-1][0] == 0
    assert all(t < 0.6 for i, t in arrivals if i != 0)
    assert result.complete
    assert len(result.outcomes) == 12


async def test_abort_policy_over_http(no_backoff):
    """abort stops at the first failure; the partial result travels with the exception."""
    fleet = build_fleet(30, 3, seed=12, latency_median=0.05)
    fleet = override_fleet(fleet, services={10: Behaviour.QUERY_ERROR})
    async with SimulatedVO(fleet) as sim, engine() as e:
        with pytest.raises(vosweep.FanoutAborted) as info:
            await e.fanout(sim.targets(), CONE, errors="abort")
    result = info.value.result
    assert result.outcomes[10].error_type == "QueryRejected"
    assert not result.complete
    assert "scs-00010" in str(info.value)


async def test_user_agent_and_gzip_are_sent():
    """Requests carry the IVOA softid User-Agent and accept gzip."""
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.Response(text="<VOTABLE/>", content_type="text/xml")

    app = web.Application()
    app.router.add_get("/scs", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with engine() as e:
            result = await e.fanout([vosweep.Service.scs(f"http://127.0.0.1:{port}/scs")], CONE)
    finally:
        await runner.cleanup()
    assert result.outcomes[0].status is vosweep.Status.EMPTY
    assert seen["User-Agent"].startswith("vosweep/")
    assert "(IVOA-test)" in seen["User-Agent"]
    assert "gzip" in seen["Accept-Encoding"]


async def test_partial_results_are_what_the_servers_sent():
    """A realistic mixed fleet: every healthy service's rows are in the merged table."""
    fleet = build_fleet(120, 5, seed=21, latency_median=0.02, mix=DEFAULT_MIX)
    fleet = [
        s.model_copy(
            update={"profile": s.profile.model_copy(update={"retry_after": 0.1, "max_hang": 10.0})}
        )
        for s in fleet
    ]
    limits = vosweep.Limits(max_response_bytes=4 * 2**20)
    async with SimulatedVO(fleet) as sim, engine(limits=limits) as e:
        result = await e.fanout(sim.targets(), CONE)
        stats = sim.stats()
    served = {s.index: s.rows_served for s in stats.services}
    for spec, outcome in zip(fleet, result.outcomes, strict=True):
        if outcome.status.succeeded:
            assert outcome.rows == served[spec.index]
    table = result.table
    per_service = Counter(table["service_name"])
    for spec, outcome in zip(fleet, result.outcomes, strict=True):
        assert per_service.get(spec.name, 0) == (outcome.rows if outcome.status.succeeded else 0)
    assert np.all(np.isfinite(table["ra"]))
