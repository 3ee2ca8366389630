"""The ``vosweep`` command: thin argument parsing over `Engine`; no logic of its own.

Commands: ``discover`` (a registry search), ``cone``, ``sia``, ``ssa``, ``tap`` (one query
sent to many services, given as URLs or found in the registry with the same constraint
options as ``discover``), ``obscore`` and ``epntap`` (the global sweeps of
`vosweep.sweeps`), ``resume`` (finish a sweep run with ``--checkpoint``), and ``demo`` (a
sweep of the simulated VO on loopback). Every check of the arguments and output files
runs before the first request, so a typo never costs a sweep.

Logs: none by default (the library's quiet default); ``--log-format console|json`` or
``--log-file`` configures structlog (`vosweep._log.configure_logging`): one
``vosweep.service.done`` event per service, then ``vosweep.fanout.done``. The progress bar
is on when stderr is a terminal (``--progress``/``--no-progress`` decide otherwise).

Exit codes:

- 0: every service asked delivered (an empty answer counts as delivered).
- 2: bad input, found before anything is sent: an unknown option value, a malformed
  position, an output that cannot be written, a missing file. One line
  ``vosweep: error: ...`` naming the problem, no traceback.
- 3: results were produced (and written) but some services failed or the sweep was
  incomplete (deadline, abort policy), or the SAMP hand-off failed. (``demo`` exits 0
  once its sweep completed: its failing services fail on purpose.)
- 4: nothing was delivered: no service matched the registry search, every service asked
  failed, or the registry itself could not be searched. No output file is written when
  nothing matched.
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, NoReturn

import anyio
import anyio.to_thread
from astropy import units as u
from astropy.table import Table
from pydantic import ValidationError

from vosweep import _log
from vosweep._memory import limit_malloc_arenas
from vosweep.checkpoint import OUTPUT_EXTENSIONS, OUTPUT_FORMATS, write_table
from vosweep.config import EngineConfig, Limits, RegistryConfig, Timeouts
from vosweep.engine import Engine
from vosweep.errors import FanoutAborted, UsageError, VosweepError
from vosweep.progress import ProgressBar
from vosweep.queries import Cone, ImageQuery, SpectrumQuery, TapQuery
from vosweep.registry.results import RegistryResults
from vosweep.result import FanoutResult
from vosweep.services import Protocol, Service

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_NOTHING = 4
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (exit 2) like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"vosweep: error: {message} (see {self.prog} --help)\n")


# --- the parser ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vosweep", description="Query many Virtual Observatory services at once.")
    sub = parser.add_subparsers(dest="command", required=True)

    discover = sub.add_parser("discover", help="search the VO Registry (RegTAP)")
    discover.add_argument("--servicetype", action="append", help="scs, sia, sia2, ssa, tap...")
    _constraints(discover)
    discover.add_argument("--rows", type=int, default=20, help="resources to print (20)")
    discover.add_argument("--timeout", type=float, default=30.0, help="per-attempt timeout, s")
    discover.add_argument("--registry", action="append", metavar="URL", help="RegTAP endpoint")
    _output(discover)
    _logging(discover)

    cone = sub.add_parser("cone", help="one cone search sent to many SCS services")
    cone.add_argument("--ra", required=True, help="right ascension, degrees (ICRS)")
    cone.add_argument("--dec", required=True, help="declination, degrees (ICRS)")
    cone.add_argument("--radius", required=True, help="radius, degrees")
    cone.add_argument("--verb", type=int, help="SCS verbosity 1-3")
    _targets(cone, "SCS")
    _sweep(cone)

    sia = sub.add_parser("sia", help="one image search sent to many SIA 1 and SIA 2 services")
    _position(sia)
    sia.add_argument("--size", help="width [height] of the region, degrees")
    sia.add_argument("--band", help="'LOW HIGH' wavelengths (metres, or with units: 400nm)")
    sia.add_argument("--time", help="'START END' ISO times or MJD ('-' leaves an end open)")
    sia.add_argument("--collection", action="append", help="SIA2 COLLECTION (repeatable)")
    sia.add_argument("--sia1", action="append", default=[], metavar="URL", help="SIA 1 URL")
    sia.add_argument("--sia2", action="append", default=[], metavar="URL", help="SIA 2 URL")
    sia.add_argument("--query-maxrec", type=int, help="MAXREC sent to each service")
    _targets(sia, None)
    _sweep(sia)

    ssa = sub.add_parser("ssa", help="one spectrum search sent to many SSA services")
    _position(ssa)
    ssa.add_argument("--diameter", help="SIZE: diameter of the region, degrees")
    ssa.add_argument("--band", help="'LOW HIGH' wavelengths (metres, or with units: 400nm)")
    ssa.add_argument("--time", help="'START END' ISO times or MJD ('-' leaves an end open)")
    ssa.add_argument("--query-maxrec", type=int, help="MAXREC sent to each service")
    _targets(ssa, "SSA")
    _sweep(ssa)

    tap = sub.add_parser("tap", help="one ADQL query sent to many TAP services")
    tap.add_argument("--adql", help="the ADQL query")
    tap.add_argument("--adql-file", type=Path, help="file holding the ADQL query")
    tap.add_argument("--mode", choices=("sync", "async", "auto"), help="TAP mode (auto)")
    tap.add_argument("--query-maxrec", type=int, help="MAXREC sent to each service")
    _targets(tap, "TAP")
    _sweep(tap)

    demo = sub.add_parser(
        "demo", help="sweep a simulated VO on loopback (realistic latencies and failures)"
    )
    demo.add_argument("--services", type=int, default=300, help="simulated services (300)")
    demo.add_argument("--hosts", type=int, default=12, help="simulated hosts (12)")
    demo.add_argument("--seed", type=int, default=1, help="fleet seed (1)")
    demo.add_argument("--rows", type=int, default=10, help="rows of the result to print (10)")
    _sweep(demo, timeout=5.0, registry=False, checkpoint=False)

    obscore = sub.add_parser("obscore", help="one ObsCore query to every ObsCore TAP service")
    obscore.add_argument("--adql", help="a whole query on ivoa.obscore (instead of filters)")
    _position(obscore)
    obscore.add_argument("--radius", help="radius around --pos, degrees")
    obscore.add_argument("--match", choices=("center", "footprint"), help="position test")
    obscore.add_argument("--band", help="'LOW HIGH' wavelengths (metres, or with units: 400nm)")
    obscore.add_argument("--time", help="'START END' ISO times or MJD ('-' leaves an end open)")
    obscore.add_argument("--dataproduct-type", action="append", help="image, cube, spectrum...")
    obscore.add_argument("--calib-level", action="append", type=int, help="0-4 (repeatable)")
    obscore.add_argument("--collection", action="append", help="obs_collection (repeatable)")
    _common_tap(obscore)
    _targets(obscore, "ObsCore TAP")
    _sweep(obscore)

    epn = sub.add_parser("epntap", help="one EPN-TAP query to every EPN-TAP table (planetary)")
    for name in ("target-name", "target-class", "dataproduct-type"):
        epn.add_argument(f"--{name}", action="append", help="(repeatable: any of them)")
    for name in ("instrument-host-name", "instrument-name"):
        epn.add_argument(f"--{name}", action="append", help="(repeatable: any of them)")
    epn.add_argument("--time", help="'START END' ISO times or JD ('-' leaves an end open)")
    epn.add_argument("--spectral-range", help="'LOW HIGH' in Hz, or with units (400nm)")
    epn.add_argument("--processing-level", action="append", type=int, help="CODMAC 1-6")
    epn.add_argument("--table", action="append", help="only these tables (repeatable)")
    _common_tap(epn)
    _sweep(epn)

    resume = sub.add_parser("resume", help="finish a sweep run with --checkpoint")
    resume.add_argument("file", type=Path, help="the checkpoint file")
    resume.add_argument("--retry-failed", action="store_true", help="ask failed services again")
    _sweep(resume, checkpoint=False, resumes=True)
    return parser


def _common_tap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--where", help="an ADQL condition AND-ed to the query")
    parser.add_argument("--columns", help="columns to select, comma-separated (default *)")
    parser.add_argument("--mode", choices=("sync", "async", "auto"), help="TAP mode (auto)")
    parser.add_argument("--query-maxrec", type=int, help="MAXREC sent to each service")
    parser.add_argument("--no-dedupe", action="store_true", help="keep duplicate records")


def _constraints(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("registry constraints (as pyvo.registry.search)")
    group.add_argument("--keywords", action="append", help="free-text words (repeatable)")
    group.add_argument("--waveband", action="append", help="radio, optical, x-ray...")
    group.add_argument("--datamodel", help="obscore, epntap, regtap")
    group.add_argument("--ucd", action="append", help="UCD pattern of a column")
    group.add_argument("--ivoid", action="append", help="resource identifier")
    group.add_argument("--author", help="creator name pattern")
    group.add_argument("--spatial", help="'RA DEC RADIUS' (degrees) or 'RA DEC'")
    group.add_argument("--spectral", help="'VALUE' or 'LOW HIGH' (units: 500nm, 2keV)")
    group.add_argument("--temporal", help="'TIME' or 'START END' (ISO or MJD)")
    group.add_argument("--includeaux", action="store_true", help="auxiliary capabilities too")
    group.add_argument("--maxrec", type=int, help="at most this many resources")


def _targets(parser: argparse.ArgumentParser, protocol: str | None) -> None:
    if protocol is not None:
        parser.add_argument(
            "urls", nargs="*", help=f"{protocol} access URLs (none: search the registry)"
        )
        parser.add_argument("--urls-file", type=Path, help="file with one access URL per line")
    _constraints(parser)


def _position(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pos", help="'RA DEC' in degrees (ICRS)")
    parser.add_argument("--ra", help="right ascension, degrees (ICRS)")
    parser.add_argument("--dec", help="declination, degrees (ICRS)")


def _output(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--output", "-o", type=Path, help="write the table here")
    group.add_argument(
        "--format", help=f"{', '.join(OUTPUT_FORMATS)} (default: from the file name)"
    )


def _logging(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logs (structlog)")
    group.add_argument("--log-format", choices=("console", "json"), help="console or json")
    group.add_argument(
        "--log-level", default="info", choices=_log.LEVELS, help="least severe level shown"
    )
    group.add_argument("--log-file", type=Path, help="append log lines here (json by default)")


def _sweep(
    parser: argparse.ArgumentParser,
    *,
    timeout: float = 30.0,
    registry: bool = True,
    checkpoint: bool = True,
    resumes: bool = False,
) -> None:
    if registry:
        parser.add_argument("--registry", action="append", metavar="URL", help="RegTAP endpoint")
    if checkpoint:
        parser.add_argument(
            "--checkpoint", type=Path, help="SQLite file keeping finished services (resume)"
        )
    if checkpoint or resumes:
        parser.add_argument(
            "--rows-on-disk",
            action="store_true",
            help="keep the rows in the checkpoint only, not in memory (huge sweeps)",
        )
    group = parser.add_argument_group("limits")
    group.add_argument(
        "--timeout", type=float, default=timeout, help=f"per attempt, s ({timeout:g})"
    )
    group.add_argument("--per-host", type=int, default=5, help="requests per host at once (5)")
    group.add_argument("--total", type=int, default=100, help="requests at once overall (100)")
    group.add_argument("--deadline", type=float, help="seconds for the whole sweep")
    group.add_argument("--errors", default="ignore", help="abort|ignore|retry|retry<n>")
    _output(parser)
    parser.add_argument("--outcomes", type=Path, help="write the per-service outcomes here")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    parser.add_argument("--samp", action="store_true", help="send the table to TOPCAT/Aladin")
    _logging(parser)


# --- argument checks (all before any request) ---------------------------------------------


def _floats(text: str, option: str, counts: tuple[int, ...], what: str) -> list[float]:
    parts = text.replace(",", " ").split()
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in counts or len(values) != len(parts):
        raise UsageError(f"{option} must be {what}, got {text!r}")
    return values


def _quantity(token: str, option: str) -> Any:
    try:
        value = u.Quantity(token)
    except (TypeError, ValueError):
        raise UsageError(f"{option}: {token!r} is not a number or a quantity (500nm)") from None
    return float(value.value) if value.unit == u.dimensionless_unscaled else value


def _interval(text: str | None, option: str, convert: Callable[[str], Any]) -> Any:
    if text is None:
        return None
    parts = text.split()
    if len(parts) == 1:
        return convert(parts[0])
    if len(parts) == 2:
        return tuple(None if p in {"-", "none", "None"} else convert(p) for p in parts)
    raise UsageError(f"{option} must be one value or 'LOW HIGH', got {text!r}")


def _time(token: str) -> Any:
    from astropy.time import Time  # noqa: PLC0415 - slow import, used rarely

    try:
        return float(token)
    except ValueError:
        pass
    try:
        return Time(token, scale="utc")
    except ValueError:
        raise UsageError(f"{token!r} is not an ISO time or an MJD number") from None


def _search_keywords(args: argparse.Namespace, servicetype: Any) -> dict[str, Any]:
    """The `Engine.discover` keywords the constraint options stand for."""
    keywords: dict[str, Any] = {
        "servicetype": servicetype,
        "keywords": args.keywords,
        "waveband": args.waveband,
        "datamodel": args.datamodel,
        "ucd": args.ucd,
        "ivoid": args.ivoid,
        "author": args.author,
    }
    if args.spatial is not None:
        keywords["spatial"] = _floats(
            args.spatial, "--spatial", (2, 3), "'RA DEC' or 'RA DEC RADIUS' in degrees"
        )
    keywords["spectral"] = _interval(
        args.spectral, "--spectral", lambda t: _spectral(_quantity(t, "--spectral"))
    )
    keywords["temporal"] = _interval(args.temporal, "--temporal", _time)
    return {key: value for key, value in keywords.items() if value is not None}


def _spectral(value: Any) -> Any:
    if isinstance(value, float):  # a bare number: metres, like --band
        return value * u.m
    return value


def _has_constraint(args: argparse.Namespace) -> bool:
    names = ("keywords", "waveband", "datamodel", "ucd", "ivoid", "author", "spatial")
    return any(getattr(args, name) for name in (*names, "spectral", "temporal"))


def _format(path: Path, given: str | None, option: str) -> str:
    """The astropy format for *path*; UsageError naming an unknown one."""
    name = given
    if name is None:
        suffix = path.suffix.lower()
        name = OUTPUT_EXTENSIONS.get(suffix)
        if name is None:
            raise UsageError(
                f"{option} {path}: unknown file type {suffix or '(none)'!r}; use one of"
                f" {', '.join(OUTPUT_EXTENSIONS)} or --format"
            )
    elif name not in OUTPUT_FORMATS:
        raise UsageError(f"--format {name!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    if name == "parquet" and find_spec("pyarrow") is None:
        raise UsageError(f"{option} {path}: Parquet needs pyarrow (pip install 'vosweep[parquet]')")
    return name


def _check_writable(path: Path, option: str) -> None:
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir():
        raise UsageError(f"cannot write {option} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write {option} {path}: it is a folder")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {option} {path}: permission denied")


#: The files a command writes: option -> (path, format).
Files = dict[str, tuple[Path, str]]


def _outputs(args: argparse.Namespace) -> Files:
    """Every file the command will write, checked (format, folder) before sweeping."""
    files: Files = {}
    if args.output is not None:
        files["--output"] = (args.output, _format(args.output, args.format, "--output"))
    outcomes = getattr(args, "outcomes", None)
    if outcomes is not None:
        files["--outcomes"] = (outcomes, _format(outcomes, None, "--outcomes"))
    for option, (path, _) in files.items():
        _check_writable(path, option)
    for option in ("log_file", "checkpoint"):
        extra: Path | None = getattr(args, option, None)
        if extra is not None:
            _check_writable(extra, f"--{option.replace('_', '-')}")
    return files


def _usage(exc: ValidationError | ValueError) -> UsageError:
    if isinstance(exc, ValidationError):
        text = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
    else:
        text = str(exc).splitlines()[0] if str(exc) else repr(exc)
    return UsageError(text)


def _config(args: argparse.Namespace, purpose: str = "science") -> EngineConfig:
    timeout = args.timeout
    if not timeout > 0:
        raise UsageError(f"--timeout must be positive, got {timeout:g}")
    try:
        config = EngineConfig(
            timeouts=Timeouts(connect=min(10.0, timeout), read=min(20.0, timeout), attempt=timeout),
            limits=Limits(total=getattr(args, "total", 100), per_host=getattr(args, "per_host", 5)),
            errors=getattr(args, "errors", "ignore"),
            deadline=getattr(args, "deadline", None),
            user_agent_purpose=purpose,
        )
        if getattr(args, "registry", None):
            config = config.model_copy(
                update={"registry": RegistryConfig(endpoints=tuple(args.registry))}
            )
    except (ValidationError, ValueError) as exc:
        raise _usage(exc) from None
    return config


def _setup_logging(args: argparse.Namespace) -> None:
    if args.log_format is None and args.log_file is None:
        return  # the library's default: quiet, through the stdlib logger "vosweep"
    fmt: Literal["console", "json"] = "json" if args.log_file is not None else "console"
    if args.log_format is not None:
        fmt = "json" if args.log_format == "json" else "console"
    _log.configure_logging(fmt, args.log_level, args.log_file)


def _progress_enabled(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr.isatty()


# --- running --------------------------------------------------------------------------------


async def _read_lines(path: Path, option: str) -> str:
    try:
        return await anyio.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read {option} {path}: {reason}") from None


async def _given_urls(args: argparse.Namespace) -> list[str]:
    urls = list(getattr(args, "urls", []))
    if getattr(args, "urls_file", None) is not None:
        text = await _read_lines(args.urls_file, "--urls-file")
        urls += [line.strip() for line in text.splitlines() if line.strip()]
    return urls


def _services(urls: Sequence[str], make: Callable[[str], Service]) -> list[Service]:
    services = []
    for url in urls:
        try:
            services.append(make(url))
        except ValueError:
            raise UsageError(f"not an http(s) URL: {url!r}") from None
    return services


async def _write(table: Table | FanoutResult, path: Path, fmt: str) -> None:
    """Write a table, or a result's rows (streamed from its checkpoint when kept there)."""

    def write() -> None:
        if isinstance(table, FanoutResult):
            table.write(path, fmt)
            return
        if fmt == "fits":  # FITS headers take neither long nor multi-line values (the ADQL)
            table.meta.clear()
        write_table(table, path, fmt)

    try:
        await anyio.to_thread.run_sync(write)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot write {path}: {_one_line(str(exc))}") from None


