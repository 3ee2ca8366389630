"""The ``vosweep`` command's argument checks: bad input is exit 2 and one line, before I/O.

Every service URL and registry here is loopback port 9 (discard: refused), and
``IVOA_REGISTRY`` points there too, so a check that failed to stop the command would end
in exit 4 (nothing delivered), not 2, and never reach a real service.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vosweep import cli

DEAD = "http://127.0.0.1:9/scs"
CONE = ["cone", "--ra", "10", "--dec", "20", "--radius", "0.1", "--no-progress", "--timeout", "1"]


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "q.adql").write_text("select top 1 * from tap_schema.tables")
    monkeypatch.setenv("IVOA_REGISTRY", "http://127.0.0.1:9/tap")
    monkeypatch.setenv("HOME", str(tmp_path))  # --samp must not find the user's hub
    monkeypatch.delenv("SAMP_HUB", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("vosweep: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["discover", "--servicetype", "foo"], "'foo' is neither a standard ivoid"),
        (["discover", "--spatial", "abc 1 2"], "--spatial must be 'RA DEC' or 'RA DEC RADIUS'"),
        (["discover", "--spatial", "1 2 3 4"], "--spatial must be"),
        (["discover", "--spectral", "5 furlongs"], "--spectral: 'furlongs' is not a number"),
        (["discover", "--temporal", "yesterday"], "'yesterday' is not an ISO time or an MJD"),
        (["discover"], "give at least one constraint"),
        (["discover", "--keywords", "x", "--registry", "ftp://x"], "must be an http(s) URL"),
        (["discover", "--keywords", "x", "-o", "out.txt"], "unknown file type '.txt'"),
        ([*CONE, DEAD, "-o", "missing/out.vot"], "folder missing does not exist"),
        ([*CONE, DEAD, "-o", ".", "--format", "votable"], "it is a folder"),
        ([*CONE, DEAD, "-o", "out"], "unknown file type '(none)'"),
        ([*CONE, DEAD, "-o", "out.vot", "--format", "hdf5"], "--format 'hdf5' is not one of"),
        ([*CONE, DEAD, "--outcomes", "missing/o.csv"], "cannot write --outcomes missing/o.csv"),
        ([*CONE, DEAD, "--log-file", "missing/l.jsonl"], "cannot write --log-file"),
        ([*CONE, DEAD, "--log-level", "chatty"], "invalid choice: 'chatty'"),
        ([*CONE, "ftp://example.invalid/scs"], "not an http(s) URL: 'ftp://"),
        ([*CONE, DEAD, "--errors", "sometimes"], "errors"),
        ([*CONE, DEAD, "--per-host", "0"], "per_host"),
        ([*CONE, "--urls-file", "nofile.txt"], "cannot read --urls-file nofile.txt"),
        ([*CONE, DEAD, "--samp"], "--samp: no SAMP hub is running"),
        (["cone", "--ra", "1", "--dec", "2", "--radius", "-1", DEAD], "greater than 0"),
        (["cone", "--ra", "1", "--dec", "2", "--radius", "1", "--timeout", "0"], "--timeout"),
        (["tap", DEAD], "give the query with either --adql or --adql-file"),
        (["tap", "--adql-file", "nofile.adql", DEAD], "cannot read --adql-file nofile.adql"),
        (["tap", "--adql", "SELECT 1", "--adql-file", "q.adql"], "either --adql or --adql-file"),
        (["tap", "--adql", "   ", DEAD], "the ADQL query is empty"),
        (["tap", "--adql", "DROP TABLE x", DEAD], "starts with 'DROP'"),
        (["sia", "--pos", "10", "--sia2", DEAD], "--pos must be 'RA DEC' in degrees"),
        (["sia", "--pos", "1 2", "--ra", "1", "--sia2", DEAD], "either --pos or --ra/--dec"),
        (["sia", "--ra", "1", "--sia2", DEAD], "give both --ra and --dec"),
        (["sia", "--ra", "x", "--dec", "1", "--sia2", DEAD], "--ra must be a number"),
        (["sia", "--pos", "1 2", "--band", "500nm", "--sia2", DEAD], "--band must be 'LOW HIGH'"),
        (["sia", "--pos", "1 2", "--size", "a b", "--sia2", DEAD], "--size must be"),
        (["sia", "--pos", "1 2", "--time", "1 2 3", "--sia2", DEAD], "--time must be one value"),
        (["ssa", "--pos", "1 200", DEAD], "dec must be within [-90, 90]"),
        (["ssa", "--pos", "1 2", "--diameter", "0", DEAD], "diameter"),
        (["demo", "--services", "0"], "--services and --hosts must be at least 1"),
        ([*CONE, DEAD, "--rows-on-disk"], "--rows-on-disk needs --checkpoint"),
        ([*CONE, DEAD, "--checkpoint", "missing/ck.sqlite"], "cannot write --checkpoint"),
        (["resume", "nofile.sqlite"], "no checkpoint file nofile.sqlite"),
        (["resume", "q.adql"], "is not a vosweep checkpoint"),
        (["obscore", "--radius", "1", DEAD], "give --radius with a position"),
        (["obscore", "--pos", "1 2", DEAD], "give --radius with a position"),
        (["obscore", "--columns", " , ", DEAD], "--columns must name columns"),
        (["obscore", "--adql", "DELETE FROM x", DEAD], "--adql must be a SELECT"),
        (["obscore", "--adql", "SELECT * FROM ivoa.obscore", "--collection", "x", DEAD], "adql"),
        (["epntap", "--spectral-range", "1 2 3"], "--spectral-range must be one value"),
        (["epntap", "--processing-level", "x"], "invalid int value: 'x'"),
        # argparse's own checks, in the same one-line shape.
        (["cone", "--ra", "1", "--dec", "2"], "the following arguments are required: --radius"),
        ([*CONE, DEAD, "--log-format", "xml"], "invalid choice: 'xml'"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, err = run(capsys, *argv)
    assert code == cli.EXIT_USAGE, err
    assert expected in one_line_error(err)


def test_adql_file_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A readable file gets past the checks: the refused service makes it exit 4, not 2."""
    code, err = run(capsys, "tap", "--adql-file", "q.adql", DEAD, "--timeout", "1")
    assert code == cli.EXIT_NOTHING, err
    assert "Traceback" not in err


