"""The scheduler, driven through the mock transport: limits, retries, breakers, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

import vosweep
from vosweep import _log
from vosweep.errors import TransportError
from vosweep.protocols.base import Request, Response
from vosweep.transport import MockTransport

pytestmark = pytest.mark.anyio

CONE = vosweep.Cone(ra=10, dec=20, radius=0.1)


def votable(rows: int, status: str = "OK", message: str = "") -> bytes:
    """A minimal SCS answer with *rows* rows."""
    trs = "".join(f"<TR><TD>{i}</TD><TD>{i * 0.5}</TD></TR>" for i in range(rows))
    return (
        '<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE type="results"><INFO name="QUERY_STATUS" value="{status}">{message}</INFO>'
        '<TABLE><FIELD name="id" datatype="long"/><FIELD name="ra" datatype="double" unit="deg"/>'
        f"<DATA><TABLEDATA>{trs}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


def ok(request: Request, rows: int = 2) -> Response:
    return Response(url=request.url, status=200, body=votable(rows), content_type="text/xml")


def services(n: int, hosts: int = 1, prefix: str = "h") -> list[vosweep.Service]:
    return [
        vosweep.Service.scs(f"http://{prefix}{i % hosts}.test/scs/{i}", name=f"s{i}")
        for i in range(n)
    ]


def engine(handler: Callable[[Request], object], **overrides: object) -> vosweep.Engine:
    overrides.setdefault("user_agent_purpose", "test")
    return vosweep.Engine(transport=MockTransport(handler), **overrides)  # type: ignore[arg-type]


class Tracker:
    """Counts concurrent requests per host inside the mock handler."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total_now = 0
        self.total_peak = 0

    async def __call__(self, request: Request) -> Response:
        host = request.url.split("/")[2]
        self.now[host] += 1
        self.total_now += 1
        self.peak[host] = max(self.peak[host], self.now[host])
        self.total_peak = max(self.total_peak, self.total_now)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.now[host] -= 1
            self.total_now -= 1
        return ok(request)


class TestLimits:
    async def test_per_host_and_global_caps_hold_and_are_used(self):
        """No host ever sees more than per_host requests, nor all hosts more than total."""
        tracker = Tracker()
        limits = vosweep.Limits(total=12, per_host=3)
        async with engine(tracker, limits=limits) as e:
            result = await e.fanout(services(200, hosts=8), CONE)
        assert result.counts()[vosweep.Status.OK] == 200
        assert max(tracker.peak.values()) == 3
        assert tracker.total_peak == 12

    async def test_statistics_report_peaks(self):
        """Engine statistics expose the peaks the limiter saw."""
        tracker = Tracker()
        async with engine(tracker, limits=vosweep.Limits(total=50, per_host=4)) as e:
            await e.fanout(services(40, hosts=2), CONE)
            stats = e.statistics().limits
        assert stats.in_flight == 0
        assert stats.peak_by_host == {"h0.test": 4, "h1.test": 4}

    async def test_slow_host_does_not_block_others(self):
        """A big slow host's backlog never holds the slots other hosts could use."""
        done: dict[str, float] = {}
        t0 = time.perf_counter()

        async def handler(request: Request) -> Response:
            host = request.url.split("/")[2]
            await anyio.sleep(0.05 if host == "big.test" else 0.001)
            done[host] = time.perf_counter() - t0
            return ok(request)

        targets = services(100, prefix="big") + services(20, hosts=4, prefix="small")
        async with engine(handler, limits=vosweep.Limits(total=10, per_host=2)) as e:
            await e.fanout(targets, CONE)
        slow_end = done["big0.test"]
        assert all(done[f"small{i}.test"] < slow_end / 4 for i in range(4))

    async def test_lazy_admission(self):
        """A huge target generator is read only a bounded way ahead; tasks stay bounded."""
        read = 0
        max_tasks = 0
        max_ahead = 0
        started = 0

        def targets():
            nonlocal read
            for i in range(1500):
                read += 1
                yield vosweep.Service.scs(f"http://h{i % 7}.test/{i}")

        async def handler(request: Request) -> Response:
            nonlocal max_tasks, max_ahead, started
            started += 1
            max_tasks = max(max_tasks, len(asyncio.all_tasks()))
            max_ahead = max(max_ahead, read - started)
            await anyio.lowlevel.checkpoint()
            return ok(request, rows=0)

        limits = vosweep.Limits(total=8, per_host=2, lookahead=50)
        async with engine(handler, limits=limits) as e:
            result = await e.fanout(targets(), CONE)
        assert len(result.outcomes) == 1500
        assert max_ahead <= 4 * 50 + 8
        # 8 requests plus at most 8 answers waiting for the parser, the test, the dispatcher.
        assert max_tasks <= 2 * 8 + 5


