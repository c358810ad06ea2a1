"""Hand-computed cases for every metric, and a property test of the vectorised RSNA mAP
against the plain per-box reference. No database."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from competitions.metrics import (
    METRICS,
    THRESHOLDS,
    BoxTable,
    LabelTable,
    ScoringError,
    get_metric,
    rsna_map_reference,
)

accuracy = METRICS["accuracy"]
top1 = METRICS["top1_accuracy"]
rsna = METRICS["rsna_map"]


def labels(mapping: dict[str, str]) -> LabelTable:
    return LabelTable.from_mapping(mapping, dtype=str)


def classes(mapping: dict[str, int]) -> LabelTable:
    return LabelTable.from_mapping(mapping, dtype="int64")


def rsna_score(truth: dict, predictions: dict, ids=None):
    """Score through the registry and check the reference agrees on every hand case."""
    result = rsna.score(
        BoxTable.from_mapping(truth, scored=False), BoxTable.from_mapping(predictions, scored=True), ids
    )
    assert result.primary == pytest.approx(rsna_map_reference(truth, predictions, ids), abs=1e-12)
    return result


# --- registry ------------------------------------------------------------------------------------


def test_registry_entries_describe_themselves():
    assert set(METRICS) == {"accuracy", "rsna_map", "top1_accuracy"}
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.version.startswith(f"{name}/")
        assert metric.higher_is_better is True
    assert get_metric("accuracy") is accuracy
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        get_metric("f1")


# --- accuracy ------------------------------------------------------------------------------------


def test_accuracy_counts_correct_over_total():
    truth = labels({"1": "0", "2": "1", "3": "1", "4": "0"})
    result = accuracy.score(truth, labels({"1": "0", "2": "0", "3": "1", "4": "0"}))
    assert result.primary == 0.75
    assert result.components == {"correct": 3, "total": 4, "missing": 0}


def test_accuracy_trims_ids_and_labels_but_compares_strings():
    truth = labels({"1": "1", "2": "0", "3": "1"})
    result = accuracy.score(truth, labels({" 1 ": " 1", "2\t": "0 ", "3": "1.0"}))
    assert result.primary == pytest.approx(2 / 3)


def test_accuracy_missing_prediction_counts_as_wrong_and_extra_ids_are_ignored():
    truth = labels({"a": "x", "b": "y"})
    result = accuracy.score(truth, labels({"a": "x", "zzz": "y"}))
    assert result.primary == 0.5
    assert result.components["missing"] == 1


def test_accuracy_on_a_subset_of_ids():
    truth = labels({"a": "1", "b": "1", "c": "0", "d": "0"})
    predictions = labels({"a": "1", "b": "0", "c": "0", "d": "1"})
    assert accuracy.score(truth, predictions, ids={"a", "c"}).primary == 1.0
    assert accuracy.score(truth, predictions, ids=["b", "d"]).primary == 0.0
    assert accuracy.score(truth, predictions, ids=["a", "b", "c"]).components["total"] == 3


def test_subset_naming_an_unknown_id_or_nothing_is_refused():
    truth = labels({"a": "1"})
    with pytest.raises(ScoringError, match="not in the holdout"):
        accuracy.score(truth, truth, ids={"a", "nope"})
    with pytest.raises(ScoringError):
        accuracy.score(truth, truth, ids=set())


def test_label_table_refuses_duplicate_ids():
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        LabelTable.from_pairs(["a", " a"], ["1", "2"], dtype=str)


# --- top-1 accuracy ------------------------------------------------------------------------------


def test_top1_accuracy_hand_computed():
    truth = classes({"0": 3, "1": 99, "2": 0, "3": 42, "4": 7})
    predictions = classes({"0": 3, "1": 98, "2": 0, "3": 42, "4": 8})
    result = top1.score(truth, predictions)
    assert result.primary == pytest.approx(3 / 5)
    assert result.components["correct"] == 3
    assert top1.score(truth, predictions, ids={"1", "4"}).primary == 0.0


def test_top1_accuracy_perfect_and_empty_predictions():
    truth = classes({str(i): i % 100 for i in range(250)})
    assert top1.score(truth, truth).primary == 1.0
    assert top1.score(truth, classes({})).primary == 0.0


# --- RSNA mAP ------------------------------------------------------------------------------------

BOX = (10.0, 10.0, 10.0, 10.0)


def scored(conf: float, box: tuple[float, float, float, float]) -> tuple[float, ...]:
    return (conf, *box)


def test_rsna_perfect_prediction_scores_one():
    result = rsna_score({"p": [BOX]}, {"p": [scored(0.9, BOX)]})
    assert result.primary == 1.0
    assert all(result.components[f"precision@{t:.2f}"] == 1.0 for t in THRESHOLDS)


def test_rsna_image_without_truth_or_prediction_is_skipped():
    result = rsna_score({"p": [BOX], "neg": []}, {"p": [scored(0.9, BOX)]})
    assert result.primary == 1.0
    assert result.components["images_counted"] == 1
    assert result.components["images_skipped"] == 1


def test_rsna_prediction_on_an_image_without_truth_scores_zero():
    result = rsna_score({"p": [BOX], "neg": []}, {"p": [scored(0.9, BOX)], "neg": [scored(0.1, BOX)]})
    assert result.primary == 0.5
    assert result.components["images_counted"] == 2
    assert result.components["images_false_positive_only"] == 1


def test_rsna_truth_without_prediction_scores_zero():
    result = rsna_score({"p": [BOX], "q": [BOX]}, {"p": [scored(0.9, BOX)], "q": []})
    assert result.primary == 0.5
    assert rsna_score({"q": [BOX]}, {}).primary == 0.0


def test_rsna_duplicate_prediction_on_one_box_is_a_false_positive():
    # Each threshold: TP 1, FP 1, FN 0 -> 1/2.
    result = rsna_score({"p": [BOX]}, {"p": [scored(0.9, BOX), scored(0.8, BOX)]})
    assert result.primary == 0.5


def test_rsna_confidence_order_changes_the_result():
    # Two overlapping truth boxes; A overlaps both (best: the first), B only the first and weakly.
    truth = {"p": [(10.0, 0.0, 10.0, 10.0), (12.0, 0.0, 10.0, 10.0)]}
    a = (10.5, 0.0, 10.0, 10.0)  # IoU 95/105 with the first, 85/115 with the second
    b = (6.0, 0.0, 10.0, 10.0)  # IoU 60/140 = 0.4286 with the first, 0.25 with the second
    # A first: A takes box 1, B finds nothing free -> TP 1, FP 1, FN 1 at every threshold.
    assert rsna_score(truth, {"p": [scored(0.9, a), scored(0.8, b)]}).primary == pytest.approx(1 / 3)
    # B first: at 0.40 B takes box 1 and A box 2 (precision 1); above 0.4286 B misses (1/3).
    assert rsna_score(truth, {"p": [scored(0.8, a), scored(0.9, b)]}).primary == pytest.approx(
        (1 + 7 * (1 / 3)) / 8
    )


def test_rsna_iou_exactly_at_a_threshold_is_not_a_match():
    truth = {"p": [(0.0, 0.0, 10.0, 10.0)]}
    half = rsna_score(truth, {"p": [scored(1.0, (0.0, 0.0, 10.0, 5.0))]})  # IoU exactly 0.5
    assert half.primary == 2 / 8  # matches at 0.40 and 0.45 only
    assert half.components["precision@0.45"] == 1.0
    assert half.components["precision@0.50"] == 0.0
    assert rsna_score(truth, {"p": [scored(1.0, (0.0, 0.0, 10.0, 4.0))]}).primary == 0.0  # IoU 0.4
    assert rsna_score(truth, {"p": [scored(1.0, (0.0, 0.0, 10.0, 7.5))]}).primary == 7 / 8  # IoU 0.75


def test_rsna_multiple_boxes_per_image():
    truth = {
        "two": [(0.0, 0.0, 10.0, 10.0), (50.0, 50.0, 10.0, 10.0)],
        "also_two": [(0.0, 0.0, 10.0, 10.0), (50.0, 50.0, 10.0, 10.0)],
    }
    predictions = {
        # one hit, one far-away box: TP 1, FP 1, FN 1 -> 1/3
        "two": [scored(0.9, (0.0, 0.0, 10.0, 10.0)), scored(0.8, (100.0, 100.0, 5.0, 5.0))],
        # both hit, listed in the other order: 1
        "also_two": [scored(0.3, (50.0, 50.0, 10.0, 10.0)), scored(0.6, (0.0, 0.0, 10.0, 10.0))],
    }
    assert rsna_score(truth, predictions).primary == pytest.approx((1 / 3 + 1) / 2)


def test_rsna_prediction_takes_the_free_truth_box_with_the_highest_iou():
    truth = {"p": [(0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 9.0)]}
    # The first prediction overlaps both; it takes the second (IoU 1), leaving the first (IoU 1)
    # for the second prediction: two TPs at every threshold.
    predictions = {"p": [scored(0.9, (0.0, 0.0, 10.0, 9.0)), scored(0.5, (0.0, 0.0, 10.0, 10.0))]}
    assert rsna_score(truth, predictions).primary == 1.0


def test_rsna_components_and_subsets():
    truth = {"a": [BOX], "b": [BOX], "neg": []}
    predictions = {"a": [scored(0.9, BOX)], "b": [scored(0.9, (10.0, 10.0, 10.0, 5.0))]}  # b: IoU 0.5
    result = rsna_score(truth, predictions)
    assert result.primary == pytest.approx((1 + 2 / 8) / 2)
    assert result.components["images"] == 3
    assert result.components["images_with_truth"] == 2
    assert result.components["precision@0.40"] == 1.0
    assert result.components["precision@0.50"] == 0.5
    assert rsna_score(truth, predictions, ids={"a"}).primary == 1.0
    assert rsna_score(truth, predictions, ids={"b", "neg"}).primary == 2 / 8


def test_rsna_nothing_to_count_scores_zero():
    result = rsna_score({"n1": [], "n2": []}, {})
    assert result.primary == 0.0
    assert result.components["images_counted"] == 0


def test_rsna_predictions_for_unknown_images_are_ignored():
    assert rsna_score({"p": [BOX]}, {"p": [scored(1.0, BOX)], "other": [scored(1.0, BOX)]}).primary == 1.0


def test_rsna_equal_confidences_keep_file_order():
    truth = {"p": [(10.0, 0.0, 10.0, 10.0), (12.0, 0.0, 10.0, 10.0)]}
    a = (10.5, 0.0, 10.0, 10.0)
    b = (6.0, 0.0, 10.0, 10.0)
    assert rsna_score(truth, {"p": [scored(0.5, a), scored(0.5, b)]}).primary == pytest.approx(1 / 3)
    assert rsna_score(truth, {"p": [scored(0.5, b), scored(0.5, a)]}).primary == pytest.approx(10 / 24)


def test_box_table_refuses_degenerate_boxes():
    with pytest.raises(ValueError, match="width and height"):
        BoxTable.from_mapping({"p": [(0.0, 0.0, 0.0, 5.0)]}, scored=False)
    with pytest.raises(ValueError, match="duplicate id"):
        BoxTable.from_groups(["p", "p"], [[], []], scored=False)


# --- property: vectorised == reference -----------------------------------------------------------

# Coordinates on a coarse grid so that overlaps, exact-threshold IoUs and ties are common.
coordinate = st.integers(0, 12).map(float)
extent = st.integers(1, 8).map(float)
plain_box = st.tuples(coordinate, coordinate, extent, extent)
confidence = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
scored_box = st.tuples(confidence, coordinate, coordinate, extent, extent)
image_ids = [f"img{i}" for i in range(8)]


@st.composite
def rsna_cases(draw):
    truth = {i: draw(st.lists(plain_box, max_size=4)) for i in image_ids}
    predicted = draw(st.lists(st.sampled_from([*image_ids, "stray"]), unique=True))
    predictions = {i: draw(st.lists(scored_box, max_size=6)) for i in predicted}
    subset = draw(st.none() | st.sets(st.sampled_from(image_ids), min_size=1))
    return truth, predictions, subset


@settings(max_examples=300, deadline=None)
@given(rsna_cases())
def test_rsna_vectorised_matches_reference(case):
    truth, predictions, subset = case
    fast = rsna.score(
        BoxTable.from_mapping(truth, scored=False), BoxTable.from_mapping(predictions, scored=True), subset
    )
    assert fast.primary == pytest.approx(rsna_map_reference(truth, predictions, subset), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(rsna_cases())
def test_rsna_one_row_per_box_equals_grouped(case):
    truth, predictions, _ = case
    ids = [i for i, boxes in predictions.items() for _ in (boxes or [None])]
    rows = [b for boxes in predictions.values() for b in (boxes or [None])]
    by_rows = BoxTable.from_rows(ids, rows, scored=True)
    grouped = BoxTable.from_mapping(predictions, scored=True)
    t = BoxTable.from_mapping(truth, scored=False)
    assert rsna.score(t, by_rows).primary == rsna.score(t, grouped).primary
