"""Fan-out of one cone to a simulated VO: vosweep vs its ideal bound vs pyvo loops.

The simulated VO runs in a child process (its own core), the clients in this one. Every
client gets the same per-request timeout. Reported:

* vosweep's wall time against the ideal lower bound for the configured limits: the larger
  of (max over hosts of the host's summed service time / per-host cap) and the longest
  single service chain (latency x attempts + mandated waits; a hang costs the timeout);
* pyvo's sequential loop (the seeds' pattern; a stratified estimate unless --full)
  and a 32-thread pyvo pool, with the peak per-host concurrency the servers saw;
* event-loop lag during the vosweep sweep (a 5 ms ticker's worst and p99 delay);
* client CPU per request on a zero-latency fleet, vosweep vs pyvo.

    python benchmarks/bench_fanout.py [--services 1000] [--hosts 20] [--timeout 10] [--full]
"""

from __future__ import annotations

import argparse
import heapq
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pyvo
import requests

import vosweep
from vosweep.testing import Behaviour, ServiceSpec, SimProcess, build_fleet, override_fleet

RESULTS = Path(__file__).parent / "results"
CONE = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)

#: "A few % hangs and failures", plus the benign oddities every sweep meets.
MIX = {
    Behaviour.HANG: 0.03,
    Behaviour.HTTP_500: 0.01,
    Behaviour.RESET: 0.005,
    Behaviour.QUERY_ERROR: 0.005,
    Behaviour.MALFORMED: 0.005,
    Behaviour.OVERFLOW: 0.01,
    Behaviour.EMPTY: 0.05,
}


# --------------------------------------------------------------------------- ideal bound


def service_time(
    spec: ServiceSpec, timeout: float, retry: vosweep.RetryPolicy
) -> tuple[float, float]:
    """(time the service's host spends on it, shortest possible chain for it)."""
    p = spec.profile
    if p.behaviour in (Behaviour.HANG, Behaviour.DRIP):
        return timeout, timeout
    if p.behaviour in (Behaviour.HTTP_500, Behaviour.RESET):
        attempts = retry.attempts
        waits = sum(min(retry.wait_max, retry.wait_initial * 2**k) for k in range(attempts - 1))
        return attempts * p.latency, attempts * p.latency + waits
    return p.latency, p.latency


def ideal_bound(
    fleet: Sequence[ServiceSpec], timeout: float, per_host: int, retry: vosweep.RetryPolicy
) -> float:
    load: dict[int, float] = {}
    longest = 0.0
    for spec in fleet:
        busy, chain = service_time(spec, timeout, retry)
        load[spec.host_index] = load.get(spec.host_index, 0.0) + busy
        longest = max(longest, chain)
    return max(*(v / per_host for v in load.values()), longest)


def fifo_schedule(
    fleet: Sequence[ServiceSpec], timeout: float, per_host: int, retry: vosweep.RetryPolicy
) -> float:
    """Makespan of any work-conserving scheduler that, like every real client, cannot know
    which service will hang: each host's slots take services in target order.

    The gap between this and `ideal_bound` is the price of not knowing the future (a
    hang started late runs its full timeout while the host's other slots sit idle); the
    gap between vosweep and this is vosweep's own overhead.
    """
    hosts: dict[int, list[float]] = {}
    makespan = 0.0
    for spec in fleet:
        busy, chain = service_time(spec, timeout, retry)
        slots = hosts.setdefault(spec.host_index, [0.0] * per_host)
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + busy)
        makespan = max(makespan, start + busy, chain)
    return makespan


# --------------------------------------------------------------------------- vosweep


async def run_vosweep(
    targets: list[vosweep.Service], config: vosweep.EngineConfig
) -> dict[str, Any]:
    lags: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await anyio.sleep(0.005)
            lags.append(time.perf_counter() - t0 - 0.005)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with vosweep.Engine(config) as engine:
            result = await engine.fanout(targets, CONE)
        done.set()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    lags.sort()
    return {
        "wall": wall,
        "cpu": cpu,
        "rows": result.rows,
        "counts": {k.value: v for k, v in result.counts().items() if v},
        "lag_max": lags[-1] if lags else 0.0,
        "lag_p99": lags[int(len(lags) * 0.99)] if lags else 0.0,
    }


# --------------------------------------------------------------------------- pyvo


