"""Checkpoints: a sweep's outcomes and rows stored durably as services finish.

A long sweep (thousands of services, hours) must survive being killed: with a checkpoint
every finished service's outcome and result tables go to one SQLite file, in one
transaction per batch of services, so a kill leaves each service either wholly stored or
not at all. Resuming re-reads the sweep's description (targets and query) from the file,
restores what finished, and asks only the rest.

SQLite because it is embedded (no server), transactional, and readable by any tool.
The file is in WAL mode with ``synchronous=NORMAL``: a commit survives the death of the
process (SIGKILL, an exception, Ctrl-C) because the WAL is written before the commit
returns; only a power cut or OS crash may lose the last commits, which a resume then
simply asks again. Tables are stored column by column (raw numpy buffers with a JSON
header keeping units, UCDs, descriptions, masks and unicode text; see `encode_table`),
since astropy's VOTable writer would cost more than the sweep itself; tables numpy cannot
hold flat (variable-length arrays) are stored as VOTable BINARY2.

Schema: ``sweep`` (format version, creation time, the sweep description as JSON: targets
and query, and the caller's ``checkpoint_info``), ``outcome`` (one row per finished target:
its job key, the ServiceOutcome as JSON), ``part`` (its result tables).

Every call here is blocking: the engine calls them through ``anyio.to_thread.run_sync``.
Each call opens its own connection, so no connection is shared between threads.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Column, MaskedColumn, Table
from pydantic import BaseModel

from vosweep.aggregation.schema import column_mask, column_values
from vosweep.aggregation.stack import merge_tables
from vosweep.errors import UsageError
from vosweep.outcomes import Part, ServiceOutcome, Status
from vosweep.queries import (
    Cone,
    DatalinkQuery,
    ImageQuery,
    PerProtocol,
    SpectrumQuery,
    TapQuery,
)
from vosweep.services import Service
from vosweep.targets import Skipped, Targeted

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "SweepSpec",
    "decode_table",
    "encode_table",
    "is_finished",
    "job_key",
    "output_format",
    "read_info",
    "write_table",
]

#: Version of the file layout; a file of another version is refused.
FORMAT_VERSION = 1

_QUERY_TYPES: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (Cone, ImageQuery, SpectrumQuery, TapQuery, DatalinkQuery, PerProtocol)
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweep (
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    description TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcome (
    target INTEGER PRIMARY KEY,
    job_key TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS part (
    target INTEGER NOT NULL,
    number INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (target, number)
);
"""

_TABLES = frozenset({"sweep", "outcome", "part"})

#: Output formats `write_table` knows, by file extension (the CLI's ``--output`` too).
OUTPUT_EXTENSIONS = {
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".fits": "fits",
    ".fit": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ecsv": "ecsv",
    ".csv": "csv",
}
#: The output formats, in the order help texts list them.
OUTPUT_FORMATS = tuple(dict.fromkeys(OUTPUT_EXTENSIONS.values()))


def job_key(target: Service | Targeted | Skipped) -> str:
    """The key that names a target's job in every run: protocol, access URL, query key."""
    if isinstance(target, Targeted):
        return f"{target.service.protocol.value}|{target.service.access_url}|{target.key}"
    if isinstance(target, Skipped):
        target = target.service
    return f"{target.protocol.value}|{target.access_url}|"


def is_finished(outcome: ServiceOutcome, *, retry_failed: bool = False) -> bool:
    """Whether a stored outcome is final, so that a resumed sweep does not ask again.

    Answers (ok, empty, overflow) and failures (error, timeout) are final; so are skips
    that would happen again (duplicate target, a query the protocol cannot express, a
    service saying it cannot). A cancelled service, or one skipped because its host's
    circuit breaker was open, was never really asked: resumed sweeps ask it.
    """
    status = outcome.status
    if status is Status.CANCELLED:
        return False
    if status is Status.SKIPPED:
        return outcome.error_type != "CircuitOpen"
    if status.failed:
        return not retry_failed
    return True