def _exit_code(result: FanoutResult) -> int:
    outcomes = result.outcomes
    if not any(o.status.succeeded for o in outcomes):
        return EXIT_NOTHING
    if any(o.status.failed for o in outcomes) or not result.complete:
        return EXIT_PARTIAL
    return EXIT_OK


#: Runs a sweep, given the progress callback and `Engine.fanout`'s checkpoint keywords.
Run = Callable[[ProgressBar, dict[str, Any]], Awaitable[FanoutResult]]


async def _prepare(
    args: argparse.Namespace, purpose: str = "science"
) -> tuple[Files, EngineConfig]:
    """Every check that can fail before a request: outputs, options, the SAMP hub; then logs."""
    files = _outputs(args)
    config = _config(args, purpose)
    _fanout_kwargs(args)  # its checks, now
    if args.samp:
        from vosweep.samp import hub_running  # noqa: PLC0415 - optional feature

        if not await anyio.to_thread.run_sync(hub_running):
            raise UsageError("--samp: no SAMP hub is running (start TOPCAT or Aladin first)")
    _setup_logging(args)
    return files, config


async def _found(
    engine: Engine, args: argparse.Namespace, servicetype: Any, **fixed: Any
) -> RegistryResults | None:
    """The registry search of the constraint options (None, reported, when it failed)."""
    keywords = {**_search_keywords(args, servicetype), **fixed}
    if not _has_constraint(args) and args.maxrec is None:
        also = "".join(f" with {key}={value}" for key, value in fixed.items())
        print(f"No URLs and no constraint: asking every {servicetype} service{also} registered.")
    try:
        return await engine.discover(includeaux=args.includeaux, maxrec=args.maxrec, **keywords)
    except UsageError:
        raise
    except VosweepError as exc:
        print(f"vosweep: registry search failed: {_one_line(str(exc))}", file=sys.stderr)
        return None


