"""``python -m vosweep``."""

import sys

from vosweep.cli import main

sys.exit(main())
