"""The soak: a 10,000-service sweep of a misbehaving simulated VO, with its hygiene proven.

The simulated VO runs in a child process (`SimProcess`), the engine in this one. The fleet
has about 10% assorted failures (hangs, drips, 5xx, resets, malformed and truncated
bodies, redirect loops...), the benign oddities a client must still read (503/429 with
Retry-After, flaky 5xx, redirects, gzip, clashing types) and two dead hosts that refuse
connections. Each round opens a fresh `Engine` for one fan-out. Checked (the script exits
non-zero when a check fails):

* rows: every service whose profile delivers rows ends ok/empty/overflow with the rows
  the server says it sent (and, unless truncated, the rows the seeded sky holds);
* no leak: open file descriptors and asyncio tasks after the engine closed are back to
  where they were, the servers see no connection left open, and RSS after a later round
  is not above RSS after the first (memory stays flat from sweep to sweep);
* breaker: each dead host gets the breaker's threshold plus a few stragglers and probes,
  and most of its services are skipped as CircuitOpen instead of each being tried;
* politeness: every live host receives (server-side count) at most its requests plus its
  retry budget (plus redirect hops).

    python benchmarks/bench_soak.py [--services 10000] [--hosts 40] [--rounds 3] [--timeout 2]
        [--default-arenas]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import psutil

import vosweep
from vosweep.testing import (
    DEFAULT_MIX,
    Behaviour,
    ServiceProfile,
    ServiceSpec,
    SimProcess,
    SimStats,
    build_fleet,
    expected_rows,
    override_fleet,
)

RESULTS = Path(__file__).parent / "results"
CONE = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)
MB = 2**20
#: Statuses of a service that delivered its table.
DELIVERED = frozenset({vosweep.Status.OK, vosweep.Status.EMPTY, vosweep.Status.OVERFLOW})
#: Behaviours whose answer never carries the service's table (the "failures" of the mix).
FAILING = frozenset(b for b in Behaviour if not ServiceProfile(behaviour=b).delivers_rows)


@dataclass(frozen=True, slots=True)
class SoakOptions:
    """What one soak runs: the fleet, the client's limits, the rounds and the slacks."""

    services: int = 10_000
    hosts: int = 40
    dead_hosts: tuple[int, ...] = (5, 20)
    failure_share: float = 0.10
    latency: float = 0.02
    timeout: float = 2.0
    rounds: int = 3
    seed: int = 2026
    #: Keep glibc's default malloc arenas (8 per core) instead of the CLI's cap of 2: the
    #: resident size then creeps up from round to round by allocator fragmentation.
    default_arenas: bool = False
    #: Descriptors a round may leave open (a lazily created object of the loop, say).
    fd_slack: int = 2
    #: RSS growth allowed from the first round to the last (allocator noise).
    rss_slack_mb: float = 64.0
    #: Upper bound on one fan-out; every wait is bounded.
    deadline: float = 900.0


@dataclass(slots=True)
class RoundFigures:
    """What the client process measured around one round."""

    wall: float
    counts: dict[vosweep.Status, int]
    rows: int
    table_rows: int
    complete: bool
    outcomes: list[vosweep.ServiceOutcome]
    fds_before: int
    fds_after: int
    tasks_before: int
    tasks_after: int
    rss_before: int
    rss_peak_sampled: int
    rss_after: int = 0
    objects_after: int = 0
    server_open_connections: int = 0
    stats: SimStats | None = None
    #: Verdicts of this round, taken before its outcomes are dropped (see `run_soak`).
    checks: list[Check] = field(default_factory=list)


@dataclass(slots=True)
class Check:
    """One pass/fail verdict with the figures behind it."""

    name: str
    passed: bool
    detail: str


@dataclass(slots=True)
class SoakReport:
    """Every round's figures, the checks and the process-wide numbers."""

    options: SoakOptions
    fleet: list[ServiceSpec]
    config: vosweep.EngineConfig
    rounds: list[RoundFigures] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    peak_rss: int = 0
    fds_start: int = 0
    fds_end: int = 0
    total_wall: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)


# --------------------------------------------------------------------------- fleet