def test_no_service_answering_is_exit_4_and_output_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(capsys, *CONE, DEAD, "-o", "rows.ecsv", "--outcomes", "o.csv")
    assert code == cli.EXIT_NOTHING, err
    out = capsys.readouterr().out
    assert (tmp_path / "o.csv").read_text().count("\n") == 2  # header and one service
    assert (tmp_path / "rows.ecsv").exists()
    del out


def test_registry_unreachable_is_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, *CONE[:-2], "--timeout", "1", "--keywords", "x")
    assert code == cli.EXIT_NOTHING
    assert "registry search failed" in err
    assert "Traceback" not in err


def test_help_is_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "discover" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("a.vot", None, "votable"),
        ("a.XML", None, "votable"),
        ("a.fits", None, "fits"),
        ("a.parquet", None, "parquet"),
        ("a.ecsv", None, "ecsv"),
        ("a.pq", None, "parquet"),
        ("a.csv", None, "csv"),
        ("a.txt", "csv", "csv"),
        ("a.vot", "fits", "fits"),
    ],
)
def test_output_format(name: str, given: str | None, expected: str) -> None:
    pytest.importorskip("pyarrow")
    assert cli._format(Path(name), given, "--output") == expected


def test_parquet_without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "find_spec", lambda _name: None)
    with pytest.raises(cli.UsageError, match=r"Parquet needs pyarrow"):
        cli._format(Path("a.parquet"), None, "--output")


def test_one_line_strips_pydantic_noise() -> None:
    message = (
        "invalid cone: 1 validation error for Cone\nradius\n  Input should be greater than 0"
        " [type=greater_than, input_value=-1.0, input_type=float]\n"
        "    For further information visit https://errors.pydantic.dev/2/v/greater_than"
    )
    assert cli._one_line(message) == (
        "invalid cone: 1 validation error for Cone radius Input should be greater than 0"
    )
