"""Reads for competitions: visible competitions and datasets, leaderboards, submissions, files.

Exposure rules live here so the API and the web UI apply the same ones: the INTERNAL surface
needs ``user.may_use_internal`` (403 ``internal_access_required``), and a competition or
dataset of the other exposure is simply not found (404).
"""
from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count, QuerySet

from competitions.dataroots import (
    MANIFEST_NAME,
    EvaluationUnavailable,
    dataset_public_dir,
    dataset_training_dir,
    load_evaluation,
)
from competitions.models import (
    Board,
    Competition,
    Dataset,
    LeaderboardEntry,
    Submission,
    SubmissionStatus,
)
from competitions.services import submissions_today
from medforge.api.problems import Problem
from medforge.core.exposure import may_use

FILE_AREAS = ("public", "training")
MAX_LISTED_FILES = 5000


def require_exposure(*, user, exposure: str) -> None:
    if not may_use(user, exposure):
        raise Problem("internal_access_required",
                      "The INTERNAL surface is for entitled users; ask an administrator for access.")


# --- competitions ---------------------------------------------------------------------------


def competitions_for(*, user, exposure: str) -> QuerySet[Competition]:
    """Active competitions of one surface, by slug."""
    require_exposure(user=user, exposure=exposure)
    return Competition.objects.filter(exposure=exposure, is_active=True).select_related("dataset").order_by("slug")


def competition_detail(*, user, exposure: str, slug: str) -> Competition:
    """The competition ``slug`` on this surface, or 404 ``competition_not_found``."""
    competition = competitions_for(user=user, exposure=exposure).filter(slug=slug).first()
    if competition is None:
        raise Problem("competition_not_found", f"There is no {exposure} competition {slug!r}.")
    return competition


def remaining_today(*, user, competition: Competition) -> int:
    return max(0, competition.daily_cap - submissions_today(user=user, competition=competition))


@dataclass(frozen=True)
class SubmissionFormat:
    header: str
    description: str


def submission_formats(*, competition: Competition) -> list[SubmissionFormat]:
    """The CSV layouts the competition accepts (the first is the sample submission's); empty
    when its evaluation data is not installed."""
    try:
        evaluation = load_evaluation(competition)
    except EvaluationUnavailable:
        return []
    formats = evaluation.metric.submission_formats(evaluation.manifest)
    return [SubmissionFormat(f.header, f.description) for f in formats]


def has_private_board(*, competition: Competition) -> bool:
    try:
        return load_evaluation(competition).has_private_board
    except EvaluationUnavailable:
        return False


# --- leaderboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    user_id: int
    handle: str
    display_name: str
    score: float
    submission_count: int
    best_at: dt.datetime
    submission_id: int


def check_board(*, competition: Competition, board: str, user) -> str:
    """Validate ``board`` for ``user``: 400 for an unknown name, 403 while the private board
    is hidden (until the reveal date; admins always see it)."""
    if board not in Board.values:
        raise Problem("invalid_filter", f"board must be one of {', '.join(Board.values)}, got {board!r}.",
                      errors=[{"field": "board", "message": "Unknown board.", "code": "invalid_choice"}])
    if board == Board.PRIVATE and not competition.private_board_visible_to(user):
        when = f" on {competition.reveal_at:%Y-%m-%d %H:%M} UTC" if competition.reveal_at else " by an administrator"
        raise Problem("permission_denied", f"The private leaderboard of {competition.slug} is revealed{when}.")
    return board


def _entries(competition: Competition, board: str) -> QuerySet[LeaderboardEntry]:
    return LeaderboardEntry.objects.filter(competition=competition, board=board).order_by("sort_key", "best_at", "id")


def leaderboard(
    *, competition: Competition, board: str = "public", offset: int = 0, limit: int = 50
) -> list[LeaderboardRow]:
    """One page of the leaderboard: best official score per user, ranked 1,2,2,4 (ties share a
    rank and are listed earliest-first).

    Two indexed queries whatever the number of submissions: the page itself (a range scan of
    the ``leaderboard_order`` index, users joined by primary key) and, past the first page,
    the count of strictly better entries that fixes the first row's rank.
    """
    page = list(
        _entries(competition, board).select_related("user")
        .only("sort_key", "best_score", "best_at", "submission_count", "best_submission_id",
              "user__id", "user__handle", "user__display_name")[offset:offset + limit]
    )
    if not page:
        return []
    if offset == 0:
        rank = 1
    else:
        rank = 1 + LeaderboardEntry.objects.filter(
            competition=competition, board=board, sort_key__lt=page[0].sort_key
        ).count()
    rows: list[LeaderboardRow] = []
    previous = page[0].sort_key
    for i, entry in enumerate(page):
        if entry.sort_key != previous:
            rank = offset + i + 1
            previous = entry.sort_key
        rows.append(LeaderboardRow(
            rank=rank, user_id=entry.user_id, handle=entry.user.handle, display_name=entry.user.display_name,
            score=entry.best_score, submission_count=entry.submission_count, best_at=entry.best_at,
            submission_id=entry.best_submission_id,
        ))
    return rows


@dataclass(frozen=True)
class HistoryPoint:
    at: dt.datetime
    score: float
    handle: str


