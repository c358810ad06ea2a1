"""Whole-file validation of an uploaded submission CSV, and loading of the hidden holdout.

``validate_submission`` reads the upload once, line by line, and either returns the parsed
predictions (what the metric's ``score()`` takes) or the problems a user must fix, each with
its 1-based line number (the header is line 1). ``load_holdout`` parses
``holdout_labels.csv`` into the metric's ``truth`` and raises :class:`HoldoutError` when the
file is malformed. Pure Python; no Django.

Manifest fields read here: ``id_column`` and ``target_columns`` (through the metric),
``expected_row_count`` (optional; the number of test ids, i.e. data rows of a one-row-per-id
file), and metric-specific optional fields (``labels`` for accuracy, ``num_classes`` for
top-1 accuracy). Whole-file problems (missing ids, row count) are reported at the file's last
line.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import IO, Any

from competitions.metrics import (
    FieldError,
    ManifestError,
    Metric,
    RowFormat,
    get_metric,
)

DEFAULT_MAX_PROBLEMS = 20
_EXAMPLES = 5
_NOT_TEXT_HINT = (
    "upload a CSV file saved as UTF-8 text (binary files such as images, zip or Excel .xlsx "
    "are not accepted)"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission: where (line, column name or None) and why.

    ``code`` is a stable machine-readable reason, e.g. ``duplicate_id`` or ``out_of_range``.
    """

    line: int
    column: str | None
    message: str
    code: str = "invalid_value"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationResult:
    """``ok`` with ``predictions`` set, or not ok with the first ``problems`` (at most the cap)
    and ``total_problems`` counting all of them. ``rows`` counts non-blank data rows read;
    ``format`` names the accepted layout that the header matched."""

    ok: bool
    problems: list[Problem]
    rows: int
    predictions: Any | None
    total_problems: int = 0
    format: str | None = None
    problems_truncated: bool = field(init=False)

    def __post_init__(self) -> None:
        self.problems_truncated = self.total_problems > len(self.problems)


class HoldoutError(ValueError):
    """``holdout_labels.csv`` is unusable; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"holdout {where}: {message}")
        self.path = path
        self.line = line


class _Stop(Exception):
    """Raised by the line reader when the rest of the file cannot be read as text."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Problems:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, line: int, column: str | None, message: str, code: str) -> None:
        self.total += 1
        if len(self.kept) < self.limit:
            self.kept.append(Problem(line, column, message, code))


def _byte_lines(source: Iterable[bytes | str]) -> Iterator[bytes | str]:
    """Lines ended by ``\\n``, ``\\r\\n`` or a lone ``\\r``, whatever split the source made: Django's
    ``UploadedFile`` splits at a lone ``\\r`` too, a file opened ``"rb"`` does not, and the upload
    and its stored copy must read as the same lines (else a file valid at upload fails scoring)."""
    for raw in source:
        if isinstance(raw, bytes) and b"\r" in raw:
            yield from raw.splitlines(keepends=True)
        else:
            yield raw


