"""Datasets, competitions, submissions, append-only score runs and the maintained leaderboard.

Invariants the database holds:
- a score run is official for at most one submission and only for its own
  (`Score.official_for` is a nullable one-to-one, checked equal to `submission`), so a
  submission never has two official scores;
- one leaderboard row per (competition, board, user), ordered by an index on
  (competition, board, sort_key, best_at, id) — `sort_key` is the score signed so that
  smaller is better, whatever the metric's direction, so every page is one index range scan.
"""
from __future__ import annotations

import markdown as md
import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from competitions.metrics import METRICS
from medforge.core.exposure import Exposure  # noqa: F401  (re-exported: the models' choices)

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$"
slug_validator = RegexValidator(SLUG_RE, "lowercase letters, digits and '-' (no leading/trailing '-').")


class Board(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SCORING = "scoring", "Scoring"
    SCORED = "scored", "Scored"
    FAILED = "failed", "Failed"


METRIC_CHOICES = [(name, name) for name in sorted(METRICS)]

# Markdown is written by operators, but rendered into pages every user sees: sanitize anyway.
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}


def render_markdown(text: str) -> str:
    """Markdown → HTML that is safe to embed (scripts, handlers, javascript: URLs removed)."""
    html = md.markdown(text or "", extensions=["tables", "fenced_code", "sane_lists"])
    return nh3.clean(html, tags=_ALLOWED_TAGS, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


class Dataset(models.Model):
    """A dataset: its public files live in PUBLIC_EVAL_DATA_ROOT/<slug>/ (test ids, sample
    submission) and its training files in TRAINING_DATA_ROOT/<slug>/ (what sessions may mount)."""

    slug = models.CharField(max_length=80, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    exposure = models.CharField(max_length=8, choices=Exposure.choices, default=Exposure.EXTERNAL)
    source_url = models.URLField(blank=True)
    license = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["exposure", "slug"])]

    def __str__(self) -> str:
        return self.slug

    @property
    def description_html(self) -> str:
        return render_markdown(self.description)


class Competition(models.Model):
    """A permanent competition scored against a hidden holdout.

    Files: PUBLIC_EVAL_DATA_ROOT/<slug>/manifest.json (never served) and
    TEST_HOLDOUTS_DIR/<slug>/holdout_labels.csv (hidden; never mounted into sessions).
    """

    slug = models.CharField(max_length=80, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    rules = models.TextField(blank=True, help_text="Markdown.")
    exposure = models.CharField(max_length=8, choices=Exposure.choices, default=Exposure.EXTERNAL)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="competitions")
    metric = models.CharField(max_length=40, choices=METRIC_CHOICES)
    higher_is_better = models.BooleanField(default=True)
    daily_cap = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Valid submissions per user per UTC day.",
    )
    reveal_at = models.DateTimeField(
        null=True, blank=True, help_text="From then on everyone sees the private leaderboard."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive competitions are hidden.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["exposure", "is_active", "slug"])]
        constraints = [
            models.CheckConstraint(condition=Q(daily_cap__gte=1), name="competition_daily_cap_positive"),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.metric and self.metric not in METRICS:
            raise ValidationError({"metric": f"unknown metric {self.metric!r}"})
        if self.dataset_id and self.dataset.exposure != self.exposure:
            raise ValidationError({"dataset": "the dataset belongs to the other exposure"})

    @property
    def description_html(self) -> str:
        return render_markdown(self.description)

    @property
    def rules_html(self) -> str:
        return render_markdown(self.rules)

    def private_board_visible_to(self, user) -> bool:
        if getattr(user, "is_staff", False):
            return True
        return self.reveal_at is not None and self.reveal_at <= timezone.now()


class Submission(models.Model):
    """One valid upload. Invalid files never become a row (and so never count against the cap)."""

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="submissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="submissions")
    file_path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=8, choices=SubmissionStatus.choices,
                              default=SubmissionStatus.QUEUED)
    error = models.TextField(blank=True)
    # Bumped by every claim (queued → scoring): a late task finishing an older claim sees a
    # different number and drops its result instead of overwriting a newer state.
    attempts = models.PositiveIntegerField(default=0)
    # Runs lost to a dead worker since the last (re)queue by a user or admin; bounded by
    # services.MAX_INTERRUPTED_RUNS so a file that kills workers does not loop forever.
    interrupted_runs = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # When it (last) became `queued`, or was last re-sent by requeue_stale: a queued row is
    # re-sent at most once per QUEUED_STALE_SECONDS, however long the backlog.
    queued_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # daily cap count and "my submissions"
            models.Index(fields=["user", "competition", "created_at"]),
            # requeue_stale
            models.Index(fields=["status", "scoring_started_at"]),
            models.Index(fields=["status", "queued_at"]),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.competition_id}, {self.status})"


class Score(models.Model):
    """One scoring run (append-only). `primary_score` is the public-board score (the whole
    holdout when the manifest names no public subset); `private_score` the private-board
    score, or null without a split."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="scores")
    primary_score = models.FloatField()
    private_score = models.FloatField(null=True, blank=True)
    components = models.JSONField(default=dict, blank=True)
    metric_version = models.CharField(max_length=40)
    split_version = models.CharField(max_length=80, blank=True)
    manifest_sha256 = models.CharField(max_length=64)
    official_for = models.OneToOneField(
        Submission, null=True, blank=True, on_delete=models.CASCADE, related_name="official_score",
        help_text="Set on the one official run of the submission; cleared when superseded.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(official_for__isnull=True) | Q(official_for=F("submission")),
                name="score_official_for_own_submission",
            ),
        ]

    def __str__(self) -> str:
        return f"score {self.primary_score:.5f} for submission {self.submission_id}"

    @property
    def official(self) -> bool:
        return self.official_for_id is not None


class LeaderboardEntry(models.Model):
    """A user's best official score on one board, maintained in the scoring transaction."""

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="+")
    board = models.CharField(max_length=8, choices=Board.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    best_score = models.FloatField()
    sort_key = models.FloatField(help_text="best_score signed so that smaller ranks first.")
    best_at = models.DateTimeField(help_text="When the best submission was made.")
    best_submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    submission_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "leaderboard entries"
        constraints = [
            models.UniqueConstraint(fields=["competition", "board", "user"], name="leaderboard_one_row_per_user"),
        ]
        indexes = [
            models.Index(fields=["competition", "board", "sort_key", "best_at", "id"],
                         name="leaderboard_order"),
        ]

    def __str__(self) -> str:
        return f"{self.competition_id}/{self.board}: user {self.user_id} {self.best_score}"

