"""Child process of test_checkpoint_resume: runs a checkpointed sweep until it is killed.

Reads a JSON file (argv[1]) naming the services, the cone and the checkpoint path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

import vosweep


async def main(spec: dict[str, Any]) -> None:
    services = [vosweep.Service.model_validate(s) for s in spec["services"]]
    config = vosweep.EngineConfig.model_validate(spec["config"])
    async with vosweep.Engine(config) as engine:
        await engine.fanout(services, vosweep.Cone(**spec["cone"]), checkpoint=spec["checkpoint"])


if __name__ == "__main__":
    anyio.run(main, json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