def soak_mix(failure_share: float) -> dict[Behaviour, float]:
    """`DEFAULT_MIX` without OVERSIZED, scaled so that *failure_share* of services fail.

    The benign oddities (gzip, redirects, Retry-After...) are scaled with the failures, so
    the fleet keeps the shape of the realistic mix.
    """
    mix = {b: f for b, f in DEFAULT_MIX.items() if b is not Behaviour.OVERSIZED}
    failing = math.fsum(f for b, f in mix.items() if b in FAILING)
    return {b: f * failure_share / failing for b, f in mix.items()}


def soak_fleet(options: SoakOptions) -> list[ServiceSpec]:
    """The seeded fleet; hangs and drips hold a connection at most three timeouts."""
    fleet = build_fleet(
        options.services,
        options.hosts,
        seed=options.seed,
        latency_median=options.latency,
        mix=soak_mix(options.failure_share),
    )
    bounded = {"max_hang": 3 * options.timeout}
    return override_fleet(fleet, hosts=dict.fromkeys({s.host_index for s in fleet}, bounded))


def soak_config(options: SoakOptions) -> vosweep.EngineConfig:
    """Short timeouts (the whole soak takes minutes); limits, retries and breaker as shipped."""
    timeouts = vosweep.Timeouts(
        connect=options.timeout, read=options.timeout, attempt=1.25 * options.timeout
    )
    return vosweep.EngineConfig(
        timeouts=timeouts, deadline=options.deadline, user_agent_purpose="test"
    )


# --------------------------------------------------------------------------- one round


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so that the RSS
    read next is what the process holds, not what the allocator keeps cached."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
        if trim is not None:
            trim(0)


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


async def sweep_round(
    targets: Sequence[vosweep.Service], config: vosweep.EngineConfig
) -> RoundFigures:
    """One fan-out with a fresh engine; descriptors and tasks counted inside this loop."""
    process = psutil.Process()
    fds_before = process.num_fds()
    tasks_before = len(asyncio.all_tasks())
    rss_before = _rss()
    sampled = [rss_before]
    done = anyio.Event()

    async def sample_rss() -> None:
        while not done.is_set():
            sampled.append(_rss())
            with anyio.move_on_after(0.25):
                await done.wait()

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample_rss)
        try:
            async with vosweep.Engine(config) as engine:
                result = await engine.fanout(targets, CONE)
            wall = time.perf_counter() - t0
            table_rows = len(result.table)
        finally:
            done.set()
    sampled.append(_rss())
    # aiohttp closes its transports on the next loop iterations: give them a moment.
    await anyio.sleep(0.25)
    return RoundFigures(
        wall=wall,
        counts=result.counts(),
        rows=result.rows,
        table_rows=table_rows,
        complete=result.complete,
        outcomes=result.outcomes,
        fds_before=fds_before,
        fds_after=process.num_fds(),
        tasks_before=tasks_before,
        tasks_after=len(asyncio.all_tasks()),
        rss_before=rss_before,
        rss_peak_sampled=max(sampled),
    )


def _settled_stats(sim: SimProcess, timeout: float) -> SimStats:
    """The servers' counters once the requests the client dropped have left the handlers."""
    deadline = time.monotonic() + timeout
    stats = sim.stats()
    while (stats.in_flight or stats.open_connections) and time.monotonic() < deadline:
        time.sleep(0.1)
        stats = sim.stats()
    return stats


def run_soak(options: SoakOptions) -> SoakReport:
    """Run every round against one simulated VO and judge them."""
    fleet = soak_fleet(options)
    config = soak_config(options)
    report = SoakReport(options, fleet, config)
    process = psutil.Process()
    t0 = time.perf_counter()
    with SimProcess(fleet, dead_hosts=options.dead_hosts, max_seconds=4 * options.deadline) as sim:
        targets = sim.targets()
        report.fds_start = process.num_fds()
        for _ in range(options.rounds):
            sim.reset_stats()  # also restarts the 503/429/flaky countdowns
            figures = anyio.run(sweep_round, targets, config)
            figures.stats = _settled_stats(sim, 3 * options.timeout + 2)
            figures.server_open_connections = figures.stats.open_connections
            # Judge now and drop the 10,000 outcomes, so that the memory measured after
            # the next round is not inflated by this report's own records.
            figures.checks = judge_round(report, figures)
            figures.outcomes = []
            # The servers' per-service counters too: 10,000 records kept per round were
            # the growth the "objects flat" check saw (the harness's, not the engine's).
            figures.stats = None
            release_memory()
            figures.rss_after = _rss()
            figures.objects_after = len(gc.get_objects())
            report.rounds.append(figures)
        report.fds_end = process.num_fds()
    report.total_wall = time.perf_counter() - t0
    report.peak_rss = peak_rss()
    report.checks = judge(report)
    return report


