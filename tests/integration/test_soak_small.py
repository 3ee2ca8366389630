"""The soak's code path on 300 services, and its checks shown to fail when they should.

``benchmarks/bench_soak.py`` runs 10,000 services for minutes (``nox -s soak``); this runs
the very same functions on a small fleet, so the soak cannot rot between releases.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vosweep
from vosweep.testing import (
    Behaviour,
    HostStats,
    ServiceSpec,
    ServiceStats,
    SimStats,
    build_fleet,
    expected_rows,
)

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_soak.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", _PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


soak = _load()

SMALL = soak.SoakOptions(services=300, hosts=6, dead_hosts=(3, 5), timeout=1.0, rounds=1)


@pytest.mark.slow
def test_small_soak_passes_every_check():
    """300 services, 10% failing, 2 dead hosts: rows, no leaks, breaker, politeness."""
    report = soak.run_soak(SMALL)
    failed = [c for c in report.checks if not c.passed]
    assert not failed, soak.render(report)
    (figures,) = report.rounds
    dead = [s for s in report.fleet if s.host_index in SMALL.dead_hosts]
    skipped = figures.counts[vosweep.Status.SKIPPED]
    assert len(dead) > 2 * SMALL.hosts  # enough services on the dead hosts to mean something
    assert skipped >= len(dead) // 2  # most dead-host services never sent
    assert figures.counts[vosweep.Status.TIMEOUT] > 0  # the hangs were there and cut
    assert figures.rows > 0
    assert {c.name for c in report.checks} >= {
        "every healthy service's rows",
        "no file-descriptor leak",
        "no task leak",
        "breaker spared dead host 3",
        "breaker spared dead host 5",
        "live hosts within requests + retry budget",
    }
    text = soak.render(report)
    assert "| check | result | figures |" in text
    assert "**FAIL**" not in text


@given(share=st.floats(min_value=0.01, max_value=0.3))
def test_mix_fails_the_asked_share(share: float):
    """The mix fails exactly *share* of the fleet, keeps DEFAULT_MIX's shape, no 300 MB."""
    mix = soak.soak_mix(share)
    failing = math.fsum(f for b, f in mix.items() if b in soak.FAILING)
    assert failing == pytest.approx(share)
    assert Behaviour.OVERSIZED not in mix
    assert all(f >= 0 for f in mix.values())
    assert math.fsum(mix.values()) <= 1.0
    ratio = mix[Behaviour.HANG] / mix[Behaviour.GZIP]
    assert ratio == pytest.approx(vosweep.testing.DEFAULT_MIX[Behaviour.HANG] / 0.02)


def test_fleet_is_bounded_and_seeded():
    """Hangs hold a connection at most three timeouts; the same options give the same fleet."""
    options = dataclasses.replace(SMALL, services=200)
    fleet = soak.soak_fleet(options)
    assert fleet == soak.soak_fleet(options)
    assert {s.profile.max_hang for s in fleet} == {3 * options.timeout}
    failing = sum(1 for s in fleet if not s.profile.delivers_rows)
    assert abs(failing - 0.10 * 200) <= 2  # each behaviour's count is rounded on its own


# --------------------------------------------------------------------------- the checks


def _outcome(spec: ServiceSpec, status: str, **fields: Any) -> vosweep.ServiceOutcome:
    service = vosweep.Service.scs(f"http://127.0.0.{spec.host_index + 1}{spec.path}")
    return vosweep.ServiceOutcome(service=service, status=vosweep.Status(status), **fields)


