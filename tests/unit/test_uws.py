"""UWS job documents, phases and job lists (`vosweep.protocols.uws`), with odd documents."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vosweep.errors import ResponseFormatError
from vosweep.protocols.uws import (
    JobSummary,
    Phase,
    ResultRef,
    parse_job,
    parse_job_list,
    parse_phase,
)

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def job(inner: str, *, prefix: str = "uws", version: str | None = "1.1") -> bytes:
    """A job document with *inner* as its children; {p} in *inner* is the element prefix."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{UWS_NS}"' if prefix else f'xmlns="{UWS_NS}"'
    version_attr = f' version="{version}"' if version else ""
    body = inner.replace("{p}", p)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{p}job {xmlns} {XLINK} {XSI}{version_attr}>'
        f"{body}</{p}job>"
    ).encode()


MINIMAL = "<{p}jobId>42</{p}jobId><{p}phase>EXECUTING</{p}phase>"


class TestPhase:
    def test_final_phases(self):
        """Only COMPLETED, ERROR, ABORTED and ARCHIVED stop the polling."""
        assert {p for p in Phase if p.final} == {
            Phase.COMPLETED,
            Phase.ERROR,
            Phase.ABORTED,
            Phase.ARCHIVED,
        }

    def test_active_phases(self):
        """QUEUED and EXECUTING are the phases a blocking WAIT is for."""
        assert {p for p in Phase if p.active} == {Phase.QUEUED, Phase.EXECUTING}

    def test_no_phase_is_both(self):
        """A final phase is never active."""
        assert not any(p.final and p.active for p in Phase)

    @given(phase=st.sampled_from(list(Phase)), data=st.data())
    def test_read_any_case_and_padding(self, phase, data):
        """Phases are read whatever their case and surrounding whitespace."""
        text = "".join(
            c.lower() if data.draw(st.booleans(), label=f"lower {i}") else c
            for i, c in enumerate(phase.value)
        )
        pad = data.draw(st.sampled_from(["", " ", "\n", "\t \r\n"]))
        assert Phase.read(pad + text + pad) is phase

    @given(text=st.text(max_size=30))
    def test_read_never_fails(self, text):
        """Any string reads as a phase: unknown ones as UNKNOWN."""
        phase = Phase.read(text)
        known = {p.value for p in Phase}
        assert phase is (
            Phase(text.strip().upper()) if text.strip().upper() in known else Phase.UNKNOWN
        )


