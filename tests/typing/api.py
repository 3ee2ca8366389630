"""vosweep's public API used as a user writes it; checked by mypy only, never executed.

``mypy`` (``[tool.mypy] files`` in pyproject.toml) checks this file in strict mode, so
every use below must type-check without a cast, and ``assert_type`` pins what the API
returns. pytest never imports it (no ``test_`` names), and nothing here sends a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_type

import astropy.units as u
from astropy.coordinates import SkyCoord

import vosweep


def make_cone() -> vosweep.Cone:
    """A cone from a SkyCoord and a radius in arcmin."""
    crab = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg, frame="icrs")
    cone = vosweep.Cone(crab, radius=6 * u.arcmin)
    assert_type(cone.ra, float)
    assert_type(cone.radius, float)
    return cone


def make_services(access_urls: Sequence[str]) -> list[vosweep.Service]:
    """Cone-search services from their access URLs."""
    services = [vosweep.Service.scs(url, name=f"svc{i}") for i, url in enumerate(access_urls)]
    assert_type(services[0].protocol, vosweep.Protocol)
    assert_type(services[0].label, str)
    return services


def make_config() -> vosweep.EngineConfig:
    """A configuration built from the typed policy objects."""
    return vosweep.EngineConfig(
        timeouts=vosweep.Timeouts(connect=5.0, read=15.0, attempt=20.0),
        limits=vosweep.Limits(total=50, per_host=3),
        retry=vosweep.RetryPolicy(attempts=2),
        breaker=vosweep.BreakerPolicy(failure_threshold=3),
        errors=vosweep.ErrorPolicy.parse("retry2"),
        deadline=120.0,
    )


def report(result: vosweep.FanoutResult) -> list[str]:
    """Read a result: the summary, the counts and every outcome."""
    lines = [result.summary(), result.summary(failures=5)]
    counts = result.counts()
    assert_type(counts, dict[vosweep.Status, int])
    lines.append(f"{counts[vosweep.Status.OK]} ok, {result.rows} rows, complete={result.complete}")
    for outcome in result.outcomes:
        assert_type(outcome, vosweep.ServiceOutcome)
        if outcome.status is vosweep.Status.TIMEOUT or outcome.status.failed:
            code: int | None = outcome.http_status
            lines.append(f"{outcome.service.label}: {outcome.error_type} {code} {outcome.message}")
        elif outcome.status.succeeded:
            lines.append(f"{outcome.service.label}: {outcome.rows} rows in {outcome.elapsed:.2f} s")
    failed: list[vosweep.ServiceOutcome] = result.failed()
    lines.extend(o.service.access_url for o in failed)
    reason: str | None = result.reason
    elapsed: float = result.elapsed
    lines.append(f"{reason} after {elapsed} s; {len(result.table)} rows in the table")
    return lines


async def sweep_with_an_engine(access_urls: Sequence[str]) -> vosweep.FanoutResult:
    """An engine with config overrides, two fan-outs, statistics and the last result."""
    seen: list[vosweep.Part] = []

    def on_part(part: vosweep.Part) -> None:
        seen.append(part)

    services = make_services(access_urls)
    cone = make_cone()
    async with vosweep.Engine(make_config(), errors="ignore", deadline=60.0) as engine:
        assert_type(engine, vosweep.Engine)
        result = await engine.fanout(services, cone, on_part=on_part)
        assert_type(result, vosweep.FanoutResult)
        again = await engine.fanout(services, cone, errors="abort", deadline=10.0)
        stats = engine.statistics()
        assert_type(stats, vosweep.EngineStatistics)
    last: vosweep.FanoutResult | None = engine.last_result
    assert last is again
    return result


async def sweep_and_stream(access_urls: Sequence[str]) -> vosweep.FanoutResult:
    """Parts as they arrive, then everything received."""
    async with (
        vosweep.Engine(timeouts=vosweep.Timeouts(attempt=10.0)) as engine,
        engine.stream(make_services(access_urls), make_cone(), buffer=16) as parts,
    ):
        assert_type(parts, vosweep.SweepStream)
        async for part in parts:
            assert_type(part, vosweep.Part)
            index: int = part.index
            status: vosweep.Status = part.outcome.status
            print(index, status, len(part.tables))
            if part.outcome.rows > 1000:
                break
    return parts.result()


async def sweep_once(access_urls: Sequence[str]) -> vosweep.FanoutResult | None:
    """The one-call form, and the errors a caller may want to handle."""
    try:
        return await vosweep.fanout(
            make_services(access_urls), make_cone(), config=make_config(), errors="abort"
        )
    except vosweep.FanoutAborted as exc:
        partial: vosweep.FanoutResult = exc.result
        cause: vosweep.ServiceError = exc.cause
        print(cause.service, cause.url, cause.status, partial.rows)
        return partial
    except vosweep.UsageError as exc:
        print(f"bad input: {exc}")
        return None


def sweep_in_a_script(access_urls: Sequence[str]) -> vosweep.FanoutResult | None:
    """fanout_sync, and the partial result after Ctrl-C."""
    try:
        result = vosweep.fanout_sync(make_services(access_urls), make_cone(), deadline=30.0)
    except vosweep.SweepInterrupted as exc:
        partial: vosweep.FanoutResult | None = exc.result
        return partial
    assert_type(result, vosweep.FanoutResult)
    return result


async def images_spectra_tables(engine: vosweep.Engine, services: list[vosweep.Service]) -> int:
    """Images, spectra and ADQL in one fan-out; DataLink previews; VOSI; service parameters."""
    from astropy.table import Table  # noqa: PLC0415
    from astropy.time import Time  # noqa: PLC0415

    crab = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg, frame="icrs")
    query = vosweep.PerProtocol(
        sia=vosweep.ImageQuery(crab, radius=3 * u.arcmin, band=(400 * u.nm, None)),
        ssa=vosweep.SpectrumQuery(crab, diameter=0.1, time=(Time("2010-01-01"), None)),
        tap=vosweep.TapQuery(
            "SELECT * FROM TAP_UPLOAD.t", uploads={"t": Table({"a": [1]})}, mode="async"
        ),
    )
    result = await engine.fanout(services, query)
    links = await engine.datalinks(result, semantics="#preview")
    assert_type(links, vosweep.FanoutResult)
    caps = await engine.capabilities(services[0])
    if caps is not None and caps.tap is not None:
        assert_type(caps.tap.best_format(), str | None)
    params = await engine.service_parameters(services[0])
    config = vosweep.EngineConfig(tap=vosweep.TapPolicy(mode="async", job_timeout=60.0))
    assert config.tap.mode in {"sync", "async", "auto"}
    return result.rows + links.rows + len(params)
