"""The simulated TAP services' pure parts: UWS jobs, parameters, documents, uploads, data.

The oracles are independent readers: astropy for result VOTables (TABLEDATA and the
BINARY2 encoder), pyvo and vo-models for UWS and VOSI documents.
"""

from __future__ import annotations

import io
import math
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

SIM_EXTRA = "the simulated TAP services need the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")
vom = pytest.importorskip("vo_models.uws", reason="vo-models is the UWS oracle")

from astropy.io.votable import parse_single_table  # noqa: E402
from astropy.table import Table  # noqa: E402
from pyvo.io import uws as pyvo_uws  # noqa: E402
from pyvo.io import vosi as pyvo_vosi  # noqa: E402
from pyvo.io.vosi import tapregext  # noqa: E402

from vosweep.services import Protocol  # noqa: E402
from vosweep.testing import (  # noqa: E402
    CapabilitiesState,
    JobOutcome,
    ServiceProfile,
    ServiceSpec,
    TapProfile,
    TapTable,
)
from vosweep.testing._adql import (  # noqa: E402
    AdqlDatabase,
    AdqlError,
    AdqlFeatures,
    ColumnDef,
    QueryResult,
    ResultColumn,
    TableDef,
    UploadedTable,
)
from vosweep.testing._tap import QueryParamError, TapService, parse_query, tap_capability  # noqa: E402
from vosweep.testing._tapdata import (  # noqa: E402
    CATALOGUE_TABLE,
    EPNTAP_TABLE,
    EPNTAP_UTYPE,
    OBSCORE_TABLE,
    OBSCORE_UTYPE,
    TABLES,
    data_tables,
    table_rows,
)
from vosweep.testing._tapdocs import (  # noqa: E402
    Serialization,
    capabilities_xml,
    error_document,
    result_document,
    tables_xml,
)
from vosweep.testing._tapjobs import (  # noqa: E402
    Job,
    JobError,
    JobLedger,
    JobParamError,
    Lifecycle,
    Phase,
    format_time,
    job_list_xml,
    job_xml,
    parse_time,
    parse_wait,
    peak_overlap,
    select_jobs,
)
from vosweep.testing._tapupload import UploadError, parse_upload, read_upload  # noqa: E402

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
JOB_URL = "http://127.0.0.1:9/tap/00000/async/j1"


def make_job(life: Lifecycle | None = None, *, duration: int = 0, **params: str) -> Job:
    return Job(
        job_id="j1",
        created=0.0,
        created_wall=NOW,
        lifecycle=life or Lifecycle(queue_delay=1.0, execution_time=2.0),
        parameters=dict(params) or {"query": "SELECT 1", "lang": "ADQL"},
        execution_duration=duration,
        destruction=3600.0,
    )


def votable_bytes(table: Table, *, binary2: bool = False) -> bytes:
    buffer = io.BytesIO()
    table.write(buffer, format="votable", tabledata_format="binary2" if binary2 else None)
    return buffer.getvalue()


# -- the job state machine -----------------------------------------------------------------


