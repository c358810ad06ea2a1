"""Leaderboards: best official score per user, standard competition ranking (1,2,2,4) with
ties listed earliest-first, direction from `higher_is_better`, pagination that keeps ranks
across pages, a constant number of queries per page, and the score-over-time series."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from competitions import selectors, services
from competitions.models import Board, Competition, LeaderboardEntry, Score, Submission
from competitions.seeding import CIFAR, TITANIC
from competitions.tests.helpers import holdout_rows, upload
from medforge.accounts.factories import UserFactory
from testkit.api import assert_envelope, assert_problem, schema_validator

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
URL = "/api/v2/external/competitions/{slug}/leaderboard"


def scored(user, competition, score: float, minutes: int, private: float | None = None) -> Submission:
    """A submission scored `score`, made `minutes` after T0 (rows written as scoring would)."""
    sub = Submission.objects.create(competition=competition, user=user, file_path="x", sha256="0" * 64,
                                    status="scored", created_at=T0 + dt.timedelta(minutes=minutes))
    Score.objects.create(submission=sub, primary_score=score, private_score=private, metric_version="t",
                         manifest_sha256="0" * 64, official_for=sub)
    services.leaderboard_refresh_user(competition=competition, user_id=user.pk)
    return sub


@pytest.fixture
def cifar(seeded) -> Competition:
    return seeded[CIFAR]


@pytest.fixture
def cast(db):
    return {name: UserFactory(handle=name, password=None) for name in ("ada", "bob", "cyd", "dee", "eve")}


def ranking(competition, board="public", **kw):
    return [(r.rank, r.handle, r.score) for r in selectors.leaderboard(competition=competition, board=board, **kw)]


def test_best_score_per_user_ties_share_a_rank_and_list_earliest_first(cifar, cast):
    scored(cast["ada"], cifar, 0.90, 10)
    scored(cast["bob"], cifar, 0.80, 30)
    scored(cast["cyd"], cifar, 0.80, 20)  # same score as bob, earlier: listed first
    scored(cast["dee"], cifar, 0.70, 5)
    scored(cast["dee"], cifar, 0.75, 50)  # dee improves; her best counts
    scored(cast["dee"], cifar, 0.60, 60)
    assert ranking(cifar) == [(1, "ada", 0.90), (2, "cyd", 0.80), (2, "bob", 0.80), (4, "dee", 0.75)]
    [dee] = [r for r in selectors.leaderboard(competition=cifar) if r.handle == "dee"]
    assert dee.submission_count == 3 and dee.best_at == T0 + dt.timedelta(minutes=50)


def test_a_tie_within_one_user_keeps_the_earliest_submission(cifar, cast):
    first = scored(cast["ada"], cifar, 0.5, 10)
    scored(cast["ada"], cifar, 0.5, 20)
    [row] = selectors.leaderboard(competition=cifar)
    assert row.submission_id == first.pk and row.best_at == first.created_at


def test_lower_is_better_ranks_ascending_and_rebuild_matches_upkeep(cifar, cast):
    Competition.objects.filter(pk=cifar.pk).update(higher_is_better=False)
    cifar.refresh_from_db()
    scored(cast["ada"], cifar, 0.3, 1)
    scored(cast["bob"], cifar, 0.1, 2)
    scored(cast["bob"], cifar, 0.2, 3)
    scored(cast["cyd"], cifar, 0.1, 4)
    expected = [(1, "bob", 0.1), (1, "cyd", 0.1), (3, "ada", 0.3)]
    assert ranking(cifar) == expected
    maintained = sorted(LeaderboardEntry.objects.filter(competition=cifar).values_list(
        "board", "user_id", "best_score", "sort_key", "best_at", "best_submission_id", "submission_count"))
    assert services.leaderboard_rebuild(competition=cifar) == 6  # 3 users x 2 boards
    rebuilt = sorted(LeaderboardEntry.objects.filter(competition=cifar).values_list(
        "board", "user_id", "best_score", "sort_key", "best_at", "best_submission_id", "submission_count"))
    assert rebuilt == maintained
    assert ranking(cifar) == expected


def test_changing_the_direction_needs_a_rebuild_which_reorders(cifar, cast):
    scored(cast["ada"], cifar, 0.9, 1)
    scored(cast["bob"], cifar, 0.1, 2)
    assert [h for _, h, _ in ranking(cifar)] == ["ada", "bob"]
    Competition.objects.filter(pk=cifar.pk).update(higher_is_better=False)
    cifar.refresh_from_db()
    services.leaderboard_rebuild(competition=cifar)
    assert [h for _, h, _ in ranking(cifar)] == ["bob", "ada"]


def test_pages_keep_ranks_across_the_boundary(cifar, cast, client_for, owner):
    for minutes, (name, score) in enumerate([("ada", 0.9), ("bob", 0.8), ("cyd", 0.8), ("dee", 0.8), ("eve", 0.1)]):
        scored(cast[name], cifar, score, minutes)
    client = client_for(owner)
    url = URL.format(slug=CIFAR)
    resp = client.get(url, {"limit": 2})
    schema_validator().validate("GET", url, resp)
    page1 = assert_envelope(resp)
    assert [(r["rank"], r["handle"]) for r in page1] == [(1, "ada"), (2, "bob")]
    cursor = resp.json()["meta"]["next_cursor"]
    assert resp.json()["meta"]["has_more"] is True
    resp = client.get(url, {"limit": 2, "cursor": cursor})
    assert [(r["rank"], r["handle"]) for r in assert_envelope(resp)] == [(2, "cyd"), (2, "dee")]
    resp = client.get(url, {"limit": 2, "cursor": resp.json()["meta"]["next_cursor"]})
    assert [(r["rank"], r["handle"], r["submission_count"]) for r in assert_envelope(resp)] == [(5, "eve", 1)]
    assert resp.json()["meta"]["has_more"] is False
    assert_problem(client.get(url, {"cursor": "bogus"}), 400, "invalid_cursor")
    assert_problem(client.get(url, {"limit": 0}), 400, "invalid_limit")
    # a cursor of another list is refused, not misread
    other = client.get(URL.format(slug=TITANIC), {"limit": 1})
    assert_envelope(other)


def test_a_page_costs_the_same_number_of_queries_whatever_the_size(cifar):
    def queries_for_page(n_users: int) -> int:
        LeaderboardEntry.objects.all().delete()
        for i in range(n_users):
            scored(UserFactory(password=None), cifar, round(i / 7, 1), i)
        with CaptureQueriesContext(connection) as ctx:
            rows = selectors.leaderboard(competition=cifar, offset=3, limit=3)
        assert len(rows) == 3
        return len(ctx.captured_queries)

    assert queries_for_page(6) == queries_for_page(40) == 2


def test_leaderboard_needs_sign_in_and_the_right_surface(cifar, anon_client, client_for, owner):
    assert_problem(anon_client.get(URL.format(slug=CIFAR)), 401, "not_authenticated")
    resp = client_for(owner).get(f"/api/v2/internal/competitions/{CIFAR}/leaderboard")
    assert_problem(resp, 403, "internal_access_required")
    assert_problem(client_for(owner).get(URL.format(slug="nope")), 404, "competition_not_found")


def test_score_history_follows_the_leading_score(cifar, cast, client_for, owner):
    scored(cast["ada"], cifar, 0.5, 1)
    scored(cast["bob"], cifar, 0.4, 2)  # not a new lead
    scored(cast["cyd"], cifar, 0.7, 3)
    scored(cast["dee"], cifar, 0.9, 4)
    points = selectors.score_history(competition=cifar)
    assert [(p.handle, p.score) for p in points] == [("ada", 0.5), ("cyd", 0.7), ("dee", 0.9)]
    url = f"/api/v2/external/competitions/{CIFAR}/leaderboard/history"
    resp = client_for(owner).get(url)
    schema_validator().validate("GET", url, resp)
    assert [p["score"] for p in assert_envelope(resp)] == [0.5, 0.7, 0.9]


def test_end_to_end_through_intake_and_scoring(cifar, cast):
    truth = holdout_rows(CIFAR)

    def submit(user, correct: int):
        rows = ["id,label"] + [f"{pid},{lab if i < correct else (int(lab) + 1) % 100}"
                               for i, (pid, lab) in enumerate(truth)]
        sub = services.submission_create(user=user, competition=cifar, upload=upload(("\n".join(rows) + "\n").encode()))
        assert services.submission_score(submission_id=sub.pk) == "scored"

    submit(cast["ada"], 5000)
    submit(cast["bob"], 7000)
    submit(cast["ada"], 8000)
    submit(cast["cyd"], 7000)
    assert ranking(cifar) == [(1, "ada", 0.8), (2, "bob", 0.7), (2, "cyd", 0.7)]
    assert ranking(cifar, board=Board.PRIVATE) == ranking(cifar)  # no split: both boards agree
    assert LeaderboardEntry.objects.get(competition=cifar, board="public", user=cast["ada"]).submission_count == 2
    assert timezone.now() - selectors.leaderboard(competition=cifar)[0].best_at < dt.timedelta(minutes=1)