def score_history(*, competition: Competition, board: str = "public") -> list[HistoryPoint]:
    """The leading score over time (each point: a best submission that beat every earlier
    best), for a best-score-over-time chart. Reads the maintained leaderboard rows only, so
    its cost follows the number of participants, not of submissions."""
    entries = (
        LeaderboardEntry.objects.filter(competition=competition, board=board)
        .order_by("best_at", "id").values_list("best_at", "best_score", "sort_key", "user__handle")
    )
    points: list[HistoryPoint] = []
    best_key: float | None = None
    for at, score, key, handle in entries.iterator(chunk_size=2000):
        if best_key is None or key < best_key:
            best_key = key
            points.append(HistoryPoint(at, score, handle))
    return points


# --- submissions ----------------------------------------------------------------------------


def submissions_for(*, user, competition: Competition) -> QuerySet[Submission]:
    """The user's submissions to ``competition``, newest first, with their official score."""
    return (
        Submission.objects.filter(user=user, competition=competition)
        .select_related("official_score", "competition").order_by("-created_at", "-id")
    )


def submission_detail(*, user, competition: Competition, submission_id: int) -> Submission:
    """One submission of ``competition`` visible to ``user`` (its owner or an admin)."""
    qs = Submission.objects.filter(pk=submission_id, competition=competition).select_related(
        "official_score", "competition")
    if not user.is_staff:
        qs = qs.filter(user=user)
    sub = qs.first()
    if sub is None:
        raise Problem("submission_not_found", f"There is no submission {submission_id} of yours in {competition.slug}.")
    return sub


def submission_status_counts() -> dict[str, int]:
    """Submissions by status over all competitions (for /metrics and the status page); every
    status is present, zero included. One grouped query over the (status, …) index."""
    counts = dict.fromkeys(SubmissionStatus.values, 0)
    for status, n in Submission.objects.order_by().values_list("status").annotate(n=Count("id")):
        counts[status] = n
    return counts


# --- datasets -------------------------------------------------------------------------------


def datasets_for(*, user, exposure: str) -> QuerySet[Dataset]:
    require_exposure(user=user, exposure=exposure)
    return Dataset.objects.filter(exposure=exposure).order_by("slug")


def dataset_detail(*, user, exposure: str, slug: str) -> Dataset:
    dataset = datasets_for(user=user, exposure=exposure).filter(slug=slug).first()
    if dataset is None:
        raise Problem("dataset_not_found", f"There is no {exposure} dataset {slug!r}.")
    return dataset


@dataclass(frozen=True)
class DatasetFile:
    name: str  # "<area>/<relative path>", what the download URL takes
    area: str
    size: int
    modified: dt.datetime


def _area_root(dataset: Dataset, area: str) -> tuple[Path, str | None]:
    """The dataset's folder in ``area`` and its real path; the latter is None when the folder
    resolves outside that area's data root (a linked folder must not open the holdouts)."""
    root = dataset_public_dir(dataset.slug) if area == "public" else dataset_training_dir(dataset.slug)
    real_root = os.path.realpath(root)
    return root, (real_root if real_root.startswith(os.path.realpath(root.parent) + os.sep) else None)


def _served(area: str, relative: str) -> bool:
    """Hidden files and the evaluation manifest are never listed or served."""
    parts = relative.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    return not (area == "public" and parts[-1] == MANIFEST_NAME)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _relative(real: str, real_root: str) -> str:
    return os.path.relpath(real, real_root).replace(os.sep, "/")


def dataset_files(*, dataset: Dataset) -> list[DatasetFile]:
    """Regular files under the dataset's public and training directories, sorted by name.

    Symlinks are followed only when they resolve inside the same area's root; anything that
    escapes it is left out. At most MAX_LISTED_FILES entries.
    """
    files: list[DatasetFile] = []
    for area in FILE_AREAS:
        root, real_root = _area_root(dataset, area)
        if real_root is None or not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                relative = os.path.relpath(full, root).replace(os.sep, "/")
                if not _served(area, relative):
                    continue
                real = os.path.realpath(full)
                if not _inside(real, real_root) or not _served(area, _relative(real, real_root)):
                    continue
                try:
                    st = os.stat(real)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                files.append(DatasetFile(
                    name=f"{area}/{relative}", area=area, size=st.st_size,
                    modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC),
                ))
                if len(files) >= MAX_LISTED_FILES:
                    return files
    return files


def dataset_file_path(*, dataset: Dataset, name: str) -> Path:
    """The real path of a downloadable file ``<area>/<relative path>`` of ``dataset``.

    400 ``bad_request`` for a malformed name ('..', absolute, hidden or empty parts);
    404 ``file_not_found`` for anything that is not a regular file inside the area's root
    after resolving symlinks (so a link pointing outside never serves).
    """
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or any(p in ("", ".", "..") for p in name.split("/"))):
        raise Problem("bad_request", "A file name is '<area>/<path>' without '..', '.', empty parts, "
                      "backslashes or a leading '/'.")
    area, _, relative = name.partition("/")
    if area not in FILE_AREAS or not relative:
        raise Problem("file_not_found", f"No file {name!r}; names start with 'public/' or 'training/'.")
    if not _served(area, relative):
        raise Problem("file_not_found", f"No file {name!r} in dataset {dataset.slug}.")
    root, real_root = _area_root(dataset, area)
    real = os.path.realpath(os.path.join(root, *relative.split("/")))
    if (real_root is None or not _inside(real, real_root) or not _served(area, _relative(real, real_root))
            or not os.path.isfile(real)):
        raise Problem("file_not_found", f"No file {name!r} in dataset {dataset.slug}.")
    return Path(real)
