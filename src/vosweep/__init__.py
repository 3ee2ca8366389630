"""vosweep: query the whole Virtual Observatory at once.

The public API is exactly what ``__all__`` lists, plus subpackages: `vosweep.registry`
(discovery), `vosweep.sweeps` (ObsCore, EPN-TAP and UCD-driven global sweeps),
`vosweep.samp` (hand a table to TOPCAT or Aladin) and `vosweep.testing` (the simulated VO).
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import Any as _Any

from vosweep import registry as registry
from vosweep import sweeps as sweeps
from vosweep._log import configure_logging as configure_logging
from vosweep._memory import limit_malloc_arenas as limit_malloc_arenas
from vosweep.config import DEFAULT_BREAKER as DEFAULT_BREAKER
from vosweep.config import DEFAULT_LIMITS as DEFAULT_LIMITS
from vosweep.config import DEFAULT_RETRY as DEFAULT_RETRY
from vosweep.config import DEFAULT_TIMEOUTS as DEFAULT_TIMEOUTS
from vosweep.config import BreakerPolicy as BreakerPolicy
from vosweep.config import EngineConfig as EngineConfig
from vosweep.config import ErrorPolicy as ErrorPolicy
from vosweep.config import Limits as Limits
from vosweep.config import RegistryConfig as RegistryConfig
from vosweep.config import RetryPolicy as RetryPolicy
from vosweep.config import TapPolicy as TapPolicy
from vosweep.config import Timeouts as Timeouts
from vosweep.engine import Engine as Engine
from vosweep.engine import EngineStatistics as EngineStatistics
from vosweep.engine import SweepStream as SweepStream
from vosweep.engine import fanout as fanout
from vosweep.engine import fanout_sync as fanout_sync
from vosweep.errors import CircuitOpen as CircuitOpen
from vosweep.errors import FanoutAborted as FanoutAborted
from vosweep.errors import HTTPStatusError as HTTPStatusError
from vosweep.errors import NotSupported as NotSupported
from vosweep.errors import QueryRejected as QueryRejected
from vosweep.errors import RateLimited as RateLimited
from vosweep.errors import RegistryFeatureMissing as RegistryFeatureMissing
from vosweep.errors import RegistryUnavailable as RegistryUnavailable
from vosweep.errors import ResponseFormatError as ResponseFormatError
from vosweep.errors import ResponseTooLarge as ResponseTooLarge
from vosweep.errors import ServiceError as ServiceError
from vosweep.errors import ServiceTimeout as ServiceTimeout
from vosweep.errors import SweepInterrupted as SweepInterrupted
from vosweep.errors import TooManyRedirects as TooManyRedirects
from vosweep.errors import TransportError as TransportError
from vosweep.errors import UsageError as UsageError
from vosweep.errors import VosweepError as VosweepError
from vosweep.outcomes import Part as Part
from vosweep.outcomes import ServiceOutcome as ServiceOutcome
from vosweep.outcomes import Status as Status
from vosweep.progress import ProgressBar as ProgressBar
from vosweep.queries import Cone as Cone
from vosweep.queries import DatalinkQuery as DatalinkQuery
from vosweep.queries import ImageQuery as ImageQuery
from vosweep.queries import PerProtocol as PerProtocol
from vosweep.queries import SpectrumQuery as SpectrumQuery
from vosweep.queries import TapQuery as TapQuery
from vosweep.result import FanoutResult as FanoutResult
from vosweep.services import Protocol as Protocol
from vosweep.services import Service as Service
from vosweep.targets import Targeted as Targeted

__all__ = [
    "DEFAULT_BREAKER",
    "DEFAULT_LIMITS",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "BreakerPolicy",
    "CircuitOpen",
    "Cone",
    "DatalinkQuery",
    "Engine",
    "EngineConfig",
    "EngineStatistics",
    "ErrorPolicy",
    "FanoutAborted",
    "FanoutResult",
    "HTTPStatusError",
    "ImageQuery",
    "Limits",
    "NotSupported",
    "Part",
    "PerProtocol",
    "ProgressBar",
    "Protocol",
    "QueryRejected",
    "RateLimited",
    "RegistryConfig",
    "RegistryFeatureMissing",
    "RegistryUnavailable",
    "ResponseFormatError",
    "ResponseTooLarge",
    "RetryPolicy",
    "Service",
    "ServiceError",
    "ServiceOutcome",
    "ServiceTimeout",
    "SpectrumQuery",
    "Status",
    "SweepInterrupted",
    "SweepStream",
    "TapPolicy",
    "TapQuery",
    "Targeted",
    "Timeouts",
    "TooManyRedirects",
    "TransportError",
    "UsageError",
    "VosweepError",
    "configure_logging",
    "fanout",
    "fanout_sync",
    "limit_malloc_arenas",
]


def __getattr__(name: str) -> _Any:
    # The version comes from the installed metadata, read only when asked for.
    if name == "__version__":
        return _version("vosweep")
    raise AttributeError(f"module 'vosweep' has no attribute {name!r}")