class TestParseJob:
    def test_minimal(self):
        """A job document with only jobId and phase leaves everything else None."""
        summary = parse_job(job(MINIMAL))
        assert summary == JobSummary(
            job_id="42",
            phase=Phase.EXECUTING,
            results=(),
            error_message=None,
            error_type=None,
            has_error_detail=False,
            execution_duration=None,
            destruction=None,
            quote=None,
            run_id=None,
            owner_id=None,
            version="1.1",
        )

    def test_full_document(self):
        """Every field of a UWS 1.1 job document is read."""
        inner = (
            "<{p}jobId>  abc-1  </{p}jobId><{p}runId>my run</{p}runId>"
            "<{p}ownerId>alice</{p}ownerId><{p}phase>COMPLETED</{p}phase>"
            "<{p}quote>2020-01-01T00:00:00Z</{p}quote>"
            "<{p}creationTime>2020-01-01T00:00:00Z</{p}creationTime>"
            "<{p}startTime>2020-04-17T08:10:22.793+0800</{p}startTime>"
            "<{p}endTime>2020-04-17T08:11:00+0800</{p}endTime>"
            "<{p}executionDuration>600</{p}executionDuration>"
            "<{p}destruction>2020-02-01T00:00:00Z</{p}destruction>"
            '<{p}parameters><{p}parameter id="query">SELECT 1</{p}parameter></{p}parameters>'
            "<{p}results>"
            '<{p}result id="other" xlink:href="http://x.test/other"/>'
            '<{p}result id="result" xlink:href="http://x.test/result"/>'
            "</{p}results>"
        )
        summary = parse_job(job(inner))
        assert summary.job_id == "abc-1"
        assert summary.run_id == "my run"
        assert summary.owner_id == "alice"
        assert summary.phase is Phase.COMPLETED
        assert summary.quote == "2020-01-01T00:00:00Z"
        assert summary.start_time == "2020-04-17T08:10:22.793+0800"
        assert summary.execution_duration == 600.0
        assert summary.destruction == "2020-02-01T00:00:00Z"
        assert summary.results == (
            ResultRef("other", "http://x.test/other"),
            ResultRef("result", "http://x.test/result"),
        )

    @pytest.mark.parametrize("prefix", ["uws", "", "ns0", "u"])
    def test_any_prefix(self, prefix):
        """Any namespace prefix, or a default namespace, reads the same."""
        summary = parse_job(job(MINIMAL, prefix=prefix))
        assert (summary.job_id, summary.phase) == ("42", Phase.EXECUTING)

    def test_no_namespace_at_all(self):
        """A job document without any namespace declaration still reads."""
        body = b"<job><jobId>1</jobId><phase>QUEUED</phase></job>"
        assert parse_job(body).phase is Phase.QUEUED

    def test_undeclared_prefix(self):
        """A prefix nobody declared (not namespace-well-formed) is tolerated."""
        body = b"<uws:job><uws:jobId>1</uws:jobId><uws:phase>HELD</uws:phase></uws:job>"
        assert parse_job(body).phase is Phase.HELD

    def test_uws_10_without_version(self):
        """UWS 1.0 documents have no version attribute: 1.0 is assumed."""
        assert parse_job(job(MINIMAL, version=None)).version == "1.0"

    def test_cdata_and_whitespace(self):
        """CDATA sections and indentation around values are removed (CASDA, ESA)."""
        inner = (
            "<{p}jobId>\n   <![CDATA[a7b5-1201]]>\n  </{p}jobId>"
            "<{p}phase>\n COMPLETED \n</{p}phase>"
            "<{p}ownerId><![CDATA[anonymous]]></{p}ownerId>"
        )
        summary = parse_job(job(inner))
        assert (summary.job_id, summary.phase, summary.owner_id) == (
            "a7b5-1201",
            Phase.COMPLETED,
            "anonymous",
        )

    def test_nil_and_empty_elements(self):
        """xsi:nil and empty elements both mean absent."""
        inner = (
            MINIMAL + '<{p}runId xsi:nil="true"/><{p}ownerId/><{p}quote xsi:nil="true"/>'
            "<{p}executionDuration></{p}executionDuration>"
            '<{p}destruction xsi:nil="true" /><{p}results/><{p}errorSummary xsi:nil="true"/>'
        )
        summary = parse_job(job(inner))
        assert summary.run_id is None
        assert summary.owner_id is None
        assert summary.quote is None
        assert summary.execution_duration is None
        assert summary.destruction is None
        assert summary.results == ()
        assert summary.error_message is None
        assert summary.error_type is None
        assert not summary.has_error_detail

    def test_esa_quote(self):
        """ESA writes -1 as the quote: kept as written."""
        assert parse_job(job(MINIMAL + "<{p}quote>-1</{p}quote>")).quote == "-1"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("600", 600.0), ("0", 0.0), ("12.5", 12.5), ("soon", None), ("nan", None), ("inf", None)],
    )
    def test_execution_duration(self, text, expected):
        """Seconds as a float; unreadable values become None instead of an error."""
        body = job(MINIMAL + f"<{{p}}executionDuration>{text}</{{p}}executionDuration>")
        assert parse_job(body).execution_duration == expected

    def test_error_summary(self):
        """The error summary's message, type and hasDetail are read."""
        inner = (
            "<{p}jobId>1</{p}jobId><{p}phase>ERROR</{p}phase>"
            '<{p}errorSummary type="Fatal" hasDetail="true">'
            "<{p}message>\n  Table   foo\n does not exist </{p}message></{p}errorSummary>"
        )
        summary = parse_job(job(inner))
        assert summary.phase is Phase.ERROR
        assert summary.error_message == "Table foo does not exist"
        assert summary.error_type == "fatal"
        assert summary.has_error_detail

    def test_empty_error_summary(self):
        """An empty errorSummary element (CASDA) has no message."""
        summary = parse_job(job(MINIMAL + "<{p}errorSummary/>"))
        assert (summary.error_message, summary.error_type) == (None, None)

    def test_job_info_ignored(self):
        """jobInfo may hold anything, even elements called phase or jobId."""
        inner = MINIMAL + "<{p}jobInfo><phase>COMPLETED</phase><jobId>x</jobId></{p}jobInfo>"
        summary = parse_job(job(inner))
        assert (summary.job_id, summary.phase) == ("42", Phase.EXECUTING)

    @pytest.mark.parametrize("phase", ["RUNNING", "done", "SHELVED", "QUEUED_FOR_HSM"])
    def test_unknown_phase(self, phase):
        """Phases no standard defines become UNKNOWN rather than an error."""
        body = job(f"<{{p}}jobId>1</{{p}}jobId><{{p}}phase>{phase}</{{p}}phase>")
        assert parse_job(body).phase is Phase.UNKNOWN

    @given(
        prefix=st.sampled_from(["", "uws", "ns0", "a.b", "x-y"]),
        phase=st.sampled_from(list(Phase)),
        lower=st.booleans(),
        job_id=st.text(
            st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]),
            min_size=1,
            max_size=20,
        ).filter(lambda s: s.strip() == s),
    )
    @settings(max_examples=60)
    def test_round_trip(self, prefix, phase, lower, job_id):
        """Whatever the prefix, case and job id, the values come back."""
        escaped = job_id.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "]]&gt;")
        text = phase.value.lower() if lower else phase.value
        body = job(
            f"<{{p}}jobId>{escaped}</{{p}}jobId><{{p}}phase>{text}</{{p}}phase>", prefix=prefix
        )
        summary = parse_job(body)
        assert (summary.job_id, summary.phase) == (job_id, phase)

    def test_leading_whitespace_and_bom(self):
        """A BOM and a newline before the XML declaration are tolerated."""
        body = b"\xef\xbb\xbf\n  " + job(MINIMAL)
        assert parse_job(body).job_id == "42"

    def test_utf8_spelled_utf8(self):
        """An XML declaration saying utf8 (which expat refuses) is read as UTF-8."""
        body = job(MINIMAL + "<{p}ownerId>Jos\u00e9</{p}ownerId>").replace(b"UTF-8", b"utf8")
        assert parse_job(body).owner_id == "Jos\u00e9"