# --------------------------------------------------------------------------- checks


def retry_budget(config: vosweep.EngineConfig, requests: int) -> int:
    """Retries the engine allows one host that was sent *requests* requests."""
    return math.floor(config.retry.host_budget_min + config.retry.host_budget_ratio * requests)


def redirect_hops(spec: ServiceSpec, config: vosweep.EngineConfig) -> int:
    """Requests beyond the first that one attempt at *spec* costs its host."""
    if spec.profile.behaviour is Behaviour.REDIRECT:
        return 1
    if spec.profile.behaviour is Behaviour.REDIRECT_LOOP:
        return config.limits.max_redirects
    return 0


def dead_host_allowance(config: vosweep.EngineConfig, wall: float) -> int:
    """Connection attempts a dead host may get in a sweep of *wall* seconds.

    The threshold opens the breaker; the requests already in flight and backing off when
    it opened (at most ``per_host`` of them, each with its remaining retries) may still
    go once; then one probe per cooldown.
    """
    breaker, limits = config.breaker, config.limits
    stragglers = limits.per_host * (config.retry.attempts - 1)
    probes = math.ceil(wall / breaker.cooldown)
    return breaker.failure_threshold + stragglers + probes


def check_rows(
    fleet: Sequence[ServiceSpec], figures: RoundFigures, dead: frozenset[int]
) -> list[Check]:
    """Every delivering service on a live host delivered what its server sent."""
    stats = figures.stats
    if stats is None:  # pragma: no cover - run_soak always fills it
        raise RuntimeError("round without server statistics")
    missing: list[str] = []
    healthy = 0
    for spec, outcome in zip(fleet, figures.outcomes, strict=True):
        if spec.host_index in dead or not spec.profile.delivers_rows:
            continue
        healthy += 1
        served = stats.services[spec.index].rows_served
        wanted = expected_rows(spec, CONE.ra, CONE.dec, CONE.radius)
        truncated = spec.profile.behaviour is Behaviour.OVERFLOW
        if (
            outcome.status not in DELIVERED
            or outcome.rows != served
            or (not truncated and outcome.rows != wanted)
        ):
            missing.append(
                f"{spec.name} ({spec.profile.behaviour.value}): {outcome.status.value} "
                f"{outcome.error_type or ''} rows {outcome.rows}, served {served}, sky {wanted}"
            )
    served_total = stats.rows_served
    tripped = Counter(
        spec.host_index
        for spec, outcome in zip(fleet, figures.outcomes, strict=True)
        if spec.host_index not in dead and outcome.error_type == "CircuitOpen"
    )
    detail = f"{healthy - len(missing)}/{healthy} delivered"
    if tripped:
        detail += "; breaker opened on live hosts (services skipped): " + ", ".join(
            f"host {h} ({n})" for h, n in tripped.most_common()
        )
    if missing:
        detail += f"; e.g. {'; '.join(missing[:3])}"
    return [
        Check("every healthy service's rows", not missing and figures.complete, detail),
        Check(
            "rows received = rows served = merged table",
            figures.rows == served_total == figures.table_rows,
            f"{figures.rows} / {served_total} / {figures.table_rows}",
        ),
    ]


def check_hygiene(options: SoakOptions, figures: RoundFigures) -> list[Check]:
    """Descriptors, tasks and server-side connections are back to where they were."""
    return [
        Check(
            "no file-descriptor leak",
            figures.fds_after <= figures.fds_before + options.fd_slack,
            f"{figures.fds_before} before, {figures.fds_after} after",
        ),
        Check(
            "no task leak",
            figures.tasks_after <= figures.tasks_before,
            f"{figures.tasks_before} before, {figures.tasks_after} after the engine closed",
        ),
        Check(
            "no connection left open on the servers",
            figures.server_open_connections == 0,
            f"{figures.server_open_connections} open",
        ),
    ]