class TestRetries:
    async def test_transient_then_ok(self, no_backoff):
        """503 twice then success: ok after 3 attempts."""
        calls: Counter[str] = Counter()

        def handler(request: Request) -> Response:
            calls[request.url] += 1
            if calls[request.url] <= 2:
                return Response(url=request.url, status=503)
            return ok(request)

        async with engine(handler) as e:
            result = await e.fanout(services(1), CONE)
        (outcome,) = result.outcomes
        assert outcome.status is vosweep.Status.OK
        assert outcome.attempts == 3

    @pytest.mark.parametrize(
        ("response", "error_type"),
        [
            (Response(url="u", status=404), "HTTPStatusError"),
            (Response(url="u", status=200, body=votable(0, "ERROR", "bad SR")), "QueryRejected"),
            (
                Response(url="u", status=200, body=b"<html><body>oops</body></html>"),
                "ResponseFormatError",
            ),
        ],
    )
    async def test_permanent_failures_are_not_retried(self, no_backoff, response, error_type):
        """4xx, QUERY_STATUS=ERROR and malformed bodies are tried once."""
        async with engine(lambda _request: response) as e:
            result = await e.fanout(services(1), CONE)
        (outcome,) = result.outcomes
        assert outcome.status is vosweep.Status.ERROR
        assert outcome.attempts == 1
        assert outcome.error_type == error_type

    async def test_retry_after_is_honoured(self):
        """429 with Retry-After: 1 waits about a second, then succeeds."""
        calls = 0

        def handler(request: Request) -> Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                return Response(url=request.url, status=429, headers={"retry-after": "1"})
            return ok(request)

        t0 = time.perf_counter()
        async with engine(handler, retry=vosweep.RetryPolicy(wait_jitter=0)) as e:
            result = await e.fanout(services(1), CONE)
        elapsed = time.perf_counter() - t0
        assert result.outcomes[0].status is vosweep.Status.OK
        assert result.outcomes[0].attempts == 2
        assert 1.0 <= elapsed < 2.0

    async def test_backoff_gives_the_host_slot_away(self):
        """While one request waits out a Retry-After, its host slot serves others."""
        finished: dict[int, float] = {}
        calls: Counter[int] = Counter()
        t0 = time.perf_counter()

        async def handler(request: Request) -> Response:
            index = int(request.url.split("/scs/")[1].split("?")[0])
            calls[index] += 1
            await anyio.sleep(0.05)
            if index == 0 and calls[index] == 1:
                return Response(url=request.url, status=503, headers={"retry-after": "1"})
            finished[index] = time.perf_counter() - t0
            return ok(request)

        limits = vosweep.Limits(per_host=1)
        async with engine(handler, limits=limits, retry=vosweep.RetryPolicy(wait_jitter=0)) as e:
            result = await e.fanout(services(6), CONE)
            peak = e.statistics().limits.peak_by_host
        assert all(o.status is vosweep.Status.OK for o in result.outcomes)
        assert max(finished[i] for i in range(1, 6)) < 0.8  # done during the 1 s wait
        assert finished[0] >= 1.0
        assert peak == {"h0.test": 1}

    async def test_error_policy_retry_n(self, no_backoff):
        """retry5 allows 6 attempts."""
        sent = 0

        def handler(request: Request) -> Response:
            nonlocal sent
            sent += 1
            return Response(url=request.url, status=500)

        async with engine(handler, breaker=vosweep.BreakerPolicy(enabled=False)) as e:
            result = await e.fanout(services(1), CONE, errors="retry5")
        assert result.outcomes[0].attempts == 6
        assert sent == 6

    async def test_host_retry_budget(self, no_backoff):
        """A failing host gets min + ratio*requests retries in all, not attempts*requests."""
        sent = 0

        def handler(request: Request) -> Response:
            nonlocal sent
            sent += 1
            return Response(url=request.url, status=500)

        retry = vosweep.RetryPolicy(host_budget_min=4, host_budget_ratio=0.0)
        async with engine(handler, retry=retry, breaker=vosweep.BreakerPolicy(enabled=False)) as e:
            result = await e.fanout(services(30), CONE)
        assert sent == 30 + 4
        assert all(o.status is vosweep.Status.ERROR for o in result.outcomes)


