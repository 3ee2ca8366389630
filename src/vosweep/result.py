"""Report: what a fan-out produced: one table, and one outcome per target."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
from astropy.table import Table

from vosweep import _log
from vosweep.aggregation import Stacker
from vosweep.checkpoint import Checkpoint, is_finished, output_format, write_table
from vosweep.outcomes import Part, ServiceOutcome, Status, count_statuses

if TYPE_CHECKING:
    from vosweep.protocols.links import DatalinkAccess
    from vosweep.scheduling.runner import RunEnd

__all__ = ["FanoutResult"]


class FanoutResult:
    """The merged table and every service's outcome.

    Attributes:
        outcomes: One `ServiceOutcome` per target, in target order.
        complete: False when a deadline, cancellation or abort cut the fan-out short.
        reason: Why it was cut short.
        elapsed: Wall seconds the fan-out took.
        datalink_access: DataLink service descriptors the answers carried, by service
            access URL (what `Engine.datalinks` uses for rows without a datalink URL).
    """

    def __init__(
        self,
        outcomes: list[ServiceOutcome],
        stacker: Stacker | Table,
        *,
        complete: bool,
        reason: str | None,
        elapsed: float,
        datalink_access: dict[str, tuple[DatalinkAccess, ...]] | None = None,
        restored: int = 0,
        duplicates_dropped: int = 0,
        checkpoint_info: dict[str, Any] | None = None,
        store: Checkpoint | None = None,
    ) -> None:
        self.outcomes = outcomes
        self._rows = stacker
        self.complete = complete
        self.reason = reason
        self.elapsed = elapsed
        self.datalink_access = datalink_access or {}
        #: Services whose outcome (and rows) came from the checkpoint, not from this run.
        self.restored = restored
        #: Duplicate records a sweep dropped after merging (see `derive`).
        self.duplicates_dropped = duplicates_dropped
        #: What the caller stored with a checkpointed sweep (`Engine.fanout(checkpoint_info=)`).
        self.checkpoint_info = checkpoint_info
        #: The checkpoint holding the rows when the sweep kept none in memory.
        self._store = store

    @property
    def table(self) -> Table:
        """All rows from every service that answered, with provenance columns.

        For a sweep run with ``keep_rows=False`` this reads the whole checkpoint into
        memory: use `write` to stream it to a file instead.
        """
        if isinstance(self._rows, Table):
            return self._rows
        if self._store is not None:
            self._rows = self._store.merged_table()  # read once
            return self._rows
        return self._rows.table()

    @property
    def rows(self) -> int:
        """Rows in `table`."""
        if isinstance(self._rows, Table):
            return len(self._rows)
        if self._store is not None:
            return sum(o.rows for o in self.outcomes if o.status.succeeded)
        return self._rows.rows

    def derive(self, table: Table, *, duplicates: int = 0) -> FanoutResult:
        """The same outcomes and state with a fixed merged *table*.

        For sweeps that post-process the merged rows (normalise the schema, drop
        duplicate records) and must still report every service's outcome.
        """
        return FanoutResult(
            self.outcomes,
            table,
            complete=self.complete,
            reason=self.reason,
            elapsed=self.elapsed,
            datalink_access=self.datalink_access,
            restored=self.restored,
            duplicates_dropped=duplicates,
            checkpoint_info=self.checkpoint_info,
        )

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> None:  # noqa: A002
        """Write the merged table to *path* (format from the extension, or *format*).

        Rows held in a checkpoint (``keep_rows=False``) are streamed service by service
        for Parquet (needs the ``parquet`` extra: pyarrow) and VOTable, so memory stays
        bounded by the largest service's answer; other formats build the merged table.
        In-memory results are written with astropy's ``Table.write``.

        Raises:
            UsageError: Unknown format, or Parquet without pyarrow.
        """
        kind = output_format(path, format)
        if self._store is not None and not isinstance(self._rows, Table):
            self._store.write_rows(path, kind)
            return
        write_table(self.table, path, kind)

    def counts(self) -> dict[Status, int]:
        """Number of services per status (every status listed)."""
        return count_statuses(self.outcomes)

    def failed(self) -> list[ServiceOutcome]:
        """Outcomes of services that were asked and did not deliver."""
        return [o for o in self.outcomes if o.status.failed]

    def outcomes_table(self) -> Table:
        """The outcomes as an astropy table (one row per target), for saving or sorting."""
        names = (
            "service",
            "ivoid",
            "access_url",
            "status",
            "rows",
            "attempts",
            "elapsed",
            "bytes",
            "http_status",
            "error_type",
            "message",
        )
        rows = [
            (
                o.service.label,
                o.service.ivoid or "",
                o.service.access_url,
                o.status.value,
                o.rows,
                o.attempts,
                round(o.elapsed, 4),
                o.bytes,
                o.http_status or 0,
                o.error_type or "",
                o.message or "",
            )
            for o in self.outcomes
        ]
        if not rows:
            return Table(
                names=names, dtype=(str, str, str, str, int, int, float, int, int, str, str)
            )
        return Table(rows=rows, names=names)

    def summary(self, failures: int = 15) -> str:
        """A readable report: counts and rows per status, then the first failures."""
        state = "complete" if self.complete else f"INCOMPLETE: {self.reason}"
        lines = [
            (
                f"vosweep fan-out: {len(self.outcomes)} services, {self.rows} rows "
                f"in {self.elapsed:.2f} s ({state})"
            ),
        ]
        if self.restored:
            lines.append(f"  {self.restored} services restored from the checkpoint")
        if self.duplicates_dropped:
            lines.append(f"  {self.duplicates_dropped} duplicate records dropped")
        lines.append(f"  {'status':<10} {'services':>8} {'rows':>10}")
        rows_by: dict[Status, int] = dict.fromkeys(Status, 0)
        for outcome in self.outcomes:
            rows_by[outcome.status] += outcome.rows
        for status, count in self.counts().items():
            rows = str(rows_by[status]) if status.succeeded else "-"
            lines.append(f"  {status.value:<10} {count:>8} {rows:>10}")
        troubled = [o for o in self.outcomes if not o.status.succeeded or o.message]
        shown = troubled[: max(0, failures)]
        if troubled:
            lines.append(f"  not ok or truncated: {len(troubled)} services ({len(shown)} shown)")
        if shown:
            width = min(32, max(len(o.service.label) for o in shown))
            for outcome in shown:
                message = (outcome.message or "").replace("\n", " ")
                if len(message) > 90:
                    message = message[:87] + "..."
                lines.append(
                    f"    {outcome.service.label[:width]:<{width}} {outcome.status.value:<9} "
                    f"{message}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.value}={n}" for s, n in self.counts().items() if n)
        state = "" if self.complete else " incomplete"
        return f"<FanoutResult{state} services={len(self.outcomes)} rows={self.rows} {counts}>"


class Collector:
    """Records parts as they finish (synchronously), so nothing received is ever lost.

    With a checkpoint, finished parts also wait in a queue for `flush`, which stores them
    in a worker thread (record is synchronous and runs on the event loop).

    Args:
        on_part: Called with every recorded part.
        checkpoint: Store finished parts here.
        keep_rows: Keep result tables in memory (False: only in the checkpoint).
        info: The caller's ``checkpoint_info``, handed on to the result.
    """

    def __init__(
        self,
        on_part: Callable[[Part], None] | None = None,
        *,
        checkpoint: Checkpoint | None = None,
        keep_rows: bool = True,
        info: dict[str, Any] | None = None,
    ) -> None:
        self._outcomes: dict[int, ServiceOutcome] = {}
        self.stacker = Stacker()
        self.datalink: dict[str, tuple[DatalinkAccess, ...]] = {}
        self._on_part = on_part
        self._checkpoint = checkpoint
        self._keep_rows = keep_rows
        self._info = info
        self._unsaved: list[Part] = []
        self._saving = anyio.Lock()
        self.restored = 0

    def restore(self, index: int, outcome: ServiceOutcome, tables: list[Table]) -> None:
        """Take a finished service's outcome and rows from the checkpoint (not re-stored)."""
        self._outcomes[index] = outcome
        self.restored += 1
        if tables and self._keep_rows:
            self.stacker.add(tables, outcome.service)
        if self._on_part is not None:
            # A progress bar of a resumed sweep starts where the last run stopped.
            self._on_part(Part(index, outcome, tables if self._keep_rows else None))

    async def flush(self) -> None:
        """Store the finished parts recorded so far, in a worker thread.

        Shielded once the parts are taken from the queue: a part taken is a part stored,
        even when the sweep is being cancelled.
        """
        if self._checkpoint is None:
            return
        write = self._checkpoint.write_parts
        async with self._saving:
            with anyio.CancelScope(shield=True):
                while self._unsaved:
                    parts, self._unsaved = self._unsaved, []
                    await anyio.to_thread.run_sync(write, parts)

    def record(self, part: Part) -> None:
        """Keep *part*'s outcome and tables, and log the service's canonical line."""
        outcome = part.outcome
        self._outcomes[part.index] = outcome
        if part.raw_tables and outcome.status.succeeded and self._keep_rows:
            self.stacker.add(part.raw_tables, outcome.service)
        if self._checkpoint is not None and is_finished(outcome):
            self._unsaved.append(part)
        if part.datalink:
            self.datalink[outcome.service.access_url] = part.datalink
        log = _log.get_logger()
        emit = log.info if outcome.status.succeeded else log.warning
        emit(
            _log.SERVICE_DONE,
            service=outcome.service.label,
            ivoid=outcome.service.ivoid,
            url=outcome.url or outcome.service.access_url,
            status=outcome.status.value,
            rows=outcome.rows,
            attempts=outcome.attempts,
            elapsed=round(outcome.elapsed, 4),
            bytes=outcome.bytes,
            http_status=outcome.http_status,
            error_type=outcome.error_type,
            message=outcome.message,
        )
        if self._on_part is not None:
            self._on_part(part)

    async def compact(self, limiter: anyio.CapacityLimiter) -> None:
        """Run due table compactions in a worker thread, never on the event loop."""
        while (job := self.stacker.compaction()) is not None:
            merged = await anyio.to_thread.run_sync(job.run, limiter=limiter)
            job.finish(merged)

    def outcomes(self) -> Iterator[ServiceOutcome]:
        """Outcomes in target order."""
        for index in sorted(self._outcomes):
            yield self._outcomes[index]

    def result(self, end: RunEnd | None, elapsed: float) -> FanoutResult:
        """The result so far (or final, once *end* is known)."""
        complete = end.complete if end is not None else False
        reason = end.reason if end is not None else "fan-out cancelled"
        return FanoutResult(
            list(self.outcomes()),
            self.stacker,
            complete=complete,
            reason=reason,
            elapsed=elapsed,
            datalink_access=dict(self.datalink),
            restored=self.restored,
            checkpoint_info=self._info,
            store=None if self._keep_rows else self._checkpoint,
        )