def check_dead_hosts(
    fleet: Sequence[ServiceSpec], figures: RoundFigures, config: vosweep.EngineConfig
) -> list[Check]:
    """Dead hosts were dropped by the breaker, not tried service after service."""
    checks = []
    allowance = dead_host_allowance(config, figures.wall)
    by_host: dict[int, list[vosweep.ServiceOutcome]] = {}
    for spec, outcome in zip(fleet, figures.outcomes, strict=True):
        by_host.setdefault(spec.host_index, []).append(outcome)
    dead = [h.index for h in (figures.stats.hosts if figures.stats else ()) if h.dead]
    for host in dead:
        outcomes = by_host.get(host, [])
        attempts = sum(o.attempts for o in outcomes)
        kinds = Counter(o.error_type for o in outcomes)
        skipped = kinds["CircuitOpen"]
        checks.append(
            Check(
                f"breaker spared dead host {host}",
                attempts <= allowance
                and skipped >= len(outcomes) - allowance
                and set(kinds) <= {"CircuitOpen", "TransportError"},
                f"{len(outcomes)} services: {attempts} connection attempts "
                f"(allowed {allowance}), {kinds['TransportError']} TransportError, "
                f"{skipped} CircuitOpen",
            )
        )
    return checks


def check_live_hosts(
    fleet: Sequence[ServiceSpec], figures: RoundFigures, config: vosweep.EngineConfig
) -> list[Check]:
    """Each live host saw at most its requests plus its retry budget (server-side)."""
    stats = figures.stats
    if stats is None:  # pragma: no cover - run_soak always fills it
        raise RuntimeError("round without server statistics")
    sent: Counter[int] = Counter()
    hops: Counter[int] = Counter()
    for spec, outcome in zip(fleet, figures.outcomes, strict=True):
        if outcome.attempts:
            sent[spec.host_index] += 1
            hops[spec.host_index] += redirect_hops(spec, config)
    over: list[str] = []
    retries = 0
    for host in stats.hosts:
        if host.dead:
            continue
        allowed = sent[host.index] + retry_budget(config, sent[host.index]) + hops[host.index]
        retries += max(0, host.requests - sent[host.index] - hops[host.index])
        if host.requests > allowed:
            over.append(f"host {host.index}: {host.requests} > {allowed}")
    live = sum(1 for h in stats.hosts if not h.dead)
    return [
        Check(
            "live hosts within requests + retry budget",
            not over,
            f"{live} hosts, {stats.requests} requests for {sum(sent.values())} services "
            f"({retries} retries)" + (f"; over: {', '.join(over[:3])}" if over else ""),
        )
    ]


def judge_round(report: SoakReport, figures: RoundFigures) -> list[Check]:
    """The checks of one round (its outcomes and server statistics are needed)."""
    options, fleet, config = report.options, report.fleet, report.config
    return [
        *check_rows(fleet, figures, frozenset(options.dead_hosts)),
        *check_hygiene(options, figures),
        *check_dead_hosts(fleet, figures, config),
        *check_live_hosts(fleet, figures, config),
    ]


def judge(report: SoakReport) -> list[Check]:
    """Every check of every round, then the memory trend across rounds."""
    options = report.options
    checks: list[Check] = []
    for number, figures in enumerate(report.rounds, 1):
        found = figures.checks or judge_round(report, figures)
        prefix = f"round {number}: " if len(report.rounds) > 1 else ""
        checks += [Check(prefix + c.name, c.passed, c.detail) for c in found]
    if len(report.rounds) > 1:
        first, last = report.rounds[0].rss_after, report.rounds[-1].rss_after
        objects = [r.objects_after for r in report.rounds]
        checks.append(
            Check(
                "Python objects flat from round to round",
                objects[-1] <= objects[0] * 1.02 + 1000,
                " -> ".join(map(str, objects)) + " live objects after each round",
            )
        )
        checks.append(
            Check(
                "RSS flat from round to round",
                last <= first + options.rss_slack_mb * MB,
                f"{first / MB:.0f} MB after round 1, {last / MB:.0f} MB after round "
                f"{len(report.rounds)} (slack {options.rss_slack_mb:g} MB)",
            )
        )
    checks.append(
        Check(
            "process descriptors back after all rounds",
            report.fds_end <= report.fds_start + options.fd_slack,
            f"{report.fds_start} before, {report.fds_end} after",
        )
    )
    return checks


