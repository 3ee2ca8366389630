"""UWS 1.0 and 1.1 job documents, phases and job lists, as real services send them (sans-I/O).

A TAP query run as a UWS job is followed by reading ``{job}`` (the job document) and
``{job}/phase`` (plain text) until the phase is final. What real services do, and what
these parsers therefore accept (see ``shared/corpus``):

* any namespace prefix (``uws:``, ``ns0:``), a default namespace or none, and the
  UWS 1.0 namespace on 1.1 documents; the ``version`` attribute is informative only;
* ``xsi:nil="true"`` or empty elements for absent values, CDATA and whitespace around
  identifiers (CASDA, ESA), and timestamps with offsets such as ``+0800`` that strict
  parsers refuse (they are kept as text: nothing here needs them as datetimes);
* lower-case phases, and phases no standard defines: those become `Phase.UNKNOWN`
  instead of an error, so that polling goes on and the job timeout decides;
* ``quote`` as a timestamp (UWS) or ``-1`` (ESA), and an empty ``errorSummary``;
* job lists with ``jobref`` elements (the standard) or whole ``job`` elements (ESA).

Anything that is not a job document (an HTML error page, a VOTable, a job list where a
job was expected) is a `ResponseFormatError` saying what came instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin, urlsplit

from vosweep.errors import ResponseFormatError
from vosweep.protocols._xml import Element, is_nil, parse_tree, text_or_none

__all__ = ["JobSummary", "Phase", "ResultRef", "parse_job", "parse_job_list", "parse_phase"]

_JOB = "UWS job document"
_JOB_LIST = "UWS job list"
#: Job documents and job lists are told apart after parsing, for a precise message.
_ROOTS = frozenset({"job", "jobs"})
#: A ``{job}/phase`` body longer than this is not a phase (an HTML page, a stack trace).
_PHASE_LIMIT = 64


class Phase(StrEnum):
    """The execution phase of a UWS job (UWS 1.1, section 2.1.3)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    #: Not known to the service, or a phase string no standard defines.
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"

    @property
    def final(self) -> bool:
        """The job will not change any more: stop polling."""
        return self in _FINAL

    @property
    def active(self) -> bool:
        """The server is working on the job (so a blocking ``WAIT`` makes sense)."""
        return self in _ACTIVE

    @classmethod
    def read(cls, text: str) -> Phase:
        """The phase named by *text*, case-insensitively; UNKNOWN for anything else."""
        try:
            return cls(text.strip().upper())
        except ValueError:
            return cls.UNKNOWN


_FINAL = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
_ACTIVE = frozenset({Phase.QUEUED, Phase.EXECUTING})


@dataclass(frozen=True, slots=True)
class ResultRef:
    """One entry of a job's result list.

    Attributes:
        id: The result's name (``result`` for TAP's query result).
        href: Where to fetch it, as the service wrote it (possibly relative).
    """

    id: str
    href: str


@dataclass(frozen=True, slots=True)
class JobSummary:
    """What a UWS job document says; absent or nil values are None.

    Attributes:
        job_id: The job's identifier (whitespace around it removed).
        phase: The execution phase (`Phase.UNKNOWN` for an unrecognised string).
        results: The results listed, in document order (those without a link left out).
        error_message: The error summary's message, if any.
        error_type: ``"fatal"`` or ``"transient"`` (lower-cased, as declared), if any.
        has_error_detail: Whether ``{job}/error`` holds more detail (``hasDetail``).
        execution_duration: Seconds the job may run (0 means unlimited in UWS).
        destruction: When the service will destroy the job (as written).
        quote: The service's estimate of the completion time (as written; ESA sends -1).
        run_id: The client's run identifier.
        owner_id: The job's owner.
        creation_time: When the job was created (UWS 1.1; as written).
        start_time: When the job started (as written).
        end_time: When the job ended (as written).
        version: The UWS version declared by the document (1.0 when none is).
    """

    job_id: str
    phase: Phase
    results: tuple[ResultRef, ...]
    error_message: str | None
    error_type: str | None
    has_error_detail: bool
    execution_duration: float | None
    destruction: str | None
    quote: str | None
    run_id: str | None
    owner_id: str | None
    creation_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    version: str = "1.0"

    def result_url(self, job_url: str) -> str | None:
        """The URL of the main result: the one named ``result`` (TAP), else the first.

        A relative link is resolved below the job: UWS puts results at
        ``{job}/results/{id}``, so ``results/result`` in the document of
        ``.../async/42`` means ``.../async/42/results/result`` (plain RFC 3986
        resolution would drop the ``42``). Absolute paths and URLs resolve as usual.

        Returns:
            The absolute URL, or None when the job lists no result.
        """
        if not self.results:
            return None
        chosen = next((r for r in self.results if r.id.lower() == "result"), self.results[0])
        href = chosen.href
        if urlsplit(href).scheme or href.startswith("/"):
            return urljoin(job_url, href)
        return urljoin(job_url.rstrip("/") + "/", href)