class TestJobStateMachine:
    def test_ok_job_lifecycle(self):
        """PENDING, QUEUED for the queue delay, EXECUTING, then the query decides."""
        job = make_job()
        assert job.phase is Phase.PENDING
        assert job.next_change() == math.inf
        assert job.run(10.0)
        assert job.phase is Phase.QUEUED
        assert job.next_change() == 11.0
        assert not job.advance(10.5)
        assert job.phase is Phase.QUEUED
        assert not job.advance(11.0)
        assert job.phase is Phase.EXECUTING
        assert job.next_change() == 13.0
        assert job.advance(14.0), "the query is due"
        assert job.complete(error_document("x"), "application/x-votable+xml")
        assert job.phase is Phase.COMPLETED
        assert (job.ended_at, job.executing_interval()) == (13.0, (11.0, 13.0))

    def test_run_twice_is_ignored(self):
        """RUN on a job that is not PENDING changes nothing."""
        job = make_job()
        job.run(0.0)
        assert not job.run(0.5)
        assert job.queued_at == 0.0

    def test_abort_while_queued_never_executes(self):
        """An aborted queued job has no EXECUTING interval and ends at once."""
        job = make_job()
        job.run(0.0)
        assert job.abort(0.5)
        assert (job.phase, job.ended_at, job.executing_interval()) == (Phase.ABORTED, 0.5, None)
        assert not job.abort(0.6)

    def test_error_outcome(self):
        """The ``error`` outcome ends in ERROR with the profile's transient message."""
        job = make_job(
            Lifecycle(execution_time=1.0, outcome=JobOutcome.ERROR, error_message="boom")
        )
        job.run(0.0)
        assert not job.advance(5.0)
        assert job.phase is Phase.ERROR
        assert job.error == JobError("boom", fatal=False)

    @pytest.mark.parametrize("limit_phase", [Phase.ERROR, Phase.ABORTED])
    def test_execution_duration_limit(self, limit_phase):
        """A stalled job ends in the limit phase when its executionDuration runs out."""
        life = Lifecycle(outcome=JobOutcome.STALL, limit_phase=limit_phase, max_hang=100.0)
        job = make_job(life, duration=3)
        job.run(0.0)
        assert job.advance(2.9) is False
        assert job.phase is Phase.EXECUTING
        job.advance(3.0)
        assert (job.phase, job.ended_at) == (limit_phase, 3.0)
        assert (job.error is not None) == (limit_phase is Phase.ERROR)

    def test_stall_without_limit_is_bounded_by_max_hang(self):
        """A stalled job with no limit is aborted after ``max_hang``."""
        job = make_job(Lifecycle(outcome=JobOutcome.STALL, max_hang=50.0))
        job.run(0.0)
        job.advance(49.0)
        assert job.phase is Phase.EXECUTING
        job.advance(50.0)
        assert job.phase is Phase.ABORTED

    def test_queued_forever_is_bounded(self):
        """A job that never starts stays QUEUED until ``max_hang``, then ends in ERROR."""
        job = make_job(Lifecycle(outcome=JobOutcome.QUEUED, max_hang=30.0))
        job.run(0.0)
        job.advance(29.0)
        assert (job.phase, job.next_change()) == (Phase.QUEUED, 30.0)
        job.advance(31.0)
        assert job.phase is Phase.ERROR
        assert job.executing_interval() is None

    def test_delete_while_executing_cuts_the_interval(self):
        """A deleted running job stops executing when deleted."""
        job = make_job()
        job.run(0.0)
        job.delete(2.0)
        assert job.executing_interval() == (1.0, 2.0)
        assert job.deleted_at == 2.0

    def test_complete_after_abort_is_ignored(self):
        """A query finishing after an abort does not resurrect the job."""
        job = make_job()
        job.run(0.0)
        job.abort(1.5)
        assert not job.complete(error_document("x"), "text/xml")
        assert not job.fail(JobError("late"))
        assert job.phase is Phase.ABORTED

    @given(
        delay=st.floats(0, 5),
        run_time=st.floats(0, 5),
        outcome=st.sampled_from(list(JobOutcome)),
        duration=st.integers(0, 6),
        times=st.lists(st.floats(0, 30), min_size=1, max_size=12),
    )
    def test_phases_only_move_forward(self, delay, run_time, outcome, duration, times):
        """Whenever it is observed, a job moves along PENDING, QUEUED, EXECUTING, final."""
        order = [Phase.PENDING, Phase.QUEUED, Phase.EXECUTING]
        life = Lifecycle(delay, run_time, outcome, "x", Phase.ERROR, max_hang=20.0)
        job = make_job(life, duration=duration)
        job.run(0.0)
        last = 1
        for now in sorted(times):
            if job.advance(now):
                job.complete(error_document("x"), "text/xml")
            rank = order.index(job.phase) if job.phase in order else 3
            assert rank >= last
            last = rank
            if job.phase is Phase.EXECUTING:
                assert job.executing(now)
        if job.phase not in order:
            assert job.ended_at is not None


class TestCounters:
    @given(
        st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)).map(sorted).map(tuple), max_size=12),
        st.floats(0, 10),
        st.floats(0, 10),
    )
    def test_peak_overlap_matches_brute_force(self, intervals, since, now):
        """The sweep's peak equals the most intervals covering one sampled instant."""
        since, now = min(since, now), max(since, now)
        instants = {since, now} | {t for interval in intervals for t in interval}
        expected = max(
            (sum(1 for a, b in intervals if a <= t < b) for t in instants if since <= t <= now),
            default=0,
        )
        assert peak_overlap(intervals, since, now) == expected

    def test_ledger_reset_counts_live_jobs_as_created(self):
        """After a reset, created equals the live jobs; gone intervals before it are dropped."""
        ledger = JobLedger(created=5, deleted=3, destroyed=1, gone=[(0.0, 1.0), (2.0, 9.0)])
        ledger.reset(5.0, alive=1)
        assert (ledger.created, ledger.deleted, ledger.destroyed) == (1, 0, 0)
        assert ledger.gone == [(2.0, 9.0)]


# -- parameters ------------------------------------------------------------------------------


