"""EPN-TAP everywhere: find every planetary ``epn_core`` table in the registry, ask them all.

Run it with ``python examples/epntap_sweep.py [--services N] [--target NAME]``.

EPN-TAP tables have no fixed name and one TAP service may hold several, so they are found
through the registry's table metadata (their table utype, current or legacy), and each is
asked in its own ADQL. It needs no network: a simulated VO on loopback addresses runs
TAP services with an EPN-TAP table and a RegTAP registry listing them among two thousand
records (some pointing at services that do not answer, as in the real VO).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio
from astropy.time import Time

import vosweep
from vosweep.services import Protocol
from vosweep.sweeps.epntap import EpnTapQuery, epntap, find_epncore_tables
from vosweep.testing import RegistryProfile, ServiceProfile, ServiceSpec, SimulatedVO


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=4, help="simulated TAP services (4)")
    parser.add_argument("--target", default="Mars", help="target name (Mars)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (5)")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    fleet = [
        ServiceSpec.make(i, i % 2, ServiceProfile(), protocol=Protocol.TAP, seed=2)
        for i in range(args.services)
    ]
    async with (
        SimulatedVO(fleet, registry=RegistryProfile(n_resources=2000)) as sim,
        vosweep.Engine(
            registry=vosweep.RegistryConfig(endpoints=(sim.registry_url,)),
            timeouts=vosweep.Timeouts(connect=args.timeout, read=args.timeout),
            user_agent_purpose="test",
        ) as engine,
    ):
        tables = await find_epncore_tables(engine)
        legacy = sum("vopdc" in t.utype.lower() for t in tables)
        print(f"found {len(tables)} EPN-TAP tables ({legacy} with the legacy utype)")
        for table in tables[:5]:
            print(f"  {table.table_name:<28} {table.service.access_url}")
        # Images or spectra (hash-list column: "im#sp" matches both) of the target,
        # in 2001-2010 (EPN-TAP times are Julian days: converted from astropy Time).
        query = EpnTapQuery(
            target_name=args.target,
            dataproduct_type=["im", "sp"],
            time=(Time("2001-01-01"), Time("2010-01-01")),
            maxrec=5000,
        )
        result = await epntap(engine, query, tables=tables)
    print(result.summary())
    table = result.table
    if len(table):
        print(table["granule_uid", "target_name", "dataproduct_type", "instrument_name"][:5])
    print(f"{len(table)} granules of {args.target}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
