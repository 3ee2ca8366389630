"""Checkpoint store: round trips, which outcomes are final, refusals, streamed outputs."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import anyio
import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

import vosweep
from vosweep import checkpoint as checkpoint_module
from vosweep.aggregation import Stacker, merge_tables
from vosweep.checkpoint import (
    Checkpoint,
    SweepSpec,
    decode_table,
    encode_table,
    is_finished,
    job_key,
    output_format,
    read_info,
)
from vosweep.errors import UsageError
from vosweep.outcomes import Part, ServiceOutcome, Status
from vosweep.result import Collector, FanoutResult

pq = pytest.importorskip("pyarrow.parquet")


def svc(i: int) -> vosweep.Service:
    return vosweep.Service.scs(f"http://h{i % 3}.test/scs/{i}", ivoid=f"ivo://x/{i}", name=f"s{i}")


CONE = vosweep.Cone(ra=10.0, dec=-5.0, radius=0.1)


def spec(n: int = 4) -> SweepSpec:
    return SweepSpec([svc(i) for i in range(n)], CONE)


def rich_table(n: int, seed: int) -> Table:
    rng = np.random.default_rng(seed)
    table = Table()
    table["ra"] = rng.uniform(0, 360, n)
    table["ra"].unit = u.deg
    table["ra"].meta["ucd"] = "pos.eq.ra;meta.main"
    table["mag"] = MaskedColumn(rng.uniform(10, 20, n).astype(np.float32), unit=u.mag)
    table["mag"].mask = np.arange(n) % 3 == 0
    table["count"] = MaskedColumn(np.arange(n, dtype=np.int32), mask=np.arange(n) % 4 == 1)
    table["name"] = [f"Étoile-{seed}-{i}-★" for i in range(n)]
    return table


def ok_part(index: int, table: Table) -> Part:
    outcome = ServiceOutcome(service=svc(index), status=Status.OK, rows=len(table), attempts=1)
    return Part(index, outcome, [table])


def test_round_trip_keeps_masks_units_ucds_unicode(tmp_path: Path):
    """A stored table reads back with the same values, masks, units, UCDs and text."""
    store = Checkpoint.open(tmp_path / "c.sqlite", spec())
    table = rich_table(9, 1)
    store.write_parts([ok_part(2, table)])
    (back,) = store.tables(2)
    assert back.colnames == table.colnames
    assert back["ra"].unit == u.deg
    assert back["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert back["mag"].unit == u.mag
    np.testing.assert_array_equal(back["mag"].mask, table["mag"].mask)
    np.testing.assert_array_equal(back["count"].mask, table["count"].mask)
    np.testing.assert_allclose(back["ra"], table["ra"])
    assert list(back["name"]) == list(table["name"])
    outcome = Checkpoint.open(tmp_path / "c.sqlite").outcomes()[2]
    assert outcome == ok_part(2, table).outcome


def test_outcome_and_rows_replace_on_rewrite(tmp_path: Path):
    """Writing a target again (a retried failure) replaces its outcome and rows."""
    store = Checkpoint.open(tmp_path / "c.sqlite", spec())
    failed = ServiceOutcome(service=svc(1), status=Status.ERROR, message="HTTP 500")
    store.write_parts([Part(1, failed)])
    assert store.outcomes()[1].status is Status.ERROR
    store.write_parts([ok_part(1, rich_table(3, 2))])
    store.write_parts([ok_part(1, rich_table(5, 3))])
    assert store.outcomes()[1].status is Status.OK
    assert [len(t) for t in store.tables(1)] == [5]


@pytest.mark.parametrize(
    ("status", "error_type", "retry_failed", "finished"),
    [
        (Status.OK, None, False, True),
        (Status.EMPTY, None, False, True),
        (Status.OVERFLOW, None, False, True),
        (Status.ERROR, "HTTPStatusError", False, True),
        (Status.TIMEOUT, "ServiceTimeout", False, True),
        (Status.ERROR, "HTTPStatusError", True, False),
        (Status.TIMEOUT, "ServiceTimeout", True, False),
        (Status.CANCELLED, None, False, False),
        (Status.SKIPPED, "CircuitOpen", False, False),
        (Status.SKIPPED, None, False, True),  # duplicate, query does not fit
        (Status.SKIPPED, "NotSupported", True, True),
    ],
)
def test_finished_rules(status: Status, error_type: str | None, retry_failed: bool, finished: bool):
    """Only what would happen again is final; cancelled and circuit-open skips are not."""
    outcome = ServiceOutcome(service=svc(0), status=status, error_type=error_type)
    assert is_finished(outcome, retry_failed=retry_failed) is finished


def test_collector_stores_only_finished_parts(tmp_path: Path):
    """Cancelled parts are recorded in memory but not stored: a resume asks them again."""
    store = Checkpoint.open(tmp_path / "c.sqlite", spec())
    collector = Collector(checkpoint=store)
    collector.record(ok_part(0, rich_table(2, 0)))
    cancelled = ServiceOutcome(service=svc(1), status=Status.CANCELLED, message="deadline")
    collector.record(Part(1, cancelled))
    anyio.run(collector.flush)
    assert sorted(store.outcomes()) == [0]
    assert [o.status for o in collector.outcomes()] == [Status.OK, Status.CANCELLED]


def test_restored_services_reach_on_part_first():
    """A resumed progress bar counts the services the checkpoint already holds."""
    seen: list[tuple[int, Status, int]] = []
    collector = Collector(lambda p: seen.append((p.index, p.outcome.status, len(p.tables))))
    collector.restore(
        2, ServiceOutcome(service=svc(2), status=Status.OK, rows=3), [rich_table(3, 1)]
    )
    collector.restore(0, ServiceOutcome(service=svc(0), status=Status.ERROR), [])
    assert seen == [(2, Status.OK, 1), (0, Status.ERROR, 0)]
    assert collector.restored == 2


def test_cancelled_flush_loses_nothing(tmp_path: Path):
    """A flush cancelled before it took the parts leaves them queued for the engine's
    final, shielded flush: recorded parts are stored, whenever the cancel lands."""
    store = Checkpoint.open(tmp_path / "c.sqlite", spec())
    collector = Collector(checkpoint=store)
    for i in range(3):
        collector.record(ok_part(i, rich_table(4, i)))

    async def cancelled_then_final() -> list[int]:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await collector.flush()
        stored_meanwhile = sorted(store.outcomes())
        with anyio.CancelScope(shield=True):
            await collector.flush()
        return stored_meanwhile

    assert anyio.run(cancelled_then_final) == []
    assert sorted(store.outcomes()) == [0, 1, 2]


def test_different_sweep_refused_naming_the_file(tmp_path: Path):
    """A checkpoint of other targets or another query is refused, naming the file."""
    path = tmp_path / "sweep.sqlite"
    Checkpoint.open(path, spec(4))
    with pytest.raises(UsageError, match=r"sweep\.sqlite.*different sweep"):
        Checkpoint.open(path, spec(5))
    other = SweepSpec(spec(4).targets, vosweep.Cone(ra=10.0, dec=-5.0, radius=0.2))
    with pytest.raises(UsageError, match=r"sweep\.sqlite.*different sweep"):
        Checkpoint.open(path, other)


def test_same_sweep_in_another_order_continues_in_stored_order(tmp_path: Path):
    """Sets of services have no order: the same targets reordered are the same sweep."""
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path, spec(4))
    again = Checkpoint.open(path, SweepSpec(list(reversed(spec(4).targets)), CONE))
    assert again.spec.targets == spec(4).targets


def test_not_a_checkpoint_named(tmp_path: Path):
    """A file that is no SQLite database, or no checkpoint, is a UsageError naming it."""
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(UsageError, match=r"junk\.sqlite"):
        Checkpoint.open(junk)
    with pytest.raises(UsageError, match=r"junk\.sqlite"):
        read_info(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE sweep (x INTEGER)")
    db.close()
    with pytest.raises(UsageError, match=r"other\.sqlite"):
        Checkpoint.open(other)
    with pytest.raises(UsageError, match=r"missing\.sqlite"):
        read_info(tmp_path / "missing.sqlite")


def test_other_format_version_refused(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path, spec())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE sweep SET version = 99")
    db.close()
    with pytest.raises(UsageError, match="format version 99"):
        Checkpoint.open(path)


def test_info_stored_and_read(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path, spec(), {"kind": "obscore", "band": [1e-7, 2e-7]})
    assert read_info(path) == {"kind": "obscore", "band": [1e-7, 2e-7]}
    with pytest.raises(UsageError, match="JSON"):
        Checkpoint.open(tmp_path / "d.sqlite", spec(), {"kind": object()})


@pytest.mark.parametrize(
    "query",
    [
        CONE,
        vosweep.ImageQuery(ra=1.0, dec=2.0, size=0.1, band=(5e-7, 6e-7), format="image/fits"),
        vosweep.SpectrumQuery(ra=1.0, dec=2.0, diameter=0.01, params={"SOURCE": "x"}),
        vosweep.TapQuery("SELECT TOP 5 * FROM ivoa.obscore", maxrec=5, mode="async"),
        vosweep.PerProtocol(scs=CONE, tap=vosweep.TapQuery("SELECT 1 FROM t")),
    ],
)
def test_queries_round_trip(tmp_path: Path, query: object):
    """Every query type is stored and rebuilt equal, so resume needs nothing from the user."""
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path, SweepSpec([svc(0)], query))
    assert Checkpoint.open(path).spec.query == query


def test_targeted_and_uploads_round_trip(tmp_path: Path):
    """Targeted targets keep their own query and key; TAP uploads are stored as VOTables."""
    upload = Table({"ra": [1.5, 2.5], "dec": [3.0, 4.0], "label": ["Ωmega", "ñu"]})
    tap = vosweep.Service.tap("http://h.test/tap")
    query = vosweep.TapQuery("SELECT * FROM TAP_UPLOAD.mine", uploads={"mine": upload})
    targets: list[vosweep.Service | vosweep.Targeted] = [
        vosweep.Targeted(tap, query, "cat.a"),
        vosweep.Targeted(tap, vosweep.TapQuery("SELECT 1 FROM cat.b"), "cat.b"),
    ]
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path, SweepSpec(targets, None))
    back = Checkpoint.open(path).spec
    assert back.query is None
    first, second = back.targets
    assert isinstance(first, vosweep.Targeted)
    assert isinstance(second, vosweep.Targeted)
    assert (first.key, second.key) == ("cat.a", "cat.b")
    assert second.query == targets[1].query  # type: ignore[union-attr]
    assert isinstance(first.query, vosweep.TapQuery)
    ((name, table),) = first.query.uploads
    assert name == "mine"
    assert list(table["label"]) == ["Ωmega", "ñu"]
    np.testing.assert_allclose(table["ra"], [1.5, 2.5])
    assert job_key(first) == "tap|http://h.test/tap|cat.a"


def test_unknown_query_type_refused(tmp_path: Path):
    class Mine:
        default_protocol = vosweep.Protocol.SCS

    with pytest.raises(UsageError, match="query of type Mine"):
        Checkpoint.open(tmp_path / "c.sqlite", SweepSpec([svc(0)], Mine()))


def heterogeneous_store(tmp_path: Path) -> tuple[Checkpoint, Table]:
    """A store whose services answered with different columns, and the in-memory merge."""
    store = Checkpoint.open(tmp_path / "c.sqlite", spec(4))
    tables = [rich_table(7, 0), rich_table(5, 1), rich_table(6, 3)]
    tables[1].remove_column("mag")
    tables[1]["extra"] = MaskedColumn(np.arange(5.0), unit=u.s, mask=[0, 1, 0, 0, 0])
    tables[2]["count"] = tables[2]["count"].astype(np.int64)  # promoted in the merge
    parts = [ok_part(i, t) for i, t in zip((0, 1, 3), tables, strict=True)]
    store.write_parts(parts)
    memory = merge_tables([(t, svc(i)) for i, t in zip((0, 1, 3), tables, strict=True)])
    return store, memory


def sorted_rows(columns: dict[str, list[object]]) -> list[tuple[object, ...]]:
    names = sorted(columns)
    return sorted(zip(*(columns[n] for n in names), strict=True), key=repr)


def as_lists(table: Table) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for name in table.colnames:
        column = table[name]
        mask = np.asarray(getattr(column, "mask", np.zeros(len(column), bool)))
        values = np.asarray(column).tolist()
        out[name] = [None if m else v for v, m in zip(values, mask, strict=True)]
    return out


def test_merged_table_from_store_equals_in_memory(tmp_path: Path):
    store, memory = heterogeneous_store(tmp_path)
    merged = store.merged_table()
    assert sorted(merged.colnames) == sorted(memory.colnames)
    assert merged["count"].dtype == memory["count"].dtype
    assert sorted_rows(as_lists(merged)) == sorted_rows(as_lists(memory))


@pytest.mark.parametrize("group_rows", [65_536, 6])
def test_parquet_streamed_equals_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int
):
    """Parquet written chunk by chunk holds the union schema, nulls and units."""
    monkeypatch.setattr(checkpoint_module, "ROW_GROUP_ROWS", group_rows)
    store, memory = heterogeneous_store(tmp_path)
    out = tmp_path / "out.parquet"
    store.write_rows(out, "parquet")
    groups = pq.ParquetFile(out).metadata.num_row_groups
    assert groups == (1 if group_rows > len(memory) else 2)  # 7 rows, then 5 + 6
    parquet = pq.read_table(out)
    assert parquet.num_rows == len(memory)
    assert sorted(parquet.column_names) == sorted(memory.colnames)
    assert sorted_rows(parquet.to_pydict()) == sorted_rows(as_lists(memory))
    assert b"unit: s" in parquet.schema.metadata[b"table_meta_yaml"]


def test_votable_streamed_equals_in_memory(tmp_path: Path):
    """A VOTable written header, rows per service, footer reads back as the merged table."""
    store, memory = heterogeneous_store(tmp_path)
    out = tmp_path / "out.xml"
    store.write_rows(out, "votable")
    back = Table.read(out, format="votable")
    assert sorted(back.colnames) == sorted(memory.colnames)
    assert back["extra"].unit == u.s
    assert back["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert sorted_rows(as_lists(back)) == sorted_rows(as_lists(memory))


def test_empty_store_writes_empty_outputs(tmp_path: Path):
    store = Checkpoint.open(tmp_path / "c.sqlite", spec())
    store.write_rows(tmp_path / "e.xml", "votable")
    store.write_rows(tmp_path / "e.parquet", "parquet")
    assert len(Table.read(tmp_path / "e.xml", format="votable")) == 0
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_result_write_streams_from_store_or_memory(tmp_path: Path):
    """`FanoutResult.write` streams a keep_rows=False result; in-memory ones are written too."""
    store, memory = heterogeneous_store(tmp_path)
    outcomes = list(store.outcomes().values())
    stored = FanoutResult(outcomes, Stacker(), complete=True, reason=None, elapsed=1.0, store=store)
    assert stored.rows == len(memory)
    stored.write(tmp_path / "a.parquet")
    in_memory = FanoutResult(outcomes, memory, complete=True, reason=None, elapsed=1.0)
    in_memory.write(tmp_path / "b.parquet")
    in_memory.write(tmp_path / "b.ecsv")
    a = pq.read_table(tmp_path / "a.parquet").to_pydict()
    b = pq.read_table(tmp_path / "b.parquet").to_pydict()
    assert sorted_rows(a) == sorted_rows(b)
    assert len(Table.read(tmp_path / "b.ecsv")) == len(memory)


def test_output_format_errors(tmp_path: Path):
    assert output_format("x.PARQUET", None) == "parquet"
    assert output_format("x.dat", "VOTable") == "votable"
    with pytest.raises(UsageError, match="cannot tell the output format"):
        output_format(tmp_path / "x.dat", None)
    with pytest.raises(UsageError, match="unknown output format 'xls'"):
        output_format("x.parquet", "xls")


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = FanoutResult([], Table({"a": [1]}), complete=True, reason=None, elapsed=0.0)
    with pytest.raises(UsageError, match=r"vosweep\[parquet\]"):
        result.write(tmp_path / "x.parquet")


def test_derive_keeps_outcomes_and_reports_duplicates():
    """A derived result has the fixed table, the same outcomes, and says what it dropped."""
    outcome = ServiceOutcome(service=svc(0), status=Status.OK, rows=3)
    base = FanoutResult(
        [outcome],
        Table({"a": [1, 1, 2]}),
        complete=False,
        reason="deadline",
        elapsed=2.0,
        restored=1,
        checkpoint_info={"kind": "x"},
    )
    derived = base.derive(Table({"a": [1, 2]}), duplicates=1)
    assert derived.outcomes == base.outcomes
    assert (derived.complete, derived.reason, derived.elapsed) == (False, "deadline", 2.0)
    assert (derived.restored, derived.checkpoint_info) == (1, {"kind": "x"})
    assert derived.rows == 2
    assert derived.duplicates_dropped == 1
    assert "1 duplicate records dropped" in derived.summary()
    assert "duplicate records" not in base.summary()
    assert "1 services restored" in base.summary()


@pytest.mark.anyio
async def test_keep_rows_false_needs_a_checkpoint():
    async with vosweep.Engine() as engine:
        with pytest.raises(UsageError, match="need a checkpoint"):
            await engine.fanout([svc(0)], CONE, keep_rows=False)
        with pytest.raises(UsageError, match="need a checkpoint"):
            await engine.fanout([svc(0)], CONE, checkpoint_info={"a": 1})


@pytest.mark.anyio
async def test_resume_of_missing_file_names_it(tmp_path: Path):
    async with vosweep.Engine() as engine:
        with pytest.raises(UsageError, match=r"nothing\.sqlite"):
            await engine.resume(tmp_path / "nothing.sqlite")


def test_codec_keeps_array_columns_and_falls_back_to_votable():
    """Fixed-shape arrays stay columnar; object columns (variable arrays) go as VOTable."""
    fixed = Table({"vec": MaskedColumn(np.arange(12.0).reshape(4, 3), unit=u.m)})
    fixed["vec"].mask = np.arange(12).reshape(4, 3) % 5 == 0
    blob = encode_table(fixed)
    assert not blob.startswith(b"<?xml")
    back = decode_table(blob)
    np.testing.assert_array_equal(back["vec"].mask, fixed["vec"].mask)
    assert back["vec"].unit == u.m
    ragged = Table()
    ragged["spec"] = np.array([np.arange(2.0), np.arange(5.0)], dtype=object)
    blob = encode_table(ragged)
    assert blob.startswith(b"<?xml")
    assert [len(v) for v in decode_table(blob)["spec"]] == [2, 5]


def test_codec_keeps_variable_length_text_as_object_cells():
    """Text the fast decoder gives as object cells (arraysize="*") comes back the same."""
    table = Table()
    table["name"] = MaskedColumn(
        np.array(["SIM J1", None, "Ω-2"], dtype=object), mask=[False, True, False]
    )
    blob = encode_table(table)
    assert not blob.startswith(b"<?xml")
    back = decode_table(blob)
    assert back["name"].dtype.kind == "O"
    assert list(back["name"].mask) == [False, True, False]
    assert back["name"][0] == "SIM J1"
    assert back["name"][2] == "Ω-2"


def test_someone_elses_database_is_left_alone(tmp_path: Path):
    """An SQLite file with other tables is refused, and no table is added to it."""
    path = tmp_path / "mine.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE stars (ra REAL)")
    db.close()
    with pytest.raises(UsageError, match=r"mine\.db.*not a vosweep checkpoint"):
        Checkpoint.open(path, spec())
    with sqlite3.connect(path) as db:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert names == {"stars"}
    with pytest.raises(UsageError, match=r"no directory.*nowhere"):
        Checkpoint.open(tmp_path / "nowhere" / "c.sqlite", spec())
