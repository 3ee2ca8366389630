"""VOTable decoding cost: astropy vs vosweep's parse_votable (fast path, and fast=False).

Documents are written by astropy from a seeded random table (long, double, float,
char*, boolean, some nulls): tiny 10-row answers (the per-document overhead a sweep pays
thousands of times), 100k-row TABLEDATA and BINARY2 documents (throughput), then a
replay of every VOTable of the shared corpus of real service answers.

    python benchmarks/bench_votable.py [--rows 100000] [--repeat 3] [--tiny-repeat 300]

The corpus is ``<repo>/../shared/corpus`` (``VOSWEEP_CORPUS`` overrides); that part is
skipped when it is absent. Results are printed and written to results/votable.md.
"""

from __future__ import annotations

import argparse
import inspect
import io
import os
import re
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import votable
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile

from vosweep.errors import ServiceError
from vosweep.protocols.fastvot._binary import decode_stream
from vosweep.protocols.fastvot._model import FieldMeta
from vosweep.protocols.votable import parse_votable

RESULTS = Path(__file__).parent / "results"
CORPUS = Path(
    os.environ.get("VOSWEEP_CORPUS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
)
#: parse_votable grew a ``fast`` keyword with the fast decoder; older versions lack it.
HAS_FAST_KEYWORD = "fast" in inspect.signature(parse_votable).parameters


def make_document(rows: int, fmt: str, seed: int = 0, tag: str = "") -> bytes:
    """A VOTable 1.4 written by astropy: mixed columns, about 10% nulls in two of them.

    *tag* is appended to every column name: documents with different tags have FIELDs
    no decoder has seen before (a sweep meeting a new service).
    """
    rng = np.random.default_rng(seed)
    vot = VOTableFile(version="1.4")
    resource = Resource()
    vot.resources.append(resource)
    table = TableElement(vot, name="results")
    resource.tables.append(table)
    table.fields.extend(
        [
            Field(vot, name="id" + tag, datatype="long"),
            Field(vot, name="ra" + tag, datatype="double", unit="deg", ucd="pos.eq.ra;meta.main"),
            Field(vot, name="mag" + tag, datatype="float", unit="mag"),
            Field(vot, name="name" + tag, datatype="char", arraysize="*"),
            Field(vot, name="flag" + tag, datatype="boolean"),
        ]
    )
    table.create_arrays(rows)
    table.array["id" + tag] = np.arange(rows)
    table.array["ra" + tag] = rng.uniform(0, 360, rows)
    table.array["mag" + tag] = rng.normal(15, 2, rows)
    names = np.empty(rows, dtype=object)
    names[:] = [
        f"J{x:0{int(w)}d}"
        for x, w in zip(rng.integers(0, 10**6, rows), rng.integers(1, 12, rows), strict=True)
    ]
    table.array["name" + tag] = names
    table.array["flag" + tag] = rng.random(rows) < 0.5
    table.array.mask["mag" + tag] = rng.random(rows) < 0.1
    table.array.mask["flag" + tag] = rng.random(rows) < 0.1
    out = io.BytesIO()
    vot.to_xml(out, tabledata_format=fmt)
    return out.getvalue()


def astropy_read(body: bytes) -> list[Any]:
    """astropy as vosweep used it: parse, then every table to an astropy Table."""
    parsed = votable.parse(io.BytesIO(body), verify="ignore")
    return [t.to_table(use_names_over_ids=True) for t in parsed.iter_tables()]


def vosweep_read(body: bytes) -> Any:
    """vosweep's reader as a sweep calls it (fast decoder first when it has one)."""
    try:
        return parse_votable(body)
    except ServiceError:  # QUERY_STATUS=ERROR and the like: classified, still read
        return None


def vosweep_tables(body: bytes) -> Any:
    """vosweep's reader, then astropy Tables built for every result (as a user may ask)."""
    parsed = vosweep_read(body)
    if parsed is not None:
        for table in parsed.tables:
            if hasattr(table, "to_table"):
                table.to_table()
    return parsed


def vosweep_astropy(body: bytes) -> Any:
    """vosweep's reader with the fast decoder switched off."""
    try:
        return parse_votable(body, fast=False)
    except ServiceError:
        return None


CONTENDERS: dict[str, Callable[[bytes], Any]] = {
    "astropy parse+to_table": astropy_read,
    "vosweep parse_votable": vosweep_read,
    "vosweep + to_table()": vosweep_tables,
}
if HAS_FAST_KEYWORD:
    CONTENDERS["vosweep fast=False"] = vosweep_astropy


def best_per_call(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def median_per_document(fn: Callable[[bytes], object], documents: list[bytes]) -> float:
    """Median time of one call per document (each document is read once: no best-of)."""
    times = []
    for document in documents:
        t0 = time.perf_counter()
        fn(document)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def corpus_documents() -> list[tuple[Path, bytes]]:
    """Every corpus file astropy reads as a VOTable."""
    documents = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        if b"VOTABLE" not in body[:4096]:
            continue
        try:
            astropy_read(body)
        except Exception:  # noqa: S112 - not a VOTable astropy reads: not replayed
            continue
        documents.append((path, body))
    return documents


def stream_only(body: bytes) -> Callable[[], object] | None:
    """fastvot.decode_stream alone on a document's first BINARY/BINARY2 STREAM."""

    def attribute(tag: bytes, name: str) -> str | None:
        match = re.search(rf'\b{name}="([^"]*)"'.encode(), tag)
        return match.group(1).decode() if match else None

    fields = [
        FieldMeta(
            name=attribute(tag, "name") or "",
            datatype=attribute(tag, "datatype") or "",
            arraysize=attribute(tag, "arraysize"),
            unit=attribute(tag, "unit"),
            ucd=attribute(tag, "ucd"),
        )
        for tag in re.findall(rb"<FIELD[^>]*>", body)
    ]
    match = re.search(rb"<(BINARY2?)>\s*<STREAM[^>]*>([^<]*)</STREAM>", body)
    if match is None:
        return None
    binary2, stream = match.group(1) == b"BINARY2", match.group(2)
    return lambda: decode_stream(fields, stream, binary2=binary2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the large documents")
    parser.add_argument("--repeat", type=int, default=3, help="best of, large documents")
    parser.add_argument("--tiny-repeat", type=int, default=300, help="best of, tiny documents")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # unit and VOTable warnings from astropy's reader

    rows: list[tuple[str, str, dict[str, float]]] = []
    for fmt in ("tabledata", "binary2"):
        body = make_document(10, fmt, seed=1)
        times = {
            name: best_per_call(partial(fn, body), args.tiny_repeat)
            for name, fn in CONTENDERS.items()
        }
        rows.append((f"10-row {fmt.upper()}", f"{len(body) / 1e3:.1f} kB", times))
    for fmt in ("tabledata", "binary2"):
        # Every document with FIELDs never seen before: no cache of the decoder helps.
        fresh = [make_document(10, fmt, seed=1, tag=f"_{i}") for i in range(args.tiny_repeat)]
        times = {name: median_per_document(fn, fresh) for name, fn in CONTENDERS.items()}
        label = f"10-row {fmt.upper()}, new FIELDs each (median)"
        rows.append((label, f"{len(fresh[0]) / 1e3:.1f} kB", times))
    notes = []
    for fmt in ("tabledata", "binary2"):
        body = make_document(args.rows, fmt)
        times = {
            name: best_per_call(partial(fn, body), args.repeat) for name, fn in CONTENDERS.items()
        }
        rows.append((f"{args.rows // 1000}k-row {fmt.upper()}", f"{len(body) / 1e6:.1f} MB", times))
        stream = stream_only(body) if fmt == "binary2" else None
        if stream is not None:
            best = best_per_call(stream, args.repeat)
            notes.append(
                f"fastvot.decode_stream alone on that BINARY2 STREAM: {best * 1e3:.1f} ms"
                f" ({len(body) / best / 1e6:.0f} MB/s of document)."
            )
    if CORPUS.is_dir():
        documents = corpus_documents()
        total = sum(len(b) for _, b in documents)

        def replay(fn: Callable[[bytes], Any], docs: list[tuple[Path, bytes]] = documents) -> None:
            for _, doc in docs:
                fn(doc)

        times = {
            name: best_per_call(partial(replay, fn), args.repeat) for name, fn in CONTENDERS.items()
        }
        rows.append((f"corpus replay ({len(documents)} VOTables)", f"{total / 1e6:.2f} MB", times))
        # Small answers are often wide: per-column costs then outweigh per-document ones.
        wide = sorted(
            ((body.count(b"<FIELD"), path, body) for path, body in documents if len(body) < 20e3),
            key=lambda entry: -entry[0],
        )[:3]
        for width, path, body in wide:
            times = {
                name: best_per_call(partial(fn, body), args.tiny_repeat // 3)
                for name, fn in CONTENDERS.items()
            }
            label = f"small wide answer: {path.name} ({width} FIELDs, per document)"
            rows.append((label, f"{len(body) / 1e3:.1f} kB", times))
    else:
        notes.append(f"corpus replay skipped: {CORPUS} not found.")

    names = list(CONTENDERS)
    lines = [
        (
            "VOTable decoding, best of runs (tiny documents: per document, the same one again"
            " and again, or the median over documents each with new FIELDs; large ones and the"
            " corpus: whole run, with throughput)."
        ),
        "",
        "| document | size | " + " | ".join(names) + " | astropy / vosweep |",
        "|---|---:|" + "---:|" * (len(names) + 1),
    ]
    for label, size, times in rows:
        tiny = label.startswith(("10-row", "small wide"))
        volume = float(size.split()[0]) * (1e3 if size.endswith("kB") else 1e6)
        cells = []
        for name in names:
            t = times[name]
            cells.append(
                f"{t * 1e6:.0f} us" if tiny else f"{t * 1e3:.1f} ms ({volume / t / 1e6:.1f} MB/s)"
            )
        ratio = times["astropy parse+to_table"] / times["vosweep parse_votable"]
        lines.append(f"| {label} | {size} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
    lines += ["", *notes] if notes else []
    if not HAS_FAST_KEYWORD:
        lines.append("parse_votable has no fast keyword yet: it is astropy underneath.")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "votable.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
