# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""UWS, VOSI and DataLink parsers on real documents (``../shared/corpus``, see its MANIFEST.md).

Documents are picked by what they are (their root element, their columns), not by a
list of names, so new corpus files are covered as they come. The oracles are the
strict parsers other projects use: vo-models (pydantic-xml UWS models) and pyvo
(``pyvo.io.uws``, ``pyvo.io.vosi``, ``DatalinkResults``), compared wherever they
manage to read the document.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import vo_models.uws as vom
from astropy.io.votable import parse as astropy_parse
from pyvo.dal.adhoc import DatalinkResults
from pyvo.io import uws as pyvo_uws
from pyvo.io import vosi as pyvo_vosi

from vosweep.errors import QueryRejected, ResponseFormatError, ResponseTooLarge
from vosweep.protocols import datalink, uws, vosi
from vosweep.protocols._xml import parse_subtrees
from vosweep.protocols.uws import Phase

SKIP_REASON = "../shared/corpus not found: set VOSWEEP_CORPUS to run the real-response tests"
_FIELD_SEMANTICS = re.compile(
    rb"<(?:\w+:)?FIELD\b[^>]*\bname\s*=\s*[\"']semantics[\"']", re.IGNORECASE
)
_VOSI_ROOTS = {"capabilities", "availability", "tableset", "table"}


def _corpus() -> Path | None:
    """The corpus folder (as tests/corpus/conftest.py finds it), or None."""
    override = os.environ.get("VOSWEEP_CORPUS")
    root = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    )
    return root if root.is_dir() else None


def _root_name(body: bytes) -> str | None:
    """The root element's local name, None for anything that is not XML."""
    try:
        root, _ = parse_subtrees(body, "document", lambda _name, _attrs: False, allow_doctype=True)
    except ResponseFormatError:
        return None
    return root


