"""The ``vosweep`` command: thin argument parsing over `Engine`; no logic of its own.

Exit codes: 0 every service delivered; 3 results were produced but some services failed;
2 bad input (one line naming the problem, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from vosweep.config import EngineConfig, Limits, Timeouts
from vosweep.engine import Engine
from vosweep.errors import UsageError
from vosweep.outcomes import Part
from vosweep.queries import Cone
from vosweep.result import FanoutResult
from vosweep.services import Service

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vosweep", description="Query many Virtual Observatory services at once."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="sweep a simulated VO on loopback (realistic latencies and failures)"
    )
    demo.add_argument("--services", type=int, default=300, help="simulated services (300)")
    demo.add_argument("--hosts", type=int, default=12, help="simulated hosts (12)")
    demo.add_argument("--seed", type=int, default=1, help="fleet seed (1)")
    demo.add_argument("--timeout", type=float, default=5.0, help="per-attempt timeout, s (5)")
    demo.add_argument("--rows", type=int, default=10, help="rows of the result to print (10)")
    _common(demo)

    cone = sub.add_parser("cone", help="one cone search sent to many SCS services")
    cone.add_argument("--ra", required=True, help="right ascension, degrees (ICRS)")
    cone.add_argument("--dec", required=True, help="declination, degrees (ICRS)")
    cone.add_argument("--radius", required=True, help="radius, degrees")
    cone.add_argument("urls", nargs="*", help="SCS access URLs")
    cone.add_argument("--urls-file", type=Path, help="file with one SCS access URL per line")
    cone.add_argument("--timeout", type=float, default=30.0, help="per-attempt timeout, s (30)")
    cone.add_argument("--output", "-o", type=Path, help="write the merged table here")
    cone.add_argument("--format", help="astropy format for --output (default: from the file name)")
    _common(cone)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--errors", default="ignore", help="abort|ignore|retry|retry<n>")
    parser.add_argument("--per-host", type=int, default=5, help="requests per host at once (5)")
    parser.add_argument("--total", type=int, default=100, help="requests at once overall (100)")
    parser.add_argument("--deadline", type=float, help="seconds for the whole sweep")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace, purpose: str = "science") -> EngineConfig:
    try:
        read = min(20.0, args.timeout)
        return EngineConfig(
            timeouts=Timeouts(connect=min(10.0, args.timeout), read=read, attempt=args.timeout),
            limits=Limits(total=args.total, per_host=args.per_host),
            errors=args.errors,
            deadline=args.deadline,
            user_agent_purpose=purpose,
        )
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None


class _Progress:
    """tqdm.auto when installed (terminal and Jupyter), else a plain counter on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        self._counts: dict[str, int] = {}
        self._done = 0
        self._total = total
        self._enabled = enabled
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional extra
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="svc", desc="sweep", file=sys.stderr)

    def __call__(self, part: Part) -> None:
        status = part.outcome.status.value
        self._counts[status] = self._counts.get(status, 0) + 1
        self._done += 1
        counts = " ".join(f"{k}={v}" for k, v in sorted(self._counts.items()))
        if self._bar is not None:
            self._bar.set_postfix_str(counts, refresh=False)
            self._bar.update(1)
        elif self._enabled:
            sys.stderr.write(f"\r{self._done}/{self._total} services  {counts}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            sys.stderr.write("\n")


async def _demo(args: argparse.Namespace) -> int:
    from vosweep.testing import DEFAULT_MIX, RegistryProfile, SimulatedVO  # noqa: PLC0415

    if args.services < 1 or args.hosts < 1:
        raise UsageError("--services and --hosts must be at least 1")
    config = _config(args, purpose="test")
    cone = Cone(ra=83.63, dec=22.01, radius=0.1)
    with_registry = _has_sim_extra()
    print(
        f"Starting a simulated VO: {args.services} cone-search services on {args.hosts} "
        f"loopback hosts (seed {args.seed}), with realistic failures"
        + (", and a RegTAP registry of 1,000 more records." if with_registry else ".")
    )
    registry = RegistryProfile(n_resources=1000, seed=args.seed) if with_registry else False
    async with SimulatedVO(
        n_services=args.services,
        n_hosts=args.hosts,
        seed=args.seed,
        mix=DEFAULT_MIX,
        registry=registry,
    ) as sim:
        targets: Sequence[Service] = sim.targets()
        if with_registry:
            config = config.model_copy(
                update={
                    "registry": config.registry.model_copy(
                        update={"endpoints": (sim.registry_url,)}
                    )
                }
            )
            targets = await _discover(config)
        else:
            print("(pip install 'vosweep[sim]' to discover them through a simulated registry)")
        print(f"Sweeping {cone} with per-host cap {args.per_host}, timeout {args.timeout} s ...")
        result = await _run(config, targets, cone, args)
        stats = sim.stats()
    served = sum(s.rows_served for s in stats.services)
    print(result.summary())
    peaks = ", ".join(str(h.max_in_flight) for h in stats.hosts)
    print(
        f"Server side: peak concurrent requests per host: {peaks} (cap {args.per_host}); "
        f"{served} rows served, {result.rows} rows received."
    )
    if len(result.table):
        print(result.table[: args.rows])
    return EXIT_OK if result.complete else EXIT_PARTIAL


def _has_sim_extra() -> bool:
    from importlib.util import find_spec  # noqa: PLC0415

    return all(find_spec(name) is not None for name in ("sqlglot", "cdshealpix"))


async def _discover(config: EngineConfig) -> list[Service]:
    """The demo's discovery step: the fleet's cone searches, found through RegTAP."""
    started = time.perf_counter()
    async with Engine(config) as engine:
        found = await engine.discover(servicetype="scs", keywords=["fleet"])
        trips = engine.registry.round_trips
    services = found.services("scs")
    print(
        f"Registry: servicetype='scs', keywords=['fleet'] found {len(found)} resources"
        f" ({len(services)} cone searches) in {time.perf_counter() - started:.2f} s,"
        f" {trips} round trips"
    )
    return services


async def _run(
    config: EngineConfig, targets: Sequence[Service], query: object, args: argparse.Namespace
) -> FanoutResult:
    progress = _Progress(len(targets), enabled=not args.no_progress)
    try:
        async with Engine(config) as engine:
            return await engine.fanout(targets, query, on_part=progress)
    finally:
        progress.close()


async def _cone(args: argparse.Namespace) -> int:
    urls = list(args.urls)
    if args.urls_file is not None:
        try:
            text = args.urls_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --urls-file {args.urls_file}: {exc.strerror}") from None
        urls += [line.strip() for line in text.splitlines() if line.strip()]
    if not urls:
        raise UsageError("no services: give SCS access URLs or --urls-file")
    cone = Cone(ra=args.ra, dec=args.dec, radius=args.radius)
    targets = []
    for url in urls:
        try:
            targets.append(Service.scs(url))
        except ValueError:
            raise UsageError(f"not an http(s) URL: {url!r}") from None
    if args.output is not None:
        _check_writable(args.output)
    result = await _run(_config(args), targets, cone, args)
    print(result.summary())
    if args.output is not None:
        result.table.write(args.output, format=args.format, overwrite=True)
        print(f"wrote {len(result.table)} rows to {args.output}")
    failed = any(o.status.failed for o in result.outcomes)
    return EXIT_PARTIAL if failed or not result.complete else EXIT_OK


def _check_writable(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir():
        raise UsageError(f"cannot write --output {path}: folder {folder} does not exist")


COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {"demo": _demo, "cone": _cone}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vosweep`` command."""
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        code: int = anyio.run(COMMANDS[args.command], args)
    except UsageError as exc:
        print(f"vosweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vosweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