# -- the sweep description --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """What a checkpointed sweep asks: its targets (resolved to services) and its query."""

    targets: list[Service | Targeted | Skipped]
    query: object
    #: Resources (by ivoid) not to ask, and why (out of coverage).
    excluded: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description (raises UsageError for queries that cannot be stored)."""
        return {
            "query": _query_json(self.query),
            "targets": [_target_json(t) for t in self.targets],
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepSpec:
        """The spec from `to_json`'s description."""
        targets: list[Service | Targeted | Skipped] = []
        for item in data["targets"]:
            service = Service.model_validate(item["service"])
            if "query" in item:
                targets.append(Targeted(service, _query_from(item["query"]), item["key"]))
            elif "skipped" in item:
                targets.append(Skipped(service, str(item["skipped"])))
            else:
                targets.append(service)
        return cls(targets, _query_from(data["query"]), dict(data.get("excluded", {})))


def _canonical(description: object) -> str:
    return json.dumps(description, sort_keys=True, separators=(",", ":"))


def _same_sweep(stored: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    """Same query and the same targets, in any order (sets of services have no order)."""
    for part in ("query", "excluded"):
        if _canonical(stored.get(part)) != _canonical(given.get(part)):
            return False
    return sorted(map(_canonical, stored["targets"])) == sorted(map(_canonical, given["targets"]))


def _target_json(target: Service | Targeted | Skipped) -> dict[str, Any]:
    if isinstance(target, Skipped):
        # Reported, never asked (another interface of its resource serves the same data).
        return {"service": target.service.model_dump(mode="json"), "skipped": target.reason}
    if isinstance(target, Targeted):
        return {
            "service": target.service.model_dump(mode="json"),
            "query": _query_json(target.query),
            "key": target.key,
        }
    return {"service": target.model_dump(mode="json")}


def _query_json(query: object) -> dict[str, Any] | None:
    if query is None:
        return None
    name = type(query).__name__
    if _QUERY_TYPES.get(name) is not type(query) or not isinstance(query, BaseModel):
        raise UsageError(f"a checkpointed sweep cannot store a query of type {name}")
    if isinstance(query, TapQuery):
        value = query.model_dump(mode="json", exclude={"uploads"})
        value["uploads"] = [[n, _upload_text(n, table)] for n, table in query.uploads]
    elif isinstance(query, PerProtocol):
        value = {name: _query_json(getattr(query, name)) for name in type(query).model_fields}
    else:
        value = query.model_dump(mode="json")
    return {"type": name, "value": value}


def _upload_text(name: str, table: Any) -> str:
    """An upload table as base64 VOTable (the sweep description is JSON)."""
    try:
        return base64.b64encode(_votable_bytes(Table(table))).decode("ascii")
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"upload {name!r} cannot be stored in a checkpoint: {exc}") from None


def _query_from(data: Mapping[str, Any] | None) -> object:
    if data is None:
        return None
    cls = _QUERY_TYPES[data["type"]]
    value = dict(data["value"])
    if cls is PerProtocol:
        value = {name: _query_from(sub) for name, sub in value.items()}
    if "params" in value:  # validated as a mapping of names to values (or lists of them)
        params: dict[str, list[str]] = {}
        for name, text in value["params"]:
            params.setdefault(name, []).append(text)
        value["params"] = params
    if cls is TapQuery:
        value["uploads"] = {
            name: _votable_table(base64.b64decode(text)) for name, text in value["uploads"]
        }
    return cls.model_validate(value)


# -- tables -------------------------------------------------------------------------------


def _votable_bytes(table: Table) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.write(buffer, format="votable", tabledata_format="binary2")
    return buffer.getvalue()


def _votable_table(data: bytes) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = Table.read(io.BytesIO(data), format="votable")
    table.meta.clear()
    return table


#: Starts a table stored column by column (else the blob is a VOTable).
_COLUMNAR = b"VOSWEEP-COLUMNS-1\n"


