"""Ctrl-C, for real: a SIGINT stops a sweep at once and keeps every answer received.

Half of the simulated services hang and the timeouts are patient, so only the interrupt
can end these sweeps. Two paths: a script using `vosweep.fanout_sync` gets a real
SIGINT and catches `vosweep.SweepInterrupted`; and, in process, a running event loop turns
SIGINT into cancelling the fan-out's task (as Jupyter does with its Interrupt button),
after which `Engine.last_result` holds the partial result.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

import vosweep
from vosweep.testing import Behaviour, SimulatedVO, build_fleet, override_fleet

N_SERVICES = 24
N_HOSTS = 3
#: Services that answer at once; the other half hang.
HEALTHY = N_SERVICES // 2
#: Seconds the interrupted process may take to exit, from the signal on.
EXIT_WITHIN = 2.0

#: The user's script. Its on_part callback prints a line per finished service ("part ok"
#: for the first ones), so the test knows when every healthy service has answered; then it
#: waits in fanout_sync until interrupted.
SCRIPT = """
import json
import signal
import sys
import time

import vosweep
from vosweep.testing import Behaviour, SimProcess, build_fleet, override_fleet

# As in a terminal: a child of a background job or a CI runner may inherit an ignored
# SIGINT, which would make Ctrl-C do nothing.
signal.signal(signal.SIGINT, signal.default_int_handler)

N = {n_services}
fleet = build_fleet(N, {n_hosts}, seed=8, latency_median=0.01, density_range=(2000.0, 5000.0))
hang = {{"behaviour": Behaviour.HANG, "max_hang": 300.0}}
fleet = override_fleet(fleet, services=dict.fromkeys(range(1, N, 2), hang))
config = vosweep.EngineConfig(
    timeouts=vosweep.Timeouts(connect=30, read=120, attempt=120),
    limits=vosweep.Limits(per_host=N),  # every request at once
    user_agent_purpose="test",
)
cone = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)


def on_part(part):
    print("part", part.outcome.status.value, flush=True)


with SimProcess(fleet, max_seconds=120) as sim:
    try:
        result = vosweep.fanout_sync(sim.targets(), cone, config=config, on_part=on_part)
    except vosweep.SweepInterrupted as exc:
        caught_at = time.time()
        partial = exc.result
        report = {{
            "caught_at": caught_at,
            "counts": {{status.value: n for status, n in partial.counts().items()}},
            "rows": partial.rows,
            "table_rows": len(partial.table),
            "ok_rows": sum(o.rows for o in partial.outcomes if o.status.value == "ok"),
            "complete": partial.complete,
        }}
        print(json.dumps(report), flush=True)
    else:
        print("not interrupted:", result, flush=True)
# Stopping the simulated VO and the interpreter count in the test's exit time.
"""


def read_lines(stream: Iterator[str], lines: queue.Queue[str | None]) -> None:
    """Move the script's output lines to *lines* (None at the end), so reads can time out."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def test_sigint_stops_fanout_sync_and_keeps_the_answers(tmp_path):
    """SIGINT ends a hung fanout_sync within 2 s; every answer is kept, the hung are cancelled."""
    script = tmp_path / "sweep.py"
    script.write_text(SCRIPT.format(n_services=N_SERVICES, n_hosts=N_HOSTS), encoding="utf-8")
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 -- our interpreter, our script
            [sys.executable, str(script)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    before: list[str | None] = []
    try:
        # Wait until every healthy service has answered: only the hung ones are left.
        while len(before) < HEALTHY:
            before.append(lines.get(timeout=60))
            assert before[-1] == "part ok\n", (before, stderr_path.read_text())
        sent_at = time.time()
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=EXIT_WITHIN + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 12 s after SIGINT:\n{stderr_path.read_text()}")
        exit_time = time.perf_counter() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    after = []
    while (line := lines.get(timeout=5)) is not None:
        after.append(line)
    reader.join()
    process.stdout.close()
    stderr_text = stderr_path.read_text()
    assert process.returncode == 0, (process.returncode, after, stderr_text)
    # on_part also saw the hung services end, as cancelled, before the exception.
    assert after[:-1] == ["part cancelled\n"] * (N_SERVICES - HEALTHY), (after, stderr_text)
    report = json.loads(after[-1])

    assert report["caught_at"] - sent_at < EXIT_WITHIN, report
    assert exit_time < EXIT_WITHIN  # the simulated VO and the interpreter stopped too
    expected = dict.fromkeys(vosweep.Status, 0) | {
        vosweep.Status.OK: HEALTHY,  # every answer received before Ctrl-C is kept
        vosweep.Status.CANCELLED: N_SERVICES - HEALTHY,  # stopped, not waited for
    }
    assert report["counts"] == {status.value: n for status, n in expected.items()}
    assert not report["complete"]
    assert report["rows"] == report["table_rows"] == report["ok_rows"] > 0


@pytest.fixture(name="restore_sigint")
def _restore_sigint() -> Iterator[None]:
    """Put back pytest's SIGINT handler (asyncio installs its default when removing ours)."""
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.anyio
async def test_sigint_cancelling_a_running_loop_leaves_last_result(restore_sigint):
    """A real SIGINT that cancels the fan-out's task (as Jupyter does) leaves last_result."""
    fleet = build_fleet(
        N_SERVICES, N_HOSTS, seed=8, latency_median=0.01, density_range=(2000.0, 5000.0)
    )
    hang = {"behaviour": Behaviour.HANG, "max_hang": 60.0}
    fleet = override_fleet(fleet, services=dict.fromkeys(range(1, N_SERVICES, 2), hang))
    cone = vosweep.Cone(ra=83.63, dec=22.01, radius=0.1)
    engine = vosweep.Engine(
        timeouts=vosweep.Timeouts(connect=30, read=120, attempt=120),
        limits=vosweep.Limits(per_host=N_SERVICES),
        user_agent_purpose="test",
    )
    answered = 0
    healthy_done = anyio.Event()

    def on_part(part: vosweep.Part) -> None:
        nonlocal answered
        if part.outcome.status is vosweep.Status.OK:
            answered += 1
        if answered == HEALTHY:
            healthy_done.set()

    async with SimulatedVO(fleet) as sim, engine:
        # The loop handles SIGINT (no KeyboardInterrupt raised at a random spot inside
        # it) by cancelling the scope that runs the fan-out.
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:
                sweep = anyio.CancelScope()

                async def run_sweep() -> None:
                    with sweep:
                        await engine.fanout(sim.targets(), cone, on_part=on_part)

                async def cancel_on_sigint() -> None:
                    async for _ in signals:
                        sweep.cancel()
                        return

                tg.start_soon(run_sweep)
                tg.start_soon(cancel_on_sigint)
                with anyio.fail_after(30):
                    await healthy_done.wait()
                sent = time.perf_counter()
                os.kill(os.getpid(), signal.SIGINT)
        stopped_after = time.perf_counter() - sent
    assert stopped_after < 1.0
    assert sweep.cancelled_caught
    result = engine.last_result
    assert result is not None
    counts = result.counts()
    assert counts[vosweep.Status.OK] == HEALTHY
    assert counts[vosweep.Status.CANCELLED] == N_SERVICES - HEALTHY
    assert not result.complete
    ok_rows = sum(o.rows for o in result.outcomes if o.status is vosweep.Status.OK)
    assert result.rows == len(result.table) == ok_rows > 0