def _announce(found: RegistryResults, asked: int) -> None:
    more = " (more matched: raise --maxrec)" if found.overflow else ""
    print(f"Registry: {len(found)} resources, {asked} services to ask{more}")


def _nothing_to_ask() -> int:
    print("vosweep: no services to ask: nothing written", file=sys.stderr)
    return EXIT_NOTHING


async def _sweep_command(
    args: argparse.Namespace,
    query: object,
    given: Sequence[Service],
    *,
    servicetype: Any,
    protocols: frozenset[Protocol],
) -> int:
    """Check the outputs, find the services (given or discovered), sweep, write, hand off."""
    files, config = await _prepare(args)
    async with Engine(config) as engine:
        targets = list(given)
        if not targets:
            found = await _found(engine, args, servicetype)
            if found is None:
                return EXIT_NOTHING
            targets = found.vosweep_services(protocols)
            _announce(found, len(targets))
        if not targets:
            return _nothing_to_ask()

        async def run(bar: ProgressBar, kwargs: dict[str, Any]) -> FanoutResult:
            return await engine.fanout(targets, query, on_part=bar, **kwargs)

        return await _run_and_write(args, files, len(targets), run)


def _fanout_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "resume":  # the checkpoint is the command's own argument
        return {}
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is None:
        if getattr(args, "rows_on_disk", False):
            raise UsageError("--rows-on-disk needs --checkpoint (the rows are kept there)")
        return {}
    return {
        "checkpoint": checkpoint,
        "checkpoint_info": {"command": args.command},
        "keep_rows": not args.rows_on_disk,
    }