def encode_table(table: Table) -> bytes:
    """*table* as bytes: raw column buffers plus a JSON header (units, UCDs, masks).

    About 100 times faster than astropy's BINARY2 writer, which loops over rows in
    Python (14 ms for 250 rows): that would make the writer thread, not the network, the
    bottleneck of a large sweep. Tables with object columns (variable-length arrays)
    are stored as VOTable BINARY2 instead.
    """
    columns = []
    buffers = []
    for name in table.colnames:
        column = table[name]
        data = np.ascontiguousarray(column_values(column))
        text_cells = data.dtype.kind == "O" and data.ndim == 1 and _all_text(data)
        if text_cells:  # variable-length text (arraysize="*"), stored as fixed width
            data = np.array(["" if v is None else v for v in data], dtype=str)
        elif data.dtype.hasobject:
            return _votable_bytes(_ragged_as_masked(table))
        mask = getattr(column, "mask", None)
        mask = None if mask is None or not np.any(mask) else np.ascontiguousarray(mask)
        columns.append(
            {
                "name": name,
                "dtype": data.dtype.str,
                "shape": list(data.shape),
                "unit": None if column.unit is None else column.unit.to_string(),
                "description": column.description,
                "meta": _json_safe(dict(column.meta or {})),
                "masked": mask is not None or isinstance(column, MaskedColumn),
                "object": bool(text_cells),
                "mask": mask is not None,
            }
        )
        buffers.append(data.tobytes())
        if mask is not None:
            buffers.append(mask.astype(bool).tobytes())
    header = json.dumps({"columns": columns}).encode("utf-8")
    return b"".join([_COLUMNAR, len(header).to_bytes(8, "little"), header, *buffers])


def _all_text(cells: Any) -> bool:
    return all(v is None or isinstance(v, str) for v in cells)


def _ragged_as_masked(table: Table) -> Table:
    """Object columns' cells as masked arrays: what astropy's VOTable writer expects."""
    copy = table.copy(copy_data=False)
    for name in copy.colnames:
        if copy[name].dtype.kind == "O":
            cells = np.empty(len(copy), dtype=object)
            cells[:] = [
                v if isinstance(v, str | bytes) else np.ma.array(v, mask=np.ma.getmaskarray(v))
                for v in copy[name]
            ]
            copy[name] = Column(cells, name=name, unit=copy[name].unit, meta=copy[name].meta)
    return copy


def decode_table(blob: bytes) -> Table:
    """The table `encode_table` stored."""
    if not blob.startswith(_COLUMNAR):
        return _votable_table(blob)
    at = len(_COLUMNAR)
    size = int.from_bytes(blob[at : at + 8], "little")
    header = json.loads(blob[at + 8 : at + 8 + size])
    at += 8 + size
    table = Table()
    for info in header["columns"]:
        dtype = np.dtype(info["dtype"])
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 0
        data = np.frombuffer(blob, dtype=dtype, count=count, offset=at).reshape(shape)
        at += count * dtype.itemsize
        mask: Any = False
        if info["mask"]:
            mask = np.frombuffer(blob, dtype=bool, count=count, offset=at).reshape(shape)
            at += count
        common: dict[str, Any] = {
            "name": info["name"],
            "unit": info["unit"],
            "description": info["description"],
            "meta": info["meta"],
        }
        data = data.astype(object) if info["object"] else data.copy()
        if info["masked"]:
            table[info["name"]] = MaskedColumn(data, mask=np.array(mask), **common)
        else:
            table[info["name"]] = Column(data, **common)
    return table


