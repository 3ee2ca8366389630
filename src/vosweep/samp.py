"""Hand a table to TOPCAT, Aladin or any SAMP client (``table.load.votable``).

The course's way to look at a sweep's result: write it as a VOTable, connect to the
running SAMP hub (TOPCAT and Aladin start one) and broadcast it. The hub is found as
astropy finds it: the ``SAMP_HUB`` environment variable (``std-lockurl:`` profile), else
``~/.samp``. astropy's SAMP calls (XML-RPC) have no timeout of their own, so the whole
hand-off runs in a worker thread that is given up after ``hub_timeout`` seconds: a hung
hub cannot hang the caller.

The VOTable is left in the temporary directory: receivers load it when they get to it,
after `send_table` has returned.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vosweep.errors import UsageError, VosweepError

__all__ = ["SampDelivery", "SampError", "hub_running", "send_table"]

T = TypeVar("T")

#: The message type TOPCAT, Aladin and friends load VOTables from.
MTYPE = "table.load.votable"


class SampError(VosweepError):
    """No SAMP hub runs, it did not answer, or no client listens for tables."""


@dataclass(frozen=True)
class SampDelivery:
    """What `send_table` did: the VOTable it wrote and the clients it was offered to."""

    path: Path
    recipients: tuple[str, ...]


def _samp() -> Any:
    """astropy.samp, without its deprecation warning (astropy 8 points to pyvo.samp)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from astropy import samp  # noqa: PLC0415 - imported on use only

    return samp


def _hub_params() -> dict[str, str]:
    """The running hub's lockfile entries; SampError naming why there is none."""
    samp = _samp()
    from astropy.samp.lockfile_helpers import get_main_running_hub  # noqa: PLC0415

    try:
        params: dict[str, str] = get_main_running_hub()
    except (samp.SAMPHubError, KeyError, OSError) as exc:
        where = os.environ.get("SAMP_HUB") or "~/.samp"
        raise SampError(
            f"no SAMP hub is running ({where}): start TOPCAT or Aladin first ({exc or 'no hub'})"
        ) from None
    return params


def _in_thread(work: Callable[[], T], timeout: float, what: str) -> T:
    """Run *work* in a daemon thread; SampError when it takes longer than *timeout*."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="vosweep-samp", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise SampError(f"the SAMP hub did not answer within {timeout:g} s ({what})")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def hub_running(*, hub_timeout: float = 5.0) -> bool:
    """Whether a SAMP hub answers (so a caller can refuse ``--samp`` before a long sweep)."""
    _check_timeout(hub_timeout)
    try:
        _in_thread(_hub_params, hub_timeout, "looking for the hub")
    except SampError:
        return False
    return True


def _check_timeout(hub_timeout: float) -> None:
    if isinstance(hub_timeout, bool) or not hub_timeout > 0:
        raise UsageError(f"hub_timeout must be a positive number of seconds, got {hub_timeout!r}")


def send_table(table: Any, *, name: str = "vosweep", hub_timeout: float = 10.0) -> SampDelivery:
    """Broadcast *table* to the SAMP clients that load VOTables (TOPCAT, Aladin...).

    Blocking (file writing and XML-RPC): from async code, call it through
    ``anyio.to_thread.run_sync``.

    Args:
        table: An astropy `Table` (e.g. ``result.table``).
        name: The name receivers show for it.
        hub_timeout: Seconds granted to find the hub, register and broadcast.

    Returns:
        The VOTable written and the SAMP ids of the clients it was sent to.

    Raises:
        UsageError: Not a table, or a bad timeout.
        SampError: No hub runs or it did not answer in time, or no client listens for
            ``table.load.votable``.
    """
    _check_timeout(hub_timeout)
    if not (hasattr(table, "colnames") and hasattr(table, "write")):
        raise UsageError(f"send_table needs an astropy Table, got {type(table).__name__}")
    if not isinstance(name, str) or not name:
        raise UsageError("send_table needs a non-empty name")
    fd, raw = tempfile.mkstemp(prefix="vosweep-", suffix=".vot")
    os.close(fd)
    path = Path(raw)
    try:
        table.write(path, format="votable", overwrite=True)
        recipients = _in_thread(lambda: _broadcast(path, name), hub_timeout, "broadcasting")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SampDelivery(path=path, recipients=recipients)


def _broadcast(path: Path, name: str) -> tuple[str, ...]:
    samp = _samp()
    params = _hub_params()
    client = samp.SAMPIntegratedClient(
        name="vosweep", description="vosweep: Virtual Observatory sweeps", callable=False
    )
    try:
        client.connect(hub_params=params)
    except (samp.SAMPHubError, OSError) as exc:
        raise SampError(f"cannot register with the SAMP hub: {exc}") from None
    try:
        recipients = tuple(sorted(client.get_subscribed_clients(MTYPE)))
        if not recipients:
            raise SampError(f"no SAMP client listens for tables ({MTYPE}): start TOPCAT or Aladin")
        client.notify_all(
            {"samp.mtype": MTYPE, "samp.params": {"url": path.as_uri(), "name": name}}
        )
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    return recipients
