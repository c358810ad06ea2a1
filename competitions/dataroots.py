"""Where competition files live, and loading a competition's evaluation (manifest + holdout).

Four roots, pairwise disjoint (checked at start-up by ``competitions.checks``):
- ``TRAINING_DATA_ROOT/<dataset>/`` — training data; the only root a session may mount (read-only);
- ``PUBLIC_EVAL_DATA_ROOT/<dataset>/`` — test ids and sample submission (downloadable), and
  ``PUBLIC_EVAL_DATA_ROOT/<competition>/manifest.json`` (read by the platform, never served);
- ``TEST_HOLDOUTS_DIR/<competition>/holdout_labels.csv`` — hidden labels, never mounted or served;
- ``SUBMISSIONS_DIR/<competition>/<user_id>/<submission_id>.csv`` — stored uploads.

``load_evaluation`` parses and checks the manifest and the holdout once per file version
(keyed by mtime and size), so uploads and scoring do not re-read a 30,000-row holdout each time.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from competitions.metrics import ManifestError, Metric, get_metric
from competitions.validation import HoldoutError, holdout_id_set, load_holdout

MANIFEST_NAME = "manifest.json"
HOLDOUT_NAME = "holdout_labels.csv"

ROOT_SETTINGS = ("TRAINING_DATA_ROOT", "PUBLIC_EVAL_DATA_ROOT", "TEST_HOLDOUTS_DIR", "SUBMISSIONS_DIR")


def _root(name: str) -> Path:
    return Path(getattr(settings, name))


def training_data_path() -> str:
    """The host path sessions may mount read-only at /data (the training root, nothing else)."""
    return str(_root("TRAINING_DATA_ROOT"))


def dataset_public_dir(dataset_slug: str) -> Path:
    return _root("PUBLIC_EVAL_DATA_ROOT") / dataset_slug


def dataset_training_dir(dataset_slug: str) -> Path:
    return _root("TRAINING_DATA_ROOT") / dataset_slug


def manifest_path(competition_slug: str) -> Path:
    return _root("PUBLIC_EVAL_DATA_ROOT") / competition_slug / MANIFEST_NAME


def holdout_path(competition_slug: str) -> Path:
    return _root("TEST_HOLDOUTS_DIR") / competition_slug / HOLDOUT_NAME


def submission_dir(competition_slug: str, user_id: int) -> Path:
    return _root("SUBMISSIONS_DIR") / competition_slug / str(user_id)


def submission_file(submission) -> Path:
    """Where a submission's stored file is: ``file_path`` is relative to SUBMISSIONS_DIR, so
    the volume can move without rewriting rows."""
    return _root("SUBMISSIONS_DIR") / submission.file_path


# --- the start-up check ---------------------------------------------------------------------


def data_root_problems(roots: dict[str, str] | None = None) -> list[str]:
    """Why the data roots are unsafe (empty list: they are disjoint).

    Paths are compared after resolving symlinks (also for roots that do not exist yet, as far
    as their existing parents go), so a symlink that points one root into another is caught.
    """
    if roots is None:
        roots = {name: getattr(settings, name, "") for name in ROOT_SETTINGS}
    problems: list[str] = []
    resolved: dict[str, Path] = {}
    for name, value in roots.items():
        if not value or not str(value).strip():
            problems.append(f"{name} is empty")
            continue
        resolved[name] = Path(os.path.realpath(os.path.abspath(os.fspath(value))))
    names = list(resolved)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = resolved[a], resolved[b]
            if pa == pb:
                problems.append(f"{a} and {b} are the same directory ({pa})")
            elif pa.is_relative_to(pb):
                problems.append(f"{a} ({pa}) lies inside {b} ({pb})")
            elif pb.is_relative_to(pa):
                problems.append(f"{b} ({pb}) lies inside {a} ({pa})")
    return problems


# --- evaluation ------------------------------------------------------------------------------


class EvaluationUnavailable(Exception):
    """The competition's manifest or holdout is missing or unusable (an operator problem).

    ``public_message`` is safe to show users; ``str(exc)`` names files and lines for operators.
    """

    def __init__(self, message: str, public_message: str | None = None) -> None:
        super().__init__(message)
        self.public_message = public_message or message


@dataclass(frozen=True)
class Evaluation:
    """Everything scoring and validation need for one competition, parsed once."""

    manifest: dict[str, Any]
    manifest_sha256: str
    metric: Metric
    truth: Any
    holdout_ids: frozenset[str]
    public_ids: frozenset[str] | None  # None: no split, the public board scores everything
    split_version: str

    @property
    def private_ids(self) -> frozenset[str] | None:
        return None if self.public_ids is None else self.holdout_ids - self.public_ids

    @property
    def has_private_board(self) -> bool:
        return self.public_ids is not None


_CACHE: OrderedDict[tuple, Evaluation] = OrderedDict()
_CACHE_SIZE = 16
_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def read_manifest(competition_slug: str) -> tuple[dict[str, Any], str]:
    """(manifest, sha256 of its bytes); EvaluationUnavailable when missing or not a JSON object."""
    path = manifest_path(competition_slug)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise EvaluationUnavailable(f"{path} does not exist",
                                    "this competition has no evaluation manifest yet") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationUnavailable(f"{path} is not valid JSON: {exc}",
                                    "this competition's evaluation manifest is invalid") from None
    if not isinstance(manifest, dict):
        raise EvaluationUnavailable(f"{path} must hold a JSON object",
                                    "this competition's evaluation manifest is invalid")
    return manifest, hashlib.sha256(raw).hexdigest()


def _check_manifest(slug: str, metric_name: str, manifest: dict[str, Any], holdout_ids: frozenset[str]):
    split_version = manifest.get("evaluation_split_version")
    if not isinstance(split_version, str) or not split_version.strip():
        raise ManifestError("manifest: 'evaluation_split_version' must be a non-empty string")
    named = manifest.get("metric")
    if named is not None and named != metric_name:
        raise ManifestError(f"manifest: 'metric' is {named!r} but the competition scores with {metric_name!r}")
    public = manifest.get("public_ids")
    public_ids: frozenset[str] | None = None
    if public is not None:
        if not isinstance(public, list) or not all(isinstance(i, str | int) for i in public):
            raise ManifestError("manifest: 'public_ids' must be a list of test ids")
        public_ids = frozenset(str(i).strip() for i in public)
        unknown = public_ids - holdout_ids
        if unknown:
            raise ManifestError(
                f"manifest: {len(unknown)} of 'public_ids' are not holdout ids (e.g. {min(unknown)!r})"
            )
        if not public_ids or public_ids == holdout_ids:
            raise ManifestError("manifest: 'public_ids' must name a non-empty, proper subset of the holdout ids")
    return split_version.strip(), public_ids


def load_evaluation(competition) -> Evaluation:
    """The parsed, checked evaluation of ``competition`` (cached per file version).

    Raises :class:`EvaluationUnavailable` for a missing or invalid manifest or holdout.
    """
    slug, metric_name = competition.slug, competition.metric
    mpath, hpath = manifest_path(slug), holdout_path(slug)
    try:
        key = (slug, metric_name, str(mpath), _stamp(mpath), str(hpath), _stamp(hpath))
    except FileNotFoundError as exc:
        missing = exc.filename or "a file"
        raise EvaluationUnavailable(f"{missing} does not exist",
                                    "this competition's evaluation data is not installed") from None
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    manifest, digest = read_manifest(slug)
    try:
        metric = get_metric(metric_name)
        truth = load_holdout(hpath, manifest, metric)
        ids = holdout_id_set(truth)
        split_version, public_ids = _check_manifest(slug, metric_name, manifest, ids)
        expected = manifest.get("expected_row_count")
        if expected is not None and expected != len(ids):
            raise ManifestError(f"manifest: 'expected_row_count' is {expected} but the holdout has {len(ids)} ids")
        metric.submission_formats(manifest)  # raises ManifestError for unusable metric fields
    except ManifestError as exc:
        raise EvaluationUnavailable(
            f"{mpath}: {exc}", f"this competition's evaluation manifest is invalid: {exc}") from None
    except HoldoutError as exc:
        raise EvaluationUnavailable(str(exc), "this competition's holdout labels are unusable") from None
    except ValueError as exc:  # unknown metric, or a holdout the metric's tables refuse
        raise EvaluationUnavailable(f"{slug}: {exc}", "this competition's evaluation data is unusable") from None
    evaluation = Evaluation(manifest, digest, metric, truth, ids, public_ids, split_version)
    with _LOCK:
        _CACHE[key] = evaluation
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return evaluation


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
