"""Aggregation cost: vosweep's merge vs astropy vstack (per arrival and once) vs pyarrow.

All contenders merge the same per-service tables (same schema drift as a real sweep: some
services have extra columns) in the same process and run; times are best of --repeat.

    python benchmarks/bench_aggregate.py [--sizes 250,1000,4000] [--rows 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.table import Table, vstack

import vosweep
from vosweep.aggregation import merge_tables

RESULTS = Path(__file__).parent / "results"


def make_tables(n: int, rows: int, seed: int = 0) -> list[tuple[Table, vosweep.Service]]:
    """n service tables: 5 common columns, every third one with 2 extra columns."""
    rng = np.random.default_rng(seed)
    chunks = []
    for i in range(n):
        columns = {
            "id": np.arange(rows, dtype=np.int64) + i * rows,
            "ra": rng.uniform(0, 360, rows),
            "dec": rng.uniform(-90, 90, rows),
            "mag": rng.normal(15, 2, rows).astype(np.float32),
            "name": np.array([f"src{i}_{j}" for j in range(rows)]),
        }
        if i % 3 == 0:
            columns["pmra"] = rng.normal(0, 5, rows)
            columns["pmdec"] = rng.normal(0, 5, rows)
        service = vosweep.Service.scs(f"http://h{i % 20}.test/scs/{i}", name=f"s{i}")
        chunks.append((Table(columns), service))
    return chunks


def with_provenance(chunks: list[tuple[Table, vosweep.Service]]) -> list[Table]:
    """What an astropy-based aggregator must do first: add provenance to each table."""
    out = []
    for table, service in chunks:
        t = table.copy(copy_data=False)
        t["service_name"] = service.label
        out.append(t)
    return out


def astropy_per_arrival(chunks: list[tuple[Table, vosweep.Service]]) -> Table:
    """The naive streaming aggregator: vstack the running table with each arrival."""
    result: Table | None = None
    for t in with_provenance(chunks):
        result = t if result is None else vstack([result, t], join_type="outer")
    assert result is not None
    return result


def astropy_once(chunks: list[tuple[Table, vosweep.Service]]) -> Table:
    """Collect, then one vstack over the list."""
    return vstack(with_provenance(chunks), join_type="outer")


def pyarrow_concat(chunks: list[tuple[Table, vosweep.Service]]) -> Table:
    """Convert each table to Arrow, concat with schema promotion, convert back."""
    arrow = []
    for table, service in chunks:
        data = {name: np.asarray(table[name]) for name in table.colnames}
        data["service_name"] = np.full(len(table), service.label)
        arrow.append(pa.table(data))
    merged = pa.concat_tables(arrow, promote_options="permissive")
    return Table(
        {name: merged.column(name).to_numpy(zero_copy_only=False) for name in merged.column_names}
    )


def vosweep_merge(chunks: list[tuple[Table, vosweep.Service]]) -> Table:
    """vosweep's aggregator: one pass per column, provenance added in bulk."""
    return merge_tables(chunks)


CONTENDERS: dict[str, Callable[[list[tuple[Table, vosweep.Service]]], Table]] = {
    "vosweep merge_tables": vosweep_merge,
    "astropy vstack once": astropy_once,
    "pyarrow concat_tables (+conversion)": pyarrow_concat,
    "astropy vstack per arrival": astropy_per_arrival,
}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="250,1000,4000", help="tables per merge")
    parser.add_argument("--rows", type=int, default=50, help="rows per table")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--max-naive",
        type=int,
        default=1000,
        help="skip the quadratic per-arrival vstack above this many tables",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = [
        f"Aggregation of N service tables of {args.rows} rows (best of {args.repeat}):",
        "",
        "| contender | " + " | ".join(f"N={n}" for n in sizes) + " | ratio to vosweep at N="
        f"{sizes[-1]} |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    timings: dict[str, list[float | None]] = {name: [] for name in CONTENDERS}
    for n in sizes:
        chunks = make_tables(n, args.rows)
        expected = len(vosweep_merge(chunks))
        for name, fn in CONTENDERS.items():
            if fn is astropy_per_arrival and n > args.max_naive:
                timings[name].append(None)
                continue
            assert len(fn(chunks)) == expected
            timings[name].append(best_of(lambda fn=fn, c=chunks: fn(c), args.repeat))
    base = timings["vosweep merge_tables"][-1]
    for name, values in timings.items():
        cells = [f"{v * 1e3:.1f} ms" if v is not None else "skipped" for v in values]
        last = values[-1]
        ratio = f"{last / base:.1f}x" if last is not None and base else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    per_table = [
        (v / n * 1e6) if v is not None else None
        for v, n in zip(timings["vosweep merge_tables"], sizes, strict=True)
    ]
    lines += [
        "",
        "vosweep cost per table: "
        + ", ".join(
            f"N={n}: {p:.0f} us" for n, p in zip(sizes, per_table, strict=True) if p is not None
        )
        + " (flat = linear in the number of tables)",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "aggregate.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
