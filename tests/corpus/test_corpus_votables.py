# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""`parse_votable` on real service responses (``../shared/corpus``, see its MANIFEST.md).

The expected outcomes come from the MANIFEST, which records what astropy 8.0.2 and pyvo
make of each file, and from astropy itself (the differential test).
"""

from __future__ import annotations

import gzip
import io
from typing import TYPE_CHECKING, Any

import pytest
from astropy.io.votable import parse as astropy_parse
from astropy.table import Table

from vosweep.errors import QueryRejected, ResponseFormatError, ResponseTooLarge, ServiceError
from vosweep.protocols.base import Parsed, QueryStatus
from vosweep.protocols.fastvot import TableData
from vosweep.protocols.votable import parse_votable

if TYPE_CHECKING:
    from pathlib import Path

AQ = "astroquery/astroquery/"
PV = "pyvo/pyvo/"


def read(corpus_dir: Path, name: str) -> bytes:
    """The bytes of corpus file *name*."""
    return (corpus_dir / name).read_bytes()


def parse_file(corpus_dir: Path, name: str) -> Parsed:
    """Parse corpus file *name* as a response body."""
    return parse_votable(read(corpus_dir, name))


# --- every file -----------------------------------------------------------------------------


def test_every_file_ends_classified(corpus_dir: Path, corpus_file: str) -> None:
    """Every corpus file ends as Parsed or as one of the parser's ServiceErrors, never a crash."""
    outcome: Parsed | ServiceError
    try:
        outcome = parse_file(corpus_dir, corpus_file)
    except ServiceError as exc:
        outcome = exc
    assert isinstance(outcome, (Parsed, ResponseFormatError, QueryRejected, ResponseTooLarge))
    if isinstance(outcome, ServiceError):
        assert outcome.message
    else:
        assert all(isinstance(table, (Table, TableData)) for table in outcome.tables)


def astropy_result_rows(votable: Any) -> tuple[int, int]:
    """Tables and rows astropy found outside meta resources (our reference)."""

    def walk(resources: Any) -> list[Any]:
        found: list[Any] = []
        for res in resources:
            if res.type != "meta":
                found.extend(res.tables)
                found.extend(walk(res.resources))
        return found

    tables = walk(votable.resources)
    return len(tables), sum(len(t.array) for t in tables)


def test_rows_match_astropy(corpus_dir: Path, corpus_file: str) -> None:
    """Differential: where astropy reads a file, our tables and rows equal astropy's totals.

    Where astropy cannot read it, we must not invent tables either (format error).
    """
    body = read(corpus_dir, corpus_file)
    plain = gzip.decompress(body) if body.startswith(b"\x1f\x8b") else body
    try:
        reference = astropy_result_rows(astropy_parse(io.BytesIO(plain), verify="ignore"))
    except Exception:  # any astropy failure means "astropy cannot read it"
        with pytest.raises(ResponseFormatError):
            parse_votable(body)
        return
    try:
        parsed = parse_votable(body)
    except QueryRejected:
        return  # the status says the query failed; astropy does not judge status
    assert (len(parsed.tables), parsed.rows) == reference


# --- row counts (MANIFEST "technical" column) ------------------------------------------------

EXPECTED = [
    # file, tables, rows, status
    (f"{PV}dal/tests/data/scs/result.xml", 1, 1273, QueryStatus.OK),
    (f"{AQ}esa/hubble/tests/data/cone_search_m31_5.vot", 1, 2000, QueryStatus.OK),
    (f"{AQ}esa/hubble/tests/data/cone_search.vot", 1, 317, QueryStatus.OK),
    (f"{AQ}vizier/tests/data/viz.xml", 360, 432, QueryStatus.OK),
    (f"{PV}registry/tests/data/regtap.xml", 1, 30, QueryStatus.OK),
    (f"{AQ}imcce/tests/data/skybot_query.vot", 1, 4, QueryStatus.OK),
    (f"{AQ}ipac/ned/tests/data/query_photometry.xml", 1, 556, QueryStatus.OK),
    (f"{AQ}ipac/irsa/tests/data/Polygon.xml", 1, 7, QueryStatus.OK),
    (f"{AQ}ukidss/tests/data/votable.xml", 1, 9, QueryStatus.OK),
    (f"{AQ}gaia/tests/data/job_1.vot", 1, 3, QueryStatus.OK),
    (f"{AQ}utils/tap/model/tests/data/result_1.vot.gz", 1, 1, QueryStatus.OK),
    (f"{AQ}esa/jwst/tests/data/simbad_TEST.vot", 1, 0, QueryStatus.OK),
    (f"{AQ}svo_fps/tests/data/svo_fps_PhotCalID=2MASS.2MASS.H.Vega.xml", 1, 0, QueryStatus.OK),
    (f"{AQ}vizier/tests/data/find_kangapj70683.xml", 0, 0, QueryStatus.OK),
    (f"{PV}dal/tests/data/sla/dataset.xml", 1, 21, QueryStatus.OK),
    (f"{PV}dal/tests/data/ssa/result.xml", 1, 36, QueryStatus.OK),
    (f"{PV}dal/tests/data/tap/obscore-image.xml", 1, 10, QueryStatus.OK),
    (f"{PV}dal/tests/data/query/missingresource.xml", 0, 0, QueryStatus.OK),
    (f"{PV}dal/tests/data/query/missingtable.xml", 0, 0, QueryStatus.OK),
    (f"{PV}mivot/tests/data/test.mivot_viewer.xml", 2, 6, QueryStatus.OK),
    (f"{PV}mivot/tests/data/simbad-cone-mivot.xml", 1, 1, QueryStatus.OVERFLOW),
    (f"{PV}dal/tests/data/datalink/datalink-ssa.xml", 1, 1, QueryStatus.OVERFLOW),
    (f"{PV}dal/tests/data/query/overflowstatus.xml", 1, 3, QueryStatus.OVERFLOW),
    (f"{PV}mivot/tests/data/test.header_extraction.1.xml", 1, 5, QueryStatus.OVERFLOW),
    (f"{PV}mivot/tests/data/test.mango_annoter.xml", 1, 5, QueryStatus.OVERFLOW),
]