async def _run_and_write(
    args: argparse.Namespace, files: Files, total: int | None, run: Run
) -> int:
    """Sweep with a progress bar, print the summary, write the files, hand off to SAMP."""
    kwargs = _fanout_kwargs(args)
    with ProgressBar(total=total, disable=not _progress_enabled(args)) as bar:
        try:
            result = await run(bar, kwargs)
        except FanoutAborted as exc:
            result = exc.result
    print(result.summary())
    code = _exit_code(result)
    if "--output" in files:
        path, fmt = files["--output"]
        await _write(result, path, fmt)
        print(f"wrote {result.rows} rows to {path}")
    if "--outcomes" in files:
        path, fmt = files["--outcomes"]
        await _write(result.outcomes_table(), path, fmt)
        print(f"wrote {len(result.outcomes)} outcomes to {path}")
    if args.samp and result.rows:
        code = await _samp(result.table, code)
    return code


async def _samp(table: Table, code: int) -> int:
    from vosweep.samp import SampError, send_table  # noqa: PLC0415 - optional feature

    try:
        sent = await anyio.to_thread.run_sync(lambda: send_table(table, name="vosweep"))
    except SampError as exc:
        print(f"vosweep: SAMP hand-off failed: {exc}", file=sys.stderr)
        return max(code, EXIT_PARTIAL)
    print(f"sent {len(table)} rows to {len(sent.recipients)} SAMP client(s)")
    return code