class TestBreaker:
    async def test_dead_host_gets_a_bounded_number_of_requests(self, no_backoff):
        """After the threshold, the dead host's remaining services are skipped, not sent."""
        sent: Counter[str] = Counter()

        def handler(request: Request) -> Response:
            host = request.url.split("/")[2]
            sent[host] += 1
            if host == "dead.test":
                raise TransportError("connection refused", url=request.url)
            return ok(request)

        targets = services(200, prefix="dead") + services(50, hosts=5, prefix="live")
        targets = [
            vosweep.Service.scs(s.access_url.replace("dead0", "dead"), name=s.name) for s in targets
        ]
        policy = vosweep.BreakerPolicy(failure_threshold=5, cooldown=60)
        async with engine(handler, breaker=policy) as e:
            result = await e.fanout(targets, CONE)
            snapshot = e.statistics().breakers
        per_host, attempts = 5, 3
        assert sent["dead.test"] <= policy.failure_threshold + per_host * attempts
        by_status = Counter(o.status for o in result.outcomes if "dead" in o.service.access_url)
        assert by_status[vosweep.Status.SKIPPED] >= 200 - 10
        skipped = next(o for o in result.outcomes if o.status is vosweep.Status.SKIPPED)
        assert skipped.error_type == "CircuitOpen"
        assert "circuit open for host dead.test" in (skipped.message or "")
        assert result.counts()[vosweep.Status.OK] == 50
        assert [b.host for b in snapshot] == ["dead.test"]

    async def test_half_open_probe_recovers(self, no_backoff):
        """Once the cooldown passes, one probe goes out; its success reopens the host."""
        healthy = False

        def handler(request: Request) -> Response:
            if not healthy:
                raise TransportError("refused", url=request.url)
            return ok(request)

        policy = vosweep.BreakerPolicy(failure_threshold=2, cooldown=0.2)
        async with engine(handler, breaker=policy) as e:
            first = await e.fanout(services(20), CONE)
            assert first.counts()[vosweep.Status.SKIPPED] > 0
            healthy = True
            again = await e.fanout(services(20, prefix="h"), CONE)
            assert again.counts()[vosweep.Status.SKIPPED] == 20  # still open
            await anyio.sleep(0.25)
            third = await e.fanout(services(20), CONE)
        assert third.counts()[vosweep.Status.OK] == 20