class TestParameters:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [(None, None), ("", None), ("5", 5.0), ("-1", math.inf), ("2.5", 2.5)],
    )
    def test_wait(self, raw, expected):
        """WAIT: seconds, -1 for as long as allowed, absent for no wait."""
        assert parse_wait(raw) == expected

    @pytest.mark.parametrize("raw", ["soon", "nan"])
    def test_bad_wait(self, raw):
        """A WAIT that is not a number is a client error."""
        with pytest.raises(JobParamError):
            parse_wait(raw)

    @pytest.mark.parametrize(
        "raw", ["2025-03-01T12:00:00Z", "2025-03-01T12:00:00", "2025-03-01T20:00:00+08:00"]
    )
    def test_parse_time(self, raw):
        """ISO 8601 with Z, without zone (UTC) or with an offset."""
        assert parse_time(raw) == NOW

    @given(
        st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001 -- hypothesis wants naive bounds,
        st.integers(-12 * 60, 14 * 60),
    )
    def test_format_time_round_trips(self, moment, offset):
        """Written timestamps (Z or +HHMM) read back as the same instant, to the millisecond."""
        offset -= offset % 15
        text = format_time(moment, offset)
        assert text.endswith("Z") == (offset == 0)
        again = datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
        assert abs(again - moment) < timedelta(milliseconds=1)

    def test_parse_query_defaults_and_limits(self):
        """MAXREC defaults and is capped; REQUEST is optional; names are upper-cased by then."""
        profile = TapProfile(maxrec_default=10, maxrec_hard=50)
        query = parse_query({"QUERY": "SELECT 1"}, profile)
        assert (query.maxrec, query.serialization) == (10, Serialization.TABLEDATA)
        assert parse_query({"QUERY": "q", "MAXREC": "500"}, profile).maxrec == 50
        assert parse_query({"QUERY": "q", "MAXREC": "0"}, profile).maxrec == 0

    @pytest.mark.parametrize(
        ("value", "serialization"),
        [
            ("votable", Serialization.TABLEDATA),
            ("application/x-votable+xml", Serialization.TABLEDATA),
            ("votable/b2", Serialization.BINARY2),
            ("application/x-votable+xml;serialization=BINARY2", Serialization.BINARY2),
            ("application/x-votable+xml; serialization=binary2", Serialization.BINARY2),
            ("text/csv", Serialization.CSV),
            ("csv", Serialization.CSV),
        ],
    )
    def test_response_formats(self, value, serialization):
        """RESPONSEFORMAT (or FORMAT) by alias or media type, case and spaces ignored."""
        for name in ("RESPONSEFORMAT", "FORMAT"):
            query = parse_query({"QUERY": "q", name: value}, TapProfile())
            assert query.serialization is serialization

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({}, "missing QUERY"),
            ({"QUERY": " "}, "missing QUERY"),
            ({"QUERY": "q", "REQUEST": "getCapabilities"}, "REQUEST"),
            ({"QUERY": "q", "LANG": "PQL"}, "LANG"),
            ({"QUERY": "q", "MAXREC": "-3"}, "MAXREC"),
            ({"QUERY": "q", "MAXREC": "many"}, "MAXREC"),
            ({"QUERY": "q", "RESPONSEFORMAT": "fits"}, "RESPONSEFORMAT"),
            ({"QUERY": "q", "RESPONSEFORMAT": "votable/b2"}, "offers votable, csv"),
        ],
    )
    def test_bad_query_parameters(self, params, message):
        """Wrong parameters are refused with a message naming them."""
        with pytest.raises(QueryParamError, match=message):
            parse_query(params, TapProfile(binary2=False))

    def test_job_list_filters(self):
        """PHASE (repeatable), AFTER and LAST select jobs as UWS 1.1 says."""
        jobs = []
        for k in range(4):
            job = make_job()
            job.job_id, job.created = f"j{k}", float(k)
            job.created_wall = NOW + timedelta(seconds=k)
            jobs.append(job)
        jobs[1].run(1.0)
        jobs[2].run(2.0)
        jobs[2].abort(2.0)
        assert [j.job_id for j in select_jobs(jobs, {"PHASE": ["pending"]})] == ["j0", "j3"]
        both = select_jobs(jobs, {"PHASE": ["QUEUED", "ABORTED"]})
        assert [j.job_id for j in both] == ["j1", "j2"]
        assert [j.job_id for j in select_jobs(jobs, {"LAST": ["2"]})] == ["j3", "j2"]
        after = format_time(NOW + timedelta(seconds=1.5))
        assert [j.job_id for j in select_jobs(jobs, {"AFTER": [after]})] == ["j2", "j3"]
        for bad in ({"PHASE": ["DONE"]}, {"LAST": ["0"]}, {"AFTER": ["yesterday"]}):
            with pytest.raises(JobParamError):
                select_jobs(jobs, bad)


