"""Benchmark of the scoring core: vectorised metrics vs straightforward per-row Python.

Run from the repository root: ``python bench/scoring.py`` (no Django, no database; a few seconds).
Data is generated deterministically: RSNA with 3,000 images (about a third positive with 1-4
boxes, predictions with 0-6 boxes each) and CIFAR-100 with 10,000 rows.

What is timed (median of several runs, same process, same data):
  * score   - ``metric.score(truth, predictions)`` on the columnar structures that
              ``validate_submission`` / ``load_holdout`` return, vs the reference metric on the
              dicts a straightforward parser would return. This is the TARGET ratio (SPEC §9:
              "each score in under 1/10 of the time of a per-row Python reference").
  * +build  - the same, plus going from already-parsed rows to those structures (numpy arrays
              for the fast path, dicts for the reference). Printed for honesty, not the target:
              that step is per-row Python in both paths and happens inside upload validation.
  * the full upload validation of the CSV text is printed too; it is the same work whichever
    metric implementation follows it.
"""

from __future__ import annotations

import importlib
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Imported by name after the path is set (a plain import here would sit below code).
_metrics = importlib.import_module("competitions.metrics")
_validation = importlib.import_module("competitions.validation")
METRICS = _metrics.METRICS
rsna_map_reference = _metrics.rsna_map_reference
top1_accuracy_reference = _metrics.top1_accuracy_reference
holdout_id_set = _validation.holdout_id_set
validate_submission = _validation.validate_submission

SEED = 20240601
RSNA_IMAGES = 3_000
CIFAR_ROWS = 10_000
GOAL = 0.100


