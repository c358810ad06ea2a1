"""The registry of scoring metrics, by the name a competition row stores.

Each entry is a :class:`~competitions.metrics.base.Metric` with ``name``, ``version``,
``higher_is_better``, the submission/holdout layouts that ``competitions.validation`` checks,
and ``score(truth, predictions, ids=None) -> MetricResult``. Pure Python + numpy, no Django.
"""

from __future__ import annotations

from .accuracy import Accuracy, accuracy_reference
from .base import (
    FieldError,
    LabelTable,
    ManifestError,
    Metric,
    MetricResult,
    RowFormat,
    ScoringError,
)
from .rsna_map import THRESHOLDS, BoxTable, RsnaMap, rsna_map_reference, score_rsna_map
from .top1 import Top1Accuracy, top1_accuracy_reference

METRICS: dict[str, Metric] = {
    metric.name: metric for metric in (Accuracy(), RsnaMap(), Top1Accuracy())
}


def get_metric(name: str | Metric) -> Metric:
    """The registered metric called ``name`` (a Metric passes through); ValueError if unknown."""
    if isinstance(name, Metric):
        return name
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


__all__ = [
    "METRICS",
    "THRESHOLDS",
    "BoxTable",
    "FieldError",
    "LabelTable",
    "ManifestError",
    "Metric",
    "MetricResult",
    "RowFormat",
    "ScoringError",
    "accuracy_reference",
    "get_metric",
    "rsna_map_reference",
    "score_rsna_map",
    "top1_accuracy_reference",
]