# --- commands -------------------------------------------------------------------------------


async def _discover(args: argparse.Namespace) -> int:
    files = _outputs(args)
    servicetype = args.servicetype
    keywords = _search_keywords(args, servicetype)
    if not keywords:
        raise UsageError("give at least one constraint (--servicetype, --keywords ...)")
    config = _config(args)
    _setup_logging(args)
    async with Engine(config) as engine:
        try:
            found: RegistryResults = await engine.discover(
                includeaux=args.includeaux, maxrec=args.maxrec, **keywords
            )
        except UsageError:
            raise
        except VosweepError as exc:
            print(f"vosweep: registry search failed: {exc}", file=sys.stderr)
            return EXIT_NOTHING
    more = " (more matched: raise --maxrec)" if found.overflow else ""
    print(f"{len(found)} resources from {found.endpoint}{more}")
    if not len(found):
        return EXIT_NOTHING
    summary = found.get_summary()
    summary.remove_column("description")
    print("\n".join(summary.pformat(max_lines=args.rows + 4, max_width=160)))
    if "--output" in files:
        path, fmt = files["--output"]
        await _write(found.to_table(), path, fmt)
        print(f"wrote {len(found)} resources to {path}")
    return EXIT_OK


async def _cone(args: argparse.Namespace) -> int:
    try:
        cone = Cone(ra=args.ra, dec=args.dec, radius=args.radius, verb=args.verb)
    except ValidationError as exc:
        raise _usage(exc) from None
    given = _services(await _given_urls(args), Service.scs)
    return await _sweep_command(
        args, cone, given, servicetype="scs", protocols=frozenset({Protocol.SCS})
    )


