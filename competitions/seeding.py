"""Idempotent seeding of the three permanent EXTERNAL competitions and their demo data.

``seed_competitions()`` creates (never overwrites) the dataset and competition rows of
``titanic-survival`` (accuracy, 20/day), ``rsna-pneumonia-detection`` (RSNA mAP, 10/day) and
``cifar-100-classification`` (top-1 accuracy, 20/day), and writes small demo data generated
deterministically (fixed seeds: the same bytes on every run) in the real formats:

- TRAINING_DATA_ROOT/<slug>/       training files (what sessions may mount read-only at /data)
- PUBLIC_EVAL_DATA_ROOT/<slug>/    test_ids.csv, sample_submission.csv, manifest.json
- TEST_HOLDOUTS_DIR/<slug>/        holdout_labels.csv (hidden)

Installing the real holdouts: copy the real ``holdout_labels.csv`` to
``TEST_HOLDOUTS_DIR/<slug>/`` (Titanic: ``PassengerId,Survived`` for ids 892-1309; CIFAR-100:
``id,label`` for the 10,000 test images; RSNA: Kaggle's ``stage_2_train_labels.csv`` layout
``patientId,x,y,width,height,Target`` restricted to the 3,000 stage-2 test images), the public
files (test ids, sample submission) to ``PUBLIC_EVAL_DATA_ROOT/<slug>/``, the training data to
``TRAINING_DATA_ROOT/<slug>/``, and write ``PUBLIC_EVAL_DATA_ROOT/<slug>/manifest.json``
**without** ``"demo": true`` (set ``evaluation_split_version``, ``id_column``,
``target_columns``, ``expected_row_count`` and optionally ``public_ids``). Seeding never
touches the files of a competition whose manifest is not marked as demo, and the scoring cache
notices the new files by their modification time (then rescore from django-admin if needed).
"""
from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path

from django.db import transaction

from competitions.dataroots import (
    HOLDOUT_NAME,
    MANIFEST_NAME,
    dataset_public_dir,
    dataset_training_dir,
    holdout_path,
    manifest_path,
)
from competitions.models import Competition, Dataset, Exposure

TITANIC, RSNA, CIFAR = "titanic-survival", "rsna-pneumonia-detection", "cifar-100-classification"


def _csv(header: str, rows) -> bytes:
    return ("\n".join([header, *(",".join(str(v) for v in row) for row in rows)]) + "\n").encode()


def _write(path: Path, data: bytes, report: Callable[[str], None]) -> None:
    """Write only when the content differs, so re-seeding keeps mtimes (and caches) intact."""
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    report(f"  wrote {path}")


# --- demo data ------------------------------------------------------------------------------