# -- UWS documents ---------------------------------------------------------------------------


class TestJobDocuments:
    def test_pending_job_reads_in_both_oracles(self):
        """A PENDING job: jobId, runId, nil owner and times, lower-case parameter ids."""
        job = make_job(query="SELECT TOP 1 * FROM cat.sources", lang="ADQL")
        job.run_id = "my run"
        text = job_xml(job, JOB_URL)
        oracle = vom.JobSummary[vom.Parameters].from_xml(text.encode())
        assert (oracle.job_id, oracle.run_id, oracle.phase.value) == ("j1", "my run", "PENDING")
        assert oracle.owner_id is None
        assert oracle.start_time is None
        summary = pyvo_uws.parse_job(io.BytesIO(text.encode()))
        assert {p.id_: p.content for p in summary.parameters} == {
            "query": "SELECT TOP 1 * FROM cat.sources",
            "lang": "ADQL",
        }
        assert summary.version == "1.1"

    def test_completed_job_links_its_result(self):
        """A COMPLETED job has one result, ``{job}/results/result``, with size and type."""
        job = make_job()
        job.run(0.0)
        job.advance(5.0)
        document = error_document("placeholder")
        job.complete(document, "application/x-votable+xml;serialization=BINARY2")
        oracle = vom.JobSummary[vom.Parameters].from_xml(job_xml(job, JOB_URL).encode())
        (result,) = oracle.results.results
        assert result.href == f"{JOB_URL}/results/result"
        assert result.size == len(document.encode())
        assert result.mime_type.endswith("BINARY2")
        assert oracle.end_time is not None
        assert oracle.start_time is not None

    def test_error_summary(self):
        """ERROR jobs carry errorSummary with its type and hasDetail."""
        job = make_job(Lifecycle(outcome=JobOutcome.ERROR, error_message="disk on fire"))
        job.run(0.0)
        job.advance(1.0)
        text = job_xml(job, JOB_URL)
        summary = vom.JobSummary[vom.Parameters].from_xml(text.encode()).error_summary
        assert (summary.message, summary.type.value, summary.has_detail) == (
            "disk on fire",
            "transient",
            True,
        )
        assert pyvo_uws.parse_job(io.BytesIO(text.encode())).errorsummary.message.content == (
            "disk on fire"
        )

    def test_offsets_as_casda_writes_them(self):
        """A +0800 profile writes +0800 timestamps (which pyvo cannot read, vo-models can)."""
        text = job_xml(make_job(), JOB_URL, utc_offset=480)
        assert "T20:00:00.000+0800</uws:creationTime>" in text
        vom.JobSummary[vom.Parameters].from_xml(text.encode())  # valid UWS
        written = text.split("<uws:creationTime>")[1].split("<")[0]
        assert datetime.strptime(written, "%Y-%m-%dT%H:%M:%S.%f%z") == NOW

    def test_job_list(self):
        """jobrefs by default (pyvo reads them); whole jobs for the ESA-like variant."""
        jobs = [make_job(), make_job()]
        jobs[1].job_id = "j2"
        text = job_list_xml(jobs, "http://h/tap/async")
        refs = vom.Jobs.from_xml(text.encode()).jobref
        assert [(r.job_id, r.href) for r in refs] == [
            ("j1", "http://h/tap/async/j1"),
            ("j2", "http://h/tap/async/j2"),
        ]
        assert len(pyvo_uws.parse_job_list(io.BytesIO(text.encode()))) == 2
        inline = job_list_xml(jobs, "http://h/tap/async", inline=True)
        assert inline.count("<uws:job>") == 2
        assert "jobref" not in inline


# -- VOSI ------------------------------------------------------------------------------------


def capabilities_of(profile: TapProfile) -> list:
    spec = ServiceSpec.make(3, protocol=Protocol.TAP, profile=ServiceProfile(tap=profile))
    text = capabilities_xml(tap_capability(spec, "http://127.0.0.1:9/tap/00003"))
    return pyvo_vosi.parse_capabilities(io.BytesIO(text.encode()))


def table_access(profile: TapProfile) -> tapregext.TableAccess:
    (capability,) = [c for c in capabilities_of(profile) if isinstance(c, tapregext.TableAccess)]
    return capability


def feature_types(capability: tapregext.TableAccess) -> set[str]:
    language = capability.languages[0]
    return {features.type.split("#")[1] for features in language.languagefeaturelists}