def _position_of(args: argparse.Namespace) -> dict[str, Any]:
    if args.pos is not None:
        if args.ra is not None or args.dec is not None:
            raise UsageError("give either --pos or --ra/--dec, not both")
        ra, dec = _floats(args.pos, "--pos", (2,), "'RA DEC' in degrees")
        return {"ra": ra, "dec": dec}
    if args.ra is None and args.dec is None:
        return {}
    for option, value in (("--ra", args.ra), ("--dec", args.dec)):
        if value is None:
            raise UsageError("give both --ra and --dec")
        _floats(value, option, (1,), "a number of degrees")
    return {"ra": float(args.ra), "dec": float(args.dec)}


def _band(args: argparse.Namespace) -> Any:
    band = _interval(args.band, "--band", lambda t: _quantity(t, "--band"))
    if band is not None and not isinstance(band, tuple):
        raise UsageError(f"--band must be 'LOW HIGH', got {args.band!r}")
    return band


def _times(args: argparse.Namespace) -> Any:
    times = _interval(args.time, "--time", _time)
    if times is not None and not isinstance(times, tuple):
        raise UsageError(f"--time must be 'START END', got {args.time!r}")
    return times


def _build(cls: Callable[..., Any], **data: Any) -> Any:
    try:
        return cls(**{key: value for key, value in data.items() if value is not None})
    except ValidationError as exc:
        raise _usage(exc) from None


async def _sia(args: argparse.Namespace) -> int:
    size = None
    if args.size is not None:
        size = _floats(args.size, "--size", (1, 2), "'WIDTH [HEIGHT]' in degrees")
    query = _build(
        ImageQuery,
        **_position_of(args),
        size=tuple(size) if size is not None and len(size) == 2 else (size[0] if size else None),
        band=_band(args),
        time=_times(args),
        collection=tuple(args.collection) if args.collection else None,
        maxrec=args.query_maxrec,
    )
    given = _services(args.sia1, Service.sia) + _services(args.sia2, Service.sia2)
    return await _sweep_command(
        args,
        query,
        given,
        servicetype=["sia", "sia2"],
        protocols=frozenset({Protocol.SIA, Protocol.SIA2}),
    )


async def _ssa(args: argparse.Namespace) -> int:
    diameter = None
    if args.diameter is not None:
        [diameter] = _floats(args.diameter, "--diameter", (1,), "a number of degrees")
    query = _build(
        SpectrumQuery,
        **_position_of(args),
        diameter=diameter,
        band=_band(args),
        time=_times(args),
        maxrec=args.query_maxrec,
    )
    given = _services(await _given_urls(args), Service.ssa)
    return await _sweep_command(
        args, query, given, servicetype="ssa", protocols=frozenset({Protocol.SSA})
    )


_ADQL_START = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)


