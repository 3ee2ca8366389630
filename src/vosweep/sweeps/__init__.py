"""Global sweeps: the VO-wide ObsCore, EPN-TAP and UCD-driven multi-table TAP queries.

Each sweep finds its tables through the registry, builds one query per service (or per
table) in that service's own terms, and hands the resulting `vosweep.Targeted` targets
to `Engine.fanout`; its result is then brought into one schema.
"""

from vosweep.sweeps.epntap import EPNCORE_UTYPE_PATTERNS as EPNCORE_UTYPE_PATTERNS
from vosweep.sweeps.epntap import EpnTable as EpnTable
from vosweep.sweeps.epntap import EpnTapQuery as EpnTapQuery
from vosweep.sweeps.epntap import epntap as epntap
from vosweep.sweeps.epntap import find_epncore_tables as find_epncore_tables
from vosweep.sweeps.epntap import finish_epntap as finish_epntap
from vosweep.sweeps.epntap import plan_epntap as plan_epntap
from vosweep.sweeps.obscore import OBSCORE_COLUMNS as OBSCORE_COLUMNS
from vosweep.sweeps.obscore import ObsCoreQuery as ObsCoreQuery
from vosweep.sweeps.obscore import drop_duplicate_records as drop_duplicate_records
from vosweep.sweeps.obscore import finish_obscore as finish_obscore
from vosweep.sweeps.obscore import obscore as obscore
from vosweep.sweeps.obscore import plan_obscore as plan_obscore
from vosweep.sweeps.obscore import to_obscore_schema as to_obscore_schema
from vosweep.sweeps.ucd import ResultColumn as ResultColumn
from vosweep.sweeps.ucd import UcdTable as UcdTable
from vosweep.sweeps.ucd import find_ucd_tables as find_ucd_tables
from vosweep.sweeps.ucd import finish_ucd as finish_ucd
from vosweep.sweeps.ucd import plan_ucd as plan_ucd
from vosweep.sweeps.ucd import ucd_sweep as ucd_sweep

__all__ = [
    "EPNCORE_UTYPE_PATTERNS",
    "OBSCORE_COLUMNS",
    "EpnTable",
    "EpnTapQuery",
    "ObsCoreQuery",
    "ResultColumn",
    "UcdTable",
    "drop_duplicate_records",
    "epntap",
    "find_epncore_tables",
    "find_ucd_tables",
    "finish_epntap",
    "finish_obscore",
    "finish_ucd",
    "obscore",
    "plan_epntap",
    "plan_obscore",
    "plan_ucd",
    "to_obscore_schema",
    "ucd_sweep",
]