@pytest.mark.parametrize(
    ("name", "tables", "rows", "status"), EXPECTED, ids=[e[0] for e in EXPECTED]
)
def test_rows_and_status(
    corpus_dir: Path, name: str, tables: int, rows: int, status: QueryStatus
) -> None:
    """Table count, row count and status match the MANIFEST's record for the file."""
    parsed = parse_file(corpus_dir, name)
    assert (len(parsed.tables), parsed.rows, parsed.status) == (tables, rows, status)


# --- highlights -------------------------------------------------------------------------------


def test_simbad_ok_then_overflow(corpus_dir: Path) -> None:
    """SIMBAD's OK followed by OVERFLOW after the table ends as OVERFLOW, row kept."""
    parsed = parse_file(corpus_dir, f"{PV}mivot/tests/data/simbad-cone-mivot.xml")
    assert parsed.status is QueryStatus.OVERFLOW
    assert parsed.message == "Truncated result"


def test_dachs_warning_truncation(corpus_dir: Path) -> None:
    """DaCHS's 'query limit was reached' warning INFO makes the result OVERFLOW."""
    parsed = parse_file(corpus_dir, f"{PV}dal/tests/data/datalink/datalink-ssa.xml")
    assert parsed.status is QueryStatus.OVERFLOW
    assert parsed.message is not None
    assert "The query limit was reached" in parsed.message


def test_vizier_outage(corpus_dir: Path) -> None:
    """VizieR's outage answer (31 Error INFOs, QUERY_STATUS=ERROR, ns0:) is QueryRejected."""
    with pytest.raises(QueryRejected) as caught:
        parse_file(corpus_dir, f"{AQ}vizier/tests/data/no_server_error.xml")
    message = caught.value.message
    assert message.startswith("The database is not currently reachable.")
    assert "Postgres connect error" in message


def test_ned_error_param_with_ok_status(corpus_dir: Path) -> None:
    """NED's PARAM name=Error under QUERY_STATUS=OK is QueryRejected with the PARAM value."""
    with pytest.raises(QueryRejected, match=r"^No note found\.$"):
        parse_file(corpus_dir, f"{AQ}ipac/ned/tests/data/error.xml")


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (1, "Error in input RA value: as3f"),
        (2, "Error in input RA value: as3f"),
        (3, "Invalid data type: text/html"),
        (4, "Invalid data type: text/html"),
    ],
)
def test_conesearch_error_placements(corpus_dir: Path, number: int, message: str) -> None:
    """The four SCS error placements (root INFO, RESOURCE INFO/PARAM, DEFINITIONS PARAM)."""
    name = f"{AQ}vo_conesearch/tests/data/conesearch_error{number}.xml"
    with pytest.raises(QueryRejected) as caught:
        parse_file(corpus_dir, name)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"{PV}mivot/tests/data/test.photcal_error.xml", "PhotCalID not found: zaada"),
        (f"{PV}dal/tests/data/query/errorstatus.xml", "ERROR"),
    ],
)
def test_query_status_error_documents(corpus_dir: Path, name: str, message: str) -> None:
    """QUERY_STATUS=ERROR documents are rejected with their status text."""
    with pytest.raises(QueryRejected) as caught:
        parse_file(corpus_dir, name)
    assert caught.value.message == message


def test_hubble_gzip_top_cut(corpus_dir: Path) -> None:
    """The gzip-compressed .vot (BINARY2, TOP 2000) is inflated: 2000 rows, status OK."""
    body = read(corpus_dir, f"{AQ}esa/hubble/tests/data/cone_search_m31_5.vot")
    assert body.startswith(b"\x1f\x8b")
    parsed = parse_votable(body, content_type="application/x-votable+xml")
    assert (parsed.rows, parsed.status) == (2000, QueryStatus.OK)


