"""Peak memory of a large sweep: rows in memory vs rows in a checkpoint, streamed to Parquet.

The simulated VO runs in one child process (`SimProcess`); each way of sweeping runs in a
fresh child process of its own, so that its peak RSS (``ru_maxrss``) is its alone:

* ``memory``: ``engine.fanout(...)``, the merged ``result.table`` built, written to Parquet;
* ``checkpoint``: ``engine.fanout(..., checkpoint=FILE, keep_rows=False)``, then
  ``result.write("out.parquet")``, which streams the stored rows service by service.

Both must write the same number of rows. The report (``results/sweep_memory.md``) gives
each one's wall time and peak RSS, and their ratio.

    python benchmarks/bench_sweep_memory.py [--services 10000] [--hosts 40] [--density 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

import vosweep
from vosweep.testing import SimProcess, build_fleet

RESULTS = Path(__file__).parent / "results"
CONE = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)
MB = 2**20


def _config() -> vosweep.EngineConfig:
    return vosweep.EngineConfig(
        limits=vosweep.Limits(total=100, per_host=5), timeouts=vosweep.Timeouts(attempt=60)
    )


async def _sweep(mode: str, services: list[vosweep.Service], workdir: Path) -> dict[str, Any]:
    """One sweep in this (child) process; its figures."""
    t0 = time.perf_counter()
    out = workdir / f"{mode}.parquet"
    async with vosweep.Engine(_config()) as engine:
        if mode == "memory":
            result = await engine.fanout(services, CONE)
            swept = time.perf_counter() - t0
            sweep_peak = _peak_mb()
            await anyio.to_thread.run_sync(result.write, out)
        else:
            store = workdir / "sweep.sqlite"
            result = await engine.fanout(services, CONE, checkpoint=store, keep_rows=False)
            swept = time.perf_counter() - t0
            sweep_peak = _peak_mb()
            await anyio.to_thread.run_sync(result.write, out)
    return {
        "mode": mode,
        "rows": result.rows,
        "ok": result.counts()[vosweep.Status.OK],
        "sweep_s": swept,
        "total_s": time.perf_counter() - t0,
        "sweep_peak_mb": sweep_peak,
        "peak_rss_mb": _peak_mb(),
        "file_mb": out.stat().st_size / MB,
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def _child(mode: str, spec: Path) -> int:
    data = json.loads(spec.read_text(encoding="utf-8"))
    services = [vosweep.Service.model_validate(s) for s in data["services"]]
    figures = anyio.run(_sweep, mode, services, Path(data["workdir"]))
    print(json.dumps(figures))
    return 0


def _run_child(mode: str, spec: Path) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 - our interpreter, this script
        [sys.executable, __file__, "--child", mode, "--spec", str(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{mode} sweep failed:\n{completed.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def _report(options: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    memory, lean = runs
    lines = [
        "## Sweep memory: rows in memory vs checkpoint + streamed Parquet",
        "",
        (
            f"{options.services} SCS services on {options.hosts} hosts (simulated VO in its own "
            f"process), cone radius {CONE.radius} deg, densities up to {options.density:g} per "
            "sq deg; each mode in a fresh child process; peak RSS is its ru_maxrss."
        ),
        "",
        "| mode | rows | ok services | sweep | sweep + write | Parquet | RSS sweep | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {run['mode']} | {run['rows']} | {run['ok']} | {run['sweep_s']:.1f} s | "
        f"{run['total_s']:.1f} s | {run['file_mb']:.1f} MB | {run['sweep_peak_mb']:.0f} MB | "
        f"{run['peak_rss_mb']:.0f} MB |"
        for run in runs
    )
    lines += [
        "",
        (
            f"Peak RSS ratio checkpoint/memory: {lean['peak_rss_mb'] / memory['peak_rss_mb']:.2f} "
            f"({lean['peak_rss_mb']:.0f} MB vs {memory['peak_rss_mb']:.0f} MB); "
            f"rows equal: {lean['rows'] == memory['rows']}."
        ),
        "",
        "    python benchmarks/bench_sweep_memory.py " + " ".join(options.argv),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=40)
    parser.add_argument("--density", type=float, default=20_000.0, help="max per sq deg")
    parser.add_argument("--latency", type=float, default=0.02, help="median, seconds")
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep_memory.md")
    parser.add_argument("--child", choices=("memory", "checkpoint"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = list(sys.argv[1:] if argv is None else argv)
    options = parser.parse_args(args)
    options.argv = args
    if options.child:
        return _child(options.child, options.spec)
    fleet = build_fleet(
        options.services,
        options.hosts,
        seed=1,
        latency_median=options.latency,
        latency_sigma=0.3,
        density_range=(options.density / 10, options.density),
    )
    with tempfile.TemporaryDirectory() as tmp, SimProcess(fleet, max_seconds=3600) as sim:
        workdir = Path(tmp)
        spec = workdir / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "services": [s.model_dump(mode="json") for s in sim.targets()],
                    "workdir": tmp,
                }
            ),
            encoding="utf-8",
        )
        runs = [_run_child(mode, spec) for mode in ("memory", "checkpoint")]
    text = _report(options, runs)
    print(text)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(text + "\n", encoding="utf-8")
    return 0 if runs[0]["rows"] == runs[1]["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
