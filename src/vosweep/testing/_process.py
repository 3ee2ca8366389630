"""The simulated VO in its own process, for benchmarks.

``python -m vosweep.testing serve`` runs a `SimulatedVO` until SIGTERM, SIGINT, the end of
its standard input (with ``--watch-stdin``) or ``--max-seconds``, whichever comes first,
and writes a JSON manifest once every site listens. `SimProcess` wraps that command so a
benchmark can put the client under test and the servers on different cores, and so that
synchronous clients (pyvo, TOPCAT) can use the simulated VO. ``--registry`` adds the
RegTAP registry and prints its URL: point pyvo's ``choose_RegTAP_service`` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Self

import anyio
import anyio.abc
from pydantic import TypeAdapter

import vosweep
from vosweep.errors import UsageError
from vosweep.testing._profiles import DEFAULT_MIX, ServiceSpec, build_fleet
from vosweep.testing._regtap import RegistryProfile
from vosweep.testing._sim import SimHost, SimManifest, SimService, SimulatedVO
from vosweep.testing._stats import SimStats

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import TracebackType

    from vosweep.services import Service

__all__ = ["SimProcess", "main"]

_FLEET = TypeAdapter(list[ServiceSpec])
#: Seconds the child gets to stop by itself once its stdin closes, before SIGTERM.
_GRACE_SECONDS = 2.0
#: Mixes the command line knows by name.
MIXES = {"none": None, "realistic": DEFAULT_MIX}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vosweep.testing", description="Run vosweep's simulated VO on loopback."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a simulated fleet until told to stop")
    serve.add_argument("--services", type=int, default=100, help="number of services")
    serve.add_argument("--hosts", type=int, default=10, help="number of hosts")
    serve.add_argument("--seed", type=int, default=0, help="fleet seed")
    serve.add_argument("--mix", choices=sorted(MIXES), default="none", help="behaviour mix")
    serve.add_argument("--fleet", type=Path, help="JSON list of ServiceSpec (overrides the above)")
    serve.add_argument(
        "--dead-hosts", default="", help="comma-separated host indices that refuse connections"
    )
    serve.add_argument("--manifest", type=Path, help="where to write the JSON manifest")
    serve.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop after this long (bounded run)"
    )
    serve.add_argument(
        "--watch-stdin", action="store_true", help="stop when standard input is closed"
    )
    serve.add_argument(
        "--registry", action="store_true", help="also run a RegTAP registry (needs vosweep[sim])"
    )
    serve.add_argument(
        "--registry-size", type=int, default=None, help="generated registry records (2000)"
    )
    serve.add_argument("--registry-seed", type=int, default=None, help="registry seed (0)")
    serve.add_argument("--registry-mirrors", type=int, default=0, help="alternate RegTAP endpoints")
    serve.add_argument(
        "--registry-profile", type=Path, help="JSON RegistryProfile (implies --registry)"
    )
    return parser


def _registry_option(options: argparse.Namespace) -> RegistryProfile | bool:
    """The ``registry=`` argument the command line asks for."""
    if options.registry_profile is not None:
        profile = RegistryProfile.model_validate_json(options.registry_profile.read_bytes())
    elif options.registry or options.registry_size is not None or options.registry_mirrors:
        profile = RegistryProfile()
    else:
        return False
    update = {
        name: value
        for name, value in (("n_resources", options.registry_size), ("seed", options.registry_seed))
        if value is not None
    }
    return profile.model_copy(update=update) if update else profile


def _write_atomically(path: Path, text: str) -> None:
    """Write so that a reader polling for *path* never sees half a manifest."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


class _EofProtocol(asyncio.Protocol):
    def __init__(self, done: asyncio.Event) -> None:
        self._done = done

    def eof_received(self) -> bool:
        self._done.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        del exc  # EOF or error: either way the parent is gone
        self._done.set()


