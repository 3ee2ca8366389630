"""``python -m vosweep.testing serve ...``: run the simulated VO in its own process."""

from __future__ import annotations

from vosweep.testing._process import main

if __name__ == "__main__":
    raise SystemExit(main())
