"""Datasets and their files: listing and download for signed-in users, never escaping the
dataset's roots (no '..', absolute paths or symlinks pointing outside), the evaluation
manifest and hidden files never served, and each surface seeing only its own datasets."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from competitions.models import Competition, Dataset
from competitions.seeding import TITANIC
from testkit.api import assert_envelope, assert_problem, schema_validator

BASE = f"/api/v2/external/datasets/{TITANIC}"


def test_list_and_detail(seeded, owner, client_for):
    client = client_for(owner)
    resp = client.get("/api/v2/external/datasets")
    schema_validator().validate("GET", "/api/v2/external/datasets", resp)
    listed = assert_envelope(resp)
    assert {d["slug"] for d in listed} == set(seeded)
    resp = client.get(BASE)
    schema_validator().validate("GET", BASE, resp)
    detail = assert_envelope(resp)
    assert detail["competitions"] == [TITANIC] and detail["exposure"] == "external"
    # an INTERNAL competition wrongly put on this EXTERNAL dataset is not named on EXTERNAL
    Competition.objects.create(slug="secret-challenge", title="Secret", exposure="internal",
                               dataset=seeded[TITANIC].dataset, metric="accuracy")
    assert assert_envelope(client.get(BASE))["competitions"] == [TITANIC]
    assert [d["competitions"] for d in assert_envelope(client.get("/api/v2/external/datasets"))
            if d["slug"] == TITANIC] == [[TITANIC]]


def test_file_listing_shows_public_and_training_files_but_not_the_manifest(seeded, owner, client_for):
    resp = client_for(owner).get(f"{BASE}/files")
    schema_validator().validate("GET", f"{BASE}/files", resp)
    names = [f["name"] for f in assert_envelope(resp)]
    assert names == ["public/sample_submission.csv", "public/test_ids.csv", "training/test.csv", "training/train.csv"]
    first = assert_envelope(resp)[0]
    assert first["url"] == f"{BASE}/files/public/sample_submission.csv" and first["size"] > 0


def test_download_of_a_public_file(seeded, owner, client_for, data_roots):
    resp = client_for(owner).get(f"{BASE}/files/public/sample_submission.csv")
    assert resp.status_code == 200
    assert resp["Content-Disposition"].startswith("attachment")
    body = b"".join(resp.streaming_content)
    assert body == (Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / TITANIC / "sample_submission.csv").read_bytes()
    assert body.startswith(b"PassengerId,Survived\n892,0\n")


@pytest.mark.parametrize("name,status,code", [
    ("public/../../holdouts/titanic-survival/holdout_labels.csv", 400, "bad_request"),
    ("public/./test_ids.csv", 400, "bad_request"),
    ("public//test_ids.csv", 400, "bad_request"),
    ("public/manifest.json", 404, "file_not_found"),
    ("public/.hidden", 404, "file_not_found"),
    ("holdouts/titanic-survival/holdout_labels.csv", 404, "file_not_found"),
    ("public/nope.csv", 404, "file_not_found"),
    ("public", 404, "file_not_found"),
])
def test_names_that_escape_or_hide_are_refused(seeded, owner, client_for, data_roots, name, status, code):
    (Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / TITANIC / ".hidden").write_text("x")
    resp = client_for(owner).get(f"{BASE}/files/{name}")
    assert_problem(resp, status, code)


def test_absolute_and_encoded_traversal_are_refused(seeded, owner, client_for):
    client = client_for(owner)
    for path in (f"{BASE}/files//etc/passwd", f"{BASE}/files/public/%2e%2e/%2e%2e/holdouts/x",
                 f"{BASE}/files/public\\..\\x"):
        resp = client.get(path)
        assert resp.status_code in (400, 404), path
        assert resp["Content-Type"].startswith("application/problem+json")


def test_symlinks_pointing_outside_are_neither_listed_nor_served(seeded, owner, client_for, data_roots):
    public = Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / TITANIC
    holdout = Path(data_roots["TEST_HOLDOUTS_DIR"]) / TITANIC / "holdout_labels.csv"
    os.symlink(holdout, public / "answers.csv")
    os.symlink(Path(data_roots["TEST_HOLDOUTS_DIR"]), public / "everything")
    os.symlink(public / "manifest.json", public / "innocent.csv")  # inside, but the manifest
    os.symlink(public / "test_ids.csv", public / "ids-link.csv")  # inside and public: fine
    client = client_for(owner)
    names = [f["name"] for f in assert_envelope(client.get(f"{BASE}/files"))]
    assert "public/ids-link.csv" in names
    assert not any(n.startswith(("public/answers", "public/everything", "public/innocent")) for n in names)
    for name in ("answers.csv", "everything/holdout_labels.csv", "innocent.csv"):
        assert_problem(client.get(f"{BASE}/files/public/{name}"), 404, "file_not_found")
    assert client.get(f"{BASE}/files/public/ids-link.csv").status_code == 200


def test_surfaces_and_sign_in(seeded, owner, entitled, anon_client, client_for):
    Dataset.objects.create(slug="ward-notes", title="Ward notes", exposure="internal")
    assert_problem(anon_client.get(f"{BASE}/files/public/test_ids.csv"), 401, "not_authenticated")
    assert_problem(client_for(owner).get("/api/v2/internal/datasets"), 403, "internal_access_required")
    assert_problem(client_for(owner).get("/api/v2/external/datasets/ward-notes"), 404, "dataset_not_found")
    internal = assert_envelope(client_for(entitled).get("/api/v2/internal/datasets"))
    assert [d["slug"] for d in internal] == ["ward-notes"]
    assert_problem(client_for(entitled).get(f"/api/v2/internal/datasets/{TITANIC}/files"), 404, "dataset_not_found")


@pytest.mark.parametrize("target", ["holdouts", "parent"])
def test_a_dataset_folder_linked_out_of_its_root_is_neither_listed_nor_served(seeded, owner, client_for, data_roots,
                                                                              target):
    # The dataset's own folder is the link: its files resolve "inside" it, but it opens
    # another root (the hidden holdouts) or the whole public root.
    public = Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / TITANIC
    os.rename(public, public.with_name("moved"))
    os.symlink(Path(data_roots["TEST_HOLDOUTS_DIR"]) / TITANIC if target == "holdouts" else ".", public)
    client = client_for(owner)
    names = [f["name"] for f in assert_envelope(client.get(f"{BASE}/files"))]
    assert names == ["training/test.csv", "training/train.csv"]
    for name in ("holdout_labels.csv", "moved/test_ids.csv"):
        assert_problem(client.get(f"{BASE}/files/public/{name}"), 404, "file_not_found")