class TestParseJobRefused:
    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"", "not well-formed"),
            (b"   ", "not well-formed"),
            (b"COMPLETED", "not well-formed"),
            (b"<html><head><title>Oops</title></head><body>down</body></html>", "HTML page"),
            (b"<!DOCTYPE html><html><body>Login</body></html>", "HTML page"),
            (b"<html><body>unclosed", "HTML page"),
            (
                (
                    b'<VOTABLE><RESOURCE><INFO name="QUERY_STATUS" value="ERROR">no such job'
                    b"</INFO></RESOURCE></VOTABLE>"
                ),
                "VOTable.*no such job",
            ),
            (b'{"jobId": "1", "phase": "COMPLETED"}', "not well-formed"),
            # The root decides at once: what follows it is never parsed.
            (b"<VOTABLE><TABLE><DATA>" + b"<TR><TD>1</TD></TR>" * 100 + b"\x00 junk", "VOTable"),
            (
                f'<uws:jobs xmlns:uws="{UWS_NS}"><uws:jobref id="1"/></uws:jobs>'.encode(),
                "job list instead",
            ),
            (job("<{p}phase>COMPLETED</{p}phase>"), "without a jobId"),
            (job("<{p}jobId>7</{p}jobId>"), "'7' without a phase"),
            (job("<{p}jobId>7</{p}jobId><{p}phase/>"), "without a phase"),
            (job("<{p}jobId/><{p}phase>ERROR</{p}phase>"), "without a jobId"),
            (job(MINIMAL)[:-20], "not well-formed"),
        ],
    )
    def test_not_a_job(self, body, match):
        """Anything but a job document is a ResponseFormatError saying what it is."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_job(body)

    @pytest.mark.parametrize(
        "body",
        [
            (
                b'<?xml version="1.0"?>'
                b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
                b"<job><jobId>&lol2;</jobId><phase>COMPLETED</phase></job>"
            ),
            (
                b'<?xml version="1.0"?><!DOCTYPE job [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                b"<job><jobId>&xxe;</jobId><phase>COMPLETED</phase></job>"
            ),
            (
                b'<!DOCTYPE job SYSTEM "http://example.invalid/uws.dtd">'
                b"<job><jobId>1</jobId><phase>COMPLETED</phase></job>"
            ),
        ],
        ids=["billion-laughs", "xxe", "external-dtd"],
    )
    def test_doctype_refused(self, body):
        """No DOCTYPE, hence no entity, is ever accepted."""
        with pytest.raises(ResponseFormatError, match="DOCTYPE"):
            parse_job(body)

    @given(st.binary(max_size=200))
    @settings(max_examples=100)
    def test_garbage_is_a_format_error(self, body):
        """Random bytes never raise anything but ResponseFormatError."""
        with contextlib.suppress(ResponseFormatError):
            parse_job(body)


class TestResultUrl:
    JOB_URL = "http://tap.test/tap/async/42"

    def summary(self, *results: tuple[str, str]) -> JobSummary:
        inner = "".join(f'<{{p}}result id="{i}" xlink:href="{h}"/>' for i, h in results)
        return parse_job(job(MINIMAL + f"<{{p}}results>{inner}</{{p}}results>"))

    def test_named_result_preferred(self):
        """The result called 'result' wins over the first one (TAP names it so)."""
        summary = self.summary(("log", "http://x.test/log"), ("result", "http://x.test/r"))
        assert summary.result_url(self.JOB_URL) == "http://x.test/r"

    def test_first_result_otherwise(self):
        """Without a 'result', the first result is the one."""
        summary = self.summary(("resultsTable", "http://x.test/t"), ("b", "http://x.test/b"))
        assert summary.result_url(self.JOB_URL) == "http://x.test/t"

    def test_no_result(self):
        """No result at all gives None."""
        assert self.summary().result_url(self.JOB_URL) is None

    @pytest.mark.parametrize(
        ("href", "expected"),
        [
            ("results/result", "http://tap.test/tap/async/42/results/result"),
            ("/tap/async/42/results/result", "http://tap.test/tap/async/42/results/result"),
            ("//cdn.test/r.vot", "http://cdn.test/r.vot"),
            ("https://s3.test/r?X-Amz=1&amp;b=2", "https://s3.test/r?X-Amz=1&b=2"),
        ],
    )
    def test_relative_href(self, href, expected):
        """Relative links resolve below the job; absolute ones are kept (entities decoded)."""
        summary = self.summary(("result", href))
        assert summary.result_url(self.JOB_URL) == expected
        assert summary.result_url(self.JOB_URL + "/") == expected

    def test_result_without_href_skipped(self):
        """A result element without a link is left out."""
        summary = self.summary(("result", ""), ("other", "http://x.test/o"))
        assert summary.results == (ResultRef("other", "http://x.test/o"),)
        assert summary.result_url(self.JOB_URL) == "http://x.test/o"

    def test_plain_href_attribute(self):
        """An href without the xlink prefix is read too."""
        body = job(MINIMAL + '<{p}results><{p}result id="result" href="r.vot"/></{p}results>')
        assert parse_job(body).results == (ResultRef("result", "r.vot"),)


class TestParsePhase:
    @pytest.mark.parametrize(
        ("body", "phase"),
        [
            (b"COMPLETED", Phase.COMPLETED),
            (b"EXECUTING\n", Phase.EXECUTING),
            (b"  queued \r\n", Phase.QUEUED),
            (b"\xef\xbb\xbfERROR", Phase.ERROR),
            (b"SHELVED", Phase.UNKNOWN),
        ],
    )
    def test_plain_text(self, body, phase):
        """The text/plain phase body, in any case and with any padding."""
        assert parse_phase(body) is phase

    def test_job_document_instead(self):
        """A service answering {job}/phase with the job document: its phase is used."""
        assert parse_phase(job(MINIMAL)) is Phase.EXECUTING

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"", "empty"),
            (b" \n ", "empty"),
            (b"Internal Server Error", "not a UWS phase"),
            (b"X" * 200, "not a UWS phase"),
            (b"<html><body>503</body></html>", "HTML page"),
            (b"phase=COMPLETED", "not a UWS phase"),
        ],
    )
    def test_refused(self, body, match):
        """Bodies that are not a phase are a ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_phase(body)

    @given(st.binary(max_size=80))
    def test_garbage(self, body):
        """Random bytes give a phase or a ResponseFormatError, nothing else."""
        with contextlib.suppress(ResponseFormatError):
            assert isinstance(parse_phase(body), Phase)


