"""A progress bar for fan-outs: pass one as ``on_part=`` to `Engine.fanout`.

The library never shows progress by itself (a notebook or a service embedding vosweep
decides); applications and the ``vosweep`` command opt in::

    with ProgressBar(total=len(services)) as bar:
        result = await engine.fanout(services, cone, on_part=bar)

With the ``progress`` extra it is a ``tqdm.auto`` bar (a terminal bar, or a widget in
Jupyter) with tqdm's rate and ETA; without it a one-line counter on stderr, redrawn at most
ten times a second so that thousands of fast services do not flood the terminal. Either
way the postfix counts the outcomes per status (``ok=120 error=3 timeout=2``).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, Self, TextIO

from vosweep.errors import UsageError
from vosweep.outcomes import Part

__all__ = ["ProgressBar"]

_REDRAW_SECONDS = 0.1


class ProgressBar:
    """Count services as their parts arrive; show counts per outcome status and an ETA.

    Args:
        total: Services expected (None when unknown, e.g. a lazy generator of targets:
            then no ETA).
        desc: Label in front of the bar.
        file: Where the plain counter (and tqdm's terminal bar) writes; default stderr.
        disable: Count without showing anything (the counts stay readable).
        use_tqdm: Use tqdm.auto when installed (default); False forces the plain counter.
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str = "sweep",
        file: TextIO | None = None,
        disable: bool = False,
        use_tqdm: bool = True,
    ) -> None:
        if total is not None and (isinstance(total, bool) or total < 0):
            raise UsageError(f"ProgressBar total must be a non-negative int or None, got {total!r}")
        self.total = total
        self.counts: dict[str, int] = {}
        self.done = 0
        self._desc = desc
        self._file = file
        self._disabled = disable
        self._closed = False
        self._started = time.monotonic()
        self._drawn = 0.0
        self._bar: Any = None
        if disable or not use_tqdm:
            return
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional extra
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="svc", desc=desc, file=self._stream, dynamic_ncols=True)

    @property
    def _stream(self) -> TextIO:
        # Looked up when used, so that pytest's capture (or a redirect) is honoured.
        return self._file if self._file is not None else sys.stderr

    @property
    def uses_tqdm(self) -> bool:
        """Whether a tqdm bar is shown (else the plain counter, or nothing when disabled)."""
        return self._bar is not None

    def postfix(self) -> str:
        """The per-status counts, as shown after the bar: ``error=1 ok=5``."""
        return " ".join(f"{status}={n}" for status, n in sorted(self.counts.items()))

    def __call__(self, part: Part) -> None:
        """Count one finished service (the `Engine.fanout` ``on_part`` callback)."""
        status = part.outcome.status.value
        self.counts[status] = self.counts.get(status, 0) + 1
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix(), refresh=False)
            self._bar.update(1)
        elif not self._disabled and not self._closed:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_SECONDS or self.done == self.total:
                self._drawn = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        if self.total is None:
            head = f"{self._desc}: {self.done} services"
        else:
            head = f"{self._desc}: {self.done}/{self.total} services"
        eta = self._eta(now)
        tail = f"  ETA {eta:.0f} s" if eta is not None else ""
        self._stream.write(f"\r{head}  {self.postfix()}{tail}   ")
        self._stream.flush()

    def _eta(self, now: float) -> float | None:
        """Seconds left at the mean rate so far (None without a total or before a service)."""
        if self.total is None or self.done == 0 or self.done >= self.total:
            return None
        return (now - self._started) / self.done * (self.total - self.done)

    def close(self) -> None:
        """Finish the bar (idempotent); the counter gets its final state and a newline."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif not self._disabled and self.done:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
