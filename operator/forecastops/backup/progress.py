"""Progress and messages on stderr (stdout stays free for `list --json`).

On a terminal, transfers show a live rich progress bar. Elsewhere (a CronJob's log) each
transfer prints a plain line every few seconds and one when it ends, so a log shows how
far a backup got before it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

LOG_INTERVAL_SECONDS = 5.0


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Reporter:
    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(escape(message))

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def error(self, message: str) -> None:
        self.console.print(f"[bold red]error:[/bold red] {escape(message)}")

    @contextmanager
    def transfer(self, label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A callback to report bytes moved; the transfer is summarised when the block ends."""
        if self.quiet:
            yield lambda _: None
        elif self.console.is_terminal:
            with self._bar(label, total) as advance:
                yield advance
        else:
            with self._lines(label) as advance:
                yield advance

    @contextmanager
    def _bar(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        with progress:
            task = progress.add_task(escape(label), total=total)
            yield lambda n: progress.advance(task, n)

    @contextmanager
    def _lines(self, label: str) -> Iterator[Callable[[int], None]]:
        started = last = time.monotonic()
        moved = 0

        def advance(n: int) -> None:
            nonlocal moved, last
            moved += n
            now = time.monotonic()
            if now - last >= LOG_INTERVAL_SECONDS:
                last = now
                rate = moved / max(now - started, 1e-6)
                self.info(f"{label}: {human_bytes(moved)} ({human_bytes(rate)}/s)")

        yield advance
        elapsed = time.monotonic() - started
        self.info(f"{label}: {human_bytes(moved)} in {elapsed:.1f} s")