def _json_safe(value: Any) -> Any:
    """Column metadata as JSON: what JSON cannot hold becomes its text."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# -- the store ----------------------------------------------------------------------------


class Checkpoint:
    """One checkpoint file (see the module docstring). Blocking: call from worker threads.

    Attributes:
        path: The SQLite file.
        spec: The sweep it holds.
        info: What the caller stored with it (``checkpoint_info``).
    """

    def __init__(self, path: Path, spec: SweepSpec, info: dict[str, Any]) -> None:
        self.path = path
        self.spec = spec
        self.info = info

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        spec: SweepSpec | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        """Open *path*; create it for *spec* if it does not exist.

        With *spec* None (resume), the file must exist and its sweep is read back.

        Raises:
            UsageError: No such file (resume); not a vosweep checkpoint; a checkpoint of
                a different sweep than *spec*; a query that cannot be stored.
        """
        where = Path(path)
        given = spec.to_json() if spec is not None else None
        extra = dict(info or {})
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"checkpoint_info must be JSON-able: {exc}") from None
        if given is None and not where.is_file():
            raise UsageError(f"no checkpoint file {str(where)!r}")
        if not where.parent.is_dir():
            raise UsageError(f"no directory for the checkpoint file {str(where)!r}")
        with _connect(where) as db:
            row = _sweep_row(db, where)
            if row is None:
                if given is None or spec is None:
                    raise UsageError(f"{str(where)!r} holds no vosweep sweep")
                with db:
                    db.execute(
                        "INSERT INTO sweep VALUES (?, ?, ?, ?)",
                        (FORMAT_VERSION, time.time(), json.dumps(given), json.dumps(extra)),
                    )
                return cls(where, spec, extra)
        stored = json.loads(row[0])
        if given is not None and not _same_sweep(stored, given):
            raise UsageError(
                f"checkpoint {str(where)!r} belongs to a different sweep (other targets or "
                "query): give another file, or delete it to start over"
            )
        return cls(where, SweepSpec.from_json(stored), json.loads(row[1]))

    def outcomes(self) -> dict[int, ServiceOutcome]:
        """Every stored outcome, by target index."""
        with _connect(self.path) as db:
            rows = db.execute("SELECT target, outcome FROM outcome").fetchall()
        return {int(t): ServiceOutcome.model_validate_json(o) for t, o in rows}

    def tables(self, target: int) -> list[Table]:
        """The stored result tables of one target."""
        with _connect(self.path) as db:
            blobs = db.execute(
                "SELECT data FROM part WHERE target = ? ORDER BY number", (target,)
            ).fetchall()
        return [decode_table(bytes(b)) for (b,) in blobs]

    def tables_of(self, targets: Sequence[int]) -> dict[int, list[Table]]:
        """The stored result tables of several targets (one connection for all)."""
        found: dict[int, list[Table]] = {}
        with _connect(self.path) as db:
            for target in targets:
                blobs = db.execute(
                    "SELECT data FROM part WHERE target = ? ORDER BY number", (target,)
                ).fetchall()
                found[target] = [decode_table(bytes(b)) for (b,) in blobs]
        return found

    def write_parts(self, parts: Sequence[Part]) -> None:
        """Store finished parts in one transaction: each service wholly, or not at all."""
        encoded = []
        for part in parts:
            key = job_key(self.spec.targets[part.index])
            outcome = part.outcome
            blobs = []
            if outcome.status.succeeded:
                blobs = [
                    (len(t), json.dumps(_shape(t)), encode_table(t))
                    for t in part.tables
                    if len(t.colnames)
                ]
            encoded.append((part.index, key, outcome.model_dump_json(), blobs))
        with _connect(self.path) as db, db:
            for index, key, outcome_json, blobs in encoded:
                db.execute("DELETE FROM part WHERE target = ?", (index,))
                db.execute(
                    "INSERT OR REPLACE INTO outcome VALUES (?, ?, ?)", (index, key, outcome_json)
                )
                db.executemany(
                    "INSERT INTO part VALUES (?, ?, ?, ?, ?)",
                    [(index, n, *blob) for n, blob in enumerate(blobs)],
                )

    def chunks(self) -> Iterator[Table]:
        """Stored tables one service at a time, with the union schema and provenance.

        A first pass keeps one empty table per distinct schema (tiny), so that every
        chunk is merged with the same column plans as the in-memory merge; memory holds
        one service's tables at a time.
        """
        services = [t.service if isinstance(t, Targeted) else t for t in self.spec.targets]
        with _connect(self.path) as db:
            targets = [t for (t,) in db.execute("SELECT target FROM part LIMIT 1")]
            # One table per distinct schema, read as stored when written.
            shapes = [
                decode_table(bytes(blob))[:0]
                for (blob,) in db.execute(
                    "SELECT data FROM part WHERE rowid IN "
                    "(SELECT MIN(rowid) FROM part GROUP BY shape)"
                )
            ]
            # Zero rows each: the service named for them never shows.
            empties = [(table, services[targets[0]]) for table in shapes]
            for target, blob in db.execute("SELECT target, data FROM part ORDER BY target, number"):
                chunk = (decode_table(bytes(blob)), services[target])
                yield merge_tables([*empties, chunk])

    def merged_table(self) -> Table:
        """Every stored row as one table (in memory)."""
        tables = list(self.chunks())
        if not tables:
            return merge_tables([])
        return tables[0] if len(tables) == 1 else merge_tables(tables, provenance=False)

    def write_rows(self, path: str | os.PathLike[str], kind: str) -> None:
        """Write the stored rows to *path*: streamed for Parquet and VOTable."""
        if kind == "parquet":
            _stream_parquet(self.chunks(), Path(path))
        elif kind == "votable":
            _stream_votable(self.chunks(), Path(path))
        else:
            write_table(self.merged_table(), path, kind)


def _shape(table: Table) -> list[Any]:
    """What the union schema depends on: names, types, shapes, units."""
    return [
        [name, table[name].dtype.str, list(table[name].shape[1:]), str(table[name].unit)]
        for name in table.colnames
    ]


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode (durable commits, readers never blocked by the writer)."""
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level="DEFERRED")
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open checkpoint {str(path)!r}: {exc}") from None
    try:
        try:
            tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not _TABLES.issubset(tables):
                # Someone's own database: never add tables to it.
                raise UsageError(f"{str(path)!r} is not a vosweep checkpoint (other tables)")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{str(path)!r} is not a vosweep checkpoint: {exc}") from None
        yield db
    finally:
        db.close()