class TestCapabilities:
    def test_full_profile(self):
        """Everything on: every feature, BINARY2, inline uploads and the limits."""
        capability = table_access(TapProfile(maxrec_default=7, maxrec_hard=70))
        assert feature_types(capability) >= {
            "features-adql-sets",
            "features-adql-type",
            "features-adql-string",
            "features-adqlgeo",
        }
        formats = {f.mime: (f.ivo_id, f.aliases) for f in capability.outputformats}
        assert formats["application/x-votable+xml"][0].endswith("#output-votable-td")
        assert formats["application/x-votable+xml;serialization=BINARY2"] == (
            "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
            ["votable/b2"],
        )
        assert [m.ivo_id for m in capability.uploadmethods] == [
            "ivo://ivoa.net/std/TAPRegExt#upload-inline"
        ]
        assert (capability.outputlimit.default.content, capability.outputlimit.hard.content) == (
            7,
            70,
        )
        assert capability.uploadlimit.hard.content == 10_000
        assert capability.executionduration.hard == 3600
        assert capability.retentionperiod.default == 7 * 86_400
        assert capability.interfaces[0].accessurls[0].content == "http://127.0.0.1:9/tap/00003"
        assert [m.ivo_id for m in capability.datamodels] == ["ivo://ivoa.net/std/obscore#core-1.1"]

    @pytest.mark.parametrize(
        ("switch", "feature"),
        [
            ("union", "features-adql-sets"),
            ("cast", "features-adql-type"),
            ("string", "features-adql-string"),
            ("geometry", "features-adqlgeo"),
        ],
    )
    def test_each_feature_can_be_missing(self, switch, feature):
        """Switching a feature off removes its languageFeatures, and only it."""
        full = feature_types(table_access(TapProfile()))
        assert feature_types(table_access(TapProfile(**{switch: False}))) == full - {feature}

    def test_plain_profile(self):
        """No BINARY2, no uploads, no ObsCore: none of them is declared."""
        profile = TapProfile(binary2=False, uploads=False, tables=(TapTable.CATALOGUE,))
        capability = table_access(profile)
        assert "binary2" not in str([f.mime for f in capability.outputformats]).lower()
        assert not capability.uploadmethods
        spec = ServiceSpec.make(3, protocol=Protocol.TAP, profile=ServiceProfile(tap=profile))
        assert "uploadLimit" not in capabilities_xml(tap_capability(spec, "http://h/tap/00003"))
        assert not capability.datamodels

    def test_vosi_capabilities_are_declared(self):
        """The VOSI endpoints are declared next to TAP (tables as VOSI 1.1)."""
        ids = {c.standardid for c in capabilities_of(TapProfile())}
        assert ids == {
            "ivo://ivoa.net/std/TAP",
            "ivo://ivoa.net/std/VOSI#capabilities",
            "ivo://ivoa.net/std/VOSI#availability",
            "ivo://ivoa.net/std/VOSI#tables-1.1",
        }

    def test_tables_document(self):
        """VOSI tables carry table utypes, column UCDs, units and utypes."""
        text = tables_xml(data_tables(TapProfile()))
        tableset = pyvo_vosi.parse_tables(io.BytesIO(text.encode()))
        tables = {t.name: t for t in tableset.iter_tables()}
        assert set(tables) == {OBSCORE_TABLE, EPNTAP_TABLE, CATALOGUE_TABLE}
        assert tables[OBSCORE_TABLE].utype == OBSCORE_UTYPE
        assert tables[EPNTAP_TABLE].utype == EPNTAP_UTYPE
        columns = {c.name: c for c in tables[OBSCORE_TABLE].columns}
        assert columns["access_url"].utype == "obscore:Access.Reference"
        assert columns["s_ra"].unit == "deg"
        ucds = {c.ucd for c in tables[CATALOGUE_TABLE].columns}
        assert {"pos.eq.ra;meta.main", "pos.eq.dec;meta.main", "phot.mag;em.opt.V"} <= ucds
        assert "meta.id;meta.main" in ucds
        minimal = tables_xml(data_tables(TapProfile()), columns=False)
        assert "<column>" not in minimal


# -- ADQL features, uploads and cancellation in the database ---------------------------------


TINY = TableDef(
    "cat",
    "tiny",
    "A tiny table",
    (ColumnDef("id", "long"), ColumnDef("name", "char"), ColumnDef("ra", "double")),
)
TINY_ROWS = {"cat.tiny": [(1, "Vega", 279.2), (2, "Deneb", 310.4), (3, "Altair", 297.7)]}