async def _adql(args: argparse.Namespace) -> str:
    if (args.adql is None) == (args.adql_file is None):
        raise UsageError("give the query with either --adql or --adql-file")
    text: str = (
        args.adql if args.adql is not None else await _read_lines(args.adql_file, "--adql-file")
    )
    if not text.strip():
        raise UsageError("the ADQL query is empty")
    if not _ADQL_START.match(text):
        first = text.strip().split()[0]
        raise UsageError(f"ADQL must be a SELECT (or WITH) query, it starts with {first!r}")
    return text


async def _tap(args: argparse.Namespace) -> int:
    query = _build(TapQuery, adql=await _adql(args), mode=args.mode, maxrec=args.query_maxrec)
    given = _services(await _given_urls(args), Service.tap)
    return await _sweep_command(
        args, query, given, servicetype="tap", protocols=frozenset({Protocol.TAP})
    )


async def _demo(args: argparse.Namespace) -> int:
    from vosweep.testing import DEFAULT_MIX, RegistryProfile, SimulatedVO  # noqa: PLC0415

    if args.services < 1 or args.hosts < 1:
        raise UsageError("--services and --hosts must be at least 1")
    files, config = await _prepare(args, purpose="test")
    cone = Cone(ra=83.63, dec=22.01, radius=0.1)
    with_registry = _has_sim_extra()
    print(
        f"Starting a simulated VO: {args.services} cone-search services on {args.hosts} "
        f"loopback hosts (seed {args.seed}), with realistic failures"
        + (", and a RegTAP registry of 1,000 more records." if with_registry else ".")
    )
    registry = RegistryProfile(n_resources=1000, seed=args.seed) if with_registry else False
    async with SimulatedVO(
        n_services=args.services,
        n_hosts=args.hosts,
        seed=args.seed,
        mix=DEFAULT_MIX,
        registry=registry,
    ) as sim:
        targets: Sequence[Service] = sim.targets()
        if with_registry:
            config = config.model_copy(
                update={"registry": RegistryConfig(endpoints=(sim.registry_url,))}
            )
            targets = await _demo_discover(config)
        else:
            print("(pip install 'vosweep[sim]' to discover them through a simulated registry)")
        print(f"Sweeping {cone} with per-host cap {args.per_host}, timeout {args.timeout} s ...")
        async with Engine(config) as engine:

            async def run(bar: ProgressBar, kwargs: dict[str, Any]) -> FanoutResult:
                return await engine.fanout(targets, cone, on_part=bar, **kwargs)

            code = await _run_and_write(args, files, len(targets), run)
            result = engine.last_result
        stats = sim.stats()
    if result is None:  # pragma: no cover - set by every fan-out
        return code
    served = sum(s.rows_served for s in stats.services)
    peaks = ", ".join(str(h.max_in_flight) for h in stats.hosts)
    print(
        f"Server side: peak concurrent requests per host: {peaks} (cap {args.per_host}); "
        f"{served} rows served, {result.rows} rows received."
    )
    if len(result.table):
        print(result.table[: args.rows])
    if code == EXIT_PARTIAL and result.complete:
        return EXIT_OK  # the demo's failing services fail on purpose: the sweep worked
    return code


def _columns(args: argparse.Namespace) -> tuple[str, ...] | None:
    if args.columns is None:
        return None
    names = tuple(name.strip() for name in args.columns.split(",") if name.strip())
    if not names:
        raise UsageError(f"--columns must name columns, got {args.columns!r}")
    return names


async def _obscore(args: argparse.Namespace) -> int:
    from vosweep.sweeps.obscore import ObsCoreQuery, obscore, plan_obscore  # noqa: PLC0415

    position = _position_of(args)
    if (args.radius is None) != (not position):
        raise UsageError("give --radius with a position (--pos or --ra/--dec), and only then")
    cone = None
    if position:
        [radius] = _floats(args.radius, "--radius", (1,), "a number of degrees")
        cone = (position["ra"], position["dec"], radius)
    if args.adql is not None and not _ADQL_START.match(args.adql):
        raise UsageError("--adql must be a SELECT (or WITH) query on ivoa.obscore")
    query = _build(
        ObsCoreQuery,
        adql=args.adql,
        where=args.where,
        position=cone,
        match=args.match,
        time=_times(args),
        band=_band(args),
        dataproduct_type=args.dataproduct_type,
        calib_level=args.calib_level,
        collection=args.collection,
        columns=_columns(args),
        maxrec=args.query_maxrec,
        mode=args.mode,
    )
    given = _services(await _given_urls(args), Service.tap)
    files, config = await _prepare(args)
    async with Engine(config) as engine:
        services: Sequence[object] = given
        found = None
        if not given:
            found = await _found(engine, args, "tap", datamodel="obscore")
            if found is None:
                return EXIT_NOTHING
            services = found
        planned = len(plan_obscore(services, query))
        if found is not None:
            _announce(found, planned)
        if not planned:
            return _nothing_to_ask()

        async def run(bar: ProgressBar, kwargs: dict[str, Any]) -> FanoutResult:
            return await obscore(
                engine, query, services=services, dedupe=not args.no_dedupe, on_part=bar, **kwargs
            )

        return await _run_and_write(args, files, planned, run)


