# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Fixtures for the tests on real service responses kept in ``../shared/corpus``.

The corpus lives next to the repository (``<x>/main`` and ``<x>/shared``), not in it;
``VOSWEEP_CORPUS`` points elsewhere. Without it the tests skip instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS_ENV = "VOSWEEP_CORPUS"
SKIP_REASON = "../shared/corpus not found: set VOSWEEP_CORPUS to run the real-response tests"
#: Files that are not responses at all, or FITS (a format the VOTable parser never sees).
_NOT_RESPONSES = frozenset({"MANIFEST.md"})
_FITS_SUFFIXES = frozenset({".fits", ".fit", ".fts"})


def locate_corpus() -> Path | None:
    """Return the corpus folder, or None when it is absent."""
    override = os.environ.get(CORPUS_ENV)
    if override:
        path = Path(override)
    else:
        path = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return path if path.is_dir() else None


def corpus_files(root: Path) -> list[str]:
    """Every file a service could send in place of a VOTable, relative to *root*, sorted."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file()
        and path.name not in _NOT_RESPONSES
        and path.suffix.lower() not in _FITS_SUFFIXES
    )


def corpus_params() -> list[object]:
    """Parameters for ``corpus_file``: one per file, or one skipped case without a corpus."""
    root = locate_corpus()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    return [pytest.param(name, id=name) for name in corpus_files(root)]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The corpus folder; skips the test when it is absent."""
    root = locate_corpus()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test asking for ``corpus_file`` over the whole corpus."""
    if "corpus_file" in metafunc.fixturenames:
        metafunc.parametrize("corpus_file", corpus_params())
