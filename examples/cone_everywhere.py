"""Send one cone search to every cone-search service of a (simulated) Virtual Observatory.

Run it with ``python examples/cone_everywhere.py [--services N] [--out PATH]``.

It needs no network: it starts a simulated VO, real HTTP servers on loopback addresses
(127.0.0.x), whose services hang, drip, fail, throttle and overflow as real ones do.

To query the real VO instead, drop the `SimulatedVO` block and give the engine a list of
cone-search services, e.g. access URLs found with a registry query::

    targets = [vosweep.Service.scs(url) for url in access_urls]
    async with vosweep.Engine() as engine:
        result = await engine.fanout(targets, cone)

keeping the default timeouts (real services are slower than loopback ones) and the default
``user_agent_purpose="science"`` (``"test"`` below tells operators it is not science).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio
import astropy.units as u
from astropy.coordinates import SkyCoord

import vosweep
from vosweep.testing import DEFAULT_MIX, SimulatedVO


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=150, help="simulated services (150)")
    parser.add_argument("--hosts", type=int, default=6, help="simulated hosts (6)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated fleet (1)")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds per request attempt (3)"
    )
    parser.add_argument("--rows", type=int, default=5, help="rows of the result to print (5)")
    parser.add_argument(
        "--out", type=Path, help="VOTable to write (default: a file in a new temporary folder)"
    )
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    # The position as an astropy SkyCoord and the radius as a Quantity in arcmin: Cone
    # converts both to ICRS degrees once, and rejects a bad value before anything is sent.
    crab = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg, frame="icrs")
    cone = vosweep.Cone(crab, radius=6 * u.arcmin)

    # One configuration for the sweep. Short per-attempt timeouts suit loopback servers,
    # so a hung service costs a few seconds, not the default 30; "test" marks the
    # requests as not science in the User-Agent, as the IVOA asks of test traffic.
    config = vosweep.EngineConfig(
        timeouts=vosweep.Timeouts(
            connect=min(2.0, args.timeout), read=args.timeout, attempt=args.timeout
        ),
        user_agent_purpose="test",
    )

    # The simulated VO: --services cone-search services spread over --hosts hosts (one of
    # them carrying a third of the services, as VizieR does), with DEFAULT_MIX's share of
    # misbehaving services. Leaving the block stops every server.
    async with SimulatedVO(
        n_services=args.services, n_hosts=args.hosts, seed=args.seed, mix=DEFAULT_MIX
    ) as sim:
        targets = sim.targets()  # one vosweep.Service per simulated service
        print(f"Sending {cone!r} to {len(targets)} services on {args.hosts} hosts ...")

        # The engine owns the connection pool, the per-host limits (5 requests at once per
        # host by default) and the circuit breakers; fanout() returns once every service
        # has answered, failed, timed out or been skipped, never raising for one of them.
        async with vosweep.Engine(config) as engine:
            result = await engine.fanout(targets, cone)

        # The servers' own counters: the politeness limit held on every host.
        peaks = [host.max_in_flight for host in sim.stats().hosts]
        print(f"Peak requests in flight per host, as the servers saw them: {peaks}")

    # What happened to every service, counted per status, then the first failures.
    print(result.summary())

    # One table with every row received, plus provenance columns (service_name,
    # service_ivoid, service_url) saying which service sent each row.
    print(result.table[: args.rows])

    # Save the merged table as a VOTable, the format every VO tool (TOPCAT, Aladin) reads.
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="vosweep-")) / "cone_everywhere.vot"
    result.table.write(out, format="votable", overwrite=True)
    print(f"Wrote {len(result.table)} rows to {out}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
