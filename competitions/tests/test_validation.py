"""Upload-time validation of whole submission files and loading of holdout files: every bad
input a user can send gets a problem with the line number and a reason they can act on."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from competitions.metrics import METRICS, ManifestError
from competitions.validation import (
    HoldoutError,
    Problem,
    ValidationResult,
    holdout_id_set,
    load_holdout,
    validate_submission,
)

TITANIC = {
    "evaluation_split_version": "v1",
    "id_column": "PassengerId",
    "target_columns": ["Survived"],
    "expected_row_count": 3,
}
TITANIC_IDS = {"892", "893", "894"}
CIFAR = {"id_column": "id", "target_columns": ["label"], "expected_row_count": 3}
CIFAR_IDS = {"0", "1", "2"}
RSNA = {"id_column": "patientId", "target_columns": ["PredictionString"], "expected_row_count": 3}
RSNA_IDS = {"p1", "p2", "p3"}


def check(data: bytes | str, manifest=TITANIC, metric="accuracy", ids=TITANIC_IDS, **kw) -> ValidationResult:
    if isinstance(data, str):
        data = data.encode()
    return validate_submission(io.BytesIO(data), manifest, metric, ids, **kw)


def only_problem(result: ValidationResult) -> Problem:
    assert not result.ok
    assert result.predictions is None
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# --- good files ---------------------------------------------------------------------------------


def test_valid_titanic_file_returns_scorable_predictions(tmp_path):
    result = check("PassengerId,Survived\n892,0\n893,1\n894,1\n")
    assert result.ok and result.problems == [] and result.rows == 3
    holdout = tmp_path / "holdout_labels.csv"
    holdout.write_text("PassengerId,Survived,Name\n892,0,A\n893,1,B\n894,0,C\n")
    truth = load_holdout(holdout, TITANIC, "accuracy")
    assert holdout_id_set(truth) == TITANIC_IDS
    assert METRICS["accuracy"].score(truth, result.predictions).primary == pytest.approx(2 / 3)


def test_whitespace_bom_crlf_quotes_and_blank_lines_are_accepted():
    data = '\ufeffPassengerId , Survived\r\n 892 ,0\r\n"893", 1 \r\n\r\n894,"1"\r\n\r\n'
    result = check(data)
    assert result.ok, result.problems
    assert result.rows == 3
    assert sorted(result.predictions.ids.tolist()) == ["892", "893", "894"]


def test_valid_cifar_file_scores():
    result = check("id,label\n0,5\n1,99\n2,7.0\n", CIFAR, "top1_accuracy", CIFAR_IDS)
    assert result.ok, result.problems
    truth = METRICS["top1_accuracy"].build_truth(["0", "1", "2"], [5, 99, 8])
    assert METRICS["top1_accuracy"].score(truth, result.predictions).primary == pytest.approx(2 / 3)


def test_rsna_prediction_string_format():
    data = "patientId,PredictionString\np1,0.9 10 10 50 50 0.3 100 100 20 20\np2,\np3,   \n"
    result = check(data, RSNA, "rsna_map", RSNA_IDS)
    assert result.ok, result.problems
    assert result.format == "prediction_string"


def test_rsna_one_row_per_box_format_scores_like_the_prediction_string(tmp_path):
    rows = "patientId,confidence,x,y,width,height\np1,0.3,100,100,20,20\np2,,,,,\np1,0.9,10,10,50,50\np3,,,,,\n"
    by_rows = check(rows, RSNA, "rsna_map", RSNA_IDS)
    assert by_rows.ok, by_rows.problems
    assert by_rows.format == "box_rows" and by_rows.rows == 4
    grouped = check(
        "patientId,PredictionString\np1,0.9 10 10 50 50 0.3 100 100 20 20\np2,\np3,\n", RSNA, "rsna_map", RSNA_IDS
    )
    holdout = tmp_path / "holdout_labels.csv"
    holdout.write_text(
        "patientId,x,y,width,height,Target\np1,10,10,50,50,1\np1,200,200,30,30,1\np2,,,,,0\np3,,,,,0\n"
    )
    truth = load_holdout(holdout, RSNA, "rsna_map")
    metric = METRICS["rsna_map"]
    # p1: one hit, one FP, one FN -> 1/3; p2, p3 skipped.
    assert metric.score(truth, by_rows.predictions).primary == pytest.approx(1 / 3)
    assert metric.score(truth, grouped.predictions).primary == pytest.approx(1 / 3)


def test_reads_the_upload_as_a_stream_of_lines():
    class LinesOnly:
        """A file object that can only be iterated, like a Django upload read in chunks."""

        def __iter__(self) -> Iterator[bytes]:
            yield from [b"PassengerId,Survived\n", b"892,0\n", b"893,1\n", b"894,1\n"]

        def read(self, *args):  # pragma: no cover - must not be called
            raise AssertionError("the whole file was read into memory")

    assert validate_submission(LinesOnly(), TITANIC, "accuracy", TITANIC_IDS).ok


# --- not a text CSV -----------------------------------------------------------------------------


def test_empty_file():
    problem = only_problem(check(b""))
    assert (problem.line, problem.code) == (1, "empty_file")
    assert "empty" in problem.message and "PassengerId,Survived" in problem.message


def test_file_of_blank_lines_is_empty():
    assert only_problem(check(b"\n\n  \n")).code == "empty_file"


def test_non_utf8_bytes_give_one_problem_with_the_line():
    data = "PassengerId,Survived\n892,0\n893,caf\xe9\n894,1\n".encode("latin-1")
    problem = only_problem(check(data))
    assert (problem.line, problem.code) == (3, "encoding")
    assert "not valid UTF-8" in problem.message and "0xe9" in problem.message


def test_binary_file_named_csv_gives_one_problem():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 20
    problem = only_problem(check(png))
    assert (problem.line, problem.code) == (1, "encoding")
    assert "UTF-8" in problem.message and "binary" in problem.message


def test_nul_bytes_are_refused_as_binary():
    problem = only_problem(check(b"PassengerId,Survived\n892,0\x00\x00\n"))
    assert (problem.line, problem.code) == (2, "encoding")
    assert "binary" in problem.message


# --- header -------------------------------------------------------------------------------------


def test_missing_header():
    problem = only_problem(check("892,0\n893,1\n894,1\n"))
    assert (problem.line, problem.code) == (1, "missing_header")
    assert "`PassengerId,Survived`" in problem.message


def test_missing_column():
    problem = only_problem(check("PassengerId\n892\n893\n894\n"))
    assert (problem.line, problem.code, problem.column) == (1, "header", "Survived")
    assert "missing column(s): Survived" in problem.message


def test_extra_column():
    problem = only_problem(check("PassengerId,Survived,Name\n892,0,A\n893,1,B\n894,1,C\n"))
    assert (problem.line, problem.code, problem.column) == (1, "header", "Name")
    assert "unexpected column(s): 'Name'" in problem.message


def test_wrong_column_name_mentions_case():
    problem = only_problem(check("PassengerId,survived\n892,0\n"))
    assert problem.line == 1
    assert "missing column(s): Survived" in problem.message
    assert "case-sensitive" in problem.message


def test_columns_in_the_wrong_order():
    problem = only_problem(check("Survived,PassengerId\n0,892\n"))
    assert problem.line == 1 and "wrong order" in problem.message


def test_rsna_wrong_header_lists_both_accepted_headers():
    problem = only_problem(check("patientId,confidence,x,y,w,h\n", RSNA, "rsna_map", RSNA_IDS))
    assert problem.line == 1
    assert "`patientId,PredictionString`" in problem.message
    assert "`patientId,confidence,x,y,width,height`" in problem.message
    assert "missing column(s): width, height" in problem.message


# --- rows ---------------------------------------------------------------------------------------


def test_wrong_number_of_fields_on_a_row():
    problem = only_problem(check("PassengerId,Survived\n892,0\n893,1,extra\n894,1\n"))
    assert (problem.line, problem.code) == (3, "field_count")
    assert "expected 2 fields" in problem.message and "found 3" in problem.message


def test_empty_id():
    manifest = {**TITANIC, "expected_row_count": None}
    problem = only_problem(check("PassengerId,Survived\n892,0\n ,1\n893,1\n894,1\n", manifest))
    assert (problem.line, problem.code, problem.column) == (3, "empty_id", "PassengerId")


def test_empty_label():
    problem = only_problem(check("PassengerId,Survived\n892,0\n893,\n894,1\n"))
    assert (problem.line, problem.column) == (3, "Survived")
    assert "empty" in problem.message


def test_accuracy_labels_restricted_by_the_manifest():
    manifest = {**TITANIC, "labels": ["0", "1"]}
    problem = only_problem(check("PassengerId,Survived\n892,0\n893,yes\n894,1\n", manifest))
    assert (problem.line, problem.code) == (3, "out_of_range")
    assert "'yes' is not one of the labels (0, 1)" in problem.message


def test_duplicate_id_names_both_lines():
    manifest = {**TITANIC, "expected_row_count": None}
    problem = only_problem(check("PassengerId,Survived\n892,0\n893,1\n892,1\n894,1\n", manifest))
    assert (problem.line, problem.code) == (4, "duplicate_id")
    assert "'892'" in problem.message and "also on line 2" in problem.message


def test_id_not_in_the_holdout():
    result = check("PassengerId,Survived\n892,0\n893,1\n894,1\n999,0\n", {**TITANIC, "expected_row_count": None})
    problem = only_problem(result)
    assert (problem.line, problem.code, problem.column) == (5, "unknown_id", "PassengerId")
    assert "'999' is not one of this competition's test ids" in problem.message


def test_missing_holdout_ids_are_counted_with_examples():
    ids = {str(i) for i in range(100, 120)}
    manifest = {**TITANIC, "expected_row_count": None}
    problem = only_problem(check("PassengerId,Survived\n100,1\n101,0\n", manifest, ids=ids))
    assert (problem.line, problem.code) == (3, "missing_ids")
    assert "18 of the 20 test ids have no row" in problem.message
    assert "e.g. 102, 103, 104, 105, 106" in problem.message


def test_row_count_against_the_manifest():
    result = check("PassengerId,Survived\n892,0\n893,1\n")
    assert not result.ok
    by_code = {p.code: p for p in result.problems}
    assert set(by_code) == {"missing_ids", "row_count"}
    assert by_code["row_count"].line == 3
    assert "2 data rows; this competition expects 3" in by_code["row_count"].message
    assert "1 of the 3 test ids have no row (e.g. 894)" in by_code["missing_ids"].message


def test_header_only():
    result = check("PassengerId,Survived\n")
    codes = [p.code for p in result.problems]
    assert codes == ["no_rows", "missing_ids", "row_count"]
    assert all(p.line == 1 for p in result.problems)


def test_problem_list_is_capped_but_counted():
    ids = {str(i) for i in range(50)}
    manifest = {**CIFAR, "expected_row_count": 50}
    body = "".join(f"{i},cat\n" for i in range(50))
    result = check("id,label\n" + body, manifest, "top1_accuracy", ids, max_problems=20)
    assert not result.ok
    assert len(result.problems) == 20
    assert result.total_problems == 50
    assert result.problems_truncated
    assert [p.line for p in result.problems] == list(range(2, 22))


def test_a_row_that_spans_lines_is_reported_where_it_starts():
    problem = only_problem(check('PassengerId,Survived\n892,0\n893,"1\n2"\n894,1\n', {**TITANIC, "labels": ["0", "1"]}))
    assert problem.line == 3


# --- CIFAR types and ranges ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("cat", "must be an integer class 0..99, got 'cat'"),
        ("3.5", "must be an integer class 0..99, got '3.5'"),
        ("nan", "must be an integer class 0..99, got 'nan'"),
        ("inf", "must be an integer class 0..99, got 'inf'"),
        ("100", "label 100 is outside the classes 0..99"),
        ("-1", "label -1 is outside the classes 0..99"),
        ("", "label is empty"),
    ],
)
def test_cifar_label_must_be_an_integer_class(value, reason):
    problem = only_problem(check(f"id,label\n0,1\n1,{value}\n2,2\n", CIFAR, "top1_accuracy", CIFAR_IDS))
    assert (problem.line, problem.column) == (3, "label")
    assert reason in problem.message


# --- RSNA types and ranges ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reason"),
    [
        ("0.5 10 10 20", "has 4 numbers; it must be groups of 5 (confidence x y width height), but box 1 is cut short"),
        ("0.5 10 10 20 20 0.4 1 1", "box 2 is cut short after 3"),
        ("0.5 10 ten 20 20", "box 1: y is not a number: 'ten'"),
        ("nan 10 10 20 20", "box 1: confidence must be a finite number"),
        ("0.5 inf 10 20 20", "box 1: x must be a finite number"),
        ("1.5 10 10 20 20", "box 1: confidence 1.5 is outside [0, 1]"),
        ("0.5 10 10 20 20 -0.1 10 10 20 20", "box 2: confidence -0.1 is outside [0, 1]"),
        ("0.5 -1 10 20 20", "box 1: x must be >= 0, got -1"),
        ("0.5 1 -2 20 20", "box 1: y must be >= 0, got -2"),
        ("0.5 10 10 0 20", "box 1: width must be > 0, got 0"),
        ("0.5 10 10 20 -3", "box 1: height must be > 0, got -3"),
    ],
)
def test_rsna_prediction_string_problems(prediction, reason):
    data = f"patientId,PredictionString\np1,\np2,{prediction}\np3,\n"
    problem = only_problem(check(data, RSNA, "rsna_map", RSNA_IDS))
    assert (problem.line, problem.column) == (3, "PredictionString")
    assert reason in problem.message


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("p2,0.5,10,10,20,", "height", "height is empty; give all of confidence,x,y,width,height"),
        ("p2,high,10,10,20,20", "confidence", "confidence is not a number: 'high'"),
        ("p2,NaN,10,10,20,20", "confidence", "confidence must be a finite number"),
        ("p2,0.5,10,10,-inf,20", "width", "width must be a finite number"),
        ("p2,2,10,10,20,20", "confidence", "confidence 2 is outside [0, 1]"),
        ("p2,0.5,10,10,0,20", "width", "width must be > 0, got 0"),
        ("p2,0.5,-5,10,20,20", "x", "x must be >= 0, got -5"),
    ],
)
def test_rsna_box_row_problems(row, column, reason):
    data = f"patientId,confidence,x,y,width,height\np1,,,,,\n{row}\np3,0.1,1,1,1,1\n"
    problem = only_problem(check(data, RSNA, "rsna_map", RSNA_IDS))
    assert (problem.line, problem.column) == (3, column)
    assert reason in problem.message


def test_rsna_duplicate_patient_in_prediction_string_format():
    data = "patientId,PredictionString\np1,\np2,\np1,0.5 1 1 1 1\np3,\n"
    problem = only_problem(check(data, {**RSNA, "expected_row_count": None}, "rsna_map", RSNA_IDS))
    assert (problem.line, problem.code) == (4, "duplicate_id")
    assert "also on line 2" in problem.message


def test_rsna_box_rows_count_patients_not_rows():
    data = "patientId,confidence,x,y,width,height\np1,0.5,1,1,1,1\np1,0.4,1,1,1,1\np2,,,,,\n"
    result = check(data, RSNA, "rsna_map", RSNA_IDS)
    by_code = {p.code: p for p in result.problems}
    assert set(by_code) == {"missing_ids", "row_count"}
    assert "2 distinct patientId values; this competition expects 3" in by_code["row_count"].message


def test_rsna_unknown_patient_reported_once():
    data = "patientId,confidence,x,y,width,height\np1,,,,,\nzz,0.5,1,1,1,1\nzz,0.4,1,1,1,1\np2,,,,,\np3,,,,,\n"
    result = check(data, {**RSNA, "expected_row_count": None}, "rsna_map", RSNA_IDS)
    problem = only_problem(result)
    assert (problem.line, problem.code) == (3, "unknown_id")


# --- manifest -----------------------------------------------------------------------------------


def test_manifest_problems_are_errors_not_user_problems():
    with pytest.raises(ManifestError, match="id_column"):
        check("a,b\n", {"target_columns": ["Survived"]})
    with pytest.raises(ManifestError, match="target_columns"):
        check("a,b\n", {"id_column": "PassengerId", "target_columns": []})
    with pytest.raises(ManifestError, match="expected_row_count"):
        check("a,b\n", {**TITANIC, "expected_row_count": 5})
    with pytest.raises(ManifestError, match="one target column"):
        check("a,b\n", {**TITANIC, "target_columns": ["a", "b"]})


# --- holdout ------------------------------------------------------------------------------------


def test_rsna_holdout_negatives_have_no_boxes(tmp_path):
    path = tmp_path / "holdout_labels.csv"
    path.write_text(
        "patientId,x,y,width,height,Target\n"
        "p1,264.0,152.0,213.0,379.0,1\np1,562.0,152.0,256.0,453.0,1\np2,,,,,0\n"
    )
    truth = load_holdout(path, RSNA, "rsna_map")
    assert holdout_id_set(truth) == {"p1", "p2"}
    assert truth.offsets.tolist() == [0, 2, 2]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("", 1, "empty"),
        ("patientId,x,y,width,Target\n", 1, "missing column(s) height"),
        ("patientId,x,y,width,height,Target\np1,1,1,0,5,1\n", 2, "width must be > 0"),
        ("patientId,x,y,width,height,Target\np1,1,1,5,5,1\np2,1,1,5,5,2\n", 3, "Target must be 0 or 1"),
        ("patientId,x,y,width,height,Target\np2,1,1,5,5,0\n", 2, "Target is 0 but a box is given"),
        ("patientId,x,y,width,height,Target\np1,1,1,5\n", 2, "expected 6 fields"),
        ("patientId,x,y,width,height,Target\n", None, "no data rows"),
    ],
)
def test_malformed_rsna_holdout_raises(tmp_path, content, line, reason):
    path = tmp_path / "holdout_labels.csv"
    path.write_text(content)
    with pytest.raises(HoldoutError, match=re.escape(reason)) as info:
        load_holdout(path, RSNA, "rsna_map")
    assert info.value.line == line


def test_malformed_label_holdout_raises(tmp_path):
    path = tmp_path / "holdout_labels.csv"
    path.write_text("id,label\n0,1\n0,2\n")
    with pytest.raises(HoldoutError, match="duplicate id '0'"):
        load_holdout(path, CIFAR, "top1_accuracy")
    path.write_bytes(b"id,label\n0,1\n1,\xff\n")
    with pytest.raises(HoldoutError, match="UTF-8") as info:
        load_holdout(path, CIFAR, "top1_accuracy")
    assert info.value.line == 3