def _sweep_row(db: sqlite3.Connection, path: Path) -> tuple[str, str] | None:
    try:
        rows = db.execute("SELECT version, description, info FROM sweep").fetchall()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{str(path)!r} is not a vosweep checkpoint: {exc}") from None
    if not rows:
        return None
    version, description, info = rows[0]
    if version != FORMAT_VERSION:
        raise UsageError(
            f"checkpoint {str(path)!r} has format version {version}; this vosweep reads "
            f"version {FORMAT_VERSION}"
        )
    return str(description), str(info)


def read_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``checkpoint_info`` stored with a sweep, read without running anything.

    Raises:
        UsageError: No such file, or not a vosweep checkpoint.
    """
    return Checkpoint.open(path).info


def count_targets(path: str | os.PathLike[str]) -> int:
    """How many targets the checkpointed sweep has (a resumed progress bar's total).

    Raises:
        UsageError: No such file, or not a vosweep checkpoint.
    """
    return len(Checkpoint.open(path).spec.targets)


# -- output files -------------------------------------------------------------------------


def output_format(path: str | os.PathLike[str], format: str | None) -> str:  # noqa: A002
    """The output format: *format* if given, else from *path*'s extension.

    Raises:
        UsageError: An unknown format or extension.
    """
    if format is not None:
        kind = format.lower()
        if kind not in OUTPUT_FORMATS:
            known = ", ".join(sorted(OUTPUT_FORMATS))
            raise UsageError(f"unknown output format {format!r}: use one of {known}")
        return kind
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_EXTENSIONS:
        raise UsageError(
            f"cannot tell the output format from {str(path)!r}: give format= "
            f"({', '.join(sorted(OUTPUT_FORMATS))})"
        )
    return OUTPUT_EXTENSIONS[suffix]


def write_table(table: Table, path: str | os.PathLike[str], kind: str) -> None:
    """Write an in-memory table (Parquet through the streaming writer, for one schema)."""
    if kind == "parquet":
        _stream_parquet(iter([table]), Path(path))
        return
    astropy_format = {"votable": "votable", "ecsv": "ascii.ecsv", "csv": "ascii.csv"}.get(
        kind, kind
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.write(path, format=astropy_format, overwrite=True)


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise UsageError("writing Parquet needs pyarrow: pip install 'vosweep[parquet]'") from None
    return pa, pq


def _arrow_table(pa: Any, table: Table) -> Any:
    arrays = []
    for name in table.colnames:
        column = table[name]
        data = np.asarray(column)
        mask: Any = np.asarray(getattr(column, "mask", np.zeros(len(column), bool)), dtype=bool)
        if data.ndim > 1 or data.dtype.kind == "O":
            if mask.ndim > 1:
                mask = mask.reshape(len(column), -1).all(axis=1)
            pairs = zip(data, mask, strict=True)
            values = [None if m else np.asarray(v).tolist() for v, m in pairs]
            arrays.append(pa.array(values))
        elif data.dtype.kind in "US":
            arrays.append(pa.array(data.astype(str), type=pa.string(), mask=mask))
        else:
            arrays.append(pa.array(data, mask=mask if mask.any() else None))
    return pa.Table.from_arrays(arrays, names=table.colnames)


#: Rows per Parquet row group: thousands of tiny groups (one per service) would bloat the
#: file and the footer the writer keeps in memory.
ROW_GROUP_ROWS = 65_536


def _stream_parquet(chunks: Iterator[Table], path: Path) -> None:
    """Append chunks in row groups of about `ROW_GROUP_ROWS` rows: bounded memory.

    The astropy column metadata (units, UCDs, descriptions) goes in the file's
    ``table_meta_yaml`` key, as astropy's own Parquet writer does, so that
    ``Table.read(path)`` restores it.
    """
    from astropy.table.meta import get_yaml_from_table  # noqa: PLC0415

    pa, pq = _pyarrow()
    writer = None
    batch: list[Any] = []
    rows = 0
    try:
        for chunk in chunks:
            arrow = _arrow_table(pa, chunk)
            if writer is None:
                header = chunk[:0].copy()
                for name in header.colnames:  # astropy's reader puts the masks back itself
                    header[name].info.meta = dict(header[name].info.meta or {})
                yaml = "\n".join(get_yaml_from_table(header))
                schema = arrow.schema.with_metadata({"table_meta_yaml": yaml})
                writer = pq.ParquetWriter(path, schema)
            batch.append(arrow.cast(writer.schema))
            rows += len(arrow)
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(batch))
                batch, rows = [], 0
        if writer is None:
            pq.write_table(_arrow_table(pa, merge_tables([])), path)
        elif batch:
            writer.write_table(pa.concat_tables(batch))
    finally:
        if writer is not None:
            writer.close()


def _stream_votable(chunks: Iterator[Table], path: Path) -> None:
    """Header from the first chunk, then each chunk's TABLEDATA rows, then the footer.

    Every chunk has the same columns and types (the union schema), and text columns are
    declared ``arraysize="*"``, so all their TABLEDATA rows fit under one set of FIELDs.
    """
    with path.open("w", encoding="utf-8") as out:
        footer = None
        for chunk in chunks:
            if not len(chunk):
                continue
            text = _tabledata_text(chunk)
            start = text.index("<TABLEDATA>") + len("<TABLEDATA>")
            end = text.rindex("</TABLEDATA>")
            if footer is None:
                out.write(text[:start])
                footer = text[end:]
            out.write(text[start:end])
        out.write(_tabledata_text(merge_tables([])) if footer is None else footer)


def _tabledata_text(table: Table) -> str:
    """*table* as a TABLEDATA VOTable, text columns of variable length."""
    copy = table.copy(copy_data=False)
    for name in copy.colnames:
        column = copy[name]
        if column.dtype.kind in "US" and column.ndim == 1 and len(copy):
            values = np.array(column_values(column), dtype=object)
            copy[name] = MaskedColumn(
                values,
                mask=column_mask(column),
                name=name,
                unit=column.unit,
                description=column.description,
                meta=column.meta,
            )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy.write(buffer, format="votable", tabledata_format="tabledata")
    return buffer.getvalue().decode("utf-8")
