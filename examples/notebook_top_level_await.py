"""vosweep in a Jupyter notebook: top-level ``await``, streaming, and partial results.

The ``# %%`` blocks are notebook cells. Jupyter runs an event loop for you and accepts
``await`` and ``async with`` at the top level of a cell, so a notebook needs neither
``asyncio.run`` nor ``vosweep.fanout_sync`` (which refuses to run inside a running loop).

A .py file cannot use top-level ``await``, so here the cells after the first one sit
inside ``async def main()``, run by ``asyncio.run(main())``. In Jupyter, each cell's body
runs as it is, without that indentation.

The cells query a simulated VO on loopback (no network). For the real VO, build the
targets as ``[vosweep.Service.scs(url) for url in access_urls]`` instead of
``sim.targets()``, and drop the ``SimulatedVO`` lines.
"""

# %%
# Cell 1: imports and settings.
from __future__ import annotations

import asyncio

import anyio
import astropy.units as u
from astropy.coordinates import SkyCoord

import vosweep
from vosweep.testing import Behaviour, SimulatedVO, build_fleet, override_fleet

#: Seconds per request attempt: short, because the simulated services are on loopback.
TIMEOUT = 1.0
#: When the "interrupted" cell below is cut short, as if you pressed Interrupt.
INTERRUPT_AFTER = 1.0


async def main() -> None:
    # %%
    # Cell 2: a simulated VO of 40 services on 4 hosts, three of which hang. A notebook
    # cannot keep an `async with` open across cells, so start it here and close it in the
    # last cell.
    fleet = build_fleet(40, 4, seed=5, latency_median=0.05)
    fleet = override_fleet(fleet, services=dict.fromkeys([3, 17, 29], Behaviour.HANG))
    sim = SimulatedVO(fleet)
    await sim.start()
    targets = sim.targets()
    cone = vosweep.Cone(SkyCoord(83.6331, 22.0145, unit="deg"), radius=6 * u.arcmin)
    config = vosweep.EngineConfig(
        timeouts=vosweep.Timeouts(connect=TIMEOUT, read=TIMEOUT, attempt=TIMEOUT),
        user_agent_purpose="test",
    )

    # %%
    # Cell 3: one fan-out, one temporary engine: the shortest way.
    result = await vosweep.fanout(targets, cone, config=config)
    print(result.summary(failures=3))

    # %%
    # Cell 4: an engine of your own, for several fan-outs: they share its connection pool,
    # its per-host limits and its circuit breakers. Keyword arguments override the config.
    async with vosweep.Engine(config, deadline=60) as engine:
        result = await engine.fanout(targets, cone)
        print(f"{result.rows} rows from {result.counts()[vosweep.Status.OK]} services")

        # Streaming: each service's part comes out as soon as it finished, so you can look
        # at the first answers while slow services are still running. The hung services
        # come last, when their timeout runs out.
        async with engine.stream(targets, cone) as parts:
            arrived = []
            async for part in parts:
                arrived.append(part)
                if len(arrived) <= 3:
                    print(f"first parts: {part}")
        print("last parts:", *arrived[-3:], sep="\n  ")
        # Everything received, merged, as fanout() would have returned it.
        print(parts.result().summary(failures=3))

    # %%
    # Cell 5: a sweep cut short. Patient timeouts make the hung services hold the sweep up,
    # and you press Interrupt (Kernel > Interrupt): Jupyter cancels the running cell. The
    # move_on_after scope stands in for that button here; it cancels the same way.
    engine = vosweep.Engine(config, timeouts=vosweep.Timeouts(attempt=300, read=300))
    async with engine:
        with anyio.move_on_after(INTERRUPT_AFTER):
            # Interrupted, this never returns: there is no result to assign.
            await engine.fanout(targets, cone)

    # %%
    # Cell 6: nothing received is lost. The engine keeps the last fan-out's result, also
    # when it was cancelled: every answer that arrived, and the unfinished services
    # reported as cancelled.
    partial = engine.last_result  # None only before the first fan-out
    if partial is not None:
        print(partial.summary(failures=3))

    # %%
    # Cell 7: stop the simulated VO.
    await sim.aclose()


if __name__ == "__main__":
    asyncio.run(main())
