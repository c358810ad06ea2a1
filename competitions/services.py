"""Writes for competitions: intake of submissions, scoring runs, rescoring, leaderboard upkeep.

Every service keeps its invariant in one transaction and queues side effects (the scoring
task) with ``transaction.on_commit``. Lock order, everywhere: the user row, then the
submission row — so intake, scoring and rescoring never deadlock each other.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from competitions.dataroots import (
    EvaluationUnavailable,
    load_evaluation,
    submission_dir,
    submission_file,
)
from competitions.metrics import ScoringError
from competitions.models import (
    Board,
    Competition,
    LeaderboardEntry,
    Score,
    Submission,
    SubmissionStatus,
)
from competitions.validation import validate_submission
from medforge.accounts.services import audit_record
from medforge.api.problems import Problem
from medforge.ops.metrics import (
    SCORING_DURATION,
    SCORING_FAILURES,
    SUBMISSIONS_RECEIVED,
)

log = structlog.get_logger(__name__)

DESCRIPTION_MAX = 500
# A run whose worker died is retried this many times before the submission is marked failed.
MAX_INTERRUPTED_RUNS = 3
# A queued submission whose task message went missing (broker restart) is re-sent after this.
QUEUED_STALE_SECONDS = 300


# --- daily cap ------------------------------------------------------------------------------


def utc_day_bounds(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the current UTC day."""
    now = (now or timezone.now()).astimezone(dt.UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


def submissions_today(*, user, competition: Competition, now: dt.datetime | None = None) -> int:
    start, end = utc_day_bounds(now)
    return Submission.objects.filter(
        user=user, competition=competition, created_at__gte=start, created_at__lt=end
    ).count()


def _cap_problem(competition: Competition, now: dt.datetime) -> Problem:
    _, end = utc_day_bounds(now)
    retry_after = max(1, int((end - now).total_seconds()) + 1)
    return Problem(
        "submission_cap_reached",
        f"You have made {competition.daily_cap} submissions to {competition.slug} today (UTC), "
        f"the daily cap; the next one is accepted after {end:%Y-%m-%d %H:%M} UTC.",
        headers={"Retry-After": str(retry_after)},
        daily_cap=competition.daily_cap,
        remaining_today=0,
        retry_after=retry_after,
    )


# --- intake ---------------------------------------------------------------------------------


@dataclass
class _Spool:
    """Copies the upload to disk while the validator reads it, hashing and counting bytes."""

    path: Path
    limit: int
    size: int = 0
    too_large: bool = False

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self._out = open(self.path, "wb")  # noqa: SIM115  (closed in close())

    def lines(self, source: Iterable[bytes]) -> Iterator[bytes]:
        for line in source:
            if isinstance(line, str):
                line = line.encode("utf-8")
            self.size += len(line)
            if self.size > self.limit:
                self.too_large = True
                return
            self.sha256.update(line)
            self._out.write(line)
            yield line

    def drain(self, iterator: Iterator[bytes]) -> None:
        for _ in iterator:
            pass

    def close(self) -> None:
        self._out.close()


def _problem_errors(problems) -> list[dict[str, Any]]:
    return [{"line": p.line, "field": p.column, "message": p.message, "code": p.code} for p in problems]


def _invalid_detail(result) -> str:
    first = result.problems[0]
    where = f"line {first.line}" + (f" ({first.column})" if first.column else "")
    if result.total_problems == 1:
        return f"The file is invalid: {where}: {first.message}"
    return (
        f"The file has {result.total_problems} problems; the first is on {where}: {first.message}"
    )


def _enqueue_scoring(submission_id: int) -> None:
    from competitions.tasks import score_submission

    try:
        score_submission.delay(submission_id)
    except Exception:  # broker down: requeue_stale re-sends queued submissions later
        log.exception("competitions.enqueue_failed", submission_id=submission_id)


def submission_create(*, user, competition: Competition, upload, description: str = "") -> Submission:
    """Accept one submission file: validate it whole, store it, queue it for scoring.

    Invariants: an invalid file (or one over SUBMISSION_UPLOAD_MAX_BYTES) creates nothing and
    is not charged; at most ``competition.daily_cap`` submissions exist per user per
    competition per UTC day under any concurrency, because the count and the insert happen in
    one transaction holding the user's row lock. Raises Problem ``submission_too_large``,
    ``submission_invalid`` (``errors`` = [{line, field, message, code}]),
    ``submission_cap_reached`` (Retry-After, ``remaining_today``) or ``scoring_unavailable``.
    """
    slug = competition.slug
    max_bytes = settings.SUBMISSION_UPLOAD_MAX_BYTES
    if upload is None:
        raise Problem("validation_error", "Attach the submission CSV as the multipart field 'file'.",
                      errors=[{"field": "file", "message": "This field is required.", "code": "required"}])
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Problem("validation_error", f"description: at most {DESCRIPTION_MAX} characters.",
                      errors=[{"field": "description", "message": f"At most {DESCRIPTION_MAX} characters.",
                               "code": "max_length"}])
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        SUBMISSIONS_RECEIVED.labels(slug, "too_large").inc()
        raise too_large_problem(max_bytes)
    now = timezone.now()
    # Cheap early answer (no lock) so a capped user does not wait for validation; the
    # authoritative count happens under the lock below.
    if submissions_today(user=user, competition=competition, now=now) >= competition.daily_cap:
        SUBMISSIONS_RECEIVED.labels(slug, "cap_reached").inc()
        raise _cap_problem(competition, now)
    try:
        evaluation = load_evaluation(competition)
    except EvaluationUnavailable as exc:
        log.error("competitions.evaluation_unavailable", competition=slug, reason=str(exc))
        raise Problem("scoring_unavailable",
                      f"{competition.slug} cannot accept submissions right now: {exc.public_message}.") from None

    directory = submission_dir(slug, user.pk)
    directory.mkdir(parents=True, exist_ok=True)
    spool = _Spool(directory / f".incoming-{uuid.uuid4().hex}.csv", max_bytes)
    final: Path | None = None
    try:
        if hasattr(upload, "seek"):
            upload.seek(0)
        lines = spool.lines(upload)
        try:
            result = validate_submission(lines, evaluation.manifest, evaluation.metric, evaluation.holdout_ids)
            spool.drain(lines)
        finally:
            spool.close()
        if spool.too_large:
            SUBMISSIONS_RECEIVED.labels(slug, "too_large").inc()
            raise too_large_problem(max_bytes)
        if not result.ok:
            SUBMISSIONS_RECEIVED.labels(slug, "invalid").inc()
            raise Problem("submission_invalid", _invalid_detail(result), errors=_problem_errors(result.problems),
                          total_problems=result.total_problems)
        User = get_user_model()
        with transaction.atomic():
            User.objects.select_for_update().only("pk").get(pk=user.pk)
            now = timezone.now()
            used = submissions_today(user=user, competition=competition, now=now)
            if used >= competition.daily_cap:
                SUBMISSIONS_RECEIVED.labels(slug, "cap_reached").inc()
                raise _cap_problem(competition, now)
            submission = Submission.objects.create(
                competition=competition, user=user, file_path="", sha256=spool.sha256.hexdigest(),
                size_bytes=spool.size, rows=result.rows, description=description, created_at=now,
            )
            final = directory / f"{submission.pk}.csv"
            os.replace(spool.path, final)
            submission.file_path = final.relative_to(settings.SUBMISSIONS_DIR).as_posix()
            submission.save(update_fields=["file_path"])
            transaction.on_commit(lambda: _enqueue_scoring(submission.pk))
        final = None  # committed: the stored file is the submission's now
        SUBMISSIONS_RECEIVED.labels(slug, "accepted").inc()
        submission.daily_cap = competition.daily_cap
        submission.remaining_today = max(0, competition.daily_cap - used - 1)
        log.info("competitions.submission_accepted", competition=slug, user_id=user.pk,
                 submission_id=submission.pk, rows=result.rows)
        return submission
    finally:
        # Whatever went wrong, leave no half-stored file behind.
        for leftover in (spool.path, final):
            if leftover is not None:
                try:
                    leftover.unlink()
                except FileNotFoundError:
                    pass


def too_large_problem(max_bytes: int) -> Problem:
    return Problem(
        "submission_too_large",
        f"The file is larger than the {max_bytes:,} bytes a submission may have.",
        max_bytes=max_bytes,
    )


# --- scoring --------------------------------------------------------------------------------


class ScoringFailed(Exception):
    """The submission cannot be scored (its message is shown to the submitter)."""


@dataclass(frozen=True)
class ScoreRun:
    primary_score: float
    private_score: float | None
    components: dict[str, Any]
    metric_version: str
    split_version: str
    manifest_sha256: str


def _hashed_lines(path: Path, digest) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        for line in handle:
            digest.update(line)
            yield line


def compute_score(submission: Submission) -> ScoreRun:
    """Score the stored file of ``submission`` against its competition's holdout (pure read).

    Raises :class:`ScoringFailed` with a reason the submitter may read.
    """
    competition = submission.competition
    try:
        evaluation = load_evaluation(competition)
    except EvaluationUnavailable as exc:
        log.error("competitions.evaluation_unavailable", competition=competition.slug, reason=str(exc))
        raise ScoringFailed(f"the competition cannot be scored right now: {exc.public_message}") from None
    digest = hashlib.sha256()
    try:
        lines = _hashed_lines(submission_file(submission), digest)
        result = validate_submission(lines, evaluation.manifest, evaluation.metric, evaluation.holdout_ids)
        for _ in lines:
            pass
    except FileNotFoundError:
        raise ScoringFailed("the stored submission file is missing") from None
    if digest.hexdigest() != submission.sha256:
        raise ScoringFailed("the stored submission file changed after upload (checksum mismatch)")
    if not result.ok:
        first = result.problems[0]
        raise ScoringFailed(f"the file no longer matches the evaluation set: line {first.line}: {first.message}")
    metric = evaluation.metric
    try:
        if evaluation.public_ids is None:
            public = metric.score(evaluation.truth, result.predictions)
            private = None
            components: dict[str, Any] = dict(public.components)
        else:
            public = metric.score(evaluation.truth, result.predictions, ids=evaluation.public_ids)
            private = metric.score(evaluation.truth, result.predictions, ids=evaluation.private_ids)
            components = {"public": dict(public.components), "private": dict(private.components)}
    except ScoringError as exc:
        raise ScoringFailed(f"scoring failed: {exc}") from None
    return ScoreRun(
        primary_score=float(public.primary),
        private_score=None if private is None else float(private.primary),
        components=components,
        metric_version=metric.version,
        split_version=evaluation.split_version,
        manifest_sha256=evaluation.manifest_sha256,
    )


def submission_claim(*, submission_id: int) -> int | None:
    """Compare-and-set ``queued`` → ``scoring``; returns the claim number, or None when the
    submission is gone or not queued (another worker has it, or it is already scored)."""
    with transaction.atomic():
        sub = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if sub is None or sub.status != SubmissionStatus.QUEUED:
            return None
        sub.status = SubmissionStatus.SCORING
        sub.attempts += 1
        sub.scoring_started_at = timezone.now()
        sub.save(update_fields=["status", "attempts", "scoring_started_at"])
        return sub.attempts


def _lock_current(submission_id: int, attempt: int) -> Submission | None:
    """The submission row, locked, if it is still in the claim ``attempt`` (else None)."""
    sub = Submission.objects.select_for_update().filter(pk=submission_id).first()
    if sub is None or sub.status != SubmissionStatus.SCORING or sub.attempts != attempt:
        return None
    return sub


def submission_record_score(*, submission_id: int, attempt: int, run: ScoreRun, duration_ms: int = 0) -> Score | None:
    """Append a score run, make it the official one and refresh the user's leaderboard rows.

    Invariant: exactly one official score per scored submission (the previous one is
    superseded in the same transaction); a run from an outdated claim is dropped (None).
    """
    User = get_user_model()
    user_id = Submission.objects.filter(pk=submission_id).values_list("user_id", flat=True).first()
    if user_id is None:
        return None
    with transaction.atomic():
        # The user lock serializes leaderboard upkeep of one user's concurrent scorings.
        User.objects.select_for_update().only("pk").get(pk=user_id)
        sub = _lock_current(submission_id, attempt)
        if sub is None:
            return None
        Score.objects.filter(official_for=sub).update(official_for=None)
        score = Score.objects.create(
            submission=sub, primary_score=run.primary_score, private_score=run.private_score,
            components=run.components, metric_version=run.metric_version,
            split_version=run.split_version, manifest_sha256=run.manifest_sha256,
            official_for=sub, duration_ms=duration_ms,
        )
        sub.status = SubmissionStatus.SCORED
        sub.scored_at = timezone.now()
        sub.error = ""
        sub.save(update_fields=["status", "scored_at", "error"])
        leaderboard_refresh_user(competition=sub.competition, user_id=user_id)
    return score


def submission_mark_failed(*, submission_id: int, attempt: int, error: str) -> bool:
    """``scoring`` → ``failed`` with the reason, for the claim ``attempt`` only."""
    with transaction.atomic():
        sub = _lock_current(submission_id, attempt)
        if sub is None:
            return False
        sub.status = SubmissionStatus.FAILED
        sub.error = error[:2000]
        sub.scored_at = timezone.now()
        sub.save(update_fields=["status", "error", "scored_at"])
    return True


def submission_release(*, submission_id: int, attempt: int) -> bool:
    """``scoring`` → ``queued`` after an unexpected error, so a later pass retries it."""
    with transaction.atomic():
        sub = _lock_current(submission_id, attempt)
        if sub is None:
            return False
        sub.status = SubmissionStatus.QUEUED
        sub.queued_at = timezone.now()
        sub.interrupted_runs += 1
        sub.save(update_fields=["status", "queued_at", "interrupted_runs"])
    return True


def submission_score(*, submission_id: int) -> str:
    """Claim, score and record one submission; idempotent (a second call is a no-op).

    Returns the outcome: ``scored``, ``failed``, ``skipped`` (not queued) or ``superseded``.
    """
    attempt = submission_claim(submission_id=submission_id)
    if attempt is None:
        return "skipped"
    sub = Submission.objects.select_related("competition").get(pk=submission_id)
    slug = sub.competition.slug
    started = time.monotonic()
    try:
        run = compute_score(sub)
    except ScoringFailed as exc:
        SCORING_FAILURES.labels(slug).inc()
        log.info("competitions.scoring_failed", competition=slug, submission_id=submission_id, reason=str(exc))
        return "failed" if submission_mark_failed(submission_id=submission_id, attempt=attempt,
                                                  error=str(exc)) else "superseded"
    except SoftTimeLimitExceeded:
        SCORING_FAILURES.labels(slug).inc()
        limit = settings.SCORING_TIME_LIMIT_SECONDS
        submission_mark_failed(submission_id=submission_id, attempt=attempt,
                               error=f"scoring took longer than the {limit} s limit")
        return "failed"
    except BaseException as exc:
        # A bug or the database going away: hand the row back for a retry
        # (bounded by MAX_INTERRUPTED_RUNS) instead of leaving it in `scoring`.
        SCORING_FAILURES.labels(slug).inc()
        log.exception("competitions.scoring_crashed", competition=slug, submission_id=submission_id,
                      error=type(exc).__name__)
        try:
            if sub.interrupted_runs + 1 >= MAX_INTERRUPTED_RUNS:
                submission_mark_failed(submission_id=submission_id, attempt=attempt,
                                       error=f"scoring kept failing ({type(exc).__name__}); an admin can rescore")
            else:
                submission_release(submission_id=submission_id, attempt=attempt)
        except Exception:
            log.exception("competitions.scoring_release_failed", submission_id=submission_id)
        raise
    elapsed = time.monotonic() - started
    SCORING_DURATION.labels(slug).observe(elapsed)
    score = submission_record_score(submission_id=submission_id, attempt=attempt, run=run,
                                    duration_ms=int(elapsed * 1000))
    if score is None:
        return "superseded"
    log.info("competitions.scored", competition=slug, submission_id=submission_id, score=run.primary_score)
    return "scored"


def submission_rescore(*, submission: Submission, by, request=None) -> Submission:
    """Queue a new scoring run of ``submission``, whatever its status.

    Invariant: score runs are append-only — earlier runs stay; the current official one stays
    official until the new run supersedes it. A run still in flight belongs to an older claim
    and will be dropped when it finishes.
    """
    with transaction.atomic():
        sub = Submission.objects.select_for_update().get(pk=submission.pk)
        previous = sub.status
        sub.status = SubmissionStatus.QUEUED
        sub.queued_at = timezone.now()
        sub.error = ""
        sub.interrupted_runs = 0
        sub.scoring_started_at = None
        sub.save(update_fields=["status", "queued_at", "error", "interrupted_runs",
                                "scoring_started_at"])
        audit_record(actor=by, action="submission.rescore", target=sub,
                     data={"previous_status": previous, "competition": submission.competition.slug},
                     request=request)
        transaction.on_commit(lambda: _enqueue_scoring(sub.pk))
    return sub


def submissions_requeue_stale(*, now: dt.datetime | None = None, scoring_stale_after: float | None = None,
                              queued_stale_after: float = QUEUED_STALE_SECONDS, batch: int = 500) -> dict[str, int]:
    """Recover submissions that a dead worker or a lost message left behind.

    ``scoring`` rows older than the task's hard time limit (their worker is surely gone) go back
    to ``queued`` — or to ``failed`` after MAX_INTERRUPTED_RUNS — and ``queued`` rows older than
    ``queued_stale_after`` are re-sent. Re-sending is harmless: the task's claim is a
    compare-and-set, so duplicates do nothing.
    """
    now = now or timezone.now()
    if scoring_stale_after is None:
        scoring_stale_after = settings.SCORING_TIME_LIMIT_SECONDS + 60
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    stale_before = now - dt.timedelta(seconds=scoring_stale_after)
    stuck = list(
        Submission.objects.filter(status=SubmissionStatus.SCORING, scoring_started_at__lte=stale_before)
        .order_by("scoring_started_at").values_list("pk", "attempts")[:batch]
    )
    for pk, attempt in stuck:
        with transaction.atomic():
            sub = _lock_current(pk, attempt)
            if sub is None:
                continue
            if sub.interrupted_runs + 1 >= MAX_INTERRUPTED_RUNS:
                sub.status = SubmissionStatus.FAILED
                sub.error = f"scoring was interrupted {sub.interrupted_runs + 1} times; an admin can rescore"
                sub.scored_at = now
                counts["failed"] += 1
            else:
                sub.status = SubmissionStatus.QUEUED
                sub.queued_at = now
                counts["requeued"] += 1
                transaction.on_commit(lambda pk=pk: _enqueue_scoring(pk))
            sub.interrupted_runs += 1
            sub.save(update_fields=["status", "queued_at", "error", "scored_at", "interrupted_runs"])
    lost_before = now - dt.timedelta(seconds=queued_stale_after)
    lost = list(
        Submission.objects.filter(status=SubmissionStatus.QUEUED)
        .filter(Q(queued_at__lte=lost_before) | Q(queued_at__isnull=True, created_at__lte=lost_before))
        .exclude(pk__in=[pk for pk, _ in stuck]).order_by("queued_at", "created_at")
        .values_list("pk", flat=True)[:batch]
    )
    if lost:
        # Stamp first: the next pass re-sends these only if they are still queued a full
        # QUEUED_STALE_SECONDS later, so a long backlog is not flooded with duplicates.
        Submission.objects.filter(pk__in=lost, status=SubmissionStatus.QUEUED).update(queued_at=now)
    for pk in lost:
        _enqueue_scoring(pk)
        counts["resent"] += 1
    if any(counts.values()):
        log.info("competitions.requeue_stale", **counts)
    return counts


# --- leaderboard upkeep ---------------------------------------------------------------------


def _sort_key(score: float, higher_is_better: bool) -> float:
    return -score if higher_is_better else score


def leaderboard_refresh_user(*, competition: Competition, user_id: int) -> None:
    """Recompute one user's rows (both boards) from their official scores.

    Cost is bounded by that user's submissions (the daily cap bounds those), not by the
    competition's size. Call inside the transaction that changed the user's scores, holding
    the user's row lock.
    """
    rows = list(
        Score.objects.filter(
            official_for__isnull=False, submission__competition=competition, submission__user_id=user_id
        ).values_list("primary_score", "private_score", "submission_id", "submission__created_at")
    )
    if not rows:
        LeaderboardEntry.objects.filter(competition=competition, user_id=user_id).delete()
        return
    hib = competition.higher_is_better
    now = timezone.now()
    for board in (Board.PUBLIC, Board.PRIVATE):
        def value(row, board=board):
            return row[0] if board == Board.PUBLIC or row[1] is None else row[1]

        best = min(rows, key=lambda r: (_sort_key(value(r), hib), r[3], r[2]))
        score = value(best)
        LeaderboardEntry.objects.update_or_create(
            competition=competition, board=board, user_id=user_id,
            defaults={
                "best_score": score, "sort_key": _sort_key(score, hib), "best_at": best[3],
                "best_submission_id": best[2], "submission_count": len(rows), "updated_at": now,
            },
        )


def leaderboard_rebuild(*, competition: Competition) -> int:
    """Recompute every row of ``competition``'s leaderboards from the official scores in two
    set-based statements (admin action; also after ``higher_is_better`` changes). Returns rows."""
    qn = connection.ops.quote_name
    sign = -1.0 if competition.higher_is_better else 1.0
    entry, score, sub = (qn(m._meta.db_table) for m in (LeaderboardEntry, Score, Submission))
    total = 0
    with transaction.atomic():
        LeaderboardEntry.objects.filter(competition=competition).delete()
        for board, column in ((Board.PUBLIC, "primary_score"),
                              (Board.PRIVATE, "COALESCE(sc.private_score, sc.primary_score)")):
            value = f"sc.{qn(column)}" if column == "primary_score" else column
            sql = f"""
                INSERT INTO {entry} (competition_id, board, user_id, best_score, sort_key, best_at,
                                     best_submission_id, submission_count, updated_at)
                SELECT competition_id, %s, user_id, score, sk, created_at, submission_id, n, %s FROM (
                    SELECT s.competition_id, s.user_id, {value} AS score, %s * {value} AS sk,
                           s.created_at, s.id AS submission_id,
                           ROW_NUMBER() OVER (PARTITION BY s.user_id
                                              ORDER BY %s * {value}, s.created_at, s.id) AS rn,
                           COUNT(*) OVER (PARTITION BY s.user_id) AS n
                    FROM {score} sc JOIN {sub} s ON sc.official_for_id = s.id
                    WHERE s.competition_id = %s
                ) ranked WHERE rn = 1
            """
            with connection.cursor() as cursor:
                cursor.execute(sql, [board.value, timezone.now(), sign, sign, competition.pk])
                total += cursor.rowcount
    return total
