# Copyright (c) 2026 vosweep developers. BSD-3-Clause licence.
"""Mutation fuzzing of every parser, seeded from every real response in the corpus.

Each corpus document is mutated (bytes, structure, attributes, prolog, payloads,
encodings: `conftest.mutate`) and fed to every parser, which must return or raise a
`ServiceError`, quickly and without a memory blow-up (`conftest.check`).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import (
    CORPUS_FILES,
    PARSERS,
    XML_PARSERS,
    check,
    corpus_bytes,
    corpus_params,
    fuzz_settings,
    mutate,
)


@pytest.mark.parametrize("corpus_file", corpus_params())
@fuzz_settings(3)
@given(data=st.data())
def test_mutated_corpus_document(corpus_file: str, data: st.DataObject) -> None:
    original = corpus_bytes(corpus_file)
    body = mutate(original, data.draw(st.randoms(use_true_random=False), label="mutations"))
    check("votable", body)
    for name in XML_PARSERS:
        check(name, body)


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus not found")
@fuzz_settings(40)
@given(data=st.data())
def test_mutated_corpus_every_parser_bounded_memory(data: st.DataObject) -> None:
    """Mutants of small documents through every parser, astropy's path and memory watched."""
    small = [name for name in CORPUS_FILES if len(corpus_bytes(name)) < 64 * 1024]
    original = corpus_bytes(data.draw(st.sampled_from(small), label="document"))
    body = mutate(original, data.draw(st.randoms(use_true_random=False), label="mutations"))
    for name in PARSERS:
        check(name, body, memory=name in {"votable", "votable-astropy"})


def test_the_property_can_fail() -> None:
    """The checker does flag a crash (else every fuzz test would pass vacuously)."""
    PARSERS["_broken"] = lambda body: body.decode("ascii")
    try:
        with pytest.raises(AssertionError, match="UnicodeDecodeError"):
            check("_broken", b"\xff")
    finally:
        del PARSERS["_broken"]
