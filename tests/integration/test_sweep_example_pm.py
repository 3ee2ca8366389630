"""examples/proper_motions.py runs as a user runs it and writes the merged proper motions.

A fresh interpreter from the repository root, against the simulated VO (loopback only).
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

pytest.importorskip("sqlglot", reason="the simulated VO needs the sim extra (sqlglot)")

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^vosweep fan-out: (\d+) services, (\d+) rows in .* \((.*)\)$", re.MULTILINE)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(ROOT / "examples" / "proper_motions.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr}"
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def test_example_writes_proper_motions_in_one_schema(tmp_path):
    out = tmp_path / "pm.vot"
    completed = run("--ra", "40", "--dec", "-10", "--radius", "25", "--out", str(out))
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


def test_example_refuses_a_bad_region():
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(ROOT / "examples" / "proper_motions.py"), "--dec", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "dec must be within [-90, 90]" in completed.stderr
