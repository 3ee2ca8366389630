"""Test kit (placeholder until the simulator lands)."""
