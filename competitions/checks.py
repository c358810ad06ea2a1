"""Start-up system check: the competition data roots must be pairwise disjoint.

Registered at error level, so ``manage.py check``, ``runserver`` and ``migrate`` (run before
gunicorn and the workers start) refuse to run with equal, nested or symlinked-overlapping
roots: a holdout inside the training root would be mounted into every session container.
"""
from __future__ import annotations

from django.core.checks import Error, register

from competitions.dataroots import data_root_problems


@register("competitions")
def check_data_roots(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(
            f"competition data roots overlap: {problem}",
            hint="Point TRAINING_DATA_ROOT, PUBLIC_EVAL_DATA_ROOT, TEST_HOLDOUTS_DIR and "
            "SUBMISSIONS_DIR at four separate directories, none inside another.",
            id="competitions.E001",
        )
        for problem in data_root_problems()
    ]
