"""The aggregator merges heterogeneous service tables linearly and loses nothing."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Column, MaskedColumn, Table, vstack
from astropy.table.operations import TableMergeError
from hypothesis import given, settings
from hypothesis import strategies as st

import vosweep
from vosweep.aggregation import PROVENANCE_COLUMNS, Stacker, merge_tables
from vosweep.protocols.fastvot._model import ColumnData, TableData


def svc(i: int) -> vosweep.Service:
    return vosweep.Service.scs(f"http://h.test/{i}", ivoid=f"ivo://x/{i}", name=f"s{i}")


class TestMerge:
    def test_provenance_on_every_row(self):
        """Each row names the service it came from."""
        a = Table({"x": [1, 2]})
        b = Table({"x": [3]})
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert list(out["x"]) == [1, 2, 3]
        assert list(out["service_name"]) == ["s0", "s0", "s1"]
        assert list(out["service_ivoid"]) == ["ivo://x/0", "ivo://x/0", "ivo://x/1"]
        assert list(out["service_url"])[-1] == "http://h.test/1"

    def test_int_vs_text_becomes_text(self):
        """An id that is a long here and text there is harmonised to text, not an error."""
        a = Table({"id": np.array([1, 22], dtype=np.int64)})
        b = Table({"id": ["J0535+2200"]})
        with pytest.raises(TableMergeError):  # astropy refuses this merge outright
            vstack([a, b])
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert list(out["id"]) == ["1", "22", "J0535+2200"]
        assert "id" in out.meta["vosweep_harmonised"]

    def test_numeric_promotion(self):
        """float32 and int columns promote numerically."""
        a = Table({"m": np.array([1.5], dtype=np.float32)})
        b = Table({"m": np.array([2], dtype=np.int16)})
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert out["m"].dtype.kind == "f"
        assert list(out["m"]) == [1.5, 2.0]

    def test_missing_columns_are_masked(self):
        """A column one service lacks is masked on its rows."""
        a = Table({"x": [1], "pm": [0.5]})
        b = Table({"x": [2]})
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert isinstance(out["pm"], MaskedColumn)
        assert list(out["pm"].mask) == [False, True]
        assert not isinstance(out["x"], MaskedColumn)

    def test_units_converted_and_metadata_kept(self):
        """Convertible units are converted to the first; UCD and description survive."""
        a = Table()
        a["r"] = Column([1.0], unit=u.deg, description="radius", meta={"ucd": "phys.angSize"})
        b = Table()
        b["r"] = Column([3600.0], unit=u.arcsec)
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert out["r"].unit == u.deg
        assert list(out["r"]) == pytest.approx([1.0, 1.0])
        assert out["r"].description == "radius"
        assert out["r"].meta["ucd"] == "phys.angSize"

    def test_incompatible_units_drop_the_unit(self):
        """deg and mag cannot be merged as one quantity: values kept, unit dropped, noted."""
        a = Table({"v": Column([1.0], unit=u.deg)})
        b = Table({"v": Column([2.0], unit=u.mag)})
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert out["v"].unit is None
        assert "incompatible units" in out.meta["vosweep_harmonised"]["v"]

    def test_masks_survive(self):
        """Null cells stay null."""
        a = Table({"m": MaskedColumn([1.0, 2.0], mask=[True, False])})
        out = merge_tables([(a, svc(0))])
        assert list(out["m"].mask) == [True, False]

    def test_array_columns(self):
        """Fixed-shape array columns keep their shape; mismatched shapes become objects."""
        a = Table({"v": np.ones((2, 3))})
        b = Table({"v": np.zeros((1, 3))})
        out = merge_tables([(a, svc(0)), (b, svc(1))])
        assert out["v"].shape == (3, 3)
        c = Table({"v": np.zeros((1, 2))})
        mixed = merge_tables([(a, svc(0)), (c, svc(1))])
        assert mixed["v"].dtype == object
        assert len(mixed["v"][2]) == 2

    def test_empty_answers_with_masked_array_columns(self):
        """Zero rows of a masked 2-D column (an SSA service with no spectra) merge cleanly."""
        empty = Table({"v": MaskedColumn(np.zeros((0, 2)), mask=np.zeros((0, 2), bool))})
        full = Table({"v": MaskedColumn(np.ones((2, 2)), mask=[[True, True], [False, True]])})
        out = merge_tables([(empty, svc(0)), (full, svc(1))])
        assert out["v"].shape == (2, 2)
        assert out["v"].mask.tolist() == [[True, True], [False, True]]
        alone = merge_tables([(empty, svc(0))])
        assert len(alone) == 0

    def test_name_collision_with_provenance(self):
        """A service column called service_url keeps its name; ours is prefixed."""
        a = Table({"service_url": ["theirs"]})
        out = merge_tables([(a, svc(0))])
        assert list(out["service_url"]) == ["theirs"]
        assert list(out["vosweep_service_url"]) == ["http://h.test/0"]

    def test_empty(self):
        """No tables: an empty table with the provenance columns."""
        out = merge_tables([])
        assert len(out) == 0
        assert tuple(out.colnames) == PROVENANCE_COLUMNS


class TestStacker:
    def test_cache_and_param_only_tables(self):
        """Zero-column tables are ignored; the merge is cached until the next add."""
        s = Stacker()
        s.add([Table(), Table({"x": [1]})], svc(0))
        first = s.table()
        assert s.table() is first
        s.add([Table({"x": [2]})], svc(1))
        assert list(s.table()["x"]) == [1, 2]
        assert s.rows == 2


KIND = st.sampled_from(["int", "float", "str", "bool"])


def make_column(kind: str, n: int, data: st.DataObject) -> np.ndarray:
    if kind == "int":
        return np.array(
            data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)),
            dtype=np.int64,
        )
    if kind == "float":
        values = st.floats(allow_nan=False, allow_infinity=False, width=32)
        return np.array(data.draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    if kind == "bool":
        return np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    text = st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8
    )
    return np.array(data.draw(st.lists(text, min_size=n, max_size=n)), dtype=str)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_tables=st.integers(1, 6))
def test_merge_keeps_every_value(data, n_tables):
    """Property: total rows add up; every value is recoverable (as text when harmonised)."""
    names = ["a", "b", "c"]
    chunks = []
    for i in range(n_tables):
        n = data.draw(st.integers(0, 5))
        present = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
        table = Table({name: make_column(data.draw(KIND), n, data) for name in present})
        chunks.append((table, svc(i)))
    out = merge_tables(chunks)
    assert len(out) == sum(len(t) for t, _ in chunks)
    offset = 0
    for i, (table, _) in enumerate(chunks):
        for row in range(len(table)):
            assert out["service_name"][offset + row] == f"s{i}"
            for name in (n for n in names if n in out.colnames):
                cell = out[name][offset + row]
                if name not in table.colnames:
                    assert out[name].mask[offset + row]
                    continue
                expected = table[name][row]
                if out[name].dtype.kind == "U":
                    assert cell == str(expected)
                else:
                    assert cell == expected
        offset += len(table)


def test_variable_length_text_merges_as_text():
    """astropy's object-dtype char columns merge with longs as text, nulls kept masked."""
    text = MaskedColumn(np.array(["J05+22", None], dtype=object), mask=[False, True])
    a = Table({"id": text})
    b = Table({"id": np.array([7], dtype=np.int64)})
    out = merge_tables([(a, svc(0)), (b, svc(1))])
    assert out["id"].dtype.kind == "U"
    assert list(out["id"].filled("?")) == ["J05+22", "?", "7"]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_tables=st.integers(0, 40), batch=st.integers(2, 5))
