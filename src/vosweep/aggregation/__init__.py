"""Aggregate: merge the tables services return into one, with provenance on every row."""

from vosweep.aggregation.stack import PROVENANCE_COLUMNS, Stacker, merge_tables

__all__ = ["PROVENANCE_COLUMNS", "Stacker", "merge_tables"]
