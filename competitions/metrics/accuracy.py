"""Accuracy for single-label classification competitions (e.g. ``titanic-survival``).

Ids are compared after trimming whitespace and labels as trimmed strings ("1" and " 1 " are
equal, "1" and "1.0" are not); score = correct / total over the holdout ids.
Manifest fields read: ``id_column``, ``target_columns`` (exactly one), and the optional
``labels`` (a list of allowed label strings; when given, other labels are refused at upload).
"""

from __future__ import annotations

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


def _label_parser(column: str, allowed: frozenset[str] | None) -> Any:
    def parse_row(fields: list[str]) -> str:
        label = fields[1].strip()
        if not label:
            raise FieldError(column, f"{column} is empty; a label is required")
        if allowed is not None and label not in allowed:
            shown = ", ".join(sorted(allowed)[:10])
            raise FieldError(column, f"{column} {label!r} is not one of the labels ({shown})", "out_of_range")
        return label

    return parse_row


class Accuracy(LabelMetric):
    name = "accuracy"
    version = "accuracy/1"
    higher_is_better = True
    label_dtype = np.str_
    description = "Fraction of test ids whose label equals the true label (trimmed string compare)."

    def _allowed(self, manifest: Mapping[str, Any]) -> frozenset[str] | None:
        labels = manifest.get("labels")
        if labels is None:
            return None
        if not isinstance(labels, list | tuple) or not labels:
            raise ManifestError("manifest: 'labels' must be a non-empty list when given")
        return frozenset(str(label).strip() for label in labels)

    def submission_formats(self, manifest: Mapping[str, Any]) -> tuple[RowFormat, ...]:
        id_column, target = single_target(manifest, self.name)
        return (
            RowFormat(
                name="labels",
                columns=(id_column, target),
                parse_row=_label_parser(target, self._allowed(manifest)),
                description=f"one row per test id: {id_column},{target}",
            ),
        )

    def holdout_format(self, manifest: Mapping[str, Any]) -> RowFormat:
        id_column, target = single_target(manifest, self.name)
        return RowFormat("labels", (id_column, target), _label_parser(target, None))


def accuracy_reference(
    truth: Mapping[str, str], predictions: Mapping[str, str], ids: Collection[str] | None = None
) -> float:
    """Plain per-row Python accuracy, the yardstick for the vectorised version."""
    t = {k.strip(): v.strip() for k, v in truth.items()}
    p = {k.strip(): v.strip() for k, v in predictions.items()}
    keys = t.keys() if ids is None else [i.strip() for i in ids]
    correct = 0
    total = 0
    for key in keys:
        total += 1
        if p.get(key) == t[key]:
            correct += 1
    return correct / total
