"""The RegTAP client, driven through the mock transport against a small in-memory registry.

`FakeRegistry` answers the client's queries from a handful of ``rr`` rows, the way a
RegTAP endpoint does (VOTables with QUERY_STATUS, OVERFLOW at a row limit, error VOTables
with HTTP 400 for columns or tables it does not have), and counts what it was asked.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape

import pytest

import vosweep
import vosweep.registry
from vosweep import _log
from vosweep.errors import (
    HTTPStatusError,
    QueryRejected,
    RegistryFeatureMissing,
    RegistryUnavailable,
    ResponseFormatError,
    TransportError,
    UsageError,
)
from vosweep.protocols import tap
from vosweep.protocols.base import Request, Response
from vosweep.registry import RegistryClient, SearchSpec, clear_cache
from vosweep.registry import cache as cache_module
from vosweep.registry.cache import SHARED_CACHE, TTLCache
from vosweep.registry.constraints import RESOURCE_COLUMNS
from vosweep.registry.features import COVERAGE_TABLES
from vosweep.transport import MockTransport

pytestmark = pytest.mark.anyio

ENDPOINT = "http://reg.test/tap"
BACKUP = "http://backup.test/tap"
THIRD = "http://third.test/tap"

CONESEARCH = "ivo://ivoa.net/std/conesearch"
TAP = "ivo://ivoa.net/std/tap"
SSA = "ivo://ivoa.net/std/ssa"
SIA1 = "ivo://ivoa.net/std/sia"
SIA2 = "ivo://ivoa.net/std/sia#query-2.0"
VOSI_CAPS = "ivo://ivoa.net/std/vosi#capabilities"
GAVO_CAPABILITIES = "pyvo/pyvo/registry/tests/data/capabilities.xml"
CORPUS_SKIP = "../shared/corpus not found: set VOSWEEP_CORPUS to run the real-response tests"


def _corpus() -> Path | None:
    """The corpus folder next to the repository (or $VOSWEEP_CORPUS), None when absent."""
    override = os.environ.get("VOSWEEP_CORPUS")
    default = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    root = Path(override) if override else default
    return root if root.is_dir() else None


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Every test starts (and leaves) with an empty process-wide registry cache."""
    clear_cache()
    yield
    clear_cache()


# --- VOTables ----------------------------------------------------------------------------

_INT_COLUMNS = frozenset({"cap_index", "intf_index", "authenticated_only", "table_index"})
_DOUBLE_COLUMNS = frozenset({"region_of_regard"})


def _field(name: str) -> str:
    if name in _INT_COLUMNS:
        return f'<FIELD name="{name}" datatype="int"/>'
    if name in _DOUBLE_COLUMNS:
        return f'<FIELD name="{name}" datatype="double"/>'
    return f'<FIELD name="{name}" datatype="unicodeChar" arraysize="*"/>'


def votable(columns: list[str], rows: list[dict[str, Any]], *, status: str = "OK") -> bytes:
    """A TAP result: *rows* (dicts, None for NULL) under *columns*; OVERFLOW after the data."""
    trs = "".join(
        "<TR>"
        + "".join(
            f"<TD>{'' if row.get(name) is None else escape(str(row[name]))}</TD>"
            for name in columns
        )
        + "</TR>"
        for row in rows
    )
    trailer = f'<INFO name="QUERY_STATUS" value="{status}"/>' if status != "OK" else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        '<RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/>'
        f"<TABLE>{''.join(_field(name) for name in columns)}"
        f"<DATA><TABLEDATA>{trs}</TABLEDATA></DATA></TABLE>{trailer}</RESOURCE></VOTABLE>"
    ).encode()


def error_votable(message: str) -> bytes:
    """A TAP error document (DALI: QUERY_STATUS=ERROR, the reason as the INFO's text)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">{escape(message)}'
        "</INFO></RESOURCE></VOTABLE>"
    ).encode()


def capabilities(*, regtap: str | None = "1.1", union: bool = True) -> bytes:
    """A small TAPRegExt capabilities document of a RegTAP endpoint."""
    data_model = (
        f'<dataModel ivo-id="ivo://ivoa.net/std/RegTAP#{regtap}">Registry {regtap}</dataModel>'
        if regtap
        else ""
    )
    sets = (
        '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adql-sets">'
        "<feature><form>UNION</form></feature></languageFeatures>"
        if union
        else ""
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface role="std" xsi:type="vs:ParamHTTP"><accessURL>http://x.test/tap</accessURL>
    </interface>
    {data_model}
    <language>
      <name>ADQL</name>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adql-string">
        <feature><form>ILIKE</form></feature></languageFeatures>
      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-udf">
        <feature><form>ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC)
          -&gt; INTEGER</form></feature></languageFeatures>
      {sets}
    </language>
  </capability>
</cap:capabilities>""".encode()


def ok(request: Request, body: bytes, content_type: str = "application/x-votable+xml") -> Response:
    return Response(url=request.url, status=200, body=body, content_type=content_type)


# --- an in-memory registry ---------------------------------------------------------------


@dataclass
class Intf:
    """One capability with one interface (``rr.capability`` + ``rr.interface``)."""

    standard_id: str | None
    access_url: str
    role: str | None = "std"
    type: str = "vs:paramhttp"
    mirrors: str | None = None
    authenticated_only: int = 0
    description: str | None = None


@dataclass
class Res:
    """One resource with everything the client may ask about it."""

    ivoid: str
    short_name: str | None = None
    title: str | None = None
    interfaces: list[Intf] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    alt_identifiers: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, column names)
    contacts: list[tuple[str, str]] = field(default_factory=list)  # (name, email)
    waveband: str | None = "optical#uv"
    creator_seq: str | None = "Doe, J.; Roe, R."
    res_type: str = "vs:catalogservice"
    description: str | None = "A test resource."
    region_of_regard: float | None = None
    source_value: str | None = None
    reference_url: str | None = None


_IN_LIST = re.compile(r"ivoid IN \(((?:'(?:[^']|'')*'(?:, )?)+)\)")
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_SUBQUERY = "ivoid IN (SELECT ivoid FROM rr.resource WHERE"
_RR_11 = {
    "rr.resource": ["ivoid", "res_type", "short_name", "res_title"],
    "rr.capability": ["ivoid", "cap_index", "standard_id"],
    "rr.interface": ["ivoid", "cap_index", "intf_index", "access_url", "intf_type", "intf_role"],
    "rr.res_subject": ["ivoid", "res_subject"],
    "rr.res_table": ["ivoid", "table_index", "table_name"],
    "rr.table_column": ["ivoid", "table_index", "name"],
    "rr.res_role": ["ivoid", "role_name", "base_role"],
}


