"""Printing results: a table on a terminal, JSON when piped, CSV on request.

JSON prints the API's objects as they came (every field, for scripts); table and CSV print
the declared columns, humanised for the table and raw for CSV.
"""
from __future__ import annotations

import csv
import enum
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from .api_fields import get
from .errors import UsageError


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def choose_format(requested: Format | str | None, *, stream=None) -> Format:
    """The format asked for (option, then $MEDFORGE_FORMAT), else table on a TTY, JSON when
    piped."""
    value = requested or os.environ.get("MEDFORGE_FORMAT") or None
    if value:
        try:
            return Format(value.value if isinstance(value, Format) else str(value).lower())
        except ValueError:
            raise UsageError(f"Unknown format {value!r}: use table, json or csv.") from None
    stream = stream or sys.stdout
    return Format.table if _isatty(stream) else Format.json


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def stdout_console() -> Console:
    # Off a terminal (a forced `--format table` into a file) keep long cells whole.
    return Console(file=sys.stdout, highlight=False, soft_wrap=False,
                   width=None if _isatty(sys.stdout) else 200)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, stderr=True)


# --- values -----------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_time(value: Any) -> str:
    when = parse_time(value)
    if when is None:
        return "-" if value in (None, "") else str(value)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def human_size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)  # pragma: no cover


def human_bool(value: Any) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def human_score(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.6g}"


def human(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return human_bool(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def raw(value: Any) -> str:
    """A CSV cell: empty for null, true/false, JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True)
class Column:
    """One column: its header, the declared field it shows, and how a table shows it."""

    header: str
    kind: str
    path: str
    show: Callable[[Any], str] = human
    value: Callable[[dict], Any] | None = None  # computed instead of read

    def get(self, row: dict) -> Any:
        if self.value is not None:
            return self.value(row)
        return get(self.kind, row, self.path)

    @property
    def csv_header(self) -> str:
        return self.path if self.value is None else self.header.lower().replace(" ", "_")


def render(data: Any, columns: Sequence[Column], fmt: Format, *, many: bool,
           title: str | None = None, empty: str = "Nothing to show.",
           json_data: Any = None) -> None:
    """Print `data` (a list when `many`, else one object)."""
    if fmt is Format.json:
        print_json(data if json_data is None else json_data)
        return
    rows: list[dict] = list(data) if many else [data]
    if fmt is Format.csv:
        print_csv(rows, columns)
        return
    console = stdout_console()
    if many:
        if not rows:
            stderr_console().print(empty)
            return
        table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
        for col in columns:
            table.add_column(col.header, overflow="fold")
        for row in rows:
            table.add_row(*(col.show(col.get(row)) for col in columns))
        console.print(table)
    else:
        table = Table(title=title, show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for col in columns:
            table.add_row(col.header, col.show(col.get(rows[0])))
        console.print(table)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_csv(rows: Iterable[dict], columns: Sequence[Column]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([col.csv_header for col in columns])
    for row in rows:
        writer.writerow([raw(col.get(row)) for col in columns])
    sys.stdout.write(buffer.getvalue())
    sys.stdout.flush()


def note(message: str) -> None:
    """A human message: on stderr, so stdout stays the result (and parseable when piped)."""
    stderr_console().print(message, markup=False, highlight=False)
