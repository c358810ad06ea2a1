"""RSNA Pneumonia Detection mean average precision (the Kaggle definition), vectorised.

Per image and per IoU threshold t in 0.40, 0.45, ..., 0.75, the predicted boxes, sorted by
confidence descending (ties keep file order), are matched greedily: each takes the still
unmatched ground-truth box with the highest IoU among those with IoU > t (strictly; ties go to
the box listed first in the holdout). precision(t) = TP / (TP + FP + FN). An image with neither
ground truth nor prediction is skipped; one with only one of them scores 0. Image score = mean
over thresholds; final score = mean over counted images (0.0 when no image counts).
Boxes are ``(x, y, width, height)`` in pixels; IoU uses continuous coordinates (no +1).
Predictions for images that are not in the holdout are ignored (validation refuses them).

``score_rsna_map`` does the matching for all images at once: IoUs of every (prediction, truth) pair
in one numpy pass, then one vectorised step per prediction rank (rarely more than a handful).
``rsna_map_reference`` is the plain per-box Python version used by tests and the benchmark.

Submission formats: ``<id>,PredictionString`` ("conf x y w h conf x y w h ...", empty = no box)
and one row per box ``<id>,confidence,x,y,width,height`` (all five empty = no box).
Holdout format (Kaggle's stage_2_train_labels.csv): ``<id>,x,y,width,height,Target``.
Manifest fields read: ``id_column``, ``target_columns`` (one column, e.g. ``PredictionString``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from .base import (
    FieldError,
    ManifestError,
    Metric,
    MetricResult,
    RowFormat,
    as_id_array,
    manifest_columns,
    parse_finite,
    select_ids,
    sort_unique_ids,
)

THRESHOLDS: tuple[float, ...] = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75)
_THR = np.array(THRESHOLDS, dtype=np.float64)[:, None]

BOX_COLUMNS: tuple[str, ...] = ("confidence", "x", "y", "width", "height")
HOLDOUT_COLUMNS: tuple[str, ...] = ("x", "y", "width", "height", "Target")

ScoredBox = tuple[float, float, float, float, float]  # confidence, x, y, width, height
Box = tuple[float, float, float, float]  # x, y, width, height


def _starts(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the positions where a run of equal ``keys`` begins."""
    first = np.empty(keys.size, dtype=bool)
    if keys.size:
        first[0] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return first


@dataclass(frozen=True, eq=False)
class BoxTable:
    """Boxes grouped by image, columnar (CSR): used for both truth and predictions.

    ``ids``: (n,) sorted unique image ids. Image ``i`` owns rows ``offsets[i]:offsets[i+1]``
    of ``boxes`` ((m, 4) float64 x, y, width, height) and, for predictions, of ``scores``
    ((m,) confidences, descending within each image, ties in input order). An image may own
    no rows (a negative in the truth, or "no box" in a submission).
    """

    ids: np.ndarray
    offsets: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None

    @classmethod
    def from_groups(
        cls, ids: Sequence[str], groups: Sequence[Sequence[Sequence[float]]], *, scored: bool
    ) -> BoxTable:
        """One entry per image (ids unique); each group lists that image's boxes.

        A box is ``(confidence, x, y, width, height)`` when ``scored`` else ``(x, y, width, height)``.
        """
        if len(ids) != len(groups):
            raise ValueError(f"{len(ids)} ids but {len(groups)} box groups")
        counts = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
        image_of_box = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
        id_arr = as_id_array(ids)
        order = sort_unique_ids(id_arr)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[order] = np.arange(len(ids), dtype=np.int64)
        return cls._assemble(id_arr[order], rank[image_of_box], chain.from_iterable(groups), scored)

    @classmethod
    def from_rows(
        cls, ids: Sequence[str], boxes: Sequence[Sequence[float] | None], *, scored: bool
    ) -> BoxTable:
        """One entry per row: several rows may share an id; ``None`` marks an image without box."""
        if len(ids) != len(boxes):
            raise ValueError(f"{len(ids)} ids but {len(boxes)} box rows")
        id_arr = as_id_array(ids)
        # np.unique(return_inverse=True), done by hand: several times faster on strings.
        order = np.argsort(id_arr, kind="stable")
        ordered = id_arr[order]
        first = _starts(ordered)
        inverse = np.empty(id_arr.size, dtype=np.int64)
        inverse[order] = np.cumsum(first) - 1
        has_box = np.fromiter((b is not None for b in boxes), dtype=bool, count=len(boxes))
        flat = (b for b in boxes if b is not None)
        return cls._assemble(ordered[first], inverse[has_box], flat, scored)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[Sequence[float]]], *, scored: bool) -> BoxTable:
        """``{image_id: [box, ...]}``; an empty list is an image without boxes."""
        return cls.from_groups(list(mapping.keys()), list(mapping.values()), scored=scored)

    @classmethod
    def _assemble(
        cls, ids: np.ndarray, image_of_box: np.ndarray, boxes: Iterable[Sequence[float]], scored: bool
    ) -> BoxTable:
        """``boxes`` yields the boxes in ``image_of_box`` order, each of 5 (scored) or 4 numbers."""
        width = 5 if scored else 4
        # Flattening to one stream of floats is far cheaper for numpy than a list of tuples.
        arr = np.fromiter(chain.from_iterable(boxes), dtype=np.float64).reshape(-1, width)
        if arr.shape[0] != image_of_box.size:
            raise ValueError(f"every box must have {width} numbers")
        if arr.size and not np.isfinite(arr).all():
            raise ValueError("boxes must hold finite numbers")
        if arr.size and not ((arr[:, width - 2] > 0).all() and (arr[:, width - 1] > 0).all()):
            raise ValueError("box width and height must be > 0")
        if scored:
            # lexsort is stable: equal confidences keep their input order.
            order = np.lexsort((-arr[:, 0], image_of_box))
        else:
            order = np.argsort(image_of_box, kind="stable")
        arr = arr[order]
        counts = np.bincount(image_of_box, minlength=ids.size) if image_of_box.size else np.zeros(ids.size, np.int64)
        offsets = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        boxes = np.ascontiguousarray(arr[:, width - 4 :])
        scores = np.ascontiguousarray(arr[:, 0]) if scored else None
        return cls(ids=ids, offsets=offsets, boxes=boxes, scores=scores)

    def __len__(self) -> int:
        return int(self.ids.size)


