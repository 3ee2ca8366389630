"""The ObsCore and EPN-TAP sweep examples, run as a user runs them, on the simulated VO."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from astropy.table import Table

from vosweep.sweeps.obscore import OBSCORE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^vosweep fan-out: (\d+) services, (\d+) rows in .* \((.*)\)$", re.MULTILINE)
OK = re.compile(r"^  ok\s+(\d+)\s+(\d+)$", re.MULTILINE)


def run(name: str, *args: str) -> str:
    completed = subprocess.run(  # noqa: S603 -- our interpreter and our own example
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr}"
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed.stdout


def test_obscore_example_writes_one_obscore_table(tmp_path):
    output = tmp_path / "obscore.ecsv"
    stdout = run("obscore_sweep.py", "--services", "5", "--output", str(output))
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
    stdout = run("epntap_sweep.py", "--services", "3", "--target", "Jupiter")
    found = re.search(r"found (\d+) EPN-TAP tables \((\d+) with the legacy utype\)", stdout)
    assert found is not None, stdout
    assert int(found[1]) > int(found[2]) >= 1
    [(services, rows, state)] = SUMMARY.findall(stdout)
    assert (int(services), state) == (int(found[1]), "complete")
    [(ok_services, _)] = OK.findall(stdout)
    assert int(ok_services) == 3
    assert f"{rows} granules of Jupiter" in stdout
    assert int(rows) > 0
