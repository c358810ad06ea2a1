"""Competitions routes, included under /api/v2/ (the surface comes first in the path)."""
from django.urls import path

from . import api

P = "<exposure:exposure>/"

urlpatterns = [
    path(P + "competitions", api.CompetitionListView.as_view(), name="api-competitions"),
    path(P + "competitions/<slug:slug>", api.CompetitionDetailView.as_view(), name="api-competition"),
    path(P + "competitions/<slug:slug>/leaderboard", api.LeaderboardView.as_view(), name="api-leaderboard"),
    path(P + "competitions/<slug:slug>/leaderboard/history", api.ScoreHistoryView.as_view(),
         name="api-leaderboard-history"),
    path(P + "competitions/<slug:slug>/submissions", api.SubmissionCreateView.as_view(), name="api-submissions"),
    path(P + "competitions/<slug:slug>/submissions/me", api.MySubmissionsView.as_view(), name="api-submissions-me"),
    path(P + "datasets", api.DatasetListView.as_view(), name="api-datasets"),
    path(P + "datasets/<slug:slug>", api.DatasetDetailView.as_view(), name="api-dataset"),
    path(P + "datasets/<slug:slug>/files", api.DatasetFilesView.as_view(), name="api-dataset-files"),
    path(P + "datasets/<slug:slug>/files/<path:name>", api.DatasetFileDownloadView.as_view(),
         name="api-dataset-file"),
    path("admin/submissions/<int:submission_id>/score", api.AdminSubmissionScoreView.as_view(),
         name="api-admin-submission-score"),
]