class TestParseJobList:
    def test_jobrefs(self):
        """Standard job lists: jobref ids and phases, in order."""
        body = (
            f'<uws:jobs xmlns:uws="{UWS_NS}" {XLINK}>'
            '<uws:jobref id="a" xlink:href="http://x.test/a"><uws:phase>COMPLETED</uws:phase>'
            "</uws:jobref>"
            '<uws:jobref id=" b "><uws:phase>executing</uws:phase></uws:jobref>'
            '<uws:jobref id="c"/>'
            "<uws:jobref><uws:phase>ERROR</uws:phase></uws:jobref>"
            "</uws:jobs>"
        ).encode()
        assert parse_job_list(body) == [
            ("a", Phase.COMPLETED),
            ("b", Phase.EXECUTING),
            ("c", Phase.UNKNOWN),
        ]

    def test_inline_jobs(self):
        """ESA's lists hold whole job elements instead of references."""
        body = (
            f'<jobs xmlns="{UWS_NS}"><job><jobId><![CDATA[1479O]]></jobId><phase>COMPLETED</phase>'
            "</job><job><jobId>2</jobId><phase>ERROR</phase></job></jobs>"
        ).encode()
        assert parse_job_list(body) == [("1479O", Phase.COMPLETED), ("2", Phase.ERROR)]

    def test_empty_list(self):
        """A list without jobs is an empty list."""
        assert parse_job_list(f'<uws:jobs xmlns:uws="{UWS_NS}"/>'.encode()) == []

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (job(MINIMAL), "single UWS job document instead"),
            (b"<html><body>x</body></html>", "HTML page"),
            (b"<capabilities/>", "root <capabilities>"),
        ],
    )
    def test_not_a_list(self, body, match):
        """A job document or anything else is refused with a clear message."""
        with pytest.raises(ResponseFormatError, match=match):
            parse_job_list(body)
