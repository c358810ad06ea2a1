"""Live progress on stderr: the session timeline while waiting, and transfer bars.

On a terminal a spinner line shows the current state and each lifecycle event is printed as
it arrives; off a terminal (CI logs, pipes) the events are plain lines and nothing animates.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .api_fields import get
from .output import human_time, stderr_console


class SessionWatch:
    """What `--wait` and `--watch` show while a session changes state."""

    def __init__(self, label: str) -> None:
        self.console = stderr_console()
        self.label = label
        self.started = time.monotonic()
        self._status = None
        self._state = ""

    def __enter__(self) -> SessionWatch:
        if self.console.is_terminal:
            self._status = self.console.status(self.label, spinner="dots")
            self._status.start()
        else:
            self.console.print(self.label, markup=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.stop()

    def event(self, event: dict) -> None:
        when = human_time(get("event", event, "at"))[11:] or "--:--:--"
        kind = get("event", event, "kind", "")
        message = get("event", event, "message", "")
        self.console.print(f"  {when}  {kind:<20} {message}".rstrip(), markup=False, highlight=False)

    def session(self, session: dict) -> None:
        status = get("session", session, "status", "?")
        slug = get("session", session, "slug", "")
        elapsed = int(time.monotonic() - self.started)
        text = f"{self.label}  [{slug}: {status}, {elapsed}s]"
        if self._status is not None:
            self._status.update(text)
        elif status != self._state:
            self.console.print(f"  status: {status}", markup=False)
        self._state = status


def transfer_progress() -> Progress:
    console = stderr_console()
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )


class ProgressReader:
    """A file object that advances a progress task as httpx reads it (multipart upload)."""

    def __init__(self, fh: IO[bytes], progress: Progress, task) -> None:
        self._fh = fh
        self._progress = progress
        self._task = task

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        if chunk:
            self._progress.advance(self._task, len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.read(64 * 1024)
            if not chunk:
                return
            yield chunk


@contextmanager
def upload_progress(path, size: int) -> Iterator[ProgressReader]:
    with transfer_progress() as progress, open(path, "rb") as fh:
        task = progress.add_task(f"upload {path.name}", total=size)
        yield ProgressReader(fh, progress, task)