def test_compaction_gives_the_single_pass_result(data, n_tables, batch):
    """Property: merging in compacted batches equals one merge of everything (up to order)."""
    chunks = []
    for i in range(n_tables):
        n = data.draw(st.integers(0, 3))
        present = data.draw(st.lists(st.sampled_from(["a", "b"]), unique=True, min_size=1))
        chunks.append((Table({c: make_column(data.draw(KIND), n, data) for c in present}), svc(i)))
    stacker = Stacker(batch=batch)
    for i, (table, service) in enumerate(chunks):
        stacker.add([table], service)
        if i % 3 == 0:
            stacker.compact()
    if data.draw(st.booleans()):
        stacker.compaction()  # taken and never finished: its inputs must still count
    # Rows come grouped by schema; each service's rows stay together and in order.
    compacted = stacker.table()
    compacted = compacted[np.argsort(compacted["service_name"], kind="stable")]
    single = merge_tables(chunks)
    single = single[np.argsort(single["service_name"], kind="stable")]
    assert compacted.colnames == single.colnames or set(compacted.colnames) == set(single.colnames)
    assert len(compacted) == len(single) == stacker.rows
    for name in single.colnames:
        left = [str(v) for v in compacted[name].tolist()]
        right = [str(v) for v in single[name].tolist()]
        if compacted[name].dtype.kind == single[name].dtype.kind:
            assert left == right, name
        assert list(np.ma.getmaskarray(compacted[name])) == list(np.ma.getmaskarray(single[name]))


def test_light_tables_merge_like_astropy_tables():
    """The fast decoder's TableData merges exactly like the astropy table it stands for."""
    light = TableData(
        columns=[
            ColumnData("id", np.array([1, 2], dtype=np.int64), np.array([False, True])),
            ColumnData(
                "ra",
                np.array([10.0, 20.0]),
                np.zeros(2, dtype=bool),
                unit=u.deg,
                description="RA",
                meta={"ucd": "pos.eq.ra"},
            ),
            ColumnData("name", np.array(["a", "b"], dtype=object), np.zeros(2, dtype=bool)),
        ],
        meta={"name": "t"},
        nrows=2,
    )
    other = Table({"id": ["x"], "ra": Column([3600.0], unit=u.arcsec)})
    from_light = merge_tables([(light, svc(0)), (other, svc(1))])
    from_astropy = merge_tables([(light.to_table(), svc(0)), (other, svc(1))])
    for name in from_astropy.colnames:
        assert from_light[name].tolist() == from_astropy[name].tolist(), name
        assert list(np.ma.getmaskarray(from_light[name])) == list(
            np.ma.getmaskarray(from_astropy[name])
        )
    assert from_light["ra"].unit == u.deg
    assert from_light["ra"].meta == {"ucd": "pos.eq.ra"}
    assert list(from_light["ra"]) == pytest.approx([10.0, 20.0, 1.0])
    stacker = Stacker()
    stacker.add([light], svc(0))
    assert stacker.rows == 2