def _gunzip(body: bytes) -> bytes:
    """*body* without its gzip layers (services gzip by hand); as is when not gzip."""
    while body.startswith(b"\x1f\x8b"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return body
    return body


def _classify() -> dict[str, list[str]]:
    """Corpus files by kind: UWS jobs and lists, VOSI documents, DataLink, descriptors."""
    root = _corpus()
    kinds: dict[str, list[str]] = {
        "job": [],
        "jobs": [],
        "capabilities": [],
        "availability": [],
        "tables": [],
        "links": [],
        "descriptors": [],
    }
    if root is None:
        return kinds
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == "MANIFEST.md":
            continue
        body = path.read_bytes()
        name = path.relative_to(root).as_posix()
        local = _root_name(body)
        if local in {"job", "jobs", "capabilities", "availability"}:
            kinds[local].append(name)
        elif local in {"tableset", "table"}:
            kinds["tables"].append(name)
        elif local == "VOTABLE":
            if _FIELD_SEMANTICS.search(body):
                kinds["links"].append(name)
            if b"adhoc:service" in body:
                kinds["descriptors"].append(name)
    return kinds


KINDS = _classify()


def params(kind: str) -> list[Any]:
    """One parameter per corpus file of *kind*, or one skipped case without a corpus."""
    if _corpus() is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    return [pytest.param(name, id=name) for name in KINDS[kind]]


def test_every_kind_found() -> None:
    """The corpus holds every kind of document these parsers read (else nothing is proven)."""
    if _corpus() is None:
        pytest.skip(SKIP_REASON)
    counts = {kind: len(names) for kind, names in KINDS.items()}
    assert counts["job"] >= 10, counts
    assert counts["jobs"] >= 3, counts
    assert counts["capabilities"] >= 8, counts
    assert counts["availability"] >= 2, counts
    assert counts["tables"] >= 30, counts
    assert counts["links"] >= 10, counts
    assert counts["descriptors"] >= 10, counts


# --- every file ----------------------------------------------------------------------------


def _outcome(parse: Any, body: bytes) -> object:
    """What *parse* makes of *body*: a value, or one of the errors a parser may raise."""
    try:
        return parse(body)
    except (ResponseFormatError, QueryRejected, ResponseTooLarge) as exc:
        if not exc.message:
            pytest.fail(f"{parse.__name__} raised {exc!r} without a message")
        return exc


def test_every_file_accepted_or_refused(corpus_dir: Path, corpus_file: str) -> None:
    """Every parser reads exactly the documents of its kind and refuses the rest cleanly."""
    body = (corpus_dir / corpus_file).read_bytes()
    local = _root_name(body)
    accepted = {
        "job": not isinstance(_outcome(uws.parse_job, body), Exception),
        "jobs": not isinstance(_outcome(uws.parse_job_list, body), Exception),
        "capabilities": not isinstance(_outcome(vosi.parse_capabilities, body), Exception),
        "availability": not isinstance(_outcome(vosi.parse_availability, body), Exception),
        "tables": not isinstance(_outcome(vosi.parse_tables, body), Exception),
        "descriptors": not isinstance(_outcome(datalink.parse_descriptors, body), Exception),
    }
    assert accepted == {
        "job": local == "job",
        "jobs": local == "jobs",
        "capabilities": local == "capabilities",
        "availability": local == "availability",
        "tables": local in {"tableset", "table"},
        "descriptors": _root_name(_gunzip(body)) == "VOTABLE",
    }
    assert isinstance(_outcome(uws.parse_phase, body), Phase | Exception)


# --- UWS -----------------------------------------------------------------------------------


def _vo_models_job(body: bytes) -> Any:
    try:
        return vom.JobSummary[vom.Parameters].from_xml(body)
    except Exception:
        return None


def _pyvo_job(body: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pyvo_uws.parse_job(io.BytesIO(body))
        except Exception:
            return None


def assert_job_agrees(ours: uws.JobSummary, oracle: Any) -> None:
    """Our summary says what vo-models says: id, phase, results and error."""
    assert ours.job_id == oracle.job_id.strip()
    assert ours.phase.value == oracle.phase.value
    results = oracle.results.results if oracle.results else []
    assert [(r.id, r.href) for r in ours.results] == [(r.id, r.href) for r in results if r.href]
    summary = oracle.error_summary
    assert ours.error_message == ((summary.message or "").strip() or None if summary else None)
    if summary is not None and ours.error_type is not None:
        assert ours.error_type == summary.type.value
        assert ours.has_error_detail == summary.has_detail


@pytest.mark.parametrize("name", params("job"))
def test_job_documents(corpus_dir: Path, name: str) -> None:
    """Every job document reads, and agrees with vo-models and pyvo where they read it."""
    body = (corpus_dir / name).read_bytes()
    ours = uws.parse_job(body)
    assert ours.job_id
    assert ours.phase is not Phase.UNKNOWN
    oracle = _vo_models_job(body)
    if oracle is not None:
        assert_job_agrees(ours, oracle)
    job = _pyvo_job(body)
    if job is not None:
        assert (ours.job_id, ours.phase.value) == (job.jobid.strip(), job.phase)
        assert [(r.id, r.href) for r in ours.results] == [(r.id_, r.href) for r in job.results]
    assert oracle is not None or job is not None, "no oracle reads this job document"


def test_casda_offsets_and_nil(corpus_dir: Path) -> None:
    """CASDA's +0800 timestamps (pyvo fails) and xsi:nil elements; S3 links kept whole."""
    ours = uws.parse_job(
        (corpus_dir / "astroquery/astroquery/casda/tests/data/completed_job.xml").read_bytes()
    )
    assert ours.start_time == "2020-04-17T08:10:22.793+0800"
    assert (ours.run_id, ours.owner_id, ours.quote, ours.destruction) == (None, None, None, None)
    assert ours.error_message is None
    url = ours.result_url("http://casda.test/jobs/a7b5")
    assert url == "http://casda.csiro.au/download/web/111-000-111-000/askap_img.fits.checksum"
    assert "&X-Amz-Signature=deadbeef" in ours.results[-1].href


def _inline_jobs(body: bytes) -> list[Any]:
    """The whole jobs inside an ESA-style list, each read by vo-models."""
    return [
        vom.JobSummary[vom.Parameters].from_xml(ET.tostring(element))
        for element in ET.fromstring(body)  # noqa: S314 (trusted test data)
        if element.tag.rpartition("}")[2] == "job"
    ]


@pytest.mark.parametrize("name", params("jobs"))
def test_job_lists(corpus_dir: Path, name: str) -> None:
    """Job lists: jobrefs agree with vo-models and pyvo; inline jobs with vo-models' jobs."""
    body = (corpus_dir / name).read_bytes()
    ours = uws.parse_job_list(body)
    assert ours
    inline = _inline_jobs(body)
    if inline:
        assert ours == [(job.job_id.strip(), Phase(job.phase.value)) for job in inline]
        return
    refs = vom.Jobs.from_xml(body).jobref or []
    assert ours == [(ref.job_id, Phase(ref.phase.value)) for ref in refs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        listed = pyvo_uws.parse_job_list(io.BytesIO(body))
    assert ours == [(job.jobid, Phase(job.phase)) for job in listed]


# --- VOSI ----------------------------------------------------------------------------------


def _pyvo(parse: Any, body: bytes) -> tuple[Any, list[str]]:
    """pyvo's reading of *body* (None if it fails) and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = parse(io.BytesIO(body))
        except Exception:
            result = None
    return result, [str(w.message) for w in caught]


def _form(form: str) -> str:
    return form.partition("(")[0].strip()


def _row_limit(limit: Any) -> int | None:
    if limit is None or (limit.unit or "row") != "row":
        return None
    return int(limit.content)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def assert_tap_agrees(ours: vosi.TapCapabilities, theirs: Any) -> None:
    """TAPRegExt as pyvo reads it."""
    adql = [lang for lang in theirs.languages if lang.name.upper().startswith("ADQL")]
    assert ours.adql_versions == {
        v.content or v.ivo_id.rpartition("#v")[2] for lang in adql for v in lang.versions
    }
    assert ours.features == {
        (block.type.lower(), _form(feature.form))
        for lang in adql
        for block in lang.languagefeaturelists
        for feature in block.features
    }
    assert [(f.mime, f.aliases, f.ivo_id) for f in ours.output_formats] == [
        (f.mime, tuple(f.aliases), f.ivo_id) for f in theirs.outputformats
    ]
    assert ours.upload_methods == {m.ivo_id.lower() for m in theirs.uploadmethods}
    assert ours.data_models == {dm.ivo_id.lower() for dm in theirs.datamodels}
    output = theirs.outputlimit
    assert ours.output_limit_default == _row_limit(output.default if output else None)
    assert ours.output_limit_hard == _row_limit(output.hard if output else None)
    upload = theirs.uploadlimit.hard if theirs.uploadlimit else None
    assert ours.upload_limit_hard == _row_limit(upload)
    assert ours.upload_limit_hard_bytes == (
        int(upload.content) if upload is not None and upload.unit == "byte" else None
    )
    for mine, limits in (
        ((ours.execution_duration_default, ours.execution_duration_hard), theirs.executionduration),
        ((ours.retention_default, ours.retention_hard), theirs.retentionperiod),
    ):
        expected = (_seconds(limits.default), _seconds(limits.hard)) if limits else (None, None)
        assert mine == expected


@pytest.mark.parametrize("name", params("capabilities"))
def test_capabilities(corpus_dir: Path, name: str) -> None:
    """Capabilities, access URLs and TAPRegExt agree with pyvo.io.vosi."""
    body = (corpus_dir / name).read_bytes()
    ours = vosi.parse_capabilities(body)
    theirs, _ = _pyvo(pyvo_vosi.parse_capabilities, body)
    assert theirs is not None
    assert [c.standard_id for c in ours.capabilities] == [c.standardid for c in theirs]
    for mine, capability in zip(ours.capabilities, theirs, strict=True):
        urls = {url.content for interface in capability.interfaces for url in interface.accessurls}
        assert set(mine.access_urls) == urls
    tap = [c for c in theirs if type(c).__name__ == "TableAccess"]
    assert (ours.tap is not None) == bool(tap)
    if ours.tap is not None:
        assert_tap_agrees(ours.tap, tap[0])


@pytest.mark.parametrize("name", params("availability"))
def test_availability(corpus_dir: Path, name: str) -> None:
    """Availability documents agree with pyvo.io.vosi."""
    body = (corpus_dir / name).read_bytes()
    ours = vosi.parse_availability(body)
    theirs, _ = _pyvo(pyvo_vosi.parse_availability, body)
    assert theirs is not None
    assert ours.available is theirs.available
    assert ours.up_since == theirs.upsince
    assert list(ours.notes) == [note for note in theirs.notes if note]


@pytest.mark.parametrize("name", params("tables"))
def test_tables(corpus_dir: Path, name: str) -> None:
    """Tables and columns agree with pyvo.io.vosi where it reads them without complaint."""
    body = (corpus_dir / name).read_bytes()
    ours = vosi.parse_tables(body)
    theirs, complaints = _pyvo(pyvo_vosi.parse_tables, body)
    if theirs is None:
        # pyvo's validator refuses a missing name; we skip the nameless element instead.
        return
    tables = list(theirs.iter_tables())
    assert len(ours) == len(tables)
    if complaints:
        # Duplicated elements (pyvo's validator cases): pyvo keeps the last, we the first.
        return
    for mine, table in zip(ours, tables, strict=True):
        # pyvo fills in VODataService's default arraysize "1"; we keep "not given" as None.
        assert (mine.name, mine.type, mine.nrows) == (table.name, table.type, table.nrows)
        assert mine.description == (
            " ".join(table.description.split()) if table.description else None
        )
        assert [
            (c.name, c.datatype, c.arraysize or "1", c.unit, c.ucd, c.utype) for c in mine.columns
        ] == [
            (
                c.name,
                c.datatype.content if c.datatype else None,
                c.datatype.arraysize if c.datatype else "1",
                c.unit or None,
                c.ucd or None,
                c.utype or None,
            )
            for c in table.columns
        ]


# --- DataLink ------------------------------------------------------------------------------


def _votable(body: bytes) -> Any:
    return astropy_parse(io.BytesIO(body), verify="ignore")


def _cell(record: Any, name: str, fieldnames: list[str]) -> str | None:
    if name not in fieldnames:
        return None
    value = record.get(name, decode=True)
    text = str(value).strip() if value is not None and str(value) != "--" else ""
    return text or None


def _expected_lengths(results: Any) -> list[int | None]:
    """content_length per row from astropy's table: masked (pyvo reads 0) or negative is None."""
    names = {name.lower(): name for name in results.fieldnames}
    if "content_length" not in names:
        return [None] * len(results)
    column = results.to_table()[names["content_length"]]
    mask = getattr(column, "mask", None)
    values: list[int | None] = []
    for i, value in enumerate(column):
        try:
            number = None if mask is not None and mask[i] else int(value)
        except (TypeError, ValueError):
            number = None
        values.append(number if number is not None and number >= 0 else None)
    return values


@pytest.mark.parametrize("name", params("links"))
def test_links(corpus_dir: Path, name: str) -> None:
    """Links agree with pyvo's DatalinkResults: same rows, ids, URLs and semantics."""
    body = (corpus_dir / name).read_bytes()
    results = DatalinkResults(_votable(body))
    fieldnames = list(results.fieldnames)
    names = [name.lower() for name in fieldnames]
    if "semantics" not in names or not {"access_url", "service_def", "error_message"} & set(names):
        with pytest.raises(ResponseFormatError, match="not a DataLink links table"):
            datalink.parse_links(body, max_bytes=len(body) + 1)
        return
    links, descriptors = datalink.parse_links(body, max_bytes=len(body) + 1)
    records = list(results)
    assert len(links) == len(records)
    lengths = _expected_lengths(results)
    for link, record, length in zip(links, records, lengths, strict=True):
        assert link.id == _cell(record, "ID", fieldnames)
        assert link.access_url == _cell(record, "access_url", fieldnames)
        assert link.service_def == _cell(record, "service_def", fieldnames)
        assert link.error_message == _cell(record, "error_message", fieldnames)
        assert link.semantics == _cell(record, "semantics", fieldnames)
        assert link.description == _cell(record, "description", fieldnames)
        assert link.content_type == _cell(record, "content_type", fieldnames)
        assert link.content_length == length
    assert [d.id for d in descriptors] == [s.ID for s in results.iter_adhocservices()]
    for link in links:
        if link.service_def is not None and any(d.id == link.service_def for d in descriptors):
            assert results.get_adhocservice_by_id(link.service_def) is not None


@pytest.mark.parametrize("name", params("descriptors"))
def test_descriptors(corpus_dir: Path, name: str) -> None:
    """Service descriptors agree with the adhoc:service resources pyvo finds."""
    body = (corpus_dir / name).read_bytes()
    ours = datalink.parse_descriptors(body)
    theirs = [
        resource
        for resource in _votable(body).resources
        if resource.type == "meta" and resource.utype == "adhoc:service"
    ]
    assert len(ours) == len(theirs)
    for mine, resource in zip(ours, theirs, strict=True):
        params = {param.name: param.value for param in resource.params}
        assert mine.id == resource.ID
        assert mine.standard_id == (str(params["standardID"]) if "standardID" in params else None)
        assert mine.access_url == (str(params["accessURL"]) if "accessURL" in params else None)
        inputs = [
            param
            for group in resource.groups
            if group.name == "inputParams"
            for param in group.entries
        ]
        assert [(p.name, p.ref, p.datatype) for p in mine.input_params] == [
            (p.name, p.ref, p.datatype) for p in inputs
        ]


def test_casda_no_access(corpus_dir: Path) -> None:
    """CASDA's refusal is one #error link carrying the fault message."""
    body = (
        corpus_dir / "astroquery/astroquery/casda/tests/data/datalink_noaccess.xml"
    ).read_bytes()
    (link,), descriptors = datalink.parse_links(body, max_bytes=len(body))
    assert link.matches("#error")
    assert link.access_url is None
    assert link.error_message is not None
    assert link.error_message.startswith("DefaultFault")
    assert descriptors == []


def test_gavo_proc_links(corpus_dir: Path) -> None:
    """GAVO's #proc link names the SODA descriptor holding its access URL."""
    body = (corpus_dir / "pyvo/pyvo/dal/tests/data/datalink/datalink.xml").read_bytes()
    links, descriptors = datalink.parse_links(body, max_bytes=len(body))
    proc = next(
        link for link in links if link.matches("http://www.ivoa.net/rdf/datalink/core#proc")
    )
    (descriptor,) = [d for d in descriptors if d.id == proc.service_def]
    assert descriptor.standard_id == "ivo://ivoa.net/std/SODA#sync-1.0"
    assert descriptor.access_url == "http://dc.zah.uni-heidelberg.de/flashheros/q/sdl/dlget"
    assert [p.name for p in descriptor.input_params] == ["ID", "FLUXCALIB", "BAND", "FORMAT"]
    assert descriptor.input_params[2].xtype == "interval"
    preview = [link for link in links if link.matches("#preview")]
    assert [link.content_type for link in preview] == ["image/png"]
    assert links[0].content_type is not None
    assert datalink.is_datalink_type(links[0].content_type)
