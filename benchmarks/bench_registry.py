"""Discovery plus table metadata for many resources: round trips and wall time, vosweep vs pyvo.

A simulated RegTAP registry runs in a child process, with a fixed latency per request
(a registry is one network round trip away). Both clients run the same searches (one
whose whole answer is about 1,200 resources, one cut at maxrec=1000), then fetch every
found resource's tables and columns:

* vosweep: ``Engine.discover`` (capabilities, a schema probe, the search, batched
  interfaces/subjects/identifiers) then ``RegistryResults.get_tables()`` (batched);
* pyvo (the baseline, same process and registry): ``pyvo.registry.search`` then
  ``resource.get_tables()`` for each resource, as its documentation shows.

Round trips are counted on the client side (vosweep's counter; pyvo's HTTP requests
through ``requests``). Results are printed and written to results/registry.md.

    python benchmarks/bench_registry.py [--registry-size 5000] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Self

import anyio
import requests
from pyvo import registry as pyvo_registry
from pyvo.registry import rtcons

import vosweep
from vosweep import registry
from vosweep.testing import RegistryProfile, SimProcess

RESULTS = Path(__file__).parent / "results"
#: (label, search keywords): a whole answer of about 1,200 resources, then one cut at maxrec.
SEARCHES: list[tuple[str, dict[str, Any]]] = [
    ("whole answer", {"waveband": "infrared"}),
    ("cut at maxrec", {"servicetype": ["scs", "tap", "sia", "ssa"], "maxrec": 1000}),
]
MESSENGERS = {"radio", "millimeter", "infrared", "optical", "uv", "euv", "x-ray", "gamma-ray"}


class CountingSession:
    """Counts the HTTP requests pyvo sends (it uses ``requests`` underneath)."""

    def __init__(self) -> None:
        self.count = 0
        self._original = requests.Session.request

    def __enter__(self) -> Self:
        counter = self

        def request(session: requests.Session, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return counter._original(session, *args, **kwargs)

        requests.Session.request = request  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        requests.Session.request = self._original  # type: ignore[method-assign]


async def vosweep_run(url: str, search: dict[str, Any]) -> dict[str, float]:
    registry.clear_cache()
    config = vosweep.RegistryConfig(endpoints=(url,))
    async with vosweep.Engine(registry=config, user_agent_purpose="test") as engine:
        t0 = time.perf_counter()
        found = await engine.discover(**search)
        t1 = time.perf_counter()
        discovery_trips = engine.registry.round_trips
        tables = await found.get_tables()
        t2 = time.perf_counter()
        trips = engine.registry.round_trips
    n_tables = sum(len(t) for t in tables.values())
    n_columns = sum(len(t.columns) for by_name in tables.values() for t in by_name.values())
    return report(len(found), n_tables, n_columns, (t0, t1, t2), (discovery_trips, trips))


def report(
    resources: int, tables: int, columns: int, times: tuple[float, ...], trips: tuple[int, int]
) -> dict[str, float]:
    """One client's row: counts, round trips, and the times of its two phases."""
    t0, t1, t2 = times
    return {
        "resources": resources,
        "tables": tables,
        "columns": columns,
        "discovery_s": t1 - t0,
        "total_s": t2 - t0,
        "discovery_trips": trips[0],
        "trips": trips[1],
    }


def pyvo_run(url: str, search: dict[str, Any]) -> dict[str, float]:
    rtcons.Waveband._legal_terms = set(MESSENGERS)  # no vocabulary download
    pyvo_registry.choose_RegTAP_service(url)
    with CountingSession() as counter:
        t0 = time.perf_counter()
        found = pyvo_registry.search(**search)
        t1 = time.perf_counter()
        discovery_trips = counter.count
        n_tables = n_columns = 0
        for resource in found:
            tables = resource.get_tables()
            n_tables += len(tables)
            n_columns += sum(len(table.columns) for table in tables.values())
        t2 = time.perf_counter()
    return report(len(found), n_tables, n_columns, (t0, t1, t2), (discovery_trips, counter.count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--registry-size", type=int, default=5000, help="records in the registry")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per registry request")
    args = parser.parse_args()
    profile = RegistryProfile(n_resources=args.registry_size, seed=1, latency=args.latency)
    lines = [
        (
            f"Discovery + table metadata on a simulated registry of {args.registry_size}"
            f" records, {args.latency * 1000:.0f} ms per request (child process);"
            " vosweep batch_size 300."
        ),
        "",
        (
            "| search | client | resources | tables | columns | round trips (discovery)"
            " | round trips (total) | discovery | total |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    with SimProcess(n_services=4, n_hosts=1, registry=profile) as sim:
        url = sim.registry_url
        for label, search in SEARCHES:
            mine = anyio.run(vosweep_run, url, search)
            theirs = pyvo_run(url, search)
            shown = ", ".join(f"{key}={value}" for key, value in search.items())
            for name, run in (("vosweep", mine), ("pyvo 1.9.1", theirs)):
                lines.append(
                    f"| {label}: `{shown}` | {name} | {run['resources']:.0f} | {run['tables']:.0f}"
                    f" | {run['columns']:.0f} | {run['discovery_trips']:.0f} | {run['trips']:.0f}"
                    f" | {run['discovery_s']:.2f} s | {run['total_s']:.2f} s |"
                )
            ratios.append(
                f"{label}: pyvo needs {theirs['trips'] / mine['trips']:.0f}x the round trips"
                f" and {theirs['total_s'] / mine['total_s']:.1f}x the wall time."
            )
    text = "\n".join([*lines, "", *ratios])
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
