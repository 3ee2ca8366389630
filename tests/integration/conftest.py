"""Fixtures shared by the integration tests: loopback only, and pyvo kept offline."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

#: The IVOA DataLink core vocabulary pyvo would download (kept in the corpus).
_DESISE = "pyvo/pyvo/dal/tests/data/datalink/datalink.desise"


def datalink_vocabulary() -> dict[str, Any]:
    """The DataLink core vocabulary from the corpus, or just enough of it without one."""
    root = os.environ.get("VOSWEEP_CORPUS")
    corpus = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared/corpus"
    path = corpus / _DESISE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    terms = ("this", "preview", "auxiliary", "progenitor")
    return {"terms": {t: {"narrower": []} for t in terms}}


@pytest.fixture
def offline_pyvo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test on any connection beyond loopback; pyvo reads vocabularies offline."""
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        if sock.family in {socket.AF_INET, socket.AF_INET6}:
            host = str(address[0])
            assert host.startswith("127.") or host == "::1", f"non-loopback connect: {address}"
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    try:
        from pyvo.utils import vocabularies  # noqa: PLC0415 - pyvo is optional
    except ImportError:
        return
    vocabulary = datalink_vocabulary()
    monkeypatch.setattr(vocabularies, "get_vocabulary", lambda *_, **__: vocabulary)