class TestFeaturesRefused:
    @pytest.mark.parametrize(
        ("features", "query", "message"),
        [
            (AdqlFeatures(cast=False), "SELECT CAST(id AS DOUBLE) FROM cat.tiny", "CAST"),
            (AdqlFeatures(string=False), "SELECT id FROM cat.tiny WHERE name ILIKE 'v%'", "ILIKE"),
            (AdqlFeatures(string=False), "SELECT LOWER(name) FROM cat.tiny", "LOWER"),
            (
                AdqlFeatures(sets=False),
                "SELECT id FROM cat.tiny UNION SELECT id FROM cat.tiny",
                "UNION",
            ),
        ],
    )
    def test_undeclared_features_are_refused(self, features, query, message):
        """What the capabilities do not declare, the database refuses (and runs otherwise)."""
        with pytest.raises(AdqlError, match=message):
            AdqlDatabase((TINY,), TINY_ROWS, features=features).execute(query, maxrec=10)
        assert AdqlDatabase((TINY,), TINY_ROWS).execute(query, maxrec=10).rows

    def test_uploads_join_and_vanish(self):
        """An uploaded table joins served ones for one query, then is gone."""
        upload = UploadedTable(
            TableDef(
                "tap_upload", "mine", "", (ColumnDef("ref", "long"), ColumnDef("tag", "char"))
            ),
            [(2, "b"), (3, "c"), (9, "z")],
        )
        database = AdqlDatabase((TINY,), TINY_ROWS)
        query = (
            "SELECT t.name, u.tag FROM cat.tiny AS t JOIN TAP_UPLOAD.mine AS u"
            " ON t.id = u.ref ORDER BY t.id"
        )
        result = database.execute(query, maxrec=10, uploads=[upload])
        assert result.rows == [("Deneb", "b"), ("Altair", "c")]
        for _ in range(3):  # every pooled connection forgot it
            with pytest.raises(AdqlError, match="unknown table"):
                database.execute("SELECT * FROM TAP_UPLOAD.mine", maxrec=10)

    def test_uploads_cannot_write(self):
        """Queries with uploads are still read-only."""
        upload = UploadedTable(TableDef("tap_upload", "u", "", (ColumnDef("x", "long"),)), [(1,)])
        database = AdqlDatabase((TINY,), TINY_ROWS)
        with pytest.raises(AdqlError):
            database.execute("DELETE FROM TAP_UPLOAD.u", maxrec=1, uploads=[upload])

    def test_cancel_stops_a_query(self):
        """A set cancel event stops a long query with a clear message."""
        database = AdqlDatabase((TINY,), TINY_ROWS, timeout=30)
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        query = "SELECT COUNT(*) FROM cat.tiny AS a, cat.tiny AS b, cat.tiny AS c, cat.tiny AS d"
        slow = query + ", cat.tiny AS e, cat.tiny AS f, cat.tiny AS g, cat.tiny AS h" * 3
        with pytest.raises(AdqlError, match="cancelled"):
            database.execute(slow, maxrec=1, cancel=cancel)

    def test_select_star_takes_metadata_from_the_table_read(self):
        """``SELECT *`` on EPN-TAP gets EPN-TAP's UCDs even where ObsCore has the same names."""
        tables = data_tables(TapProfile())
        rows = {
            t.qualified_name: table_rows(kind, seed=1, index=2, base_url="http://h")
            for kind, t in zip(TapProfile().tables, tables, strict=True)
        }
        database = AdqlDatabase(tables, rows)
        result = database.execute("SELECT TOP 1 * FROM planets.epn_core", maxrec=5)
        ucds = {c.name: c.ucd for c in result.columns}
        assert ucds["obs_id"] == "meta.id;obs"  # ObsCore's obs_id is plain meta.id


# -- uploads ---------------------------------------------------------------------------------