def _text_lines(source: Iterable[bytes | str]) -> Iterator[str]:
    """Decode a binary file line by line; stop with one problem at the first line that is not
    UTF-8 text. A UTF-8 byte-order mark at the start is dropped."""
    for lineno, raw in enumerate(_byte_lines(source), 1):
        if isinstance(raw, str):
            text = raw
        else:
            if b"\x00" in raw:
                raise _Stop(
                    Problem(lineno, None, f"line {lineno} holds binary data (NUL bytes); {_NOT_TEXT_HINT}", "encoding")
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                raise _Stop(
                    Problem(
                        lineno,
                        None,
                        f"line {lineno} is not valid UTF-8 (byte 0x{byte:02x} at position {exc.start + 1}); "
                        f"{_NOT_TEXT_HINT}",
                        "encoding",
                    )
                ) from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


def _blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _describe_header(got: list[str], formats: tuple[RowFormat, ...]) -> tuple[str | None, str]:
    """(column, message) explaining why ``got`` matches none of the accepted headers."""
    # Explain against the accepted layout the user most likely meant.
    target = max(formats, key=lambda f: len(set(f.columns) & set(got)))
    expected = list(target.columns)
    accepted = " or ".join(f"`{f.header}`" for f in formats)
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    duplicated = sorted({c for c in got if got.count(c) > 1})
    parts: list[str] = []
    if missing:
        parts.append(f"missing column(s): {', '.join(missing)}")
    if extra:
        shown = ", ".join(repr(c) if c else "(empty name)" for c in extra)
        parts.append(f"unexpected column(s): {shown}")
    if duplicated:
        parts.append(f"repeated column(s): {', '.join(duplicated)}")
    if not parts:
        parts.append(f"columns are in the wrong order (`{','.join(got)}`)")
    lowered = [c.lower() for c in got]
    if missing and all(c.lower() in lowered for c in missing):
        parts.append("column names are case-sensitive")
    column = missing[0] if missing else (extra[0] if extra else None)
    return column, f"the header must be exactly {accepted}; " + "; ".join(parts)


def validate_submission(
    fileobj: IO[bytes] | Iterable[bytes],
    manifest: Mapping[str, Any],
    metric: str | Metric,
    holdout_ids: Collection[str],
    *,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> ValidationResult:
    """Validate a whole submission file, streaming it once.

    ``fileobj`` is iterated line by line (a binary file object, a Django ``UploadedFile``, or
    any iterable of byte lines). ``holdout_ids`` is the exact id set the file must cover.
    Raises :class:`ManifestError` when the manifest itself is unusable (an operator problem,
    not the user's). Problems beyond ``max_problems`` are counted but not kept.
    """
    metric = get_metric(metric)
    formats = metric.submission_formats(manifest)
    expected_rows = manifest.get("expected_row_count")
    if expected_rows is not None:
        if isinstance(expected_rows, bool) or not isinstance(expected_rows, int) or expected_rows < 0:
            raise ManifestError("manifest: 'expected_row_count' must be a non-negative integer")
        if expected_rows != len(holdout_ids):
            raise ManifestError(
                f"manifest: 'expected_row_count' is {expected_rows} but the holdout has "
                f"{len(holdout_ids)} ids; every submission would be refused"
            )
    holdout = holdout_ids if isinstance(holdout_ids, set | frozenset | dict) else frozenset(holdout_ids)
    problems = _Problems(max_problems)
    reader = csv.reader(_text_lines(fileobj))
    rows = 0
    fmt: RowFormat | None = None
    ids: list[str] = []
    values: list[Any] = []
    first_line: dict[str, int] = {}

    def fail() -> ValidationResult:
        return ValidationResult(False, problems.kept, rows, None, problems.total, fmt.name if fmt else None)

    try:
        # Header: the first non-blank line.
        header: list[str] | None = None
        for fields in reader:
            if not _blank(fields):
                header = fields
                break
        if header is None:
            problems.add(
                1, None, f"the file is empty; expected the header `{formats[0].header}` and one row per test id",
                "empty_file",
            )
            return fail()
        header_line = reader.line_num
        got = [name.strip() for name in header]
        fmt = next((f for f in formats if tuple(got) == f.columns), None)
        if fmt is None:
            first = got[0] if got else ""
            if first in holdout:
                problems.add(
                    header_line, None,
                    f"line {header_line} looks like data, not a header; the first line must be the header "
                    f"`{formats[0].header}`",
                    "missing_header",
                )
            else:
                column, message = _describe_header(got, formats)
                problems.add(header_line, column, message, "header")
            return fail()

        columns = fmt.columns
        id_column = columns[0]
        n_columns = len(columns)
        parse_row = fmt.parse_row
        one_row_per_id = fmt.one_row_per_id
        previous = reader.line_num
        for fields in reader:
            line = previous + 1  # a quoted field may span lines: report where the row starts
            previous = reader.line_num
            if _blank(fields):
                continue
            rows += 1
            row_id = fields[0].strip()
            if len(fields) != n_columns:
                problems.add(
                    line, None,
                    f"expected {n_columns} fields ({fmt.header}), found {len(fields)}",
                    "field_count",
                )
                if row_id:
                    first_line.setdefault(row_id, line)  # the id has a row, a broken one
                continue
            if not row_id:
                problems.add(line, id_column, f"{id_column} is empty", "empty_id")
                continue
            try:
                value = parse_row(fields)
                bad = False
            except FieldError as exc:
                problems.add(line, exc.column, exc.message, exc.code)
                value, bad = None, True
            seen = first_line.get(row_id)
            if seen is None:
                first_line[row_id] = line
                if row_id not in holdout:
                    problems.add(
                        line, id_column, f"{id_column} {row_id!r} is not one of this competition's test ids",
                        "unknown_id",
                    )
                    continue
            elif one_row_per_id:
                problems.add(
                    line, id_column, f"duplicate {id_column} {row_id!r}: also on line {seen}", "duplicate_id"
                )
                continue
            elif row_id not in holdout:
                continue  # already reported on its first row
            if not bad:
                ids.append(row_id)
                values.append(value)
    except _Stop as stop:
        problems.total += 1
        if len(problems.kept) < problems.limit:
            problems.kept.append(stop.problem)
        return fail()
    except csv.Error as exc:
        line = reader.line_num
        problems.add(line, None, f"line {line} is not valid CSV: {exc}", "csv_syntax")
        return fail()

    last_line = max(reader.line_num, 1)
    if rows == 0:
        problems.add(last_line, None, "the file has a header but no data rows", "no_rows")
    missing = sorted(i for i in holdout if i not in first_line)
    if missing:
        examples = ", ".join(missing[:_EXAMPLES])
        more = ", …" if len(missing) > _EXAMPLES else ""
        problems.add(
            last_line, id_column,
            f"{len(missing)} of the {len(holdout)} test ids have no row (e.g. {examples}{more})",
            "missing_ids",
        )
    if expected_rows is not None:
        found = rows if one_row_per_id else len(first_line)
        if found != expected_rows:
            what = "data rows" if one_row_per_id else f"distinct {id_column} values"
            problems.add(
                last_line, None, f"the file has {found} {what}; this competition expects {expected_rows}",
                "row_count",
            )
    if problems.total:
        return fail()
    predictions = metric.build_predictions(fmt, ids, values)
    return ValidationResult(True, [], rows, predictions, 0, fmt.name)


def load_holdout(path: str | PathLike[str], manifest: Mapping[str, Any], metric: str | Metric) -> Any:
    """Parse ``holdout_labels.csv`` into the metric's ``truth``.

    Columns are found by name (others are ignored): ``<id_column>,<target>`` for the label
    metrics, ``<id_column>,x,y,width,height,Target`` for RSNA (Target=0 rows have no box).
    Raises :class:`HoldoutError` naming the first bad line, or :class:`ManifestError`.
    """
    metric = get_metric(metric)
    fmt = metric.holdout_format(manifest)
    where = str(path)
    ids: list[str] = []
    values: list[Any] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as handle:
        reader = csv.reader(_text_lines(handle))
        try:
            header = next((f for f in reader if not _blank(f)), None)
            if header is None:
                raise HoldoutError(where, 1, "the file is empty")
            got = [name.strip() for name in header]
            missing = [c for c in fmt.columns if c not in got]
            if missing:
                raise HoldoutError(
                    where, reader.line_num,
                    f"missing column(s) {', '.join(missing)}; the header must include {fmt.header}",
                )
            positions = [got.index(c) for c in fmt.columns]
            width = len(got)
            previous = reader.line_num
            for fields in reader:
                line = previous + 1
                previous = reader.line_num
                if _blank(fields):
                    continue
                if len(fields) != width:
                    raise HoldoutError(where, line, f"expected {width} fields, found {len(fields)}")
                row = [fields[i] for i in positions]
                row_id = row[0].strip()
                if not row_id:
                    raise HoldoutError(where, line, f"{fmt.columns[0]} is empty")
                if fmt.one_row_per_id and row_id in first_line:
                    raise HoldoutError(where, line, f"duplicate id {row_id!r} (also on line {first_line[row_id]})")
                first_line.setdefault(row_id, line)
                try:
                    values.append(fmt.parse_row(row))
                except FieldError as exc:
                    raise HoldoutError(where, line, exc.message) from None
                ids.append(row_id)
        except _Stop as stop:
            raise HoldoutError(where, stop.problem.line, "not UTF-8 text") from None
        except csv.Error as exc:
            raise HoldoutError(where, reader.line_num, f"not valid CSV: {exc}") from None
    if not ids:
        raise HoldoutError(where, None, "the file has no data rows")
    return metric.build_truth(ids, values)


def holdout_id_set(truth: Any) -> frozenset[str]:
    """The ids of a loaded holdout (``LabelTable`` or ``BoxTable``), for ``validate_submission``."""
    return frozenset(truth.ids.tolist())