def test_euclid_arraysize_astropy_refuses(corpus_dir: Path) -> None:
    """ESA Euclid's arraysize '100x*' makes astropy fail: a format error with its message."""
    name = f"{AQ}esa/euclid/tests/data/test_get_scientific_product_list.vot"
    with pytest.raises(ResponseFormatError, match=r"E01.*100x"):
        parse_file(corpus_dir, name)


def test_vizier_many_tables(corpus_dir: Path) -> None:
    """VizieR's 242 RESOURCEs / 360 TABLEs all come back, each with its name."""
    parsed = parse_file(corpus_dir, f"{AQ}vizier/tests/data/viz.xml")
    names = [t.meta["vosweep_table"] for t in parsed.tables]
    assert len(names) == 360
    assert all(names)


def test_svo_param_only_table(corpus_dir: Path) -> None:
    """SVO's PARAM-only table is a zero-column table with its params in meta."""
    name = f"{AQ}svo_fps/tests/data/svo_fps_PhotCalID=2MASS.2MASS.H.Vega.xml"
    (table,) = parse_file(corpus_dir, name).tables
    assert table.colnames == []
    assert len(table) == 0
    assert table.meta["params"]


def test_skybot_prefixed_elements(corpus_dir: Path) -> None:
    """SkyBoT's vot:-prefixed document parses with its units."""
    (table,) = parse_file(corpus_dir, f"{AQ}imcce/tests/data/skybot_query.vot").tables
    assert len(table) == 4
    assert any(table[c].unit is not None for c in table.colnames)


def test_regtap_binary(corpus_dir: Path) -> None:
    """GAVO's RegTAP answer (BINARY) keeps the pseudo-array separator in its strings."""
    (table,) = parse_file(corpus_dir, f"{PV}registry/tests/data/regtap.xml").tables
    if isinstance(table, TableData):
        table = table.to_table()
    assert len(table) == 30
    text_columns = [c for c in table.colnames if table[c].dtype.kind in "OUS"]
    assert any(":::py VO sep:::" in str(v) for c in text_columns for v in table[c])


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (f"{AQ}gaia/tests/data/job_2.vot.gz", "gzip-compressed tar archive"),
        (f"{AQ}ipac/irsa/irsa_dust/tests/data/dust-error.xml", "Invalid object name"),
        (f"{PV}dal/tests/data/tap/examples.htm", "HTML page instead of a VOTable"),
        (f"{AQ}gaia/tests/data/cone_search.json", "JSON document"),
        (f"{AQ}utils/tap/tests/data/test_upload_file/1744351221317O-result.json", "JSON"),
        (f"{AQ}esa/euclid/tests/data/test_get_scientific_product_list.csv", "CSV text"),
        (f"{AQ}gaia/tests/data/1712337806100O-result.ecsv", "ECSV table"),
        (f"{PV}dal/tests/data/tap/lazy-table1.xml", "root <table>"),
    ],
)
def test_format_errors_name_what_was_found(corpus_dir: Path, name: str, fragment: str) -> None:
    """Non-VOTable answers raise ResponseFormatError saying what they are."""
    with pytest.raises(ResponseFormatError) as caught:
        parse_file(corpus_dir, name)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("name", "root"),
    [
        (f"{AQ}casda/tests/data/completed_job.xml", "uws:job"),
        (f"{AQ}utils/tap/xmlparser/tests/data/test_jobs_async.xml", "uws:jobs"),
        (f"{AQ}esa/euclid/tests/data/jobs.xml", "uws:jobs"),
        (f"{PV}io/uws/tests/data/job-implicit-v1.0.xml", "job"),
        (f"{PV}registry/tests/data/capabilities.xml", "cap:capabilities"),
        (f"{AQ}cadc/tests/data/tap_caps.xml", "vosi:capabilities"),
        (f"{AQ}casda/tests/data/availability.xml", "availability"),
        (f"{PV}io/vosi/tests/data/tables.xml", "vtm:tableset"),
        (f"{AQ}utils/tap/xmlparser/tests/data/test_tables_gaia.xml", "vod:tableset"),
    ],
)
def test_uws_and_vosi_documents_name_their_root(corpus_dir: Path, name: str, root: str) -> None:
    """UWS, VOSI and capabilities documents are format errors naming their root element."""
    with pytest.raises(ResponseFormatError) as caught:
        parse_file(corpus_dir, name)
    assert f"root <{root}>" in caught.value.message


def test_uws_error_summary_is_quoted(corpus_dir: Path) -> None:
    """A UWS job in ERROR phase sent instead of a result quotes its error summary."""
    with pytest.raises(ResponseFormatError, match="We have problem"):
        parse_file(corpus_dir, f"{PV}io/uws/tests/data/job-error.xml")