class TestUploadParsing:
    def test_pairs(self):
        """``;``-separated pairs and repeated parameters; inline parts and URLs apart."""
        refs = parse_upload(["t1,param:part1;t2,http://example.org/t.xml", "T3,param:x"])
        assert [(r.name, r.part) for r in refs] == [("t1", "part1"), ("t2", None), ("T3", "x")]

    @pytest.mark.parametrize(
        "value",
        ["t1", "1t,param:x", "t,", "t,param:", "bad name,param:x", "t,param:a;T,param:b"],
    )
    def test_bad_pairs(self, value):
        """Malformed pairs, bad names, empty parts and duplicates are refused."""
        with pytest.raises(UploadError):
            parse_upload([value])

    @pytest.mark.parametrize("binary2", [False, True])
    def test_read_votable(self, binary2):
        """Names folded to lower case; masked values null; booleans 1/0; arrays as text."""
        table = Table(
            {
                "ID": [1, 2, 3],
                "RA": np.ma.masked_array([1.5, 2.5, 3.5], mask=[False, True, False]),
                "name": ["a", "b<&>", "c"],
                "ok": [True, False, True],
                "vec": [[1, 2], [3, 4], [5, 6]],
            }
        )
        table["RA"].unit = "deg"
        upload = read_upload("T", votable_bytes(table, binary2=binary2), max_rows=3)
        assert upload.table.qualified_name == "tap_upload.t"
        assert [c.name for c in upload.table.columns] == ["id", "ra", "name", "ok", "vec"]
        assert upload.table.columns[1].unit == "deg"
        assert list(upload.rows) == [
            (1, 1.5, "a", 1, "1 2"),
            (2, None, "b<&>", 0, "3 4"),
            (3, 3.5, "c", 1, "5 6"),
        ]

    def test_row_limit(self):
        """More rows than the service accepts: refused, naming the limit."""
        data = votable_bytes(Table({"x": list(range(5))}))
        with pytest.raises(UploadError, match="at most 4"):
            read_upload("t", data, max_rows=4)

    @pytest.mark.parametrize("data", [b"", b"not xml", b"<VOTABLE><RESOURCE>"])
    def test_garbage(self, data):
        """What is not a VOTable is an UploadError, not a crash."""
        with pytest.raises(UploadError, match="cannot read upload"):
            read_upload("t", data, max_rows=10)

    def test_duplicate_columns_after_folding(self):
        """``A`` and ``a`` would be one ADQL column: refused."""
        data = votable_bytes(Table({"A": [1], "a": [2]}))
        with pytest.raises(UploadError, match="two columns"):
            read_upload("t", data, max_rows=10)


# -- result documents ------------------------------------------------------------------------

_CELLS = {
    "short": st.none() | st.integers(-(2**15), 2**15 - 1),
    "int": st.none() | st.integers(-(2**31), 2**31 - 1),
    "long": st.none() | st.integers(-(2**63) + 1, 2**63 - 1),
    "double": st.none() | st.floats(allow_nan=False, allow_infinity=True),
    "char": st.none() | st.text(st.characters(codec="ascii", exclude_categories=("Cc",))),
    "unicodeChar": st.none()
    | st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cc", "Cs"))),
}


@st.composite
def results(draw):
    types = draw(st.lists(st.sampled_from(sorted(_CELLS)), min_size=1, max_size=6))
    columns = tuple(
        ResultColumn(
            f"c{k}",
            datatype,
            arraysize="*" if datatype in {"char", "unicodeChar"} else None,
            ucd="meta.id" if k == 0 else None,
        )
        for k, datatype in enumerate(types)
    )
    rows = draw(st.lists(st.tuples(*(_CELLS[t] for t in types)), max_size=8))
    return QueryResult(columns, rows, overflow=draw(st.booleans()), sql="")


def read_back(result: QueryResult, serialization: Serialization):
    document = result_document(
        result, query="SELECT <stuff> & more", maxrec=8, serialization=serialization
    )
    table = parse_single_table(io.BytesIO(document.encode()), verify="exception")
    return document, table


def same_cell(datatype: str, written: object, read: object) -> bool:
    if written is None:
        return read is np.ma.masked or (isinstance(read, float) and math.isnan(read)) or read == ""
    if datatype in {"char", "unicodeChar"}:
        return str(read) == written.strip() or str(read) == written
    return read == written


class TestResultDocuments:
    @pytest.mark.parametrize("serialization", [Serialization.TABLEDATA, Serialization.BINARY2])
    @given(result=results())
    def test_astropy_reads_back_what_was_written(self, serialization, result):
        """TABLEDATA and BINARY2 hold the rows, nulls and metadata; OVERFLOW after the table."""
        document, table = read_back(result, serialization)
        assert document.nrows == len(result.rows)
        assert document.status == ("OVERFLOW" if result.overflow else "OK")
        assert [f.datatype for f in table.fields] == [c.datatype for c in result.columns]
        assert table.fields[0].ucd == "meta.id"
        assert len(table.array) == len(result.rows)
        for row, read in zip(result.rows, table.array, strict=True):
            for column, written, value in zip(result.columns, row, read, strict=True):
                assert same_cell(column.datatype, written, value), (column, written, value)
        assert document.text().rstrip().endswith("</VOTABLE>")
        assert ('value="OVERFLOW"' in document.tail) == result.overflow

    def test_csv(self):
        """CSV: a header line, then one line per row, nulls empty."""
        result = QueryResult(
            (ResultColumn("a", "long"), ResultColumn("b", "char", "*")),
            [(1, "x,y"), (None, None)],
            overflow=False,
            sql="",
        )
        document = result_document(result, query="q", maxrec=5, serialization=Serialization.CSV)
        assert document.text() == 'a,b\r\n1,"x,y"\r\n,\r\n'
        assert document.nrows == 2


