"""Fixtures for the web UI tests: a Titanic-like competition on private data roots (real
files, real validation and scoring), GPUs and a pack as database rows, and a Django test
client that browses the EXTERNAL or INTERNAL surface by host name."""
from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client

from competitions.models import Competition, Dataset

HOLDOUT = {"1": "0", "2": "1", "3": "1", "4": "0", "5": "1"}
EXTERNAL_HOST = settings.BASE_DOMAIN
INTERNAL_HOST = f"internal.{settings.BASE_DOMAIN}"


@pytest.fixture
def data_roots(settings, tmp_path):
    """Disjoint data roots in a temporary folder, so tests never touch var/."""
    for name in ("TRAINING_DATA_ROOT", "PUBLIC_EVAL_DATA_ROOT", "TEST_HOLDOUTS_DIR",
                 "SUBMISSIONS_DIR"):
        path = tmp_path / name.lower()
        path.mkdir()
        setattr(settings, name, str(path))
    return tmp_path


def make_competition(root_settings, *, slug="titanic-survival", exposure="external",
                     title="Titanic survival") -> Competition:
    """A competition scored by accuracy against HOLDOUT, with public test ids and a sample."""
    from pathlib import Path

    dataset = Dataset.objects.create(
        slug=f"{slug}-data", title=f"{title} data", exposure=exposure, license="CC0",
        description="Passenger records of the **Titanic**.")
    competition = Competition.objects.create(
        slug=slug, title=title, exposure=exposure, dataset=dataset, metric="accuracy",
        higher_is_better=True, daily_cap=3,
        description="# Who survived?\n\nPredict `Survived` (0 or 1) for each `PassengerId`.\n\n"
                    "<script>alert('x')</script>",
        rules="One row per passenger.")
    public = Path(root_settings.PUBLIC_EVAL_DATA_ROOT)
    (public / slug).mkdir(parents=True, exist_ok=True)
    (public / slug / "manifest.json").write_text(json.dumps({
        "evaluation_split_version": "v1", "id_column": "PassengerId",
        "target_columns": ["Survived"], "expected_row_count": len(HOLDOUT),
        "labels": ["0", "1"]}))
    (public / dataset.slug).mkdir(parents=True, exist_ok=True)
    (public / dataset.slug / "test_ids.csv").write_text(
        "PassengerId\n" + "".join(f"{i}\n" for i in HOLDOUT))
    (public / dataset.slug / "sample_submission.csv").write_text(
        "PassengerId,Survived\n" + "".join(f"{i},0\n" for i in HOLDOUT))
    holdouts = Path(root_settings.TEST_HOLDOUTS_DIR) / slug
    holdouts.mkdir(parents=True, exist_ok=True)
    (holdouts / "holdout_labels.csv").write_text(
        "PassengerId,Survived\n" + "".join(f"{i},{v}\n" for i, v in HOLDOUT.items()))
    return competition


@pytest.fixture
def titanic(data_roots, settings, db):
    return make_competition(settings)


def csv_bytes(rows: dict[str, str]) -> bytes:
    return ("PassengerId,Survived\n" + "".join(f"{k},{v}\n" for k, v in rows.items())).encode()


@pytest.fixture
def browse():
    """browse(user, host=EXTERNAL_HOST) → a Django test client signed in (or anonymous) that
    sends the platform Origin on writes, as a browser on that host would."""
    def make(user=None, host: str = EXTERNAL_HOST) -> Client:
        client = Client(HTTP_HOST=host, HTTP_ORIGIN=f"http://{host}")
        if user is not None:
            client.force_login(user)
        return client
    return make
