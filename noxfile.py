"""Sessions: tests, lint, typecheck, bench (``nox`` alone runs the first three)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage (integration tests run the simulated VO)."""
    session.install("-e", ".[pyvo,sim]", *_group("tests"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--fail-under=85")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/ and on the public API as user code (tests/typing)."""
    session.install("-e", ".[sim]", *_group("typing"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against baselines run in the same process; writes benchmarks/results/."""
    session.install("-e", ".[progress,sim,parquet]", *_group("bench"))
    args = session.posargs or []
    session.run("python", "benchmarks/bench_votable.py", *args)
    session.run("python", "benchmarks/bench_aggregate.py", *args)
    session.run("python", "benchmarks/bench_fanout.py", *args)
    session.run("python", "benchmarks/bench_registry.py")
    session.run("python", "benchmarks/bench_sweep_memory.py")


@nox.session
def soak(session: nox.Session) -> None:
    """The 10,000-service soak (minutes, so not run by default); writes results/soak.md.

    Exits non-zero when a check fails: rows lost, a descriptor or task leak, RSS growing
    from round to round, a dead host hammered or a live one over its retry budget.
    """
    session.install("-e", ".[progress,sim,parquet]", *_group("bench"))
    session.run("python", "benchmarks/bench_soak.py", *session.posargs)