def _titanic() -> dict[str, bytes]:
    rng = random.Random(1912)

    def passenger():
        pclass = rng.choice((1, 2, 3, 3))
        sex = rng.choice(("male", "male", "female"))
        age = rng.randint(1, 75)
        fare = round(rng.uniform(5, 90) * (4 - pclass), 2)
        p = 0.2 + (0.5 if sex == "female" else 0) + (0.15 if pclass == 1 else 0) + (0.1 if age < 12 else 0)
        return pclass, sex, age, fare, int(rng.random() < min(p, 0.95))

    train = [(pid, *passenger()) for pid in range(1, 892)]
    test = [(pid, *passenger()) for pid in range(892, 1310)]
    test_ids = [row[0] for row in test]
    public = sorted(test_ids, key=lambda i: (i * 2654435761) % 2**32)[: len(test_ids) // 2]
    manifest = {
        "demo": True, "metric": "accuracy", "evaluation_split_version": "titanic-demo-v1",
        "id_column": "PassengerId", "target_columns": ["Survived"], "expected_row_count": len(test_ids),
        "labels": ["0", "1"], "public_ids": [str(i) for i in sorted(public)],
    }
    return {
        "training/train.csv": _csv("PassengerId,Survived,Pclass,Sex,Age,Fare",
                                   [(r[0], r[5], r[1], r[2], r[3], r[4]) for r in train]),
        "training/test.csv": _csv("PassengerId,Pclass,Sex,Age,Fare", [r[:5] for r in test]),
        "public/test_ids.csv": _csv("PassengerId", [(i,) for i in test_ids]),
        "public/sample_submission.csv": _csv("PassengerId,Survived", [(i, 0) for i in test_ids]),
        "holdout": _csv("PassengerId,Survived", [(r[0], r[5]) for r in test]),
        "manifest": manifest,
    }


def _cifar() -> dict[str, bytes]:
    rng = random.Random(100)
    test_ids = [str(i) for i in range(10_000)]
    manifest = {
        "demo": True, "metric": "top1_accuracy", "evaluation_split_version": "cifar100-demo-v1",
        "id_column": "id", "target_columns": ["label"], "expected_row_count": len(test_ids), "num_classes": 100,
    }
    return {
        "training/train_labels.csv": _csv("id,label", [(f"train-{i}", rng.randrange(100)) for i in range(5_000)]),
        "training/README.md": (b"Demo data: labels only. Install the CIFAR-100 images "
                               b"(train/<id>.png) here for real training.\n"),
        "public/test_ids.csv": _csv("id", [(i,) for i in test_ids]),
        "public/sample_submission.csv": _csv("id,label", [(i, 0) for i in test_ids]),
        "holdout": _csv("id,label", [(i, rng.randrange(100)) for i in test_ids]),
        "manifest": manifest,
    }


def _rsna_boxes(rng: random.Random) -> list[tuple[int, int, int, int]]:
    boxes = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        w, h = rng.randint(60, 300), rng.randint(80, 400)
        boxes.append((rng.randint(0, 1024 - w), rng.randint(0, 1024 - h), w, h))
    return boxes


def _rsna() -> dict[str, bytes]:
    rng = random.Random(2018)

    def rows_for(ids):
        rows = []
        for pid in ids:
            if rng.random() < 0.3:
                rows.extend((pid, *box, 1) for box in _rsna_boxes(rng))
            else:
                rows.append((pid, "", "", "", "", 0))
        return rows

    def new_id():
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    train_ids = [new_id() for _ in range(2_000)]
    test_ids = [new_id() for _ in range(3_000)]
    manifest = {
        "demo": True, "metric": "rsna_map", "evaluation_split_version": "rsna-demo-v1",
        "id_column": "patientId", "target_columns": ["PredictionString"], "expected_row_count": len(test_ids),
    }
    header = "patientId,x,y,width,height,Target"
    return {
        "training/stage_2_train_labels.csv": _csv(header, rows_for(train_ids)),
        "training/README.md": b"Demo data: labels only. Install the DICOM images (<patientId>.dcm) here.\n",
        "public/test_ids.csv": _csv("patientId", [(i,) for i in test_ids]),
        "public/sample_submission.csv": _csv("patientId,PredictionString", [(i, "") for i in test_ids]),
        "holdout": _csv(header, rows_for(test_ids)),
        "manifest": manifest,
    }


SEEDS = [
    {
        "slug": TITANIC, "metric": "accuracy", "daily_cap": 20, "higher_is_better": True,
        "title": "Titanic: survival prediction", "data": _titanic,
        "dataset_title": "Titanic passengers",
        "description": (
            "Predict which passengers survived the sinking of the RMS Titanic.\n\n"
            "Submit `PassengerId,Survived` for the 418 test passengers (ids 892-1309), "
            "`Survived` being `0` or `1`. Score: **accuracy**. The public leaderboard scores "
            "half of the test passengers; the private one, revealed later, the other half."
        ),
    },
    {
        "slug": RSNA, "metric": "rsna_map", "daily_cap": 10, "higher_is_better": True,
        "title": "RSNA pneumonia detection", "data": _rsna,
        "dataset_title": "RSNA pneumonia chest radiographs",
        "description": (
            "Locate lung opacities on chest radiographs.\n\n"
            "Submit `patientId,PredictionString` with space-separated groups "
            "`confidence x y width height` (empty for no opacity), or one row per box "
            "`patientId,confidence,x,y,width,height`. Score: mean average precision over IoU "
            "thresholds 0.40-0.75 (the Kaggle definition)."
        ),
    },
    {
        "slug": CIFAR, "metric": "top1_accuracy", "daily_cap": 20, "higher_is_better": True,
        "title": "CIFAR-100 classification", "data": _cifar,
        "dataset_title": "CIFAR-100",
        "description": (
            "Classify 32x32 images into 100 classes.\n\n"
            "Submit `id,label` for the 10,000 test images, `label` an integer 0-99. "
            "Score: **top-1 accuracy**."
        ),
    },
]

RULES = (
    "- One account per person; no sharing of predictions between accounts.\n"
    "- The daily cap counts valid submissions per UTC day; invalid files are not counted.\n"
    "- Your best scored submission counts on the leaderboard."
)


def _is_demo(slug: str) -> bool:
    path = manifest_path(slug)
    if not path.exists():
        return True
    try:
        return json.loads(path.read_text()).get("demo") is True
    except (ValueError, OSError, AttributeError):
        return False  # someone else's file: leave it alone


def seed_competitions(*, report: Callable[[str], None] = lambda _: None, write_data: bool = True) -> list[str]:
    """Create the permanent competitions (rows created once, never overwritten) and their
    demo data (files rewritten only when they are missing or differ, and only for
    competitions whose manifest is absent or marked ``"demo": true``). Returns the slugs."""
    slugs = []
    for spec in SEEDS:
        slug = spec["slug"]
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                slug=slug, defaults={"title": spec["dataset_title"], "exposure": Exposure.EXTERNAL,
                                     "description": f"Data of the {spec['title']} competition."},
            )
            _, created_c = Competition.objects.get_or_create(
                slug=slug,
                defaults={"title": spec["title"], "description": spec["description"], "rules": RULES,
                          "exposure": Exposure.EXTERNAL, "dataset": dataset, "metric": spec["metric"],
                          "higher_is_better": spec["higher_is_better"], "daily_cap": spec["daily_cap"]},
            )
        report(f"{slug}: {'created' if created_c else 'exists'}")
        slugs.append(slug)
        if not write_data:
            continue
        if not _is_demo(slug):
            report(f"  {MANIFEST_NAME} is not a demo manifest: real data installed, files left alone")
            continue
        files = spec["data"]()
        for key, data in files.items():
            if key == "manifest":
                continue
            if key == "holdout":
                path = holdout_path(slug)
            else:
                area, name = key.split("/", 1)
                base = dataset_public_dir(slug) if area == "public" else dataset_training_dir(slug)
                path = base / name
            _write(path, data, report)
        _write(manifest_path(slug), (json.dumps(files["manifest"], indent=1) + "\n").encode(), report)
    return slugs


__all__ = ["CIFAR", "HOLDOUT_NAME", "RSNA", "SEEDS", "TITANIC", "seed_competitions"]
