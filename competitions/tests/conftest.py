"""Fixtures for the competitions tests: private data roots per test, seeded competitions,
uploads, and Celery in eager mode (a scoring task runs inline when its transaction commits,
and nothing is ever left in the shared Redis broker)."""
from __future__ import annotations

from pathlib import Path

import pytest

from competitions.dataroots import clear_cache
from competitions.models import Competition
from competitions.seeding import CIFAR, RSNA, TITANIC, seed_competitions
from medforge.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_celery():
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def data_roots(settings, tmp_path) -> dict[str, Path]:
    roots = {
        "TRAINING_DATA_ROOT": tmp_path / "training",
        "PUBLIC_EVAL_DATA_ROOT": tmp_path / "public-eval",
        "TEST_HOLDOUTS_DIR": tmp_path / "holdouts",
        "SUBMISSIONS_DIR": tmp_path / "submissions",
    }
    for name, path in roots.items():
        path.mkdir()
        setattr(settings, name, str(path))
    clear_cache()
    yield roots
    clear_cache()


@pytest.fixture
def seeded(db, data_roots) -> dict[str, Competition]:
    seed_competitions()
    return {c.slug: c for c in Competition.objects.filter(slug__in=[TITANIC, RSNA, CIFAR])}


@pytest.fixture
def titanic(seeded) -> Competition:
    return seeded[TITANIC]
