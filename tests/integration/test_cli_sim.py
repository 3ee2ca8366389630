"""The ``vosweep`` command end to end: a child process sweeping a simulated VO on loopback.

The simulator runs in the test's event loop; the command runs as ``python -m vosweep.cli``
(its own ``anyio.run``), with ``IVOA_REGISTRY`` pointing at the simulated registry so that
nothing can reach a real one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from astropy.table import Table

from vosweep.services import Protocol
from vosweep.testing import Behaviour, RegistryProfile, SimulatedVO, build_fleet, override_fleet

pytestmark = pytest.mark.anyio

CONE = ("--ra", "83.63", "--dec", "22.01", "--radius", "0.1")
FAST = ("--timeout", "3", "--no-progress")


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


def sim_of(fleet: list[Any], *, registry: bool = True) -> SimulatedVO:
    return SimulatedVO(
        fleet, registry=RegistryProfile(n_resources=20, seed=2) if registry else False
    )


async def vosweep(sim: SimulatedVO, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVOA_REGISTRY": sim.registry_url if sim.registry_urls else ""}
    done = await anyio.run_process(
        [sys.executable, "-m", "vosweep.cli", *map(str, args)], check=False, env=env
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("out.vot", "votable"),
        ("out.fits", "fits"),
        ("out.parquet", "parquet"),
        ("out.ecsv", "ascii.ecsv"),
        ("out.csv", "ascii.csv"),
    ],
)
async def test_registry_driven_cone_writes_each_format(tmp_path: Path, name: str, fmt: str):
    async with sim_of(build_fleet(5, 2, seed=3, latency_median=0.01)) as sim:
        output, outcomes = tmp_path / name, tmp_path / "outcomes.ecsv"
        done = await vosweep(
            sim, "cone", *CONE, *FAST, "--keywords", "fleet", "--registry", sim.registry_url,
            "-o", output, "--outcomes", outcomes,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Registry: 5 resources, 5 services to ask" in done.stdout
    if fmt == "parquet":  # astropy's Parquet reader wants pandas; pyarrow alone reads it
        import pyarrow.parquet as pq  # noqa: PLC0415

        table = Table(pq.read_table(output).to_pydict())
    else:
        table = Table.read(output, format=fmt)
    record = Table.read(outcomes, format="ascii.ecsv")
    assert len(record) == 5
    assert set(record["status"]) <= {"ok", "empty"}
    assert "ok" in set(record["status"])
    assert len(table) == sum(record["rows"]) > 0
    served = {spec.url for spec in sim.services}
    assert set(table["service_url"]) <= served


async def test_some_failed_is_exit_3_with_one_json_event_per_service(tmp_path: Path):
    fleet = override_fleet(
        build_fleet(6, 2, seed=4, latency_median=0.01), services={2: Behaviour.HTTP_500}
    )
    async with sim_of(fleet) as sim:
        logs, output = tmp_path / "sweep.jsonl", tmp_path / "rows.csv"
        urls = [service.url for service in sim.services]
        done = await vosweep(
            sim, "cone", *CONE, *FAST, *urls, "--errors", "retry1",
            "--log-format", "json", "--log-file", logs, "-o", output,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    events = [json.loads(line) for line in logs.read_text().splitlines()]
    services = [e for e in events if e["event"] == "vosweep.service.done"]
    assert sorted(e["url"].split("?")[0] for e in services) == sorted(urls)
    failed = [e for e in services if e["status"] == "error"]
    assert len(failed) == 1
    assert failed[0]["url"].split("?")[0] == urls[2]
    assert failed[0]["http_status"] == 500
    assert failed[0]["attempts"] == 2
    assert failed[0]["level"] == "warning"
    assert all(e["timestamp"].endswith("Z") and "elapsed" in e for e in services)
    [summary] = [e for e in events if e["event"] == "vosweep.fanout.done"]
    assert events[-1] is summary
    assert (summary["services"], summary["ok"], summary["error"]) == (6, 5, 1)
    assert len(Table.read(output, format="ascii.csv")) == summary["rows"] > 0


async def test_nothing_delivered_is_exit_4(tmp_path: Path):
    fleet = override_fleet(build_fleet(3, 1, seed=5), hosts={0: Behaviour.HTTP_500})
    async with sim_of(fleet) as sim:
        output = tmp_path / "none.vot"
        failed = await vosweep(sim, "cone", *CONE, *FAST, "--keywords", "fleet", "-o", output)
        nomatch = await vosweep(
            sim, "cone", *CONE, *FAST, "--keywords", "nosuchwordanywhere", "-o", tmp_path / "x.vot"
        )
    assert failed.returncode == 4, failed.stderr
    assert "Traceback" not in failed.stderr
    assert len(Table.read(output, format="votable")) == 0  # written: the outcomes say why
    assert nomatch.returncode == 4, nomatch.stderr
    assert "no services to ask" in nomatch.stderr
    assert not (tmp_path / "x.vot").exists()


async def test_discover_prints_and_writes_the_resources(tmp_path: Path):
    async with sim_of(build_fleet(4, 1, seed=6)) as sim:
        output = tmp_path / "found.ecsv"
        done = await vosweep(
            sim, "discover", "--servicetype", "scs", "--keywords", "fleet", "-o", output
        )
        expected = sorted(service.spec.ivoid for service in sim.services)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"4 resources from {sim.registry_url}")
    assert "short_name" in done.stdout
    table = Table.read(output, format="ascii.ecsv")
    assert sorted(table["ivoid"]) == expected


async def test_discover_without_any_match_is_exit_4():
    async with sim_of(build_fleet(1, 1)) as sim:
        done = await vosweep(sim, "discover", "--keywords", "nosuchwordanywhere")
    assert done.returncode == 4, done.stderr
    assert done.stdout.startswith("0 resources")


async def test_tap_sends_adql_from_a_file(tmp_path: Path):
    adql = tmp_path / "query.adql"
    adql.write_text("SELECT TOP 5 source_id, ra, dec FROM cat.sources")
    fleet = build_fleet(2, 1, seed=7, latency_median=0.01, protocol=Protocol.TAP)
    async with sim_of(fleet) as sim:
        urls = [service.url for service in sim.services]
        done = await vosweep(
            sim, "tap", *FAST, "--adql-file", adql, *urls, "--mode", "sync", "-o",
            tmp_path / "t.parquet",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = Table(pq.read_table(tmp_path / "t.parquet").to_pydict())
    assert len(table) == 10
    assert set(table["service_url"]) == set(urls)


@pytest.mark.parametrize(
    ("protocol", "command", "rows"),
    [
        (Protocol.SIA2, ("sia", "--pos", "83.63 22.01", "--size", "0.2"), "out.vot"),
        # No --output for SSA: FanoutResult.table fails on these answers (stack.py bug).
        (Protocol.SSA, ("ssa", "--ra", "83.63", "--dec", "22.01", "--diameter", "2"), None),
    ],
)
async def test_sia_and_ssa_through_the_registry(
    tmp_path: Path, protocol: Protocol, command: tuple[str, ...], rows: str | None
):
    fleet = build_fleet(3, 1, seed=8, latency_median=0.01, protocol=protocol)
    output = ("-o", tmp_path / rows) if rows else ()
    async with sim_of(fleet) as sim:
        outcomes = tmp_path / "outcomes.vot"
        done = await vosweep(
            sim, *command, *FAST, "--keywords", "fleet", "--outcomes", outcomes, *output
        )
        urls = {service.url for service in sim.services}
    assert done.returncode == 0, done.stderr
    assert "3 services to ask" in done.stdout
    record = Table.read(outcomes, format="votable")
    assert {str(url) for url in record["access_url"]} == urls
    assert sum(record["rows"]) > 0
    if rows:
        table = Table.read(tmp_path / rows, format="votable")
        assert len(table) == sum(record["rows"])


async def test_progress_counter_on_stderr(tmp_path: Path):
    """--progress forces the bar when stderr is no terminal; its last state counts all."""
    async with sim_of(build_fleet(4, 1, seed=9, latency_median=0.01)) as sim:
        urls = [service.url for service in sim.services]
        done = await vosweep(sim, "cone", *CONE, "--timeout", "3", "--progress", *urls)
    assert done.returncode == 0, done.stderr
    assert "4/4" in done.stderr
    [postfix] = re.findall(r"4/4 .*?((?:\w+=\d+ ?)+)", done.stderr)
    counts = dict(item.split("=") for item in postfix.split())
    assert set(counts) <= {"ok", "empty"}
    assert sum(map(int, counts.values())) == 4


async def test_checkpoint_then_resume_asks_only_the_unfinished(tmp_path: Path):
    """A sweep cut by its deadline (exit 3) is finished by ``resume`` (exit 0)."""
    fleet = override_fleet(
        build_fleet(4, 2, seed=10, latency_median=0.01), services={3: {"latency": 2.5}}
    )
    checkpoint, first, second = tmp_path / "ck.sqlite", tmp_path / "a.ecsv", tmp_path / "b.ecsv"
    async with sim_of(fleet) as sim:
        urls = [service.url for service in sim.services]
        cut = await vosweep(
            sim, "cone", *CONE, *FAST, *urls, "--deadline", "1", "--checkpoint", checkpoint,
            "-o", first,
        )  # fmt: skip
        before = sim.stats()
        outcomes = tmp_path / "outcomes.ecsv"
        resumed = await vosweep(
            sim, "resume", checkpoint, *FAST, "-o", second, "--outcomes", outcomes
        )
        after = sim.stats()
    assert cut.returncode == 3, cut.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming the cone" in resumed.stdout
    assert "3 services restored from the checkpoint" in resumed.stdout
    # Only the slow service was asked again.
    asked = [a.requests - b.requests for a, b in zip(after.services, before.services, strict=True)]
    assert asked == [0, 0, 0, 1]
    record = Table.read(outcomes, format="ascii.ecsv")
    assert record["status"][3] in {"ok", "empty"}
    rows_first, rows_second = Table.read(first), Table.read(second)
    assert set(rows_first["service_url"]) <= set(urls[:3])
    assert len(rows_second) == len(rows_first) + record["rows"][3]
    assert len(rows_second) == sum(record["rows"])


async def test_obscore_through_the_registry_with_rows_on_disk(tmp_path: Path):
    fleet = build_fleet(3, 1, seed=7, latency_median=0.01, protocol=Protocol.TAP)
    async with sim_of(fleet) as sim:
        output = tmp_path / "obs.vot"
        done = await vosweep(
            sim, "obscore", *FAST, "--keywords", "fleet", "--dataproduct-type", "image",
            "--query-maxrec", "5", "--checkpoint", tmp_path / "ck.sqlite", "--rows-on-disk",
            "-o", output,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Registry: 3 resources, 3 services to ask" in done.stdout
    table = Table.read(output, format="votable")
    assert len(table) == 15
    assert set(table["dataproduct_type"]) == {"image"}
    assert "s_ra" in table.colnames


async def test_epntap_asks_every_table_found(tmp_path: Path):
    fleet = build_fleet(2, 1, seed=7, latency_median=0.01, protocol=Protocol.TAP)
    async with sim_of(fleet) as sim:
        output = tmp_path / "epn.ecsv"
        done = await vosweep(sim, "epntap", *FAST, "--target-name", "Mars", "-o", output)
    assert done.returncode in {0, 3}, done.stderr
    assert "EPN-TAP tables to ask" in done.stdout
    table = Table.read(output, format="ascii.ecsv")
    assert len(table) > 0
    assert all("Mars" in str(name) for name in table["target_name"])


async def test_ctrl_c_is_exit_130_without_traceback():
    fleet = override_fleet(build_fleet(2, 1, seed=11), services={1: Behaviour.HANG})
    async with sim_of(fleet, registry=False) as sim:
        urls = [service.url for service in sim.services]
        command = [sys.executable, "-m", "vosweep.cli", "cone", *CONE, *FAST, *urls]
        async with await anyio.open_process(command) as process:
            assert process.stderr is not None
            with anyio.fail_after(30):  # until the hung service is being waited for
                while not sim.stats().services[1].requests:
                    await anyio.sleep(0.05)
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(20):
                code = await process.wait()
                err = (await process.stderr.receive(65536)).decode()
    assert code == 130, err
    assert "vosweep: interrupted" in err
    assert "Traceback" not in err
