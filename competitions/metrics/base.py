"""The metric interface shared by every scoring metric, and the pieces they have in common.

A metric here is a pure object: it describes the submission layouts it accepts (so that
``competitions.validation`` can check an upload line by line), builds its columnar
``truth``/``predictions`` structures from parsed rows, and scores them with numpy.
Nothing in this package imports Django; the Celery scoring task and the upload path wrap it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


class ManifestError(ValueError):
    """The competition manifest lacks a field a metric needs, or holds an unusable value."""


class ScoringError(ValueError):
    """The arguments of a ``score()`` call do not fit together (e.g. ``ids`` names an unknown id)."""


class FieldError(ValueError):
    """One field of one row is unusable; ``column`` names it (None: the row as a whole).

    ``code`` is a short machine-readable reason (``invalid_value`` or ``out_of_range``).
    """

    def __init__(self, column: str | None, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.column = column
        self.message = message
        self.code = code


@dataclass(frozen=True)
class MetricResult:
    """What a score run produces: the leaderboard number and the figures behind it (JSON-safe)."""

    primary: float
    components: dict[str, float | int] = field(default_factory=dict)


RowParser = Callable[[list[str]], Any]


@dataclass(frozen=True)
class RowFormat:
    """One CSV layout a metric accepts (for a submission) or reads (for a holdout).

    ``columns`` is the exact header, id column first. ``parse_row`` receives the row's raw fields
    in that column order (``fields[0]`` is the id, not yet trimmed) and returns the parsed value
    the metric's ``build_*`` method collects, or raises :class:`FieldError`.
    ``one_row_per_id`` is False where several rows may share an id (one row per box).
    """

    name: str
    columns: tuple[str, ...]
    parse_row: RowParser
    one_row_per_id: bool = True
    description: str = ""

    @property
    def header(self) -> str:
        return ",".join(self.columns)


class Metric(ABC):
    """A scoring metric. Subclasses are stateless; one instance lives in ``METRICS``."""

    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abstractmethod
    def submission_formats(self, manifest: Mapping[str, Any]) -> tuple[RowFormat, ...]:
        """Accepted submission layouts; the first is the canonical one (the sample submission's)."""

    @abstractmethod
    def holdout_format(self, manifest: Mapping[str, Any]) -> RowFormat:
        """The layout of ``holdout_labels.csv`` (its columns are looked up by name)."""

    @abstractmethod
    def build_predictions(self, fmt: RowFormat, ids: list[str], values: list[Any]) -> Any:
        """Turn the parsed rows of a valid submission into what :meth:`score` takes."""

    @abstractmethod
    def build_truth(self, ids: list[str], values: list[Any]) -> Any:
        """Turn the parsed rows of a holdout file into what :meth:`score` takes as ``truth``."""

    @abstractmethod
    def score(self, truth: Any, predictions: Any, ids: Collection[str] | None = None) -> MetricResult:
        """Score ``predictions`` against ``truth``; ``ids`` restricts scoring to those holdout ids."""

    def __repr__(self) -> str:
        return f"<Metric {self.version}>"


# --- manifest helpers --------------------------------------------------------------------------


def manifest_columns(manifest: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Return ``(id_column, target_columns)`` from a manifest, or raise :class:`ManifestError`."""
    id_column = manifest.get("id_column")
    if not isinstance(id_column, str) or not id_column.strip():
        raise ManifestError("manifest: 'id_column' must be a non-empty string")
    targets = manifest.get("target_columns")
    if (
        not isinstance(targets, list | tuple)
        or not targets
        or not all(isinstance(t, str) and t.strip() for t in targets)
    ):
        raise ManifestError("manifest: 'target_columns' must be a non-empty list of column names")
    return id_column.strip(), [t.strip() for t in targets]


def single_target(manifest: Mapping[str, Any], metric_name: str) -> tuple[str, str]:
    """``(id_column, target_column)`` for metrics that score exactly one label column."""
    id_column, targets = manifest_columns(manifest)
    if len(targets) != 1:
        raise ManifestError(
            f"manifest: metric {metric_name!r} scores one target column, "
            f"but 'target_columns' names {len(targets)}: {targets}"
        )
    return id_column, targets[0]


def parse_finite(text: str, column: str) -> float:
    """Parse a finite float (NaN and infinities are refused) or raise :class:`FieldError`."""
    try:
        value = float(text)
    except ValueError:
        shown = text.strip()
        if not shown:
            raise FieldError(column, f"{column} is empty; a number is required") from None
        raise FieldError(column, f"{column} is not a number: {shown!r}") from None
    if not math.isfinite(value):
        raise FieldError(column, f"{column} must be a finite number, got {text.strip()!r}")
    return value


# --- id arrays -----------------------------------------------------------------------------------


def as_id_array(ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """A numpy unicode array of whitespace-trimmed ids (``<U1`` when empty)."""
    if len(ids) == 0:
        return np.empty(0, dtype="<U1")
    return np.strings.strip(np.asarray(ids, dtype=np.str_))


def sort_unique_ids(ids: np.ndarray) -> np.ndarray:
    """Stable permutation that sorts ``ids``; raises ValueError when an id occurs twice."""
    order = np.argsort(ids, kind="stable")
    if len(ids) > 1:
        ordered = ids[order]
        dup = np.flatnonzero(ordered[1:] == ordered[:-1])
        if dup.size:
            raise ValueError(f"duplicate id {str(ordered[dup[0]])!r}")
    return order


def select_ids(all_ids: np.ndarray, ids: Collection[str] | None) -> np.ndarray | None:
    """Indices into the sorted ``all_ids`` of the requested subset (None: everything).

    Raises :class:`ScoringError` when the subset is empty or names an id that is not there,
    because a public/private split that drifted from the holdout must not score silently.
    """
    if ids is None:
        return None
    wanted = np.unique(as_id_array(list(ids)))
    if wanted.size == 0:
        raise ScoringError("ids selects no holdout rows")
    pos = np.searchsorted(all_ids, wanted)
    if all_ids.size == 0:
        found = np.zeros(wanted.size, dtype=bool)
    else:
        found = (pos < all_ids.size) & (all_ids[np.minimum(pos, all_ids.size - 1)] == wanted)
    if not found.all():
        unknown = wanted[~found]
        examples = ", ".join(repr(str(u)) for u in unknown[:5])
        raise ScoringError(f"{unknown.size} of the requested ids are not in the holdout (e.g. {examples})")
    return pos


# --- one label per id (accuracy, top-1) ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelTable:
    """One label per id, columnar: ``ids`` sorted and unique, ``labels`` aligned with them.

    Used as both ``truth`` and ``predictions`` by the classification metrics.
    """

    ids: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_pairs(
        cls, ids: Sequence[str], labels: Sequence[Any], *, dtype: Any = None
    ) -> LabelTable:
        """Build from parallel sequences; ids are trimmed, and string labels too."""
        id_arr = as_id_array(ids)
        if dtype is np.str_ or dtype is str:
            lab = as_id_array(labels)  # same trimming rule for string labels
        else:
            lab = np.asarray(labels, dtype=dtype)
        if lab.shape != id_arr.shape:
            raise ValueError(f"{len(ids)} ids but {len(labels)} labels")
        order = sort_unique_ids(id_arr)
        return cls(id_arr[order], lab[order])

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, dtype: Any = None) -> LabelTable:
        return cls.from_pairs(list(mapping.keys()), list(mapping.values()), dtype=dtype)

    def __len__(self) -> int:
        return int(self.ids.size)


def score_labels(
    truth: LabelTable, predictions: LabelTable, ids: Collection[str] | None = None
) -> MetricResult:
    """Fraction of (selected) holdout ids whose predicted label equals the true one.

    A holdout id without a prediction counts as wrong; predictions for ids outside the
    holdout (or outside ``ids``) are ignored. Vectorised: ids are aligned by sorted search.
    """
    sel = select_ids(truth.ids, ids)
    t_ids = truth.ids if sel is None else truth.ids[sel]
    t_lab = truth.labels if sel is None else truth.labels[sel]
    total = int(t_ids.size)
    if total == 0:
        raise ScoringError("the holdout has no rows to score")
    p_ids = predictions.ids
    if p_ids.size == total and np.array_equal(p_ids, t_ids):
        # The common case after validation: exactly the holdout's ids, already aligned.
        present = total
        correct = int(np.count_nonzero(predictions.labels == t_lab))
    elif p_ids.size == 0:
        present = correct = 0
    else:
        pos = np.searchsorted(p_ids, t_ids)
        pos_c = np.minimum(pos, p_ids.size - 1)
        found = (pos < p_ids.size) & (p_ids[pos_c] == t_ids)
        present = int(np.count_nonzero(found))
        correct = int(np.count_nonzero(found & (predictions.labels[pos_c] == t_lab)))
    return MetricResult(
        primary=correct / total,
        components={"correct": correct, "total": total, "missing": total - present},
    )


class LabelMetric(Metric):
    """A metric over one label per id (accuracy, top-1): truth and predictions are
    :class:`LabelTable` of ``label_dtype``, scored by :func:`score_labels`."""

    label_dtype: ClassVar[Any]

    def build_predictions(self, fmt: RowFormat, ids: list[str], values: list[Any]) -> LabelTable:
        return LabelTable.from_pairs(ids, values, dtype=self.label_dtype)

    def build_truth(self, ids: list[str], values: list[Any]) -> LabelTable:
        return LabelTable.from_pairs(ids, values, dtype=self.label_dtype)

    def score(
        self, truth: LabelTable, predictions: LabelTable, ids: Collection[str] | None = None
    ) -> MetricResult:
        return score_labels(truth, predictions, ids)
