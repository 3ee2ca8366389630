# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""The fast VOTable decoder on real service responses (``../shared/corpus``).

Differential: wherever the fast decoder takes a file, its outcome (tables, status,
message, or error) must equal astropy's reading of the same file; and it must take
most of the corpus's VOTables, or it is not worth having.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from fastvot_compare import assert_same_outcome, outcome
from vosweep.errors import ServiceError
from vosweep.protocols import votable as votable_module
from vosweep.protocols.votable import parse_votable

#: VOTables in the corpus the fast decoder must take (it took 93 of 95 when variable-length
#: numeric arrays came in: astropy itself refuses one, ESA's Euclid answer has arrays of
#: char arrays, ``arraysize="100x*"``).
FAST_FLOOR = 92


def corpus_helpers() -> Any:
    """This folder's conftest, loaded by path (``import conftest`` may find another)."""
    spec = importlib.util.spec_from_file_location(
        "fastvot_corpus_conftest", Path(__file__).with_name("conftest.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fast_path_taken(body: bytes, monkeypatch: pytest.MonkeyPatch) -> bool | None:
    """Whether `parse_votable` used the fast decoder (None: no VOTable got that far)."""
    taken: list[bool] = []
    original = votable_module._parse_fast

    def spy(data: bytes, start: int, codec: str | None) -> Any:
        parsed = original(data, start, codec)
        taken.append(parsed is not None)
        return parsed

    with monkeypatch.context() as patch:
        patch.setattr(votable_module, "_parse_fast", spy)
        with contextlib.suppress(ServiceError):
            parse_votable(body)
    return taken[0] if taken else None


def test_fast_matches_astropy(corpus_dir: Path, corpus_file: str) -> None:
    """Every file ends the same with and without the fast decoder (tables, status, error)."""
    body = (corpus_dir / corpus_file).read_bytes()
    assert_same_outcome(outcome(body, fast=True), outcome(body, fast=False))


def test_fast_path_coverage(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast decoder takes nearly every VOTable of the corpus."""
    taken: list[str] = []
    declined: list[str] = []
    for name in corpus_helpers().corpus_files(corpus_dir):
        result = fast_path_taken((corpus_dir / name).read_bytes(), monkeypatch)
        if result is not None:
            (taken if result else declined).append(name)
    print(f"\nfast decoder: {len(taken)} of {len(taken) + len(declined)} corpus VOTables")
    print("left to astropy:", *declined, sep="\n  ")
    assert len(taken) >= FAST_FLOOR


def test_plain_prolog_shortcut_agrees(corpus_dir: Path, corpus_file: str) -> None:
    """Where the one-match prolog check accepts a file, the full sniffers agree with it.

    The shortcut replaces `_sniff`, `_recode_for_expat` and the fast decoder's own
    prolog checks: same start, no re-encoding, same payload codec, no DTD subset.
    """
    from vosweep.protocols.fastvot import _skeleton  # noqa: PLC0415

    body = (corpus_dir / corpus_file).read_bytes()
    plain = votable_module._plain_start(body)
    if plain is None:
        return
    start, codec = plain
    assert votable_module._sniff(body, "", gzipped=False) == start
    assert votable_module._recode_for_expat(body, start) is None
    assert _skeleton._payload_encoding(body[start:]) == codec
    assert _skeleton._plain_prolog(body[start:])
