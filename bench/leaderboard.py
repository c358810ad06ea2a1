"""Leaderboard page cost with 1,000 vs 1,000,000 scored submissions (10,000 users), MariaDB.

Phase 1 loads 1,000 scored submissions, phase 2 grows the same competition to 1,000,000
(multi-row INSERTs), each followed by the set-based rebuild of the maintained leaderboard.
After each phase a leaderboard page (the selector the API and the web UI call) is timed,
median of many runs, and its queries counted. Prints the SPEC §9 ratio:

    TARGET leaderboard_page_ratio measured=<t(1M)/t(1k)> goal=<=1.5 PASS|FAIL

Run: .venv/bin/python bench/leaderboard.py   (about 2-3 minutes; own database medforge_bench_leaderboard)
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import setup, target_line

USERS = 10_000
SMALL = 1_000
LARGE = 1_000_000
CHUNK = 20_000
PAGE = 50
RUNS = 300


def main() -> int:
    setup(db_name="medforge_bench_leaderboard")  # its own database: other benches drop theirs
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from competitions import selectors, services
    from competitions.models import (
        Competition,
        Dataset,
        LeaderboardEntry,
        Score,
        Submission,
    )
    from medforge.accounts.models import User

    rng = random.Random(42)
    dataset = Dataset.objects.create(slug="bench", title="Bench")
    competition = Competition.objects.create(slug="bench", title="Bench", dataset=dataset, metric="accuracy",
                                             daily_cap=20)
    t0 = time.monotonic()
    User.objects.bulk_create(
        [User(email=f"u{i}@bench.test", handle=f"user-{i:05d}", password="!") for i in range(USERS)],
        batch_size=5_000,
    )
    user_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    print(f"users: {USERS} in {time.monotonic() - t0:.1f} s")

    sub_table, score_table = Submission._meta.db_table, Score._meta.db_table
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    sha = "0" * 64

    def load(first_id: int, count: int) -> None:
        """Multi-row INSERTs of `count` scored submissions (ids first_id..) and their official scores."""
        with connection.cursor() as cur:
            cur.execute("SET SESSION unique_checks=0, foreign_key_checks=0")
            for base in range(first_id, first_id + count, CHUNK):
                n = min(CHUNK, first_id + count - base)
                subs, scores = [], []
                for sid in range(base, base + n):
                    at = start + dt.timedelta(seconds=sid * 7)
                    subs.append((sid, competition.pk, rng.choice(user_ids), "bench.csv", sha, 100, 418, "",
                                 "scored", "", 1, 0, at, at, at))
                    value = round(rng.betavariate(5, 2), 4)  # rounded: plenty of ties
                    scores.append((sid, value, None, "{}", "accuracy/1", "bench", sha, sid, at, 1))
                cur.executemany(
                    f"INSERT INTO {sub_table} (id, competition_id, user_id, file_path, sha256, size_bytes, `rows`,"
                    " description, status, error, attempts, interrupted_runs, created_at, scoring_started_at,"
                    " scored_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", subs)
                cur.executemany(
                    f"INSERT INTO {score_table} (submission_id, primary_score, private_score, components,"
                    " metric_version, split_version, manifest_sha256, official_for_id, created_at, duration_ms)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", scores)
            cur.execute("SET SESSION unique_checks=1, foreign_key_checks=1")

    def measure(label: str) -> dict[str, float]:
        t = time.monotonic()
        rows = services.leaderboard_rebuild(competition=competition)
        rebuild = time.monotonic() - t
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE TABLE {LeaderboardEntry._meta.db_table}")
            cur.fetchall()
        entries = LeaderboardEntry.objects.filter(competition=competition, board="public").count()
        result = {"rebuild_s": rebuild, "rows": rows, "entries": entries}
        for name, offset in (("first", 0), ("deep", 500)):
            selectors.leaderboard(competition=competition, offset=offset, limit=PAGE)  # warm
            with CaptureQueriesContext(connection) as ctx:
                page = selectors.leaderboard(competition=competition, offset=offset, limit=PAGE)
            times = []
            for _ in range(RUNS):
                t = time.perf_counter()
                selectors.leaderboard(competition=competition, offset=offset, limit=PAGE)
                times.append(time.perf_counter() - t)
            result[f"{name}_ms"] = statistics.median(times) * 1000
            result[f"{name}_queries"] = len(ctx.captured_queries)
            result[f"{name}_rows"] = len(page)
        # the write path: refreshing one user's rows after a scoring
        user_id = LeaderboardEntry.objects.filter(competition=competition).values_list("user_id", flat=True).first()
        t = time.perf_counter()
        for _ in range(20):
            services.leaderboard_refresh_user(competition=competition, user_id=user_id)
        result["refresh_ms"] = (time.perf_counter() - t) / 20 * 1000
        print(f"{label}: {Submission.objects.filter(competition=competition).count():,} submissions, "
              f"{entries:,} users on the board, rebuild {rebuild:.1f} s; page 1: {result['first_ms']:.2f} ms "
              f"({result['first_queries']} queries), page at offset 500: {result['deep_ms']:.2f} ms "
              f"({result['deep_queries']} queries, {result['deep_rows']} rows); one user's refresh "
              f"{result['refresh_ms']:.2f} ms")
        return result

    t = time.monotonic()
    load(1, SMALL)
    print(f"loaded {SMALL:,} in {time.monotonic() - t:.1f} s")
    small = measure("1k")
    t = time.monotonic()
    load(SMALL + 1, LARGE - SMALL)
    print(f"loaded {LARGE - SMALL:,} more in {time.monotonic() - t:.1f} s")
    large = measure("1M")

    ratio = large["first_ms"] / small["first_ms"]
    print(f"deep page ratio (offset 500): {large['deep_ms'] / small['deep_ms']:.2f}; "
          f"queries per page: {small['first_queries']} -> {large['first_queries']} (first), "
          f"{small['deep_queries']} -> {large['deep_queries']} (deep)")
    print(target_line("leaderboard_page_ratio", ratio, "<=1.5", ratio <= 1.5, fmt=".2f"))
    queries_ok = small["first_queries"] == large["first_queries"] and small["deep_queries"] == large["deep_queries"]
    print(target_line("leaderboard_page_queries", large["first_queries"], "constant", queries_ok, fmt="d"))
    return 0 if ratio <= 1.5 and queries_ok else 1


if __name__ == "__main__":
    sys.exit(main())