class _TimeoutSession(requests.Session):
    """pyvo sets no timeout (it can hang forever); give it the same one as vosweep."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = "pyvo-benchmark (IVOA-test)"

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def pyvo_one(url: str, timeout: float) -> int:
    """One pyvo cone search; rows or -1 on any failure (pyvo's own loops do the same)."""
    session = _TimeoutSession(timeout)
    try:
        service = pyvo.dal.SCSService(url, session=session)
        return len(service.search((CONE.ra, CONE.dec), CONE.radius))
    except Exception:
        return -1
    finally:
        session.close()


def run_pyvo_sequential(urls: Sequence[str], timeout: float) -> float:
    t0 = time.perf_counter()
    for url in urls:
        pyvo_one(url, timeout)
    return time.perf_counter() - t0


def estimate_pyvo_sequential(
    fleet: Sequence[ServiceSpec], urls: Sequence[str], timeout: float, per_kind: int
) -> tuple[float, int]:
    """Stratified estimate of the sequential loop: time a few services of each behaviour,
    then weight each behaviour's mean by its count (a uniform sample of 100 would catch
    anywhere between 0 and 6 of the 30 hangs, and hangs are most of the cost)."""
    by_kind: dict[Behaviour, list[str]] = {}
    for spec, url in zip(fleet, urls, strict=True):
        by_kind.setdefault(spec.profile.behaviour, []).append(url)
    total, timed = 0.0, 0
    for group in by_kind.values():
        sample = group[:: max(1, len(group) // per_kind)][:per_kind]
        total += run_pyvo_sequential(sample, timeout) / len(sample) * len(group)
        timed += len(sample)
    return total, timed


def run_pyvo_threads(urls: Sequence[str], timeout: float, threads: int = 32) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda u: pyvo_one(u, timeout), urls))
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- scenarios


def sweep_scenario(
    args: argparse.Namespace, main_share: float, skew: float, label: str
) -> list[str]:
    fleet = build_fleet(
        args.services,
        args.hosts,
        seed=2026,
        latency_median=0.2,
        latency_sigma=0.6,
        mix=MIX,
        main_host_share=main_share,
        host_skew=skew,
    )
    fleet = override_fleet(
        fleet,
        services={
            s.index: {"max_hang": 3 * args.timeout}
            for s in fleet
            if s.profile.behaviour is Behaviour.HANG
        },
    )
    timeouts = vosweep.Timeouts(connect=args.timeout, read=args.timeout, attempt=args.timeout)
    config = vosweep.EngineConfig(
        timeouts=timeouts, user_agent_purpose="test", breaker=vosweep.BreakerPolicy(enabled=False)
    )
    ideal = ideal_bound(fleet, args.timeout, config.limits.per_host, config.retry)
    fifo = fifo_schedule(fleet, args.timeout, config.limits.per_host, config.retry)
    lines: list[str] = []
    with SimProcess(fleet) as sim:
        targets = sim.targets()
        urls = [t.access_url for t in targets]
        sim.reset_stats()
        v = anyio.run(run_vosweep, targets, config)
        v_peak = sim.stats().max_in_flight_per_host
        if args.skip_pyvo:
            seq = thr = thr_peak = None
            seq_note = "skipped"
        else:
            sim.reset_stats()
            if args.full:
                seq, seq_note = run_pyvo_sequential(urls, args.timeout), "measured"
            else:
                seq, timed = estimate_pyvo_sequential(fleet, urls, args.timeout, args.per_kind)
                seq_note = f"stratified estimate from {timed} services"
            sim.reset_stats()
            thr = run_pyvo_threads(urls, args.timeout)
            thr_peak = sim.stats().max_in_flight_per_host
    host_share = max(np.bincount([s.host_index for s in fleet])) / len(fleet)
    lines += [
        (
            f"### {label}: {args.services} services on {args.hosts} hosts "
            f"(largest host {host_share:.0%}), timeout {args.timeout:g} s"
        ),
        "",
        "| client | wall | vs ideal | vosweep speed-up | peak requests on one host |",
        "|---|---:|---:|---:|---:|",
        f"| ideal lower bound (per-host cap {config.limits.per_host}) | {ideal:.1f} s | 1.00 | | |",
        f"| best schedule without foresight (simulated) | {fifo:.1f} s | {fifo / ideal:.2f} | | |",
        f"| **vosweep** | **{v['wall']:.1f} s** | **{v['wall'] / ideal:.2f}** | 1x | {v_peak} |",
    ]
    if seq is not None:
        lines.append(
            f"| pyvo sequential loop ({seq_note}) | {seq:.0f} s | {seq / ideal:.1f} | "
            f"**{seq / v['wall']:.0f}x** | 1 |"
        )
        lines.append(
            f"| pyvo + 32 threads | {thr:.1f} s | {thr / ideal:.2f} | "
            f"{thr / v['wall']:.1f}x | {thr_peak} |"
        )
    lines += [
        "",
        f"vosweep / best schedule without foresight: {v['wall'] / fifo:.2f}.",
        "",
        (
            f"vosweep outcomes: {v['counts']}; rows {v['rows']}; client CPU {v['cpu']:.1f} s; "
            f"event-loop lag max {v['lag_max'] * 1e3:.1f} ms, p99 {v['lag_p99'] * 1e3:.1f} ms."
        ),
        "",
    ]
    return lines


def _stub_parser() -> Any:
    """Replace SCS parsing by a no-op, to time the engine and HTTP alone (diagnostic)."""
    import dataclasses  # noqa: PLC0415

    from vosweep.protocols import PROTOCOLS  # noqa: PLC0415
    from vosweep.protocols.base import Parsed  # noqa: PLC0415

    original = PROTOCOLS[vosweep.Protocol.SCS]
    PROTOCOLS[vosweep.Protocol.SCS] = dataclasses.replace(
        original,
        parse=lambda _response, max_bytes: Parsed([]),  # noqa: ARG005
    )
    return original


def _astropy_decoder() -> Any:
    """Make cone-search parsing use astropy's decoder (``fast=False``); return the original."""
    import functools  # noqa: PLC0415

    from vosweep.protocols import scs  # noqa: PLC0415

    original = scs.parse_votable
    scs.parse_votable = functools.partial(original, fast=False)  # type: ignore[assignment]
    return original


def overhead_scenario(args: argparse.Namespace) -> list[str]:
    n = args.zero_services
    fleet = build_fleet(
        n, 10, seed=7, latency_median=0.0, latency_sigma=0.0, density_range=(1.0, 300.0)
    )
    config = vosweep.EngineConfig(user_agent_purpose="test")
    with SimProcess(fleet) as sim:
        targets = sim.targets()
        v = anyio.run(run_vosweep, targets, config)
        from vosweep.protocols import PROTOCOLS  # noqa: PLC0415

        original = _stub_parser()
        try:
            stub = anyio.run(run_vosweep, targets, config)
        finally:
            PROTOCOLS[vosweep.Protocol.SCS] = original
        from vosweep.protocols import scs  # noqa: PLC0415

        decoder = _astropy_decoder()
        try:
            slow = anyio.run(run_vosweep, targets, config)
        finally:
            scs.parse_votable = decoder  # type: ignore[assignment]
        sample = [t.access_url for t in targets][: args.zero_sample]
        t0 = time.process_time()
        w0 = time.perf_counter()
        if not args.skip_pyvo:
            run_pyvo_sequential(sample, args.timeout)
        pyvo_cpu = (time.process_time() - t0) / len(sample)
        pyvo_wall = (time.perf_counter() - w0) / len(sample)
    return [
        f"### Overhead per request: zero-latency fleet, {n} services on 10 hosts, 0-3 rows each",
        "",
        "| client | wall per request | client CPU per request |",
        "|---|---:|---:|",
        f"| vosweep | {v['wall'] / n * 1e6:.0f} us | {v['cpu'] / n * 1e6:.0f} us |",
        (
            f"| vosweep with astropy's decoder (`fast=False`) | "
            f"{slow['wall'] / n * 1e6:.0f} us | {slow['cpu'] / n * 1e6:.0f} us |"
        ),
        (
            f"| vosweep, parsing stubbed out (engine + HTTP alone) | "
            f"{stub['wall'] / n * 1e6:.0f} us | {stub['cpu'] / n * 1e6:.0f} us |"
        ),
        (
            f"| pyvo sequential ({len(sample)} requests) | {pyvo_wall * 1e6:.0f} us | "
            f"{pyvo_cpu * 1e6:.0f} us |"
        ),
        "",
        (
            f"Event-loop lag during that sweep: max {v['lag_max'] * 1e3:.1f} ms, "
            f"p99 {v['lag_p99'] * 1e3:.1f} ms."
        ),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument(
        "--per-kind",
        type=int,
        default=8,
        help="services timed per behaviour for the sequential pyvo estimate (see --full)",
    )
    parser.add_argument("--full", action="store_true", help="run pyvo's sequential loop in full")
    parser.add_argument("--skip-pyvo", action="store_true")
    parser.add_argument("--zero-services", type=int, default=2000)
    parser.add_argument("--zero-sample", type=int, default=300)
    parser.add_argument("--scenarios", default="uniform,skewed,overhead")
    args = parser.parse_args()
    lines = ["## Fan-out benchmark", ""]
    chosen = args.scenarios.split(",")
    if "uniform" in chosen:
        share = 1 / args.hosts
        lines += sweep_scenario(args, main_share=share, skew=0.0, label="Uniform fleet")
    if "skewed" in chosen:
        lines += sweep_scenario(args, main_share=0.35, skew=1.0, label="VizieR-skewed fleet")
    if "overhead" in chosen:
        lines += overhead_scenario(args)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fanout.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
