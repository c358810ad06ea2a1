"""Sessions routes, mounted under /api/v2/ by medforge/urls.py."""
from django.urls import path

from . import api

urlpatterns = [
    path("<exposure:exposure>/sessions", api.SessionListView.as_view(), name="api-sessions"),
    path("<exposure:exposure>/sessions/current", api.CurrentSessionView.as_view(),
         name="api-session-current"),
    path("<exposure:exposure>/sessions/<uuid:session_id>", api.SessionDetailView.as_view(),
         name="api-session"),
    path("<exposure:exposure>/sessions/<uuid:session_id>/stop", api.SessionStopView.as_view(),
         name="api-session-stop"),
    path("<exposure:exposure>/sessions/<uuid:session_id>/events", api.SessionEventsView.as_view(),
         name="api-session-events"),
    path("<exposure:exposure>/sessions/<uuid:session_id>/events/stream",
         api.SessionEventStreamView.as_view(), name="api-session-events-stream"),
    path("<exposure:exposure>/snapshots", api.SnapshotListView.as_view(), name="api-snapshots"),
    path("<exposure:exposure>/snapshots/<uuid:snapshot_id>/restore",
         api.SnapshotRestoreView.as_view(), name="api-snapshot-restore"),
    path("<exposure:exposure>/packs", api.PackListView.as_view(), name="api-packs"),
    path("admin/sessions", api.AdminSessionListView.as_view(), name="api-admin-sessions"),
]
