"""The malloc arena cap applications use for long sweeps (the CLI, the soak)."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

import vosweep

GLIBC = sys.platform.startswith("linux") and ctypes.util.find_library("c") is not None


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        vosweep.limit_malloc_arenas(0)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is Linux-only")
def test_the_cap_is_set_in_a_fresh_process():
    """Set in a child, so this test process keeps its allocator as it was."""
    code = "import vosweep, sys; sys.exit(0 if vosweep.limit_malloc_arenas(2) else 1)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0  # noqa: S603
