"""Find services in the VO Registry (RegTAP), look at what was found, then query them all.

Run it with ``python examples/discover_and_sweep.py [--services N]``.

It needs no network: a simulated VO on loopback addresses serves cone searches and a
RegTAP registry that describes them (among a thousand other records). Against the real
VO, drop the `SimulatedVO` block and the ``registry=`` configuration: the engine then asks
the default registry (or ``IVOA_REGISTRY``), failing over to another one if it is down.
The search keywords are pyvo's (``pyvo.registry.search``), and so are the names of what
comes back.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

import vosweep
from vosweep import registry
from vosweep.testing import DEFAULT_MIX, RegistryProfile, SimulatedVO


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=60, help="simulated services (60)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per attempt (3)")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    profile = RegistryProfile(n_resources=1000, seed=1)
    async with SimulatedVO(
        n_services=args.services, n_hosts=4, seed=1, mix=DEFAULT_MIX, registry=profile
    ) as sim:
        config = vosweep.EngineConfig(
            registry=vosweep.RegistryConfig(endpoints=(sim.registry_url,)),
            timeouts=vosweep.Timeouts(
                connect=args.timeout, read=args.timeout, attempt=args.timeout
            ),
            user_agent_purpose="test",
        )
        async with vosweep.Engine(config) as engine:
            # 1. Discover: pyvo's constraints, as keywords or objects.
            catalogues = await engine.discover(
                registry.Servicetype("scs"), registry.Waveband("optical"), keywords=["fleet"]
            )
            print(f"found {len(catalogues)} optical cone searches")
            print(catalogues.get_summary()[:3])

            # 2. Look: one record, its tables (fetched in a few batched queries for all).
            first = catalogues[0]
            first.describe()
            tables = await catalogues.get_tables()
            columns = sum(len(t.columns) for by_name in tables.values() for t in by_name.values())
            print(f"{sum(len(t) for t in tables.values())} tables, {columns} columns")

            # 3. Query them all at once; the results table says which service gave each row.
            result = await engine.fanout(catalogues, vosweep.Cone(ra=83.63, dec=22.01, radius=0.1))
            print(result.summary())

            # Or in one step, and with the ADQL shown first (pyvo's get_RegTAP_query):
            search = registry.search(servicetype="tap", datamodel="obscore")
            print(registry.build_query(servicetype="tap", datamodel="obscore"))
            obscore = await engine.discover(search)
            print(f"{len(obscore)} ObsCore services, e.g. {obscore[0].res_title!r}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