# -- the data --------------------------------------------------------------------------------


OBSCORE_MANDATORY = {
    "dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
    "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov",
    "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime",
    "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd",
    "pol_states", "pol_xel", "facility_name", "instrument_name",
}  # fmt: skip
EPNTAP_MANDATORY = {
    "granule_uid", "granule_gid", "obs_id", "dataproduct_type", "target_name", "target_class",
    "time_min", "time_max", "time_sampling_step_min", "time_sampling_step_max", "time_exp_min",
    "time_exp_max", "spectral_range_min", "spectral_range_max", "spectral_sampling_step_min",
    "spectral_sampling_step_max", "spectral_resolution_min", "spectral_resolution_max",
    "c1min", "c1max", "c2min", "c2max", "c3min", "c3max", "s_region", "c1_resol_min",
    "c1_resol_max", "c2_resol_min", "c2_resol_max", "c3_resol_min", "c3_resol_max",
    "spatial_frame_type", "incidence_min", "incidence_max", "emergence_min", "emergence_max",
    "phase_min", "phase_max", "instrument_host_name", "instrument_name", "measurement_type",
    "processing_level", "creation_date", "modification_date", "release_date", "service_title",
}  # fmt: skip


class TestData:
    def test_standard_columns(self):
        """ObsCore 1.1 and EPN-TAP 2.0 mandatory columns are all there, ObsCore with utypes."""
        obscore = {c.name: c for c in TABLES[TapTable.OBSCORE].columns}
        assert set(obscore) >= OBSCORE_MANDATORY
        assert all(c.utype and c.utype.startswith("obscore:") for c in obscore.values())
        assert obscore["s_region"].xtype == "polygon"
        assert {c.name for c in TABLES[TapTable.EPNTAP].columns} >= EPNTAP_MANDATORY

    @pytest.mark.parametrize("table", list(TapTable))
    def test_rows_are_seeded_per_service(self, table):
        """Same fleet seed and index: same rows; another index: other rows; sizes in range."""
        first = table_rows(table, seed=4, index=1, base_url="http://h/tap/00001")
        assert first == table_rows(table, seed=4, index=1, base_url="http://h/tap/00001")
        assert first != table_rows(table, seed=4, index=2, base_url="http://h/tap/00001")
        assert 200 <= len(first) <= 3000
        assert all(len(row) == len(TABLES[table].columns) for row in first)

    def test_values_are_plausible(self):
        """Positions in range, polygons of four vertices, times ordered, URLs below the service."""
        rows = table_rows(TapTable.OBSCORE, seed=0, index=0, base_url="http://h/tap/00000")
        names = [c.name for c in TABLES[TapTable.OBSCORE].columns]
        for row in rows[:200]:
            cells = dict(zip(names, row, strict=True))
            assert 0 <= cells["s_ra"] < 360
            assert -90 <= cells["s_dec"] <= 90
            assert len(cells["s_region"].split()) == 8
            assert cells["t_min"] < cells["t_max"]
            assert cells["em_min"] < cells["em_max"]
            # DataLink products point at the service's {links} endpoint, others at files.
            prefix = "datalink?ID=" if "content=datalink" in cells["access_format"] else "data/"
            assert cells["access_url"].startswith("http://h/tap/00000/" + prefix)

    @pytest.mark.anyio
    async def test_service_builds_its_database_once(self):
        """A TAP service builds its database on first use and answers its own tables."""
        spec = ServiceSpec.make(
            5,
            protocol=Protocol.TAP,
            profile=ServiceProfile(tap=TapProfile(tables=(TapTable.CATALOGUE,))),
        )
        service = TapService(spec, "http://h/tap/00005")
        try:
            first = await service.database()
            assert await service.database() is first
            with pytest.raises(AdqlError, match="unknown table"):
                first.execute("SELECT * FROM ivoa.obscore", maxrec=1)
            count = first.execute("SELECT COUNT(*) FROM cat.sources", maxrec=1).rows
            expected = len(table_rows(TapTable.CATALOGUE, seed=0, index=5, base_url="x"))
            assert count == [(expected,)]
        finally:
            service.close()


def test_profile_validation():
    """Inconsistent TAP profiles are refused."""
    with pytest.raises(ValueError, match="maxrec_default"):
        TapProfile(maxrec_default=10, maxrec_hard=5)
    with pytest.raises(ValueError, match="limit_phase"):
        TapProfile(limit_phase="COMPLETED")
    with pytest.raises(ValueError, match="duplicate"):
        TapProfile(tables=(TapTable.OBSCORE, TapTable.OBSCORE))
    assert TapProfile(capabilities="broken").capabilities is CapabilitiesState.BROKEN