def _corners(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Contiguous columns (x1, y1, x2, y2, area) of (m, 4) boxes, for gathering pairs cheaply."""
    x = np.ascontiguousarray(boxes[:, 0])
    y = np.ascontiguousarray(boxes[:, 1])
    return x, y, x + boxes[:, 2], y + boxes[:, 3], boxes[:, 2] * boxes[:, 3]


def _pair_iou(p: tuple[np.ndarray, ...], pidx: np.ndarray, t: tuple[np.ndarray, ...], tidx: np.ndarray) -> np.ndarray:
    """IoU of prediction ``pidx[k]`` with truth box ``tidx[k]`` for every k."""
    px1, py1, px2, py2, pa = (c[pidx] for c in p)
    tx1, ty1, tx2, ty2, ta = (c[tidx] for c in t)
    iw = np.minimum(px2, tx2)
    iw -= np.maximum(px1, tx1)
    np.maximum(iw, 0.0, out=iw)
    ih = np.minimum(py2, ty2)
    ih -= np.maximum(py1, ty1)
    np.maximum(ih, 0.0, out=ih)
    iw *= ih  # intersection
    return iw / (pa + ta - iw)


def _true_positives(
    t_start: np.ndarray,
    t_count: np.ndarray,
    p_start: np.ndarray,
    p_count: np.ndarray,
    t_boxes: np.ndarray,
    p_boxes: np.ndarray,
) -> np.ndarray:
    """TP count per threshold and image, shape (len(THRESHOLDS), m), for m images that have
    both truth and predictions (their box ranges given by start/count)."""
    m = t_start.size
    n_thr = len(THRESHOLDS)
    tp = np.zeros((n_thr, m), dtype=np.int64)
    pairs_per_image = t_count * p_count
    total = int(pairs_per_image.sum())
    # Every (prediction, truth) pair of an image, ordered image, prediction rank, truth box.
    img = np.repeat(np.arange(m, dtype=np.int64), pairs_per_image)
    local = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(pairs_per_image) - pairs_per_image, pairs_per_image)
    tc = t_count[img]
    pidx = p_start[img] + local // tc
    tidx = t_start[img] + local % tc
    iou = _pair_iou(_corners(p_boxes), pidx, _corners(t_boxes), tidx)
    # A pair at or below the lowest threshold can never match: drop it.
    keep = iou > THRESHOLDS[0]
    if not keep.any():
        return tp
    img, pidx, tidx, iou = img[keep], pidx[keep], tidx[keep], iou[keep]

    # Uncontested images: every remaining pair joins a prediction and a truth box that overlap
    # nothing else, so greedy matching has no choice to make; the pair is a TP exactly at the
    # thresholds below its IoU. Only the other images need the rank-by-rank matching below.
    contested_pair = (np.bincount(pidx)[pidx] > 1) | (np.bincount(tidx)[tidx] > 1)
    contested_img = np.zeros(m, dtype=bool)
    contested_img[img[contested_pair]] = True
    hard = contested_img[img]
    easy = ~hard
    if easy.any():
        hits = iou[easy] > _THR  # (thresholds, pairs)
        cells = (np.arange(n_thr, dtype=np.int64)[:, None] * m + img[easy])[hits]
        tp += np.bincount(cells, minlength=n_thr * m).reshape(n_thr, m)
    if not hard.any():
        return tp
    img, pidx, tidx, iou = img[hard], pidx[hard], tidx[hard], iou[hard]

    # Round of a prediction = its rank (by confidence) among its image's remaining predictions.
    new_pred = _starts(pidx)
    pred_of_pair = np.cumsum(new_pred) - 1
    pred_img = img[new_pred]
    j = np.arange(pred_img.size, dtype=np.int64)
    round_of_pred = j - np.maximum.accumulate(np.where(_starts(pred_img), j, 0))
    round_of_pair = round_of_pred[pred_of_pair]
    order = np.argsort(round_of_pair, kind="stable")  # keeps image, then truth-box order
    rounds = round_of_pair[order]
    img, pidx, tidx, iou = img[order], pidx[order], tidx[order], iou[order]
    bounds = np.searchsorted(rounds, np.arange(int(rounds[-1]) + 2))

    # One vectorised step per round: every image's r-th prediction, at every threshold at once,
    # takes its free truth box with the highest IoU above the threshold (ties: first box).
    matched = np.zeros((n_thr, t_boxes.shape[0]), dtype=bool)
    for r in range(bounds.size - 1):
        a, b = int(bounds[r]), int(bounds[r + 1])
        iou_r, t_r = iou[a:b], tidx[a:b]
        seg_start = _starts(pidx[a:b])
        starts = np.flatnonzero(seg_start)
        seg_of_pair = np.cumsum(seg_start) - 1
        candidate = (iou_r > _THR) & ~matched[:, t_r]
        masked = np.where(candidate, iou_r, -1.0)
        best = np.maximum.reduceat(masked, starts, axis=1)
        is_best = candidate & (masked == best[:, seg_of_pair])
        position = np.where(is_best, np.arange(b - a), b - a)
        first = np.minimum.reduceat(position, starts, axis=1)
        hit = best > 0.0
        ti, si = np.nonzero(hit)
        matched[ti, t_r[first[ti, si]]] = True
        tp[:, img[a:b][starts]] += hit
    return tp


def score_rsna_map(truth: BoxTable, predictions: BoxTable, ids: Collection[str] | None = None) -> MetricResult:
    """Vectorised RSNA mAP over the holdout images (or the ``ids`` subset of them)."""
    n = truth.ids.size
    t_start = truth.offsets[:-1]
    t_count = np.diff(truth.offsets)
    p_start = np.zeros(n, dtype=np.int64)
    p_count = np.zeros(n, dtype=np.int64)
    if predictions.ids.size == n and np.array_equal(predictions.ids, truth.ids):
        # The common case after validation: a row for exactly the holdout's images.
        p_start = predictions.offsets[:-1]
        p_count = np.diff(predictions.offsets)
    elif predictions.ids.size and n:
        pos = np.searchsorted(truth.ids, predictions.ids)
        found = (pos < n) & (truth.ids[np.minimum(pos, n - 1)] == predictions.ids)
        p_start[pos[found]] = predictions.offsets[:-1][found]
        p_count[pos[found]] = np.diff(predictions.offsets)[found]
    sel = select_ids(truth.ids, ids)
    if sel is not None:
        t_start, t_count, p_start, p_count = t_start[sel], t_count[sel], p_start[sel], p_count[sel]
    images = int(t_count.size)
    has_truth = t_count > 0
    has_pred = p_count > 0
    counted = has_truth | has_pred
    both = np.flatnonzero(has_truth & has_pred)

    tp = np.zeros((len(THRESHOLDS), images), dtype=np.int64)
    if both.size:
        tp[:, both] = _true_positives(
            t_start[both], t_count[both], p_start[both], p_count[both], truth.boxes, predictions.boxes
        )
    # TP + FP + FN = predictions + truths - TP, which is >= 1 on every counted image.
    denominator = np.maximum(p_count + t_count - tp, 1)
    precision = tp / denominator
    n_counted = int(np.count_nonzero(counted))
    components: dict[str, float | int] = {
        "images": images,
        "images_counted": n_counted,
        "images_skipped": images - n_counted,
        "images_with_truth": int(np.count_nonzero(has_truth)),
        "images_false_positive_only": int(np.count_nonzero(has_pred & ~has_truth)),
    }
    if n_counted == 0:
        components.update({f"precision@{t:.2f}": 0.0 for t in THRESHOLDS})
        return MetricResult(primary=0.0, components=components)
    per_threshold = precision[:, counted].mean(axis=1)
    components.update({f"precision@{t:.2f}": float(v) for t, v in zip(THRESHOLDS, per_threshold, strict=True)})
    image_scores = precision[:, counted].mean(axis=0)
    return MetricResult(primary=float(image_scores.mean()), components=components)


# --- reference implementation ------------------------------------------------------------------


def _iou_py(p: Sequence[float], t: Sequence[float]) -> float:
    # Same operations, in the same order, as _pair_iou: results agree bit for bit.
    iw = min(p[0] + p[2], t[0] + t[2]) - max(p[0], t[0])
    ih = min(p[1] + p[3], t[1] + t[3]) - max(p[1], t[1])
    iw = max(iw, 0.0)
    ih = max(ih, 0.0)
    inter = iw * ih
    return inter / (p[2] * p[3] + t[2] * t[3] - inter)


def rsna_map_reference(
    truth: Mapping[str, Sequence[Sequence[float]]],
    predictions: Mapping[str, Sequence[Sequence[float]]],
    ids: Collection[str] | None = None,
) -> float:
    """Plain per-box Python RSNA mAP: ``truth`` maps every holdout image to its (x, y, w, h)
    boxes (empty list for a negative), ``predictions`` maps images to (conf, x, y, w, h) boxes."""
    keys = truth.keys() if ids is None else ids
    total = 0.0
    counted = 0
    for key in keys:
        gt = truth[key]
        preds = sorted(predictions.get(key, ()), key=lambda b: -b[0])
        if not gt and not preds:
            continue
        counted += 1
        if not gt or not preds:
            continue  # scores 0
        image_total = 0.0
        for t in THRESHOLDS:
            taken = [False] * len(gt)
            tp = 0
            for p in preds:
                box = p[1:5]
                best = -1.0
                best_j = -1
                for j, g in enumerate(gt):
                    if taken[j]:
                        continue
                    v = _iou_py(box, g)
                    if v > t and v > best:
                        best, best_j = v, j
                if best_j >= 0:
                    taken[best_j] = True
                    tp += 1
            fp = len(preds) - tp
            fn = len(gt) - tp
            image_total += tp / (tp + fp + fn)
        total += image_total / len(THRESHOLDS)
    return total / counted if counted else 0.0


# --- parsing ------------------------------------------------------------------------------------


def _check_box(conf: float | None, x: float, y: float, w: float, h: float, names: Sequence[str], where: str) -> None:
    """Range checks; ``names`` are the column names of (confidence, x, y, width, height)."""
    if conf is not None and not 0.0 <= conf <= 1.0:
        raise FieldError(names[0], f"{where}confidence {conf:g} is outside [0, 1]", "out_of_range")
    if x < 0.0:
        raise FieldError(names[1], f"{where}x must be >= 0, got {x:g}", "out_of_range")
    if y < 0.0:
        raise FieldError(names[2], f"{where}y must be >= 0, got {y:g}", "out_of_range")
    if w <= 0.0:
        raise FieldError(names[3], f"{where}width must be > 0, got {w:g}", "out_of_range")
    if h <= 0.0:
        raise FieldError(names[4], f"{where}height must be > 0, got {h:g}", "out_of_range")


def _prediction_string_parser(column: str) -> Any:
    names = (column,) * 5

    def parse_row(fields: list[str]) -> list[ScoredBox]:
        tokens = fields[1].split()
        if not tokens:
            return []
        if len(tokens) % 5:
            full = len(tokens) // 5
            raise FieldError(
                column,
                f"{column} has {len(tokens)} numbers; it must be groups of 5 (confidence x y width height), "
                f"but box {full + 1} is cut short after {len(tokens) % 5}",
            )
        values: list[float] = []
        for i, token in enumerate(tokens):
            try:
                values.append(parse_finite(token, BOX_COLUMNS[i % 5]))
            except FieldError as exc:
                raise FieldError(column, f"box {i // 5 + 1}: {exc.message}") from None
        boxes: list[ScoredBox] = []
        for k in range(0, len(values), 5):
            box = (values[k], values[k + 1], values[k + 2], values[k + 3], values[k + 4])
            _check_box(*box, names=names, where=f"box {k // 5 + 1}: ")
            boxes.append(box)
        return boxes

    return parse_row


def _box_row_parser(columns: Sequence[str]) -> Any:
    names = tuple(columns[1:6])

    def parse_row(fields: list[str]) -> ScoredBox | None:
        raw = fields[1:6]
        if not any(v.strip() for v in raw):
            return None
        values = []
        for name, text in zip(names, raw, strict=True):
            if not text.strip():
                raise FieldError(
                    name,
                    f"{name} is empty; give all of {','.join(names)} or leave all five empty for no box",
                )
            values.append(parse_finite(text, name))
        box = (values[0], values[1], values[2], values[3], values[4])
        _check_box(*box, names=names, where="")
        return box

    return parse_row


def _holdout_parser(columns: Sequence[str]) -> Any:
    names = tuple(columns[1:5])
    target_column = columns[5]

    def parse_row(fields: list[str]) -> Box | None:
        target = fields[5].strip()
        if target in ("0", "0.0"):
            if any(v.strip() for v in fields[1:5]):
                raise FieldError(target_column, f"{target_column} is 0 but a box is given")
            return None
        if target not in ("1", "1.0"):
            raise FieldError(target_column, f"{target_column} must be 0 or 1, got {target!r}")
        x, y, w, h = (parse_finite(v, name) for name, v in zip(names, fields[1:5], strict=True))
        _check_box(None, x, y, w, h, names=(target_column, *names), where="")
        return (x, y, w, h)

    return parse_row


class RsnaMap(Metric):
    name = "rsna_map"
    version = "rsna_map/1"
    higher_is_better = True
    description = (
        "RSNA mean average precision over IoU thresholds 0.40..0.75 (Kaggle definition); "
        "images with no truth and no prediction are skipped."
    )

    def _columns(self, manifest: Mapping[str, Any]) -> tuple[str, str | None]:
        """``(id_column, prediction_string_column)``; the second is None when the manifest's
        target columns are the one-row-per-box columns themselves."""
        id_column, targets = manifest_columns(manifest)
        if tuple(targets) == BOX_COLUMNS:
            return id_column, None
        if len(targets) != 1:
            raise ManifestError(
                "manifest: rsna_map needs 'target_columns' to be one column (e.g. ['PredictionString']) "
                f"or {list(BOX_COLUMNS)}, got {targets}"
            )
        return id_column, targets[0]

    def submission_formats(self, manifest: Mapping[str, Any]) -> tuple[RowFormat, ...]:
        id_column, ps_column = self._columns(manifest)
        box_columns = (id_column, *BOX_COLUMNS)
        box_rows = RowFormat(
            name="box_rows",
            columns=box_columns,
            parse_row=_box_row_parser(box_columns),
            one_row_per_id=False,
            description=f"one row per box: {','.join(box_columns)} (all five empty for a patient without box)",
        )
        if ps_column is None:
            return (box_rows,)
        prediction_string = RowFormat(
            name="prediction_string",
            columns=(id_column, ps_column),
            parse_row=_prediction_string_parser(ps_column),
            description=(
                f"one row per patient: {id_column},{ps_column} with {ps_column} "
                "'confidence x y width height' repeated per box (empty for none)"
            ),
        )
        return (prediction_string, box_rows)

    def holdout_format(self, manifest: Mapping[str, Any]) -> RowFormat:
        id_column, _ = self._columns(manifest)
        columns = (id_column, *HOLDOUT_COLUMNS)
        return RowFormat("box_rows", columns, _holdout_parser(columns), one_row_per_id=False)

    def build_predictions(self, fmt: RowFormat, ids: list[str], values: list[Any]) -> BoxTable:
        if fmt.name == "prediction_string":
            return BoxTable.from_groups(ids, values, scored=True)
        return BoxTable.from_rows(ids, values, scored=True)

    def build_truth(self, ids: list[str], values: list[Any]) -> BoxTable:
        return BoxTable.from_rows(ids, values, scored=False)

    def score(
        self, truth: BoxTable, predictions: BoxTable, ids: Collection[str] | None = None
    ) -> MetricResult:
        return score_rsna_map(truth, predictions, ids)