def parse_job(body: bytes) -> JobSummary:
    """Read a UWS job document (the answer to ``GET {job}``, or to the job creation).

    Raises:
        ResponseFormatError: Not well-formed XML, not a job document (HTML, VOTable,
            a job list ...), or no ``jobId`` or ``phase`` in it.
    """
    root = parse_tree(body, _JOB, roots=_ROOTS)
    if root.name == "jobs":
        raise ResponseFormatError(f"{_JOB_LIST} instead of a {_JOB}")
    job_id = text_or_none(root.find("jobId"))
    if job_id is None:
        raise ResponseFormatError(f"{_JOB} without a jobId")
    phase_text = text_or_none(root.find("phase"))
    if phase_text is None:
        raise ResponseFormatError(f"{_JOB} of job {job_id!r} without a phase")
    message, kind, detail = _error_summary(root.find("errorSummary"))
    return JobSummary(
        job_id=job_id,
        phase=Phase.read(phase_text),
        results=_results(root.find("results")),
        error_message=message,
        error_type=kind,
        has_error_detail=detail,
        execution_duration=_seconds(text_or_none(root.find("executionDuration"))),
        destruction=text_or_none(root.find("destruction")),
        quote=text_or_none(root.find("quote")),
        run_id=text_or_none(root.find("runId")),
        owner_id=text_or_none(root.find("ownerId")),
        creation_time=text_or_none(root.find("creationTime")),
        start_time=text_or_none(root.find("startTime")),
        end_time=text_or_none(root.find("endTime")),
        version=root.attrs.get("version", "").strip() or "1.0",
    )


def parse_phase(body: bytes) -> Phase:
    """Read the ``text/plain`` body of ``GET {job}/phase`` (``EXECUTING`` and a newline).

    Some services answer with the whole job document instead; its phase is used.

    Raises:
        ResponseFormatError: An empty body, or one that is not a single word (an HTML
            page, an error message).
    """
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_job(body).phase
    text = head[: _PHASE_LIMIT + 1].decode("utf-8", errors="replace").strip()
    if not text:
        raise ResponseFormatError("empty UWS phase")
    if len(text) > _PHASE_LIMIT or not text.replace("_", "").isalpha():
        excerpt = " ".join(text.split())[:_PHASE_LIMIT]
        raise ResponseFormatError(f"not a UWS phase: {excerpt!r}")
    return Phase.read(text)


def parse_job_list(body: bytes) -> list[tuple[str, Phase]]:
    """Read a UWS job list (``GET {jobs}``): the job ids and phases, in document order.

    Standard lists hold ``jobref`` elements; ESA's hold whole ``job`` elements. A
    reference without a phase (allowed before UWS 1.1) gets `Phase.UNKNOWN`; one
    without an id is left out.

    Raises:
        ResponseFormatError: Not well-formed XML or not a job list.
    """
    root = parse_tree(body, _JOB_LIST, roots=_ROOTS)
    if root.name == "job":
        raise ResponseFormatError(f"single {_JOB} instead of a {_JOB_LIST}")
    jobs: list[tuple[str, Phase]] = []
    for child in root.children:
        if child.name == "jobref":
            job_id = child.attrs.get("id", "").strip() or text_or_none(child.find("jobId"))
        elif child.name == "job":
            job_id = text_or_none(child.find("jobId"))
        else:
            continue
        if not job_id:
            continue
        phase = text_or_none(child.find("phase"))
        jobs.append((job_id, Phase.read(phase) if phase else Phase.UNKNOWN))
    return jobs


def _results(element: Element | None) -> tuple[ResultRef, ...]:
    if element is None:
        return ()
    found: list[ResultRef] = []
    for result in element.iter("result"):
        href = result.attrs.get("href", "").strip()
        if href:
            found.append(ResultRef(id=result.attrs.get("id", "").strip(), href=href))
    return tuple(found)


def _error_summary(element: Element | None) -> tuple[str | None, str | None, bool]:
    """Message, type and hasDetail of an ``errorSummary`` (None, None, False if absent)."""
    if element is None or is_nil(element):
        return None, None, False
    message = text_or_none(element.find("message"))
    if message is not None:
        message = " ".join(message.split())
    kind = element.attrs.get("type", "").strip().lower() or None
    detail = element.attrs.get("hasDetail", "").strip().lower() in {"true", "1"}
    return message, kind, detail


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
