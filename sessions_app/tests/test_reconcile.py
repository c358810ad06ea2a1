"""Reconcile decisions that need no Docker engine: a stand-in runtime plays the engine, so a
failure the real one produces only rarely (a container it refuses to stop) is cheap to test."""
from __future__ import annotations

import pytest
from django.utils import timezone

from runtime import factory as runtime_factory
from runtime.containers import ContainerRuntimeError
from sessions_app import reconcile
from sessions_app.factories import SessionFactory

pytestmark = pytest.mark.django_db


class StandInRuntime:
    """Lists no containers; refuses to stop the containers named in `refuse_stop`."""

    def __init__(self, refuse_stop: set[str]) -> None:
        self.refuse_stop = refuse_stop
        self.api_calls = 0

    def list_managed(self):
        self.api_calls += 1
        return []

    def stop_and_remove(self, name: str, timeout_s: float = 10) -> bool:
        self.api_calls += 1
        if name in self.refuse_stop:
            raise ContainerRuntimeError(f"Docker refused to stop {name}: tried to kill container")
        return False

    def remove_by_name(self, name: str) -> bool:
        self.api_calls += 1
        return False


@pytest.fixture
def stand_in():
    runtime = StandInRuntime(set())
    runtime_factory.override(container_runtime=runtime)
    yield runtime
    runtime_factory.reset()


def test_a_container_the_engine_will_not_stop_does_not_hold_back_the_pass(owner, stranger,
                                                                          stand_in):
    long_ago = timezone.now() - timezone.timedelta(seconds=reconcile.stop_grace_seconds() + 60)
    stuck = SessionFactory(owner=owner, status="stopping", stop_requested_at=long_ago)
    dead = SessionFactory(owner=stranger, status="running")  # its container vanished
    stand_in.refuse_stop.add(stuck.container_name)

    report = reconcile.reconcile_pass()

    stuck.refresh_from_db()
    dead.refresh_from_db()
    assert dead.status == "error" and dead.active_gpu is None
    assert stuck.status == "stopping"  # tried again on the next pass
    actions = {(action, slug) for action, slug, _ in report.actions}
    assert ("running_container_gone", dead.slug) in actions
    assert ("stop_failed", stuck.slug) in actions
