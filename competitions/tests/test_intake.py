"""Submission intake through the API: a valid file is stored, hashed, queued and scored; every
bad file is answered 422 with line-numbered problems and leaves no trace (no row, no stored
file, nothing charged to the daily cap); size cap, daily cap, surfaces and permissions."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from competitions.models import Competition, Dataset, Submission
from competitions.seeding import CIFAR, RSNA, TITANIC
from competitions.tests.helpers import holdout_rows, multipart_file, titanic_csv
from testkit.api import assert_envelope, assert_problem, schema_validator

URL = "/api/v2/external/competitions/{slug}/submissions"


def post(client, data: bytes, slug: str = TITANIC, exposure: str = "external", name: str = "submission.csv", **extra):
    url = f"/api/v2/{exposure}/competitions/{slug}/submissions"
    return client.post(url, {"file": multipart_file(data, name), **extra}, format="multipart")


def stored_files(data_roots) -> list[Path]:
    return [p for p in Path(data_roots["SUBMISSIONS_DIR"]).rglob("*") if p.is_file()]


def remaining(client, slug: str = TITANIC) -> int:
    resp = client.get(f"/api/v2/external/competitions/{slug}")
    return assert_envelope(resp)["remaining_today"]


def cifar_csv(labels: dict[int, str] | None = None, drop: int | None = None) -> bytes:
    labels = labels or {}
    rows = ["id,label"] + [f"{i},{labels.get(i, '0')}" for i in range(10_000) if i != drop]
    return ("\n".join(rows) + "\n").encode()


def rsna_csv(strings: dict[int, str]) -> bytes:
    ids = sorted({r[0] for r in holdout_rows(RSNA)})
    rows = ["patientId,PredictionString"] + [f"{pid},{strings.get(i, '')}" for i, pid in enumerate(ids)]
    return ("\n".join(rows) + "\n").encode()


def test_valid_upload_is_stored_hashed_queued_and_then_scored(seeded, data_roots, owner, client_for,
                                                              django_capture_on_commit_callbacks):
    client = client_for(owner)
    data = titanic_csv()
    with django_capture_on_commit_callbacks(execute=True):
        resp = post(client, data, description="all right")
    schema_validator().validate("POST", URL.format(slug=TITANIC), resp)
    body = assert_envelope(resp, 201)
    assert body["status"] == "queued"
    assert body["daily_cap"] == 20 and body["remaining_today"] == 19
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["rows"] == 418 and body["description"] == "all right"
    stored = Path(data_roots["SUBMISSIONS_DIR"]) / TITANIC / str(owner.pk) / f"{body['id']}.csv"
    assert stored.read_bytes() == data
    assert stored_files(data_roots) == [stored]  # no spool file left behind
    assert Submission.objects.get().file_path == f"{TITANIC}/{owner.pk}/{body['id']}.csv"

    # The commit queued the task; in eager mode it has scored the submission already.
    resp = client.get(f"/api/v2/external/competitions/{TITANIC}/submissions/me")
    schema_validator().validate("GET", f"/api/v2/external/competitions/{TITANIC}/submissions/me", resp)
    [mine] = assert_envelope(resp)
    assert mine["status"] == "scored" and mine["score"] == 1.0
    assert mine["private_score"] is None  # private board not revealed to a user
    assert remaining(client) == 19


BAD_FILES = [
    # (case, competition, bytes (or a function making them, once the data is seeded),
    #  line of the first problem, its code, a fragment of its message)
    ("empty file", TITANIC, b"", 1, "empty_file", "empty"),
    ("no header", TITANIC, b"892,0\n893,1\n", 1, "missing_header", "header"),
    ("wrong columns", TITANIC, b"PassengerId,Survivd\n892,0\n", 1, "header", "Survived"),
    ("extra column", TITANIC, b"PassengerId,Survived,Name\n892,0,x\n", 1, "header", "Name"),
    ("non-numeric class", CIFAR, lambda: cifar_csv({3: "cat"}), 5, "invalid_value", "'cat'"),
    ("out-of-range class", CIFAR, lambda: cifar_csv({7: "100"}), 9, "out_of_range", "0..99"),
    ("NaN class", CIFAR, lambda: cifar_csv({0: "nan"}), 2, "invalid_value", "nan"),
    ("infinite confidence", RSNA, lambda: rsna_csv({4: "inf 10 10 50 50"}), 6, "invalid_value", "finite"),
    ("RSNA group cut short", RSNA, lambda: rsna_csv({1: "0.9 10 10 50 50 0.5 1 2 3"}), 3, "invalid_value", "cut short"),
    ("negative box width", RSNA, lambda: rsna_csv({2: "0.9 10 10 -5 20"}), 4, "out_of_range", "width"),
    ("confidence above 1", RSNA, lambda: rsna_csv({0: "1.5 10 10 5 20"}), 2, "out_of_range", "confidence"),
    ("non-UTF-8 bytes", TITANIC, b"PassengerId,Survived\n892,\xff\n", 2, "encoding", "UTF-8"),
    ("PNG named .csv", TITANIC, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 1, "encoding", "UTF-8"),
    ("xlsx named .csv", TITANIC, b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", 1, "encoding", "binary"),
]


@pytest.mark.parametrize("case,slug,data,line,code,fragment", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_file_is_refused_with_line_and_reason_and_not_charged(
    seeded, data_roots, owner, client_for, case, slug, data, line, code, fragment
):
    client = client_for(owner)
    resp = post(client, data() if callable(data) else data, slug=slug)
    schema_validator().validate("POST", URL.format(slug=slug), resp)
    body = assert_problem(resp, 422, "submission_invalid")
    first = body["errors"][0]
    assert (first["line"], first["code"]) == (line, code), body["errors"]
    assert fragment.lower() in first["message"].lower(), first
    assert f"line {line}" in body["detail"]
    assert Submission.objects.count() == 0
    assert stored_files(data_roots) == []
    assert remaining(client, slug) == seeded[slug].daily_cap


def test_id_set_problems_name_lines(seeded, owner, client_for):
    rows = titanic_csv().decode().splitlines()
    client = client_for(owner)
    # a duplicate: line 3 repeats line 2's id
    dup = "\n".join([rows[0], rows[1], rows[1], *rows[3:]]) + "\n"
    errors = assert_problem(post(client, dup.encode()), 422, "submission_invalid")["errors"]
    assert errors[0]["code"] == "duplicate_id" and errors[0]["line"] == 3 and "line 2" in errors[0]["message"]
    # an id outside the test set, and one missing
    extra = "\n".join([*rows[:-1], "5000,1"]) + "\n"
    errors = assert_problem(post(client, extra.encode()), 422, "submission_invalid")["errors"]
    codes = {e["code"]: e for e in errors}
    assert codes["unknown_id"]["line"] == 419 and "5000" in codes["unknown_id"]["message"]
    assert "missing_ids" in codes and rows[-1].split(",")[0] in codes["missing_ids"]["message"]
    assert Submission.objects.count() == 0


def test_both_rsna_formats_are_accepted(seeded, owner, client_for):
    client = client_for(owner)
    ids = sorted({r[0] for r in holdout_rows(RSNA)})
    per_box = ["patientId,confidence,x,y,width,height", f"{ids[0]},0.9,10,10,100,100", f"{ids[0]},0.5,300,300,50,80"]
    per_box += [f"{pid},,,,," for pid in ids[1:]]
    for data in (rsna_csv({0: "0.9 10 10 100 100 0.5 300 300 50 80"}), ("\n".join(per_box) + "\n").encode()):
        assert_envelope(post(client, data, slug=RSNA), 201)


def test_file_over_the_size_cap_is_refused_and_not_stored(seeded, data_roots, owner, client_for, settings):
    settings.SUBMISSION_UPLOAD_MAX_BYTES = 2000  # the valid Titanic file has ~3 kB
    client = client_for(owner)
    resp = post(client, titanic_csv())
    schema_validator().validate("POST", URL.format(slug=TITANIC), resp)
    body = assert_problem(resp, 413, "submission_too_large")
    assert body["max_bytes"] == 2000
    # far over the cap: refused on Content-Length, before the body is read
    body = assert_problem(post(client, b"x" * 200_000), 413, "submission_too_large")
    assert Submission.objects.count() == 0 and stored_files(data_roots) == []
    assert remaining(client) == 20


def test_daily_cap_answers_429_with_retry_after_and_invalid_files_are_not_charged(seeded, owner, client_for):
    Competition.objects.filter(slug=TITANIC).update(daily_cap=2)
    client = client_for(owner)
    assert_problem(post(client, b"PassengerId,Survived\n"), 422, "submission_invalid")
    assert assert_envelope(post(client, titanic_csv()), 201)["remaining_today"] == 1
    assert_problem(post(client, b"garbage"), 422, "submission_invalid")
    assert assert_envelope(post(client, titanic_csv(400)), 201)["remaining_today"] == 0
    resp = post(client, titanic_csv(300))
    schema_validator().validate("POST", URL.format(slug=TITANIC), resp)
    body = assert_problem(resp, 429, "submission_cap_reached")
    assert body["remaining_today"] == 0 and body["daily_cap"] == 2
    assert 0 < int(resp["Retry-After"]) <= 86_400
    assert Submission.objects.filter(user=owner).count() == 2
    # caps are per competition and per user
    assert_envelope(post(client, cifar_csv(), slug=CIFAR), 201)


def test_unknown_competition_and_other_surfaces(seeded, owner, entitled, client_for, data_roots):
    client = client_for(owner)
    assert_problem(post(client, titanic_csv(), slug="no-such-thing"), 404, "competition_not_found")
    # the INTERNAL surface needs the entitlement
    assert_problem(post(client, titanic_csv(), exposure="internal"), 403, "internal_access_required")
    # an EXTERNAL competition does not exist on the INTERNAL surface, nor the reverse
    assert_problem(post(client_for(entitled), titanic_csv(), exposure="internal"), 404, "competition_not_found")
    ds = Dataset.objects.create(slug="secret-data", title="Secret", exposure="internal")
    Competition.objects.create(slug="secret", title="Secret", exposure="internal", dataset=ds, metric="accuracy")
    assert_problem(post(client_for(entitled), titanic_csv(), slug="secret"), 404, "competition_not_found")
    assert Submission.objects.count() == 0


def test_form_problems(seeded, owner, client_for, anon_client):
    client = client_for(owner)
    url = URL.format(slug=TITANIC)
    body = assert_problem(client.post(url, {"description": "no file"}, format="multipart"), 422, "validation_error")
    assert body["errors"][0]["field"] == "file"
    body = assert_problem(post(client, titanic_csv(), colour="blue"), 422, "validation_error")
    assert body["errors"][0]["field"] == "colour"
    body = assert_problem(post(client, titanic_csv(), description="x" * 501), 422, "validation_error")
    assert body["errors"][0]["field"] == "description"
    assert_problem(post(anon_client, titanic_csv()), 401, "not_authenticated")
    assert Submission.objects.count() == 0


def test_broken_manifest_refuses_uploads_with_503(seeded, owner, client_for, data_roots):
    manifest = Path(data_roots["PUBLIC_EVAL_DATA_ROOT"]) / TITANIC / "manifest.json"
    manifest.write_text('{"id_column": "PassengerId"}')
    body = assert_problem(post(client_for(owner), titanic_csv()), 503, "scoring_unavailable")
    assert "manifest" in body["detail"]
    assert Submission.objects.count() == 0

