"""The SIA (v1, v2) and SSA side of the simulator (being written: placeholders for now)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vosweep.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from vosweep.testing._profiles import ServiceSpec
    from vosweep.testing._votables import Document

__all__ = ["Sia2Handler", "SiaHandler", "SsaHandler"]


class _Pending:
    def answer(self, spec: ServiceSpec, params: Mapping[str, str]) -> Document:
        raise UsageError(f"the simulator cannot serve {spec.protocol} yet")


class SiaHandler(_Pending):
    """SIA 1.0 queries."""


class Sia2Handler(_Pending):
    """SIA 2.0 queries."""


class SsaHandler(_Pending):
    """SSA 1.1 queries."""
