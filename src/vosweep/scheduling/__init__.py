"""Plan and schedule: turn targets into outcomes under the global and per-host limits."""
