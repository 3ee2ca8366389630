"""The examples run as a user runs them: a fresh interpreter, from the repository root.

Each runs against the simulated VO (loopback only), made small and quick by its arguments.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from vosweep.sweeps.obscore import OBSCORE_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SUMMARY = re.compile(r"^vosweep fan-out: (\d+) services, (\d+) rows in .* \((.*)\)$", re.MULTILINE)


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
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


OK = re.compile(r"^  ok\s+(\d+)\s+(\d+)$", re.MULTILINE)


def test_obscore_example_writes_one_obscore_table(tmp_path):
    pytest.importorskip("sqlglot", reason="the simulated registry needs the 'sim' extra")
    output = tmp_path / "obscore.ecsv"
    stdout = run_example(
        "obscore_sweep.py", "--services", "5", "--output", str(output), timeout=120
    ).stdout
    [(_, rows, state)] = SUMMARY.findall(stdout)
    assert state == "complete"
    [(ok_services, _)] = OK.findall(stdout)
    assert int(ok_services) == 4  # services 0, 1, 3, 4 hold ObsCore; 2 does not
    table = Table.read(output)
    assert len(table) == int(rows) > 0
    standard = [c.name for c in OBSCORE_COLUMNS]
    assert table.colnames[: len(standard)] == standard
    assert set(table["dataproduct_type"]) <= {"image", "spectrum"}
    assert all(table["em_min"] <= 7e-7)
    assert all(table["em_max"] >= 4e-7)


def test_epntap_example_finds_tables_by_both_utypes_and_filters():
    pytest.importorskip("sqlglot", reason="the simulated registry needs the 'sim' extra")
    stdout = run_example(
        "epntap_sweep.py", "--services", "3", "--target", "Jupiter", timeout=120
    ).stdout
    found = re.search(r"found (\d+) EPN-TAP tables \((\d+) with the legacy utype\)", stdout)
    assert found is not None, stdout
    assert int(found[1]) > int(found[2]) >= 1
    [(services, rows, state)] = SUMMARY.findall(stdout)
    assert (int(services), state) == (int(found[1]), "complete")
    [(ok_services, _)] = OK.findall(stdout)
    assert int(ok_services) == 3
    assert f"{rows} granules of Jupiter" in stdout
    assert int(rows) > 0


def test_proper_motions_example_writes_one_schema(tmp_path):
    pytest.importorskip("sqlglot", reason="the simulated registry needs the 'sim' extra")
    out = tmp_path / "pm.vot"
    completed = run_example(
        "proper_motions.py",
        *("--ra", "40", "--dec", "-10", "--radius", "25", "--out", str(out)),
        timeout=120,
    )
    [(services, rows, state)] = [
        (int(n), int(r), s) for n, r, s in SUMMARY.findall(completed.stdout)
    ]
    assert state == "complete"
    assert services >= 3  # the fleet's three services with proper motions, and more
    assert rows > 0
    table = Table.read(out, format="votable")
    assert len(table) == rows
    assert table.colnames == [
        "ra",
        "dec",
        "pmra",
        "pmdec",
        "source_table",
        "service_name",
        "service_ivoid",
        "service_url",
    ]
    assert table["pmra"].unit == u.mas / u.yr
    assert table["ra"].unit == u.deg
    sources = set(table["source_table"].tolist())
    assert sources == {"cat.sources", "J/A+A/600/A12/table2"}
    assert "rows from J/A+A/600/A12/table2" in completed.stdout
    # Every row lies in the region asked for (the services filtered with CONTAINS).
    ra, dec = (
        np.radians(np.asarray(table["ra"], float)),
        np.radians(np.asarray(table["dec"], float)),
    )
    ra0, dec0 = np.radians(40.0), np.radians(-10.0)
    cos = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    assert np.all(np.degrees(np.arccos(np.clip(cos, -1, 1))) <= 25.0 + 1e-9)
    # The VizieR-like table's arcsec/yr became mas/yr: its spread is now in the tens.
    viz = table[table["source_table"] == "J/A+A/600/A12/table2"]
    assert np.nanstd(np.asarray(viz["pmra"], float)) > 5


def test_proper_motions_example_refuses_a_bad_region():
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(EXAMPLES / "proper_motions.py"), "--dec", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "dec must be within [-90, 90]" in completed.stderr