async def _epntap(args: argparse.Namespace) -> int:
    from vosweep.sweeps.epntap import EpnTapQuery, epntap, find_epncore_tables  # noqa: PLC0415

    query = _build(
        EpnTapQuery,
        target_name=args.target_name,
        target_class=args.target_class,
        time=_times(args),
        dataproduct_type=args.dataproduct_type,
        instrument_host_name=args.instrument_host_name,
        instrument_name=args.instrument_name,
        spectral_range=_interval(
            args.spectral_range, "--spectral-range", lambda t: _quantity(t, "--spectral-range")
        ),
        processing_level=args.processing_level,
        where=args.where,
        columns=_columns(args),
        maxrec=args.query_maxrec,
        mode=args.mode,
    )
    files, config = await _prepare(args)
    async with Engine(config) as engine:
        try:
            tables = await find_epncore_tables(engine)
        except UsageError:
            raise
        except VosweepError as exc:
            print(f"vosweep: registry search failed: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_NOTHING
        if args.table:
            tables = [table for table in tables if table.table_name in set(args.table)]
        print(f"Registry: {len(tables)} EPN-TAP tables to ask")
        if not tables:
            return _nothing_to_ask()

        async def run(bar: ProgressBar, kwargs: dict[str, Any]) -> FanoutResult:
            return await epntap(
                engine, query, tables=tables, dedupe=not args.no_dedupe, on_part=bar, **kwargs
            )

        return await _run_and_write(args, files, len(tables), run)


async def _resume(args: argparse.Namespace) -> int:
    from vosweep.checkpoint import count_targets, read_info  # noqa: PLC0415
    from vosweep.sweeps.epntap import finish_epntap  # noqa: PLC0415
    from vosweep.sweeps.obscore import finish_obscore  # noqa: PLC0415

    if not args.file.is_file():
        raise UsageError(f"no checkpoint file {args.file}")
    info = await anyio.to_thread.run_sync(read_info, args.file)
    total = await anyio.to_thread.run_sync(count_targets, args.file)
    files, config = await _prepare(args)
    finish = {"obscore": finish_obscore, "epntap": finish_epntap}.get(str(info.get("kind")))
    dedupe = bool(info.get("dedupe", True))
    print(f"Resuming the {info.get('kind') or info.get('command') or 'fan-out'} in {args.file}")
    async with Engine(config) as engine:

        async def run(bar: ProgressBar, kwargs: dict[str, Any]) -> FanoutResult:
            del kwargs
            result = await engine.resume(
                args.file,
                retry_failed=args.retry_failed,
                on_part=bar,
                keep_rows=not args.rows_on_disk,
            )
            if finish is None or args.rows_on_disk:
                return result  # rows on disk stay there: written as stored
            return await anyio.to_thread.run_sync(lambda: finish(result, dedupe=dedupe))

        return await _run_and_write(args, files, total, run)


def _has_sim_extra() -> bool:
    return all(find_spec(name) is not None for name in ("sqlglot", "cdshealpix"))


async def _demo_discover(config: EngineConfig) -> list[Service]:
    """The demo's discovery step: the fleet's cone searches, found through RegTAP."""
    started = time.perf_counter()
    async with Engine(config) as engine:
        found = await engine.discover(servicetype="scs", keywords=["fleet"])
        trips = engine.registry.round_trips
    services = found.services("scs")
    print(
        f"Registry: servicetype='scs', keywords=['fleet'] found {len(found)} resources"
        f" ({len(services)} cone searches) in {time.perf_counter() - started:.2f} s,"
        f" {trips} round trips"
    )
    return services


def _one_line(message: str) -> str:
    """A (pydantic) multi-line message as one line, without its documentation links."""
    lines = [line.strip() for line in message.splitlines()]
    kept = [line for line in lines if line and not line.startswith("For further information")]
    return re.sub(r"\s*\[type=[^\]]*\]", "", " ".join(kept))


COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "discover": _discover,
    "cone": _cone,
    "sia": _sia,
    "ssa": _ssa,
    "tap": _tap,
    "obscore": _obscore,
    "epntap": _epntap,
    "resume": _resume,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vosweep`` command; returns the exit code (see the module doc)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, already reported)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    limit_malloc_arenas()  # an application sweeping for hours: keep the RSS flat
    started = time.perf_counter()
    try:
        code: int = anyio.run(COMMANDS[args.command], args)
    except UsageError as exc:
        print(f"vosweep: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vosweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