async def _cancel_on_stdin_eof(
    scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Cancel *scope* when standard input reaches end of file (the parent went away)."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: _EofProtocol(done), sys.stdin)
    try:
        task_status.started()
        await done.wait()
    finally:
        transport.close()
    scope.cancel()


async def _cancel_on_signal(
    scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Cancel *scope* on SIGTERM or SIGINT."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            break
    scope.cancel()


async def _serve(options: argparse.Namespace) -> None:
    if options.fleet is not None:
        fleet = _FLEET.validate_json(options.fleet.read_bytes())
    else:
        fleet = build_fleet(
            options.services, options.hosts, seed=options.seed, mix=MIXES[options.mix]
        )
    dead = [int(x) for x in options.dead_hosts.split(",") if x.strip()]
    with anyio.move_on_after(options.max_seconds):
        async with anyio.create_task_group() as group:
            # Listen for signals before announcing readiness, so that a SIGTERM sent right
            # after the manifest appears still shuts everything down cleanly.
            await group.start(_cancel_on_signal, group.cancel_scope)
            if options.watch_stdin:
                await group.start(_cancel_on_stdin_eof, group.cancel_scope)
            async with SimulatedVO(
                fleet,
                dead_hosts=dead,
                registry=_registry_option(options),
                registry_mirrors=options.registry_mirrors,
            ) as sim:
                if options.manifest is not None:
                    _write_atomically(options.manifest, sim.manifest().model_dump_json())
                sys.stdout.write(f"vosweep simulated VO ready: {sim!r}, admin at {sim.admin_url}\n")
                for number, url in enumerate(sim.manifest().registry_urls):
                    kind = (
                        "RegTAP registry" if number == 0 else f"alternate RegTAP endpoint {number}"
                    )
                    sys.stdout.write(f"{kind} at {url}\n")
                sys.stdout.flush()
                await anyio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m vosweep.testing``."""
    options = _parser().parse_args(argv)
    anyio.run(_serve, options)
    return 0


class SimProcess:
    """A simulated VO in a child process (a sync context manager, for benchmarks).

    The child runs ``python -m vosweep.testing serve`` with the current interpreter. On
    exit it is terminated (SIGTERM, then SIGKILL after *stop_timeout*); it also stops by
    itself when this process dies (its standard input closes) or after *max_seconds*.

    Args:
        fleet: The services to run; or give *n_services* (with *n_hosts*, *seed*, *mix*).
        n_services: Build a fleet of this many services in the child.
        n_hosts: Hosts of the built fleet.
        seed: Seed of the built fleet.
        mix: ``"none"`` (every service ok) or ``"realistic"`` (`DEFAULT_MIX`).
        dead_hosts: Host indices that refuse connections.
        max_seconds: Upper bound on the child's life.
        startup_timeout: How long to wait for the manifest.
        stop_timeout: How long to wait for the child after SIGTERM.
        registry: Also run a RegTAP registry (``True`` or a `RegistryProfile`).
        registry_mirrors: Healthy alternate RegTAP endpoints.
    """

    def __init__(
        self,
        fleet: Sequence[ServiceSpec] | None = None,
        *,
        n_services: int | None = None,
        n_hosts: int = 1,
        seed: int = 0,
        mix: Literal["none", "realistic"] = "none",
        dead_hosts: Iterable[int] = (),
        max_seconds: float = 3600.0,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        registry: RegistryProfile | bool = False,
        registry_mirrors: int = 0,
    ) -> None:
        if (fleet is None) == (n_services is None):
            raise UsageError("give SimProcess either a fleet or n_services, not both")
        if mix not in MIXES:
            raise UsageError(f"mix must be one of {sorted(MIXES)}, got {mix!r}")
        self._fleet = list(fleet) if fleet is not None else None
        self._n_services = n_services
        self._n_hosts = n_hosts
        self._seed = seed
        self._mix = mix
        self._dead = sorted(set(dead_hosts))
        self._max_seconds = max_seconds
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._registry = RegistryProfile() if registry is True else registry
        self._registry_mirrors = registry_mirrors
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._manifest: SimManifest | None = None
        # Never use a proxy: every request of the test kit stays on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _command(self, workdir: Path) -> list[str]:
        command = [sys.executable, "-m", "vosweep.testing", "serve", "--watch-stdin"]
        command += ["--manifest", str(workdir / "manifest.json")]
        command += ["--max-seconds", repr(float(self._max_seconds))]
        if self._dead:
            command += ["--dead-hosts", ",".join(map(str, self._dead))]
        if self._registry is not False:
            profile_path = workdir / "registry.json"
            profile_path.write_text(self._registry.model_dump_json(), encoding="utf-8")
            command += ["--registry-profile", str(profile_path)]
            command += ["--registry-mirrors", str(self._registry_mirrors)]
        if self._fleet is not None:
            fleet_path = workdir / "fleet.json"
            fleet_path.write_bytes(_FLEET.dump_json(self._fleet))
            return [*command, "--fleet", str(fleet_path)]
        return [
            *command,
            "--services",
            str(self._n_services),
            "--hosts",
            str(self._n_hosts),
            "--seed",
            str(self._seed),
            "--mix",
            self._mix,
        ]

    def _start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="vosweep-sim-")
        workdir = Path(self._tmp.name)
        manifest_path = workdir / "manifest.json"
        env = dict(os.environ)
        # Make the child import this very vosweep, installed or not (src layout checkouts).
        package_root = str(Path(vosweep.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._stderr = (workdir / "stderr.log").open("w+b")
        self._process = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            self._command(workdir),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
        )
        deadline = time.monotonic() + self._startup_timeout
        while not manifest_path.exists():
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the simulated VO exited with status {self._process.returncode}"
                    f" before it was ready:\n{self._child_stderr()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the simulated VO was not ready after {self._startup_timeout} s:\n"
                    f"{self._child_stderr()}"
                )
            time.sleep(0.02)
        self._manifest = SimManifest.model_validate_json(manifest_path.read_bytes())

    def _child_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-20_000:].decode(errors="replace")

    def close(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its files; idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # the child's --watch-stdin sees EOF and shuts down
            try:
                process.wait(_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(self._stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(self._stop_timeout)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- what a benchmark uses -----------------------------------------------------------

    @property
    def manifest(self) -> SimManifest:
        """The running simulator's manifest (hosts, services, admin URL)."""
        if self._manifest is None:
            raise UsageError("the SimProcess is not running: use `with SimProcess(...)`")
        return self._manifest

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def services(self) -> list[SimService]:
        """The running services, by index."""
        return list(self.manifest.services)

    @property
    def hosts(self) -> list[SimHost]:
        """The hosts, by index."""
        return list(self.manifest.hosts)

    @property
    def admin_url(self) -> str:
        """Base URL of the child's admin site."""
        return self.manifest.admin_url

    @property
    def registry_urls(self) -> tuple[str, ...]:
        """TAP base URLs of the child's RegTAP endpoints, primary first."""
        return self.manifest.registry_urls

    @property
    def registry_url(self) -> str:
        """TAP base URL of the child's primary RegTAP endpoint.

        Raises:
            UsageError: When the child runs no registry.
        """
        if not self.manifest.registry_urls:
            raise UsageError("this SimProcess has no registry: use SimProcess(..., registry=True)")
        return self.manifest.registry_urls[0]

    def targets(self) -> list[Service]:
        """One `vosweep.Service` per simulated service, by index."""
        return [service.target() for service in self.manifest.services]

    def _admin(self, path: str, method: str) -> bytes:
        url = self.admin_url + path
        if not url.startswith("http://127."):
            raise UsageError(f"refusing to contact a non-loopback admin URL {url!r}")
        request = urllib.request.Request(url, method=method)  # noqa: S310 -- loopback only
        with self._opener.open(request, timeout=30) as response:
            body: bytes = response.read()
        return body

    def stats(self) -> SimStats:
        """A snapshot of the child's counters (see `SimStats`)."""
        return SimStats.model_validate_json(self._admin("/_sim/stats", "GET"))

    def reset_stats(self) -> None:
        """Zero the child's counters and restart its ``fail_times`` countdowns."""
        self._admin("/_sim/reset", "POST")

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self._process is not None else "not running"
        return f"<SimProcess {state}>"