def _clean_report(options: Any) -> Any:
    """A report of a perfect round: what the checks must accept."""
    fleet = build_fleet(options.services, options.hosts, seed=3)
    config = soak.soak_config(options)
    dead = set(options.dead_hosts)
    outcomes, services = [], []
    tried: dict[int, int] = {}
    for spec in fleet:
        rows = expected_rows(spec, soak.CONE.ra, soak.CONE.dec, soak.CONE.radius)
        served = 0
        if spec.host_index in dead:
            tried[spec.host_index] = tried.get(spec.host_index, 0) + 1
            if tried[spec.host_index] <= config.breaker.failure_threshold:
                outcomes.append(_outcome(spec, "error", attempts=1, error_type="TransportError"))
            else:
                outcomes.append(_outcome(spec, "skipped", error_type="CircuitOpen"))
        else:
            served = rows
            outcomes.append(_outcome(spec, "ok" if rows else "empty", rows=rows, attempts=1))
        services.append(
            ServiceStats(
                index=spec.index,
                name=spec.name,
                host_index=spec.host_index,
                requests=0 if spec.host_index in dead else 1,
                rows_served=served,
            )
        )
    hosts = tuple(
        HostStats(
            index=h,
            name=f"127.0.0.{h + 1}",
            port=8000,
            dead=h in dead,
            requests=sum(1 for s in fleet if s.host_index == h and h not in dead),
        )
        for h in range(options.hosts)
    )
    total = sum(o.rows for o in outcomes)
    figures = soak.RoundFigures(
        wall=5.0,
        counts={},
        rows=total,
        table_rows=total,
        complete=True,
        outcomes=outcomes,
        fds_before=10,
        fds_after=10,
        tasks_before=1,
        tasks_after=1,
        rss_before=100 * soak.MB,
        rss_peak_sampled=120 * soak.MB,
        rss_after=110 * soak.MB,
        stats=SimStats(hosts=hosts, services=tuple(services)),
    )
    report = soak.SoakReport(options, fleet, config, rounds=[figures])
    report.fds_start = report.fds_end = 8
    return report


def _lose_rows(report: Any) -> None:
    figures = report.rounds[0]
    i = next(i for i, o in enumerate(figures.outcomes) if o.rows)
    figures.outcomes[i] = figures.outcomes[i].model_copy(
        update={"rows": 0, "status": vosweep.Status.EMPTY}
    )


def _leak_fds(report: Any) -> None:
    report.rounds[0].fds_after += 5


def _leak_tasks(report: Any) -> None:
    report.rounds[0].tasks_after = 4


def _hammer_dead_host(report: Any) -> None:
    figures = report.rounds[0]
    for i, spec in enumerate(report.fleet):
        if spec.host_index == 3:
            figures.outcomes[i] = _outcome(spec, "error", attempts=3, error_type="TransportError")


def _storm_live_host(report: Any) -> None:
    stats = report.rounds[0].stats
    hosts = list(stats.hosts)
    hosts[0] = hosts[0].model_copy(update={"requests": 3 * hosts[0].requests + 50})
    report.rounds[0].stats = stats.model_copy(update={"hosts": tuple(hosts)})


def _grow_memory(report: Any) -> None:
    second = dataclasses.replace(
        report.rounds[0], rss_after=report.rounds[0].rss_after + 500 * soak.MB
    )
    report.rounds.append(second)


def _grow_objects(report: Any) -> None:
    report.rounds[0].objects_after = 100_000
    second = dataclasses.replace(report.rounds[0], objects_after=150_000, checks=[])
    report.rounds.append(second)


@pytest.mark.parametrize(
    ("spoil", "failing"),
    [
        (_lose_rows, "every healthy service's rows"),
        (_leak_fds, "no file-descriptor leak"),
        (_leak_tasks, "no task leak"),
        (_hammer_dead_host, "breaker spared dead host 3"),
        (_storm_live_host, "live hosts within requests + retry budget"),
        (_grow_memory, "RSS flat from round to round"),
        (_grow_objects, "Python objects flat from round to round"),
    ],
)
def test_each_check_catches_its_fault(spoil: Callable[[Any], None], failing: str):
    """A clean round passes; spoiling one figure fails exactly the check that watches it."""
    options = dataclasses.replace(SMALL, services=120)
    report = _clean_report(options)
    assert all(c.passed for c in soak.judge(report)), soak.judge(report)
    spoil(report)
    failed = {
        c.name.removeprefix("round 1: ").removeprefix("round 2: ")
        for c in soak.judge(report)
        if not c.passed
    }
    assert failed == {failing}
