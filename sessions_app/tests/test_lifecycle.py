"""Lifecycle decisions that need no Docker engine, with a stand-in runtime and directory
workspaces (the real engine is exercised in test_lifecycle_docker.py)."""
from __future__ import annotations

import pytest

from runtime import factory as runtime_factory
from runtime.containers import ContainerInfo, ContainerStartError
from runtime.workspaces import DirectoryWorkspaces
from sessions_app import lifecycle
from sessions_app.factories import SessionFactory
from sessions_app.models import SessionEvent

pytestmark = pytest.mark.django_db

UPSTREAM = "172.31.7.9:8080"


class NeverReadyRuntime:
    """Starts the container, then reports that its IDE never answered on UPSTREAM."""

    api_calls = 0

    def run(self, spec):
        return ContainerInfo(id="c" * 64, name=spec.container_name, status="running",
                             labels={}, upstream=UPSTREAM, exit_code=None, started_at=None)

    def wait_ready(self, container_id, upstream, timeout_s):
        raise ContainerStartError(
            f"container mf-session-x (status running) did not answer HTTP on {upstream} "
            "within 5s (last probe: ConnectionRefusedError); engine at tcp://10.0.0.5:2376")

    def remove_by_name(self, name):
        return True


def test_a_failed_start_tells_the_owner_why_without_platform_addresses(owner, tmp_path):
    runtime_factory.override(container_runtime=NeverReadyRuntime(),
                             workspace_store=DirectoryWorkspaces(tmp_path))
    try:
        session = SessionFactory(owner=owner, status="starting")
        assert lifecycle.session_start_run(session_id=str(session.id)) == "error"
    finally:
        runtime_factory.reset()
    session.refresh_from_db()
    assert session.status == "error" and session.active_gpu is None
    assert "did not answer HTTP" in session.error_message
    shown = [session.error_message,
             *SessionEvent.objects.filter(session=session).values_list("message", flat=True)]
    for text in shown:
        assert UPSTREAM not in text and "172.31." not in text and "10.0.0.5" not in text, text
