"""vosweep in a plain (synchronous) script: `vosweep.fanout_sync` runs the event loop.

Run it with ``python examples/sync_script.py [--services N] [--timeout S]`` and press
Ctrl-C at any time: the script stops within a moment and prints what it had received.

``fanout_sync`` starts and ends its own event loop, so nothing else of this script can
run on it: the simulated VO lives in a child process (`vosweep.testing.SimProcess`),
serving on loopback (no network). For the real VO, replace ``sim.targets()`` with
``[vosweep.Service.scs(url) for url in access_urls]`` and drop the ``SimProcess`` block.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import vosweep
from vosweep.testing import SimProcess

#: The exit status of a program stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class Progress:
    """Count finished services on stderr (``on_part`` is called once per service)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.enabled = sys.stderr.isatty()

    def __call__(self, part: vosweep.Part) -> None:
        self.done += 1
        if self.enabled:
            sys.stderr.write(f"\r{self.done}/{self.total} services done ({part.outcome.status})")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=60, help="simulated services (60)")
    parser.add_argument("--hosts", type=int, default=4, help="simulated hosts (4)")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds per request attempt (3)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Plain degrees work as well as SkyCoord and Quantity.
    cone = vosweep.Cone(ra=83.6331, dec=22.0145, radius=0.1)
    # Short timeouts for loopback servers; "test" marks the traffic as not science.
    config = vosweep.EngineConfig(
        timeouts=vosweep.Timeouts(
            connect=min(2.0, args.timeout), read=args.timeout, attempt=args.timeout
        ),
        user_agent_purpose="test",
    )

    # The simulated VO in a child process, with the realistic share of failing services.
    # It stops when the block ends, and also by itself if this script dies.
    with SimProcess(
        n_services=args.services, n_hosts=args.hosts, seed=1, mix="realistic", max_seconds=600
    ) as sim:
        targets = sim.targets()
        print(f"Sending {cone!r} to {len(targets)} services; Ctrl-C stops early.")
        progress = Progress(len(targets))
        try:
            # Blocks until every service has answered, failed or timed out. Failures of
            # single services are outcomes, never exceptions.
            result = vosweep.fanout_sync(targets, cone, config=config, on_part=progress)
        except vosweep.SweepInterrupted as exc:
            # Ctrl-C: a KeyboardInterrupt carrying everything received before it (None
            # when it came before the fan-out started). Requests still running were
            # cancelled and are reported as such.
            progress.close()
            print("Interrupted: partial result follows.", file=sys.stderr)
            if exc.result is not None:
                print(exc.result.summary())
            return EXIT_INTERRUPTED
        progress.close()

    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
