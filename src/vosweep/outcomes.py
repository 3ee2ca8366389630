"""Outcomes are data: one record per service, whatever happened to it."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from vosweep.protocols.fastvot._model import TableData
from vosweep.services import Service

if TYPE_CHECKING:
    from astropy.table import Table

    from vosweep.protocols.links import DatalinkAccess

__all__ = ["Part", "ServiceOutcome", "Status"]


class Status(StrEnum):
    """How one service's request ended."""

    #: Rows came back.
    OK = "ok"
    #: The service answered correctly with zero rows.
    EMPTY = "empty"
    #: The service truncated its answer (QUERY_STATUS=OVERFLOW or a limit); rows are kept.
    OVERFLOW = "overflow"
    #: The service failed: HTTP error, broken connection, malformed answer, query rejected.
    ERROR = "error"
    #: A time limit ran out (connect, idle read, or the whole attempt).
    TIMEOUT = "timeout"
    #: The fan-out was cancelled or hit its deadline before this service answered.
    CANCELLED = "cancelled"
    #: Not sent: circuit open for the host, duplicate target, or a query that does not fit.
    SKIPPED = "skipped"

    @property
    def succeeded(self) -> bool:
        """Whether the service delivered a usable answer (possibly empty or truncated)."""
        return self in _SUCCESS

    @property
    def failed(self) -> bool:
        """Whether the service was asked and did not deliver."""
        return self in {Status.ERROR, Status.TIMEOUT}


_SUCCESS = frozenset({Status.OK, Status.EMPTY, Status.OVERFLOW})


class ServiceOutcome(BaseModel):
    """What happened to one service in one fan-out.

    Attributes:
        service: The service that was (or was not) asked.
        status: How it ended.
        rows: Rows received (over all its result tables).
        attempts: HTTP attempts made (0 when nothing was sent).
        elapsed: Seconds from the first attempt to the end, backoffs included.
        bytes: Body bytes received on the final attempt (after decompression).
        http_status: The last HTTP status seen, if any.
        error_type: The vosweep error class name, for failures.
        message: Why it failed, was skipped or truncated; ``None`` when all went well.
        url: The URL of the last attempt (after redirects, when known).
        failovers: Access URLs given up on as unreachable before the last attempt's: the
            registered one, then mirrors (RegTAP 1.1 ``mirror_url``) in turn.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: Service
    status: Status
    rows: int = 0
    attempts: int = 0
    elapsed: float = 0.0
    bytes: int = 0
    http_status: int | None = None
    error_type: str | None = None
    message: str | None = None
    url: str | None = None
    failovers: tuple[str, ...] = ()


class Part:
    """One finished service, as the stream hands it out: its outcome and its tables.

    Attributes:
        index: Position of the service among the fan-out's targets.
        outcome: The service's outcome.
    """

    __slots__ = ("_raw", "_tables", "datalink", "index", "outcome")

    def __init__(
        self,
        index: int,
        outcome: ServiceOutcome,
        tables: list[Table | TableData] | None = None,
        datalink: tuple[DatalinkAccess, ...] = (),
    ) -> None:
        self.index = index
        self.outcome = outcome
        self._raw: list[Table | TableData] = tables or []
        self._tables: list[Table] | None = None
        #: The answer's DataLink service descriptors (see `Engine.datalinks`).
        self.datalink = datalink

    @property
    def tables(self) -> list[Table]:
        """The result tables as astropy tables (empty unless the outcome succeeded).

        Built on first access: the fast decoder keeps plain columns, and a fan-out that
        only wants the merged table never pays for one astropy table per service.
        """
        if self._tables is None:
            self._tables = [t.to_table() if isinstance(t, TableData) else t for t in self._raw]
        return self._tables

    @property
    def raw_tables(self) -> list[Table | TableData]:
        """The tables as decoded (astropy tables or the fast decoder's `TableData`)."""
        return self._raw

    def __repr__(self) -> str:
        o = self.outcome
        return f"<Part #{self.index} {o.service.label} {o.status.value} rows={o.rows}>"


def count_statuses(outcomes: list[ServiceOutcome]) -> dict[Status, int]:
    """Count outcomes per status, every status present (zeros included), in enum order."""
    counts = Counter(o.status for o in outcomes)
    return {status: counts.get(status, 0) for status in Status}
