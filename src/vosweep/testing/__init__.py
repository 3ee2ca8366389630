"""vosweep's test kit: a simulated Virtual Observatory made of real servers on loopback.

`SimulatedVO` starts one aiohttp server per simulated host (host *k* on 127.0.0.(k+1)),
each serving many services whose `ServiceProfile` says how they misbehave: hangs, slow
drips, 5xx, 503/429 with Retry-After, resets, broken or truncated VOTables, overflows,
redirect loops, huge answers... Server-side counters (`SimStats`) prove what a client
did: how many requests it had in flight per host, how many rows it was sent.
`SimProcess` runs the same simulator in a child process for benchmarks.

``SimulatedVO(..., registry=True)`` adds a RegTAP registry (a TAP service answering real
ADQL over a `SyntheticRegistry` that also lists the fleet's services), with variants
chosen by `RegistryProfile`; it needs the ``sim`` extra (``pip install 'vosweep[sim]'``).

``Protocol.TAP`` services of the fleet are TAP 1.1 services (sync, UWS 1.1 jobs, uploads,
VOSI) over ObsCore, EPN-TAP and catalogue tables, shaped by their `TapProfile`; they
count their jobs, so that ``sim.jobs_alive()`` proves a client deleted what it created.
They need the ``sim`` extra too.
"""

from __future__ import annotations

from vosweep.scheduling.retry import no_backoff as no_backoff
from vosweep.testing._process import SimProcess as SimProcess
from vosweep.testing._profiles import DEFAULT_MIX as DEFAULT_MIX
from vosweep.testing._profiles import Behaviour as Behaviour
from vosweep.testing._profiles import CapabilitiesState as CapabilitiesState
from vosweep.testing._profiles import JobOutcome as JobOutcome
from vosweep.testing._profiles import ServiceProfile as ServiceProfile
from vosweep.testing._profiles import ServiceSpec as ServiceSpec
from vosweep.testing._profiles import TapProfile as TapProfile
from vosweep.testing._profiles import TapTable as TapTable
from vosweep.testing._profiles import build_fleet as build_fleet
from vosweep.testing._profiles import override_fleet as override_fleet
from vosweep.testing._registry import NamedResource as NamedResource
from vosweep.testing._registry import RegistryUrls as RegistryUrls
from vosweep.testing._registry import SyntheticRegistry as SyntheticRegistry
from vosweep.testing._registry import build_registry as build_registry
from vosweep.testing._regtap import RegistryProfile as RegistryProfile
from vosweep.testing._regtap import RegistryStats as RegistryStats
from vosweep.testing._scs import expected_rows as expected_rows
from vosweep.testing._sim import SimHost as SimHost
from vosweep.testing._sim import SimManifest as SimManifest
from vosweep.testing._sim import SimService as SimService
from vosweep.testing._sim import SimulatedVO as SimulatedVO
from vosweep.testing._stats import HostStats as HostStats
from vosweep.testing._stats import ServiceStats as ServiceStats
from vosweep.testing._stats import SimStats as SimStats

__all__ = [
    "DEFAULT_MIX",
    "Behaviour",
    "CapabilitiesState",
    "HostStats",
    "JobOutcome",
    "NamedResource",
    "RegistryProfile",
    "RegistryStats",
    "RegistryUrls",
    "ServiceProfile",
    "ServiceSpec",
    "ServiceStats",
    "SimHost",
    "SimManifest",
    "SimProcess",
    "SimService",
    "SimStats",
    "SimulatedVO",
    "SyntheticRegistry",
    "TapProfile",
    "TapTable",
    "build_fleet",
    "build_registry",
    "expected_rows",
    "no_backoff",
    "override_fleet",
]
