"""Top-1 accuracy over integer class labels (``cifar-100-classification``: labels 0..99).

Labels are integers in ``0 .. num_classes-1``; an integral float such as ``"7.0"`` (what pandas
writes for a float column) is accepted as 7, anything else is refused at upload.
Manifest fields read: ``id_column``, ``target_columns`` (exactly one), optional ``num_classes``
(default 100).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from .base import (
    FieldError,
    LabelMetric,
    ManifestError,
    RowFormat,
    single_target,
)

DEFAULT_NUM_CLASSES = 100


def _integral(text: str) -> int | None:
    """``"7.0"`` -> 7 (pandas writes integer columns holding NaN as floats); otherwise None."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or not value.is_integer():
        return None
    return int(value)


def _class_parser(column: str, num_classes: int) -> Any:
    top = num_classes - 1

    def parse_row(fields: list[str]) -> int:
        text = fields[1]
        try:
            label = int(text)
        except ValueError:
            label = _integral(text)
            if label is None:
                shown = text.strip()
                if not shown:
                    raise FieldError(column, f"{column} is empty; a class 0..{top} is required") from None
                raise FieldError(column, f"{column} must be an integer class 0..{top}, got {shown!r}") from None
        if not 0 <= label <= top:
            raise FieldError(column, f"{column} {label} is outside the classes 0..{top}", "out_of_range")
        return label

    return parse_row


class Top1Accuracy(LabelMetric):
    name = "top1_accuracy"
    version = "top1_accuracy/1"
    higher_is_better = True
    label_dtype = np.int64
    description = "Fraction of test images whose predicted class equals the true class."

    def _num_classes(self, manifest: Mapping[str, Any]) -> int:
        n = manifest.get("num_classes", DEFAULT_NUM_CLASSES)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ManifestError("manifest: 'num_classes' must be a positive integer")
        return n

    def submission_formats(self, manifest: Mapping[str, Any]) -> tuple[RowFormat, ...]:
        id_column, target = single_target(manifest, self.name)
        n = self._num_classes(manifest)
        return (
            RowFormat(
                name="labels",
                columns=(id_column, target),
                parse_row=_class_parser(target, n),
                description=f"one row per test id: {id_column},{target} with {target} an integer 0..{n - 1}",
            ),
        )

    def holdout_format(self, manifest: Mapping[str, Any]) -> RowFormat:
        id_column, target = single_target(manifest, self.name)
        return RowFormat("labels", (id_column, target), _class_parser(target, self._num_classes(manifest)))


def top1_accuracy_reference(
    truth: Mapping[str, int], predictions: Mapping[str, int], ids: Collection[str] | None = None
) -> float:
    """Straightforward per-row Python top-1 accuracy (the benchmark's yardstick)."""
    keys = truth.keys() if ids is None else ids
    correct = 0
    total = 0
    for key in keys:
        total += 1
        if predictions.get(key) == truth[key]:
            correct += 1
    return correct / total
