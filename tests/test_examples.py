"""The examples run as a user runs them: a fresh interpreter, from the repository root.

Each runs against the simulated VO (loopback only), made small and quick by its arguments.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.table import Table

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SUMMARY = re.compile(r"^vosweep fan-out: (\d+) services, (\d+) rows in .* \((.*)\)$", re.MULTILINE)


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr}"
    assert "vosweep fan-out:" in completed.stdout, completed.stdout
    # The libraries stay quiet: no warning, no retry log, no traceback on stderr.
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def summaries(stdout: str) -> list[tuple[int, int, str]]:
    return [(int(n), int(rows), state) for n, rows, state in SUMMARY.findall(stdout)]


def test_cone_everywhere_writes_the_merged_votable(tmp_path):
    """cone_everywhere sweeps a mixed simulated VO and saves every merged row as a VOTable."""
    out = tmp_path / "cone.vot"
    completed = run_example(
        "cone_everywhere.py", "--services", "24", "--timeout", "1", "--out", str(out)
    )
    [(services, rows, state)] = summaries(completed.stdout)
    assert (services, state) == (24, "complete")
    assert rows > 0
    table = Table.read(out, format="votable")
    assert len(table) == rows
    assert {"ra", "dec", "service_name", "service_url"} <= set(table.colnames)


def test_notebook_example_runs_every_cell():
    """The notebook cells run top to bottom; the interrupted sweep still reports its rows."""
    completed = run_example("notebook_top_level_await.py")
    found = summaries(completed.stdout)
    states = [state for _, _, state in found]
    assert states[:2] == ["complete", "complete"], states
    assert len(states) == 3, states
    assert states[2].startswith("INCOMPLETE"), states
    assert all(rows > 0 for _, rows, _ in found)
    assert "cancelled" in completed.stdout


def test_sync_script_runs_its_own_event_loop():
    """sync_script sweeps a simulated VO in a child process through fanout_sync."""
    completed = run_example("sync_script.py", "--services", "20", "--timeout", "1")
    [(services, rows, state)] = summaries(completed.stdout)
    assert (services, state) == (20, "complete")
    assert rows > 0


def test_discover_and_sweep_finds_then_queries_the_fleet():
    """discover_and_sweep finds the fleet through the simulated registry and sweeps it."""
    completed = run_example("discover_and_sweep.py", "--services", "16", "--timeout", "1")
    assert "found 16 optical cone searches" in completed.stdout
    [(services, rows, state)] = summaries(completed.stdout)
    assert (services, state) == (16, "complete")
    assert rows > 0
    assert "ObsCore services" in completed.stdout
    assert "FROM rr.resource" in completed.stdout


def test_demo_discovers_through_the_registry_and_sweeps():
    """``vosweep demo`` (the README's first command) runs discovery, then the sweep."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "vosweep.cli",
            "demo",
            "--services",
            "24",
            "--hosts",
            "3",
            "--timeout",
            "1",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # The simulated failures are the demo's point: a complete sweep exits 0.
    assert completed.returncode == 0, completed.stderr
    assert "Registry: servicetype='scs', keywords=['fleet'] found 24 resources" in completed.stdout
    [(services, _, state)] = summaries(completed.stdout)
    assert (services, state) == (24, "complete")


def test_images_spectra_tables_mixes_protocols_and_leaves_no_job():
    """SIA 1/2 + SSA in one fan-out, their DataLink previews, then UWS jobs on TAP services."""
    completed = run_example("images_spectra_tables.py", "--timeout", "5")
    found = summaries(completed.stdout)
    assert [state for _, _, state in found] == ["complete"] * 3
    assert [services for services, _, _ in found] == [5, found[1][0], 3]
    assert all(rows > 0 for _, rows, _ in found)
    assert "UWS jobs left on the servers: 0" in completed.stdout
    assert "failed: query timed out on the server" in completed.stdout


def test_long_obscore_sweep_is_cut_then_resumed_without_loss(tmp_path):
    """The cut run leaves services unfinished; the resumed one asks only those, and ends
    with every fleet archive's rows (the checkpoint's and the new ones together)."""
    pytest.importorskip("sqlglot", reason="the simulated registry needs the 'sim' extra")
    checkpoint = tmp_path / "sweep.sqlite"
    completed = run_example(
        "long_obscore_sweep.py", "--services", "12", "--checkpoint", str(checkpoint)
    )
    (cut_services, cut_rows, cut_state), (services, rows, state) = summaries(completed.stdout)[:2]
    assert cut_state.startswith("INCOMPLETE")
    assert state == "complete"
    assert services == cut_services
    assert rows > cut_rows
    restored = int(re.search(r"Resumed: (\d+) services restored", completed.stdout)[1])
    assert 0 < restored < services
    ok = re.findall(r"^  ok\s+(\d+)\s+\d+$", completed.stdout, re.MULTILINE)
    assert int(ok[-1]) == 12  # every simulated archive answered in the end
    assert checkpoint.is_file()