# --------------------------------------------------------------------------- report


def render(report: SoakReport) -> str:
    """The Markdown report: one row per round, then the checks."""
    options = report.options
    behaviours = Counter(s.profile.behaviour for s in report.fleet)
    failing = sum(n for b, n in behaviours.items() if b in FAILING)
    on_dead = sum(1 for s in report.fleet if s.host_index in options.dead_hosts)
    largest = max(Counter(s.host_index for s in report.fleet).values())
    statuses = list(vosweep.Status)
    lines = [
        "## Soak",
        "",
        (
            f"{options.services} SCS services on {options.hosts} hosts (largest "
            f"{largest}), {failing} failing ({failing / options.services:.1%}: "
            + ", ".join(f"{n} {b.value}" for b, n in behaviours.most_common() if b in FAILING)
            + f"), {on_dead} on {len(options.dead_hosts)} dead hosts; median latency "
            f"{options.latency * 1e3:g} ms, timeout {options.timeout:g} s, "
            f"limits {report.config.limits.per_host}/host {report.config.limits.total} total; "
            + (
                "glibc's default malloc arenas."
                if options.default_arenas
                else "malloc arenas capped at 2 (`vosweep.limit_malloc_arenas`, as the CLI)."
            )
        ),
        "",
        "| round | wall | rows | "
        + " | ".join(s.value for s in statuses)
        + " | peak RSS (sampled) | RSS after | fds before/after | tasks before/after |",
        "|---:|---:|---:|" + "---:|" * len(statuses) + "---:|---:|---:|---:|",
    ]
    for number, r in enumerate(report.rounds, 1):
        lines.append(
            f"| {number} | {r.wall:.1f} s | {r.rows} | "
            + " | ".join(str(r.counts[s]) for s in statuses)
            + f" | {r.rss_peak_sampled / MB:.0f} MB | {r.rss_after / MB:.0f} MB"
            f" | {r.fds_before}/{r.fds_after} | {r.tasks_before}/{r.tasks_after} |"
        )
    lines += [
        "",
        (
            f"Peak RSS of the client process {report.peak_rss / MB:.0f} MB; whole soak "
            f"{report.total_wall:.0f} s (simulator start included)."
        ),
        "",
        "| check | result | figures |",
        "|---|---|---|",
    ]
    lines += [
        f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |" for c in report.checks
    ]
    lines.append("")
    return "\n".join(lines)


def _hosts(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def options_from(argv: Sequence[str] | None = None) -> SoakOptions:
    """Read the command line (defaults: `SoakOptions`)."""
    default = SoakOptions()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=default.services)
    parser.add_argument("--hosts", type=int, default=default.hosts)
    parser.add_argument(
        "--dead-hosts",
        type=_hosts,
        default=default.dead_hosts,
        help="comma-separated host indices refusing connections (host k is the k-th largest)",
    )
    parser.add_argument("--failure-share", type=float, default=default.failure_share)
    parser.add_argument("--latency", type=float, default=default.latency, help="median, seconds")
    parser.add_argument("--timeout", type=float, default=default.timeout)
    parser.add_argument("--rounds", type=int, default=default.rounds)
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument(
        "--default-arenas",
        action="store_true",
        help="keep glibc's default malloc arenas (shows the fragmentation the cap avoids)",
    )
    args = parser.parse_args(argv)
    return SoakOptions(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    options = options_from(argv)
    if not options.default_arenas:
        # As the vosweep command does: glibc's per-thread arenas fragment (see _memory).
        vosweep.limit_malloc_arenas()
    report = run_soak(options)
    text = render(report)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.md").write_text(text + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
