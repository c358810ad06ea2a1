"""Helpers for the competitions tests: valid and broken submission files built from the
seeded (deterministic) demo holdouts."""
from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.dataroots import holdout_path
from competitions.seeding import TITANIC


def holdout_rows(slug: str) -> list[list[str]]:
    lines = holdout_path(slug).read_text().splitlines()
    return [line.split(",") for line in lines[1:]]


def titanic_csv(correct: int | None = None, *, flip: set[str] | None = None) -> bytes:
    """A valid Titanic submission: the true labels, with the given ids' labels flipped (or
    only the first ``correct`` ids right)."""
    rows = holdout_rows(TITANIC)
    out = ["PassengerId,Survived"]
    for i, (pid, label) in enumerate(rows):
        wrong = (flip is not None and pid in flip) or (correct is not None and i >= correct)
        out.append(f"{pid},{1 - int(label) if wrong else label}")
    return ("\n".join(out) + "\n").encode()


def upload(data: bytes, name: str = "submission.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def multipart_file(data: bytes, name: str = "submission.csv") -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f