_OUTER_FROM = re.compile(r"^\s*SELECT\b.*?\bFROM\s+(\S+)", re.DOTALL | re.IGNORECASE)
_FROM_KINDS = {
    "rr.resource": "search",
    "tap_schema.columns": "schema",
    "rr.capability": "interfaces",
    "rr.res_subject": "subjects",
    "rr.alt_identifier": "alt_identifiers",
    "rr.res_table": "tables",
    "rr.table_column": "columns",
    "rr.res_role": "contacts",
}


def kind_of(query: str) -> str:
    """Which of the client's queries *query* is (by the outer query's first table)."""
    match = _OUTER_FROM.match(query)
    kind = _FROM_KINDS.get(match[1].lower()) if match else None
    if kind is None:
        raise AssertionError(f"unexpected query: {query}")
    return kind


def request_kind(request: Request) -> str | None:
    """Which query *request* sends (None for the capabilities)."""
    query = dict(request.data).get("QUERY")
    return kind_of(query) if query is not None else None


class FakeRegistry:
    """A RegTAP endpoint in memory: a handler for `MockTransport`.

    Args:
        resources: What the registry holds; every search finds all of them (the ADQL is
            not evaluated), in ivoid order, cut at ``TOP``.
        regtap: ``"1.1"`` (mirror_url, authenticated_only, rr.alt_identifier) or ``"1.0"``.
        capabilities: The capabilities document, or None for a 404.
        row_limit: Rows an answer may have before it is cut, with QUERY_STATUS=OVERFLOW.
    """

    def __init__(
        self,
        resources: list[Res],
        *,
        regtap: str = "1.1",
        capabilities: bytes | None = None,
        row_limit: int | None = None,
        tap_schema: str = "ok",
        coverage: bool = False,
    ) -> None:
        self.resources = sorted(resources, key=lambda r: r.ivoid)
        self.regtap = regtap
        self.capabilities = capabilities
        self.row_limit = row_limit
        self.tap_schema = tap_schema
        self.coverage = coverage
        self.queries: list[str] = []
        self.batches: dict[str, list[list[str]]] = {}
        self.subqueries: Counter[str] = Counter()
        self.capability_requests = 0

    def kinds(self) -> Counter[str]:
        return Counter(kind_of(query) for query in self.queries)

    def __call__(self, request: Request) -> Response:
        if request.url.endswith("/capabilities"):
            self.capability_requests += 1
            if self.capabilities is None:
                return Response(url=request.url, status=404, body=b"Not Found")
            return ok(request, self.capabilities, "text/xml")
        assert request.url.endswith("/sync"), request.url
        assert request.method == "POST"
        form = dict(request.data)
        assert form["REQUEST"] == "doQuery"
        assert form["LANG"] == "ADQL"
        query = form["QUERY"]
        self.queries.append(query)
        kind = kind_of(query)
        ivoids: list[str] = []
        if kind not in {"search", "schema"} and _SUBQUERY in query:
            # The search named by itself: every search finds everything here.
            ivoids = [r.ivoid for r in self.resources]
            self.subqueries[kind] += 1
        elif kind not in {"search", "schema"}:
            match = _IN_LIST.search(query)
            assert match, query
            ivoids = [s.replace("''", "'") for s in _QUOTED.findall(match[1])]
            self.batches.setdefault(kind, []).append(ivoids)
        if kind == "schema" and self.tap_schema == "rejected":
            body = error_votable("TAP_SCHEMA.columns: permission denied")
            return Response(url=request.url, status=400, body=body, content_type="text/xml")
        newer = ("mirror_url", "alt_identifier", "table_type")
        if self.regtap == "1.0" and any(column in query for column in newer):
            missing = next(column for column in newer if column in query)
            return Response(
                url=request.url,
                status=400,
                body=error_votable(f"Field query: column or table {missing} does not exist"),
                content_type="application/x-votable+xml",
            )
        columns, rows = getattr(self, "_" + kind)(query, ivoids)
        limit = min(
            (
                n
                for n in (self.row_limit, _int(form.get("MAXREC")))
                if n is not None and kind != "search"
            ),
            default=None,
        )
        status = "OK"
        if limit is not None and len(rows) > limit:
            rows, status = rows[:limit], "OVERFLOW"
        return ok(request, votable(columns, rows, status=status))

    def _wanted(self, ivoids: list[str]) -> list[Res]:
        keep = set(ivoids)
        return [r for r in self.resources if r.ivoid in keep]

    def _schema(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        del query, ivoids
        if self.tap_schema == "unqualified":
            return ["table_name", "column_name"], []  # "interface", not "rr.interface"
        tables = dict(_RR_11)
        if self.coverage:
            tables["rr.stc_spectral"] = ["ivoid", "spectral_start", "spectral_end"]
        if self.regtap == "1.1":
            tables["rr.interface"] = [*tables["rr.interface"], "mirror_url", "authenticated_only"]
            tables["rr.alt_identifier"] = ["ivoid", "alt_identifier"]
        rows = [
            {"table_name": name, "column_name": column}
            for name, columns in tables.items()
            for column in columns
        ]
        return ["table_name", "column_name"], rows

    def _search(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        del ivoids
        columns = list(RESOURCE_COLUMNS)
        rows = [
            {
                "ivoid": r.ivoid,
                "res_type": r.res_type,
                "short_name": r.short_name,
                "res_title": r.title,
                "res_description": r.description,
                "content_level": "research#university",
                "creator_seq": r.creator_seq,
                "waveband": r.waveband,
                "region_of_regard": r.region_of_regard,
                "source_format": "bibcode" if r.source_value else None,
                "source_value": r.source_value,
                "reference_url": r.reference_url,
                "created": "2020-01-02T00:00:00",
            }
            for r in self.resources
        ]
        top = re.search(r"SELECT TOP (\d+)", query)
        if top:
            rows = rows[: int(top[1])]
        return columns, rows

    def _interfaces(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        columns = re.search(r"SELECT (.*?) FROM", query)
        assert columns
        names = [name.strip() for name in columns[1].split(",")]
        rows = [
            {
                "ivoid": r.ivoid,
                "cap_index": index,
                "intf_index": 1,
                "standard_id": i.standard_id,
                "cap_description": i.description,
                "intf_type": i.type,
                "intf_role": i.role,
                "access_url": i.access_url,
                "mirror_url": i.mirrors,
                "authenticated_only": i.authenticated_only,
            }
            for r in self._wanted(ivoids)
            for index, i in enumerate(r.interfaces, 1)
        ]
        return names, rows

    def _subjects(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        del query
        rows = [
            {"ivoid": r.ivoid, "res_subject": s}
            for r in self._wanted(ivoids)
            for s in sorted(r.subjects)
        ]
        return ["ivoid", "res_subject"], rows

    def _alt_identifiers(
        self, query: str, ivoids: list[str]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        del query
        rows = [
            {"ivoid": r.ivoid, "alt_identifier": a}
            for r in self._wanted(ivoids)
            for a in r.alt_identifiers
        ]
        return ["ivoid", "alt_identifier"], rows

    def _tables(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        del query
        columns = ["ivoid", "table_index", "table_name", "table_title", "table_description"]
        columns += ["table_utype", "table_type"]
        rows = [
            {
                "ivoid": r.ivoid,
                "table_index": index,
                "table_name": name,
                "table_title": f"Title of {name}",
                "table_type": "output",
            }
            for r in self._wanted(ivoids)
            for index, (name, _) in enumerate(r.tables, 1)
        ]
        return columns, rows

    def _columns(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        del query
        columns = ["ivoid", "table_index", "name", "ucd", "unit", "utype", "datatype"]
        columns += ["arraysize", "extended_type", "column_description", "flag"]
        rows = [
            {
                "ivoid": r.ivoid,
                "table_index": index,
                "name": column,
                "ucd": "pos.eq.ra;meta.main" if column == "ra" else None,
                "unit": "deg" if column in {"ra", "dec"} else None,
                "datatype": "double",
                "flag": "indexed" if column == "ra" else None,
            }
            for r in self._wanted(ivoids)
            for index, (_, names) in enumerate(r.tables, 1)
            for column in names
        ]
        return columns, rows

    def _contacts(self, query: str, ivoids: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        assert "base_role = 'contact'" in query
        columns = ["ivoid", "role_name", "email", "telephone", "street_address", "role_ivoid"]
        rows = [
            {"ivoid": r.ivoid, "role_name": name, "email": email}
            for r in self._wanted(ivoids)
            for name, email in r.contacts
        ]
        return columns, rows


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


Handler = Callable[[Request], Response]


class Router:
    """Sends each request to the handler of the base URL it starts with."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.hits: Counter[str] = Counter()

    def __call__(self, request: Request) -> Response:
        for base, handler in self.routes.items():
            if request.url.startswith(base + "/") or request.url.startswith(base + "?"):
                self.hits[base] += 1
                return handler(request)
        raise AssertionError(f"no route for {request.url}")


def refused(request: Request) -> Response:
    raise TransportError("Connection refused", url=request.url)


def unavailable(request: Request) -> Response:
    return Response(url=request.url, status=503, body=b"Service Unavailable")


def html_200(request: Request) -> Response:
    body = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>back soon</body>"
    return Response(url=request.url, status=200, body=body, content_type="text/html")


# --- sample data -------------------------------------------------------------------------

CDS_SCS = Res(
    "ivo://CDS.VizieR/II/283",
    short_name="II/283",
    title="A catalogue with two cone searches",
    interfaces=[
        Intf(CONESEARCH, "http://vizier.test/cone/283a?", description="table a"),
        Intf(
            CONESEARCH,
            "http://vizier.test/cone/283b?",
            description="table b",
            mirrors="http://mirror.test/cone/283b?#https://mirror2.test/cone/283b",
        ),
        Intf(TAP, "http://vizier.test/tap"),
        Intf(None, "http://vizier.test/viz-bin/II/283", role=None, type="vr:webbrowser"),
        Intf(VOSI_CAPS, "http://vizier.test/tap/capabilities"),
    ],
    subjects=["stars", "photometry"],
    alt_identifiers=["doi:10.1234/ii283"],
    tables=[("II/283/a", ["ra", "dec", "mag"]), ("II/283/b", ["ra", "dec"])],
    contacts=[("CDS support", "cds@test")],
)
SECRET = Res(
    "ivo://secret.test/tap",
    short_name="secret",
    title="A TAP service with a login-only mirror",
    interfaces=[
        Intf(TAP, "http://secret.test/tap"),
        Intf(TAP, "https://secret.test/auth/tap", authenticated_only=1),
    ],
    subjects=["galaxies"],
)
IMAGES = Res(
    "ivo://images.test/sia",
    short_name="images",
    title="Images in two SIA versions",
    interfaces=[Intf(SIA1, "http://images.test/sia1?"), Intf(SIA2, "http://images.test/sia2")],
)
SAMPLE = [CDS_SCS, SECRET, IMAGES]


def config(*endpoints: str, retry_attempts: int = 1, **registry: Any) -> vosweep.EngineConfig:
    return vosweep.EngineConfig(
        registry=vosweep.RegistryConfig(endpoints=endpoints or (ENDPOINT,), **registry),
        retry=vosweep.RetryPolicy(attempts=retry_attempts),
        user_agent_purpose="test",
    )


def client(
    handler: Handler, *endpoints: str, retry_attempts: int = 1, **registry: Any
) -> tuple[RegistryClient, MockTransport]:
    transport = MockTransport(handler)
    cfg = config(*endpoints, retry_attempts=retry_attempts, **registry)
    return RegistryClient(transport, cfg), transport


def spec(**keywords: Any) -> SearchSpec:
    keywords = keywords or {"keywords": ["stars"]}
    return vosweep.registry.search(**keywords)


# --- tests -------------------------------------------------------------------------------


class TestSearch:
    async def test_resources_with_interfaces_subjects_and_alt_identifiers(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert found.ivoids == sorted(r.ivoid for r in SAMPLE)
        assert found.endpoint == ENDPOINT
        assert not found.overflow
        cds = found["ivo://CDS.VizieR/II/283"]
        assert cds.short_name == "II/283"
        assert cds.res_title == "A catalogue with two cone searches"
        assert cds.subjects == ("photometry", "stars")  # ORDER BY res_subject
        assert cds.alt_identifiers == ("doi:10.1234/ii283",)
        assert cds.get_alt_identifiers() == ["doi:10.1234/ii283"]
        assert cds.waveband == ("optical", "uv")
        assert cds.content_levels == ("research", "university")
        assert cds.created == "2020-01-02T00:00:00"
        assert [i.access_url for i in cds.interfaces] == [i.access_url for i in CDS_SCS.interfaces]
        assert cds.interfaces[0].standard_id == CONESEARCH
        assert cds.interfaces[0].capability_description == "table a"
        assert cds.interfaces[0].cap_index == 1
        assert cds.interfaces[3].standard_id is None
        assert cds.interfaces[3].type == "vr:webbrowser"
        assert cds.interfaces[3].role is None
        # the search itself, then one query per kind of detail (all three ivoids in one batch)
        assert registry.kinds() == Counter(
            search=1, schema=1, interfaces=1, subjects=1, alt_identifiers=1
        )
        assert registry.capability_requests == 1

    async def test_creators_are_split_on_semicolons(self):
        """RegTAP's creator_seq separates names with ';' (names themselves hold commas)."""
        registry = FakeRegistry([CDS_SCS], capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert found[0].creators == ("Doe, J.", "Roe, R.")

    async def test_mirrors_are_split_and_kept_on_the_service(self):
        registry = FakeRegistry([CDS_SCS], capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        second = found[0].interfaces[1]
        assert second.mirror_urls == (
            "http://mirror.test/cone/283b?",
            "https://mirror2.test/cone/283b",
        )
        services = found.services("scs")
        assert [s.mirrors for s in services] == [(), second.mirror_urls]
        assert {s.ivoid for s in services} == {"ivo://CDS.VizieR/II/283"}

    async def test_authenticated_only_interfaces_are_left_out_by_default(self):
        registry = FakeRegistry([SECRET], capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert [i.access_url for i in found[0].interfaces] == ["http://secret.test/tap"]
        assert not found[0].interfaces[0].authenticated_only

    async def test_authenticated_only_interfaces_kept_when_asked(self):
        registry = FakeRegistry([SECRET], capabilities=capabilities())
        rc, _ = client(registry, include_authenticated=True)
        found = await rc.search(spec())
        interfaces = found[0].interfaces
        assert [i.access_url for i in interfaces] == [
            "http://secret.test/tap",
            "https://secret.test/auth/tap",
        ]
        assert [i.authenticated_only for i in interfaces] == [False, True]

    async def test_regtap_10_registry_is_not_asked_for_11_columns(self):
        """No mirror_url / authenticated_only columns, no rr.alt_identifier: never asked for."""
        registry = FakeRegistry(SAMPLE, regtap="1.0", capabilities=capabilities(regtap="1.0"))
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert len(found) == 3
        assert not any("mirror_url" in q or "alt_identifier" in q for q in registry.queries)
        assert "alt_identifiers" not in registry.kinds()
        cds = found["II/283"]
        assert cds.alt_identifiers == ()
        assert all(i.mirror_urls == () for i in cds.interfaces)
        # Without the 1.1 columns, nothing is known to need a login: every interface stays.
        assert len(found["secret"].interfaces) == 2
        assert cds.subjects == ("photometry", "stars")
        tables = await found.get_tables()  # no RegTAP 1.1 table_type asked for either
        assert set(tables[cds.ivoid]) == {"II/283/a", "II/283/b"}
        assert not any("table_type" in q for q in registry.queries)

    async def test_regtap_10_learnt_from_tap_schema_when_capabilities_are_missing(self):
        registry = FakeRegistry(SAMPLE, regtap="1.0", capabilities=None)
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert len(found) == 3
        assert not any("mirror_url" in q for q in registry.queries)
        assert registry.kinds()["schema"] == 1

    async def test_no_resources_found_asks_nothing_more(self):
        registry = FakeRegistry([], capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert len(found) == 0
        assert registry.kinds() == Counter(search=1, schema=1)

    async def test_maxrec_becomes_top_and_maxrec(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, transport = client(registry)
        found = await rc.search(spec(keywords="stars", maxrec=2))
        assert len(found) == 2
        search = next(r for r in transport.requests if request_kind(r) == "search")
        assert dict(search.data)["MAXREC"] == "2"
        assert "SELECT TOP 2 " in dict(search.data)["QUERY"]

    async def test_overflowing_search_is_flagged(self):
        def cut(request: Request) -> Response:
            response = registry(request)
            if request_kind(request) == "search":
                rows = [{"ivoid": r.ivoid} for r in SAMPLE[:2]]
                columns = list(RESOURCE_COLUMNS)
                return ok(request, votable(columns, rows, status="OVERFLOW"))
            return response

        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(cut)
        found = await rc.search(spec())
        assert found.overflow
        assert len(found) == 2
        assert "overflow" in repr(found)

    async def test_search_is_logged(self, events: list[dict[str, Any]]):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry)
        await rc.search(spec())
        logged = [e for e in events if e["event"] == _log.REGISTRY_SEARCH]
        assert logged == [
            {
                "event": _log.REGISTRY_SEARCH,
                "endpoint": ENDPOINT,
                "resources": 3,
                "overflow": False,
                "log_level": "info",
            }
        ]

    async def test_null_cells(self):
        """Empty cells are NULLs: interfaces without an access URL and empty subjects go."""
        odd = Res(
            "ivo://odd.test/r",
            short_name=None,
            interfaces=[Intf(TAP, ""), Intf(TAP, "http://odd.test/tap", type="")],
            subjects=[""],
            waveband=None,
            creator_seq=None,
        )
        registry = FakeRegistry([odd], capabilities=capabilities())
        rc, _ = client(registry)
        (found,) = await rc.search(spec())
        assert [i.access_url for i in found.interfaces] == ["http://odd.test/tap"]
        assert found.interfaces[0].type is None
        assert found.interfaces[0].capability_description is None
        assert found.short_name is None
        assert found.subjects == ()
        assert found.waveband == ()
        assert found.creators == ()
        assert found.region_of_regard is None

    async def test_answer_without_a_table_has_no_rows(self):
        def no_table(request: Request) -> Response:
            return ok(request, error_votable("x").replace(b"ERROR", b"OK"))

        rc, _ = client(no_table)
        answer = await rc.query("SELECT ivoid FROM rr.resource")
        assert answer.rows == []

    async def test_bugs_are_not_taken_for_a_sick_registry(self):
        """A non-vosweep exception in a follow-up query propagates, with no failover."""
        primary = FakeRegistry(SAMPLE, capabilities=capabilities())
        backup = FakeRegistry(SAMPLE, capabilities=capabilities())

        def buggy(request: Request) -> Response:
            if request_kind(request) == "subjects":
                raise RuntimeError("a bug")
            return primary(request)

        rc, _ = client(Router({ENDPOINT: buggy, BACKUP: backup}), ENDPOINT, BACKUP)
        with pytest.raises(BaseExceptionGroup) as info:
            await rc.search(spec())
        assert info.group_contains(RuntimeError, match="a bug")
        assert backup.queries == []

    async def test_query_runs_any_adql(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry)
        answer = await rc.query("SELECT ivoid FROM rr.resource", maxrec=10)
        assert answer.endpoint == ENDPOINT
        assert [row["ivoid"] for row in answer.rows] == sorted(r.ivoid for r in SAMPLE)
        assert not answer.overflow


class TestFeatures:
    async def test_real_gavo_capabilities(self):
        root = _corpus()
        if root is None:
            pytest.skip(CORPUS_SKIP)
        body = (root / GAVO_CAPABILITIES).read_bytes()
        registry = FakeRegistry(SAMPLE, capabilities=body)
        rc, _ = client(registry)
        features = await rc.features()
        assert features.union
        assert features.ilike
        assert features.moc
        assert "ivo://ivoa.net/std/regtap#1.1" in features.data_models
        # RegTAP 1.1 says nothing about the 1.2 coverage tables: TAP_SCHEMA was asked,
        # and this registry has none.
        assert registry.kinds() == Counter(schema=1)
        assert features.coverage_tables == frozenset()
        found = await rc.search(spec())
        assert "UNION" in found.query
        assert "mirror_url" in next(q for q in registry.queries if "rr.interface" in q)

    async def test_missing_capabilities_give_conservative_features(
        self, events: list[dict[str, Any]]
    ):
        registry = FakeRegistry(SAMPLE, capabilities=None)
        rc, _ = client(registry)
        features = await rc.features(ENDPOINT)
        assert not features.union
        assert not features.ilike
        assert not features.moc
        assert features.geometry == frozenset()
        assert any(e["event"] == _log.REGISTRY_NO_CAPABILITIES for e in events)
        found = await rc.search(spec(keywords="stars"))
        assert "UNION" not in found.query
        assert len(found) == 3
        assert registry.capability_requests == 1  # cached per endpoint

    async def test_missing_capabilities_refuse_a_spatial_search_naming_the_feature(self):
        registry = FakeRegistry(SAMPLE, capabilities=None)
        rc, _ = client(registry)
        with pytest.raises(RegistryFeatureMissing, match="Spatial needs the MOC function") as info:
            await rc.search(spec(spatial=(10.0, 20.0, 1.0)))
        assert info.value.feature == "the MOC function"
        assert "search" not in registry.kinds()

    async def test_capabilities_without_union_give_the_or_form(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities(union=False))
        rc, _ = client(registry)
        found = await rc.search(spec(keywords="stars"))
        assert "UNION" not in found.query
        assert "ivo_hasword(res_title, 'stars')" in found.query
        assert found.query in registry.queries
        features = await rc.features()
        assert not features.union
        assert features.ilike

    async def test_capabilities_503_fail_over(self):
        router = Router(
            {ENDPOINT: unavailable, BACKUP: FakeRegistry(SAMPLE, capabilities=capabilities())}
        )
        rc, _ = client(router, ENDPOINT, BACKUP)
        features = await rc.features()
        assert features.union
        assert rc.endpoints == (BACKUP, ENDPOINT)

    async def test_regtap_12_needs_no_tap_schema(self):
        registry = FakeRegistry(
            SAMPLE, capabilities=capabilities(regtap="1.2"), tap_schema="rejected"
        )
        rc, _ = client(registry)
        features = await rc.features()
        assert features.coverage_tables == COVERAGE_TABLES
        found = await rc.search(spec())
        assert "schema" not in registry.kinds()
        # RegTAP 1.2 keeps the columns 1.1 added
        assert "mirror_url" in next(q for q in registry.queries if kind_of(q) == "interfaces")
        assert "alt_identifiers" in registry.kinds()
        assert found["II/283"].interfaces[1].mirror_urls != ()

    @pytest.mark.parametrize("tap_schema", ["rejected", "unqualified"])
    async def test_tap_schema_that_says_nothing_keeps_the_declared_11(self, tap_schema: str):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities(), tap_schema=tap_schema)
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert registry.kinds()["schema"] == 1
        assert "mirror_url" in next(q for q in registry.queries if kind_of(q) == "interfaces")
        assert found["II/283"].alt_identifiers == ("doi:10.1234/ii283",)
        # ... and the coverage tables stay unknown: a constraint needing one is refused.
        with pytest.raises(RegistryFeatureMissing, match=r"rr\.stc_spectral"):
            await rc.search(spec(spectral=(1e-19, 2e-19)))

    @pytest.mark.parametrize("coverage", [True, False])
    async def test_coverage_tables_learnt_from_tap_schema(self, coverage: bool):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities(), coverage=coverage)
        rc, _ = client(registry)
        features = await rc.features()
        assert features.has_table("rr.stc_spectral") is coverage
        assert features.has_table("rr.stc_spatial") is False
        if coverage:
            found = await rc.search(spec(spectral=(1e-19, 2e-19)))
            assert "rr.stc_spectral" in found.query
        else:
            with pytest.raises(RegistryFeatureMissing, match=r"rr\.stc_spectral"):
                await rc.search(spec(spectral=(1e-19, 2e-19)))
        assert registry.kinds()["schema"] == 1

    async def test_features_of_a_given_endpoint_do_not_fail_over(self):
        router = Router(
            {ENDPOINT: refused, BACKUP: FakeRegistry(SAMPLE, capabilities=capabilities())}
        )
        rc, _ = client(router, ENDPOINT, BACKUP)
        with pytest.raises(TransportError):
            await rc.features(ENDPOINT)
        assert (await rc.features(BACKUP)).union
        assert router.hits[BACKUP] == 2  # capabilities and TAP_SCHEMA


class TestBatching:
    @pytest.mark.parametrize(("n", "batch_size"), [(1, 3), (7, 3), (9, 3), (10, 1)])
    async def test_follow_ups_cost_n_over_batch_size_queries(self, n: int, batch_size: int):
        resources = [
            Res(f"ivo://many.test/r{i:02d}", interfaces=[Intf(TAP, f"http://many.test/{i}/tap")])
            for i in range(n)
        ]
        registry = FakeRegistry(resources, capabilities=capabilities())
        rc, transport = client(registry, batch_size=batch_size)
        # maxrec reached: the answer may not be the whole match, so ivoids are listed.
        found = await rc.search(spec(keywords=["stars"], maxrec=n))
        batches = math.ceil(n / batch_size)
        kinds = registry.kinds()
        assert kinds["interfaces"] == kinds["subjects"] == kinds["alt_identifiers"] == batches
        assert len(transport.requests) == 1 + 1 + 1 + 3 * batches  # caps, schema, search
        assert rc.round_trips == len(transport.requests)
        # every ivoid asked for exactly once per kind, in batches of at most batch_size
        asked = [ivoid for batch in registry.batches["interfaces"] for ivoid in batch]
        assert sorted(asked) == found.ivoids
        assert max(len(batch) for batch in registry.batches["interfaces"]) <= batch_size
        assert all(len(r.interfaces) == 1 for r in found)

    @pytest.mark.parametrize(("n", "batch_size", "by_subquery"), [(7, 3, True), (3, 3, False)])
    async def test_a_whole_answer_is_named_by_the_search_itself(
        self, n: int, batch_size: int, *, by_subquery: bool
    ):
        """More than one batch of a complete answer: one follow-up per kind, not N / size."""
        resources = [
            Res(f"ivo://all.test/r{i:02d}", interfaces=[Intf(TAP, f"http://all.test/{i}/tap")])
            for i in range(n)
        ]
        registry = FakeRegistry(resources, capabilities=capabilities())
        rc, transport = client(registry, batch_size=batch_size)
        found = await rc.search(spec())
        kinds = registry.kinds()
        assert kinds["interfaces"] == kinds["subjects"] == kinds["alt_identifiers"] == 1
        assert len(transport.requests) == 3 + 3
        assert all(len(r.interfaces) == 1 for r in found)
        expected = 3 if by_subquery else 0
        assert sum(registry.subqueries.values()) == expected
        follow_up = next(q for q in registry.queries if kind_of(q) == "interfaces")
        assert (_SUBQUERY in follow_up) is by_subquery
        if by_subquery:
            assert "ivo_hasword" in follow_up or "stars" in follow_up  # the search's condition

    async def test_overflowing_batch_is_split_in_two(self):
        resources = [
            Res(
                f"ivo://split.test/r{i}",
                interfaces=[Intf(CONESEARCH, f"http://split.test/{i}/{k}?") for k in range(2)],
            )
            for i in range(4)
        ]
        # 8 interface rows in all: a 4-ivoid batch overflows at 5 rows, 2-ivoid halves fit.
        registry = FakeRegistry(resources, capabilities=capabilities(), row_limit=5)
        rc, _ = client(registry, batch_size=4)
        found = await rc.search(spec())
        assert [len(batch) for batch in registry.batches["interfaces"]] == [4, 2, 2]
        assert all(len(r.interfaces) == 2 for r in found)
        assert [i.access_url for i in found[3].interfaces] == [
            "http://split.test/3/0?",
            "http://split.test/3/1?",
        ]

    async def test_a_single_resource_that_overflows_is_an_error(self):
        big = Res(
            "ivo://big.test/r",
            interfaces=[Intf(CONESEARCH, f"http://big.test/{k}?") for k in range(6)],
        )
        registry = FakeRegistry([big], capabilities=capabilities(), row_limit=5)
        rc, _ = client(registry)
        with pytest.raises(RegistryUnavailable) as info:
            await rc.search(spec())
        cause = info.value.failures[ENDPOINT]
        assert isinstance(cause, ResponseFormatError)
        assert "ivo://big.test/r" in str(cause)

    async def test_ivoids_with_quotes_are_quoted(self):
        odd = Res("ivo://odd.test/o'brien", interfaces=[Intf(TAP, "http://odd.test/tap")])
        registry = FakeRegistry([odd], capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        assert "'ivo://odd.test/o''brien'" in next(
            q for q in registry.queries if "rr.interface" in q
        )
        assert len(found[0].interfaces) == 1


class TestFailover:
    @pytest.mark.parametrize(
        "failure", [refused, unavailable, html_200], ids=["refused", "503", "html-200"]
    )
    async def test_first_endpoint_down_second_used_and_kept(
        self, failure: Handler, no_backoff: None
    ):
        good = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: failure, BACKUP: good})
        rc, _ = client(router, ENDPOINT, BACKUP, retry_attempts=2)
        assert rc.endpoints == (ENDPOINT, BACKUP)
        found = await rc.search(spec())
        assert found.endpoint == BACKUP
        assert len(found) == 3
        assert rc.endpoints == (BACKUP, ENDPOINT)
        down_hits = router.hits[ENDPOINT]
        assert down_hits >= 1
        # The next search (a different one: not cached) goes straight to the working one.
        again = await rc.search(spec(keywords="galaxies"))
        assert again.endpoint == BACKUP
        assert router.hits[ENDPOINT] == down_hits

    async def test_transient_failures_are_retried_before_failing_over(self, no_backoff: None):
        calls = Counter[str]()
        good = FakeRegistry(SAMPLE, capabilities=capabilities())

        def flaky(request: Request) -> Response:
            calls[request.url] += 1
            if calls[request.url] == 1:
                return unavailable(request)
            return good(request)

        rc, _ = client(flaky, ENDPOINT, BACKUP, retry_attempts=3)
        found = await rc.search(spec())
        assert found.endpoint == ENDPOINT
        assert calls[ENDPOINT + "/capabilities"] == 2

    async def test_failing_follow_up_query_fails_the_whole_search_over(self):
        """Details come from the endpoint that ran the search: a failure there fails it over."""
        primary = FakeRegistry(SAMPLE, capabilities=capabilities())

        def details_down(request: Request) -> Response:
            if request_kind(request) == "subjects":
                return unavailable(request)
            return primary(request)

        backup = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: details_down, BACKUP: backup})
        rc, _ = client(router, ENDPOINT, BACKUP)
        found = await rc.search(spec())
        assert found.endpoint == BACKUP
        assert primary.kinds()["search"] == backup.kinds()["search"] == 1
        assert found["II/283"].subjects == ("photometry", "stars")

    async def test_all_endpoints_down(self, events: list[dict[str, Any]]):
        router = Router({ENDPOINT: refused, BACKUP: unavailable, THIRD: html_200})
        rc, _ = client(router, ENDPOINT, BACKUP, THIRD)
        with pytest.raises(RegistryUnavailable) as info:
            await rc.search(spec())
        message = str(info.value)
        for endpoint in (ENDPOINT, BACKUP, THIRD):
            assert endpoint in message
        assert "TransportError" in message
        assert "HTTP 503" in message
        failures = info.value.failures
        assert list(failures) == [ENDPOINT, BACKUP, THIRD]
        assert isinstance(failures[ENDPOINT], TransportError)
        assert isinstance(failures[BACKUP], HTTPStatusError)
        assert isinstance(failures[THIRD], ResponseFormatError)
        failovers = [e["endpoint"] for e in events if e["event"] == _log.REGISTRY_FAILOVER]
        assert failovers == [ENDPOINT, BACKUP, THIRD]

    async def test_rejected_query_is_not_failed_over(self):
        def rejecting(request: Request) -> Response:
            if request.url.endswith("/capabilities"):
                return ok(request, capabilities(), "text/xml")
            message = "Could not parse your query: syntax error near 'FROM'"
            return Response(
                url=request.url,
                status=400,
                body=error_votable(message),
                content_type="application/x-votable+xml",
            )

        backup = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: rejecting, BACKUP: backup})
        rc, _ = client(router, ENDPOINT, BACKUP)
        with pytest.raises(QueryRejected, match="syntax error near 'FROM'"):
            await rc.query("SELECT FROM nowhere")
        assert router.hits[BACKUP] == 0
        assert rc.endpoints == (ENDPOINT, BACKUP)

    async def test_rejected_follow_up_query_is_not_failed_over(self):
        primary = FakeRegistry(SAMPLE, capabilities=capabilities())

        def rejecting_subjects(request: Request) -> Response:
            if request_kind(request) == "subjects":
                body = error_votable("table rr.res_subject is being rebuilt")
                return Response(url=request.url, status=400, body=body, content_type="text/xml")
            return primary(request)

        backup = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(Router({ENDPOINT: rejecting_subjects, BACKUP: backup}), ENDPOINT, BACKUP)
        with pytest.raises(QueryRejected, match="being rebuilt"):
            await rc.search(spec())
        assert backup.queries == []


class TestCache:
    async def test_second_identical_search_makes_no_request(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        transport = MockTransport(registry)
        first = await RegistryClient(transport, config()).search(spec())
        sent = len(transport.requests)
        # a new client (a new engine in a re-run notebook cell) shares the cache
        second_client = RegistryClient(transport, config())
        second = await second_client.search(spec())
        assert len(transport.requests) == sent
        assert second_client.round_trips == 0
        assert second.ivoids == first.ivoids
        assert second["II/283"].interfaces == first["II/283"].interfaces
        assert SHARED_CACHE.hits > 0

    async def test_clear_cache_queries_again(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, transport = client(registry)
        await rc.search(spec())
        sent = len(transport.requests)
        vosweep.registry.clear_cache()
        assert len(SHARED_CACHE) == 0
        await rc.search(spec())
        assert len(transport.requests) == 2 * sent

    async def test_ttl_zero_disables_the_cache(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, transport = client(registry, cache_ttl=0)
        await rc.search(spec())
        sent = len(transport.requests)
        await rc.search(spec())
        assert len(transport.requests) == 2 * sent
        assert len(SHARED_CACHE) == 0

    async def test_cache_is_keyed_by_endpoint(self):
        first = FakeRegistry(SAMPLE, capabilities=capabilities())
        second = FakeRegistry(SAMPLE[:1], capabilities=capabilities())
        router = Router({ENDPOINT: first, BACKUP: second})
        transport = MockTransport(router)
        found_first = await RegistryClient(transport, config(ENDPOINT)).search(spec())
        found_second = await RegistryClient(transport, config(BACKUP)).search(spec())
        assert len(found_first) == 3
        assert len(found_second) == 1
        assert second.kinds()["search"] == 1

    async def test_include_authenticated_applies_to_cached_answers(self):
        registry = FakeRegistry([SECRET], capabilities=capabilities())
        transport = MockTransport(registry)
        public = await RegistryClient(transport, config()).search(spec())
        everything = await RegistryClient(transport, config(include_authenticated=True)).search(
            spec()
        )
        assert len(public[0].interfaces) == 1
        assert len(everything[0].interfaces) == 2

    def test_ttl_cache_expiry_and_bound(self, monkeypatch: pytest.MonkeyPatch):
        now = [1000.0]
        # the module's clock only, not time.monotonic for everyone
        monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
        cache = TTLCache(max_entries=2)
        cache.put("a", 1, ttl=10)
        cache.put("b", 2, ttl=10)
        assert cache.get("a") == 1
        now[0] += 5
        cache.put("c", 3, ttl=10)  # over the bound: "b", the least recently used, goes
        assert cache.get("b") is None
        assert cache.get("a") == 1
        now[0] += 5  # "a" expires now, "c" in 5 s
        assert cache.get("a") is None
        assert len(cache) == 1
        assert cache.get("c") == 3
        cache.put("d", 4, ttl=0)  # a ttl of 0 stores nothing
        assert cache.get("d") is None
        assert (cache.hits, cache.misses) == (3, 3)
        cache.clear()
        assert (len(cache), cache.hits, cache.misses) == (0, 0, 0)


class TestTablesAndContacts:
    async def test_get_tables_batched(self):
        resources = [
            Res(f"ivo://tab.test/r{i}", tables=[(f"t{i}.main", ["ra", "dec"]), (f"t{i}.x", ["id"])])
            for i in range(5)
        ]
        registry = FakeRegistry(resources, capabilities=capabilities())
        rc, _ = client(registry, batch_size=2)
        found = await rc.search(spec(keywords=["stars"], maxrec=5))
        before = registry.kinds()
        tables = await found.get_tables()
        after = registry.kinds() - before
        assert after == Counter(tables=3, columns=3)  # ceil(5 / 2) of each
        whole = await rc.search(spec())  # the whole match: named by the search itself
        before = registry.kinds()
        assert set(await whole.get_tables()) == set(found.ivoids)
        assert registry.kinds() - before == Counter(tables=1, columns=1)
        assert registry.subqueries["tables"] == registry.subqueries["columns"] == 1
        assert set(tables) == set(found.ivoids)
        main = tables["ivo://tab.test/r3"]["t3.main"]
        assert main.title == "Title of t3.main"
        assert main.type == "output"
        assert [c.name for c in main.columns] == ["ra", "dec"]
        ra = main.columns[0]
        assert (ra.ucd, ra.unit, ra.datatype, ra.flags) == (
            "pos.eq.ra;meta.main",
            "deg",
            "double",
            "indexed",
        )
        assert [c.name for c in tables["ivo://tab.test/r3"]["t3.x"].columns] == ["id"]

    async def test_resource_get_tables(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        tables = await found["II/283"].get_tables()
        assert list(tables) == ["II/283/a", "II/283/b"]
        assert [c.name for c in tables["II/283/a"].columns] == ["ra", "dec", "mag"]
        assert await found["images"].get_tables() == {}
        assert registry.batches["tables"] == [
            ["ivo://CDS.VizieR/II/283"],
            ["ivo://images.test/sia"],
        ]

    async def test_table_limit(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry)
        found = await rc.search(spec())
        with pytest.raises(UsageError, match=r"2 tables, more than table_limit=1"):
            await found["II/283"].get_tables(table_limit=1)
        assert "columns" not in registry.kinds()  # refused before the column query
        assert len(await found["II/283"].get_tables(table_limit=2)) == 2

    async def test_get_contacts(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        rc, _ = client(registry, batch_size=2)
        found = await rc.search(spec())
        contacts = await found.get_contacts()
        assert registry.kinds()["contacts"] == 1
        assert registry.subqueries["contacts"] == 1  # all of a whole answer: one query
        assert contacts == {
            "ivo://CDS.VizieR/II/283": [
                vosweep.registry.Contact(name="CDS support", email="cds@test")
            ]
        }
        assert await found["II/283"].get_contact() == "CDS support, cds@test"
        assert await found["secret"].get_contact() == ""
        assert await found["secret"].get_contacts() == []

    async def test_follow_ups_go_to_the_endpoint_that_found_them(self):
        first = FakeRegistry(SAMPLE, capabilities=capabilities())
        second = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: first, BACKUP: second})
        rc, _ = client(router, ENDPOINT, BACKUP)
        found = await rc.search(spec())
        rc._preferred = BACKUP  # as if a later search had failed over
        await found.get_tables()
        assert "tables" in first.kinds()
        assert "tables" not in second.kinds()

    async def test_get_tables_without_endpoint_fails_over(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: refused, BACKUP: registry})
        rc, _ = client(router, ENDPOINT, BACKUP)
        resources = [vosweep.registry.RegistryResource("ivo://CDS.VizieR/II/283")]
        tables = await rc.get_tables(resources, table_limit=10)
        assert [t.name for t in tables["ivo://CDS.VizieR/II/283"]] == ["II/283/a", "II/283/b"]
        contacts = await rc.get_contacts(resources)
        assert contacts["ivo://CDS.VizieR/II/283"][0].email == "cds@test"
        assert router.hits[ENDPOINT] == 1  # only once: then the working one comes first


# --- the engine ---------------------------------------------------------------------------


def scs_answer(request: Request) -> Response:
    body = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        b'<RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/>'
        b'<TABLE><FIELD name="id" datatype="long"/><FIELD name="ra" datatype="double" unit="deg"/>'
        b"<DATA><TABLEDATA><TR><TD>1</TD><TD>10.0</TD></TR></TABLEDATA></DATA></TABLE>"
        b"</RESOURCE></VOTABLE>"
    )
    assert "RA=10.0" in request.url
    return ok(request, body, "text/xml")


class TestEngine:
    async def test_discover_then_fanout_to_the_cone_searches_found(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: registry, "http://vizier.test/cone": scs_answer})
        async with vosweep.Engine(config(), transport=MockTransport(router)) as engine:
            found = await engine.discover(servicetype="scs", waveband="optical")
            assert engine.registry.endpoints == (ENDPOINT,)
            result = await engine.fanout(found, vosweep.Cone(ra=10, dec=20, radius=0.1))
        assert "conesearch" in found.query
        # two cone searches of II/283 (TAP, SIA, web and VOSI interfaces are not asked)
        assert {o.url.split("?")[0] for o in result.outcomes} == {
            "http://vizier.test/cone/283a",
            "http://vizier.test/cone/283b",
        }
        assert {o.status for o in result.outcomes} == {vosweep.Status.OK}
        assert result.rows == 2
        assert router.hits["http://vizier.test/cone"] == 2

    async def test_fanout_runs_a_prepared_search(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        router = Router({ENDPOINT: registry, "http://vizier.test/cone": scs_answer})
        async with vosweep.Engine(config(), transport=MockTransport(router)) as engine:
            result = await engine.fanout(
                vosweep.registry.search(servicetype="scs"), vosweep.Cone(ra=10, dec=20, radius=0.1)
            )
        assert len(result.outcomes) == 2
        assert registry.kinds()["search"] == 1

    async def test_fanout_uses_the_mirrors_found(self):
        """An access URL whose host is down: the RegTAP 1.1 mirror answers instead."""
        registry = FakeRegistry([CDS_SCS], capabilities=capabilities())
        router = Router(
            {
                ENDPOINT: registry,
                "http://vizier.test/cone/283a": scs_answer,
                "http://vizier.test/cone/283b": refused,
                "http://mirror.test/cone/283b": scs_answer,
            }
        )
        async with vosweep.Engine(config(), transport=MockTransport(router)) as engine:
            found = await engine.discover(servicetype="scs")
            result = await engine.fanout(found, vosweep.Cone(ra=10, dec=20, radius=0.1))
        assert router.hits["http://vizier.test/cone/283b"] == 1
        assert router.hits["http://mirror.test/cone/283b"] == 1
        assert result.rows == 2
        assert {o.status for o in result.outcomes} == {vosweep.Status.OK}

    async def test_fanout_with_the_registry_down(self):
        async with vosweep.Engine(config(), transport=MockTransport(refused)) as engine:
            with pytest.raises(RegistryUnavailable, match=re.escape(ENDPOINT)):
                await engine.fanout(
                    vosweep.registry.search(servicetype="scs"),
                    vosweep.Cone(ra=10, dec=20, radius=0.1),
                )

    async def test_fanout_to_results_without_interfaces_of_the_protocol(self):
        registry = FakeRegistry([SECRET], capabilities=capabilities())
        async with vosweep.Engine(config(), transport=MockTransport(registry)) as engine:
            found = await engine.discover("galaxies")
            with pytest.raises(UsageError, match="none of the 1 registry resources offers a scs"):
                await engine.fanout(found, vosweep.Cone(ra=10, dec=20, radius=0.1))

    async def test_discover_arguments(self):
        registry = FakeRegistry(SAMPLE, capabilities=capabilities())
        async with vosweep.Engine(config(), transport=MockTransport(registry)) as engine:
            prepared = vosweep.registry.search("stars")
            found = await engine.discover(prepared)
            assert found.spec is prepared
            found = await engine.discover(vosweep.registry.Freetext("stars"), maxrec=1)
            assert len(found) == 1
            with pytest.raises(UsageError, match="not both"):
                await engine.discover(prepared, maxrec=3)
            with pytest.raises(UsageError, match="cannot be combined"):
                await engine.discover(prepared, vosweep.registry.Freetext("x"))
            with pytest.raises(UsageError, match="at least one constraint"):
                await engine.discover()

    async def test_discover_needs_an_open_engine(self):
        engine = vosweep.Engine(config(), transport=MockTransport(refused))
        with pytest.raises(UsageError, match="not opened"):
            await engine.discover("stars")


def test_rows_from_an_astropy_table():
    """The astropy fallback gives bytes and masks: rows hold str and None all the same."""
    from astropy.table import MaskedColumn, Table  # noqa: PLC0415

    from vosweep.protocols.base import Parsed  # noqa: PLC0415
    from vosweep.registry.client import _rows  # noqa: PLC0415

    table = Table(
        [
            MaskedColumn([b"ivo://a ", b"ivo://b"], mask=[False, True]),
            MaskedColumn([1, 2], mask=[True, False]),
            [1.5, float("nan")],
        ],
        names=("ivoid", "n", "x"),
    )
    assert _rows(Parsed([table])) == [
        {"ivoid": "ivo://a", "n": None, "x": 1.5},
        {"ivoid": None, "n": 2, "x": None},
    ]
    assert _rows(Parsed([])) == []


class TestTapRequests:
    def test_sync_request_is_a_form_post(self):
        request = tap.sync_request("http://reg.test/tap/", "SELECT 1", maxrec=5)
        assert request.url == "http://reg.test/tap/sync"
        assert request.method == "POST"
        assert request.data == (
            ("REQUEST", "doQuery"),
            ("LANG", "ADQL"),
            ("QUERY", "SELECT 1"),
            ("MAXREC", "5"),
        )
        assert "MAXREC" not in dict(tap.sync_request(ENDPOINT, "SELECT 1").data)
        assert dict(tap.sync_request(ENDPOINT, "SELECT 1", maxrec=0).data)["MAXREC"] == "0"

    def test_sync_request_refuses_bad_input(self):
        with pytest.raises(UsageError, match="cannot be empty"):
            tap.sync_request(ENDPOINT, "  \n")
        with pytest.raises(UsageError, match="maxrec must be >= 0, got -1"):
            tap.sync_request(ENDPOINT, "SELECT 1", maxrec=-1)

    def test_capabilities_request(self):
        request = tap.capabilities_request("http://reg.test/tap//")
        assert (request.url, request.method) == ("http://reg.test/tap/capabilities", "GET")
        assert tap.sync_url("http://reg.test/tap") == "http://reg.test/tap/sync"

    def test_parse_sync(self):
        response = Response(url=ENDPOINT, status=200, body=votable(["ivoid"], [{"ivoid": "x"}]))
        parsed = tap.parse_sync(response, max_bytes=10_000)
        assert parsed.rows == 1
        rejected = Response(url=ENDPOINT, status=400, body=error_votable("no such column: foo"))
        with pytest.raises(QueryRejected, match="no such column: foo"):
            tap.parse_sync(rejected, max_bytes=10_000)
