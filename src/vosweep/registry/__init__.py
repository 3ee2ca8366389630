"""VO Registry discovery over RegTAP: pyvo's constraints, asynchronously, with failover.

::

    from vosweep import registry

    async with vosweep.Engine() as engine:
        found = await engine.discover(servicetype="tap", datamodel="obscore")
        found = await engine.discover(registry.Freetext("white dwarf"), registry.Waveband("UV"))
        found["ivo://..."].describe()
        result = await engine.fanout(found, query)
        # or in one step:
        result = await engine.fanout(registry.search(servicetype="scs", waveband="UV"), query)

`search` prepares a search without running it; `build_query` shows the ADQL it runs on a
registry with given features (pyvo's ``get_RegTAP_query``).
"""

from __future__ import annotations

from typing import Any as _Any

from vosweep.registry.cache import clear_cache as clear_cache
from vosweep.registry.client import QueryAnswer as QueryAnswer
from vosweep.registry.client import RegistryClient as RegistryClient
from vosweep.registry.constraints import UAT as UAT
from vosweep.registry.constraints import UCD as UCD
from vosweep.registry.constraints import Author as Author
from vosweep.registry.constraints import Constraint as Constraint
from vosweep.registry.constraints import Datamodel as Datamodel
from vosweep.registry.constraints import Freetext as Freetext
from vosweep.registry.constraints import Ivoid as Ivoid
from vosweep.registry.constraints import SearchSpec as SearchSpec
from vosweep.registry.constraints import Servicetype as Servicetype
from vosweep.registry.constraints import Spatial as Spatial
from vosweep.registry.constraints import Spectral as Spectral
from vosweep.registry.constraints import SubqueriedConstraint as SubqueriedConstraint
from vosweep.registry.constraints import Temporal as Temporal
from vosweep.registry.constraints import Waveband as Waveband
from vosweep.registry.constraints import build_query as build_query
from vosweep.registry.features import RegistryFeatures as RegistryFeatures
from vosweep.registry.features import parse_capabilities as parse_capabilities
from vosweep.registry.results import Column as Column
from vosweep.registry.results import Contact as Contact
from vosweep.registry.results import Interface as Interface
from vosweep.registry.results import RegistryResource as RegistryResource
from vosweep.registry.results import RegistryResults as RegistryResults
from vosweep.registry.results import TableMeta as TableMeta

__all__ = [
    "UAT",
    "UCD",
    "Author",
    "Column",
    "Constraint",
    "Contact",
    "Datamodel",
    "Freetext",
    "Interface",
    "Ivoid",
    "QueryAnswer",
    "RegistryClient",
    "RegistryFeatures",
    "RegistryResource",
    "RegistryResults",
    "SearchSpec",
    "Servicetype",
    "Spatial",
    "Spectral",
    "SubqueriedConstraint",
    "TableMeta",
    "Temporal",
    "Waveband",
    "build_query",
    "clear_cache",
    "parse_capabilities",
    "search",
]


def search(
    *constraints: Constraint | str,
    includeaux: bool = False,
    maxrec: int | None = None,
    **keywords: _Any,
) -> SearchSpec:
    """A registry search, prepared (checked) but not run: pass it to `Engine.fanout`.

    Takes what ``pyvo.registry.search`` takes; the engine runs the search on its
    registry endpoints and asks every service found.

    Raises:
        UsageError: No constraint, an unknown keyword, or a bad value.
    """
    return SearchSpec.from_arguments(*constraints, includeaux=includeaux, maxrec=maxrec, **keywords)