def median_time(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# --- data ---------------------------------------------------------------------------------------


def rsna_data(rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """Parsed rows as a CSV reader would give them after type conversion:
    truth rows ``(id, box|None)`` (Kaggle's one-row-per-box labels) and prediction rows
    ``(id, [(conf, x, y, w, h), ...])`` (one row per patient, PredictionString format)."""
    truth_rows: list[tuple] = []
    pred_rows: list[tuple] = []
    for i in range(RSNA_IMAGES):
        pid = f"{rng.getrandbits(64):016x}-{i:05d}"
        boxes = []
        if rng.random() < 0.35:
            for _ in range(rng.randint(1, 4)):
                boxes.append(
                    (
                        float(rng.randint(0, 700)),
                        float(rng.randint(0, 700)),
                        float(rng.randint(60, 320)),
                        float(rng.randint(60, 320)),
                    )
                )
        truth_rows.extend((pid, b) for b in boxes) if boxes else truth_rows.append((pid, None))
        preds = []
        for x, y, w, h in boxes:  # noisy detections of the true boxes
            if rng.random() < 0.8:
                preds.append(
                    (
                        round(rng.uniform(0.3, 1.0), 3),
                        max(0.0, x + rng.uniform(-30, 30)),
                        max(0.0, y + rng.uniform(-30, 30)),
                        max(1.0, w + rng.uniform(-40, 40)),
                        max(1.0, h + rng.uniform(-40, 40)),
                    )
                )
        while len(preds) < 6 and rng.random() < 0.45:  # false positives and duplicates
            preds.append(
                (
                    round(rng.uniform(0.0, 0.9), 3),
                    float(rng.randint(0, 800)),
                    float(rng.randint(0, 800)),
                    float(rng.randint(40, 300)),
                    float(rng.randint(40, 300)),
                )
            )
        rng.shuffle(preds)
        pred_rows.append((pid, preds))
    return truth_rows, pred_rows


def cifar_data(rng: random.Random) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    truth = [(f"{i}", rng.randrange(100)) for i in range(CIFAR_ROWS)]
    preds = [(i, label if rng.random() < 0.7 else rng.randrange(100)) for i, label in truth]
    rng.shuffle(preds)
    return truth, preds


# --- the two paths from parsed rows -------------------------------------------------------------


def rsna_fast_build(truth_rows: list[tuple], pred_rows: list[tuple]) -> tuple[Any, Any]:
    metric = METRICS["rsna_map"]
    fmt = metric.submission_formats(RSNA_MANIFEST)[0]  # prediction_string
    truth = metric.build_truth([r[0] for r in truth_rows], [r[1] for r in truth_rows])
    predictions = metric.build_predictions(fmt, [r[0] for r in pred_rows], [r[1] for r in pred_rows])
    return truth, predictions


def rsna_reference_build(truth_rows: list[tuple], pred_rows: list[tuple]) -> tuple[dict, dict]:
    truth: dict[str, list] = {}
    for pid, box in truth_rows:
        boxes = truth.setdefault(pid, [])
        if box is not None:
            boxes.append(box)
    predictions = {pid: boxes for pid, boxes in pred_rows}
    return truth, predictions


def cifar_fast_build(truth_rows: list[tuple], pred_rows: list[tuple]) -> tuple[Any, Any]:
    metric = METRICS["top1_accuracy"]
    fmt = metric.submission_formats(CIFAR_MANIFEST)[0]
    truth = metric.build_truth([r[0] for r in truth_rows], [r[1] for r in truth_rows])
    predictions = metric.build_predictions(fmt, [r[0] for r in pred_rows], [r[1] for r in pred_rows])
    return truth, predictions


def cifar_reference_build(truth_rows: list[tuple], pred_rows: list[tuple]) -> tuple[dict, dict]:
    return dict(truth_rows), dict(pred_rows)


RSNA_MANIFEST = {"id_column": "patientId", "target_columns": ["PredictionString"]}
CIFAR_MANIFEST = {"id_column": "id", "target_columns": ["label"]}


def rsna_csv(pred_rows: list[tuple]) -> bytes:
    out = io.StringIO()
    out.write("patientId,PredictionString\n")
    for pid, boxes in pred_rows:
        # repr() round-trips floats exactly, so the upload path must reproduce the same score.
        out.write(pid + "," + " ".join(f"{c!r} {x!r} {y!r} {w!r} {h!r}" for c, x, y, w, h in boxes) + "\n")
    return out.getvalue().encode()


def cifar_csv(pred_rows: list[tuple]) -> bytes:
    return ("id,label\n" + "".join(f"{i},{label}\n" for i, label in pred_rows)).encode()


# --- measurement --------------------------------------------------------------------------------


def bench(
    name: str,
    metric_name: str,
    truth_rows: list[tuple],
    pred_rows: list[tuple],
    fast_build: Callable,
    reference_build: Callable,
    reference: Callable,
    csv_bytes: bytes,
    manifest: dict,
    fast_runs: int,
    reference_runs: int,
) -> float:
    metric = METRICS[metric_name]
    truth, predictions = fast_build(truth_rows, pred_rows)
    ref_truth, ref_predictions = reference_build(truth_rows, pred_rows)

    t_fast, fast_result = median_time(lambda: metric.score(truth, predictions), fast_runs)
    t_ref, ref_score = median_time(lambda: reference(ref_truth, ref_predictions), reference_runs)
    t_fast_build, _ = median_time(lambda: fast_build(truth_rows, pred_rows), fast_runs)
    t_ref_build, _ = median_time(lambda: reference_build(truth_rows, pred_rows), fast_runs)

    holdout = holdout_id_set(truth)
    manifest = {**manifest, "expected_row_count": len(holdout)}
    t_validate, validated = median_time(
        lambda: validate_submission(io.BytesIO(csv_bytes), manifest, metric_name, holdout), 3
    )
    assert validated.ok, validated.problems[:3]
    from_csv = metric.score(truth, validated.predictions).primary

    same = abs(fast_result.primary - ref_score) <= 1e-9 and abs(from_csv - ref_score) <= 1e-9
    print(f"== {name}")
    print(f"   score fast={fast_result.primary:.6f} reference={ref_score:.6f} "
          f"same={'yes' if same else 'NO'} (via the CSV upload path: {from_csv:.6f})")
    print(f"   score only          : fast {t_fast * 1e3:8.3f} ms   reference {t_ref * 1e3:8.3f} ms"
          f"   ratio {t_fast / t_ref:.3f}")
    print(f"   parsed rows -> structures: fast {t_fast_build * 1e3:8.3f} ms   "
          f"reference {t_ref_build * 1e3:8.3f} ms")
    print(f"   build + score       : fast {(t_fast_build + t_fast) * 1e3:8.3f} ms   reference "
          f"{(t_ref_build + t_ref) * 1e3:8.3f} ms   ratio {(t_fast_build + t_fast) / (t_ref_build + t_ref):.3f}")
    print(f"   upload validation of the {len(csv_bytes) / 1e6:.2f} MB CSV (shared by both paths): "
          f"{t_validate * 1e3:.1f} ms")
    if not same:
        raise SystemExit(f"{name}: fast and reference scores differ")
    return t_fast / t_ref


def main() -> None:
    rng = random.Random(SEED)
    rsna_truth, rsna_preds = rsna_data(rng)
    cifar_truth, cifar_preds = cifar_data(rng)
    n_boxes = sum(len(b) for _, b in rsna_preds)
    n_truth = sum(1 for _, b in rsna_truth if b is not None)
    print(f"RSNA: {RSNA_IMAGES} images, {n_truth} truth boxes, {n_boxes} predicted boxes; "
          f"CIFAR-100: {CIFAR_ROWS} rows. Medians; timings in one process on this machine.")
    rsna_ratio = bench(
        "RSNA mAP (rsna_map)", "rsna_map", rsna_truth, rsna_preds, rsna_fast_build, rsna_reference_build,
        rsna_map_reference, rsna_csv(rsna_preds), RSNA_MANIFEST, fast_runs=51, reference_runs=11,
    )
    cifar_ratio = bench(
        "CIFAR-100 top-1 (top1_accuracy)", "top1_accuracy", cifar_truth, cifar_preds, cifar_fast_build,
        cifar_reference_build, top1_accuracy_reference, cifar_csv(cifar_preds), CIFAR_MANIFEST,
        fast_runs=101, reference_runs=31,
    )
    print("TARGET ratios are 'score only' (fast score() on validated structures / reference metric).")
    for name, ratio in (("scoring_rsna_map", rsna_ratio), ("scoring_cifar100_top1", cifar_ratio)):
        print(f"TARGET {name} measured={ratio:.3f} goal=<={GOAL:.3f} {'PASS' if ratio <= GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
