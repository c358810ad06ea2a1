"""`medforge competitions`: list, show, data files, download, submit, submissions, leaderboard."""
from __future__ import annotations

import os
import time
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from ..api_fields import get, item_get, items
from ..client import Api
from ..common import FormatOpt, InternalOpt, TimeoutOpt, examples, exposure, state
from ..errors import CliError, NotFoundError, UsageError
from ..output import (
    Column,
    Format,
    human_bool,
    human_score,
    human_size,
    human_time,
    note,
    print_json,
    render,
    stderr_console,
)
from ..progress import transfer_progress, upload_progress

app = typer.Typer(help="Competitions: browse, download data, submit, leaderboards.",
                  no_args_is_help=True)

SlugArg = Annotated[str, typer.Argument(metavar="SLUG", help="Competition slug (`medforge competitions list`).")]

COMPETITION_COLUMNS = [
    Column("slug", "competition", "slug"),
    Column("title", "competition", "title"),
    Column("metric", "competition", "metric"),
    Column("higher is better", "competition", "higher_is_better", human_bool),
    Column("daily cap", "competition", "daily_cap"),
    Column("dataset", "competition", "dataset"),
]
DETAIL_COLUMNS = [
    Column("slug", "competition_detail", "slug"),
    Column("title", "competition_detail", "title"),
    Column("exposure", "competition_detail", "exposure"),
    Column("metric", "competition_detail", "metric"),
    Column("higher is better", "competition_detail", "higher_is_better", human_bool),
    Column("dataset", "competition_detail", "dataset"),
    Column("daily cap", "competition_detail", "daily_cap"),
    Column("left today", "competition_detail", "remaining_today"),
    Column("max upload", "competition_detail", "max_upload_bytes", human_size),
    Column("private board", "competition_detail", "has_private_board", human_bool),
    Column("submission format", "competition_detail", "submission_formats", show=str,
           value=lambda c: " | ".join(
               str(item_get("competition_detail", "submission_formats", f, "header", ""))
               for f in items("competition_detail", c, "submission_formats"))),
    Column("description", "competition_detail", "description"),
    Column("rules", "competition_detail", "rules"),
]
FILE_COLUMNS = [
    Column("name", "dataset_file", "name"),
    Column("area", "dataset_file", "area"),
    Column("size", "dataset_file", "size", human_size),
    Column("modified", "dataset_file", "modified", human_time),
]
SUBMISSION_COLUMNS = [
    Column("id", "submission", "id"),
    Column("status", "submission", "status"),
    Column("score", "submission", "score", human_score),
    Column("rows", "submission", "rows"),
    Column("created", "submission", "created_at", human_time),
    Column("scored", "submission", "scored_at", human_time),
    Column("description", "submission", "description"),
    Column("error", "submission", "error"),
]
LEADERBOARD_COLUMNS = [
    Column("rank", "leaderboard_row", "rank"),
    Column("handle", "leaderboard_row", "handle"),
    Column("name", "leaderboard_row", "display_name"),
    Column("score", "leaderboard_row", "score", human_score),
    Column("submissions", "leaderboard_row", "submission_count"),
    Column("best at", "leaderboard_row", "best_at", human_time),
]
SCORED = ("scored",)
FAILED = ("failed",)


def _api(st, *, auth: bool) -> Api:
    """Public reads (list, show, public leaderboard) work without a token."""
    return st.api(auth=auth)


def _detail(api: Api, surface: str, slug: str) -> dict:
    return api.data("GET", f"/{surface}/competitions/{slug}")


@app.command("list")
def list_(ctx: typer.Context, internal: InternalOpt = False, fmt: FormatOpt = None) -> None:
    """Competitions on the surface (readable without logging in on EXTERNAL)."""
    st = state(ctx)
    with _api(st, auth=internal) as api:
        rows = list(api.paginate(f"/{exposure(internal)}/competitions", limit=1000))
    render(rows, COMPETITION_COLUMNS, st.fmt(fmt), many=True, empty="No competitions.")


@app.command()
def show(ctx: typer.Context, slug: SlugArg, internal: InternalOpt = False,
         fmt: FormatOpt = None) -> None:
    """A competition's details, rules and submission format."""
    st = state(ctx)
    with _api(st, auth=internal) as api:
        detail = _detail(api, exposure(internal), slug)
    render(detail, DETAIL_COLUMNS, st.fmt(fmt), many=False)


