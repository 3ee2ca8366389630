"""ObsCore everywhere: one query to every archive with an ``ivoa.obscore`` table, one table back.

Run it with ``python examples/obscore_sweep.py [--services N] [--output FILE]``.

It needs no network: a simulated VO on loopback addresses runs TAP services (most with an
ObsCore table) and a RegTAP registry describing them among a thousand other records, some
of which point at archives that do not answer, as in the real VO. Against the real VO,
drop the `SimulatedVO` block and the ``registry=`` configuration.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence

import anyio
import astropy.units as u
from astropy.time import Time

import vosweep
from vosweep.services import Protocol
from vosweep.sweeps.obscore import ObsCoreQuery, obscore
from vosweep.testing import (
    RegistryProfile,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=6, help="simulated TAP services (6)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (5)")
    parser.add_argument("--output", help="write the merged table here (.vot, .fits, .ecsv)")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    # Every third service holds no ObsCore table: the registry does not list it as one.
    fleet = [
        ServiceSpec.make(
            i,
            i % 3,
            ServiceProfile(
                tap=TapProfile(tables=(TapTable.CATALOGUE,) if i % 3 == 2 else tuple(TapTable))
            ),
            protocol=Protocol.TAP,
            seed=1,
        )
        for i in range(args.services)
    ]
    async with (
        SimulatedVO(fleet, registry=RegistryProfile(n_resources=1000, seed=1)) as sim,
        vosweep.Engine(
            registry=vosweep.RegistryConfig(endpoints=(sim.registry_url,)),
            timeouts=vosweep.Timeouts(connect=args.timeout, read=args.timeout),
            user_agent_purpose="test",
        ) as engine,
    ):
        # Optical images and spectra within 30 degrees of the Galactic anticentre,
        # taken in 2000-2010; astropy quantities and times, converted for ObsCore.
        query = ObsCoreQuery(
            position=(86.4, 28.9, 30.0),
            band=(400 * u.nm, 700 * u.nm),
            time=(Time("2000-01-01"), Time("2010-01-01")),
            dataproduct_type=["image", "spectrum"],
            maxrec=10_000,
        )
        print(query.to_adql())
        # The ObsCore services come from the registry (declared ObsCore data model).
        result = await obscore(engine, query)
    print(result.summary())
    table = result.table
    print(f"{len(table)} observations in the ObsCore schema: {', '.join(table.colnames[:6])}...")
    for name, count in sorted(Counter(str(n) for n in table["service_name"]).items()):
        print(f"  {name}: {count}")
    if args.output:
        result.write(args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
