"""Checkpointed sweeps against the simulated VO: killed with SIGKILL, resumed, nothing lost.

The kill test runs the sweep in a real child process (tests/integration/checkpoint_child.py)
against servers started here, kills it once the store holds some but not all services,
resumes in this process and checks the rows against an uninterrupted run, and the
server-side counters against "finished services are not asked again".
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from astropy.table import Table

import vosweep
from vosweep.errors import UsageError
from vosweep.outcomes import Status
from vosweep.testing import Behaviour, SimulatedVO, build_fleet, override_fleet

pytestmark = pytest.mark.anyio

CHILD = Path(__file__).with_name("checkpoint_child.py")
CONE = vosweep.Cone(ra=150.0, dec=2.0, radius=0.05)


def fleet(n: int = 36) -> list[vosweep.testing.ServiceSpec]:
    """Slowish services (so a kill lands mid-sweep), a few failing for good."""
    built = build_fleet(
        n, 4, seed=11, latency_median=0.35, latency_sigma=0.2, density_range=(2000.0, 20000.0)
    )
    return override_fleet(
        built,
        services={
            3: Behaviour.HTTP_500,
            8: Behaviour.EMPTY,
            13: {"behaviour": Behaviour.QUERY_ERROR},
        },
    )


def config(per_host: int = 1) -> vosweep.EngineConfig:
    limits = vosweep.Limits(total=4, per_host=per_host)
    return vosweep.EngineConfig(limits=limits, freeze_gc=False)


def row_set(table: Table) -> list[tuple[str, ...]]:
    """Rows as sorted text tuples (a multiset: duplicates would show)."""
    names = sorted(table.colnames)
    columns = []
    for name in names:
        column = table[name]
        mask = np.asarray(getattr(column, "mask", np.zeros(len(column), bool)))
        if mask.ndim > 1:
            mask = mask.reshape(len(column), -1).all(axis=1)
        # VOTable has no null for text: an empty string is the masked value there.
        null = "" if column.dtype.kind in "USO" else "--"
        columns.append([null if m else str(v) for v, m in zip(column.tolist(), mask, strict=True)])
    return sorted(zip(*columns, strict=True))


def stored_targets(path: Path, *, writer_alive: bool = True) -> set[int]:
    """Target indices the store holds: read-only while the sweep may be writing; after it
    died, read-write, which lets SQLite recover its write-ahead log as any resume would."""
    if not path.exists():
        return set()
    where = f"file:{path}?mode=ro" if writer_alive else f"file:{path}"
    try:
        with sqlite3.connect(where, uri=True, timeout=5) as db:
            found = {t for (t,) in db.execute("SELECT target FROM outcome")}
        db.close()
    except sqlite3.OperationalError:
        return set()  # created, schema not written yet
    return found


def requests(sim: SimulatedVO) -> list[int]:
    return [s.requests for s in sim.stats().services]


async def test_sigkilled_sweep_resumes_exactly(tmp_path: Path):
    async with SimulatedVO(fleet()) as sim:
        targets = sim.targets()
        targets.append(targets[0])  # a duplicate target: skipped, never asked twice
        checkpoint = tmp_path / "sweep.sqlite"
        spec_file = tmp_path / "spec.json"
        spec_file.write_text(
            json.dumps(
                {
                    "services": [t.model_dump(mode="json") for t in targets],
                    "cone": CONE.model_dump(mode="json"),
                    "config": config().model_dump(mode="json"),
                    "checkpoint": str(checkpoint),
                }
            ),
            encoding="utf-8",
        )
        child = await anyio.open_process(
            [sys.executable, str(CHILD), str(spec_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while len(stored_targets(checkpoint)) < 8:
                assert child.returncode is None, "the child ended before the kill"
                assert time.monotonic() < deadline, "the child stored nothing in 20 s"
                await anyio.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.returncode is None:
                child.kill()
            with anyio.fail_after(10):
                await child.wait()
            await child.aclose()
        assert child.returncode == -signal.SIGKILL
        finished = stored_targets(checkpoint, writer_alive=False)
        assert 8 <= len(finished) < len(targets), "the kill must land mid-sweep"
        before = requests(sim)

        async with vosweep.Engine(config()) as engine:
            resumed = await engine.resume(checkpoint)
        after = requests(sim)
        asked_again = [i for i in finished if i < len(before) and after[i] != before[i]]
        assert asked_again == [], "finished services were asked again"
        assert resumed.restored == len(finished)
        assert resumed.complete
        assert len(resumed.outcomes) == len(targets)
        assert [o.service for o in resumed.outcomes] == targets
        assert resumed.outcomes[-1].status is Status.SKIPPED
        assert resumed.outcomes[3].status is Status.ERROR

        async with vosweep.Engine(config()) as engine:
            whole = await engine.fanout(targets, CONE)
        assert [o.status for o in resumed.outcomes] == [o.status for o in whole.outcomes]
        assert [o.rows for o in resumed.outcomes] == [o.rows for o in whole.outcomes]
        assert whole.rows > 0
        assert row_set(resumed.table) == row_set(whole.table)

        # A third run has nothing left to do: nothing is sent at all.
        settled = requests(sim)
        async with vosweep.Engine(config()) as engine:
            again = await engine.resume(checkpoint)
        assert requests(sim) == settled
        assert again.restored == len(targets)
        assert row_set(again.table) == row_set(whole.table)


async def test_deadline_cut_then_resume_and_retry_failed(tmp_path: Path):
    """Cancelled services are asked on resume; failed ones only with retry_failed."""
    specs = override_fleet(
        build_fleet(12, 3, seed=2, latency_median=0.05, latency_sigma=0.1),
        services={
            1: Behaviour.HTTP_500,
            5: {"behaviour": Behaviour.HANG, "max_hang": 60.0},
        },
    )
    async with SimulatedVO(specs) as sim:
        targets = sim.targets()
        path = tmp_path / "c.sqlite"
        async with vosweep.Engine(config(per_host=3), deadline=3) as engine:
            first = await engine.fanout(
                targets, CONE, checkpoint=path, checkpoint_info={"kind": "test"}
            )
        assert not first.complete
        assert first.outcomes[5].status is Status.CANCELLED
        assert first.checkpoint_info == {"kind": "test"}
        assert vosweep.checkpoint.read_info(path) == {"kind": "test"}
        before = requests(sim)

        # The hang stays: resumed, it is asked and cancelled by the deadline again.
        async with vosweep.Engine(config(per_host=3), deadline=3) as engine:
            second = await engine.fanout(targets, CONE, checkpoint=path)
        after = requests(sim)
        assert after[5] == before[5] + 1  # cancelled: asked again
        assert after[1] == before[1]  # failed: final unless retry_failed
        assert after[0] == before[0]
        assert second.restored == 11
        assert second.checkpoint_info == {"kind": "test"}

        async with vosweep.Engine(config(per_host=3), deadline=3) as engine:
            third = await engine.resume(path, retry_failed=True)
        assert requests(sim)[1] > after[1]
        assert third.restored == 10
        assert third.outcomes[1].status is Status.ERROR

        with pytest.raises(UsageError, match=r"c\.sqlite.*different sweep"):
            async with vosweep.Engine(config()) as engine:
                await engine.fanout(targets[:-1], CONE, checkpoint=path)


async def test_keep_rows_false_writes_what_memory_would_hold(tmp_path: Path):
    """Rows kept only in the checkpoint stream out equal to an in-memory sweep's table."""
    pq = pytest.importorskip("pyarrow.parquet")
    specs = build_fleet(10, 2, seed=4, latency_median=0.01, latency_sigma=0.1)
    specs = override_fleet(specs, services={2: {"extra_columns": ("pmra", "flags")}})
    async with SimulatedVO(specs) as sim, vosweep.Engine(config()) as engine:
        memory = await engine.fanout(sim.targets(), CONE)
        lean = await engine.fanout(
            sim.targets(), CONE, checkpoint=tmp_path / "c.sqlite", keep_rows=False
        )
    assert lean.rows == memory.rows > 0
    lean.write(tmp_path / "out.parquet")
    lean.write(tmp_path / "out.xml")
    from_parquet: dict[str, Any] = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert len(from_parquet["service_url"]) == memory.rows
    assert sorted(from_parquet) == sorted(memory.table.colnames)
    assert row_set(Table.read(tmp_path / "out.xml", format="votable")) == row_set(memory.table)
    assert row_set(lean.table) == row_set(memory.table)