class TestCancellation:
    @staticmethod
    def hanging(slow: set[int]) -> Callable[[Request], object]:
        async def handler(request: Request) -> Response:
            index = int(request.url.split("/scs/")[1].split("?")[0])
            if index in slow:
                await anyio.sleep(3600)
            return ok(request)

        return handler

    async def test_deadline_keeps_what_arrived(self):
        """At the deadline, hung requests end as cancelled and every answer is kept."""
        t0 = time.perf_counter()
        async with engine(self.hanging({3, 7})) as e:
            result = await e.fanout(services(10, hosts=5), CONE, deadline=0.3)
        assert time.perf_counter() - t0 < 1.0
        assert not result.complete
        assert "deadline" in (result.reason or "")
        statuses = [o.status for o in result.outcomes]
        assert statuses.count(vosweep.Status.OK) == 8
        assert statuses[3] is statuses[7] is vosweep.Status.CANCELLED
        assert len(result.table) == 16

    async def test_deadline_reports_unread_targets(self):
        """Targets never admitted before the deadline still get a cancelled outcome."""
        limits = vosweep.Limits(total=1, per_host=1, lookahead=1)
        async with engine(self.hanging({0}), limits=limits) as e:
            result = await e.fanout(services(50), CONE, deadline=0.2)
        assert len(result.outcomes) == 50
        assert {o.status for o in result.outcomes} == {vosweep.Status.CANCELLED}

    async def test_cancelling_the_caller(self):
        """Cancelling fan-out stops promptly; last_result keeps the answers; no task leaks."""
        before = set(asyncio.all_tasks())
        e = engine(self.hanging(set(range(5, 10))))
        t0 = time.perf_counter()
        async with e:
            with anyio.move_on_after(0.3):
                await e.fanout(services(10, hosts=10), CONE)
        assert time.perf_counter() - t0 < 1.0
        result = e.last_result
        assert result is not None
        assert not result.complete
        assert [o.status.value for o in result.outcomes] == ["ok"] * 5 + ["cancelled"] * 5
        assert len(result.table) == 10
        await anyio.lowlevel.checkpoint()
        assert set(asyncio.all_tasks()) <= before | {asyncio.current_task()}

    async def test_abort_policy(self, no_backoff):
        """abort: the first failure stops everything; the exception carries the partial result."""

        async def handler(request: Request) -> Response:
            index = int(request.url.split("/scs/")[1].split("?")[0])
            if index == 4:
                await anyio.sleep(0.05)
                return Response(url=request.url, status=404)
            if index >= 6:
                await anyio.sleep(3600)
            return ok(request)

        async with engine(handler) as e:
            with pytest.raises(vosweep.FanoutAborted) as info:
                await e.fanout(services(10, hosts=10), CONE, errors="abort")
        result = info.value.result
        assert "s4" in str(info.value)
        statuses = [o.status.value for o in result.outcomes]
        assert statuses[:4] == ["ok"] * 4
        assert statuses[4] == "error"
        assert set(statuses[6:]) == {"cancelled"}
        assert len(result.table) == 8 + (2 if statuses[5] == "ok" else 0)


class TestStream:
    async def test_parts_arrive_as_services_finish(self):
        """Fast services come out first; the stream ends with every part delivered."""

        async def handler(request: Request) -> Response:
            index = int(request.url.split("/scs/")[1].split("?")[0])
            await anyio.sleep(0.1 if index == 0 else 0.0)
            return ok(request)

        async with engine(handler) as e, e.stream(services(5, hosts=5), CONE) as parts:
            seen = [part.index async for part in parts]
            result = parts.result()
        assert seen[-1] == 0
        assert sorted(seen) == list(range(5))
        assert result.complete
        assert len(result.table) == 10

    async def test_leaving_early_cancels_the_rest(self):
        """Breaking out of the stream cancels the requests still running."""
        async with engine(TestCancellation.hanging({1, 2, 3})) as e:
            async with e.stream(services(4, hosts=4), CONE) as parts:
                async for part in parts:
                    assert part.index == 0
                    break
            result = parts.result()
            assert [o.status.value for o in result.outcomes] == ["ok"] + ["cancelled"] * 3
            assert e.last_result is not None


class TestReporting:
    async def test_one_canonical_event_per_service(self, events):
        """Each service logs exactly one vosweep.service.done event with its outcome."""
        async with engine(ok) as e:
            await e.fanout(services(6, hosts=2), CONE)
        done = [ev for ev in events if ev["event"] == _log.SERVICE_DONE]
        assert len(done) == 6
        assert {ev["status"] for ev in done} == {"ok"}
        assert all(ev["rows"] == 2 and ev["attempts"] == 1 for ev in done)
        assert any(ev["event"] == _log.FANOUT_DONE and ev["ok"] == 6 for ev in events)

    async def test_summary_and_outcomes_table(self, no_backoff):
        """summary() counts statuses and names failures; outcomes_table has one row each."""

        def handler(request: Request) -> Response:
            if "/scs/1" in request.url:
                return Response(url=request.url, status=404)
            return ok(request)

        async with engine(handler) as e:
            result = await e.fanout(services(3), CONE)
        text = result.summary()
        assert "3 services, 4 rows" in text
        assert "s1" in text
        assert "HTTP 404" in text
        assert "s1" not in result.summary(failures=0)
        table = result.outcomes_table()
        assert list(table["status"]) == ["ok", "error", "ok"]
        assert "ok=2" in repr(result)


