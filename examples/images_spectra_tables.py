"""Images, spectra and ADQL from one script: SIA 1/2, SSA and TAP (sync and UWS) at once.

Run it with ``python examples/images_spectra_tables.py``.

It needs no network: a simulated VO on loopback addresses serves SIA 1.0, SIA 2.0, SSA and
TAP services (some misbehaving). Against the real VO, build the targets from a registry
search instead (``await engine.discover(servicetype="sia")``, ``datamodel="obscore"``).

1. One `PerProtocol` fan-out: images from SIA 1 and 2, spectra from SSA, each service with
   the parameters of its own protocol.
2. The #preview links of the images that point to DataLink, fetched as a fan-out.
3. An ADQL query to every TAP service as UWS jobs; the simulator's counters then show that
   no job is left on any server, even the one whose job failed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio
import astropy.units as u
from astropy.coordinates import SkyCoord

import vosweep
from vosweep.services import Protocol
from vosweep.testing import (
    Behaviour,
    JobOutcome,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (5)")
    return parser.parse_args(argv)


def fleet() -> list[ServiceSpec]:
    dense = ServiceProfile(density=10_000.0, latency=0.05)
    kinds = [
        (Protocol.SIA, dense),
        (Protocol.SIA2, dense),
        (Protocol.SIA2, dense.model_copy(update={"behaviour": Behaviour.HTTP_500})),
        (Protocol.SSA, dense),
        (Protocol.SSA, dense.model_copy(update={"behaviour": Behaviour.OVERFLOW, "max_rows": 3})),
        (Protocol.TAP, ServiceProfile(latency=0.05)),
        (Protocol.TAP, ServiceProfile(tap=TapProfile(blocking_wait=False, execution_time=0.3))),
        (Protocol.TAP, ServiceProfile(tap=TapProfile(outcome=JobOutcome.ERROR))),
    ]
    return [
        ServiceSpec.make(i, i % 3, profile, protocol=protocol, seed=7)
        for i, (protocol, profile) in enumerate(kinds)
    ]


async def main(args: argparse.Namespace) -> None:
    async with SimulatedVO(fleet()) as sim:
        services = sim.targets()
        tap = [s for s in services if s.protocol is Protocol.TAP]
        dal = [s for s in services if s.protocol is not Protocol.TAP]
        timeouts = vosweep.Timeouts(connect=args.timeout, read=args.timeout, attempt=args.timeout)
        async with vosweep.Engine(timeouts=timeouts, user_agent_purpose="test") as engine:
            crab = SkyCoord(83.63 * u.deg, 22.01 * u.deg)
            query = vosweep.PerProtocol(
                sia=vosweep.ImageQuery(crab, radius=0.3),
                ssa=vosweep.SpectrumQuery(crab, diameter=0.6, band=(300 * u.nm, 1 * u.um)),
            )
            data = await engine.fanout(dal, query)
            print(data.summary())

            previews = await engine.datalinks(data, semantics="#preview")
            print(previews.summary())
            print(f"{previews.rows} preview links, e.g. {previews.table['access_url'][0]}")

            adql = vosweep.TapQuery(
                "SELECT TOP 20 obs_id, dataproduct_type, s_ra, s_dec FROM ivoa.obscore "
                "WHERE dataproduct_type = 'image'",
                mode="async",
            )
            obscore = await engine.fanout(tap, adql)
            print(obscore.summary())
        print(f"UWS jobs left on the servers: {sim.jobs_alive()}")


if __name__ == "__main__":
    anyio.run(main, parse_args())
