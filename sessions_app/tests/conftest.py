"""The sessions tests record what services queue instead of sending it to a broker."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _record_queued(queued):
    yield queued
