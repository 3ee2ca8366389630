"""The TAP conversation (sync, UWS async, uploads, capabilities) against an in-memory server."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from astropy.table import Table

import vosweep
from vosweep.errors import ServiceTimeout
from vosweep.protocols.adql_features import used_features
from vosweep.protocols.base import Request, Response
from vosweep.scheduling.retry import no_backoff
from vosweep.transport import MockTransport

pytestmark = pytest.mark.anyio

BASE = "http://tap.test/tap"


def votable(rows: int, status: str = "OK", message: str = "") -> bytes:
    trs = "".join(f"<TR><TD>{i}</TD></TR>" for i in range(rows))
    overflow = '<INFO name="QUERY_STATUS" value="OVERFLOW"/>' if status == "OVERFLOW" else ""
    head = "OK" if status == "OVERFLOW" else status
    return (
        '<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE type="results"><INFO name="QUERY_STATUS" value="{head}">{message}</INFO>'
        '<TABLE><FIELD name="n" datatype="int"/>'
        f"<DATA><TABLEDATA>{trs}</TABLEDATA></DATA></TABLE>{overflow}</RESOURCE></VOTABLE>"
    ).encode()


def capabilities(*, binary2: bool = True, upload: bool = True, hard: int | None = None) -> bytes:
    formats = (
        "<outputFormat><mime>application/x-votable+xml</mime><alias>votable</alias></outputFormat>"
    )
    if binary2:
        formats += (
            "<outputFormat><mime>application/x-votable+xml;serialization=BINARY2</mime>"
            "<alias>votable/b2</alias></outputFormat>"
        )
    uploads = (
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>' if upload else ""
    )
    limit = f'<outputLimit><hard unit="row">{hard}</hard></outputLimit>' if hard else ""
    return (
        '<?xml version="1.0"?><vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        f'<interface role="std"><accessURL use="base">{BASE}</accessURL></interface>'
        '<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        "</language>"
        f"{formats}{uploads}{limit}</capability></vosi:capabilities>"
    ).encode()


def job_doc(job_id: str, phase: str, error: str | None = None) -> bytes:
    results = (
        '<uws:results><uws:result id="result" xlink:href="'
        f'{BASE}/async/{job_id}/results/result"/></uws:results>'
        if phase == "COMPLETED"
        else ""
    )
    summary = (
        f'<uws:errorSummary type="fatal" hasDetail="true"><uws:message>{error}</uws:message>'
        "</uws:errorSummary>"
        if error is not None
        else ""
    )
    return (
        '<?xml version="1.0"?><uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">'
        f"<uws:jobId>{job_id}</uws:jobId><uws:phase>{phase}</uws:phase>"
        f"{results}{summary}</uws:job>"
    ).encode()


@dataclass
class Job:
    phase: str = "PENDING"
    polls: int = 0


@dataclass
class FakeTap:
    """A TAP service in memory: sync, UWS (with or without WAIT), capabilities."""

    caps: bytes | None = field(default_factory=capabilities)
    rows: int = 3
    #: Polls a job spends EXECUTING before it ends (None: forever).
    polls_to_finish: int | None = 1
    job_error: str | None = None
    honour_wait: bool = True
    delete_verb: bool = True
    sync_timeout: bool = False
    #: Whether an ERROR job's document carries its errorSummary message.
    error_summary: bool = True
    jobs: dict[str, Job] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: Request) -> Response:
        self.log.append(request)
        path = urlsplit(request.url).path.removeprefix("/tap")
        form = dict(request.data)
        if path == "/capabilities":
            if self.caps is None:
                return Response(url=request.url, status=404, body=b"no", content_type="text/plain")
            return Response(url=request.url, status=200, body=self.caps, content_type="text/xml")
        if path == "/sync":
            if self.sync_timeout:
                raise ServiceTimeout("attempt took longer than 30 s", url=request.url)
            rows = self.rows
            if "MAXREC" in form and int(form["MAXREC"]) < rows:
                return self._vot(request, votable(int(form["MAXREC"]), "OVERFLOW"))
            return self._vot(request, votable(rows))
        if path == "/async" and request.method == "POST":
            job_id = f"j{next(self.ids)}"
            self.jobs[job_id] = Job()
            return Response(
                url=request.url,
                status=303,
                headers={"location": f"{BASE}/async/{job_id}"},
                content_type="text/plain",
            )
        parts = path.split("/")  # "", "async", id, ...
        job_id = parts[2]
        job = self.jobs.get(job_id)
        if job is None:
            return Response(url=request.url, status=404, body=b"gone", content_type="text/plain")
        rest = "/".join(parts[3:])
        if rest == "phase" and request.method == "POST":
            if form.get("PHASE") == "RUN" and job.phase == "PENDING":
                job.phase = "EXECUTING"
            elif form.get("PHASE") == "ABORT":
                job.phase = "ABORTED"
            return Response(
                url=request.url, status=303, headers={"location": f"{BASE}/async/{job_id}"}
            )
        if rest == "" and request.method == "DELETE":
            if not self.delete_verb:
                return Response(url=request.url, status=405, body=b"no DELETE")
            return self._delete(request, job_id)
        if rest == "" and request.method == "POST" and form.get("ACTION") == "DELETE":
            return self._delete(request, job_id)
        if rest == "" and request.method == "GET":
            query = parse_qs(urlsplit(request.url).query)
            waited = 0.0
            if job.phase == "EXECUTING":
                job.polls += 1
                if self.polls_to_finish is not None and job.polls > self.polls_to_finish:
                    job.phase = "ERROR" if self.job_error is not None else "COMPLETED"
                elif "WAIT" in query and self.honour_wait:
                    waited = 0.3
            error = self.job_error if job.phase == "ERROR" and self.error_summary else None
            return Response(
                url=request.url,
                status=200,
                body=job_doc(job_id, job.phase, error),
                content_type="text/xml",
                elapsed=waited,
            )
        if rest == "results/result":
            return self._vot(request, votable(self.rows))
        if rest == "error":
            return self._vot(request, votable(0, "ERROR", self.job_error or ""))
        return Response(url=request.url, status=404, body=b"?")

    def _delete(self, request: Request, job_id: str) -> Response:
        del self.jobs[job_id]
        self.deleted.append(job_id)
        return Response(url=request.url, status=303, headers={"location": f"{BASE}/async"})

    @staticmethod
    def _vot(request: Request, body: bytes) -> Response:
        return Response(url=request.url, status=200, body=body, content_type="text/xml")

    def paths(self) -> list[str]:
        return [f"{r.method} {urlsplit(r.url).path.removeprefix('/tap')}" for r in self.log]


def engine(server: FakeTap, **tap: object) -> vosweep.Engine:
    policy = vosweep.TapPolicy(**{"poll_initial": 0.01, "poll_max": 0.02, **tap})  # type: ignore[arg-type]
    return vosweep.Engine(transport=MockTransport(server), tap=policy, user_agent_purpose="test")


SERVICE = vosweep.Service.tap(BASE, name="fake")


async def run(server: FakeTap, query: vosweep.TapQuery, **tap: object) -> vosweep.FanoutResult:
    async with engine(server, **tap) as e:
        return await e.fanout([SERVICE], query)


class TestSync:
    async def test_sync_asks_binary2_when_declared(self):
        server = FakeTap()
        result = await run(server, vosweep.TapQuery("SELECT * FROM t", mode="sync"))
        assert result.outcomes[0].status is vosweep.Status.OK
        assert result.rows == 3
        sync = next(r for r in server.log if r.url.endswith("/sync"))
        form = dict(sync.data)
        assert form["RESPONSEFORMAT"] == "application/x-votable+xml;serialization=BINARY2"
        assert form["LANG"] == "ADQL"
        assert form["REQUEST"] == "doQuery"
        assert server.paths() == ["GET /capabilities", "POST /sync"]

    async def test_no_capabilities_means_service_defaults(self):
        server = FakeTap(caps=None)
        result = await run(server, vosweep.TapQuery("SELECT * FROM t", mode="sync"))
        assert result.outcomes[0].status is vosweep.Status.OK
        sync = server.log[-1]
        assert "RESPONSEFORMAT" not in dict(sync.data)

    async def test_maxrec_capped_by_hard_limit_and_overflow_kept(self):
        server = FakeTap(caps=capabilities(hard=2), rows=10)
        result = await run(server, vosweep.TapQuery("SELECT * FROM t", maxrec=5, mode="sync"))
        assert dict(server.log[-1].data)["MAXREC"] == "2"
        assert result.outcomes[0].status is vosweep.Status.OVERFLOW
        assert result.rows == 2

    async def test_capabilities_fetched_once_per_service(self):
        server = FakeTap()
        async with engine(server) as e:
            for _ in range(3):
                await e.fanout([SERVICE], vosweep.TapQuery("SELECT 1", mode="sync"))
        assert server.paths().count("GET /capabilities") == 1

    async def test_auto_mode_goes_async_when_sync_times_out(self):
        server = FakeTap(sync_timeout=True)
        result = await run(server, vosweep.TapQuery("SELECT * FROM big"))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.OK, outcome.message
        assert "POST /async" in server.paths()
        assert server.jobs == {}  # deleted

    async def test_sync_mode_reports_the_timeout(self):
        server = FakeTap(sync_timeout=True)
        result = await run(server, vosweep.TapQuery("SELECT * FROM big", mode="sync"))
        assert result.outcomes[0].status is vosweep.Status.TIMEOUT
        assert "POST /async" not in server.paths()


class TestAsync:
    async def test_complete_job_is_fetched_then_deleted(self):
        server = FakeTap(polls_to_finish=2)
        result = await run(server, vosweep.TapQuery("SELECT * FROM t", mode="async"))
        assert result.outcomes[0].status is vosweep.Status.OK
        assert result.rows == 3
        paths = server.paths()
        assert paths[:3] == ["GET /capabilities", "POST /async", "POST /async/j1/phase"]
        assert paths[-2:] == ["GET /async/j1/results/result", "DELETE /async/j1"]
        assert server.jobs == {}
        assert server.deleted == ["j1"]
        # WAIT is honoured: no client-side polling pauses were needed.
        waits = [r.url for r in server.log if "WAIT=" in r.url]
        assert waits
        assert all("PHASE=EXECUTING" in url for url in waits)

    async def test_error_phase_gives_the_error_summary(self):
        server = FakeTap(job_error="table t does not exist")
        result = await run(server, vosweep.TapQuery("SELECT * FROM t", mode="async"))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert outcome.error_type == "QueryRejected"
        assert "table t does not exist" in (outcome.message or "")
        assert server.jobs == {}

    async def test_error_without_summary_reads_the_error_document(self):
        server = FakeTap(job_error="division by zero", error_summary=False)
        result = await run(server, vosweep.TapQuery("SELECT 1/0", mode="async"))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert "division by zero" in (outcome.message or "")
        assert "GET /async/j1/error" in server.paths()

    async def test_uws10_server_without_wait_is_polled(self):
        server = FakeTap(honour_wait=False, polls_to_finish=3)
        result = await run(server, vosweep.TapQuery("SELECT 1", mode="async"))
        assert result.outcomes[0].status is vosweep.Status.OK
        # After the first ignored WAIT, polls go without it.
        polls = [r.url for r in server.log if r.method == "GET" and r.url.endswith("/j1")]
        assert len(polls) >= 2
        assert server.jobs == {}

    async def test_job_timeout_aborts_and_deletes(self):
        server = FakeTap(polls_to_finish=None, honour_wait=False)
        result = await run(server, vosweep.TapQuery("SELECT 1", mode="async"), job_timeout=0.2)
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.TIMEOUT
        assert "job_timeout" in (outcome.message or "")
        assert "POST /async/j1/phase" in server.paths()
        assert any(dict(r.data).get("PHASE") == "ABORT" for r in server.log)
        assert server.jobs == {}

    async def test_cancelled_fanout_still_deletes_the_job(self):
        server = FakeTap(polls_to_finish=None, honour_wait=False)
        async with engine(server) as e:
            result = await e.fanout(
                [SERVICE], vosweep.TapQuery("SELECT 1", mode="async"), deadline=0.3
            )
        assert result.outcomes[0].status is vosweep.Status.CANCELLED
        assert server.jobs == {}
        assert server.deleted == ["j1"]

    async def test_cancel_scope_from_outside_deletes_the_job(self):
        server = FakeTap(polls_to_finish=None, honour_wait=False)
        async with engine(server) as e:
            with anyio.move_on_after(0.3):
                await e.fanout([SERVICE], vosweep.TapQuery("SELECT 1", mode="async"))
        assert server.jobs == {}

    async def test_delete_falls_back_to_action_delete(self):
        server = FakeTap(delete_verb=False)
        result = await run(server, vosweep.TapQuery("SELECT 1", mode="async"))
        assert result.outcomes[0].status is vosweep.Status.OK
        assert server.paths()[-2:] == ["DELETE /async/j1", "POST /async/j1"]
        assert server.jobs == {}

    async def test_delete_jobs_false_leaves_the_job(self):
        server = FakeTap()
        await run(server, vosweep.TapQuery("SELECT 1", mode="async"), delete_jobs=False)
        assert list(server.jobs) == ["j1"]


class TestUploads:
    async def test_upload_batches_are_sent_and_stacked(self):
        server = FakeTap(rows=2)
        table = Table({"ra": list(range(25)), "dec": [0.0] * 25})
        query = vosweep.TapQuery(
            "SELECT * FROM t JOIN TAP_UPLOAD.mine AS m ON 1=1", uploads={"mine": table}, mode="sync"
        )
        result = await run(server, query, upload_batch_rows=10)
        syncs = [r for r in server.log if r.url.endswith("/sync")]
        assert len(syncs) == 3
        assert [len(r.files) for r in syncs] == [1, 1, 1]
        assert all(dict(r.data)["UPLOAD"] == "mine,param:mine" for r in syncs)
        sizes = [r.files[0].content.count(b"<TR>") for r in syncs]
        assert sizes == [10, 10, 5]
        assert result.rows == 6
        assert result.outcomes[0].status is vosweep.Status.OK

    async def test_service_without_uploads_is_refused_before_sending(self):
        server = FakeTap(caps=capabilities(upload=False))
        table = Table({"ra": [1.0]})
        query = vosweep.TapQuery("SELECT * FROM TAP_UPLOAD.t", uploads={"t": table})
        result = await run(server, query)
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.SKIPPED
        assert outcome.error_type == "NotSupported"
        assert "upload" in (outcome.message or "")
        assert server.paths() == ["GET /capabilities"]


class TestQueries:
    def test_bad_upload_name(self):
        with pytest.raises(vosweep.UsageError, match="upload name"):
            vosweep.TapQuery("SELECT 1", uploads={"1bad": Table({"a": [1]})})

    def test_reserved_params(self):
        with pytest.raises(vosweep.UsageError, match="QUERY"):
            vosweep.TapQuery("SELECT 1", params={"query": "x"})

    def test_empty_adql(self):
        with pytest.raises(vosweep.UsageError, match="non-empty ADQL"):
            vosweep.TapQuery("  ")


def test_no_backoff_import_is_available():
    with no_backoff():
        pass


async def test_auto_mode_remembers_a_slow_sync_endpoint():
    server = FakeTap(sync_timeout=True)
    async with engine(server) as e:
        await e.fanout([SERVICE], vosweep.TapQuery("SELECT * FROM big"))
        before = server.paths().count("POST /sync")
        result = await e.fanout([SERVICE], vosweep.TapQuery("SELECT * FROM big"))
    assert result.outcomes[0].status is vosweep.Status.OK
    assert before == 1
    assert server.paths().count("POST /sync") == 1  # the second query went async at once
    assert server.paths().count("POST /async") == 2


class TestLanguageFeatures:
    @pytest.mark.parametrize(
        ("adql", "used"),
        [
            ("SELECT a FROM t UNION SELECT a FROM u", {"UNION"}),
            ("SELECT 'UNION' AS x FROM t", set()),
            ('SELECT "union" FROM t -- UNION here', set()),
            ("SELECT CAST(a AS REAL) FROM t WHERE b ILIKE 'x%'", {"CAST", "ILIKE"}),
            ("SELECT area, point FROM t", set()),
            (
                "SELECT * FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE(1, 2, 3))",
                {"CONTAINS", "POINT", "CIRCLE"},
            ),
            ("SELECT * FROM t /* CAST( */ OFFSET 10", {"OFFSET"}),
        ],
    )
    def test_used_features(self, adql, used):
        assert used_features(adql) == used

    async def test_undeclared_union_on_an_adql21_service_is_skipped(self):
        caps = capabilities().replace(
            b'<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>',
            b'<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>',
        )
        server = FakeTap(caps=caps)
        result = await run(server, vosweep.TapQuery("SELECT a FROM t UNION SELECT a FROM u"))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.SKIPPED
        assert "UNION" in (outcome.message or "")
        assert server.paths() == ["GET /capabilities"]

    async def test_adql20_service_without_declarations_is_asked(self):
        server = FakeTap()
        result = await run(server, vosweep.TapQuery("SELECT a FROM t UNION SELECT a FROM u"))
        assert result.outcomes[0].status is vosweep.Status.OK


async def test_every_batch_job_is_deleted_as_it_ends():
    server = FakeTap(rows=1)
    table = Table({"ra": list(range(25))})
    query = vosweep.TapQuery("SELECT * FROM TAP_UPLOAD.t", uploads={"t": table}, mode="async")
    result = await run(server, query, upload_batch_rows=10)
    assert result.outcomes[0].status is vosweep.Status.OK
    assert result.outcomes[0].url.endswith("/results/result")  # the answer, not the DELETE
    assert server.deleted == ["j1", "j2", "j3"]
    assert server.jobs == {}
    paths = server.paths()
    creations = [i for i, p in enumerate(paths) if p == "POST /async"]
    assert paths.index("DELETE /async/j1") < creations[1]  # deleted before the next batch


async def test_auto_mode_does_not_try_a_job_on_an_unreachable_host():
    server = FakeTap()

    def refuse(request: Request) -> Response:
        if request.url.endswith("/sync"):
            raise ServiceTimeout("no connection within 10 s", phase="connect", url=request.url)
        return server(request)

    async with vosweep.Engine(transport=MockTransport(refuse), user_agent_purpose="test") as e:
        result = await e.fanout([SERVICE], vosweep.TapQuery("SELECT 1"))
    assert result.outcomes[0].status is vosweep.Status.TIMEOUT
    assert "POST /async" not in server.paths()


class TestHostileJobs:
    """Every way a UWS exchange goes wrong ends in an outcome, and the job is deleted."""

    @staticmethod
    def wrap(server: FakeTap, change) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            return change(request, server) or server(request)

        return handler

    async def run_with(self, handler, **tap: object) -> vosweep.FanoutResult:
        policy = vosweep.TapPolicy(poll_initial=0.01, poll_max=0.02, **tap)  # type: ignore[arg-type]
        async with vosweep.Engine(
            transport=MockTransport(handler), tap=policy, user_agent_purpose="test"
        ) as e:
            return await e.fanout([SERVICE], vosweep.TapQuery("SELECT 1", mode="async"))

    async def test_creation_answering_a_job_document_without_location(self):
        server = FakeTap()

        def change(request: Request, srv: FakeTap) -> Response | None:
            if request.method == "POST" and request.url.endswith("/async"):
                srv(request)  # creates j1
                return Response(url=request.url, status=200, body=job_doc("j1", "PENDING"))
            return None

        result = await self.run_with(self.wrap(server, change))
        assert result.outcomes[0].status is vosweep.Status.OK, result.outcomes[0].message
        assert server.jobs == {}

    async def test_creation_answering_html(self):
        server = FakeTap()

        def change(request: Request, srv: FakeTap) -> Response | None:
            if request.method == "POST" and request.url.endswith("/async"):
                return Response(
                    url=request.url, status=200, body=b"<html><title>Login</title></html>"
                )
            return None

        result = await self.run_with(self.wrap(server, change))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert outcome.error_type == "ResponseFormatError"
        assert "HTML" in (outcome.message or "")

    async def test_malformed_job_document_still_deletes(self):
        server = FakeTap(polls_to_finish=5)

        def change(request: Request, srv: FakeTap) -> Response | None:
            if request.method == "GET" and request.url.split("?")[0].endswith("/j1"):
                return Response(url=request.url, status=200, body=b"<uws:job><uws:phase>")
            return None

        result = await self.run_with(self.wrap(server, change))
        assert result.outcomes[0].status is vosweep.Status.ERROR
        assert server.jobs == {}
        assert server.deleted == ["j1"]

    async def test_missing_result_still_deletes(self):
        server = FakeTap()

        def change(request: Request, srv: FakeTap) -> Response | None:
            if request.url.endswith("/results/result"):
                return Response(url=request.url, status=404, body=b"expired")
            return None

        result = await self.run_with(self.wrap(server, change))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert outcome.http_status == 404
        assert server.jobs == {}

    async def test_job_aborted_by_the_server(self):
        server = FakeTap(polls_to_finish=None)

        def change(request: Request, srv: FakeTap) -> Response | None:
            job = srv.jobs.get("j1")
            if job is not None and job.phase == "EXECUTING" and request.method == "GET":
                job.phase = "ABORTED"
            return None

        result = await self.run_with(self.wrap(server, change))
        outcome = result.outcomes[0]
        assert outcome.status is vosweep.Status.ERROR
        assert "ABORTED" in (outcome.message or "")
        assert server.jobs == {}

    async def test_server_refusing_wait_is_polled(self):
        server = FakeTap(polls_to_finish=2)
        refused: list[str] = []

        def change(request: Request, srv: FakeTap) -> Response | None:
            if "WAIT=" in request.url:
                refused.append(request.url)
                return Response(url=request.url, status=400, body=b"unknown parameter WAIT")
            return None

        result = await self.run_with(self.wrap(server, change))
        assert result.outcomes[0].status is vosweep.Status.OK, result.outcomes[0].message
        assert len(refused) == 1  # asked once, then polled without it
        assert server.jobs == {}
