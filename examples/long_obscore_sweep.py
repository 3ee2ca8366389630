"""A long ObsCore sweep that survives being cut short: checkpoint, stop, resume, finish.

Run it with ``python examples/long_obscore_sweep.py [--services N] [--checkpoint FILE]``.

A VO-wide ObsCore sweep can run for hours. With ``checkpoint=``, every finished service's
outcome and rows go to an SQLite file as they arrive, so a crash, a reboot or a Ctrl-C
loses nothing that was received: ``engine.resume(file)`` (or ``vosweep resume FILE`` on
the command line) asks only the services that had not finished. Here the first run is
cut short by a deadline, as a crash would cut it; the second finishes the sweep. With
``keep_rows=False`` the rows stay on disk, not in memory, and ``result.write`` streams
them into a Parquet or VOTable file.

It needs no network: the TAP services and their registry are simulated on loopback, each
answering after a second or so. Against the real VO, drop the `SimulatedVO` block and the
``registry=`` configuration.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio

import vosweep
from vosweep.services import Protocol
from vosweep.sweeps import ObsCoreQuery, finish_obscore, obscore
from vosweep.testing import RegistryProfile, ServiceProfile, ServiceSpec, SimulatedVO


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=24, help="simulated TAP services (24)")
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint file (a temporary one)")
    parser.add_argument("--output", type=Path, help="write the rows here (.vot or .parquet)")
    parser.add_argument("--first-run", type=float, default=2.0, help="seconds before the cut")
    return parser.parse_args(argv)


def engine(registry_url: str) -> vosweep.Engine:
    return vosweep.Engine(
        registry=vosweep.RegistryConfig(endpoints=(registry_url,)),
        limits=vosweep.Limits(per_host=2),
        user_agent_purpose="test",
    )


async def main(args: argparse.Namespace) -> None:
    # Slow archives on four hosts, two requests at a time per host: a sweep of seconds.
    fleet = [
        ServiceSpec.make(
            i, i % 4, ServiceProfile(latency=0.6 + 0.1 * (i % 5)), protocol=Protocol.TAP, seed=1
        )
        for i in range(args.services)
    ]
    query = ObsCoreQuery(where="calib_level >= 2", dataproduct_type="image", maxrec=5000)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or Path(folder) / "obscore.sqlite"
        async with SimulatedVO(fleet, registry=RegistryProfile(n_resources=200, seed=1)) as sim:
            async with engine(sim.registry_url) as first:
                # The deadline plays the crash: the sweep stops with services unfinished.
                cut = await obscore(
                    first, query, checkpoint=checkpoint, keep_rows=False, deadline=args.first_run
                )
            print("First run, cut short:")
            print(cut.summary(failures=0))
            async with engine(sim.registry_url) as second:
                resumed = await second.resume(checkpoint, keep_rows=args.output is None)
            print(f"\nResumed: {resumed.restored} services restored from {checkpoint.name}")
            if args.output is not None:
                # Rows on disk: stream them out with bounded memory.
                await anyio.to_thread.run_sync(resumed.write, args.output)
                print(resumed.summary(failures=0))
                print(f"wrote {resumed.rows} rows to {args.output}")
                return
            final = finish_obscore(resumed)  # the ObsCore schema, duplicates dropped
            print(final.summary(failures=0))
            print(f"{len(final.table)} observations in {len(final.table.colnames)} columns")


if __name__ == "__main__":
    anyio.run(main, parse_args())