class TestUsage:
    async def test_bad_targets_fail_before_any_request(self):
        """A bad target in a list is a UsageError naming it; nothing is sent."""
        transport = MockTransport(ok)
        async with vosweep.Engine(transport=transport) as e:
            with pytest.raises(vosweep.UsageError, match="target #1"):
                await e.fanout([services(1)[0], 42], CONE)
            with pytest.raises(vosweep.UsageError, match="single string"):
                await e.fanout("http://h.test/", CONE)
            with pytest.raises(vosweep.UsageError, match="error policy"):
                await e.fanout(services(1), CONE, errors="explode")
        assert transport.requests == []

    async def test_engine_lifecycle(self):
        """Unopened and closed engines refuse work; an engine opens once."""
        e = engine(ok)
        with pytest.raises(vosweep.UsageError, match="not opened"):
            await e.fanout(services(1), CONE)
        async with e:
            pass
        with pytest.raises(vosweep.UsageError, match="closed"):
            await e.fanout(services(1), CONE)
        with pytest.raises(vosweep.UsageError, match="only once"):
            async with e:
                pass

    async def test_fanout_sync_refuses_running_loop(self):
        """fanout_sync inside a running loop points to await fanout."""
        with pytest.raises(vosweep.UsageError, match=r"await vosweep\.fanout"):
            vosweep.fanout_sync(services(1), CONE)

    async def test_duplicates_reported_once_queried_once(self):
        """A duplicated access URL is sent once and the copy reported as skipped."""
        transport = MockTransport(ok)
        svc = services(1)[0]
        async with vosweep.Engine(transport=transport) as e:
            result = await e.fanout([svc, svc], CONE)
        assert len(transport.requests) == 1
        assert [o.status.value for o in result.outcomes] == ["ok", "skipped"]


class TestMirrors:
    """RegTAP 1.1 mirror URLs: an unreachable access URL hands its request to a mirror."""

    @staticmethod
    def mirrored(n: int = 1) -> list[vosweep.Service]:
        return [
            vosweep.Service.scs(
                f"http://down.test/scs/{i}",
                name=f"m{i}",
                mirrors=(f"http://alsodown.test/scs/{i}", f"http://up.test/scs/{i}"),
            )
            for i in range(n)
        ]

    async def test_dead_host_falls_over_to_the_first_mirror_that_answers(self):
        """Refused connections move the request on; the outcome is the registered service's."""
        seen: list[str] = []

        def handler(request: Request) -> Response:
            seen.append(request.url.split("/")[2])
            if "up.test" not in request.url:
                raise TransportError("connection refused", url=request.url)
            return ok(request, rows=3)

        targets = self.mirrored()
        async with engine(handler, retry=vosweep.RetryPolicy(attempts=1)) as e:
            result = await e.fanout(targets, CONE)
        (outcome,) = result.outcomes
        assert outcome.status is vosweep.Status.OK
        assert outcome.rows == 3
        assert outcome.service == targets[0]
        assert outcome.url is not None
        assert outcome.url.startswith("http://up.test/scs/0?")
        assert outcome.failovers == ("http://down.test/scs/0", "http://alsodown.test/scs/0")
        assert outcome.attempts == 3
        assert seen == ["down.test", "alsodown.test", "up.test"]
        assert len(result.table) == 3

    async def test_every_mirror_down_reports_the_last_error(self):
        """With all URLs dead the service fails once, listing every URL given up on."""

        def handler(request: Request) -> Response:
            raise TransportError("connection refused", url=request.url)

        service = vosweep.Service.scs("http://a.test/s", mirrors=("http://b.test/s",))
        async with engine(handler, retry=vosweep.RetryPolicy(attempts=1)) as e:
            result = await e.fanout([service], CONE)
        (outcome,) = result.outcomes
        assert outcome.status is vosweep.Status.ERROR
        assert outcome.error_type == "TransportError"
        assert outcome.failovers == ("http://a.test/s",)
        assert outcome.url is not None
        assert outcome.url.startswith("http://b.test/s")

    async def test_service_answers_are_not_failed_over(self):
        """A refused query or a broken VOTable is the service's answer: no mirror is asked."""
        asked: list[str] = []

        def handler(request: Request) -> Response:
            asked.append(request.url)
            body = votable(0, status="ERROR", message="bad RA")
            return Response(url=request.url, status=200, body=body, content_type="text/xml")

        service = vosweep.Service.scs("http://a.test/s", mirrors=("http://b.test/s",))
        async with engine(handler) as e:
            result = await e.fanout([service], CONE)
        assert result.outcomes[0].status is vosweep.Status.ERROR
        assert result.outcomes[0].failovers == ()
        assert len(asked) == 1

    async def test_open_breaker_sends_queued_requests_to_mirrors(self):
        """Once a host's breaker opens, its remaining requests go to their mirrors unsent."""
        per_host: Counter[str] = Counter()

        def handler(request: Request) -> Response:
            host = request.url.split("/")[2]
            per_host[host] += 1
            if host == "down.test":
                raise TransportError("connection refused", url=request.url)
            return ok(request)

        targets = [
            vosweep.Service.scs(f"http://down.test/scs/{i}", mirrors=(f"http://up.test/scs/{i}",))
            for i in range(40)
        ]
        async with engine(
            handler,
            retry=vosweep.RetryPolicy(attempts=1),
            breaker=vosweep.BreakerPolicy(failure_threshold=3),
            limits=vosweep.Limits(total=4, per_host=2),
        ) as e:
            result = await e.fanout(targets, CONE)
        assert result.counts()[vosweep.Status.OK] == 40
        assert per_host["up.test"] == 40
        # The dead host was tried only until its breaker opened (plus those in flight).
        assert per_host["down.test"] <= 3 + 2
        assert {o.service.access_url for o in result.outcomes} == {t.access_url for t in targets}

    async def test_mirror_host_limits_hold(self):
        """Requests moved to a mirror respect the mirror host's politeness cap."""
        tracker = Tracker(delay=0.005)

        async def handler(request: Request) -> Response:
            if "down.test" in request.url:
                raise TransportError("connection refused", url=request.url)
            return await tracker(request)

        targets = [
            vosweep.Service.scs(f"http://down.test/scs/{i}", mirrors=(f"http://up.test/scs/{i}",))
            for i in range(30)
        ]
        async with engine(
            handler,
            retry=vosweep.RetryPolicy(attempts=1),
            breaker=vosweep.BreakerPolicy(enabled=False),
            limits=vosweep.Limits(total=20, per_host=3),
        ) as e:
            result = await e.fanout(targets, CONE)
        assert result.counts()[vosweep.Status.OK] == 30
        assert tracker.peak["up.test"] == 3