def _files(api: Api, surface: str, slug: str) -> tuple[dict, list[dict]]:
    detail = _detail(api, surface, slug)
    dataset = get("competition_detail", detail, "dataset")
    if not dataset:
        raise NotFoundError(f"Competition {slug} names no dataset.")
    return detail, list(api.paginate(f"/{surface}/datasets/{dataset}/files", limit=100000))


@app.command()
def files(ctx: typer.Context, slug: SlugArg, internal: InternalOpt = False,
          fmt: FormatOpt = None) -> None:
    """The competition's data files (training data and public evaluation files)."""
    st = state(ctx)
    with st.api() as api:
        _, rows = _files(api, exposure(internal), slug)
    render(rows, FILE_COLUMNS, st.fmt(fmt), many=True, empty="No data files.")


def _safe_target(folder: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", ".", "") for p in parts) \
            or "\\" in name or "\x00" in name:
        raise CliError(f"Refusing to write the file name {name!r} (it leaves the folder).")
    return folder.joinpath(*parts)


@app.command(epilog=examples(
    'medforge competitions download titanic-survival',
    'medforge competitions download titanic-survival sample_submission.csv -d data/',
))
def download(
    ctx: typer.Context,
    slug: SlugArg,
    names: Annotated[list[str] | None, typer.Argument(
        metavar="FILE...", help="Only these files (default: all).")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", "-d", help="Where to write "
                                                   "(default: ./<slug>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again files already there "
                                        "with the same size.")] = False,
    internal: InternalOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Download the competition's data files, with a progress bar."""
    st = state(ctx)
    surface = exposure(internal)
    folder = directory or Path(slug)
    results = []
    with st.api() as api:
        _, rows = _files(api, surface, slug)
        wanted = set(names or [])
        if wanted:
            known = {str(get("dataset_file", r, "name")) for r in rows}
            missing = sorted(wanted - known)
            if missing:
                raise NotFoundError(f"No such data file(s) in {slug}: {', '.join(missing)}.")
            rows = [r for r in rows if get("dataset_file", r, "name") in wanted]
        with transfer_progress() as progress:
            for row in rows:
                name = str(get("dataset_file", row, "name"))
                size = get("dataset_file", row, "size")
                target = _safe_target(folder, name)
                if not force and target.exists() and target.stat().st_size == size:
                    results.append({"name": name, "path": str(target), "size": size, "status": "present"})
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                task = progress.add_task(name, total=size if isinstance(size, int) else None)
                written = 0
                try:
                    with api.stream("GET", str(get("dataset_file", row, "url"))) as response, \
                            open(partial, "wb") as fh:
                        for chunk in response.iter_bytes(256 * 1024):
                            fh.write(chunk)
                            written += len(chunk)
                            progress.advance(task, len(chunk))
                    os.replace(partial, target)
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
                results.append({"name": name, "path": str(target), "size": written,
                                "status": "downloaded"})
    out = st.fmt(fmt)
    if out is Format.json:
        print_json(results)
        return
    columns = [Column("name", "dataset_file", "name", value=lambda r: r["name"]),
               Column("status", "dataset_file", "name", value=lambda r: r["status"]),
               Column("size", "dataset_file", "size", human_size, value=lambda r: r["size"]),
               Column("path", "dataset_file", "name", value=lambda r: r["path"])]
    render(results, columns, out, many=True, empty="No data files.")


def _find_submission(api: Api, surface: str, slug: str, submission_id) -> dict | None:
    for row in api.paginate(f"/{surface}/competitions/{slug}/submissions/me", limit=500, page_size=50):
        if get("submission", row, "id") == submission_id:
            return row
    return None


def _my_rank(api: Api, surface: str, slug: str, handle: str | None) -> dict | None:
    if not handle:
        return None
    for row in api.paginate(f"/{surface}/competitions/{slug}/leaderboard", limit=20000, page_size=500):
        if get("leaderboard_row", row, "handle") == handle:
            return row
    return None


@app.command(epilog=examples(
    'medforge competitions submit titanic-survival preds.csv -m "gradient boosting" --wait',
    'medforge competitions submit titanic-survival preds.csv -o json | jq .id',
))
def submit(
    ctx: typer.Context,
    slug: SlugArg,
    file: Annotated[Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, readable=True,
                                         help="The submission CSV (UTF-8, the competition's header).")],
    message: Annotated[str, typer.Option("--message", "-m", help="A description to recognise "
                                         "it by.")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the score and print it with "
                                       "your rank (exit 1 if scoring fails).")] = False,
    timeout: TimeoutOpt = 600.0,
    internal: InternalOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Upload a submission (validated at once: a rejected file does not count against the
    daily cap)."""
    st = state(ctx)
    surface = exposure(internal)
    size = file.stat().st_size
    with st.api() as api:
        detail = _detail(api, surface, slug)
        cap = get("competition_detail", detail, "max_upload_bytes")
        if isinstance(cap, int) and size > cap:
            raise UsageError(f"{file} is {human_size(size)}; {slug} accepts at most {human_size(cap)}.")
        with upload_progress(file, size) as reader:
            form = {"description": message} if message else {}
            created = api.data("POST", f"/{surface}/competitions/{slug}/submissions",
                               files={"file": (file.name, reader, "text/csv")}, data=form,
                               timeout=max(60.0, size / 100_000))
        sid = get("submission_created", created, "id")
        note(f"Submission {sid} accepted ({get('submission_created', created, 'rows')} rows), "
             f"{get('submission_created', created, 'status')}; "
             f"{get('submission_created', created, 'remaining_today')} of "
             f"{get('submission_created', created, 'daily_cap')} left today (UTC).")
        out = st.fmt(fmt)
        if not wait:
            render(created, SUBMISSION_COLUMNS, out, many=False,
                   json_data=created)
            return
        submission = _wait_scored(api, surface, slug, sid, timeout=timeout)
        status = get("submission", submission, "status")
        standing = None
        if status in SCORED:
            me = api.data("GET", "/me")
            standing = _my_rank(api, surface, slug, get("user", me, "handle"))
    if out is Format.json:
        print_json({"submission": submission, "leaderboard": standing})
    else:
        render(submission, SUBMISSION_COLUMNS, out, many=False)
    if status in FAILED:
        reason = get("submission", submission, "error") or "no reason given"
        raise CliError(f"Submission {sid} failed scoring: {reason}")
    score = human_score(get("submission", submission, "score"))
    if standing:
        best = human_score(get("leaderboard_row", standing, "score"))
        extra = "" if best == score else f" (your best stays {best})"
        note(f"Scored {score}: rank {get('leaderboard_row', standing, 'rank')} on the public "
             f"leaderboard{extra}.")
    else:
        note(f"Scored {score}.")


def _wait_scored(api: Api, surface: str, slug: str, sid, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    delay = 0.5
    console = stderr_console()
    status_line = console.status(f"Scoring submission {sid}…") if console.is_terminal else None
    if status_line is not None:
        status_line.start()
    try:
        while True:
            row = _find_submission(api, surface, slug, sid)
            if row is None:
                raise NotFoundError(f"Submission {sid} is not among yours in {slug}.")
            status = get("submission", row, "status")
            if status in SCORED or status in FAILED:
                return row
            if status_line is not None:
                status_line.update(f"Scoring submission {sid}… ({status})")
            if time.monotonic() + delay > deadline:
                raise CliError(f"Gave up after {int(timeout)}s: submission {sid} is still {status}.")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)
    finally:
        if status_line is not None:
            status_line.stop()


@app.command()
def submissions(
    ctx: typer.Context,
    slug: SlugArg,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    internal: InternalOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Your submissions, newest first, and how many are left today."""
    st = state(ctx)
    surface = exposure(internal)
    with st.api() as api:
        detail = _detail(api, surface, slug)
        rows = list(api.paginate(f"/{surface}/competitions/{slug}/submissions/me", limit=limit))
    remaining = get("competition_detail", detail, "remaining_today")
    cap = get("competition_detail", detail, "daily_cap")
    out = st.fmt(fmt)
    if out is Format.json:
        print_json({"remaining_today": remaining, "daily_cap": cap, "submissions": rows})
        return
    render(rows, SUBMISSION_COLUMNS, out, many=True, empty="No submissions yet.")
    note(f"{remaining} of {cap} submissions left today (UTC).")


@app.command()
def leaderboard(
    ctx: typer.Context,
    slug: SlugArg,
    board: Annotated[str, typer.Option("--board", help="public, or private (after the reveal "
                                       "date, or for admins).")] = "public",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
    internal: InternalOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """The leaderboard: best official score per user, shared ranks."""
    if board not in ("public", "private"):
        raise UsageError("--board is public or private.")
    st = state(ctx)
    with _api(st, auth=internal or board == "private") as api:
        rows = list(api.paginate(f"/{exposure(internal)}/competitions/{slug}/leaderboard",
                                 {"board": board}, limit=limit))
    render(rows, LEADERBOARD_COLUMNS, st.fmt(fmt), many=True, empty="No scores yet.")
