"""Requests are built purely: cones in degrees, parameters merged into access URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import astropy.units as u
import pytest
from astropy.coordinates import Angle, SkyCoord
from hypothesis import given
from hypothesis import strategies as st

import vosweep
from vosweep.protocols import scs
from vosweep.protocols.base import (
    Response,
    check_http_status,
    parse_retry_after,
    with_params,
)
from vosweep.scheduling.plan import Plan


class TestCone:
    def test_plain_degrees(self):
        """Floats are degrees; RA wraps into [0, 360)."""
        cone = vosweep.Cone(ra=-10, dec=5, radius=0.5)
        assert cone.ra == 350.0

    def test_skycoord_and_quantities(self):
        """SkyCoord centres (any frame) and angle quantities are converted to degrees."""
        center = SkyCoord(83.6 * u.deg, 22.0 * u.deg, frame="icrs")
        cone = vosweep.Cone(center, radius=6 * u.arcmin)
        assert cone.ra == pytest.approx(83.6)
        assert cone.radius == pytest.approx(0.1)
        gal = SkyCoord(l=0 * u.deg, b=0 * u.deg, frame="galactic")
        assert vosweep.Cone(gal, radius=Angle("1d")).ra == pytest.approx(266.405, abs=1e-3)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"ra": 1, "dec": 91, "radius": 1}, "dec"),
            ({"ra": 1, "dec": 0, "radius": 0}, "radius"),
            ({"ra": 1, "dec": 0, "radius": 200}, "radius"),
            ({"ra": "x", "dec": 0, "radius": 1}, "ra"),
            ({"ra": float("nan"), "dec": 0, "radius": 1}, "finite"),
            ({"ra": 1, "dec": 0, "radius": 5 * u.kg}, "angle"),
        ],
    )
    def test_bad_values_name_the_problem(self, kwargs, match):
        """Invalid cones are UsageErrors naming the bad field."""
        with pytest.raises(vosweep.UsageError, match=match):
            vosweep.Cone(**kwargs)

    def test_array_skycoord_refused(self):
        """A cone has one centre."""
        with pytest.raises(vosweep.UsageError, match="single position"):
            vosweep.Cone(SkyCoord([1, 2] * u.deg, [3, 4] * u.deg), radius=1)


class TestWithParams:
    def test_existing_parameters_survive(self):
        """Registered URLs keep their own parameters; a bare '?' is fine."""
        url = with_params("http://h.test/cone?CAT=II/246&", [("RA", "1.0")])
        assert parse_qs(urlsplit(url).query) == {"CAT": ["II/246"], "RA": ["1.0"]}
        assert with_params("http://h.test/cone?", [("RA", "1")]) == "http://h.test/cone?RA=1"

    def test_ours_replace_theirs_case_insensitively(self):
        """A parameter we set replaces one of the same name in the URL."""
        url = with_params("http://h.test/c?ra=5&x=1", [("RA", "1")])
        assert parse_qs(urlsplit(url).query) == {"x": ["1"], "RA": ["1"]}

    @given(st.text(min_size=0, max_size=30))
    def test_values_are_encoded(self, value):
        """Any value round-trips through the URL encoding."""
        url = with_params("http://h.test/c", [("P", value)])
        assert parse_qs(urlsplit(url).query, keep_blank_values=True)["P"] == [value]


class TestScsBuild:
    def test_parameters_in_degrees(self):
        """RA, DEC, SR are decimal degrees at full precision; VERB when set."""
        svc = vosweep.Service.scs("http://h.test/scs?")
        req = scs.build(svc, vosweep.Cone(ra=83.633083, dec=22.0145, radius=0.1, verb=3))
        q = parse_qs(urlsplit(req.url).query)
        assert q == {"RA": ["83.633083"], "DEC": ["22.0145"], "SR": ["0.1"], "VERB": ["3"]}
        assert req.method == "GET"

    def test_other_queries_refused(self):
        """An SCS service cannot answer something that is not a cone."""
        with pytest.raises(vosweep.UsageError, match="cone search"):
            scs.build(vosweep.Service.scs("http://h.test/"), "SELECT 1")


class TestPlan:
    def test_duplicates_and_misfits_are_skipped(self):
        """The same access URL twice is queried once; the rest is planned lazily."""
        targets = ["http://a.test/1", "http://a.test/1", vosweep.Service.tap("http://t.test/tap")]
        jobs = list(Plan(targets, vosweep.Cone(ra=1, dec=1, radius=1)))
        assert jobs[0].request is not None
        assert jobs[1].skip_reason == "duplicate of an earlier target"
        assert jobs[2].skip_reason is not None

    def test_lazy(self):
        """Targets are consumed only as jobs are asked for."""
        consumed = []

        def gen():
            for i in range(10**9):
                consumed.append(i)
                yield f"http://h{i}.test/"

        plan = Plan(gen(), vosweep.Cone(ra=1, dec=1, radius=1))
        next(plan)
        next(plan)
        assert consumed == [0, 1]

    def test_rest_skips_building(self):
        """The unread tail is reported without building requests."""
        plan = Plan([f"http://h{i}.test/" for i in range(5)], vosweep.Cone(ra=1, dec=1, radius=1))
        next(plan)
        rest = list(plan.rest())
        assert [j.index for j in rest] == [1, 2, 3, 4]
        assert all(j.request is None for j in rest)

    def test_strings_need_a_protocol(self):
        """Plain URLs with a query that implies no protocol are refused."""
        with pytest.raises(vosweep.UsageError, match="protocol"):
            next(Plan(["http://h.test/"], object()))

    def test_targeted_targets_bring_their_own_query(self):
        """Each Targeted gets its own ADQL; one service may be asked once per key."""
        tap = vosweep.Service.tap("http://t.test/tap")
        targets = [
            vosweep.Targeted(tap, vosweep.TapQuery("SELECT * FROM a"), key="a"),
            vosweep.Targeted(tap, vosweep.TapQuery("SELECT * FROM b"), key="b"),
            vosweep.Targeted(tap, vosweep.TapQuery("SELECT * FROM a"), key="a"),
            "http://s.test/scs",
        ]
        jobs = list(Plan(targets, vosweep.Cone(ra=1, dec=1, radius=1)))
        assert [j.query.adql for j in jobs[:2]] == ["SELECT * FROM a", "SELECT * FROM b"]
        assert jobs[0].request is not None
        assert jobs[1].request is not None
        assert jobs[2].skip_reason == "duplicate of an earlier target"
        assert isinstance(jobs[3].query, vosweep.Cone)

    def test_plain_target_without_a_query_is_refused(self):
        """With no fan-out query, only Targeted targets can be planned."""
        tap = vosweep.Service.tap("http://t.test/tap")
        plan = Plan([vosweep.Targeted(tap, vosweep.TapQuery("SELECT 1")), tap], None)
        assert next(plan).request is not None
        with pytest.raises(vosweep.UsageError, match="no query for"):
            next(plan)

    @pytest.mark.parametrize(
        ("service", "query", "message"),
        [
            ("http://t.test/tap", vosweep.Cone(ra=1, dec=1, radius=1), "vosweep.Service"),
            (vosweep.Service.tap("http://t.test/tap"), None, "needs a query"),
        ],
    )
    def test_targeted_checks_its_fields(self, service, query, message):
        with pytest.raises(vosweep.UsageError, match=message):
            vosweep.Targeted(service, query)


class TestHttpStatus:
    def test_2xx_passes(self):
        """Success statuses raise nothing."""
        check_http_status(Response(url="u", status=200))

    def test_429_is_rate_limited_with_retry_after(self):
        """429 carries the Retry-After seconds."""
        with pytest.raises(vosweep.RateLimited) as info:
            check_http_status(Response(url="u", status=429, headers={"retry-after": "7"}))
        assert info.value.retry_after == 7.0

    def test_503_without_retry_after_is_plain(self):
        """503 without Retry-After is an ordinary (transient) HTTP error."""
        with pytest.raises(vosweep.HTTPStatusError) as info:
            check_http_status(Response(url="u", status=503))
        assert not isinstance(info.value, vosweep.RateLimited)
        assert info.value.is_transient()

    def test_dali_error_message_is_used(self):
        """A VOTable error body's QUERY_STATUS text becomes the message."""
        body = (
            b'<VOTABLE><RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">'
            b"Unknown column foo</INFO></RESOURCE></VOTABLE>"
        )
        with pytest.raises(vosweep.HTTPStatusError, match="Unknown column foo"):
            check_http_status(Response(url="u", status=400, body=body))

    def test_html_error_page_reads_once(self):
        """An HTML error page's title is not repeated by its heading in the message."""
        body = (
            b"<html><head><title>500 Internal Server Error</title></head><body>"
            b"<h1>500 Internal Server Error</h1><p>database down</p></body></html>"
        )
        with pytest.raises(vosweep.HTTPStatusError) as info:
            check_http_status(Response(url="u", status=500, body=body))
        assert str(info.value) == "HTTP 500: 500 Internal Server Error database down"


class TestRetryAfter:
    def test_seconds_and_dates(self):
        """Delta-seconds and HTTP dates are both understood; junk is ignored."""
        now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
        assert parse_retry_after("120") == 120
        assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
        assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
        assert parse_retry_after("soon") is None
        assert parse_retry_after("") is None
        assert parse_retry_after("1.5") == 1.5