async def test_a_few_hanging_services_do_not_close_a_busy_host():
    """VizieR-like: 5 hangs fill the host's slots and time out in a row; its 300 other
    services still answer (the breaker also weighs the host's recent answers)."""
    hanging = {f"http://big.test/scs/{i}" for i in range(20, 25)}

    async def handler(request: Request) -> Response:
        base = request.url.split("?")[0]
        if base in hanging:
            await anyio.sleep(0.05)
            raise vosweep.ServiceTimeout("no data for 0.05 s", phase="read", url=request.url)
        await anyio.sleep(0.001)
        return ok(request)

    targets = [vosweep.Service.scs(f"http://big.test/scs/{i}") for i in range(300)]
    async with engine(handler, limits=vosweep.Limits(per_host=5)) as e:
        result = await e.fanout(targets, CONE)
    counts = result.counts()
    assert counts[vosweep.Status.TIMEOUT] == 5
    assert counts[vosweep.Status.SKIPPED] == 0
    assert counts[vosweep.Status.OK] == 295


async def test_a_retry_does_not_reach_a_host_whose_circuit_opened_meanwhile():
    sent: list[str] = []

    async def handler(request: Request) -> Response:
        sent.append(request.url)
        await anyio.sleep(0.01)
        raise TransportError("connection refused", url=request.url)

    targets = services(5, hosts=1)
    retry = vosweep.RetryPolicy(wait_initial=0.05, wait_jitter=0.0, attempts=3)
    async with engine(handler, retry=retry, errors="retry") as e:
        result = await e.fanout(targets, CONE)
    # 5 first attempts open the circuit; the retries waiting in backoff then stop.
    assert len(sent) == 5
    assert all(o.error_type == "TransportError" for o in result.outcomes)
