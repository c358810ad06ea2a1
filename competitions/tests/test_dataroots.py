"""The data roots and the evaluation data: overlapping roots refuse to start (system check),
invalid manifests stop intake and scoring with a clear reason, seeding is idempotent and never
overwrites real data, and markdown is rendered safely."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import checks

from competitions.dataroots import (
    EvaluationUnavailable,
    data_root_problems,
    load_evaluation,
    manifest_path,
)
from competitions.models import Competition, Dataset, render_markdown
from competitions.seeding import CIFAR, RSNA, TITANIC, seed_competitions
from competitions.tests.helpers import holdout_rows
from competitions.validation import validate_submission

ROOTS = ("TRAINING_DATA_ROOT", "PUBLIC_EVAL_DATA_ROOT", "TEST_HOLDOUTS_DIR", "SUBMISSIONS_DIR")


def roots_under(base: Path, **overrides) -> dict[str, str]:
    roots = {name: str(base / name.lower()) for name in ROOTS}
    roots.update(overrides)
    return roots


def test_disjoint_roots_pass(tmp_path):
    assert data_root_problems(roots_under(tmp_path)) == []


def test_equal_nested_and_symlinked_roots_are_refused(tmp_path):
    base = roots_under(tmp_path)
    equal = data_root_problems({**base, "TEST_HOLDOUTS_DIR": base["TRAINING_DATA_ROOT"]})
    assert any("same directory" in p for p in equal)
    nested = data_root_problems({**base, "TEST_HOLDOUTS_DIR": base["TRAINING_DATA_ROOT"] + "/holdouts"})
    assert nested == [(f"TEST_HOLDOUTS_DIR ({tmp_path}/training_data_root/holdouts) lies inside "
                       f"TRAINING_DATA_ROOT ({tmp_path}/training_data_root)")]
    parent = data_root_problems({**base, "TRAINING_DATA_ROOT": str(tmp_path)})
    assert len(parent) == 3  # every other root lies inside it
    # a symlink that makes the training root reach into the holdouts
    Path(base["TEST_HOLDOUTS_DIR"]).mkdir()
    os.symlink(base["TEST_HOLDOUTS_DIR"], tmp_path / "alias")
    linked = data_root_problems({**base, "TRAINING_DATA_ROOT": str(tmp_path / "alias" / "train")})
    assert any("inside TEST_HOLDOUTS_DIR" in p for p in linked)
    assert data_root_problems({**base, "SUBMISSIONS_DIR": ""}) == ["SUBMISSIONS_DIR is empty"]


def test_the_system_check_reports_overlap_as_an_error(settings, tmp_path):
    for name, value in roots_under(tmp_path).items():
        setattr(settings, name, value)
    assert [m for m in checks.run_checks(tags=["competitions"])] == []
    settings.PUBLIC_EVAL_DATA_ROOT = settings.TEST_HOLDOUTS_DIR + "/public"
    [error] = checks.run_checks(tags=["competitions"])
    assert error.level == checks.ERROR and error.id == "competitions.E001"


def test_manage_py_check_refuses_to_start_with_overlapping_roots(tmp_path):
    env = {**os.environ, "MEDFORGE_ENV": "test", "TRAINING_DATA_ROOT": str(tmp_path),
           "PUBLIC_EVAL_DATA_ROOT": str(tmp_path / "public"), "TEST_HOLDOUTS_DIR": str(tmp_path / "holdouts"),
           "SUBMISSIONS_DIR": str(tmp_path.parent / f"{tmp_path.name}-subs")}
    env.pop("PYTEST_VERSION", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "competitions.E001" in result.stderr and "TEST_HOLDOUTS_DIR" in result.stderr


# --- evaluation data ------------------------------------------------------------------------


def _rewrite_manifest(slug: str, **changes) -> None:
    path = manifest_path(slug)
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))
    stamp = time.time_ns() + 10**9  # a new version even within the filesystem's mtime granularity
    os.utime(path, ns=(stamp, stamp))


@pytest.mark.parametrize("changes,reason", [
    ({"evaluation_split_version": None}, "evaluation_split_version"),
    ({"target_columns": ["Survived", "Age"]}, "target_columns"),
    ({"public_ids": ["892", "99999"]}, "not holdout ids"),
    ({"public_ids": []}, "proper subset"),
    ({"expected_row_count": 417}, "expected_row_count"),
    ({"metric": "rsna_map"}, "metric"),
])
def test_invalid_manifests_are_reported_clearly(seeded, changes, reason):
    competition = seeded[TITANIC]
    load_evaluation(competition)  # fine, and cached
    _rewrite_manifest(TITANIC, **changes)
    with pytest.raises(EvaluationUnavailable) as exc:
        load_evaluation(competition)
    assert reason in exc.value.public_message and "manifest" in str(exc.value)


def test_non_json_manifest(seeded):
    path = manifest_path(TITANIC)
    path.write_text("{not json")
    with pytest.raises(EvaluationUnavailable, match="not valid JSON"):
        load_evaluation(seeded[TITANIC])


# --- seeding --------------------------------------------------------------------------------


def test_seed_creates_the_three_permanent_competitions_with_valid_demo_data(seeded, data_roots):
    rows = {c.slug: (c.metric, c.daily_cap, c.exposure, c.higher_is_better) for c in Competition.objects.all()}
    assert rows == {
        TITANIC: ("accuracy", 20, "external", True),
        RSNA: ("rsna_map", 10, "external", True),
        CIFAR: ("top1_accuracy", 20, "external", True),
    }
    titanic_ids = [int(pid) for pid, _ in holdout_rows(TITANIC)]
    assert titanic_ids == list(range(892, 1310))
    assert len(holdout_rows(CIFAR)) == 10_000
    rsna = holdout_rows(RSNA)
    targets = {}
    for row in rsna:
        targets.setdefault(row[0], set()).add(row[5])
    assert len(targets) == 3_000
    positives = sum(1 for t in targets.values() if t == {"1"})
    assert 0 < positives < 3_000 and all(len(t) == 1 for t in targets.values())
    # each sample submission is a valid submission for its competition
    for slug, competition in seeded.items():
        evaluation = load_evaluation(competition)
        sample = Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / slug / "sample_submission.csv"
        with sample.open("rb") as fh:
            assert validate_submission(fh, evaluation.manifest, evaluation.metric, evaluation.holdout_ids).ok, slug
    assert not list(Path(data_roots["SUBMISSIONS_DIR"]).iterdir())


def test_seed_is_idempotent_and_keeps_operator_edits_and_real_data(seeded, data_roots):
    Competition.objects.filter(slug=TITANIC).update(daily_cap=5)
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path(data_roots["TEST_HOLDOUTS_DIR"]).rglob("*.csv")}
    # an operator installs the real CIFAR holdout and manifest
    real = manifest_path(CIFAR)
    real.write_text(json.dumps({"evaluation_split_version": "real", "id_column": "id", "target_columns": ["label"]}))
    holdout = Path(data_roots["TEST_HOLDOUTS_DIR"]) / CIFAR / "holdout_labels.csv"
    holdout.write_text("id,label\n0,1\n")
    seed_competitions()
    assert Competition.objects.count() == 3 and Dataset.objects.count() == 3
    assert Competition.objects.get(slug=TITANIC).daily_cap == 5
    for path, (data, mtime) in files.items():
        if CIFAR not in str(path):
            assert (path.read_bytes(), path.stat().st_mtime_ns) == (data, mtime)
    assert holdout.read_text() == "id,label\n0,1\n"
    assert json.loads(real.read_text())["evaluation_split_version"] == "real"


def test_seed_command_reports_what_it_did(db, data_roots):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("seed", stdout=out)
    assert f"{TITANIC}: created" in out.getvalue() and "holdout_labels.csv" in out.getvalue()
    out = io.StringIO()
    call_command("seed", stdout=out)
    assert f"{TITANIC}: exists" in out.getvalue() and "wrote" not in out.getvalue()
    assert Competition.objects.count() == 3


def test_markdown_is_rendered_without_scripts():
    html = render_markdown("# Title\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1)) "
                           '<img src=x onerror="alert(1)">')
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
