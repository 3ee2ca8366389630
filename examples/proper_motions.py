"""All proper motions around a position, from every TAP table the (simulated) VO has.

Run it with ``python examples/proper_motions.py [--ra 10 --dec 10 --radius 15] [--out PATH]``.

The pyVO course's "VO-wide TAP queries" recipe as one call: the registry names the
tables with proper-motion columns (UCD ``pos.pm``), each table is asked for its rows in
the region with its columns mapped by UCD onto one schema, and the answers are merged
with their units converted (VizieR-like tables give arcsec/yr, others mas/yr).

It needs no network: the simulated VO's TAP services hold a catalogue (``cat.sources``)
and a VizieR-like table (``"J/A+A/600/A12/table2"``, mixed-case columns); one service
lacks UNION (asked table by table), one lacks CAST. The registry also lists a data
collection whose TAP service does not exist: its failure is recorded, not raised.

On the real VO, drop the `SimulatedVO` block and the registry configuration.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio

import vosweep
from vosweep.services import Protocol
from vosweep.sweeps.ucd import ResultColumn, ucd_sweep
from vosweep.testing import (
    RegistryProfile,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
)

#: The result schema: name, UCD, unit every value is converted to, type.
SCHEMA = [
    ResultColumn("ra", "pos.eq.ra;meta.main", "deg"),
    ResultColumn("dec", "pos.eq.dec;meta.main", "deg"),
    ResultColumn("pmra", "pos.pm;pos.eq.ra", "mas/yr"),
    ResultColumn("pmdec", "pos.pm;pos.eq.dec", "mas/yr"),
]

#: The simulated TAP services: what tables they hold and which ADQL features they lack.
PROFILES = [
    TapProfile(tables=(TapTable.CATALOGUE, TapTable.VIZIER_PM)),
    TapProfile(tables=(TapTable.VIZIER_PM,), union=False),
    TapProfile(tables=(TapTable.CATALOGUE, TapTable.VIZIER_PM), cast=False),
    TapProfile(tables=(TapTable.OBSCORE,)),  # no proper motions: never asked
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ra", type=float, default=10.0, help="degrees (10)")
    parser.add_argument("--dec", type=float, default=10.0, help="degrees (10)")
    parser.add_argument("--radius", type=float, default=15.0, help="degrees (15)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the simulated VO (3)")
    parser.add_argument("--rows", type=int, default=5, help="rows of the result to print (5)")
    parser.add_argument("--out", type=Path, help="VOTable to write (default: a temporary file)")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    region = vosweep.Cone(ra=args.ra, dec=args.dec, radius=args.radius)
    fleet = [
        ServiceSpec.make(
            index, index, ServiceProfile(tap=profile), protocol=Protocol.TAP, seed=args.seed
        )
        for index, profile in enumerate(PROFILES)
    ]
    async with SimulatedVO(fleet, registry=RegistryProfile(n_resources=50, seed=args.seed)) as sim:
        # The engine asks the simulated registry; "test" marks the traffic as not science.
        registry = vosweep.RegistryConfig(endpoints=(sim.registry_url,))
        async with vosweep.Engine(registry=registry, user_agent_purpose="test") as engine:
            result = await ucd_sweep(engine, SCHEMA, region=region)

    print(result.summary())
    table = result.table
    for source, count in sorted(Counter(table["source_table"].tolist()).items()):
        print(f"  {count:5d} rows from {source}")
    print(table[: args.rows])

    out = args.out or Path(tempfile.mkdtemp(prefix="vosweep-")) / "proper_motions.vot"
    table.write(out, format="votable", overwrite=True)
    print(f"Wrote {len(table)} rows to {out}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
